"""Snapshot persistence: coins, market frames and on-chain frames (the bucket pattern).

Ingest writes batches here; scoring reads windows of frames back. Both sides share the frame
layout defined in :mod:`ingest.snapshot`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from pymongo import ASCENDING

from ingest.snapshot import (
    FORMAT_VERSION,
    Coin,
    MarketSample,
    OnchainSample,
    frame_coin_ids,
    market_frames,
    pack_column,
    parse_time,
    unpack_column,
)
from ingest.source import SnapshotBatch
from store import Update, update_each

__all__ = ["SnapshotStore"]

ONCHAIN_COLUMNS = tuple(f.name for f in fields(OnchainSample) if f.name not in ("coin_id", "at"))


def onchain_frames(samples: Iterable[OnchainSample]) -> list[dict[str, Any]]:
    groups: dict[datetime, list[OnchainSample]] = {}
    for s in samples:
        groups.setdefault(s.at, []).append(s)
    frames = []
    for at, rows in sorted(groups.items()):
        rows.sort(key=lambda s: s.coin_id)
        frame: dict[str, Any] = {"v": FORMAT_VERSION, "at": at, "coin_ids": ",".join(s.coin_id for s in rows)}
        for column in ONCHAIN_COLUMNS:
            if column == "flags":
                frame[column] = ["|".join(s.flags) for s in rows]
            else:
                frame[column] = pack_column(getattr(s, column) for s in rows)
        frames.append(frame)
    return frames


def samples_from_onchain_frame(frame: dict[str, Any]) -> list[OnchainSample]:
    at = parse_time(frame["at"])
    columns = {c: unpack_column(frame[c]).tolist() for c in ONCHAIN_COLUMNS if c != "flags"}
    flags = frame.get("flags") or []
    out = []
    for i, coin_id in enumerate(frame_coin_ids(frame)):
        values: dict[str, Any] = {c: (None if v[i] != v[i] else v[i]) for c, v in columns.items()}
        values["flags"] = tuple(x for x in (flags[i] if i < len(flags) else "").split("|") if x)
        out.append(OnchainSample(coin_id=coin_id, at=at, **values))
    return out


class SnapshotStore:
    def __init__(self, db: Any) -> None:
        self.coins = db["coins"]
        self.market = db["market_snapshots"]
        self.onchain = db["onchain_snapshots"]

    async def write_batch(self, batch: SnapshotBatch) -> int:
        """Upsert the batch's coins and frames; returns the number of market frames written
        (history frames that filled a gap not included)."""
        if batch.coins:
            await update_each(
                self.coins,
                [Update({"coin_id": c.coin_id}, {"$set": asdict(c)}, upsert=True) for c in batch.coins],
                ordered=False,
            )
        # Replace-by-time: a re-collected sample time overwrites its frames (idempotent cycles).
        frames = list(market_frames(batch.market))
        if frames:
            await self.market.delete_many({"at": {"$in": sorted({f["at"] for f in frames})}})
            await self.market.insert_many(frames, ordered=False)
        # History (venues' funding prints, klines, OI history) only fills gaps: a stored frame of
        # the same venue and hour, e.g. an earlier cycle's full snapshot, is never replaced by it.
        history = list(market_frames(batch.history))
        if history:
            times = sorted({f["at"] for f in history})
            stored = await self.market.find({"at": {"$in": times}}, {"venue": 1, "at": 1, "_id": 0}).to_list()
            taken = {(d["venue"], parse_time(d["at"])) for d in stored}
            fresh = [f for f in history if (f["venue"], parse_time(f["at"])) not in taken]
            if fresh:
                await self.market.insert_many(fresh, ordered=False)
        onchain = onchain_frames(batch.onchain)
        if onchain:
            await self.onchain.delete_many({"at": {"$in": [f["at"] for f in onchain]}})
            await self.onchain.insert_many(onchain, ordered=False)
        return len(frames)

    async def write_frames(self, frames: list[dict[str, Any]]) -> int:
        """Store ready-made market frames (a replay, see ``ingest.files.read_snapshot_frames``):
        a frame replaces the stored frame of the same venue and sample time, as
        :meth:`write_batch` does for fresh samples. Returns the number of frames written."""
        if not frames:
            return 0
        keys = {(f["venue"], parse_time(f["at"])) for f in frames}
        times = sorted({at for _, at in keys})
        stored = await self.market.find({"at": {"$in": times}}, {"venue": 1, "at": 1, "_id": 1}).to_list()
        stale = [d["_id"] for d in stored if (d["venue"], parse_time(d["at"])) in keys]
        if stale:
            await self.market.delete_many({"_id": {"$in": stale}})
        await self.market.insert_many([dict(f) for f in frames], ordered=False)
        return len(frames)

    async def all_coins(self) -> dict[str, Coin]:
        docs = await self.coins.find({}, {"_id": 0}).to_list()
        return {
            d["coin_id"]: Coin(**{k: d.get(k) for k in ("coin_id", "symbol", "name", "chain", "contract")})
            for d in docs
        }

    async def market_window(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        cursor = self.market.find({"at": {"$gt": start, "$lte": end}}, {"_id": 0}).sort([("at", ASCENDING)])
        frames: list[dict[str, Any]] = await cursor.to_list()
        return frames

    async def onchain_window(self, start: datetime, end: datetime) -> list[OnchainSample]:
        cursor = self.onchain.find({"at": {"$gt": start, "$lte": end}}, {"_id": 0}).sort([("at", ASCENDING)])
        out: list[OnchainSample] = []
        async for frame in cursor:
            out.extend(samples_from_onchain_frame(frame))
        return out

    async def latest_market_at(self) -> datetime | None:
        doc = await self.market.find_one({}, {"at": 1, "_id": 0}, sort=[("at", -1)])
        return None if doc is None else parse_time(doc["at"])

    async def iter_market_samples(self, start: datetime, end: datetime) -> list[MarketSample]:
        from ingest.snapshot import samples_from_frame

        out: list[MarketSample] = []
        for frame in await self.market_window(start, end):
            out.extend(samples_from_frame(frame))
        return out
