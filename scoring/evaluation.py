"""Forward returns of selections of (run, coin) pairs: the arithmetic of ``validate --history``
and of the real-data report (``insider-selling report``), pure NumPy.

A *pair* is one coin at one run. Its forward return over ``h`` hours is ``P(T + h) / P(T) - 1``
with ``P(t)`` the coin's price in hour ``t`` (the last price at or before it, as the snapshot
rows carry it). Its *excess* return is that minus the equal-weighted mean return of every coin
with a price at both ends at the same run (the universe). The 95 % confidence interval of a
selection's mean excess return comes from a bootstrap that resamples whole coins (all of a coin's
pairs together, as one coin's overlapping forward windows are not independent draws), and the hit
rate is the share of pairs that did worse than the universe (the score predicts
underperformance).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Pairs", "SelectionStats", "cluster_bootstrap_ci", "difference_ci", "forward_excess", "selection_stats"]

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


def forward_excess(price: F64, pairs: Pairs, hours: int) -> tuple[F64, F64]:
    """``(return, excess)`` per pair over ``hours`` hours; NaN where a price is missing.

    ``price`` is ``(coins, hours)``; the universe of a run is every pair of that run with a
    finite return (equal weights).
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
    sums = np.bincount(pairs.run[valid], weights=ret[valid], minlength=runs)
    counts = np.bincount(pairs.run[valid], minlength=runs)
    with np.errstate(invalid="ignore", divide="ignore"):
        universe = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return ret, ret - universe[pairs.run] if runs else ret


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
        }


def selection_stats(
    selected: B, ret: F64, excess: F64, pairs: Pairs, *, reps: int, rng: np.random.Generator
) -> SelectionStats:
    """Statistics of the selected pairs that have a forward return."""
    sel = selected & np.isfinite(excess)
    x = excess[sel]
    if not x.size:
        nan = float("nan")
        return SelectionStats(0, 0, 0, nan, nan, nan, nan, nan)
    lo, hi = cluster_bootstrap_ci(x, pairs.coin[sel], reps, rng)
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
        )


def difference_ci(
    a: B, b: B, excess: F64, pairs: Pairs, *, reps: int, rng: np.random.Generator, level: float = 0.95
) -> tuple[float, float, float]:
    """Mean excess of selection ``a`` minus that of ``b`` (pairs with a return), with a percentile
    CI from a bootstrap over coins: each draw resamples coins with replacement and recomputes both
    means from the drawn coins' pairs, so the two selections' shared coins move together."""
    ok = np.isfinite(excess)
    a, b = a & ok, b & ok
    if not a.any() or not b.any():
        nan = float("nan")
        return nan, nan, nan
    _, inverse = np.unique(pairs.coin, return_inverse=True)
    k = int(inverse.max()) + 1
    sa = np.bincount(inverse[a], weights=excess[a], minlength=k)
    na = np.bincount(inverse[a], minlength=k).astype(np.float64)
    sb = np.bincount(inverse[b], weights=excess[b], minlength=k)
    nb = np.bincount(inverse[b], minlength=k).astype(np.float64)
    diff = float(excess[a].mean() - excess[b].mean())
    draws = rng.integers(0, k, size=(reps, k))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = sa[draws].sum(axis=1) / na[draws].sum(axis=1) - sb[draws].sum(axis=1) / nb[draws].sum(axis=1)
    boot = boot[np.isfinite(boot)]
    if not boot.size:
        return diff, float("nan"), float("nan")
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(boot, [tail, 100.0 - tail])
    return diff, float(lo), float(hi)
