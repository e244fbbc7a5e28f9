"""One dataset of the real-data report, end to end: import the third-party files, replay them
as if time passed, then evaluate the stored runs (checks, selections, bands, the live track
record) into a :class:`DatasetReport`."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from ingest.importers import import_directory, import_frames
from ingest.snapshot import parse_time, unpack_column
from research.analysis import band_table, coverage, documented_call_counts, evaluate, survivorship
from research.baselines import Calibration
from research.checks import Checks, check_rows, raw_candidates
from research.errors import BacktestError
from research.replay import Replay, backtest, iso, load_replay
from research.scored import ScoredRuns, load_scored_runs
from scoring.config import ModelConfig, load_model_config
from scoring.panel import hour_floor
from scoring.track import WINDOWS as TRACK_WINDOWS
from scoring.track import TrackRecord, summarize

__all__ = ["DatasetReport", "dataset_report"]


@dataclass(slots=True)
class DatasetReport:
    name: str
    source: str
    imported: dict[str, Any]
    runs: int
    first_run: str
    last_run: str
    split: str
    analysed_from: str
    analysed_why: str
    survivorship: str
    bands: list[dict[str, Any]]
    documented_call: tuple[float, int, int, int]
    step_hours: int
    model_version: str
    seconds: dict[str, float]
    checks: Checks
    calibration: Calibration
    table: list[dict[str, Any]]
    coverage: dict[str, dict[str, float]] = field(default_factory=dict)
    #: the live track record of the replayed runs, as the service publishes it (scoring.track)
    track_record: dict[str, Any] = field(default_factory=dict)
    png: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "import": self.imported,
            "runs": self.runs,
            "first_run": self.first_run,
            "last_run": self.last_run,
            "split": self.split,
            "analysed_from": self.analysed_from,
            "analysed_why": self.analysed_why,
            "survivorship": self.survivorship,
            "bands": self.bands,
            "documented_call": dict(
                zip(("median", "min", "max", "runs_listing_none"), self.documented_call, strict=True)
            ),
            "step_hours": self.step_hours,
            "model_version": self.model_version,
            "seconds": self.seconds,
            "checks": {
                "listed_rows": self.checks.listed_rows,
                "nonnegative_funding": self.checks.nonnegative_funding,
                "streak_disagree": self.checks.streak_disagree,
                "runs_with_top3_tie": self.checks.runs_with_top3_tie,
                "runs_with_top3_tie_published": self.checks.runs_with_top3_tie_shown,
                "runs_listing": self.checks.runs_listing,
                "hours": {
                    f"{h:02d}:00": {"runs": r, "listing": n, "silent": q} for h, (r, n, q) in self.checks.hours.items()
                },
                "passed": self.checks.passed,
            },
            "calibration": {
                "score_threshold": self.calibration.score_threshold,
                "funding_72h_threshold_per_8h": self.calibration.funding_threshold * 8,
                "funding_quantile": self.calibration.funding_quantile,
            },
            "coverage": self.coverage,
            "track_record": self.track_record,
            "table": self.table,
            "png": self.png,
        }


def _first_funding(replay: Replay) -> datetime:
    for frame in replay.frames:
        if np.isfinite(unpack_column(frame["funding_rate"])).any():
            return parse_time(frame["at"])
    raise BacktestError("the dataset has no funding rows")


async def dataset_report(
    name: str,
    source: Path,
    work: Path | None = None,
    *,
    step: timedelta = timedelta(hours=7),
    reps: int = 1000,
    seed: int = 0,
    start: datetime | None = None,
    end: datetime | None = None,
    log: Callable[[str], None] = print,
    config: ModelConfig | None = None,
) -> tuple[DatasetReport, ScoredRuns]:
    """Import ``source`` (in memory, or into snapshot files in ``work``), replay it every ``step``
    and evaluate it."""
    from store import open_store

    seconds: dict[str, float] = {}
    log(f"{name}: importing {source} …")
    t0 = time.perf_counter()
    if work is None:  # in memory: the importer's frames go straight to the replay
        imported, coins, frames = await asyncio.to_thread(import_frames, source)
        replay = Replay({c.coin_id: c for c in coins}, frames, [])
        seconds["import"] = time.perf_counter() - t0
    else:  # through the snapshot files, as `import` then `backtest --replay` would
        imported = await asyncio.to_thread(import_directory, source, work, overwrite=True)
        seconds["import"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        replay = await asyncio.to_thread(load_replay, work)
        seconds["load"] = time.perf_counter() - t0
    if not replay.frames:
        raise BacktestError(f"{source}: nothing imported")
    log(
        f"{name}: imported {imported.samples} hourly rows of {imported.coins} coins "
        f"in {seconds['import']:.1f} s" + (f", read back in {seconds['load']:.1f} s" if "load" in seconds else "")
    )
    config = config or load_model_config()
    # the first run has a full funding window: 72 h after the first funding print
    start = start or hour_floor(_first_funding(replay) + timedelta(hours=config.window.funding_hours))
    handle = await open_store(None, f"report-{name}")
    try:
        t0 = time.perf_counter()
        log(f"{name}: replaying a run every {step.total_seconds() / 3600:g} h from {iso(start)} …")
        said = [t0]
        done = [0]

        def progress(result: Any) -> None:  # a line at most every 10 s: a log shows it is alive
            done[0] += 1
            now = time.perf_counter()
            if now - said[0] >= 10.0:
                said[0] = now
                log(f"{name}: {done[0]} runs replayed, the latest at {iso(result.at)}")

        results = await backtest(handle.db, replay, start=start, end=end, step=step, config=config, progress=progress)
        seconds["replay"] = time.perf_counter() - t0
        failed = [r for r in results if r.status != "succeeded"]
        log(
            f"{name}: {len(results)} runs ({len(failed)} failed) from {iso(results[0].at)} to "
            f"{iso(results[-1].at)} in {seconds['replay']:.1f} s"
        )
        t0 = time.perf_counter()
        log(f"{name}: evaluating forward returns and the track record …")
        data = await load_scored_runs(handle.db, frames=replay.frames)
        # the replay's runs realized their windows as the live service does (scoring.track)
        track = TrackRecord(handle.db, reps=reps)
        track_record = {w: summarize(await track.load(w), w, reps=reps, seed=seed)["selections"] for w in TRACK_WINDOWS}
        cal, table, analysed_from, split, why = evaluate(data, reps=reps, seed=seed)
        checks = check_rows(
            data.rows,
            data.run_times,
            data.pairs.run.tolist(),
            candidates=raw_candidates(data, config.gate.min_funding_per_8h),
        )
        seconds["validate"] = time.perf_counter() - t0
    finally:
        await handle.aclose()
    log(f"{name}: evaluated {len(data.rows)} rows in {seconds['validate']:.1f} s")
    report = DatasetReport(
        name=name,
        source=_provenance(source),
        imported=imported.summary(),
        runs=len(data.runs),
        first_run=iso(min(data.run_times)),
        last_run=iso(max(data.run_times)),
        split=iso(split),
        analysed_from=iso(analysed_from),
        analysed_why=why,
        survivorship=survivorship(data),
        bands=band_table(data, reps=reps, seed=seed),
        documented_call=documented_call_counts(data),
        step_hours=int(step.total_seconds() // 3600),
        model_version=config.version,
        seconds={k: round(v, 1) for k, v in seconds.items()},
        checks=checks,
        calibration=cal,
        table=table,
        coverage=coverage(data, split, analysed_from),
        track_record=track_record,
    )
    return report, data


def _provenance(source: Path) -> str:
    """The dataset's ``Source:`` line from the data folder's README, if it has one."""
    readme = source.parent / "README.md"
    if readme.is_file():
        text = readme.read_text(encoding="utf-8", errors="replace")
        at = text.find(f"`{source.name}/`")
        if at >= 0:
            match = re.search(r"^Source:\s*(.+?)(?:\n\s*\n|\Z)", text[at:], flags=re.MULTILINE | re.DOTALL)
            if match:
                return " ".join(match.group(1).split())
    return f"see {readme}"
