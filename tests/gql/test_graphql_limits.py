"""Abusive documents are refused with a GraphQL error, never a 5xx; cost is reported and charged."""

from __future__ import annotations

import pytest

from gql.cost import MAX_COST
from gql.graphql_app import MAX_BODY
from gql.schema import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from tests.gql.helpers import data, gql, issue_key
from tests.helpers import ApiClient

IN_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")  # the loop read_only_api runs in


@pytest.fixture
def api(read_only_api: ApiClient) -> ApiClient:
    """The module's tests only read: one primed app for all of them (``read_only_api``)."""
    return read_only_api


def _assert_refused(response, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert body["errors"] and body.get("data") is None
    if code is not None:
        assert body["errors"][0]["extensions"]["code"] == code, body
    return body


@IN_MODULE_LOOP
async def test_thousands_of_aliases(api: ApiClient) -> None:
    query = "{ " + " ".join(f"a{i}: signal {{ modelVersion }}" for i in range(3000)) + " }"
    _assert_refused(await gql(api, query))  # too many tokens before the alias rule even runs
    few_tokens = "{ " + " ".join(f"a{i}: __typename" for i in range(MAX_ALIASES + 5)) + " }"
    body = _assert_refused(await gql(api, few_tokens), "graphql_validation_failed")
    assert "aliases" in body["errors"][0]["message"]


@IN_MODULE_LOOP
async def test_fragment_cycle(api: ApiClient) -> None:
    query = """query { insiderSelling { coins { ...A } } }
      fragment A on Coin { coinId ...B }
      fragment B on Coin { score ...A }"""
    body = _assert_refused(await gql(api, query), "graphql_validation_failed")
    assert any("fragment" in e["message"].lower() for e in body["errors"])


@IN_MODULE_LOOP
async def test_huge_document(api: ApiClient) -> None:
    tokens = "{ " + "signal { modelVersion } " * (MAX_TOKENS // 3) + "}"
    body = _assert_refused(await gql(api, tokens), "graphql_parse_failed")
    assert "tokens" in body["errors"][0]["message"]
    huge = "{ signal { modelVersion } }" + " " * (MAX_BODY + 10)
    _assert_refused(await gql(api, huge), "request_too_large")


@IN_MODULE_LOOP
async def test_depth_limit(api: ApiClient) -> None:
    await data(api, "{ insiderSelling { coins { history { subScores { fundingMagnitude } } } } }")
    deep = "{ insiderSelling { coins { " + "history { " * (MAX_DEPTH + 2) + "runId" + " }" * (MAX_DEPTH + 4) + " }"
    body = _assert_refused(await gql(api, deep), "graphql_validation_failed")
    assert any("depth" in e["message"] for e in body["errors"]), body


@pytest.mark.parametrize("limit", [0, 501, 100000])
@IN_MODULE_LOOP
async def test_limit_outside_range(api: ApiClient, limit: int) -> None:
    _assert_refused(
        await gql(api, "query($l: Int!) { insiderSelling(limit: $l) { count } }", {"l": limit}), "parameter_invalid"
    )


@IN_MODULE_LOOP
async def test_garbage_requests_are_4xx(api: ApiClient) -> None:
    headers = {"Authorization": f"Bearer {api.read_key}"}
    for body, ctype in [
        (b"{not json", "application/json"),
        (b"[]", "application/json"),
        (b'{"query": 5}', "application/json"),
        (b"query", "text/plain"),
        (b'{"query": "{ signal { nope } }"}', "application/json"),
        (b'{"query": "{ signal { modelVersion } }", "variables": [1]}', "application/json"),
        (b'{"query": "query a { signal { modelVersion } } query b { __typename }"}', "application/json"),
    ]:
        r = await api.http.post("/graphql", content=body, headers={**headers, "content-type": ctype})
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
        assert r.json()["errors"][0]["extensions"]["code"]


@IN_MODULE_LOOP
async def test_cost_is_reported_and_too_expensive_is_refused(api: ApiClient) -> None:
    r = await gql(api, "{ insiderSelling(limit: 100) { coins { coinId history(first: 100) { runId } } } }")
    cost = r.json()["extensions"]["cost"]
    # a store query (100) + the root + 100 coins with coinId + 100 x 100 history rows with runId
    assert cost["requested"] == 21  # 20 401 fields
    assert 1 <= cost["actual"] <= cost["requested"]
    assert cost["limit"] > 0 and 0 <= cost["remaining"] < cost["limit"]
    assert r.headers["RateLimit-Remaining"] == str(cost["remaining"])
    big = "{ insiderSelling(limit: 500) { coins { history(first: 500) { subScores { fundingMagnitude } } } } }"
    body = _assert_refused(await gql(api, big), "query_too_expensive")
    assert body["errors"][0]["extensions"]["cost"]["requested"] > MAX_COST
    assert "maximum" in body["errors"][0]["message"]


@IN_MODULE_LOOP
async def test_over_budget_is_refused_with_a_clear_error(api: ApiClient) -> None:
    key = await issue_key(api, ["signals:read"], rate_limit=20)
    query = "{ insiderSelling(limit: 10) { coins { coinId history(first: 100) { runId } } } }"
    charged = 0
    for _ in range(15):
        r = await gql(api, query, key=key)
        if r.status_code != 200:
            break
        cost = r.json()["extensions"]["cost"]
        assert cost["requested"] == 3  # 100 + 1 + 10 coins with coinId + 1 000 history rows with runId
        charged += cost["requested"]
    assert r.status_code == 429, r.text
    assert 0 < charged <= 20
    error = r.json()["errors"][0]
    assert error["extensions"]["code"] == "budget_exceeded"
    assert error["extensions"]["cost"] == {"requested": 3}
    assert "this query costs 3" in error["message"]
    assert int(r.headers["Retry-After"]) >= 1


@IN_MODULE_LOOP
async def test_introspection_and_graphiql_follow_settings(api: ApiClient) -> None:
    from tests.helpers import make_settings, start_app

    assert (await data(api, "{ __schema { queryType { name } } }"))["__schema"]["queryType"]["name"] == "Query"
    page = await api.http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    async for locked in start_app(make_settings(graphql_introspection=False, graphiql=False)):
        _assert_refused(await gql(locked, '{ __type(name: "Coin") { name } }'), "introspection_disabled")
        assert (await locked.http.get("/graphql", headers={"accept": "text/html"})).status_code == 404
        assert (await data(locked, "{ __typename }")) == {"__typename": "Query"}
