"""Shared fixtures: a real Redis server, a real MongoDB wire server (SecantusDB), the ``store``
fixture that runs a test on both store backends, settings that never read the developer's
environment, and a primed app (demo data scored once) for the API tests. Helpers
that tests import are in ``tests/helpers.py``."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from store import StoreHandle, open_store
from tests.helpers import (
    SECANTUSD,
    STORE_BACKENDS,
    ApiClient,
    MongoServer,
    OpenStore,
    RedisCluster,
    RedisServer,
    cluster_port,
    free_port,
    secantus_process,
    start_app,
)

# Tests never read the developer's environment for our settings.
for _name in list(os.environ):
    if _name.startswith("INSIDER_") or _name in ("REDIS_URL", "MONGODB_DATABASE"):
        del os.environ[_name]
# The demo's backdated history runs (24 at start) are opted into by the tests that need them.
os.environ["INSIDER_DEMO_HISTORY_HOURS"] = "0"


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
    port = free_port()
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


@pytest.fixture
async def api() -> AsyncIterator[ApiClient]:
    """A fresh primed app (embedded store, small demo market), with its bootstrap keys."""
    async for client in start_app():
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def read_only_api() -> AsyncIterator[ApiClient]:
    """One primed app for a whole module whose tests only read it: the demo data is scored once per
    module, not once per test. Such a module marks its async tests
    ``pytest.mark.asyncio(loop_scope="module")`` (the loop this app runs in) and binds ``api`` to
    this; a test that writes (a run, a key, a setting) takes the function-scoped ``api`` elsewhere."""
    async for client in start_app():
        yield client


@pytest.fixture(scope="session")
def redis_cluster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A private 3-node Redis Cluster (3 primaries, no replicas) for the whole session.

    In CI (``CI=true``) a missing redis-server or redis-cli fails the run instead of skipping."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server and redis-cli are needed for the cluster tests; .ci/run installs them")
        pytest.skip("redis-server or redis-cli is not installed")
    ports = tuple(cluster_port() for _ in range(3))
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


@pytest.fixture(params=["redis", "redis-cluster"])
def redis_or_cluster_url(request: pytest.FixtureRequest) -> str:
    """A test that holds on a single Redis and on a Redis Cluster alike runs on each in turn:
    ``redis_url`` (flushed) first, then ``redis_cluster_url`` (every primary flushed)."""
    url: str = request.getfixturevalue("redis_url" if request.param == "redis" else "redis_cluster_url")
    return url
