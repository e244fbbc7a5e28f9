"""Features: units, intervals, streaks in hours, breadth and persistence with few venues or only
daily samples, the market-wide adjustment, phases, and the panel built from store frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from ingest.snapshot import MarketSample, OnchainSample, market_frames
from ingest.storage import onchain_frames
from scoring.config import load_model_config
from scoring.features import compute_features, leave_one_out_quantile
from scoring.model import PHASES, score_features, score_panels
from scoring.panel import (
    MarketPanel,
    OnchainPanel,
    build_market_panel,
    build_onchain_panel,
    build_onchain_panel_from_frames,
)

CONFIG = load_model_config()
AT = datetime(2026, 11, 20, 12, tzinfo=UTC)


def flat_panel(coins: int, venues: list[str], hours: int, fph: float) -> MarketPanel:
    panel = MarketPanel.empty(AT, [f"c{i}" for i in range(coins)], venues, hours)
    panel.data["funding_per_hour"][:] = fph
    panel.data["funding_interval_hours"][:] = 8.0
    panel.data["open_interest_usd"][:] = 1e6
    for name in ("price", "mark_price", "index_price"):
        panel.data[name][:] = 1.0
    return panel


def samples(
    coin: str, venue: str, rate: float, interval: float, hours: int, every: int = 1, oi: float = 1e6
) -> list[MarketSample]:
    return [
        MarketSample(coin, venue, AT - timedelta(hours=h), rate, interval, oi, 1.0, 1.0, 1.0)
        for h in range(0, hours, every)
    ]


def test_funding_is_normalized_per_hour_across_intervals() -> None:
    """-0.0008 per 8 h on Binance equals -0.0001 per 1 h on Hyperliquid: both -0.0001 per hour,
    and avg_funding_72h is expressed per 8 h: -0.0008."""
    rows = samples("x", "binance", -0.0008, 8.0, 72) + samples("x", "hyperliquid", -0.0001, 1.0, 72)
    panel = build_market_panel(AT, market_frames(rows), 72)
    assert np.allclose(panel["funding_per_hour"][0, [0, 5]], -0.0001)
    f = compute_features(panel, OnchainPanel.empty(1), CONFIG)
    assert f.avg_funding_72h[0] == pytest.approx(-0.0008)
    assert f.breadth[0] == 1.0


def test_cross_venue_mean_is_oi_weighted() -> None:
    rows = samples("x", "binance", -0.0008, 8.0, 72, oi=3e6) + samples("x", "okx", 0.0008, 8.0, 72, oi=1e6)
    f = compute_features(build_market_panel(AT, market_frames(rows), 72), OnchainPanel.empty(1), CONFIG)
    assert f.avg_funding_72h[0] == pytest.approx((3 * -0.0008 + 1 * 0.0008) / 4)
    # one venue negative of two: breadth = 1 / max(2, min(3, 2 venues in the data)) = 0.5
    assert f.breadth[0] == pytest.approx(0.5)


def test_streak_is_measured_in_hours_with_hourly_and_daily_samples() -> None:
    """The day rule (methodology "Day rule") on hourly and on daily data. The run is 2026-11-20
    12:00; complete days are the 19th and earlier."""
    hourly = samples("x", "binance", 0.0001, 8.0, 169)
    hourly = [
        s
        if s.at <= AT - timedelta(hours=30)
        else MarketSample(s.coin_id, s.venue, s.at, -0.0001, 8.0, 1e6, 1.0, 1.0, 1.0)
        for s in hourly
    ]
    f = compute_features(build_market_panel(AT, market_frames(hourly), 169), OnchainPanel.empty(1), CONFIG)
    # negative from the 19th 07:00: the 19th's mean is negative (17 of 24 hours), so one day,
    # starting at its first negative hour, 30 h before the run (inclusive)
    assert f.consecutive_negative_days[0] == 1
    assert f.streak_start_hour[0] * 3600 == (AT - timedelta(hours=29)).timestamp()
    assert f.streak_hours[0] == 30
    assert f.negative_share[0] == pytest.approx(30 / 72)

    # daily samples at 12:00: three negative prints (today, -1 d, -2 d) after positive ones. Each
    # print is in force for a day (its spacing) plus the allowance, so every hour has funding:
    # negative from the 18th 12:00. The 18th's mean is 0 (half positive), not negative; the 19th
    # is negative: one day, from the 19th 00:00.
    daily = [
        MarketSample("x", "binance", AT - timedelta(days=d), -0.0001 if d < 3 else 0.0001, 8.0, 1e6, 1.0, 1.0, 1.0)
        for d in range(7)
    ]
    f = compute_features(build_market_panel(AT, market_frames(daily), 169), OnchainPanel.empty(1), CONFIG)
    assert f.consecutive_negative_days[0] == 1
    assert f.streak_hours[0] == 37
    assert f.hours_observed[0] == 72  # the funding in force covers every hour of the window
    assert f.negative_share[0] == pytest.approx(49 / 72)
    assert f.funding_current[0] == pytest.approx(-0.0001)


def test_a_dataset_with_daily_samples_on_one_venue_still_scores() -> None:
    daily = [MarketSample("x", "binance", AT - timedelta(days=d), -0.0003, 8.0, 1e6, 0.999, 1.0, 1.0) for d in range(7)]
    panel = build_market_panel(AT, market_frames(daily), 169)
    out = score_panels(panel, OnchainPanel.empty(1), CONFIG)
    assert out.gate[0]
    assert 0 < out.score[0] <= 10
    assert out.features.breadth[0] == 1.0  # the only venue of the dataset is negative


def test_breadth_shrinks_for_a_coin_on_one_venue_of_many() -> None:
    panel = flat_panel(2, ["binance", "okx", "bybit", "gate"], 72, 0.00001)
    panel.data["funding_per_hour"][0, 1:] = np.nan  # coin 0 listed on binance only
    panel.data["funding_per_hour"][0, 0] = -0.00002
    f = compute_features(panel, OnchainPanel.empty(2), CONFIG)
    assert f.breadth[0] == pytest.approx(1 / 3)


def test_consecutive_days_count_back_from_the_run_day() -> None:
    panel = flat_panel(1, ["binance"], 24 * 7 + 1, -0.00001)
    day = panel.hours // 24
    panel.data["funding_per_hour"][0, 0, day == day[-1] - 4] = 0.0001  # a positive day, 4 days ago
    f = compute_features(panel, OnchainPanel.empty(1), CONFIG)
    # complete days only: the 3 days between the positive one and the run's (partial) day
    assert f.consecutive_negative_days[0] == 3
    assert f.streak_start_hour[0] == day[-1] * 24 - 3 * 24
    assert not f.negative_days_truncated[0]


def test_leave_one_out_quantile_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5))
    x[rng.random(x.shape) < 0.2] = np.nan
    got = leave_one_out_quantile(x, 0.5, 1)
    for i in range(30):
        others = np.delete(x, i, axis=0)
        assert np.allclose(got[i], np.nanquantile(others, 0.5, axis=0), equal_nan=True)
    assert np.all(np.isnan(leave_one_out_quantile(x[:3], 0.5, 20)))


def test_market_wide_dip_is_removed_but_an_idiosyncratic_coin_stays() -> None:
    """Every coin at -0.0002 per 8 h (a market-wide dip), one coin at -0.0006: only that coin
    is gated, on its excess over the market's median."""
    panel = flat_panel(40, ["binance", "okx"], 72, -0.0002 / 8)
    panel.data["funding_per_hour"][7] = -0.0006 / 8
    out = score_panels(panel, OnchainPanel.empty(40), CONFIG)
    assert out.gate.sum() == 1 and out.gate[7]
    assert out.features.idio_funding_72h[7] == pytest.approx(-0.0004)
    assert out.features.market_funding_72h[0] == pytest.approx(-0.0002)


def test_positive_market_carry_is_never_subtracted() -> None:
    panel = flat_panel(40, ["binance"], 72, 0.0003 / 8)
    panel.data["funding_per_hour"][3] = 0.0001 / 8  # below the market, but positive
    out = score_panels(panel, OnchainPanel.empty(40), CONFIG)
    assert not out.gate.any()


def test_every_phase_is_reachable_by_its_rule() -> None:
    """Each documented phase, from inputs built to satisfy its rule and not the ones before it."""
    base = dict(funding=-0.0003 / 8)

    def phase(edit: dict[str, object], hours: int = 169, onchain: dict[str, float] | None = None) -> str:
        panel = flat_panel(1, ["binance", "okx"], hours, base["funding"])
        for name, value in edit.items():
            if callable(value):
                value(panel)
            else:
                panel.data[name][:] = value
        on = OnchainPanel.empty(1)
        for name, v in (onchain or {}).items():
            on.latest[name][0] = v
        out = score_panels(panel, on, CONFIG)
        return out.phase[0]

    def oi_rising(panel: MarketPanel) -> None:
        panel.data["open_interest_usd"][:, :, -23:] = 1.3e6

    def oi_falling(panel: MarketPanel) -> None:
        panel.data["open_interest_usd"][:, :, -23:] = 0.7e6

    def price_up(panel: MarketPanel) -> None:
        panel.data["price"][:, :, -1] = 1.2

    def taker_buying(panel: MarketPanel) -> None:
        panel.data["taker_buy_usd"][:] = 60.0
        panel.data["taker_sell_usd"][:] = 40.0

    def young(panel: MarketPanel) -> None:  # negative for 10 h; the 72 h mean is still negative
        panel.data["funding_per_hour"][:, :, :-10] = 0.000002

    def squeeze(panel: MarketPanel) -> None:
        oi_falling(panel)
        price_up(panel)
        taker_buying(panel)

    assert phase({"x": squeeze}) == "short-squeeze-risk"
    assert phase({"x": oi_rising}) == "active-hedge-pressure"
    assert phase({}) == "persistent-shorting"
    strong_supply = {"top10_holders_pct": 95.0, "old_wallet_swap_pct_1d": 60.0, "sniper_pct": 40.0}
    assert phase({"x": young}, onchain=strong_supply) == "supply-risk-supported"
    assert phase({"x": young}) == "emerging-pressure"

    def two_days_ago(panel: MarketPanel) -> None:  # negative for 30 h: not young, not persistent
        panel.data["funding_per_hour"][:, :, :-30] = 0.000002

    assert phase({"x": two_days_ago}) == "hedge-pressure"
    assert phase({"funding_per_hour": 0.0001}) == "none"
    assert set(PHASES) == {
        "short-squeeze-risk",
        "active-hedge-pressure",
        "persistent-shorting",
        "supply-risk-supported",
        "emerging-pressure",
        "hedge-pressure",
        "none",
    }


def test_onchain_panel_from_frames_matches_the_sample_path() -> None:
    rows = [
        OnchainSample(
            "a",
            AT - timedelta(hours=h),
            liquidity_usd=100.0 + h,
            holders=1000.0 - h,
            top10_holders_pct=50.0,
            sells_24h=10.0,
            buys_24h=5.0,
        )
        for h in (0, 6, 24, 30)
    ]
    rows.append(OnchainSample("b", AT - timedelta(hours=2), liquidity_usd=7.0))
    ids = ["a", "b", "c"]
    prev = {"a": {"holders": 900.0, "top10_holders_pct": 49.0}}
    a = build_onchain_panel(AT, ids, rows, prev)
    b = build_onchain_panel_from_frames(AT, ids, onchain_frames(rows), prev)
    for part in ("latest", "day_ago", "previous_run"):
        for name, values in getattr(a, part).items():
            np.testing.assert_array_equal(values, getattr(b, part)[name], err_msg=f"{part}.{name}")
    f = score_features(compute_features(flat_panel(3, ["binance"], 24, 0.0), b, CONFIG), CONFIG).features
    assert f.liquidity_change_24h[0] == pytest.approx(100.0 / 124.0 - 1)
    assert f.holders_change_pct[0] == pytest.approx(1000.0 / 900.0 - 1)
    assert f.top10_holders_pct_change[0] == pytest.approx(1.0)


def test_oi_change_counts_only_venues_present_at_both_ends() -> None:
    """Live history has OI for some venues only: a venue whose OI appears (or disappears) inside
    the window must not show up as growth (or a collapse). Binance 1 M -> 1.1 M is +10 %; OKX only
    has OI for the last 12 h (10 M) and Bybit stopped reporting 30 h ago."""
    panel = flat_panel(1, ["binance", "okx", "bybit"], 72, -1e-5)
    oi = panel.data["open_interest_usd"]
    oi[0, 0, :] = 1.0e6
    oi[0, 0, -24:] = 1.1e6
    oi[0, 1, :] = np.nan
    oi[0, 1, -12:] = 10.0e6
    oi[0, 2, -30:] = np.nan
    f = compute_features(panel, OnchainPanel.empty(1), CONFIG)
    assert f.oi_change_24h[0] == pytest.approx(0.10)
    assert f.oi_change_fast[0] == pytest.approx(0.0)  # binance flat over the last 4 h, okx flat
    oi[0, 0, :] = np.nan  # no venue at both ends: unknown, not 0
    oi[0, 1, :] = np.nan
    oi[0, 1, -3:] = 5.0e6
    f = compute_features(panel, OnchainPanel.empty(1), CONFIG)
    assert np.isnan(f.oi_change_24h[0])


def test_long_short_shift_compares_each_venue_with_its_own_past() -> None:
    """Binance sits at 2.0 and OKX at 0.5 for days (their normal levels); in the last hours both
    fall by 20 %: the shift is log(0.8) on both, whatever the levels."""
    panel = flat_panel(1, ["binance", "okx"], 72, -1e-5)
    ls = panel.data["long_short_ratio"]
    ls[0, 0, :] = 2.0
    ls[0, 1, :] = 0.5
    ls[0, :, -4:] *= 0.8
    f = compute_features(panel, OnchainPanel.empty(1), CONFIG)
    assert f.long_short_shift[0] == pytest.approx(np.log(0.8))


def test_covering_shorts_count_against_confirmation() -> None:
    """OI and taker flow are signed: with the same thinning longs, a squeeze (OI falling, net
    taker buying) is less confirmed than flat OI and flow, which is less than a build-up."""

    def confirmation(oi_end: float, buy: float, sell: float) -> tuple[float, float, float]:
        panel = flat_panel(1, ["binance", "okx"], 169, -0.0003 / 8)
        panel.data["open_interest_usd"][:, :, -23:] = oi_end
        panel.data["taker_buy_usd"][:, :, -24:] = buy
        panel.data["taker_sell_usd"][:, :, -24:] = sell
        panel.data["long_short_ratio"][:] = 1.0  # longs thinning in every case
        panel.data["long_short_ratio"][:, :, -4:] = 0.7  # (against the coin's own history)
        out = score_panels(panel, OnchainPanel.empty(1), CONFIG)
        return (float(out.sub_scores["market_confirmation"][0]), float(out.components["oi"][0]), float(out.score[0]))

    squeeze, flat, build = (
        confirmation(0.7e6, 60.0, 40.0),
        confirmation(1e6, 50.0, 50.0),
        confirmation(1.3e6, 40.0, 60.0),
    )
    assert squeeze[1] < 0.0 < build[1] and flat[1] == 0.0
    assert 0.0 <= squeeze[0] < flat[0] < build[0] <= 1.0
    assert squeeze[2] < flat[2] < build[2]
