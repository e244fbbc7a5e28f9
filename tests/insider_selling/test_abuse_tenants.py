"""Issue 9, defect 10: one scheduler, really. The worker lock is renewed atomically, a worker that
loses it stops scoring at once, and run commits are fenced: a stale worker's run cannot commit
after a newer lock holder's has."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from ingest.demo import DemoConfig, DemoSource
from ingest.storage import SnapshotStore
from insider_selling import worker
from insider_selling.redis_client import connect_redis
from scoring.config import load_model_config
from scoring.pipeline import ScoringPipeline
from store import StoreHandle
from tests.helpers import make_settings

AT = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture(params=["single", "cluster"])
def any_redis(request: pytest.FixtureRequest) -> str:
    """One Redis node, then a 3-node Redis Cluster: the lock works on both."""
    name = "redis_url" if request.param == "single" else "redis_cluster_url"
    url: str = request.getfixturevalue(name)
    return url


async def test_a_stale_fencing_token_cannot_commit(store: StoreHandle) -> None:
    batch = await DemoSource(DemoConfig(seed=3, coins=20)).backfill(AT, 192)
    await SnapshotStore(store.db).write_batch(batch)
    stale = ScoringPipeline(store.db, load_model_config(), fencing_token=1)
    current = ScoringPipeline(store.db, load_model_config(), fencing_token=2)
    first = await stale.run(AT)  # token 1 commits while it is the newest
    assert first.status == "succeeded"
    newer = await current.run(AT + timedelta(minutes=30))  # a newer lock holder commits
    assert newer.status == "succeeded"
    late = await stale.run(AT + timedelta(minutes=60))  # the old holder, still running
    assert late.status == "failed" and "fencing" in (late.error or "")
    run = await current.runs.latest_succeeded()
    assert run is not None and run["run_id"] == newer.run_id and run["fencing_token"] == 2
    assert await current.runs.run_scores(late.run_id) == []  # nothing of it is visible
    assert (await current.run(AT + timedelta(minutes=90))).status == "succeeded"  # the holder goes on


@pytest.mark.redis
async def test_lock_acquisitions_carry_increasing_fencing_tokens(any_redis: str) -> None:
    client = connect_redis(any_redis)
    try:
        first = worker.WorkerLock(client, ttl=5.0)
        token = await first.acquire()
        second = worker.WorkerLock(client, ttl=5.0)
        waiting = asyncio.create_task(second.acquire(poll=0.05))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # one holder at a time
        await first.release()
        assert await asyncio.wait_for(waiting, 5) > token
        assert not await first.renew()  # no longer ours: renewal neither succeeds nor extends it
        assert 4000 < await client.pttl(worker.LOCK_KEY) <= 5000
        await second.release()
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_a_worker_that_loses_its_lock_stops_scoring(any_redis: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "LOCK_TTL", 1)  # renewed every 1/3 s
    client = connect_redis(any_redis)
    try:
        settings = make_settings(redis_url=any_redis, demo_coins=10, history_hours=24)  # a quick prime
        task = asyncio.create_task(worker.run_worker(settings))
        deadline = time.monotonic() + 20
        while await client.get(worker.LOCK_KEY) is None:
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.02)
        # the lock expired while this worker stalled, and another worker took it
        await client.set(worker.LOCK_KEY, "another-worker:99", px=60_000)
        lost_at = time.monotonic()
        done, _ = await asyncio.wait({task}, timeout=5)
        assert done, "the worker kept scoring without the lock"
        assert task.result() == 1 and time.monotonic() - lost_at < 2
        assert await client.get(worker.LOCK_KEY) == b"another-worker:99"  # the new holder's lock is untouched
    finally:
        if not task.done():
            task.cancel()
        await client.aclose()
