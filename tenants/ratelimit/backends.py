"""Where the buckets live: :class:`RedisBackend` (shared by every worker, one script call per
lease) and :class:`LocalBackend` (the same arithmetic inside one process: no Redis configured, or
Redis down with ``failure_mode="open"``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from tenants.ratelimit.grants import DIVISOR, MICRO, Grant, Request, interval_us, month_window
from tenants.ratelimit.script import evalsha_command, load_script

__all__ = ["LocalBackend", "RedisBackend"]


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
        self._script = load_script(redis)
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
            command = evalsha_command(self._script.sha, keys, args)
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
