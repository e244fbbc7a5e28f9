"""A synchronous harness for the three ``/graphql`` transports (HTTP GET, HTTP POST and a
graphql-transport-ws socket) on one app, through Starlette's TestClient."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.websockets import WebSocketDisconnect

with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 for its TestClient; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from ingest.demo import DemoSource
from insider_selling.app import build_app
from tests.helpers import SMALL_DEMO, make_settings

TRANSPORTS = ("GET", "POST", "WS")


def wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@contextmanager
def app_client(*, store: Any = None, prime: bool = True, rules: Any = (), **settings: Any) -> Iterator[TestClient]:
    """A running app (its lifespan entered, its first run scored); ``store`` shares an open store
    between apps (two "workers"); ``rules``: admission rules (gql.admission)."""
    app = build_app(
        make_settings(**settings),
        source=DemoSource(SMALL_DEMO),
        run_scheduler=False,
        announce=lambda _: None,
        store=store,
        prime=prime,
        rules=rules,
    )
    with TestClient(app) as client:
        wait_for(lambda: client.portal.call(app.state.services.leaderboard.current_run) is not None, 60)
        yield client


def services(client: TestClient) -> Any:
    return client.app.state.services  # type: ignore[attr-defined]


def new_key(
    client: TestClient, scopes: list[str], *, rate_limit: int | None = None, expires_at: datetime | None = None
) -> tuple[str, str]:
    """(key, key id) of a new tenant's key."""
    keys = services(client).keys

    async def go() -> tuple[str, str]:
        tenant = await keys.create_tenant(None, "t", "pro", rate_limit_per_minute=rate_limit)
        issued = await keys.issue(tenant["tenant_id"], "k", scopes, expires_at=expires_at)
        return issued.key, issued.record["key_id"]

    return client.portal.call(go)


def revoke(client: TestClient, key_id: str) -> None:
    keys = services(client).keys
    client.portal.call(lambda: keys.revoke_key(None, key_id))


@dataclass
class Outcome:
    """What a transport answered: the HTTP status (None on a socket), the first error's code
    (None when it succeeded), the close code when the socket was closed, and the body."""

    status: int | None
    code: str | None
    closed: int | None = None
    body: Any = None


class Socket:
    """An open, acknowledged graphql-transport-ws socket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._ids = 0

    def run(self, query: str, variables: dict[str, Any] | None = None) -> Outcome:
        """Send one ``subscribe`` and read until its ``complete`` or ``error``."""
        self._ids += 1
        op_id = str(self._ids)
        try:
            self.ws.send_json({"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables}})
            result = None
            while True:
                message = self.ws.receive_json()
                assert message.get("id") == op_id, message
                if message["type"] == "next":
                    result = message["payload"]
                elif message["type"] == "error":
                    return Outcome(None, message["payload"][0]["extensions"]["code"], body=message["payload"])
                elif message["type"] == "complete":
                    errors = (result or {}).get("errors")
                    return Outcome(None, errors[0]["extensions"]["code"] if errors else None, body=result)
        except WebSocketDisconnect as closed:
            return Outcome(None, None, closed=closed.code)


@contextmanager
def socket(client: TestClient, key: str | None) -> Iterator[Socket | Outcome]:
    """An acknowledged socket, or the Outcome of a refused ``connection_init``."""
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"} if key else {}})
        try:
            message = ws.receive_json()
        except WebSocketDisconnect as closed:
            yield Outcome(None, None, closed=closed.code)
            return
        assert message == {"type": "connection_ack"}, message
        yield Socket(ws)


def call(
    client: TestClient, transport: str, key: str | None, query: str, variables: dict[str, Any] | None = None
) -> Outcome:
    """One operation over ``transport`` with ``key``."""
    if transport == "WS":
        with socket(client, key) as ws:
            if isinstance(ws, Outcome):
                return ws
            return ws.run(query, variables)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if transport == "GET":
        import orjson

        params = {"query": query}
        if variables is not None:
            params["variables"] = orjson.dumps(variables).decode()
        response = client.get("/graphql", params=params, headers=headers)
    else:
        response = client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    body = response.json()
    if "error" in body:  # the REST envelope (authentication)
        return Outcome(response.status_code, body["error"]["code"], body=body)
    errors = body.get("errors")
    return Outcome(response.status_code, errors[0]["extensions"]["code"] if errors else None, body=body)
