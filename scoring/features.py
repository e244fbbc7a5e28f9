"""Features per coin, computed from the panels with vectorized NumPy (no per-coin loops).

Every function takes arrays shaped ``(coins, venues, hours)`` or ``(coins, hours)`` and returns
``(coins,)`` arrays. NaN means "no data"; the sub-scores decide what no data is worth. The formulas
are written out in ``docs/methodology.md`` ("Features").
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.config import ModelConfig
from scoring.panel import MarketPanel, OnchainPanel

__all__ = [
    "Features",
    "compute_features",
    "cross_venue_funding",
    "day_streak",
    "funding_in_force",
    "leave_one_out_quantile",
]

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
FA = npt.NDArray[np.floating[Any]]
B = npt.NDArray[np.bool_]
HOURS_PER_8H = 8.0


def _nanmean(a: FA, axis: int) -> F64:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmean(a, axis=axis), dtype=np.float64)


def _nansum(a: FA, axis: int) -> F64:
    """Sum ignoring NaN, but NaN (not 0) where every value is NaN."""
    present = np.any(~np.isnan(a), axis=axis)
    return np.where(present, np.nansum(a, axis=axis), np.nan)


def _last_valid(a: FA) -> F64:
    """The last non-NaN value along the final axis (NaN when none)."""
    valid = ~np.isnan(a)
    last = a.shape[-1] - 1 - np.argmax(valid[..., ::-1], axis=-1)
    out = np.take_along_axis(a, last[..., None], axis=-1)[..., 0]
    return np.where(valid.any(axis=-1), out, np.nan)


def _first_valid(a: FA) -> F64:
    """The first non-NaN value along the final axis (NaN when none)."""
    valid = ~np.isnan(a)
    first = np.argmax(valid, axis=-1)
    out = np.take_along_axis(a, first[..., None], axis=-1)[..., 0]
    return np.where(valid.any(axis=-1), out, np.nan)


def funding_in_force(panel: MarketPanel, allowance_hours: float) -> F32:
    """Each venue's funding per hour *in force* at every hour, ``(coins, venues, hours)``.

    The rate in force at hour *h* is the venue's latest print at or before *h*, as long as it is
    younger than the venue's interval plus ``allowance_hours``. The interval is the larger of the
    published funding interval and the spacing of that print from the previous one, so 1 h, 8 h
    and daily *sampled* data all give a value at any run hour, and a venue that stopped printing
    drops out after one interval plus the allowance. Hourly data is returned unchanged.
    """
    fph = panel["funding_per_hour"]
    n_hours = fph.shape[-1]
    if n_hours == 0:
        return fph
    valid = ~np.isnan(fph)
    # Only series with a hole, or whose last print is not in the run's hour, need filling (hourly
    # live data needs none): work on those rows alone.
    count = valid.sum(axis=-1)
    first = np.argmax(valid, axis=-1)
    dense = (count == 0) | (valid[..., -1] & (count == n_hours - first))
    if dense.all():
        return fph
    rows = np.flatnonzero(~dense.ravel())
    flat = fph.reshape(-1, n_hours)
    sub = flat[rows]
    ok = valid.reshape(-1, n_hours)[rows]
    it = np.int16 if n_hours < 2**15 else np.int64
    idx = np.where(ok, np.arange(n_hours, dtype=it), it(-1))
    np.maximum.accumulate(idx, axis=-1, out=idx)  # last print at or before each hour
    at = np.maximum(idx, 0)
    prev = np.take_along_axis(idx, np.maximum(at - 1, 0).astype(it), axis=-1)
    prev[at == 0] = -1
    spacing = np.where(prev >= 0, idx - prev, 0).astype(np.float32)
    interval = np.take_along_axis(panel["funding_interval_hours"].reshape(-1, n_hours)[rows], at, axis=-1)
    limit = np.fmax(np.where(np.isnan(interval), np.float32(1.0), interval), spacing)
    limit += np.float32(allowance_hours)
    age = np.arange(n_hours, dtype=np.float32) - idx
    fresh = (idx >= 0) & (age < limit)
    filled = np.take_along_axis(sub, at, axis=-1)
    filled[~fresh] = np.nan
    out = fph.copy()
    out.reshape(-1, n_hours)[rows] = filled
    return out


def cross_venue_funding(panel: MarketPanel, fph: F32 | None = None, oi_now: FA | None = None) -> F64:
    """OI-weighted mean funding per hour across venues, ``(coins, hours)``.

    ``fph`` is the funding in force (:func:`funding_in_force`; default: the raw prints). A venue's
    weight is its latest known OI in USD over the panel (one weight per coin and venue, so the mean
    does not jump when one venue skips an hour). A venue with no OI data counts with the smallest
    positive weight seen for that coin (1 when the coin has no OI at all), so a venue without OI is
    not ignored. Hours in which no venue has funding in force are NaN.
    """
    if fph is None:
        fph = panel["funding_per_hour"]
    oi = (_last_valid(panel["open_interest_usd"]) if oi_now is None else oi_now).astype(np.float64)  # (coins, venues)
    positive = np.where(oi > 0, oi, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        floor = np.nanmin(positive, axis=1, keepdims=True) if oi.shape[1] else oi[:, :1]
    weight = np.where(np.isnan(positive), np.nan_to_num(floor, nan=1.0), positive)
    # one venue at a time: (coins, hours) temporaries instead of (coins, venues, hours) ones
    n, v, h = fph.shape
    total = np.zeros((n, h))
    num = np.zeros((n, h))
    for j in range(v):
        f = fph[:, j, :]
        seen = ~np.isnan(f)
        if not seen.any():
            continue
        wj = weight[:, j : j + 1]
        num += np.where(seen, f * wj, 0.0)
        total += np.where(seen, wj, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(total > 0, num / total, np.nan)
    return np.asarray(mean, dtype=np.float64)


def _venue_nanmean(values: FA, fallback: FA | None = None) -> F64:
    """Mean over venues (axis 1) ignoring NaN, ``(coins, hours)``; where ``values`` is NaN and a
    ``fallback`` is given, its value is used. One venue at a time (small temporaries)."""
    n, v, h = values.shape
    total = np.zeros((n, h))
    count = np.zeros((n, h))
    for j in range(v):
        x = values[:, j, :]
        if fallback is not None:
            x = np.where(np.isnan(x), fallback[:, j, :], x)
        seen = ~np.isnan(x)
        if not seen.any():
            continue
        total += np.where(seen, x, 0.0)
        count += seen
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def leave_one_out_quantile(x: F64, q: float, min_count: int) -> F64:
    """For every coin and hour, the ``q`` quantile of the *other* coins' values that hour.

    ``x`` is ``(coins, hours)`` with NaN for no data. Leaving the coin itself out makes the
    market level independent of the coin's own funding, so "more negative funding, all else
    equal" can never lower its score through the level. Where fewer than ``min_count`` other coins
    have data the level is NaN (the market cannot be measured from a handful of coins).
    Linear interpolation between order statistics, as ``numpy.quantile``'s default.
    """
    n, h = x.shape
    if n == 0 or h == 0:
        return np.full_like(x, np.nan)
    order = np.argsort(x, axis=0, kind="stable")  # NaN sort last
    s = np.take_along_axis(x, order, axis=0)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n)[:, None].repeat(h, axis=1), axis=0)
    valid = ~np.isnan(x)
    n_valid = valid.sum(axis=0)  # (hours,)
    m = n_valid[None, :] - valid.astype(np.int64)  # others with data, (coins, hours)
    pos = q * np.maximum(m - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    hi = np.minimum(lo + 1, np.maximum(m - 1, 0))

    def pick(j: npt.NDArray[np.int64]) -> F64:
        # the j-th value of the sorted list without the coin itself (skip its own rank)
        k = np.where(valid & (j >= rank), j + 1, j)
        k = np.clip(k, 0, n - 1)
        return np.take_along_axis(s, k, axis=0)

    level = pick(lo) * (1.0 - frac) + pick(hi) * frac
    return np.where(m >= max(min_count, 1), level, np.nan)


def _run_start(negative: B, observed: B) -> npt.NDArray[np.int64]:
    """Index of the first negative observation of the current negative run along the last axis,
    or -1 when the last observation is not negative. Unobserved hours neither break nor extend it.
    """
    n, hours = negative.shape
    if hours == 0:
        return np.full(n, -1, dtype=np.int64)
    idx = np.arange(hours)
    breaking = observed & ~negative
    last_break = np.where(breaking, idx, -1).max(axis=-1)
    after = observed & negative & (idx > last_break[:, None])
    any_after = after.any(axis=-1)
    first_neg = np.argmax(after, axis=-1)
    any_obs = observed.any(axis=-1)
    last_obs = hours - 1 - np.argmax(observed[:, ::-1], axis=-1)
    current = any_obs & any_after & negative[np.arange(n), last_obs] & observed[np.arange(n), last_obs]
    return np.where(current, first_neg, -1).astype(np.int64)


def day_streak(cross: F64, epoch_hours: npt.NDArray[np.int64]) -> tuple[F64, F64, B]:
    """The negative-funding streak by the documented day rule, from the *raw* cross-venue funding.

    - A *complete* UTC day is one before the run's day whose every hour lies in the panel. It is
      negative when the mean of the funding in force over its hours is < 0; a complete day with no
      funding at all breaks the streak.
    - ``consecutive_negative_days`` counts the complete days, back from the day before the run's
      day, up to the first one that is not negative. The run's own day is not complete and never
      counts (nor breaks).
    - ``signal_start_date`` is the first negative hour of the streak's first day; with no complete
      negative day yet, the start of the current run of negative hours, but not before 00:00 of
      the previous day. So the whole days from the start to the run differ from the count by at
      most one.

    Returns the count, the start as an epoch hour (NaN: no streak) and whether the streak reaches
    back to the first complete day of the panel (then it may be longer: the pipeline continues it
    from the previous run).
    """
    n, hours = cross.shape
    if hours == 0:
        return np.zeros(n), np.full(n, np.nan), np.zeros(n, dtype=bool)
    day = epoch_hours // 24
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])  # hours are contiguous, ascending
    n_days = starts.size
    hour_day = np.cumsum(np.r_[False, day[1:] != day[:-1]])  # day index of each hour
    observed = ~np.isnan(cross)
    negative = observed & (cross < 0)
    counts = np.add.reduceat(observed, starts, axis=1)
    sums = np.add.reduceat(np.where(observed, cross, 0.0), starts, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        neg_day = (counts > 0) & (sums / np.maximum(counts, 1) < 0)
    first_complete = 0 if epoch_hours[0] % 24 == 0 else 1
    last_complete = n_days - 2  # the day before the run's day
    n_complete = max(0, last_complete - first_complete + 1)
    k = np.arange(n_days)
    in_range = (k >= first_complete) & (k <= last_complete)
    breaking = in_range[None, :] & ~neg_day
    last_break = np.where(breaking, k, first_complete - 1).max(axis=1)
    count = np.maximum(last_complete - last_break, 0) if n_complete else np.zeros(n, dtype=np.int64)
    truncated = (count >= n_complete) & (count > 0)

    # start: the first negative hour of the streak's first day ...
    first_day = last_complete - count + 1
    on_or_after = negative & (hour_day[None, :] >= first_day[:, None])
    day_start = np.argmax(on_or_after, axis=1)
    # ... or, without a complete negative day, the current run of negative hours (not before
    # 00:00 of the previous day)
    run = _run_start(negative, observed)
    floor = int(starts[n_days - 2]) if n_days >= 2 else 0
    run = np.where(run >= 0, np.maximum(run, floor), -1)
    start_idx = np.where(count > 0, day_start, run)
    start = np.where(start_idx >= 0, epoch_hours[np.maximum(start_idx, 0)].astype(np.float64), np.nan)
    return count.astype(np.float64), start, truncated


def _last_index(a: FA) -> npt.NDArray[np.int16] | npt.NDArray[np.int64]:
    """Per cell, the index of the last non-NaN value at or before it along the last axis (-1:
    none): one pass, then every "last value at or before hour k" is a gather."""
    n_hours = a.shape[-1]
    it = np.int16 if n_hours < 2**15 else np.int64
    idx = np.where(np.isnan(a), it(-1), np.arange(n_hours, dtype=it))
    np.maximum.accumulate(idx, axis=-1, out=idx)
    return idx


def _value_at(a: FA, idx: npt.NDArray[np.integer[Any]]) -> F64:
    """``a`` at per-(coin, venue) hour indices ``idx`` (NaN where idx < 0)."""
    out = np.take_along_axis(a, np.maximum(idx, 0)[..., None].astype(np.intp), axis=-1)[..., 0]
    return np.where(idx >= 0, out, np.nan).astype(np.float64)


def _oi_change(oi: FA, hours: int, last: npt.NDArray[np.integer[Any]] | None = None) -> F64:
    """Total OI now over total OI ``hours`` earlier, minus 1, over the venues present at both ends.

    ``oi`` is ``(coins, venues, hours)``. Per venue, "now" is its last value in the last ``hours``
    hours and "then" its last value at or before the run's hour minus ``hours``; a venue missing
    either end (not recorded back then, or not reporting now) is left out of both sums, so a venue
    whose OI history starts later cannot show up as OI growth. ``last`` is :func:`_last_index`
    of ``oi`` (computed here when not given).
    """
    n_hours = oi.shape[-1]
    if n_hours == 0:
        return np.full(oi.shape[0], np.nan)
    if last is None:
        last = _last_index(oi)
    now_idx = last[:, :, -1]
    now = _value_at(oi, np.where(now_idx >= n_hours - hours, now_idx, -1))
    then = _value_at(oi, last[:, :, max(0, n_hours - hours - 1)])
    both = (now > 0) & (then > 0)
    now_sum = np.where(both, now, 0.0).sum(axis=1)
    then_sum = np.where(both, then, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(then_sum > 0, now_sum / then_sum - 1.0, np.nan).astype(np.float64)


def _taker_imbalance(buy: FA, sell: FA, hours: int) -> F64:
    """Taker sell share minus 0.5 over the last ``hours`` hours, summed over venues."""
    n = buy.shape[0]
    b = _nansum(buy[:, :, -hours:].reshape(n, -1).astype(np.float64), axis=1) if hours else np.full(n, np.nan)
    s = _nansum(sell[:, :, -hours:].reshape(n, -1).astype(np.float64), axis=1) if hours else np.full(n, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b + s > 0, s / (b + s) - 0.5, np.nan)


@dataclass(frozen=True, slots=True)
class Features:
    """Per-coin features; every array is ``(coins,)``. Funding levels are decimals per 8 h."""

    avg_funding_72h: F64  # raw OI-weighted cross-venue mean over the window, per 8 h
    idio_funding_72h: F64  # the same after removing the negative market level, per 8 h
    idio_funding_24h: F64  # the last 24 h of it, per 8 h (acceleration)
    funding_recent: F64  # recency-weighted raw cross-venue funding, per 8 h
    idio_funding_recent: F64  # recency-weighted idiosyncratic funding, per 8 h (magnitude)
    funding_current: F64  # raw cross-venue funding in force at the run, per 8 h (gate)
    idio_funding_current: F64  # the same minus the market level at the run, per 8 h
    market_funding_current: F64  # the removed market level at the run, per 8 h (<= 0)
    market_funding_spread: F64  # robust spread of the other coins' current funding, per 8 h
    market_funding_72h: F64  # the removed market level over the window, per 8 h (<= 0)
    negative_share: F64  # share of observed window hours with negative idio funding
    streak_hours: F64  # hours from signal_start_date to the run (inclusive), 0: none
    streak_start_hour: F64  # epoch hour of signal_start_date (NaN: no streak)
    streak_truncated: B  # the day streak reaches the panel's first complete day
    breadth: F64  # share of venues with a negative idio mean (see methodology)
    venues_observed: F64  # venues with funding in the breadth window
    hours_observed: F64  # hours with funding in the funding window
    consecutive_negative_days: F64  # complete UTC days with a negative raw mean (day rule)
    negative_days_truncated: B  # the same as streak_truncated (one rule, one flag)
    oi_change_24h: F64  # fraction, over the venues present at both ends, net of market
    oi_change_fast: F64  # the same over the fast window, net of market
    basis: F64  # mark / index - 1, mean over venues and the basis window
    taker_sell_imbalance: F64  # sell share - 0.5 over the confirm window, net of market
    taker_sell_imbalance_fast: F64  # the same over the fast window, net of market
    long_short_ratio: F64
    long_short_shift: F64  # log ratio, fast window vs before the confirm window, net of market
    price_change_24h: F64  # fraction
    price_change_7d: F64  # fraction
    drawdown_7d: F64  # fraction below the 7 d high
    dex_sell_imbalance: F64
    liquidity_change_24h: F64
    volume_to_liquidity_24h: F64
    holders: F64
    holders_change_pct: F64  # decimal, against the previous succeeded run
    top10_holders_pct: F64
    top10_holders_pct_change: F64  # percentage points, against the previous succeeded run
    insider_share_pct: F64  # max of creator/owner/insider/dev/sniper/bundler shares
    old_wallet_swap_pct_1d: F64


def _market_level(x: F64, q: float, min_coins: int, side: str) -> F64:
    """The other coins' ``q`` quantile of a per-coin value, only its ``side`` ("pos"/"neg") part:
    the market-wide move in the direction that would confirm a hedge is removed, never the other
    (0 where fewer than ``min_coins`` other coins have data)."""
    level = np.nan_to_num(leave_one_out_quantile(x[:, None], q, min_coins)[:, 0], nan=0.0)
    return np.maximum(level, 0.0) if side == "pos" else np.minimum(level, 0.0)


def _last_at_or_before(a: F64, index: int) -> F64:
    """Per row, the last non-NaN value at or before column ``index`` (NaN when none, or index < 0)."""
    if index < 0:
        return np.full(a.shape[0], np.nan)
    return _last_valid(a[:, : index + 1])


def _clean_onchain(values: dict[str, F64]) -> dict[str, F64]:
    """On-chain inputs: non-finite or negative values are no data."""
    return {k: np.where(np.isfinite(v) & (v >= 0), v, np.nan) for k, v in values.items()}


def compute_features(panel: MarketPanel, onchain: OnchainPanel, config: ModelConfig) -> Features:
    w = config.window
    fc = config.funding
    n_coins, _, n_hours = panel.shape
    fw = min(w.funding_hours, n_hours)
    # The funding in force at every hour (latest print within its interval + the allowance), so a
    # run at any hour sees 1 h, 8 h or daily data alike; one raw series for every funding field.
    fph = funding_in_force(panel, fc.staleness_allowance_hours)
    oi_all = panel["open_interest_usd"]
    oi_last = _last_index(oi_all) if n_hours else np.zeros(oi_all.shape, dtype=np.int16)
    oi_latest = _value_at(oi_all, oi_last[:, :, -1]) if n_hours else np.full(oi_all.shape[:2], np.nan)
    cross = cross_venue_funding(panel, fph, oi_latest)  # (coins, hours), per hour, raw

    # The market's funding level: each hour, a quantile of the other coins' cross-venue funding.
    # Only its negative part is removed, so ordinary positive carry never makes a coin look
    # negative, and a market-wide dip does not flood the leaderboard.
    # (only over the hours that use it: the funding and breadth windows)
    lw = max(fw, min(w.breadth_hours, n_hours))
    level = leave_one_out_quantile(
        cross[:, -lw:] if lw else cross[:, :0], fc.market_level_quantile, fc.market_min_coins
    )
    level = np.minimum(np.nan_to_num(level, nan=0.0), 0.0)
    idio = cross[:, -fw:] - level[:, -fw:] if fw else cross[:, :0]
    window = cross[:, -fw:]

    observed = ~np.isnan(idio)
    n_obs = observed.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        negative_share = np.where(n_obs > 0, (observed & (idio < 0)).sum(axis=1) / n_obs, np.nan)
    # Days, start and streak: one rule on the RAW series (methodology "Day rule").
    days, start_hour, days_truncated = day_streak(cross, panel.hours)
    streak = (
        np.where(np.isnan(start_hour), 0.0, panel.hours[-1] - np.nan_to_num(start_hour) + 1.0)
        if n_hours
        else np.zeros(n_coins)
    )

    # Current funding: the run's hour of the funding in force; the market level and spread of the
    # other coins at the same moment (leave-one-out: a coin's own funding never moves them).
    current = cross[:, -1] if n_hours else np.full(n_coins, np.nan)
    if n_hours:
        q = leave_one_out_quantile(current[:, None], fc.market_level_quantile, fc.market_min_coins)[:, 0]
        q25 = leave_one_out_quantile(current[:, None], 0.25, fc.market_min_coins)[:, 0]
        q75 = leave_one_out_quantile(current[:, None], 0.75, fc.market_min_coins)[:, 0]
        level_now = np.minimum(np.nan_to_num(q, nan=0.0), 0.0)
        spread_now = np.nan_to_num((q75 - q25) / 1.349, nan=0.0)
    else:
        level_now = np.zeros(n_coins)
        spread_now = np.zeros(n_coins)

    # Breadth: per venue, the mean idiosyncratic funding over the breadth window; the share of
    # venues where it is negative. The denominator is at least min(breadth_min_venues, venues in
    # the dataset), so a coin seen on one venue of thirteen cannot show full breadth.
    bw = min(w.breadth_hours, n_hours)
    venue_idio = fph[:, :, -bw:] - level[:, None, -bw:]
    venue_mean = _nanmean(venue_idio, axis=2)  # (coins, venues)
    venue_seen = ~np.isnan(venue_mean)
    venues_observed = venue_seen.sum(axis=1).astype(np.float64)
    dataset_venues = int(np.any(venue_seen, axis=0).sum())
    denominator = np.maximum(venues_observed, min(fc.breadth_min_venues, dataset_venues))
    with np.errstate(invalid="ignore", divide="ignore"):
        breadth = np.where(venues_observed > 0, np.sum(venue_seen & (venue_mean < 0), axis=1) / denominator, np.nan)
    del fph, venue_idio

    cw = min(w.confirm_hours, n_hours)
    fh = min(w.fast_hours, n_hours)
    oi_change = _oi_change(oi_all, cw, oi_last)
    oi_change_fast = _oi_change(oi_all, fh, oi_last)
    del oi_last
    bh = min(w.basis_hours, n_hours)
    with np.errstate(invalid="ignore", divide="ignore"):
        basis_all = panel["mark_price"][:, :, -bh:] / panel["index_price"][:, :, -bh:] - np.float32(1.0)
    basis = _nanmean(_nanmean(basis_all, axis=2), axis=1).astype(np.float64)
    taker_imbalance = _taker_imbalance(panel["taker_buy_usd"], panel["taker_sell_usd"], cw)
    taker_imbalance_fast = _taker_imbalance(panel["taker_buy_usd"], panel["taker_sell_usd"], fh)
    ls_all = panel["long_short_ratio"]
    with_ls = np.flatnonzero(~np.isnan(ls_all).all(axis=(0, 2)))
    ls_all = ls_all[:, with_ls]  # the venues that publish a ratio
    ls = _nanmean(ls_all[:, :, -cw:].reshape(n_coins, -1), axis=1).astype(np.float64)
    # The shift of crowding: log of the fast-window ratio against the same venues' ratio before
    # the confirm window (a coin's normal long/short level differs by coin and venue).
    with np.errstate(invalid="ignore", divide="ignore"):
        log_ls = np.log(np.where(ls_all > 0, ls_all, np.nan))
    ls_recent_v = _nanmean(log_ls[:, :, -fh:], axis=2) if fh else np.full(ls_all.shape[:2], np.nan)
    ls_base_v = _nanmean(log_ls[:, :, : n_hours - cw], axis=2) if n_hours > cw else np.full(ls_all.shape[:2], np.nan)
    ls_shift = _nanmean(ls_recent_v - ls_base_v, axis=1).astype(np.float64)
    del log_ls
    # Market-wide moves of the confirmation inputs are removed as funding's are: the other
    # coins' median, only in the direction that would confirm a hedge (OI up, taker selling,
    # longs thinning), so a market-wide wave or a deleveraging confirms nobody in particular.
    if config.confirmation.market_adjust:
        mq, mn = fc.market_level_quantile, fc.market_min_coins
        oi_change = oi_change - _market_level(oi_change, mq, mn, "pos")
        oi_change_fast = oi_change_fast - _market_level(oi_change_fast, mq, mn, "pos")
        taker_imbalance = taker_imbalance - _market_level(taker_imbalance, mq, mn, "pos")
        taker_imbalance_fast = taker_imbalance_fast - _market_level(taker_imbalance_fast, mq, mn, "pos")
        ls_shift = ls_shift - _market_level(ls_shift, mq, mn, "neg")

    # Price: the last trade, or the mark where a venue has no trade price; the cross-venue mean.
    price = _venue_nanmean(panel["price"], panel["mark_price"])
    p_now = _last_valid(price)
    # The last price at or before T - 24 h and T - 7 d; with shorter history, the oldest one.
    oldest = _first_valid(price)
    p_24 = _last_at_or_before(price, n_hours - 1 - 24)
    p_7d = _last_at_or_before(price, n_hours - 1 - 24 * w.price_days)
    p_24 = np.where(np.isnan(p_24), oldest, p_24)
    p_7d = np.where(np.isnan(p_7d), oldest, p_7d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        high = np.nanmax(price[:, -(24 * w.price_days + 1) :], axis=1) if n_hours else p_now
    with np.errstate(invalid="ignore", divide="ignore"):
        change_24h = (p_now / p_24 - 1.0).astype(np.float64)
        change_7d = (p_now / p_7d - 1.0).astype(np.float64)
        drawdown = np.clip(1.0 - p_now / high, 0.0, 1.0).astype(np.float64)

    latest = _clean_onchain(onchain.latest)
    day_ago = _clean_onchain(onchain.day_ago)
    prev = _clean_onchain(onchain.previous_run)
    sell_v = np.where(np.isnan(latest["sell_volume_24h_usd"]), latest["sells_24h"], latest["sell_volume_24h_usd"])
    buy_v = np.where(np.isnan(latest["buy_volume_24h_usd"]), latest["buys_24h"], latest["buy_volume_24h_usd"])
    with np.errstate(invalid="ignore", divide="ignore"):
        dex_imbalance = np.where(buy_v + sell_v > 0, sell_v / (buy_v + sell_v) - 0.5, np.nan)
        liquidity_change = np.where(
            day_ago["liquidity_usd"] > 0, latest["liquidity_usd"] / day_ago["liquidity_usd"] - 1.0, np.nan
        )
        vol_liq = np.where(latest["liquidity_usd"] > 0, latest["volume_24h_usd"] / latest["liquidity_usd"], np.nan)
        holders_change = np.where(prev["holders"] > 0, latest["holders"] / prev["holders"] - 1.0, np.nan)
    top10_change = latest["top10_holders_pct"] - prev["top10_holders_pct"]
    insider_parts = np.stack(
        [latest[k] for k in ("creator_pct", "owner_pct", "insider_pct", "dev_pct", "sniper_pct", "bundler_pct")]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        insider_share = np.nanmax(insider_parts, axis=0)

    # Recency weights over the funding window: half-life ``recent_half_life_hours``, normalized
    # over the hours that have data. The 72 h mean lags a fresh streak by a day and a half.
    age = np.arange(fw - 1, -1, -1, dtype=np.float64)
    decay = 0.5 ** (age / fc.recent_half_life_hours)
    weights = np.where(observed, decay[None, :], 0.0)
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw_recent = np.where(total > 0, np.einsum("ch,ch->c", np.nan_to_num(window), weights) / total, np.nan)
        idio_recent = np.where(total > 0, np.einsum("ch,ch->c", np.nan_to_num(idio), weights) / total, np.nan)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        market_level = np.nanmean(level[:, -fw:], axis=1) if fw else np.zeros(n_coins)
    return Features(
        avg_funding_72h=_nanmean(window, axis=1) * HOURS_PER_8H,
        idio_funding_72h=_nanmean(idio, axis=1) * HOURS_PER_8H,
        idio_funding_24h=_nanmean(idio[:, -24:], axis=1) * HOURS_PER_8H,
        funding_recent=raw_recent * HOURS_PER_8H,
        idio_funding_recent=idio_recent * HOURS_PER_8H,
        funding_current=current * HOURS_PER_8H,
        idio_funding_current=(current - level_now) * HOURS_PER_8H,
        market_funding_current=level_now * HOURS_PER_8H,
        market_funding_spread=spread_now * HOURS_PER_8H,
        market_funding_72h=np.asarray(market_level, dtype=np.float64) * HOURS_PER_8H,
        negative_share=negative_share,
        streak_hours=np.asarray(streak, dtype=np.float64),
        streak_start_hour=start_hour,
        streak_truncated=days_truncated,
        breadth=breadth,
        venues_observed=venues_observed,
        hours_observed=n_obs.astype(np.float64),
        consecutive_negative_days=days,
        negative_days_truncated=days_truncated,
        oi_change_24h=oi_change,
        oi_change_fast=oi_change_fast,
        basis=basis,
        taker_sell_imbalance=taker_imbalance,
        taker_sell_imbalance_fast=taker_imbalance_fast,
        long_short_ratio=ls,
        long_short_shift=ls_shift,
        price_change_24h=change_24h,
        price_change_7d=change_7d,
        drawdown_7d=drawdown,
        dex_sell_imbalance=dex_imbalance,
        liquidity_change_24h=liquidity_change,
        volume_to_liquidity_24h=vol_liq,
        holders=latest["holders"],
        holders_change_pct=holders_change,
        top10_holders_pct=latest["top10_holders_pct"],
        top10_holders_pct_change=top10_change,
        insider_share_pct=insider_share,
        old_wallet_swap_pct_1d=latest["old_wallet_swap_pct_1d"],
    )
