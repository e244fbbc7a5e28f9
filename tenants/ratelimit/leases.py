"""A worker's lease of a key's tokens: how many it holds and until when, the last answer's limits
(what the headers say), a refusal remembered, and the batch being fetched ahead.

A Redis round trip per request would cost about half the throughput, so a worker *leases* tokens:
one script call charges ``n`` tokens and the worker spends them locally
(:class:`~tenants.ratelimit.limiter.RateLimiter` sizes the batches and fetches the next one ahead)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from tenants.principal import Principal
from tenants.ratelimit.headers import Encoded, available, seconds

__all__ = ["Lease", "encoded", "mark_landed", "set_limit"]


@dataclass(slots=True)
class Lease:
    tokens: int = 0
    want: int = 1
    expires: float = 0.0  # monotonic
    denied_until: float = 0.0  # a refusal is remembered this long (≤ lease_ttl) ...
    denied_cost: int = 1  # ... for requests costing at least this much
    denied_by_quota: bool = False
    retry_at: float = 0.0
    limit: int = 0
    limit_text: bytes = b"0"  # ``limit`` encoded for the header
    remaining: int = 0  # of the binding constraint, after the grant, our unused tokens excluded
    reset_at: float = 0.0  # monotonic
    month: str = ""
    principal: Principal | None = None
    ample: bool = False  # last batch granted in full: prefetch the next one
    landed: asyncio.Future[None] | None = None  # the prefetch in flight: done when it lands
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def prefetching(self) -> bool:
        return self.landed is not None


def encoded(lease: Lease, now: float) -> Encoded:
    return (
        lease.limit_text,
        b"%d" % available(lease.limit, lease.remaining, lease.tokens),
        seconds(lease.reset_at - now),
    )


def mark_landed(lease: Lease, landed: asyncio.Future[None]) -> None:
    """The prefetch that ``landed`` stands for is over: wake every request waiting for it."""
    if lease.landed is landed:
        lease.landed = None
    if not landed.done():
        landed.set_result(None)


def set_limit(lease: Lease, limit: int) -> None:
    if limit != lease.limit:
        lease.limit, lease.limit_text = limit, str(limit).encode()
