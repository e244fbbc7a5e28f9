"""Features per coin, computed from the panels with vectorized NumPy (no per-coin loops).

Every function takes arrays shaped ``(coins, venues, hours)`` or ``(coins,)`` and returns ``(coins,)``
arrays. NaN means "no data"; the sub-scores decide what no data is worth.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scoring.config import ModelConfig
from scoring.panel import MarketPanel, OnchainPanel

__all__ = ["Features", "compute_features"]

F64 = npt.NDArray[np.float64]


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


def _cross_venue_funding(panel: MarketPanel) -> F64:
    """OI-weighted mean funding per hour across venues, ``(coins, hours)``.

    A venue's weight is its latest known OI in USD; venues with no OI count with the smallest
    positive weight seen for that coin, so a venue without OI data is not ignored.
    """
    fph = panel["funding_per_hour"]
    oi = _last_valid(panel["open_interest_usd"])  # (coins, venues)
    floor = np.nanmin(np.where(oi > 0, oi, np.nan), axis=1, keepdims=True) if oi.size else oi
    weight = np.where(np.isnan(oi) | (oi <= 0), np.nan_to_num(floor, nan=1.0), oi)
    w = np.where(np.isnan(fph), 0.0, weight[:, :, None])
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(total > 0, (np.nan_to_num(fph) * w).sum(axis=1) / total, np.nan)
    return np.asarray(mean, dtype=np.float64)


def _streak_hours(negative: npt.NDArray[np.bool_], observed: npt.NDArray[np.bool_]) -> F64:
    """Hours from the start of the current run of negative observations to the last hour.

    Time-based: with daily samples a streak of three negative days measures ~72 h, not 3.
    """
    hours = negative.shape[-1]
    idx = np.arange(hours)
    breaking = observed & ~negative
    last_break = np.where(breaking, idx, -1).max(axis=-1)
    neg_obs = observed & negative
    # first negative observation after the last break
    after = neg_obs & (idx > last_break[:, None])
    first_neg = np.where(after.any(axis=-1), np.argmax(after, axis=-1), hours)
    last_obs = np.where(observed.any(axis=-1), hours - 1 - np.argmax(observed[:, ::-1], axis=-1), -1)
    current = neg_obs[np.arange(len(last_obs)), np.maximum(last_obs, 0)] & (last_obs >= 0)
    return np.where(current, (hours - first_neg).astype(np.float64), 0.0)


@dataclass(frozen=True, slots=True)
class Features:
    """Per-coin features; every array is ``(coins,)``."""

    avg_funding_72h: F64            # raw OI-weighted cross-venue mean, per 8 h
    idio_funding_72h: F64           # the same after removing a negative market component, per 8 h
    idio_funding_24h: F64           # per 8 h, for acceleration
    market_funding_72h: F64         # the market's level over the window (same for every coin)
    negative_share: F64             # share of observed hours with negative idiosyncratic funding
    streak_hours: F64               # current negative streak, hours
    streak_start_hour: F64          # epoch hour of the streak's start (NaN when none)
    breadth: F64                    # share of venues with a negative mean over the breadth window
    venues_observed: F64
    consecutive_negative_days: F64
    oi_change_24h: F64
    basis: F64
    taker_sell_imbalance: F64       # sell share - 0.5 over the confirm window
    long_short_ratio: F64
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
    n_hours = panel.shape[2]
    fw = min(w.funding_hours, n_hours)
    cross = _cross_venue_funding(panel)                       # (coins, hours)
    window = cross[:, -fw:]

    # Market-wide level: a robust cross-sectional quantile each hour. Only its negative part is
    # removed, so ordinary positive carry never makes a coin look negative.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        level = np.nanquantile(window, config.funding.market_level_quantile, axis=0) if window.size else np.zeros(fw)
    level = np.nan_to_num(np.minimum(level, 0.0))
    idio = window - level[None, :]

    observed = ~np.isnan(window)
    negative = np.where(observed, idio < 0, False)
    n_obs = observed.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        negative_share = np.where(n_obs > 0, negative.sum(axis=1) / n_obs, np.nan)
    streak = _streak_hours(negative, observed)
    streak_start = np.where(streak > 0, panel.hours[-1] - streak + 1, np.nan)

    bw = min(w.breadth_hours, n_hours)
    venue_mean = _nanmean(panel["funding_per_hour"][:, :, -bw:], axis=2) - level[-bw:].mean()
    venues_observed = np.sum(~np.isnan(venue_mean), axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        breadth = np.where(venues_observed > 0, np.sum(venue_mean < 0, axis=1) / venues_observed, np.nan)

    # UTC days with a negative daily mean of raw cross-venue funding, counting back from today.
    hours_of_day = (panel.hours % 24).astype(np.int64)
    day_id = panel.hours // 24
    days = np.unique(day_id)
    daily = np.stack([_nanmean(cross[:, day_id == d], axis=1) for d in days], axis=1)
    neg_day = np.where(np.isnan(daily), False, daily < 0)
    obs_day = ~np.isnan(daily)
    consecutive_days = np.zeros(panel.shape[0])
    alive = np.ones(panel.shape[0], dtype=bool)
    for k in range(len(days) - 1, -1, -1):  # loop over days (<= 8), vectorized over coins
        alive &= neg_day[:, k] | ~obs_day[:, k]
        consecutive_days += alive & neg_day[:, k]
    del hours_of_day

    cw = min(w.confirm_hours, n_hours)
    oi_total = _nansum(panel["open_interest_usd"], axis=1)    # (coins, hours)
    oi_now = _last_valid(oi_total[:, -cw:])
    oi_then = _last_valid(oi_total[:, : max(1, n_hours - cw + 1)])
    with np.errstate(invalid="ignore", divide="ignore"):
        oi_change = np.where(oi_then > 0, oi_now / oi_then - 1.0, np.nan)
        basis_all = panel["mark_price"][:, :, -w.basis_hours:] / panel["index_price"][:, :, -w.basis_hours:] - 1.0
    basis = _nanmean(_nanmean(basis_all, axis=2), axis=1)
    buy = _nansum(_nansum(panel["taker_buy_usd"][:, :, -cw:], axis=2), axis=1)
    sell = _nansum(_nansum(panel["taker_sell_usd"][:, :, -cw:], axis=2), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        taker_imbalance = np.where(buy + sell > 0, sell / (buy + sell) - 0.5, np.nan)
    ls = _nanmean(_nanmean(panel["long_short_ratio"][:, :, -cw:], axis=2), axis=1)

    price = _nanmean(panel["price"], axis=1)                  # (coins, hours)
    p_now = _last_valid(price)
    # The price 24 h / 7 d before the last sample; with shorter history, the oldest one available.
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
    sell_v = np.where(np.isnan(latest["sell_volume_24h_usd"]), latest["sells_24h"], latest["sell_volume_24h_usd"])
    buy_v = np.where(np.isnan(latest["buy_volume_24h_usd"]), latest["buys_24h"], latest["buy_volume_24h_usd"])
    with np.errstate(invalid="ignore", divide="ignore"):
        dex_imbalance = np.where(buy_v + sell_v > 0, sell_v / (buy_v + sell_v) - 0.5, np.nan)
        liquidity_change = latest["liquidity_usd"] / day_ago["liquidity_usd"] - 1.0
        vol_liq = np.where(latest["liquidity_usd"] > 0, latest["volume_24h_usd"] / latest["liquidity_usd"], np.nan)
        holders_change = np.where(prev["holders"] > 0, latest["holders"] / prev["holders"] - 1.0, np.nan)
    top10_change = latest["top10_holders_pct"] - prev["top10_holders_pct"]
    insider_parts = np.stack([latest[k] for k in ("creator_pct", "owner_pct", "insider_pct", "dev_pct", "sniper_pct", "bundler_pct")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        insider_share = np.nanmax(insider_parts, axis=0)

    to_8h = 8.0
    return Features(
        avg_funding_72h=_nanmean(window, axis=1) * to_8h,
        idio_funding_72h=_nanmean(idio, axis=1) * to_8h,
        idio_funding_24h=_nanmean(idio[:, -24:], axis=1) * to_8h,
        market_funding_72h=np.full(panel.shape[0], float(level.mean()) * to_8h if level.size else 0.0),
        negative_share=negative_share,
        streak_hours=streak,
        streak_start_hour=streak_start.astype(np.float64),
        breadth=breadth,
        venues_observed=venues_observed,
        consecutive_negative_days=consecutive_days,
        oi_change_24h=oi_change,
        basis=basis,
        taker_sell_imbalance=taker_imbalance,
        long_short_ratio=ls,
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
