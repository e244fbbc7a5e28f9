"""Importers of third-party files into the snapshot file format (``insider-selling import``).

One module per file shape, each a subclass of :class:`ingest.importers.base.Importer`;
:func:`detect` picks the shape from a file's header, and :func:`import_directory` runs the whole
conversion: read and check every row (rejections counted per file and reason), lay the values on
an hourly grid without looking ahead (:mod:`ingest.importers.hourly`), and write one snapshot
file per UTC day.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import numpy as np
import orjson

from ingest.errors import ImportFormatError
from ingest.files import HEADER
from ingest.importers.base import FileReport, Importer, Observation, ReadLimits, read_header
from ingest.importers.binance_funding import BinanceFunding
from ingest.importers.binance_klines import BinanceKlines
from ingest.importers.binance_open_interest import BinanceOpenInterest
from ingest.importers.hourly import HourlySeries, hourly_series
from ingest.importers.multivenue import MultiVenueFunding
from ingest.snapshot import FORMAT_VERSION, MARKET_COLUMNS, Coin

__all__ = [
    "IMPORTERS",
    "FileReport",
    "ImportResult",
    "Importer",
    "Reporter",
    "detect",
    "import_directory",
    "import_frames",
    "read_files",
    "series_frames",
    "write_hourly",
]

#: Every importer by its ``--format`` name, in detection order.
IMPORTERS: dict[str, Importer] = {
    imp.name: imp for imp in (MultiVenueFunding(), BinanceFunding(), BinanceOpenInterest(), BinanceKlines())
}
_SUFFIXES = (".csv", ".csv.gz")


class Reporter(Protocol):
    """Where progress goes: a rich progress bar on a terminal, a line per stage otherwise."""

    def stage(self, name: str, total: int | None = None) -> None: ...

    def advance(self, amount: int) -> None: ...


class _Silent:
    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass


@dataclass(slots=True)
class ImportResult:
    files: list[FileReport]
    ignored: list[Path] = field(default_factory=list)
    coins: int = 0
    samples: int = 0
    written: list[Path] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None

    def summary(self) -> dict[str, object]:
        return {
            "files": [
                {
                    "path": str(r.path),
                    "format": r.format,
                    "read": r.read,
                    "kept": r.kept,
                    "rejected": r.rejected_total,
                    "reasons": dict(r.rejected.most_common()),
                    "problem": r.problem,
                }
                for r in self.files
            ],
            "ignored": [str(p) for p in self.ignored],
            "coins": self.coins,
            "samples": self.samples,
            "files_written": len(self.written),
            "first": None if self.first is None else self.first.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "last": None if self.last is None else self.last.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def detect(header: Sequence[str]) -> Importer | None:
    """The importer whose columns the header has, or ``None``."""
    for importer in IMPORTERS.values():
        if importer.matches(list(header)):
            return importer
    return None


def _inputs(source: Path) -> tuple[list[Path], list[Path]]:
    if source.is_file():
        return [source], []
    if not source.is_dir():
        raise ImportFormatError(f"{source}: no such file or directory")
    files = sorted(p for p in source.iterdir() if p.is_file())
    csv = [p for p in files if p.name.lower().endswith(_SUFFIXES)]
    return csv, [p for p in files if p not in csv]


def read_files(
    source: Path, *, fmt: str | None = None, reporter: Reporter | None = None, limits: ReadLimits | None = None
) -> tuple[list[Observation], ImportResult]:
    """Read every CSV file in ``source`` (or the one file) with its detected importer (or the
    ``fmt`` one), each within ``limits``. Returns the kept observations and the per-file reports."""
    reporter = reporter or _Silent()
    if fmt is not None and fmt not in IMPORTERS:
        raise ImportFormatError(f"unknown --format {fmt!r}; known: {', '.join(IMPORTERS)}")
    paths, ignored = _inputs(source)
    result = ImportResult(files=[], ignored=ignored)
    observations: list[Observation] = []
    for path in paths:
        header = read_header(path, limits)
        importer = IMPORTERS[fmt] if fmt is not None else detect(header)
        if importer is None:
            report = FileReport(path, "unknown")
            report.problem = (
                "empty file" if not header else f"unrecognised columns {header}; pass --format ({', '.join(IMPORTERS)})"
            )
            result.files.append(report)
            continue
        report = FileReport(path, importer.name)
        reporter.stage(f"read {path.name} ({importer.name})")
        observations.extend(importer.read(path, report, tick=reporter.advance, limits=limits))
        result.files.append(report)
    return observations, result


def _day_file(out: Path, hour: int) -> Path:
    return out / f"snapshots-{datetime.fromtimestamp(hour * 3600, UTC):%Y-%m-%d}.jsonl"


def write_hourly(
    out: Path, series: list[HourlySeries], coins: list[Coin], reporter: Reporter | None = None
) -> tuple[int, list[Path]]:
    """Write the hourly rows to one snapshot file per UTC day, in time order; returns the rows
    written and the files."""
    reporter = reporter or _Silent()
    out.mkdir(parents=True, exist_ok=True)
    if not series:
        return 0, []
    hours = np.concatenate([s.hours for s in series])
    owner = np.repeat(np.arange(len(series)), [s.hours.size for s in series])
    columns = {c: np.concatenate([s.columns[c] for s in series]) for c in MARKET_COLUMNS}
    order = np.lexsort((owner, hours))
    hours, owner = hours[order], owner[order]
    values = {c: [None if x != x else x for x in v[order].tolist()] for c, v in columns.items()}
    names = [(s.coin_id, s.venue) for s in series]
    reporter.stage("write snapshot files", int(hours.size))
    written: list[Path] = []
    day_ends = np.flatnonzero(np.r_[hours[1:] // 24 != hours[:-1] // 24, True]) + 1
    start = 0
    hour_list = hours.tolist()
    owner_list = owner.tolist()
    for end in day_ends.tolist():
        path = _day_file(out, hour_list[start])
        lines = [orjson.dumps(HEADER)]
        if not written:
            lines.extend(
                orjson.dumps(
                    {
                        "kind": "coin",
                        "coin_id": c.coin_id,
                        "symbol": c.symbol,
                        "name": c.name,
                        "chain": c.chain,
                        "contract": c.contract,
                    }
                )
                for c in coins
            )
        stamp_cache: dict[int, str] = {}
        for k in range(start, end):
            h = hour_list[k]
            stamp = stamp_cache.get(h)
            if stamp is None:
                stamp = stamp_cache[h] = datetime.fromtimestamp(h * 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            coin_id, venue = names[owner_list[k]]
            row: dict[str, object] = {"kind": "market", "coin_id": coin_id, "venue": venue, "at": stamp}
            for c in MARKET_COLUMNS:
                row[c] = values[c][k]
            rate, interval = row["funding_rate"], row["funding_interval_hours"]
            row["funding_rate_per_hour"] = (
                rate / interval if isinstance(rate, float) and isinstance(interval, float) and interval > 0 else None
            )
            lines.append(orjson.dumps(row))
        path.write_bytes(b"\n".join(lines) + b"\n")
        written.append(path)
        reporter.advance(end - start)
        start = end
    return int(hours.size), written


def series_frames(series: list[HourlySeries]) -> list[dict[str, object]]:
    """The hourly rows as store frames (one per venue and hour, coins sorted), in time order:
    what :func:`ingest.files.read_snapshot_frames` would read back from the written files."""
    if not series:
        return []
    venues = sorted({s.venue for s in series})
    venue_of = np.array([venues.index(s.venue) for s in series], dtype=np.int64)
    # owners sorted by (coin, venue) already; rank them by coin id for the frame order
    coin_rank = np.argsort(np.argsort([s.coin_id for s in series], kind="stable"), kind="stable")
    hours = np.concatenate([s.hours for s in series])
    owner = np.repeat(np.arange(len(series)), [s.hours.size for s in series])
    columns = {c: np.concatenate([s.columns[c] for s in series]) for c in MARKET_COLUMNS}
    order = np.lexsort((coin_rank[owner], venue_of[owner], hours))
    hours, owner = hours[order], owner[order]
    columns = {c: v[order] for c, v in columns.items()}
    key = hours * len(venues) + venue_of[owner]
    bounds = np.flatnonzero(np.r_[True, key[1:] != key[:-1], True])
    names = [s.coin_id for s in series]
    frames: list[dict[str, object]] = []
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        frame: dict[str, object] = {
            "v": FORMAT_VERSION,
            "venue": venues[int(venue_of[owner[lo]])],
            "at": datetime.fromtimestamp(int(hours[lo]) * 3600, UTC),
            "coin_ids": ",".join(names[i] for i in owner[lo:hi].tolist()),
        }
        for c in MARKET_COLUMNS:
            frame[c] = columns[c][lo:hi].astype("<f8").tobytes()
        frames.append(frame)
    return frames


def import_frames(
    source: Path,
    *,
    fmt: str | None = None,
    reporter: Reporter | None = None,
    limits: ReadLimits | None = None,
) -> tuple[ImportResult, list[Coin], list[dict[str, object]]]:
    """The import without files: the per-file reports, the coins and the store frames (for a
    replay in the same process, as ``insider-selling report`` does)."""
    reporter = reporter or _Silent()
    observations, result = read_files(source, fmt=fmt, reporter=reporter, limits=limits)
    reporter.stage("lay on the hourly grid")
    series = list(hourly_series(observations))
    coins = [Coin(c, c.upper(), c.upper()) for c in sorted({s.coin_id for s in series})]
    frames = series_frames(series)
    _summarize(result, series, coins, sum(s.hours.size for s in series))
    return result, coins, frames


def _summarize(result: ImportResult, series: list[HourlySeries], coins: list[Coin], samples: int) -> None:
    result.coins = len(coins)
    result.samples = samples
    if series:
        first = min(int(s.hours[0]) for s in series if s.hours.size)
        last = max(int(s.hours[-1]) for s in series if s.hours.size)
        result.first = datetime.fromtimestamp(first * 3600, UTC)
        result.last = datetime.fromtimestamp(last * 3600, UTC)


def import_directory(
    source: Path,
    out: Path,
    *,
    fmt: str | None = None,
    reporter: Reporter | None = None,
    overwrite: bool = False,
    limits: ReadLimits | None = None,
) -> ImportResult:
    """Convert the CSV files in ``source`` into snapshot files in ``out`` (see the module doc);
    each file is streamed within ``limits`` (decompressed size, line length).

    ``out`` must hold no ``*.jsonl`` files (a replay reads them all), unless ``overwrite``: then
    the ``snapshots-*.jsonl`` files of an earlier import are removed first.
    """
    existing = sorted(out.glob("*.jsonl")) if out.is_dir() else []
    if existing:
        ours = [p for p in existing if p.name.startswith("snapshots-")]
        if not overwrite or len(ours) != len(existing):
            raise ImportFormatError(
                f"{out} already holds snapshot files ({existing[0].name}, ...): use an "
                f"empty directory{'' if overwrite else ' or --overwrite'}"
            )
        for p in ours:
            p.unlink()
    reporter = reporter or _Silent()
    observations, result = read_files(source, fmt=fmt, reporter=reporter, limits=limits)
    reporter.stage("lay on the hourly grid")
    series = list(hourly_series(observations))
    coins = [Coin(c, c.upper(), c.upper()) for c in sorted({s.coin_id for s in series})]
    samples, result.written = write_hourly(out, series, coins, reporter)
    _summarize(result, series, coins, samples)
    (out / "import.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
    return result
