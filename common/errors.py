"""Every error a user's mistake can cause, under one base class (a leaf module: imports nothing).

The command line catches `UserError` and prints its message as one `error:` line (exit code 2);
anything else is a bug of ours and keeps its traceback. Each subclass names where the mistake
was made, so that callers of the Python API can catch the kind they care about.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake in what the user gave us; the message names the value and the fix."""


class ConfigError(UserError):
    """A recipe, an override or a method option the schema refuses."""


class DataError(UserError):
    """A data set cannot be found or read; the message says where we looked and how to fix it."""


class CheckpointError(UserError):
    """A checkpoint file is missing, unreadable, unsafe, or does not fit the model."""


class ResumeError(UserError):
    """A --resume target that cannot be resumed."""


class NonFiniteLossError(UserError):
    """The loss became NaN or infinite; the message names the step and each loss."""


class DeviceError(UserError):
    """A device was asked for that this machine does not have."""
