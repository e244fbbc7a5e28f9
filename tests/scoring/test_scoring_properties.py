"""Property-based tests of the model's stated guarantees (DESIGN §6, issue 3 "Must show").

The panels are random but plausible: a universe of coins large enough for the market level to be
active (``market_min_coins``), three venues with different funding intervals, hourly history with
gaps. The coin under test is row 0; "all else equal" means every other array is unchanged.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.config import load_model_config
from scoring.features import Features, compute_features
from scoring.model import SUB_SCORES, score_features, score_panels
from scoring.panel import MARKET_FIELDS, ONCHAIN_FIELDS, MarketPanel, OnchainPanel
from scoring.pipeline import coin_documents

CONFIG = load_model_config()
AT = datetime(2026, 11, 20, 12, tzinfo=UTC)
COINS, HOURS = 24, 96
VENUES = ["binance", "okx", "hyperliquid"]
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_panels(seed: int, *, gaps: float = 0.1) -> tuple[MarketPanel, OnchainPanel]:
    """A random universe; in half of the seeds a market-wide dip pushes every coin's funding
    negative for a stretch of hours, so the market level is active."""
    rng = np.random.default_rng(seed)
    panel = MarketPanel.empty(AT, [f"c{i:02d}" for i in range(COINS)], VENUES, HOURS)
    d = panel.data
    shape = panel.shape
    level = rng.normal(0.5e-5, 1.5e-5, size=(COINS, 1, 1))
    level[0] = rng.uniform(-3e-5, 0.5e-5)  # the coin under test: usually (not always) gated
    venue_bias = rng.normal(0, 1.5e-5, size=(COINS, len(VENUES), 1))
    d["funding_per_hour"][:] = level + venue_bias + rng.normal(0, 1e-5, size=shape)
    if seed % 2:
        start = int(rng.integers(0, HOURS - 6))
        d["funding_per_hour"][:, :, start : start + int(rng.integers(6, 48))] -= 3e-5
    d["funding_interval_hours"][:] = np.array([8.0, 4.0, 1.0])[None, :, None]
    d["open_interest_usd"][:] = np.exp(rng.normal(14, 1, size=shape))
    price = np.exp(np.cumsum(rng.normal(0, 0.01, size=(COINS, 1, HOURS)), axis=2))
    d["index_price"][:] = price
    d["mark_price"][:] = price * (1 + rng.normal(0, 5e-4, size=shape))
    d["price"][:] = price
    d["taker_buy_usd"][:] = np.exp(rng.normal(10, 0.5, size=shape))
    d["taker_sell_usd"][:] = np.exp(rng.normal(10, 0.5, size=shape))
    d["long_short_ratio"][:] = np.exp(rng.normal(0, 0.2, size=shape))
    missing = rng.random(shape) < gaps
    for values in d.values():
        values[missing] = np.nan
    on = OnchainPanel.empty(COINS)
    for part in (on.latest, on.day_ago, on.previous_run):
        part["liquidity_usd"][:] = np.exp(rng.normal(13, 1, size=COINS))
        part["holders"][:] = np.exp(rng.normal(8, 1, size=COINS))
        part["top10_holders_pct"][:] = rng.uniform(10, 95, size=COINS)
    on.latest["volume_24h_usd"][:] = on.latest["liquidity_usd"] * rng.uniform(0.1, 5, size=COINS)
    on.latest["buy_volume_24h_usd"][:] = rng.uniform(1e4, 1e6, size=COINS)
    on.latest["sell_volume_24h_usd"][:] = rng.uniform(1e4, 1e6, size=COINS)
    on.latest["old_wallet_swap_pct_1d"][:] = rng.uniform(0, 60, size=COINS)
    on.latest["sniper_pct"][:] = rng.uniform(0, 40, size=COINS)
    return panel, on


def copy_panel(panel: MarketPanel) -> MarketPanel:
    return MarketPanel(
        panel.at, panel.coin_ids, panel.venues, panel.hours, {k: v.copy() for k, v in panel.data.items()}
    )


seeds = st.integers(min_value=0, max_value=2**32 - 1)


@FAST
@given(seed=seeds, gaps=st.sampled_from([0.0, 0.1, 0.6]))
def test_sub_scores_in_unit_interval_and_score_in_0_10(seed: int, gaps: float) -> None:
    panel, on = random_panels(seed, gaps=gaps)
    out = score_panels(panel, on, CONFIG)
    for name in SUB_SCORES:
        values = out.sub_scores[name]
        assert np.all(np.isfinite(values)), name
        assert np.all((values >= 0.0) & (values <= 1.0)), name
    assert np.all(np.isfinite(out.score))
    assert np.all((out.score >= 0.0) & (out.score <= 10.0))


@FAST
@given(seed=seeds, floor=st.floats(min_value=0.0, max_value=3e-5))
def test_non_negative_cross_venue_funding_scores_exactly_zero(seed: int, floor: float) -> None:
    panel, on = random_panels(seed)
    fph = panel["funding_per_hour"]
    fph[0] = np.where(np.isnan(fph[0]), np.nan, np.abs(fph[0]) + floor)
    # make the supply context and market confirmation as strong as they get
    on.latest["top10_holders_pct"][0] = 99.0
    on.latest["old_wallet_swap_pct_1d"][0] = 100.0
    on.latest["sniper_pct"][0] = 90.0
    out = score_panels(panel, on, CONFIG)
    assert out.score[0] == 0.0
    assert not out.gate[0]
    assert out.phase[0] == "none"


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@FAST
@given(
    funding=st.floats(min_value=0.0, max_value=1e-2),
    supply=st.lists(st.one_of(st.just(float("nan")), st.floats(min_value=-1e6, max_value=1e6)), min_size=8, max_size=8),
    market=st.lists(st.floats(min_value=-10, max_value=10), min_size=6, max_size=6),
)
def test_wallet_and_supply_inputs_alone_never_score(funding: float, supply: list[float], market: list[float]) -> None:
    """Whatever the wallet, supply and market inputs, funding that is not negative scores 0."""
    f = features(funding=funding, supply=supply, market=market)
    out = score_features(f, CONFIG)
    assert out.score[0] == 0.0
    assert out.phase[0] == "none"


def features(
    *, funding: float, supply: list[float], market: list[float], share: float = 1.0, streak: float = 72.0
) -> Features:
    one = lambda x: np.array([x], dtype=np.float64)  # noqa: E731
    return Features(
        avg_funding_72h=one(funding),
        idio_funding_72h=one(funding),
        idio_funding_24h=one(funding),
        funding_recent=one(funding),
        idio_funding_recent=one(funding),
        funding_current=one(funding),
        idio_funding_current=one(funding),
        market_funding_current=one(0.0),
        market_funding_spread=one(0.0),
        market_funding_72h=one(0.0),
        negative_share=one(share),
        streak_hours=one(streak),
        streak_start_hour=one(np.nan),
        streak_truncated=np.array([False]),
        breadth=one(1.0),
        venues_observed=one(3.0),
        hours_observed=one(72.0),
        consecutive_negative_days=one(5.0),
        negative_days_truncated=np.array([False]),
        oi_change_24h=one(market[0]),
        oi_change_fast=one(market[0] / 4),
        basis=one(market[1]),
        taker_sell_imbalance=one(market[2]),
        taker_sell_imbalance_fast=one(market[2]),
        long_short_ratio=one(market[3]),
        long_short_shift=one(np.log(abs(market[3]) + 1e-9)),
        price_change_24h=one(market[4]),
        price_change_7d=one(market[5]),
        drawdown_7d=one(abs(market[5]) % 1),
        dex_sell_imbalance=one(supply[0]),
        liquidity_change_24h=one(supply[1]),
        volume_to_liquidity_24h=one(supply[2]),
        holders=one(abs(supply[3])),
        holders_change_pct=one(supply[4]),
        top10_holders_pct=one(supply[5]),
        top10_holders_pct_change=one(supply[6]),
        insider_share_pct=one(supply[7]),
        old_wallet_swap_pct_1d=one(supply[7]),
    )


@FAST
@given(seed=seeds, data=st.data())
def test_more_negative_funding_never_lowers_the_score(seed: int, data: st.DataObject) -> None:
    """Subtract non-negative amounts from coin 0's funding on any venues and hours (which also
    makes it more persistent where an hour turns negative): its score never goes down."""
    panel, on = random_panels(seed)
    rng = np.random.default_rng(data.draw(seeds, label="delta seed"))
    share = data.draw(st.sampled_from([0.05, 0.3, 1.0]), label="share of cells")
    size = data.draw(st.sampled_from([1e-7, 5e-6, 5e-5]), label="size")
    delta = np.where(rng.random(panel.shape[1:]) < share, rng.uniform(0, size, panel.shape[1:]), 0.0)
    before = score_panels(panel, on, CONFIG).score[0]
    more = copy_panel(panel)
    more["funding_per_hour"][0] -= delta
    after = score_panels(more, on, CONFIG).score[0]
    assert after >= before - 1e-12


@FAST
@given(seed=seeds, hours=st.integers(min_value=1, max_value=HOURS))
def test_more_persistent_funding_never_lowers_the_score(seed: int, hours: int) -> None:
    """Turn coin 0's funding in the last ``hours`` hours to its most negative value seen: the
    streak and the negative share grow, and the score never goes down."""
    panel, on = random_panels(seed)
    fph = panel["funding_per_hour"][0]
    floor = np.nanmin(fph)
    before = score_panels(panel, on, CONFIG).score[0]
    more = copy_panel(panel)
    tail = more["funding_per_hour"][0][:, -hours:]
    more["funding_per_hour"][0][:, -hours:] = np.where(np.isnan(tail), np.nan, np.minimum(tail, floor))
    after = score_panels(more, on, CONFIG).score[0]
    assert after >= before - 1e-12


@FAST
@given(
    share=st.floats(0, 1),
    extra=st.floats(0, 1),
    streak=st.floats(0, 200),
    more_streak=st.floats(0, 200),
    funding=st.floats(-1e-3, -1e-9),
)
def test_score_is_monotone_in_persistence_features(
    share: float, extra: float, streak: float, more_streak: float, funding: float
) -> None:
    base = [0.1, -0.001, 0.02, 0.9, -0.01, -0.05]
    supply = [0.02, -0.03, 1.0, 3000.0, 0.0, 50.0, 0.0, 10.0]
    low = score_features(
        features(funding=funding, supply=supply, market=base, share=share, streak=streak), CONFIG
    ).score[0]
    high = score_features(
        features(
            funding=funding, supply=supply, market=base, share=min(1.0, share + extra), streak=streak + more_streak
        ),
        CONFIG,
    ).score[0]
    assert high >= low - 1e-12


@FAST
@given(seed=seeds)
def test_identical_inputs_give_identical_output(seed: int) -> None:
    a = score_panels(*random_panels(seed), CONFIG)
    b = score_panels(*random_panels(seed), CONFIG)
    assert np.array_equal(a.score, b.score)
    assert a.phase == b.phase
    for name in SUB_SCORES:
        assert np.array_equal(a.sub_scores[name], b.sub_scores[name])


@settings(max_examples=15, deadline=None)
@given(seed=seeds)
def test_coin_order_does_not_matter(seed: int) -> None:
    panel, on = random_panels(seed)
    perm = np.random.default_rng(seed).permutation(COINS)
    shuffled = MarketPanel(
        panel.at,
        [panel.coin_ids[i] for i in perm],
        panel.venues,
        panel.hours,
        {k: v[perm] for k, v in panel.data.items()},
    )
    on2 = OnchainPanel(*({k: v[perm] for k, v in part.items()} for part in (on.latest, on.day_ago, on.previous_run)))
    a = score_panels(panel, on, CONFIG).score
    b = score_panels(shuffled, on2, CONFIG).score
    np.testing.assert_allclose(a[perm], b, rtol=0, atol=1e-12)


def test_features_of_random_panels_are_finite_where_data_exists() -> None:
    panel, on = random_panels(3)
    f = compute_features(panel, on, CONFIG)
    assert np.all(np.isfinite(f.avg_funding_72h))
    assert np.all(np.isfinite(f.breadth))


# --- issue 10: coherence properties --------------------------------------------------------------

PUBLIC_REQUIRED = (
    "score",
    "avg_funding_72h",
    *SUB_SCORES,
    "price_change_24h",
    "price_change_7d",
    "consecutive_negative_days",
)
PUBLIC_NULLABLE = (
    "top10_holders_pct",
    "volume_to_liquidity_24h",
    "old_wallet_swap_pct_1d",
    "holders_change_pct",
    "top10_holders_pct_change",
)


@FAST
@given(
    market=st.lists(st.floats(min_value=-0.5, max_value=0.5), min_size=6, max_size=6),
    supply=st.lists(st.floats(min_value=0.0, max_value=1e5), min_size=8, max_size=8),
    missing=st.lists(st.booleans(), min_size=14, max_size=14),
    funding=st.floats(min_value=-1e-3, max_value=-2e-5),
)
def test_missing_data_never_raises_a_score(
    market: list[float], supply: list[float], missing: list[bool], funding: float
) -> None:
    """Removing any inputs never scores higher than having them present with evidence that is
    neutral or confirming (signed OI/taker flow clamped at neutral). The old weighted mean
    renormalized over what was present, so a coin with little data could outscore full data."""
    market = [market[0], market[1], abs(market[2]), market[3] + 1.0, market[4], market[5]]
    present = features(funding=funding, supply=supply, market=market)
    names = [
        "oi_change_24h",
        "oi_change_fast",
        "basis",
        "taker_sell_imbalance",
        "taker_sell_imbalance_fast",
        "long_short_ratio",
        "long_short_shift",
        "price_change_7d",
        "drawdown_7d",
        "dex_sell_imbalance",
        "liquidity_change_24h",
        "volume_to_liquidity_24h",
        "top10_holders_pct",
        "old_wallet_swap_pct_1d",
    ]
    clamp = {"oi_change_24h", "oi_change_fast", "taker_sell_imbalance", "taker_sell_imbalance_fast"}
    values = {n: getattr(present, n).copy() for n in names}
    for n in clamp:
        values[n] = np.maximum(values[n], 0.0)
    full = replace(present, **values)
    gone = replace(full, **{n: np.full(1, np.nan) for n, m in zip(names, missing, strict=True) if m})
    assert score_features(gone, CONFIG).score[0] <= score_features(full, CONFIG).score[0] + 1e-12


@FAST
@given(seed=seeds, sign=st.sampled_from([-1.0, 1.0]), share=st.floats(0.0, 0.999))
def test_funding_under_the_floor_never_lists(seed: int, sign: float, share: float) -> None:
    """Coin 0's funding anywhere inside (-floor, floor) per 8 h: never listed, whatever else."""
    panel, on = random_panels(seed)
    floor_per_hour = CONFIG.gate.min_funding_per_8h / 8.0
    fph = panel["funding_per_hour"][0]
    noise = np.random.default_rng(seed).uniform(-1, 1, size=fph.shape)
    fph[:] = np.where(np.isnan(fph), np.nan, sign * share * floor_per_hour * np.abs(noise))
    on.latest["top10_holders_pct"][0] = 99.0
    out = score_panels(panel, on, CONFIG)
    assert out.score[0] == 0.0 and not out.gate[0]
    # and in general: nobody lists with current or 72 h funding above -floor
    f = out.features
    weak = (f.funding_current > -CONFIG.gate.min_funding_per_8h) | (f.avg_funding_72h > -CONFIG.gate.min_funding_per_8h)
    assert np.all(out.score[weak] == 0.0)


def sparse_random_panel(seed: int, every: int, run_hour: int) -> tuple[MarketPanel, OnchainPanel, datetime]:
    """A random universe whose funding prints every ``every`` hours (1, 8 or 24), run at ``run_hour``."""
    panel, on = random_panels(seed, gaps=0.05)
    at = AT.replace(hour=run_hour)
    hours = panel.hours - (AT.hour - run_hour)
    phase = seed % every
    keep = (hours % every) == phase
    fph = panel["funding_per_hour"]
    fph[:, :, ~keep] = np.nan
    shifted = MarketPanel(at, panel.coin_ids, panel.venues, hours, panel.data)
    return shifted, on, at


@FAST
@given(seed=seeds, every=st.sampled_from([1, 8, 24]), run_hour=st.integers(0, 23))
def test_the_streak_fields_agree(seed: int, every: int, run_hour: int) -> None:
    """For every coin of random panels at any cadence and run hour: the whole days from
    signal_start_date to updated_at differ from consecutive_negative_days by at most one; an
    emerging-pressure streak is younger than a day; a listed coin has a negative 72 h mean."""
    panel, on, at = sparse_random_panel(seed, every, run_hour)
    out = score_panels(panel, on, CONFIG)
    docs = coin_documents(at, panel, out, {}, CONFIG.version)
    for doc in docs:
        start = datetime.fromisoformat(doc["signal_start_date"].replace("Z", "+00:00"))
        whole = (at - start) // timedelta(days=1)
        assert start <= at
        assert abs(whole - doc["consecutive_negative_days"]) <= 1, doc
        if doc["score"] > 0:
            assert doc["avg_funding_72h"] < 0 and doc["manipulation_phase"] != "none"
        if doc["manipulation_phase"] == "emerging-pressure":
            assert at - start < timedelta(days=1)


poison = st.sampled_from([float("inf"), float("-inf"), float("nan"), 0.0, -1.0, -1e30])


@FAST
@given(
    seed=seeds,
    field=st.sampled_from(sorted(MARKET_FIELDS)),
    value=poison,
    share=st.sampled_from([0.01, 0.2, 1.0]),
    onchain=st.sampled_from(sorted(ONCHAIN_FIELDS)),
)
def test_a_non_finite_input_never_reaches_a_served_field(
    seed: int, field: str, value: float, share: float, onchain: str
) -> None:
    panel, on = random_panels(seed)
    rng = np.random.default_rng(seed)
    cells = rng.random(panel.shape) < share
    panel.data[field][cells] = value
    on.latest[onchain][rng.random(COINS) < share] = value
    out = score_panels(panel, on, CONFIG)
    docs = coin_documents(AT, panel, out, {}, CONFIG.version)
    for doc in docs:
        for name in PUBLIC_REQUIRED:
            assert doc[name] is not None and math.isfinite(doc[name]), (name, doc[name])
        for name in PUBLIC_NULLABLE:
            assert doc[name] is None or math.isfinite(doc[name]), (name, doc[name])
        assert doc["signal_start_date"] and doc["updated_at"]
    if math.isinf(value) and cells.any():
        assert panel.rejected, "rejected values are counted"
