"""Webhook test helpers: a real HTTP receiver on 127.0.0.1 that verifies Standard Webhooks signatures
(with the ``standardwebhooks`` library, as a customer's receiver would) and can fail on purpose."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from standardwebhooks import Webhook

from tenants.principal import Principal


@dataclass
class Receiver:
    """Answers each request with ``answer(webhook_id, attempt)`` (a status; default 204)."""

    port: int = 0
    secrets: list[str] = field(default_factory=list)
    answer: Callable[[str, int], int] = lambda _id, _n: 204
    delay: float = 0.0
    location: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    acknowledged: Counter[str] = field(default_factory=Counter)
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def verified(self, body: bytes, headers: dict[str, str]) -> Any:
        for secret in self.secrets:
            try:
                return Webhook(secret).verify(body, headers)
            except Exception:  # noqa: S112 - the next secret may match
                continue
        return None


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            msg_id = headers.get("webhook-id", "")
            with receiver.lock:
                receiver.attempts[msg_id] += 1
                attempt = receiver.attempts[msg_id]
            if receiver.delay:
                threading.Event().wait(receiver.delay)
            payload = receiver.verified(body, headers) if receiver.secrets else orjson.loads(body)
            if payload is None:
                with receiver.lock:
                    receiver.bad_signatures += 1
                status = 400
            else:
                status = receiver.answer(msg_id, attempt)
            with receiver.lock:
                receiver.requests.append({"id": msg_id, "headers": headers, "payload": payload, "status": status})
                if 200 <= status < 300:
                    receiver.acknowledged[msg_id] += 1
            self.send_response(status)
            if receiver.location:
                self.send_header("location", receiver.location)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    return Handler


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    servers: list[ThreadingHTTPServer] = []

    def start(**kwargs: Any) -> Receiver:
        receiver = Receiver(**kwargs)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
        server.daemon_threads = True
        receiver.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return receiver

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver(receiver_factory: Callable[..., Receiver]) -> Receiver:
    return receiver_factory()


def principal(tenant_id: str, *scopes: str) -> Principal:
    return Principal(tenant_id=tenant_id, key_id=f"key_{tenant_id}", scopes=frozenset(scopes), plan="pro")


async def add_tenant(db: Any, tenant_id: str, plan: str = "pro") -> None:
    from datetime import UTC, datetime

    await db["tenants"].insert_one(
        {"tenant_id": tenant_id, "name": tenant_id, "plan": plan, "created_at": datetime.now(UTC)}
    )


ADMIN_SCOPE = "webhooks:manage"


async def gql(api: Any, key: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = await api.http.post(
        "/graphql", json={"query": query, "variables": variables}, headers={"authorization": f"Bearer {key}"}
    )
    body: dict[str, Any] = response.json()
    return body


async def wait_for(condition: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("condition not met")
