"""Progress of long commands (``backfill``, ``import``, ``backtest``, ``validate --history``).

On a terminal each stage is a rich progress bar; otherwise (a pipe, a log file, CI) each stage
prints one line when it ends, plus a line at most every ``interval`` seconds while a long stage
runs, so a log shows that the command is alive without a bar's control characters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

__all__ = ["Stage", "Stages"]


class Stage:
    """One stage's counter; :meth:`update` or :meth:`advance` it as work is done."""

    def __init__(self, owner: Stages, name: str, total: int | None, unit: str) -> None:
        self.owner = owner
        self.name = name
        self.total = total
        self.unit = unit
        self.done = 0
        self.note = ""
        self.counted = False  # a stage that counts nothing prints no count ("0 rows" would mislead)
        self.started = time.monotonic()
        self._said = self.started

    def update(self, done: int, total: int | None = None, note: str = "") -> None:
        self.done = done
        self.counted = True
        if total is not None:
            self.total = total
        if note:
            self.note = note
        self.owner._changed(self)

    def advance(self, count: int = 1, note: str = "") -> None:
        self.update(self.done + count, note=note)

    def line(self, *, finished: bool) -> str:
        if self.total is None and not self.counted:
            text = f"{self.owner.command}: {self.name}"
        else:
            count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
            text = f"{self.owner.command}: {self.name} {count} {self.unit}".rstrip()
        if finished:
            text += f" in {time.monotonic() - self.started:.1f} s"
        return text + (f" ({self.note})" if self.note else "")


class Stages:
    """The stages of one command. ``console`` defaults to stdout; ``None`` means silent."""

    def __init__(self, command: str, console: Console | None, *, interval: float = 10.0) -> None:
        self.command = command
        self.console = console
        self.interval = interval
        self.terminal = console is not None and console.is_terminal
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    @contextmanager
    def stage(self, name: str, total: int | None = None, unit: str = "") -> Iterator[Stage]:
        stage = Stage(self, name, total, unit)
        if self.terminal:
            assert self.console is not None
            self._bar = Progress(
                TextColumn(f"{self.command} {name}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(unit),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(name, total=total)
        failed = True
        try:
            yield stage
            failed = False
        finally:
            if self._bar is not None:
                assert self._task is not None
                if not failed:
                    self._bar.update(self._task, completed=stage.done, total=stage.total or stage.done)
                self._bar.stop()
                self._bar = self._task = None
            elif self.console is not None and not failed:  # the error says what happened instead
                self.say(stage.line(finished=True))

    def say(self, line: str) -> None:
        if self.console is not None:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _changed(self, stage: Stage) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=stage.done, total=stage.total)
        elif self.console is not None:
            now = time.monotonic()
            if now - stage._said >= self.interval:
                stage._said = now
                self.say(stage.line(finished=False))
