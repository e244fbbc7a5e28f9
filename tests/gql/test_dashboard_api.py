"""The fields the dashboard's charts and search read: searchCoins (any coin of the last run, listed
or not), ScoreHistory.venues and avgFunding72h, and the demo's backdated history at start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.snapshot import VENUES
from tests.gql.helpers import data, gql
from tests.helpers import ApiClient

SEARCH = """query($text: String!, $first: Int!) {
  searchCoins(text: $text, first: $first) {
    coinId symbol name score venues { venue fundingRatePerHour openInterestUsd markPrice } } }"""


async def test_search_finds_an_unlisted_coin_with_its_venues(api: ApiClient) -> None:
    found = (await data(api, SEARCH, {"text": "btc", "first": 5}))["searchCoins"]
    assert found[0]["coinId"] == "bitcoin" and found[0]["symbol"] == "BTC"  # the exact symbol first
    btc = found[0]
    board = await data(api, "{ insiderSelling(limit: 500) { coins { coinId } } }")
    assert "bitcoin" not in {c["coinId"] for c in board["insiderSelling"]["coins"]}  # not listed ...
    assert btc["score"] == 0 and len(btc["venues"]) >= 5  # ... yet its funding and OI are there
    assert all(v["openInterestUsd"] > 0 and v["markPrice"] > 0 for v in btc["venues"])
    by_name = (await data(api, SEARCH, {"text": "Bitcoin", "first": 1}))["searchCoins"]
    assert [c["coinId"] for c in by_name] == ["bitcoin"]
    assert (await data(api, SEARCH, {"text": "no such coin", "first": 5}))["searchCoins"] == []


async def test_search_arguments_are_bounded(api: ApiClient) -> None:
    for variables, param in (
        ({"text": "", "first": 5}, "text"),
        ({"text": "x" * 41, "first": 5}, "text"),
        ({"text": "b", "first": 0}, "first"),
        ({"text": "b", "first": 21}, "first"),
    ):
        body = (await gql(api, SEARCH, variables)).json()
        assert body["errors"][0]["extensions"]["param"] == param, (variables, body)


async def test_history_carries_each_runs_venues(api: ApiClient) -> None:
    run = await api.services.leaderboard.current_run()
    assert (await api.services.cycle.run_once(run["at"] + timedelta(minutes=30))).status == "succeeded"
    query = """query($id: ID!) { scoreHistory(coinId: $id, first: 5) {
      edges { node { at score avgFunding72h
        venues { venue fundingRatePerHour openInterestUsd basis markPrice } } } } }"""
    listed = (await data(api, "{ insiderSelling(limit: 1) { coins { coinId } } }"))["insiderSelling"]["coins"][0]
    for coin_id in (listed["coinId"], "bitcoin"):
        nodes = [e["node"] for e in (await data(api, query, {"id": coin_id}))["scoreHistory"]["edges"]]
        assert len(nodes) == 2 and all(isinstance(n["avgFunding72h"], float) for n in nodes)
        assert nodes[0]["venues"] and {v["venue"] for v in nodes[0]["venues"]} <= set(VENUES)
        assert all(v["markPrice"] > 0 for v in nodes[0]["venues"])
        if coin_id == "bitcoin":  # unlisted: only the latest run keeps its venues (storage)
            assert nodes[1]["score"] == 0 and nodes[1]["venues"] == []
        elif nodes[1]["score"] > 0:
            assert nodes[1]["venues"]


async def test_the_demo_scores_its_backfilled_hours_oldest_first(api: ApiClient) -> None:
    run = await api.services.leaderboard.current_run()
    now = run["at"] if run["at"].tzinfo else run["at"].replace(tzinfo=UTC)
    scored = await api.services.cycle.score_history(now, 3)
    assert scored == 3
    assert await api.services.cycle.score_history(now, 3) == 0  # already stored: skipped
    current = await api.services.leaderboard.current_run()
    assert current["run_id"] == run["run_id"]  # the backdated runs never displace the latest
    edges = (await data(api, '{ scoreHistory(coinId: "bitcoin", first: 10) { edges { node { at } } } }'))[
        "scoreHistory"
    ]["edges"]
    times = [datetime.fromisoformat(e["node"]["at"].replace("Z", "+00:00")) for e in edges]
    assert len(times) == 4 and times == sorted(times, reverse=True)
    assert times[1] - times[2] == timedelta(hours=1) == times[2] - times[3]
    # history scored after the present was served announces nothing to webhooks (late, out of order)
    backdated = await api.services.store.db["runs"].find({"at": {"$lt": now}, "status": "succeeded"}).to_list()
    assert len(backdated) == 3 and all(r["outbox_pending"] is False and r["changes"] == [] for r in backdated)
