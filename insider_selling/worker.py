"""``insider-selling worker``: ingest and score on the interval grid, outside the API processes.

With ``REDIS_URL`` set, a Redis lock makes sure one worker is active at a time; the others wait
and take over when the active one stops renewing the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import UTC, datetime

from ingest.storage import SnapshotStore
from insider_selling.cycle import Cycle, Scheduler
from insider_selling.settings import Settings
from scoring.config import load_model_config
from scoring.pipeline import ScoringPipeline
from store import open_store

__all__ = ["run_worker"]

log = logging.getLogger("insider_selling.worker")
LOCK_KEY = "insider:worker:lock"
LOCK_TTL = 60


async def _hold_lock(redis, token: str) -> None:  # type: ignore[no-untyped-def]
    while not await redis.set(LOCK_KEY, token, nx=True, ex=LOCK_TTL):
        log.info("another worker holds the lock; waiting")
        await asyncio.sleep(LOCK_TTL / 3)


_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


async def _release_lock(redis, token: str) -> None:  # type: ignore[no-untyped-def]
    """Give the lock back at once (only if still ours), so a standby worker takes over now."""
    await redis.eval(_RELEASE, 1, LOCK_KEY, token)


async def _renew_lock(redis, token: str) -> None:  # type: ignore[no-untyped-def]
    while True:
        await asyncio.sleep(LOCK_TTL / 3)
        if await redis.get(LOCK_KEY) != token.encode():
            raise RuntimeError("lost the worker lock")
        await redis.expire(LOCK_KEY, LOCK_TTL)


async def run_worker(settings: Settings, *, once: bool = False) -> int:
    from insider_selling.app import build_source

    store = await open_store(
        settings.mongodb_uri, settings.mongodb_database, snapshot_retention_days=settings.snapshot_retention_days
    )
    source = build_source(settings)
    redis = None
    token = secrets.token_hex(8)
    renew: asyncio.Task[None] | None = None
    try:
        if settings.redis_url:
            import redis.asyncio as aioredis

            redis = aioredis.from_url(settings.redis_url)
            await _hold_lock(redis, token)
            renew = asyncio.create_task(_renew_lock(redis, token))
        pipeline = ScoringPipeline(store.db, load_model_config(), source=source.name)
        cycle = Cycle(source, SnapshotStore(store.db), pipeline, history_hours=settings.history_hours)
        result = await cycle.prime(datetime.now(UTC))
        log.info("primed", extra={"run_id": result.run_id, "status": result.status})
        if once:
            return 0 if result.status == "succeeded" else 1
        await Scheduler(cycle, settings.score_interval_seconds).run_forever()
        return 0
    finally:
        if renew is not None:
            renew.cancel()
            with contextlib.suppress(Exception):
                await _release_lock(redis, token)
        await source.aclose()
        if redis is not None:
            await redis.aclose()
        await store.aclose()
