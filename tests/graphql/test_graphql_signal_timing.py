"""Signal.lastRunAt / nextRunAt and Coin.coverage tell the truth (issue 10 §1-2): after failed runs
and restarts, and through the per-run response cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from gql.resolvers import next_run_at
from ingest.demo import DemoConfig, DemoSource
from ingest.storage import SnapshotStore
from insider_selling.cycle import Cycle
from scoring.config import load_model_config
from scoring.pipeline import ScoringPipeline
from store import open_store
from tests.conftest import ApiClient
from tests.graphql.conftest import data

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def test_next_run_is_never_in_the_past_without_a_scheduler() -> None:
    """A worker in another process: after runs failed for a while, the next planned run is the
    next slot after now, not the slot after the last succeeded run (which has passed)."""
    services = SimpleNamespace(scheduler=None, settings=SimpleNamespace(score_interval_seconds=1800))
    run = {"at": T0}
    assert next_run_at(services, run, now=T0 + timedelta(minutes=10)) == T0 + timedelta(minutes=30)
    later = T0 + timedelta(hours=2, minutes=5)  # four slots failed since
    assert next_run_at(services, run, now=later) == T0 + timedelta(hours=2, minutes=30)
    assert next_run_at(services, run, now=T0 + timedelta(minutes=30)) == T0 + timedelta(hours=1)


class _Planned:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def next_run_at(self) -> datetime:
        return self.at


async def test_next_run_at_is_not_frozen_by_the_response_cache(api: ApiClient) -> None:
    """The response cache is per scoring run; a failed run keeps the run but moves the plan on."""
    query = "{ signal { lastRunAt nextRunAt } }"
    services = api.services
    saved = services.scheduler
    try:
        first = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=30)
        services.scheduler = _Planned(first)
        a = (await data(api, query))["signal"]
        services.scheduler = _Planned(first + timedelta(minutes=30))  # that run failed
        b = (await data(api, query))["signal"]
    finally:
        services.scheduler = saved
    assert a["lastRunAt"] == b["lastRunAt"]
    assert a["nextRunAt"] == first.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert b["nextRunAt"] == (first + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_a_restart_scores_at_its_own_time_and_is_not_hidden() -> None:
    """A run stored before a restart at 09:30; the restart primes at 09:40: the new run is the
    latest, and its rows say 09:40 (old code scored at the backfill's hour, 09:00, behind 09:30)."""
    handle = await open_store(None, "restart")
    db: Any = handle.db
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
    await handle.aclose()


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
