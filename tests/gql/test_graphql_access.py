"""Authentication like REST, scopes in the schema, and a constant number of store queries."""

from __future__ import annotations

from tests.gql.helpers import data, gql, issue_key
from tests.helpers import ApiClient

BOARD = """{ insiderSelling(limit: %d) { count coins { coinId score subScores { fundingMagnitude }
    venues { venue fundingRatePerHour } history(first: 5) { runId score subScores { coordinationRisk } } } } }"""


async def test_unauthenticated_is_refused_like_rest(api: ApiClient) -> None:
    for headers in ({}, {"Authorization": "Bearer sk_live_nope"}, {"Authorization": "Basic abc"}):
        rest = await api.http.get("/v1/insider-selling/data", headers=headers)
        mine = await api.http.post("/graphql", json={"query": "{ signal { modelVersion } }"}, headers=headers)
        assert mine.status_code == rest.status_code == 401
        assert mine.json()["error"] == rest.json()["error"]
        assert mine.headers["WWW-Authenticate"] == rest.headers["WWW-Authenticate"]


async def test_scopes_are_enforced(api: ApiClient) -> None:
    manage_only = await issue_key(api, ["keys:manage"])
    r = await gql(api, "{ insiderSelling { count } }", key=manage_only)
    body = r.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "insufficient_scope"
    assert body["errors"][0]["path"] == ["insiderSelling"]
    # the same key may still ask who it is; a read key may not list tenants
    assert (await data(api, "{ viewer { tenant { name } } }", key=manage_only))["viewer"]["tenant"]["name"] == "t"
    r = await gql(api, "{ tenants { id } }")
    assert r.json()["errors"][0]["extensions"]["code"] in {"insufficient_scope", "permission_denied"}


async def test_cached_response_is_not_served_without_the_scope(api: ApiClient) -> None:
    query = "{ insiderSelling(limit: 2) { coins { coinId } } }"
    first = await data(api, query)
    assert await data(api, query) == first  # a cache hit
    manage_only = await issue_key(api, ["keys:manage"])
    r = await gql(api, query, key=manage_only)
    assert r.json()["data"] is None and r.json()["errors"][0]["extensions"]["code"] == "insufficient_scope"


async def test_viewer_is_never_shared_between_tenants(api: ApiClient) -> None:
    other = await issue_key(api, ["signals:read"])
    query = "{ viewer { tenant { id } } signal { modelVersion } }"
    mine = await data(api, query)
    theirs = await data(api, query, key=other)
    assert mine["viewer"]["tenant"]["id"] != theirs["viewer"]["tenant"]["id"]


async def test_store_queries_are_constant_and_narrow(api: ApiClient) -> None:
    from datetime import timedelta

    run = await api.services.leaderboard.current_run()
    for i in (1, 2):
        await api.services.cycle.run_once(run["at"] + timedelta(minutes=30 * i))
    await data(api, "{ signal { modelVersion } }")  # the current run is known
    ops = api.services.store.client.ops
    counts = []
    for limit in (2, 500):
        before = ops.copy()
        got = await data(api, BOARD % limit)
        coins = got["insiderSelling"]["coins"]
        assert all(len(c["history"]) == 3 and c["venues"] for c in coins)
        counts.append({k: v - before.get(k, 0) for k, v in ops.items() if v != before.get(k, 0)})
    assert len(coins) > 10
    # one query for the ranking, one for the history's runs, one for every coin's history:
    # whatever the number of coins (and however long the history)
    expected = {"scores": 2, "scores.find": 2, "runs": 1, "runs.find": 1}
    assert counts[0] == counts[1] == expected, counts

    calls = []
    original = api.services.runs.leaderboard

    async def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs["projection"])
        return await original(*args, **kwargs)

    api.services.runs.leaderboard = spy
    await data(api, "{ insiderSelling(limit: 7) { coins { coinId avgFunding72h } } }")
    assert set(calls[0]) == {"coin_id", "score", "avg_funding_72h"}  # no venues, no sub-scores
