"""Signal.lastRunAt / nextRunAt and Coin.coverage tell the truth (issue 10 §1-2): after failed runs
and restarts, through the per-run response cache, and with the scheduler in another process
(issue 18: ``serve`` next to a separate ``worker``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gql.pages import RunStatusReader
from ingest.demo import DemoConfig, DemoSource
from ingest.storage import SnapshotStore
from insider_selling.cycle import Cycle
from scoring.config import load_model_config
from scoring.pipeline import ScoringPipeline
from scoring.schedule import next_run_at
from store import StoreHandle
from tests.gql.helpers import data, gql
from tests.helpers import ApiClient, make_settings, start_app

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def test_the_next_run_is_the_next_slot_of_the_grid_never_in_the_past() -> None:
    """After runs failed for a while, the next planned run is the next slot after now, not the
    slot after the last succeeded run (which has passed); a run primed off the grid is followed
    by the grid's next slot, as the worker's scheduler runs it."""
    run_at = T0
    assert next_run_at(run_at, 1800, T0 + timedelta(minutes=10)) == T0 + timedelta(minutes=30)
    later = T0 + timedelta(hours=2, minutes=5)  # four slots failed since
    assert next_run_at(run_at, 1800, later) == T0 + timedelta(hours=2, minutes=30)
    assert next_run_at(run_at, 1800, T0 + timedelta(minutes=30)) == T0 + timedelta(hours=1)
    primed = T0 + timedelta(minutes=7, seconds=3)
    assert next_run_at(primed, 1800, primed + timedelta(seconds=1)) == T0 + timedelta(minutes=30)
    assert next_run_at(None, 1800, T0) == T0 + timedelta(minutes=30)


async def test_without_a_scheduler_in_the_serving_process_next_run_at_comes_from_the_stored_runs(
    store: StoreHandle,
) -> None:
    """The production topology in one process: a worker (here its ``Cycle``) scores into the store,
    and an API app built as ``serve`` builds it next to a separate worker (no scheduler, no priming)
    answers ``Signal.nextRunAt`` and the run status from the stored run and the interval. Before the
    fix this answered 500 (``'Services' object has no attribute 'settings'``) and the run status
    showed the slot after the last run, long past."""
    source = DemoSource(DemoConfig(seed=3, coins=30))
    worker = Cycle(source, SnapshotStore(store.db), ScoringPipeline(store.db, load_model_config()), history_hours=192)
    run_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)  # the worker stopped since
    assert (await worker.prime(run_at)).status == "succeeded"
    settings = make_settings(score_interval_seconds=600)
    async for api in start_app(settings, store=store, run_scheduler=False, prime=False):
        for query in (
            "{ insiderSelling(limit: 5) { signal { lastRunAt nextRunAt } coins { coinId } } }",
            "{ signal { lastRunAt nextRunAt updateFrequency } }",
        ):
            before = datetime.now(UTC)
            response = await gql(api, query)
            after = datetime.now(UTC)
            assert response.status_code == 200, response.text
            body = response.json()
            assert "errors" not in body, body["errors"]
            signal = (body["data"].get("insiderSelling") or body["data"])["signal"]
            planned = datetime.fromisoformat(signal["nextRunAt"])
            assert signal["lastRunAt"] == run_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            assert next_run_at(run_at, 600, before) <= planned <= next_run_at(run_at, 600, after)
            assert before < planned <= after + timedelta(seconds=600)  # the next slot, not one long past
        before = datetime.now(UTC)
        status = await RunStatusReader(ttl=0).read(api.services)
        assert status.next_at is not None and before < status.next_at <= datetime.now(UTC) + timedelta(seconds=600)
        assert status.last_status == "succeeded"


async def test_next_run_at_is_not_frozen_by_the_response_cache(api: ApiClient) -> None:
    """The response cache is per scoring run; when a slot passes without a new run (it failed),
    the run stays the same but the plan moves on."""
    query = "{ signal { lastRunAt nextRunAt } }"
    services = api.services
    saved = services.clock
    interval = services.leaderboard.interval_seconds
    try:
        now = datetime.now(UTC)
        services.clock = lambda: now
        a = (await data(api, query))["signal"]
        services.clock = lambda: now + timedelta(seconds=interval)  # that slot's run failed
        b = (await data(api, query))["signal"]
    finally:
        services.clock = saved
    first = next_run_at(None, interval, now)
    assert a["lastRunAt"] == b["lastRunAt"]
    assert a["nextRunAt"] == first.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert b["nextRunAt"] == (first + timedelta(seconds=interval)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_a_restart_scores_at_its_own_time_and_is_not_hidden(store: StoreHandle) -> None:
    """A run stored before a restart at 09:30; the restart primes at 09:40: the new run is the
    latest, and its rows say 09:40 (old code scored at the backfill's hour, 09:00, behind 09:30)."""
    db: Any = store.db
    source = DemoSource(DemoConfig(seed=3, coins=30))
    pipeline = ScoringPipeline(db, load_model_config())
    await SnapshotStore(db).write_batch(await source.backfill(T0.replace(minute=0), 192))
    before = await pipeline.run(T0)
    assert before.status == "succeeded"
    cycle = Cycle(DemoSource(DemoConfig(seed=3, coins=30)), SnapshotStore(db), pipeline, history_hours=192)
    restart = T0 + timedelta(minutes=10, seconds=7, microseconds=5)
    result = await cycle.prime(restart)
    latest = await pipeline.runs.latest_succeeded()
    assert latest is not None and latest["run_id"] == result.run_id
    assert latest["at"] == restart.replace(microsecond=0)
    board = await pipeline.runs.leaderboard(result.run_id)
    assert board and all(d["updated_at"] == "2026-11-20T09:40:07Z" for d in board)


async def test_coverage_says_which_families_had_data(api: ApiClient) -> None:
    got = await data(
        api,
        """{ insiderSelling(limit: 50) { coins { coinId walletConcentration
        coverage { hedgePressure marketConfirmation sellSideFlow supplyContext } } } }""",
    )
    coins = got["insiderSelling"]["coins"]
    assert coins
    run = await api.services.leaderboard.current_run()
    for coin in coins:
        cov = coin["coverage"]
        assert cov["hedgePressure"] == 1.0
        assert all(0.0 <= v <= 1.0 for v in cov.values())
        doc = await api.services.runs.coin_score(run["run_id"], coin["coinId"])
        assert cov == {
            "hedgePressure": doc["coverage"]["hedge_pressure"],
            "marketConfirmation": doc["coverage"]["market_confirmation"],
            "sellSideFlow": doc["coverage"]["sell_side_flow"],
            "supplyContext": doc["coverage"]["supply_context"],
        }
        if cov["supplyContext"] == 0.0:  # no on-chain data: the supply sub-scores are 0
            assert coin["walletConcentration"] == 0.0
    # the demo has coins without a contract (no on-chain data) and coins with one
    assert {c["coverage"]["supplyContext"] == 0.0 for c in coins} == {True, False}
