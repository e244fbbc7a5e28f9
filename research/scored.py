"""The stored runs read back for evaluation: every succeeded run's score rows, indexed into
hourly price and funding matrices (:class:`ScoredRuns`), and the forward-return horizons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from ingest.snapshot import parse_time
from ingest.storage import SnapshotStore
from research.errors import BacktestError
from research.export import PUBLIC_FIELDS
from scoring.evaluation import Pairs
from scoring.panel import build_market_panel, hour_floor
from scoring.runs import RunStore

__all__ = ["HORIZONS", "ScoredRuns", "load_scored_runs"]

F64 = npt.NDArray[np.float64]

#: The forward-return horizons: (name, hours).
HORIZONS = (("24h", 24), ("7d", 24 * 7))


@dataclass(slots=True)
class ScoredRuns:
    """Every stored succeeded run's score rows (all coins, listed or not), with the price and
    raw cross-venue funding matrices they are evaluated against.

    ``rows`` are the score documents (public fields, plus ``run_id``, ``run_at`` and
    ``model_version``); ``pairs`` indexes them into ``price``/``funding`` (``(coins, hours)``,
    hour ``k`` is epoch hour ``hour0 + k``). ``price`` is the mean over venues of each hour's
    price, ``funding`` the mean over venues of each hour's funding per hour.
    """

    runs: list[dict[str, Any]]
    run_times: list[datetime]
    rows: list[dict[str, Any]]
    pairs: Pairs
    coin_ids: list[str]
    hour0: int
    price: F64
    funding: F64
    has_oi: npt.NDArray[np.bool_]  # (coins, hours): some venue has open interest that hour

    @property
    def score(self) -> F64:
        return np.array([float(r.get("score") or 0.0) for r in self.rows])


def _venue_mean(values: npt.NDArray[np.floating[Any]]) -> F64:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmean(values.astype(np.float64), axis=1), dtype=np.float64)


async def load_scored_runs(
    db: Any, *, frames: list[dict[str, Any]] | None = None, horizon_hours: int = 24 * 7
) -> ScoredRuns:
    """Read the succeeded runs, their score rows and the prices up to ``horizon_hours`` after the
    last run (from ``frames`` when given, else from the store)."""
    store = RunStore(db)
    runs = await store.succeeded_runs()
    if not runs:
        raise BacktestError(
            "no succeeded runs in the store: run `backtest --replay DIR` first "
            "(with the in-memory store, use `validate --history --replay DIR`)"
        )
    run_times = [parse_time(r["at"]) for r in runs]
    first, last = min(run_times), max(run_times)
    end = hour_floor(last) + timedelta(hours=horizon_hours)
    if frames is None:
        frames = await SnapshotStore(db).market_window(first - timedelta(hours=1), end)
    else:
        lo, hi = hour_floor(first) - timedelta(hours=1), end
        frames = [f for f in frames if lo < parse_time(f["at"]) <= hi]
    hours = int((end - hour_floor(first)).total_seconds() // 3600) + 1
    venues = sorted({f["venue"] for f in frames})
    panel = build_market_panel(end, frames, hours, venues=venues)
    coin_row = {c: i for i, c in enumerate(panel.coin_ids)}
    hour0 = int(panel.hours[0])
    fields = {name: 1 for name in (*PUBLIC_FIELDS, "score_exact")}
    rows: list[dict[str, Any]] = []
    run_idx: list[int] = []
    coin_idx: list[int] = []
    hour_idx: list[int] = []
    for k, (run, at) in enumerate(zip(runs, run_times, strict=True)):
        t = int(at.timestamp()) // 3600 - hour0
        for doc in await store.run_scores(run["run_id"], fields):
            i = coin_row.get(doc["coin_id"])
            if i is None:
                continue
            doc.update(run_id=run["run_id"], run_at=at, model_version=run.get("model_version"))
            rows.append(doc)
            run_idx.append(k)
            coin_idx.append(i)
            hour_idx.append(t)
    pairs = Pairs(
        np.array(run_idx, dtype=np.int64), np.array(coin_idx, dtype=np.int64), np.array(hour_idx, dtype=np.int64)
    )
    return ScoredRuns(
        runs,
        run_times,
        rows,
        pairs,
        list(panel.coin_ids),
        hour0,
        _venue_mean(panel["price"]),
        _venue_mean(panel["funding_per_hour"]),
        np.asarray(np.isfinite(panel["open_interest_usd"]).any(axis=1)),
    )
