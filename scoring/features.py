"""Features per coin, computed from the panels with vectorized NumPy (no per-coin loops).

Every function takes arrays shaped ``(coins, venues, hours)`` or ``(coins, hours)`` and returns
``(coins,)`` arrays. NaN means "no data"; the sub-scores decide what no data is worth. The formulas
are written out in ``docs/methodology.md`` ("Features").
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scoring.config import ModelConfig
from scoring.panel import MarketPanel, OnchainPanel

__all__ = ["Features", "compute_features", "cross_venue_funding", "leave_one_out_quantile"]

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
HOURS_PER_8H = 8.0


def _nanmean(a: F64, axis: int) -> F64:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmean(a, axis=axis), dtype=np.float64)


def _nansum(a: F64, axis: int) -> F64:
    """Sum ignoring NaN, but NaN (not 0) where every value is NaN."""
    present = np.any(~np.isnan(a), axis=axis)
    return np.where(present, np.nansum(a, axis=axis), np.nan)


def _last_valid(a: F64) -> F64:
    """The last non-NaN value along the final axis (NaN when none)."""
    valid = ~np.isnan(a)
    last = a.shape[-1] - 1 - np.argmax(valid[..., ::-1], axis=-1)
    out = np.take_along_axis(a, last[..., None], axis=-1)[..., 0]
    return np.where(valid.any(axis=-1), out, np.nan)


def _first_valid(a: F64) -> F64:
    """The first non-NaN value along the final axis (NaN when none)."""
    valid = ~np.isnan(a)
    first = np.argmax(valid, axis=-1)
    out = np.take_along_axis(a, first[..., None], axis=-1)[..., 0]
    return np.where(valid.any(axis=-1), out, np.nan)


def cross_venue_funding(panel: MarketPanel) -> F64:
    """OI-weighted mean funding per hour across venues, ``(coins, hours)``.

    A venue's weight is its latest known OI in USD over the panel (one weight per coin and venue,
    so the mean does not jump when one venue skips an hour). A venue with no OI data counts with
    the smallest positive weight seen for that coin (1 when the coin has no OI at all), so a venue
    without OI is not ignored. Hours in which no venue printed are NaN.
    """
    fph = panel["funding_per_hour"]
    oi = _last_valid(panel["open_interest_usd"])  # (coins, venues)
    positive = np.where(oi > 0, oi, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        floor = np.nanmin(positive, axis=1, keepdims=True) if oi.shape[1] else oi[:, :1]
    weight = np.where(np.isnan(positive), np.nan_to_num(floor, nan=1.0), positive)
    observed = ~np.isnan(fph)
    w = np.where(observed, weight[:, :, None], 0.0)
    total = w.sum(axis=1)
    num = np.einsum("cvh,cvh->ch", np.where(observed, fph, 0.0), w)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(total > 0, num / total, np.nan)
    return np.asarray(mean, dtype=np.float64)


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
    order = np.argsort(x, axis=0, kind="stable")        # NaN sort last
    s = np.take_along_axis(x, order, axis=0)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n)[:, None].repeat(h, axis=1), axis=0)
    valid = ~np.isnan(x)
    n_valid = valid.sum(axis=0)                         # (hours,)
    m = n_valid[None, :] - valid.astype(np.int64)       # others with data, (coins, hours)
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


def _streak_hours(negative: B, observed: B) -> tuple[F64, B]:
    """Hours from the first negative observation of the current negative run to the last hour,
    and whether the run reaches back to the first hour of the panel (so it may be longer).

    Time-based: with daily samples a streak of three negative days measures about 49 h (from the
    first negative print), not 3. A coin whose last observation is not negative has no streak.
    Hours without an observation neither break nor extend a streak.
    """
    n, hours = negative.shape
    idx = np.arange(hours)
    breaking = observed & ~negative
    last_break = np.where(breaking, idx, -1).max(axis=-1) if hours else np.full(n, -1)
    neg_obs = observed & negative
    after = neg_obs & (idx > last_break[:, None])
    any_after = after.any(axis=-1)
    first_neg = np.where(any_after, np.argmax(after, axis=-1), hours)
    any_obs = observed.any(axis=-1)
    last_obs = np.where(any_obs, hours - 1 - np.argmax(observed[:, ::-1], axis=-1), 0)
    current = neg_obs[np.arange(n), last_obs] & any_obs
    streak = np.where(current, (hours - first_neg).astype(np.float64), 0.0)
    truncated = current & (last_break < 0) & (first_neg == np.argmax(observed, axis=-1))
    return streak, truncated


def _consecutive_negative_days(cross: F64, epoch_hours: npt.NDArray[np.int64]) -> tuple[F64, B]:
    """UTC days with a negative mean of the cross-venue funding, counted back from the run's day.

    Days without any observation are skipped (they neither count nor break the count). Returns
    the count and whether every observed day in the panel was negative (the count may be longer
    than the panel; the pipeline then continues the previous run's count).
    """
    n, hours = cross.shape
    if hours == 0:
        return np.zeros(n), np.zeros(n, dtype=bool)
    day = epoch_hours // 24
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])  # hours are contiguous, ascending
    observed = ~np.isnan(cross)
    counts = np.add.reduceat(observed, starts, axis=1)
    sums = np.add.reduceat(np.where(observed, cross, 0.0), starts, axis=1)
    obs_day = counts > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        neg_day = obs_day & (sums / np.maximum(counts, 1) < 0)
    breaking = obs_day & ~neg_day                                # (coins, days)
    d = breaking.shape[1]
    idx = np.arange(d)
    last_break = np.where(breaking, idx, -1).max(axis=1)
    count = (neg_day & (idx > last_break[:, None])).sum(axis=1).astype(np.float64)
    whole = (last_break < 0) & (count > 0)
    return count, whole


def _oi_change(oi: F64, hours: int) -> F64:
    """Total OI now over total OI ``hours`` earlier, minus 1, over the venues present at both ends.

    ``oi`` is ``(coins, venues, hours)``. Per venue, "now" is its last value in the last ``hours``
    hours and "then" its last value at or before the run's hour minus ``hours``; a venue missing
    either end (not recorded back then, or not reporting now) is left out of both sums, so a venue
    whose OI history starts later cannot show up as OI growth.
    """
    n_hours = oi.shape[-1]
    if n_hours == 0:
        return np.full(oi.shape[0], np.nan)
    now = _last_valid(oi[:, :, -hours:])
    then = _last_valid(oi[:, :, : max(1, n_hours - hours)])
    both = (now > 0) & (then > 0)
    now_sum = np.where(both, now, 0.0).sum(axis=1)
    then_sum = np.where(both, then, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(then_sum > 0, now_sum / then_sum - 1.0, np.nan)


def _taker_imbalance(buy: F64, sell: F64, hours: int) -> F64:
    """Taker sell share minus 0.5 over the last ``hours`` hours, summed over venues."""
    n = buy.shape[0]
    b = _nansum(buy[:, :, -hours:].reshape(n, -1), axis=1) if hours else np.full(n, np.nan)
    s = _nansum(sell[:, :, -hours:].reshape(n, -1), axis=1) if hours else np.full(n, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b + s > 0, s / (b + s) - 0.5, np.nan)


@dataclass(frozen=True, slots=True)
class Features:
    """Per-coin features; every array is ``(coins,)``. Funding levels are decimals per 8 h."""

    avg_funding_72h: F64            # raw OI-weighted cross-venue mean over the window, per 8 h
    idio_funding_72h: F64           # the same after removing the negative market level, per 8 h
    idio_funding_24h: F64           # the last 24 h of it, per 8 h (acceleration)
    funding_recent: F64             # recency-weighted raw cross-venue funding, per 8 h (the gate)
    idio_funding_recent: F64        # recency-weighted idiosyncratic funding, per 8 h (magnitude)
    funding_current: F64            # raw cross-venue funding over the last few hours, per 8 h
    idio_funding_current: F64       # idiosyncratic funding over the last few hours, per 8 h
    market_funding_72h: F64         # the removed market level, per 8 h (<= 0)
    negative_share: F64             # share of observed window hours with negative idio funding
    streak_hours: F64               # current negative (idio) streak, hours
    streak_start_hour: F64          # epoch hour of the streak's first negative print (NaN: none)
    streak_truncated: B             # the streak reaches back to the panel's first observation
    breadth: F64                    # share of venues with a negative idio mean (see methodology)
    venues_observed: F64            # venues with funding in the breadth window
    hours_observed: F64             # hours with funding in the funding window
    consecutive_negative_days: F64
    negative_days_truncated: B      # every observed day in the panel was negative
    oi_change_24h: F64              # fraction, over the venues present at both ends
    oi_change_fast: F64             # the same over the fast window (6 h)
    basis: F64                      # mark / index - 1, mean over venues and the basis window
    taker_sell_imbalance: F64       # sell share - 0.5 over the confirm window (CVD sign)
    taker_sell_imbalance_fast: F64  # the same over the fast window
    long_short_ratio: F64
    long_short_shift: F64           # log ratio, fast window vs before the confirm window, per venue
    price_change_24h: F64           # fraction
    price_change_7d: F64            # fraction
    drawdown_7d: F64                # fraction below the 7 d high
    dex_sell_imbalance: F64
    liquidity_change_24h: F64
    volume_to_liquidity_24h: F64
    holders: F64
    holders_change_pct: F64         # decimal, against the previous succeeded run
    top10_holders_pct: F64
    top10_holders_pct_change: F64   # percentage points, against the previous succeeded run
    insider_share_pct: F64          # max of creator/owner/insider/dev/sniper/bundler shares
    old_wallet_swap_pct_1d: F64


def compute_features(panel: MarketPanel, onchain: OnchainPanel, config: ModelConfig) -> Features:
    w = config.window
    n_coins, _, n_hours = panel.shape
    fw = min(w.funding_hours, n_hours)
    cross = cross_venue_funding(panel)                        # (coins, hours), per hour

    # The market's funding level: each hour, a quantile of the other coins' cross-venue funding.
    # Only its negative part is removed, so ordinary positive carry never makes a coin look
    # negative, and a market-wide dip does not flood the leaderboard.
    level = leave_one_out_quantile(cross, config.funding.market_level_quantile,
                                   config.funding.market_min_coins)
    level = np.minimum(np.nan_to_num(level, nan=0.0), 0.0)
    idio_all = cross - level
    idio = idio_all[:, -fw:]
    window = cross[:, -fw:]

    observed_all = ~np.isnan(idio_all)
    negative_all = observed_all & (idio_all < 0)
    observed = observed_all[:, -fw:]
    n_obs = observed.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        negative_share = np.where(n_obs > 0, negative_all[:, -fw:].sum(axis=1) / n_obs, np.nan)
    streak, streak_truncated = _streak_hours(negative_all, observed_all)
    streak_start = np.where(streak > 0, panel.hours[-1] - streak + 1, np.nan) if n_hours else streak

    # Breadth: per venue, the mean idiosyncratic funding over the breadth window; the share of
    # venues where it is negative. The denominator is at least min(breadth_min_venues, venues in
    # the dataset), so a coin seen on one venue of thirteen cannot show full breadth.
    bw = min(w.breadth_hours, n_hours)
    venue_idio = panel["funding_per_hour"][:, :, -bw:] - level[:, None, -bw:]
    venue_mean = _nanmean(venue_idio, axis=2)                 # (coins, venues)
    venue_seen = ~np.isnan(venue_mean)
    venues_observed = venue_seen.sum(axis=1).astype(np.float64)
    dataset_venues = int(np.any(venue_seen, axis=0).sum())
    denominator = np.maximum(venues_observed, min(config.funding.breadth_min_venues, dataset_venues))
    with np.errstate(invalid="ignore", divide="ignore"):
        breadth = np.where(venues_observed > 0,
                           np.sum(venue_seen & (venue_mean < 0), axis=1) / denominator, np.nan)

    consecutive_days, days_truncated = _consecutive_negative_days(cross, panel.hours)

    cw = min(w.confirm_hours, n_hours)
    fh = min(w.fast_hours, n_hours)
    oi_change = _oi_change(panel["open_interest_usd"], cw)
    oi_change_fast = _oi_change(panel["open_interest_usd"], fh)
    bh = min(w.basis_hours, n_hours)
    with np.errstate(invalid="ignore", divide="ignore"):
        basis_all = panel["mark_price"][:, :, -bh:] / panel["index_price"][:, :, -bh:] - 1.0
    basis = _nanmean(_nanmean(basis_all, axis=2), axis=1)
    taker_imbalance = _taker_imbalance(panel["taker_buy_usd"], panel["taker_sell_usd"], cw)
    taker_imbalance_fast = _taker_imbalance(panel["taker_buy_usd"], panel["taker_sell_usd"], fh)
    ls_all = panel["long_short_ratio"]
    ls = _nanmean(ls_all[:, :, -cw:].reshape(n_coins, -1), axis=1)
    # The shift of crowding: log of the fast-window ratio against the same venues' ratio before
    # the confirm window (a coin's normal long/short level differs by coin and venue).
    with np.errstate(invalid="ignore", divide="ignore"):
        log_ls = np.log(np.where(ls_all > 0, ls_all, np.nan))
    ls_recent_v = _nanmean(log_ls[:, :, -fh:], axis=2) if fh else np.full(ls_all.shape[:2], np.nan)
    ls_base_v = (_nanmean(log_ls[:, :, : n_hours - cw], axis=2) if n_hours > cw
                 else np.full(ls_all.shape[:2], np.nan))
    ls_shift = _nanmean(ls_recent_v - ls_base_v, axis=1)

    price = _nanmean(panel["price"], axis=1)                  # (coins, hours)
    p_now = _last_valid(price)
    # The price 24 h / 7 d before the run; with shorter history, the oldest one available.
    p_24 = _first_valid(price[:, -25:])
    p_7d = _first_valid(price[:, -(24 * w.price_days + 1) :])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        high = np.nanmax(price[:, -24 * w.price_days :], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        change_24h = p_now / p_24 - 1.0
        change_7d = p_now / p_7d - 1.0
        drawdown = np.clip(1.0 - p_now / high, 0.0, 1.0)

    latest, day_ago, prev = onchain.latest, onchain.day_ago, onchain.previous_run
    sell_v = np.where(np.isnan(latest["sell_volume_24h_usd"]), latest["sells_24h"],
                      latest["sell_volume_24h_usd"])
    buy_v = np.where(np.isnan(latest["buy_volume_24h_usd"]), latest["buys_24h"],
                     latest["buy_volume_24h_usd"])
    with np.errstate(invalid="ignore", divide="ignore"):
        dex_imbalance = np.where(buy_v + sell_v > 0, sell_v / (buy_v + sell_v) - 0.5, np.nan)
        liquidity_change = np.where(day_ago["liquidity_usd"] > 0,
                                    latest["liquidity_usd"] / day_ago["liquidity_usd"] - 1.0, np.nan)
        vol_liq = np.where(latest["liquidity_usd"] > 0,
                           latest["volume_24h_usd"] / latest["liquidity_usd"], np.nan)
        holders_change = np.where(prev["holders"] > 0, latest["holders"] / prev["holders"] - 1.0,
                                  np.nan)
    top10_change = latest["top10_holders_pct"] - prev["top10_holders_pct"]
    insider_parts = np.stack([latest[k] for k in ("creator_pct", "owner_pct", "insider_pct",
                                                   "dev_pct", "sniper_pct", "bundler_pct")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        insider_share = np.nanmax(insider_parts, axis=0)

    # Recency weights over the funding window: half-life ``recent_half_life_hours``, normalized
    # over the hours that have data. The 72 h mean lags a fresh streak by a day and a half.
    ch = min(config.funding.current_hours, n_hours) if n_hours else 1
    age = np.arange(fw - 1, -1, -1, dtype=np.float64)
    decay = 0.5 ** (age / config.funding.recent_half_life_hours)
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
        funding_current=_nanmean(window[:, -ch:], axis=1) * HOURS_PER_8H,
        idio_funding_current=_nanmean(idio[:, -ch:], axis=1) * HOURS_PER_8H,
        market_funding_72h=np.asarray(market_level, dtype=np.float64) * HOURS_PER_8H,
        negative_share=negative_share,
        streak_hours=streak,
        streak_start_hour=np.asarray(streak_start, dtype=np.float64),
        streak_truncated=streak_truncated,
        breadth=breadth,
        venues_observed=venues_observed,
        hours_observed=n_obs.astype(np.float64),
        consecutive_negative_days=consecutive_days,
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
