"""The scoring commands behind the CLI: ``export-demo``, ``backtest --replay``, ``validate``.

``insider_selling.cli`` registers them with :func:`register_commands`; each handler takes the parsed
arguments and the settings, opens the configured store (MongoDB, or the in-memory stand-in), and
returns an exit code. The work itself is in plain async functions (:func:`export_demo`,
:func:`backtest`, :func:`history_report`) that the tests call directly.
"""

from __future__ import annotations

import argparse
import asyncio
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
from ingest.files import read_snapshots, write_snapshots
from ingest.progress import Stages
from ingest.snapshot import Coin, MarketSample, OnchainSample, parse_time
from ingest.source import SnapshotBatch
from ingest.storage import SnapshotStore
from scoring.config import ModelConfig, load_model_config
from scoring.errors import ScoringError
from scoring.panel import build_market_panel, hour_floor
from scoring.pipeline import RunResult, ScoringPipeline
from scoring.runs import RunStore
from scoring.synthetic import synthetic_validation

__all__ = [
    "BUCKETS",
    "BacktestError",
    "backtest",
    "export_demo",
    "history_report",
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


def export_demo(out: Path, *, seed: int = 7, coins: int = 60, days: int = 14,
                end: datetime | None = None, hard: bool = False) -> tuple[int, list[Path]]:
    """Write ``days`` of hourly demo data to ``out`` in the snapshot file format, one file per
    UTC day. Returns the number of sample rows and the files written."""
    end = hour_floor(end or datetime(2026, 11, 20, tzinfo=UTC))
    hours = days * 24
    origin = end - timedelta(hours=hours)
    market = DemoMarket(DemoConfig(seed=seed, coins=coins, hard=hard, horizon_hours=hours),
                        origin, warm_until=origin + timedelta(hours=hours // 2))
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
    coins: dict[str, Coin]
    market: list[MarketSample]
    onchain: list[OnchainSample]

    @property
    def first(self) -> datetime:
        return min(s.at for s in self.market)

    @property
    def last(self) -> datetime:
        return max(s.at for s in self.market)


def load_replay(directory: Path) -> Replay:
    coins, market, onchain = read_snapshots(directory)
    if not market:
        raise BacktestError(f"{directory}: no market rows")
    market.sort(key=lambda s: s.at)
    onchain.sort(key=lambda s: s.at)
    return Replay(coins, market, onchain)


async def backtest(
    db: Any, replay: Replay, *, start: datetime | None = None, end: datetime | None = None,
    step: timedelta = timedelta(hours=1), config: ModelConfig | None = None,
    warmup: timedelta = timedelta(hours=72), progress: Any = None,
) -> list[RunResult]:
    """Step through the replay as if time passed: before each run, write the samples up to the
    run time (never later ones) to the store, then run the scoring pipeline, storing the run.

    ``start`` defaults to the first sample plus ``warmup`` (the funding window), ``end`` to the
    last sample.
    """
    config = config or load_model_config()
    pipeline = ScoringPipeline(db, config, source="replay")
    snapshots = SnapshotStore(db)
    start = hour_floor(start or replay.first + warmup)
    end = end or replay.last
    if start > end:
        raise BacktestError(f"the window is empty: --from {_iso(start)} is after --to {_iso(end)}")
    coins = list(replay.coins.values()) or [Coin(c, c.upper(), c) for c in
                                            sorted({s.coin_id for s in replay.market})]
    results: list[RunResult] = []
    m_pos = o_pos = 0
    at = start
    while at <= end:
        m_end, o_end = m_pos, o_pos
        while m_end < len(replay.market) and replay.market[m_end].at <= at:
            m_end += 1
        while o_end < len(replay.onchain) and replay.onchain[o_end].at <= at:
            o_end += 1
        batch = SnapshotBatch(at=at, coins=coins if not results else [],
                              market=replay.market[m_pos:m_end], onchain=replay.onchain[o_pos:o_end])
        if batch.market or batch.onchain or batch.coins:
            await snapshots.write_batch(batch)
        m_pos, o_pos = m_end, o_end
        result = await pipeline.run(at)
        results.append(result)
        if progress is not None:
            progress(result)
        at += step
    return results


# --- validate --history ----------------------------------------------------------------------


def _bootstrap_ci(values: F64, groups: npt.NDArray[np.int64], reps: int,
                  rng: np.random.Generator) -> tuple[float, float]:
    """95 % CI of the mean by a cluster bootstrap over runs (pairs of one run move together, as
    their forward windows overlap)."""
    if values.size == 0:
        return float("nan"), float("nan")
    uniq, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=values)
    counts = np.bincount(inverse).astype(np.float64)
    draws = rng.integers(0, uniq.size, size=(reps, uniq.size))
    means = sums[draws].sum(axis=1) / np.maximum(counts[draws].sum(axis=1), 1.0)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


async def history_report(db: Any, out: Path | None = None, *, reps: int = 1000,
                         seed: int = 0) -> dict[str, Any]:
    """Forward 24 h and 7 d returns by score bucket, in excess of the universe's mean return at
    the same run, from the stored succeeded runs and the stored prices. Writes ``history.md``,
    ``history.json`` and ``history.png`` to ``out`` when given."""
    runs = await RunStore(db).succeeded_runs()
    if not runs:
        raise BacktestError("no succeeded runs in the store: run `backtest --replay DIR` first "
                            "(with the in-memory store, use `validate --history --replay DIR`)")
    run_times = [parse_time(r["at"]) for r in runs]
    first, last = min(run_times), max(run_times)
    horizon = max(h for _, h in HORIZONS)
    frames = await SnapshotStore(db).market_window(first - timedelta(hours=1),
                                                   last + timedelta(hours=horizon))
    hours = int((hour_floor(last) - hour_floor(first)).total_seconds() // 3600) + horizon + 1
    panel = build_market_panel(last + timedelta(hours=horizon), frames, hours)
    with np.errstate(invalid="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            price = np.nanmean(panel["price"], axis=1)           # (coins, hours)
    coin_row = {c: i for i, c in enumerate(panel.coin_ids)}
    hour0 = int(panel.hours[0])
    store = RunStore(db)
    scores: list[float] = []
    rows: list[int] = []
    cols: list[int] = []
    group: list[int] = []
    for k, (run, at) in enumerate(zip(runs, run_times, strict=True)):
        t = int(at.timestamp()) // 3600 - hour0
        for doc in await store.run_scores(run["run_id"], {"coin_id": 1, "score": 1}):
            i = coin_row.get(doc["coin_id"])
            if i is not None:
                scores.append(float(doc.get("score") or 0.0))
                rows.append(i)
                cols.append(t)
                group.append(k)
    s = np.array(scores)
    r = np.array(rows, dtype=np.int64)
    c = np.array(cols, dtype=np.int64)
    g = np.array(group, dtype=np.int64)
    rng = np.random.default_rng(seed)
    table: list[dict[str, Any]] = []
    for name, h in HORIZONS:
        ok_t = (c >= 0) & (c + h < price.shape[1])
        now = np.where(ok_t, price[r, np.clip(c, 0, price.shape[1] - 1)], np.nan)
        later = np.where(ok_t, price[r, np.clip(c + h, 0, price.shape[1] - 1)], np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            ret = later / now - 1.0
        valid = np.isfinite(ret)
        # the universe's equal-weight mean return at each run
        sums = np.bincount(g[valid], weights=ret[valid], minlength=len(runs))
        counts = np.bincount(g[valid], minlength=len(runs))
        with np.errstate(invalid="ignore", divide="ignore"):
            universe = sums / counts
        excess = ret - universe[g]
        for label, lo, hi in BUCKETS:
            sel = valid & (s >= lo) & (s < hi)
            x = excess[sel]
            ci = _bootstrap_ci(x, g[sel], reps, rng)
            table.append({
                "horizon": name, "bucket": label, "n": int(sel.sum()),
                "runs": int(np.unique(g[sel]).size),
                "mean_excess_return": float(x.mean()) if x.size else float("nan"),
                "ci95_low": ci[0], "ci95_high": ci[1],
                "hit_rate": float(np.mean(x < 0)) if x.size else float("nan"),
                "mean_return": float(ret[sel].mean()) if x.size else float("nan"),
            })
    report = {"runs": len(runs), "from": _iso(first), "to": _iso(last), "pairs": int(s.size),
              "bootstrap": {"reps": reps, "cluster": "run", "level": 0.95}, "table": table}
    if out is not None:
        await asyncio.to_thread(write_report, report, out)
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
        f"({report['runs']} runs, {report['from']} .. {report['to']}; 95 % CI by a cluster "
        f"bootstrap over runs, {report['bootstrap']['reps']} draws; hit rate = share of coins "
        f"that underperformed the universe).",
        "",
        "| horizon | score bucket | n | runs | mean excess | 95 % CI | hit rate |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for row in report["table"]:
        ci = f"[{_pct(row['ci95_low'])}, {_pct(row['ci95_high'])}]"
        hit = "—" if row["hit_rate"] != row["hit_rate"] else f"{row['hit_rate']:.2f}"
        lines.append(f"| {row['horizon']} | {row['bucket']} | {row['n']} | {row['runs']} | "
                     f"{_pct(row['mean_excess_return'])} | {ci} | {hit} |")
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
    va.add_argument("--out", type=Path, default=Path("validation"), metavar="DIR",
                    help="where --history writes history.md/.json/.png (default ./validation)")
    va.add_argument("--replay", type=Path, metavar="DIR",
                    help="--history: first backtest DIR in this process (needed with the in-memory store)")
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
            synthetic_validation, seed=args.seed, hard=args.hard, coins=args.coins,
            horizon_hours=args.days * 24)
        print(f"synthetic validation: seed {args.seed}{' (hard)' if args.hard else ''}, "
              f"{result['runs']} runs x {args.coins} coins, model {result['model_version']}")
        print(json.dumps(result, sort_keys=True))
        return 0

    from store import open_store

    store = await open_store(getattr(settings, "mongodb_uri", None),
                             getattr(settings, "mongodb_database", "insider_selling"))
    try:
        print(store.describe(), file=sys.stderr)
        stages = Stages(args.command, Console())
        replay_dir = args.replay
        if replay_dir is not None:
            with stages.stage(f"read {replay_dir}", unit="files") as stage:
                replay = load_replay(replay_dir)
                stage.update(len(list(replay_dir.glob("*.jsonl"))), note=f"{len(replay.market)} market rows")
            step = parse_step(args.step)
            first = hour_floor(args.start or replay.first + timedelta(hours=72))
            total = max(0, int(((args.end or replay.last) - first) / step) + 1)
            with stages.stage("runs", total=total, unit="runs") as stage:

                def progress(r: RunResult) -> None:
                    stage.advance(note=f"{_iso(r.at)} {r.status}, {r.listed} listed"
                                       + ("" if r.error is None else f", {r.error}"))

                results = await backtest(store.db, replay, start=args.start, end=args.end, step=step,
                                         progress=progress)
                ok = sum(r.status == "succeeded" for r in results)
                stage.note = f"{ok} succeeded"
            print(f"backtest: {len(results)} runs ({ok} succeeded) from {_iso(results[0].at)} "
                  f"to {_iso(results[-1].at)}")
            if args.command == "backtest" and not store.persistent:
                print("note: the in-memory store is lost on exit; set MONGODB_URI, or run "
                      "`validate --history --replay DIR` to backtest and report in one process",
                      file=sys.stderr)
        if args.command == "validate":
            with stages.stage("forward returns by score bucket", unit="runs") as stage:
                report = await history_report(store.db, args.out)
                stage.update(int(report["runs"]))
            print(format_table(report))
            print(f"wrote {args.out / 'history.md'}, history.json and history.png")
        return 0
    finally:
        await store.aclose()
