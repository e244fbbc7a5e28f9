"""The statistics of the real-data report: which runs are analysed and where they split, the
survivorship and coverage statements, the published bands on the held-out half, the documented
call's listing counts, the fitted scale, and every selection measured on both halves."""

from __future__ import annotations

import math
from datetime import datetime
from itertools import pairwise
from typing import Any

import numpy as np

from research.baselines import HEAD_TO_HEAD, TOP_N, Calibration, calibrate, funding_72h, selections, streak_hours
from research.errors import BacktestError
from research.replay import iso
from research.scored import HORIZONS, ScoredRuns
from scoring.evaluation import SelectionStats, block_hours, difference_ci, forward_excess, selection_stats
from scoring.panel import hour_floor

__all__ = [
    "BANDS",
    "DOCUMENTED_CALL",
    "MIN_BLOCKS",
    "OI_COVERAGE",
    "PRIMARY",
    "analysis_window",
    "band_table",
    "coverage",
    "documented_call_counts",
    "evaluate",
    "fit_scale",
    "inputs_start",
    "survivorship",
]

#: The one comparison declared before the data were looked at, per dataset: the model's top 5 of
#: each run against the top 5 by 72 h funding alone, 7 d forward, on the later (held-out) half.
PRIMARY = ("later", "7d", f"top {TOP_N} of", f"72 h funding: the {TOP_N} most")

#: The analysed runs start where open interest covers at least this share of the priced coins (so
#: calibration and test see the same inputs); a dataset without open interest is analysed whole.
OI_COVERAGE = 0.5

#: Fewer independent blocks of time than this and the primary result says its interval is too narrow.
MIN_BLOCKS = 5

#: Where the published bands fall among the listed coins of real data (the earlier half of the
#: analysed runs, with the live service's inputs): the median listed coin reads 2.5, the top tenth
#: 5 and the top hundredth 7.5; above that the score bends toward 10 without reaching it.
SCALE_TARGETS = ((0.5, 2.5), (0.9, 5.0), (0.99, 7.5))

#: The documented call (the seed's example): ``limit=20&min_score=4``.
DOCUMENTED_CALL = (20, 4.0)

#: The published score bands.
BANDS = ((0.0, 2.5, "(0, 2.5)"), (2.5, 5.0, "[2.5, 5)"), (5.0, 7.5, "[5, 7.5)"), (7.5, 10.01, "[7.5, 10]"))


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
    where = f"{iso(first)} .. {iso(split)}, {listed.size} listed scores"
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
    f72 = funding_72h(data.funding, data.pairs)
    streak = streak_hours(data.funding, data.pairs)
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
