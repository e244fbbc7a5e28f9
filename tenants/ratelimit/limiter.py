"""The rate limiter: per key, per tenant and per month, spending leased tokens locally, fetching the
next batch ahead, and carrying on (or refusing) when Redis is unreachable."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tenants.errors import LimiterUnavailable, QuotaExceeded, RateLimited
from tenants.principal import Principal
from tenants.ratelimit.backends import LocalBackend, RedisBackend
from tenants.ratelimit.grants import Backend, Grant, Request, month_window
from tenants.ratelimit.headers import Encoded, available, decoded, headers, seconds
from tenants.ratelimit.leases import Lease, encoded, mark_landed, set_limit

__all__ = ["BACKEND_ERRORS", "RateLimiter", "StoredUsage", "Unseeded", "request_of"]

log = logging.getLogger("insider_selling.ratelimit")

BACKEND_ERRORS = (OSError, asyncio.TimeoutError, RedisConnectionError, RedisTimeoutError)
StoredUsage = Callable[[str, str], Awaitable[int]]


class Unseeded(Exception):
    """Raised inside the limiter when Redis has no monthly counter and needs the stored usage."""


class RateLimiter:
    """Per key, per tenant and per month, with leases. ``backend`` is a :class:`RedisBackend`
    (shared) or a :class:`LocalBackend` (this process only)."""

    def __init__(
        self,
        backend: Backend,
        *,
        lease_max: int = 128,
        lease_ttl: float = 1.0,
        failure_mode: Literal["open", "closed"] = "open",
        retry_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        stored_usage: StoredUsage | None = None,
    ) -> None:
        """``stored_usage(tenant_id, month)`` reads the month's usage from the store: the quota
        starts from it when the backend has no count (Redis restarted, a new process)."""
        self.backend = backend
        self.stored_usage = stored_usage
        self.fallback = LocalBackend()
        self.lease_max = max(1, lease_max)
        self.lease_ttl = lease_ttl
        self.failure_mode = failure_mode
        self.retry_interval = retry_interval
        self._clock = clock
        self._leases: dict[str, Lease] = {}
        self._down_until = 0.0
        self.usage: Counter[tuple[str, str]] = Counter()  # (tenant, month) -> requests not yet flushed
        self.backend_errors = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def shared(self) -> bool:
        return isinstance(self.backend, RedisBackend)

    async def check(self, principal: Principal, cost: int = 1) -> dict[str, str]:
        """Charge one request; return the RateLimit-* headers or raise :class:`RateLimited`."""
        return decoded(await self.check_encoded(principal, cost))

    def take(self, principal: Principal, cost: int = 1) -> Encoded | None:
        """The hot path, without I/O: charge ``cost`` from this worker's lease of the key and return
        the header values, or ``None`` when the lease cannot cover it (then :meth:`check_encoded`
        decides, refusal included). Exactly what :meth:`check` does when the lease has the tokens."""
        lease = self._leases.get(principal.key_id)
        if lease is None or lease.tokens < cost:
            return None
        now = self._clock()
        if now >= lease.expires:
            return None
        lease.tokens -= cost
        self.usage[(principal.tenant_id, lease.month)] += cost
        if lease.ample and lease.tokens <= lease.want and not lease.prefetching:
            self._start_prefetch(principal, lease)
        return encoded(lease, now)

    async def check_encoded(self, principal: Principal, cost: int = 1) -> Encoded:
        """:meth:`check`, with the header values encoded (see :data:`Encoded`)."""
        taken = self.take(principal, cost)
        if taken is not None:
            return taken
        lease = self._leases.get(principal.key_id)
        if lease is not None and lease.landed is not None:
            # the next batch is on its way: wait for it together with every other request that ran
            # out (one wake-up for all), not one by one through the lock
            await asyncio.shield(lease.landed)
            taken = self.take(principal, cost)
            if taken is not None:
                return taken
        if lease is None:
            lease = self._leases[principal.key_id] = Lease()
            if len(self._leases) > 100_000:
                self._leases = {k: v for k, v in self._leases.items() if v.tokens}
                self._leases[principal.key_id] = lease
        async with lease.lock:
            return await self._refill(principal, lease, cost)

    def _start_prefetch(self, principal: Principal, lease: Lease) -> None:
        """Lease the next batch before this one runs out, so that no request waits for Redis."""
        landed = lease.landed = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._prefetch(principal, lease))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: mark_landed(lease, landed))  # also when cancelled before it ran

    async def _prefetch(self, principal: Principal, lease: Lease) -> None:
        try:
            async with lease.lock:
                if lease.tokens > lease.want or self._clock() >= lease.expires:
                    return  # a refill happened meanwhile, or the lease is gone
                try:
                    grant = await self._acquire(request_of(principal), lease.want, 0)
                except LimiterUnavailable:
                    return
                now = self._clock()
                if grant.granted:
                    limit, remaining, reset = grant.binding(request_of(principal))
                    lease.tokens += grant.granted
                    lease.expires = now + self.lease_ttl
                    lease.remaining, lease.reset_at = remaining, now + reset
                    set_limit(lease, limit)
                lease.ample = grant.granted >= lease.want
                if lease.ample:  # demand keeps up with the batches: grow them
                    lease.want = min(self.lease_max, lease.want * 2)
        finally:  # wakes the waiters a turn before the task's done callback would
            if lease.landed is not None:
                mark_landed(lease, lease.landed)

    async def _refill(self, principal: Principal, lease: Lease, cost: int) -> Encoded:
        now = self._clock()
        if lease.tokens >= cost and now < lease.expires:  # another request refilled it meanwhile
            lease.tokens -= cost
            self.usage[(principal.tenant_id, lease.month)] += cost
            return encoded(lease, now)
        if now < lease.denied_until and cost >= lease.denied_cost:
            error = QuotaExceeded if lease.denied_by_quota else RateLimited
            raise error(lease.retry_at - now, headers(lease.limit, 0, max(lease.reset_at, lease.retry_at) - now))
        expired_unused = lease.tokens if now >= lease.expires else 0
        if now < lease.expires:  # used up within its lifetime: lease more next time
            lease.want = min(self.lease_max, lease.want * 2)
        elif expired_unused:
            lease.want = 1
        lease.principal = principal
        req = request_of(principal)
        want = max(cost, lease.want)
        grant = await self._acquire(req, want, lease.tokens, cost)
        lease.tokens = 0
        now = self._clock()
        limit, remaining, reset = grant.binding(req)
        lease.remaining, lease.reset_at = remaining, now + reset
        set_limit(lease, limit)
        lease.month = month_window(datetime.now(UTC))[0]
        if grant.granted < cost:  # refused: nothing was charged
            lease.retry_at = now + grant.retry_after
            lease.denied_until = now + min(grant.retry_after, self.lease_ttl)
            lease.denied_cost = cost
            lease.denied_by_quota = grant.quota_remaining < cost
            error = QuotaExceeded if lease.denied_by_quota else RateLimited
            raise error(grant.retry_after, headers(limit, remaining, max(reset, grant.retry_after)))
        lease.tokens = grant.granted - cost
        lease.expires = now + self.lease_ttl
        # the backend had plenty (it granted the whole batch): refill ahead of need from now on
        lease.ample = self.shared and want >= 8 and grant.granted >= want
        self.usage[(principal.tenant_id, lease.month)] += cost
        return lease.limit_text, b"%d" % available(limit, remaining, lease.tokens), seconds(reset)

    async def _acquire(self, req: Request, want: int, give_back: int, need: int = 1) -> Grant:
        backend = self.backend
        if isinstance(backend, LocalBackend):  # in-process limits: the month starts from the store
            await self._seed_local(backend, req)
            return backend.acquire_now(req, want, give_back, need)
        if self._clock() < self._down_until:
            return await self._degraded(req, want, give_back, need)
        try:
            grant = await backend.acquire(req, want, give_back, need, -1 if self.stored_usage else 0)
            if grant is None:  # Redis lost the month's counter: start it from the stored usage
                seed = await self._stored(req.tenant_id, self.fallback.month())
                grant = await backend.acquire(req, want, give_back, need, seed)
            if grant is None:
                raise Unseeded
        except (*BACKEND_ERRORS, Unseeded) as exc:
            self.backend_errors += 1
            self._down_until = self._clock() + self.retry_interval
            log.warning(
                "rate limit store unreachable; failure mode %s", self.failure_mode, extra={"error": type(exc).__name__}
            )
            return await self._degraded(req, want, give_back, need)
        self.fallback.mirror(req, grant)
        return grant

    async def _degraded(self, req: Request, want: int, give_back: int, need: int = 1) -> Grant:
        if self.failure_mode == "closed":
            raise LimiterUnavailable(max(0.0, self._down_until - self._clock()) or self.retry_interval)
        await self._seed_local(self.fallback, req)
        return self.fallback.acquire_now(req, want, give_back, need)

    async def _seed_local(self, local: LocalBackend, req: Request) -> None:
        month = local.month()
        if self.stored_usage is not None and not local.has_usage(req.tenant_id, month):
            local.seed_usage(req.tenant_id, month, await self._stored(req.tenant_id, month))

    async def _stored(self, tenant_id: str, month: str) -> int:
        """The month's usage as far as this worker knows: stored, plus its own not yet written."""
        stored = 0
        if self.stored_usage is not None:
            try:
                stored = await self.stored_usage(tenant_id, month)
            except Exception as exc:
                log.warning(
                    "stored usage unreadable; the quota starts from this worker's count",
                    extra={"error": type(exc).__name__, "tenant_id": tenant_id},
                )
        return stored + self.pending_usage(tenant_id, month)

    async def drain(self) -> None:
        """Wait for the batches being fetched ahead (tests; shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def sweep(self, *, everything: bool = False) -> int:
        """Give back the unused tokens of expired leases (of all leases with ``everything``, at
        shutdown); returns how many tokens."""
        returned = 0
        for lease in list(self._leases.values()):
            if not lease.tokens or lease.principal is None or (not everything and self._clock() < lease.expires):
                continue
            async with lease.lock:
                back = lease.tokens
                if not back or (not everything and self._clock() < lease.expires):
                    continue
                lease.tokens, lease.want = 0, 1
                try:
                    await self._acquire(request_of(lease.principal), 0, back)
                except LimiterUnavailable:
                    continue
                returned += back
        return returned

    def take_usage(self) -> dict[tuple[str, str], int]:
        """The request counts since the last call, for the batched ``usage`` write."""
        pending, self.usage = dict(self.usage), Counter()
        return pending

    def pending_usage(self, tenant_id: str, month: str) -> int:
        return self.usage.get((tenant_id, month), 0)


def request_of(principal: Principal) -> Request:
    return Request(
        principal.key_id, principal.tenant_id, principal.key_per_minute, principal.per_minute, principal.per_month
    )
