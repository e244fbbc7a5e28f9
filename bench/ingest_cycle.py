"""One full live ingest cycle against the recorded responses: requests per venue and wall time.

    .venv/bin/python bench/ingest_cycle.py [--throttle] [--repeat N]

Without ``--throttle`` the per-host spacing is off, so the figure is the cost of parsing,
validation and normalization; with it, the pacing a real cycle would add.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.commands import build_live_source  # noqa: E402
from ingest.snapshot import VENUES  # noqa: E402
from ingest.testing import Replay, load_recordings  # noqa: E402
from tests.ingest.conftest import AT  # noqa: E402


async def one_cycle(throttle: bool) -> tuple[float, Replay, dict[str, tuple[str, int]], int]:
    recordings = load_recordings(ROOT / "tests" / "ingest" / "recordings")
    replay = Replay([r for rs in recordings.values() for r in rs])
    source = build_live_source(ccxt_fetch=replay.ccxt_fetch, transport=replay.transport(), throttle=throttle, seed=1)
    try:
        started = time.perf_counter()
        batch = await source.collect(AT)
        wall = time.perf_counter() - started
    finally:
        await source.aclose()
    outcomes = {o.venue: (o.status, o.requests) for o in batch.outcomes}
    return wall, replay, outcomes, len(batch.market) + len(batch.onchain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--throttle", action="store_true", help="keep per-host request spacing")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    walls = []
    for _ in range(args.repeat):
        wall, replay, outcomes, rows = asyncio.run(one_cycle(args.throttle))
        walls.append(wall)
    print(f"{'venue':<12} {'status':<7} requests")
    for venue, (status, requests) in outcomes.items():
        print(f"{VENUES.get(venue, venue):<12} {status:<7} {requests:>8}")
    print(
        f"total requests {sum(r for _, r in outcomes.values())} (seen by the replay: {sum(replay.requests.values())})"
    )
    print(
        f"rows {rows}; wall time per cycle: median {statistics.median(walls) * 1000:.1f} ms, "
        f"min {min(walls) * 1000:.1f} ms over {args.repeat} (throttle={args.throttle})"
    )


if __name__ == "__main__":
    main()
