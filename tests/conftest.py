"""Shared fixtures: a real Redis server, a real MongoDB wire server (SecantusDB), the ``store``
fixture that runs a test on both store backends, settings that never read the developer's
environment, and a primed app (demo data scored once) for the API tests."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.demo import DemoConfig, DemoSource
from insider_selling.app import build_app
from insider_selling.settings import Settings
from store import StoreHandle, open_store

# Tests never read the developer's environment for our settings.
for _name in list(os.environ):
    if _name.startswith("INSIDER_") or _name in ("REDIS_URL", "MONGODB_DATABASE"):
        del os.environ[_name]
# The demo's backdated history runs (24 at start) are opted into by the tests that need them.
os.environ["INSIDER_DEMO_HISTORY_HOURS"] = "0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class RedisServer:
    url: str
    port: int


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server on a free port for the whole session (flushed per test by ``redis_url``).

    In CI (``CI=true``) a missing redis-server fails the run instead of skipping the Redis tests.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; .ci/run installs it")
        pytest.skip("redis-server is not installed")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(  # noqa: S603
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    yield RedisServer(f"redis://127.0.0.1:{port}/0", port)
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, flushed before the test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


ROOT = Path(__file__).resolve().parent.parent
# SecantusDB (GPL-2.0-only) runs only as a separate server from its own venv (`make test` installs
# it from tests/secantus-requirements.txt); it is never imported.
SECANTUSD = ROOT / ".secantus" / "bin" / "secantusd-py"


def wait_for_port(port: int, proc: subprocess.Popen[Any], what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail(f"{what} did not listen on port {port} within {seconds:.0f} s")


@dataclass(frozen=True, slots=True)
class MongoServer:
    uri: str  # mongodb://127.0.0.1:P/?directConnection=true
    port: int


@contextmanager
def secantus_process(storage: Path, config: Path) -> Iterator[MongoServer]:
    """A SecantusDB wire server on a free port, stopped on exit. ``config`` is an empty TOML file:
    passing it turns off the server's search for a developer's ``secantusd.toml``."""
    config.write_text("")
    port = _free_port()
    log = (storage.parent / f"{storage.name}.log").open("w")
    proc = subprocess.Popen(  # noqa: S603
        [
            str(SECANTUSD),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(storage),
            "--log-level",
            "WARNING",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc, "secantusd-py")
        yield MongoServer(f"mongodb://127.0.0.1:{port}/?directConnection=true", port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    """One MongoDB wire server (SecantusDB) for the whole session; each test uses its own database.

    Skipped locally when ``.secantus`` is absent (``make test`` installs it); in CI (``CI=true``)
    a missing server fails the run."""
    if not SECANTUSD.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{SECANTUSD} is missing; `make test` installs it (tests/secantus-requirements.txt)")
        pytest.skip("SecantusDB is not installed (.secantus/); `make test` installs it")
    workdir = tmp_path_factory.mktemp("secantus")
    with secantus_process(workdir / "data", workdir / "secantusd.toml") as server:
        yield server


STORE_BACKENDS = ("memory", "mongodb")


OpenStore = Callable[[], Awaitable[StoreHandle]]


@pytest.fixture(params=STORE_BACKENDS)
async def open_stores(request: pytest.FixtureRequest) -> AsyncIterator[OpenStore]:
    """Opens stores with their indexes, each on a fresh database, on each backend in turn: the
    in-memory stand-in and the wire server. Every store it opened is dropped and closed after the
    test. Where the backends disagree the wire server is right."""
    uri = request.getfixturevalue("mongo_server").uri if request.param == "mongodb" else None
    opened: list[tuple[StoreHandle, str]] = []

    async def open_one() -> StoreHandle:
        database = f"insider_test_{secrets.token_hex(6)}"
        handle = await open_store(uri, database)
        opened.append((handle, database))
        return handle

    yield open_one
    for handle, database in opened:
        if handle.kind == "mongodb":
            await handle.client.drop_database(database)
        await handle.aclose()


@pytest.fixture
async def store(open_stores: OpenStore) -> StoreHandle:
    """An open store on each backend (see ``open_stores``): tests that touch the store take this."""
    return await open_stores()


def make_settings(**overrides: Any) -> Settings:
    """Embedded settings with a cheap argon2 profile and a small demo market, for tests."""
    values: dict[str, Any] = {"argon2_profile": "test", "demo_coins": 80, "history_hours": 192}
    values.update(overrides)
    return Settings(**values)


SMALL_DEMO = DemoConfig(seed=11, coins=80)


@dataclass(slots=True)
class ApiClient:
    app: Any
    http: httpx.AsyncClient
    admin_key: str
    read_key: str

    @property
    def services(self) -> Any:
        return self.app.state.services


async def _wait_ready(app: Any, seconds: float = 60.0) -> None:
    import asyncio

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        services = getattr(app.state, "services", None)
        if services is not None and await services.leaderboard.current_run() is not None:
            return
        services and services.leaderboard.invalidate()
        await asyncio.sleep(0.05)
    raise TimeoutError("the app did not finish its first run")


async def start_app(settings: Settings | None = None, **kwargs: Any) -> AsyncIterator[ApiClient]:
    """Run the app's lifespan in-process and yield an HTTP client bound to it."""
    from contextlib import AsyncExitStack

    settings = settings or make_settings()
    kwargs.setdefault("source", DemoSource(SMALL_DEMO))
    kwargs.setdefault("run_scheduler", False)
    kwargs.setdefault("announce", lambda line: None)
    app = build_app(settings, **kwargs)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        if kwargs.get("prime", True):
            await _wait_ready(app)
        transport = httpx.ASGITransport(app=app)
        http = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://test"))
        admin, read = app.state.bootstrap
        yield ApiClient(app, http, admin.key, read.key)


@pytest.fixture
async def api() -> AsyncIterator[ApiClient]:
    """A fresh primed app (embedded store, small demo market), with its bootstrap keys."""
    async for client in start_app():
        yield client


@dataclass(frozen=True, slots=True)
class RedisCluster:
    url: str  # redis+cluster://127.0.0.1:P (the service's REDIS_URL for a cluster)
    ports: tuple[int, ...]


def _cluster_port() -> int:
    """A free port P whose cluster bus port (P + 10000) is free too."""
    import random

    for _ in range(200):
        port = random.randrange(20_000, 40_000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10_000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@pytest.fixture(scope="session")
def redis_cluster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A private 3-node Redis Cluster (3 primaries, no replicas) for the whole session.

    In CI (``CI=true``) a missing redis-server or redis-cli fails the run instead of skipping."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server and redis-cli are needed for the cluster tests; .ci/run installs them")
        pytest.skip("redis-server or redis-cli is not installed")
    ports = tuple(_cluster_port() for _ in range(3))
    procs = []
    for port in ports:
        workdir = tmp_path_factory.mktemp(f"cluster{port}")
        procs.append(
            subprocess.Popen(  # noqa: S603
                [
                    server,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(workdir / "nodes.conf"),
                    "--cluster-node-timeout",
                    "2000",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(workdir),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        for port in ports:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail("redis-server (cluster node) did not start")
                    time.sleep(0.05)
        subprocess.run(  # noqa: S603
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        for port in ports:
            while (
                b"cluster_state:ok"
                not in subprocess.run(  # noqa: S603
                    [cli, "-p", str(port), "cluster", "info"], capture_output=True, timeout=10
                ).stdout
            ):
                if time.monotonic() > deadline:
                    pytest.fail("the Redis Cluster did not reach cluster_state:ok")
                time.sleep(0.1)
        yield RedisCluster(f"redis+cluster://127.0.0.1:{ports[0]}", ports)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


@pytest.fixture
def redis_cluster_url(redis_cluster_server: RedisCluster) -> str:
    """The session's Redis Cluster, every primary flushed before the test."""
    import redis

    for port in redis_cluster_server.ports:
        client = redis.Redis(port=port)
        client.flushall()
        client.close()
    return redis_cluster_server.url


KEY_LINE = re.compile(r"^(bootstrap admin key|demo read key): (sk_live_[0-9A-Za-z]{40})$")


@dataclass(slots=True)
class Served:
    base: str
    keys: dict[str, str]  # "bootstrap admin key" and "demo read key", as printed
    lines: list[str]  # stderr up to the second key
    proc: subprocess.Popen[str]


@contextmanager
def serve_process(**env: str) -> Iterator[Served]:
    """A real ``insider-selling serve`` in the embedded mode (test argon2 profile, none of the
    developer's settings) on a free port, yielded once it has printed its two keys; ``env`` adds
    settings. The keys are printed before uvicorn listens: callers wait for the port themselves."""
    port = _free_port()
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith("INSIDER_") and k not in ("MONGODB_URI", "REDIS_URL")
    }
    environ.update({"INSIDER_ARGON2_PROFILE": "test", "INSIDER_DEMO_HISTORY_HOURS": "0", **env})
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "insider_selling.cli", "serve", "--port", str(port)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=environ,
    )
    try:
        keys: dict[str, str] = {}
        lines: list[str] = []
        deadline = time.monotonic() + 60
        assert proc.stderr is not None
        while len(keys) < 2 and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            match = KEY_LINE.match(line.rstrip("\n"))
            if match:
                keys[match.group(1)] = match.group(2)
        assert len(keys) == 2, "".join(lines)
        yield Served(f"http://127.0.0.1:{port}", keys, lines, proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)
