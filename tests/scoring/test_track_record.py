"""The live track record (scoring.track): written once per closed run and window, from the prices
stored at the time, with the run's model version; and the same figures as the research path."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from research.baselines import Calibration, funding_72h, selections, streak_hours
from research.replay import backtest, export_demo, load_replay, parse_step
from research.scored import load_scored_runs
from scoring.config import load_model_config
from scoring.evaluation import block_hours, forward_excess, selection_stats
from scoring.panel import hour_floor
from scoring.track import WINDOWS, TrackRecord, summarize
from store import open_store

REPS = 200


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("track-demo")
    export_demo(out, coins=16, days=12)
    return out


async def test_the_track_record_of_a_replay_equals_the_report_figures(demo_dir: Path) -> None:
    replay = load_replay(demo_dir)
    handle = await open_store(None, "track-equal")
    try:
        results = await backtest(handle.db, replay, step=parse_step("5h"))
        assert all(r.status == "succeeded" for r in results)
        track = TrackRecord(handle.db)
        data = await load_scored_runs(handle.db, frames=replay.frames)
        run_index = {r["run_id"]: k for k, r in enumerate(data.runs)}
        # the research path: the report's selections, the report's statistics
        f72 = funding_72h(data.funding, data.pairs)
        chosen = selections(data, data.score, f72, streak_hours(data.funding, data.pairs), Calibration(0, 0, 0.5))
        for window, hours in WINDOWS.items():
            records = await track.load(window)
            last = results[-1].at
            closed = [r for r in results if hour_floor(r.at) + timedelta(hours=hours + 1) <= last]
            # every run whose window closed before the last run has exactly one record
            assert [r["run_id"] for r in records] == [r.run_id for r in closed] and records
            live = {row["label"]: row for row in summarize(records, window, reps=REPS)["selections"]}
            ret, excess = forward_excess(data.price, data.pairs, hours)
            tracked = np.isin(data.pairs.run, [run_index[r["run_id"]] for r in records])
            compared = 0
            for _, label, mask in chosen:
                if label not in live:
                    continue
                rng = np.random.default_rng(0)
                research = selection_stats(
                    mask & tracked, ret, excess, data.pairs, reps=REPS, rng=rng, block=block_hours(hours)
                ).as_dict()
                for key, value in research.items():
                    assert live[label][key] == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), (label, key)
                compared += 1
            assert compared == 7  # five bands, listed, top 5
            assert live["listed (score > 0)"]["n"] > 0 and live["top 5 of each run"]["n"] > 0
    finally:
        await handle.aclose()


def _frozen(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(r) for r in records]


async def test_a_stored_track_record_never_changes_when_the_model_version_changes(demo_dir: Path) -> None:
    replay = load_replay(demo_dir)
    config = load_model_config()
    first, last = replay.first + timedelta(hours=72), replay.last
    middle = hour_floor(first + (last - first) / 2)
    handle = await open_store(None, "track-versions")
    try:
        await backtest(handle.db, replay, start=first, end=middle, step=parse_step("6h"), config=config)
        track = TrackRecord(handle.db)
        before = {w: _frozen(await track.load(w)) for w in WINDOWS}
        assert before["24h"] and all(r["model_version"] == config.version for r in before["24h"])
        runs_before = {r["run_id"]: r.get("track") for r in await handle.db["runs"].find({}, {"_id": 0}).to_list()}
        cached = await track.summary("24h")
        assert await track.summary("24h") is cached  # nothing new: the same answer, not recomputed

        later = config.model_copy(update={"version": "track-test-next"})
        await backtest(
            handle.db, replay, start=middle + timedelta(hours=6), end=last, step=parse_step("6h"), config=later
        )
        # the prices are gone afterwards (retention): the open windows close unpriced, and nothing
        # written is recomputed, by this call or the next
        await handle.db["market_snapshots"].delete_many({})
        assert await track.close_windows(last + timedelta(days=30)) > 0
        assert await track.close_windows(last + timedelta(days=31)) == 0
        assert (await track.summary("24h"))["runs"] > cached["runs"]  # new records: recomputed
        after = {w: await track.load(w) for w in WINDOWS}
        for window in WINDOWS:
            kept = {r["run_id"]: r for r in after[window]}
            for record in before[window]:
                assert kept[record["run_id"]] == record  # byte for byte, the old model's version included
        newer = [r for r in after["24h"] if r["run_id"] not in {b["run_id"] for b in before["24h"]}]
        assert newer and {r["model_version"] for r in newer} <= {config.version, "track-test-next"}
        assert any(r["model_version"] == "track-test-next" for r in newer)
        runs_after = {r["run_id"]: r.get("track") for r in await handle.db["runs"].find({}, {"_id": 0}).to_list()}
        for run_id, summary in runs_before.items():
            for window, figures in (summary or {}).items():
                assert runs_after[run_id][window] == figures
        # the figures can be asked for per model version
        only_new = summarize(await track.load("24h", model_version="track-test-next"), "24h", reps=REPS)
        assert only_new["model_versions"] == ["track-test-next"]
    finally:
        await handle.aclose()


async def test_a_window_without_prices_is_recorded_once_as_unpriced(demo_dir: Path) -> None:
    replay = load_replay(demo_dir)
    handle = await open_store(None, "track-unpriced")
    try:
        start = replay.first + timedelta(hours=72)
        results = await backtest(handle.db, replay, start=start, end=start, step=parse_step("6h"))
        await handle.db["market_snapshots"].delete_many({})
        track = TrackRecord(handle.db)
        assert await track.close_windows(results[0].at + timedelta(days=9)) == 2
        records = await track.load("24h")
        assert len(records) == 1 and records[0]["coins"] == 0 and records[0]["coin_ids"] == []
        figures = summarize(records, "24h", reps=REPS)
        assert figures["runs"] == 1 and all(row["n"] == 0 for row in figures["selections"])
        assert await track.close_windows(results[0].at + timedelta(days=10)) == 0
    finally:
        await handle.aclose()
