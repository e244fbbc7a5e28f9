"""Throughput of the full ``/v1`` path (auth + distributed rate limits) against a bare Starlette floor.

    .venv/bin/python bench/auth_ratelimit.py [--runs 5] [--seconds 3] [--connections 32] [--cluster]

One run starts a private redis-server (``--cluster``: a 3-node Redis Cluster; or uses
``--redis-url``), then uvicorn servers on 127.0.0.1, each one process:

- **floor**: a bare Starlette endpoint returning the same response bytes the full path returns, on
  uvicorn's defaults (two more floors are printed too: one sending the full path's response headers
  as well, and one on the server and options ``insider-selling serve`` uses);
- **full**: ``build_app`` with Redis, argon2id (OWASP profile), the REST handler with a real
  ``sk_live_`` key of a tenant whose limits are high enough never to refuse (so every request
  pays the whole path: key check, Redis-leased GCRA per key and tenant, monthly quota, data).

Load comes from ``wrk`` (one thread) when installed, else a bounded asyncio/httpx loop. The
servers are measured in turn, ``--runs`` rounds; the medians and their ratio are printed, and the
median of the ratios within each round (this machine's slow and fast spells last seconds and hit
the servers of one round alike).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
# run as a script, bench/ would come first on sys.path and its modules could shadow packages
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from insider_selling.settings import Settings

PATH = "/v1/insider-selling/data?limit=20&min_score=4"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


# -- the servers (run in child processes) --


def serve_options(settings: Settings, port: int) -> dict[str, object]:
    """uvicorn's options as ``insider-selling serve`` sets them (request deadlines, its HTTP
    protocol, no forwarded headers without trusted proxies), on 127.0.0.1:``port``."""
    from insider_selling.builders import server_options

    return {**server_options(settings), "host": "127.0.0.1", "port": port}


def serve_floor(port: int, body_file: Path, headers_file: Path | None = None, product_server: bool = False) -> None:
    """``product_server``: uvicorn with the options ``insider-selling serve`` uses (its HTTP
    protocol, request deadlines, no server header) instead of uvicorn's defaults."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    body = body_file.read_bytes()
    headers = json.loads(headers_file.read_text()) if headers_file else {}

    async def endpoint(request: Request) -> Response:
        return Response(body, media_type="application/json", headers=headers)

    app = Starlette(routes=[Route("/v1/insider-selling/data", endpoint, methods=["GET"])])
    options: dict[str, object] = {}
    if product_server:
        from insider_selling.settings import Settings

        options = serve_options(Settings(log_level="warning"), port)
    uvicorn.run(app, **{"host": "127.0.0.1", "port": port, "log_level": "warning", "access_log": False, **options})


def serve_full(port: int, redis_url: str, key_file: Path) -> None:
    import uvicorn

    from ingest.demo import DemoConfig, DemoSource
    from insider_selling.app import build_app
    from insider_selling.settings import Settings

    settings = Settings(
        redis_url=redis_url or None, argon2_profile="owasp", demo_coins=80, history_hours=192, log_level="warning"
    )
    app = build_app(
        settings,
        source=DemoSource(DemoConfig(seed=11, coins=80)),
        run_scheduler=False,
        prime=True,
        announce=lambda line: None,
    )

    async def main() -> None:
        # the options `insider-selling serve` runs with (request deadlines, no forwarded headers
        # without trusted proxies), on this port
        options = serve_options(settings, port)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", **options))
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
            await asyncio.sleep(0.05)
        services = app.state.services
        while await services.leaderboard.current_run() is None:
            services.leaderboard.invalidate()
            await asyncio.sleep(0.1)
        tenant = await services.keys.create_tenant(
            None, "bench", "enterprise", rate_limit_per_minute=1_000_000_000, quota_per_month=2_000_000_000
        )
        issued = await services.keys.issue_key(None, tenant["tenant_id"], "bench", ["signals:read"])
        await asyncio.to_thread(key_file.write_text, issued.key)
        await task

    import uvloop  # what uvicorn.run uses for the floor server too

    uvloop.run(main())


def start_cluster(workdir: Path, children: list[subprocess.Popen[bytes]]) -> str:
    """Three redis-server nodes with cluster mode on, joined by ``redis-cli --cluster create``."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        raise SystemExit("--cluster needs redis-server and redis-cli")
    ports = []
    while len(ports) < 3:  # the cluster bus listens on port + 10000
        port = free_port()
        if port + 10_000 < 65_536 and port not in ports:
            ports.append(port)
    for port in ports:
        node_dir = workdir / f"node{port}"
        node_dir.mkdir()
        children.append(
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
                    str(node_dir / "nodes.conf"),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(node_dir),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    for port in ports:
        wait_port(port)
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
    )
    deadline = time.monotonic() + 30
    for port in ports:
        while (
            b"cluster_state:ok"
            not in subprocess.run(  # noqa: S603
                [cli, "-p", str(port), "cluster", "info"], capture_output=True
            ).stdout
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("the cluster did not reach cluster_state:ok")
            time.sleep(0.1)
    return f"redis+cluster://127.0.0.1:{ports[0]}"


# -- the cost of authentication + rate limiting alone, in-process --


def tenant_path_cost(redis_url: str, requests: int = 20_000) -> tuple[float, float, int]:
    """Microseconds per request of ``Authenticator.authenticate`` (warm key) plus
    ``RateLimiter.check`` (Redis leases); of the same work as the REST handler does it (the
    synchronous ``authenticate_warm`` and ``take``, the awaited paths only when those cannot
    decide); and the Redis calls the second loop made."""
    import uvloop

    from insider_selling.redis_client import connect_redis
    from store.memory import MemoryClient
    from tenants.auth import Authenticator
    from tenants.hashing import KeyHasher
    from tenants.ratelimit import RateLimiter, RedisBackend
    from tenants.repository import TenantRepository
    from tenants.service import KeyService

    async def run() -> tuple[float, float, int]:
        repo = TenantRepository(MemoryClient()["bench"])
        hasher = KeyHasher("owasp")
        service = KeyService(repo, hasher)
        tenant = await service.create_tenant(
            None, "bench", "enterprise", rate_limit_per_minute=1_000_000_000, quota_per_month=2_000_000_000
        )
        issued = await service.issue_key(None, tenant["tenant_id"], "bench", ["signals:read"])
        auth = Authenticator(repo, hasher)
        client = connect_redis(redis_url)
        backend = RedisBackend(client, prefix="bench:rl")
        limiter = RateLimiter(backend)
        header = f"Bearer {issued.key}"
        raw = header.encode()
        try:
            for _ in range(200):
                await limiter.check(await auth.authenticate(header, "127.0.0.1"))
            started = time.perf_counter()
            for i in range(requests):
                await limiter.check(await auth.authenticate(header, "127.0.0.1"))
                if i % 4 == 0:
                    await asyncio.sleep(0)  # as between requests: lets the batch fetched ahead land
            full = (time.perf_counter() - started) / requests * 1e6
            await limiter.drain()
            calls = backend.calls
            started = time.perf_counter()
            for i in range(requests):
                principal = auth.authenticate_warm(raw) or await auth.authenticate(header, "127.0.0.1")
                if limiter.take(principal) is None:
                    await limiter.check_encoded(principal)
                if i % 4 == 0:
                    await asyncio.sleep(0)
            hot = (time.perf_counter() - started) / requests * 1e6
            await limiter.drain()
            return full, hot, backend.calls - calls
        finally:
            await client.aclose()

    return uvloop.run(run())


# -- load --


def load_wrk(url: str, key: str, seconds: float, connections: int) -> float:
    wrk = shutil.which("wrk") or "wrk"
    command = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "-H",
        f"Authorization: Bearer {key}",
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} non-2xx responses from {url}")
    match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    assert match, out
    return float(match.group(1))


def load_httpx(url: str, key: str, seconds: float, connections: int) -> float:
    import httpx

    async def run() -> float:
        count = 0
        deadline = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(limits=limits, headers={"Authorization": f"Bearer {key}"}) as client:

            async def worker() -> None:
                nonlocal count
                while time.monotonic() < deadline:
                    response = await client.get(url)
                    if response.status_code != 200:
                        raise RuntimeError(f"{response.status_code} from {url}")
                    count += 1

            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(connections)))
            return count / (time.monotonic() - started)

    return asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="alternating measurements of each server")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--redis-url", help="use this Redis instead of starting a private one")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="start a private 3-node Redis Cluster (REDIS_URL=redis+cluster://) instead of one node",
    )
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="full path with the in-process limiter instead of Redis (for comparison)",
    )
    parser.add_argument("--serve", choices=["floor", "full"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--headers", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--product-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "floor":
        serve_floor(args.port, args.file, args.headers, args.product_server)
        return 0
    if args.serve == "full":
        serve_full(args.port, args.redis_url, args.file)
        return 0

    children: list[subprocess.Popen[bytes]] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    try:
        redis_url = args.redis_url
        if redis_url is None and args.cluster:
            redis_url = start_cluster(workdir, children)
        if redis_url is None:
            binary = shutil.which("redis-server")
            if binary is None:
                print("redis-server is not installed; pass --redis-url", file=sys.stderr)
                return 2
            rport = free_port()
            children.append(
                subprocess.Popen(  # noqa: S603
                    [
                        binary,
                        "--port",
                        str(rport),
                        "--bind",
                        "127.0.0.1",
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
            wait_port(rport)
            redis_url = f"redis://127.0.0.1:{rport}/0"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        full_port, floor_port = free_port(), free_port()
        key_file, body_file = workdir / "key", workdir / "body"
        me = [sys.executable, str(Path(__file__).resolve())]
        children.append(
            subprocess.Popen(  # noqa: S603
                [
                    *me,
                    "--serve",
                    "full",
                    "--port",
                    str(full_port),
                    "--redis-url",
                    "" if args.embedded else redis_url,
                    "--file",
                    str(key_file),
                ],
                env=env,
            )
        )
        wait_port(full_port)
        deadline = time.monotonic() + 120
        while not key_file.exists() or not key_file.read_text():
            if time.monotonic() > deadline:
                raise TimeoutError("the full server did not become ready")
            time.sleep(0.1)
        key = key_file.read_text().strip()
        import httpx

        full_url = f"http://127.0.0.1:{full_port}{PATH}"
        first = httpx.get(full_url, headers={"Authorization": f"Bearer {key}"})
        assert first.status_code == 200, first.text
        assert "ratelimit-limit" in first.headers
        body_file.write_bytes(first.content)
        # the second floor also sends the full path's response headers (the contract's RateLimit-*,
        # the draft RateLimit-Policy/RateLimit, ETag, Cache-Control, X-Request-Id), as fixed values
        headers_file = workdir / "headers.json"
        headers_file.write_text(
            json.dumps(
                {
                    name: value
                    for name, value in first.headers.items()
                    if name not in ("content-length", "content-type", "date", "server")
                }
            )
        )
        same_port = free_port()
        children.append(
            subprocess.Popen(  # noqa: S603
                [*me, "--serve", "floor", "--port", str(floor_port), "--file", str(body_file)], env=env
            )
        )
        children.append(
            subprocess.Popen(  # noqa: S603
                [
                    *me,
                    "--serve",
                    "floor",
                    "--port",
                    str(same_port),
                    "--file",
                    str(body_file),
                    "--headers",
                    str(headers_file),
                ],
                env=env,
            )
        )
        # the third floor: the same bytes as the first, from the server `insider-selling serve` runs
        # (its HTTP protocol and options), so that what the server saves is not counted as the REST
        # path's
        product_port = free_port()
        children.append(
            subprocess.Popen(  # noqa: S603
                [*me, "--serve", "floor", "--port", str(product_port), "--file", str(body_file), "--product-server"],
                env=env,
            )
        )
        wait_port(floor_port)
        wait_port(same_port)
        wait_port(product_port)
        floor_url = f"http://127.0.0.1:{floor_port}{PATH}"
        same_url = f"http://127.0.0.1:{same_port}{PATH}"
        product_url = f"http://127.0.0.1:{product_port}{PATH}"

        cost_us, hot_us, redis_calls = tenant_path_cost(redis_url)
        load = load_wrk if shutil.which("wrk") else load_httpx
        tool = "wrk -t1" if load is load_wrk else "httpx"
        load(full_url, key, 1.0, args.connections)  # warm-up both
        load(floor_url, key, 1.0, args.connections)
        load(same_url, key, 1.0, args.connections)
        load(product_url, key, 1.0, args.connections)
        floors, sames, products, fulls = [], [], [], []
        for _ in range(args.runs):
            floors.append(load(floor_url, key, args.seconds, args.connections))
            fulls.append(load(full_url, key, args.seconds, args.connections))
            sames.append(load(same_url, key, args.seconds, args.connections))
            products.append(load(product_url, key, args.seconds, args.connections))
        floor, same, full = statistics.median(floors), statistics.median(sames), statistics.median(fulls)
        product = statistics.median(products)

        def paired(others: list[float]) -> float:
            """The median over rounds of full / floor within each round: the machine's slow and fast
            spells (seconds long here) hit both servers of a round alike."""
            return statistics.median(f / o for f, o in zip(fulls, others, strict=True))

        print(
            f"load: {tool}, {args.connections} connections, {args.runs} rounds x {args.seconds:g} s per server, "
            f"one uvicorn process per server, {len(first.content)} bytes per response"
        )
        print(f"floor (bare Starlette, same bytes): {floor:8.0f} req/s   runs: {[round(x) for x in floors]}")
        what = "in-process limits" if args.embedded else ("Redis Cluster" if args.cluster else "Redis limits")
        print(f"full /v1 (auth + {what}):{' ' * (18 - len(what))}{full:8.0f} req/s   runs: {[round(x) for x in fulls]}")
        print(f"floor with the same headers too:    {same:8.0f} req/s   runs: {[round(x) for x in sames]}")
        print(f"floor on serve's server and options:{product:8.0f} req/s   runs: {[round(x) for x in products]}")
        print(
            f"ratio full / floor:                 {full / floor:8.3f}  (per-round ratios' median: {paired(floors):.3f})"
        )
        print(
            f"ratio full / floor, same headers:   {full / same:8.3f}   (per-round ratios' median: {paired(sames):.3f})"
        )
        print(
            f"ratio full / floor on serve's server:{full / product:7.3f}   "
            f"(per-round ratios' median: {paired(products):.3f})"
        )
        print(
            f"auth + limits alone, in-process:    {cost_us:8.1f} us/request (warm key, Redis leases); "
            f"as the REST handler does it: {hot_us:.1f} us/request, {redis_calls} Redis calls per 20000 "
            f"requests; the floor is {1e6 / floor:.1f} us/request"
        )
        return 0
    finally:
        for child in reversed(children):  # the servers first, Redis last
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
