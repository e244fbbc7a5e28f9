# ruff: noqa: E501  (tables of recorded values read better unwrapped)
"""Faults: a venue that fails costs that venue's data, never the cycle."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console

from ingest.commands import ingest_once
from ingest.snapshot import VENUES
from ingest.testing import Recorded
from tests.ingest.helpers import AT, MakeSource


def outcome(batch, venue):  # type: ignore[no-untyped-def]
    return next(o for o in batch.outcomes if o.venue == venue)


async def test_timeout(make_source: MakeSource) -> None:
    source, _ = make_source(
        [Recorded("fapi/v1/premiumIndex", fault="hang", host="fapi.binance.com")],
        read_timeout=0.1,
        connect_timeout=0.1,
        retries=2,
    )
    started = time.monotonic()
    batch = await source.collect(AT)
    assert time.monotonic() - started < 2
    o = outcome(batch, "binance")
    assert o.status == "failed" and "timed out" in (o.error or "")
    assert o.requests == 2  # retried once
    assert all(outcome(batch, v).status == "ok" for v in VENUES if v != "binance")


async def test_5xx_is_retried_then_fails(make_source: MakeSource) -> None:
    source, _ = make_source(
        [Recorded("v5/market/tickers", status=503, body="Service Unavailable", host="api.bybit.com")],
        retries=3,
    )
    batch = await source.collect(AT)
    o = outcome(batch, "bybit")
    assert o.status == "failed" and "ExchangeNotAvailable" in (o.error or "")
    assert o.requests == 3
    assert not [s for s in batch.market if s.venue == "bybit"]


async def test_malformed_json(make_source: MakeSource) -> None:
    source, _ = make_source([Recorded("public/mark-price", body='{"code": "0", "data": [', host="www.okx.com")])
    batch = await source.collect(AT)
    o = outcome(batch, "okx")
    assert o.status == "failed" and "not JSON" in (o.error or "")


@pytest.mark.parametrize(
    ("venue", "fault"),
    [
        ("gate", Recorded("futures/usdt/contracts", body="<html><body>Cloudflare</body></html>", host="api.gateio.ws")),
        ("bitmex", Recorded("/api/v1/instrument/active", status=502, body="<html>502 Bad Gateway</html>", host="www.bitmex.com")),
        ("coinex", Recorded("/v2/futures/ticker", body="<!DOCTYPE html><html>maintenance</html>", host="api.coinex.com")),
    ],
)  # fmt: skip
async def test_html_error_page(make_source: MakeSource, venue: str, fault: Recorded) -> None:
    source, _ = make_source([fault])
    batch = await source.collect(AT)
    o = outcome(batch, venue)
    assert o.status == "failed"
    assert "html" in (o.error or "").lower() or "502" in (o.error or "")


async def test_venue_with_zero_markets(make_source: MakeSource) -> None:
    source, _ = make_source(
        [
            Recorded(
                "api/v1/contracts/active",
                body={"code": "200000", "data": []},
                host="api-futures.kucoin.com",
            )
        ]
    )
    batch = await source.collect(AT)
    o = outcome(batch, "kucoin")
    assert o.status == "failed" and "0 linear perpetuals" in (o.error or "")


async def test_wrong_envelope_and_bad_rows_are_counted(make_source: MakeSource) -> None:
    bad_rows = {"code": "00000", "msg": "success", "data": [
        {"symbol": "BTCUSDT", "markPrice": "not-a-number", "fundingRate": "0.0001"},
        {"symbol": "WIFUSDT", "lastPr": "3.118", "fundingRate": "-0.00048", "holdingAmount": "6000000", "markPrice": "3.12"},
    ]}  # fmt: skip
    source, _ = make_source(
        [
            Recorded("mix/market/tickers", body=bad_rows, host="api.bitget.com"),
            Recorded(
                "get_book_summary_by_currency",
                body={"error": {"code": 10000}},
                host="www.deribit.com",
            ),
        ]
    )
    batch = await source.collect(AT)
    bitget = outcome(batch, "bitget")
    assert bitget.status == "ok" and bitget.rejected == 1 and bitget.markets == 1
    deribit = outcome(batch, "deribit")
    assert deribit.status == "failed" and deribit.rejected == 1 and "Envelope" in (deribit.error or "")


async def test_ambiguous_symbol_is_dropped_and_counted(make_source: MakeSource) -> None:
    """``1000PEPE`` priced at 5 USD is neither 1000 PEPE (0.02) nor a coin called 1000PEPE that
    other venues know: it is dropped, not guessed."""
    premium = {"code": 0, "msg": "", "data": [
        {"symbol": "1000PEPE-USDT", "markPrice": "5.0", "indexPrice": "5.0", "lastFundingRate": "-0.001"},
        {"symbol": "WIF-USDT", "markPrice": "3.1202", "indexPrice": "3.1244", "lastFundingRate": "-0.0007"},
    ]}  # fmt: skip
    source, _ = make_source([Recorded("premiumIndex", body=premium, host="open-api.bingx.com")])
    batch = await source.collect(AT)
    o = outcome(batch, "bingx")
    assert o.status == "ok" and o.rejected == 1
    assert {s.coin_id for s in batch.market if s.venue == "bingx" and s.at == AT} == {"wif"}


async def test_three_venues_fail_and_the_cycle_succeeds(make_source: MakeSource) -> None:
    source, _ = make_source(
        [
            Recorded("fapi/v1/premiumIndex", fault="refuse", host="fapi.binance.com"),
            Recorded("public/funding-rate", status=500, body="oops", host="www.okx.com"),
            Recorded("contract/ticker", body="<html>blocked</html>", host="api.mexc.com"),
        ],
        retries=1,
    )
    batch = await source.collect(AT)
    failed = {o.venue for o in batch.outcomes if o.status == "failed"}
    assert failed == {"binance", "okx", "mexc"}
    assert {s.venue for s in batch.market} == set(VENUES) - failed
    # candidates are still found and enriched from the other ten venues
    assert {s.coin_id for s in batch.onchain} == {"pepe", "wif"}


async def test_circuit_breaker_skips_a_failing_venue(make_source: MakeSource) -> None:
    source, replay = make_source(
        [Recorded("api/v1/contracts/active", fault="refuse", host="api-futures.kucoin.com")],
        retries=1,
    )
    for breaker in source.breakers.values():
        breaker.threshold = 2
    for _ in range(2):
        assert outcome(await source.collect(AT), "kucoin").status == "failed"
    before = replay.requests["api-futures.kucoin.com"]
    third = await source.collect(AT)
    assert outcome(third, "kucoin").status == "skipped"
    assert replay.requests["api-futures.kucoin.com"] == before


@pytest.mark.parametrize("fault", ["refuse", "hang"])
async def test_no_network_ends_in_bounded_time(make_source: MakeSource, fault: str) -> None:
    """Every host refuses (or never answers): one line per venue, no stack trace, bounded."""
    everything = [Recorded("", fault=fault)]
    source, _ = make_source(everything, connect_timeout=0.2, read_timeout=0.2, cycle_timeout=3)
    out = io.StringIO()
    started = time.monotonic()
    batch = await ingest_once(source, console=Console(file=out, width=100), at=AT)
    assert time.monotonic() - started < 5
    lines = out.getvalue().splitlines()
    for venue, name in VENUES.items():
        assert outcome(batch, venue).status == "failed"
        assert sum(1 for line in lines if line.startswith(name + " ")) == 1
    assert "Traceback" not in out.getvalue()
    assert batch.market == [] and batch.onchain == []
