"""``insider-selling admin tenants|keys|audit``: parsed by the real CLI parser, run against a store."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from insider_selling.cli import build_parser, main
from store.memory import MemoryClient
from tenants import commands
from tenants.auth import Authenticator
from tenants.errors import InvalidKey
from tenants.hashing import KeyHasher
from tenants.repository import TenantRepository
from tenants.revocation import CHANNEL


async def admin(db: Any, *argv: str, redis: Any = None) -> tuple[int, Any, str]:
    args = build_parser().parse_args(["admin", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = await commands.run(args, db, argon2_profile="test", redis=redis, out=out, err=err)
    return code, json.loads(out.getvalue()) if out.getvalue() else None, err.getvalue()


async def test_operator_lifecycle_from_the_command_line() -> None:
    db = MemoryClient()["cli"]
    code, tenant, _ = await admin(db, "tenants", "create", "--name", "acme", "--plan", "pro",
                                  "--rate-limit-per-minute", "120")
    assert code == 0 and tenant["plan"] == "pro" and tenant["rate_limit_per_minute"] == 120
    assert tenant["quota_per_month"] == 1_000_000 and tenant["custom_limits"] is True
    code, issued, err = await admin(db, "keys", "issue", "--tenant", tenant["id"], "--name", "ops",
                                    "--scope", "signals:read", "--scope", "keys:manage")
    assert code == 0 and issued["key"].startswith("sk_live_") and "only once" in err
    assert issued["api_key"]["scopes"] == ["keys:manage", "signals:read"]
    key_id = issued["api_key"]["key_id"]
    code, listed, _ = await admin(db, "keys", "list", "--tenant", tenant["id"])
    assert [k["key_id"] for k in listed] == [key_id] and issued["key"][8:] not in json.dumps(listed)
    assert "secret_hash" not in listed[0]
    code, rotated, _ = await admin(db, "keys", "rotate", key_id, "--grace-seconds", "0")
    assert code == 0 and rotated["api_key"]["rotated_from"] == key_id
    auth = Authenticator(TenantRepository(db), KeyHasher("test"))
    with pytest.raises(InvalidKey):
        await auth.authenticate(f"Bearer {issued['key']}", "c")
    assert (await auth.authenticate(f"Bearer {rotated['key']}", "c")).tenant_id == tenant["id"]
    new_id = rotated["api_key"]["key_id"]
    code, revoked, _ = await admin(db, "keys", "revoke", new_id)
    assert code == 0 and revoked["state"] == "revoked"
    code, page, _ = await admin(db, "audit", "--tenant", tenant["id"])
    actions = [e["action"] for e in page["entries"]]
    assert actions == ["key.revoked", "key.rotated", "key.issued", "tenant.created"]
    assert {e["actor"] for e in page["entries"]} == {"operator-cli"}
    assert rotated["key"][8:] not in json.dumps(page)
    code, tenants, _ = await admin(db, "tenants", "list")
    assert [t["name"] for t in tenants] == ["acme"]


async def test_refused_arguments_exit_2_with_one_line() -> None:
    db = MemoryClient()["cli"]
    code, _, tenant_err = await admin(db, "tenants", "create", "--name", "x", "--plan", "free",
                                      "--rate-limit-per-minute", "0")
    assert code == 2 and tenant_err.startswith("error: rateLimitPerMinute")
    code, out, err = await admin(db, "keys", "revoke", "key_000000000000")
    assert code == 1 and out is None and err == "error: no such key\n"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["admin", "keys", "issue", "--tenant", "t", "--name", "n", "--scope", "root"])


@pytest.mark.redis
async def test_cli_revocation_is_broadcast(redis_url: str) -> None:
    import redis.asyncio as aioredis

    db = MemoryClient()["cli"]
    client = aioredis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(CHANNEL)
        _, tenant, _ = await admin(db, "tenants", "create", "--name", "b", "--plan", "free")
        _, issued, _ = await admin(db, "keys", "issue", "--tenant", tenant["id"], "--name", "n",
                                   "--scope", "signals:read")
        await admin(db, "keys", "revoke", issued["api_key"]["key_id"], redis=client)
        received = []
        for _ in range(20):  # an ignored subscribe confirmation also answers None
            message = await pubsub.get_message(timeout=0.1)
            if message is not None:
                received.append(message["data"].decode())
                break
        assert received == [issued["api_key"]["key_id"]]
    finally:
        await pubsub.aclose()
        await client.aclose()


def test_embedded_mode_refuses_admin_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["admin", "tenants", "list"]) == 2
    assert "MONGODB_URI" in capsys.readouterr().err
