"""Rate limits: GCRA per key and per tenant, and a monthly quota per tenant.

**Semantics.** Each bucket allows ``limit`` requests at once (the burst) and then one every
``60 / limit`` seconds: a token bucket of capacity ``limit`` refilled at ``limit`` per minute, kept
as GCRA's single "theoretical arrival time" (TAT). A request needs a token from the key's bucket,
from the tenant's bucket and from the tenant's monthly quota (calendar month, UTC); all three are
checked and charged together, atomically, in one Lua script (:data:`ACQUIRE`), with Redis's own
clock so that workers' clocks do not matter. Without Redis, :class:`LocalBackend` applies the same
arithmetic inside one process.

**The hot path.** A Redis round trip per request would cost about half the throughput, so a worker
*leases* tokens: one script call charges ``n`` tokens and the worker spends them locally.

- ``n`` starts at 1 for a key and doubles (up to ``lease_max``, default 128) each time a lease is
  used up within its lifetime; an idle key therefore never holds more than one token.
- ``n`` is never more than an eighth of what is left in the tightest of the three buckets (and at
  least 1), so near a limit every request goes to Redis and the limit is exact there.
- While a key's batch was granted in full, the next one is fetched in the background as soon as
  the current one is being spent (double buffering), so requests do not wait for Redis: on a
  saturated machine a Redis answer takes long to come back through a busy event loop.
- A lease lives ``lease_ttl`` seconds (default 1); unused tokens are then given back (TAT moved
  back, quota decremented) by the next call for that key or by :meth:`RateLimiter.sweep`, and all
  of them at shutdown.

**Accuracy bound.** Tokens are charged in Redis before they are spent, so the cluster never admits
more than the limit allows over a window, plus the tokens workers held when the window began: at
most ``2 × lease_max`` per worker and key, each batch at most 1/8 of what the bucket had left, and
none once a bucket is within ``16`` tokens of empty (there leases are single tokens, charged per
request). The opposite error, a request
refused while another worker still holds unused tokens, is bounded by those same leases (each
at most 1/8 of what was left when it was taken) and lasts at most ``lease_ttl``. Headers are
computed locally from the last Redis answer: ``RateLimit-Remaining`` may lag other workers' use by
up to their leases.

**Redis unreachable.** ``failure_mode="open"`` (the default) falls back to the in-process limiter,
so each worker enforces the limits on its own traffic (a cluster of N workers admits at most N times
the limit) until Redis answers again; the fallback continues from the state Redis last reported
for each key and tenant (and a month it never saw starts from the stored usage), so an outage does
not hand each worker a fresh burst. ``"closed"`` refuses requests with 503 and ``Retry-After``.
Redis is retried at most once per ``retry_interval`` seconds, so an outage costs one timeout, not
one per request; a pooled connection that died with a restarted server is replaced within the call
(one retry on a connection error), so the first call after Redis is back succeeds.

**Durable quotas.** The monthly counter lives in Redis, but the ``usage`` collection is the record:
when Redis has no counter for a tenant's month (restarted without persistence, flushed), the
script answers "seed" and the limiter calls it again with the stored usage plus this worker's
unwritten count, so a restart does not reset anyone's quota.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tenants.errors import LimiterUnavailable, QuotaExceeded, RateLimited
from tenants.principal import Principal

__all__ = ["ACQUIRE", "Encoded", "Grant", "LocalBackend", "RateLimiter", "RedisBackend", "month_window"]

log = logging.getLogger("insider_selling.ratelimit")

MICRO = 1_000_000
DIVISOR = 8  # a lease is at most 1/DIVISOR of what is left
BACKEND_ERRORS = (OSError, asyncio.TimeoutError, RedisConnectionError, RedisTimeoutError)
StoredUsage = Callable[[str, str], Awaitable[int]]

# KEYS: key bucket, tenant bucket, month counter.
# ARGV: key interval µs, key limit, tenant interval µs, tenant limit, quota, seconds to month end,
#       tokens wanted, divisor, tokens to give back (a previous lease's unused ones), tokens needed
#       (the request's cost: fewer is a refusal), the month's usage to start from when Redis has no
#       counter (after a restart or a flush; -1: unknown, then the answer is "seed" and nothing changes).
# Returns "granted key_remaining key_reset_µs tenant_remaining tenant_reset_µs quota_remaining
#          retry_after_µs": one bulk string is much cheaper to read than an array of seven.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local kT, kL = tonumber(ARGV[1]), tonumber(ARGV[2])
local tT, tL = tonumber(ARGV[3]), tonumber(ARGV[4])
local quota, month_left = tonumber(ARGV[5]), tonumber(ARGV[6])
local want, div, back = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local need = tonumber(ARGV[10])
local seed = tonumber(ARGV[11])
local function tat_of(key)
  local v = tonumber(redis.call('GET', key) or '0')
  if v < now then return now end
  return v
end
local ktat, ttat = tat_of(KEYS[1]), tat_of(KEYS[2])
local stored = redis.call('GET', KEYS[3])
if not stored and seed < 0 then return 'seed' end
local used = tonumber(stored or seed)
if back > 0 then
  ktat = math.max(now, ktat - back * kT)
  ttat = math.max(now, ttat - back * tT)
  used = math.max(0, used - back)
end
local ka = math.floor((kT * kL - (ktat - now)) / kT)
local ta = math.floor((tT * tL - (ttat - now)) / tT)
local qa = quota - used
local avail = math.min(ka, ta, qa)
local n = 0
local retry = 0
if avail < need or avail < 1 then
  if ka < need then retry = math.max(retry, ktat + need * kT - kT * kL - now) end
  if ta < need then retry = math.max(retry, ttat + need * tT - tT * tL - now) end
  if qa < need then retry = math.max(retry, month_left * 1000000) end
elseif want > 0 then
  n = math.min(want, math.max(need, math.floor(avail / div)))
  ktat = ktat + n * kT
  ttat = ttat + n * tT
  used = used + n
end
if n > 0 or back > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', ktat), 'PX', math.floor((ktat - now) / 1000) + 1000)
  redis.call('SET', KEYS[2], string.format('%.0f', ttat), 'PX', math.floor((ttat - now) / 1000) + 1000)
end
if n > 0 or back > 0 or not stored then
  redis.call('SET', KEYS[3], used, 'EX', month_left + 86400)
end
return string.format('%.0f %.0f %.0f %.0f %.0f %.0f %.0f', n, ka - n, ktat - now, ta - n, ttat - now, qa - n,
                     retry)
"""


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


class Unseeded(Exception):
    """Raised inside the limiter when Redis has no monthly counter and needs the stored usage."""


class RedisBackend:
    """The shared limiter: one EVALSHA per lease.

    The calls go over a *lane*: one connection checked out of the client's pool for this backend,
    with the command packed here and a one-string answer, which costs the event loop well under half
    of what redis-py's script helper does per call (that cost is paid by the requests served
    meanwhile). While the lane is busy, or when it fails (connection lost, script not loaded), the
    call goes through ``redis.register_script`` as usual, with redis-py's retries and script
    loading; a timeout on the lane is an outage like any other. The lane's connection stays in the
    client's pool, so closing the client closes it.

    On a Redis Cluster (``redis.asyncio.cluster.RedisCluster``, which has no single pool) there is
    one lane per node, a connection of that node's own pool, and a call takes the lane of the node
    that owns the tenant's slot (the three keys share a hash tag, so one slot). A slot that moved
    answers MOVED on the lane; the call then goes the usual way, which follows it and refreshes the
    cluster's slot table, so the next call takes the new owner's lane."""

    def __init__(self, redis: Any, prefix: str = "insider:rl") -> None:
        self.redis = redis
        self.prefix = prefix
        self._script = redis.register_script(ACQUIRE)
        self._lane: Any = None
        self._node_lanes: dict[str, Any] = {}  # Redis Cluster: node name -> its lane connection
        self._lane_busy = False
        self.lane_calls = 0
        self._second, self._month = -1, ("", 0)
        self.calls = 0

    async def acquire(self, req: Request, want: int, give_back: int, need: int = 1, seed: int = 0) -> Grant | None:
        """The grant, or ``None`` when ``seed`` is -1 and Redis has no counter for the month (then
        call again with the month's stored usage as ``seed``)."""
        second = int(time.time())
        if second != self._second:  # month_window's seconds are whole: one value per second
            self._second = second
            self._month = month_window(datetime.fromtimestamp(second, UTC))
        month, month_left = self._month
        self.calls += 1
        # one hash tag per tenant: the three keys share a Redis Cluster slot
        tag = f"{self.prefix}:{{{req.tenant_id}}}:"
        keys = (f"{tag}k:{req.key_id}", f"{tag}t", f"{tag}q:{month}")
        args = (
            interval_us(req.key_per_minute),
            req.key_per_minute,
            interval_us(req.tenant_per_minute),
            req.tenant_per_minute,
            req.per_month,
            month_left,
            want,
            DIVISOR,
            give_back,
            min(need, want),
            seed,
        )
        out = None if self._lane_busy else await self._on_lane(keys, args)
        if out is None:
            try:
                out = await self._script(keys=list(keys), args=list(args))
            except RedisConnectionError:  # a pooled connection that died with a restarted server: once more
                out = await self._script(keys=list(keys), args=list(args))
        values = out.split()
        if len(values) == 1:  # "seed"
            return None
        n, kr, kreset, tr, treset, qr, retry = (int(v) for v in values)
        return Grant(n, kr, kreset / MICRO, tr, treset / MICRO, qr, float(month_left), retry / MICRO)

    async def _lane_for(self, key: str) -> Any:
        """The lane's connection: one checked out of the client's pool, or on a Redis Cluster one
        per node, taken from the node that owns ``key``'s slot (the three keys share it). ``None``
        while a cluster client has not yet learnt the slots (its first call goes the usual way)."""
        pool = getattr(self.redis, "connection_pool", None)
        if pool is not None:
            if self._lane is None:
                self._lane = await pool.get_connection()
            return self._lane
        nodes = getattr(self.redis, "nodes_manager", None)
        if nodes is None or not nodes.slots_cache:
            return None
        node = self.redis.get_node_from_key(key)
        lane = self._node_lanes.get(node.name)
        if lane is None:
            # a connection of the node's own pool, never given back: closing the client closes it
            lane = self._node_lanes[node.name] = node.acquire_connection()
        return lane

    async def _on_lane(self, keys: tuple[str, ...], args: tuple[int, ...]) -> bytes | str | None:
        """The script's answer over the lane, or ``None`` when the lane cannot give it (busy,
        connection lost twice, script not loaded, or on a cluster a slot that moved: the usual
        path then follows the redirection and refreshes the slots)."""
        self._lane_busy = True
        try:
            lane = await self._lane_for(keys[0])
            if lane is None:
                return None
            # EVALSHA sha 3 keys... args..., in RESP (what redis-py's pack_command would send)
            parts = [key.encode() for key in keys]
            parts.extend(b"%d" % arg for arg in args)
            command = b"*%d\r\n$7\r\nEVALSHA\r\n$%d\r\n%s\r\n$%d\r\n%d\r\n%s" % (
                len(parts) + 3,
                len(self._script.sha),
                self._script.sha.encode(),
                len(str(len(keys))),
                len(keys),
                b"".join([b"$%d\r\n%s\r\n" % (len(part), part) for part in parts]),
            )
            # redis-py disconnects the connection on any error or cancellation between the two
            # calls (no answer is ever left unread on it) and reconnects it on the next send: a
            # connection that died with a restarted server is replaced by the second attempt
            for attempt in (0, 1):
                try:
                    await lane.send_packed_command(command, check_health=False)
                    answer: bytes | str = await lane.read_response()
                    self.lane_calls += 1
                    return answer
                except RedisConnectionError:
                    if attempt:
                        raise
            return None  # pragma: no cover (the loop returns or raises)
        except (RedisConnectionError, ResponseError):  # NOSCRIPT, MOVED, ASK included
            return None
        finally:
            self._lane_busy = False


class LocalBackend:
    """The same arithmetic as :data:`ACQUIRE`, inside one process (no Redis configured, or Redis
    down with ``failure_mode="open"``)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tat: dict[str, int] = {}
        self._used: dict[tuple[str, str], int] = {}
        self._second, self._month = -1, ""

    async def acquire(self, req: Request, want: int, give_back: int, need: int = 1, seed: int = 0) -> Grant | None:
        return self.acquire_now(req, want, give_back, need)

    def month(self) -> str:
        second = int(self._clock())
        if second != self._second:
            self._second, self._month = second, month_window(datetime.fromtimestamp(second, UTC))[0]
        return self._month

    def has_usage(self, tenant_id: str, month: str) -> bool:
        return (tenant_id, month) in self._used

    def seed_usage(self, tenant_id: str, month: str, used: int) -> None:
        """Start the month's count at ``used`` (the stored usage) unless already past it."""
        self._used[(tenant_id, month)] = max(used, self._used.get((tenant_id, month), 0))

    def mirror(self, req: Request, grant: Grant) -> None:
        """Take the state a shared backend reported, so that falling back to this one during an
        outage continues from it instead of granting a fresh burst."""
        now = int(self._clock() * MICRO)
        self._tat["k:" + req.key_id] = now + int(grant.key_reset * MICRO)
        self._tat["t:" + req.tenant_id] = now + int(grant.tenant_reset * MICRO)
        self._used[(req.tenant_id, self.month())] = max(0, req.per_month - grant.quota_remaining)

    def acquire_now(self, req: Request, want: int, give_back: int, need: int = 1) -> Grant:
        need = min(need, want)
        now = int(self._clock() * MICRO)
        month, month_left = month_window(datetime.fromtimestamp(now / MICRO, UTC))
        kT, kL = interval_us(req.key_per_minute), req.key_per_minute
        tT, tL = interval_us(req.tenant_per_minute), req.tenant_per_minute
        kname, tname, qname = "k:" + req.key_id, "t:" + req.tenant_id, (req.tenant_id, month)
        ktat = max(now, self._tat.get(kname, 0))
        ttat = max(now, self._tat.get(tname, 0))
        used = self._used.get(qname, 0)
        if give_back:
            ktat = max(now, ktat - give_back * kT)
            ttat = max(now, ttat - give_back * tT)
            used = max(0, used - give_back)
        ka = (kT * kL - (ktat - now)) // kT
        ta = (tT * tL - (ttat - now)) // tT
        qa = req.per_month - used
        avail = min(ka, ta, qa)
        n, retry = 0, 0
        if avail < need or avail < 1:
            if ka < need:
                retry = max(retry, ktat + need * kT - kT * kL - now)
            if ta < need:
                retry = max(retry, ttat + need * tT - tT * tL - now)
            if qa < need:
                retry = max(retry, month_left * MICRO)
        elif want > 0:
            n = min(want, max(need, avail // DIVISOR))
            ktat += n * kT
            ttat += n * tT
            used += n
        self._tat[kname], self._tat[tname], self._used[qname] = ktat, ttat, used
        if len(self._tat) > 200_000:  # drop buckets that are full again (they hold no state)
            self._tat = {k: v for k, v in self._tat.items() if v > now}
        return Grant(
            n, ka - n, (ktat - now) / MICRO, ta - n, (ttat - now) / MICRO, qa - n, float(month_left), retry / MICRO
        )


@dataclass(slots=True)
class _Lease:
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


def headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(0, remaining)),
        "RateLimit-Reset": str(max(0, math.ceil(reset))),
    }


#: ``(RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset)`` values, encoded for the wire: the same
#: text as :func:`headers` gives.
Encoded = tuple[bytes, bytes, bytes]

_SMALL = tuple(str(i).encode() for i in range(4096))


def _seconds(reset: float) -> bytes:
    whole = math.ceil(reset) if reset > 0 else 0
    return _SMALL[whole] if whole < 4096 else b"%d" % whole


def _encoded(lease: _Lease, now: float) -> Encoded:
    return (
        lease.limit_text,
        b"%d" % _remaining(lease.limit, lease.remaining, lease.tokens),
        _seconds(lease.reset_at - now),
    )


def _remaining(limit: int, remaining: int, held: int) -> int:
    """What the key may still spend: the backend's remaining after the last grant plus this
    worker's unused tokens, at most the limit. A batch fetched ahead while the bucket refilled
    reports a remaining that already counts the refill, and the tokens still held would count again."""
    return min(limit, remaining + held)


def _decoded(values: Encoded) -> dict[str, str]:
    limit, remaining, reset = (v.decode() for v in values)
    return {"RateLimit-Limit": limit, "RateLimit-Remaining": remaining, "RateLimit-Reset": reset}


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
        self._leases: dict[str, _Lease] = {}
        self._down_until = 0.0
        self.usage: Counter[tuple[str, str]] = Counter()  # (tenant, month) -> requests not yet flushed
        self.backend_errors = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def shared(self) -> bool:
        return isinstance(self.backend, RedisBackend)

    async def check(self, principal: Principal, cost: int = 1) -> dict[str, str]:
        """Charge one request; return the RateLimit-* headers or raise :class:`RateLimited`."""
        return _decoded(await self.check_encoded(principal, cost))

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
        return _encoded(lease, now)

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
            lease = self._leases[principal.key_id] = _Lease()
            if len(self._leases) > 100_000:
                self._leases = {k: v for k, v in self._leases.items() if v.tokens}
                self._leases[principal.key_id] = lease
        async with lease.lock:
            return await self._refill(principal, lease, cost)

    def _start_prefetch(self, principal: Principal, lease: _Lease) -> None:
        """Lease the next batch before this one runs out, so that no request waits for Redis."""
        landed = lease.landed = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._prefetch(principal, lease))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: _landed(lease, landed))  # also when cancelled before it ran

    async def _prefetch(self, principal: Principal, lease: _Lease) -> None:
        try:
            async with lease.lock:
                if lease.tokens > lease.want or self._clock() >= lease.expires:
                    return  # a refill happened meanwhile, or the lease is gone
                try:
                    grant = await self._acquire(_request(principal), lease.want, 0)
                except LimiterUnavailable:
                    return
                now = self._clock()
                if grant.granted:
                    limit, remaining, reset = grant.binding(_request(principal))
                    lease.tokens += grant.granted
                    lease.expires = now + self.lease_ttl
                    lease.remaining, lease.reset_at = remaining, now + reset
                    _set_limit(lease, limit)
                lease.ample = grant.granted >= lease.want
                if lease.ample:  # demand keeps up with the batches: grow them
                    lease.want = min(self.lease_max, lease.want * 2)
        finally:  # wakes the waiters a turn before the task's done callback would
            if lease.landed is not None:
                _landed(lease, lease.landed)

    async def _refill(self, principal: Principal, lease: _Lease, cost: int) -> Encoded:
        now = self._clock()
        if lease.tokens >= cost and now < lease.expires:  # another request refilled it meanwhile
            lease.tokens -= cost
            self.usage[(principal.tenant_id, lease.month)] += cost
            return _encoded(lease, now)
        if now < lease.denied_until and cost >= lease.denied_cost:
            error = QuotaExceeded if lease.denied_by_quota else RateLimited
            raise error(lease.retry_at - now, headers(lease.limit, 0, max(lease.reset_at, lease.retry_at) - now))
        expired_unused = lease.tokens if now >= lease.expires else 0
        if now < lease.expires:  # used up within its lifetime: lease more next time
            lease.want = min(self.lease_max, lease.want * 2)
        elif expired_unused:
            lease.want = 1
        lease.principal = principal
        req = _request(principal)
        want = max(cost, lease.want)
        grant = await self._acquire(req, want, lease.tokens, cost)
        lease.tokens = 0
        now = self._clock()
        limit, remaining, reset = grant.binding(req)
        lease.remaining, lease.reset_at = remaining, now + reset
        _set_limit(lease, limit)
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
        return lease.limit_text, b"%d" % _remaining(limit, remaining, lease.tokens), _seconds(reset)

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
                    await self._acquire(_request(lease.principal), 0, back)
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


def _landed(lease: _Lease, landed: asyncio.Future[None]) -> None:
    """The prefetch that ``landed`` stands for is over: wake every request waiting for it."""
    if lease.landed is landed:
        lease.landed = None
    if not landed.done():
        landed.set_result(None)


def _set_limit(lease: _Lease, limit: int) -> None:
    if limit != lease.limit:
        lease.limit, lease.limit_text = limit, str(limit).encode()


def _request(principal: Principal) -> Request:
    return Request(
        principal.key_id, principal.tenant_id, principal.key_per_minute, principal.per_minute, principal.per_month
    )
