"""The ingest package's exceptions: one base, narrow subclasses."""

from __future__ import annotations


class IngestError(Exception):
    """Base of every error raised by ``ingest``."""


class VenueError(IngestError):
    """Raised when one venue fails in a cycle (network, HTTP status, bad payload)."""

    def __init__(self, venue: str, message: str) -> None:
        super().__init__(f"{venue}: {message}")
        self.venue = venue


class MalformedResponse(VenueError):
    """Raised when a venue's response fails validation."""


class SnapshotFormatError(IngestError):
    """Raised when a snapshot file row cannot be read."""


class ImportFormatError(IngestError):
    """Raised when a third-party file cannot be imported at all (unreadable, unknown shape)."""
