"""GraphQL carries the REST contract: same coins, same fields, same validation."""

from __future__ import annotations

import pytest

from gql.selection import COIN_GRAPHQL_FIELDS
from gql.types import SUB_SCORES
from scoring.contract import COIN_FIELDS
from tests.gql.helpers import data, gql
from tests.helpers import ApiClient

CAMEL = {snake: camel for camel, snake in COIN_GRAPHQL_FIELDS.items()}
SUB = " ".join(CAMEL[s] for s in SUB_SCORES)
ALL_COIN_FIELDS = " ".join(CAMEL[f] for f in COIN_FIELDS)


IN_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")  # the loop read_only_api runs in


@pytest.fixture
def api(read_only_api: ApiClient) -> ApiClient:
    """The module's tests only read: one primed app for all of them (``read_only_api``)."""
    return read_only_api


async def rest(api: ApiClient, **params: object) -> dict:
    r = await api.http.get(
        "/v1/insider-selling/data", params=params, headers={"Authorization": f"Bearer {api.read_key}"}
    )
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_every_seed_field_is_in_the_schema() -> None:
    assert set(COIN_GRAPHQL_FIELDS.values()) == set(COIN_FIELDS)
    assert CAMEL["avg_funding_72h"] == "avgFunding72h"
    assert CAMEL["top10_holders_pct_change"] == "top10HoldersPctChange"


@IN_MODULE_LOOP
async def test_every_coin_field_equals_rest(api: ApiClient) -> None:
    expected = await rest(api, limit=500)
    got = (
        await data(
            api,
            f"""{{ insiderSelling(limit: 500) {{ count description
        signal {{ methodology updateFrequency exchanges }}
        coins {{ {ALL_COIN_FIELDS} subScores {{ {SUB} }} }} }} }}""",
        )
    )["insiderSelling"]
    assert expected["count"] > 5
    assert got["count"] == expected["count"] == len(got["coins"])
    assert got["description"] == expected["description"]
    assert got["signal"] == {
        "methodology": expected["signal"]["methodology"],
        "updateFrequency": expected["signal"]["update_frequency"],
        "exchanges": expected["signal"]["exchanges"],
    }
    for mine, theirs in zip(got["coins"], expected["coins"], strict=True):
        for field in COIN_FIELDS:
            assert mine[CAMEL[field]] == theirs[field], (theirs["coin_id"], field)
        assert mine["subScores"] == {CAMEL[s]: theirs[s] for s in SUB_SCORES}
    # and one coin at a time, through coin(coinId)
    first = expected["coins"][0]
    one = (await data(api, f'{{ coin(coinId: "{first["coin_id"]}") {{ {ALL_COIN_FIELDS} }} }}'))["coin"]
    assert one == {CAMEL[f]: first[f] for f in COIN_FIELDS}


@IN_MODULE_LOOP
async def test_limit_and_min_score_filter_like_rest(api: ApiClient) -> None:
    expected = await rest(api, limit=3, min_score=2.5)
    got = await data(api, "{ insiderSelling(limit: 3, minScore: 2.5) { count coins { coinId score } } }")
    assert [c["coinId"] for c in got["insiderSelling"]["coins"]] == [c["coin_id"] for c in expected["coins"]]
    assert all(c["score"] >= 2.5 for c in got["insiderSelling"]["coins"])


@pytest.mark.parametrize(
    ("args", "param", "message"),
    [
        ("limit: 0", "limit", "limit must be an integer from 1 to 500"),
        ("limit: 501", "limit", "limit must be an integer from 1 to 500"),
        ("limit: -3", "limit", "limit must be an integer from 1 to 500"),
        ("minScore: -0.5", "minScore", "min_score must be a number from 0 to 10"),
        ("minScore: 10.01", "minScore", "min_score must be a number from 0 to 10"),
    ],
)
@IN_MODULE_LOOP
async def test_validation_is_the_rest_validation(api: ApiClient, args: str, param: str, message: str) -> None:
    r = await gql(api, f"{{ insiderSelling({args}) {{ count }} }}")
    assert r.status_code == 400
    error = r.json()["errors"][0]
    assert error["message"] == message
    assert error["extensions"] == {"code": "parameter_invalid", "param": param}
    rest_name = {"limit": "limit", "minScore": "min_score"}[param]
    value = args.split(": ")[1]
    rest_error = await api.http.get(
        "/v1/insider-selling/data", params={rest_name: value}, headers={"Authorization": f"Bearer {api.read_key}"}
    )
    assert rest_error.status_code == 400 and rest_error.json()["error"]["message"] == message


@IN_MODULE_LOOP
async def test_signal_timing_and_venues(api: ApiClient) -> None:
    got = await data(
        api,
        """{ signal { modelVersion lastRunAt nextRunAt description }
        insiderSelling(limit: 1) { coins { coinId venues { venue exchange at fundingRate fundingIntervalHours
        fundingRatePerHour openInterestUsd basis } } } }""",
    )
    run = await api.services.leaderboard.current_run()
    assert got["signal"]["modelVersion"] == run["model_version"]
    assert got["signal"]["lastRunAt"] == run["at"].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert got["signal"]["nextRunAt"] > got["signal"]["lastRunAt"]
    coin = got["insiderSelling"]["coins"][0]
    doc = await api.services.runs.coin_score(run["run_id"], coin["coinId"])
    assert len(coin["venues"]) == len(doc["venues"]) > 0
    for venue, stored in zip(coin["venues"], doc["venues"], strict=True):
        assert venue["venue"] == stored["venue"]
        assert venue["fundingRatePerHour"] == stored["funding_rate_per_hour"]
        assert venue["fundingIntervalHours"] == stored["funding_interval_hours"]


@IN_MODULE_LOOP
async def test_unknown_coin_is_null(api: ApiClient) -> None:
    assert (await data(api, '{ coin(coinId: "no-such-coin") { coinId } }'))["coin"] is None
