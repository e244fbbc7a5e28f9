"""The reports in Markdown: the history table of ``validate --history`` and ``validation.md`` of
the real-data report, with the plain-words findings and verdicts drawn from the numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from research.analysis import DOCUMENTED_CALL, MIN_BLOCKS, OI_COVERAGE, PRIMARY
from research.baselines import MIN_COINS, MIN_PAIRS, TOP_N
from research.dataset import DatasetReport
from research.scored import HORIZONS

__all__ = ["findings", "format_table", "primary_line", "render_markdown"]


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


def _pct(x: float) -> str:
    return "—" if x != x else f"{x * 100:+.2f}%"


def _ci(low: float, high: float) -> str:
    return f"[{_pct(low)}, {_pct(high)}]"


def _table_md(report: DatasetReport, half: str, horizon: str) -> list[str]:
    lines = [
        "| selection | n | coins | runs | mean excess (vs median) | 95 % CI (coins × time blocks) "
        "| coin-only CI (earlier method) | mean excess (vs mean) | hit rate |",
        "|---|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for row in report.table:
        if row["half"] != half or row["horizon"] != horizon or row["group"] == "comparison":
            continue
        label = row["selection"] if row["group"] == "model" else f"*baseline:* {row['selection']}"
        hit = "—" if row["hit_rate"] != row["hit_rate"] else f"{row['hit_rate']:.2f}"
        lines.append(
            f"| {label} | {row['n']} | {row['coins']} | {row['runs']} | {_pct(row['mean_excess_return'])} | "
            f"{_ci(row['ci95_low'], row['ci95_high'])} | {_ci(row['coin_only_ci95_low'], row['coin_only_ci95_high'])} "
            f"| {_pct(row.get('mean_excess_vs_universe_mean', math.nan))} | {hit} |"
        )
    return lines


def primary_row(report: DatasetReport) -> dict[str, Any] | None:
    for row in report.table:
        if row["group"] == "comparison" and row.get("primary"):
            return row
    return None


def primary_line(report: DatasetReport) -> str:
    """The pre-declared comparison's result in one sentence, whatever it is."""
    half, horizon, model_label, rival_label = PRIMARY
    row = primary_row(report)
    model = _by_label(report, half, horizon, model_label)
    rival = _by_label(report, half, horizon, rival_label)
    if (
        row is None
        or model is None
        or rival is None
        or not model["n"]
        or not rival["n"]
        or row["difference"] != row["difference"]
    ):
        return f"`{report.name}`: **no result** — the held-out half has no 7 d forward returns for both selections."
    lo, hi = row["ci95_low"], row["ci95_high"]
    if hi < 0:
        verdict = "**the model's picks did worse than funding alone's beyond noise: an edge beyond 72 h funding**"
    elif lo > 0:
        verdict = "**the model's picks did better than funding alone's: no edge (funding alone picked weaker coins)**"
    else:
        verdict = "**no edge: the difference from 72 h funding alone is within noise**"
    return (
        f"`{report.name}`: {verdict}. Held-out half, 7 d forward excess return (vs the universe median): model top "
        f"{TOP_N} {_pct(model['mean_excess_return'])} {_ci(model['ci95_low'], model['ci95_high'])} (n {model['n']}), "
        f"72 h funding top {TOP_N} {_pct(rival['mean_excess_return'])} {_ci(rival['ci95_low'], rival['ci95_high'])} "
        f"(n {rival['n']}); model minus funding {_pct(row['difference'])} {_ci(lo, hi)}, "
        f"{model['blocks']} two-week block(s) of time"
        + (
            f" — too few for any interval to carry the market's shared shocks (at least {MIN_BLOCKS} are needed): "
            "these intervals are too narrow, and no conclusion in either direction is supported."
            if model["blocks"] < MIN_BLOCKS
            else "."
        )
    )


def interval_widths(report: DatasetReport) -> list[str]:
    """The same selections' interval widths, the coin-only bootstrap (earlier reports) against the
    two-way one: median ratio per half and horizon."""
    lines = ["| half | horizon | rows | median width, coin-only | median width, coins × time | median ratio |"]
    lines.append("|---|---|---:|---:|---:|---:|")
    for half in ("earlier", "later"):
        for horizon, _ in HORIZONS:
            old, new = [], []
            for row in report.table:
                if row["half"] != half or row["horizon"] != horizon or row["group"] == "comparison":
                    continue
                a = row["coin_only_ci95_high"] - row["coin_only_ci95_low"]
                b = row["ci95_high"] - row["ci95_low"]
                if a == a and b == b and a > 0:
                    old.append(a)
                    new.append(b)
            if not old:
                lines.append(f"| {half} | {horizon} | 0 | — | — | — |")
                continue
            ratio = float(np.median(np.array(new) / np.array(old)))
            lines.append(
                f"| {half} | {horizon} | {len(old)} | {float(np.median(old)) * 100:.2f} points "
                f"| {float(np.median(new)) * 100:.2f} points | {ratio:.2f}× |"
            )
    return lines


def _verdict_line(row: dict[str, Any] | None) -> str:
    if row is None or not row["n"]:
        return "no pairs"
    m, lo, hi = row["mean_excess_return"], row["ci95_low"], row["ci95_high"]
    if hi < 0:
        word = "underperformed the universe (CI below 0)"
    elif lo > 0:
        word = "OUTperformed the universe (CI above 0: the wrong direction)"
    else:
        word = "no edge (CI includes 0)"
    return f"{_pct(m)} [{_pct(lo)}, {_pct(hi)}], hit rate {row['hit_rate']:.2f}, n {row['n']}: {word}"


def _by_label(report: DatasetReport, half: str, horizon: str, label: str) -> dict[str, Any] | None:
    for row in report.table:
        if (
            row["half"] == half
            and row["horizon"] == horizon
            and row["group"] != "comparison"
            and row["selection"].startswith(label)
        ):
            return row
    return None


def _comparisons_md(report: DatasetReport, half: str, horizon: str) -> list[str]:
    lines = ["| model selection | versus (72 h funding alone) | model minus baseline | 95 % CI |", "|---|---|---:|---|"]
    for row in report.table:
        if row["half"] == half and row["horizon"] == horizon and row["group"] == "comparison":
            ci = f"[{_pct(row['ci95_low'])}, {_pct(row['ci95_high'])}]"
            label = ("**primary:** " if row.get("primary") else "") + row["selection"]
            lines.append(f"| {label} | {row['versus']} | {_pct(row['difference'])} | {ci} |")
    return lines


def findings(report: DatasetReport) -> list[str]:
    """Plain statements from the numbers: each half and horizon, the model next to the baselines
    that were fixed in advance (same-size 72 h funding ranking, the funding cut-off calibrated on
    the earlier half, a 3-day streak), then a verdict on the later half (out of sample)."""
    out = []
    for half in ("earlier", "later"):
        for horizon, _ in HORIZONS:
            parts = []
            for title, label in (
                ("model, listed", "listed"),
                ("model, calibrated", "score >"),
                ("72 h funding, same count", "72 h funding: the N"),
                ("72 h funding, calibrated", "72 h funding <="),
                (f"model, top {TOP_N}", f"top {TOP_N} of"),
                (f"72 h funding, top {TOP_N}", f"72 h funding: the {TOP_N} most"),
                ("streak >= 3 d", "negative-funding streak >= 3"),
            ):
                parts.append(f"{title}: {_verdict_line(_by_label(report, half, horizon, label))}")
            out.append(f"{half} half, {horizon} — " + "; ".join(parts) + ".")
    for horizon, _ in HORIZONS:
        for row in report.table:
            if row["half"] != "later" or row["horizon"] != horizon or row["group"] != "comparison":
                continue
            model = _by_label(report, "later", horizon, row["selection"])
            if model is None or not model["n"] or row["difference"] != row["difference"]:
                out.append(
                    f"Verdict, later half, {horizon}, {row['selection']} vs {row['versus']}: nothing to compare."
                )
                continue
            below = model["ci95_high"] < 0
            alone = "underperformed the universe" if below else "did not underperform the universe beyond noise"
            if row["ci95_high"] < 0 and below:
                versus = "and did worse than 72 h funding alone beyond noise: an edge beyond funding"
            elif row["ci95_high"] < 0:
                versus = "though its picks did worse than 72 h funding alone's beyond noise: no demonstrated edge"
            elif row["ci95_low"] > 0:
                versus = (
                    "and did BETTER than 72 h funding alone (funding alone picked the weaker coins): "
                    "no edge beyond funding"
                )
            else:
                versus = "and the difference from 72 h funding alone is within noise: no edge beyond funding"
            out.append(
                f"Verdict, later half (out of sample), {horizon}: model {row['selection']} {alone}, {versus} "
                f"(model minus {row['versus']}: {_pct(row['difference'])} "
                f"[{_pct(row['ci95_low'])}, {_pct(row['ci95_high'])}])."
            )
    return out


def render_markdown(reports: Sequence[DatasetReport], *, command: str, generated: datetime) -> str:
    lines = [
        "# Validation on real data",
        "",
        f"Generated by `{command}` on {generated:%Y-%m-%d %H:%M} UTC. Do not edit by hand: rerun the command.",
        "",
        "## The primary result",
        "",
        f"One comparison per dataset was declared before the data were looked at: the model's top {TOP_N} of "
        f"each run against the top {TOP_N} by 72 h funding alone, 7 d forward excess return, on the held-out "
        "later half. Everything after this section is exploratory: many selections, horizons and halves, "
        "with no correction for multiple comparisons, so no single interval there that excludes 0 is evidence.",
        "",
    ]
    lines += [f"- {primary_line(r)}" for r in reports]
    lines += ["", "Survivorship:", ""]
    lines += [f"- `{r.name}`: {r.survivorship}" for r in reports]
    lines += [
        "",
        "## Method",
        "",
        "- Each dataset folder is imported with `insider-selling import` (hourly snapshot rows; a value fills "
        "the hours after it was published, never before), then replayed with the model as if time passed: "
        "one run every step, starting 72 h after the first funding print. The step is coprime with 24, so "
        "runs fall on every hour of the day.",
        "- A pair is one coin at one run. Its forward return over 24 h or 7 d uses the coin's last price at or "
        "before each end; its excess return subtracts the **median** return of every coin with prices at "
        "that run (the universe), so a few outliers cannot move the benchmark; the excess over the "
        "equal-weighted mean is a secondary column. A negative excess return is what the score predicts.",
        "- 95 % intervals come from a two-way bootstrap (1000 draws) that resamples coins and blocks of time "
        "(one week for 24 h returns, two weeks for 7 d returns) together: one coin's overlapping windows "
        "and all coins' shared dates are not independent draws. The coin-only bootstrap of earlier reports "
        "is shown beside it, and the widths of both are compared for the same selections. With few blocks of "
        "time (the block count is given) even the two-way interval is optimistic. Hit rate: the share of "
        "pairs that did worse than the universe.",
        "- Baselines need no model: a negative-funding streak of at least 1, 3 or 5 days (hours since the "
        "last non-negative hourly cross-venue funding), and ranking by the mean raw funding of the last 72 h.",
        "- Same inputs on both halves: the analysed runs start where open interest covers at least "
        f"{OI_COVERAGE:.0%} of the priced coins (a dataset without open interest is analysed whole), and the "
        "halves split the analysed runs in the middle.",
        "- Calibration: the two threshold choices (the model's score cut-off and the 72 h funding cut-off) "
        "are picked on the earlier half only, by the lowest mean 24 h excess return with at least "
        f"{MIN_PAIRS} pairs and {MIN_COINS} coins, and then applied unchanged to both halves. An earlier-half "
        "pair counts only if its forward window ends before the split (no overlap with the later half).",
        "",
    ]
    for r in reports:
        imp = r.imported
        lines += [f"## `{r.name}`", "", f"Source: {r.source}", ""]
        lines += ["Import (rows read / kept / rejected, with reasons):", ""]
        for f in imp["files"]:
            reasons = "; ".join(f"{k}: {v}" for k, v in f["reasons"].items()) or "none"
            lines.append(
                f"- `{Path(f['path']).name}` ({f['format']}): {f['read']} / {f['kept']} / {f['rejected']} "
                f"— {reasons}" + (f" — {f['problem']}" if f["problem"] else "")
            )
        lines += [f"- {imp['samples']} hourly market rows, {imp['coins']} coins, {imp['first']} .. {imp['last']}", ""]
        lines += [
            f"Replay: {r.runs} runs every {r.step_hours} h, {r.first_run} .. {r.last_run}, model "
            f"`{r.model_version}`; analysed from {r.analysed_from} ({r.analysed_why}); halves split at {r.split}.",
            "",
            f"Survivorship: {r.survivorship}",
            "",
        ]
        for half, cov in r.coverage.items():
            lines.append(f"- {half} half, median per run: " + ", ".join(f"{v:g} {k}" for k, v in cov.items()))
        lines += [
            "",
            f"Wall time: import {r.seconds.get('import', 0):.1f} s"
            + (f", reading the snapshot files {r.seconds['load']:.1f} s" if "load" in r.seconds else "")
            + f", replay {r.seconds.get('replay', 0):.1f} s, "
            f"validation {r.seconds.get('validate', 0):.1f} s (2-core shared machine).",
            "",
            "Checks of the published rows:",
            "",
        ]
        lines += [f"- {line}" for line in r.checks.lines()]
        cut = r.calibration.score_threshold
        lines += [
            "",
            f"Calibrated on the earlier half: model score {f'>= {cut:.2g}' if cut >= 0.01 else '> 0'}; "
            f"72 h funding <= {r.calibration.funding_threshold * 8 * 100:.4f} % per 8 h "
            f"(the {r.calibration.funding_quantile:g} quantile).",
            "",
        ]
        med, lo, hi, none = r.documented_call
        lines += [
            f"The documented call (`limit={DOCUMENTED_CALL[0]}&min_score={DOCUMENTED_CALL[1]:g}`) lists, per run: "
            f"median {med:g}, min {lo}, max {hi} coins; {none} of {r.runs} runs list none.",
            "",
            f"### {r.name}: score bands on the held-out half",
            "",
            "| band | share of listed pairs | 24 h excess (vs median) | 95 % CI | 7 d excess (vs median) | 95 % CI |",
            "|---|---:|---:|---|---:|---|",
        ]
        for band in r.bands:
            day, week = band["24h"], band["7d"]
            lines.append(
                f"| {band['band']} | {band['share_of_listed'] * 100:.1f} % ({band['pairs']}) | "
                f"{_pct(day['mean_excess'])} | {_ci(*day['ci95'])} | "
                f"{_pct(week['mean_excess'])} | {_ci(*week['ci95'])} |"
            )
        lines.append("")
        for half in ("earlier", "later"):
            for horizon, _ in HORIZONS:
                lines += [f"### {r.name}: {half} half, forward {horizon} (exploratory)", ""]
                lines += _table_md(r, half, horizon)
                lines += [
                    "",
                    "Head to head (the difference of mean excess returns, two-way bootstrap; "
                    "negative: the model's picks did worse, as it predicts; **primary** marks the pre-declared one):",
                    "",
                ]
                lines += _comparisons_md(r, half, horizon)
                lines.append("")
        if r.png:
            lines += [f"![{r.name}]({r.png})", ""]
        lines += [
            "Interval widths for the same selections, the coin-only bootstrap against coins × time blocks:",
            "",
        ]
        lines += interval_widths(r)
        lines += ["", "What this dataset shows (exploratory, uncorrected for multiple comparisons):", ""]
        lines += [f"- {line}" for line in findings(r)]
        lines.append("")
    return "\n".join(lines)
