"""Shared test helpers (imported as ``tests.helpers``; the fixtures are in ``tests/conftest.py``):
free ports, the SecantusDB and ``insider-selling serve`` processes, settings for tests, the small
demo market and an in-process app with an HTTP client bound to it."""

from __future__ import annotations

import os
import re
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
from store import StoreHandle


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class RedisServer:
    url: str
    port: int


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
    port = free_port()
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


STORE_BACKENDS = ("memory", "mongodb")


OpenStore = Callable[[], Awaitable[StoreHandle]]


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


@dataclass(frozen=True, slots=True)
class RedisCluster:
    url: str  # redis+cluster://127.0.0.1:P (the service's REDIS_URL for a cluster)
    ports: tuple[int, ...]


def cluster_port() -> int:
    """A free port P whose cluster bus port (P + 10000) is free too. Both lie below Linux's ephemeral
    range (32768-60999), where ``free_port`` and every outgoing connection take theirs, so another
    xdist worker's servers and clients cannot land on a cluster node's port."""
    import random

    for _ in range(200):
        port = random.randrange(20_000, 22_768)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10_000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


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
    port = free_port()
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
