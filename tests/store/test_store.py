"""The store suite, on both backends (the ``store`` fixture in ``tests/conftest.py``): the in-memory
stand-in and a real MongoDB wire server (SecantusDB, started once per session). Where the two
disagree the server is right; the tests named ``..._as_the_server_does`` pin the differences
found so far, so the stand-in cannot drift back."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ingest.snapshot import Coin, MarketSample, OnchainSample
from ingest.source import SnapshotBatch
from ingest.storage import SnapshotStore
from scoring.runs import RunStore
from store import StoreHandle, Update, update_each

STORE_PACKAGE = Path(__file__).resolve().parents[2] / "store"


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
    matched = await update_each(
        coll,
        [
            Update({"tenant_id": "u", "month": "2026-11"}, {"$set": {"requests": 1}}, upsert=True),
            Update({"tenant_id": "t", "month": "2026-11"}, {"$inc": {"requests": 1}}),
        ],
    )
    assert matched == 1  # the upsert matched nothing
    assert await coll.count_documents({}) == 2
    assert (await coll.find_one({"tenant_id": "t"}, {"_id": 0, "requests": 1})) == {"requests": 10}
    result = await coll.delete_many({"requests": {"$lt": 5}})
    assert result.deleted_count == 1
    assert await update_each(coll, []) == 0


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


# -- where the stand-in and the server disagreed (the server is right) ------------------------


async def test_datetimes_come_back_in_utc_with_milliseconds_as_the_server_does(store: StoreHandle) -> None:
    coll = store.db["runs"]
    paris = timezone(timedelta(hours=1))
    await coll.insert_one({"run_id": "aware", "at": datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=paris)})
    await coll.insert_one({"run_id": "naive", "at": datetime(2026, 11, 20, 10, 0, 0)})  # BSON: naive is UTC
    aware = await coll.find_one({"run_id": "aware"})
    naive = await coll.find_one({"run_id": "naive"})
    assert aware is not None and naive is not None
    assert aware["at"] == datetime(2026, 11, 20, 9, 0, 0, 123000, tzinfo=UTC)
    assert aware["at"].utcoffset() == timedelta(0)
    assert naive["at"] == datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC)
    assert naive["at"].tzinfo is not None
    # a naive bound compares as UTC too
    assert await coll.count_documents({"at": {"$gte": datetime(2026, 11, 20, 9, 30)}}) == 1


async def test_tuples_come_back_as_lists_as_the_server_does(store: StoreHandle) -> None:
    await store.db["onchain_snapshots"].insert_one({"at": datetime(2026, 11, 20, tzinfo=UTC), "flags": ("a", "b")})
    doc = await store.db["onchain_snapshots"].find_one({}, {"_id": 0, "flags": 1})
    assert doc == {"flags": ["a", "b"]}
    assert type(doc["flags"]) is list
    assert await store.db["onchain_snapshots"].count_documents({"flags": "b"}) == 1


async def test_modified_count_counts_real_changes_as_the_server_does(store: StoreHandle) -> None:
    coll = store.db["api_keys"]
    at = datetime(2026, 11, 20, tzinfo=UTC)
    await coll.insert_one({"key_id": "k", "tenant_id": "t", "last_used_at": at})
    unchanged = await coll.update_one({"key_id": "k"}, {"$max": {"last_used_at": at - timedelta(days=1)}})
    assert (unchanged.matched_count, unchanged.modified_count) == (1, 0)
    same = await coll.update_one({"key_id": "k"}, {"$set": {"tenant_id": "t"}})
    assert (same.matched_count, same.modified_count) == (1, 0)
    changed = await coll.update_many({"tenant_id": "t"}, {"$set": {"note": "x"}})
    assert (changed.matched_count, changed.modified_count) == (1, 1)
    missing = await coll.update_one({"key_id": "nope"}, {"$set": {"note": "y"}})
    assert (missing.matched_count, missing.modified_count, missing.upserted_id) == (0, 0, None)


async def test_unordered_insert_many_inserts_the_rest_and_raises_a_bulk_error_as_the_server_does(
    store: StoreHandle,
) -> None:
    coll = store.db["api_keys"]
    await coll.insert_one({"key_id": "b", "tenant_id": "t"})
    with pytest.raises(BulkWriteError) as caught:
        await coll.insert_many(
            [{"key_id": "a", "tenant_id": "t"}, {"key_id": "b", "tenant_id": "t"}, {"key_id": "c", "tenant_id": "t"}],
            ordered=False,
        )
    assert [e["code"] for e in caught.value.details["writeErrors"]] == [11000]
    assert caught.value.details["nInserted"] == 2
    assert sorted(await coll.distinct("key_id")) == ["a", "b", "c"]
    with pytest.raises(BulkWriteError) as ordered:
        await coll.insert_many([{"key_id": "d", "tenant_id": "t"}, {"key_id": "a"}, {"key_id": "e"}])
    assert ordered.value.details["nInserted"] == 1
    assert sorted(await coll.distinct("key_id")) == ["a", "b", "c", "d"]
    with pytest.raises(DuplicateKeyError):  # one document: the single-write error
        await coll.insert_one({"key_id": "a"})


async def test_a_failed_bulk_update_raises_a_bulk_error_after_the_others_as_the_server_does(
    store: StoreHandle,
) -> None:
    coll = store.db["api_keys"]
    await coll.insert_many([{"key_id": "a", "tenant_id": "t"}, {"key_id": "b", "tenant_id": "t"}])
    clash = Update({"key_id": "a"}, {"$set": {"key_id": "b"}})  # the unique index refuses it
    for ordered, applied in ((True, None), (False, 1)):
        with pytest.raises(BulkWriteError) as caught:
            await update_each(coll, [clash, Update({"key_id": "b"}, {"$set": {"n": 1}})], ordered=ordered)
        assert [(e["index"], e["code"]) for e in caught.value.details["writeErrors"]] == [(0, 11000)]
        assert caught.value.details["nMatched"] == (0 if ordered else 1)
        assert (await coll.find_one({"key_id": "b"}, {"_id": 0, "n": 1})) == ({} if applied is None else {"n": 1})


async def test_index_information_describes_ttl_and_unique_indexes_as_the_server_does(store: StoreHandle) -> None:
    info = await store.db["market_snapshots"].index_information()
    ttl = [v for v in info.values() if "expireAfterSeconds" in v]
    assert len(ttl) == 1 and ttl[0]["key"] == [("at", 1)] and ttl[0]["expireAfterSeconds"] == 30 * 86_400
    onchain = await store.db["onchain_snapshots"].index_information()
    assert onchain["at_ttl"]["key"] == [("at", -1)] and onchain["at_ttl"]["expireAfterSeconds"] == 30 * 86_400
    runs = await store.db["runs"].index_information()
    assert runs["run_id_1"]["unique"] is True and "unique" not in runs["status_1_finished_at_-1"]
    assert runs["_id_"]["key"] == [("_id", 1)]


async def test_sorting_puts_missing_and_null_first_and_arrays_by_their_least_element(store: StoreHandle) -> None:
    coll = store.db["scores"]
    await coll.insert_many(
        [
            {"coin_id": "a", "v": 3},
            {"coin_id": "b"},
            {"coin_id": "c", "v": None},
            {"coin_id": "d", "v": 1.5},
            {"coin_id": "e", "v": [9, 0]},
            {"coin_id": "f", "v": True},
        ]
    )
    order = [
        d["coin_id"] for d in await coll.find({}, {"_id": 0}).sort([("v", ASCENDING), ("coin_id", ASCENDING)]).to_list()
    ]
    assert order == ["b", "c", "e", "d", "a", "f"]  # booleans after numbers
    down = [
        d["coin_id"]
        for d in await coll.find({}, {"_id": 0}).sort([("v", DESCENDING), ("coin_id", ASCENDING)]).to_list()
    ]
    assert down == ["f", "e", "a", "d", "b", "c"]  # an array by its greatest element


# -- the stand-in reads only PyMongo's public API -----------------------------------------------


def _foreign_private_names(source: str) -> list[str]:
    """``_private`` names a module reads that the store package does not define itself: an
    attribute (``op._doc``), a ``getattr(x, "_name")``, or an import of a private module or name."""
    own: set[str] = set()
    for path in STORE_PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                own.add(node.target.id)  # dataclass fields
    found: list[str] = []

    def private(name: str) -> bool:
        return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and private(node.attr) and node.attr not in own:
            found.append(node.attr)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr")
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and private(node.args[1].value)
        ):
            found.append(node.args[1].value)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.module.startswith("store"):
            found += [p for p in node.module.split(".") if private(p)]
            found += [a.name for a in node.names if private(a.name)]
        elif isinstance(node, ast.Import):
            found += [p for a in node.names for p in a.name.split(".") if private(p)]
    return found


@pytest.mark.parametrize("module", sorted(p.name for p in STORE_PACKAGE.glob("*.py")))
def test_the_store_reads_no_private_pymongo_name(module: str) -> None:
    assert _foreign_private_names((STORE_PACKAGE / module).read_text()) == []


def test_the_private_name_check_catches_what_the_stand_in_used_to_read() -> None:
    before = "def bulk(op):\n    return op._doc, op._filter, getattr(op, '_upsert')\nfrom pymongo._csot import x\n"
    assert sorted(_foreign_private_names(before)) == ["_csot", "_doc", "_filter", "_upsert"]
