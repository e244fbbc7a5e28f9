"""Issue 10: one coherent set of fields at any run hour and data cadence, raw-funding day counts,
the 24 h price window, the fast OI scale, streak carry-over, rejected values counted per venue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from ingest.demo import DemoConfig, DemoSource
from ingest.snapshot import MarketSample, market_frames
from ingest.source import SnapshotBatch
from ingest.storage import SnapshotStore
from scoring.config import load_model_config
from scoring.features import compute_features
from scoring.model import score_panels
from scoring.panel import MarketPanel, OnchainPanel, build_market_panel
from scoring.pipeline import ScoringPipeline, coin_documents
from store import StoreHandle

CONFIG = load_model_config()
DAY = datetime(2026, 11, 20, tzinfo=UTC)
PUBLIC_NUMBERS = (
    "score",
    "avg_funding_72h",
    "funding_magnitude",
    "funding_persistence",
    "wallet_concentration",
    "holder_quality_deterioration",
    "coordination_risk",
    "distribution_pressure",
    "market_confirmation",
    "price_change_24h",
    "price_change_7d",
)


def whole_days(start: str, updated: str) -> int:
    t0 = datetime.fromisoformat(start.replace("Z", "+00:00"))
    t1 = datetime.fromisoformat(updated.replace("Z", "+00:00"))
    return (t1 - t0) // timedelta(days=1)


def assert_coherent(docs: list[dict[str, Any]]) -> int:
    """The must-show checks on a run's rows; returns how many are listed."""
    listed = [d for d in docs if d["score"] > 0]
    for d in listed:
        assert d["avg_funding_72h"] < 0, d["coin_id"]
        assert abs(whole_days(d["signal_start_date"], d["updated_at"]) - d["consecutive_negative_days"]) <= 1, d
        if d["manipulation_phase"] == "emerging-pressure":
            assert whole_days(d["signal_start_date"], d["updated_at"]) == 0, d
        for name in PUBLIC_NUMBERS:
            assert isinstance(d[name], float) and np.isfinite(d[name]), (name, d[name])
    top = sorted((d["score_exact"] for d in listed), reverse=True)[:3]  # the order: unrounded
    assert len(set(top)) == len(top), top
    return len(listed)


def sparse_samples(every_hours: int, days: int, end: datetime, phase_hour: int = 0) -> list[MarketSample]:
    """Six coins on two venues, funding printed every ``every_hours`` (8 h, or daily samples of an
    8 h rate). Coins a, b, c: negative for the last 5 days; d, e, f: positive carry."""
    rows = []
    start = end - timedelta(days=days)
    t = start.replace(hour=phase_hour)
    k = 0
    while t <= end:
        for i, coin in enumerate("abcdef"):
            negative = i < 3 and t >= end - timedelta(days=5)
            rate = (-0.0002 - 0.00005 * i) if negative else 0.0001
            for venue, oi in (("binance", 3e6), ("bybit", 1e6)):
                price = 1.0 + 0.001 * k + 0.01 * i
                rows.append(MarketSample(coin, venue, t, rate, 8.0, oi * (1 + 0.001 * k), price * 0.999, price, price))
        t += timedelta(hours=every_hours)
        k += 1
    return rows


@pytest.mark.parametrize("every", [8, 24])
@pytest.mark.parametrize("hour", [0, 3, 13, 17])
def test_runs_at_any_hour_list_coins_on_8h_and_daily_data(every: int, hour: int) -> None:
    """Old code took "current" funding as the mean of the last 4 hourly bins: a run at 13:00 on
    8 h or daily data saw no print and listed nothing."""
    at = DAY + timedelta(hours=hour)
    rows = [s for s in sparse_samples(every, 10, at) if s.at <= at]
    panel = build_market_panel(at, market_frames(rows), 169)
    out = score_panels(panel, OnchainPanel.empty(6), CONFIG)
    docs = coin_documents(at, panel, out, {}, CONFIG.version)
    listed = {d["coin_id"] for d in docs if d["score"] > 0}
    assert listed == {"a", "b", "c"}
    assert assert_coherent(docs) == 3
    for d in docs:
        if d["coin_id"] in listed:
            # negative since 5 days before the run: 4 complete days at least (5 when the run is at 00:00)
            assert d["consecutive_negative_days"] in (4, 5)


def test_days_count_raw_funding_not_the_market_adjusted_one() -> None:
    """A market-wide negative week: every coin's funding is -0.0002 per 8 h, so the idiosyncratic
    part is 0 and nobody lists, but the raw days are what the field reports."""
    panel = MarketPanel.empty(DAY + timedelta(hours=12), [f"c{i:02d}" for i in range(30)], ["binance"], 169)
    d = panel.data
    d["funding_per_hour"][:] = -0.0002 / 8
    d["funding_interval_hours"][:] = 8.0
    d["open_interest_usd"][:] = 1e6
    for name in ("price", "mark_price", "index_price"):
        d[name][:] = 1.0
    f = compute_features(panel, OnchainPanel.empty(30), CONFIG)
    assert np.all(f.idio_funding_72h == 0.0)
    assert np.all(f.consecutive_negative_days == 6)  # the 6 complete days of the window
    assert np.all(f.streak_truncated)
    out = score_panels(panel, OnchainPanel.empty(30), CONFIG)
    assert not out.gate.any()


def test_price_changes_use_the_last_price_at_or_before_t_minus_24h_and_7d() -> None:
    """Hourly prices 100, 101, 102, ... : the change over 24 h compares with the price exactly 24
    hours before the run, over 7 days with the one 168 hours before."""
    panel = MarketPanel.empty(DAY, ["x"], ["binance"], 169)
    price = 100.0 + np.arange(169, dtype=np.float64)
    panel.data["price"][0, 0] = price
    panel.data["funding_per_hour"][0, 0] = -1e-5
    panel.data["funding_interval_hours"][0, 0] = 8.0
    f = compute_features(panel, OnchainPanel.empty(1), CONFIG)
    assert f.price_change_24h[0] == pytest.approx(268.0 / 244.0 - 1.0, rel=1e-9)
    assert f.price_change_7d[0] == pytest.approx(268.0 / 100.0 - 1.0, rel=1e-9)
    # with a gap at T - 24 h, the last price before it
    panel.data["price"][0, 0, 169 - 25] = np.nan
    f = compute_features(panel, OnchainPanel.empty(1), CONFIG)
    assert f.price_change_24h[0] == pytest.approx(268.0 / 243.0 - 1.0, rel=1e-9)


def test_the_fast_oi_window_has_its_own_full_scale() -> None:
    """OI flat, then +2.5 % in the last 4 hours: the fast part is full (0.15 x 4/24 = 2.5 %), the
    24 h part a sixth of full: OI component = 1/4 x 1/6 + 3/4 x 1."""
    panel = MarketPanel.empty(DAY, ["x"], ["binance"], 169)
    d = panel.data
    d["funding_per_hour"][0, 0] = -3e-5
    d["funding_interval_hours"][0, 0] = 8.0
    d["open_interest_usd"][0, 0] = 1e6
    d["open_interest_usd"][0, 0, -4:] = 1.025e6
    out = score_panels(panel, OnchainPanel.empty(1), CONFIG)
    assert out.components["oi"][0] == pytest.approx(0.25 * (0.025 / 0.15) + 0.75, rel=1e-6)


def test_a_streak_longer_than_the_window_carries_over_from_the_previous_run() -> None:
    """Negative all week: the window shows 6 complete days; the previous run (an hour earlier)
    had the streak starting 10 days ago, so the count is the complete days since then."""
    at = DAY + timedelta(hours=12)
    panel = MarketPanel.empty(at, ["x"], ["binance"], 169)
    d = panel.data
    d["funding_per_hour"][0, 0] = -3e-5
    d["funding_interval_hours"][0, 0] = 8.0
    d["price"][0, 0] = 1.0
    out = score_panels(panel, OnchainPanel.empty(1), CONFIG)
    assert out.features.consecutive_negative_days[0] == 6 and out.features.streak_truncated[0]
    previous = {
        "x": {
            "signal_start_date": "2026-11-10T05:00:00Z",
            "consecutive_negative_days": 9,
            "at": at - timedelta(hours=1),
            "score": 4.2,
        }
    }
    doc = coin_documents(at, panel, out, {}, CONFIG.version, previous)[0]
    assert doc["signal_start_date"] == "2026-11-10T05:00:00Z"
    assert doc["consecutive_negative_days"] == 10  # the 10th .. the 19th
    assert_coherent([doc])
    # a previous run older than the window cannot vouch for the days in between
    stale = {"x": {**previous["x"], "at": at - timedelta(days=9)}}
    doc = coin_documents(at, panel, out, {}, CONFIG.version, stale)[0]
    assert doc["consecutive_negative_days"] == 6


def test_funding_closer_to_zero_than_the_floor_never_lists() -> None:
    """Issue 10: -8e-12 per 8 h scored 4 (any negative number passed the gate)."""
    panel = MarketPanel.empty(DAY, ["x"], ["binance", "okx"], 169)
    d = panel.data
    d["funding_per_hour"][:] = -8e-12 / 8
    d["funding_interval_hours"][:] = 8.0
    d["open_interest_usd"][:] = 1e6
    d["open_interest_usd"][:, :, -4:] = 1.2e6
    d["taker_sell_usd"][:] = 60.0
    d["taker_buy_usd"][:] = 40.0
    out = score_panels(panel, OnchainPanel.empty(1), CONFIG)
    assert out.score[0] == 0.0 and not out.gate[0]
    d["funding_per_hour"][:] = -2 * CONFIG.gate.min_funding_per_8h / 8
    assert score_panels(panel, OnchainPanel.empty(1), CONFIG).score[0] > 0


def test_missing_families_shrink_instead_of_inflating() -> None:
    """Issue 10: a coin with only funding and one basis print scored five times higher than the
    same coin with full but neutral data. Now missing data counts as no evidence."""

    def panel_with(full: bool) -> MarketPanel:
        p = MarketPanel.empty(DAY, ["x"], ["binance"], 169)
        d = p.data
        d["funding_per_hour"][:] = -3e-5
        d["funding_interval_hours"][:] = 8.0
        d["mark_price"][:, :, -1] = 0.998  # one basis print, -0.2 %
        d["index_price"][:, :, -1] = 1.0
        if full:  # everything else present and neutral
            d["mark_price"][:, :, :-1] = 0.998  # the same basis every hour
            d["index_price"][:, :, :-1] = 1.0
            d["price"][:] = 0.998
            d["open_interest_usd"][:] = 1e6
            d["taker_buy_usd"][:] = 50.0
            d["taker_sell_usd"][:] = 50.0
            d["long_short_ratio"][:] = 1.2
        return p

    sparse = score_panels(panel_with(False), OnchainPanel.empty(1), CONFIG)
    full = score_panels(panel_with(True), OnchainPanel.empty(1), CONFIG)
    assert sparse.score[0] <= full.score[0] + 1e-12
    # basis, and the price path (from the mark, where a venue has no trade price)
    k = CONFIG.confirmation
    assert sparse.coverage["market_confirmation"][0] == pytest.approx(
        (k.basis + k.price)
        / (
            CONFIG.confirmation.oi
            + CONFIG.confirmation.basis
            + CONFIG.confirmation.cvd
            + CONFIG.confirmation.crowding
            + CONFIG.confirmation.price
        )
    )
    assert full.coverage["market_confirmation"][0] == 1.0


def test_non_finite_and_non_positive_values_are_rejected_and_counted_per_venue() -> None:
    at = DAY
    good = [MarketSample("x", "binance", at - timedelta(hours=h), -0.0002, 8.0, 1e6, 1.0, 1.0, 1.0) for h in range(72)]
    bad = [
        MarketSample("x", "okx", at, float("inf"), 8.0, 1e6, 1.0, 1.0, 1.0),  # non-finite
        MarketSample("x", "okx", at - timedelta(hours=1), -0.0002, 8.0, -5.0, 1.0, 1.0, 0.0),  # OI < 0, price 0
        MarketSample("x", "okx", at - timedelta(hours=2), -0.0002, None, 1e6, -1.0, 1.0, 1.0),  # no interval
        MarketSample("x", "nosuchvenue", at, -0.0002, 8.0, 1e6, 1.0, 1.0, 1.0),  # unknown venue
    ]
    panel = build_market_panel(at, market_frames(good + bad), 169)
    assert panel.rejected == {
        "okx": {"non_finite": 1, "negative_open_interest": 1, "price_not_positive": 2, "missing_funding_interval": 1},
        "nosuchvenue": {"unknown_venue": 1},
    }
    out = score_panels(panel, OnchainPanel.empty(1), CONFIG)
    doc = coin_documents(at, panel, out, {}, CONFIG.version)[0]
    assert doc["score"] > 0
    assert_coherent([doc])


async def test_the_run_reports_its_rejections_and_the_served_demo_is_coherent(store: StoreHandle) -> None:
    db: Any = store.db
    source = DemoSource(DemoConfig(seed=5, coins=80))
    end = DAY
    await SnapshotStore(db).write_batch(await source.backfill(end, 192))
    bad = MarketSample("zzz-broken", "binance", end, float("inf"), 8.0, -1.0, 1.0, 1.0, 1.0)
    await SnapshotStore(db).write_batch(SnapshotBatch(at=end, market=[bad]))
    pipeline = ScoringPipeline(db, CONFIG)
    listed = 0
    for hours in (0, 1, 2):
        at = end + timedelta(hours=hours)
        if hours:
            await SnapshotStore(db).write_batch(await source.collect(at))
        result = await pipeline.run(at)
        assert result.status == "succeeded"
        docs = await pipeline.runs.run_scores(result.run_id)
        listed += assert_coherent(docs)
        board = await pipeline.runs.leaderboard(result.run_id, limit=3)
        exact = [d["score_exact"] for d in board]
        assert exact == sorted(exact, reverse=True) and len(set(d["score"] for d in board)) == 3
    assert listed > 0
    first = next(r for r in await pipeline.runs.recent_runs() if r["at"] == end)
    assert first["rejected"] == {"binance": {"non_finite": 1, "negative_open_interest": 1}}
