"""The real-data report (``insider-selling report --data DIR --out docs/``).

For every dataset folder under ``--data`` (third-party files the importer recognises): import
them into snapshot files, replay them as if time passed (a run every ``--step``, at varied hours),
then measure forward 24 h and 7 d returns in excess of the universe for the model's score buckets
and for baselines that need no model (a negative-funding streak of at least 1, 3 and 5 days;
72 h funding alone). Threshold choices are calibrated on the earlier half of each dataset only,
and both halves are reported. It also checks the published rows for coherence (listed rows with a
non-negative 72 h funding, streak fields that disagree, ties at the top, runs that list nothing at
given hours). Writes ``validation.md``, ``validation.json`` and one PNG per dataset.

The work is in :mod:`research.dataset` (one dataset), :mod:`research.analysis`,
:mod:`research.baselines` and :mod:`research.checks` (the figures), :mod:`research.markdown` and
:mod:`research.plots` (the writing); this module finds the dataset folders and writes the files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from research.dataset import DatasetReport
from research.errors import BacktestError
from research.markdown import render_markdown
from research.plots import plot_dataset

__all__ = ["dataset_folders", "write_validation"]


def dataset_folders(data: Path, only: Sequence[str] | None) -> list[Path]:
    """The dataset folders under ``data`` (those holding .csv or .csv.gz files), or only the ones
    named in ``only``."""
    if not data.is_dir():
        raise BacktestError(f"{data}: no such data directory")
    found = sorted(
        p
        for p in data.iterdir()
        if p.is_dir() and any(c.name.lower().endswith((".csv", ".csv.gz")) for c in p.iterdir())
    )
    if only:
        found = [p for p in found if p.name in only]
        missing = set(only) - {p.name for p in found}
        if missing:
            raise BacktestError(f"no dataset folder named {sorted(missing)} in {data}")
    if not found:
        raise BacktestError(f"{data}: no dataset folders with .csv/.csv.gz files")
    return found


def write_validation(reports: Sequence[DatasetReport], out: Path, *, command: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for r in reports:
        r.png = f"validation-{r.name}.png"
        plot_dataset(r, out / r.png)
    md = render_markdown(reports, command=command, generated=datetime.now(UTC))
    path = out / "validation.md"
    path.write_text(md + "\n")
    (out / "validation.json").write_text(
        json.dumps([r.as_dict() for r in reports], indent=1, default=str, allow_nan=True) + "\n"
    )
    return path
