"""Structured (JSON lines) logging that never carries an API key."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["JsonFormatter", "configure_logging", "log_unraisable", "scrub"]

_KEY = re.compile(r"sk_live_([0-9A-Za-z]{12})[0-9A-Za-z]*")
_RESERVED = set(vars(logging.makeLogRecord({})))


def scrub(text: str) -> str:
    """Replace any API key in ``text`` by its public prefix."""
    return _KEY.sub(lambda m: f"sk_live_{m.group(1)}…", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn's access log line carries no headers, but we log requests ourselves.
    logging.getLogger("uvicorn.access").disabled = True
    # Python's own stderr writers, made JSON too: warnings (a coroutine never awaited, ...) and
    # exceptions raised where nobody can catch them (a finalizer, a coroutine closed at exit).
    logging.captureWarnings(True)
    sys.unraisablehook = log_unraisable


_UNRAISABLE = logging.getLogger("insider_selling.unraisable")


def log_unraisable(unraisable: Any) -> None:
    """``sys.unraisablehook`` writing one JSON line instead of Python's plain-text "Exception
    ignored in ..." block. At interpreter shutdown, when logging itself may be gone, it stays
    silent rather than print a second traceback."""
    try:
        exc = unraisable.exc_value
        _UNRAISABLE.warning(
            "%s: %s",
            unraisable.err_msg or "Exception ignored in",
            repr(unraisable.object)[:200],
            exc_info=(type(exc), exc, unraisable.exc_traceback) if exc is not None else None,
        )
    except BaseException:  # noqa: S110 - nowhere left to report to
        pass
