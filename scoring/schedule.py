"""The run grid: scoring runs are planned on multiples of the interval since the epoch (every
30 minutes: at :00 and :30), whichever process runs them (``serve`` in the embedded mode, or a
separate ``insider-selling worker``). The planned time is derived from the stored runs and the
configured interval only, so every API process answers the same without a scheduler of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["align", "next_run_at"]


def align(at: datetime, interval_seconds: int) -> datetime:
    """Floor ``at`` to the interval grid."""
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % interval_seconds, UTC)


def next_run_at(last_run_at: datetime | None, interval_seconds: int, now: datetime) -> datetime:
    """The next planned run: the first slot of the grid after ``now`` and after the latest stored
    run. Never in the past, also after failed runs, a pause of the worker or a restart."""
    if last_run_at is not None and last_run_at.tzinfo is None:
        last_run_at = last_run_at.replace(tzinfo=UTC)
    reference = now if last_run_at is None else max(now, last_run_at)
    return align(reference, interval_seconds) + timedelta(seconds=interval_seconds)
