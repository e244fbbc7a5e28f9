"""Replay snapshot files as if time passed (``backtest --replay``), and write demo data in the
snapshot file format to replay (``export-demo``).

Before each run the replay releases only the samples up to the run's time, then runs the model's
own pipeline (:class:`scoring.pipeline.ScoringPipeline`), which stores the run as the live service
would.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ingest.demo import DemoConfig, DemoMarket
from ingest.files import read_snapshot_frames, write_snapshots
from ingest.snapshot import Coin, MarketSample, OnchainSample, frame_coin_ids, parse_time, samples_from_frame
from ingest.source import SnapshotBatch
from ingest.storage import SnapshotStore
from research.errors import BacktestError
from scoring.config import ModelConfig, load_model_config
from scoring.panel import frames_coin_ids, hour_floor
from scoring.pipeline import RunResult, ScoringPipeline

__all__ = ["Replay", "backtest", "export_demo", "iso", "load_replay", "parse_step"]


def iso(at: datetime) -> str:
    """``2026-11-20T12:00:00Z``: a run time as the reports print it."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def export_demo(
    out: Path, *, seed: int = 7, coins: int = 60, days: int = 14, end: datetime | None = None, hard: bool = False
) -> tuple[int, list[Path]]:
    """Write ``days`` of hourly demo data to ``out`` in the snapshot file format, one file per
    UTC day. Returns the number of sample rows and the files written."""
    end = hour_floor(end or datetime(2026, 11, 20, tzinfo=UTC))
    hours = days * 24
    origin = end - timedelta(hours=hours)
    market = DemoMarket(
        DemoConfig(seed=seed, coins=coins, hard=hard, horizon_hours=hours),
        origin,
        warm_until=origin + timedelta(hours=hours // 2),
    )
    rows = 0
    written: list[Path] = []
    for h in range(1, hours + 1):
        at = origin + timedelta(hours=h)
        path = out / f"snapshots-{at:%Y-%m-%d}.jsonl"
        fresh = path not in written
        if fresh:
            written.append(path)
        samples, onchain = market.advance(at)
        rows += write_snapshots(path, market.coins if fresh else [], samples, onchain, append=not fresh)
    return rows, written


def parse_step(step: str) -> timedelta:
    """``1h``, ``6h``, ``1d``... -> a timedelta of whole hours."""
    unit = step[-1:].lower()
    try:
        count = int(step[:-1])
    except ValueError:
        count = 0
    if unit not in ("h", "d") or count <= 0:
        raise BacktestError(f"--step must look like 1h, 6h or 1d, not {step!r}")
    return timedelta(hours=count * (24 if unit == "d" else 1))


@dataclass(slots=True)
class Replay:
    """A snapshot directory in memory: coins, market frames (one per venue and sample time, in
    time order, as the store keeps them) and on-chain samples (in time order)."""

    coins: dict[str, Coin]
    frames: list[dict[str, Any]]
    onchain: list[OnchainSample]

    @property
    def first(self) -> datetime:
        return parse_time(self.frames[0]["at"])

    @property
    def last(self) -> datetime:
        return parse_time(self.frames[-1]["at"])

    @property
    def rows(self) -> int:
        """Market rows (coins summed over frames)."""
        return sum(len(frame_coin_ids(f)) for f in self.frames)

    @property
    def market(self) -> list[MarketSample]:
        """Every market row as a sample (decoded on demand; the replay itself uses the frames)."""
        return [s for frame in self.frames for s in samples_from_frame(frame)]


def load_replay(directory: Path) -> Replay:
    coins, frames, onchain = read_snapshot_frames(directory)
    if not frames:
        raise BacktestError(f"{directory}: no market rows")
    onchain.sort(key=lambda s: s.at)
    return Replay(coins, frames, onchain)


class _ReplaySnapshots(SnapshotStore):
    """The pipeline's view of a replay: market windows served straight from the replay's frames
    (no store round trip, no copies), never past the frames released so far."""

    def __init__(self, db: Any, replay: Replay, frame_times: list[datetime]) -> None:
        super().__init__(db)
        self._frames = replay.frames
        self._times = frame_times
        self._coins: dict[str, Coin] | None = None
        self.released = 0

    async def market_window(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        lo = bisect.bisect_right(self._times, start, hi=self.released)
        hi = bisect.bisect_right(self._times, end, lo=lo, hi=self.released)
        return self._frames[lo:hi]

    async def all_coins(self) -> dict[str, Coin]:
        if self._coins is None:
            self._coins = await super().all_coins()
        return dict(self._coins)


async def backtest(
    db: Any,
    replay: Replay,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    step: timedelta = timedelta(hours=1),
    config: ModelConfig | None = None,
    warmup: timedelta = timedelta(hours=72),
    progress: Any = None,
) -> list[RunResult]:
    """Step through the replay as if time passed: before each run, write the samples up to the
    run time (never later ones) to the store, then run the scoring pipeline, storing the run.

    ``start`` defaults to the first sample plus ``warmup`` (the funding window), ``end`` to the
    last sample.
    """
    config = config or load_model_config()
    pipeline = ScoringPipeline(db, config, source="replay")
    snapshots = SnapshotStore(db)
    frame_times = [parse_time(f["at"]) for f in replay.frames]
    view = _ReplaySnapshots(db, replay, frame_times)
    pipeline.snapshots = view
    start = hour_floor(start or replay.first + warmup)
    end = end or replay.last
    if start > end:
        raise BacktestError(f"the window is empty: --from {iso(start)} is after --to {iso(end)}")
    coins = list(replay.coins.values()) or [Coin(c, c.upper(), c) for c in frames_coin_ids(replay.frames)]
    results: list[RunResult] = []
    m_pos = o_pos = 0
    at = start
    while at <= end:
        m_end = bisect.bisect_right(frame_times, at, lo=m_pos)
        o_end = o_pos
        while o_end < len(replay.onchain) and replay.onchain[o_end].at <= at:
            o_end += 1
        batch = SnapshotBatch(at=at, coins=coins if not results else [], market=[], onchain=replay.onchain[o_pos:o_end])
        if batch.onchain or batch.coins:
            await snapshots.write_batch(batch)
        await snapshots.write_frames(replay.frames[m_pos:m_end])  # for reports and later reads
        view.released = m_end
        m_pos, o_pos = m_end, o_end
        result = await pipeline.run(at)
        results.append(result)
        if progress is not None:
            progress(result)
        at += step
    return results
