"""``validate --history``: forward 24 h and 7 d returns of the stored runs by score bucket, written
as ``history.md``, ``history.json``, ``history.png`` and ``scores.csv.gz``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np

from research.export import write_scores_csv
from research.markdown import format_table
from research.plots import plot_history
from research.replay import iso
from research.scored import HORIZONS, load_scored_runs
from scoring.evaluation import forward_excess, selection_stats

__all__ = ["BUCKETS", "history_report", "write_report"]

#: Score buckets of the history report: (label, low inclusive, high exclusive).
BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("0 (not listed)", 0.0, 1e-12),
    ("(0, 2.5)", 1e-12, 2.5),
    ("[2.5, 5)", 2.5, 5.0),
    ("[5, 7.5)", 5.0, 7.5),
    ("[7.5, 10]", 7.5, 10.01),
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
        "from": iso(min(data.run_times)),
        "to": iso(max(data.run_times)),
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
