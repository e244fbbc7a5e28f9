"""Features -> the seven sub-scores -> the gated composite score and the phase label.

Pure and vectorized: arrays in, arrays out. See ``docs/methodology.md`` for every formula.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scoring.config import ModelConfig
from scoring.features import Features, compute_features
from scoring.panel import MarketPanel, OnchainPanel, clean_panel

__all__ = [
    "COVERAGE",
    "PHASES",
    "SUB_SCORES",
    "ModelOutput",
    "gate_of",
    "published_scale",
    "saturate",
    "score_features",
    "score_panels",
]

F64 = npt.NDArray[np.float64]

SUB_SCORES = (
    "funding_magnitude",
    "funding_persistence",
    "wallet_concentration",
    "holder_quality_deterioration",
    "coordination_risk",
    "distribution_pressure",
    "market_confirmation",
)
#: Phase labels, in order of precedence (the first rule that holds wins).
PHASES = (
    "short-squeeze-risk",  # gated, but shorts are covering: OI down, taker buying, price up
    "active-hedge-pressure",  # last 24 h at least as negative as the window, and OI rising
    "persistent-shorting",  # most of the window negative, for several UTC days
    "supply-risk-supported",  # none of the above, but the supply context is strong
    "emerging-pressure",  # a streak younger than a day
    "hedge-pressure",  # any other gated coin
    "none",  # not gated (score 0, not listed)
)


def _ramp(x: F64, full: float) -> F64:
    """0 at x <= 0, linear to 1 at x >= full; NaN stays NaN."""
    return np.clip(x / full, 0.0, 1.0)


def _weighted(parts: list[tuple[float, F64]]) -> tuple[F64, F64]:
    """A family from its components: the weighted sum of the available ones over the weights of
    *all* of them, and the coverage (the share of the weight that had data).

    So missing components shrink the family toward 0 by the share of data present: it is the
    weighted mean of what is there times the coverage, and no data can never beat neutral data.
    """
    num = np.zeros(parts[0][1].shape, dtype=np.float64)
    present = np.zeros(parts[0][1].shape, dtype=np.float64)
    total = sum(weight for weight, _ in parts)
    for weight, values in parts:
        ok = ~np.isnan(values)
        num += np.where(ok, values * weight, 0.0)
        present += np.where(ok, weight, 0.0)
    if total <= 0:
        return np.zeros_like(num), np.zeros_like(num)
    return num / total, present / total


def saturate(raw: F64, knee: float, cap: float) -> F64:
    """Identity up to ``knee``, then ``knee + (cap - knee)(1 - exp(-(raw - knee)/(cap - knee)))``:
    smooth (slope 1 at the knee), strictly increasing and always below ``cap``, so the top of the
    board stays ordered instead of tying at the cap."""
    room = cap - knee
    above = knee + room * -np.expm1(-np.maximum(raw - knee, 0.0) / room)
    return np.where(raw <= knee, raw, above)


def published_scale(composite: F64, raw: Sequence[float], score: Sequence[float], cap: float) -> F64:
    """The composite on the published scale (:class:`scoring.config.Scale`): piecewise linear
    through the knots, then ``last + (cap - last)(1 - exp(-slope (x - x_last) / (cap - last)))``
    with the last segment's slope, so the map is strictly increasing, continuous in value and slope
    at the last knot, and always below ``cap``. No knots: the composite unchanged."""
    if not raw:
        return composite
    inner = np.interp(composite, raw, score)
    slope = (score[-1] - score[-2]) / (raw[-1] - raw[-2])
    room = cap - score[-1]
    tail = score[-1] + room * -np.expm1(-np.maximum(composite - raw[-1], 0.0) * slope / room)
    return np.where(composite <= raw[-1], inner, tail)


def _signed_ramp(x: F64, full: float) -> F64:
    """-1 at x <= -full, linear through 0 to 1 at x >= full; NaN stays NaN."""
    return np.clip(x / full, -1.0, 1.0)


def _blend(slow: F64, quick: F64, share: float) -> F64:
    """``(1 - share) * slow + share * quick``; a missing part counts as 0 (no evidence), so less
    data never raises the blend; NaN only when every part with a positive share is missing."""
    if share <= 0.0:
        return slow
    if share >= 1.0:
        return quick
    mixed = (1.0 - share) * np.nan_to_num(slow) + share * np.nan_to_num(quick)
    return np.where(np.isnan(slow) & np.isnan(quick), np.nan, mixed)


@dataclass(frozen=True, slots=True)
class ModelOutput:
    features: Features
    gate: npt.NDArray[np.bool_]
    sub_scores: dict[str, F64]
    hedge: F64
    core: F64
    supply: F64
    score: F64
    phase: list[str]
    #: every component in [0, 1] (NaN: no data), by name, except the signed OI and CVD
    #: components in [-1, 1]; see docs/methodology.md
    components: dict[str, F64]
    #: per family (:data:`COVERAGE`), the share of its input weight that had data, in [0, 1]
    coverage: dict[str, F64]
    #: the composite before the published scale (0 where the gate is closed)
    composite: F64


#: The families whose inputs can be missing, as reported by ``Coin.coverage``.
COVERAGE = ("hedge_pressure", "market_confirmation", "sell_side_flow", "supply_context")


def gate_of(f: Features, config: ModelConfig) -> npt.NDArray[np.bool_]:
    """Listed only with negative funding now and over the 72 h window, both by at least the floor,
    and now also net of a negative market level by the floor plus ``market_spread_k`` times the
    smaller of the other coins' spread and the level's size (a market-wide negative move lists
    only its lower tail)."""
    g = config.gate
    floor = g.min_funding_per_8h
    margin = floor + g.market_spread_k * np.minimum(
        np.nan_to_num(f.market_funding_spread), -np.nan_to_num(f.market_funding_current)
    )
    return (
        (np.nan_to_num(f.funding_current, nan=1.0) <= -floor)
        & (np.nan_to_num(f.avg_funding_72h, nan=1.0) <= -floor)
        & (np.nan_to_num(f.idio_funding_current, nan=1.0) <= -margin)
    )


def score_features(f: Features, config: ModelConfig) -> ModelOutput:
    c = config

    # --- hedge pressure (the gate lives here) ---
    neg_idio = np.nan_to_num(np.maximum(-f.idio_funding_recent, 0.0))
    # x / (x + scale): strictly increasing for every finite x (1 - exp(-x/s) rounds to exactly 1
    # beyond ~37 s, and on real data coins at -0.28 % and -0.55 % per 8 h tied at the top)
    magnitude = neg_idio / (neg_idio + c.funding.magnitude_scale_per_8h)
    window = float(c.window.funding_hours)
    persistence = c.funding.persistence_share_weight * np.nan_to_num(
        f.negative_share
    ) + c.funding.persistence_streak_weight * np.clip(f.streak_hours / window, 0.0, 1.0)
    breadth = np.nan_to_num(f.breadth)
    hedge = c.hedge.magnitude * magnitude + c.hedge.persistence * persistence + c.hedge.breadth * breadth
    gate = gate_of(f, c)

    # --- market confirmation ---
    k = c.confirmation
    fast = k.fast_share
    fast_scale = min(c.window.fast_hours, c.window.confirm_hours) / c.window.confirm_hours
    oi_24h_c = _ramp(f.oi_change_24h, k.oi_change_full)
    # OI and taker flow are signed: shorts covering (OI falling, net taker buying) is evidence
    # *against* a fresh hedge and pulls the confirmation down; the mean is clipped to [0, 1].
    if k.signed_flow:
        oi_c = _blend(
            _signed_ramp(f.oi_change_24h, k.oi_change_full),
            _signed_ramp(f.oi_change_fast, k.oi_change_full * fast_scale),
            fast,
        )
        cvd_c = _blend(
            _signed_ramp(f.taker_sell_imbalance, k.cvd_full),
            _signed_ramp(f.taker_sell_imbalance_fast, k.cvd_full),
            fast,
        )
    else:
        oi_c = _blend(oi_24h_c, _ramp(f.oi_change_fast, k.oi_change_full * fast_scale), fast)
        cvd_c = _blend(_ramp(f.taker_sell_imbalance, k.cvd_full), _ramp(f.taker_sell_imbalance_fast, k.cvd_full), fast)
    basis_c = _ramp(-f.basis, k.basis_full)
    crowd_c = _blend(
        _ramp(1.0 - f.long_short_ratio, k.crowding_full),
        _ramp(-f.long_short_shift, k.crowding_shift_full),
        k.crowding_shift_share,
    )
    price_c = 0.5 * _ramp(-f.price_change_7d, k.price_7d_full) + 0.5 * _ramp(f.drawdown_7d, k.drawdown_full)
    confirm_parts = [(k.oi, oi_c), (k.basis, basis_c), (k.cvd, cvd_c), (k.crowding, crowd_c), (k.price, price_c)]
    if k.persistence > 0:
        confirm_parts.append((k.persistence, persistence))
    confirmation_raw, confirm_cov = _weighted(confirm_parts)
    market_confirmation = np.clip(confirmation_raw, 0.0, 1.0)

    # --- sell-side flow (DEX and derivatives-confirmed) ---
    fl = c.flow
    dex_c = _ramp(f.dex_sell_imbalance, fl.dex_imbalance_full)
    liq_c = _ramp(-f.liquidity_change_24h, fl.liquidity_drop_full)
    distribution_raw, flow_cov = _weighted(
        [
            (fl.dex_imbalance, dex_c),
            (fl.liquidity, liq_c),
            (fl.cvd, cvd_c),
            (fl.oi, oi_c),
        ]
    )
    distribution = np.clip(distribution_raw, 0.0, 1.0)

    # --- supply context (multiplies a gated core, never creates a score) ---
    s = c.supply
    top10_c = _ramp(f.top10_holders_pct - s.top10_floor, s.top10_full - s.top10_floor)
    insider_c = _ramp(f.insider_share_pct, s.insider_full)
    old_c = _ramp(f.old_wallet_swap_pct_1d, s.old_wallet_full)
    wa = c.wallet
    wallet_concentration, wallet_cov = _weighted(
        [
            (wa.top10, top10_c),
            (wa.insider, insider_c),
            (wa.old_wallet, old_c),
        ]
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        fragile = np.clip(1.0 - np.log10(np.maximum(f.holders, 1.0)) / np.log10(s.holders_fragile * 10), 0.0, 1.0)
    churn = _ramp(f.volume_to_liquidity_24h, s.volume_to_liquidity_full)
    hq = c.holder_quality
    holder_quality, hq_cov = _weighted(
        [
            (hq.fragile, fragile),
            (hq.top10, top10_c),
            (hq.liquidity, liq_c),
            (hq.churn, churn),
        ]
    )
    holder_moves = _ramp(np.abs(f.holders_change_pct), s.holders_change_full)
    distributing = _ramp(-f.top10_holders_pct_change, s.top10_change_full)
    co = c.coordination
    coordination, co_cov = _weighted(
        [
            (co.old_wallet, old_c),
            (co.churn, churn),
            (co.holder_moves, holder_moves),
            (co.distributing, distributing),
        ]
    )
    supply = np.maximum.reduce([wallet_concentration, holder_quality, coordination])

    # --- composite ---
    cp = c.composite
    mix = cp.market_weight * market_confirmation + (1.0 - cp.market_weight) * distribution
    # hedge ** hedge_exponent (0.5): funding says someone pays to be short, confirmation says the
    # shorts are new; a square root lets the confirmation, the better-measured family, rank the
    # gated coins while staying monotone in funding (hedge is, and the power is increasing).
    core = np.where(
        gate, np.power(np.maximum(hedge, 0.0), cp.hedge_exponent) * (cp.core_floor + (1.0 - cp.core_floor) * mix), 0.0
    )
    if cp.squeeze_penalty > 0:
        # negative funding with the price up and OI being covered is a short squeeze, not new
        # hedging (measured on the real data, not adopted: see methodology §9)
        squeezed = np.nan_to_num(
            _ramp(f.price_change_24h, cp.squeeze_price_full) * _ramp(-f.oi_change_24h, cp.squeeze_oi_full)
        )
        core = core * (1.0 - cp.squeeze_penalty * squeezed)
    raw = cp.scale * core * (1.0 + cp.supply_boost * supply)
    composite = np.clip(saturate(raw, cp.saturation_knee, cp.cap), 0.0, cp.cap)
    score = np.where(gate, np.clip(published_scale(composite, c.scale.raw, c.scale.score, cp.cap), 0.0, cp.cap), 0.0)

    sub_scores = {
        "funding_magnitude": magnitude,
        "funding_persistence": persistence,
        "wallet_concentration": wallet_concentration,
        "holder_quality_deterioration": holder_quality,
        "coordination_risk": coordination,
        "distribution_pressure": distribution,
        "market_confirmation": market_confirmation,
    }
    sub_scores = {name: np.clip(np.nan_to_num(v), 0.0, 1.0) for name, v in sub_scores.items()}
    coverage = {
        "hedge_pressure": np.where(np.isnan(f.funding_current) & np.isnan(f.avg_funding_72h), 0.0, 1.0),
        "market_confirmation": confirm_cov,
        "sell_side_flow": flow_cov,
        "supply_context": (wallet_cov + hq_cov + co_cov) / 3.0,
    }

    ph = c.phase
    accel = f.idio_funding_24h <= f.idio_funding_72h * ph.active_acceleration
    squeeze = (f.taker_sell_imbalance < ph.squeeze_flow) & (f.oi_change_24h < 0) & (f.price_change_24h > 0)
    persistent = (np.nan_to_num(f.negative_share) >= ph.persistent_share) & (
        f.consecutive_negative_days >= ph.persistent_days
    )
    rules = [
        squeeze,
        accel & (oi_24h_c >= ph.active_oi),
        persistent,
        supply >= ph.supply_context,
        f.streak_hours < ph.emerging_streak_hours,
        f.streak_hours >= 0,
    ]
    choice = np.select(
        [gate & np.nan_to_num(r).astype(bool) for r in rules], list(range(len(rules))), default=len(PHASES) - 1
    )
    phase = [PHASES[int(i)] for i in choice]
    components = {
        "oi": oi_c,
        "basis": basis_c,
        "cvd": cvd_c,
        "crowding": crowd_c,
        "price": price_c,
        "dex_imbalance": dex_c,
        "liquidity": liq_c,
        "top10": top10_c,
        "insider": insider_c,
        "old_wallet": old_c,
        "fragile": fragile,
        "churn": churn,
        "holder_moves": holder_moves,
        "distributing": distributing,
        "breadth": breadth,
        "mix": mix,
        "raw_score": raw,
    }
    return ModelOutput(
        f, gate, sub_scores, hedge, core, supply, score, phase, components, coverage, np.where(gate, composite, 0.0)
    )


def score_panels(panel: MarketPanel, onchain: OnchainPanel, config: ModelConfig) -> ModelOutput:
    """Score a panel. A panel built by hand (not by ``build_market_panel``) is first cleaned of
    unusable values in place (:func:`scoring.panel.clean_panel`)."""
    if not panel.checked:
        rejected = clean_panel(panel)
        for venue, counts in rejected.items():
            mine = panel.rejected.setdefault(venue, {})
            for reason, count in counts.items():
                mine[reason] = mine.get(reason, 0) + count
        object.__setattr__(panel, "checked", True)
    return score_features(compute_features(panel, onchain, config), config)
