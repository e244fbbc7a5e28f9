"""Benchmark: score N coins x 13 venues x 169 h of hourly history, for N = 1k, 5k, 20k.

    .venv/bin/python bench/scoring.py [--sizes 1000,5000,20000] [--hours 169] [--repeat 5]

Input: store frames (one per venue and hour, numeric columns packed as float64 bytes, exactly what
``ingest.storage`` holds), generated with random but plausible values; every coin is listed on
about 60 % of the venues (at least one). Measured, on one thread: building the market panel from
the frames, building the on-chain panel, and scoring (features, sub-scores, gate, composite,
phases). Reported: the median and the best wall time of ``--repeat`` runs (169 h is the
production window: 7 days + the run's hour), the median CPU time, and the peak memory the
computation allocated (tracemalloc, in a separate pass), plus seconds per 1k coins (median) to show
the growth is linear. On a shared machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.snapshot import MARKET_COLUMNS, VENUES  # noqa: E402
from ingest.storage import ONCHAIN_COLUMNS  # noqa: E402
from scoring.config import load_model_config  # noqa: E402
from scoring.model import score_panels  # noqa: E402
from scoring.panel import build_market_panel, build_onchain_panel_from_frames  # noqa: E402

AT = datetime(2026, 11, 20, tzinfo=UTC)


def make_frames(coins: int, hours: int, seed: int = 1) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    rng = np.random.default_rng(seed)
    ids = [f"coin{i:06d}" for i in range(coins)]
    venues = list(VENUES)
    listed = rng.random((coins, len(venues))) < 0.6
    listed[np.arange(coins), rng.integers(0, len(venues), size=coins)] = True
    interval = np.where(rng.random((coins, len(venues))) < 0.2, 4.0, 8.0)
    interval[:, venues.index("hyperliquid")] = 1.0
    price0 = np.exp(rng.normal(0, 2, size=coins))
    frames: list[dict[str, Any]] = []
    for j, venue in enumerate(venues):
        rows = np.flatnonzero(listed[:, j])
        coin_ids = ",".join(ids[i] for i in rows)
        for h in range(hours):
            at = AT - timedelta(hours=hours - 1 - h)
            m = rows.size
            fph = rng.normal(1e-5, 1.5e-5, size=m)
            price = price0[rows] * np.exp(rng.normal(0, 0.01, size=m))
            cols = {
                "funding_rate": fph * interval[rows, j],
                "funding_interval_hours": interval[rows, j],
                "open_interest_usd": np.exp(rng.normal(15, 1, size=m)),
                "mark_price": price * (1 + rng.normal(0, 3e-4, size=m)),
                "index_price": price,
                "price": price,
                "taker_buy_usd": np.exp(rng.normal(12, 1, size=m)),
                "taker_sell_usd": np.exp(rng.normal(12, 1, size=m)),
                "long_short_ratio": np.exp(rng.normal(0, 0.1, size=m)) if j < 6 else np.full(m, np.nan),
            }
            frame: dict[str, Any] = {"v": 1, "venue": venue, "at": at, "coin_ids": coin_ids}
            for name in MARKET_COLUMNS:
                frame[name] = cols[name].astype("<f8").tobytes()
            frames.append(frame)
    onchain_rows = np.flatnonzero(rng.random(coins) < 0.5)
    onchain: list[dict[str, Any]] = []
    for at in (AT - timedelta(hours=24), AT):
        m = onchain_rows.size
        frame = {"v": 1, "at": at, "coin_ids": ",".join(ids[i] for i in onchain_rows)}
        for name in ONCHAIN_COLUMNS:
            if name == "flags":
                frame[name] = [""] * m
            else:
                frame[name] = np.exp(rng.normal(8, 2, size=m)).astype("<f8").tobytes()
        onchain.append(frame)
    return frames, onchain, ids


def score_once(frames: list[dict[str, Any]], onchain: list[dict[str, Any]], hours: int) -> tuple[float, float, float]:
    config = load_model_config()
    t0 = time.perf_counter()
    panel = build_market_panel(AT, frames, hours)
    t1 = time.perf_counter()
    on = build_onchain_panel_from_frames(AT, panel.coin_ids, onchain)
    out = score_panels(panel, on, config)
    t2 = time.perf_counter()
    assert out.score.shape == (len(panel.coin_ids),)
    return t1 - t0, t2 - t1, t2 - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--hours", type=int, default=169)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"scoring benchmark: {len(VENUES)} venues x {args.hours} h, one thread, median of {args.repeat}")
    print(
        f"{'coins':>7} {'panel s':>8} {'score s':>8} {'median s':>9} {'best s':>7} {'cpu s':>7} "
        f"{'s/1k':>7} {'peak MiB':>9}"
    )
    for n in sizes:
        frames, onchain, _ = make_frames(n, args.hours)
        runs: list[tuple[float, float, float, float]] = []
        for _ in range(args.repeat):
            c0 = time.process_time()
            panel_s, score_s, total = score_once(frames, onchain, args.hours)
            runs.append((total, panel_s, score_s, time.process_time() - c0))
        runs.sort()
        total, panel_s, score_s, _ = runs[len(runs) // 2]
        cpu = sorted(r[3] for r in runs)[len(runs) // 2]
        tracemalloc.start()
        tracemalloc.reset_peak()
        score_once(frames, onchain, args.hours)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"{n:>7} {panel_s:>8.3f} {score_s:>8.3f} {total:>9.3f} {runs[0][0]:>7.3f} {cpu:>7.3f} "
            f"{total / n * 1000:>7.3f} {peak / 2**20:>9.1f}",
            flush=True,
        )
        del frames, onchain
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
