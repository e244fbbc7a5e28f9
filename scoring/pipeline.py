"""The thin shell around the pure model: read snapshots, score, store the run atomically."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from ingest.snapshot import VENUES, Coin
from ingest.source import VenueOutcome
from ingest.storage import SnapshotStore
from scoring.config import ModelConfig
from scoring.errors import NoData, RunFailed, StaleRun
from scoring.model import SUB_SCORES, ModelOutput, score_panels
from scoring.panel import (
    MarketPanel,
    build_market_panel,
    build_onchain_panel_from_frames,
    hour_floor,
)
from scoring.runs import RunStore, new_run_id

__all__ = ["RunResult", "ScoringPipeline", "coin_documents"]

log = logging.getLogger("insider_selling.scoring")


def _num(value: float, digits: int) -> float | None:
    v = float(value)
    return round(v, digits) if math.isfinite(v) else None


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hour_iso(epoch_hour: float) -> str:
    return _iso(datetime.fromtimestamp(int(epoch_hour) * 3600, UTC))


def _venue_breakdown(panel: MarketPanel, i: int) -> list[dict[str, Any]]:
    """Per-venue latest funding (raw and per hour, with interval), OI and basis for coin ``i``."""
    out = []
    for j, venue in enumerate(panel.venues):
        fph = panel["funding_per_hour"][i, j]
        seen = np.nonzero(~np.isnan(fph))[0]
        if not len(seen):
            continue
        t = int(seen[-1])
        interval = float(panel["funding_interval_hours"][i, j, t])
        mark, index = panel["mark_price"][i, j, t], panel["index_price"][i, j, t]
        out.append({
            "venue": venue,
            "exchange": VENUES.get(venue, venue),
            "at": _hour_iso(panel.hours[t]),
            "funding_rate": _num(fph[t] * interval, 10),
            "funding_interval_hours": _num(interval, 3),
            "funding_rate_per_hour": _num(fph[t], 12),
            "open_interest_usd": _num(panel["open_interest_usd"][i, j, t], 2),
            "basis": _num(mark / index - 1.0, 8) if index else None,
        })
    return out


def _carry_streak(
    at: datetime, start: str, days: int, truncated: bool, days_truncated: bool,
    previous: Mapping[str, Any] | None,
) -> tuple[str, int]:
    """Continue a streak that reaches back past the scoring window from the previous run.

    The window holds 7 days of history, so a longer negative streak would be cut at its start.
    When the streak (or the run of negative days) covers the whole window and the previous
    succeeded run listed the coin, its earlier start date and day count carry over.
    """
    if previous is None or not previous.get("signal_start_date"):
        return start, days
    prev_at = previous.get("at")
    if truncated and previous["signal_start_date"] < start:
        start = previous["signal_start_date"]
    if days_truncated and isinstance(prev_at, datetime):
        prev_days = int(previous.get("consecutive_negative_days") or 0)
        elapsed = (hour_floor(at).date() - prev_at.astimezone(UTC).date()).days
        days = max(days, prev_days + elapsed)
    return start, days


def coin_documents(
    at: datetime, panel: MarketPanel, out: ModelOutput, coins: dict[str, Coin], model_version: str,
    previous: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One score document per coin, holding every public field (snake_case, as in the seed).

    ``previous`` maps coin ids to the previous succeeded run's documents (for streaks longer
    than the window).
    """
    f = out.features
    updated = _iso(at)
    docs = []
    previous = previous or {}
    for i, coin_id in enumerate(panel.coin_ids):
        coin = coins.get(coin_id) or Coin(coin_id, coin_id.upper(), coin_id)
        score = _num(out.score[i], 2) or 0.0
        days = int(f.consecutive_negative_days[i])
        if f.streak_start_hour[i] == f.streak_start_hour[i]:  # not NaN
            start = _hour_iso(f.streak_start_hour[i])
        elif days > 0:
            start = _iso(hour_floor(at).replace(hour=0) - timedelta(days=days - 1))
        else:
            start = updated
        prev = previous.get(coin_id)
        if prev is not None and (prev.get("score") or 0) > 0 and score > 0:
            start, days = _carry_streak(at, start, days, bool(f.streak_truncated[i]),
                                        bool(f.negative_days_truncated[i]), prev)
        doc: dict[str, Any] = {
            "coin_id": coin_id,
            "symbol": coin.symbol,
            "name": coin.name,
            "score": score,
            "avg_funding_72h": _num(f.avg_funding_72h[i], 8),
            **{name: _num(out.sub_scores[name][i], 3) for name in SUB_SCORES},
            "manipulation_phase": out.phase[i] if score > 0 else "none",
            "consecutive_negative_days": days,
            "price_change_24h": _num(f.price_change_24h[i] * 100.0, 2),
            "price_change_7d": _num(f.price_change_7d[i] * 100.0, 2),
            "top10_holders_pct": _num(f.top10_holders_pct[i], 2),
            "volume_to_liquidity_24h": _num(f.volume_to_liquidity_24h[i], 4),
            "old_wallet_swap_pct_1d": _num(f.old_wallet_swap_pct_1d[i], 2),
            "holders_change_pct": _num(f.holders_change_pct[i], 6),
            "top10_holders_pct_change": _num(f.top10_holders_pct_change[i], 3),
            "signal_start_date": start,
            "updated_at": updated,
            # Not public fields: history, inputs of the next run, the per-venue breakdown.
            "at": at,
            "model_version": model_version,
            "holders": _num(f.holders[i], 0),
            "venues": _venue_breakdown(panel, i) if score > 0 else [],
            "visible": False,
        }
        docs.append(doc)
    return docs


@dataclass(slots=True)
class RunResult:
    run_id: str
    at: datetime
    status: str
    coins: int = 0
    listed: int = 0
    seconds: float = 0.0
    error: str | None = None
    outcomes: list[VenueOutcome] = field(default_factory=list)


class ScoringPipeline:
    """Runs one scoring pass against the store."""

    def __init__(self, db: Any, config: ModelConfig, *, source: str = "demo",
                 fencing_token: int | None = None) -> None:
        """``fencing_token``: the worker lock's token (see ``insider_selling.worker``); a run commits
        only while no newer token has committed."""
        self.snapshots = SnapshotStore(db)
        self.runs = RunStore(db)
        self.config = config
        self.source = source
        self.fencing_token = fencing_token

    @property
    def window_hours(self) -> int:
        w = self.config.window
        return max(w.funding_hours, 24 * w.price_days) + 1

    async def run(self, at: datetime, outcomes: Sequence[VenueOutcome] = ()) -> RunResult:
        started = time.perf_counter()
        run_id = new_run_id(at)
        await self.runs.start(run_id, at, self.config.version, self.source, self.fencing_token)
        summary: dict[str, Any] = {"venues": [asdict(o) for o in outcomes]}
        try:
            result = await self._score(run_id, at)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            await self.runs.fail(run_id, error, summary)
            log.warning("scoring run failed", extra={"run_id": run_id, "error": error})
            if isinstance(exc, RunFailed):
                return RunResult(run_id, at, "failed", error=error, outcomes=list(outcomes))
            raise
        result.seconds = time.perf_counter() - started
        summary.update(coins=result.coins, listed=result.listed, seconds=round(result.seconds, 3))
        try:
            await self.runs.succeed(run_id, summary, self.fencing_token)
        except StaleRun as exc:
            error = f"{type(exc).__name__}: {exc}"
            await self.runs.fail(run_id, error, summary)
            log.error("scoring run refused by its fencing token", extra={"run_id": run_id, "error": error})
            return RunResult(run_id, at, "failed", error=error, outcomes=list(outcomes))
        await self.runs.mark_visible(run_id)
        result.outcomes = list(outcomes)
        log.info("scoring run succeeded", extra={"run_id": run_id, "coins": result.coins, "listed": result.listed})
        return result

    async def _score(self, run_id: str, at: datetime) -> RunResult:
        hours = self.window_hours
        start = hour_floor(at) - timedelta(hours=hours)
        frames = await self.snapshots.market_window(start, at)
        if not frames:
            raise NoData(f"no market snapshots between {_iso(start)} and {_iso(at)}")
        coins = await self.snapshots.all_coins()
        panel = build_market_panel(at, frames, hours)
        cursor = self.snapshots.onchain.find(
            {"at": {"$gt": at - timedelta(hours=48), "$lte": at}}, {"_id": 0})
        onchain_frames = await cursor.to_list()
        previous = await self.runs.latest_succeeded()
        prev_values: dict[str, dict[str, float | None]] = {}
        carried: dict[str, dict[str, Any]] = {}
        if previous is not None:
            fields = {"coin_id": 1, "holders": 1, "top10_holders_pct": 1, "score": 1, "at": 1,
                      "signal_start_date": 1, "consecutive_negative_days": 1}
            for doc in await self.runs.run_scores(previous["run_id"], fields):
                prev_values[doc["coin_id"]] = {"holders": doc.get("holders"),
                                               "top10_holders_pct": doc.get("top10_holders_pct")}
                carried[doc["coin_id"]] = doc
        onchain = build_onchain_panel_from_frames(at, panel.coin_ids, onchain_frames, prev_values)
        output = score_panels(panel, onchain, self.config)
        docs = coin_documents(at, panel, output, coins, self.config.version, carried)
        await self.runs.write_scores(run_id, docs)
        listed = sum(1 for d in docs if d["score"] > 0)
        return RunResult(run_id, at, "succeeded", coins=len(docs), listed=listed)
