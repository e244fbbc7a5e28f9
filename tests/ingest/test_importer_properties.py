"""Property tests of the importers' row parsers and of whole files: malformed input never crashes
and never yields a non-finite (or non-positive price, or negative OI) value."""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.importers import IMPORTERS, import_directory
from ingest.importers.base import FundingPrint, OpenInterestPoint, PricePoint, Reject
from ingest.snapshot import MARKET_COLUMNS

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**15), max_value=5 * 10**12).map(str),
    st.sampled_from(
        ["", " ", "NaN", "nan", "inf", "-inf", "Infinity", "1e400", "-0", "0", "1.5e12", "abc", "1_000", "0x10", "１２"]
    ),
)
TIMES = st.one_of(NUMBERS, st.integers(min_value=1_230_768_000_000, max_value=4_102_444_800_000).map(str))
SYMBOLS = st.one_of(
    st.sampled_from(
        [
            "BTCUSDT",
            "1000PEPEUSDT",
            "1000000MOGUSDT",
            "1MBABYDOGEUSDT",
            "USDT",
            "",
            "BTC-PERP",
            "kPEPE",
            "ÄUSDT",
            "1INCHUSDT",
        ]
    ),
    st.text(max_size=12),
)
VENUES = st.one_of(st.sampled_from(["binance", "bybit", "hyperliquid", "ftx", "", "BINANCE"]), st.text(max_size=8))


def _check(obs: object) -> None:
    if isinstance(obs, FundingPrint):
        assert math.isfinite(obs.rate) and abs(obs.rate) <= 0.5
        assert obs.interval_hours is None or (math.isfinite(obs.interval_hours) and obs.interval_hours > 0)
        assert obs.price is None or (math.isfinite(obs.price) and obs.price > 0)
    elif isinstance(obs, OpenInterestPoint):
        assert math.isfinite(obs.open_interest_usd) and obs.open_interest_usd >= 0
    else:
        assert isinstance(obs, PricePoint)
        assert math.isfinite(obs.price) and obs.price > 0
    assert obs.coin_id and obs.coin_id == obs.coin_id.lower()


@settings(max_examples=300, deadline=None)
@given(symbol=SYMBOLS, venue=VENUES, coin=SYMBOLS, t=TIMES, a=NUMBERS, b=NUMBERS, c=NUMBERS)
def test_row_parsers_reject_or_return_finite_values(
    symbol: str, venue: str, coin: str, t: str, a: str, b: str, c: str
) -> None:
    row = {
        "symbol": symbol,
        "venue": venue,
        "coin": coin,
        "venue_symbol": symbol,
        "quote": "USDT",
        "funding_time": t,
        "timestamp": t,
        "open_time": t,
        "funding_rate": a,
        "interval_hours": b,
        "mark_price": c,
        "sum_open_interest": b,
        "sum_open_interest_value": a,
        "close": a,
        "open": b,
        "high": c,
        "low": c,
    }
    for importer in IMPORTERS.values():
        try:
            obs = importer.parse_row(row)
        except Reject as reason:
            assert str(reason)
            continue
        _check(obs)


CELLS = st.one_of(NUMBERS, SYMBOLS, st.text(alphabet=',"\n\r x\x00', max_size=4))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=st.sampled_from(sorted(IMPORTERS)),
    rows=st.lists(st.lists(CELLS, min_size=0, max_size=9), max_size=12),
    valid=st.lists(st.tuples(st.integers(0, 40), st.floats(-0.01, 0.01)), max_size=8),
)
def test_malformed_files_never_crash_and_never_write_non_finite_values(
    tmp_path_factory: object, shape: str, rows: list[list[str]], valid: list[tuple[int, float]]
) -> None:
    import csv
    import io

    tmp = tmp_path_factory.mktemp("prop")  # type: ignore[attr-defined]
    importer = IMPORTERS[shape]
    header = list(importer.required) + ["mark_price"] * (shape == "multivenue-funding")
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    for hour, rate in valid:  # some good rows among the bad, so the writer runs too
        stamp = str(1_772_323_200_000 + hour * 3_600_000)
        good = {
            "symbol": "ETHUSDT",
            "venue": "bybit",
            "coin": "ETH",
            "funding_time": stamp,
            "timestamp": stamp,
            "open_time": stamp,
            "funding_rate": repr(rate),
            "interval_hours": "8",
            "sum_open_interest_value": "5",
            "close": "2000",
            "mark_price": "2000",
        }
        writer.writerow([good.get(c, "1") for c in header])
    for row in rows:
        writer.writerow(row)
    (tmp / "in.csv").write_text(text.getvalue())
    result = import_directory(tmp / "in.csv", tmp / "out", fmt=shape)
    report = result.files[0]
    assert report.read == report.kept + report.rejected_total
    from ingest.files import read_snapshots

    if result.written:
        _, market, _ = read_snapshots(tmp / "out")
        assert len(market) == result.samples
        for sample in market:
            for column in MARKET_COLUMNS:
                value = getattr(sample, column)
                assert value is None or math.isfinite(value)
            assert sample.price is None or sample.price > 0
            assert sample.open_interest_usd is None or sample.open_interest_usd >= 0
            assert sample.funding_rate is None or (sample.funding_interval_hours or 0) > 0


def test_a_file_with_only_a_header_is_reported_not_lost(tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_text("symbol,funding_time,funding_rate\n")
    result = import_directory(tmp_path / "f.csv", tmp_path / "out")
    assert result.files[0].problem == "empty file (no data rows)" and result.samples == 0
