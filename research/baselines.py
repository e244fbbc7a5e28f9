"""What the model is measured against: baselines that need no model (a negative-funding streak,
72 h funding alone), the thresholds calibrated on the earlier half, and every selection of the
report as a mask over the scored pairs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from research.scored import ScoredRuns
from scoring.evaluation import Pairs

__all__ = [
    "HEAD_TO_HEAD",
    "MIN_COINS",
    "MIN_PAIRS",
    "TOP_N",
    "Calibration",
    "calibrate",
    "funding_72h",
    "selections",
    "streak_hours",
]

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

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


def funding_72h(funding: F64, pairs: Pairs, hours: int = 72, min_hours: int = 24) -> F64:
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


def streak_hours(funding: F64, pairs: Pairs) -> F64:
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
