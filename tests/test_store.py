"""The store suite: runs on the in-memory stand-in, and on a real MongoDB when MONGODB_URI is set.

MONGODB_URI=mongodb://localhost:27017 make test     # also checks the real driver
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from ingest.snapshot import Coin, MarketSample, OnchainSample
from ingest.source import SnapshotBatch
from ingest.storage import SnapshotStore
from scoring.runs import RunStore
from store import StoreHandle, open_store

BACKENDS = ["memory"] + (["mongodb"] if os.environ.get("MONGODB_URI") else [])


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StoreHandle]:
    uri = os.environ.get("MONGODB_URI") if request.param == "mongodb" else None
    database = f"insider_test_{secrets.token_hex(4)}"
    handle = await open_store(uri, database)
    try:
        yield handle
    finally:
        if handle.kind == "mongodb":
            await handle.client.drop_database(database)
        await handle.aclose()


async def test_ping_and_indexes(store: StoreHandle) -> None:
    assert await store.ping()
    info = await store.db["api_keys"].index_information()
    assert any(v.get("unique") and v["key"][0][0] == "key_id" for v in info.values())


async def test_crud_operators_and_sorting(store: StoreHandle) -> None:
    coll = store.db["scores"]
    at = datetime(2026, 11, 1, tzinfo=UTC)
    await coll.insert_many(
        [
            {
                "run_id": "r1",
                "coin_id": f"c{i}",
                "score": float(i),
                "at": at + timedelta(hours=i),
                "tags": ["a", f"t{i}"],
            }
            for i in range(6)
        ]
    )
    docs = (
        await coll.find({"run_id": "r1", "score": {"$gt": 0, "$gte": 2}}, {"_id": 0, "coin_id": 1})
        .sort([("score", DESCENDING)])
        .limit(3)
        .to_list()
    )
    assert docs == [{"coin_id": "c5"}, {"coin_id": "c4"}, {"coin_id": "c3"}]
    assert await coll.count_documents({"coin_id": {"$in": ["c1", "c2", "zz"]}}) == 2
    assert await coll.count_documents({"tags": "t3"}) == 1
    assert await coll.count_documents({"missing": {"$exists": False}}) == 6
    assert await coll.count_documents({"$or": [{"score": 0.0}, {"score": 5.0}]}) == 2
    assert await coll.count_documents({"at": {"$lt": at + timedelta(hours=2)}}) == 2
    one = await coll.find_one({"coin_id": "c2"}, {"_id": 0, "score": 1})
    assert one == {"score": 2.0}
    latest = await coll.find_one({}, {"_id": 0, "coin_id": 1}, sort=[("at", DESCENDING)])
    assert latest == {"coin_id": "c5"}
    skipped = await coll.find({}, {"_id": 0, "coin_id": 1}).sort("score", ASCENDING).skip(4).to_list()
    assert [d["coin_id"] for d in skipped] == ["c4", "c5"]
    assert sorted(await coll.distinct("coin_id", {"score": {"$lte": 1}})) == ["c0", "c1"]


async def test_updates_upserts_and_returned_documents(store: StoreHandle) -> None:
    coll = store.db["usage"]
    await coll.update_one({"tenant_id": "t", "month": "2026-11"}, {"$inc": {"requests": 3}}, upsert=True)
    await coll.update_one(
        {"tenant_id": "t", "month": "2026-11"}, {"$inc": {"requests": 2}, "$set": {"x": 1}}, upsert=True
    )
    doc = await coll.find_one({"tenant_id": "t"}, {"_id": 0})
    assert doc == {"tenant_id": "t", "month": "2026-11", "requests": 5, "x": 1}
    after = await coll.find_one_and_update(
        {"tenant_id": "t"},
        {"$unset": {"x": ""}, "$max": {"requests": 9}},
        {"_id": 0},
        return_document=ReturnDocument.AFTER,
    )
    assert after == {"tenant_id": "t", "month": "2026-11", "requests": 9}
    await coll.bulk_write([UpdateOne({"tenant_id": "u", "month": "2026-11"}, {"$set": {"requests": 1}}, upsert=True)])
    assert await coll.count_documents({}) == 2
    result = await coll.delete_many({"requests": {"$lt": 5}})
    assert result.deleted_count == 1


async def test_unique_indexes_are_enforced(store: StoreHandle) -> None:
    await store.db["api_keys"].insert_one({"key_id": "key_a", "tenant_id": "t"})
    with pytest.raises(DuplicateKeyError):
        await store.db["api_keys"].insert_one({"key_id": "key_a", "tenant_id": "u"})
    await store.db["api_keys"].insert_one({"key_id": "key_b", "tenant_id": "t"})
    with pytest.raises(DuplicateKeyError):
        await store.db["api_keys"].update_one({"key_id": "key_b"}, {"$set": {"key_id": "key_a"}})


async def test_returned_documents_are_copies(store: StoreHandle) -> None:
    await store.db["tenants"].insert_one({"tenant_id": "t", "limits": {"per_minute": 5}})
    doc = await store.db["tenants"].find_one({"tenant_id": "t"})
    assert doc is not None
    doc["limits"]["per_minute"] = 999
    again = await store.db["tenants"].find_one({"tenant_id": "t"})
    assert again is not None and again["limits"]["per_minute"] == 5


async def test_snapshot_round_trip(store: StoreHandle) -> None:
    at = datetime(2026, 11, 20, 10, tzinfo=UTC)
    market = [
        MarketSample("pepe", "binance", at, -0.0002, 8.0, 1.5e6, 1.0, 1.001, 1.0, 100.0, 200.0, 0.8),
        MarketSample("pepe", "hyperliquid", at, -0.00002, 1.0, None, None, None, 0.99),
        MarketSample("wif", "binance", at, 0.0001, 4.0, 2e6),
    ]
    onchain = [OnchainSample("pepe", at, liquidity_usd=5e5, holders=1200.0, flags=("mintable",))]
    batch = SnapshotBatch(
        at, [Coin("pepe", "PEPE", "Pepe", "ethereum", "0xabc"), Coin("wif", "WIF", "dogwifhat")], market, onchain
    )
    snapshots = SnapshotStore(store.db)
    await snapshots.write_batch(batch)
    await snapshots.write_batch(batch)  # idempotent: the same sample time replaces its frames
    back = await snapshots.iter_market_samples(at - timedelta(hours=1), at)
    assert sorted(back, key=lambda s: (s.venue, s.coin_id)) == sorted(market, key=lambda s: (s.venue, s.coin_id))
    assert await snapshots.onchain_window(at - timedelta(hours=1), at) == onchain
    assert (await snapshots.all_coins())["pepe"].contract == "0xabc"
    assert await snapshots.latest_market_at() == at


async def test_run_visibility(store: StoreHandle) -> None:
    runs = RunStore(store.db)
    at = datetime(2026, 11, 20, tzinfo=UTC)
    await runs.start("r1", at, "v1", "demo")
    await runs.write_scores("r1", [{"coin_id": "a", "score": 5.0, "at": at, "visible": False}])
    assert await runs.latest_succeeded() is None
    await runs.succeed("r1", {"coins": 1})
    await runs.mark_visible("r1")
    assert (await runs.latest_succeeded())["run_id"] == "r1"  # type: ignore[index]
    await runs.start("r2", at + timedelta(minutes=30), "v1", "demo")
    await runs.write_scores("r2", [{"coin_id": "a", "score": 7.0, "at": at + timedelta(minutes=30), "visible": False}])
    await runs.fail("r2", "boom")
    assert (await runs.latest_succeeded())["run_id"] == "r1"  # type: ignore[index]
    assert await runs.run_scores("r2") == []
    history = await runs.history(["a"])
    assert [d["run_id"] for d in history["a"]] == ["r1"]


async def test_history_reads_only_the_newest_runs(store: StoreHandle) -> None:
    runs = RunStore(store.db)
    at = datetime(2026, 11, 20, tzinfo=UTC)
    for i in range(4):
        run_id, when = f"r{i}", at + timedelta(minutes=30 * i)
        await runs.start(run_id, when, "v1", "demo")
        await runs.write_scores(
            run_id, [{"coin_id": c, "score": float(i), "at": when, "visible": False} for c in ("a", "b")]
        )
        if i == 2:
            await runs.fail(run_id, "boom")  # a failed run is never history
            continue
        await runs.succeed(run_id, {})
        await runs.mark_visible(run_id)
    newest = await runs.history(["a", "b"], limit_per_coin=2)
    assert [d["run_id"] for d in newest["a"]] == ["r3", "r1"]
    assert [d["run_id"] for d in newest["b"]] == ["r3", "r1"]
    older = await runs.history(["a"], limit_per_coin=2, before=at + timedelta(minutes=90))
    assert [d["run_id"] for d in older["a"]] == ["r1", "r0"]


async def test_range_queries_on_an_indexed_field_match_a_scan() -> None:
    """The in-memory store walks an index's sorted keys for ``$gt/$gte/$lt/$lte``; the answer is
    the same as a scan, also after inserts and deletes change the keys."""
    from datetime import UTC, datetime, timedelta

    from store.memory import MemoryClient

    db = MemoryClient()["range"]
    coll, plain = db["indexed"], db["plain"]
    await coll.create_index([("at", 1)])
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    docs = [{"at": t0 + timedelta(hours=h % 17), "k": h} for h in range(60)]
    for c in (coll, plain):
        await c.insert_many([dict(d) for d in docs])
        await c.delete_many({"k": {"$in": [3, 4, 5]}})
        await c.insert_one({"at": t0 + timedelta(hours=40), "k": 99})
    for q in (
        {"$gt": t0 + timedelta(hours=3)},
        {"$gte": t0 + timedelta(hours=3), "$lt": t0 + timedelta(hours=9)},
        {"$lte": t0},
        {"$gt": t0 + timedelta(hours=100)},
        {"$gt": t0, "$lte": t0 + timedelta(hours=40)},
    ):
        got = sorted(d["k"] for d in await coll.find({"at": q}).to_list())
        want = sorted(d["k"] for d in await plain.find({"at": q}).to_list())
        assert got == want
