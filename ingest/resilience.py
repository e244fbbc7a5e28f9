"""Retries with jitter, a per-host request spacer, and a per-venue circuit breaker."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["CircuitBreaker", "HostLimiter", "RetryPolicy", "Timeouts", "with_retries"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``request`` bounds one HTTP exchange; ``venue`` one venue's whole phase;
    ``cycle`` one whole ingest cycle (every venue and provider together)."""

    connect: float = 5.0
    read: float = 10.0
    venue: float = 60.0
    cycle: float = 240.0

    @property
    def request(self) -> float:
        return self.connect + self.read


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` tries in all; the n-th wait is uniform in ``[0, min(cap, base * 2**n)]``
    ("full jitter"), so venues that fail together do not retry together."""

    attempts: int = 3
    base_delay: float = 0.25
    max_delay: float = 2.0


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    retryable: Callable[[BaseException], bool],
    *,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run ``call``; on a retryable error wait with jitter and try again, up to the policy."""
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            attempt += 1
            if attempt >= policy.attempts or not retryable(exc):
                raise
            await sleep(rng.uniform(0, min(policy.max_delay, policy.base_delay * 2**attempt)))


@dataclass(slots=True)
class HostLimiter:
    """Spaces requests to one host at least ``min_interval`` seconds apart (one per venue)."""

    min_interval: float
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _next: float = 0.0

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._next > now:
                await asyncio.sleep(self._next - now)
            self._next = max(now, self._next) + self.min_interval


@dataclass(slots=True)
class CircuitBreaker:
    """Opens after ``threshold`` consecutive failed cycles; while open the venue is skipped.
    After ``cooldown`` seconds one trial cycle is let through (half-open)."""

    threshold: int = 3
    cooldown: float = 900.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None

    def allow(self) -> bool:
        if self.opened_at is None:
            return True
        return self.clock() - self.opened_at >= self.cooldown

    def record(self, ok: bool) -> None:
        if ok:
            self.failures, self.opened_at = 0, None
            return
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = self.clock()
