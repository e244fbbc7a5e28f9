"""The importer base class: one CSV shape per subclass, rows to typed observations or reasons.

An importer reads one file (``.csv`` or ``.csv.gz``) whose header names its columns. Every data row
becomes either an observation (a funding print, an open-interest point or a price) or a rejection
with a short reason; nothing is dropped without being counted. :meth:`Importer.finish` then sees
all of a file's observations at once, for what needs a whole series (the funding interval inferred
from the spacing of prints, the spacing of klines).
"""

from __future__ import annotations

import abc
import contextlib
import csv
import dataclasses
import functools
import gzip
import math
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, ClassVar

import numpy as np
import numpy.typing as npt

from ingest.errors import ImportFormatError
from ingest.snapshot import VENUES
from ingest.symbols import canonical_id, parse_base

__all__ = [
    "HOUR_MS",
    "QUOTES",
    "FileReport",
    "FundingPrint",
    "Importer",
    "Observation",
    "OpenInterestPoint",
    "PricePoint",
    "ReadLimits",
    "Reject",
    "bounded_lines",
    "coin_from_base",
    "coin_from_symbol",
    "dedupe",
    "epoch_ms",
    "finite",
    "funding_rate",
    "group_by_series",
    "one_contract_per_coin",
    "read_header",
    "typical_spacing",
    "venue_id",
    "whole_hours",
]

HOUR_MS = 3_600_000
#: Rows between two progress ticks.
TICK_ROWS = 50_000
#: Quote currencies of the linear perpetuals the importers accept.
QUOTES = ("USDT", "USDC")
#: Times outside 2009 .. 2100 are not market data (and catch seconds passed as milliseconds).
_MIN_MS, _MAX_MS = 1_230_768_000_000, 4_102_444_800_000


class Reject(Exception):
    """Raised by a row parser with the reason the row is rejected (counted, never fatal)."""


@dataclass(frozen=True, slots=True)
class FundingPrint:
    coin_id: str
    venue: str
    at_ms: int
    rate: float
    interval_hours: float | None  # None: infer from the spacing of the series' prints
    price: float | None = None  # unit price of the coin (mark), already divided by the multiplier
    contract: str = ""  # the venue's symbol, for duplicate-contract checks


@dataclass(frozen=True, slots=True)
class OpenInterestPoint:
    coin_id: str
    venue: str
    at_ms: int
    open_interest_usd: float
    contract: str = ""


@dataclass(frozen=True, slots=True)
class PricePoint:
    """A price valid from ``at_ms`` on, until the series' usual spacing has passed.

    A kline is stored by its open time with ``bar=True``: its close becomes known one spacing
    later, and :mod:`ingest.importers.hourly` places it there.
    """

    coin_id: str
    venue: str
    at_ms: int
    price: float
    contract: str = ""
    bar: bool = False


Observation = FundingPrint | OpenInterestPoint | PricePoint


@dataclass(slots=True)
class FileReport:
    """What one file gave: rows read, kept and rejected (with the reasons and their counts)."""

    path: Path
    format: str
    read: int = 0
    kept: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    #: Why the whole file gave nothing (empty, unrecognised), else ``None``.
    problem: str | None = None

    def reject(self, reason: str, count: int = 1) -> None:
        self.rejected[reason] += count

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Bounds of one input file, checked while it streams (the settings
    ``INSIDER_IMPORT_MAX_BYTES`` and ``INSIDER_IMPORT_MAX_LINE_BYTES``): its size once decompressed
    and the length of each line, so that a small gzip holding gigabytes, or one endless line,
    stops the import early and in bounded memory."""

    max_bytes: int = 1 << 30
    max_line_bytes: int = 64 * 1024


#: Bytes read (decompressed) at a time.
CHUNK = 64 * 1024


def bounded_lines(path: Path, limits: ReadLimits) -> Generator[str, None, None]:
    """The lines of a ``.csv`` or ``.csv.gz`` file as text (line ends kept, for ``csv.reader``),
    read ``CHUNK`` bytes at a time; a file or a line over ``limits`` raises
    :class:`ImportFormatError` naming the file, the line and the setting."""
    raw: BinaryIO = gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")  # type: ignore[assignment]  # noqa: SIM115
    with raw:
        total = number = 0
        pending = bytearray()
        while chunk := raw.read(CHUNK):
            total += len(chunk)
            if total > limits.max_bytes:
                raise ImportFormatError(
                    f"{path}:{number + 1}: the file holds more than {limits.max_bytes} bytes "
                    f"(decompressed); raise INSIDER_IMPORT_MAX_BYTES to import it"
                )
            start = 0
            while (end := chunk.find(b"\n", start)) >= 0:
                pending += chunk[start : end + 1]
                start = end + 1
                number += 1
                if len(pending) - 1 > limits.max_line_bytes:
                    raise _long_line(path, number, limits)
                yield pending.decode("utf-8")
                pending.clear()
            pending += chunk[start:]
            if len(pending) > limits.max_line_bytes:
                raise _long_line(path, number + 1, limits)
        if pending:
            yield pending.decode("utf-8")


def _long_line(path: Path, number: int, limits: ReadLimits) -> ImportFormatError:
    return ImportFormatError(
        f"{path}:{number}: the line is longer than {limits.max_line_bytes} bytes; "
        f"raise INSIDER_IMPORT_MAX_LINE_BYTES to import it"
    )


def read_header(path: Path, limits: ReadLimits | None = None) -> list[str]:
    """The first row of a CSV file, lower-cased and stripped; ``[]`` for an empty file."""
    try:
        first = next(csv.reader(bounded_lines(path, limits or ReadLimits())), [])
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise ImportFormatError(f"{path}: cannot read ({exc})") from exc
    return [c.strip().lower() for c in first]


def finite(value: str | None, what: str, *, positive: bool = False, non_negative: bool = False) -> float:
    """Parse a number; raise :class:`Reject` for a blank, non-numeric or non-finite value, and for
    a non-positive (``positive``) or negative (``non_negative``) one."""
    if value is None or not value.strip():
        raise Reject(f"missing {what}")
    try:
        number = float(value)
    except ValueError:
        raise Reject(f"{what} not a number") from None
    if not math.isfinite(number):
        raise Reject(f"{what} not finite")
    if positive and number <= 0:
        raise Reject(f"{what} not positive")
    if non_negative and number < 0:
        raise Reject(f"{what} negative")
    return number


#: A funding rate beyond this, per interval, is not a rate (venues cap theirs at a few percent).
MAX_ABS_FUNDING_RATE = 0.5


def funding_rate(value: str | None) -> float:
    rate = finite(value, "funding_rate")
    if abs(rate) > MAX_ABS_FUNDING_RATE:
        raise Reject("funding_rate out of range")
    return rate


def epoch_ms(value: str | None, what: str = "time") -> int:
    """Epoch milliseconds (an integer, or a float such as ``1.7e12``) within 2009 .. 2100."""
    number = finite(value, what)
    if not _MIN_MS <= number <= _MAX_MS:
        raise Reject(f"{what} out of range")
    return int(number)


def venue_id(value: str | None) -> str:
    venue = (value or "").strip().lower()
    if venue not in VENUES:
        raise Reject("unknown venue")
    return venue


def coin_from_base(base: str) -> tuple[str, int]:
    """``(coin_id, multiplier)`` for a venue's base asset (``1000PEPE`` -> ``("pepe", 1000)``)."""
    parsed = parse_base(base)
    if parsed is None:
        raise Reject("unusable symbol")
    return canonical_id(parsed.base), parsed.multiplier


@functools.lru_cache(maxsize=65536)
def _symbol(raw: str) -> tuple[str, int] | str:
    try:
        return _coin_from_symbol(raw)
    except Reject as reason:
        return str(reason)


def coin_from_symbol(symbol: str | None) -> tuple[str, int]:
    """``(coin_id, multiplier)`` for a Binance-style perpetual symbol (``1000PEPEUSDT``)."""
    found = _symbol((symbol or "").strip().upper())
    if isinstance(found, str):
        raise Reject(found)
    return found


def _coin_from_symbol(raw: str) -> tuple[str, int]:
    for quote in QUOTES:
        if raw.endswith(quote) and len(raw) > len(quote):
            return coin_from_base(raw[: -len(quote)])
    raise Reject("not a USDT/USDC perpetual symbol")


class Importer(abc.ABC):
    """One file shape. Subclasses name their required columns and parse one row at a time."""

    #: The ``--format`` name.
    name: ClassVar[str]
    #: One line for ``--help`` (the shapes are also listed in docs/data.md).
    description: ClassVar[str]
    #: Columns that must all be in the header (lower case).
    required: ClassVar[tuple[str, ...]]
    #: Columns whose presence tells this shape apart from the others (default: ``required``).
    signature: ClassVar[tuple[str, ...]] = ()

    def matches(self, header: Sequence[str]) -> bool:
        columns = set(header)
        return all(c in columns for c in (self.signature or self.required))

    @abc.abstractmethod
    def parse_row(self, row: dict[str, str]) -> Observation:
        """Turn one row into an observation, or raise :class:`Reject` with the reason."""

    def finish(self, observations: list[Observation], report: FileReport) -> list[Observation]:
        """Whole-series checks after every row is read (default: none)."""
        return observations

    def read(
        self,
        path: Path,
        report: FileReport,
        tick: Callable[[int], None] | None = None,
        limits: ReadLimits | None = None,
    ) -> list[Observation]:
        """Parse every row of ``path`` within ``limits``; rejected rows are counted in ``report``.
        ``tick(rows)`` is called every :data:`TICK_ROWS` rows (a progress bar)."""
        observations: list[Observation] = []
        lines = bounded_lines(path, limits or ReadLimits())
        try:
            with contextlib.closing(lines):
                rows = csv.reader(lines)
                header = [c.strip().lower() for c in next(rows, [])]
                missing = [c for c in self.required if c not in header]
                if missing:
                    raise ImportFormatError(f"{path}: not a {self.name} file (missing columns {missing})")
                width = len(header)
                for values in rows:
                    if not values or (len(values) == 1 and not values[0].strip()):
                        continue
                    report.read += 1
                    if tick is not None and report.read % TICK_ROWS == 0:
                        tick(TICK_ROWS)
                    if len(values) != width:
                        report.reject("wrong number of columns")
                        continue
                    try:
                        observations.append(self.parse_row(dict(zip(header, values, strict=True))))
                    except Reject as reason:
                        report.reject(str(reason))
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
            raise ImportFormatError(f"{path}: cannot read ({exc})") from exc
        if tick is not None:
            tick(report.read % TICK_ROWS)
        if report.read == 0:
            report.problem = "empty file (no data rows)"
        kept = self.finish(dedupe(observations, report), report)
        report.kept = len(kept)
        return kept


def whole_hours(ms: int) -> float:
    """A spacing in hours, rounded to the hour when within 5 minutes of one (venues settle a few
    milliseconds late), else as it is."""
    hours = ms / HOUR_MS
    nearest = round(hours)
    return float(nearest) if abs(hours - nearest) <= 5 / 60 else hours


def typical_spacing(times_ms: Sequence[int]) -> float | None:
    """The most common positive spacing of sorted times, in hours (ties: the shorter)."""
    if len(times_ms) < 2:
        return None
    stamps: npt.NDArray[np.int64] = np.asarray(times_ms, dtype=np.int64)
    gaps = stamps[1:] - stamps[:-1]
    gaps = gaps[gaps > 0]
    if not gaps.size:
        return None
    hours: npt.NDArray[np.float64] = gaps.astype(np.float64) / HOUR_MS
    nearest = np.round(hours)
    hours = np.where(np.abs(hours - nearest) <= 5 / 60, nearest, hours)
    values, counts = np.unique(hours, return_counts=True)
    return float(values[np.argmax(counts)])  # unique sorts ascending: argmax takes the shorter on a tie


def group_by_series(observations: Iterable[Observation]) -> Iterator[list[Observation]]:
    """Observations grouped by (coin, venue, contract), each group sorted by time."""
    groups: dict[tuple[str, str, str], list[Observation]] = {}
    for obs in observations:
        groups.setdefault((obs.coin_id, obs.venue, obs.contract), []).append(obs)
    for key in sorted(groups):
        yield sorted(groups[key], key=lambda o: o.at_ms)


def dedupe(observations: list[Observation], report: FileReport) -> list[Observation]:
    """Drop repeated rows of one series at one time (the later row wins), counting them."""
    seen: dict[tuple[str, str, str, int], int] = {}
    for i, obs in enumerate(observations):
        seen[(obs.coin_id, obs.venue, obs.contract, obs.at_ms)] = i
    if len(seen) == len(observations):
        return observations
    report.reject("repeated time of the same contract", len(observations) - len(seen))
    keep = sorted(seen.values())
    return [observations[i] for i in keep]


def one_contract_per_coin(observations: list[Observation], report: FileReport) -> list[Observation]:
    """Keep one contract per (coin, venue). The snapshot format has one row per coin, venue and
    time, so two contracts of one coin on one venue would collide:

    - a multiplied contract next to a plain one of the same base (``BOBUSDT`` and
      ``1000000BOBUSDT`` are two different coins on Binance) keeps its literal name as its coin id
      (``1000000bob``), at the contract's own price;
    - otherwise (``BTCUSDT`` and ``BTCUSDC``) the USDT-margined contract is kept where listed, else
      the one with the most rows, and the other contract's rows are rejected (counted).
    """
    rows: dict[tuple[str, str], Counter[str]] = {}
    for obs in observations:
        rows.setdefault((obs.coin_id, obs.venue), Counter())[obs.contract] += 1
    chosen: dict[tuple[str, str], str] = {}
    literal: dict[str, tuple[str, int]] = {}
    for key, contracts in rows.items():
        if len(contracts) > 1:
            plain = [c for c in contracts if _multiplier(c) == 1]
            for c in contracts:
                mult = _multiplier(c)
                if plain and mult > 1 and (_literal_id(c), key[1]) not in rows:
                    literal[c] = (_literal_id(c), mult)
        candidates = Counter({c: n for c, n in contracts.items() if c not in literal})
        chosen[key] = max(
            candidates,
            key=lambda c: (c.upper().split("/")[0].endswith("USDT") or c.upper().endswith("/USDT"), candidates[c], c),
        )
    kept: list[Observation] = []
    for obs in observations:
        if obs.contract in literal:
            coin_id, mult = literal[obs.contract]
            price = getattr(obs, "price", None)
            kept.append(
                dataclasses.replace(obs, coin_id=coin_id, **({"price": price * mult} if price is not None else {}))
            )
        elif chosen[(obs.coin_id, obs.venue)] == obs.contract:
            kept.append(obs)
    if len(kept) != len(observations):
        report.reject(
            "a second contract of the coin on the venue (kept the USDT one, else the longest)",
            len(observations) - len(kept),
        )
    return kept


def _base_of(contract: str) -> str:
    name = contract.split("/")[0].upper()
    for quote in QUOTES:
        if name.endswith(quote) and len(name) > len(quote):
            return name[: -len(quote)]
    return name


def _multiplier(contract: str) -> int:
    parsed = parse_base(_base_of(contract))
    return 1 if parsed is None else parsed.multiplier


def _literal_id(contract: str) -> str:
    return canonical_id(_base_of(contract))
