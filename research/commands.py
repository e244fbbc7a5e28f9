"""The scoring commands behind the CLI: ``export-demo``, ``backtest --replay``, ``validate``.

``insider_selling.cli`` registers them with :func:`register_commands`; each handler takes the parsed
arguments and the settings, opens the configured store (MongoDB, or the in-memory stand-in), and
returns an exit code. The work itself is in plain async functions (:func:`export_demo`,
:func:`backtest`, :func:`history_report`) that the tests call directly.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console

from ingest.demo import DemoConfig, DemoMarket
from ingest.errors import IngestError
from ingest.files import read_snapshot_frames, write_snapshots
from ingest.progress import Stages
from ingest.snapshot import Coin, MarketSample, OnchainSample, frame_coin_ids, parse_time, samples_from_frame
from ingest.source import SnapshotBatch
from ingest.storage import SnapshotStore
from research.export import PUBLIC_FIELDS, write_scores_csv
from research.synthetic import synthetic_validation
from scoring.config import ModelConfig, load_model_config
from scoring.errors import ScoringError
from scoring.evaluation import Pairs, forward_excess, selection_stats
from scoring.panel import build_market_panel, frames_coin_ids, hour_floor
from scoring.pipeline import RunResult, ScoringPipeline
from scoring.runs import RunStore

__all__ = [
    "BUCKETS",
    "BacktestError",
    "ScoredRuns",
    "backtest",
    "export_demo",
    "history_report",
    "load_scored_runs",
    "register_commands",
]

F64 = npt.NDArray[np.float64]

#: Score buckets of the history report: (label, low inclusive, high exclusive).
BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("0 (not listed)", 0.0, 1e-12),
    ("(0, 2.5)", 1e-12, 2.5),
    ("[2.5, 5)", 2.5, 5.0),
    ("[5, 7.5)", 5.0, 7.5),
    ("[7.5, 10]", 7.5, 10.01),
)
HORIZONS = (("24h", 24), ("7d", 24 * 7))


class BacktestError(ScoringError):
    """Raised when a replay directory or a backtest window cannot be used."""


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- export-demo -----------------------------------------------------------------------------


def export_demo(
    out: Path, *, seed: int = 7, coins: int = 60, days: int = 14, end: datetime | None = None, hard: bool = False
) -> tuple[int, list[Path]]:
    """Write ``days`` of hourly demo data to ``out`` in the snapshot file format, one file per
    UTC day. Returns the number of sample rows and the files written."""
    end = hour_floor(end or datetime(2026, 11, 20, tzinfo=UTC))
    hours = days * 24
    origin = end - timedelta(hours=hours)
    market = DemoMarket(
        DemoConfig(seed=seed, coins=coins, hard=hard, horizon_hours=hours),
        origin,
        warm_until=origin + timedelta(hours=hours // 2),
    )
    rows = 0
    written: list[Path] = []
    for h in range(1, hours + 1):
        at = origin + timedelta(hours=h)
        path = out / f"snapshots-{at:%Y-%m-%d}.jsonl"
        fresh = path not in written
        if fresh:
            written.append(path)
        samples, onchain = market.advance(at)
        rows += write_snapshots(path, market.coins if fresh else [], samples, onchain, append=not fresh)
    return rows, written


# --- backtest --replay -----------------------------------------------------------------------


def parse_step(step: str) -> timedelta:
    """``1h``, ``6h``, ``1d``... -> a timedelta of whole hours."""
    unit = step[-1:].lower()
    try:
        count = int(step[:-1])
    except ValueError:
        count = 0
    if unit not in ("h", "d") or count <= 0:
        raise BacktestError(f"--step must look like 1h, 6h or 1d, not {step!r}")
    return timedelta(hours=count * (24 if unit == "d" else 1))


@dataclass(slots=True)
class Replay:
    """A snapshot directory in memory: coins, market frames (one per venue and sample time, in
    time order, as the store keeps them) and on-chain samples (in time order)."""

    coins: dict[str, Coin]
    frames: list[dict[str, Any]]
    onchain: list[OnchainSample]

    @property
    def first(self) -> datetime:
        return parse_time(self.frames[0]["at"])

    @property
    def last(self) -> datetime:
        return parse_time(self.frames[-1]["at"])

    @property
    def rows(self) -> int:
        """Market rows (coins summed over frames)."""
        return sum(len(frame_coin_ids(f)) for f in self.frames)

    @property
    def market(self) -> list[MarketSample]:
        """Every market row as a sample (decoded on demand; the replay itself uses the frames)."""
        return [s for frame in self.frames for s in samples_from_frame(frame)]


def load_replay(directory: Path) -> Replay:
    coins, frames, onchain = read_snapshot_frames(directory)
    if not frames:
        raise BacktestError(f"{directory}: no market rows")
    onchain.sort(key=lambda s: s.at)
    return Replay(coins, frames, onchain)


class _ReplaySnapshots(SnapshotStore):
    """The pipeline's view of a replay: market windows served straight from the replay's frames
    (no store round trip, no copies), never past the frames released so far."""

    def __init__(self, db: Any, replay: Replay, frame_times: list[datetime]) -> None:
        super().__init__(db)
        self._frames = replay.frames
        self._times = frame_times
        self._coins: dict[str, Coin] | None = None
        self.released = 0

    async def market_window(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        lo = bisect.bisect_right(self._times, start, hi=self.released)
        hi = bisect.bisect_right(self._times, end, lo=lo, hi=self.released)
        return self._frames[lo:hi]

    async def all_coins(self) -> dict[str, Coin]:
        if self._coins is None:
            self._coins = await super().all_coins()
        return dict(self._coins)


async def backtest(
    db: Any,
    replay: Replay,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    step: timedelta = timedelta(hours=1),
    config: ModelConfig | None = None,
    warmup: timedelta = timedelta(hours=72),
    progress: Any = None,
) -> list[RunResult]:
    """Step through the replay as if time passed: before each run, write the samples up to the
    run time (never later ones) to the store, then run the scoring pipeline, storing the run.

    ``start`` defaults to the first sample plus ``warmup`` (the funding window), ``end`` to the
    last sample.
    """
    config = config or load_model_config()
    pipeline = ScoringPipeline(db, config, source="replay")
    snapshots = SnapshotStore(db)
    frame_times = [parse_time(f["at"]) for f in replay.frames]
    view = _ReplaySnapshots(db, replay, frame_times)
    pipeline.snapshots = view
    start = hour_floor(start or replay.first + warmup)
    end = end or replay.last
    if start > end:
        raise BacktestError(f"the window is empty: --from {_iso(start)} is after --to {_iso(end)}")
    coins = list(replay.coins.values()) or [Coin(c, c.upper(), c) for c in frames_coin_ids(replay.frames)]
    results: list[RunResult] = []
    m_pos = o_pos = 0
    at = start
    while at <= end:
        m_end = bisect.bisect_right(frame_times, at, lo=m_pos)
        o_end = o_pos
        while o_end < len(replay.onchain) and replay.onchain[o_end].at <= at:
            o_end += 1
        batch = SnapshotBatch(at=at, coins=coins if not results else [], market=[], onchain=replay.onchain[o_pos:o_end])
        if batch.onchain or batch.coins:
            await snapshots.write_batch(batch)
        await snapshots.write_frames(replay.frames[m_pos:m_end])  # for reports and later reads
        view.released = m_end
        m_pos, o_pos = m_end, o_end
        result = await pipeline.run(at)
        results.append(result)
        if progress is not None:
            progress(result)
        at += step
    return results


# --- validate --history ----------------------------------------------------------------------


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


async def history_report(db: Any, out: Path | None = None, *, reps: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Forward 24 h and 7 d returns by score bucket, in excess of the universe's mean return at
    the same run, from the stored succeeded runs and the stored prices. Writes ``history.md``,
    ``history.json``, ``history.png`` and ``scores.csv.gz`` (every listed row of every run, with
    every public field) to ``out`` when given."""
    data = await load_scored_runs(db)
    s = data.score
    rng = np.random.default_rng(seed)
    table: list[dict[str, Any]] = []
    for name, h in HORIZONS:
        ret, excess = forward_excess(data.price, data.pairs, h)
        for label, lo, hi in BUCKETS:
            stats = selection_stats((s >= lo) & (s < hi), ret, excess, data.pairs, reps=reps, rng=rng)
            table.append({"horizon": name, "bucket": label, **stats.as_dict()})
    report = {
        "runs": len(data.runs),
        "from": _iso(min(data.run_times)),
        "to": _iso(max(data.run_times)),
        "pairs": int(s.size),
        "listed_rows": int((s > 0).sum()),
        "bootstrap": {"reps": reps, "cluster": "coin", "level": 0.95},
        "table": table,
    }
    if out is not None:
        await asyncio.to_thread(write_report, report, out)
        await asyncio.to_thread(
            write_scores_csv, out / "scores.csv.gz", (r for r in data.rows if (r.get("score") or 0) > 0)
        )
    return report


def write_report(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.md").write_text(format_table(report) + "\n")
    (out / "history.json").write_text(json.dumps(report, indent=2, allow_nan=True) + "\n")
    plot_history(report, out / "history.png")


def _pct(x: float) -> str:
    return "—" if x != x else f"{x * 100:+.2f}%"


def format_table(report: dict[str, Any]) -> str:
    lines = [
        f"Forward returns by score bucket, in excess of the universe mean at the same run "
        f"({report['runs']} runs, {report['from']} .. {report['to']}; 95 % CI by a bootstrap over "
        f"coins, {report['bootstrap']['reps']} draws; hit rate = share of coins "
        f"that underperformed the universe).",
        "",
        "| horizon | score bucket | n | coins | runs | mean excess | 95 % CI | hit rate |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for row in report["table"]:
        ci = f"[{_pct(row['ci95_low'])}, {_pct(row['ci95_high'])}]"
        hit = "—" if row["hit_rate"] != row["hit_rate"] else f"{row['hit_rate']:.2f}"
        lines.append(
            f"| {row['horizon']} | {row['bucket']} | {row['n']} | {row['coins']} | {row['runs']} | "
            f"{_pct(row['mean_excess_return'])} | {ci} | {hit} |"
        )
    return "\n".join(lines)


def plot_history(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(HORIZONS), figsize=(11, 4), sharey=False)
    for ax, (name, _) in zip(np.atleast_1d(axes), HORIZONS, strict=True):
        rows = [r for r in report["table"] if r["horizon"] == name]
        x = np.arange(len(rows))
        mean = np.array([r["mean_excess_return"] for r in rows]) * 100
        lo = np.array([r["ci95_low"] for r in rows]) * 100
        hi = np.array([r["ci95_high"] for r in rows]) * 100
        err = np.vstack([np.nan_to_num(mean - lo), np.nan_to_num(hi - mean)])
        ax.bar(x, np.nan_to_num(mean), yerr=err, capsize=4, color="#b5473a")
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(x, [f"{r['bucket']}\nn={r['n']}" for r in rows], fontsize=7)
        ax.set_title(f"forward {name} return vs universe")
        ax.set_ylabel("mean excess return, % (95 % CI)")
    fig.suptitle(f"Insider Selling score buckets, {report['runs']} runs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- CLI wiring ------------------------------------------------------------------------------


def _time(value: str) -> datetime:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from exc


def register_commands(sub: Any) -> None:
    """Add ``backtest``, ``validate`` and ``export-demo`` to the CLI's subparsers."""
    bt = sub.add_parser("backtest", help="replay a snapshot directory as if time passed, storing each run")
    bt.add_argument("--replay", type=Path, required=True, metavar="DIR", help="snapshot files (JSONL)")
    _window_args(bt)
    bt.set_defaults(handler=run_command)

    va = sub.add_parser("validate", help="measure the model: --synthetic (planted episodes) or --history")
    mode = va.add_mutually_exclusive_group(required=True)
    mode.add_argument("--synthetic", action="store_true", help="score every run of the demo simulator")
    mode.add_argument("--history", action="store_true", help="forward returns by score bucket of stored runs")
    va.add_argument("--seed", type=int, default=7, help="simulator seed (--synthetic, default 7)")
    va.add_argument("--hard", action="store_true", help="more noise, fewer venues, fainter episodes")
    va.add_argument("--coins", type=int, default=200, help="simulated coins (--synthetic, default 200)")
    va.add_argument("--days", type=int, default=30, help="simulated days incl. 7 of warm-up (default 30)")
    va.add_argument(
        "--out",
        type=Path,
        default=Path("validation"),
        metavar="DIR",
        help="where --history writes history.md/.json/.png (default ./validation)",
    )
    va.add_argument(
        "--replay",
        type=Path,
        metavar="DIR",
        help="--history: first backtest DIR in this process (needed with the in-memory store)",
    )
    _window_args(va)
    va.set_defaults(handler=run_command)

    ex = sub.add_parser("export-demo", help="write demo data in the snapshot file format (for backtests)")
    ex.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory for the snapshot files")
    ex.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    ex.add_argument("--coins", type=int, default=60, help="default 60")
    ex.add_argument("--days", type=int, default=14, help="hourly history to write (default 14)")
    ex.add_argument("--end", type=_time, help="last sample time (default 2026-11-20T00:00:00Z)")
    ex.set_defaults(handler=run_command)


def _window_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", type=_time, metavar="ISO", help="first run time")
    parser.add_argument("--to", dest="end", type=_time, metavar="ISO", help="last run time")
    parser.add_argument("--step", default="1h", help="time between runs: 1h, 6h, 1d... (default 1h)")


def run_command(args: argparse.Namespace, settings: Any) -> int:
    try:
        return asyncio.run(_run(args, settings))
    except (ScoringError, IngestError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, settings: Any) -> int:
    if args.command == "export-demo":
        rows, files = export_demo(args.out, seed=args.seed, coins=args.coins, days=args.days, end=args.end)
        print(f"wrote {rows} sample rows to {len(files)} files in {args.out}")
        return 0
    if args.command == "validate" and args.synthetic:
        result = await asyncio.to_thread(
            synthetic_validation, seed=args.seed, hard=args.hard, coins=args.coins, horizon_hours=args.days * 24
        )
        print(
            f"synthetic validation: seed {args.seed}{' (hard)' if args.hard else ''}, "
            f"{result['runs']} runs x {args.coins} coins, model {result['model_version']}"
        )
        print(json.dumps(result, sort_keys=True))
        return 0

    from store import open_store

    store = await open_store(
        getattr(settings, "mongodb_uri", None), getattr(settings, "mongodb_database", "insider_selling")
    )
    try:
        print(store.describe(), file=sys.stderr)
        stages = Stages(args.command, Console())
        replay_dir = args.replay
        if replay_dir is not None:
            with stages.stage(f"read {replay_dir}", unit="files") as stage:
                replay = load_replay(replay_dir)
                stage.update(len(list(replay_dir.glob("*.jsonl"))), note=f"{replay.rows} market rows")
            step = parse_step(args.step)
            first = hour_floor(args.start or replay.first + timedelta(hours=72))
            total = max(0, int(((args.end or replay.last) - first) / step) + 1)
            with stages.stage("runs", total=total, unit="runs") as stage:

                def progress(r: RunResult) -> None:
                    stage.advance(
                        note=f"{_iso(r.at)} {r.status}, {r.listed} listed" + ("" if r.error is None else f", {r.error}")
                    )

                results = await backtest(store.db, replay, start=args.start, end=args.end, step=step, progress=progress)
                ok = sum(r.status == "succeeded" for r in results)
                stage.note = f"{ok} succeeded"
            print(
                f"backtest: {len(results)} runs ({ok} succeeded) from {_iso(results[0].at)} to {_iso(results[-1].at)}"
            )
            if args.command == "backtest" and not store.persistent:
                print(
                    "note: the in-memory store is lost on exit; set MONGODB_URI, or run "
                    "`validate --history --replay DIR` to backtest and report in one process",
                    file=sys.stderr,
                )
        if args.command == "validate":
            with stages.stage("forward returns by score bucket", unit="runs") as stage:
                report = await history_report(store.db, args.out)
                stage.update(int(report["runs"]))
            print(format_table(report))
            print(
                f"wrote {args.out / 'history.md'}, history.json, history.png and scores.csv.gz "
                f"({report['listed_rows']} listed rows)"
            )
        return 0
    finally:
        await store.aclose()
