"""Runs in the store: all-or-nothing visibility, failed runs keep the previous leaderboard,
history per coin, model version, the public fields of every score document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ingest.demo import DemoConfig, DemoSource
from ingest.storage import SnapshotStore
from scoring import pipeline as pipeline_module
from scoring.config import load_model_config
from scoring.errors import RunFailed
from scoring.model import SUB_SCORES
from scoring.pipeline import ScoringPipeline
from store import StoreHandle

AT = datetime(2026, 11, 20, tzinfo=UTC)
SEED_FIELDS = {
    "coin_id",
    "symbol",
    "name",
    "score",
    "avg_funding_72h",
    *SUB_SCORES,
    "manipulation_phase",
    "consecutive_negative_days",
    "price_change_24h",
    "price_change_7d",
    "top10_holders_pct",
    "volume_to_liquidity_24h",
    "old_wallet_swap_pct_1d",
    "holders_change_pct",
    "top10_holders_pct_change",
    "signal_start_date",
    "updated_at",
}


@pytest.fixture
async def world(store: StoreHandle) -> AsyncIterator[tuple[Any, DemoSource, ScoringPipeline]]:
    source = DemoSource(DemoConfig(seed=3, coins=40))
    batch = await source.backfill(AT, 192)
    await SnapshotStore(store.db).write_batch(batch)
    yield store.db, source, ScoringPipeline(store.db, load_model_config())


async def test_a_run_lists_scored_coins_with_every_public_field(world: Any) -> None:
    _db, _, pipe = world
    result = await pipe.run(AT)
    assert result.status == "succeeded" and result.coins == 40 and result.listed > 0
    run = await pipe.runs.latest_succeeded()
    assert run is not None and run["run_id"] == result.run_id
    assert run["model_version"] == load_model_config().version
    board = await pipe.runs.leaderboard(result.run_id)
    assert len(board) == result.listed
    assert [d["score"] for d in board] == sorted((d["score"] for d in board), reverse=True)
    for doc in board:
        assert doc.keys() >= SEED_FIELDS
        assert 0 < doc["score"] <= 10
        assert doc["avg_funding_72h"] is not None
        assert doc["manipulation_phase"] != "none"
        assert doc["model_version"] == run["model_version"] and doc["visible"] is True
        assert doc["venues"], "listed coins carry their per-venue breakdown"
        assert doc["signal_start_date"] <= doc["updated_at"]
    unlisted = [d for d in await pipe.runs.run_scores(result.run_id) if d["score"] == 0]
    assert all(d["manipulation_phase"] == "none" for d in unlisted)


async def test_a_failed_run_leaves_the_previous_leaderboard(world: Any, monkeypatch: Any) -> None:
    _db, _source, pipe = world
    first = await pipe.run(AT)
    before = await pipe.runs.leaderboard(first.run_id)

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RunFailed("the model blew up halfway")

    # the run fails after its documents were prepared: none of them may become visible
    real_write = pipe.runs.write_scores

    async def write_then_fail(run_id: str, docs: Any) -> None:
        await real_write(run_id, docs)
        explode()

    monkeypatch.setattr(pipe.runs, "write_scores", write_then_fail)
    second = await pipe.run(AT + timedelta(hours=1))
    assert second.status == "failed" and "blew up" in (second.error or "")
    latest = await pipe.runs.latest_succeeded()
    assert latest is not None and latest["run_id"] == first.run_id
    assert await pipe.runs.leaderboard(first.run_id) == before
    assert await pipe.runs.run_scores(second.run_id) == []
    failed = [r for r in await pipe.runs.recent_runs() if r["run_id"] == second.run_id]
    assert failed[0]["status"] == "failed"


async def test_an_unexpected_error_fails_the_run_and_propagates(world: Any, monkeypatch: Any) -> None:
    _db, _, pipe = world
    first = await pipe.run(AT)
    monkeypatch.setattr(pipeline_module, "score_panels", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        await pipe.run(AT + timedelta(hours=1))
    latest = await pipe.runs.latest_succeeded()
    assert latest is not None and latest["run_id"] == first.run_id


async def test_no_data_fails_cleanly(store: StoreHandle) -> None:
    pipe = ScoringPipeline(store.db, load_model_config())
    result = await pipe.run(AT)
    assert result.status == "failed" and "no market snapshots" in (result.error or "")
    assert await pipe.runs.latest_succeeded() is None


async def test_history_per_coin_and_changes_against_the_previous_run(world: Any) -> None:
    db, source, pipe = world
    first = await pipe.run(AT)
    await SnapshotStore(db).write_batch(await source.collect(AT + timedelta(hours=1)))
    second = await pipe.run(AT + timedelta(hours=1))
    assert second.status == "succeeded"
    coin = (await pipe.runs.leaderboard(second.run_id, limit=1))[0]["coin_id"]
    history = (await pipe.runs.history([coin]))[coin]
    assert [h["run_id"] for h in history] == [second.run_id, first.run_id]
    docs = {d["coin_id"]: d for d in await pipe.runs.run_scores(second.run_id)}
    prev = {d["coin_id"]: d for d in await pipe.runs.run_scores(first.run_id)}
    with_holders = [c for c, d in docs.items() if d["holders"] and prev[c]["holders"]]
    assert with_holders, "the demo has on-chain coins"
    for c in with_holders:
        expected = docs[c]["holders"] / prev[c]["holders"] - 1
        assert docs[c]["holders_change_pct"] == pytest.approx(expected, abs=1e-6)
        assert docs[c]["top10_holders_pct_change"] == pytest.approx(
            docs[c]["top10_holders_pct"] - prev[c]["top10_holders_pct"], abs=0.02
        )
    # the first run had no previous run: no change is invented
    assert all(d["holders_change_pct"] is None for d in prev.values())
