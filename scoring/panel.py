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
    MarketSample,
    OnchainSample,
    frame_coin_ids,
    parse_time,
    unpack_column,
)

__all__ = ["MARKET_FIELDS", "MarketPanel", "OnchainPanel", "build_market_panel", "build_onchain_panel"]

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


def build_market_panel(
    at: datetime,
    frames: Iterable[Mapping[str, Any]],
    hours: int,
    coin_ids: Sequence[str] | None = None,
    venues: Sequence[str] | None = None,
) -> MarketPanel:
    """Build the panel from stored frames (one per venue and sample time, see ``ingest.snapshot``)."""
    frames = list(frames)
    if coin_ids is None:
        coin_ids = sorted({cid for f in frames for cid in frame_coin_ids(f)})
    venues = list(venues or VENUES)
    panel = MarketPanel.empty(at, coin_ids, venues, hours)
    coin_index = {cid: i for i, cid in enumerate(panel.coin_ids)}
    venue_index = {v: j for j, v in enumerate(venues)}
    first_hour = int(panel.hours[0])
    for frame in sorted(frames, key=lambda f: parse_time(f["at"])):
        j = venue_index.get(frame["venue"])
        t = int(parse_time(frame["at"]).timestamp()) // 3600 - first_hour
        if j is None or not 0 <= t < hours:
            continue
        known = [(k, coin_index[c]) for k, c in enumerate(frame_coin_ids(frame)) if c in coin_index]
        if not known:
            continue
        src = np.array([k for k, _ in known])
        dst = np.array([i for _, i in known])
        columns = {
            name: unpack_column(frame[name])[src]
            for name in MARKET_COLUMNS
        }
        for name in MARKET_FIELDS:
            if name == "funding_per_hour":
                interval = columns["funding_interval_hours"]
                values = columns["funding_rate"] / np.where(interval > 0, interval, np.nan)
            else:
                values = columns[name]
            panel.data[name][dst, j, t] = values
    return panel


def panel_from_samples(
    at: datetime, samples: Iterable[MarketSample], hours: int, coin_ids: Sequence[str] | None = None
) -> MarketPanel:
    """Convenience for tests and replays: build the panel straight from samples."""
    from ingest.snapshot import market_frames

    return build_market_panel(at, market_frames(samples), hours, coin_ids)


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
    for cid, values in (previous_run or {}).items():
        if cid in index:
            for name, value in values.items():
                if name in panel.previous_run and value is not None:
                    panel.previous_run[name][index[cid]] = value
    return panel
