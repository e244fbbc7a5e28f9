"""The dashboard a trader keeps open (issue 23), in a real browser against the API's own answers:
the leaderboard's extra columns (sparklines, negative venues, OI change, change since the previous
run), CSV equal to the table, the watchlist across reloads, live marks only on rows that moved, the
375 px layout, the coin view's charts (series and points equal to the API's), the plain-words
sentence, "no data" never drawn as 0, and the search of an unlisted coin."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.helpers import Server, Watch, assert_key_kept_out, enter_key, rest, screenshot

BANDS = (
    (7.5, "the top hundredth"),
    (5, "the top tenth"),
    (2.5, "the stronger half, below the top tenth"),
    (0, "the weaker half"),
)


@pytest.fixture(scope="module", autouse=True)
def history(server: Server) -> int:
    """The demo's backdated runs (what `make run` scores at start): 26 hourly runs before the first."""
    run = server.call(server.services.leaderboard.current_run())
    at = run["at"] if run["at"].tzinfo else run["at"].replace(tzinfo=UTC)
    scored: int = server.call(server.services.cycle.score_history(at, 26), timeout=300)
    assert scored == 26
    return scored


def api(server: Server, query: str, variables: dict[str, Any] | None = None) -> Any:
    return server.graphql(query, variables, key=server.read_key)


def board_rows(page: Any) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(
        "#board tbody tr",
        """trs => trs.map(tr => ({
          id: tr.dataset.coinId, rank: tr.querySelector('.rank').firstChild.textContent,
          symbol: tr.querySelector('.coin a').textContent, phase: tr.querySelector('.phase').textContent,
          score: tr.querySelector('.score').textContent, days: tr.querySelector('.days').textContent,
          venues: tr.querySelector('.venues-neg').textContent, change: tr.querySelector('.change').textContent,
          oi: tr.querySelector('.oi').textContent,
          spark: tr.querySelector('svg.spark') ? Number(tr.querySelector('svg.spark').dataset.points) : null,
          watched: tr.querySelector('button.star').getAttribute('aria-pressed') === 'true',
          changed: tr.classList.contains('changed') }))""",
    )


def extras(server: Server) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the leaderboard's columns must show, from the API: per coin its venues, last 24 runs and
    the OI a day before the run; and the previous succeeded run's ranking."""
    board = api(server, "{ insiderSelling { signal { lastRunAt } } }")["insiderSelling"]
    last = datetime.fromisoformat(board["signal"]["lastRunAt"].replace("Z", "+00:00"))
    data = api(
        server,
        """query($d: DateTime!) { insiderSelling { coins { coinId score venues { fundingRatePerHour openInterestUsd }
          history(first: 24) { score } dayAgo: history(first: 1, before: $d) { venues { openInterestUsd } } } }
          runs(first: 10) { runId status } }""",
        {"d": (last - timedelta(hours=24)).isoformat()},
    )
    previous = [r for r in data["runs"] if r["status"] == "SUCCEEDED"][1]["runId"]
    ranking = api(
        server, "query($id: ID!) { run(id: $id) { ranking(limit: 500) { coins { coinId score } } } }", {"id": previous}
    )["run"]["ranking"]["coins"]
    prev = {c["coinId"]: (i + 1, c["score"]) for i, c in enumerate(ranking)}
    return {c["coinId"]: c for c in data["insiderSelling"]["coins"]}, prev


def oi_sum(venues: list[dict[str, Any]]) -> float | None:
    known = [v["openInterestUsd"] for v in venues if v["openInterestUsd"] is not None]
    return sum(known) if known else None


def test_leaderboard_columns_csv_watchlist_and_the_375_px_layout(page: Any, server: Server, watch: Watch) -> None:
    page.set_viewport_size({"width": 1440, "height": 900})
    enter_key(page, server.read_key)
    page.wait_for_selector("#board tbody svg.spark", state="attached")
    coins, prev = extras(server)
    shown = board_rows(page)
    assert [r["id"] for r in shown] == [c["coin_id"] for c in rest(server, server.read_key)]
    for i, row in enumerate(shown):
        coin = coins[row["id"]]
        assert row["spark"] == len(coin["history"]) > 1, row  # one point per run the API returns
        rates = [v["fundingRatePerHour"] for v in coin["venues"] if v["fundingRatePerHour"] is not None]
        assert row["venues"] == f"{sum(r < 0 for r in rates)}/{len(rates)}"
        now, then = oi_sum(coin["venues"]), oi_sum(coin["dayAgo"][0]["venues"]) if coin["dayAgo"] else None
        if now is None or not then:
            assert row["oi"] == "no data"  # never a 0
        else:
            change = (now / then - 1) * 100
            assert row["oi"] == f"{'+' if change > 0 else '−' if change < 0 else ''}{abs(change):.1f} %"
        if row["id"] not in prev:
            assert row["change"] == "new"
        else:
            rank, score = prev[row["id"]]
            moved = rank - (i + 1)
            arrow = "=" if moved == 0 else f"{'▲' if moved > 0 else '▼'}{abs(moved)}"
            delta = coin["score"] - score
            assert row["change"] == f"{arrow} {'+' if delta >= 0 else '−'}{abs(delta):.2f}", row
    screenshot(page, "leaderboard-1440", full_page=False)

    # CSV: the table as shown (here sorted by streak), row for row and cell for cell
    page.get_by_role("button", name="Streak (days)").click()
    shown = board_rows(page)
    with page.expect_download() as download:
        page.locator("#csv-export").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == len(shown) > 0
    for line, row in zip(table, shown, strict=True):
        assert (line["rank"], line["symbol"], line["coin_id"], line["phase"], line["score"], line["streak_days"]) == (
            row["rank"],
            row["symbol"],
            row["id"],
            row["phase"],
            row["score"],
            row["days"],
        )
        assert f"{line['negative_venues']}/{line['venues']}" == row["venues"]
        oi = "" if row["oi"] == "no data" else row["oi"].replace(" %", "").replace("−", "-").replace("+", "")
        assert line["oi_change_24h_pct"] == oi
    page.get_by_role("button", name="#").click()

    # the watchlist: a coin id in localStorage (nothing else), kept across reloads
    second = shown[1]["id"]
    page.locator(f'#board tr[data-coin-id="{second}"] button.star').click()
    page.reload()
    page.wait_for_selector("#board tbody tr")
    assert [r["id"] for r in board_rows(page) if r["watched"]] == [second]
    assert json.loads(page.evaluate("localStorage.getItem('insider-selling:watchlist')")) == [second]
    assert page.evaluate("localStorage.length") == 1
    page.locator("#watch-only").check()
    assert [r["id"] for r in board_rows(page)] == [second]
    page.locator("#watch-only").uncheck()
    assert_key_kept_out(page, watch, server.read_key)

    # 375 px: rank, coin, phase and score on screen, nothing scrolls sideways
    page.set_viewport_size({"width": 375, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    wrap = page.eval_on_selector("#board", "t => [t.parentElement.scrollWidth, t.parentElement.clientWidth]")
    assert wrap[0] <= wrap[1]  # the table fits its box: no hidden column to scroll to
    first = page.locator("#board tbody tr").first
    for cell in (".rank", ".coin a", ".phase", ".score"):
        box = first.locator(cell).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, cell
    expect(first.locator(".fold")).to_be_visible()  # the secondary columns, folded into the row
    expect(first.locator(".oi")).to_be_hidden()
    screenshot(page, "leaderboard-375", full_page=False)


def test_live_marks_only_rows_that_moved(page: Any, server: Server) -> None:
    enter_key(page, server.read_key)
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    before = {c["coin_id"]: (i + 1, c["score"]) for i, c in enumerate(rest(server, server.read_key))}
    result = server.score_run()
    expect(page.locator("#run-line time").first).to_have_attribute("datetime", f"{result.at:%Y-%m-%dT%H:%M:%SZ}")
    after = rest(server, server.read_key)
    expected = {
        c["coin_id"]
        for i, c in enumerate(after)
        if c["coin_id"] not in before
        or before[c["coin_id"]][0] != i + 1
        or abs(before[c["coin_id"]][1] - c["score"]) >= 0.1
    }
    marked = {r["id"] for r in board_rows(page) if r["changed"]}
    assert marked == expected
    expect(page.locator("#announce")).to_contain_text(f"{len(expected)} of {len(after)} rows changed")


def sentence(coin: dict[str, Any], oi_change: float | None) -> str:
    rates = [v["fundingRatePerHour"] for v in coin["venues"] if v["fundingRatePerHour"] is not None]
    negative, days = sum(r < 0 for r in rates), coin["consecutiveNegativeDays"]
    if coin["score"] > 0:
        span = f"for {days} {'day' if days == 1 else 'days'}" if days >= 1 else "for less than a day"
        parts = [f"Funding negative on {negative} of {len(rates)} venues {span}"]
    else:
        parts = [f"Funding negative on {negative} of {len(rates)} venues, not enough across venues for a signal"]
    if oi_change is not None:
        parts.append(
            "open interest flat in 24 h"
            if abs(oi_change) < 0.5
            else f"open interest {'up' if oi_change > 0 else 'down'} {abs(oi_change):.0f} % in 24 h"
        )
    p = coin["priceChange24h"]
    parts.append("price flat in 24 h" if abs(p) < 0.05 else f"price {'up' if p > 0 else 'down'} {abs(p):.1f} % in 24 h")
    band = next((text for lo, text in BANDS if coin["score"] >= lo), "")
    verdict = f"score {coin['score']:.2f}, {band} of listed coins" if coin["score"] > 0 else "score 0: not listed"
    return f"{', '.join(parts)}; {verdict}."


COIN = """query($id: ID!, $d: DateTime!) { coin(coinId: $id) { coinId score consecutiveNegativeDays priceChange24h
  venues { fundingRatePerHour openInterestUsd } dayAgo: history(first: 1, before: $d) { venues { openInterestUsd } } }
  signal { lastRunAt } }"""
MARKET = """query($id: ID!, $from: DateTime!) { scoreHistory(coinId: $id, from: $from, first: 500) {
  edges { node { at score venues { venue fundingRatePerHour basis openInterestUsd markPrice } } } } }"""


def test_coin_view_charts_sentence_and_no_data(page: Any, server: Server) -> None:
    enter_key(page, server.read_key)
    page.wait_for_selector("#board tbody tr")
    coin_id = board_rows(page)[0]["id"]
    last = datetime.fromisoformat(api(server, "{ signal { lastRunAt } }")["signal"]["lastRunAt"].replace("Z", "+00:00"))
    # a run in range where one venue has no data: drawn as a gap, never as 0
    history = server.call(server.services.runs.history([coin_id], limit_per_coin=3))[coin_id]
    gap_run = history[1]["run_id"]
    dropped = history[1]["venues"][0]["venue"]
    kept = [v for v in history[1]["venues"] if v["venue"] != dropped]
    server.call(
        server.services.runs.scores.update_one({"run_id": gap_run, "coin_id": coin_id}, {"$set": {"venues": kept}})
    )
    # and a coin whose supply family had no data at all: its sub-scores say "no data", not 0.00
    run = server.call(server.services.leaderboard.current_run())
    server.call(
        server.services.runs.scores.update_one(
            {"run_id": run["run_id"], "coin_id": coin_id}, {"$set": {"coverage.supply_context": 0.0}}
        )
    )

    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"/dashboard#/coin/{coin_id}")
    page.wait_for_selector("#oi-chart[data-points]")
    for window, hours in (("24h", 24), ("7d", 168)):
        if window != "24h":
            page.locator(f'#range button[data-range="{window}"]').click()
            expect(page.locator(f'#range button[data-range="{window}"]')).to_have_attribute("aria-pressed", "true")
        nodes = api(server, MARKET, {"id": coin_id, "from": (last - timedelta(hours=hours)).isoformat()})
        nodes = [e["node"] for e in nodes["scoreHistory"]["edges"]]
        venues = sorted({v["venue"] for n in nodes for v in n["venues"]})
        page.wait_for_function(
            "n => (document.querySelector('#funding-chart') || {dataset: {}}).dataset.points == n",
            arg=str(len(nodes)),
        )
        for chart in ("#funding-chart", "#oi-chart", "#basis-chart"):
            assert page.get_attribute(chart, "data-points") == str(len(nodes)), chart
        assert len(page.get_attribute("#funding-chart", "data-series").split("|")) == len(venues)
        assert len(page.get_attribute("#basis-chart", "data-series").split("|")) == len(venues)
        assert page.get_attribute("#oi-chart", "data-series") == "Open interest|Price|Score"
        # per venue: the runs with a funding print are drawn, the others are gaps
        drawn = [
            sum(
                1
                for n in nodes
                if any(v["venue"] == venue and v["fundingRatePerHour"] is not None for v in n["venues"])
            )
            for venue in venues
        ]
        assert page.get_attribute("#funding-chart", "data-drawn") == "|".join(map(str, drawn))
        gaps = [len(nodes) - d for d in drawn]
        assert page.get_attribute("#funding-chart", "data-gaps") == "|".join(map(str, gaps))
        assert sum(gaps) >= 1  # the dropped venue's run
        # that run's open interest is a gap too, not a fall to the sum of the venues left
        assert page.get_attribute("#oi-chart", "data-gaps").split("|")[0] == "1"
    page.locator('#range button[data-range="24h"]').click()

    data = api(server, COIN, {"id": coin_id, "d": (last - timedelta(hours=24)).isoformat()})
    coin = data["coin"]
    now, then = oi_sum(coin["venues"]), oi_sum(coin["dayAgo"][0]["venues"]) if coin["dayAgo"] else None
    oi_change = (now / then - 1) * 100 if now is not None and then else None
    expect(page.locator("#coin-sentence")).to_have_text(sentence(coin, oi_change))

    supply = ("walletConcentration", "holderQualityDeterioration", "coordinationRisk")
    for key in supply:
        item = page.locator(f'#sub-scores li[data-key="{key}"]')
        expect(item).to_have_attribute("data-nodata", "true")
        expect(item.locator(".val")).to_have_text("no data")
        assert item.locator(".fill").count() == 0  # a hatched empty bar, not a bar at 0
    assert page.locator('#sub-scores li[data-key="fundingMagnitude"] .fill').count() == 1
    screenshot(page, "coin-view-1440")
    page.set_viewport_size({"width": 375, "height": 800})
    # the charts follow their boxes through a ResizeObserver: wait for the narrower layout
    page.wait_for_function("() => document.documentElement.scrollWidth <= 375")
    screenshot(page, "coin-view-375")


def test_search_opens_an_unlisted_coin_and_a_wrong_key_stays_in_the_field(
    page: Any, server: Server, watch: Watch
) -> None:
    watch.allowed_http_errors = 1
    wrong = server.read_key[:-1] + ("A" if server.read_key[-1] != "A" else "B")
    enter_key(page, wrong)
    expect(page.locator("#key-message")).to_contain_text("not a valid API key")
    assert page.input_value("#key-input") == wrong  # kept, to be corrected
    page.locator("#key-input").fill(server.read_key)
    page.locator("#key-input").press("Enter")
    page.wait_for_selector("#board tbody tr")
    assert page.input_value("#key-input") == ""  # accepted: the field is emptied

    listed = {c["coin_id"] for c in rest(server, server.read_key, limit=500)}
    assert "bitcoin" not in listed
    page.locator("#coin-search").fill("btc")
    first = page.locator("#search-results a").first
    expect(first).to_contain_text("BTC")
    expect(first).to_contain_text("not listed")
    page.locator("#coin-search").press("Enter")
    expect(page.locator("#view-h")).to_contain_text("BTC")
    assert page.url.endswith("#/coin/bitcoin")
    coin = api(server, '{ coin(coinId: "bitcoin") { score venues { venue } } }')["coin"]
    expect(page.locator("#coin-score")).to_have_text("0.00")
    assert page.locator("#venues tbody tr").count() == len(coin["venues"]) > 0  # its funding and OI
    expect(page.locator("#coin-sentence")).to_contain_text("score 0: not listed")
    page.wait_for_selector("#funding-chart[data-points]")
    assert_key_kept_out(page, watch, server.read_key)
