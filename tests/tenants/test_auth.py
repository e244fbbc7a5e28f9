"""Authentication: malformed keys rejected by checksum before any lookup, the failure throttle, the
warm cache and its limits, bounded cold verification, argon2id parameters, batched last use."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from store.memory import MemoryClient
from tenants.auth import Authenticator
from tenants.errors import InvalidKey, MalformedKey, MissingKey, TooManyFailures
from tenants.hashing import PROFILES, KeyHasher
from tenants.keys import KEY_LEN, generate_key, parse_key, redact
from tenants.repository import TenantRepository
from tenants.service import KeyService
from tests.helpers import make_settings
from tests.tenants.helpers import instance


async def _setup(**auth: object) -> tuple[MemoryClient, Authenticator, KeyService, str]:
    client = MemoryClient()
    repo = TenantRepository(client["t"])
    hasher = KeyHasher("test")
    service = KeyService(repo, hasher)
    tenant = await repo.create_tenant("t", "free")
    issued = await service.issue(tenant["tenant_id"], "k", ["signals:read"])
    return client, Authenticator(repo, hasher, **auth), service, issued.key  # type: ignore[arg-type]


def _mangle(key: str) -> list[str]:
    flipped = key[:20] + ("A" if key[20] != "A" else "B") + key[21:]
    return [
        flipped,  # one character changed: the CRC32 no longer matches
        key[:-1],  # truncated
        key + "x",  # too long
        key.replace("sk_live_", "sk_test_"),  # wrong prefix
        key[:-6] + "000000",  # forged checksum
        "sk_live_" + "!" * (KEY_LEN - 8),  # wrong alphabet
        "sk_live_",
    ]


async def test_malformed_keys_are_rejected_without_a_store_lookup() -> None:
    client, auth, _, key = await _setup(max_failures=1000)
    before = dict(client.ops)
    for bad in _mangle(key):
        with pytest.raises((MalformedKey, MissingKey)):
            await auth.authenticate(f"Bearer {bad}", "10.0.0.9")
    assert auth.lookups == 0
    assert dict(client.ops) == before  # no store operation at all
    principal = await auth.authenticate(f"Bearer {key}", "10.0.0.9")  # the real key: one lookup
    assert auth.lookups == 1 and principal.scopes == {"signals:read"}


async def test_malformed_keys_over_http_cost_no_lookup() -> None:
    async with instance(make_settings(), prime=False) as inst:
        key = inst.app.state.bootstrap[1].key
        lookups = inst.services.authenticator.lookups
        ops = sum(inst.services.store.client.ops.values())
        for bad in [m for m in _mangle(key) if m.startswith("sk_live_")]:
            response = await inst.rest(bad)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "malformed_api_key"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert inst.services.authenticator.lookups == lookups
        assert sum(inst.services.store.client.ops.values()) == ops


def test_key_format() -> None:
    parsed = generate_key()
    assert len(parsed.full) == KEY_LEN and parsed.full.startswith("sk_live_")
    assert parse_key(parsed.full) == parsed
    assert parsed.key_id not in repr(parsed.full[20:]) and parsed.full not in repr(parsed)
    assert redact(parsed.full) == parsed.full[:20] + "…"
    assert redact("garbage") == "<redacted>"
    assert len({generate_key().full for _ in range(200)}) == 200


def test_argon2_profiles_meet_owasp_minimum() -> None:
    owasp = PROFILES["owasp"]
    assert owasp["memory_cost"] >= 19 * 1024 and owasp["time_cost"] >= 2 and owasp["parallelism"] >= 1
    hasher = KeyHasher("owasp")
    stored = hasher.hash("sk_live_x")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hasher.verify(stored, "sk_live_x") and not hasher.verify(stored, "sk_live_y")
    assert not hasher.verify("not a hash", "sk_live_x")


async def test_unknown_keys_are_throttled_per_address() -> None:
    _, auth, _, key = await _setup(max_failures=5, failure_window=60.0)
    unknown = generate_key().full  # well formed, not in the store
    for _ in range(5):
        with pytest.raises(InvalidKey):
            await auth.authenticate(f"Bearer {unknown}", "10.0.0.1")
    lookups = auth.lookups
    with pytest.raises(TooManyFailures) as info:
        await auth.authenticate(f"Bearer {unknown}", "10.0.0.1")
    assert info.value.retry_after > 50
    assert auth.lookups == lookups  # the same failing key again: remembered, no lookup or argon2
    with pytest.raises(TooManyFailures):  # another failing key from there: 429 too
        await auth.authenticate(f"Bearer {generate_key().full}", "10.0.0.1")
    # another address is unaffected (and a valid key from the throttled one works: test_failed_attempts)
    with pytest.raises(InvalidKey):
        await auth.authenticate(f"Bearer {unknown}", "10.0.0.2")
    assert (await auth.authenticate(f"Bearer {key}", "10.0.0.2")).key_id == parse_key(key).key_id


async def test_failed_attempts_over_http_get_429() -> None:
    async with instance(make_settings(), prime=False) as inst:
        unknown = generate_key().full
        statuses = [(await inst.rest(unknown)).status_code for _ in range(22)]
        assert statuses[:20] == [401] * 20 and statuses[20:] == [429, 429]
        response = await inst.rest(unknown)
        assert response.json()["error"]["code"] == "too_many_failed_attempts"
        assert int(response.headers["Retry-After"]) >= 1


async def test_warm_cache_skips_argon2_and_honours_expiry_and_forget() -> None:
    _client, auth, service, key = await _setup()
    calls = 0
    verify = auth.hasher.verify

    def counting(stored: str, candidate: str) -> bool:
        nonlocal calls
        calls += 1
        return verify(stored, candidate)

    auth.hasher.verify = counting  # type: ignore[method-assign]
    for _ in range(5):
        await auth.authenticate(f"Bearer {key}", "c")
    assert calls == 1 and auth.lookups == 1
    # a wrong secret with the same key id never hits the warm entry
    other = generate_key(parse_key(key).key_id).full
    with pytest.raises(InvalidKey):
        await auth.authenticate(f"Bearer {other}", "c")
    # forget (revocation, rotation) drops it at once
    key_id = parse_key(key).key_id
    await service.repo.update_key(key_id, {"revoked_at": datetime.now(UTC)})
    auth.forget(key_id)
    with pytest.raises(InvalidKey):
        await auth.authenticate(f"Bearer {key}", "c")
    # expiry is checked on every warm hit
    tenant = (await service.repo.list_tenants())[0]["tenant_id"]
    soon = await service.issue(
        tenant, "soon", ["signals:read"], expires_at=datetime.now(UTC) + timedelta(milliseconds=300)
    )
    await auth.authenticate(f"Bearer {soon.key}", "c")
    await asyncio.sleep(0.35)
    with pytest.raises(InvalidKey):
        await auth.authenticate(f"Bearer {soon.key}", "c")


async def test_cold_verifications_are_bounded_and_off_the_event_loop() -> None:
    client = MemoryClient()
    repo = TenantRepository(client["t"])
    hasher = KeyHasher("test")
    service = KeyService(repo, hasher)
    tenant = await repo.create_tenant("t", "free")
    keys = [(await service.issue(tenant["tenant_id"], f"k{i}", ["signals:read"])).key for i in range(8)]
    auth = Authenticator(repo, hasher, max_concurrent_verifications=2)
    active = peak = 0
    lock = threading.Lock()
    verify = hasher.verify

    def slow(stored: str, candidate: str) -> bool:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)  # stands in for argon2's ~50 ms
        with lock:
            active -= 1
        return verify(stored, candidate)

    hasher.verify = slow  # type: ignore[method-assign]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    await asyncio.gather(*(auth.authenticate(f"Bearer {k}", "c") for k in keys))
    elapsed = time.monotonic() - started
    task.cancel()
    assert peak == 2  # never more than the bound at once
    assert elapsed >= 0.19  # 8 verifications, 2 at a time, 50 ms each
    assert ticks >= elapsed / 0.005 * 0.5  # the loop kept running meanwhile


async def test_last_used_is_batched_not_written_per_request() -> None:
    client, auth, service, key = await _setup()
    await auth.authenticate(f"Bearer {key}", "c")
    ops_before = dict(client.ops)
    for _ in range(50):
        await auth.authenticate(f"Bearer {key}", "c")
    assert dict(client.ops) == ops_before  # 50 warm requests, no store operation
    key_id = parse_key(key).key_id
    assert (await service.repo.get_key(key_id))["last_used_at"] is None
    assert await auth.flush_last_used() == 1
    assert (await service.repo.get_key(key_id))["last_used_at"] is not None
    assert await auth.flush_last_used() == 0  # nothing new since


async def test_warm_path_answers_only_what_the_cache_would() -> None:
    _, auth, _, key = await _setup()
    raw = f"Bearer {key}".encode()
    assert auth.authenticate_warm(raw) is None  # cold: the full path decides
    principal = await auth.authenticate(f"Bearer {key}", "10.0.0.9")
    assert auth.authenticate_warm(raw) == principal
    assert auth.pending_last_used(principal.key_id) is not None
    # other spellings and other keys go the long way (which still accepts the spellings)
    for other in (f"bearer {key}", f"Bearer  {key}", f"Bearer {key} ", f"Bearer {key}x", "Bearer sk_live_"):
        assert auth.authenticate_warm(other.encode()) is None
    assert await auth.authenticate(f"bearer  {key} ", "10.0.0.9") == principal
    auth.revalidate_after = 0.0  # the key-change listener is deaf: warm keys are confirmed first
    assert auth.authenticate_warm(raw) is None
    assert await auth.authenticate(f"Bearer {key}", "10.0.0.9") == principal
    auth.revalidate_after = None
    auth.forget(principal.key_id)  # revoked, rotated or changed
    assert auth.authenticate_warm(raw) is None
