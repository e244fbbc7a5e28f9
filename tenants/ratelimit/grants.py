"""The vocabulary every part of the limiter shares: a request's three limits, a backend's grant,
the backend protocol, and the GCRA arithmetic's units (microseconds, the UTC month)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["DIVISOR", "MICRO", "Backend", "Grant", "Request", "interval_us", "month_window"]

MICRO = 1_000_000
DIVISOR = 8  # a lease is at most 1/DIVISOR of what is left


def month_window(now: datetime) -> tuple[str, int]:
    """The UTC month's id (``2026-11``) and the whole seconds left in it."""
    start_next = (
        datetime(now.year + 1, 1, 1, tzinfo=UTC)
        if now.month == 12
        else datetime(now.year, now.month + 1, 1, tzinfo=UTC)
    )
    return f"{now.year:04d}-{now.month:02d}", max(1, math.ceil((start_next - now).total_seconds()))


def interval_us(per_minute: int) -> int:
    """GCRA emission interval in whole microseconds (rounded up: never faster than the limit)."""
    return -(-60 * MICRO // per_minute)


@dataclass(frozen=True, slots=True)
class Request:
    key_id: str
    tenant_id: str
    key_per_minute: int
    tenant_per_minute: int
    per_month: int


@dataclass(frozen=True, slots=True)
class Grant:
    """One answer of a backend: ``granted`` tokens (0 = refused) and the state of the buckets."""

    granted: int
    key_remaining: int
    key_reset: float  # seconds until the key's bucket is full again
    tenant_remaining: int
    tenant_reset: float
    quota_remaining: int
    month_reset: float
    retry_after: float  # seconds until one token is available, when refused

    def binding(self, req: Request) -> tuple[int, int, float]:
        """(limit, remaining, reset) of the tightest of the three constraints."""
        options = [
            (self.key_remaining, req.key_per_minute, self.key_reset),
            (self.tenant_remaining, req.tenant_per_minute, self.tenant_reset),
            (self.quota_remaining, req.per_month, self.month_reset),
        ]
        remaining, limit, reset = min(options, key=lambda o: (o[0], -o[2]))
        return limit, max(0, remaining), reset


class Backend(Protocol):
    async def acquire(self, req: Request, want: int, give_back: int, need: int = 1, seed: int = 0) -> Grant | None: ...
