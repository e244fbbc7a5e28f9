"""Every line the service writes to stderr is JSON: also Python's own warnings (a coroutine never
awaited) and exceptions raised where nobody can catch them (a finalizer, shutdown)."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import asyncio, gc, logging, warnings
from insider_selling.logs import configure_logging

configure_logging("info")
logging.getLogger("insider_selling.test").info("a normal line")

async def _async_resolver():
    return 1

_async_resolver()  # created, never awaited: Python warns from the coroutine's finalizer
gc.collect()
warnings.warn("something deprecated", DeprecationWarning, stacklevel=1)

class Finalizer:
    def __del__(self):
        raise KeyError("__import__")

Finalizer()
gc.collect()
"""


def test_warnings_and_unraisable_exceptions_are_json_lines() -> None:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-W", "default", "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines, done.stderr
    entries = []
    for line in lines:
        entries.append(json.loads(line))  # a plain-text line fails here
    text = done.stderr
    assert "never awaited" in text and "_async_resolver" in text
    assert "__import__" in text and "Finalizer" in text
    assert {e["logger"] for e in entries} >= {"insider_selling.test", "py.warnings", "insider_selling.unraisable"}
