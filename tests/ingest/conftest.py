"""Fixtures for the ingest tests: recorded responses replayed through ccxt and httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ingest.commands import build_live_source
from ingest.live import LiveSource
from ingest.testing import Recorded, Replay, load_recordings
from tests.ingest.helpers import RECORDINGS, MakeSource


@pytest.fixture(scope="session")
def recordings() -> dict[str, list[Recorded]]:
    return load_recordings(RECORDINGS)


@pytest.fixture
async def make_source(recordings: dict[str, list[Recorded]]) -> AsyncIterator[MakeSource]:
    """``make_source(overrides, **settings)``: the live source over the recordings, where the
    ``overrides`` (faults) answer before the recorded responses. Closed after the test."""
    built: list[LiveSource] = []

    def make(overrides: list[Recorded] | None = None, **settings: Any) -> tuple[LiveSource, Replay]:
        recorded = [r for rs in recordings.values() for r in rs]
        replay = Replay(list(overrides or []) + recorded)
        settings.setdefault("connect_timeout", 0.5)
        settings.setdefault("read_timeout", 0.5)
        settings.setdefault("throttle", False)
        settings.setdefault("seed", 7)
        source = build_live_source(ccxt_fetch=replay.ccxt_fetch, transport=replay.transport(), **settings)
        built.append(source)
        return source, replay

    yield make
    for source in built:
        await source.aclose()
