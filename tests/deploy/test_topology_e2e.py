"""The production topology, run for real (issue 18): a MongoDB wire server (SecantusDB), a private
Redis, ``insider-selling admin bootstrap``, ``serve --workers 2`` and a separate ``worker`` (then a
second one), each a subprocess configured only by environment variables, the ones
``deploy/compose.yaml`` sets (addresses, the demo source and short intervals replaced).

It prints a transcript with each step's time (``pytest -s tests/deploy/test_topology_e2e.py``)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from graphql import (
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    get_named_type,
    is_leaf_type,
    is_object_type,
    is_required_argument,
)
from pymongo import AsyncMongoClient
from websockets.sync.client import connect

from gql.schema import schema as code_schema
from scoring.runs import RunStore
from tenants.keys import parse_key
from tests.helpers import ROOT, MongoServer, free_port

T = TypeVar("T")
COMPOSE = ROOT / "deploy" / "compose.yaml"
CLI = Path(sys.executable).with_name("insider-selling")
DATA = "/v1/insider-selling/data"
INTERVAL = 10  # seconds between the worker's runs (the setting's minimum)
KEY = re.compile(r"sk_live_[0-9A-Za-z]{40}")


# -- the transcript ------------------------------------------------------------------------------


@dataclass
class Transcript:
    started: float = field(default_factory=time.monotonic)
    steps: list[tuple[str, float, float, str]] = field(default_factory=list)

    def step(self, name: str, run: Callable[[], T]) -> T:
        begun = time.monotonic()
        result = run()
        self.steps.append((name, begun - self.started, time.monotonic() - begun, _summary(result)))
        return result

    def render(self) -> str:
        lines = ["", "production topology, run for real (t = seconds since the test started)"]
        for name, at, took, summary in self.steps:
            lines.append(f"  t={at:6.1f}s  {took:5.1f}s  {name}" + (f": {summary}" if summary else ""))
        lines.append(f"  total {time.monotonic() - self.started:.1f}s")
        return "\n".join(lines)


def _summary(result: Any) -> str:
    return result if isinstance(result, str) else ""


def eventually(check: Callable[[], T | None], within: float, what: str, step: float = 0.2) -> T:
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within:.0f} s")
        time.sleep(step)


# -- the processes, as compose starts them -------------------------------------------------------


def compose_service(name: str) -> tuple[list[str], dict[str, str]]:
    """The service's command (after ``insider-selling``) and environment, from compose.yaml."""
    service = yaml.safe_load(COMPOSE.read_text())["services"][name]
    command = list(service["command"])
    assert command[0] == "insider-selling", command
    return command[1:], {k: str(v) for k, v in service["environment"].items()}


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # what `docker stop` sends
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@dataclass
class Topology:
    env: dict[str, str]
    base: str
    logs: Path
    stack: ExitStack
    started: list[Process] = field(default_factory=list)

    def start(self, service: str, name: str) -> Process:
        """Start a compose service as a subprocess: its command with the address flags dropped
        (the same values are in the environment, as compose also sets INSIDER_HOST/PORT)."""
        command, _ = compose_service(service)
        argv = []
        skip = False
        for arg in command:
            if skip:
                skip = False
            elif arg in ("--host", "--port"):
                skip = True
            else:
                argv.append(arg)
        log = self.logs / f"{name}.log"
        handle = self.stack.enter_context(log.open("wb"))
        proc = subprocess.Popen([str(CLI), *argv], stdout=handle, stderr=subprocess.STDOUT, env=self.env)  # noqa: S603
        process = Process(name, proc, log)
        self.started.append(process)
        self.stack.callback(process.stop)
        return process

    def cli(self, *argv: str, admin_key: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if admin_key:
            env["INSIDER_ADMIN_KEY"] = admin_key
        return subprocess.run(  # noqa: S603
            [str(CLI), *argv], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    def admin(self, admin_key: str, *argv: str) -> Any:
        done = self.cli("admin", *argv, "--url", self.base, "--json", admin_key=admin_key)
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
        return json.loads(done.stdout)


def topology_env(mongo: MongoServer, redis_url: str, database: str, port: int) -> dict[str, str]:
    _, api_env = compose_service("api")
    _, worker_env = compose_service("worker")
    # compose gives both the same environment; the API's adds its address
    assert {k: v for k, v in api_env.items() if k not in ("INSIDER_HOST", "INSIDER_PORT")} == worker_env
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INSIDER_", "MONGODB_")) and k not in ("REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")
    }
    return {
        **base,
        **api_env,
        # the addresses of this machine's servers, in the shape compose gives them
        "MONGODB_URI": f"mongodb://127.0.0.1:{mongo.port}/?replicaSet=secantus",
        "MONGODB_DATABASE": database,
        "REDIS_URL": redis_url,
        "INSIDER_HOST": "127.0.0.1",
        "INSIDER_PORT": str(port),
        # tests never touch the network: the demo market instead of the venues
        "INSIDER_INGEST_SOURCE": "demo",
        "INSIDER_DEMO_COINS": "40",
        "INSIDER_HISTORY_HOURS": "96",
        # webhooks on (the API serves endpoints, the worker delivers; issue 22)
        "INSIDER_WEBHOOK_KEY": "topology-e2e-webhook-server-key-0123456789",
        # short enough to watch: a run every 10 s, runs older than 2 days rolled up
        "INSIDER_SCORE_INTERVAL_SECONDS": str(INTERVAL),
        "INSIDER_SCORE_RETENTION_DAYS": "2",
        "INSIDER_LAST_USED_FLUSH_SECONDS": "1",
    }


# -- GraphQL, generated from the schema ----------------------------------------------------------


def _literal(value: Any) -> str:
    return json.dumps(value)


def _arguments(owner: str, name: str, fld: GraphQLField, values: dict[str, Any]) -> str:
    given = []
    for arg_name, arg in fld.args.items():
        if arg_name in values:
            given.append(f"{arg_name}: {_literal(values[arg_name])}")
        elif is_required_argument(arg):
            pytest.fail(f"{owner}.{name} needs {arg_name}: give it a value in this test's ARGUMENTS")
    return f"({', '.join(given)})" if given else ""


def selection(
    type_: GraphQLObjectType, values: dict[str, Any], path: frozenset[str] = frozenset(), seen: set[str] | None = None
) -> str:
    """Every field of ``type_``, and of every object type under it (a type already on the path is
    not entered again, so the document is finite); ``seen`` collects each ``Type.field`` selected."""
    parts = []
    for name, fld in type_.fields.items():
        named = get_named_type(fld.type)
        if seen is not None:
            seen.add(f"{type_.name}.{name}")
        if is_leaf_type(named):
            parts.append(name + _arguments(type_.name, name, fld, values))
        elif is_object_type(named) and named.name not in path:
            assert isinstance(named, GraphQLObjectType)
            inner = selection(named, values, path | {type_.name}, seen)
            parts.append(f"{name}{_arguments(type_.name, name, fld, values)} {inner}")
        elif not is_object_type(named):
            pytest.fail(f"{type_.name}.{name}: {named} is neither a leaf nor an object type; extend the generator")
    return "{ " + " ".join(parts) + " }"


def root_documents(sdl: GraphQLSchema, values: dict[str, Any], seen: set[str]) -> dict[str, str]:
    """One query per root field of ``Query``, selecting every field under it."""
    query = sdl.query_type
    assert query is not None
    documents = {}
    for name, fld in query.fields.items():
        named = get_named_type(fld.type)
        seen.add(f"{query.name}.{name}")
        body = "" if is_leaf_type(named) else " " + selection(named, values, frozenset({query.name}), seen)  # type: ignore[arg-type]
        documents[name] = f"query E2E_{name} {{ {name}{_arguments(query.name, name, fld, values)}{body} }}"
    return documents


# -- the test ------------------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.mongo
def test_the_production_topology(mongo_server: MongoServer, redis_url: str, tmp_path: Path) -> None:
    assert CLI.exists(), CLI
    log = Transcript()
    port = free_port()
    database = f"topology_{os.getpid()}_{port}"
    env = topology_env(mongo_server, redis_url, database, port)  # Redis flushed: fencing tokens from 1
    base = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=base, timeout=10)

    with ExitStack() as stack:
        stack.callback(http.close)
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=1))
        topo = Topology(env, base, tmp_path, stack)
        try:
            _run(topo, log, http, pool, mongo_server, database)
        except BaseException:
            for process in topo.started:  # the processes' logs, to see why
                print(f"--- {process.name} (exit {process.proc.poll()}) ---\n{process.output()[-4000:]}")
            raise
        finally:
            print(log.render())
    asyncio.run(_drop(mongo_server, database))


async def _drop(mongo: MongoServer, database: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo.uri)
    await client.drop_database(database)
    await client.close()


def _db_call(mongo: MongoServer, database: str, work: Callable[[Any], Any]) -> Any:
    """Run ``work(db)`` on the wire server (a client of its own, as an operator's shell)."""

    async def go() -> Any:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo.uri, tz_aware=True)
        try:
            return await work(client[database])
        finally:
            await client.close()

    return asyncio.run(go())


def _run(
    topo: Topology, log: Transcript, http: httpx.Client, pool: ThreadPoolExecutor, mongo: MongoServer, database: str
) -> None:
    stack = topo.stack

    # 1. the first admin key, straight into MongoDB (compose: `run --rm api insider-selling admin bootstrap`)
    def bootstrap() -> str:
        done = topo.cli("admin", "bootstrap")
        assert done.returncode == 0, done.stderr
        found = KEY.search(done.stderr)
        assert found, done.stderr
        return found.group(0)

    def key_id(key: str) -> str:
        return f"key id {parse_key(key).key_id}"

    admin_key = log.step("admin bootstrap (argon2 owasp, into the wire server)", bootstrap)
    log.steps[-1] = (*log.steps[-1][:3], key_id(admin_key))  # the transcript never shows a key

    # 2. serve --workers 2 and the worker; ready once the worker's first run has succeeded
    serve = log.step("start serve --workers 2", lambda: topo.start("api", "serve"))
    worker = log.step("start worker", lambda: topo.start("worker", "worker"))

    def ready() -> str:
        def answer() -> dict[str, Any] | None:
            try:
                response = http.get("/readyz")
            except httpx.TransportError:
                return None
            return response.json() if response.status_code == 200 else None

        body = eventually(answer, 90, "/readyz answering 200 (the worker's first run)")
        return f"first run {body['last_run_id']}"

    log.step("serve answers /readyz 200 after the worker's first run", ready)
    assert serve.proc.poll() is None and worker.proc.poll() is None
    second_started = datetime.now(UTC)
    second = log.step("start a second worker (standby)", lambda: topo.start("worker", "worker-2"))

    # 3. the admin CLI over --url: a tenant and a read key
    tenant = log.step(
        "admin tenants create --url",
        lambda: topo.admin(admin_key, "tenants", "create", "--name", "e2e", "--plan", "pro"),
    )
    tenant_id = tenant["id"]

    def issue(name: str) -> tuple[str, str]:
        issued = topo.admin(
            admin_key, "keys", "issue", "--tenant", tenant_id, "--name", name, "--scope", "signals:read"
        )
        return issued["key"], issued["apiKey"]["keyId"]

    reader, reader_id = log.step("admin keys issue --url", lambda: issue("reader"))
    read = {"Authorization": f"Bearer {reader}"}

    def issue_over_graphql() -> tuple[str, str]:
        answer = http.post(
            "/graphql",
            json={
                "query": """mutation($t: ID!) { issueApiKey(tenantId: $t, name: "survivor", scopes: ["signals:read"])
                    { key apiKey { keyId } } }""",
                "variables": {"t": tenant_id},
            },
            headers={"Authorization": f"Bearer {admin_key}"},
        ).json()
        assert "errors" not in answer, answer
        issued = answer["data"]["issueApiKey"]
        return issued["key"], issued["apiKey"]["keyId"]

    # a second key, for the socket and for after the restart (the reader key is rotated out below)
    survivor, survivor_id = log.step("issueApiKey over GraphQL (the key that survives)", issue_over_graphql)

    # 4. REST: the documented call, its errors, and the other routes: never a 5xx
    def rest() -> str:
        response = http.get(DATA, params={"limit": 20}, headers=read)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["count"] == len(data["coins"]) > 0
        for path, params, headers, status in (
            (DATA, {"limit": 0}, read, 400),
            (DATA, {"min_score": "x"}, read, 400),
            (DATA, {}, {}, 401),
            (DATA, {}, {"Authorization": "Bearer sk_live_nope"}, 401),
            ("/v1/openapi.json", {}, {}, 200),
            ("/healthz", {}, {}, 200),
            ("/metrics", {}, {}, 200),
            ("/", {}, {}, 200),
            ("/docs", {}, {}, 200),
            ("/dashboard", {}, {}, 200),
        ):
            got = http.get(path, params=params, headers=headers)
            assert got.status_code == status, (path, params, got.status_code, got.text[:300])
        return f"{data['count']} coins listed"

    log.step("REST /v1 and the other routes (no 5xx)", rest)
    coin_id = http.get(DATA, params={"limit": 1}, headers=read).json()["data"]["coins"][0]["coin_id"]

    # 5. every root field and every type field of the public schema, generated from it
    def sweep() -> str:
        sdl = build_schema(code_schema.as_str())
        run_id = http.post("/graphql", json={"query": "{ runs(first: 1) { runId } }"}, headers=read).json()
        values = {
            "coinId": coin_id,
            "tenantId": tenant_id,
            "limit": 3,
            "first": 3,
            "id": run_id["data"]["runs"][0]["runId"],
            "text": coin_id[:3],
        }
        seen: set[str] = set()
        documents = root_documents(sdl, values, seen)
        # webhookEndpoint(id:) needs an endpoint's id (loopback, refused before any connection)
        hook = http.post(
            "/graphql",
            json={
                "query": "mutation($input: CreateWebhookEndpointInput!) { "
                "createWebhookEndpoint(input: $input) { endpoint { id } } }",
                "variables": {"input": {"url": "https://127.0.0.1:9/hooks", "events": ["RUN_FAILED"]}},
            },
            headers={"Authorization": f"Bearer {admin_key}"},
        ).json()
        hook_id = hook["data"]["createWebhookEndpoint"]["endpoint"]["id"]
        documents["webhookEndpoint"] = root_documents(sdl, {**values, "id": hook_id}, seen)["webhookEndpoint"]
        for root, document in documents.items():
            response = http.post("/graphql", json={"query": document}, headers=read)
            body = response.json()
            codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
            if codes == ["insufficient_scope"]:  # an operator's field: the admin key
                response = http.post(
                    "/graphql", json={"query": document}, headers={"Authorization": f"Bearer {admin_key}"}
                )
                body = response.json()
            assert response.status_code == 200, (root, response.status_code, response.text[:500])
            assert "errors" not in body, (root, body["errors"])
            assert body["data"][root] is not None, root
        # every object type is reached (the mutations' answer types are the admin CLI's, step 7)
        types = {name for name, t in sdl.type_map.items() if is_object_type(t) and not name.startswith("__")}
        reached = {field.split(".")[0] for field in seen}
        # (and the webhook mutations' answer types are tests/webhooks')
        mutation_only = {"Mutation", "Subscription", "IssuedApiKey", "WebhookEndpointWithSecret", "WebhookTestResult"}
        assert types - reached == mutation_only, types - reached
        return f"{len(documents)} root fields ({', '.join(documents)}), {len(seen)} type fields"

    log.step("GraphQL: every Query root field, every type field (generated)", sweep)

    # 6. scoreUpdates on a socket to the API, pushed after the separate worker's next run
    def subscribe() -> tuple[Future[dict[str, Any]], str]:
        sdl = build_schema(code_schema.as_str())
        assert sdl.subscription_type is not None
        fld = sdl.subscription_type.fields["scoreUpdates"]
        inner = selection(get_named_type(fld.type), {"limit": 3, "first": 2}, frozenset({"Subscription"}))  # type: ignore[arg-type]
        document = f"subscription {{ scoreUpdates(limit: 3) {inner} }}"
        answer = http.post("/graphql", json={"query": "{ signal { lastRunAt } }"}, headers=read).json()
        before: str = answer["data"]["signal"]["lastRunAt"]
        ws = stack.enter_context(
            connect(f"ws://127.0.0.1:{topo.env['INSIDER_PORT']}/graphql", subprotocols=["graphql-transport-ws"])
        )
        ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {survivor}"}}))
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": document}}))
        # the push comes after the worker's next run: wait for it while the next steps go on
        pushed: Future[dict[str, Any]] = pool.submit(lambda: json.loads(ws.recv(timeout=3 * INTERVAL + 20)))
        return pushed, before

    pushed, before = log.step("websocket: connection_init, subscribe scoreUpdates (every field)", subscribe)

    # 7. the rest of the admin CLI: rotate, revoke, audit
    def rotate() -> str:
        rotated = topo.admin(admin_key, "keys", "rotate", reader_id, "--grace-seconds", "0")
        new_key, new_id = rotated["key"], rotated["apiKey"]["keyId"]
        eventually(lambda: http.get(DATA, headers=read).status_code == 401, 5, "the rotated-out key refused", step=0.05)
        assert http.get(DATA, headers={"Authorization": f"Bearer {new_key}"}).status_code == 200
        topo.admin(admin_key, "keys", "revoke", new_id)
        # each request may land on either API process: both must refuse it within a second
        began = time.monotonic()
        eventually(
            lambda: all(
                http.get(DATA, headers={"Authorization": f"Bearer {new_key}"}).status_code == 401 for _ in range(6)
            ),
            5,
            "the revoked key refused by both processes",
            step=0.05,
        )
        return f"revocation effective in {time.monotonic() - began:.2f}s"

    log.step("admin keys rotate --grace-seconds 0, keys revoke --url", rotate)

    def audit() -> list[str]:
        page = topo.admin(admin_key, "audit", "--tenant", tenant_id)
        return [edge["node"]["action"] for edge in page["edges"]]

    actions = log.step("admin audit --tenant --url", audit)

    def received() -> str:
        message = pushed.result(timeout=3 * INTERVAL + 20)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message["payload"]
        board = message["payload"]["data"]["scoreUpdates"]
        assert board["signal"]["lastRunAt"] > before, (board["signal"], before)
        return f"run of {board['signal']['lastRunAt']} pushed (the run at subscribe time: {before})"

    log.step("websocket: the scoreUpdates event after the worker's next run", received)
    assert actions == ["key.revoked", "key.rotated", "key.issued", "key.issued", "tenant.created"], actions

    # 8. the indexes on the server, and the roll-up of old runs by the worker's cycle
    def indexes() -> str:
        async def read_indexes(db: Any) -> dict[str, dict[str, Any]]:
            return {
                name: await db[name].index_information()
                for name in ("market_snapshots", "onchain_snapshots", "scores", "runs")
            }

        info = _db_call(mongo, database, read_indexes)
        ttl = {c: v["expireAfterSeconds"] for c in info for v in info[c].values() if "expireAfterSeconds" in v}
        assert ttl == {"market_snapshots": 30 * 86_400, "onchain_snapshots": 30 * 86_400}, ttl
        keys = {c: [v["key"] for v in info[c].values()] for c in info}
        assert [("run_id", 1), ("score", -1)] in keys["scores"] and [("coin_id", 1), ("at", -1)] in keys["scores"]
        assert [("status", 1), ("finished_at", -1)] in keys["runs"]
        return f"TTL {ttl}"

    log.step("TTL and retention indexes on the wire server", indexes)

    planted_at = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0) - timedelta(days=5)

    def plant() -> str:
        async def go(db: Any) -> int:
            runs = RunStore(db)
            for i in range(4):  # four runs on one old day: the day's last one is kept
                run_id, at = f"run_planted_{i}", planted_at + timedelta(hours=3 * i)
                await runs.start(run_id, at, "planted", "demo")
                await runs.write_scores(run_id, [{"coin_id": "planted-coin", "at": at, "score": 1.0 + i}])
                await runs.succeed(run_id, {"coins": 1})
                await runs.mark_visible(run_id)
            return 4

        return f"{_db_call(mongo, database, go)} runs of {planted_at:%Y-%m-%d} planted"

    log.step("plant old runs (5 days ago) on the server", plant)

    def rolled_up() -> str:
        async def state(db: Any) -> list[dict[str, Any]]:
            docs: list[dict[str, Any]] = (
                await db["runs"]
                .find({"source": "demo", "model_version": "planted"}, {"_id": 0})
                .sort("at", 1)
                .to_list()
            )
            for doc in docs:
                doc["scores"] = await db["scores"].count_documents({"run_id": doc["run_id"]})
            return docs

        docs = eventually(
            lambda: (lambda d: d if all(r.get("pruned") or r.get("daily") for r in d) else None)(
                _db_call(mongo, database, state)
            ),
            3 * INTERVAL + 10,
            "the worker's cycle rolling up the old runs",
            step=0.5,
        )
        assert [(d["run_id"], bool(d.get("pruned")), d["scores"]) for d in docs] == [
            ("run_planted_0", True, 0),
            ("run_planted_1", True, 0),
            ("run_planted_2", True, 0),
            ("run_planted_3", False, 1),
        ], docs
        assert docs[-1]["daily"] is True
        return "3 pruned (scores deleted), the day's last kept as daily"

    log.step("the worker's next cycle rolls the old runs up on the server", rolled_up)

    # 9. restart serve: keys, tenants, runs and the audit log are in MongoDB, not in the process
    def stop() -> str:
        serve.stop()
        assert serve.proc.returncode == 0, serve.output()[-2000:]
        return "serve exited 0"

    def start_again() -> str:
        again = topo.start("api", "serve-restarted")
        eventually(lambda: _ready(http), 60, "the restarted serve ready")
        assert again.proc.poll() is None
        return "ready"

    log.step("stop serve (SIGTERM, as `docker stop`)", stop)
    log.step("start serve --workers 2 again, /readyz 200", start_again)

    def survived() -> str:
        assert http.get(DATA, headers={"Authorization": f"Bearer {survivor}"}).status_code == 200
        assert http.get(DATA, headers=read).status_code == 401  # rotated out stays out
        document = """query($t: ID!) { tenants { id } apiKeys(tenantId: $t) { keyId state }
            auditLog(tenantId: $t) { edges { node { action } } } runs(first: 50) { runId status } }"""
        answer = http.post(
            "/graphql",
            json={"query": document, "variables": {"t": tenant_id}},
            headers={"Authorization": f"Bearer {admin_key}"},
        ).json()
        assert "errors" not in answer, answer
        data = answer["data"]
        assert tenant_id in [t["id"] for t in data["tenants"]]
        keys = {k["keyId"]: k["state"] for k in data["apiKeys"]}
        assert keys[survivor_id] == "ACTIVE" and keys[reader_id] != "ACTIVE", keys
        assert [e["node"]["action"] for e in data["auditLog"]["edges"]] == actions  # as before the restart
        runs = data["runs"]
        assert sum(r["status"] == "SUCCEEDED" for r in runs) >= 3, runs
        return f"{len(keys)} keys, {len(data['tenants'])} tenants, {len(runs)} runs, {len(actions)} audit entries"

    log.step("after the restart: keys, tenants, runs, audit log", survived)

    # 10. two workers, one lock: every cycle since the second started was scored once, by the first
    def one_scorer() -> str:
        async def runs_since(db: Any) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = (
                await db["runs"]
                .find({"started_at": {"$gte": second_started}, "model_version": {"$ne": "planted"}}, {"_id": 0})
                .to_list()
            )
            return found

        docs = eventually(
            lambda: (lambda d: d if len({r["at"] for r in d}) >= 3 else None)(_db_call(mongo, database, runs_since)),
            4 * INTERVAL,
            "three cycles while both workers run",
            step=0.5,
        )
        slots = [r["at"] for r in docs]
        assert len(slots) == len(set(slots)), slots  # one run per cycle
        tokens = {r["fencing_token"] for r in docs}
        assert tokens == {1}, tokens  # all by the first lock holder
        assert second.proc.poll() is None and worker.proc.poll() is None
        assert "another worker holds the lock; waiting" in second.output()
        assert "another worker holds the lock" not in worker.output()
        return f"{len(docs)} cycles, one run each, all with fencing token 1; worker-2 waiting"

    log.step("second worker: only the lock holder scores each cycle", one_scorer)

    for process in topo.started:  # nothing went wrong out of sight either
        output = process.output()
        assert "Traceback" not in output and '"level":"error"' not in output, (process.name, output[-3000:])


def _ready(http: httpx.Client) -> bool:
    try:
        return http.get("/readyz").status_code == 200
    except httpx.TransportError:
        return False
