"""History: Coin.history and the scoreHistory connection over several runs."""

from __future__ import annotations

from datetime import timedelta

from tests.gql.helpers import data, gql
from tests.helpers import ApiClient

PAGE = """query($id: ID!, $first: Int!, $after: String, $from: DateTime, $to: DateTime) {
  scoreHistory(coinId: $id, first: $first, after: $after, from: $from, to: $to) {
    edges { cursor node { at runId score manipulationPhase subScores { fundingMagnitude } } }
    pageInfo { hasNextPage endCursor } } }"""


async def more_runs(api: ApiClient, n: int) -> None:
    run = await api.services.leaderboard.current_run()
    for i in range(1, n + 1):
        result = await api.services.cycle.run_once(run["at"] + timedelta(minutes=30 * i))
        assert result.status == "succeeded"


async def test_pagination_runs_to_the_end_without_duplicates_or_gaps(api: ApiClient) -> None:
    await more_runs(api, 6)
    board = await data(api, "{ insiderSelling(limit: 1) { coins { coinId } } }")
    coin_id = board["insiderSelling"]["coins"][0]["coinId"]
    stored = (await api.services.runs.history([coin_id]))[coin_id]
    assert len(stored) == 7
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = (await data(api, PAGE, {"id": coin_id, "first": 2, "after": after}))["scoreHistory"]
        seen += [e["node"]["runId"] for e in page["edges"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        after = page["pageInfo"]["endCursor"]
    assert pages == 4
    assert seen == [d["run_id"] for d in stored]  # newest first, each run once, none missing
    assert len(set(seen)) == len(seen)


async def test_window_and_coin_history(api: ApiClient) -> None:
    await more_runs(api, 3)
    board = (
        await data(
            api,
            """{ insiderSelling(limit: 2) { coins { coinId
        history(first: 10) { at runId score subScores { marketConfirmation } } } } }""",
        )
    )["insiderSelling"]["coins"]
    for coin in board:
        stored = (await api.services.runs.history([coin["coinId"]]))[coin["coinId"]]
        assert [h["runId"] for h in coin["history"]] == [d["run_id"] for d in stored]
        assert [h["subScores"]["marketConfirmation"] for h in coin["history"]] == [
            d["market_confirmation"] for d in stored
        ]
    coin = board[0]
    newest, older = coin["history"][0]["at"], coin["history"][1]["at"]
    query = f'{{ coin(coinId: "{coin["coinId"]}") {{ history(first: 1, before: "{newest}") {{ at }} }} }}'
    before = (await data(api, query))["coin"]["history"]
    assert before == [{"at": older}]
    window = await data(api, PAGE, {"id": coin["coinId"], "first": 50, "from": older, "to": older})
    assert [e["node"]["at"] for e in window["scoreHistory"]["edges"]] == [older]


async def test_first_is_capped_and_cursors_are_checked(api: ApiClient) -> None:
    for first in (0, 501):
        r = await gql(api, PAGE, {"id": "x", "first": first})
        assert r.status_code == 400
        assert r.json()["errors"][0]["extensions"] == {"code": "parameter_invalid", "param": "first"}
    r = await gql(api, PAGE, {"id": "x", "first": 5, "after": "not-a-cursor"})
    assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "cursor_invalid"
    r = await gql(api, PAGE, {"id": "x", "first": 5, "from": "2026-01-01T00:00:00"})
    assert r.status_code == 400 and "timezone" in r.json()["errors"][0]["message"]
