"""Times as the contract writes and reads them: ISO 8601 in UTC with a ``Z`` out, any timezone in."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_datetime", "parse_datetime"]


def format_datetime(value: datetime | str) -> str:
    """ISO 8601 in UTC with a ``Z``, exactly as REST writes it (stored strings are already so)."""
    if isinstance(value, str):
        return value
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    year = f"{value.year:04d}"  # strftime's %Y does not pad years before 1000
    if value.microsecond:
        return year + value.strftime("-%m-%dT%H:%M:%S.%fZ")
    return year + value.strftime("-%m-%dT%H:%M:%SZ")


def parse_datetime(value: object) -> datetime:
    """Accept ISO 8601 with a timezone (``Z`` or an offset); a naive time is ambiguous, so refused."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("DateTime must be an ISO 8601 string such as 2026-04-26T07:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"DateTime must be ISO 8601 such as 2026-04-26T07:00:00Z, got {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError("DateTime needs a timezone, e.g. 2026-04-26T07:00:00Z")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, or 9999 with a negative one
        raise ValueError(f"DateTime {value!r} is outside the supported years") from None
