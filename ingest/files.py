"""The snapshot file format: versioned JSONL, one row per coin x venue x time.

A snapshot directory holds any number of ``*.jsonl`` files (the recorder writes one per UTC day).
Each file starts with a header row, then one row per sample:

    {"format": "insider-selling-snapshots", "version": 1}
    {"kind": "coin", "coin_id": "pepe", "symbol": "PEPE", "name": "Pepe", "chain": null, ...}
    {"kind": "market", "coin_id": "pepe", "venue": "binance", "at": "2026-11-20T10:00:00Z", ...}
    {"kind": "onchain", "coin_id": "pepe", "at": "2026-11-20T10:00:00Z", "liquidity_usd": ...}

The columns and units of ``market`` and ``onchain`` rows are the fields of
:class:`ingest.snapshot.MarketSample` and :class:`ingest.snapshot.OnchainSample`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ingest.errors import SnapshotFormatError
from ingest.snapshot import FORMAT_VERSION, MARKET_COLUMNS, Coin, MarketSample, OnchainSample, parse_time

__all__ = ["HEADER", "read_snapshot_frames", "read_snapshots", "write_snapshots"]

HEADER = {"format": "insider-selling-snapshots", "version": FORMAT_VERSION}


def write_snapshots(
    path: Path,
    coins: Iterable[Coin],
    market: Iterable[MarketSample],
    onchain: Iterable[OnchainSample] = (),
    *,
    append: bool = False,
) -> int:
    """Write (or append) rows to one JSONL file; returns the number of sample rows written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new_file = not append or not path.exists() or path.stat().st_size == 0
    written = 0
    with path.open("ab" if append else "wb") as out:
        if new_file:
            out.write(orjson.dumps(HEADER) + b"\n")
        for coin in coins:
            out.write(orjson.dumps({"kind": "coin", **asdict(coin)}) + b"\n")
        for sample in market:
            out.write(orjson.dumps({"kind": "market", **sample.to_row()}) + b"\n")
            written += 1
        for onchain_sample in onchain:
            out.write(orjson.dumps({"kind": "onchain", **onchain_sample.to_row()}) + b"\n")
            written += 1
    return written


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as src:
        for number, line in enumerate(src, start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise SnapshotFormatError(f"{path}:{number}: not JSON ({exc})") from exc
            if not isinstance(row, dict):
                raise SnapshotFormatError(f"{path}:{number}: a row must be a JSON object")
            yield number, row


def _paths(directory: Path) -> list[Path]:
    paths = [directory] if directory.is_file() else sorted(directory.rglob("*.jsonl"))
    if not paths:
        raise SnapshotFormatError(f"{directory}: no *.jsonl snapshot files")
    return paths


def _check_header(path: Path, first: tuple[int, dict[str, Any]] | None) -> None:
    if first is None or first[1].get("format") != HEADER["format"]:
        raise SnapshotFormatError(f"{path}: missing the snapshot header row {HEADER}")
    if first[1].get("version") != FORMAT_VERSION:
        raise SnapshotFormatError(f"{path}: format version {first[1].get('version')}, expected {FORMAT_VERSION}")


def read_snapshot_frames(
    directory: Path,
) -> tuple[dict[str, Coin], list[dict[str, Any]], list[OnchainSample]]:
    """Like :func:`read_snapshots`, but market rows come back as store frames (one per venue and
    sample time, see :func:`ingest.snapshot.market_frames`), built column by column without one
    Python object per row: a replay of a million rows reads in seconds. Within one frame a
    repeated coin keeps its last row; non-finite numbers become missing, as in
    :meth:`MarketSample.from_row`."""
    coins: dict[str, Coin] = {}
    onchain: list[OnchainSample] = []
    built: dict[tuple[str, str], dict[str, Any]] = {}
    times: dict[str, datetime] = {}
    for path in _paths(directory):
        # one file's rows at a time (the recorder and the importer write one file per UTC day)
        groups: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        rows = _rows(path)
        _check_header(path, next(rows, None))
        for number, row in rows:
            kind = row.get("kind")
            try:
                if kind == "market":
                    groups.setdefault((str(row["venue"]), str(row["at"])), {})[str(row["coin_id"])] = row
                elif kind == "onchain":
                    row.pop("kind")
                    onchain.append(OnchainSample.from_row(row))
                elif kind == "coin":
                    row.pop("kind")
                    coins[row["coin_id"]] = Coin(**row)
                else:
                    raise SnapshotFormatError(f"{path}:{number}: unknown row kind {kind!r}")
            except (KeyError, TypeError, ValueError) as exc:
                raise SnapshotFormatError(f"{path}:{number}: bad {kind} row ({exc})") from exc
        for key, by_coin in groups.items():
            earlier = built.get(key)
            if earlier is not None:  # the same venue and time in an earlier file: this file's rows win
                by_coin = {**_frame_rows(earlier), **by_coin}
            try:
                at = times.get(key[1]) or times.setdefault(key[1], parse_time(key[1]))
                built[key] = _build_frame(key[0], at, by_coin)
            except (TypeError, ValueError) as exc:
                raise SnapshotFormatError(f"{path}: bad market rows of {key[0]} at {key[1]} ({exc})") from exc
    frames = sorted(built.values(), key=lambda f: (f["at"], f["venue"]))
    return coins, frames, onchain


def _build_frame(venue: str, at: datetime, by_coin: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ids = sorted(by_coin)
    frame: dict[str, Any] = {"v": FORMAT_VERSION, "venue": venue, "at": at, "coin_ids": ",".join(ids)}
    for column in MARKET_COLUMNS:
        values = np.array([by_coin[c].get(column) for c in ids], dtype=np.float64)
        values[~np.isfinite(values)] = np.nan
        frame[column] = values.astype("<f8").tobytes()
    return frame


def _frame_rows(frame: dict[str, Any]) -> dict[str, dict[str, Any]]:
    columns = {c: np.frombuffer(frame[c], dtype="<f8").tolist() for c in MARKET_COLUMNS}
    ids = frame["coin_ids"].split(",") if frame["coin_ids"] else []
    return {cid: {c: (None if v[i] != v[i] else v[i]) for c, v in columns.items()} for i, cid in enumerate(ids)}


def read_snapshots(
    directory: Path,
) -> tuple[dict[str, Coin], list[MarketSample], list[OnchainSample]]:
    """Read every ``*.jsonl`` file below ``directory`` (or one file), checking the header."""
    coins: dict[str, Coin] = {}
    market: list[MarketSample] = []
    onchain: list[OnchainSample] = []
    for path in _paths(directory):
        rows = _rows(path)
        _check_header(path, next(rows, None))
        for number, row in rows:
            kind = row.pop("kind", None)
            try:
                if kind == "market":
                    row.pop("funding_rate_per_hour", None)
                    market.append(MarketSample.from_row(row))
                elif kind == "onchain":
                    onchain.append(OnchainSample.from_row(row))
                elif kind == "coin":
                    coins[row["coin_id"]] = Coin(**row)
                else:
                    raise SnapshotFormatError(f"{path}:{number}: unknown row kind {kind!r}")
            except (KeyError, TypeError, ValueError) as exc:
                raise SnapshotFormatError(f"{path}:{number}: bad {kind} row ({exc})") from exc
    return coins, market, onchain
