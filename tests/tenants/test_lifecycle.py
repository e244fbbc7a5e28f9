"""The key lifecycle through GraphQL: issue, list, rotate with grace, revoke, expiry, scopes,
tenant isolation and the audit log; REST answers tell whether a key works."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from store import StoreHandle
from tenants.keys import parse_key
from tests.helpers import make_settings
from tests.tenants.helpers import (
    AUDIT,
    CREATE_TENANT,
    ISSUE,
    LIST_KEYS,
    REVOKE,
    ROTATE,
    cluster,
    error_of,
    eventually,
    instance,
    new_key,
    new_tenant,
)


async def test_issue_list_and_audit_never_show_a_secret(store: StoreHandle) -> None:
    async with cluster(store) as c:
        tenant = await new_tenant(c.a, c.admin_key, "acme", "free")
        key, key_id = await new_key(c.a, c.admin_key, tenant, ["signals:read"], name="prod reader")
        assert key.startswith("sk_live_") and key_id.startswith("key_")
        assert (await c.a.rest(key, limit=5)).status_code == 200
        await c.a.services.authenticator.flush_last_used()
        listing = await c.a.ok(c.admin_key, LIST_KEYS, tenantId=tenant)
        [row] = listing["apiKeys"]
        assert row["keyId"] == key_id and row["state"] == "ACTIVE" and row["scopes"] == ["signals:read"]
        assert row["lastUsedAt"] is not None
        audit = await c.a.ok(c.admin_key, AUDIT, tenantId=tenant, first=10)
        actions = [e["node"]["action"] for e in audit["auditLog"]["edges"]]
        assert actions == ["key.issued", "tenant.created"]
        admin_key_id = parse_key(c.admin_key).key_id
        assert all(e["node"]["actorKeyId"] == admin_key_id for e in audit["auditLog"]["edges"])
        secret = key[len("sk_live_") :]
        for text in (json.dumps(listing), json.dumps(audit)):
            assert secret not in text and key[-10:] not in text and "argon2" not in text
        stored = await c.store.db["api_keys"].find_one({"key_id": key_id})
        assert stored["secret_hash"].startswith("$argon2id$") and secret not in json.dumps(stored, default=str)
        for entry in await c.store.db["audit_log"].find({}).to_list():
            assert secret not in json.dumps(entry, default=str)


@pytest.mark.redis
async def test_rotation_grace_both_ways(redis_or_cluster_url: str, store: StoreHandle) -> None:
    async with cluster(store, redis_url=redis_or_cluster_url) as c:
        await asyncio.wait_for(c.b.services.bus.subscribed.wait(), 5)
        tenant = await new_tenant(c.a, c.admin_key, "rotator")
        old, old_id = await new_key(c.a, c.admin_key, tenant, ["signals:read"])
        for inst in (c.a, c.b):  # warm in both caches before the rotation
            assert (await inst.rest(old)).status_code == 200
        rotated = (await c.a.ok(c.admin_key, ROTATE, keyId=old_id, grace=2))["rotateApiKey"]
        new = rotated["key"]
        assert rotated["apiKey"]["rotatedFrom"] == old_id and rotated["apiKey"]["scopes"] == ["signals:read"]
        # during the grace: both keys work, on both instances
        for inst in (c.a, c.b):
            assert (await inst.rest(old)).status_code == 200
            assert (await inst.rest(new)).status_code == 200
        states = {k["keyId"]: k["state"] for k in (await c.a.ok(c.admin_key, LIST_KEYS, tenantId=tenant))["apiKeys"]}
        assert states == {old_id: "ROTATING", rotated["apiKey"]["keyId"]: "ACTIVE"}

        async def old_refused() -> bool:
            return (await c.a.rest(old)).status_code == 401 and (await c.b.rest(old)).status_code == 401

        waited = await eventually(old_refused, within=4.0)
        assert waited > 0.5  # it did work for (most of) the grace
        assert (await c.a.rest(new)).status_code == 200
        # the old key cannot be rotated again; grace 0 stops the replaced key at once
        code, _ = error_of(await c.a.gql(c.admin_key, ROTATE, keyId=old_id, grace=10))
        assert code == "parameter_invalid"
        new_id = rotated["apiKey"]["keyId"]
        newer = (await c.a.ok(c.admin_key, ROTATE, keyId=new_id, grace=0))["rotateApiKey"]["key"]
        assert (await c.a.rest(new)).status_code == 401

        async def new_refused_on_b() -> bool:
            return (await c.b.rest(new)).status_code == 401

        assert await eventually(new_refused_on_b, within=1.0) < 1.0
        assert (await c.b.rest(newer)).status_code == 200
        code, _ = error_of(await c.a.gql(c.admin_key, ROTATE, keyId=new_id, grace=-1))
        assert code == "parameter_invalid"


@pytest.mark.redis
async def test_revocation_reaches_a_second_instance_within_one_second(
    redis_or_cluster_url: str, store: StoreHandle
) -> None:
    async with cluster(store, redis_url=redis_or_cluster_url) as c:
        await asyncio.wait_for(c.b.services.bus.subscribed.wait(), 5)
        tenant = await new_tenant(c.a, c.admin_key, "revokee")
        key, key_id = await new_key(c.a, c.admin_key, tenant, ["signals:read"])
        # both instances hold the key warm in their caches
        for _ in range(3):
            assert (await c.a.rest(key)).status_code == 200
            assert (await c.b.rest(key)).status_code == 200
        lookups = c.b.services.authenticator.lookups
        assert (await c.b.rest(key)).status_code == 200 and c.b.services.authenticator.lookups == lookups
        revoked = (await c.a.ok(c.admin_key, REVOKE, keyId=key_id))["revokeApiKey"]
        assert revoked["state"] == "REVOKED" and revoked["revokedAt"]
        assert (await c.a.rest(key)).status_code == 401  # the revoking instance at once

        async def refused_on_b() -> bool:
            return (await c.b.rest(key)).status_code == 401

        assert await eventually(refused_on_b, within=1.0) < 1.0
        assert c.b.services.bus.received >= 1
        body = (await c.b.rest(key)).json()
        assert body["error"]["type"] == "authentication_error"
        # revoking again is idempotent and adds no audit entry
        await c.a.ok(c.admin_key, REVOKE, keyId=key_id)
        audit = await c.a.ok(c.admin_key, AUDIT, tenantId=tenant)
        assert [e["node"]["action"] for e in audit["auditLog"]["edges"]].count("key.revoked") == 1


async def test_revocation_without_redis_is_immediate_in_process() -> None:
    async with instance(make_settings()) as inst:
        admin = inst.app.state.bootstrap[0].key
        tenant = await new_tenant(inst, admin, "solo")
        key, key_id = await new_key(inst, admin, tenant, ["signals:read"])
        assert (await inst.rest(key)).status_code == 200
        await inst.ok(admin, REVOKE, keyId=key_id)
        assert (await inst.rest(key)).status_code == 401


async def test_expiry(store: StoreHandle) -> None:
    async with instance(make_settings(), store) as inst:
        admin = inst.app.state.bootstrap[0].key
        tenant = await new_tenant(inst, admin, "temp")
        soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        key, _key_id = await new_key(inst, admin, tenant, ["signals:read"], expiresAt=soon)
        assert (await inst.rest(key)).status_code == 200

        async def expired() -> bool:
            return (await inst.rest(key)).status_code == 401

        await eventually(expired, within=3.0)
        [row] = (await inst.ok(admin, LIST_KEYS, tenantId=tenant))["apiKeys"]
        assert row["state"] == "EXPIRED"
        past = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
        code, _ = error_of(
            await inst.gql(admin, ISSUE, tenantId=tenant, name="x", scopes=["signals:read"], expiresAt=past)
        )
        assert code == "parameter_invalid"


async def test_tenant_isolation_reveals_nothing(store: StoreHandle) -> None:
    async with instance(make_settings(), store) as inst:
        admin = inst.app.state.bootstrap[0].key
        a = await new_tenant(inst, admin, "tenant-a")
        b = await new_tenant(inst, admin, "tenant-b")
        # a key grants only scopes it holds: this manager also reads
        manager_a, manager_a_id = await new_key(inst, admin, a, ["keys:manage", "signals:read"])
        key_b, key_b_id = await new_key(inst, admin, b, ["signals:read"], name="b secret name")
        missing_tenant, missing_key = "ten_0000000000000000", "key_000000000000"

        # listing, rotating, revoking and reading B's audit log: each refusal is word for word
        # the answer for a tenant or key that does not exist
        pairs = [
            (LIST_KEYS, {"tenantId": b}, {"tenantId": missing_tenant}),
            (ROTATE, {"keyId": key_b_id, "grace": 60}, {"keyId": missing_key, "grace": 60}),
            (REVOKE, {"keyId": key_b_id}, {"keyId": missing_key}),
            (AUDIT, {"tenantId": b}, {"tenantId": missing_tenant}),
            (
                ISSUE,
                {"tenantId": b, "name": "x", "scopes": ["signals:read"]},
                {"tenantId": missing_tenant, "name": "x", "scopes": ["signals:read"]},
            ),
        ]
        for query, real, missing in pairs:
            refused = await inst.gql(manager_a, query, **real)
            absent = await inst.gql(manager_a, query, **missing)
            assert error_of(refused) == error_of(absent)
            assert error_of(refused)[0] == "not_found"
            text = json.dumps(refused)
            assert b not in text and key_b_id not in text and "b secret name" not in text
        # B's key is untouched and B's data never reached A
        assert (await inst.rest(key_b)).status_code == 200
        tenants = (await inst.ok(manager_a, "{ tenants { id name } }"))["tenants"]
        assert tenants == [{"id": a, "name": "tenant-a"}]
        own_audit = (await inst.ok(manager_a, AUDIT))["auditLog"]["edges"]
        assert own_audit and {e["node"]["tenantId"] for e in own_audit} == {a}
        # A manages its own keys
        own, own_id = await new_key(inst, manager_a, a, ["signals:read"])
        ids = {k["keyId"] for k in (await inst.ok(manager_a, LIST_KEYS, tenantId=a))["apiKeys"]}
        assert ids == {manager_a_id, own_id}
        await inst.ok(manager_a, ROTATE, keyId=own_id, grace=0)
        assert (await inst.rest(own)).status_code == 401
        entry = (await inst.ok(manager_a, AUDIT, first=1))["auditLog"]["edges"][0]["node"]
        assert entry["action"] == "key.rotated" and entry["actorKeyId"] == manager_a_id
        assert entry["targetId"] == own_id


async def test_scope_checks(store: StoreHandle) -> None:
    async with instance(make_settings(), store) as inst:
        admin = inst.app.state.bootstrap[0].key
        t = await new_tenant(inst, admin, "scoped")
        reader, _ = await new_key(inst, admin, t, ["signals:read"])
        manager, _ = await new_key(inst, admin, t, ["keys:manage"])
        # signals:read: the data, not the keys
        assert (await inst.rest(reader)).status_code == 200
        for query, variables in (
            (LIST_KEYS, {"tenantId": t}),
            ("{ tenants { id } }", {}),
            (ISSUE, {"tenantId": t, "name": "n", "scopes": ["signals:read"]}),
        ):
            assert error_of(await inst.gql(reader, query, **variables))[0] == "insufficient_scope"
        # keys:manage: its keys, not the data, not tenants, not the admin scope
        response = await inst.rest(manager)
        assert response.status_code == 403 and response.json()["error"]["code"] == "insufficient_scope"
        code, _ = error_of(await inst.gql(manager, CREATE_TENANT, name="x", plan="free"))
        assert code == "insufficient_scope"
        code, _ = error_of(await inst.gql(manager, ISSUE, tenantId=t, name="n", scopes=["admin"]))
        assert code == "insufficient_scope"
        # every key sees itself
        viewer = await inst.ok(
            reader,
            "{ viewer { tenant { id plan } apiKey { scopes } "
            "rateLimit { limitPerMinute tenantLimitPerMinute quotaPerMonth } "
            "usage { month requests quota } } }",
        )
        assert viewer["viewer"]["tenant"] == {"id": t, "plan": "pro"}
        assert viewer["viewer"]["rateLimit"] == {
            "limitPerMinute": 600,
            "tenantLimitPerMinute": 600,
            "quotaPerMonth": 1_000_000,
        }
        assert viewer["viewer"]["usage"]["requests"] == 1 and viewer["viewer"]["usage"]["quota"] == 1_000_000
        # bad arguments are 4xx-like errors, not crashes
        for variables in (
            {"name": "x", "plan": "gold"},
            {"name": "", "plan": "free"},
            {"name": "x", "plan": "free", "rpm": 0},
        ):
            code, _ = error_of(await inst.gql(admin, CREATE_TENANT, **variables))
            assert code == "parameter_invalid"
        code, _ = error_of(await inst.gql(admin, ISSUE, tenantId=t, name="n", scopes=["root"]))
        assert code == "parameter_invalid"


async def test_audit_log_pages(store: StoreHandle) -> None:
    async with instance(make_settings(), store) as inst:
        admin = inst.app.state.bootstrap[0].key
        t = await new_tenant(inst, admin, "paged")
        for i in range(4):
            await new_key(inst, admin, t, ["signals:read"], name=f"k{i}")
        seen: list[str] = []
        after = None
        while True:
            page = (await inst.ok(admin, AUDIT, tenantId=t, first=2, after=after))["auditLog"]
            seen += [e["node"]["id"] for e in page["edges"]]
            if not page["hasNextPage"]:
                break
            after = page["endCursor"]
        assert len(seen) == len(set(seen)) == 5
        everything = (await inst.ok(admin, AUDIT, first=200))["auditLog"]["edges"]
        assert len(everything) >= 5 + 4  # plus the bootstrap's tenants and keys
        code, _ = error_of(await inst.gql(admin, AUDIT, after="not-a-cursor"))
        assert code == "parameter_invalid"
        code, _ = error_of(await inst.gql(admin, AUDIT, first=0))
        assert code == "parameter_invalid"


@pytest.mark.redis
async def test_admin_operations_through_the_graphql_endpoint(redis_url: str, store: StoreHandle) -> None:
    """The same operations through ``/graphql`` (the root schema merges AdminQuery/AdminMutation),
    on two instances sharing one store and one Redis."""
    async with cluster(store, redis_url=redis_url) as c:
        await asyncio.wait_for(c.b.services.bus.subscribed.wait(), 5)
        created = await c.a.http_gql(c.admin_key, CREATE_TENANT, name="over-http", plan="free", rpm=None, quota=None)
        assert not created.get("errors"), created
        tenant = created["data"]["createTenant"]["id"]
        issued = await c.a.http_gql(c.admin_key, ISSUE, tenantId=tenant, name="http", scopes=["keys:manage"])
        key = issued["data"]["issueApiKey"]["key"]
        key_id = issued["data"]["issueApiKey"]["apiKey"]["keyId"]
        viewer = await c.b.http_gql(key, "{ viewer { tenant { id name } apiKey { keyId scopes } } }")
        assert viewer["data"]["viewer"] == {
            "tenant": {"id": tenant, "name": "over-http"},
            "apiKey": {"keyId": key_id, "scopes": ["keys:manage"]},
        }
        response = await c.b.http.post(
            "/graphql", json={"query": "{ viewer { apiKey { keyId } } }"}, headers={"Authorization": f"Bearer {key}"}
        )
        assert int(response.headers["RateLimit-Limit"]) == 60  # free plan
        other = await c.a.http_gql(key, LIST_KEYS, tenantId=c.a.app.state.bootstrap[1].record["tenant_id"])
        assert error_of(other)[0] == "not_found"
        revoked = await c.a.http_gql(key, REVOKE, keyId=key_id)  # a key may revoke itself
        assert revoked["data"]["revokeApiKey"]["state"] == "REVOKED"

        async def refused_on_b() -> bool:
            r = await c.b.http.post(
                "/graphql",
                json={"query": "{ viewer { apiKey { keyId } } }"},
                headers={"Authorization": f"Bearer {key}"},
            )
            return r.status_code == 401

        assert await eventually(refused_on_b, within=1.0) < 1.0


async def test_revocation_lands_within_a_second_while_redis_is_down() -> None:
    """No broadcast can arrive: the second instance confirms warm keys against the store instead."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    async with cluster(redis_url=dead, redis_failure_mode="open") as c:
        tenant = await new_tenant(c.a, c.admin_key, "outage")
        key, key_id = await new_key(c.a, c.admin_key, tenant, ["signals:read"])
        for _ in range(3):
            assert (await c.b.rest(key)).status_code == 200
        lookups = c.b.services.authenticator.lookups
        await c.a.ok(c.admin_key, REVOKE, keyId=key_id)

        async def refused_on_b() -> bool:
            return (await c.b.rest(key)).status_code == 401

        assert await eventually(refused_on_b, within=1.0) < 1.0
        assert c.b.services.authenticator.lookups > lookups  # confirmed in the store, not broadcast
        assert c.b.services.bus.received == 0
