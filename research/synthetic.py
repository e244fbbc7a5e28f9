"""Synthetic validation: score every run of the demo simulator and measure detection quality.

The simulator plants insider episodes (the positives) and confounders (a market-wide funding dip,
short squeezes, concentrated holders with positive funding, coins with a mildly negative bias).
The model sees only the market and on-chain arrays, the same numbers the demo source writes as
snapshot rows (``tests/research/test_synthetic.py`` checks that both paths score identically); the
labels are read here, after scoring, and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from ingest.demo import VENUE_IDS, DemoConfig, DemoMarket
from scoring.config import ModelConfig, load_model_config
from scoring.model import score_panels
from scoring.panel import MARKET_FIELDS, ONCHAIN_FIELDS, PANEL_DTYPE, MarketPanel, OnchainPanel, clean_panel

__all__ = ["ORIGIN", "SyntheticHistory", "roc_auc", "simulate", "synthetic_validation"]

F64 = npt.NDArray[np.float64]
ORIGIN = datetime(2026, 10, 1, tzinfo=UTC)
WARMUP_HOURS = 24 * 7


@dataclass(frozen=True, slots=True)
class SyntheticHistory:
    """The simulated market as one long panel: market ``(coins, venues, T)``, on-chain ``(coins, T)``."""

    market: DemoMarket
    origin: datetime
    epoch_hours: npt.NDArray[np.int64]
    panel: dict[str, npt.NDArray[np.float32]]
    onchain: dict[str, F64]

    def times(self) -> list[datetime]:
        return [datetime.fromtimestamp(int(h) * 3600, UTC) for h in self.epoch_hours]


def simulate(
    config: DemoConfig,
    origin: datetime = ORIGIN,
    warmup_hours: int = WARMUP_HOURS,
) -> SyntheticHistory:
    """Run the simulator hourly for ``config.horizon_hours`` after ``origin``.

    Episodes are planned over the horizon, and ``warm_episodes`` of them are running when the
    warm-up ends, so the first scored run already has positives.
    """
    market = DemoMarket(config, origin, warm_until=origin + timedelta(hours=warmup_hours))
    n, v, t = config.coins, len(VENUE_IDS), config.horizon_hours
    panel = {name: np.full((n, v, t), np.nan, dtype=PANEL_DTYPE) for name in MARKET_FIELDS}
    onchain = {name: np.full((n, t), np.nan) for name in ONCHAIN_FIELDS}
    for k in range(t):
        step = market.step(origin + timedelta(hours=k + 1))
        m = step.market
        interval = m["funding_interval_hours"]
        with np.errstate(invalid="ignore", divide="ignore"):
            panel["funding_per_hour"][:, :, k] = m["funding_rate"] / np.where(interval > 0, interval, np.nan)
        for name in MARKET_FIELDS:
            if name != "funding_per_hour":
                panel[name][:, :, k] = m[name]
        for name, values in step.onchain.items():
            onchain[name][:, k] = values
    first = int(origin.timestamp()) // 3600 + 1
    hours = np.arange(first, first + t, dtype=np.int64)
    whole = MarketPanel(origin + timedelta(hours=t), [c.coin_id for c in market.coins], list(VENUE_IDS), hours, panel)
    if clean_panel(whole):
        raise ValueError("the simulator wrote an unusable value")
    return SyntheticHistory(market, origin, hours, panel, onchain)


def window_panels(
    history: SyntheticHistory, end: int, hours: int, previous_run: dict[str, F64] | None
) -> tuple[MarketPanel, OnchainPanel]:
    """The panels a run at hour index ``end`` sees: the last ``hours`` hours up to and including it."""
    lo = max(0, end - hours + 1)
    at = datetime.fromtimestamp(int(history.epoch_hours[end]) * 3600, UTC)
    coin_ids = [c.coin_id for c in history.market.coins]
    data = {name: values[:, :, lo : end + 1] for name, values in history.panel.items()}
    # the simulator writes only finite, positive values (checked once in ``simulate``)
    panel = MarketPanel(at, coin_ids, list(VENUE_IDS), history.epoch_hours[lo : end + 1], data, checked=True)
    latest = {name: values[:, end] for name, values in history.onchain.items()}
    day = max(0, end - 24)
    day_ago = {
        name: values[:, day] if end >= 24 else np.full(len(coin_ids), np.nan)
        for name, values in history.onchain.items()
    }
    blank = {name: np.full(len(coin_ids), np.nan) for name in ONCHAIN_FIELDS}
    prev = {**blank, **(previous_run or {})}
    return panel, OnchainPanel(latest, day_ago, prev)


def roc_auc(scores: F64, labels: npt.NDArray[np.bool_]) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    pos = int(labels.sum())
    neg = int(labels.size - pos)
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size)
    # average rank of each tie group (1-based)
    boundaries = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1], True])
    for_group = (boundaries[:-1] + boundaries[1:] - 1) / 2.0 + 1.0
    sizes = np.diff(boundaries)
    ranks[order] = np.repeat(for_group, sizes)
    u = ranks[labels].sum() - pos * (pos + 1) / 2.0
    return float(u / (pos * neg))


def _shares(scores: list[F64]) -> tuple[float | None, float | None]:
    """Listed share and share >= 5 of coin x run pairs."""
    if not scores:
        return None, None
    x = np.concatenate(scores)
    return round(float(np.mean(x > 0)), 4), round(float(np.mean(x >= 5.0)), 4)


def synthetic_validation(
    *,
    seed: int = 7,
    hard: bool = False,
    coins: int = 200,
    horizon_hours: int = 24 * 30,
    step_hours: int = 1,
    warmup_hours: int = WARMUP_HOURS,
    model: ModelConfig | None = None,
) -> dict[str, Any]:
    """Score every run after the warm-up and measure it against the planted labels.

    Reported: the model's ROC AUC over every coin x run pair and among the gated pairs (those the
    model lists), next to single-feature baselines (the current cross-venue funding alone, the
    72 h mean alone, the streak alone) on the same pairs; precision at 20; and, for the
    market-wide deleveraging dip and the market-wide hedge wave, the listed share and the share
    >= 5 among coins without an episode.
    """
    config = model or load_model_config()
    if horizon_hours <= warmup_hours + 48:
        raise ValueError(f"horizon_hours must exceed the {warmup_hours} h warm-up by 48 h or more")
    # the market-wide dip and the hedge wave fall in the scored part, not in the warm-up
    scored = horizon_hours - warmup_hours
    dip_start = warmup_hours + int(0.3 * scored)
    wave_start = warmup_hours + int(0.55 * scored)
    wave_hours = min(72, horizon_hours - wave_start - 1)
    demo = DemoConfig(
        seed=seed,
        coins=coins,
        hard=hard,
        horizon_hours=horizon_hours,
        dip_start_hours=dip_start,
        wave_start_hours=wave_start,
        wave_hours=wave_hours,
    )
    history = simulate(demo, warmup_hours=warmup_hours)
    w = config.window
    window = max(w.funding_hours, 24 * w.price_days) + 1
    times = history.times()
    market = history.market
    episode_coins = {c.coin_id: i for i, c in enumerate(market.coins)}

    all_scores: list[F64] = []
    all_labels: list[npt.NDArray[np.bool_]] = []
    all_gates: list[npt.NDArray[np.bool_]] = []
    baselines: dict[str, list[F64]] = {"last_funding": [], "funding_72h": [], "streak": []}
    precisions: list[float] = []
    dip_scores: list[F64] = []
    wave_scores: list[F64] = []
    after_dip_scores: list[F64] = []
    dip_published: list[F64] = []
    wave_published: list[F64] = []
    previous: dict[str, F64] | None = None
    runs = 0
    for end in range(warmup_hours - 1, len(times), step_hours):
        at = times[end]
        panel, onchain = window_panels(history, end, window, previous)
        out = score_panels(panel, onchain, config)
        previous = {"holders": onchain.latest["holders"], "top10_holders_pct": onchain.latest["top10_holders_pct"]}
        runs += 1
        # --- labels: read only now, after the run is scored ---
        labels = np.zeros(len(market.coins), dtype=bool)
        for coin_id, kind in market.labels_at(at).items():
            if kind == "insider":
                labels[episode_coins[coin_id]] = True
        score = out.score
        f = out.features
        all_scores.append(score)
        all_labels.append(labels)
        all_gates.append(out.gate)
        # baselines: higher = more suspicious (more negative funding, longer streak)
        baselines["last_funding"].append(-np.nan_to_num(f.funding_current, nan=np.inf))
        baselines["funding_72h"].append(-np.nan_to_num(f.avg_funding_72h, nan=np.inf))
        baselines["streak"].append(f.streak_hours + f.consecutive_negative_days * 1e-3)
        k = min(20, int(labels.sum()))
        if k:
            top = np.lexsort((np.arange(score.size), -score))[:k]
            precisions.append(float(np.sum(labels[top] & (score[top] > 0))) / k)
        # the confounder checks read the composite (the model before the published scale, which
        # is fitted on real data): "≥ 5" keeps the meaning it had when the bars were set
        composite = out.composite
        if market.dip_active(at):
            dip_scores.append(composite[~labels])
            dip_published.append(score[~labels])
        elif market.market_dip[1] <= at < market.market_dip[1] + timedelta(hours=72):
            after_dip_scores.append(composite[~labels])
        if market.wave_active(at):
            wave_scores.append(composite[~labels])
            wave_published.append(score[~labels])

    scores = np.concatenate(all_scores)
    labels = np.concatenate(all_labels)
    gated = np.concatenate(all_gates)
    after = np.concatenate(after_dip_scores) if after_dip_scores else np.zeros(0)
    listed = scores > 0

    def metric(x: float) -> float | None:
        return None if x != x else round(x, 4)

    baseline_auc: dict[str, dict[str, float | None]] = {}
    for name, parts in baselines.items():
        values = np.concatenate(parts)
        values = np.where(np.isfinite(values), values, -1e9)
        baseline_auc[name] = {
            "roc_auc": metric(roc_auc(values, labels)),
            "roc_auc_gated": metric(roc_auc(values[gated], labels[gated])),
        }
    dip_listed, dip_ge5 = _shares(dip_scores)
    wave_listed, wave_ge5 = _shares(wave_scores)
    _, dip_ge5_published = _shares(dip_published)
    _, wave_ge5_published = _shares(wave_published)
    return {
        "seed": seed,
        "hard": hard,
        "coins": coins,
        "horizon_hours": horizon_hours,
        "warmup_hours": warmup_hours,
        "step_hours": step_hours,
        "runs": runs,
        "pairs": int(scores.size),
        "positive_pairs": int(labels.sum()),
        "gated_pairs": int(gated.sum()),
        "model_version": config.version,
        "roc_auc": metric(roc_auc(scores, labels)),
        "roc_auc_gated": metric(roc_auc(scores[gated], labels[gated])),
        "baselines": baseline_auc,
        "precision_at_20": metric(float(np.mean(precisions)) if precisions else float("nan")),
        "market_dip_share_listed": dip_listed,
        "market_dip_share_ge5": dip_ge5,
        "wave_share_listed": wave_listed,
        "wave_share_ge5": wave_ge5,
        "market_dip_share_ge5_published_scale": dip_ge5_published,
        "wave_share_ge5_published_scale": wave_ge5_published,
        "after_dip_72h_share_ge5": metric(float(np.mean(after >= 5.0)) if after.size else float("nan")),
        "recall_listed": metric(float(np.mean(listed[labels])) if labels.any() else float("nan")),
        "false_listed_share": round(float(np.mean(listed[~labels])), 4),
        "mean_score_positive": round(float(scores[labels].mean()) if labels.any() else 0.0, 3),
        "mean_score_negative": round(float(scores[~labels].mean()), 3),
    }
