"""The documented REST contract: every field and type of the seed's response, and the envelope."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from scoring.contract import COIN_FIELDS
from tests.helpers import ApiClient

IN_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")  # the loop read_only_api runs in


@pytest.fixture
def api(read_only_api: ApiClient) -> ApiClient:
    """The module's tests only read: one primed app for all of them (``read_only_api``)."""
    return read_only_api


ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
SEED_EXCHANGES = [
    "Binance",
    "Bybit",
    "OKX",
    "Gate.io",
    "Bitget",
    "Hyperliquid",
    "Deribit",
    "BitMEX",
    "HTX",
    "BingX",
    "CoinEx",
    "KuCoin",
    "MEXC",
]
# The seed's example coin, field by field (order and names are the contract).
SEED_COIN_KEYS = [
    "coin_id",
    "symbol",
    "name",
    "score",
    "avg_funding_72h",
    "funding_magnitude",
    "funding_persistence",
    "wallet_concentration",
    "holder_quality_deterioration",
    "distribution_pressure",
    "market_confirmation",
    "manipulation_phase",
    "consecutive_negative_days",
    "price_change_24h",
    "price_change_7d",
    "signal_start_date",
    "updated_at",
]
SEED_DOCUMENTED_EXTRA = [
    "coordination_risk",
    "top10_holders_pct",
    "volume_to_liquidity_24h",
    "old_wallet_swap_pct_1d",
    "holders_change_pct",
    "top10_holders_pct_change",
]


def check_type(value: object, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "number":
        return number
    return value is None or number


def test_contract_lists_every_seed_field() -> None:
    assert set(SEED_COIN_KEYS + SEED_DOCUMENTED_EXTRA) == set(COIN_FIELDS)


@IN_MODULE_LOOP
async def test_seed_curl_returns_the_envelope(api: ApiClient) -> None:
    response = await api.http.get(
        "/v1/insider-selling/data",
        params={"limit": 20, "min_score": 4},
        headers={"Authorization": f"Bearer {api.read_key}"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"data", "meta"}
    data, meta = body["data"], body["meta"]
    assert set(data) == {"coins", "count", "description", "signal"}
    assert data["count"] == len(data["coins"]) > 0
    assert len(data["coins"]) <= 20
    assert isinstance(data["description"], str) and data["description"]
    assert data["signal"]["exchanges"] == SEED_EXCHANGES
    assert data["signal"]["update_frequency"] == "every 30 minutes"
    assert isinstance(data["signal"]["methodology"], str)
    scores = [c["score"] for c in data["coins"]]
    assert scores == sorted(scores, reverse=True)
    for coin in data["coins"]:
        assert list(coin) == list(COIN_FIELDS)
        for name, kind in COIN_FIELDS.items():
            assert check_type(coin[name], kind), (name, coin[name])
        assert 4 <= coin["score"] <= 10
        for sub in (
            "funding_magnitude",
            "funding_persistence",
            "wallet_concentration",
            "holder_quality_deterioration",
            "coordination_risk",
            "distribution_pressure",
            "market_confirmation",
        ):
            assert 0 <= coin[sub] <= 1
        assert coin["funding_magnitude"] > 0  # the gate: negative cross-venue funding now
        assert ISO.match(coin["signal_start_date"]) and ISO.match(coin["updated_at"])
        assert coin["signal_start_date"] <= coin["updated_at"]
    assert meta["request_id"].startswith("req_")
    assert response.headers["x-request-id"] == meta["request_id"]
    assert ISO.match(meta["timestamp"])
    datetime.fromisoformat(meta["timestamp"].replace("Z", "+00:00"))
    assert isinstance(meta["elapsed_ms"], int | float) and meta["elapsed_ms"] >= 0


@IN_MODULE_LOOP
async def test_defaults_list_only_positive_scores(api: ApiClient) -> None:
    response = await api.http.get("/v1/insider-selling/data", headers={"Authorization": f"Bearer {api.read_key}"})
    coins = response.json()["data"]["coins"]
    assert 0 < len(coins) <= 100
    assert all(0 < c["score"] <= 10 for c in coins)
    run = await api.services.leaderboard.current_run()
    stored = await api.services.runs.run_scores(run["run_id"], {"coin_id": 1, "score": 1})
    assert {c["coin_id"] for c in coins} == {d["coin_id"] for d in stored if d["score"] > 0}
