"""Forward returns of selections of (run, coin) pairs: the arithmetic of ``validate --history``
and of the real-data report (``insider-selling report``), pure NumPy.

A *pair* is one coin at one run. Its forward return over ``h`` hours is ``P(T + h) / P(T) - 1``
with ``P(t)`` the coin's price in hour ``t`` (the last price at or before it, as the snapshot
rows carry it). Its *excess* return is that minus the universe's return at the same run: the
**median** return of every coin with a price at both ends (a few outliers cannot move it); the
equal-weighted mean is kept as a secondary benchmark.

Intervals. Pairs are not independent draws twice over: one coin's overlapping forward windows move
together, and every coin at the same dates shares the market's shocks. The 95 % interval of a
selection's mean therefore comes from a *two-way* (pigeonhole) bootstrap: each draw resamples the
coins with replacement and, independently, blocks of time (one week for 24 h returns, two weeks for
7 d returns, so that most overlapping windows fall in one block), and weighs each pair by how often
its coin and its block were drawn. A difference of two selections uses the same draws for both, so
shared coins and shared dates move together. The coin-only bootstrap of earlier reports is kept
(:func:`cluster_bootstrap_ci`) to show how much narrower it was. The hit rate is the share of pairs
that did worse than the universe (the score predicts underperformance).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "Pairs",
    "SelectionStats",
    "block_hours",
    "cluster_bootstrap_ci",
    "difference_ci",
    "forward_excess",
    "selection_stats",
    "two_way_bootstrap_means",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Pairs:
    """Parallel arrays over (run, coin) pairs: the run index, the coin's row, the run's hour
    (an index into the price matrix's hour axis)."""

    run: I64
    coin: I64
    hour: I64


def block_hours(horizon_hours: int) -> int:
    """The length of the time blocks the bootstrap resamples for a horizon: a week, or two weeks
    for horizons longer than a day (a 7 d window started late in one week ends in the next)."""
    return 168 if horizon_hours <= 24 else 336


def forward_excess(
    price: F64, pairs: Pairs, hours: int, benchmark: Literal["median", "mean"] = "median"
) -> tuple[F64, F64]:
    """``(return, excess)`` per pair over ``hours`` hours; NaN where a price is missing.

    ``price`` is ``(coins, hours)``; the universe of a run is every pair of that run with a
    finite return, and its return is their median (``benchmark="median"``) or equal-weighted mean.
    """
    n_hours = price.shape[1]
    ok = (pairs.hour >= 0) & (pairs.hour + hours < n_hours)
    now = np.where(ok, price[pairs.coin, np.clip(pairs.hour, 0, n_hours - 1)], np.nan)
    later = np.where(ok, price[pairs.coin, np.clip(pairs.hour + hours, 0, n_hours - 1)], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        ret = later / now - 1.0
    ret = np.where(np.isfinite(ret) & (now > 0), ret, np.nan)
    valid = np.isfinite(ret)
    runs = int(pairs.run.max()) + 1 if pairs.run.size else 0
    if not runs:
        return ret, ret
    universe = np.full(runs, np.nan)
    if benchmark == "mean":
        sums = np.bincount(pairs.run[valid], weights=ret[valid], minlength=runs)
        counts = np.bincount(pairs.run[valid], minlength=runs)
        with np.errstate(invalid="ignore", divide="ignore"):
            universe = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    else:
        order = np.lexsort((ret[valid], pairs.run[valid]))
        run_sorted, ret_sorted = pairs.run[valid][order], ret[valid][order]
        starts = np.searchsorted(run_sorted, np.arange(runs), side="left")
        ends = np.searchsorted(run_sorted, np.arange(runs), side="right")
        n = ends - starts
        has = n > 0
        lo_i = starts + (n - 1) // 2
        hi_i = starts + n // 2
        universe[has] = (ret_sorted[lo_i[has]] + ret_sorted[hi_i[has]]) / 2.0
    return ret, ret - universe[pairs.run]


def two_way_bootstrap_means(
    selections: list[B],
    values: F64,
    pairs: Pairs,
    *,
    block: int,
    reps: int,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.float64], int, int]:
    """``(means, coins, blocks)``: per draw (rows) and selection (columns), the weighted mean of
    the selection's finite ``values``, where each draw resamples the coins and the time blocks
    (``block`` hours, counted from the earliest pair) of the union of the selections with
    replacement, independently, and weighs a pair by its coin's count times its block's count.
    A draw in which a selection has no weight gives NaN in that column."""
    ok = np.isfinite(values)
    union = np.zeros(values.size, dtype=bool)
    for sel in selections:
        union |= sel & ok
    if not union.any():
        return np.full((reps, len(selections)), np.nan), 0, 0
    _, coin_idx = np.unique(pairs.coin[union], return_inverse=True)
    blocks = (pairs.hour[union] - pairs.hour[union].min()) // block
    _, block_idx = np.unique(blocks, return_inverse=True)
    kc, kb = int(coin_idx.max()) + 1, int(block_idx.max()) + 1
    wc = rng.multinomial(kc, np.full(kc, 1.0 / kc), size=reps).astype(np.float64)  # (reps, kc)
    wb = rng.multinomial(kb, np.full(kb, 1.0 / kb), size=reps).astype(np.float64)  # (reps, kb)
    v = values[union]
    out = np.empty((reps, len(selections)))
    for j, sel in enumerate(selections):
        m = (sel & ok)[union]
        sums = np.zeros((kc, kb))
        counts = np.zeros((kc, kb))
        np.add.at(sums, (coin_idx[m], block_idx[m]), v[m])
        np.add.at(counts, (coin_idx[m], block_idx[m]), 1.0)
        num = ((wc @ sums) * wb).sum(axis=1)
        den = ((wc @ counts) * wb).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, j] = np.where(den > 0, num / den, np.nan)
    return out, kc, kb


def _percentiles(draws: F64, level: float) -> tuple[float, float]:
    draws = draws[np.isfinite(draws)]
    if not draws.size:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(draws, [tail, 100.0 - tail])
    return float(lo), float(hi)


def cluster_bootstrap_ci(
    values: F64, clusters: I64, reps: int, rng: np.random.Generator, level: float = 0.95
) -> tuple[float, float]:
    """Percentile CI of the mean of ``values``, resampling whole clusters with replacement."""
    if values.size == 0:
        return float("nan"), float("nan")
    _, inverse = np.unique(clusters, return_inverse=True)
    k = int(inverse.max()) + 1
    sums = np.bincount(inverse, weights=values, minlength=k)
    counts = np.bincount(inverse, minlength=k).astype(np.float64)
    if k == 1:
        mean = float(values.mean())
        return mean, mean
    draws = rng.integers(0, k, size=(reps, k))
    means = sums[draws].sum(axis=1) / np.maximum(counts[draws].sum(axis=1), 1.0)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return float(lo), float(hi)


@dataclass(frozen=True, slots=True)
class SelectionStats:
    n: int  # pairs with a forward return
    coins: int
    runs: int
    mean_excess: float  # mean excess return (a fraction)
    ci_low: float
    ci_high: float
    hit_rate: float  # share of pairs below the universe
    mean_return: float
    blocks: int = 0  # time blocks the interval resampled
    coin_ci_low: float = float("nan")  # the coin-only bootstrap's interval, for comparison
    coin_ci_high: float = float("nan")

    @property
    def significant(self) -> bool:
        """The CI excludes zero."""
        return bool(self.n) and (self.ci_high < 0 or self.ci_low > 0)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "coins": self.coins,
            "runs": self.runs,
            "mean_excess_return": self.mean_excess,
            "ci95_low": self.ci_low,
            "ci95_high": self.ci_high,
            "hit_rate": self.hit_rate,
            "mean_return": self.mean_return,
            "blocks": self.blocks,
            "coin_only_ci95_low": self.coin_ci_low,
            "coin_only_ci95_high": self.coin_ci_high,
        }


def selection_stats(
    selected: B,
    ret: F64,
    excess: F64,
    pairs: Pairs,
    *,
    reps: int,
    rng: np.random.Generator,
    block: int = 168,
) -> SelectionStats:
    """Statistics of the selected pairs that have a forward return; the interval from the two-way
    bootstrap over coins and ``block``-hour blocks of time (and the coin-only one beside it)."""
    sel = selected & np.isfinite(excess)
    x = excess[sel]
    if not x.size:
        nan = float("nan")
        return SelectionStats(0, 0, 0, nan, nan, nan, nan, nan)
    draws, _, kb = two_way_bootstrap_means([sel], excess, pairs, block=block, reps=reps, rng=rng)
    lo, hi = _percentiles(draws[:, 0], 0.95)
    coin_lo, coin_hi = cluster_bootstrap_ci(x, pairs.coin[sel], reps, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return SelectionStats(
            n=int(x.size),
            coins=int(np.unique(pairs.coin[sel]).size),
            runs=int(np.unique(pairs.run[sel]).size),
            mean_excess=float(x.mean()),
            ci_low=lo,
            ci_high=hi,
            hit_rate=float(np.mean(x < 0)),
            mean_return=float(ret[sel].mean()),
            blocks=kb,
            coin_ci_low=coin_lo,
            coin_ci_high=coin_hi,
        )


def difference_ci(
    a: B,
    b: B,
    excess: F64,
    pairs: Pairs,
    *,
    reps: int,
    rng: np.random.Generator,
    level: float = 0.95,
    block: int = 168,
) -> tuple[float, float, float]:
    """Mean excess of selection ``a`` minus that of ``b`` (pairs with a return), with a percentile
    interval from the two-way bootstrap: each draw resamples the coins and the time blocks of both
    selections together and recomputes both means from the same draw, so shared coins and shared
    dates move together."""
    ok = np.isfinite(excess)
    a, b = a & ok, b & ok
    if not a.any() or not b.any():
        nan = float("nan")
        return nan, nan, nan
    diff = float(excess[a].mean() - excess[b].mean())
    draws, _, _ = two_way_bootstrap_means([a, b], excess, pairs, block=block, reps=reps, rng=rng)
    lo, hi = _percentiles(draws[:, 0] - draws[:, 1], level)
    return diff, lo, hi
