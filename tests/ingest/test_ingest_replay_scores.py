"""Record a live cycle (from the recorded venue responses), replay the file, get the same scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest.files import write_snapshots
from ingest.source import SnapshotBatch
from ingest.storage import SnapshotStore
from research.replay import load_replay
from scoring.config import load_model_config
from scoring.pipeline import ScoringPipeline
from store import StoreHandle
from tests.helpers import OpenStore
from tests.ingest.helpers import AT, MakeSource

VOLATILE = {"run_id", "_id", "visible"}


async def _scores(store: StoreHandle, batch: SnapshotBatch) -> list[dict[str, Any]]:
    await SnapshotStore(store.db).write_batch(batch)
    pipeline = ScoringPipeline(store.db, load_model_config(), source="test")
    result = await pipeline.run(AT, batch.outcomes)
    assert result.status == "succeeded", result.error
    docs = await pipeline.runs.run_scores(result.run_id)
    return sorted(({k: v for k, v in d.items() if k not in VOLATILE} for d in docs), key=lambda d: d["coin_id"])


async def test_record_replay_gives_the_same_scores(
    make_source: MakeSource, tmp_path: Path, open_stores: OpenStore
) -> None:
    source, _ = make_source()
    live = await source.collect(AT)
    assert live.market and live.history
    live_scores = await _scores(await open_stores(), live)
    assert len(live_scores) >= 3
    assert [d["coin_id"] for d in live_scores if d["score"] > 0]  # the recordings hold a signal

    # the recorder's layout: history first, then the cycle, in the versioned JSONL format
    write_snapshots(tmp_path / f"{AT:%Y-%m-%d}.jsonl", live.coins, live.history + live.market, live.onchain)
    replay = load_replay(tmp_path)
    replayed = SnapshotBatch(AT, list(replay.coins.values()), replay.market, replay.onchain)
    assert await _scores(await open_stores(), replayed) == live_scores
