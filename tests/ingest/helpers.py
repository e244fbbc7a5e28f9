"""Helpers for the ingest tests (``tests.ingest.helpers``; the fixtures are in ``conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ingest.live import LiveSource
from ingest.testing import Replay

RECORDINGS = Path(__file__).parent / "recordings"
AT = datetime(2024, 11, 27, 5, 30, tzinfo=UTC)

MakeSource = Callable[..., tuple[LiveSource, Replay]]
