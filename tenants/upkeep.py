"""The background chores of one web worker: give back expired rate-limit leases, and write
``last_used_at`` and monthly usage in batches (so no request ever waits on a store write)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from tenants.auth import Authenticator
from tenants.ratelimit import RateLimiter
from tenants.repository import TenantRepository

__all__ = ["flush", "run_upkeep"]

log = logging.getLogger("insider_selling.upkeep")


async def flush(
    authenticator: Authenticator, limiter: RateLimiter | None, repo: TenantRepository, *, final: bool = False
) -> None:
    """Write the pending ``last_used_at`` values and usage counts; at shutdown (``final``) also give
    back every leased token."""
    await authenticator.flush_last_used()
    if limiter is not None:
        if final:
            await limiter.drain()
            with contextlib.suppress(Exception):
                await limiter.sweep(everything=True)
        pending = limiter.take_usage()
        try:
            await repo.add_usage(pending)
        except Exception:
            for key, count in pending.items():  # keep them for the next flush
                limiter.usage[key] += count
            raise


async def run_upkeep(
    authenticator: Authenticator,
    limiter: RateLimiter | None,
    repo: TenantRepository,
    *,
    flush_seconds: float = 5.0,
    tick: float = 0.25,
) -> None:
    """Run until cancelled."""
    next_flush = time.monotonic() + flush_seconds
    while True:
        await asyncio.sleep(tick)
        if limiter is not None:
            with contextlib.suppress(Exception):
                await limiter.sweep()
        if time.monotonic() >= next_flush:
            next_flush = time.monotonic() + flush_seconds
            try:
                await flush(authenticator, limiter, repo)
            except Exception as exc:
                log.warning("usage flush failed", extra={"error": type(exc).__name__})
