"""Import -> replay -> checks on a small slice of the shared real datasets (about 20 s).

The published rows of every run must be coherent (issue 10, "Must show"): no listed row with a
non-negative ``avg_funding_72h``; ``consecutive_negative_days`` and ``signal_start_date`` agree
within a day; no tie among the top three scores; runs at 00:00, 03:00, 13:00 and 17:00 UTC list
coins on 4 h / 8 h data and on daily samples. The same checks run on the whole datasets in
``insider-selling report`` (``docs/validation.md``).
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from ingest.importers import import_directory
from research.checks import CHECK_HOURS, Checks, check_rows, raw_candidates
from research.dataset import dataset_report
from research.replay import backtest, load_replay, parse_step
from research.report import write_validation
from research.scored import load_scored_runs
from scoring.config import load_model_config
from store import open_store

BINANCE = "binance-usdm-2026q1"
MULTI = "multivenue-2025q4-2026"
SYMBOLS = ("1000PEPEUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT")


def _ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def _slice(src: Path, dst: Path, keep_symbol: object, lo: int, hi: int, time_column: int) -> None:
    """Copy the rows of ``src`` whose symbol passes ``keep_symbol`` and whose time is in [lo, hi)."""
    with gzip.open(src, "rt", newline="") as f, gzip.open(dst, "wt", newline="") as out:
        out.write(f.readline())
        for line in f:
            cells = line.split(",", time_column + 1)
            if keep_symbol(cells[0]) and lo <= int(cells[time_column]) < hi:  # type: ignore[operator]
                out.write(line)


def _binance_slice(data: Path, dst: Path) -> set[str]:
    dst.mkdir()
    with gzip.open(data / BINANCE / "funding.csv.gz", "rt") as f:
        names = sorted({line.split(",", 1)[0] for line in f if not line.startswith("symbol")})
    chosen = set(names[:34:2]) | set(SYMBOLS)  # every other small cap of the first 34, and large caps
    lo, hi = _ms("2026-02-24"), _ms("2026-03-19")
    for name, column in (("funding.csv.gz", 1), ("open_interest_4h.csv.gz", 1), ("klines_1h.csv.gz", 1)):
        _slice(data / BINANCE / name, dst / name, chosen.__contains__, lo, hi, column)
    return chosen


def _multi_slice(data: Path, dst: Path) -> None:
    dst.mkdir()
    _slice(
        data / MULTI / "funding.csv.gz", dst / "funding.csv.gz", lambda _: True, _ms("2025-11-01"), _ms("2025-11-22"), 4
    )


def _daily(snapdir: Path) -> None:
    """Keep only the 00:00 rows: a dataset sampled once a day."""
    for path in snapdir.glob("*.jsonl"):
        lines = path.read_bytes().splitlines()
        kept = [x for x in lines if b'"kind":"market"' not in x or orjson.loads(x)["at"].endswith("T00:00:00Z")]
        path.write_bytes(b"\n".join(kept) + b"\n")


async def _replay_checks(snapdir: Path, start: datetime, hours: int) -> Checks:
    replay = load_replay(snapdir)
    handle = await open_store(None, snapdir.name)
    try:
        results = await backtest(
            handle.db, replay, start=start, end=start + timedelta(hours=hours - 1), step=parse_step("1h")
        )
        assert [r.status for r in results] == ["succeeded"] * hours
        data = await load_scored_runs(handle.db, frames=replay.frames)
    finally:
        await handle.aclose()
    floor = load_model_config().gate.min_funding_per_8h
    candidates = raw_candidates(data, floor)
    return check_rows(data.rows, data.run_times, data.pairs.run.tolist(), candidates=candidates)


def _assert_coherent(checks: Checks, what: str) -> None:
    assert checks.listed_rows > 0, what
    assert checks.nonnegative_funding == 0, (what, checks.lines())
    assert checks.streak_disagree == 0, (what, checks.lines())
    assert checks.runs_with_top3_tie == 0, (what, checks.lines())
    for hour in CHECK_HOURS:
        runs, listing, silent = checks.hours[hour]
        assert runs == 2 and listing == runs and silent == 0, (what, hour, checks.lines())


async def test_real_data_slices_give_coherent_rows_at_any_hour(shared_data: Path, tmp_path: Path) -> None:
    symbols = _binance_slice(shared_data, tmp_path / "b")
    _multi_slice(shared_data, tmp_path / "m")
    m = import_directory(tmp_path / "m", tmp_path / "m-snap")
    for file in m.files:
        assert file.read == file.kept + file.rejected_total > 0 and file.problem is None
    assert m.coins == 18
    _daily(tmp_path / "m-snap")

    # the report's own path (import in memory, replay, checks, evaluation, markdown and plot)
    start = datetime(2026, 3, 5, tzinfo=UTC)
    report, _ = await dataset_report(
        BINANCE,
        tmp_path / "b",
        step=parse_step("1h"),
        reps=50,
        start=start,
        end=start + timedelta(hours=47),
        log=lambda _: None,
    )
    assert report.runs == 48 and report.imported["coins"] == len(symbols)
    files = report.imported["files"]
    assert {f["format"] for f in files} == {"binance-funding", "binance-open-interest", "binance-klines"}
    assert all(f["read"] == f["kept"] + f["rejected"] > 0 for f in files)
    _assert_coherent(report.checks, "binance 4 h / 8 h")
    table = report.table
    assert {(r["half"], r["horizon"]) for r in table} == {(h, z) for h in ("earlier", "later") for z in ("24h", "7d")}
    assert any(r["group"] == "baseline" and r["n"] > 0 for r in table)
    listed = [r for r in table if r["selection"] == "listed (score > 0)" and r["n"] > 1]
    assert listed and all(r["ci95_low"] <= r["mean_excess_return"] <= r["ci95_high"] for r in listed)
    md = write_validation([report], tmp_path / "docs", command="report").read_text()
    assert "### binance-usdm-2026q1: later half, forward 7d" in md and "## The primary result" in md
    assert (tmp_path / "docs" / f"validation-{BINANCE}.png").read_bytes()[:4] == b"\x89PNG"

    daily_checks = await _replay_checks(tmp_path / "m-snap", datetime(2025, 11, 8, tzinfo=UTC), 48)
    _assert_coherent(daily_checks, "multi-venue, daily samples")


async def test_the_documented_call_lists_coins_on_a_real_market(shared_data: Path) -> None:
    """Issue 21, item 2: on the Binance replay's held-out half (open interest present, every coin),
    the documented call ``limit=20&min_score=4`` lists coins in most runs, and the published bands
    hold shares of the listed coins like those the scale was fitted to (median 2.5, top tenth 5)."""
    from research.analysis import BANDS, documented_call_counts

    start = datetime(2026, 3, 6, 6, tzinfo=UTC)
    _, data = await dataset_report(
        BINANCE, shared_data / BINANCE, step=parse_step("7h"), reps=10, start=start, log=lambda _: None
    )
    median, low, high, none = documented_call_counts(data)
    assert len(data.runs) >= 40 and none <= len(data.runs) // 10 and median >= 10 and high == 20, (median, low, none)
    score = data.score
    listed = score[score > 0]
    shares = [float(((listed >= lo) & (listed < hi)).mean()) for lo, hi, _ in BANDS]
    assert 0.25 <= shares[0] <= 0.65 and 0.05 <= shares[2] + shares[3] <= 0.25, shares
