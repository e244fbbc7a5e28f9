# ruff: noqa: E402, ASYNC110
"""GraphQL benchmark: cold in-process execution and hot HTTP throughput.

    .venv/bin/python bench/graphql.py [--coins 600] [--repeat 7] [--requests 3000]

cold: ms to execute the full leaderboard query (100 coins x every Coin field, subScores and venues)
      in-process with a response-cache miss (parse/validation caches warm, one store query,
      orjson encoding), next to stock Strawberry (no extensions, default executor, json.dumps)
      resolving the same documents, already in memory. Medians of --repeat runs.
hot:  requests/s over HTTP (uvicorn on 127.0.0.1, one worker process) for the same query answered
      from the per-run response cache, next to a bare Starlette endpoint serving the same bytes
      (the floor). A bounded keep-alive load loop; median of 3 runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named graphql.py: keep its folder off sys.path so ``import graphql`` finds graphql-core.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import asyncio
import json
import multiprocessing as mp
import re
import socket
import statistics
import time
from datetime import datetime
from typing import Any

import orjson
import strawberry

from gql.selection import COIN_GRAPHQL_FIELDS
from gql.types import SUB_SCORES
from scoring.contract import COIN_FIELDS

CAMEL = {snake: camel for camel, snake in COIN_GRAPHQL_FIELDS.items()}
QUERY = (
    "{ insiderSelling(limit: 100) { count description signal { methodology updateFrequency exchanges } "
    "coins { "
    + " ".join(CAMEL[f] for f in COIN_FIELDS)
    + " subScores { "
    + " ".join(CAMEL[s] for s in SUB_SCORES)
    + " }"
    + " venues { venue exchange at fundingRate fundingIntervalHours fundingRatePerHour openInterestUsd basis }"
    + " } } }"
)


def settings(coins: int) -> Any:
    from insider_selling.settings import Settings

    return Settings(argon2_profile="test", demo_coins=coins, history_hours=96)


# -- stock Strawberry over the same documents ------------------------------------------------------


@strawberry.type
class SubScores:
    funding_magnitude: float
    funding_persistence: float
    wallet_concentration: float
    holder_quality_deterioration: float
    coordination_risk: float
    distribution_pressure: float
    market_confirmation: float


@strawberry.type
class Venue:
    venue: str
    exchange: str
    at: str
    funding_rate: float | None
    funding_interval_hours: float | None
    funding_rate_per_hour: float | None
    open_interest_usd: float | None
    basis: float | None


@strawberry.type
class Coin:
    coin_id: strawberry.ID
    symbol: str
    name: str
    score: float
    avg_funding_72h: float
    funding_magnitude: float
    funding_persistence: float
    wallet_concentration: float
    holder_quality_deterioration: float
    coordination_risk: float
    distribution_pressure: float
    market_confirmation: float
    manipulation_phase: str
    consecutive_negative_days: int
    price_change_24h: float
    price_change_7d: float
    top10_holders_pct: float | None
    volume_to_liquidity_24h: float | None
    old_wallet_swap_pct_1d: float | None
    holders_change_pct: float | None
    top10_holders_pct_change: float | None
    signal_start_date: str
    updated_at: str
    sub_scores: SubScores
    venues: list[Venue]


@strawberry.type
class Signal:
    methodology: str
    update_frequency: str
    exchanges: list[str]


@strawberry.type
class InsiderSelling:
    count: int
    description: str
    signal: Signal
    coins: list[Coin]


@strawberry.type
class Query:
    @strawberry.field
    def insider_selling(self, info: strawberry.Info, limit: int = 100) -> InsiderSelling:
        docs, description, signal = info.context["docs"], info.context["description"], info.context["signal"]
        coins = [
            Coin(
                **{f: d[f] for f in COIN_FIELDS},
                sub_scores=SubScores(**{s: d[s] for s in SUB_SCORES}),
                venues=[Venue(**v) for v in d["venues"]],
            )
            for d in docs[:limit]
        ]
        return InsiderSelling(count=len(coins), description=description, signal=Signal(**signal), coins=coins)


STOCK = strawberry.Schema(query=Query)


# -- cold --------------------------------------------------------------------------------------------


async def cold(coins: int, repeat: int) -> tuple[float, float, float, int]:
    from contextlib import AsyncExitStack

    from gql.context import Context
    from gql.schema import schema
    from insider_selling.app import build_app
    from scoring.contract import DESCRIPTION, signal_block

    app = build_app(settings(coins), run_scheduler=False, announce=lambda _: None)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        services = app.state.services
        while await services.leaderboard.current_run() is None:
            services.leaderboard.invalidate()
            await asyncio.sleep(0.05)
        run = await services.leaderboard.current_run()
        principal = await services.authenticator.authenticate(f"Bearer {app.state.bootstrap[1].key}")
        docs = await services.runs.leaderboard(run["run_id"], limit=100)
        listed = len(docs)

        async def ours() -> bytes:
            result = await schema.execute(QUERY, context_value=Context.build(services, principal))
            assert not result.errors, result.errors
            return orjson.dumps({"data": result.data})

        started = time.perf_counter()
        first = await ours()
        first_ms = (time.perf_counter() - started) * 1000

        sig = signal_block(services.leaderboard.interval_seconds)
        stock_context = {"docs": docs, "description": DESCRIPTION, "signal": sig}

        async def theirs() -> str:
            result = await STOCK.execute(QUERY, context_value=stock_context)
            assert not result.errors, result.errors
            return json.dumps({"data": result.data})

        assert orjson.loads(first) == json.loads(await theirs()), "both answer the same data"
        mine, base = [], []
        for _ in range(repeat):
            t = time.perf_counter()
            await ours()
            mine.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await theirs()
            base.append((time.perf_counter() - t) * 1000)
        return statistics.median(mine), statistics.median(base), first_ms, listed


# -- hot ---------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_graphql(port: int, coins: int, out: Any) -> None:
    import uvicorn

    from insider_selling.app import build_app

    lines: list[str] = []
    app = build_app(settings(coins), run_scheduler=False, announce=lines.append)

    async def main() -> None:
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", access_log=False))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        services = app.state.services
        while await services.leaderboard.current_run() is None:
            services.leaderboard.invalidate()
            await asyncio.sleep(0.05)
        # a tenant whose budget the load loop cannot exhaust (the demo key is limited to 600/min)
        admin = await services.authenticator.authenticate(f"Bearer {app.state.bootstrap[0].key}")
        tenant = await services.keys.create_tenant(
            admin, "bench", "enterprise", rate_limit_per_minute=10**8, quota_per_month=2_000_000_000
        )
        issued = await services.keys.issue_key(admin, tenant["tenant_id"], "bench", ["signals:read"])
        out.put(issued.key)
        await task

    asyncio.run(main())


def _serve_floor(port: int, body: bytes) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def endpoint(request: Any) -> Response:
        await request.body()
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route("/graphql", endpoint, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


async def _load(port: int, request: bytes, total: int, connections: int = 8) -> float:
    length = re.compile(rb"content-length: *(\d+)", re.I)

    async def worker(n: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(n):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
            match = length.search(head)
            assert match is not None
            await reader.readexactly(int(match.group(1)))
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(total // connections) for _ in range(connections)))
    return (total // connections * connections) / (time.perf_counter() - started)


def _request(port: int, body: bytes, key: str | None) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (
        f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{auth}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def hot(coins: int, total: int) -> tuple[list[float], list[float], int]:
    ctx = mp.get_context("spawn")
    body = orjson.dumps({"query": QUERY})
    port, keys = _free_port(), ctx.Queue()
    server = ctx.Process(target=_serve_graphql, args=(port, coins, keys), daemon=True)
    server.start()
    try:
        key = keys.get(timeout=120)
        _wait_port(port)
        request = _request(port, body, key)
        import httpx

        answer = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            content=body,
            timeout=30,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        assert answer.status_code == 200 and "errors" not in answer.json(), answer.text[:300]
        size = len(answer.content)
        asyncio.run(_load(port, request, 200))  # warm up
        ours_runs = [asyncio.run(_load(port, request, total)) for _ in range(3)]
    finally:
        server.terminate()
        server.join(10)
    port = _free_port()
    floor_server = ctx.Process(target=_serve_floor, args=(port, answer.content), daemon=True)
    floor_server.start()
    try:
        _wait_port(port)
        request = _request(port, body, None)
        asyncio.run(_load(port, request, 200))
        floor_runs = [asyncio.run(_load(port, request, total)) for _ in range(3)]
    finally:
        floor_server.terminate()
        floor_server.join(10)
    return ours_runs, floor_runs, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--coins", type=int, default=1300, help="demo market size (about 1 in 12 is listed)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--requests", type=int, default=3000, help="requests per hot load run")
    args = parser.parse_args()
    mine, stock, first, listed = asyncio.run(cold(args.coins, args.repeat))
    print(f"cold  full leaderboard ({listed} coins x all fields, subScores, venues), median of {args.repeat}")
    print(f"      ours (response-cache miss): {mine:7.2f} ms   first ever (all caches empty): {first:.2f} ms")
    print(f"      stock Strawberry:           {stock:7.2f} ms   ratio {mine / stock:.2f}x (target <= 1)")
    ours_runs, floor_runs, size = hot(args.coins, args.requests)
    ours, floor = statistics.median(ours_runs), statistics.median(floor_runs)
    print(f"hot   same query over HTTP ({size} bytes), uvicorn 127.0.0.1, 8 keep-alive connections, median of 3")
    print(f"      ours (response cache):      {ours:7.0f} req/s   runs: {[round(x) for x in ours_runs]}")
    print(f"      bare Starlette, same bytes: {floor:7.0f} req/s   runs: {[round(x) for x in floor_runs]}")
    print(f"      ratio {ours / floor:.2f}x (target >= 0.75)")
    print(f"      at {datetime.now():%Y-%m-%d %H:%M}")


if __name__ == "__main__":
    main()
