"""Issue 9, defect 7: rate-limit state survives a Redis restart. Quotas are seeded from the stored
usage, the ``open`` fallback starts from the last state Redis gave, and the first call after Redis
is back does not fail on a dead pooled connection. Each test restarts a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tenants.errors import QuotaExceeded, RateLimited
from tenants.principal import Principal
from tenants.ratelimit import RateLimiter, RedisBackend
from tenants.upkeep import flush
from tests.helpers import make_settings
from tests.tenants.helpers import RestartableRedis, instance, new_key, new_tenant

pytestmark = pytest.mark.redis


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[RestartableRedis]:
    server = RestartableRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def _principal(rpm: int = 600, month: int = 1_000_000) -> Principal:
    return Principal(
        tenant_id="ten_d",
        key_id="key_d",
        scopes=frozenset({"signals:read"}),
        plan="pro",
        per_minute=rpm,
        per_month=month,
        key_per_minute=rpm,
    )


async def test_monthly_quota_survives_a_redis_restart(restartable: RestartableRedis) -> None:
    settings = make_settings(redis_url=restartable.url, ratelimit_lease_ttl=0.05)
    async with instance(settings) as inst:
        admin = inst.app.state.bootstrap[0].key
        tenant = await new_tenant(inst, admin, "durable", "pro", quota=30)
        key, _ = await new_key(inst, admin, tenant, ["signals:read"])
        statuses = [(await inst.rest(key)).status_code for _ in range(31)]
        assert statuses == [200] * 30 + [429]
        services = inst.services
        await flush(services.authenticator, services.ratelimiter, services.keys.repo)  # the batched write
        restartable.restart()  # Redis forgets every counter
        for _ in range(3):
            await asyncio.sleep(0.1)  # past the remembered refusal (lease TTL): Redis is asked again
            response = await inst.rest(key)
            assert response.status_code == 429, response.json()
            assert response.json()["error"]["code"] == "quota_exceeded"


async def test_quota_is_seeded_from_stored_usage_when_redis_lacks_it(restartable: RestartableRedis) -> None:
    client = aioredis.from_url(restartable.url)
    stored = {("ten_d", "any"): 0}

    async def stored_usage(tenant_id: str, month: str) -> int:
        return 27 + stored[("ten_d", "any")]

    try:
        limiter = RateLimiter(RedisBackend(client), stored_usage=stored_usage, lease_ttl=0.01)
        p = _principal(month=30)
        for _ in range(3):
            await limiter.check(p)
        with pytest.raises(QuotaExceeded):
            await limiter.check(p)
    finally:
        await client.aclose()


async def test_open_fallback_starts_from_the_last_known_state(restartable: RestartableRedis) -> None:
    client = aioredis.from_url(restartable.url, socket_timeout=0.25, socket_connect_timeout=0.25)
    try:
        limiter = RateLimiter(RedisBackend(client), failure_mode="open", lease_ttl=0.01)
        p = _principal(rpm=10)
        for _ in range(10):
            await limiter.check(p)
        restartable.stop()  # an outage: this worker now limits on its own ...
        with pytest.raises(RateLimited):  # ... from where Redis left it, not from a fresh burst
            await limiter.check(p)
        assert limiter.backend_errors >= 1
    finally:
        await client.aclose()


async def test_first_call_after_redis_returns_succeeds_in_closed_mode(restartable: RestartableRedis) -> None:
    client = aioredis.from_url(restartable.url, socket_timeout=0.25, socket_connect_timeout=0.25)
    try:
        limiter = RateLimiter(RedisBackend(client), failure_mode="closed", lease_ttl=0.01)
        p = _principal()
        for _ in range(5):
            await limiter.check(p)
        await limiter.sweep(everything=True)
        restartable.restart()  # every pooled connection (the lane's too) is now dead
        for _ in range(5):  # no 503: the dead connection is replaced within the call
            await limiter.check(p)
        assert limiter.backend_errors == 0
    finally:
        await client.aclose()


async def test_in_process_limits_start_the_month_from_stored_usage() -> None:
    """Without Redis a restarted process starts a tenant's month from the ``usage`` collection."""
    from tenants.ratelimit import LocalBackend

    async def stored_usage(tenant_id: str, month: str) -> int:
        return 30

    limiter = RateLimiter(LocalBackend(), stored_usage=stored_usage)
    with pytest.raises(QuotaExceeded):
        await limiter.check(_principal(month=30))
