"""scoreUpdates over graphql-transport-ws: pushed after a run, same auth, closed at once when revoked."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 for its TestClient; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from ingest.demo import DemoSource
from insider_selling.app import build_app
from tests.helpers import SMALL_DEMO, make_settings

SUBSCRIBE = (
    "subscription($m: Float) { scoreUpdates(minScore: $m) { count coins { coinId score } signal { lastRunAt } } }"
)


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = build_app(make_settings(), source=DemoSource(SMALL_DEMO), run_scheduler=False, announce=lambda _: None)
    with TestClient(app) as client:
        wait_for(lambda: client.portal.call(app.state.services.leaderboard.current_run) is not None)
        yield client


def wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def run_once(client: TestClient) -> dict[str, Any]:
    services = client.app.state.services  # type: ignore[attr-defined]
    run = client.portal.call(services.runs.latest_succeeded)
    result = client.portal.call(services.cycle.run_once, run["at"] + timedelta(minutes=30))
    assert result.status == "succeeded"
    return client.portal.call(services.runs.latest_succeeded)  # type: ignore[no-any-return]


def subscribe(ws: Any, payload: dict[str, Any] | None, client: TestClient) -> None:
    ws.send_json({"type": "connection_init", "payload": payload or {}})
    assert ws.receive_json() == {"type": "connection_ack"}
    ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"m": 1.0}}})
    updates = client.app.state.services.updates  # type: ignore[attr-defined]
    wait_for(lambda: updates.subscribers == 1)


def test_update_after_a_run_then_closed_on_revocation(client: TestClient) -> None:
    admin, read = client.app.state.bootstrap  # type: ignore[attr-defined]
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        subscribe(ws, {"Authorization": f"Bearer {read.key}"}, client)
        run = run_once(client)
        message = ws.receive_json()
        assert message["type"] == "next" and message["id"] == "1"
        pushed = message["payload"]["data"]["scoreUpdates"]
        assert pushed["signal"]["lastRunAt"] == run["at"].strftime("%Y-%m-%dT%H:%M:%SZ")
        rest = client.get(
            "/v1/insider-selling/data",
            params={"min_score": 1, "limit": 100},
            headers={"Authorization": f"Bearer {read.key}"},
        ).json()["data"]
        assert [(c["coinId"], c["score"]) for c in pushed["coins"]] == [
            (c["coin_id"], c["score"]) for c in rest["coins"]
        ]
        assert pushed["count"] == rest["count"]

        revoked = client.post(
            "/graphql",
            headers={"Authorization": f"Bearer {admin.key}"},
            json={
                "query": "mutation($k: ID!) { revokeApiKey(keyId: $k) { state } }",
                "variables": {"k": read.record["key_id"]},
            },
        )
        assert revoked.json()["data"]["revokeApiKey"]["state"] == "REVOKED"
        started = time.monotonic()
        with pytest.raises(WebSocketDisconnect) as closed:  # closed at once, not at the next push
            ws.receive_json()
        assert closed.value.code == 4403 and time.monotonic() - started < 1.0
        wait_for(lambda: client.app.state.services.updates.subscribers == 0)  # type: ignore[attr-defined]


def test_header_auth_and_unauthenticated_refused(client: TestClient) -> None:
    _, read = client.app.state.bootstrap  # type: ignore[attr-defined]
    with client.websocket_connect(
        "/graphql", subprotocols=["graphql-transport-ws"], headers={"Authorization": f"Bearer {read.key}"}
    ) as ws:
        subscribe(ws, None, client)
        run_once(client)
        assert ws.receive_json()["type"] == "next"
    for payload in ({}, {"Authorization": "Bearer sk_live_forged"}):
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init", "payload": payload})
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 4403


def test_pushes_are_charged_and_end_past_the_budget(client: TestClient) -> None:
    services = client.app.state.services  # type: ignore[attr-defined]
    tenant = client.portal.call(lambda: services.keys.create_tenant(None, "tiny", "free", rate_limit_per_minute=3))
    issued = client.portal.call(lambda: services.keys.issue(tenant["tenant_id"], "ws", ["signals:read"]))
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        subscribe(ws, {"Authorization": f"Bearer {issued.key}"}, client)  # connection_init 1, subscribe 2 of 3
        run_once(client)
        first = ws.receive_json()  # charged 3 of 3
        assert first["type"] == "next" and first["payload"]["data"]["scoreUpdates"]["count"] >= 0
        run_once(client)
        message = ws.receive_json()  # the third request in the minute is over the limit
        assert message["type"] == "next" and message["payload"]["data"] is None
        assert message["payload"]["errors"][0]["extensions"]["code"] == "rate_limited"
