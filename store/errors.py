"""The store package's exceptions."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error raised by ``store``."""


class StoreUnavailable(StoreError):
    """Raised when the document store cannot be reached."""
