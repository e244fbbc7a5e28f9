"""Record a cycle in the snapshot file format, read it back, get the same samples."""

from __future__ import annotations

from pathlib import Path

from ingest.commands import backfill, record
from ingest.files import read_snapshots, write_snapshots
from tests.ingest.helpers import AT, MakeSource


async def test_record_then_replay_gives_identical_samples(make_source: MakeSource, tmp_path: Path) -> None:
    source, _ = make_source()
    batch = await source.collect(AT)
    path = tmp_path / "2024-11-27.jsonl"
    written = write_snapshots(path, batch.coins, batch.market, batch.onchain)
    assert written == len(batch.market) + len(batch.onchain) > 0
    coins, market, onchain = read_snapshots(tmp_path)
    assert market == batch.market
    assert onchain == batch.onchain
    assert coins == {c.coin_id: c for c in batch.coins}


async def test_recorder_appends_cycles_per_day(make_source: MakeSource, tmp_path: Path) -> None:
    source, _ = make_source()
    rows = await record(source, tmp_path, cycles=2, every=0)
    files = list(tmp_path.glob("*.jsonl"))  # noqa: ASYNC240
    assert len(files) == 1
    _, market, onchain = read_snapshots(tmp_path)
    assert len(market) + len(onchain) == rows
    assert {s.venue for s in market} == {
        "binance", "bybit", "okx", "gate", "bitget", "hyperliquid", "deribit", "bitmex", "htx",
        "bingx", "coinex", "kucoin", "mexc",
    }  # fmt: skip


async def test_backfill_reports_progress(make_source: MakeSource) -> None:
    source, _ = make_source()
    seen: list[tuple[int, int]] = []
    batch = await source.backfill(AT, 72, progress=lambda done, total: seen.append((done, total)))
    assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1] > 0
    assert batch.history and all(s.at < AT for s in batch.history)
    assert batch.market == []
    assert any(s.funding_rate is not None for s in batch.history)
    # the commands wrapper renders it with rich and returns the same kind of batch
    again = await backfill(source, hours=72, end=AT)
    assert again.history == []  # already backfilled: nothing older than what was delivered
