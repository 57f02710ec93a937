"""The data package's error type (defined with every other user error in `common.errors`)."""

from common.errors import DataError

__all__ = ["DataError"]
