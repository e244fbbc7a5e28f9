"""The reports' figures (matplotlib, imported only when a figure is drawn): score buckets of
``validate --history``, and each dataset's selections of the real-data report."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from research.dataset import DatasetReport
from research.scored import HORIZONS

__all__ = ["plot_dataset", "plot_history"]


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


def plot_dataset(report: DatasetReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(HORIZONS), figsize=(14, 10))
    for i, half in enumerate(("earlier", "later")):
        for j, (horizon, _) in enumerate(HORIZONS):
            ax = axes[i][j]
            rows = [
                r for r in report.table if r["half"] == half and r["horizon"] == horizon and r["group"] != "comparison"
            ]
            y = np.arange(len(rows))[::-1]
            mean = np.array([r["mean_excess_return"] for r in rows]) * 100
            lo = np.array([r["ci95_low"] for r in rows]) * 100
            hi = np.array([r["ci95_high"] for r in rows]) * 100
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                err = np.vstack([np.nan_to_num(np.maximum(mean - lo, 0)), np.nan_to_num(np.maximum(hi - mean, 0))])
            colors = ["#b5473a" if r["group"] == "model" else "#4a6fa5" for r in rows]
            ax.barh(y, np.nan_to_num(mean), xerr=err, color=colors, capsize=3)
            ax.axvline(0.0, color="black", linewidth=0.8)
            ax.set_yticks(y, [f"{r['selection']} (n={r['n']})" for r in rows], fontsize=7)
            ax.set_title(f"{half} half: forward {horizon} excess return, % (95 % CI)", fontsize=9)
    fig.suptitle(f"{report.name}: model (red) vs baselines (blue), model {report.model_version}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
