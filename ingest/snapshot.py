"""The snapshot model that ingest produces and scoring consumes.

A *market sample* is what one venue says about one coin's linear perpetual at one sample time.
An *on-chain sample* is what the on-chain sources say about one coin at one sample time.

Units (also in docs/data.md, "Snapshot files, replay and validation"):

- ``at``: sample time, timezone-aware UTC, aligned to the ingest cycle.
- ``funding_rate``: the rate as the venue publishes it, a decimal per funding interval
  (``-0.0001`` is -0.01 % per interval).
- ``funding_interval_hours``: that interval in hours (1 on Hyperliquid, 8 on most venues, 4/2/1 on
  some symbols).
- ``funding_rate_per_hour``: ``funding_rate / funding_interval_hours``; always derived, never read.
- ``open_interest_usd``: open interest in USD notional.
- ``mark_price``, ``index_price``, ``price`` (last trade): USD.
- ``taker_buy_usd`` / ``taker_sell_usd``: taker notional traded since the previous sample.
- ``long_short_ratio``: accounts long / accounts short, when the venue publishes it.

Every field a source does not provide is ``None``; nothing is invented.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "MARKET_COLUMNS",
    "VENUES",
    "Coin",
    "MarketSample",
    "OnchainSample",
    "frame_coin_ids",
    "market_frames",
    "pack_column",
    "parse_time",
    "samples_from_frame",
    "unpack_column",
]

#: Version of the snapshot format (rows in files, frames in the store). Bump on any change.
FORMAT_VERSION = 1

#: The monitored venues: stable ids and the display names the public contract lists, in order.
VENUES: dict[str, str] = {
    "binance": "Binance",
    "bybit": "Bybit",
    "okx": "OKX",
    "gate": "Gate.io",
    "bitget": "Bitget",
    "hyperliquid": "Hyperliquid",
    "deribit": "Deribit",
    "bitmex": "BitMEX",
    "htx": "HTX",
    "bingx": "BingX",
    "coinex": "CoinEx",
    "kucoin": "KuCoin",
    "mexc": "MEXC",
}


def parse_time(value: str | datetime) -> datetime:
    """Parse an ISO 8601 time (``Z`` or an offset) into an aware UTC datetime."""
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class Coin:
    """A canonical coin: the id is a slug shared across venues (``pepe``, not ``1000PEPE``)."""

    coin_id: str
    symbol: str
    name: str
    chain: str | None = None
    contract: str | None = None


@dataclass(frozen=True, slots=True)
class MarketSample:
    coin_id: str
    venue: str
    at: datetime
    funding_rate: float | None
    funding_interval_hours: float | None
    open_interest_usd: float | None = None
    mark_price: float | None = None
    index_price: float | None = None
    price: float | None = None
    taker_buy_usd: float | None = None
    taker_sell_usd: float | None = None
    long_short_ratio: float | None = None

    @property
    def funding_rate_per_hour(self) -> float | None:
        if self.funding_rate is None or not self.funding_interval_hours:
            return None
        return self.funding_rate / self.funding_interval_hours

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["at"] = self.at.strftime("%Y-%m-%dT%H:%M:%SZ")
        row["funding_rate_per_hour"] = self.funding_rate_per_hour
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> MarketSample:
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in ("coin_id", "venue"):
                kwargs[f.name] = str(row[f.name])
            elif f.name == "at":
                kwargs["at"] = parse_time(row["at"])
            else:
                kwargs[f.name] = _finite_or_none(row.get(f.name))
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class OnchainSample:
    coin_id: str
    at: datetime
    liquidity_usd: float | None = None
    volume_24h_usd: float | None = None
    buys_24h: float | None = None
    sells_24h: float | None = None
    buy_volume_24h_usd: float | None = None
    sell_volume_24h_usd: float | None = None
    holders: float | None = None
    top10_holders_pct: float | None = None
    creator_pct: float | None = None
    owner_pct: float | None = None
    insider_pct: float | None = None
    dev_pct: float | None = None
    sniper_pct: float | None = None
    bundler_pct: float | None = None
    old_wallet_swap_pct_1d: float | None = None
    flags: tuple[str, ...] = field(default_factory=tuple)

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["at"] = self.at.strftime("%Y-%m-%dT%H:%M:%SZ")
        row["flags"] = list(self.flags)
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OnchainSample:
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "coin_id":
                kwargs["coin_id"] = str(row["coin_id"])
            elif f.name == "at":
                kwargs["at"] = parse_time(row["at"])
            elif f.name == "flags":
                kwargs["flags"] = tuple(str(x) for x in row.get("flags") or ())
            else:
                kwargs[f.name] = _finite_or_none(row.get(f.name))
        return cls(**kwargs)


#: Numeric columns of a market frame, in storage order.
MARKET_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in fields(MarketSample) if f.name not in ("coin_id", "venue", "at")
)


def pack_column(values: Iterable[float | None]) -> bytes:
    """A numeric column as little-endian float64 bytes, NaN for missing (BSON binary in MongoDB)."""
    return np.array([np.nan if v is None else v for v in values], dtype="<f8").tobytes()


def unpack_column(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f8")


def market_frames(samples: Iterable[MarketSample]) -> Iterator[dict[str, Any]]:
    """Group samples into store frames: one document per (venue, at) with one column per field.

    This is MongoDB's bucket pattern: a scoring pass reads 13 venues x 168 h frames instead of one
    document per coin x venue x hour (about 300k for 200 coins). ``coin_ids`` is one
    comma-separated string and each numeric column is packed with :func:`pack_column`, so a frame
    decodes straight into NumPy.
    """
    groups: dict[tuple[str, datetime], list[MarketSample]] = {}
    for sample in samples:
        groups.setdefault((sample.venue, sample.at), []).append(sample)
    for (venue, at), rows in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        rows.sort(key=lambda s: s.coin_id)
        frame: dict[str, Any] = {"v": FORMAT_VERSION, "venue": venue, "at": at}
        frame["coin_ids"] = ",".join(s.coin_id for s in rows)
        for column in MARKET_COLUMNS:
            frame[column] = pack_column(getattr(s, column) for s in rows)
        yield frame


def samples_from_frame(frame: Mapping[str, Any]) -> Iterator[MarketSample]:
    """The inverse of :func:`market_frames` for one frame."""
    at = parse_time(frame["at"])
    columns = {c: unpack_column(frame[c]).tolist() for c in MARKET_COLUMNS}
    for i, coin_id in enumerate(frame_coin_ids(frame)):
        yield MarketSample(
            coin_id=coin_id,
            venue=frame["venue"],
            at=at,
            **{c: (None if v[i] != v[i] else v[i]) for c, v in columns.items()},
        )


def frame_coin_ids(frame: Mapping[str, Any]) -> list[str]:
    ids = frame["coin_ids"]
    return ids.split(",") if ids else []
