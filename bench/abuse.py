"""Hostile load against a real server: ``/healthz`` latency under document bombs, and memory growth
under distinct inputs.

    .venv/bin/python bench/abuse.py [--runs 3] [--requests 20000] [--probes 400] [--plan enterprise]

Each run starts ``insider-selling serve`` (embedded mode, uvicorn, one process, the settings a user
gets) on a free port, waits for its first scoring run, then:

1. **latency**: ``/healthz`` is probed every 5 ms, alone (the floor) and while four attackers
   with a rate-limited key (10 requests/minute) send the worst documents they can, over HTTP GET,
   HTTP POST and websocket operations: 24-level fragment bombs (spread doubling and alias
   doubling), 500 repeated fields, fields merged 4 x 4 x 4 x 4 deep, 2 000-token documents,
   64 KiB documents, unknown fragments, deep nesting. Target: p99 <= 50 ms.
2. **costliest documents**: ``/healthz`` is probed while two clients, each with its own key of the
   ``--plan`` plan (default ``enterprise``, 6 000 requests a minute), send the most expensive
   documents that plan allows, back to back (a new ``minScore`` each time, so no cache answers):
   30 aliases of ``insiderSelling(limit: 500)`` with four coin fields (cost 79, the issue's
   document) and 100 coins with 199 history rows of four fields each (cost 100). Target: p99 <= 50 ms.
3. **socket flood**: one key opens 200 sockets at once and sends 500 pings on each open one; a key
   over its quota opens 200 more. Reported: sockets acknowledged (at most the plan's cap), pongs
   answered (at most the ping burst per socket), sockets the over-quota key got (0).
4. **memory**: the server's RSS (``/proc/PID/status``) after a warm-up, then after ``--requests``
   requests with distinct, random-size inputs: REST query strings (up to 8 KiB), GraphQL documents
   (up to 60 KiB, by POST and GET), variables (up to 30 KiB) and websocket frames (up to 60 KiB).
   Target: growth <= 50 MiB.

Medians over ``--runs`` are printed last, one line per figure. Lines the server wrote to stderr
that are not JSON are counted (target: 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))


MODES = [int(m) for m in os.environ["ABUSE_MODES"].split(",")] if os.environ.get("ABUSE_MODES") else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# -- the worst documents -----------------------------------------------------------------------


def bombs() -> list[str]:
    spread = ["query { ...F0 }"] + [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(23)]
    spread += ["fragment F23 on Query { insiderSelling { coins { history { runId } } } }"]
    alias = ["query { insiderSelling { coins { ...F0 } } }"]
    alias += [f"fragment F{i} on Coin {{ history {{ ...F{i + 1} }} h: history {{ ...F{i + 1} }} }}" for i in range(23)]
    alias += ["fragment F23 on ScoreHistory { runId }"]
    nested = (
        "{ "
        + (
            "insiderSelling { "
            + ("coins { " + ("history { runId " + "subScores { fundingMagnitude } " * 4 + "} ") * 4 + "} ") * 4
            + "} "
        )
        * 4
        + " }"
    )
    return [
        "\n".join(spread),
        "\n".join(alias),
        nested,
        "{ " + "signal { modelVersion } " * 490 + "}",
        "{ signal { " + "modelVersion " * 1990 + "} }",
        "{ " + "a " * 1999 + "}",
        "{ signal { modelVersion } }" + " " * (64 * 1024 - 40),
        "query { ...Z }",
        "{" * 400 + "}" * 400,
        "{ insiderSelling(limit: 500) { coins { history(first: 500) { runId subScores { fundingMagnitude } } } } }",
    ]


# -- the server --------------------------------------------------------------------------------


class Server:
    def __init__(self, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.stderr = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("INSIDER_") and k not in ("MONGODB_URI", "REDIS_URL")
        }
        env.update(INSIDER_PORT=str(port), INSIDER_DEMO_COINS="80", INSIDER_LOG_LEVEL="info")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "insider_selling.cli", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            cwd=ROOT,
        )
        self.admin = self.read = ""

    async def ready(self) -> None:
        deadline = time.monotonic() + 120
        async with httpx.AsyncClient(base_url=self.base) as http:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise TimeoutError("the server did not get ready")
        text = Path(self.stderr.name).read_text()  # noqa: ASYNC240 - once, at start
        self.admin = re.search(r"bootstrap admin key: (sk_live_\w+)", text).group(1)  # type: ignore[union-attr]
        self.read = re.search(r"demo read key: (sk_live_\w+)", text).group(1)  # type: ignore[union-attr]

    def stop(self) -> list[str]:
        """Stop the server; returns the stderr lines that are not JSON."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        bad = []
        for line in Path(self.stderr.name).read_text().splitlines():
            if not line.strip() or line.startswith(("bootstrap admin key:", "demo read key:", "serving on", "store: ")):
                continue
            try:
                json.loads(line)
            except ValueError:
                bad.append(line)
        Path(self.stderr.name).unlink()
        return bad

    async def limited_key(self, per_minute: int | None, plan: str = "free", per_month: int | None = None) -> str:
        async with httpx.AsyncClient(base_url=self.base, headers={"Authorization": f"Bearer {self.admin}"}) as http:
            tenant = (
                await http.post(
                    "/graphql",
                    json={
                        "query": 'mutation($l: Int, $p: String!, $q: Int) { createTenant(name: "a", '
                        "plan: $p, rateLimitPerMinute: $l, quotaPerMonth: $q) { id } }",
                        "variables": {"l": per_minute, "p": plan, "q": per_month},
                    },
                )
            ).json()
            issued = await http.post(
                "/graphql",
                json={
                    "query": "mutation($t: ID!) { issueApiKey(tenantId: $t, "
                    'name: "a", scopes: ["signals:read"]) { key } }',
                    "variables": {"t": tenant["data"]["createTenant"]["id"]},
                },
            )
            issued = issued.json()
            return str(issued["data"]["issueApiKey"]["key"])


# -- 1. latency under bombs --------------------------------------------------------------------


def probe_process(base: str, count: int) -> None:
    """``--probe``: in its own process, so the attackers' event loop cannot delay its timing."""
    times = []
    with httpx.Client(base_url=base) as http:
        for _ in range(count):
            started = time.perf_counter()
            http.get("/healthz").raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
            time.sleep(0.005)
    print(json.dumps(times))


async def probe(base: str, count: int) -> list[float]:
    done = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--probe", base, str(count), stdout=subprocess.PIPE
    )
    out, _ = await done.communicate()
    return [float(t) for t in json.loads(out)]


async def attacker(server: Server, key: str, stop: asyncio.Event, sent: list[int], worker: int) -> None:
    docs = bombs()
    headers = {"Authorization": f"Bearer {key}"}
    ws_url = f"ws://127.0.0.1:{server.port}/graphql"
    async with httpx.AsyncClient(base_url=server.base, headers=headers, timeout=30) as http:
        i = worker
        while not stop.is_set():
            doc = docs[i % len(docs)]
            mode = i % 3 if MODES is None else MODES[i % len(MODES)]
            i += 1
            with contextlib.suppress(httpx.HTTPError, websockets.WebSocketException, OSError):
                if mode == 0:
                    await http.post("/graphql", json={"query": doc})
                elif mode == 1 and len(doc) < 12_000:
                    await http.get("/graphql", params={"query": doc})
                else:
                    async with websockets.connect(
                        ws_url,
                        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                        max_size=None,
                    ) as ws:
                        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}
                        await ws.send(json.dumps(init))
                        await ws.recv()
                        for n in range(3):
                            await ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": {"query": doc}}))
                            await asyncio.wait_for(ws.recv(), 5)
                sent[0] += 1


async def latency(server: Server, probes: int) -> tuple[float, float, int]:
    floor = await probe(server.base, probes)
    key = await server.limited_key(10)
    stop = asyncio.Event()
    sent = [0]
    attackers = [asyncio.create_task(attacker(server, key, stop, sent, n)) for n in range(4)]
    await asyncio.sleep(0.5)
    under = await probe(server.base, probes)
    stop.set()
    await asyncio.gather(*attackers, return_exceptions=True)
    return p99(floor), p99(under), sent[0]


# -- 2. the costliest documents a plan allows -------------------------------------------------


def costliest(n: int) -> list[str]:
    """The two most expensive documents allowed (each just under MAX_COST), with a fresh minScore."""
    score = f"{(n % 997) / 1000:.3f}"
    thirty = " ".join(
        f"a{i}: insiderSelling(limit: 500, minScore: {score}{i:02d}) {{ count coins {{ coinId symbol name score }} }}"
        for i in range(30)
    )
    history = (
        f"{{ insiderSelling(limit: 100, minScore: {score}) {{ coins {{ coinId "
        "history(first: 199) { runId score manipulationPhase at } } } }"
    )
    return ["{ " + thirty + " }", history]


async def costly_client(server: Server, key: str, stop: asyncio.Event, sent: list[int], worker: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server.base, headers=headers, timeout=30) as http:
        n = worker * 100_000
        while not stop.is_set():
            n += 1
            for doc in costliest(n):
                with contextlib.suppress(httpx.HTTPError):
                    response = await http.post("/graphql", json={"query": doc})
                    cost = response.json().get("extensions", {}).get("cost", {}).get("requested", 0)
                    sent[0] += response.status_code == 200
                    sent[1] = max(sent[1], cost)


async def costly_latency(server: Server, probes: int, plan: str) -> tuple[float, int, int]:
    keys = [await server.limited_key(None, plan) for _ in range(2)]
    stop = asyncio.Event()
    sent = [0, 0]  # answered 200, highest cost seen
    clients = [asyncio.create_task(costly_client(server, key, stop, sent, n)) for n, key in enumerate(keys)]
    await asyncio.sleep(0.5)
    under = await probe(server.base, probes)
    stop.set()
    await asyncio.gather(*clients, return_exceptions=True)
    return p99(under), sent[0], sent[1]


# -- 3. socket flood ---------------------------------------------------------------------------


async def open_socket(server: Server, key: str) -> websockets.ClientConnection | None:
    """An acknowledged socket, or None when the server refused or closed it."""
    try:
        ws = await websockets.connect(
            f"ws://127.0.0.1:{server.port}/graphql",
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            open_timeout=10,
        )
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}))
        if json.loads(await asyncio.wait_for(ws.recv(), 10)).get("type") == "connection_ack":
            return ws
        await ws.close()
    except (websockets.WebSocketException, OSError, TimeoutError):
        return None
    return None


async def socket_flood(server: Server, sockets: int = 200, pings: int = 500) -> tuple[int, int, int]:
    """(sockets acknowledged for one key, pongs answered in all, sockets of an over-quota key)."""
    key = await server.limited_key(None, "pro")
    opened = [ws for ws in await asyncio.gather(*(open_socket(server, key) for _ in range(sockets))) if ws]
    pongs = 0

    async def ping_flood(ws: websockets.ClientConnection) -> None:
        nonlocal pongs
        with contextlib.suppress(websockets.WebSocketException, OSError, TimeoutError):
            for _ in range(pings):
                await ws.send('{"type":"ping"}')
            while True:
                if json.loads(await asyncio.wait_for(ws.recv(), 5)).get("type") == "pong":
                    pongs += 1

    await asyncio.gather(*(ping_flood(ws) for ws in opened))
    for ws in opened:
        await ws.close()
    spent = await server.limited_key(None, "pro", per_month=1)
    async with httpx.AsyncClient(base_url=server.base) as http:  # the one request of its month
        await http.get("/v1/insider-selling/data", headers={"Authorization": f"Bearer {spent}"})
    over = [ws for ws in await asyncio.gather(*(open_socket(server, spent) for _ in range(sockets))) if ws]
    for ws in over:
        await ws.close()
    return len(opened), pongs, len(over)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


# -- 4. memory under distinct inputs -----------------------------------------------------------


def junk(rng: random.Random, size: int) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=size))


async def hostile(server: Server, requests: int, seed: int) -> None:
    rng = random.Random(seed)
    key = server.read
    ws_url = f"ws://127.0.0.1:{server.port}/graphql"
    headers = {"Authorization": f"Bearer {key}"}
    admin = {"Authorization": f"Bearer {server.admin}"}
    done = 0

    async def http_worker(n: int) -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            while done < requests:
                done += 1
                kind = rng.randrange(5)
                size = rng.randrange(16, 60_000)
                with contextlib.suppress(httpx.HTTPError):
                    if kind == 0:  # REST query strings: distinct, up to 8 KiB
                        await http.get(
                            f"/v1/insider-selling/data?limit={rng.randrange(1, 500)}&min_score="
                            f"{rng.random() * 10:.6f}&x={junk(rng, size % 8192)}",
                            headers=headers,
                        )
                    elif kind == 1:  # distinct documents by POST, padded with a comment
                        doc = f"{{ signal {{ modelVersion }} }} # {junk(rng, size)}"
                        await http.post("/graphql", json={"query": doc}, headers=admin)
                    elif kind == 2:  # distinct public documents that succeed (the response cache)
                        doc = (
                            f"query Q{done} {{ insiderSelling(limit: {rng.randrange(1, 100)}, minScore: "
                            f"{rng.random() * 5:.4f}) {{ count coins {{ coinId score }} }} }}"
                        )
                        await http.post("/graphql", json={"query": doc}, headers=admin)
                    elif kind == 3:  # variables
                        doc = "query($c: ID!) { coin(coinId: $c) { coinId } }"
                        await http.post(
                            "/graphql",
                            json={"query": doc, "variables": {"c": junk(rng, 150), "pad": junk(rng, size // 2)}},
                            headers=admin,
                        )
                    else:  # GET documents
                        doc = f"{{ signal {{ modelVersion }} }} # {junk(rng, size % 12_000)}"
                        await http.get("/graphql", params={"query": doc}, headers=admin)

    async def ws_worker() -> None:
        nonlocal done
        while done < requests:
            with contextlib.suppress(websockets.WebSocketException, OSError, TimeoutError):
                async with websockets.connect(
                    ws_url,
                    subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                    max_size=None,
                ) as ws:
                    await ws.send(json.dumps({"type": "connection_init", "payload": admin}))
                    await ws.recv()
                    for n in range(50):
                        done += 1
                        size = rng.randrange(16, 60_000)
                        doc = f"{{ signal {{ modelVersion }} }} # {junk(rng, size)}"
                        await ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": {"query": doc}}))
                        while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] not in ("complete", "error"):
                            pass

    await asyncio.gather(*(http_worker(n) for n in range(6)), ws_worker())


async def memory(server: Server, requests: int, seed: int) -> tuple[float, float]:
    await hostile(server, 2000, seed + 1)  # warm-up: caches filled to their bounds, pools grown
    before = rss_mib(server.proc.pid)
    await hostile(server, requests, seed)
    return before, rss_mib(server.proc.pid) - before


async def one_run(args: argparse.Namespace, seed: int) -> dict[str, float]:
    server = Server(free_port())
    try:
        await server.ready()
        floor, under, sent = await latency(server, args.probes)
        costly, answered, highest = await costly_latency(server, args.probes, args.plan)
        acked, pongs, over_quota = await socket_flood(server)
        before, grown = await memory(server, args.requests, seed)
    finally:
        bad = server.stop()
    result = {
        "healthz_p99_floor_ms": floor,
        "healthz_p99_under_bombs_ms": under,
        "bomb_requests": sent,
        "healthz_p99_under_costliest_ms": costly,
        "costliest_answered": answered,
        "costliest_cost": highest,
        "flood_sockets_acked_of_200": acked,
        "flood_pongs_of_100000": pongs,
        "over_quota_sockets_of_200": over_quota,
        "rss_before_mib": before,
        "rss_growth_mib": grown,
        "non_json_stderr_lines": len(bad),
    }
    print(json.dumps({k: round(v, 2) for k, v in result.items()}), flush=True)
    for line in bad[:5]:
        print("  non-JSON stderr:", line[:200], flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--probes", type=int, default=400)
    parser.add_argument("--plan", default="enterprise", help="the costliest-document clients' plan")
    parser.add_argument("--probe", nargs=2, metavar=("BASE", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe_process(args.probe[0], int(args.probe[1]))
        return
    results = [asyncio.run(one_run(args, seed)) for seed in range(args.runs)]
    print(f"medians of {args.runs} runs:")
    for name in results[0]:
        print(f"  {name}: {statistics.median(r[name] for r in results):.2f}")
    print(
        "targets: healthz_p99_under_bombs_ms <= 50, healthz_p99_under_costliest_ms <= 50, rss_growth_mib <= 50, "
        "non_json_stderr_lines == 0, flood_sockets_acked_of_200 <= the plan's cap (pro: 20), "
        "flood_pongs_of_100000 <= 10 per socket, over_quota_sockets_of_200 == 0"
    )


if __name__ == "__main__":
    main()
