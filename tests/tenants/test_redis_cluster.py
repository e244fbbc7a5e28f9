"""Issue 12, item 4: rate limits, revocation broadcast (sharded pub/sub) and the worker lock on a
real 3-node Redis Cluster (``REDIS_URL=redis+cluster://…``). The single-node limit and revocation
tests also run against the cluster (the ``redis_or_cluster_url`` fixture, in ``test_ratelimit.py``
and ``test_lifecycle.py``); the lock tests are parametrized in
``tests/insider_selling/test_abuse_tenants.py``."""

from __future__ import annotations

import pytest

from insider_selling.redis_client import connect_redis
from insider_selling.settings import load_settings
from tenants.errors import RateLimited
from tenants.ratelimit import LocalBackend, RateLimiter, RedisBackend, Request
from tenants.revocation import KeyChangeBus
from tests.tenants.helpers import principal

pytestmark = pytest.mark.redis


def test_a_cluster_url_is_a_valid_setting() -> None:
    assert load_settings(REDIS_URL="redis+cluster://127.0.0.1:7000").redis_url == "redis+cluster://127.0.0.1:7000"


async def test_limits_use_a_lane_per_node_and_agree_with_the_local_arithmetic(redis_cluster_url: str) -> None:
    from redis.asyncio.cluster import RedisCluster

    client = connect_redis(redis_cluster_url)
    assert isinstance(client, RedisCluster)
    try:
        backend, local = RedisBackend(client), LocalBackend()
        tenants = [f"ten_{i}" for i in range(12)]  # their slots spread over the three nodes
        for tenant in tenants:
            req = Request(f"key_{tenant}", tenant, 30, 40, 1000)
            for want in (8, 4, 1, 1):
                r, loc = await backend.acquire(req, want, 0), local.acquire_now(req, want, 0)
                assert r is not None
                assert (r.granted, r.key_remaining, r.tenant_remaining, r.quota_remaining) == (
                    loc.granted,
                    loc.key_remaining,
                    loc.tenant_remaining,
                    loc.quota_remaining,
                )
        owners = {client.get_node_from_key(f"insider:rl:{{{t}}}:t").name for t in tenants}
        assert len(owners) >= 2 and set(backend._node_lanes) == owners  # one lane per node used
        assert backend.lane_calls >= len(tenants) * 4 - len(owners) * 2  # nearly every call on a lane
    finally:
        await client.aclose()


async def test_limiter_on_a_cluster_raises_and_seeds(redis_cluster_url: str) -> None:
    client = connect_redis(redis_cluster_url)

    async def stored_usage(tenant_id: str, month: str) -> int:
        return 8

    try:
        limiter = RateLimiter(RedisBackend(client), stored_usage=stored_usage)
        p = principal(rpm=100, month=10)
        await limiter.check(p)
        await limiter.check(p)
        with pytest.raises(RateLimited):
            await limiter.check(p)  # the quota started from the stored 8 of 10
    finally:
        await client.aclose()


async def test_revocation_goes_over_sharded_pubsub(redis_cluster_url: str) -> None:
    import asyncio

    from store.memory import MemoryClient
    from tenants.auth import Authenticator
    from tenants.hashing import KeyHasher
    from tenants.repository import TenantRepository

    repo = TenantRepository(MemoryClient()["c"])
    sender, receiver = connect_redis(redis_cluster_url), connect_redis(redis_cluster_url)
    auth = Authenticator(repo, KeyHasher("test"))
    bus = KeyChangeBus(auth, receiver)
    listening = asyncio.create_task(bus.listen())
    try:
        await asyncio.wait_for(bus.subscribed.wait(), 10)
        await sender.initialize()
        # redis-py's documented command, not a raw execute_command("PUBSUB", "SHARDNUMSUB", …): from
        # redis-py 8.2 the cluster client merges PUBSUB SHARDNUMSUB replies itself, and a raw call's
        # flat reply no longer fits that merge (ValueError in parse_pubsub_numsub).
        numsub = await sender.pubsub_shardnumsub(bus.channel, target_nodes=sender.get_node_from_key(bus.channel))
        assert [(_text(ch), int(n)) for ch, n in numsub] == [(bus.channel, 1)]  # subscribed on the owning node
        await KeyChangeBus(Authenticator(repo, KeyHasher("test")), sender).publish("key_abc")
        for _ in range(100):
            if bus.received:
                break
            await asyncio.sleep(0.02)
        assert bus.received == 1
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await sender.aclose()
        await receiver.aclose()


async def test_the_lane_follows_a_slot_that_moves(redis_cluster_url: str) -> None:
    """A tenant's slot migrates to another node (keys and all): the call that meets MOVED on the old
    node's lane goes the usual way, which follows it, and the next calls use the new owner's lane."""
    client = connect_redis(redis_cluster_url)
    try:
        backend = RedisBackend(client)
        req = Request("key_m", "ten_moving", 600, 600, 10_000)
        assert (await backend.acquire(req, 4, 0)).granted == 4  # type: ignore[union-attr]
        assert (await backend.acquire(req, 4, 0)).granted == 4  # type: ignore[union-attr]
        key = "insider:rl:{ten_moving}:t"
        slot = client.keyslot(key)
        source = client.get_node_from_key(key)
        target = next(n for n in client.get_primaries() if n.name != source.name)
        ids = {
            n.name: (await client.execute_command("CLUSTER", "MYID", target_nodes=n)) for n in client.get_primaries()
        }
        src_id, dst_id = (i.decode() if isinstance(i, bytes) else i for i in (ids[source.name], ids[target.name]))
        await client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id, target_nodes=target)
        await client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id, target_nodes=source)
        keys = await client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100, target_nodes=source)
        await client.execute_command(
            "MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys, target_nodes=source
        )
        for node in client.get_primaries():
            await client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id, target_nodes=node)
        lane_calls = backend.lane_calls
        third = await backend.acquire(req, 4, 0)  # MOVED on the old lane, answered the usual way
        assert third is not None and third.granted == 4 and third.key_remaining == 600 - 12
        fourth = await backend.acquire(req, 4, 0)
        assert fourth is not None and fourth.key_remaining == 600 - 16  # the counters moved with the slot
        assert target.name in backend._node_lanes and backend.lane_calls == lane_calls + 1  # the new lane
    finally:
        await client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
