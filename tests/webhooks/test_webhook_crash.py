"""A process killed between storing a run and sending its webhooks loses no event: the outbox is
part of the stored run (one update), and the delivery worker started after the crash sends it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from store import open_store
from tests.helpers import MongoServer
from tests.webhooks.receiver import ADMIN_SCOPE, Receiver, add_tenant, principal
from webhooks.config import WebhookConfig
from webhooks.dispatcher import Dispatcher
from webhooks.service import WebhookService

ROOT = Path(__file__).resolve().parents[2]
KEY = b"crash-test-server-key-0123456789"

CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from datetime import UTC, datetime
    from ingest.demo import DemoConfig, DemoSource
    from ingest.storage import SnapshotStore
    from scoring.config import load_model_config
    from scoring.pipeline import ScoringPipeline
    from store import open_store

    async def main():
        store = await open_store(sys.argv[1], sys.argv[2])
        at = datetime(2026, 11, 20, tzinfo=UTC)
        batch = await DemoSource(DemoConfig(seed=3, coins=40)).backfill(at, 192)
        await SnapshotStore(store.db).write_batch(batch)
        result = await ScoringPipeline(store.db, load_model_config()).run(at)
        print(result.status, result.listed, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # stored, nothing sent yet

    asyncio.run(main())
    """
)


@pytest.mark.mongo
async def test_a_killed_process_loses_no_webhook(mongo_server: MongoServer, receiver: Receiver) -> None:
    database = "insider_crash_" + os.urandom(4).hex()
    store = await open_store(mongo_server.uri, database)
    config = WebhookConfig(server_key=KEY, allow_http=True, allow_private=True, retry_schedule=(0.01,), jitter=0)
    try:
        await add_tenant(store.db, "alice")
        created = await WebhookService(store.db, config).create(
            principal("alice", ADMIN_SCOPE), url=receiver.url, events=["coin.listed"]
        )
        receiver.secrets.append(created.secret)
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            mongo_server.uri,
            database,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(120):
            out, err = await child.communicate()
        assert child.returncode == -signal.SIGKILL, err.decode()
        status, listed = out.decode().split()
        assert status == "succeeded" and int(listed) > 0
        assert receiver.requests == []
        run = await store.db["runs"].find_one({"status": "succeeded"})
        assert run is not None and run["outbox_pending"] is True
        # the restarted delivery worker (a fresh process's dispatcher, same server key)
        dispatcher = Dispatcher(store.db, config)
        try:
            await dispatcher.pass_once()
            await dispatcher.idle()
        finally:
            await dispatcher.aclose()
        listed_events = [r for r in receiver.requests if r["payload"]["type"] == "coin.listed"]
        assert len(listed_events) == int(listed)
        assert receiver.bad_signatures == 0
        assert all(count == 1 for count in receiver.acknowledged.values())
    finally:
        await store.client.drop_database(database)
        await store.aclose()
