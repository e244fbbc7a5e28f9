"""The importers: shapes detected from headers, funding intervals inferred from the spacing of
prints, multiplied symbols, the hourly grid without look-ahead, and every rejection counted."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.files import read_snapshots
from ingest.importers import IMPORTERS, detect, import_directory, read_files
from ingest.importers.binance_funding import infer_intervals
from insider_selling.cli import main

H = 3_600_000
T0 = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000)


def _csv(path: Path, header: str, rows: list[str], *, gz: bool = False) -> Path:
    text = "\n".join([header, *rows]) + "\n"
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _at(h: int) -> datetime:
    return datetime.fromtimestamp((T0 + h * H) / 1000, UTC)


def test_intervals_follow_the_spacing_of_prints_through_a_change_and_a_gap() -> None:
    # 8 h prints, a switch to 4 h at hour 24, then a missed print (28 -> 36)
    times = [T0 + h * H + 7 for h in (0, 8, 16, 24, 28, 36, 40)]
    assert infer_intervals(times) == [8.0, 8.0, 8.0, 8.0, 4.0, 4.0, 4.0]
    assert infer_intervals([T0]) == [None]  # one print: nothing to infer from


def test_binance_files_become_hourly_rows_without_look_ahead(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _csv(
        src / "funding.csv.gz",
        "symbol,funding_time,funding_rate",
        [
            f"1000PEPEUSDT,{T0 + h * H + 5},{rate}"
            for h, rate in ((0, -0.0008), (8, -0.0004), (16, 0.0001), (20, 0.0002))
        ],
        gz=True,
    )
    _csv(
        src / "oi.csv",
        "symbol,timestamp,sum_open_interest,sum_open_interest_value",
        [f"1000PEPEUSDT,{T0 + h * H},{100 + h},{1000.0 + h}" for h in (0, 4, 8)],
    )
    _csv(
        src / "klines.csv",
        "symbol,open_time,open,high,low,close,volume",
        [f"1000PEPEUSDT,{T0 + h * H},1,1,1,{10.0 + h},5" for h in range(24)],
    )
    result = import_directory(src, tmp_path / "snap")
    assert [(r.format, r.read, r.kept, r.rejected_total) for r in result.files] == [
        ("binance-funding", 4, 4, 0),
        ("binance-klines", 24, 24, 0),
        ("binance-open-interest", 3, 3, 0),
    ]
    coins, market, _ = read_snapshots(tmp_path / "snap")
    assert list(coins) == ["pepe"]
    rows = {s.at: s for s in market}
    # the 8 h print at 00:00 fills 00:00 .. 07:00; the switch to 4 h shows from the print at 20:00
    assert rows[_at(0)].funding_rate == -0.0008 and rows[_at(7)].funding_rate == -0.0008
    assert rows[_at(8)].funding_rate == -0.0004 and rows[_at(8)].funding_interval_hours == 8
    assert rows[_at(20)].funding_interval_hours == 4 and rows[_at(23)].funding_rate == 0.0002
    # OI (4 h) stands until the next point, and stops after the last one's spacing
    assert rows[_at(3)].open_interest_usd == 1000.0 and rows[_at(4)].open_interest_usd == 1004.0
    assert rows[_at(11)].open_interest_usd == 1008.0 and rows[_at(12)].open_interest_usd is None
    # a kline's close is the price at its close time, per coin (1000PEPE quotes 1000 PEPE)
    assert rows[_at(0)].price is None
    assert rows[_at(1)].price == pytest.approx(10.0 / 1000) and rows[_at(24)].price == pytest.approx(33.0 / 1000)
    summary = json.loads((tmp_path / "snap" / "import.json").read_text())
    assert summary["coins"] == 1 and summary["samples"] == len(market)


def test_one_print_klines_are_prices_at_their_own_time_not_bars(tmp_path: Path) -> None:
    """Issue 21, item 5: an 8-hourly file of one-print klines (a mark sampled at funding times) is a
    point price at each open time; the same spacing with real bars is the close, 8 h later."""
    for name, row, first_hour in (
        ("points", "{p},{p},{p},{p}", 0),  # open = high = low = close
        ("bars", "{o},{hi},{lo},{p}", 8),
    ):
        src = tmp_path / name
        src.mkdir()
        _csv(
            src / "klines.csv",
            "symbol,open_time,open,high,low,close,volume",
            [
                f"BTCUSDT,{T0 + h * H}," + row.format(p=100.0 + h, o=99.0 + h, hi=101.0 + h, lo=98.0 + h) + ",5"
                for h in (0, 8, 16, 24)
            ],
        )
        import_directory(src, tmp_path / f"{name}-snap")
        _, market, _ = read_snapshots(tmp_path / f"{name}-snap")
        prices = {s.at: s.price for s in market if s.price is not None}
        assert min(prices) == _at(first_hour)
        assert prices[_at(first_hour)] == 100.0  # the first kline's close
        assert prices[_at(first_hour + 7)] == 100.0 and prices[_at(first_hour + 8)] == 108.0


def test_every_bad_row_is_counted_with_its_reason(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    header = "venue,venue_symbol,coin,quote,funding_time,funding_rate,interval_hours,mark_price"
    good = [f"binance,BTCUSDT,BTC,USDT,{T0 + h * 8 * H},-0.0001,8.0,60000" for h in range(3)]
    bad = [
        f"binance,BTCUSDT,BTC,USDT,{T0 + 30 * H},inf,8.0,60000",
        f"binance,BTCUSDT,BTC,USDT,{T0 + 31 * H},NaN,8.0,60000",
        f"binance,BTCUSDT,BTC,USDT,{T0 + 32 * H},-0.0001,8.0,0",
        f"binance,BTCUSDT,BTC,USDT,{T0 + 33 * H},-0.0001,8.0,-5",
        f"binance,BTCUSDT,BTC,USDT,{T0 + 34 * H},-0.0001,,60000",
        f"ftx,BTC-PERP,BTC,USD,{T0 + 35 * H},-0.0001,1.0,",
        f"hyperliquid,BTC,BTC,USDC,{T0 + 36 * H},-0.0001,1.0,NaN",
        "hyperliquid,BTC,BTC,USDC,not-a-time,-0.0001,1.0,",
        "hyperliquid,BTC,BTC",
        f"binance,BTCUSDC,BTC,USDC,{T0},-0.0002,8.0,60010",
    ]
    _csv(src / "multi.csv", header, good + bad)
    _csv(
        src / "oi.csv",
        "symbol,timestamp,sum_open_interest,sum_open_interest_value",
        [f"BTCUSDT,{T0},-1,5", f"BTCUSDT,{T0 + 4 * H},1,-5", f"BTCUSDT,{T0 + 8 * H},1,5"],
    )
    _csv(src / "empty.csv", "symbol,funding_time,funding_rate", [])
    (src / "notes.txt").write_text("not data")
    result = import_directory(src, tmp_path / "snap")
    by_name = {r.path.name: r for r in result.files}
    multi = by_name["multi.csv"]
    assert multi.read == len(good) + len(bad) == multi.kept + multi.rejected_total
    assert multi.kept == 3
    assert dict(multi.rejected) == {
        "funding_rate not finite": 2,
        "mark price not positive": 2,
        "missing funding interval": 1,
        "unknown venue": 1,
        "mark price not finite": 1,
        "funding_time not a number": 1,
        "wrong number of columns": 1,
        "a second contract of the coin on the venue (kept the USDT one, else the longest)": 1,
    }
    oi = by_name["oi.csv"]
    assert (oi.kept, dict(oi.rejected)) == (
        1,
        {"open interest (contracts) negative": 1, "open interest value negative": 1},
    )
    assert by_name["empty.csv"].problem == "empty file (no data rows)"
    assert [p.name for p in result.ignored] == ["notes.txt"]


def test_two_coins_behind_one_base_stay_apart(tmp_path: Path) -> None:
    # Binance lists BOB and 1000000BOB: two coins, not one coin twice
    path = _csv(
        tmp_path / "k.csv",
        "symbol,open_time,close",
        [
            f"{s},{T0 + h * H},{p}"
            for s in ("BOBUSDT", "1000000BOBUSDT")
            for h in range(3)
            for p in ([0.005] if s == "BOBUSDT" else [0.012])
        ],
    )
    observations, result = read_files(path)
    assert {o.coin_id for o in observations} == {"bob", "1000000bob"}
    assert result.files[0].rejected_total == 0
    assert {o.coin_id: o.price for o in observations} == {"bob": 0.005, "1000000bob": 0.012}


def test_detection_and_the_format_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert detect(["symbol", "funding_time", "funding_rate"]) is IMPORTERS["binance-funding"]
    assert (
        detect(["venue", "venue_symbol", "coin", "quote", "funding_time", "funding_rate", "interval_hours"])
        is IMPORTERS["multivenue-funding"]
    )
    assert (
        detect(["symbol", "timestamp", "sum_open_interest", "sum_open_interest_value"]).name == "binance-open-interest"
    )
    assert detect(["symbol", "open_time", "open", "high", "low", "close"]).name == "binance-klines"
    assert detect(["a", "b"]) is None
    src = tmp_path / "src"
    src.mkdir()
    _csv(
        src / "odd.csv",
        "symbol,funding_time,funding_rate,extra,venue",
        [f"ETHUSDT,{T0 + h * 8 * H},-0.0001,x,y" for h in range(4)],
    )
    # detected as nothing (a venue column without the multi-venue columns): the CLI says so
    assert main(["import", str(src), "--out", str(tmp_path / "a")]) == 1
    assert "unrecognised columns" in capsys.readouterr().out
    assert main(["import", str(src), "--out", str(tmp_path / "b"), "--format", "binance-funding"]) == 0
    out = capsys.readouterr().out
    assert "odd.csv: binance-funding: 4 rows read, 4 kept, 0 rejected" in out
    assert "wrote 32 hourly market rows for 1 coins" in out
    # a stage that counts nothing says so without a count ("lay on the hourly grid 0 rows" misled)
    assert "import: lay on the hourly grid in " in out and "grid 0 rows" not in out
    # a second import into the same directory is refused unless asked to overwrite
    assert main(["import", str(src), "--out", str(tmp_path / "b"), "--format", "binance-funding"]) == 2
    assert main(["import", str(src), "--out", str(tmp_path / "b"), "--format", "binance-funding", "--overwrite"]) == 0


def test_frames_in_memory_are_what_the_files_read_back(tmp_path: Path) -> None:
    from ingest.files import read_snapshot_frames
    from ingest.importers import import_frames

    src = tmp_path / "src"
    src.mkdir()
    _csv(
        src / "multi.csv",
        "venue,venue_symbol,coin,quote,funding_time,funding_rate,interval_hours,mark_price",
        [
            f"{v},{c}USDT,{c},USDT,{T0 + h * H},{-0.0001 * (h + 1)},{i},{p}"
            for v, i in (("binance", 8.0), ("hyperliquid", 1.0))
            for c, p in (("BTC", 60000), ("ETH", 2000))
            for h in range(0, 24, int(i))
            if not (v == "hyperliquid" and p == 60000 and h % 3)
        ],
    )
    import_directory(src, tmp_path / "snap")
    _, coins, frames = import_frames(src)
    _, read_back, _ = read_snapshot_frames(tmp_path / "snap")
    assert [c.coin_id for c in coins] == ["btc", "eth"]
    assert len(frames) == len(read_back) > 24
    for a, b in zip(frames, read_back, strict=True):
        assert {k: a[k] for k in b} == b


def test_one_time_split_across_two_snapshot_files_reads_as_one_frame(tmp_path: Path) -> None:
    from ingest.files import read_snapshot_frames, write_snapshots
    from ingest.snapshot import MarketSample, samples_from_frame

    at = _at(0)
    a = MarketSample("btc", "binance", at, -0.0001, 8.0, price=60000.0)
    b = MarketSample("eth", "binance", at, -0.0002, 8.0, price=2000.0)
    b2 = MarketSample("eth", "binance", at, -0.0003, 8.0, price=float("inf"))
    write_snapshots(tmp_path / "1.jsonl", [], [a, b])
    write_snapshots(tmp_path / "2.jsonl", [], [b2])  # a later file: its row wins
    _, frames, _ = read_snapshot_frames(tmp_path)
    assert len(frames) == 1
    assert {s.coin_id: (s.funding_rate, s.price) for s in samples_from_frame(frames[0])} == {
        "btc": (-0.0001, 60000.0),
        "eth": (-0.0003, None),
    }
