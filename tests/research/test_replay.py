"""The backtest round trip: export demo data in the snapshot file format, replay it as if time
passed (storing every run), then report forward returns by score bucket (table + PNG)."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import timedelta
from pathlib import Path

import pytest

from ingest.files import read_snapshots
from insider_selling.cli import main
from research.errors import BacktestError
from research.history import history_report
from research.replay import backtest, export_demo, load_replay, parse_step
from scoring.contract import COIN_FIELDS
from scoring.runs import RunStore
from tests.helpers import OpenStore


def test_round_trip_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snap, out = tmp_path / "snap", tmp_path / "report"
    assert main(["export-demo", "--out", str(snap), "--coins", "24", "--days", "10"]) == 0
    assert len(list(snap.glob("*.jsonl"))) == 11  # one file per UTC day touched
    coins, market, onchain = read_snapshots(snap)
    assert len(coins) == 24 and market and onchain
    assert main(["validate", "--history", "--replay", str(snap), "--step", "12h", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| 24h | 0 (not listed) |" in printed and "| 7d | [7.5, 10] |" in printed
    report = json.loads((out / "history.json").read_text())
    assert report["runs"] == 14  # first sample + 72 h .. the last, every 12 h
    assert (out / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "history.md").read_text().startswith("Forward returns by score bucket")
    # every listed row of every run, with every public field of the contract
    with gzip.open(out / "scores.csv.gz", "rt", newline="") as f:
        scores = list(csv.DictReader(f))
    assert list(scores[0]) == ["run_id", "run_at", "model_version", *COIN_FIELDS]
    assert len(scores) == report["listed_rows"] > 0
    assert len({r["run_id"] for r in scores}) <= 14 and all(float(r["score"]) > 0 for r in scores)
    assert all(r["updated_at"] == r["run_at"] for r in scores)
    rows = {(r["horizon"], r["bucket"]): r for r in report["table"]}
    assert sum(r["n"] for (h, _), r in rows.items() if h == "24h") > 0
    for r in report["table"]:
        if r["n"] > 1:
            assert r["ci95_low"] <= r["mean_excess_return"] <= r["ci95_high"]
            assert 0.0 <= r["hit_rate"] <= 1.0


async def test_backtest_never_sees_the_future(tmp_path: Path, open_stores: OpenStore) -> None:
    export_demo(tmp_path, coins=12, days=5)
    replay = load_replay(tmp_path)
    handle = await open_stores()
    results = await backtest(handle.db, replay, step=parse_step("1d"))
    assert [r.status for r in results] == ["succeeded"] * len(results) and len(results) == 2
    runs = await RunStore(handle.db).succeeded_runs()
    assert [r["at"] for r in runs] == [r.at for r in results]
    # replay again, stopping early: the store holds nothing later than the last run
    handle2 = await open_stores()
    first = replay.first + timedelta(hours=72)
    await backtest(handle2.db, replay, start=first, end=first, step=parse_step("1h"))
    latest = await handle2.db["market_snapshots"].find_one({}, sort=[("at", -1)])
    assert latest["at"] <= first
    report = await history_report(handle.db)
    assert report["runs"] == 2


def test_bad_arguments_are_clear(tmp_path: Path) -> None:
    with pytest.raises(BacktestError):
        parse_step("fortnight")
    assert main(["backtest", "--replay", str(tmp_path / "nothing")]) == 2
