"""The report's statistics (issue 21, item 1): the universe median as the benchmark, and intervals
from a bootstrap over coins and blocks of time together, which must widen when all coins share the
same dates' shocks (the coin-only bootstrap of earlier reports does not see them)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.evaluation import (
    Pairs,
    block_hours,
    cluster_bootstrap_ci,
    difference_ci,
    forward_excess,
    selection_stats,
    two_way_bootstrap_means,
)


def _panel(coins: int, weeks: int, per_week: int = 7) -> Pairs:
    runs = weeks * per_week
    run = np.repeat(np.arange(runs), coins)
    coin = np.tile(np.arange(coins), runs)
    hour = run * (168 // per_week)
    return Pairs(run.astype(np.int64), coin.astype(np.int64), hour.astype(np.int64))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 9), st.integers(1, 6), st.integers(0, 10_000))
def test_the_median_benchmark_leaves_each_runs_median_excess_at_zero(coins: int, runs: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    hours = 60
    price = np.exp(np.cumsum(rng.normal(0, 0.05, (coins, hours)), axis=1))
    price[rng.random((coins, hours)) < 0.1] = np.nan
    run = np.repeat(np.arange(runs), coins)
    pairs = Pairs(run.astype(np.int64), np.tile(np.arange(coins), runs).astype(np.int64), (run * 5).astype(np.int64))
    _, excess = forward_excess(price, pairs, 24)
    for k in range(runs):
        x = excess[(pairs.run == k) & np.isfinite(excess)]
        if x.size:
            assert abs(float(np.median(x))) < 1e-12
    _, by_mean = forward_excess(price, pairs, 24, benchmark="mean")
    for k in range(runs):
        x = by_mean[(pairs.run == k) & np.isfinite(by_mean)]
        if x.size:
            assert abs(float(x.mean())) < 1e-12


def test_one_outlier_moves_the_mean_benchmark_not_the_median() -> None:
    price = np.ones((5, 30))
    price[:, 25:] = [[1.01], [1.0], [0.99], [1.0], [10.0]]  # coin 4 goes up 900 %
    pairs = Pairs(np.zeros(5, np.int64), np.arange(5, dtype=np.int64), np.full(5, 1, np.int64))
    _, median_excess = forward_excess(price, pairs, 24)
    _, mean_excess = forward_excess(price, pairs, 24, benchmark="mean")
    assert median_excess[1] == 0.0 and abs(median_excess[0] - 0.01) < 1e-12
    assert mean_excess[1] < -1.7  # every ordinary coin "underperforms" the mean by 180 points


def test_shared_date_shocks_widen_the_interval_and_the_coin_only_one_misses_them() -> None:
    rng = np.random.default_rng(7)
    pairs = _panel(coins=60, weeks=12)
    week = pairs.hour // 168
    shock = rng.normal(0, 0.05, 12)[week]  # every selected coin shares its week's shock
    values = shock + rng.normal(0, 0.01, pairs.run.size)
    sel = np.ones(values.size, dtype=bool)
    stats = selection_stats(sel, values, values, pairs, reps=600, rng=rng, block=168)
    two_way = stats.ci_high - stats.ci_low
    coin_only = stats.coin_ci_high - stats.coin_ci_low
    assert stats.blocks == 12
    assert two_way > 4 * coin_only  # the dates, not the coins, carry the uncertainty
    # and the two-way interval is about as wide as the spread of 12 weekly means says it should be
    se = np.std(np.bincount(week, weights=values) / np.bincount(week), ddof=1) / np.sqrt(12)
    assert 2.0 * se < two_way < 6.0 * se


def test_with_one_block_of_time_only_coins_are_resampled() -> None:
    rng = np.random.default_rng(3)
    pairs = _panel(coins=40, weeks=1)
    values = rng.normal(0, 0.02, 40)[pairs.coin] + rng.normal(0, 0.001, pairs.run.size)
    sel = np.ones(values.size, dtype=bool)
    draws, coins, blocks = two_way_bootstrap_means([sel], values, pairs, block=168, reps=2000, rng=rng)
    assert (coins, blocks) == (40, 1)
    lo, hi = np.percentile(draws[:, 0], [2.5, 97.5])
    clo, chi = cluster_bootstrap_ci(values, pairs.coin, 2000, rng)
    assert abs((hi - lo) / (chi - clo) - 1.0) < 0.15


def test_a_difference_moves_shared_dates_together() -> None:
    """Two selections exposed to the same weekly shocks: their difference is narrow, though each
    mean's interval is wide."""
    rng = np.random.default_rng(11)
    pairs = _panel(coins=50, weeks=10)
    shock = rng.normal(0, 0.05, 10)[pairs.hour // 168]
    values = shock + rng.normal(0, 0.01, pairs.run.size) - 0.01 * (pairs.coin < 25)
    a, b = pairs.coin < 25, pairs.coin >= 25
    diff, lo, hi = difference_ci(a, b, values, pairs, reps=600, rng=rng, block=168)
    each = selection_stats(a, values, values, pairs, reps=600, rng=rng, block=168)
    assert lo <= diff <= hi < 0
    assert (hi - lo) * 3 < each.ci_high - each.ci_low


def test_blocks_cover_a_seven_day_window() -> None:
    assert block_hours(24) == 168 and block_hours(168) == 336


def test_the_difference_of_two_selections_and_its_interval() -> None:
    rng = np.random.default_rng(1)
    coins = np.repeat(np.arange(40), 25)
    pairs = Pairs(np.tile(np.arange(25), 40), coins, np.zeros(coins.size, dtype=np.int64))
    excess = rng.normal(0.0, 0.01, coins.size) - 0.02 * (coins < 20)  # coins 0..19 do 2 points worse
    a, b = coins < 20, coins >= 20
    diff, lo, hi = difference_ci(a, b, excess, pairs, reps=400, rng=rng)
    assert diff == excess[a].mean() - excess[b].mean() and lo <= diff <= hi < 0
    same, lo, hi = difference_ci(a, a, excess, pairs, reps=100, rng=rng)
    assert same == lo == hi == 0.0
