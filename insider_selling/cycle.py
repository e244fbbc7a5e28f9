"""One ingest-and-score cycle, and the scheduler that repeats it every interval."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from ingest.source import Source
from ingest.storage import SnapshotStore
from scoring.pipeline import RunResult, ScoringPipeline
from scoring.schedule import next_run_at

__all__ = ["Cycle", "OnSuccess", "Scheduler"]

log = logging.getLogger("insider_selling.cycle")

OnSuccess = Callable[[RunResult], Awaitable[None]]


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


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

    async def score_history(self, now: datetime, hours: int, step: timedelta = timedelta(hours=1)) -> int:
        """Score the backfilled hours before ``now`` (oldest first, one run per ``step`` over the
        last ``hours``), so that charts and sparklines have points from the first minutes. Run
        after :meth:`prime` has served the present: each backdated run takes the one in force at
        its time as its previous run and never displaces the latest. Returns the runs that
        succeeded; the runs already stored at those times are skipped (a restart)."""
        now = now.astimezone(UTC).replace(microsecond=0)
        last = now.replace(minute=0, second=0)
        if last >= now:
            last -= step
        times = [last - k * step for k in range(max(0, int(timedelta(hours=hours) / step)))][::-1]
        done = 0
        for at in times:
            # a run is CPU work that yields little: let start-up finish and requests be answered
            # between two runs (each blocks the loop for a fraction of a second)
            await asyncio.sleep(0.05)
            async with self._lock:
                prior = await self.pipeline.runs.in_force(at)
                if prior is not None and _utc(prior["at"]) == at:
                    continue
                result = await self.pipeline.run(at, [], backdated=True)
            done += result.status == "succeeded"
        return done

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
