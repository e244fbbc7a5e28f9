"""Benchmark: one scoring run's webhooks to 1,000 endpoints, 10 % of them failing or slow.

    .venv/bin/python bench/webhooks.py [--endpoints 1000] [--bad 0.1] [--coins 80]

A receiver (a raw asyncio HTTP server in its own thread, on 127.0.0.1) answers ``/ok/*`` with 204,
``/fail/*`` with 500 and ``/slow/*`` after 30 s (past the 5 s attempt timeout). The endpoints are
spread over enterprise tenants (200 each), every one subscribed to ``run.completed`` and
``coin.score_crossed`` (``--threshold``, default 6.0, upward). A demo run is scored on the in-memory store; the
clock starts when the run is stored (its outbox written) and stops when every healthy endpoint's
deliveries are acknowledged. Reported: that time, the deliveries, and the attempts to the bad
endpoints meanwhile. The target (issue 22) is under 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.demo import DemoConfig, DemoSource
from ingest.storage import SnapshotStore
from scoring.config import load_model_config
from scoring.pipeline import ScoringPipeline
from store import open_store
from tenants.principal import Principal
from webhooks import Dispatcher, WebhookConfig, WebhookService

KEY = b"bench-server-key-0123456789abcdef"


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        length = next((int(v) for k, _, v in (x.partition(":") for x in lines[1:]) if k.lower() == "content-length"), 0)
        await reader.readexactly(length)
        if path.startswith("/slow/"):
            await asyncio.sleep(30)
        status = "500 Internal Server Error" if path.startswith("/fail/") else "204 No Content"
        writer.write(f"HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def serve_forever() -> None:
    """The receiver process: prints its port, then serves until killed."""

    async def main() -> None:
        server = await asyncio.start_server(_serve, "127.0.0.1", 0, backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


def start_receiver() -> tuple[subprocess.Popen[str], int]:
    """The receiver in its own process: its CPU is not the dispatcher's (as a customer's is not)."""
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


async def main(endpoints: int, bad: float, coins: int, threshold: float) -> float:
    receiver, port = start_receiver()
    store = await open_store(None, "bench")
    db = store.db
    config = WebhookConfig(
        server_key=KEY, allow_http=True, allow_private=True, timeout=5.0, poll_seconds=0.25, concurrency=256
    )
    service = WebhookService(db, config)
    admin = Principal(tenant_id="ops", key_id="k", scopes=frozenset({"admin"}), plan="enterprise")
    n_bad = int(endpoints * bad)
    healthy: set[str] = set()
    for i in range(endpoints):
        tenant = f"t{i // 200}"
        if i % 200 == 0:
            await db["tenants"].insert_one({"tenant_id": tenant, "name": tenant, "plan": "enterprise"})
        kind = "ok" if i >= n_bad else ("fail" if i % 2 else "slow")
        created = await service.create(
            admin,
            tenant_id=tenant,
            url=f"http://127.0.0.1:{port}/{kind}/{i}",
            events=["run.completed", "coin.score_crossed"],
            threshold=threshold,
            direction="up",
        )
        if kind == "ok":
            healthy.add(created.endpoint["endpoint_id"])
    at = datetime(2026, 11, 20, tzinfo=UTC)
    await SnapshotStore(db).write_batch(await DemoSource(DemoConfig(seed=3, coins=coins)).backfill(at, 192))
    result = await ScoringPipeline(db, load_model_config()).run(at)
    dispatcher = Dispatcher(db, config)
    started = time.perf_counter()
    loop = asyncio.create_task(dispatcher.run_forever())
    deliveries = db["webhook_deliveries"]
    await dispatcher.fan_out()  # what the first pass does (timed)
    ids = sorted(healthy)
    total = await deliveries.count_documents({"endpoint_id": {"$in": ids}})
    while await deliveries.count_documents({"status": "delivered"}) < total:  # bad ones never deliver
        if time.perf_counter() - started > 120:
            raise SystemExit("timed out")
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    bad_attempts = await db["webhook_attempts"].count_documents({"endpoint_id": {"$nin": ids}})
    unsuccessful = {"endpoint_id": {"$in": ids}, "status": {"$ne": "succeeded"}}
    retried = Counter(a["error"] for a in await db["webhook_attempts"].find(unsuccessful).to_list())
    print(
        f"run {result.run_id}: {result.listed} listed; {endpoints} endpoints ({n_bad} failing or slow); "
        f"{total} deliveries to {len(healthy)} healthy endpoints acknowledged in {elapsed:.2f} s "
        f"({total / elapsed:.0f}/s); {bad_attempts} attempts to the bad ones meanwhile; "
        f"failed attempts to healthy ones: {sum(retried.values())} {dict(retried)}"
    )
    loop.cancel()
    receiver.kill()
    receiver.wait()
    await dispatcher.aclose()
    await store.aclose()
    return elapsed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--bad", type=float, default=0.1)
    parser.add_argument("--coins", type=int, default=80)
    parser.add_argument("--threshold", type=float, default=6.0, help="coin.score_crossed's line")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_forever()
    seconds = asyncio.run(main(args.endpoints, args.bad, args.coins, args.threshold))
    sys.exit(0 if seconds < 10 else 1)
