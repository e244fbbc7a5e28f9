"""Enrichment beyond the scan: funding history on every venue that has it, the hourly price path
and OI history, taker flow and long/short ratios, HTX mark/index, Bybit's instrument pages, and
the store's gap-only writing of past hours. Values are the recordings' (see recordings/README)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.snapshot import MarketSample
from ingest.source import SnapshotBatch
from ingest.storage import SnapshotStore
from ingest.testing import Recorded
from ingest.venues.base import taker_flow
from store import StoreHandle
from tests.ingest.helpers import AT, MakeSource


def hour(h: int, day: int = 27) -> datetime:
    return datetime(2024, 11, day, h, tzinfo=UTC)


def history(batch: SnapshotBatch, venue: str, coin: str) -> dict[datetime, MarketSample]:
    return {s.at: s for s in batch.history if s.venue == venue and s.coin_id == coin}


# venue -> coin -> [(settlement hour, rate per interval)], interval h
FUNDING: dict[str, tuple[str, list[tuple[datetime, float]], float]] = {
    "deribit": ("wif", [(hour(3), -0.0006), (hour(4), -0.0008), (hour(5), -0.0009)], 8),
    "htx": ("wif", [(hour(4), -0.00015)], 4),
    "bingx": ("wif", [(hour(23, 26), -0.0007), (hour(3), -0.0006)], 4),
    "coinex": ("wif", [(hour(4), -0.00048)], 4),
    "kucoin": ("wif", [(hour(4), -0.0001), (hour(5), -0.00011)], 1),
    "mexc": ("pepe", [(hour(4), -0.0003)], 8),
}


@pytest.mark.parametrize("venue", list(FUNDING))
async def test_funding_history_on_the_six_venues(make_source: MakeSource, venue: str) -> None:
    source, _ = make_source()
    batch = await source.collect(AT)
    coin, prints, interval = FUNDING[venue]
    rows = history(batch, venue, coin)
    got = sorted((at, s.funding_rate) for at, s in rows.items() if s.funding_rate is not None)
    assert [at for at, _ in got] == [at for at, _ in prints]
    assert [rate for _, rate in got] == pytest.approx([rate for _, rate in prints])
    for at, _ in prints:
        assert rows[at].funding_interval_hours == interval
        assert rows[at].funding_rate_per_hour == pytest.approx(rows[at].funding_rate / interval)
    outcome = next(o for o in batch.outcomes if o.venue == venue)
    assert outcome.status == "ok" and outcome.error is None


async def test_price_path_from_one_venue_per_coin_with_kline_taker_flow(
    make_source: MakeSource,
) -> None:
    source, _ = make_source()
    batch = await source.collect(AT)
    wif = history(batch, "binance", "wif")
    assert [(at, s.price) for at, s in sorted(wif.items()) if s.price] == [
        (hour(3), 3.30), (hour(4), 3.20), (hour(5), 3.15),
    ]  # fmt: skip
    assert wif[hour(3)].taker_buy_usd == 1_300_000
    assert wif[hour(3)].taker_sell_usd == 3_300_000 - 1_300_000
    assert wif[hour(4)].funding_rate == -0.00075  # the print and the bar share one sample
    pepe = history(batch, "binance", "pepe")
    assert pepe[hour(3)].price == pytest.approx(0.0212 / 1000)  # 1000PEPE -> one PEPE
    # Binance answered first for both coins: no other venue was asked for klines
    others = {s.venue for s in batch.history if s.price is not None}
    assert others == {"binance"}


async def test_oi_history_in_usd(make_source: MakeSource) -> None:
    source, _ = make_source()
    batch = await source.collect(AT)
    oi = {
        venue: [
            (at, s.open_interest_usd)
            for at, s in sorted(history(batch, venue, "wif").items())
            if s.open_interest_usd is not None
        ]
        for venue in ("binance", "bybit", "okx", "gate")
    }
    hours = [hour(3), hour(4), hour(5)]
    assert oi["binance"] == list(zip(hours, [30e6, 33e6, 36e6], strict=True))
    # Bybit counts coins: valued at the same hour's kline close, never at today's mark
    assert [at for at, _ in oi["bybit"]] == hours
    assert [x for _, x in oi["bybit"]] == pytest.approx([7e6 * 3.30, 7.5e6 * 3.20, 8e6 * 3.15])
    assert oi["okx"] == list(zip(hours, [14e6, 15e6, 15.5e6], strict=True))
    assert oi["gate"] == list(zip(hours, [5e6, 5.5e6, 6e6], strict=True))


async def test_price_and_oi_history_are_fetched_once(make_source: MakeSource) -> None:
    source, replay = make_source()
    await source.collect(AT)
    before = sum(replay.requests.values())
    second = await source.collect(AT.replace(hour=6))
    assert [s for s in second.history if s.price is not None or s.open_interest_usd] == []
    # no kline/OI-history/funding requests the second time, only scan and per-candidate state
    assert sum(replay.requests.values()) - before < before


# venue -> coin -> (taker buy USD, taker sell USD, long/short)
FLOW: dict[str, dict[str, tuple[float | None, float | None, float | None]]] = {
    "okx": {"wif": (600_000, 1_200_000, 0.8), "pepe": (None, None, 1.1)},
    "gate": {"wif": (6 * 1000 * 3.12, 6 * 2000 * 3.12, 0.7), "pepe": (None, None, 0.9)},
    "bybit": {"wif": (1000 * 3.12, 3000 * 3.12, 0.4 / 0.6), "pepe": (None, None, 1.0)},
    "bitget": {"wif": (500 * 3.12, 1500 * 3.12, 1.5), "pepe": (None, None, None)},
}


@pytest.mark.parametrize("venue", list(FLOW))
async def test_taker_flow_and_long_short(make_source: MakeSource, venue: str) -> None:
    source, _ = make_source()
    batch = await source.collect(AT)
    now = {s.coin_id: s for s in batch.market if s.venue == venue}
    for coin, (buy, sell, ratio) in FLOW[venue].items():
        s = now[coin]
        assert (s.taker_buy_usd, s.taker_sell_usd, s.long_short_ratio) == pytest.approx((buy, sell, ratio))


def test_taker_flow_needs_the_whole_window() -> None:
    trades = [(1_000, 2.0, 10.0, True), (1_500, 2.0, 5.0, False), (400, 9.0, 9.0, False)]
    assert taker_flow(trades, 500) == (20.0, 10.0)
    assert taker_flow(trades[:2], 500) is None  # the oldest trade is after the window's start
    assert taker_flow([], 500) is None


async def test_htx_index_in_bulk_and_mark_for_candidates(make_source: MakeSource) -> None:
    source, _ = make_source()
    batch = await source.collect(AT)
    htx = {s.coin_id: s for s in batch.market if s.venue == "htx"}
    assert htx["wif"].index_price == 3.1246 and htx["wif"].mark_price == 3.1207
    assert htx["btc"].index_price == 95019.7
    assert htx["btc"].mark_price is None  # not a candidate: no per-symbol request


async def test_bybit_follows_the_instruments_cursor(make_source: MakeSource) -> None:
    first_page = Recorded(
        url="instruments-info?category=linear&limit=1000",
        host="api.bybit.com",
        body={
            "retCode": 0,
            "retMsg": "OK",
            "result": {
                "category": "linear",
                "list": [],
                "nextPageCursor": "page2",
            },
        },
    )
    # the recorded instruments list answers only the request carrying the cursor
    source, replay = make_source([first_page])
    recorded = next(r for r in replay.responses if r.host == "api.bybit.com" and "instruments-info" in r.url)
    recorded.url = "instruments-info?category=linear&cursor=page2"
    try:
        batch = await source.collect(AT)
    finally:
        recorded.url = "v5/market/instruments-info"
    assert {s.coin_id for s in batch.market if s.venue == "bybit"} >= {"btc", "pepe", "wif"}


async def test_store_writes_history_only_into_gaps(store: StoreHandle) -> None:
    snapshots = SnapshotStore(store.db)
    cycle = MarketSample("wif", "binance", hour(4), -0.0001, 8, price=3.0, open_interest_usd=1.0)
    other = MarketSample("btc", "binance", hour(4), 0.0001, 8, price=95_000.0)
    await snapshots.write_batch(SnapshotBatch(at=hour(4), market=[cycle, other]))
    past = [
        MarketSample("wif", "binance", hour(4), -0.0002, 8, price=9.9),  # taken: ignored
        MarketSample("wif", "binance", hour(3), -0.0003, 8, price=3.3),  # a gap: written
    ]
    await snapshots.write_batch(SnapshotBatch(at=hour(5), history=past))
    stored = sorted(
        (s.at, s.coin_id, s.funding_rate, s.price) for s in await snapshots.iter_market_samples(hour(0), hour(6))
    )
    assert stored == [
        (hour(3), "wif", -0.0003, 3.3),
        (hour(4), "btc", 0.0001, 95_000.0),
        (hour(4), "wif", -0.0001, 3.0),
    ]


@pytest.mark.parametrize(
    ("venues", "source_venue", "wif", "pepe"),
    [
        # Hyperliquid lists PEPE as kPEPE: candleSnapshot closes 0.02125.. are per 1000 PEPE
        (["hyperliquid", "htx"], "hyperliquid", [3.305, 3.205, 3.155], [2.125e-05, 2.085e-05, 2.045e-05]),
        # HTX lists plain PEPE; its 60min kline ``id`` is the bar's open in seconds
        (["htx", "mexc"], "htx", [3.31, 3.21, 3.16], [2.13e-05, 2.09e-05, 2.05e-05]),
    ],
)
async def test_price_path_without_binance(
    make_source: MakeSource, venues: list[str], source_venue: str, wif: list[float], pepe: list[float]
) -> None:
    """Coins listed only on venues without Binance-style klines still get their hourly path."""
    source, _ = make_source(venues=venues, onchain=False)
    batch = await source.collect(AT)
    hours = [hour(3), hour(4), hour(5)]
    for coin, closes in (("wif", wif), ("pepe", pepe)):
        got = history(batch, source_venue, coin)
        assert [at for at, s in sorted(got.items()) if s.price is not None] == hours
        assert [got[h].price for h in hours] == pytest.approx(closes, rel=1e-9)
    assert {s.venue for s in batch.history if s.price is not None} == {source_venue}
    assert all(o.status == "ok" for o in batch.outcomes), [(o.venue, o.error) for o in batch.outcomes]


async def test_htx_oi_history_in_usdt(make_source: MakeSource) -> None:
    source, _ = make_source(venues=["htx", "mexc"], onchain=False)
    batch = await source.collect(AT)
    wif = history(batch, "htx", "wif")
    got = [(at, s.open_interest_usd) for at, s in sorted(wif.items()) if s.open_interest_usd is not None]
    assert got == [(hour(3), 3_000_000.0), (hour(4), 3_050_000.0), (hour(5), 3_100_000.0)]
    pepe = history(batch, "htx", "pepe")
    assert all(s.open_interest_usd is None for s in pepe.values())  # no hourly rows recorded


async def test_htx_interval_comes_from_the_per_contract_funding_rate(make_source: MakeSource) -> None:
    """The batch answer's ``next_funding_time`` is deprecated (null): the scan says 8 h, and only
    candidates learn their real interval from ``v5/market/funding_rate``."""
    source, _ = make_source()
    batch = await source.collect(AT)
    htx = {s.coin_id: s for s in batch.market if s.venue == "htx" and s.at == AT}
    assert htx["wif"].funding_interval_hours == 4 and htx["pepe"].funding_interval_hours == 8
    assert htx["btc"].funding_interval_hours == 8  # not a candidate: the documented default
    broken = Recorded(
        "v5/market/funding_rate?contract_code=WIF-USDT",
        host="api.hbdm.vn",
        body={"code": 200, "message": "Success", "data": []},
    )
    source, _ = make_source([broken])
    batch = await source.collect(AT)
    wif = next(s for s in batch.market if s.venue == "htx" and s.coin_id == "wif" and s.at == AT)
    assert wif.funding_interval_hours == 8  # no per-contract answer: the default, never a guess
