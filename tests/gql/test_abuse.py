"""Issue 9's GraphQL defects, one test each: what an attacker sent, and what must happen now."""

from __future__ import annotations

import logging
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from starlette.websockets import WebSocketDisconnect

from gql.documents import Documents
from gql.responses import CachedResponse, ResponseCache
from gql.sockets import MAX_FRAME
from tests.gql.helpers import gql
from tests.gql.wsclient import Outcome, TestClient, app_client, new_key, services, socket
from tests.helpers import ApiClient

SIGNAL = "{ signal { modelVersion } }"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with app_client(connection_timeout=0.5) as client:
        yield client


# -- 2. websockets ------------------------------------------------------------------------------


def test_a_10_per_minute_key_gets_10_requests_over_a_websocket(client: TestClient) -> None:
    key, _ = new_key(client, ["signals:read"], rate_limit=10)
    with socket(client, key) as ws:  # connection_init is the first of the ten (issue 17 #6)
        assert not isinstance(ws, Outcome)
        outcomes = [ws.run(SIGNAL) for _ in range(12)]
        mutation = ws.run('mutation { issueApiKey(tenantId: "x", name: "n", scopes: []) { key } }')
    assert [o.code for o in outcomes] == [None] * 9 + ["budget_exceeded"] * 3, outcomes
    assert mutation.code in {"budget_exceeded", "insufficient_scope"}


def test_expired_key_closes_its_socket_by_timer(client: TestClient) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    key, _ = new_key(client, ["signals:read"], expires_at=expires)
    with socket(client, key) as ws:
        assert not isinstance(ws, Outcome)
        assert ws.run(SIGNAL).code is None
        with pytest.raises(WebSocketDisconnect) as closed:  # nothing sent: the timer closes it
            ws.ws.receive_json()
        assert closed.value.code == 4403
        assert datetime.now(UTC) - expires < timedelta(seconds=1)


def test_oversized_frame_closes_the_socket(client: TestClient) -> None:
    key, _ = new_key(client, ["signals:read"])
    with socket(client, key) as ws:
        assert not isinstance(ws, Outcome)
        ws.ws.send_text('{"id": "1", "type": "subscribe", "payload": {"query": "' + " " * MAX_FRAME + '"}}')
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.ws.receive_json()
        assert closed.value.code == 1009


def test_socket_without_connection_init_is_closed(client: TestClient) -> None:
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        started = time.monotonic()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4408 and time.monotonic() - started < 2.0


def test_socket_operations_are_refused_once_revoked_even_before_the_bus(client: TestClient) -> None:
    """Re-checked before every operation: a revocation written to the store only (another worker,
    the CLI) is caught by the next operation's authentication once the cache entry is gone."""
    key, key_id = new_key(client, ["signals:read"])
    with socket(client, key) as ws:
        assert not isinstance(ws, Outcome)
        assert ws.run(SIGNAL).code is None
        svc = services(client)
        client.portal.call(lambda: svc.authenticator.repo.update_key(key_id, {"revoked_at": datetime.now(UTC)}))
        svc.authenticator.forget(key_id)
        assert ws.run(SIGNAL).closed == 4403


# -- 3. exponential and quadratic documents ----------------------------------------------------------


async def test_unknown_fragment_is_a_400(api: ApiClient) -> None:
    r = await gql(api, "query { ...Z }")
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["extensions"]["code"] == "graphql_validation_failed"
    assert "Z" in r.json()["errors"][0]["message"]


async def test_fragment_bomb_of_958_bytes_is_refused_in_milliseconds(api: ApiClient) -> None:
    lines = ["query { ...F0 }"]
    lines += [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(23)]
    lines += ["fragment F23 on Query { insiderSelling { coins { history { runId } } } }"]
    bomb = "\n".join(lines)
    assert len(bomb) < 1100
    started = time.perf_counter()
    r = await gql(api, bomb)
    assert time.perf_counter() - started < 0.5
    assert r.status_code in {200, 400}, r.text  # every spread merges into one field: cheap, as it is


async def test_repeated_fields_do_not_make_validation_quadratic(api: ApiClient) -> None:
    for query in (
        "{ " + "signal { modelVersion } " * 490 + "}",
        "{ signal { " + "modelVersion " * 1900 + "} }",
        "{ "
        + (
            "insiderSelling { "
            + ("coins { " + ("history { runId " + "subScores { fundingMagnitude } " * 4 + "} ") * 4 + "} ") * 4
            + "} "
        )
        * 4
        + " }",
    ):
        started = time.perf_counter()
        r = await gql(api, query)
        assert time.perf_counter() - started < 0.3, query[:60]
        assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "graphql_validation_failed"


async def test_a_few_repeated_fields_are_still_merged(api: ApiClient) -> None:
    query = """{ insiderSelling(limit: 3) { coins { coinId ...A ...B } } }
      fragment A on Coin { coinId score } fragment B on Coin { coinId symbol score }"""
    r = await gql(api, query)
    assert r.status_code == 200 and "errors" not in r.json(), r.text


# -- 4. caches keyed by client input are bounded in bytes -----------------------------------------


def test_document_cache_is_bounded_in_bytes() -> None:
    documents = Documents(max_bytes=1024 * 1024)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(60):  # 60 x 60 KB distinct documents = 3.6 MB of text
            documents.get(f"{{ a{i}: signal {{ modelVersion }} }}" + " " * 60_000)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert documents.bytes <= documents.max_bytes
    assert grown < 2 * 1024 * 1024, grown


def test_response_cache_counts_its_keys() -> None:
    cache = ResponseCache(max_bytes=1024 * 1024)
    for i in range(200):  # tiny responses under 40 KB keys (a client's variables)
        cache.put(("{ q }", None, b"%d" % i + b" " * 40_000, "run"), CachedResponse(b'{"data":{}', 1))
    held = sum(len(key[0]) + len(key[2]) + len(entry.prefix) for key, entry in cache._entries.items())
    assert held <= 1024 * 1024


async def test_rest_query_string_cache_is_bounded_in_bytes(api: ApiClient) -> None:
    headers = {"Authorization": f"Bearer {api.read_key}"}
    for i in range(150):  # distinct 40 KB query strings (each an error: unknown parameter)
        r = await api.http.get(f"/v1/insider-selling/data?x{i}=" + "a" * 40_000, headers=headers)
        assert r.status_code == 400
    for i in range(100):  # valid ones too: "limit=7" and 20 000 spaces (stripped) is limit 7
        r = await api.http.get(f"/v1/insider-selling/data?limit={i + 1}" + "+" * 20_000, headers=headers)
        assert r.status_code == 200
    endpoint = api.app.middleware_stack.app.endpoint  # the REST fast path's DataEndpoint (behind HeadLimits)
    assert sum(len(query) for query in endpoint._params) < 1024 * 1024  # 250 x 20-40 KB would be 8 MB
    assert sum(len(query) for query in endpoint._validator_headers[2]) < 64 * 1024


async def test_leaderboard_bytes_cache_is_bounded_in_bytes(api: ApiClient) -> None:
    board = api.services.leaderboard
    board.max_cached_bytes = 256 * 1024
    run = await board.current_run()
    for i in range(200):  # distinct min_score values: each caches its own encoded ranking
        await board.data_bytes(run, 500, i / 1000)
    assert sum(len(v) for v in board._bytes.values()) <= board.max_cached_bytes


# -- 8. inputs anyone can send ------------------------------------------------------------------


IN_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")  # the loop read_only_api runs in
HISTORY = 'query($from: DateTime) { scoreHistory(coinId: "x", from: $from) { pageInfo { hasNextPage } } }'


@pytest.mark.parametrize(
    "value",
    ["2026-04-01T00:00:00", "yesterday", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "2026-13-01T00:00:00Z"],
)
@pytest.mark.parametrize("how", ["literal", "variable"])
@IN_MODULE_LOOP
async def test_bad_datetime_is_a_400_naming_the_argument(
    read_only_api: ApiClient, caplog: pytest.LogCaptureFixture, value: str, how: str
) -> None:
    api = read_only_api  # only reads: one primed app for every value
    caplog.set_level(logging.INFO)
    if how == "literal":
        r = await gql(api, '{ scoreHistory(coinId: "x", from: "' + value + '") { pageInfo { hasNextPage } } }')
    else:
        r = await gql(api, HISTORY, {"from": value})
    assert r.status_code == 400, r.text
    error = r.json()["errors"][0]
    assert error["extensions"]["code"] == "parameter_invalid" and error["extensions"]["param"] == "from", error
    assert "from" in error["message"]
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR or rec.exc_info]


@IN_MODULE_LOOP
async def test_good_datetime_still_works(read_only_api: ApiClient) -> None:
    api = read_only_api
    r = await gql(api, HISTORY, {"from": "2026-04-01T00:00:00+02:00"})
    assert r.status_code == 200 and "errors" not in r.json(), r.text
