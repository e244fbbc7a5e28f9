"""The model's input: coins x venues x hours arrays on an hourly grid ending at the run time.

Samples are binned to the hour (a later sample in the same hour wins). Missing data is NaN, so a
dataset with few venues or only daily samples yields a sparse panel, not a different code path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from ingest.snapshot import (
    MARKET_COLUMNS,
    VENUES,
    OnchainSample,
    parse_time,
    unpack_column,
)

__all__ = ["MARKET_FIELDS", "ONCHAIN_FIELDS", "MarketPanel", "OnchainPanel", "build_market_panel",
           "build_onchain_panel", "build_onchain_panel_from_frames", "frames_coin_ids"]

F64 = npt.NDArray[np.float64]
MARKET_FIELDS = (
    "funding_per_hour", "funding_interval_hours", "open_interest_usd", "mark_price", "index_price",
    "price", "taker_buy_usd", "taker_sell_usd", "long_short_ratio",
)
ONCHAIN_FIELDS = (
    "liquidity_usd", "volume_24h_usd", "buys_24h", "sells_24h", "buy_volume_24h_usd",
    "sell_volume_24h_usd", "holders", "top10_holders_pct", "creator_pct", "owner_pct",
    "insider_pct", "dev_pct", "sniper_pct", "bundler_pct", "old_wallet_swap_pct_1d",
)


def hour_floor(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class MarketPanel:
    """Market arrays shaped ``(coins, venues, hours)``; ``hours[-1]`` is the run's hour."""

    at: datetime
    coin_ids: list[str]
    venues: list[str]
    hours: npt.NDArray[np.int64]  # hours since the Unix epoch, ascending, contiguous
    data: dict[str, F64] = field(repr=False)

    def __getitem__(self, name: str) -> F64:
        return self.data[name]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.coin_ids), len(self.venues), len(self.hours))

    @classmethod
    def empty(cls, at: datetime, coin_ids: Sequence[str], venues: Sequence[str], hours: int) -> MarketPanel:
        end = int(hour_floor(at).timestamp()) // 3600
        grid = np.arange(end - hours + 1, end + 1, dtype=np.int64)
        shape = (len(coin_ids), len(venues), hours)
        data = {name: np.full(shape, np.nan) for name in MARKET_FIELDS}
        return cls(at, list(coin_ids), list(venues), grid, data)


@dataclass(frozen=True, slots=True)
class OnchainPanel:
    """On-chain values per coin: the latest sample, the one about 24 h before it, and the values
    stored with the previous succeeded run (for the per-run changes)."""

    latest: dict[str, F64]
    day_ago: dict[str, F64]
    previous_run: dict[str, F64]

    @classmethod
    def empty(cls, coins: int) -> OnchainPanel:
        def blank() -> dict[str, F64]:
            return {name: np.full(coins, np.nan) for name in ONCHAIN_FIELDS}

        return cls(blank(), blank(), blank())


class _CoinMapper:
    """Maps a frame's ``coin_ids`` string to panel rows, vectorized and cached per distinct string
    (a venue lists the same coins hour after hour, so each list is split and matched once)."""

    def __init__(self, coin_ids: Sequence[str]) -> None:
        ids = np.asarray(list(coin_ids), dtype=object).astype(str)
        self._order = np.argsort(ids, kind="stable")
        self._sorted = ids[self._order]
        self._cache: dict[str, tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]] = {}

    def __call__(self, coin_ids: str) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        hit = self._cache.get(coin_ids)
        if hit is None:
            names = np.array(coin_ids.split(",") if coin_ids else [], dtype=str)
            if self._sorted.size and names.size:
                pos = np.minimum(np.searchsorted(self._sorted, names), self._sorted.size - 1)
                found = self._sorted[pos] == names
                hit = (np.flatnonzero(found), self._order[pos[found]])
            else:
                empty = np.zeros(0, dtype=np.intp)
                hit = (empty, empty)
            self._cache[coin_ids] = hit
        return hit


def frames_coin_ids(frames: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every coin id in the frames, sorted (each distinct ``coin_ids`` string is split once)."""
    distinct = {f["coin_ids"] for f in frames}
    return sorted({cid for ids in distinct for cid in (ids.split(",") if ids else [])})


def build_market_panel(
    at: datetime,
    frames: Iterable[Mapping[str, Any]],
    hours: int,
    coin_ids: Sequence[str] | None = None,
    venues: Sequence[str] | None = None,
) -> MarketPanel:
    """Build the panel from stored frames (one per venue and sample time, see ``ingest.snapshot``).

    Frames outside the grid or of unknown venues are skipped; within one hour the later sample
    wins. Funding is normalized per hour here, from each row's own interval.
    """
    frames = sorted(frames, key=lambda f: parse_time(f["at"]))
    if coin_ids is None:
        coin_ids = frames_coin_ids(frames)
    venues = list(venues or VENUES)
    panel = MarketPanel.empty(at, coin_ids, venues, hours)
    mapper = _CoinMapper(panel.coin_ids)
    venue_index = {v: j for j, v in enumerate(venues)}
    first_hour = int(panel.hours[0])
    for frame in frames:
        j = venue_index.get(frame["venue"])
        t = int(parse_time(frame["at"]).timestamp()) // 3600 - first_hour
        if j is None or not 0 <= t < hours:
            continue
        src, dst = mapper(frame["coin_ids"])
        if not src.size:
            continue
        columns = {name: unpack_column(frame[name])[src] for name in MARKET_COLUMNS}
        interval = columns["funding_interval_hours"]
        with np.errstate(invalid="ignore", divide="ignore"):
            columns["funding_per_hour"] = columns["funding_rate"] / np.where(interval > 0, interval, np.nan)
        for name in MARKET_FIELDS:
            panel.data[name][dst, j, t] = columns[name]
    return panel


def build_onchain_panel_from_frames(
    at: datetime,
    coin_ids: Sequence[str],
    frames: Iterable[Mapping[str, Any]],
    previous_run: Mapping[str, Mapping[str, float | None]] | None = None,
) -> OnchainPanel:
    """Columnar twin of :func:`build_onchain_panel` for stored on-chain frames (one per sample
    time, numeric columns packed like market frames): no per-coin Python objects."""
    panel = OnchainPanel.empty(len(coin_ids))
    mapper = _CoinMapper(coin_ids)
    n = len(coin_ids)
    latest_at = np.full(n, -1, dtype=np.int64)
    frames = sorted(frames, key=lambda f: parse_time(f["at"]))
    stamps = [int(parse_time(f["at"]).timestamp()) for f in frames]
    limit = int(at.timestamp())
    for frame, stamp in zip(frames, stamps, strict=True):
        if stamp > limit:
            continue
        src, dst = mapper(frame["coin_ids"])
        for name in ONCHAIN_FIELDS:
            if name in frame:
                panel.latest[name][dst] = unpack_column(frame[name])[src]
        latest_at[dst] = stamp
    # the sample nearest 24 h before each coin's latest one (at or before latest - 24 h)
    best = np.full(n, -1, dtype=np.int64)
    for frame, stamp in zip(frames, stamps, strict=True):
        if stamp > limit:
            continue
        src, dst = mapper(frame["coin_ids"])
        ok = (latest_at[dst] >= 0) & (stamp <= latest_at[dst] - 24 * 3600) & (stamp > best[dst])
        if not ok.any():
            continue
        rows, cols = dst[ok], src[ok]
        for name in ONCHAIN_FIELDS:
            if name in frame:
                panel.day_ago[name][rows] = unpack_column(frame[name])[cols]
        best[rows] = stamp
    _fill_previous(panel, coin_ids, previous_run)
    return panel


def _fill_previous(
    panel: OnchainPanel, coin_ids: Sequence[str],
    previous_run: Mapping[str, Mapping[str, float | None]] | None,
) -> None:
    index = {cid: i for i, cid in enumerate(coin_ids)}
    for cid, values in (previous_run or {}).items():
        if cid in index:
            for name, value in values.items():
                if name in panel.previous_run and value is not None:
                    panel.previous_run[name][index[cid]] = value



def build_onchain_panel(
    at: datetime,
    coin_ids: Sequence[str],
    samples: Iterable[OnchainSample],
    previous_run: Mapping[str, Mapping[str, float | None]] | None = None,
) -> OnchainPanel:
    """Latest on-chain sample per coin at or before ``at``, the sample nearest 24 h before it, and
    the previous succeeded run's stored values (``holders``, ``top10_holders_pct``)."""
    panel = OnchainPanel.empty(len(coin_ids))
    index = {cid: i for i, cid in enumerate(coin_ids)}
    by_coin: dict[str, list[OnchainSample]] = {}
    for s in samples:
        if s.coin_id in index and s.at <= at:
            by_coin.setdefault(s.coin_id, []).append(s)
    for cid, rows in by_coin.items():
        rows.sort(key=lambda s: s.at)
        i = index[cid]
        latest = rows[-1]
        target = latest.at - timedelta(hours=24)
        earlier = [s for s in rows if s.at <= target]
        day_ago = earlier[-1] if earlier else None
        for name in ONCHAIN_FIELDS:
            value = getattr(latest, name)
            panel.latest[name][i] = np.nan if value is None else value
            if day_ago is not None:
                old = getattr(day_ago, name)
                panel.day_ago[name][i] = np.nan if old is None else old
    _fill_previous(panel, coin_ids, previous_run)
    return panel
