"""Scores out, for anyone's own analysis: every listed row of every run as CSV (gzip)."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scoring.contract import COIN_FIELDS

__all__ = ["PUBLIC_FIELDS", "SCORES_CSV_COLUMNS", "write_scores_csv"]

#: Every public coin field of the contract, in its order.
PUBLIC_FIELDS: tuple[str, ...] = tuple(COIN_FIELDS)
#: The columns of ``scores.csv.gz``: the run, then the public fields.
SCORES_CSV_COLUMNS: tuple[str, ...] = ("run_id", "run_at", "model_version", *PUBLIC_FIELDS)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def write_scores_csv(path: Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write ``rows`` (score documents with ``run_id``, ``run_at`` and ``model_version``) to a
    gzip-compressed CSV with :data:`SCORES_CSV_COLUMNS`; empty cells are nulls. Returns the rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with gzip.open(path, "wb", compresslevel=6) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        writer = csv.writer(text)
        writer.writerow(SCORES_CSV_COLUMNS)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in SCORES_CSV_COLUMNS])
            count += 1
    return count
