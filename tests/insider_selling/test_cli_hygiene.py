"""The command line as a user meets it: every option explains itself."""

from __future__ import annotations

import argparse
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from ingest.progress import Stages
from insider_selling.cli import build_parser, main


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The commands configure the root logger on the captured stderr; put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def walk(parser: argparse.ArgumentParser, path: str = "insider-selling") -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", argparse.Action([name], dest=name, help=helps.get(name))
                yield from walk(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_command_and_option_has_help_text() -> None:
    missing = [
        f"{path}: {'/'.join(action.option_strings) or action.dest}"
        for path, action in walk(build_parser())
        if not (action.help and action.help.strip() and action.help != argparse.SUPPRESS)
    ]
    assert not missing, "no help text:\n" + "\n".join(missing)


def test_backfill_on_the_demo_source_reports_each_stage(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSIDER_DEMO_COINS", "20")
    assert main(["backfill", "--source", "demo", "--hours", "24"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("backfill: 24 h of history 20/20 coins in ") and "samples" in out[0]
    assert "\x1b" not in "".join(out)  # no bar's control characters in a pipe


def test_a_terminal_gets_a_progress_bar() -> None:
    stream = io.StringIO()
    stages = Stages("backtest", Console(file=stream, force_terminal=True, width=100))
    with stages.stage("runs", total=3, unit="runs") as stage:
        for _ in range(3):
            stage.advance()
    text = stream.getvalue()
    assert "━" in text and "3/3" in text and "backtest runs" in text


def test_a_pipe_gets_a_line_per_stage_and_one_while_a_long_stage_runs() -> None:
    stream = io.StringIO()
    stages = Stages("import", Console(file=stream, force_terminal=False), interval=0.0)
    with stages.stage("files", total=2, unit="files") as stage:
        stage.advance(note="a.csv")
    with stages.stage("rows") as stage:
        stage.update(10)
    with pytest.raises(ValueError), stages.stage("broken"):
        raise ValueError("the error reports itself")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "import: files 1/2 files (a.csv)"
    assert lines[1].startswith("import: files 1/2 files in ")
    assert lines[-1].startswith("import: rows 10 in ") and len(lines) == 4


def test_a_stage_that_counts_nothing_prints_no_count() -> None:
    stream = io.StringIO()
    stages = Stages("import", Console(file=stream, force_terminal=False))
    with stages.stage("lay on the hourly grid", unit="rows"):
        pass
    with stages.stage("read", unit="rows") as stage:
        stage.update(0)  # counted, and zero: that is news
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("import: lay on the hourly grid in ") and "0 rows" not in lines[0]
    assert lines[1].startswith("import: read 0 rows in ")


def test_ingest_exits_non_zero_when_no_venue_answers(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest import commands
    from ingest.testing import Replay

    real = commands.build_live_source

    def unreachable(**kwargs: Any) -> Any:  # every venue and provider: connection refused
        replay = Replay([])
        return real(
            **{
                **kwargs,
                "retries": 1,
                "throttle": False,
                "ccxt_fetch": replay.ccxt_fetch,
                "transport": replay.transport(),
            }
        )

    monkeypatch.setattr(commands, "build_live_source", unreachable)
    assert main(["ingest", "--once", "--source", "live"]) == 1
    captured = capsys.readouterr()
    assert "0/13 venues ok" in captured.out
    assert captured.err == "error: no venue answered (0 of 13)\n"


async def test_record_says_that_it_waits(tmp_path: Path) -> None:
    from ingest.commands import record
    from ingest.demo import DemoConfig, DemoSource

    stream = io.StringIO()
    source = DemoSource(DemoConfig(seed=3, coins=10))
    try:
        await record(source, tmp_path, cycles=2, every=0.0, console=Console(file=stream))
    finally:
        await source.aclose()
    text = stream.getvalue()
    assert text.count("recorded cycle") == 2 and text.count("waiting 0 min for the next cycle") == 1
    assert "1 more to record" in text


def test_worker_with_the_in_memory_store_warns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []

    async def fake_worker(settings: Any, *, once: bool = False) -> int:
        calls.append(once)
        return 0

    monkeypatch.setattr("insider_selling.worker.run_worker", fake_worker)
    assert main(["worker", "--once"]) == 0
    err = capsys.readouterr().err
    assert calls == [True] and "in-memory store" in err and "results vanish" in err
    monkeypatch.setenv("MONGODB_URI", "mongodb://localhost:1")
    assert main(["worker", "--once"]) == 0
    assert "in-memory" not in capsys.readouterr().err


def test_serving_is_announced_only_once_the_port_accepts() -> None:
    import socket

    from insider_selling.cli import announce_when_accepting

    with socket.socket() as probe:  # a free port, closed again: nothing accepts on it yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = io.StringIO()
    thread = announce_when_accepting("127.0.0.1", port, out=out, timeout=20.0)
    thread.join(0.5)
    assert out.getvalue() == "" and thread.is_alive()  # refused so far: nothing printed
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        thread.join(10.0)
    assert out.getvalue() == f"serving on http://127.0.0.1:{port}\n"
