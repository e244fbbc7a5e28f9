"""Score retention by roll-up (``INSIDER_SCORE_RETENTION_DAYS``): old runs thin to one per UTC day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from insider_selling.cycle import Cycle
from scoring.runs import RunStore
from store import StoreHandle

NOW = datetime(2026, 11, 30, 15, 20, tzinfo=UTC)
COINS = ("alpha", "beta", "gamma")


async def stored_runs(db: Any, days: int, every: timedelta) -> list[tuple[str, datetime]]:
    store = RunStore(db)
    runs: list[tuple[str, datetime]] = []
    at = (NOW - timedelta(days=days)).replace(minute=0)
    while at <= NOW:
        run_id = f"run_{at:%Y%m%dT%H%M}"
        await store.start(run_id, at, "test", "demo")
        await store.write_scores(run_id, [{"coin_id": c, "at": at, "score": 1.0 + i} for i, c in enumerate(COINS)])
        await store.succeed(run_id, {"coins": len(COINS)})
        await store.mark_visible(run_id)
        runs.append((run_id, at))
        at += every
    return runs


async def test_old_runs_roll_up_to_the_last_run_of_each_day(store: StoreHandle) -> None:
    db = store.db
    run_store = RunStore(db)
    runs = await stored_runs(db, days=6, every=timedelta(hours=3))
    pruned = await run_store.roll_up(full_days=2, now=NOW)

    cutoff = datetime(2026, 11, 28, tzinfo=UTC)  # start of today, UTC, minus 2 days
    old = [(r, at) for r, at in runs if at < cutoff]
    last_of_day: dict[Any, str] = {}
    for run_id, at in old:
        last_of_day[at.date()] = run_id
    expected_pruned = {r for r, _ in old} - set(last_of_day.values())
    assert pruned == len(expected_pruned) > 0

    docs = {d["run_id"]: d for d in await db["runs"].find({}).to_list()}
    for run_id, at in runs:
        scores = await db["scores"].count_documents({"run_id": run_id})
        if run_id in expected_pruned:
            assert docs[run_id]["pruned"] is True and scores == 0  # the run document stays
        else:
            assert scores == len(COINS) and not docs[run_id].get("pruned")
            assert docs[run_id].get("daily") is (True if at < cutoff else None)
    assert (await run_store.latest_succeeded())["run_id"] == runs[-1][0]
    # history skips pruned runs: the newest N runs that still hold scores
    history = await run_store.history(["alpha"], limit_per_coin=len(runs))
    assert [d["run_id"] for d in history["alpha"]] == [r for r, _ in reversed(runs) if r not in expected_pruned]
    # each old run is handled once
    assert await run_store.roll_up(full_days=2, now=NOW) == 0
    assert await run_store.roll_up(full_days=2, now=NOW + timedelta(days=1)) > 0


async def test_the_latest_run_survives_a_long_pause(store: StoreHandle) -> None:
    db = store.db
    run_store = RunStore(db)
    runs = await stored_runs(db, days=1, every=timedelta(hours=6))
    assert await run_store.roll_up(full_days=1, now=NOW + timedelta(days=90)) > 0
    latest = await run_store.latest_succeeded()
    assert latest is not None and latest["run_id"] == runs[-1][0]
    assert await db["scores"].count_documents({"run_id": runs[-1][0]}) == len(COINS)


async def test_the_cycle_rolls_up_after_a_successful_run_when_configured() -> None:
    calls: list[int] = []

    class Runs:
        async def roll_up(self, full_days: int) -> int:
            calls.append(full_days)
            return 0

    class Pipeline:
        runs = Runs()
        status = "succeeded"

        async def run(self, at: datetime, outcomes: list[Any]) -> Any:
            return SimpleNamespace(status=self.status, run_id="run_x")

    pipeline = Pipeline()
    await Cycle(None, None, pipeline, history_hours=24, score_retention_days=30)._score(NOW, [])  # type: ignore[arg-type]
    await Cycle(None, None, pipeline, history_hours=24)._score(NOW, [])  # type: ignore[arg-type]
    pipeline.status = "failed"
    await Cycle(None, None, pipeline, history_hours=24, score_retention_days=30)._score(NOW, [])  # type: ignore[arg-type]
    assert calls == [30]


async def test_the_documented_bytes_per_score_document_match_a_real_run() -> None:
    import re
    import statistics

    import bson

    from tests.helpers import ROOT, start_app

    async for api in start_app():
        run = await api.services.leaderboard.current_run()
        # a retained run: once the next run is stored, its unlisted coins keep no venues
        assert (await api.services.cycle.run_once(run["at"] + timedelta(minutes=30))).status == "succeeded"
        docs = await api.services.store.db["scores"].find({"run_id": run["run_id"]}).to_list()
        latest = await api.services.leaderboard.current_run()
        newest = await api.services.store.db["scores"].find({"run_id": latest["run_id"], "score": 0.0}).to_list()
    assert all(d["venues"] == [] for d in docs if not d["score"] > 0)
    assert any(d["venues"] for d in newest)  # the latest run keeps them: a coin looked up shows its funding
    unlisted = statistics.median(len(bson.encode(d)) for d in docs if not d["score"] > 0)
    page = (ROOT / "docs" / "operations.md").read_text()
    documented = int(re.search(r"\*\*([0-9 ]+) bytes\*\* for a coin that is\s+not listed", page)[1].replace(" ", ""))
    assert abs(unlisted - documented) / documented < 0.25, (unlisted, documented)
