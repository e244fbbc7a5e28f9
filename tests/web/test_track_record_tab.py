"""The dashboard's Track record tab in a real browser: the chart is drawn with the top 5, all listed
and the universe, one point per run of the API's series; the table equals the API's figures; the
demo says its market is simulated; the tab updates as runs close.

The server (conftest) scores the demo's market; runs replayed from an exported demo market, earlier
in time, are added to its store first, as if it had been running for days."""

from __future__ import annotations

import bisect
from datetime import timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from ingest.snapshot import parse_time
from ingest.storage import SnapshotStore
from research.replay import Replay, export_demo, load_replay
from scoring.config import load_model_config
from scoring.pipeline import ScoringPipeline
from tests.web.helpers import Server, assert_contrast, enter_key, screenshot


def _replay_runs(server: Server, replay: Replay, start: Any, end: Any) -> int:
    """Score the replay every 8 h from ``start`` to ``end`` in the server's store (the samples up to
    each run first, as time passes)."""

    async def go() -> int:
        db = server.services.store.db
        snapshots = SnapshotStore(db)
        pipeline = ScoringPipeline(db, load_model_config(), source="replay")
        times = [parse_time(f["at"]) for f in replay.frames]
        at, count = start, 0
        while at <= end:
            lo, hi = bisect.bisect_right(times, at - timedelta(hours=8)), bisect.bisect_right(times, at)
            await snapshots.write_frames(replay.frames[0 if not count else lo : hi])
            assert (await pipeline.run(at)).status == "succeeded"
            at += timedelta(hours=8)
            count += 1
        return count

    return int(server.call(go(), timeout=120))


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Replay:
    folder = tmp_path_factory.mktemp("track-tab")
    export_demo(folder, coins=16, days=10)
    return load_replay(folder)


def api_track(server: Server) -> dict[str, Any]:
    response = httpx.get(
        f"{server.base}/v1/insider-selling/track-record",
        params={"window": "24h"},
        headers={"Authorization": f"Bearer {server.read_key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def shown_rows(page: Any) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        "#track-table tbody tr",
        """trs => trs.map(tr => ({ id: tr.dataset.id, label: tr.children[0].textContent,
        n: tr.children[1].textContent, mean: tr.children[4].textContent, ci: tr.children[5].textContent }))""",
    )


def _pct(value: float | None) -> str:
    if value is None:
        return "no data"
    v = value * 100
    return f"{'+' if v > 0 else ''}{v:.2f} %"


def test_track_record_tab_draws_the_chart_and_the_table_equals_the_api(
    page: Any, server: Server, replay: Replay
) -> None:
    first = replay.first + timedelta(hours=72)
    middle = first + timedelta(days=4)
    assert _replay_runs(server, replay, first, middle) >= 12
    enter_key(page, server.read_key)
    page.wait_for_selector("#board tbody tr")
    page.get_by_role("link", name="Track record").click()
    page.wait_for_selector("#track-chart[data-points] canvas")
    expect(page.locator("#track-simulated")).to_contain_text("Simulated market")
    api = api_track(server)
    assert api["simulated"] is True and api["runs"] > 0
    chart = page.locator("#track-chart")
    assert chart.get_attribute("data-series") == "Top 5|All listed|Universe (median)"
    assert chart.get_attribute("data-points") == str(len(api["series"])) != "0"
    shown = shown_rows(page)
    assert [r["id"] for r in shown] == [s["id"] for s in api["selections"]]
    for row, want in zip(shown, api["selections"], strict=True):
        assert row["label"] == want["label"] and row["n"] == str(want["n"])
        assert row["mean"] == _pct(want["mean_excess_return"])
        if want["ci95_low"] is not None:
            assert row["ci"] == f"[{want['ci95_low'] * 100:.2f}, {want['ci95_high'] * 100:.2f}] %"
    expect(page.locator("#track-summary")).to_contain_text(f"of {api['runs']} closed runs")
    # the chart's legend reads the newest point: the cumulative excess of the top 5, as the API says
    box = page.locator("#track-chart .u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] - 1, box["y"] + box["height"] / 2)
    newest = api["series"][-1]
    expect(page.locator("#track-chart .u-legend .u-series").nth(1)).to_contain_text(
        _pct(newest["top_cumulative"]).replace(" %", "")
    )
    assert_contrast(page)
    screenshot(page, "track-record-tab")

    # more runs close: the tab updates when the next run is announced, without a reload
    _replay_runs(server, replay, middle + timedelta(hours=8), replay.last)
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    server.score_run()  # a live run: the dashboard hears of it and refreshes the open tab
    after = api_track(server)
    assert after["runs"] > api["runs"]
    expect(page.locator("#track-summary")).to_contain_text(f"of {after['runs']} closed runs", timeout=20_000)
    expect(page.locator("#track-chart")).to_have_attribute("data-points", str(len(after["series"])))
    # the 7 d window: its own figures
    page.locator("button[data-window=D7]").click()
    expect(page.locator("#track-table caption")).to_contain_text("Mean 7 d excess return")
