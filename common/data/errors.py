"""The one error type the data package raises for a missing or malformed data set."""

from __future__ import annotations


class DataError(ValueError):
    """A data set cannot be found or read; the message says where we looked and how to fix it."""
