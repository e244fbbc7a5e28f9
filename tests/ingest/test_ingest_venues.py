# ruff: noqa: E501  (tables of recorded values read better unwrapped)
"""Every venue's recorded responses, replayed through ccxt's ``fetch`` (or httpx), normalized."""

from __future__ import annotations

import copy

import pytest

from ingest.snapshot import VENUES, MarketSample
from ingest.testing import Recorded
from ingest.venues import CONNECTORS, CcxtVenue, HttpVenue
from tests.ingest.helpers import AT, RECORDINGS, MakeSource

# venue -> coin -> (rate per interval, interval h, OI USD, mark USD per coin)
EXPECTED: dict[str, dict[str, tuple[float, float, float, float | None]]] = {
    "binance": {"wif": (-0.0008, 4, 12e6 * 3.12, 3.12), "pepe": (-0.00042, 8, 5e9 * 0.02014, 2.014e-5)},
    "bybit": {"wif": (-0.0003, 2, 24_960_000, 3.12), "pepe": (-0.0002, 8, 60_390_000, 2.013e-5)},
    "okx": {"wif": (-0.00036, 4, 5e6 * 3.121, 3.121), "pepe": (-0.00028, 8, 80_520_000, 2.013e-5)},
    "gate": {"wif": (-0.0004, 4, 2e6 * 3.12, 3.12), "pepe": (-0.00024, 8, 150_000 * 1e7 * 2.012e-5, 2.012e-5)},
    "bitget": {"wif": (-0.00048, 4, 6e6 * 3.12, 3.12), "pepe": (-0.00016, 8, 2.5e9 * 0.02012, 2.012e-5)},
    "hyperliquid": {"wif": (-0.00009, 1, 4e6 * 3.1205, 3.1205), "pepe": (-0.00003, 1, 2e9 * 0.020125, 2.0125e-5)},
    "deribit": {"wif": (-0.0009, 8, 1.5e6 * 3.1201, 3.1201), "btc": (0.00008, 8, 850.25 * 95012.0, 95012.0)},
    "bitmex": {"wif": (-0.00044, 4, 3e8 / 100 * 3.1203, 3.1203), "btc": (0.0001, 8, 2.1e9 / 1e6 * 95013.1, 95013.1)},
    "htx": {"wif": (-0.0002, 4, 3_120_000, 3.1207), "pepe": (-0.00032, 8, 4_024_000, 2.013e-5)},
    "bingx": {"wif": (-0.0007, 4, 7_800_000.5, 3.1202), "pepe": (-0.00036, 8, 3_100_000, 2.0123e-5)},
    "coinex": {"wif": (-0.0005, 4, 900_000 * 3.1204, 3.1204), "btc": (0.0001, 8, 320.5 * 95012.8, 95012.8)},
    "kucoin": {"wif": (-0.00012, 1, 250_000 * 10 * 3.1206, 3.1206), "btc": (0.0001, 8, 8_450_271 * 0.001 * 95012.3, 95012.3)},
    "mexc": {"wif": (-0.00052, 4, 5e6 * 3.1201, 3.1201), "pepe": (-0.00044, 8, 4e8 * 1e4 * 2.012e-5, 2.012e-5)},
}  # fmt: skip


def test_every_venue_has_a_connector_and_expectations() -> None:
    assert list(CONNECTORS) == list(VENUES) == list(EXPECTED)
    assert {v for v, c in CONNECTORS.items() if issubclass(c, HttpVenue)} == {"bitmex", "coinex"}


def test_ccxt_declares_the_endpoints_the_connectors_call() -> None:
    """Implicit method names are read from the installed ccxt, so a ccxt upgrade that drops one
    fails here rather than in production."""
    import inspect

    for cls in CONNECTORS.values():
        if not issubclass(cls, CcxtVenue):
            continue
        venue = cls()
        source = inspect.getsource(inspect.getmodule(cls))  # type: ignore[arg-type]
        import re

        for name in set(re.findall(r'"((?:fapi|public|contract|futures|swapV2)[A-Za-z0-9]+)"', source)):
            assert hasattr(venue.exchange, name), f"{cls.id}: ccxt has no {name}"


@pytest.mark.parametrize("venue", list(VENUES))
async def test_venue_normalized(make_source: MakeSource, venue: str) -> None:
    source, _ = make_source()
    batch = await source.collect(AT)
    outcome = next(o for o in batch.outcomes if o.venue == venue)
    assert outcome.status == "ok", outcome.error
    assert outcome.rejected == 0
    samples: dict[str, MarketSample] = {s.coin_id: s for s in batch.market if s.venue == venue and s.at == AT}
    assert outcome.markets == len(samples)
    for coin, (rate, interval, oi_usd, mark) in EXPECTED[venue].items():
        s = samples[coin]
        assert s.funding_rate == pytest.approx(rate)
        assert s.funding_interval_hours == interval
        assert s.funding_rate_per_hour == pytest.approx(rate / interval)
        assert s.open_interest_usd == pytest.approx(oi_usd)
        if mark is None:
            assert s.mark_price is None
        else:
            assert s.mark_price == pytest.approx(mark)
    # dated futures, inverse contracts and delisted markets are not linear perpetuals
    assert set(samples) <= {"btc", "pepe", "wif"}


async def test_candidates_are_enriched(make_source: MakeSource) -> None:
    source, _ = make_source()
    batch = await source.collect(AT)
    by = {(s.venue, s.coin_id): s for s in batch.market if s.at == AT}
    wif = by[("binance", "wif")]
    assert wif.taker_buy_usd == pytest.approx(400_000 * 3.12)
    assert wif.taker_sell_usd == pytest.approx(500_000 * 3.12)
    assert wif.long_short_ratio == pytest.approx(1.25)
    assert by[("bybit", "wif")].long_short_ratio == pytest.approx(0.4 / 0.6)
    # BTC funds positively everywhere: it is not a candidate, nothing per-symbol is fetched
    assert by[("binance", "btc")].open_interest_usd is None
    assert by[("binance", "btc")].taker_buy_usd is None


async def test_funding_history_backfilled_once_then_incremental(make_source: MakeSource) -> None:
    source, _ = make_source()
    first = await source.collect(AT)
    history = sorted(
        (s.at.isoformat(), s.funding_rate)
        for s in first.history
        if s.venue == "binance" and s.coin_id == "wif" and s.funding_rate is not None
    )
    assert history == [
        ("2024-11-26T20:00:00+00:00", -0.0006),
        ("2024-11-27T00:00:00+00:00", -0.0007),
        ("2024-11-27T04:00:00+00:00", -0.00075),
    ]
    second = await source.collect(AT.replace(hour=6))
    again = [s for s in second.history if s.venue == "binance" and s.funding_rate is not None]
    assert again == []  # the same prints are not delivered twice


async def test_onchain_for_candidates_with_a_contract(make_source: MakeSource) -> None:
    source, _ = make_source()
    batch = await source.collect(AT)
    coins = {c.coin_id: c for c in batch.coins}
    assert coins["pepe"].name == "Pepe"  # the shared ticker settled by market cap and price
    assert coins["pepe"].contract == "0x6982508145454ce325ddbe47a25d4ec3d2311933"
    assert coins["btc"].contract is None
    onchain = {s.coin_id: s for s in batch.onchain}
    assert set(onchain) == {"pepe", "wif"}
    pepe = onchain["pepe"]
    assert pepe.liquidity_usd == pytest.approx(40_000_000.25)  # WETH-based pair excluded
    assert (pepe.buys_24h, pepe.sells_24h) == (2000, 2900)
    assert pepe.holders == 459_210
    assert pepe.top10_holders_pct == pytest.approx(40.3733)
    assert pepe.flags == ("is_blacklisted",)
    assert pepe.insider_pct is None and pepe.buy_volume_24h_usd is None
    wif = onchain["wif"]  # Solana: DexScreener only, GoPlus' EVM endpoint does not apply
    assert wif.liquidity_usd == 9_000_000 and wif.holders is None


async def test_coinex_open_interest_from_the_market_list_only_when_tickers_lack_it(
    make_source: MakeSource, recordings: dict[str, list[Recorded]]
) -> None:
    source, replay = make_source(venues=["coinex"], onchain=False, min_negative_venues=1)
    await source.collect(AT)
    assert replay.requests["api.coinex.com"] >= 3  # ticker, funding-rate, market
    ticker = next(r for r in recordings["coinex"] if r.url == "/v2/futures/ticker")
    with_oi = copy.deepcopy(ticker.body)
    for row in with_oi["data"]:
        row["open_interest_volume"] = {"BTCUSDT": "1", "WIFUSDT": "2"}[row["market"]]
    source, replay = make_source(
        [
            Recorded("/v2/futures/ticker", host="api.coinex.com", body=with_oi),
            Recorded("/v2/futures/market", host="api.coinex.com", status=500, body="must not be asked"),
        ],
        venues=["coinex"],
        onchain=False,
        min_negative_venues=1,
    )
    batch = await source.collect(AT)
    oi = {s.coin_id: s.open_interest_usd for s in batch.market if s.at == AT}
    assert oi["wif"] == pytest.approx(2 * 3.1204) and oi["btc"] == pytest.approx(95012.8)
    assert next(o for o in batch.outcomes if o.venue == "coinex").status == "ok"


def test_bitmex_open_interest_agrees_with_the_venues_own_open_value(
    recordings: dict[str, list[Recorded]],
) -> None:
    """BitMEX states each position's value (``openValue``, in USDt = 1e-6 USDT); the connector's
    contracts / underlyingToPositionMultiplier x mark must reproduce it (ccxt's contractSize)."""
    rows = next(r for r in recordings["bitmex"] if r.url == "/api/v1/instrument/active").body
    linear = [r for r in rows if r.get("quoteCurrency") == "USDT"]
    assert linear
    for r in linear:
        coins = r["openInterest"] / r["underlyingToPositionMultiplier"]
        assert coins * r["markPrice"] == pytest.approx(r["openValue"] / r["quoteToSettleMultiplier"])


async def test_kucoin_reads_either_granularity_field(
    make_source: MakeSource, recordings: dict[str, list[Recorded]]
) -> None:
    """ccxt's contracts/active example names the interval ``fundingRateGranularity``; later KuCoin
    docs say ``currentFundingRateGranularity``. Either one sets the interval."""
    active = next(r for r in recordings["kucoin"] if r.url == "api/v1/contracts/active")
    renamed = copy.deepcopy(active.body)
    for row in renamed["data"]:
        if row["symbol"] == "WIFUSDTM":
            row["currentFundingRateGranularity"] = 14_400_000
            del row["fundingRateGranularity"]
    source, _ = make_source(
        [Recorded("api/v1/contracts/active", host="api-futures.kucoin.com", body=renamed)],
        venues=["kucoin"],
        onchain=False,
        min_negative_venues=1,
    )
    batch = await source.collect(AT)
    wif = next(s for s in batch.market if s.coin_id == "wif" and s.at == AT)
    assert wif.funding_interval_hours == 4
    assert wif.funding_rate_per_hour == pytest.approx(-0.00012 / 4)


def test_every_recorded_response_names_its_source(recordings: dict[str, list[Recorded]]) -> None:
    """The issue asks for the origin of every recording; recordings/README.md lists them."""
    readme = (RECORDINGS / "README.md").read_text()
    for name, responses in recordings.items():
        assert f"`{name}.json`" in readme
        for r in responses:
            assert r.source and len(r.source) > 20, f"{name}: {r.url} has no source"
