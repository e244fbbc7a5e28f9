"""The HTTP servers side by side: uvicorn (httptools, h11) and granian, each serving the full ``/v1``
path and a bare Starlette floor sending the same bytes, measured in turn in one run.

    .venv/bin/python bench/servers.py [--rounds 3] [--seconds 3] [--connections 32] [--granian PATH]

Each server runs one process on 127.0.0.1. The full app is ``build_app`` with a private Redis, an
argon2id key of an enterprise tenant (limits it never reaches) and the 80-coin demo market; the
floor is a bare Starlette endpoint returning the full path's body. Load: ``wrk`` (one thread),
``--rounds`` rounds, each measuring every server and app once. ``--granian`` names the granian
executable (granian is not a dependency of the service: install it into any environment of the
same Python and pass its path; its environment gets this project's site-packages on PYTHONPATH).
Prints the median and the individual rounds of each, and the ratio of medians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.auth_ratelimit import PATH, free_port, load_wrk, wait_port  # noqa: E402

TIMEOUT = 5  # seconds: the request deadline every server is given


def full_app() -> Any:
    """The full app for any server: its lifespan also creates the bench key (written to
    ``BENCH_KEY_FILE``) once the first run is in."""
    from ingest.demo import DemoConfig, DemoSource
    from insider_selling.app import build_app
    from insider_selling.settings import Settings

    settings = Settings(
        redis_url=os.environ["BENCH_REDIS_URL"],
        argon2_profile="owasp",
        demo_coins=80,
        history_hours=192,
        log_level="warning",
    )
    app = build_app(
        settings,
        source=DemoSource(DemoConfig(seed=11, coins=80)),
        run_scheduler=False,
        prime=True,
        announce=lambda line: None,
    )
    tasks: set[asyncio.Task[None]] = set()

    async def make_key() -> None:
        services = app.state.services
        while await services.leaderboard.current_run() is None:
            services.leaderboard.invalidate()
            await asyncio.sleep(0.1)
        tenant = await services.keys.create_tenant(
            None, "bench", "enterprise", rate_limit_per_minute=1_000_000_000, quota_per_month=2_000_000_000
        )
        issued = await services.keys.issue_key(None, tenant["tenant_id"], "bench", ["signals:read"])
        await asyncio.to_thread(Path(os.environ["BENCH_KEY_FILE"]).write_text, issued.key)

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def watch(message: Any) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                task = asyncio.get_running_loop().create_task(make_key())
                tasks.add(task)

        await app(scope, receive, watch)

    return wrapped


def floor_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    body = Path(os.environ["BENCH_BODY_FILE"]).read_bytes()

    async def endpoint(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/v1/insider-selling/data", endpoint, methods=["GET"])])


def command(server: str, factory: str, port: int, granian: str | None) -> list[str]:
    target = f"bench.servers:{factory}"
    if server == "granian":
        assert granian is not None
        return [
            granian,
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--http",
            "1",
            "--no-ws",
            "--log-level",
            "warning",
            "--no-access-log",
            "--http1-header-read-timeout",
            str(TIMEOUT * 1000),
            "--backpressure",
            "256",
            "--factory",
            target,
        ]
    http = {"uvicorn-httptools": "httptools", "uvicorn-h11": "h11"}[server]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--http",
        http,
        "--log-level",
        "warning",
        "--no-access-log",
        "--no-server-header",
        "--timeout-keep-alive",
        str(TIMEOUT),
    ]


def start(server: str, factory: str, env: dict[str, str], granian: str | None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(command(server, factory, port, granian), cwd=ROOT, env=env)  # noqa: S603
    wait_port(port)
    return proc, port


def wait_key(key_file: Path) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if key_file.exists() and key_file.read_text():
            return key_file.read_text()
        time.sleep(0.1)
    raise TimeoutError("the full app made no key")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--granian", help="the granian executable (skipped when not given)")
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("redis-server") is None:
        print("needs wrk and redis-server", file=sys.stderr)
        return 2
    servers = ["uvicorn-httptools", "uvicorn-h11"] + (["granian"] if args.granian else [])
    with tempfile.TemporaryDirectory() as tmp:
        redis_port = free_port()
        redis = subprocess.Popen(  # noqa: S603
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_port(redis_port)
            site = sysconfig.get_paths()["purelib"]
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(ROOT), site]),
                "BENCH_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                "BENCH_KEY_FILE": str(Path(tmp) / "key"),
                "BENCH_BODY_FILE": str(Path(tmp) / "body"),
            }
            # the body, once, from the full app on uvicorn
            key_file = Path(env["BENCH_KEY_FILE"])
            proc, port = start("uvicorn-httptools", "full_app", env, None)
            try:
                key = wait_key(key_file)
                import httpx

                answer = httpx.get(f"http://127.0.0.1:{port}{PATH}", headers={"Authorization": f"Bearer {key}"})
                assert answer.status_code == 200, answer.text[:200]
                Path(env["BENCH_BODY_FILE"]).write_bytes(answer.content)
            finally:
                stop(proc)
            results: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.rounds):
                for server in servers:
                    for factory in ("floor_app", "full_app"):
                        key_file.unlink(missing_ok=True)
                        proc, port = start(server, factory, env, args.granian)
                        try:
                            if factory == "full_app":  # each process has its own store: a new key
                                key = wait_key(key_file)
                            url = f"http://127.0.0.1:{port}{PATH}"
                            load_wrk(url, key, 1.0, args.connections)  # warm up
                            rate = load_wrk(url, key, args.seconds, args.connections)
                        finally:
                            stop(proc)
                        results.setdefault((server, factory), []).append(rate)
        finally:
            redis.terminate()
            redis.wait(10)
    print(f"wrk -t1, {args.connections} connections, {args.rounds} rounds x {args.seconds:g} s, one process each")
    print("| server | floor req/s (median; rounds) | full /v1 req/s (median; rounds) | full / floor |")
    print("|---|---|---|---|")
    for server in servers:
        floor, full = results[(server, "floor_app")], results[(server, "full_app")]
        f, u = statistics.median(floor), statistics.median(full)
        print(
            f"| {server} | {f:.0f} ({' / '.join(f'{x:.0f}' for x in floor)}) "
            f"| {u:.0f} ({' / '.join(f'{x:.0f}' for x in full)}) | {u / f:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
