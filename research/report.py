"""The real-data report (``insider-selling report --data DIR --out docs/``).

For every dataset folder under ``--data`` (third-party files the importer recognises): import
them into snapshot files, replay them as if time passed (a run every ``--step``, at varied hours),
then measure forward 24 h and 7 d returns in excess of the universe for the model's score buckets
and for baselines that need no model (a negative-funding streak of at least 1, 3 and 5 days;
72 h funding alone). Threshold choices are calibrated on the earlier half of each dataset only,
and both halves are reported. It also checks the published rows for coherence (listed rows with a
non-negative 72 h funding, streak fields that disagree, ties at the top, runs that list nothing at
given hours). Writes ``validation.md``, ``validation.json`` and one PNG per dataset.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ingest.errors import IngestError
from ingest.importers import import_directory, import_frames
from ingest.snapshot import parse_time, unpack_column
from research.commands import (
    HORIZONS,
    BacktestError,
    Replay,
    ScoredRuns,
    backtest,
    load_replay,
    load_scored_runs,
    parse_step,
)
from scoring.config import ModelConfig, load_model_config
from scoring.errors import ScoringError
from scoring.evaluation import (
    Pairs,
    SelectionStats,
    block_hours,
    difference_ci,
    forward_excess,
    selection_stats,
)
from scoring.panel import hour_floor
from scoring.track import WINDOWS as TRACK_WINDOWS
from scoring.track import TrackRecord, summarize

__all__ = [
    "CHECK_HOURS",
    "Checks",
    "DatasetReport",
    "check_rows",
    "dataset_report",
    "raw_candidates",
    "register_calibrate",
    "register_report",
    "write_validation",
]

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

#: Run hours (UTC) at which every replay must list coins.
CHECK_HOURS = (0, 3, 13, 17)
#: Candidate model score thresholds for the calibrated selection (the smallest listed score, then whole points).
SCORE_CANDIDATES = (1e-9, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)
#: Candidate quantiles of 72 h funding (pooled over the earlier half) for the calibrated baseline.
FUNDING_QUANTILES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
#: A calibrated choice needs at least this many pairs and coins on the earlier half.
MIN_PAIRS, MIN_COINS = 30, 5
STREAK_DAYS = (1, 3, 5)
#: The head-to-head of the model and 72 h funding alone: the top N of each run (fixed in advance).
TOP_N = 5
#: Model selection vs 72 h funding alone, compared by the difference of mean excess returns.
HEAD_TO_HEAD = (
    ("score >", "72 h funding: the N"),
    ("score >", "72 h funding <="),
    (f"top {TOP_N} of", f"72 h funding: the {TOP_N} most"),
)


# --- checks ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Checks:
    listed_rows: int = 0
    nonnegative_funding: int = 0  # listed rows with avg_funding_72h >= 0 (or null)
    streak_disagree: int = 0  # listed rows whose day count and start date disagree by > 1 day
    runs: int = 0
    runs_with_top3_tie: int = 0  # runs where two of the top three unrounded scores are equal
    runs_with_top3_tie_shown: int = 0  # ... equal as published (two decimals)
    runs_listing: int = 0
    #: hour -> (runs, runs listing >= 1, runs with a raw-funding candidate that list nothing)
    hours: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        hours_ok = all(runs > 0 and silent == 0 for runs, _, silent in self.hours.values())
        return self.nonnegative_funding == 0 and self.streak_disagree == 0 and self.runs_with_top3_tie == 0 and hours_ok

    def lines(self) -> list[str]:
        out = [
            f"listed rows: {self.listed_rows} in {self.runs} runs",
            f"listed rows with avg_funding_72h >= 0: {self.nonnegative_funding}",
            f"listed rows where consecutive_negative_days and signal_start_date disagree (> 1 day): "
            f"{self.streak_disagree}",
            f"runs with a tie among the top three scores (unrounded, the order): {self.runs_with_top3_tie}; "
            f"equal at the published two decimals: {self.runs_with_top3_tie_shown}",
        ]
        out.append(f"runs listing coins: {self.runs_listing} of {self.runs}")
        for hour in sorted(self.hours):
            runs, listing, silent = self.hours[hour]
            out.append(
                f"runs at {hour:02d}:00 UTC: {runs}, listing coins: {listing}; listing nothing although a "
                f"coin's raw funding (in force and 72 h mean) was below the floor: {silent}"
                + ("" if runs else " (no run at this hour: use a --step coprime with 24)")
            )
        out.extend(f"example: {e}" for e in self.examples[:6])
        return out


def _whole_days(start: str, updated: str) -> int:
    return math.floor((parse_time(updated) - parse_time(start)).total_seconds() / 86400.0)


def check_rows(
    rows: Sequence[dict[str, Any]],
    run_times: Sequence[datetime],
    run_of_row: Sequence[int],
    hours: Sequence[int] = CHECK_HOURS,
    candidates: Sequence[int] | None = None,
) -> Checks:
    """The coherence checks of the published rows (``rows``: score documents of every coin;
    ``run_of_row``: each row's index into ``run_times``; ``candidates``: per run, the coins whose
    raw funding in force and 72 h mean funding are both below the gate's floor, see
    :func:`raw_candidates`). A run that lists nothing counts against an hour only when it had
    such a candidate: an empty board is right when no coin has negative funding."""
    checks = Checks(runs=len(run_times))
    listed_by_run: dict[int, list[tuple[float, float]]] = {}
    for row, k in zip(rows, run_of_row, strict=True):
        score = row.get("score") or 0.0
        if score <= 0:
            continue
        checks.listed_rows += 1
        exact = row.get("score_exact")
        listed_by_run.setdefault(k, []).append((float(exact if exact is not None else score), float(score)))
        funding = row.get("avg_funding_72h")
        if funding is None or not funding < 0:
            checks.nonnegative_funding += 1
            checks.examples.append(f"{row['coin_id']} at {row.get('updated_at')}: avg_funding_72h {funding}")
        days = int(row.get("consecutive_negative_days") or 0)
        start, updated = row.get("signal_start_date"), row.get("updated_at")
        if not start or not updated or abs(_whole_days(start, updated) - days) > 1:
            checks.streak_disagree += 1
            checks.examples.append(f"{row['coin_id']} at {updated}: {days} days, start {start}")
    for k, scores in listed_by_run.items():
        top = sorted(scores, reverse=True)[:3]
        if len({exact for exact, _ in top}) < len(top):
            checks.runs_with_top3_tie += 1
            checks.examples.append(f"run at {run_times[k]:%Y-%m-%dT%H}Z: top three unrounded {[e for e, _ in top]}")
        if len({shown for _, shown in top}) < len(top):
            checks.runs_with_top3_tie_shown += 1
    checks.runs_listing = len(listed_by_run)
    for hour in hours:
        at_hour = [k for k, t in enumerate(run_times) if t.hour == hour]
        silent = [k for k in at_hour if not listed_by_run.get(k) and (candidates is None or candidates[k] > 0)]
        checks.hours[hour] = (len(at_hour), sum(1 for k in at_hour if listed_by_run.get(k)), len(silent))
        checks.examples.extend(f"run at {run_times[k]:%Y-%m-%dT%H}Z listed nothing" for k in silent[:2])
    return checks


def raw_candidates(data: ScoredRuns, floor_per_8h: float) -> list[int]:
    """Per run, the coins whose raw cross-venue funding in force at the run hour and whose 72 h
    mean are both below ``-floor_per_8h`` (the model's gate needs at least that)."""
    f72 = _funding_72h(data.funding, data.pairs)
    t = np.clip(data.pairs.hour, 0, data.funding.shape[1] - 1)
    now = data.funding[data.pairs.coin, t]
    floor = -floor_per_8h / 8.0
    with np.errstate(invalid="ignore"):
        ok = (f72 < floor) & (now < floor)
    return [int(x) for x in np.bincount(data.pairs.run[ok], minlength=len(data.runs))]


# --- baselines and selections ----------------------------------------------------------------


def _funding_72h(funding: F64, pairs: Pairs, hours: int = 72, min_hours: int = 24) -> F64:
    """Mean raw funding per hour over the ``hours`` hours ending at each pair's run hour."""
    obs = ~np.isnan(funding)
    csum = np.concatenate([np.zeros((funding.shape[0], 1)), np.cumsum(np.where(obs, funding, 0.0), axis=1)], axis=1)
    ccnt = np.concatenate([np.zeros((funding.shape[0], 1)), np.cumsum(obs, axis=1)], axis=1)
    t = np.clip(pairs.hour, 0, funding.shape[1] - 1) + 1
    lo = np.clip(t - hours, 0, None)
    total = csum[pairs.coin, t] - csum[pairs.coin, lo]
    count = ccnt[pairs.coin, t] - ccnt[pairs.coin, lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count >= min_hours, total / count, np.nan)


def _streak_hours(funding: F64, pairs: Pairs) -> F64:
    """Hours since the last non-negative funding hour, for pairs whose latest funding (at or
    before the run hour) is negative; 0 otherwise. Hours without funding neither break nor extend."""
    n, h = funding.shape
    idx = np.broadcast_to(np.arange(h), (n, h))
    obs = ~np.isnan(funding)
    last_obs = np.maximum.accumulate(np.where(obs, idx, -1), axis=1)
    last_nonneg = np.maximum.accumulate(np.where(obs & (funding >= 0), idx, -1), axis=1)
    first_obs = np.where(obs.any(axis=1), np.argmax(obs, axis=1), h)
    t = np.clip(pairs.hour, 0, h - 1)
    lo = last_obs[pairs.coin, t]
    current = (lo >= 0) & (funding[pairs.coin, np.maximum(lo, 0)] < 0)
    since = np.where(last_nonneg[pairs.coin, t] >= 0, last_nonneg[pairs.coin, t], first_obs[pairs.coin] - 1)
    return np.where(current, (t - since).astype(np.float64), 0.0)


def _per_run_rank(values: F64, pairs: Pairs) -> F64:
    """Rank of each pair's value within its run, 0 = lowest (NaN values rank last)."""
    order = np.lexsort((np.where(np.isnan(values), np.inf, values), pairs.run))
    ranks = np.empty(values.size, dtype=np.float64)
    run_sorted = pairs.run[order]
    starts = np.flatnonzero(np.r_[True, run_sorted[1:] != run_sorted[:-1]])
    first = np.repeat(starts, np.diff(np.r_[starts, run_sorted.size]))
    ranks[order] = np.arange(values.size) - first
    return ranks


@dataclass(slots=True)
class Calibration:
    score_threshold: float
    funding_threshold: float  # per hour
    funding_quantile: float


def _best(candidates: Sequence[tuple[float, B]], excess: F64, coins: npt.NDArray[np.int64]) -> int:
    """Index of the candidate selection with the lowest mean excess (enough pairs and coins)."""
    best, best_mean = 0, math.inf
    for i, (_, sel) in enumerate(candidates):
        ok = sel & np.isfinite(excess)
        if ok.sum() < MIN_PAIRS or np.unique(coins[ok]).size < MIN_COINS:
            continue
        mean = float(excess[ok].mean())
        if mean < best_mean:
            best, best_mean = i, mean
    return best


def calibrate(score: F64, f72: F64, excess24: F64, earlier: B, pairs: Pairs) -> Calibration:
    """Threshold choices on the earlier half only, by the 24 h mean excess return."""
    s_cands = [(c, earlier & (score >= c)) for c in SCORE_CANDIDATES]
    s_pick = SCORE_CANDIDATES[_best(s_cands, excess24, pairs.coin)]
    pool = f72[earlier & np.isfinite(f72)]
    if pool.size:
        values = [float(np.quantile(pool, q)) for q in FUNDING_QUANTILES]
    else:
        values = [0.0 for _ in FUNDING_QUANTILES]
    f_cands = [(v, earlier & (f72 <= v)) for v in values]
    i = _best(f_cands, excess24, pairs.coin)
    return Calibration(s_pick, values[i], FUNDING_QUANTILES[i])


def selections(data: ScoredRuns, score: F64, f72: F64, streak: F64, cal: Calibration) -> list[tuple[str, str, B]]:
    """``(group, label, mask)`` for the model's buckets and the baselines."""
    listed = score > 0
    listed_count = np.bincount(data.pairs.run[listed], minlength=len(data.runs))
    rank = _per_run_rank(f72, data.pairs)
    has_f = np.isfinite(f72)
    per_run = np.bincount(data.pairs.run[has_f], minlength=len(data.runs))
    fifth = rank < np.ceil(per_run[data.pairs.run] / 5.0)
    exact = np.array([float(r.get("score_exact") or r.get("score") or 0.0) for r in data.rows])
    model_rank = _per_run_rank(np.where(listed, -exact, np.nan), data.pairs)
    out: list[tuple[str, str, B]] = [
        ("model", "not listed (score 0)", ~listed),
        ("model", "listed (score > 0)", listed),
        ("model", "score (0, 2.5)", listed & (score < 2.5)),
        ("model", "score [2.5, 5)", (score >= 2.5) & (score < 5)),
        ("model", "score [5, 7.5)", (score >= 5) & (score < 7.5)),
        ("model", "score [7.5, 10]", score >= 7.5),
        (
            "model",
            (f"score >= {cal.score_threshold:.2g}" if cal.score_threshold >= 0.01 else "score > 0") + " (calibrated)",
            score >= cal.score_threshold,
        ),
        ("model", f"top {TOP_N} of each run", listed & (model_rank < TOP_N)),
    ]
    out += [("baseline", f"negative-funding streak >= {d} d", streak >= 24 * d) for d in STREAK_DAYS]
    out += [
        ("baseline", "72 h funding: most negative fifth of each run", has_f & fifth),
        ("baseline", f"72 h funding: the {TOP_N} most negative of each run", has_f & (f72 < 0) & (rank < TOP_N)),
        (
            "baseline",
            "72 h funding: the N most negative (N = model's listed count)",
            has_f & (rank < listed_count[data.pairs.run]),
        ),
        (
            "baseline",
            f"72 h funding <= {cal.funding_threshold * 8 * 100:.3f} %/8 h (q{cal.funding_quantile:g}, calibrated)",
            has_f & (f72 <= cal.funding_threshold),
        ),
    ]
    return out


# --- one dataset -----------------------------------------------------------------------------


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


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _first_funding(replay: Replay) -> datetime:
    for frame in replay.frames:
        if np.isfinite(unpack_column(frame["funding_rate"])).any():
            return parse_time(frame["at"])
    raise BacktestError("the dataset has no funding rows")


def survivorship(data: ScoredRuns) -> str:
    """What the dataset says about coins that stopped trading: the count whose prices end more than
    a day before the dataset's last price (delisted, or a gap), out of all coins with prices."""
    has = np.isfinite(data.price)
    priced = has.any(axis=1)
    if not priced.any():
        return "no prices: survivorship cannot be judged"
    last = np.where(priced, data.price.shape[1] - 1 - np.argmax(has[:, ::-1], axis=1), -1)
    end = int(last.max())
    stopped = int(((last >= 0) & (last < end - 24)).sum())
    return (
        f"{stopped} of {int(priced.sum())} coins with prices stop trading more than a day before the data end. "
        "The source lists the symbols it collected at the end of its window, so coins delisted before then "
        "(the tail a short signal targets) are likely missing: treat the figures as survivors only."
    )


def coverage(data: ScoredRuns, split: datetime, start: datetime | None = None) -> dict[str, dict[str, float]]:
    """Per half, the median per run of coins scored, with funding, with OI, with a price, listed
    (the earlier half from ``start``, the first analysed run)."""
    t = np.clip(data.pairs.hour, 0, data.price.shape[1] - 1)
    has = {
        "coins": np.ones(t.size, dtype=bool),
        "with funding": np.isfinite(data.funding[data.pairs.coin, t]),
        "with open interest": data.has_oi[data.pairs.coin, t],
        "with a price": np.isfinite(data.price[data.pairs.coin, t]),
        "listed": data.score > 0,
    }
    later = np.array([data.run_times[k] >= split for k in range(len(data.runs))])
    analysed = np.array([start is None or data.run_times[k] >= start for k in range(len(data.runs))])
    out: dict[str, dict[str, float]] = {}
    for half, runs in (("earlier", analysed & ~later), ("later", later)):
        out[half] = {
            name: float(np.median(np.bincount(data.pairs.run[mask], minlength=len(data.runs))[runs]))
            if runs.any()
            else 0.0
            for name, mask in has.items()
        }
    return out


#: The one comparison declared before the data were looked at, per dataset: the model's top 5 of
#: each run against the top 5 by 72 h funding alone, 7 d forward, on the later (held-out) half.
PRIMARY = ("later", "7d", f"top {TOP_N} of", f"72 h funding: the {TOP_N} most")
#: The analysed runs start where open interest covers at least this share of the priced coins (so
#: calibration and test see the same inputs); a dataset without open interest is analysed whole.
OI_COVERAGE = 0.5
#: Fewer independent blocks of time than this and the primary result says its interval is too narrow.
MIN_BLOCKS = 5


def inputs_start(data: ScoredRuns) -> tuple[int, str]:
    """Index of the first run whose priced coins have open interest for at least
    :data:`OI_COVERAGE` of them, and why; 0 when no run has open interest at all."""
    t = np.clip(data.pairs.hour, 0, data.price.shape[1] - 1)
    runs = len(data.runs)
    priced = np.bincount(data.pairs.run[np.isfinite(data.price[data.pairs.coin, t])], minlength=runs)
    with_oi = np.bincount(data.pairs.run[data.has_oi[data.pairs.coin, t]], minlength=runs)
    if not with_oi.any():
        return 0, "no open interest in the dataset: every run is analysed (both halves without it)"
    for k in sorted(range(runs), key=lambda i: data.run_times[i]):
        if priced[k] and with_oi[k] >= OI_COVERAGE * priced[k]:
            return int(k), (
                f"open interest covers {OI_COVERAGE:.0%} of the priced coins from this run on: earlier runs are "
                "left out, so the calibrated and the tested model see the same inputs"
            )
    return 0, "open interest never covers half the priced coins: every run is analysed"


def analysis_window(data: ScoredRuns) -> tuple[datetime, datetime, str]:
    """``(first analysed run, split, why that start)``: the runs from :func:`inputs_start`, split
    in the middle into the earlier (calibration) and the later (held-out) half."""
    start_run, why = inputs_start(data)
    first, last = data.run_times[start_run], max(data.run_times)
    return first, hour_floor(first + (last - first) / 2), why


#: Where the published bands fall among the listed coins of real data (the earlier half of the
#: analysed runs, with the live service's inputs): the median listed coin reads 2.5, the top tenth
#: 5 and the top hundredth 7.5; above that the score bends toward 10 without reaching it.
SCALE_TARGETS = ((0.5, 2.5), (0.9, 5.0), (0.99, 7.5))
#: The documented call (the seed's example): ``limit=20&min_score=4``.
DOCUMENTED_CALL = (20, 4.0)
#: The published score bands.
BANDS = ((0.0, 2.5, "(0, 2.5)"), (2.5, 5.0, "[2.5, 5)"), (5.0, 7.5, "[5, 7.5)"), (7.5, 10.01, "[7.5, 10]"))


def fit_scale(data: ScoredRuns) -> tuple[tuple[float, ...], tuple[float, ...], str]:
    """The scale's knots from replayed runs scored *without* a scale (the score is then the
    composite): the composite's quantiles of :data:`SCALE_TARGETS` among the listed coins of the
    earlier half of the analysed runs, and where that was."""
    first, split, _ = analysis_window(data)
    earlier = np.array([first <= data.run_times[k] < split for k in range(len(data.runs))])
    composite = data.score
    listed = composite[(composite > 0) & earlier[data.pairs.run]]
    if listed.size < 100:
        raise BacktestError(f"only {listed.size} listed scores in the calibration half: too few to fit a scale")
    raw = tuple(round(float(np.quantile(listed, q)), 4) for q, _ in SCALE_TARGETS)
    if any(b <= a for a, b in pairwise((0.0, *raw))):
        raise BacktestError(f"the listed scores' quantiles {raw} are not strictly increasing")
    where = f"{_iso(first)} .. {_iso(split)}, {listed.size} listed scores"
    return (0.0, *raw), (0.0, *(t for _, t in SCALE_TARGETS)), where


def documented_call_counts(data: ScoredRuns) -> tuple[float, int, int, int]:
    """Per run, how many coins the documented call (``limit=20&min_score=4``) lists: ``(median,
    min, max, runs listing none)``."""
    limit, floor = DOCUMENTED_CALL
    counts = np.minimum(np.bincount(data.pairs.run[data.score >= floor], minlength=len(data.runs)), limit)
    if not counts.size:
        return 0.0, 0, 0, 0
    return float(np.median(counts)), int(counts.min()), int(counts.max()), int((counts == 0).sum())


def band_table(data: ScoredRuns, *, reps: int, seed: int) -> list[dict[str, Any]]:
    """Each published score band on the held-out half: its share of the listed pairs, and the
    realized 24 h and 7 d excess returns (vs the universe median) with two-way intervals."""
    _, split, _ = analysis_window(data)
    split_hour = int(split.timestamp()) // 3600 - data.hour0
    later = data.pairs.hour >= split_hour
    score = data.score
    listed = (score > 0) & later
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for lo, hi, label in BANDS:
        band = listed & (score >= lo) & (score < hi) & (score > 0)
        row: dict[str, Any] = {
            "band": label,
            "pairs": int(band.sum()),
            "share_of_listed": float(band.sum() / max(int(listed.sum()), 1)),
        }
        for name, hours in HORIZONS:
            ret, excess = forward_excess(data.price, data.pairs, hours)
            stats = selection_stats(band, ret, excess, data.pairs, reps=reps, rng=rng, block=block_hours(hours))
            row[name] = {"n": stats.n, "mean_excess": stats.mean_excess, "ci95": [stats.ci_low, stats.ci_high]}
        rows.append(row)
    return rows


def evaluate(
    data: ScoredRuns, *, reps: int, seed: int
) -> tuple[Calibration, list[dict[str, Any]], datetime, datetime, str]:
    """Calibrate on the earlier half and measure every selection on both halves: ``(calibration,
    table, start, split, why the start)``. The analysed runs start where the inputs are complete
    (:func:`inputs_start`); the halves split them in the middle."""
    score = data.score
    f72 = _funding_72h(data.funding, data.pairs)
    streak = _streak_hours(data.funding, data.pairs)
    first, split, why = analysis_window(data)
    start_hour = int(first.timestamp()) // 3600 - data.hour0
    split_hour = int(split.timestamp()) // 3600 - data.hour0
    returns = {name: forward_excess(data.price, data.pairs, h) for name, h in HORIZONS}
    by_mean = {name: forward_excess(data.price, data.pairs, h, benchmark="mean")[1] for name, h in HORIZONS}
    analysed = data.pairs.hour >= start_hour
    halves = {
        # purged: an earlier-half pair counts only if its forward window ends by the split
        name: (analysed & (data.pairs.hour + h <= split_hour), data.pairs.hour >= split_hour)
        for name, h in HORIZONS
    }
    cal = calibrate(score, f72, returns["24h"][1], halves["24h"][0], data.pairs)
    rng = np.random.default_rng(seed)
    table: list[dict[str, Any]] = []
    chosen = selections(data, score, f72, streak, cal)
    masks = {label: mask for _, label, mask in chosen}
    for half_index, half in enumerate(("earlier", "later")):
        for name, hours in HORIZONS:
            ret, excess = returns[name]
            block = block_hours(hours)
            in_half = halves[name][half_index]
            for group, label, mask in chosen:
                sel = mask & in_half
                stats: SelectionStats = selection_stats(sel, ret, excess, data.pairs, reps=reps, rng=rng, block=block)
                mean_bench = by_mean[name][sel & np.isfinite(by_mean[name])]
                table.append(
                    {
                        "half": half,
                        "horizon": name,
                        "group": group,
                        "selection": label,
                        **stats.as_dict(),
                        "mean_excess_vs_universe_mean": float(mean_bench.mean()) if mean_bench.size else math.nan,
                        "significant": stats.significant,
                    }
                )
            for model_prefix, rival_prefix in HEAD_TO_HEAD:
                model = next(label for label in masks if label.startswith(model_prefix))
                rival = next(label for label in masks if label.startswith(rival_prefix))
                diff, lo, hi = difference_ci(
                    masks[model] & in_half, masks[rival] & in_half, excess, data.pairs, reps=reps, rng=rng, block=block
                )
                primary = (half, name, model_prefix, rival_prefix) == PRIMARY
                table.append(
                    {
                        "half": half,
                        "horizon": name,
                        "group": "comparison",
                        "selection": model,
                        "versus": rival,
                        "difference": diff,
                        "ci95_low": lo,
                        "ci95_high": hi,
                        "primary": primary,
                    }
                )
    return cal, table, first, split, why


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
        log(f"{name}: replaying a run every {step.total_seconds() / 3600:g} h from {_iso(start)} …")
        said = [t0]
        done = [0]

        def progress(result: Any) -> None:  # a line at most every 10 s: a log shows it is alive
            done[0] += 1
            now = time.perf_counter()
            if now - said[0] >= 10.0:
                said[0] = now
                log(f"{name}: {done[0]} runs replayed, the latest at {_iso(result.at)}")

        results = await backtest(handle.db, replay, start=start, end=end, step=step, config=config, progress=progress)
        seconds["replay"] = time.perf_counter() - t0
        failed = [r for r in results if r.status != "succeeded"]
        log(
            f"{name}: {len(results)} runs ({len(failed)} failed) from {_iso(results[0].at)} to "
            f"{_iso(results[-1].at)} in {seconds['replay']:.1f} s"
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
        first_run=_iso(min(data.run_times)),
        last_run=_iso(max(data.run_times)),
        split=_iso(split),
        analysed_from=_iso(analysed_from),
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


# --- writing ---------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return "—" if x != x else f"{x * 100:+.2f}%"


def _ci(low: float, high: float) -> str:
    return f"[{_pct(low)}, {_pct(high)}]"


def _table_md(report: DatasetReport, half: str, horizon: str) -> list[str]:
    lines = [
        "| selection | n | coins | runs | mean excess (vs median) | 95 % CI (coins × time blocks) "
        "| coin-only CI (earlier method) | mean excess (vs mean) | hit rate |",
        "|---|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for row in report.table:
        if row["half"] != half or row["horizon"] != horizon or row["group"] == "comparison":
            continue
        label = row["selection"] if row["group"] == "model" else f"*baseline:* {row['selection']}"
        hit = "—" if row["hit_rate"] != row["hit_rate"] else f"{row['hit_rate']:.2f}"
        lines.append(
            f"| {label} | {row['n']} | {row['coins']} | {row['runs']} | {_pct(row['mean_excess_return'])} | "
            f"{_ci(row['ci95_low'], row['ci95_high'])} | {_ci(row['coin_only_ci95_low'], row['coin_only_ci95_high'])} "
            f"| {_pct(row.get('mean_excess_vs_universe_mean', math.nan))} | {hit} |"
        )
    return lines


def primary_row(report: DatasetReport) -> dict[str, Any] | None:
    for row in report.table:
        if row["group"] == "comparison" and row.get("primary"):
            return row
    return None


def primary_line(report: DatasetReport) -> str:
    """The pre-declared comparison's result in one sentence, whatever it is."""
    half, horizon, model_label, rival_label = PRIMARY
    row = primary_row(report)
    model = _by_label(report, half, horizon, model_label)
    rival = _by_label(report, half, horizon, rival_label)
    if (
        row is None
        or model is None
        or rival is None
        or not model["n"]
        or not rival["n"]
        or row["difference"] != row["difference"]
    ):
        return f"`{report.name}`: **no result** — the held-out half has no 7 d forward returns for both selections."
    lo, hi = row["ci95_low"], row["ci95_high"]
    if hi < 0:
        verdict = "**the model's picks did worse than funding alone's beyond noise: an edge beyond 72 h funding**"
    elif lo > 0:
        verdict = "**the model's picks did better than funding alone's: no edge (funding alone picked weaker coins)**"
    else:
        verdict = "**no edge: the difference from 72 h funding alone is within noise**"
    return (
        f"`{report.name}`: {verdict}. Held-out half, 7 d forward excess return (vs the universe median): model top "
        f"{TOP_N} {_pct(model['mean_excess_return'])} {_ci(model['ci95_low'], model['ci95_high'])} (n {model['n']}), "
        f"72 h funding top {TOP_N} {_pct(rival['mean_excess_return'])} {_ci(rival['ci95_low'], rival['ci95_high'])} "
        f"(n {rival['n']}); model minus funding {_pct(row['difference'])} {_ci(lo, hi)}, "
        f"{model['blocks']} two-week block(s) of time"
        + (
            f" — too few for any interval to carry the market's shared shocks (at least {MIN_BLOCKS} are needed): "
            "these intervals are too narrow, and no conclusion in either direction is supported."
            if model["blocks"] < MIN_BLOCKS
            else "."
        )
    )


def interval_widths(report: DatasetReport) -> list[str]:
    """The same selections' interval widths, the coin-only bootstrap (earlier reports) against the
    two-way one: median ratio per half and horizon."""
    lines = ["| half | horizon | rows | median width, coin-only | median width, coins × time | median ratio |"]
    lines.append("|---|---|---:|---:|---:|---:|")
    for half in ("earlier", "later"):
        for horizon, _ in HORIZONS:
            old, new = [], []
            for row in report.table:
                if row["half"] != half or row["horizon"] != horizon or row["group"] == "comparison":
                    continue
                a = row["coin_only_ci95_high"] - row["coin_only_ci95_low"]
                b = row["ci95_high"] - row["ci95_low"]
                if a == a and b == b and a > 0:
                    old.append(a)
                    new.append(b)
            if not old:
                lines.append(f"| {half} | {horizon} | 0 | — | — | — |")
                continue
            ratio = float(np.median(np.array(new) / np.array(old)))
            lines.append(
                f"| {half} | {horizon} | {len(old)} | {float(np.median(old)) * 100:.2f} points "
                f"| {float(np.median(new)) * 100:.2f} points | {ratio:.2f}× |"
            )
    return lines


def _verdict_line(row: dict[str, Any] | None) -> str:
    if row is None or not row["n"]:
        return "no pairs"
    m, lo, hi = row["mean_excess_return"], row["ci95_low"], row["ci95_high"]
    if hi < 0:
        word = "underperformed the universe (CI below 0)"
    elif lo > 0:
        word = "OUTperformed the universe (CI above 0: the wrong direction)"
    else:
        word = "no edge (CI includes 0)"
    return f"{_pct(m)} [{_pct(lo)}, {_pct(hi)}], hit rate {row['hit_rate']:.2f}, n {row['n']}: {word}"


def _by_label(report: DatasetReport, half: str, horizon: str, label: str) -> dict[str, Any] | None:
    for row in report.table:
        if (
            row["half"] == half
            and row["horizon"] == horizon
            and row["group"] != "comparison"
            and row["selection"].startswith(label)
        ):
            return row
    return None


def _comparisons_md(report: DatasetReport, half: str, horizon: str) -> list[str]:
    lines = ["| model selection | versus (72 h funding alone) | model minus baseline | 95 % CI |", "|---|---|---:|---|"]
    for row in report.table:
        if row["half"] == half and row["horizon"] == horizon and row["group"] == "comparison":
            ci = f"[{_pct(row['ci95_low'])}, {_pct(row['ci95_high'])}]"
            label = ("**primary:** " if row.get("primary") else "") + row["selection"]
            lines.append(f"| {label} | {row['versus']} | {_pct(row['difference'])} | {ci} |")
    return lines


def findings(report: DatasetReport) -> list[str]:
    """Plain statements from the numbers: each half and horizon, the model next to the baselines
    that were fixed in advance (same-size 72 h funding ranking, the funding cut-off calibrated on
    the earlier half, a 3-day streak), then a verdict on the later half (out of sample)."""
    out = []
    for half in ("earlier", "later"):
        for horizon, _ in HORIZONS:
            parts = []
            for title, label in (
                ("model, listed", "listed"),
                ("model, calibrated", "score >"),
                ("72 h funding, same count", "72 h funding: the N"),
                ("72 h funding, calibrated", "72 h funding <="),
                (f"model, top {TOP_N}", f"top {TOP_N} of"),
                (f"72 h funding, top {TOP_N}", f"72 h funding: the {TOP_N} most"),
                ("streak >= 3 d", "negative-funding streak >= 3"),
            ):
                parts.append(f"{title}: {_verdict_line(_by_label(report, half, horizon, label))}")
            out.append(f"{half} half, {horizon} — " + "; ".join(parts) + ".")
    for horizon, _ in HORIZONS:
        for row in report.table:
            if row["half"] != "later" or row["horizon"] != horizon or row["group"] != "comparison":
                continue
            model = _by_label(report, "later", horizon, row["selection"])
            if model is None or not model["n"] or row["difference"] != row["difference"]:
                out.append(
                    f"Verdict, later half, {horizon}, {row['selection']} vs {row['versus']}: nothing to compare."
                )
                continue
            below = model["ci95_high"] < 0
            alone = "underperformed the universe" if below else "did not underperform the universe beyond noise"
            if row["ci95_high"] < 0 and below:
                versus = "and did worse than 72 h funding alone beyond noise: an edge beyond funding"
            elif row["ci95_high"] < 0:
                versus = "though its picks did worse than 72 h funding alone's beyond noise: no demonstrated edge"
            elif row["ci95_low"] > 0:
                versus = (
                    "and did BETTER than 72 h funding alone (funding alone picked the weaker coins): "
                    "no edge beyond funding"
                )
            else:
                versus = "and the difference from 72 h funding alone is within noise: no edge beyond funding"
            out.append(
                f"Verdict, later half (out of sample), {horizon}: model {row['selection']} {alone}, {versus} "
                f"(model minus {row['versus']}: {_pct(row['difference'])} "
                f"[{_pct(row['ci95_low'])}, {_pct(row['ci95_high'])}])."
            )
    return out


def plot_dataset(report: DatasetReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(HORIZONS), figsize=(14, 10))
    for i, half in enumerate(("earlier", "later")):
        for j, (horizon, _) in enumerate(HORIZONS):
            ax = axes[i][j]
            rows = [
                r for r in report.table if r["half"] == half and r["horizon"] == horizon and r["group"] != "comparison"
            ]
            y = np.arange(len(rows))[::-1]
            mean = np.array([r["mean_excess_return"] for r in rows]) * 100
            lo = np.array([r["ci95_low"] for r in rows]) * 100
            hi = np.array([r["ci95_high"] for r in rows]) * 100
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                err = np.vstack([np.nan_to_num(np.maximum(mean - lo, 0)), np.nan_to_num(np.maximum(hi - mean, 0))])
            colors = ["#b5473a" if r["group"] == "model" else "#4a6fa5" for r in rows]
            ax.barh(y, np.nan_to_num(mean), xerr=err, color=colors, capsize=3)
            ax.axvline(0.0, color="black", linewidth=0.8)
            ax.set_yticks(y, [f"{r['selection']} (n={r['n']})" for r in rows], fontsize=7)
            ax.set_title(f"{half} half: forward {horizon} excess return, % (95 % CI)", fontsize=9)
    fig.suptitle(f"{report.name}: model (red) vs baselines (blue), model {report.model_version}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def render_markdown(reports: Sequence[DatasetReport], *, command: str, generated: datetime) -> str:
    lines = [
        "# Validation on real data",
        "",
        f"Generated by `{command}` on {generated:%Y-%m-%d %H:%M} UTC. Do not edit by hand: rerun the command.",
        "",
        "## The primary result",
        "",
        f"One comparison per dataset was declared before the data were looked at: the model's top {TOP_N} of "
        f"each run against the top {TOP_N} by 72 h funding alone, 7 d forward excess return, on the held-out "
        "later half. Everything after this section is exploratory: many selections, horizons and halves, "
        "with no correction for multiple comparisons, so no single interval there that excludes 0 is evidence.",
        "",
    ]
    lines += [f"- {primary_line(r)}" for r in reports]
    lines += ["", "Survivorship:", ""]
    lines += [f"- `{r.name}`: {r.survivorship}" for r in reports]
    lines += [
        "",
        "## Method",
        "",
        "- Each dataset folder is imported with `insider-selling import` (hourly snapshot rows; a value fills "
        "the hours after it was published, never before), then replayed with the model as if time passed: "
        "one run every step, starting 72 h after the first funding print. The step is coprime with 24, so "
        "runs fall on every hour of the day.",
        "- A pair is one coin at one run. Its forward return over 24 h or 7 d uses the coin's last price at or "
        "before each end; its excess return subtracts the **median** return of every coin with prices at "
        "that run (the universe), so a few outliers cannot move the benchmark; the excess over the "
        "equal-weighted mean is a secondary column. A negative excess return is what the score predicts.",
        "- 95 % intervals come from a two-way bootstrap (1000 draws) that resamples coins and blocks of time "
        "(one week for 24 h returns, two weeks for 7 d returns) together: one coin's overlapping windows "
        "and all coins' shared dates are not independent draws. The coin-only bootstrap of earlier reports "
        "is shown beside it, and the widths of both are compared for the same selections. With few blocks of "
        "time (the block count is given) even the two-way interval is optimistic. Hit rate: the share of "
        "pairs that did worse than the universe.",
        "- Baselines need no model: a negative-funding streak of at least 1, 3 or 5 days (hours since the "
        "last non-negative hourly cross-venue funding), and ranking by the mean raw funding of the last 72 h.",
        "- Same inputs on both halves: the analysed runs start where open interest covers at least "
        f"{OI_COVERAGE:.0%} of the priced coins (a dataset without open interest is analysed whole), and the "
        "halves split the analysed runs in the middle.",
        "- Calibration: the two threshold choices (the model's score cut-off and the 72 h funding cut-off) "
        "are picked on the earlier half only, by the lowest mean 24 h excess return with at least "
        f"{MIN_PAIRS} pairs and {MIN_COINS} coins, and then applied unchanged to both halves. An earlier-half "
        "pair counts only if its forward window ends before the split (no overlap with the later half).",
        "",
    ]
    for r in reports:
        imp = r.imported
        lines += [f"## `{r.name}`", "", f"Source: {r.source}", ""]
        lines += ["Import (rows read / kept / rejected, with reasons):", ""]
        for f in imp["files"]:
            reasons = "; ".join(f"{k}: {v}" for k, v in f["reasons"].items()) or "none"
            lines.append(
                f"- `{Path(f['path']).name}` ({f['format']}): {f['read']} / {f['kept']} / {f['rejected']} "
                f"— {reasons}" + (f" — {f['problem']}" if f["problem"] else "")
            )
        lines += [f"- {imp['samples']} hourly market rows, {imp['coins']} coins, {imp['first']} .. {imp['last']}", ""]
        lines += [
            f"Replay: {r.runs} runs every {r.step_hours} h, {r.first_run} .. {r.last_run}, model "
            f"`{r.model_version}`; analysed from {r.analysed_from} ({r.analysed_why}); halves split at {r.split}.",
            "",
            f"Survivorship: {r.survivorship}",
            "",
        ]
        for half, cov in r.coverage.items():
            lines.append(f"- {half} half, median per run: " + ", ".join(f"{v:g} {k}" for k, v in cov.items()))
        lines += [
            "",
            f"Wall time: import {r.seconds.get('import', 0):.1f} s"
            + (f", reading the snapshot files {r.seconds['load']:.1f} s" if "load" in r.seconds else "")
            + f", replay {r.seconds.get('replay', 0):.1f} s, "
            f"validation {r.seconds.get('validate', 0):.1f} s (2-core shared machine).",
            "",
            "Checks of the published rows:",
            "",
        ]
        lines += [f"- {line}" for line in r.checks.lines()]
        cut = r.calibration.score_threshold
        lines += [
            "",
            f"Calibrated on the earlier half: model score {f'>= {cut:.2g}' if cut >= 0.01 else '> 0'}; "
            f"72 h funding <= {r.calibration.funding_threshold * 8 * 100:.4f} % per 8 h "
            f"(the {r.calibration.funding_quantile:g} quantile).",
            "",
        ]
        med, lo, hi, none = r.documented_call
        lines += [
            f"The documented call (`limit={DOCUMENTED_CALL[0]}&min_score={DOCUMENTED_CALL[1]:g}`) lists, per run: "
            f"median {med:g}, min {lo}, max {hi} coins; {none} of {r.runs} runs list none.",
            "",
            f"### {r.name}: score bands on the held-out half",
            "",
            "| band | share of listed pairs | 24 h excess (vs median) | 95 % CI | 7 d excess (vs median) | 95 % CI |",
            "|---|---:|---:|---|---:|---|",
        ]
        for band in r.bands:
            day, week = band["24h"], band["7d"]
            lines.append(
                f"| {band['band']} | {band['share_of_listed'] * 100:.1f} % ({band['pairs']}) | "
                f"{_pct(day['mean_excess'])} | {_ci(*day['ci95'])} | "
                f"{_pct(week['mean_excess'])} | {_ci(*week['ci95'])} |"
            )
        lines.append("")
        for half in ("earlier", "later"):
            for horizon, _ in HORIZONS:
                lines += [f"### {r.name}: {half} half, forward {horizon} (exploratory)", ""]
                lines += _table_md(r, half, horizon)
                lines += [
                    "",
                    "Head to head (the difference of mean excess returns, two-way bootstrap; "
                    "negative: the model's picks did worse, as it predicts; **primary** marks the pre-declared one):",
                    "",
                ]
                lines += _comparisons_md(r, half, horizon)
                lines.append("")
        if r.png:
            lines += [f"![{r.name}]({r.png})", ""]
        lines += [
            "Interval widths for the same selections, the coin-only bootstrap against coins × time blocks:",
            "",
        ]
        lines += interval_widths(r)
        lines += ["", "What this dataset shows (exploratory, uncorrected for multiple comparisons):", ""]
        lines += [f"- {line}" for line in findings(r)]
        lines.append("")
    return "\n".join(lines)


def write_validation(reports: Sequence[DatasetReport], out: Path, *, command: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for r in reports:
        r.png = f"validation-{r.name}.png"
        plot_dataset(r, out / r.png)
    md = render_markdown(reports, command=command, generated=datetime.now(UTC))
    path = out / "validation.md"
    path.write_text(md + "\n")
    (out / "validation.json").write_text(
        json.dumps([r.as_dict() for r in reports], indent=1, default=str, allow_nan=True) + "\n"
    )
    return path


# --- CLI -------------------------------------------------------------------------------------


def _datasets(data: Path, only: Sequence[str] | None) -> list[Path]:
    if not data.is_dir():
        raise BacktestError(f"{data}: no such data directory")
    found = sorted(
        p
        for p in data.iterdir()
        if p.is_dir() and any(c.name.lower().endswith((".csv", ".csv.gz")) for c in p.iterdir())
    )
    if only:
        found = [p for p in found if p.name in only]
        missing = set(only) - {p.name for p in found}
        if missing:
            raise BacktestError(f"no dataset folder named {sorted(missing)} in {data}")
    if not found:
        raise BacktestError(f"{data}: no dataset folders with .csv/.csv.gz files")
    return found


async def run_report(args: argparse.Namespace) -> int:
    step = parse_step(args.step)
    command = "insider-selling report --data " + str(args.data) + " --out " + str(args.out)
    if args.step != "7h":
        command += f" --step {args.step}"
    reports: list[DatasetReport] = []
    for folder in _datasets(args.data, args.dataset):
        work = None if args.work is None else args.work / folder.name
        report, _ = await dataset_report(
            folder.name, folder, work, step=step, reps=args.reps, seed=args.seed, log=lambda m: print(m, flush=True)
        )
        reports.append(report)
        print(f"== {folder.name}: checks {'passed' if report.checks.passed else 'FAILED'}")
        for line in report.checks.lines():
            print(f"   {line}")
        for line in findings(report):
            print(f"   {line}")
    path = write_validation(reports, args.out, command=command)
    print(f"wrote {path}, validation.json and {', '.join(r.png for r in reports)}")
    return 0 if all(r.checks.passed for r in reports) else 1


async def run_calibrate(args: argparse.Namespace) -> int:
    """Replay one dataset scored without a scale, fit the scale's knots, and print them as the
    ``[scale]`` section of ``scoring/model.toml``, with the documented call's listing counts under
    the current and the fitted scale."""
    step = parse_step(args.step)
    (folder,) = _datasets(args.data, [args.dataset])
    unscaled = load_model_config(scale={})
    current = load_model_config()
    _, data = await dataset_report(
        folder.name, folder, None, step=step, reps=10, log=lambda m: print(m, file=sys.stderr), config=unscaled
    )
    raw, score, where = fit_scale(data)
    fitted = load_model_config(scale={"raw": list(raw), "score": list(score)})
    from scoring.model import published_scale

    composite = data.score
    counts: dict[str, tuple[float, int, int, int]] = {}
    for name, cfg in (("unscaled", unscaled), ("current", current), ("fitted", fitted)):
        scaled = np.where(
            composite > 0, published_scale(composite, cfg.scale.raw, cfg.scale.score, cfg.composite.cap), 0.0
        )
        rows = [{**row, "score": float(v)} for row, v in zip(data.rows, scaled, strict=True)]
        counts[name] = documented_call_counts(dataclasses.replace(data, rows=rows))
    for name, (med, lo, hi, none) in counts.items():
        print(
            f"# documented call, {name} scale: median {med:g}, min {lo}, max {hi} coins per run; "
            f"{none} of {len(data.runs)} runs list none",
            file=sys.stderr,
        )
    print("[scale]")
    print(f"raw = [{', '.join(f'{x:g}' for x in raw)}]")
    print(f"score = [{', '.join(f'{x:g}' for x in score)}]")
    print(f'fitted_on = "{folder.name}, {where}"')
    return 0


def _calibrate_command(args: argparse.Namespace, settings: Any) -> int:
    try:
        return asyncio.run(run_calibrate(args))
    except (ScoringError, IngestError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def register_calibrate(sub: Any) -> None:
    cal = sub.add_parser(
        "calibrate",
        help="fit the published score scale on a real dataset's earlier half; prints the [scale] section",
    )
    cal.add_argument("--data", type=Path, required=True, metavar="DIR", help="a folder of dataset folders")
    cal.add_argument("--dataset", required=True, metavar="NAME", help="the dataset folder to fit on")
    cal.add_argument("--step", default="7h", help="time between runs (default 7h)")
    cal.set_defaults(handler=_calibrate_command)


def _report_command(args: argparse.Namespace, settings: Any) -> int:
    try:
        return asyncio.run(run_report(args))
    except (ScoringError, IngestError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def register_report(sub: Any) -> None:
    rep = sub.add_parser(
        "report",
        help="the real-data report: import -> replay -> forward returns by score "
        "bucket vs baselines, both halves; writes validation.md/.json and PNGs",
    )
    rep.add_argument(
        "--data", type=Path, required=True, metavar="DIR", help="a folder of dataset folders (e.g. ../shared/data)"
    )
    rep.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write (e.g. docs/)")
    rep.add_argument("--step", default="7h", help="time between runs (default 7h: every hour of the day)")
    rep.add_argument("--dataset", action="append", metavar="NAME", help="only this dataset folder (repeatable)")
    rep.add_argument(
        "--work", type=Path, metavar="DIR", help="import through snapshot files in DIR/<dataset> (default: in memory)"
    )
    rep.add_argument("--reps", type=int, default=1000, help="bootstrap draws (default 1000)")
    rep.add_argument("--seed", type=int, default=0, help="seed of the bootstrap draws (default 0)")
    rep.set_defaults(handler=_report_command)
