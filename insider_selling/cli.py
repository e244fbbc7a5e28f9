"""The ``insider-selling`` command line: the other composition root.

Each subcommand reads the settings once, builds what it needs, and closes it. Settings errors end
the process with one line that names the setting, and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from insider_selling.settings import Settings, SettingsError, load_settings

__all__ = ["main"]

Handler = Callable[[argparse.Namespace, Settings], int]

#: prometheus_client's multi-process directory, as it reads it from the environment
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: ``ingest``/``backfill``/``record`` options (their ``dest``) -> the setting each overrides
INGEST_OPTIONS = {
    "source": "ingest_source",
    "connect_timeout": "ingest_connect_timeout",
    "read_timeout": "ingest_read_timeout",
    "deadline": "ingest_deadline",
}


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from insider_selling.builders import server_options
    from insider_selling.logs import configure_logging

    if args.workers > 1 and settings.embedded:
        print(
            "error: --workers > 1 needs MONGODB_URI: with the in-memory store each worker would "
            "hold its own data and keys",
            file=sys.stderr,
        )
        return 2
    if args.workers > 1 and settings.redis_url is None and not settings.allow_unsafe:
        print(
            "error: --workers > 1 needs REDIS_URL: without it each worker keeps its own rate limits "
            "and may serve a revoked key for minutes (set INSIDER_ALLOW_UNSAFE=1 to override)",
            file=sys.stderr,
        )
        return 2
    configure_logging(settings.log_level)
    settings, own_metrics_dir = prepare_metrics_dir(settings, args.workers)
    options = server_options(settings)  # --host/--port are in the settings (see main)
    announce_when_accepting(settings.host, settings.port)
    try:
        if args.workers > 1:
            uvicorn.run("insider_selling.app:app_from_env", factory=True, workers=args.workers, **options)
            return 0
        from insider_selling.app import build_app

        uvicorn.run(build_app(settings), **options)
        return 0
    finally:
        if own_metrics_dir is not None:  # ours: removed, and no longer named to this process
            shutil.rmtree(own_metrics_dir, ignore_errors=True)
            export_metrics_dir(None)


def announce_when_accepting(
    host: str, port: int, *, out: TextIO | None = None, timeout: float = 600.0
) -> threading.Thread:
    """Print "serving on …" once the port accepts a connection (the embedded start-up ingests and
    scores first: a line printed before would send people to a refused port), from a daemon thread
    that gives up silently after ``timeout`` seconds or when the process ends."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104

    def wait() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((target, port), timeout=1.0):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            return
        shown = f"[{host}]" if ":" in host else host
        print(f"serving on http://{shown}:{port}", file=out or sys.stderr, flush=True)

    thread = threading.Thread(target=wait, name="announce-serving", daemon=True)
    thread.start()
    return thread


def prepare_metrics_dir(settings: Settings, workers: int) -> tuple[Settings, Path | None]:
    """Prometheus' multi-process directory for ``serve``: with ``PROMETHEUS_MULTIPROC_DIR`` set,
    emptied of a previous run's files (their counts would add to this run's); with ``--workers N``
    and none set, a fresh temporary one, exported to the workers (:func:`export_metrics_dir`) and
    returned to be removed at exit. Either way every worker writes its metrics there and each scrape
    reports their sum."""
    if settings.prometheus_multiproc_dir:
        directory = Path(settings.prometheus_multiproc_dir)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        return settings, None
    if workers <= 1:
        return settings, None
    directory = Path(tempfile.mkdtemp(prefix="insider-selling-metrics-"))
    export_metrics_dir(directory)
    return settings.model_copy(update={"prometheus_multiproc_dir": str(directory)}), directory


def export_metrics_dir(directory: Path | None) -> None:
    """Name ``directory`` to prometheus_client in this process's environment (``None``: no longer).

    The one write to the process environment in this codebase (tests/test_environment.py holds it to
    this function). prometheus_client takes its multi-process directory from nowhere else: it reads
    ``PROMETHEUS_MULTIPROC_DIR`` from the environment when it is imported, in each process, and
    uvicorn's worker processes inherit this process's environment. No setting of ours travels this
    way: the parent passes its settings as arguments, and each worker reads the operator's
    environment (see :func:`insider_selling.app.app_from_env`)."""
    if directory is None:
        os.environ.pop(METRICS_DIR_VARIABLE, None)
    else:
        os.environ[METRICS_DIR_VARIABLE] = str(directory)


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from insider_selling.logs import configure_logging
    from insider_selling.worker import run_worker

    configure_logging(settings.log_level)
    if settings.embedded:
        print(
            "warning: no MONGODB_URI: the in-memory store is lost when this process exits, so "
            + ("this run's results vanish with it" if args.once else "no API process sees the runs")
            + "; set MONGODB_URI (the embedded `serve` ingests and scores by itself)",
            file=sys.stderr,
            flush=True,
        )
    return asyncio.run(run_worker(settings, once=args.once))


def _ingest_command(args: argparse.Namespace, settings: Settings) -> int:
    """``ingest --once``, ``backfill`` and ``record``: the live source unless ``--source demo``."""
    from rich.console import Console

    from ingest import commands
    from insider_selling.builders import build_source
    from insider_selling.logs import configure_logging

    # The per-venue summary is the output; a venue's failure is in its line, not in a log record.
    configure_logging("debug" if settings.log_level == "debug" else "error")
    console = Console(stderr=False)

    async def go() -> int:
        source = build_source(settings)  # --source and the timeouts are in the settings (see main)
        try:
            if args.command in ("ingest", "backfill"):
                if args.command == "ingest":
                    batch = await commands.ingest_once(source, console=console)
                else:
                    batch = await commands.backfill(source, hours=args.hours, console=console)
                ok, asked = commands.answered(batch)
                if asked and not ok:  # nothing was collected: a failure, for scripts and cron too
                    print(f"error: no venue answered (0 of {asked})", file=sys.stderr)
                    return 1
            else:
                await commands.record(source, args.out, cycles=args.cycles, console=console)
        finally:
            await source.aclose()
        return 0

    return asyncio.run(go())


def _import(args: argparse.Namespace, settings: Settings) -> int:
    """``import DIR --out SNAPDIR``: third-party files -> the snapshot file format."""
    from rich.console import Console

    from ingest.commands import import_files
    from ingest.errors import IngestError
    from ingest.importers.base import ReadLimits

    limits = ReadLimits(max_bytes=settings.import_max_bytes, max_line_bytes=settings.import_max_line_bytes)
    try:
        result = import_files(
            args.source, args.out, fmt=args.format, overwrite=args.overwrite, console=Console(), limits=limits
        )
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if result.samples else 1


def _admin_bootstrap(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> int:
        from insider_selling.builders import build_store, build_tenants

        if settings.embedded:
            print(
                "error: admin bootstrap needs MONGODB_URI (the embedded store prints its keys at `serve` start-up)",
                file=sys.stderr,
            )
            return 2
        store = await build_store(settings)
        try:
            issued = await build_tenants(settings, store).keys.bootstrap_admin()
        finally:
            await store.aclose()
        print(f"bootstrap admin key: {issued.key}", file=sys.stderr)
        print(f"key id: {issued.record['key_id']} (the key is shown only once)", file=sys.stderr)
        return 0

    return asyncio.run(go())


def _admin_api(args: argparse.Namespace, settings: Settings) -> int:
    """``admin tenants|keys|audit …`` through the server's GraphQL admin API (``admin_cli.py``)."""
    from insider_selling.admin_cli import run

    return run(args, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="insider-selling",
        description="Scores coins with perpetual futures for hedge-like short pressure, and serves it.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve the REST and GraphQL API (embedded mode also ingests and scores)")
    serve.add_argument("--host", help="bind address (default INSIDER_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default INSIDER_PORT, 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (needs MONGODB_URI when > 1)")
    serve.set_defaults(handler=_serve, settings_options={"host": "host", "port": "port"})

    worker = sub.add_parser("worker", help="run ingest and scoring every INSIDER_SCORE_INTERVAL_SECONDS")
    worker.add_argument("--once", action="store_true", help="run one cycle and exit")
    worker.set_defaults(handler=_worker)

    from pathlib import Path

    for name, text in (
        ("ingest", "collect one cycle from every venue and print each venue's outcome"),
        ("backfill", "fetch funding history for today's candidates, with a progress bar"),
        ("record", "run live cycles, 30 min apart, and append them to DIR in the snapshot file format"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--source", choices=["live", "demo"], help="default INSIDER_INGEST_SOURCE")
        cmd.add_argument("--connect-timeout", type=float, help="seconds (default INSIDER_INGEST_CONNECT_TIMEOUT, 5)")
        cmd.add_argument("--read-timeout", type=float, help="seconds (default INSIDER_INGEST_READ_TIMEOUT, 10)")
        cmd.add_argument("--deadline", type=float, help="whole-cycle seconds (default INSIDER_INGEST_DEADLINE, 240)")
        if name == "ingest":
            cmd.add_argument("--once", action="store_true", required=True, help="one cycle, then exit")
        if name == "backfill":
            cmd.add_argument("--hours", type=int, default=72, help="hours of history (default 72)")
        if name == "record":
            cmd.add_argument("--out", type=Path, required=True, metavar="DIR", help="snapshot directory")
            cmd.add_argument(
                "--cycles",
                type=int,
                default=1,
                help="cycles to record, 0 = until stopped; it waits a cycle (30 min) between them",
            )
        cmd.set_defaults(handler=_ingest_command, settings_options=INGEST_OPTIONS)

    from ingest.importers import IMPORTERS

    imp = sub.add_parser(
        "import",
        help="convert third-party files (Binance futures API CSVs, a long "
        "multi-venue funding file) into snapshot files for backtest --replay",
    )
    imp.add_argument("source", type=Path, metavar="DIR", help="a directory of .csv/.csv.gz files, or one file")
    imp.add_argument("--out", type=Path, required=True, metavar="SNAPDIR", help="where to write snapshot files")
    imp.add_argument(
        "--format", choices=list(IMPORTERS), help="the shape of every file (default: detected from each file's header)"
    )
    imp.add_argument(
        "--overwrite", action="store_true", help="replace the snapshot files of an earlier import in SNAPDIR"
    )
    imp.set_defaults(handler=_import)

    from research.commands import register_commands

    # backtest --replay, validate --synthetic|--history, export-demo, report --data, calibrate --data
    register_commands(sub)

    admin = sub.add_parser("admin", help="operator commands: tenants, keys and the audit log of a running server")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True, metavar="ADMIN_COMMAND")
    boot = admin_sub.add_parser("bootstrap", help="create the first admin key (MongoDB) and print it once")
    boot.set_defaults(handler=_admin_bootstrap)
    from insider_selling.admin_cli import add_arguments as add_admin_arguments

    add_admin_arguments(admin_sub, _admin_api)
    return parser


def setting_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line that override a setting, by the setting's name: they
    are validated with the settings (an invalid one names the setting) and reach the subcommand as
    :class:`Settings` fields. An option left out (or given as 0 or empty) keeps the setting."""
    options: dict[str, str] = getattr(args, "settings_options", {})
    return {field: getattr(args, dest) for dest, field in options.items() if getattr(args, dest, None)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(**setting_overrides(args))
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
