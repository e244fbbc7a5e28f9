"""Helpers for the tenants tests (``tests.tenants.helpers``): apps that can share one store (and one Redis), and GraphQL
callers: ``gql`` executes ``AdminQuery``/``AdminMutation`` with the per-request context the view
builds (so these tests do not depend on the data schema), ``http_gql`` goes through ``/graphql``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import strawberry

from gql.admin import AdminMutation, AdminQuery
from ingest.demo import DemoSource
from insider_selling.app import build_app
from insider_selling.settings import Settings
from store import StoreHandle, open_store
from tenants.principal import Principal
from tests.helpers import SMALL_DEMO, make_settings

DATA = "/v1/insider-selling/data"
_LOCAL_SCHEMA = strawberry.Schema(query=AdminQuery, mutation=AdminMutation)


@dataclass(slots=True)
class Instance:
    app: Any
    http: httpx.AsyncClient

    @property
    def services(self) -> Any:
        return self.app.state.services

    async def rest(self, key: str | None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return await self.http.get(DATA, params=params, headers=headers)

    async def http_gql(self, key: str, query: str, **variables: Any) -> dict[str, Any]:
        """The same through the app's ``/graphql`` endpoint (the root schema)."""
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers={"Authorization": f"Bearer {key}"}
        )
        body: dict[str, Any] = response.json()
        return body

    async def gql(self, key: str, query: str, **variables: Any) -> dict[str, Any]:
        """Run a GraphQL document as ``key`` against ``AdminQuery``/``AdminMutation`` with the
        per-request context the view builds; returns ``{"data": ..., "errors": [...]}``."""
        from gql.context import Context
        from tenants.errors import TenantError

        try:
            principal = await self.services.authenticator.authenticate(f"Bearer {key}", "127.0.0.1")
        except TenantError as exc:
            return {"data": None, "errors": [{"message": str(exc), "extensions": {"code": exc.code}}]}  # type: ignore[attr-defined]
        result = await _LOCAL_SCHEMA.execute(
            query, variable_values=variables, context_value=Context.build(self.services, principal)
        )
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [{"message": e.message, "extensions": e.extensions or {}} for e in result.errors]
        return out

    async def ok(self, key: str, query: str, **variables: Any) -> dict[str, Any]:
        body = await self.gql(key, query, **variables)
        assert not body.get("errors"), body.get("errors")
        data: dict[str, Any] = body["data"]
        return data


def error_of(body: dict[str, Any]) -> tuple[str, str]:
    """(code, message) of the only error."""
    assert body.get("errors"), body
    assert len(body["errors"]) == 1, body["errors"]
    error = body["errors"][0]
    return error.get("extensions", {}).get("code"), error["message"]


async def _wait_run(app: Any, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await app.state.services.leaderboard.current_run() is not None:
            return
        app.state.services.leaderboard.invalidate()
        await asyncio.sleep(0.05)
    raise TimeoutError("no scoring run")


@asynccontextmanager
async def instance(
    settings: Settings, store: StoreHandle | None = None, *, prime: bool = True
) -> AsyncIterator[Instance]:
    app = build_app(
        settings,
        source=DemoSource(SMALL_DEMO),
        run_scheduler=False,
        prime=prime,
        announce=lambda line: None,
        store=store,
    )
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        if prime or store is not None:
            await _wait_run(app)
        http = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.0.0.1", 1234)), base_url="http://test")
        )
        yield Instance(app, http)


@dataclass(slots=True)
class Cluster:
    """Two app instances (two "workers") on one store and, when given, one Redis."""

    store: StoreHandle
    a: Instance
    b: Instance
    admin_key: str
    read_key: str


@asynccontextmanager
async def cluster(shared: StoreHandle | None = None, **overrides: Any) -> AsyncIterator[Cluster]:
    """Two instances on ``shared`` (the ``store`` fixture: each backend), or on a new stand-in."""
    settings = make_settings(**overrides)
    store = shared or await open_store(None, settings.mongodb_database)
    try:
        async with instance(settings, store) as a, instance(settings, store, prime=False) as b:
            admin, read = a.app.state.bootstrap
            yield Cluster(store, a, b, admin.key, read.key)
    finally:
        if shared is None:
            await store.aclose()


async def eventually(check: Callable[[], Awaitable[bool]], within: float, step: float = 0.02) -> float:
    """Poll ``check`` until it is true; return the seconds it took, or fail after ``within`` s."""
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(step)


CREATE_TENANT = """mutation($name: String!, $plan: String!, $rpm: Int, $quota: Int) {
  createTenant(name: $name, plan: $plan, rateLimitPerMinute: $rpm, quotaPerMonth: $quota) {
    id name plan rateLimitPerMinute quotaPerMonth customLimits } }"""
ISSUE = """mutation($tenantId: ID!, $name: String!, $scopes: [String!]!, $expiresAt: DateTime) {
  issueApiKey(tenantId: $tenantId, name: $name, scopes: $scopes, expiresAt: $expiresAt) {
    key apiKey { keyId tenantId name scopes state createdAt lastUsedAt expiresAt } } }"""
ROTATE = """mutation($keyId: ID!, $grace: Int!) { rotateApiKey(keyId: $keyId, gracePeriodSeconds: $grace) {
  key apiKey { keyId name scopes state rotatedFrom } } }"""
REVOKE = """mutation($keyId: ID!) { revokeApiKey(keyId: $keyId) { keyId state revokedAt } }"""
LIST_KEYS = """query($tenantId: ID!) { apiKeys(tenantId: $tenantId) {
  keyId tenantId name scopes state createdAt lastUsedAt expiresAt revokedAt graceUntil replacedBy } }"""
AUDIT = """query($tenantId: ID, $first: Int, $after: String) {
  auditLog(tenantId: $tenantId, first: $first, after: $after) {
  edges { cursor node { id at action actor actorKeyId tenantId targetType targetId details } }
  hasNextPage endCursor } }"""


async def new_tenant(inst: Instance, admin_key: str, name: str, plan: str = "pro", **limits: Any) -> str:
    data = await inst.ok(
        admin_key, CREATE_TENANT, name=name, plan=plan, rpm=limits.get("rpm"), quota=limits.get("quota")
    )
    return str(data["createTenant"]["id"])


async def new_key(
    inst: Instance, actor_key: str, tenant_id: str, scopes: list[str], name: str = "k", **extra: Any
) -> tuple[str, str]:
    data = await inst.ok(actor_key, ISSUE, tenantId=tenant_id, name=name, scopes=scopes, **extra)
    return data["issueApiKey"]["key"], data["issueApiKey"]["apiKey"]["keyId"]


class RestartableRedis:
    """A private redis-server (no persistence) that a test stops and starts again on the same port:
    a restart loses every key, as a Redis without persistence does."""

    def __init__(self, workdir: Any) -> None:
        import shutil

        from tests.helpers import free_port

        binary = shutil.which("redis-server")
        if binary is None:
            import os

            import pytest

            if os.environ.get("CI"):
                pytest.fail("redis-server is not installed; .ci/run installs it")
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: Any = None

    def start(self) -> None:
        import socket
        import subprocess

        self.proc = subprocess.Popen(  # noqa: S603
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def principal(
    key: str = "key_a", tenant: str = "ten_a", rpm: int = 60, month: int = 10_000, key_rpm: int | None = None
) -> Principal:
    return Principal(
        tenant_id=tenant,
        key_id=key,
        scopes=frozenset({"signals:read"}),
        plan="free",
        per_minute=rpm,
        per_month=month,
        key_per_minute=key_rpm or rpm,
    )
