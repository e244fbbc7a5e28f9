"""The live track record (DESIGN §4): the realized forward excess returns of every closed run.

After each succeeded run, :meth:`TrackRecord.close_windows` looks for earlier succeeded runs whose
24 h or 7 d window has closed and, for each, computes every scored coin's forward return and its
excess over the universe median from the prices stored in ``market_snapshots`` at the time, with
:func:`scoring.evaluation.forward_excess`, the function the research report uses. The result is
written once to ``track_record`` (one document per run and window, unique), with the run's model
version, and summarized on the run document (``runs.track.<window>``). Nothing is recomputed: a
later model version, a later price correction or a second call leaves a written record as it is.

A window *closes* when the hour holding the run's time plus the window has passed entirely: prices
are hourly buckets (the mean over venues of each venue's last sample in the hour, as the report
reads them), so a record is written only once the bucket can no longer change, and a report
computed later over the same stored prices gives the same numbers.

:meth:`TrackRecord.summary` turns the stored records into the served figures: per selection
(top N of each run, every listed coin, each score band, the universe) the mean excess return with
the 95 % interval of :func:`scoring.evaluation.selection_stats` (the two-way bootstrap over coins
and blocks of time); and, for the chart, the cumulative excess return of the top N and of all
listed coins over a chain of runs whose windows do not overlap.
"""

from __future__ import annotations

import asyncio
import math
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from ingest.snapshot import parse_time
from ingest.storage import SnapshotStore
from scoring.evaluation import Pairs, block_hours, forward_excess, selection_stats
from scoring.panel import build_market_panel, hour_floor

__all__ = [
    "BANDS",
    "MAX_TOP_N",
    "TOP_N",
    "WINDOWS",
    "Band",
    "TrackRecord",
    "band_masks",
    "hour_prices",
    "run_ranks",
    "track_figures",
]

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

#: The track record's windows: name -> hours.
WINDOWS: dict[str, int] = {"24h": 24, "7d": 24 * 7}
#: The default and the largest "top N of each run".
TOP_N = 5
MAX_TOP_N = 50
#: Runs handled per window by one :meth:`TrackRecord.close_windows` call (a backlog drains over runs).
BATCH = 200
SUCCEEDED = "succeeded"
#: Summaries kept by :meth:`TrackRecord.summary`.
SUMMARY_CACHE = 32


@dataclass(frozen=True, slots=True)
class Band:
    """A score band: ``low <= score < high`` on the displayed (two-decimal) score."""

    id: str
    label: str
    low: float
    high: float


#: The score bands of the track record, as the report's model buckets.
BANDS: tuple[Band, ...] = (
    Band("unlisted", "not listed (score 0)", 0.0, 1e-12),
    Band("0-2.5", "score (0, 2.5)", 1e-12, 2.5),
    Band("2.5-5", "score [2.5, 5)", 2.5, 5.0),
    Band("5-7.5", "score [5, 7.5)", 5.0, 7.5),
    Band("7.5-10", "score [7.5, 10]", 7.5, math.inf),
)
BAND_IDS = tuple(b.id for b in BANDS)


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


# -- pure figures -------------------------------------------------------------------------------


def hour_prices(frames: Sequence[dict[str, Any]], hour: datetime) -> dict[str, float]:
    """Each coin's price in ``hour``: the mean over venues of the hour's samples (the later sample
    in the hour wins per venue), exactly as ``research.scored.load_scored_runs`` reads prices."""
    if not frames:
        return {}
    venues = sorted({f["venue"] for f in frames})
    panel = build_market_panel(hour, frames, 1, venues=venues)
    with warnings.catch_warnings():  # a coin without a price in the hour: NaN, left out
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(panel["price"].astype(np.float64), axis=1)[:, 0]
    return {cid: float(mean[i]) for i, cid in enumerate(panel.coin_ids) if math.isfinite(mean[i])}


def run_ranks(score: F64, score_exact: F64, coin_ids: Sequence[str]) -> npt.NDArray[np.int64]:
    """Rank within one run of each listed coin (0 = highest unrounded score, ties by coin id);
    -1 for coins not listed."""
    listed = score > 0
    order = sorted(np.flatnonzero(listed).tolist(), key=lambda i: (-score_exact[i], coin_ids[i]))
    ranks = np.full(score.size, -1, dtype=np.int64)
    ranks[order] = np.arange(len(order))
    return ranks


def band_masks(score: F64) -> dict[str, B]:
    return {b.id: (score >= b.low) & (score < b.high) for b in BANDS}


def track_figures(
    selections: Sequence[tuple[str, str, str, B]],
    ret: F64,
    excess: F64,
    pairs: Pairs,
    hours: int,
    *,
    reps: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per ``(id, kind, label, mask)``: :func:`selection_stats` with the block of
    :func:`block_hours` for the window. Each selection draws from its own generator seeded with
    ``seed``, so a selection's interval does not depend on which others were asked for."""
    rows = []
    for sel_id, kind, label, mask in selections:
        stats = selection_stats(
            mask, ret, excess, pairs, reps=reps, rng=np.random.default_rng(seed), block=block_hours(hours)
        )
        rows.append({"id": sel_id, "kind": kind, "label": label, **stats.as_dict()})
    return rows


# -- the store ----------------------------------------------------------------------------------


class TrackRecord:
    """The ``track_record`` collection and the runs' ``track`` summaries; :meth:`summary` keeps
    its latest answers (at most :data:`SUMMARY_CACHE` of them, each bounded by the series limit),
    keyed by the arguments and the number of stored records, which only grows."""

    def __init__(self, db: Any, *, reps: int = 1000) -> None:
        self.records = db["track_record"]
        self.runs = db["runs"]
        self.scores = db["scores"]
        self.snapshots = SnapshotStore(db)
        self.reps = reps
        self._summaries: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._computing = asyncio.Lock()

    # writing -----------------------------------------------------------------------------------

    async def close_windows(self, now: datetime, *, batch: int = BATCH) -> int:
        """Realize every window closed by ``now`` that has no record yet; returns records written."""
        written = 0
        for window, hours in WINDOWS.items():
            # hour_floor(at) + hours + 1 h <= now  <=>  at < hour_floor(now - hours - 1 h) + 1 h
            bound = hour_floor(now - timedelta(hours=hours + 1)) + timedelta(hours=1)
            pending = (
                await self.runs.find(
                    {"status": SUCCEEDED, "at": {"$lt": bound}, f"track.{window}": {"$exists": False}},
                    {"_id": 0, "run_id": 1, "at": 1, "model_version": 1, "source": 1, "pruned": 1},
                )
                .sort([("at", ASCENDING)])
                .limit(batch)
                .to_list()
            )
            prices: dict[datetime, dict[str, float]] = {}
            for run in pending:
                written += await self._close(run, window, hours, now, prices)
        return written

    async def _prices(self, hour: datetime, cache: dict[datetime, dict[str, float]]) -> dict[str, float]:
        found = cache.get(hour)
        if found is None:
            # market_window is (start, end]: the samples of [hour, hour + 1 h)
            tick = timedelta(microseconds=1)
            frames = await self.snapshots.market_window(hour - tick, hour + timedelta(hours=1) - tick)
            found = cache[hour] = hour_prices(frames, hour)
        return found

    async def _close(
        self, run: dict[str, Any], window: str, hours: int, now: datetime, cache: dict[datetime, dict[str, float]]
    ) -> int:
        at = _utc(parse_time(run["at"]))
        start = hour_floor(at)
        docs = (
            []
            if run.get("pruned")
            else await self.scores.find(
                {"run_id": run["run_id"]}, {"_id": 0, "coin_id": 1, "score": 1, "score_exact": 1}
            ).to_list()
        )
        docs.sort(key=lambda d: d["coin_id"])
        coin_ids = [d["coin_id"] for d in docs]
        score = np.array([float(d.get("score") or 0.0) for d in docs])
        exact = np.array([float(d.get("score_exact") or d.get("score") or 0.0) for d in docs])
        ranks = run_ranks(score, exact, coin_ids)
        before = await self._prices(start, cache) if docs else {}
        after = await self._prices(start + timedelta(hours=hours), cache) if docs else {}
        price = np.array(
            [[before.get(c, math.nan), after.get(c, math.nan)] for c in coin_ids], dtype=np.float64
        ).reshape(len(coin_ids), 2)
        n = len(coin_ids)
        pairs = Pairs(np.zeros(n, np.int64), np.arange(n, dtype=np.int64), np.zeros(n, np.int64))
        ret, excess = forward_excess(price, pairs, 1)  # columns: the run's hour and hours later
        ok = np.isfinite(excess)
        top = ok & (ranks >= 0) & (ranks < TOP_N)
        listed = ok & (score > 0)
        universe = float(np.median(ret[ok])) if ok.any() else math.nan
        summary = {
            "closes_at": start + timedelta(hours=hours),
            "model_version": run.get("model_version"),
            "coins": int(ok.sum()),
            "listed": int((score > 0).sum()),
            "universe_return": _finite(universe),
            "top_excess": _finite(float(excess[top].mean())) if top.any() else None,
            "listed_excess": _finite(float(excess[listed].mean())) if listed.any() else None,
        }
        record = {
            "run_id": run["run_id"],
            "window": window,
            "hours": hours,
            "at": at,
            "source": run.get("source"),
            "computed_at": now,
            **summary,
            "coin_ids": [c for c, good in zip(coin_ids, ok, strict=True) if good],
            "score": score[ok].tolist(),
            "rank": ranks[ok].tolist(),
            "return": ret[ok].tolist(),
            "excess": excess[ok].tolist(),
        }
        try:
            await self.records.insert_one(record)
        except DuplicateKeyError:  # written by another worker, or before a crash: keep it
            stored = await self.records.find_one({"run_id": run["run_id"], "window": window}, {"_id": 0})
            if stored is None:
                return 0
            summary = {k: stored.get(k) for k in summary}
            written = 0
        else:
            written = 1
        await self.runs.update_one(
            {"run_id": run["run_id"], f"track.{window}": {"$exists": False}}, {"$set": {f"track.{window}": summary}}
        )
        return written

    # reading -----------------------------------------------------------------------------------

    async def load(
        self,
        window: str,
        *,
        model_version: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"window": window}
        if model_version is not None:
            query["model_version"] = model_version
        span: dict[str, Any] = {}
        if start is not None:
            span["$gte"] = start
        if end is not None:
            span["$lte"] = end
        if span:
            query["at"] = span
        docs: list[dict[str, Any]] = (
            await self.records.find(query, {"_id": 0}).sort([("at", ASCENDING), ("run_id", ASCENDING)]).to_list()
        )
        return docs

    async def summary(
        self,
        window: str,
        *,
        model_version: str | None = None,
        band: str | None = None,
        top_n: int = TOP_N,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> dict[str, Any]:
        """:func:`summarize` over the stored records (computed off the event loop)."""
        count = await self.records.count_documents({"window": window})
        key = (window, model_version, band, top_n, start, end, count)
        cached = self._summaries.get(key)
        if cached is not None:
            self._summaries.move_to_end(key)
            return cached
        # one computation at a time per process: the bootstrap of a long range takes seconds of
        # CPU, and requests for the same figures wait for the first one's answer
        async with self._computing:
            cached = self._summaries.get(key)
            if cached is not None:
                return cached
            records = await self.load(window, model_version=model_version, start=start, end=end)
            result = await asyncio.to_thread(summarize, records, window, top_n=top_n, band=band, reps=self.reps)
            self._summaries[key] = result
            while len(self._summaries) > SUMMARY_CACHE:
                self._summaries.popitem(last=False)
        return result


def summarize(
    records: Sequence[dict[str, Any]],
    window: str,
    *,
    top_n: int = TOP_N,
    band: str | None = None,
    reps: int = 1000,
    seed: int = 0,
    series_limit: int = 1000,
) -> dict[str, Any]:
    """The served figures from stored records (pure): selections with intervals, and the chart's
    series over runs whose windows do not overlap (the earliest run, then each next run that starts
    when the previous window has closed), compounding each run's mean excess."""
    hours = WINDOWS[window]
    coin_index: dict[str, int] = {c: i for i, c in enumerate(sorted({c for r in records for c in r["coin_ids"]}))}
    lengths = [len(r["coin_ids"]) for r in records]
    run = np.repeat(np.arange(len(records), dtype=np.int64), lengths)
    coin = np.array([coin_index[c] for r in records for c in r["coin_ids"]], dtype=np.int64)
    hour = np.repeat(np.array([int(_utc(r["at"]).timestamp()) // 3600 for r in records], dtype=np.int64), lengths)
    pairs = Pairs(run, coin, hour)

    def column(name: str, dtype: Any = np.float64) -> Any:
        return np.array([v for r in records for v in r[name]], dtype=dtype).reshape(-1)

    score, rank = column("score"), column("rank", np.int64)
    ret, excess = column("return"), column("excess")
    selections: list[tuple[str, str, str, B]] = [
        (f"top{top_n}", "top", f"top {top_n} of each run", (rank >= 0) & (rank < top_n)),
        ("listed", "listed", "listed (score > 0)", score > 0),
    ]
    masks = band_masks(score)
    selections += [(b.id, "band", b.label, masks[b.id]) for b in BANDS if band is None or b.id == band]
    selections.append(("universe", "universe", "every scored coin", np.ones(score.size, dtype=bool)))
    table = track_figures(selections, ret, excess, pairs, hours, reps=reps, seed=seed)

    series: list[dict[str, Any]] = []
    top_cum = listed_cum = 1.0
    next_at: datetime | None = None
    for k, r in enumerate(records):
        at = _utc(r["at"])
        if next_at is not None and at < next_at:
            continue
        next_at = at + timedelta(hours=hours)
        in_run = run == k
        top_sel = in_run & (rank >= 0) & (rank < top_n)
        listed_sel = in_run & (score > 0)
        top_x = float(excess[top_sel].mean()) if top_sel.any() else 0.0  # nothing listed: nothing held
        listed_x = float(excess[listed_sel].mean()) if listed_sel.any() else 0.0
        top_cum *= 1.0 + top_x
        listed_cum *= 1.0 + listed_x
        series.append(
            {
                "run_id": r["run_id"],
                "at": at,
                "closes_at": _utc(r["closes_at"]),
                "model_version": r.get("model_version"),
                "listed": int(r.get("listed") or 0),
                "universe_return": r.get("universe_return"),
                "top_excess": top_x,
                "listed_excess": listed_x,
                "top_cumulative": top_cum - 1.0,
                "listed_cumulative": listed_cum - 1.0,
            }
        )
    sources = {r.get("source") for r in records}
    return {
        "window": window,
        "hours": hours,
        "benchmark": "universe median",
        "top_n": top_n,
        "band": band,
        "runs": len(records),
        "from": _utc(records[0]["at"]) if records else None,
        "to": _utc(records[-1]["at"]) if records else None,
        "model_versions": sorted({str(r["model_version"]) for r in records if r.get("model_version")}),
        "simulated": "demo" in sources,
        "bootstrap": {"reps": reps, "seed": seed, "block_hours": block_hours(hours), "level": 0.95},
        "selections": table,
        "series": series[-series_limit:],
    }
