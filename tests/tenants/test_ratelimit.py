"""Rate limits: GCRA arithmetic, exact limits across two instances on one Redis, the monthly quota,
leases on the hot path, and the Redis-down policy both ways."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime

import pytest

from store import StoreHandle
from tenants.auth import Authenticator
from tenants.errors import RateLimited
from tenants.hashing import KeyHasher
from tenants.principal import Principal
from tenants.ratelimit import LocalBackend, RateLimiter, RedisBackend, Request, month_window
from tenants.repository import TenantRepository
from tenants.upkeep import flush
from tests.helpers import make_settings
from tests.tenants.helpers import cluster, instance, new_key, new_tenant, principal


class FakeClock:
    def __init__(self, at: float = 1_800_000_000.0) -> None:
        self.now = at

    def __call__(self) -> float:
        return self.now


def test_gcra_burst_then_one_per_interval() -> None:
    clock = FakeClock()
    backend = LocalBackend(clock)
    req = Request("key_a", "ten_a", 6, 6, 1000)  # 6 per minute: one every 10 s
    granted = [backend.acquire_now(req, 1, 0).granted for _ in range(8)]
    assert granted == [1] * 6 + [0, 0]
    refused = backend.acquire_now(req, 1, 0)
    assert refused.retry_after == pytest.approx(10.0, abs=1e-3)
    assert refused.key_reset == pytest.approx(60.0, abs=1e-3)
    clock.now += 9.9
    assert backend.acquire_now(req, 1, 0).granted == 0
    clock.now += 0.1
    assert backend.acquire_now(req, 1, 0).granted == 1
    clock.now += 60
    assert [backend.acquire_now(req, 1, 0).granted for _ in range(7)] == [1] * 6 + [0]


def test_tenant_bucket_and_monthly_quota() -> None:
    clock = FakeClock()
    backend = LocalBackend(clock)
    a, b = Request("key_a", "ten_x", 5, 8, 1000), Request("key_b", "ten_x", 5, 8, 1000)
    got = [backend.acquire_now(r, 1, 0).granted for r in (a, b) * 6]
    assert sum(got) == 8  # the tenant's 8 shared by its keys, each key within its 5
    quota = Request("key_q", "ten_q", 100, 100, 3)
    assert [backend.acquire_now(quota, 1, 0).granted for _ in range(4)] == [1, 1, 1, 0]
    refused = backend.acquire_now(quota, 1, 0)
    assert refused.quota_remaining == 0 and refused.retry_after >= 1
    assert refused.binding(quota)[0] == 3  # the quota is the binding limit


def test_leases_shrink_near_the_limit() -> None:
    backend = LocalBackend(FakeClock())
    req = Request("key_a", "ten_a", 80, 80, 10_000)
    first = backend.acquire_now(req, 32, 0)
    assert first.granted == 10  # an eighth of the 80 left
    sizes = []
    while (grant := backend.acquire_now(req, 32, 0)).granted:
        sizes.append(grant.granted)
    assert sizes[-8:] == [1] * 8 and first.granted + sum(sizes) == 80


def test_month_window() -> None:
    assert month_window(datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)) == ("2026-12", 30)
    assert month_window(datetime(2026, 2, 1, tzinfo=UTC)) == ("2026-02", 28 * 86400)


@pytest.mark.redis
async def test_lua_and_local_agree(redis_url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    try:
        redis_backend, local = RedisBackend(client), LocalBackend()
        req = Request("key_s", "ten_s", 30, 40, 1000)
        for want in (8, 8, 4, 2, 1, 1, 1, 1, 1, 1, 1):
            r, loc = await redis_backend.acquire(req, want, 0), local.acquire_now(req, want, 0)
            assert (r.granted, r.key_remaining, r.tenant_remaining, r.quota_remaining) == (
                loc.granted,
                loc.key_remaining,
                loc.tenant_remaining,
                loc.quota_remaining,
            )
        given_back = await redis_backend.acquire(req, 0, 5)
        assert given_back.granted == 0 and given_back.quota_remaining == local.acquire_now(req, 0, 5).quota_remaining
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_limiter_leases_batch_redis_calls_and_give_back(redis_url: str, store: StoreHandle) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    try:
        backend = RedisBackend(client)
        clock = FakeClock(0.0)
        limiter = RateLimiter(backend, lease_max=32, lease_ttl=1.0, clock=clock)
        p = principal(rpm=100_000, month=1_000_000)
        for _ in range(1000):
            await limiter.check(p)
        await limiter.drain()  # the batch fetched ahead, if one is in flight
        assert backend.calls <= 40  # leases double up to 32 tokens: far fewer than 1000 round trips
        month = month_window(datetime.now(UTC))[0]
        charged = int(await client.get(f"insider:rl:{{ten_a}}:q:{month}"))
        assert 1000 <= charged <= 1000 + 2 * 32  # at most two batches held (double buffering)
        clock.now += 1.5  # the lease expires; the sweep gives its unused tokens back
        await limiter.sweep()
        assert int(await client.get(f"insider:rl:{{ten_a}}:q:{month}")) == 1000
        assert limiter.pending_usage("ten_a", month) == 1000
        repo = TenantRepository(store.db)
        await flush(Authenticator(repo, KeyHasher("test")), limiter, repo)  # the batched usage write
        assert await repo.get_usage("ten_a", month) == 1000 and limiter.pending_usage("ten_a", month) == 0
    finally:
        await client.aclose()


async def test_in_process_limiter_raises_with_headers() -> None:
    limiter = RateLimiter(LocalBackend())
    p = principal(rpm=3)
    seen = [await limiter.check(p) for _ in range(3)]
    assert [h["RateLimit-Remaining"] for h in seen] == ["2", "1", "0"]
    assert {h["RateLimit-Limit"] for h in seen} == {"3"}
    with pytest.raises(RateLimited) as info:
        await limiter.check(p)
    assert 19 < info.value.retry_after <= 20
    assert info.value.headers["RateLimit-Remaining"] == "0"


@pytest.mark.redis
@pytest.mark.parametrize("shared", [True, False])
async def test_costly_requests_near_the_limit(redis_url: str, shared: bool) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    try:
        limiter = RateLimiter(RedisBackend(client) if shared else LocalBackend())
        p = principal(rpm=40)
        for expected in (30, 20, 10, 0):  # a GraphQL query costing 10 tokens
            assert (await limiter.check(p, cost=10))["RateLimit-Remaining"] == str(expected)
        with pytest.raises(RateLimited) as info:
            await limiter.check(p, cost=10)
        assert 14 < info.value.retry_after <= 15  # 10 tokens at 1.5 s each
        cheap = principal(key="key_b", tenant="ten_b", rpm=40)
        for _ in range(35):
            await limiter.check(cheap)
        with pytest.raises(RateLimited):
            await limiter.check(cheap, cost=10)  # 5 left: refused, and nothing charged
        assert (await limiter.check(cheap, cost=5))["RateLimit-Remaining"] == "0"
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_limit_is_exact_across_two_instances(redis_or_cluster_url: str) -> None:
    async with cluster(redis_url=redis_or_cluster_url) as c:
        tenant = await new_tenant(c.a, c.admin_key, "metered", "free", rpm=12)
        key, _ = await new_key(c.a, c.admin_key, tenant, ["signals:read"])
        statuses, remaining = [], []
        for i in range(24):
            response = await (c.a if i % 2 else c.b).rest(key, limit=1)
            statuses.append(response.status_code)
            remaining.append(int(response.headers["RateLimit-Remaining"]))
            assert response.headers["RateLimit-Limit"] == "12"
            assert int(response.headers["RateLimit-Reset"]) <= 60
        assert statuses == [200] * 12 + [429] * 12
        assert remaining[:12] == list(range(11, -1, -1)) and set(remaining[12:]) == {0}
        limited = await c.a.rest(key, limit=1)
        body = limited.json()
        assert body["error"]["type"] == "rate_limit_error" and body["error"]["code"] == "rate_limited"
        assert body["meta"]["request_id"] == limited.headers["X-Request-Id"]
        assert 1 <= int(limited.headers["Retry-After"]) <= 5  # one token per 5 s
        # the tenant's budget is shared by its keys: a second key of the same tenant is refused too
        other, _ = await new_key(c.a, c.admin_key, tenant, ["signals:read"])
        assert (await c.b.rest(other)).status_code == 429


@pytest.mark.redis
async def test_monthly_quota_across_instances(redis_or_cluster_url: str) -> None:
    async with cluster(redis_url=redis_or_cluster_url) as c:
        tenant = await new_tenant(c.a, c.admin_key, "quota", "pro", quota=5)
        key, _ = await new_key(c.a, c.admin_key, tenant, ["signals:read"])
        statuses = [(await (c.a if i % 2 else c.b).rest(key)).status_code for i in range(8)]
        assert statuses == [200] * 5 + [429] * 3
        limited = await c.a.rest(key)
        assert limited.headers["RateLimit-Limit"] == "5"
        assert limited.json()["error"]["code"] == "quota_exceeded"
        _, seconds_left = month_window(datetime.now(UTC))
        assert int(limited.headers["Retry-After"]) >= min(seconds_left, 86_400) - 5


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"  # nothing listens there any more


async def test_redis_down_fails_open_to_per_worker_limits() -> None:
    settings = make_settings(redis_url=_closed_port(), redis_failure_mode="open")
    async with instance(settings) as inst:
        admin = inst.app.state.bootstrap[0].key
        tenant = await new_tenant(inst, admin, "degraded", "free", rpm=4)
        key, _ = await new_key(inst, admin, tenant, ["signals:read"])
        responses = [await inst.rest(key) for _ in range(6)]
        assert [r.status_code for r in responses] == [200] * 4 + [429] * 2
        assert all(r.headers["RateLimit-Limit"] == "4" for r in responses)
        assert inst.services.ratelimiter.backend_errors >= 1


async def test_redis_down_fails_closed_with_503() -> None:
    settings = make_settings(redis_url=_closed_port(), redis_failure_mode="closed")
    async with instance(settings) as inst:
        read = inst.app.state.bootstrap[1].key
        response = await inst.rest(read)
        assert response.status_code == 503
        body = response.json()
        assert body["error"]["code"] == "rate_limiter_unavailable"
        assert int(response.headers["Retry-After"]) >= 1
        assert (await inst.rest("sk_live_bad")).status_code == 401  # authentication still first


@pytest.mark.redis
async def test_redis_recovers_after_an_outage(redis_url: str) -> None:
    import redis.asyncio as aioredis

    broken = aioredis.from_url(_closed_port(), socket_connect_timeout=0.2)
    clock = FakeClock(0.0)
    limiter = RateLimiter(RedisBackend(broken), failure_mode="closed", retry_interval=1.0, clock=clock)
    from tenants.errors import LimiterUnavailable

    with pytest.raises(LimiterUnavailable):
        await limiter.check(principal())
    await broken.aclose()
    healthy = aioredis.from_url(redis_url)
    try:
        limiter.backend = RedisBackend(healthy)
        with pytest.raises(LimiterUnavailable):  # not retried within retry_interval
            await limiter.check(principal())
        clock.now += 1.1
        assert (await limiter.check(principal()))["RateLimit-Limit"] == "60"
    finally:
        await healthy.aclose()
    await asyncio.sleep(0)


async def test_take_is_check_without_io() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(LocalBackend(), lease_max=8, clock=clock)
    p = principal(rpm=1000, month=100_000)
    assert limiter.take(p) is None  # no lease yet: check decides
    first = await limiter.check(p)
    assert first == {"RateLimit-Limit": "1000", "RateLimit-Remaining": "999", "RateLimit-Reset": "1"}
    assert limiter.take(p) is None  # a first lease is one token, spent by that request
    assert (await limiter.check(p))["RateLimit-Remaining"] == "998"  # the next lease is two tokens
    assert limiter.take(p) == (b"1000", b"997", b"1")  # the second, from the lease: what check says
    month = month_window(datetime.now(UTC))[0]
    assert limiter.pending_usage("ten_a", month) == 3
    while limiter.take(p) is not None:  # the lease runs out: then check refills it
        pass
    assert (await limiter.check(p))["RateLimit-Limit"] == "1000"
    clock.now += 1.5  # an expired lease is not spent by take
    assert limiter.take(p) is None


@pytest.mark.redis
async def test_lane_survives_a_script_flush_and_a_lost_connection(redis_url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    try:
        backend = RedisBackend(client)
        req = Request("key_l", "ten_l", 600, 600, 10_000)
        assert (await backend.acquire(req, 4, 0)).granted == 4  # NOSCRIPT on the lane: loaded, answered
        assert (await backend.acquire(req, 4, 0)).granted == 4  # over the lane
        await client.script_flush()
        assert (await backend.acquire(req, 4, 0)).granted == 4
        await client.client_kill_filter(_type="normal", skipme=True)  # the lane's connection is cut
        assert (await backend.acquire(req, 4, 0)).granted == 4
        assert (await backend.acquire(req, 4, 0)).key_remaining == 600 - 20
        both = await asyncio.gather(*(backend.acquire(req, 1, 0) for _ in range(3)))  # the lane busy
        assert sorted(g.key_remaining for g in both) == [577, 578, 579]
    finally:
        await client.aclose()


class _GatedBackend(RedisBackend):
    """A shared backend (so leases are fetched ahead) whose answers wait for ``gate``; the
    arithmetic is :class:`LocalBackend`'s."""

    def __init__(self) -> None:  # no Redis client: nothing here talks to Redis
        self.local = LocalBackend()
        self.gate = asyncio.Event()
        self.gate.set()
        self.calls = 0

    async def acquire(self, req: Request, want: int, give_back: int, need: int = 1, seed: int = 0):  # type: ignore[no-untyped-def]
        self.calls += 1
        await self.gate.wait()
        return self.local.acquire_now(req, want, give_back, need)


async def _run_out_while_a_prefetch_is_in_flight() -> tuple[RateLimiter, _GatedBackend, Principal]:
    backend = _GatedBackend()
    limiter = RateLimiter(backend, lease_max=16, clock=FakeClock(0.0))
    p = principal(rpm=1_000_000, month=10_000_000)
    for _ in range(200):  # leases grow to 16 tokens, fetched ahead of need
        await limiter.check_encoded(p)
        await asyncio.sleep(0)
    await limiter.drain()
    backend.gate.clear()  # Redis is slow from now on
    while limiter.take(p) is not None:  # the batch runs out; the next one is in flight
        pass
    lease = limiter._leases[p.key_id]
    assert lease.prefetching and lease.landed is not None
    return limiter, backend, p


async def test_requests_that_run_out_wait_for_the_batch_in_flight_together() -> None:
    limiter, backend, p = await _run_out_while_a_prefetch_is_in_flight()
    for _ in range(3):
        await asyncio.sleep(0)  # the prefetch reaches Redis (and waits there)
    calls = backend.calls

    waiters = [asyncio.create_task(limiter.check_encoded(p)) for _ in range(10)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert not any(w.done() for w in waiters) and backend.calls == calls  # no round trip each
    backend.gate.set()  # the batch lands
    turns = 0
    while not all(w.done() for w in waiters) and turns < 30:
        await asyncio.sleep(0)
        turns += 1
    # all ten woke at once and were served from the batch (one by one through the lease's lock
    # would take a turn of the event loop each)
    assert all(w.done() for w in waiters) and turns <= 4, turns
    assert backend.calls == calls and all(w.result()[0] == b"1000000" for w in waiters)


async def test_a_prefetch_cancelled_before_it_ran_strands_no_request() -> None:
    limiter, backend, p = await _run_out_while_a_prefetch_is_in_flight()
    for task in list(limiter._tasks):
        task.cancel()
    waiter = asyncio.create_task(limiter.check_encoded(p))
    await asyncio.sleep(0)
    backend.gate.set()
    assert (await asyncio.wait_for(waiter, 2.0))[0] == b"1000000"


async def test_remaining_never_exceeds_the_limit_while_batches_are_fetched_ahead() -> None:
    """Issue 17 #8: a batch fetched ahead while the bucket has refilled counted the tokens still
    held twice (Redis's remaining after the grant, plus the lease's unused ones): 6,013 of 6,000."""
    backend = _GatedBackend()
    redis_clock = FakeClock(0.0)
    backend.local = LocalBackend(clock=redis_clock)
    clock = FakeClock(0.0)
    limiter = RateLimiter(backend, lease_max=64, clock=clock)
    p = principal(rpm=6_000, month=10_000_000)
    seen = []
    for _ in range(400):
        limit, remaining, _reset = await limiter.check_encoded(p)
        seen.append((int(limit), int(remaining)))
        await asyncio.sleep(0)  # a prefetch may land
        redis_clock.now += 1.0  # the bucket refills faster than this key spends
        clock.now += 0.001  # leases stay alive
    await limiter.drain()
    assert any(remaining == limit for limit, remaining in seen)  # the full bucket is reported
    assert all(remaining <= limit for limit, remaining in seen), max(r - lim for lim, r in seen)
