"""The coherence checks of the published rows: listed rows with a non-negative 72 h funding,
streak fields that disagree, ties at the top, and runs that list nothing at given hours although a
coin's raw funding was below the gate's floor."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from ingest.snapshot import parse_time
from research.baselines import funding_72h
from research.scored import ScoredRuns

__all__ = ["CHECK_HOURS", "Checks", "check_rows", "raw_candidates"]

#: Run hours (UTC) at which every replay must list coins.
CHECK_HOURS = (0, 3, 13, 17)


@dataclass(slots=True)
class Checks:
    listed_rows: int = 0
    nonnegative_funding: int = 0  # listed rows with avg_funding_72h >= 0 (or null)
    streak_disagree: int = 0  # listed rows whose day count and start date disagree by > 1 day
    runs: int = 0
    runs_with_top3_tie: int = 0  # runs where two of the top three unrounded scores are equal
    runs_with_top3_tie_shown: int = 0  # ... equal as published (two decimals)
    runs_listing: int = 0
    #: hour -> (runs, runs listing >= 1, runs with a raw-funding candidate that list nothing)
    hours: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        hours_ok = all(runs > 0 and silent == 0 for runs, _, silent in self.hours.values())
        return self.nonnegative_funding == 0 and self.streak_disagree == 0 and self.runs_with_top3_tie == 0 and hours_ok

    def lines(self) -> list[str]:
        out = [
            f"listed rows: {self.listed_rows} in {self.runs} runs",
            f"listed rows with avg_funding_72h >= 0: {self.nonnegative_funding}",
            f"listed rows where consecutive_negative_days and signal_start_date disagree (> 1 day): "
            f"{self.streak_disagree}",
            f"runs with a tie among the top three scores (unrounded, the order): {self.runs_with_top3_tie}; "
            f"equal at the published two decimals: {self.runs_with_top3_tie_shown}",
        ]
        out.append(f"runs listing coins: {self.runs_listing} of {self.runs}")
        for hour in sorted(self.hours):
            runs, listing, silent = self.hours[hour]
            out.append(
                f"runs at {hour:02d}:00 UTC: {runs}, listing coins: {listing}; listing nothing although a "
                f"coin's raw funding (in force and 72 h mean) was below the floor: {silent}"
                + ("" if runs else " (no run at this hour: use a --step coprime with 24)")
            )
        out.extend(f"example: {e}" for e in self.examples[:6])
        return out


def _whole_days(start: str, updated: str) -> int:
    return math.floor((parse_time(updated) - parse_time(start)).total_seconds() / 86400.0)


def check_rows(
    rows: Sequence[dict[str, Any]],
    run_times: Sequence[datetime],
    run_of_row: Sequence[int],
    hours: Sequence[int] = CHECK_HOURS,
    candidates: Sequence[int] | None = None,
) -> Checks:
    """The coherence checks of the published rows (``rows``: score documents of every coin;
    ``run_of_row``: each row's index into ``run_times``; ``candidates``: per run, the coins whose
    raw funding in force and 72 h mean funding are both below the gate's floor, see
    :func:`raw_candidates`). A run that lists nothing counts against an hour only when it had
    such a candidate: an empty board is right when no coin has negative funding."""
    checks = Checks(runs=len(run_times))
    listed_by_run: dict[int, list[tuple[float, float]]] = {}
    for row, k in zip(rows, run_of_row, strict=True):
        score = row.get("score") or 0.0
        if score <= 0:
            continue
        checks.listed_rows += 1
        exact = row.get("score_exact")
        listed_by_run.setdefault(k, []).append((float(exact if exact is not None else score), float(score)))
        funding = row.get("avg_funding_72h")
        if funding is None or not funding < 0:
            checks.nonnegative_funding += 1
            checks.examples.append(f"{row['coin_id']} at {row.get('updated_at')}: avg_funding_72h {funding}")
        days = int(row.get("consecutive_negative_days") or 0)
        start, updated = row.get("signal_start_date"), row.get("updated_at")
        if not start or not updated or abs(_whole_days(start, updated) - days) > 1:
            checks.streak_disagree += 1
            checks.examples.append(f"{row['coin_id']} at {updated}: {days} days, start {start}")
    for k, scores in listed_by_run.items():
        top = sorted(scores, reverse=True)[:3]
        if len({exact for exact, _ in top}) < len(top):
            checks.runs_with_top3_tie += 1
            checks.examples.append(f"run at {run_times[k]:%Y-%m-%dT%H}Z: top three unrounded {[e for e, _ in top]}")
        if len({shown for _, shown in top}) < len(top):
            checks.runs_with_top3_tie_shown += 1
    checks.runs_listing = len(listed_by_run)
    for hour in hours:
        at_hour = [k for k, t in enumerate(run_times) if t.hour == hour]
        silent = [k for k in at_hour if not listed_by_run.get(k) and (candidates is None or candidates[k] > 0)]
        checks.hours[hour] = (len(at_hour), sum(1 for k in at_hour if listed_by_run.get(k)), len(silent))
        checks.examples.extend(f"run at {run_times[k]:%Y-%m-%dT%H}Z listed nothing" for k in silent[:2])
    return checks


def raw_candidates(data: ScoredRuns, floor_per_8h: float) -> list[int]:
    """Per run, the coins whose raw cross-venue funding in force at the run hour and whose 72 h
    mean are both below ``-floor_per_8h`` (the model's gate needs at least that)."""
    f72 = funding_72h(data.funding, data.pairs)
    t = np.clip(data.pairs.hour, 0, data.funding.shape[1] - 1)
    now = data.funding[data.pairs.coin, t]
    floor = -floor_per_8h / 8.0
    with np.errstate(invalid="ignore"):
        ok = (f72 < floor) & (now < floor)
    return [int(x) for x in np.bincount(data.pairs.run[ok], minlength=len(data.runs))]
