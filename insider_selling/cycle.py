"""One ingest-and-score cycle, and the scheduler that repeats it every interval."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from ingest.source import Source
from ingest.storage import SnapshotStore
from scoring.pipeline import RunResult, ScoringPipeline
from scoring.schedule import next_run_at

__all__ = ["Cycle", "Scheduler"]

log = logging.getLogger("insider_selling.cycle")

OnSuccess = Callable[[RunResult], Awaitable[None]]


class Cycle:
    def __init__(
        self,
        source: Source,
        snapshots: SnapshotStore,
        pipeline: ScoringPipeline,
        *,
        history_hours: int,
        on_success: list[OnSuccess] | None = None,
        score_retention_days: int = 0,
    ) -> None:
        self.source = source
        self.score_retention_days = score_retention_days  # 0: keep every run in full
        self.snapshots = snapshots
        self.pipeline = pipeline
        self.history_hours = history_hours
        self.on_success: list[OnSuccess] = on_success or []
        self._lock = asyncio.Lock()

    async def prime(self, now: datetime) -> RunResult:
        """Backfill the history window, then score: data is ready within seconds of start.

        The run is timed ``now`` (to the second), not the backfill's last hour: its rows'
        ``updated_at`` is when they were computed, and after a restart the new run is never
        older than (so never hidden behind) a run stored before the restart."""
        async with self._lock:
            now = now.astimezone(UTC).replace(microsecond=0)
            end = now.replace(minute=0, second=0)
            batch = await self.source.backfill(end, self.history_hours)
            await self.snapshots.write_batch(batch)
            return await self._score(now, batch.outcomes)

    async def run_once(self, at: datetime) -> RunResult:
        async with self._lock:
            batch = await self.source.collect(at)
            await self.snapshots.write_batch(batch)
            return await self._score(at, batch.outcomes)

    async def _score(self, at: datetime, outcomes: list) -> RunResult:  # type: ignore[type-arg]
        result = await self.pipeline.run(at, outcomes)
        if result.status == "succeeded" and self.score_retention_days:
            try:
                pruned = await self.pipeline.runs.roll_up(self.score_retention_days)
                if pruned:
                    log.info("rolled up old runs", extra={"pruned_runs": pruned})
            except Exception:  # retention is housekeeping: the run has succeeded regardless
                log.exception("score roll-up failed")
        if result.status == "succeeded":
            for callback in self.on_success:
                try:
                    await callback(result)
                except Exception:
                    log.exception("run callback failed")
        return result


class Scheduler:
    """Runs :meth:`Cycle.run_once` on the interval grid until cancelled. A failing cycle is logged
    and the next one runs as planned; the previous leaderboard stays in place."""

    def __init__(
        self, cycle: Cycle, interval_seconds: int, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.cycle = cycle
        self.interval = interval_seconds
        self.clock = clock
        self.last_result: RunResult | None = None

    async def run_forever(self) -> None:
        while True:
            now = self.clock()
            nxt = next_run_at(None, self.interval, now)  # what every API process tells its clients
            await asyncio.sleep(max(0.0, (nxt - now).total_seconds()))
            try:
                self.last_result = await self.cycle.run_once(nxt)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cycle failed; the previous leaderboard stays in place")
