"""What the CLI runs for ``ingest --once``, ``backfill`` and ``record``: plain functions that take
a built source and a rich console, so the composition root (``insider_selling.cli``) stays thin."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from ingest.files import write_snapshots
from ingest.importers import ImportResult, import_directory
from ingest.importers.base import ReadLimits
from ingest.live import LiveSource
from ingest.onchain import CoinGecko, DexScreener, GoPlus
from ingest.progress import Stages
from ingest.resilience import RetryPolicy, Timeouts
from ingest.snapshot import VENUES
from ingest.source import SnapshotBatch, Source, VenueOutcome
from ingest.venues import CONNECTORS, CcxtVenue, HttpVenue
from ingest.venues.base import CcxtFetch, Venue

__all__ = [
    "answered",
    "backfill",
    "build_live_source",
    "cycle_time",
    "import_files",
    "import_summary",
    "ingest_once",
    "print_outcomes",
    "record",
]

CYCLE = timedelta(minutes=30)


def cycle_time(now: datetime | None = None) -> datetime:
    """The cycle's sample time: ``now`` floored to the 30-minute grid, in UTC."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now - (now - now.replace(minute=0, second=0, microsecond=0)) % CYCLE


def build_live_source(
    *,
    venues: Sequence[str] | None = None,
    connect_timeout: float = 5.0,
    read_timeout: float = 10.0,
    venue_timeout: float = 60.0,
    cycle_timeout: float = 240.0,
    retries: int = 3,
    max_candidates: int = 40,
    min_negative_venues: int = 2,
    onchain: bool = True,
    ccxt_fetch: CcxtFetch | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    seed: int | None = None,
    throttle: bool = True,
    **_ignored: Any,
) -> LiveSource:
    """The live source over every venue in :data:`ingest.snapshot.VENUES` (or ``venues``).

    ``ccxt_fetch`` replaces ccxt's transport and ``transport`` httpx's (tests, the benchmark);
    ``throttle=False`` drops the per-host request spacing (only for replayed responses);
    unknown keyword arguments are ignored so the CLI can pass its whole settings section.
    """
    timeouts = Timeouts(connect_timeout, read_timeout, venue_timeout, cycle_timeout)
    retry = RetryPolicy(attempts=max(1, retries))
    rng = random.Random(seed)
    chosen = list(venues) if venues is not None else list(VENUES)
    unknown = [v for v in chosen if v not in CONNECTORS]
    if unknown:
        raise ValueError(f"unknown venues {unknown}; known: {', '.join(CONNECTORS)}")
    built: list[Venue] = []
    for venue_id in chosen:
        cls = CONNECTORS[venue_id]
        common: dict[str, Any] = {
            "timeouts": timeouts,
            "retry": retry,
            "rng": rng,
            "throttle": throttle,
        }
        if issubclass(cls, CcxtVenue):
            built.append(cls(fetch=ccxt_fetch, **common))
        elif issubclass(cls, HttpVenue):
            built.append(cls(transport=transport, **common))
    providers: dict[str, Any] = {}
    if onchain:
        common = {"timeouts": timeouts, "retry": retry, "rng": rng, "throttle": throttle}
        common["transport"] = transport
        providers = {
            "coingecko": CoinGecko(**common),
            "dexscreener": DexScreener(**common),
            "goplus": GoPlus(**common),
        }
    return LiveSource(
        built,
        timeouts=timeouts,
        max_candidates=max_candidates,
        min_negative_venues=min_negative_venues,
        **providers,
    )


def outcome_line(outcome: VenueOutcome) -> str:
    name = VENUES.get(outcome.venue, outcome.venue)
    line = (
        f"{name:<12} {outcome.status:<7} {outcome.markets:>5} markets "
        f"{outcome.requests:>4} req {outcome.latency_ms:>8.0f} ms"
    )
    if outcome.rejected:
        line += f"  {outcome.rejected} rejected"
    if outcome.error:
        line += f"  {outcome.error}"
    return line


def print_outcomes(outcomes: Iterable[VenueOutcome], console: Console) -> None:
    """One line per venue and provider, without markup surprises or stack traces."""
    for outcome in outcomes:
        style = {"ok": "green", "failed": "red"}.get(outcome.status, "yellow")
        console.print(outcome_line(outcome), style=style, markup=False, highlight=False, soft_wrap=True)


def answered(batch: SnapshotBatch) -> tuple[int, int]:
    """``(venues that answered, venues asked)`` in a cycle; on-chain providers do not count."""
    venues = [o for o in batch.outcomes if o.venue in VENUES]
    return sum(1 for o in venues if o.status == "ok"), len(venues)


async def ingest_once(source: Source, *, console: Console | None = None, at: datetime | None = None) -> SnapshotBatch:
    """One cycle; prints the per-venue summary when given a console."""
    batch = await source.collect(at or cycle_time())
    if console is not None:
        print_outcomes(batch.outcomes, console)
        ok, asked = answered(batch)
        console.print(
            f"{len(batch.market)} market samples, {len(batch.history)} history samples, "
            f"{len(batch.onchain)} on-chain samples, {ok}/{asked} venues ok",
            markup=False,
            highlight=False,
        )
    return batch


async def backfill(
    source: Source,
    *,
    hours: int = 72,
    console: Console | None = None,
    end: datetime | None = None,
) -> SnapshotBatch:
    """History for the ``hours`` before ``end``: a progress bar on a terminal ``console``, a line
    per stage on any other (see :mod:`ingest.progress`), nothing without one."""
    end = end or cycle_time()
    stages = Stages("backfill", console)
    with stages.stage(f"{hours} h of history", unit="coins") as stage:
        if isinstance(source, LiveSource):
            batch = await source.backfill(end, hours, progress=lambda done, total: stage.update(done, total))
        else:
            batch = await source.backfill(end, hours)
            coins = len(batch.coins) or len({s.coin_id for s in batch.history + batch.market})
            stage.update(coins, coins)
        stage.note = f"{len(batch.market) + len(batch.history)} samples"
    if console is not None:
        print_outcomes(batch.outcomes, console)
        console.print(
            f"{len(batch.market) + len(batch.history)} history samples",
            markup=False,
            highlight=False,
        )
    return batch


async def record(
    source: Source,
    out: Path,
    *,
    cycles: int = 1,
    every: float = CYCLE.total_seconds(),
    console: Console | None = None,
) -> int:
    """Run ``cycles`` cycles (``0``: until cancelled) and append each to ``out/<UTC day>.jsonl``
    in the snapshot file format that ``backtest --replay`` reads. Returns rows written."""
    written, done = 0, 0
    while cycles == 0 or done < cycles:
        batch = await ingest_once(source, console=console)
        path = out / f"{batch.at:%Y-%m-%d}.jsonl"
        market = batch.history + batch.market  # past hours first: a later sample in an hour wins
        written += write_snapshots(path, batch.coins, market, batch.onchain, append=True)
        done += 1
        if console is not None:
            console.print(f"recorded cycle {batch.at:%Y-%m-%dT%H:%M}Z -> {path}", markup=False)
        if cycles == 0 or done < cycles:
            if console is not None:
                following = batch.at + timedelta(seconds=every)
                left = "until stopped (Ctrl-C)" if cycles == 0 else f"{cycles - done} more to record"
                console.print(
                    f"waiting {every / 60:.0f} min for the next cycle (about {following:%H:%M}Z; {left})",
                    markup=False,
                    highlight=False,
                )
            await asyncio.sleep(every)
    return written


# --- import ----------------------------------------------------------------------------------


class _StagesReporter:
    """The importer's stages as :class:`ingest.progress.Stages` (a bar on a terminal, a line per
    stage otherwise)."""

    def __init__(self, stages: Stages) -> None:
        self.stages = stages
        self._open = contextlib.ExitStack()
        self._stage: Any = None

    def stage(self, name: str, total: int | None = None) -> None:
        self.close()
        self._stage = self._open.enter_context(self.stages.stage(name, total=total, unit="rows"))

    def advance(self, amount: int) -> None:
        if self._stage is not None:
            self._stage.advance(amount)

    def close(self) -> None:
        self._open.close()
        self._open = contextlib.ExitStack()
        self._stage = None


def import_summary(result: ImportResult) -> list[str]:
    """The closing lines: rows read, kept and rejected per file, with the reasons."""
    lines = []
    for r in result.files:
        lines.append(
            f"{r.path.name}: {r.format}: {r.read} rows read, {r.kept} kept, "
            f"{r.rejected_total} rejected" + (f" ({r.problem})" if r.problem else "")
        )
        lines.extend(f"    {count:>9}  {reason}" for reason, count in r.rejected.most_common())
    lines.extend(f"{p.name}: ignored (not a .csv or .csv.gz file)" for p in result.ignored)
    span = "" if result.first is None else f", {result.first:%Y-%m-%dT%H}Z .. {result.last:%Y-%m-%dT%H}Z"
    lines.append(
        f"wrote {result.samples} hourly market rows for {result.coins} coins to "
        f"{len(result.written)} snapshot files{span}"
    )
    return lines


def import_files(
    source: Path,
    out: Path,
    *,
    fmt: str | None = None,
    overwrite: bool = False,
    console: Console | None = None,
    limits: ReadLimits | None = None,
) -> ImportResult:
    """``insider-selling import DIR --out SNAPDIR``: a progress bar on a terminal, a line per stage
    otherwise, and the per-file summary at the end."""
    console = console or Console(stderr=False)
    reporter = _StagesReporter(Stages("import", console))
    try:
        result = import_directory(source, out, fmt=fmt, reporter=reporter, overwrite=overwrite, limits=limits)
    finally:
        reporter.close()
    for line in import_summary(result):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    return result
