"""The track record and point-in-time reads over GraphQL and REST.

One app (no priming) replays a small demo market run by run; after each run the test records what
the API served then (REST and GraphQL), so the point-in-time answers are compared with real answers.
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from gql.values import format_datetime
from ingest.snapshot import parse_time
from ingest.source import SnapshotBatch
from ingest.storage import SnapshotStore
from research.replay import export_demo, load_replay
from scoring.config import load_model_config
from scoring.pipeline import ScoringPipeline
from scoring.track import TrackRecord, summarize
from tests.gql.helpers import data, gql, issue_key
from tests.helpers import ApiClient, start_app

pytestmark = pytest.mark.asyncio(loop_scope="module")

DATA = "/v1/insider-selling/data"
TRACK = "/v1/insider-selling/track-record"
BOARD = """query($asOf: DateTime) { insiderSelling(limit: 500, asOf: $asOf) {
  count coins { coinId score manipulationPhase updatedAt } signal { lastRunAt modelVersion } } }"""
TRACK_QUERY = """query($w: TrackWindow!, $top: Int!, $band: ScoreBand, $v: String) {
  trackRecord(window: $w, topN: $top, band: $band, modelVersion: $v) {
    window benchmark topN runs from to modelVersions simulated bootstrapReps blockHours
    selections { id kind label n coins runs meanExcessReturn ci95Low ci95High hitRate meanReturn blocks }
    series { runId at closesAt modelVersion listed universeReturn topExcess listedExcess
      topCumulative listedCumulative }
  } }"""


@dataclass
class Replayed:
    api: ApiClient
    runs: list[Any]
    rest: dict[str, dict[str, Any]] = field(default_factory=dict)  # run id -> REST data served then
    graphql: dict[str, dict[str, Any]] = field(default_factory=dict)


def _auth(api: ApiClient, key: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key or api.read_key}"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def replayed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Replayed]:
    folder: Path = tmp_path_factory.mktemp("track-api")
    export_demo(folder, coins=16, days=11)
    replay = load_replay(folder)
    async for api in start_app(prime=False):
        db = api.services.store.db
        state = Replayed(api, [])
        snapshots = SnapshotStore(db)
        pipeline = ScoringPipeline(db, load_model_config(), source="replay")
        await snapshots.write_batch(SnapshotBatch(at=replay.first, coins=list(replay.coins.values())))
        times = [parse_time(f["at"]) for f in replay.frames]
        written = 0
        at = replay.first + timedelta(hours=72)
        while at <= replay.last:  # as time passes: the samples up to the run, then the run
            upto = bisect.bisect_right(times, at)
            await snapshots.write_frames(replay.frames[written:upto])
            written = upto
            result = await pipeline.run(at)
            assert result.status == "succeeded"
            state.runs.append(result)
            api.services.leaderboard.invalidate()
            response = await api.http.get(DATA, params={"limit": 500}, headers=_auth(api))
            assert response.status_code == 200
            state.rest[result.run_id] = response.json()["data"]
            state.graphql[result.run_id] = (await data(api, BOARD))["insiderSelling"]
            at += timedelta(hours=8)
        yield state


# -- point in time -----------------------------------------------------------------------------


async def test_as_of_answers_equal_what_was_served_then(replayed: Replayed) -> None:
    api = replayed.api
    etags = set()
    for result in replayed.runs[::3]:
        for as_of in (result.at, result.at + timedelta(hours=7, minutes=59)):
            stamp = format_datetime(as_of)
            response = await api.http.get(DATA, params={"limit": 500, "as_of": stamp}, headers=_auth(api))
            assert response.status_code == 200, response.text
            assert response.json()["data"] == replayed.rest[result.run_id]
            etag = response.headers["ETag"]
            assert result.run_id in etag and etag not in etags  # the run and the time asked for
            etags.add(etag)
            board = (await data(api, BOARD, {"asOf": stamp}))["insiderSelling"]
            assert board == replayed.graphql[result.run_id]
    latest = replayed.runs[-1]
    past = await api.http.get(DATA, params={"as_of": format_datetime(replayed.runs[0].at)}, headers=_auth(api))
    assert past.headers["Cache-Control"] == "private, max-age=3600"
    again = await api.http.get(
        DATA,
        params={"as_of": format_datetime(replayed.runs[0].at)},
        headers={**_auth(api), "If-None-Match": past.headers["ETag"]},
    )
    assert again.status_code == 304 and again.headers["ETag"] == past.headers["ETag"]
    now = await api.http.get(DATA, params={"as_of": format_datetime(datetime.now(UTC))}, headers=_auth(api))
    assert now.json()["data"] == replayed.rest[latest.run_id]
    assert now.headers["ETag"] != (await api.http.get(DATA, headers=_auth(api))).headers["ETag"]


async def test_graphql_get_with_as_of_is_cached_and_tagged_per_time(replayed: Replayed) -> None:
    api = replayed.api
    tags = []
    for result in replayed.runs[:2]:
        params = {"query": BOARD, "variables": json.dumps({"asOf": format_datetime(result.at)})}
        first = await api.http.get("/graphql", params=params, headers=_auth(api))
        second = await api.http.get("/graphql", params=params, headers=_auth(api))
        assert first.status_code == second.status_code == 200
        # the second answer comes from the response cache: the same data, the same tag
        assert first.json()["data"] == second.json()["data"] == {"insiderSelling": replayed.graphql[result.run_id]}
        assert first.headers["ETag"] == second.headers["ETag"]
        tags.append(first.headers["ETag"])
    assert tags[0] != tags[1]


async def test_run_by_id_and_its_ranking_equal_what_it_served(replayed: Replayed) -> None:
    api = replayed.api
    result = replayed.runs[1]
    query = """query($id: ID!) { run(id: $id) { runId status at
      ranking(limit: 500) { count coins { coinId score manipulationPhase updatedAt } signal { lastRunAt modelVersion } }
      trackRecord { window closesAt modelVersion coins listed universeReturn topExcess listedExcess } } }"""
    run = (await data(api, query, {"id": result.run_id}))["run"]
    assert run["runId"] == result.run_id and run["status"] == "SUCCEEDED"
    assert run["ranking"] == replayed.graphql[result.run_id]
    stored = await api.services.runs.get_run(result.run_id)
    assert [t["window"] for t in run["trackRecord"]] == ["H24", "D7"]
    for figures in run["trackRecord"]:
        doc = stored["track"][{"H24": "24h", "D7": "7d"}[figures["window"]]]
        assert figures["modelVersion"] == doc["model_version"] and figures["coins"] == doc["coins"] > 0
        assert figures["topExcess"] == pytest.approx(doc["top_excess"])
        assert figures["listedExcess"] == pytest.approx(doc["listed_excess"])
    assert (await data(api, query, {"id": "run_unknown"}))["run"] is None
    runs = (await data(api, "{ runs(first: 50) { runId trackRecord { window } } }"))["runs"]
    windows = {r["runId"]: [t["window"] for t in r["trackRecord"]] for r in runs}
    assert windows[replayed.runs[-1].run_id] == []  # its windows have not closed
    assert windows[result.run_id] == ["H24", "D7"]


async def test_as_of_before_retention_is_a_400_naming_the_limit(replayed: Replayed) -> None:
    api = replayed.api
    first = replayed.runs[0].at
    early = format_datetime(first - timedelta(seconds=1))
    response = await api.http.get(DATA, params={"as_of": early}, headers=_auth(api))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "before_retention" and error["param"] == "as_of"
    assert format_datetime(first) in error["message"] and "retention limit" in error["message"]
    body = (await gql(api, BOARD, {"asOf": early})).json()
    assert body["errors"][0]["extensions"]["code"] == "before_retention"
    assert format_datetime(first) in body["errors"][0]["message"]
    # retention rolled runs up: the limit moves to the first run after the last pruned one
    runs = api.services.runs.runs
    pruned = [r.run_id for r in replayed.runs[:4]]
    await runs.update_many({"run_id": {"$in": pruned}}, {"$set": {"pruned": True}})
    try:
        inside = format_datetime(replayed.runs[2].at + timedelta(hours=1))
        response = await api.http.get(DATA, params={"as_of": inside}, headers=_auth(api))
        assert response.status_code == 400
        assert format_datetime(replayed.runs[4].at) in response.json()["error"]["message"]
    finally:
        await runs.update_many({"run_id": {"$in": pruned}}, {"$unset": {"pruned": ""}})


@pytest.mark.parametrize(
    "as_of",
    ["yesterday", "2026-11-20T00:00:00", "2026-13-01T00:00:00Z", "", "9999-12-31T23:59:59Z", "x" * 500],
)
async def test_bad_or_future_as_of_is_a_400(replayed: Replayed, as_of: str) -> None:
    response = await replayed.api.http.get(DATA, params={"as_of": as_of}, headers=_auth(replayed.api))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "as_of"


# -- the track record --------------------------------------------------------------------------


async def test_track_record_over_graphql_and_rest_equals_the_stored_records(replayed: Replayed) -> None:
    api = replayed.api
    records = await TrackRecord(api.services.store.db).load("24h")
    expected = summarize(records, "24h")
    assert expected["runs"] == len(records) > 5
    rest = await api.http.get(TRACK, params={"window": "24h"}, headers=_auth(api))
    assert rest.status_code == 200 and rest.headers["content-type"].startswith("application/json")
    assert "RateLimit-Remaining" in rest.headers and rest.headers["X-Request-Id"].startswith("req_")
    body = rest.json()["data"]
    answer = (await data(api, TRACK_QUERY, {"w": "H24", "top": 5}))["trackRecord"]
    assert body["runs"] == answer["runs"] == expected["runs"]
    assert answer["simulated"] is body["simulated"] is False  # replayed runs, not the demo's market
    by_id = {row["id"]: row for row in expected["selections"]}
    assert [s["id"] for s in answer["selections"]] == [s["id"] for s in body["selections"]] == list(by_id)
    for gq, js in zip(answer["selections"], body["selections"], strict=True):
        want = by_id[gq["id"]]
        assert gq["n"] == js["n"] == want["n"]
        for key, camel in (
            ("mean_excess_return", "meanExcessReturn"),
            ("ci95_low", "ci95Low"),
            ("ci95_high", "ci95High"),
        ):
            assert gq[camel] == pytest.approx(want[key]) and js[key] == pytest.approx(want[key])
    assert [p["runId"] for p in answer["series"]] == [p["run_id"] for p in body["series"]]
    assert [p["topCumulative"] for p in answer["series"]] == pytest.approx(
        [p["top_cumulative"] for p in expected["series"]]
    )
    # the chain of runs does not overlap: each starts after the previous window closed
    ats = [datetime.fromisoformat(p["at"].replace("Z", "+00:00")) for p in answer["series"]]
    assert all(b - a >= timedelta(hours=24) for a, b in itertools.pairwise(ats))
    # CSV: one row per selection, the same numbers
    as_csv = await api.http.get(TRACK, params={"window": "24h"}, headers={**_auth(api), "Accept": "text/csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["id"] for r in rows] == list(by_id)
    for row in rows:
        want = by_id[row["id"]]
        assert int(row["n"]) == want["n"] and row["window"] == "24h"
        if want["n"]:
            assert float(row["mean_excess_return"]) == pytest.approx(want["mean_excess_return"])


async def test_track_record_filters(replayed: Replayed) -> None:
    api = replayed.api
    version = (await api.services.runs.get_run(replayed.runs[0].run_id))["model_version"]
    answer = (await data(api, TRACK_QUERY, {"w": "D7", "top": 3, "band": "FROM_2_5_TO_5", "v": version}))["trackRecord"]
    assert answer["window"] == "D7" and answer["topN"] == 3 and answer["blockHours"] == 336
    assert [s["id"] for s in answer["selections"]] == ["top3", "listed", "2.5-5", "universe"]
    assert answer["modelVersions"] == [version]
    other = (await data(api, TRACK_QUERY, {"w": "D7", "top": 3, "v": "no-such-version"}))["trackRecord"]
    assert other["runs"] == 0 and other["series"] == [] and all(s["n"] == 0 for s in other["selections"])
    rest = (
        await api.http.get(
            TRACK, params={"window": "7d", "top_n": "3", "band": "2.5-5", "model_version": version}, headers=_auth(api)
        )
    ).json()["data"]
    assert [s["id"] for s in rest["selections"]] == ["top3", "listed", "2.5-5", "universe"]
    assert [s["n"] for s in rest["selections"]] == [s["n"] for s in answer["selections"]]
    # a range longer than 366 days is cut to the 366 days ending at `to`
    span = (
        await api.http.get(
            TRACK, params={"from": "2000-01-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, headers=_auth(api)
        )
    ).json()["data"]
    assert span["from"] == "2025-11-30T00:00:00Z" and span["to"] == "2026-12-01T00:00:00Z"


async def test_ranges_within_the_same_hours_share_one_computation(
    replayed: Replayed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A summary costs a bootstrap: ``from``/``to`` moved by seconds inside the same hours must not
    buy a fresh one each time (the range is widened to whole hours before the cache is asked)."""
    import scoring.track

    calls = 0
    real = scoring.track.summarize

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(scoring.track, "summarize", counting)
    api = replayed.api
    answers = []
    for second in range(1, 30, 7):
        params = {"from": f"2025-12-01T10:00:{second:02d}Z", "to": f"2026-12-01T09:{second:02d}:00Z"}
        response = await api.http.get(TRACK, params=params, headers=_auth(api))
        assert response.status_code == 200
        answers.append(response.json()["data"])
    assert calls == 1
    assert {(a["from"], a["to"]) for a in answers} == {("2025-12-01T10:00:00Z", "2026-12-01T10:00:00Z")}


BAD_TRACK = [
    ("window=1h", "window", "parameter_invalid"),
    ("window=", "window", "parameter_invalid"),
    ("band=9-10", "band", "parameter_invalid"),
    ("top_n=0", "top_n", "parameter_invalid"),
    ("top_n=51", "top_n", "parameter_invalid"),
    ("top_n=abc", "top_n", "parameter_invalid"),
    ("top_n=99999999999999999999", "top_n", "parameter_invalid"),
    ("model_version=" + "v" * 65, "model_version", "parameter_invalid"),
    ("model_version=a%20b", "model_version", "parameter_invalid"),
    ("from=yesterday", "from", "parameter_invalid"),
    ("to=2026-01-01T00:00:00", "to", "parameter_invalid"),
    ("to=" + "9" * 300, "to", "parameter_invalid"),
    ("window=24h&window=7d", "window", "parameter_repeated"),
    ("limit=5", "limit", "parameter_unknown"),
]


@pytest.mark.parametrize(("query", "param", "code"), BAD_TRACK)
async def test_track_record_bad_input_is_a_4xx_json(replayed: Replayed, query: str, param: str, code: str) -> None:
    response = await replayed.api.http.get(f"{TRACK}?{query}", headers=_auth(replayed.api))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)


async def test_track_record_needs_a_key_with_signals_read(replayed: Replayed) -> None:
    api = replayed.api
    assert (await api.http.get(TRACK)).status_code == 401
    assert (await api.http.get(TRACK, headers={"Authorization": "Bearer sk_live_nope"})).status_code == 401
    other = await issue_key(api, ["keys:manage"])
    response = await api.http.get(TRACK, headers=_auth(api, other))
    assert response.status_code == 403 and response.json()["error"]["code"] == "insufficient_scope"
    assert (await api.http.post(TRACK, headers=_auth(api))).status_code == 405
    assert (await api.http.get(TRACK, params={"x" * 2000: "1"}, headers=_auth(api))).status_code == 400


async def test_track_record_arguments_and_cost_are_bounded_in_graphql(replayed: Replayed) -> None:
    api = replayed.api
    for variables, param in (
        ({"w": "H24", "top": 0}, "topN"),
        ({"w": "H24", "top": 51}, "topN"),
        ({"w": "H24", "top": 5, "v": "v" * 65}, "modelVersion"),
    ):
        error = (await gql(api, TRACK_QUERY, variables)).json()["errors"][0]
        assert error["extensions"]["code"] == "parameter_invalid" and error["extensions"]["param"] == param
    assert "errors" in (await gql(api, TRACK_QUERY, {"w": "H1", "top": 5})).json()  # not a window
    error = (await gql(api, "{ trackRecord { series(last: 501) { runId } } }")).json()["errors"][0]
    assert error["extensions"]["code"] == "parameter_invalid"
    small = (await gql(api, "{ trackRecord { runs selections { id n } series(last: 10) { runId } } }")).json()
    assert small["extensions"]["cost"]["requested"] == 1
    full = (await gql(api, "{ trackRecord { series { runId } } }")).json()
    # the cost model counts leaves too: 100 (root) + 1 + 500 points + 500 runIds = 1101 fields
    assert full["extensions"]["cost"]["requested"] == 2 > small["extensions"]["cost"]["requested"]
    heavy = (
        await gql(api, "{ runs(first: 50) { trackRecord { window } ranking(limit: 500) { coins { coinId } } } }")
    ).json()
    assert heavy["extensions"]["cost"]["requested"] >= 25  # 50 runs x 500 coins are counted
    error = (await gql(api, '{ run(id: "' + "r" * 101 + '") { runId } }')).json()["errors"][0]
    assert error["extensions"]["code"] == "parameter_invalid"
