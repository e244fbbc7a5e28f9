"""Endpoints on both store backends: tenant isolation, scopes, bounds on every input, plan
limits, secret rotation with an overlap, replay, disabling after failures (audited), the run's
outbox fanned out once, retention indexes, and no secret in the logs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook

from store import StoreHandle
from tests.webhooks.receiver import Receiver, add_tenant, principal
from webhooks.config import WebhookConfig
from webhooks.dispatcher import Dispatcher
from webhooks.errors import InvalidArgument, NotFound, PermissionDenied, WebhooksDisabled
from webhooks.service import WebhookService

KEY = b"server-key-for-tests-0123456789ab"
FAST = WebhookConfig(
    server_key=KEY, allow_http=True, allow_private=True, retry_schedule=(0.01, 0.01), jitter=0.0, timeout=5.0
)
ALICE = principal("alice", "webhooks:manage")
BOB = principal("bob", "webhooks:manage")
ADMIN = principal("ops", "admin")
READER = principal("alice", "signals:read", "keys:manage")


@pytest.fixture
async def service(store: StoreHandle) -> WebhookService:
    for tenant in ("alice", "bob", "ops"):
        await add_tenant(store.db, tenant)
    return WebhookService(store.db, FAST)


async def test_a_tenant_never_sees_nor_manages_another_tenants_endpoints(service: WebhookService) -> None:
    mine = await service.create(ALICE, url="https://a.example/h", events=["coin.listed"])
    assert mine.secret.startswith("whsec_") and mine.endpoint["tenant_id"] == "alice"
    endpoint_id = mine.endpoint["endpoint_id"]
    assert [e["endpoint_id"] for e in await service.list_endpoints(ALICE)] == [endpoint_id]
    assert await service.list_endpoints(BOB) == []
    for call in (
        service.get(BOB, endpoint_id),
        service.update(BOB, endpoint_id, url="https://b.example/h"),
        service.set_paused(BOB, endpoint_id, True),
        service.delete(BOB, endpoint_id),
        service.rotate_secret(BOB, endpoint_id),
        service.replay(BOB, endpoint_id, datetime.now(UTC) - timedelta(hours=1)),
        service.send_test(BOB, endpoint_id),
        service.deliveries(BOB, endpoint_id, 10),
    ):
        with pytest.raises(NotFound):
            await call
    with pytest.raises(NotFound):
        await service.list_endpoints(BOB, "alice")
    with pytest.raises(NotFound):
        await service.create(BOB, url="https://b.example/h", events=["coin.listed"], tenant_id="alice")
    with pytest.raises(PermissionDenied):
        await service.list_endpoints(READER)
    # admin manages any tenant's endpoints
    assert [e["endpoint_id"] for e in await service.list_endpoints(ADMIN, "alice")] == [endpoint_id]
    assert (await service.set_paused(ADMIN, endpoint_id, True))["state"] == "paused"
    assert await service.delete(ALICE, endpoint_id) is True
    assert await service.list_endpoints(ALICE) == []


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"url": "http://plain.example/h"}, "url"),
        ({"url": "https://x.example/" + "p" * 2100}, "url"),
        ({"events": []}, "events"),
        ({"events": ["coin.listed"] * 7}, "events"),
        ({"events": ["coin.exploded"]}, "events"),
        ({"events": ["coin.score_crossed"]}, "threshold"),
        ({"events": ["coin.score_crossed"], "threshold": 11.0}, "threshold"),
        ({"events": ["coin.score_crossed"], "threshold": 0.0}, "threshold"),
        ({"events": ["coin.score_crossed"], "threshold": float("nan")}, "threshold"),
        ({"min_score": -1.0}, "minScore"),
        ({"min_score": float("inf")}, "minScore"),
        ({"direction": "sideways"}, "direction"),
        ({"description": "x" * 201}, "description"),
        ({"description": "bad\x00"}, "description"),
        ({"tenant_id": "t" * 65}, "tenantId"),
    ],
)
async def test_bad_input_is_refused_with_its_parameter(store: StoreHandle, kwargs: dict[str, Any], param: str) -> None:
    await add_tenant(store.db, "alice")
    service = WebhookService(store.db, WebhookConfig(server_key=KEY))  # no plain http here
    arguments: dict[str, Any] = {"url": "https://ok.example/h", "events": ["coin.listed"], **kwargs}
    with pytest.raises(InvalidArgument) as caught:
        await service.create(ADMIN if "tenant_id" in kwargs else ALICE, **arguments)
    assert caught.value.param == param
    assert await store.db["webhook_endpoints"].count_documents({}) == 0


async def test_bounds_on_the_other_operations(service: WebhookService) -> None:
    created = await service.create(ALICE, url="https://a.example/h", events=["coin.listed"])
    endpoint_id = created.endpoint["endpoint_id"]
    with pytest.raises(InvalidArgument):
        await service.deliveries(ALICE, endpoint_id, 0)
    with pytest.raises(InvalidArgument):
        await service.deliveries(ALICE, endpoint_id, 101)
    with pytest.raises(InvalidArgument):
        await service.replay(ALICE, endpoint_id, datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(InvalidArgument):
        await service.replay(ALICE, endpoint_id, datetime.now(UTC) - timedelta(days=31))
    with pytest.raises(InvalidArgument):
        await service.get(ALICE, "x" * 65)
    with pytest.raises(InvalidArgument):
        await service.update(ALICE, endpoint_id, events=["coin.score_crossed"])  # needs a threshold


async def test_the_plan_caps_endpoints(store: StoreHandle) -> None:
    await add_tenant(store.db, "alice", plan="free")
    service = WebhookService(store.db, FAST)
    for n in range(2):
        await service.create(ALICE, url=f"https://a.example/{n}", events=["run.completed"])
    with pytest.raises(InvalidArgument, match="allows 2 webhook endpoints"):
        await service.create(ALICE, url="https://a.example/3", events=["run.completed"])


async def test_without_a_server_key_webhooks_are_disabled(store: StoreHandle) -> None:
    await add_tenant(store.db, "alice")
    with pytest.raises(WebhooksDisabled):
        await WebhookService(store.db, WebhookConfig()).create(ALICE, url="https://a.example/h", events=["coin.listed"])


async def test_a_rotated_secret_overlaps_and_a_test_ping_is_signed_by_both(
    service: WebhookService, receiver: Receiver
) -> None:
    created = await service.create(ALICE, url=receiver.url, events=["coin.listed"])
    endpoint_id = created.endpoint["endpoint_id"]
    rotated = await service.rotate_secret(ALICE, endpoint_id)
    assert rotated.secret != created.secret and rotated.endpoint["previous_until"] is not None
    delivery, outcome = await service.send_test(ALICE, endpoint_id)
    assert outcome.ok and delivery["status"] == "delivered"
    request = receiver.requests[0]
    body = request["payload"]
    assert body["type"] == "webhook.test"
    raw = __import__("orjson").dumps(body)
    for secret in (created.secret, rotated.secret):  # a receiver with either secret verifies it
        assert Webhook(secret).verify(raw, request["headers"])["type"] == "webhook.test"
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    # after the overlap only the new secret signs
    await service.store.update_endpoint(endpoint_id, {"previous_until": datetime.now(UTC) - timedelta(seconds=1)})
    await service.send_test(ALICE, endpoint_id)
    late = receiver.requests[1]
    raw = __import__("orjson").dumps(late["payload"])
    assert Webhook(rotated.secret).verify(raw, late["headers"])
    with pytest.raises(Exception, match="signature"):
        Webhook(created.secret).verify(raw, late["headers"])
    attempts = await service.attempts(ALICE, endpoint_id, 10)
    assert [a["status"] for a in attempts] == ["succeeded", "succeeded"] and attempts[0]["status_code"] == 204


async def _run_with_outbox(db: Any, run_id: str, changes: list[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    await db["runs"].insert_one(
        {
            "run_id": run_id,
            "at": now,
            "status": "succeeded",
            "finished_at": now,
            "coins": 2,
            "listed": 1,
            "changes": changes,
            "outbox_pending": True,
        }
    )


CHANGE = {
    "coin_id": "abc",
    "symbol": "ABC",
    "name": "Abc",
    "score": 6.5,
    "previous_score": 0.0,
    "phase": "distribution",
    "previous_phase": "none",
}


async def test_the_outbox_fans_out_once_and_replay_resends_with_the_same_id(
    store: StoreHandle, service: WebhookService, receiver: Receiver
) -> None:
    created = await service.create(
        ALICE, url=receiver.url, events=["coin.listed", "coin.phase_changed", "run.completed"], min_score=5.0
    )
    receiver.secrets.append(created.secret)
    other = await service.create(BOB, url=receiver.url, events=["coin.listed"], min_score=7.0)  # below its line
    await _run_with_outbox(store.db, "run_1", [CHANGE])
    dispatcher = Dispatcher(store.db, FAST)
    try:
        assert await dispatcher.fan_out() == 3
        assert await dispatcher.fan_out() == 0  # the flag is cleared
        await store.db["runs"].update_one({"run_id": "run_1"}, {"$set": {"outbox_pending": True}})
        assert await dispatcher.fan_out() == 0  # a repeated fan-out (a crash) inserts nothing twice
        await dispatcher.pass_once()
        await dispatcher.idle()
        assert sorted(r["payload"]["type"] for r in receiver.requests) == [
            "coin.listed",
            "coin.phase_changed",
            "run.completed",
        ]
        assert await service.deliveries(BOB, other.endpoint["endpoint_id"], 10) == []
        await dispatcher.pass_once()
        await dispatcher.idle()
        assert len(receiver.requests) == 3  # acknowledged: never sent again
        endpoint_id = created.endpoint["endpoint_id"]
        assert await service.replay(ALICE, endpoint_id, datetime.now(UTC) - timedelta(minutes=5)) == 3
        await dispatcher.pass_once()
        await dispatcher.idle()
        assert len(receiver.requests) == 6
        first, again = receiver.requests[:3], receiver.requests[3:]
        assert sorted(r["id"] for r in first) == sorted(r["id"] for r in again)  # same webhook-id
        assert receiver.bad_signatures == 0
    finally:
        await dispatcher.aclose()


async def test_a_failing_endpoint_is_retried_then_disabled_and_audited(
    store: StoreHandle, service: WebhookService, receiver: Receiver
) -> None:
    receiver.answer = lambda _id, _n: 500
    created = await service.create(ALICE, url=receiver.url, events=["coin.listed"])
    endpoint_id = created.endpoint["endpoint_id"]
    config = WebhookConfig(
        server_key=KEY,
        allow_http=True,
        allow_private=True,
        retry_schedule=(0.01, 0.01),
        jitter=0.0,
        disable_after_attempts=3,
        disable_after_seconds=0,
    )
    await _run_with_outbox(store.db, "run_1", [CHANGE])
    dispatcher = Dispatcher(store.db, config)
    try:
        for _ in range(200):
            await dispatcher.pass_once()
            await dispatcher.idle()
            delivery = await store.db["webhook_deliveries"].find_one({"endpoint_id": endpoint_id})
            endpoint = await service.get(ALICE, endpoint_id)
            if endpoint["state"] == "disabled":
                break
            await __import__("asyncio").sleep(0.02)
        assert endpoint["state"] == "disabled" and endpoint["consecutive_failures"] == 3
        assert delivery is not None and delivery["status"] == "failed" and delivery["attempts"] == 3
        assert receiver.attempts[delivery["msg_id"]] == 3  # first attempt + two retries
        audit = await store.db["audit_log"].find({"action": "webhook.disabled"}).to_list()
        assert [a["target_id"] for a in audit] == [endpoint_id]
        resumed = await service.set_paused(ALICE, endpoint_id, False)
        assert resumed["state"] == "active" and resumed["consecutive_failures"] == 0
    finally:
        await dispatcher.aclose()


async def test_retention_indexes(store: StoreHandle) -> None:
    attempts = await store.db["webhook_attempts"].index_information()
    ttl = [i for i in attempts.values() if "expireAfterSeconds" in i]
    assert [i["expireAfterSeconds"] for i in ttl] == [7 * 86_400]
    deliveries = await store.db["webhook_deliveries"].index_information()
    assert any(i.get("unique") and [k for k, _ in i["key"]] == ["endpoint_id", "msg_id"] for i in deliveries.values())


async def test_the_secret_is_never_logged_in_full(
    service: WebhookService, receiver: Receiver, caplog: pytest.LogCaptureFixture, store: StoreHandle
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await service.create(ALICE, url=receiver.url, events=["coin.listed"])
    rotated = await service.rotate_secret(ALICE, created.endpoint["endpoint_id"])
    await service.send_test(ALICE, created.endpoint["endpoint_id"])
    audit = await store.db["audit_log"].find({}, {"_id": 0}).to_list()
    stored = await store.db["webhook_endpoints"].find({}, {"_id": 0}).to_list()
    for secret in (created.secret, rotated.secret):
        assert secret not in caplog.text
        assert secret not in repr(audit) and secret not in repr(stored)
        assert secret[6:] not in repr(stored)  # the store holds salts, not secrets
    assert any(e["details"].get("secret", "").endswith("…") for e in audit)


def test_receiver_helper_rejects_a_wrong_secret(receiver_factory: Callable[..., Receiver]) -> None:
    receiver = receiver_factory(secrets=["whsec_" + "A" * 43 + "="])
    assert receiver.verified(b"{}", {"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,x"}) is None
