"""``insider-selling worker``: ingest and score on the interval grid, outside the API processes.

With ``REDIS_URL`` set, a Redis lock (:class:`WorkerLock`) makes sure one worker is active at a
time; the others wait and take over when the active one stops renewing it.

- Taking the lock and drawing a **fencing token** (``INCR``, so tokens only grow) is one script,
  and renewing it is one compare-and-expire script: a worker never extends a lock it no longer
  holds.
- Every ``ttl / 3`` seconds the holder renews; when a renewal finds the lock gone or someone else's,
  or Redis stays unreachable until the lock would have expired, the lock is **lost**: the running
  cycle is cancelled and the worker exits with status 1 (its supervisor restarts it as a standby).
- Each run carries the holder's fencing token, and a run commits only if no run with a newer token
  has committed (see :meth:`scoring.runs.RunStore.succeed`), so a worker that stalled past its
  lock and wakes up cannot overwrite the newer holder's results.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

from insider_selling.builders import (
    build_cycle,
    build_dispatcher,
    build_redis,
    build_scheduler,
    build_source,
    build_store,
    build_webhook_config,
)
from insider_selling.settings import Settings
from webhooks import Dispatcher

__all__ = ["FENCE_KEY", "LOCK_KEY", "LockLost", "WorkerLock", "run_worker"]

log = logging.getLogger("insider_selling.worker")
LOCK_KEY = "insider:worker:lock"
# hashed like LOCK_KEY (the braces name the whole lock key): the same Redis Cluster slot
FENCE_KEY = "{insider:worker:lock}:fence"
LOCK_TTL = 60
T = TypeVar("T")

_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LockLost(Exception):
    """Raised when this worker no longer holds the worker lock: it must stop scoring."""


class WorkerLock:
    """The one-active-worker lock, with a fencing token per acquisition."""

    def __init__(
        self, redis: Any, *, key: str = LOCK_KEY, fence_key: str = FENCE_KEY, ttl: float | None = None
    ) -> None:
        self.redis = redis
        self.key = key
        self.fence_key = fence_key
        self.ttl = float(LOCK_TTL if ttl is None else ttl)
        self.holder = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self.token: int | None = None
        self.lost = asyncio.Event()
        self._value = ""

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    async def acquire(self, poll: float | None = None) -> int:
        """Wait until the lock is ours; returns its fencing token (greater than every earlier one)."""
        while True:
            token = int(await self.redis.eval(_ACQUIRE, 2, self.key, self.fence_key, self.holder, self._ttl_ms))
            if token:
                self.token, self._value = token, f"{self.holder}:{token}"
                self.lost.clear()
                return token
            log.info("another worker holds the lock; waiting")
            await asyncio.sleep(self.ttl / 3 if poll is None else poll)

    async def renew(self) -> bool:
        """Extend the lock if it is still ours (atomically); ``False`` when it is not."""
        return bool(self._value) and bool(await self.redis.eval(_RENEW, 1, self.key, self._value, self._ttl_ms))

    async def release(self) -> None:
        """Give the lock back at once (only if still ours), so a standby worker takes over now."""
        if self._value:
            await self.redis.eval(_RELEASE, 1, self.key, self._value)
            self._value = ""

    async def keep(self) -> None:
        """Renew every ``ttl / 3`` s until cancelled; set :attr:`lost` and return when the lock is
        someone else's, or when Redis stayed unreachable until it would have expired."""
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                if not await self.renew():
                    log.error("lost the worker lock: another worker holds it; scoring stops")
                    break
                renewed = time.monotonic()
            except Exception as exc:
                if time.monotonic() - renewed >= self.ttl * 0.9:
                    log.error(
                        "lost the worker lock: Redis unreachable for %.0f s; scoring stops",
                        time.monotonic() - renewed,
                        extra={"error": type(exc).__name__},
                    )
                    break
                log.warning("worker lock renewal failed; retrying", extra={"error": type(exc).__name__})
        self._value = ""
        self.lost.set()

    async def guard(self, work: Awaitable[T]) -> T:
        """Run ``work`` while the lock is held; cancel it and raise :class:`LockLost` when it is lost."""
        task = asyncio.ensure_future(work)
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():  # the lock was lost, or this worker is being stopped
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            lost.cancel()
        if not task.done() or task.cancelled():
            raise LockLost("the worker lock was lost")
        return task.result()


async def _deliver_once(dispatcher: Dispatcher) -> None:
    await dispatcher.pass_once()
    await dispatcher.idle()


async def run_worker(settings: Settings, *, once: bool = False) -> int:
    """Returns the exit status: 0, or 1 when the run failed (``once``) or the lock was lost."""
    async with contextlib.AsyncExitStack() as stack:
        store = await build_store(settings)
        stack.push_async_callback(store.aclose)
        source = build_source(settings)
        stack.push_async_callback(source.aclose)
        dispatcher = build_dispatcher(store, build_webhook_config(settings))
        if dispatcher is not None:
            stack.push_async_callback(dispatcher.aclose)
        lock: WorkerLock | None = None
        redis = build_redis(settings, patient=True)
        if redis is not None:
            stack.push_async_callback(redis.aclose)
            lock = WorkerLock(redis)
            stack.push_async_callback(_release, lock)
            await lock.acquire()
            keeper = asyncio.create_task(lock.keep(), name="worker-lock")
            stack.push_async_callback(_stop, keeper)
        cycle = build_cycle(settings, store, source, fencing_token=lock.token if lock else None)

        async def guarded(work: Awaitable[T]) -> T:
            return await (lock.guard(work) if lock is not None else work)

        try:
            result = await guarded(cycle.prime(datetime.now(UTC)))
            log.info("primed", extra={"run_id": result.run_id, "status": result.status})
            if once:
                if dispatcher is not None:  # the run's webhooks: one pass, first attempts only
                    await guarded(_deliver_once(dispatcher))
                return 0 if result.status == "succeeded" else 1

            async def schedule() -> None:
                # the webhook delivery worker runs beside the scheduler, under the same lock
                jobs = [build_scheduler(settings, cycle).run_forever()]
                if dispatcher is not None:
                    jobs.append(dispatcher.run_forever())
                await asyncio.gather(*jobs)

            await guarded(schedule())
            return 0
        except LockLost:
            return 1


async def _release(lock: WorkerLock) -> None:
    with contextlib.suppress(Exception):
        await lock.release()


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
