"""``runs``: the latest scoring runs (any status) with each venue's outcome, for the run-status view."""

from __future__ import annotations

from datetime import timedelta

from tests.gql.helpers import data, gql
from tests.helpers import ApiClient

RUNS = """query($first: Int!) { runs(first: $first) { runId status at startedAt finishedAt modelVersion
  coins listed error venues { venue exchange status latencyMs markets requests rejected error } } }"""


async def test_runs_newest_first_with_each_venues_outcome(api: ApiClient) -> None:
    first = await api.services.leaderboard.current_run()
    later = await api.services.cycle.run_once(first["at"] + timedelta(minutes=30))
    assert later.status == "succeeded"
    stored = await api.services.runs.recent_runs(5)
    runs = (await data(api, RUNS, {"first": 5}))["runs"]
    assert [r["runId"] for r in runs] == [r["run_id"] for r in stored] == [later.run_id, first["run_id"]]
    newest = runs[0]
    assert newest["status"] == "SUCCEEDED" and newest["error"] is None
    assert newest["coins"] == later.coins and newest["listed"] == later.listed
    assert newest["modelVersion"] == stored[0]["model_version"]
    outcomes = {o.venue: o for o in later.outcomes}
    assert len(newest["venues"]) == len(outcomes) > 0
    for venue in newest["venues"]:
        outcome = outcomes[venue["venue"]]
        assert venue["status"] == outcome.status and venue["markets"] == outcome.markets
        assert venue["exchange"]  # display name, e.g. Binance
    limited = (await data(api, RUNS, {"first": 1}))["runs"]
    assert [r["runId"] for r in limited] == [later.run_id]


async def test_a_failed_run_shows_its_status_and_error(api: ApiClient) -> None:
    run = await api.services.leaderboard.current_run()
    await api.services.runs.start("run_failed_test", run["at"] + timedelta(minutes=30), "v", "demo")
    await api.services.runs.fail("run_failed_test", "NoData: nothing", {"venues": []})
    newest = (await data(api, RUNS, {"first": 1}))["runs"][0]
    assert newest["runId"] == "run_failed_test"
    assert newest["status"] == "FAILED" and newest["error"] == "NoData: nothing" and newest["venues"] == []


async def test_runs_needs_signals_read_and_bounds_first(api: ApiClient) -> None:
    response = await gql(api, RUNS, {"first": 0})
    assert response.json()["errors"][0]["extensions"]["code"] == "parameter_invalid"
    response = await gql(api, RUNS, {"first": 1}, key=None)
    assert response.status_code == 401
