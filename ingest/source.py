"""What every market-data source delivers: one batch of snapshots per cycle, plus venue outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from ingest.snapshot import Coin, MarketSample, OnchainSample

__all__ = ["SnapshotBatch", "Source", "VenueOutcome"]

Outcome = Literal["ok", "failed", "skipped"]


@dataclass(slots=True)
class VenueOutcome:
    """How one venue (or on-chain provider) fared in one cycle. Stored with the run."""

    venue: str
    status: Outcome
    latency_ms: float = 0.0
    markets: int = 0
    requests: int = 0
    error: str | None = None
    #: rows or responses rejected by validation this cycle (added by the live ingest)
    rejected: int = 0


@dataclass(slots=True)
class SnapshotBatch:
    """Everything one cycle (or a backfill) collected. Fields with no source stay ``None``."""

    at: datetime
    coins: list[Coin] = field(default_factory=list)
    market: list[MarketSample] = field(default_factory=list)
    onchain: list[OnchainSample] = field(default_factory=list)
    outcomes: list[VenueOutcome] = field(default_factory=list)
    #: past hours from venues' history endpoints (funding prints, klines, OI history): they only
    #: fill gaps, never replace a stored sample of the same venue and hour (added by live ingest)
    history: list[MarketSample] = field(default_factory=list)


class Source(Protocol):
    """A market-data source: ``demo`` (the simulator) or ``live`` (venues and on-chain providers)."""

    name: str

    async def backfill(self, end: datetime, hours: int) -> SnapshotBatch:
        """Hourly history for the ``hours`` before ``end`` (used once, on an empty store)."""
        ...

    async def collect(self, at: datetime) -> SnapshotBatch:
        """One cycle's samples at ``at``. A failing venue is an outcome, never an exception."""
        ...

    async def aclose(self) -> None: ...
