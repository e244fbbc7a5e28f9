"""`insider-selling worker`: one active worker at a time, by a Redis lock."""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis

from insider_selling.worker import LOCK_KEY, run_worker
from tests.helpers import make_settings


async def test_worker_once_scores_and_gives_the_lock_back(redis_url: str) -> None:
    settings = make_settings(redis_url=redis_url, demo_coins=30)
    assert await run_worker(settings, once=True) == 0
    client = aioredis.from_url(redis_url)
    try:
        assert await client.get(LOCK_KEY) is None
    finally:
        await client.aclose()


async def test_a_second_worker_waits_for_the_lock(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        await client.set(LOCK_KEY, "another-worker", ex=60)
        task = asyncio.create_task(run_worker(make_settings(redis_url=redis_url, demo_coins=30), once=True))
        await asyncio.sleep(0.5)
        assert not task.done()  # still waiting: the other worker holds the lock
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert await client.get(LOCK_KEY) == b"another-worker"  # never taken, never released
    finally:
        await client.aclose()
