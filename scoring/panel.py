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

__all__ = [
    "MARKET_FIELDS",
    "ONCHAIN_FIELDS",
    "PANEL_DTYPE",
    "REJECTIONS",
    "MarketPanel",
    "OnchainPanel",
    "build_market_panel",
    "build_onchain_panel",
    "build_onchain_panel_from_frames",
    "clean_columns",
    "clean_panel",
    "frames_coin_ids",
]

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
#: The market panel's dtype: float32 halves the memory of 5k coins x 13 venues x 169 h (the
#: inputs carry fewer significant digits than that anyway); features are reduced in float64.
PANEL_DTYPE = np.float32
MARKET_FIELDS = (
    "funding_per_hour",
    "funding_interval_hours",
    "open_interest_usd",
    "mark_price",
    "index_price",
    "price",
    "taker_buy_usd",
    "taker_sell_usd",
    "long_short_ratio",
)
ONCHAIN_FIELDS = (
    "liquidity_usd",
    "volume_24h_usd",
    "buys_24h",
    "sells_24h",
    "buy_volume_24h_usd",
    "sell_volume_24h_usd",
    "holders",
    "top10_holders_pct",
    "creator_pct",
    "owner_pct",
    "insider_pct",
    "dev_pct",
    "sniper_pct",
    "bundler_pct",
    "old_wallet_swap_pct_1d",
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
    data: dict[str, F32] = field(repr=False)
    #: values rejected while building, per venue and reason (see :data:`REJECTIONS`)
    rejected: dict[str, dict[str, int]] = field(default_factory=dict)
    #: True once unusable values were rejected (built from frames, or :func:`clean_panel` ran)
    checked: bool = False

    def __getitem__(self, name: str) -> F32:
        return self.data[name]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.coin_ids), len(self.venues), len(self.hours))

    @classmethod
    def empty(cls, at: datetime, coin_ids: Sequence[str], venues: Sequence[str], hours: int) -> MarketPanel:
        end = int(hour_floor(at).timestamp()) // 3600
        grid = np.arange(end - hours + 1, end + 1, dtype=np.int64)
        shape = (len(coin_ids), len(venues), hours)
        data = {name: np.full(shape, np.nan, dtype=PANEL_DTYPE) for name in MARKET_FIELDS}
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


#: Reasons a market value is rejected (counted per venue in ``MarketPanel.rejected``).
REJECTIONS = (
    "non_finite",
    "price_not_positive",
    "negative_open_interest",
    "negative_taker_volume",
    "long_short_not_positive",
    "missing_funding_interval",
    "unknown_venue",
)
_PRICES = ("mark_price", "index_price", "price")


def _reject(name: str, values: F32) -> tuple[npt.NDArray[np.bool_], str | None]:
    """Cells of one column that are present but unusable, and the reason other than ``non_finite``."""
    inf = np.isinf(values)
    if name in _PRICES:
        return inf | (values <= 0), "price_not_positive"
    if name == "open_interest_usd":
        return inf | (values < 0), "negative_open_interest"
    if name in ("taker_buy_usd", "taker_sell_usd"):
        return inf | (values < 0), "negative_taker_volume"
    if name == "long_short_ratio":
        return inf | (values <= 0), "long_short_not_positive"
    if name == "funding_interval_hours":
        return inf | (values <= 0), "missing_funding_interval"
    return inf, None


def clean_columns(columns: dict[str, F32], counts: dict[str, int]) -> None:
    """Reject unusable values in place (to NaN) and count them: +-inf anywhere, prices <= 0,
    negative OI or taker volume, a long/short ratio <= 0, a funding rate without a positive
    interval. ``columns`` hold ``MARKET_COLUMNS`` plus ``funding_per_hour`` after the call."""
    for name, values in columns.items():
        bad, reason = _reject(name, values)
        if bad.any():
            inf = int(np.isinf(values[bad]).sum())
            if inf:
                counts["non_finite"] = counts.get("non_finite", 0) + inf
            if reason is not None and int(bad.sum()) - inf:
                counts[reason] = counts.get(reason, 0) + int(bad.sum()) - inf
            values[bad] = np.nan
    rate, interval = columns["funding_rate"], columns["funding_interval_hours"]
    no_interval = ~np.isnan(rate) & ~(interval > 0)
    if no_interval.any():
        counts["missing_funding_interval"] = counts.get("missing_funding_interval", 0) + int(no_interval.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        columns["funding_per_hour"] = np.where(no_interval, np.nan, rate / interval).astype(np.float32)


def clean_panel(panel: MarketPanel) -> dict[str, dict[str, int]]:
    """:func:`clean_columns` on a panel built by hand (tests, the simulator): rejects in place and
    returns the counts per venue. Panels from :func:`build_market_panel` are already clean."""
    rejected: dict[str, dict[str, int]] = {}
    d = panel.data
    for j, venue in enumerate(panel.venues):
        counts: dict[str, int] = {}
        for name in MARKET_FIELDS:
            bad, reason = _reject(name, d[name][:, j])
            if bad.any():
                inf = int(np.isinf(d[name][:, j][bad]).sum())
                if inf:
                    counts["non_finite"] = counts.get("non_finite", 0) + inf
                if reason is not None and int(bad.sum()) - inf:
                    counts[reason] = counts.get(reason, 0) + int(bad.sum()) - inf
                d[name][:, j][bad] = np.nan
        # a funding rate whose interval was rejected cannot be trusted either
        bad_fph = ~np.isnan(d["funding_per_hour"][:, j]) & np.isnan(d["funding_interval_hours"][:, j])
        if bad_fph.any() and counts.get("missing_funding_interval"):
            d["funding_per_hour"][:, j][bad_fph] = np.nan
        if counts:
            rejected[venue] = counts
    return rejected


def build_market_panel(
    at: datetime,
    frames: Iterable[Mapping[str, Any]],
    hours: int,
    coin_ids: Sequence[str] | None = None,
    venues: Sequence[str] | None = None,
) -> MarketPanel:
    """Build the panel from stored frames (one per venue and sample time, see ``ingest.snapshot``).

    Frames outside the grid are skipped; within one hour the later sample wins. Frames of a venue
    id the panel does not know are counted (``unknown_venue``, one per row) and skipped. Funding
    is normalized per hour here, from each row's own interval; unusable values are rejected and
    counted per venue (:func:`clean_columns`), in ``panel.rejected``.

    Fast path: a venue's frames that list the same coins (the usual case: one frame per venue and
    sample time) are stacked into one ``(times, coins)`` block per column and written at once.
    """
    frames = sorted(frames, key=lambda f: parse_time(f["at"]))
    if coin_ids is None:
        coin_ids = frames_coin_ids(frames)
    venues = list(venues or VENUES)
    panel = MarketPanel.empty(at, coin_ids, venues, hours)
    mapper = _CoinMapper(panel.coin_ids)
    venue_index = {v: j for j, v in enumerate(venues)}
    first_hour = int(panel.hours[0])
    # (venue, hour) -> frames in time order; then per venue, group hours by their coin list
    slots: dict[tuple[int, int], list[Mapping[str, Any]]] = {}
    for frame in frames:
        j = venue_index.get(frame["venue"])
        t = int(parse_time(frame["at"]).timestamp()) // 3600 - first_hour
        if not 0 <= t < hours:
            continue
        if j is None:
            counts = panel.rejected.setdefault(str(frame["venue"]), {})
            ids = frame["coin_ids"]
            counts["unknown_venue"] = counts.get("unknown_venue", 0) + (ids.count(",") + 1 if ids else 0)
            continue
        slots.setdefault((j, t), []).append(frame)
    groups: dict[tuple[int, str], list[tuple[int, Mapping[str, Any]]]] = {}
    mixed: list[tuple[int, int, Mapping[str, Any]]] = []
    for (j, t), in_hour in slots.items():
        if len({f["coin_ids"] for f in in_hour}) == 1:
            groups.setdefault((j, in_hour[-1]["coin_ids"]), []).append((t, in_hour[-1]))
        else:  # rare: several samples in one hour listing different coins; apply each in order
            mixed.extend((j, t, f) for f in in_hour)
    counts_by_venue: dict[int, dict[str, int]] = {}
    for (j, ids), items in groups.items():
        src, dst = mapper(ids)
        if not src.size:
            continue
        items.sort(key=lambda item: item[0])
        ts = np.array([t for t, _ in items], dtype=np.intp)
        # every coin of the frames is in the panel (the usual case): no per-frame row selection
        whole = src.size == ids.count(",") + 1 and bool(src[-1] == src.size - 1)
        with np.errstate(over="ignore"):  # beyond float32: inf, rejected below
            # (times, coins) rows are contiguous copies; written transposed into the hour slice
            columns = {
                name: np.stack(
                    [unpack_column(f[name]) if whole else unpack_column(f[name])[src] for _, f in items],
                    dtype=np.float32,
                    casting="same_kind",
                )
                for name in MARKET_COLUMNS
            }
        clean_columns(columns, counts_by_venue.setdefault(j, {}))
        contiguous = bool(ts[-1] - ts[0] == ts.size - 1)
        for name in MARKET_FIELDS:
            target = panel.data[name]
            if contiguous:  # a (coins, hours) block into a slice of the hour axis: no 2-D fancy index
                target[dst, j, ts[0] : ts[-1] + 1] = columns[name].T
            else:
                target[dst[:, None], j, ts[None, :]] = columns[name].T
    mixed.sort(key=lambda x: parse_time(x[2]["at"]))
    for j, t, frame in mixed:
        src, dst = mapper(frame["coin_ids"])
        if not src.size:
            continue
        with np.errstate(over="ignore"):
            columns = {name: unpack_column(frame[name])[src].astype(np.float32) for name in MARKET_COLUMNS}
        clean_columns(columns, counts_by_venue.setdefault(j, {}))
        for name in MARKET_FIELDS:
            panel.data[name][dst, j, t] = columns[name]
    for j, counts in counts_by_venue.items():
        if counts:
            panel.rejected[venues[j]] = counts
    object.__setattr__(panel, "checked", True)
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
    panel: OnchainPanel,
    coin_ids: Sequence[str],
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
