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

from ingest.snapshot import VENUES, Coin, parse_time
from ingest.source import VenueOutcome
from ingest.storage import SnapshotStore
from scoring.config import ModelConfig
from scoring.errors import NoData, RunFailed, StaleRun
from scoring.model import COVERAGE, SUB_SCORES, ModelOutput, score_panels
from scoring.panel import (
    MarketPanel,
    build_market_panel,
    build_onchain_panel_from_frames,
    hour_floor,
)
from scoring.runs import RunStore, new_run_id
from scoring.track import TrackRecord

__all__ = ["RunResult", "ScoringPipeline", "coin_documents", "run_changes"]

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
        out.append(
            {
                "venue": venue,
                "exchange": VENUES.get(venue, venue),
                "at": _hour_iso(panel.hours[t]),
                "funding_rate": _num(fph[t] * interval, 10),
                "funding_interval_hours": _num(interval, 3),
                "funding_rate_per_hour": _num(fph[t], 12),
                "open_interest_usd": _num(panel["open_interest_usd"][i, j, t], 2),
                "basis": _num(mark / index - 1.0, 8) if index else None,
                "mark_price": _num(mark, 10),
            }
        )
    return out


def _carry_streak(
    at: datetime,
    start: str,
    days: int,
    truncated: bool,
    previous: Mapping[str, Any] | None,
    window_hours: int,
) -> tuple[str, int]:
    """Continue a streak that reaches back past the scoring window from the previous run.

    The window holds 7 days of history, so a longer streak would be cut at the panel's first
    complete day. When the streak reaches that day (``truncated``) and the previous succeeded run,
    recent enough for its window to overlap this one, had a streak that began earlier, that start
    carries over and the count is recomputed from it by the same day rule: the complete UTC days
    from the start's day to the day before the run's day.
    """
    if not truncated or previous is None:
        return start, days
    prev_start = previous.get("signal_start_date")
    prev_at = previous.get("at")
    prev_days = previous.get("consecutive_negative_days") or 0
    if not prev_start or not prev_days or prev_at is None:
        return start, days
    if parse_time(prev_at) < at - timedelta(hours=window_hours) or prev_start >= start:
        return start, days
    first_day = parse_time(prev_start).date()
    return prev_start, max(days, (hour_floor(at).date() - first_day).days)


def _required(value: float, digits: int) -> float:
    """A field the contract types as a number (never null): non-finite becomes 0.0."""
    v = float(value)
    return round(v, digits) if math.isfinite(v) else 0.0


def coin_documents(
    at: datetime,
    panel: MarketPanel,
    out: ModelOutput,
    coins: dict[str, Coin],
    model_version: str,
    previous: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    window_hours: int = 169,
) -> list[dict[str, Any]]:
    """One score document per coin, holding every public field (snake_case, as in the seed).

    ``previous`` maps coin ids to the previous succeeded run's documents (for streaks longer
    than the window). Fields the contract types as numbers are never null (see :func:`_required`);
    ``score_exact`` is the unrounded score, the leaderboard's tie-break.
    """
    f = out.features
    updated = _iso(at)
    docs = []
    previous = previous or {}
    for i, coin_id in enumerate(panel.coin_ids):
        coin = coins.get(coin_id) or Coin(coin_id, coin_id.upper(), coin_id)
        exact = float(out.score[i]) if math.isfinite(float(out.score[i])) else 0.0
        score = round(exact, 2)
        if score == 0.0 and exact > 0.0:  # a listed coin never shows 0.00
            score = 0.01
        days = int(f.consecutive_negative_days[i])
        start = _hour_iso(f.streak_start_hour[i]) if math.isfinite(f.streak_start_hour[i]) else updated
        start, days = _carry_streak(at, start, days, bool(f.streak_truncated[i]), previous.get(coin_id), window_hours)
        doc: dict[str, Any] = {
            "coin_id": coin_id,
            "symbol": coin.symbol,
            "name": coin.name,
            "score": score,
            "avg_funding_72h": _required(f.avg_funding_72h[i], 8),
            **{name: _required(out.sub_scores[name][i], 3) for name in SUB_SCORES},
            "manipulation_phase": out.phase[i] if score > 0 else "none",
            "consecutive_negative_days": days,
            "price_change_24h": _required(f.price_change_24h[i] * 100.0, 2),
            "price_change_7d": _required(f.price_change_7d[i] * 100.0, 2),
            "top10_holders_pct": _num(f.top10_holders_pct[i], 2),
            "volume_to_liquidity_24h": _num(f.volume_to_liquidity_24h[i], 4),
            "old_wallet_swap_pct_1d": _num(f.old_wallet_swap_pct_1d[i], 2),
            "holders_change_pct": _num(f.holders_change_pct[i], 6),
            "top10_holders_pct_change": _num(f.top10_holders_pct_change[i], 3),
            "signal_start_date": start,
            "updated_at": updated,
            # Not public fields: history, inputs of the next run, the per-venue breakdown.
            "at": at,
            "score_exact": exact,
            "coverage": {name: round(float(out.coverage[name][i]), 3) for name in COVERAGE},
            "model_version": model_version,
            "holders": _num(f.holders[i], 0),
            # every coin, listed or not: a coin looked up (BTC at 0) shows its funding and OI too
            "venues": _venue_breakdown(panel, i),
            "visible": False,
        }
        docs.append(doc)
    return docs


def run_changes(docs: Sequence[Mapping[str, Any]], previous: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The coins whose score or phase moved since the previous succeeded run (``previous``: its
    documents by coin id; a coin absent there was at 0): the run's outbox, from which the webhook
    events (listed, delisted, score crossed, phase changed) are derived per subscription."""
    changes = []
    for doc in docs:
        before = previous.get(doc["coin_id"]) or {}
        prev_score = float(before.get("score") or 0.0)
        prev_phase = str(before.get("manipulation_phase") or "none")
        if doc["score"] == prev_score and doc["manipulation_phase"] == prev_phase:
            continue
        changes.append(
            {
                "coin_id": doc["coin_id"],
                "symbol": doc["symbol"],
                "name": doc["name"],
                "score": doc["score"],
                "previous_score": prev_score,
                "phase": doc["manipulation_phase"],
                "previous_phase": prev_phase,
            }
        )
    return changes


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
    #: market values rejected while building the panel, per venue and reason
    rejected: dict[str, dict[str, int]] = field(default_factory=dict)
    #: coins whose score or phase moved since the previous succeeded run (the run's outbox)
    changes: list[dict[str, Any]] = field(default_factory=list)
    #: the run this one took as its previous one (its unlisted coins' venues are dropped)
    previous_run_id: str | None = None


class ScoringPipeline:
    """Runs one scoring pass against the store."""

    def __init__(self, db: Any, config: ModelConfig, *, source: str = "demo", fencing_token: int | None = None) -> None:
        """``fencing_token``: the worker lock's token (see ``insider_selling.worker``); a run commits
        only while no newer token has committed."""
        self.snapshots = SnapshotStore(db)
        self.runs = RunStore(db)
        self.track = TrackRecord(db)
        self.config = config
        self.source = source
        self.fencing_token = fencing_token

    @property
    def window_hours(self) -> int:
        w = self.config.window
        return max(w.funding_hours, 24 * w.price_days) + 1

    async def run(self, at: datetime, outcomes: Sequence[VenueOutcome] = (), *, backdated: bool = False) -> RunResult:
        """Score the market at ``at`` and store the run. ``backdated``: a run timed before the
        latest one (the demo's backfilled hours, scored after start): its previous run is the one
        in force at ``at``, not the latest."""
        started = time.perf_counter()
        run_id = new_run_id(at)
        await self.runs.start(run_id, at, self.config.version, self.source, self.fencing_token)
        summary: dict[str, Any] = {"venues": [asdict(o) for o in outcomes]}
        try:
            result = await self._score(run_id, at, backdated=backdated)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            await self.runs.fail(run_id, error, summary)
            log.warning("scoring run failed", extra={"run_id": run_id, "error": error})
            if isinstance(exc, RunFailed):
                return RunResult(run_id, at, "failed", error=error, outcomes=list(outcomes))
            raise
        result.seconds = time.perf_counter() - started
        summary.update(
            coins=result.coins, listed=result.listed, seconds=round(result.seconds, 3), rejected=result.rejected
        )
        try:
            await self.runs.succeed(run_id, summary, self.fencing_token, result.changes, outbox=not backdated)
        except StaleRun as exc:
            error = f"{type(exc).__name__}: {exc}"
            await self.runs.fail(run_id, error, summary)
            log.error("scoring run refused by its fencing token", extra={"run_id": run_id, "error": error})
            return RunResult(run_id, at, "failed", error=error, outcomes=list(outcomes))
        await self.runs.mark_visible(run_id)
        if result.previous_run_id is not None:  # its unlisted coins' venues: only the latest keeps them
            try:
                await self.runs.slim_unlisted(result.previous_run_id)
            except Exception:  # housekeeping: the run has succeeded regardless
                log.exception("slimming the previous run failed", extra={"run_id": run_id})
        result.outcomes = list(outcomes)
        try:  # the track record of earlier runs whose windows this run's time has closed
            await self.track.close_windows(at)
        except Exception:  # bookkeeping: the run has succeeded regardless; the next run retries
            log.exception("track record update failed", extra={"run_id": run_id})
        log.info(
            "scoring run succeeded",
            extra={
                "run_id": run_id,
                "coins": result.coins,
                "listed": result.listed,
                "rejected": sum(sum(c.values()) for c in result.rejected.values()),
            },
        )
        return result

    async def _score(self, run_id: str, at: datetime, *, backdated: bool = False) -> RunResult:
        hours = self.window_hours
        start = hour_floor(at) - timedelta(hours=hours)
        frames = await self.snapshots.market_window(start, at)
        if not frames:
            raise NoData(f"no market snapshots between {_iso(start)} and {_iso(at)}")
        coins = await self.snapshots.all_coins()
        panel = build_market_panel(at, frames, hours)
        cursor = self.snapshots.onchain.find({"at": {"$gt": at - timedelta(hours=48), "$lte": at}}, {"_id": 0})
        onchain_frames = await cursor.to_list()
        previous = await (self.runs.in_force(at) if backdated else self.runs.latest_succeeded())
        prev_values: dict[str, dict[str, float | None]] = {}
        carried: dict[str, dict[str, Any]] = {}
        if previous is not None:
            fields = {
                "coin_id": 1,
                "holders": 1,
                "top10_holders_pct": 1,
                "score": 1,
                "at": 1,
                "signal_start_date": 1,
                "consecutive_negative_days": 1,
                "manipulation_phase": 1,
            }
            # holder changes are per run interval: against a run long ago (a restart after a
            # downtime) they would look extreme, so they are unknown then, as on the first run
            max_age = timedelta(hours=self.config.supply.previous_run_max_age_hours)
            recent = parse_time(previous["at"]) >= at - max_age
            for doc in await self.runs.run_scores(previous["run_id"], fields):
                if recent:
                    prev_values[doc["coin_id"]] = {
                        "holders": doc.get("holders"),
                        "top10_holders_pct": doc.get("top10_holders_pct"),
                    }
                carried[doc["coin_id"]] = doc
        onchain = build_onchain_panel_from_frames(at, panel.coin_ids, onchain_frames, prev_values)
        output = score_panels(panel, onchain, self.config)
        docs = coin_documents(at, panel, output, coins, self.config.version, carried, window_hours=self.window_hours)
        await self.runs.write_scores(run_id, docs)
        listed = sum(1 for d in docs if d["score"] > 0)
        if panel.rejected:
            log.warning("market values rejected", extra={"run_id": run_id, "rejected": panel.rejected})
        return RunResult(
            run_id,
            at,
            "succeeded",
            coins=len(docs),
            listed=listed,
            rejected=panel.rejected,
            changes=run_changes(docs, carried),
            previous_run_id=previous["run_id"] if previous is not None else None,
        )
