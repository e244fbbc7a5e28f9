"""The research commands behind the CLI: ``export-demo``, ``backtest --replay``, ``validate``,
``report`` and ``calibrate``.

``insider_selling.cli`` registers them with :func:`register_commands`; each handler takes the parsed
arguments and the settings, opens what it needs (the configured store: MongoDB, or the in-memory
stand-in), and returns an exit code. The work itself is in plain functions of the other modules
(:func:`research.replay.backtest`, :func:`research.history.history_report`,
:func:`research.dataset.dataset_report`...) that the tests call directly.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from ingest.errors import IngestError
from ingest.progress import Stages
from ingest.snapshot import parse_time
from research.analysis import documented_call_counts, fit_scale
from research.dataset import DatasetReport, dataset_report
from research.history import history_report
from research.markdown import findings, format_table
from research.replay import backtest, export_demo, iso, load_replay, parse_step
from research.report import dataset_folders, write_validation
from research.synthetic import synthetic_validation
from scoring.config import load_model_config
from scoring.errors import ScoringError
from scoring.model import published_scale
from scoring.panel import hour_floor
from scoring.pipeline import RunResult

__all__ = ["register_commands"]


def _time(value: str) -> datetime:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from exc


def register_commands(sub: Any) -> None:
    """Add ``backtest``, ``validate``, ``export-demo``, ``report`` and ``calibrate`` to the CLI's
    subparsers."""
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

    _register_report(sub)  # report --data DIR --out DIR
    _register_calibrate(sub)  # calibrate --data DIR --dataset NAME


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
                        note=f"{iso(r.at)} {r.status}, {r.listed} listed" + ("" if r.error is None else f", {r.error}")
                    )

                results = await backtest(store.db, replay, start=args.start, end=args.end, step=step, progress=progress)
                ok = sum(r.status == "succeeded" for r in results)
                stage.note = f"{ok} succeeded"
            print(f"backtest: {len(results)} runs ({ok} succeeded) from {iso(results[0].at)} to {iso(results[-1].at)}")
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


async def run_report(args: argparse.Namespace) -> int:
    step = parse_step(args.step)
    command = "insider-selling report --data " + str(args.data) + " --out " + str(args.out)
    if args.step != "7h":
        command += f" --step {args.step}"
    reports: list[DatasetReport] = []
    for folder in dataset_folders(args.data, args.dataset):
        work = None if args.work is None else args.work / folder.name
        report, _ = await dataset_report(
            folder.name, folder, work, step=step, reps=args.reps, seed=args.seed, log=lambda m: print(m, flush=True)
        )
        reports.append(report)
        print(f"== {folder.name}: checks {'passed' if report.checks.passed else 'FAILED'}")
        for line in report.checks.lines():
            print(f"   {line}")
        for line in findings(report):
            print(f"   {line}")
    path = write_validation(reports, args.out, command=command)
    print(f"wrote {path}, validation.json and {', '.join(r.png for r in reports)}")
    return 0 if all(r.checks.passed for r in reports) else 1


async def run_calibrate(args: argparse.Namespace) -> int:
    """Replay one dataset scored without a scale, fit the scale's knots, and print them as the
    ``[scale]`` section of ``scoring/model.toml``, with the documented call's listing counts under
    the current and the fitted scale."""
    step = parse_step(args.step)
    (folder,) = dataset_folders(args.data, [args.dataset])
    unscaled = load_model_config(scale={})
    current = load_model_config()
    _, data = await dataset_report(
        folder.name, folder, None, step=step, reps=10, log=lambda m: print(m, file=sys.stderr), config=unscaled
    )
    raw, score, where = fit_scale(data)
    fitted = load_model_config(scale={"raw": list(raw), "score": list(score)})
    composite = data.score
    counts: dict[str, tuple[float, int, int, int]] = {}
    for name, cfg in (("unscaled", unscaled), ("current", current), ("fitted", fitted)):
        scaled = np.where(
            composite > 0, published_scale(composite, cfg.scale.raw, cfg.scale.score, cfg.composite.cap), 0.0
        )
        rows = [{**row, "score": float(v)} for row, v in zip(data.rows, scaled, strict=True)]
        counts[name] = documented_call_counts(dataclasses.replace(data, rows=rows))
    for name, (med, lo, hi, none) in counts.items():
        print(
            f"# documented call, {name} scale: median {med:g}, min {lo}, max {hi} coins per run; "
            f"{none} of {len(data.runs)} runs list none",
            file=sys.stderr,
        )
    print("[scale]")
    print(f"raw = [{', '.join(f'{x:g}' for x in raw)}]")
    print(f"score = [{', '.join(f'{x:g}' for x in score)}]")
    print(f'fitted_on = "{folder.name}, {where}"')
    return 0


def _calibrate_command(args: argparse.Namespace, settings: Any) -> int:
    try:
        return asyncio.run(run_calibrate(args))
    except (ScoringError, IngestError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _register_calibrate(sub: Any) -> None:
    cal = sub.add_parser(
        "calibrate",
        help="fit the published score scale on a real dataset's earlier half; prints the [scale] section",
    )
    cal.add_argument("--data", type=Path, required=True, metavar="DIR", help="a folder of dataset folders")
    cal.add_argument("--dataset", required=True, metavar="NAME", help="the dataset folder to fit on")
    cal.add_argument("--step", default="7h", help="time between runs (default 7h)")
    cal.set_defaults(handler=_calibrate_command)


def _report_command(args: argparse.Namespace, settings: Any) -> int:
    try:
        return asyncio.run(run_report(args))
    except (ScoringError, IngestError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _register_report(sub: Any) -> None:
    rep = sub.add_parser(
        "report",
        help="the real-data report: import -> replay -> forward returns by score "
        "bucket vs baselines, both halves; writes validation.md/.json and PNGs",
    )
    rep.add_argument(
        "--data", type=Path, required=True, metavar="DIR", help="a folder of dataset folders (e.g. ../shared/data)"
    )
    rep.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write (e.g. docs/)")
    rep.add_argument("--step", default="7h", help="time between runs (default 7h: every hour of the day)")
    rep.add_argument("--dataset", action="append", metavar="NAME", help="only this dataset folder (repeatable)")
    rep.add_argument(
        "--work", type=Path, metavar="DIR", help="import through snapshot files in DIR/<dataset> (default: in memory)"
    )
    rep.add_argument("--reps", type=int, default=1000, help="bootstrap draws (default 1000)")
    rep.add_argument("--seed", type=int, default=0, help="seed of the bootstrap draws (default 0)")
    rep.set_defaults(handler=_report_command)
