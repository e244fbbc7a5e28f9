"""Every transport of ``/graphql`` passes every step of the one pipeline: HTTP GET, HTTP POST and each
operation on a graphql-transport-ws socket are authenticated, authorized, bounded and charged alike,
and a revoked key stops working on each."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from starlette.websockets import WebSocketDisconnect

from gql.cost import MAX_COST
from gql.graphql_app import MAX_QUERY_STRING
from gql.limits import MAX_DOCUMENT
from tests.gql.wsclient import TRANSPORTS, Outcome, TestClient, app_client, call, new_key, revoke, socket

SIGNAL = "{ signal { modelVersion } }"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with app_client() as client:
        yield client


@pytest.fixture(scope="module")
def read_key(client: TestClient) -> str:
    return new_key(client, ["signals:read"])[0]


def refused(outcome: Outcome, status: int, code: str) -> None:
    if outcome.status is None:  # a socket: an error message for the operation, the socket stays open
        assert outcome.closed is None and outcome.code == code, outcome
    else:
        assert (outcome.status, outcome.code) == (status, code), outcome


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_served(client: TestClient, read_key: str, transport: str) -> None:
    outcome = call(client, transport, read_key, SIGNAL)
    assert outcome.code is None and outcome.closed is None, outcome
    data = outcome.body["data"]
    assert data["signal"]["modelVersion"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("key", [None, "sk_live_forged", "sk_live_" + "A" * 40])
def test_no_usable_key_is_refused(client: TestClient, transport: str, key: str | None) -> None:
    outcome = call(client, transport, key, SIGNAL)
    if transport == "WS":
        assert outcome.closed == 4403, outcome
    else:
        assert outcome.status == 401 and outcome.code in {"missing_api_key", "malformed_api_key"}, outcome


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_wrong_scope_is_refused(client: TestClient, transport: str) -> None:
    manager, _ = new_key(client, ["keys:manage"])
    refused(call(client, transport, manager, "{ insiderSelling(limit: 1) { count } }"), 403, "insufficient_scope")
    if transport == "WS":  # a subscription too
        refused(call(client, transport, manager, "subscription { scoreUpdates { count } }"), 403, "insufficient_scope")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_oversized_document_is_refused(client: TestClient, read_key: str, transport: str) -> None:
    limit = MAX_QUERY_STRING if transport == "GET" else MAX_DOCUMENT
    huge = "{ signal { modelVersion } }" + " " * limit
    refused(call(client, transport, read_key, huge), 413, "request_too_large")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_too_many_tokens_is_refused(client: TestClient, read_key: str, transport: str) -> None:
    many = "{ " + "a " * 2100 + "}"
    refused(call(client, transport, read_key, many), 400, "graphql_parse_failed")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_too_deep_is_refused(client: TestClient, read_key: str, transport: str) -> None:
    deep = "{ insiderSelling { coins { " + "history { " * 10 + "runId" + " }" * 10 + " } } }"
    refused(call(client, transport, read_key, deep), 400, "graphql_validation_failed")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_too_many_aliases_is_refused(client: TestClient, read_key: str, transport: str) -> None:
    aliased = "{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }"
    refused(call(client, transport, read_key, aliased), 400, "graphql_validation_failed")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_too_costly_is_refused(client: TestClient, read_key: str, transport: str) -> None:
    costly = "{ insiderSelling(limit: 500) { coins { history(first: 500) { runId } } } }"
    outcome = call(client, transport, read_key, costly)
    refused(outcome, 400, "query_too_expensive")
    error = (outcome.body if transport == "WS" else outcome.body["errors"])[0]
    assert error["extensions"]["cost"]["requested"] > MAX_COST


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_fragment_bomb_is_refused_fast(client: TestClient, read_key: str, transport: str) -> None:
    lines = ["query { insiderSelling { coins { ...F0 } } }"]
    lines += [f"fragment F{i} on Coin {{ history {{ ...F{i + 1} }} h: history {{ ...F{i + 1} }} }}" for i in range(23)]
    lines += ["fragment F23 on ScoreHistory { runId }"]
    started = time.perf_counter()
    outcome = call(client, transport, read_key, "\n".join(lines))
    assert time.perf_counter() - started < 1.0
    assert outcome.code in {"graphql_validation_failed", "query_too_expensive"}, outcome
    assert outcome.status in {None, 400}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_each_operation_is_charged(client: TestClient, transport: str) -> None:
    # a socket's connection_init is a request too (issue 17 #6): one more in the minute
    key, _ = new_key(client, ["signals:read"], rate_limit=3 + (transport == "WS"))
    if transport == "WS":
        with socket(client, key) as ws:
            assert not isinstance(ws, Outcome)
            outcomes = [ws.run(SIGNAL) for _ in range(4)]
    else:
        outcomes = [call(client, transport, key, SIGNAL) for _ in range(4)]
    assert [o.code for o in outcomes] == [None, None, None, "budget_exceeded"], outcomes
    if transport != "WS":
        assert outcomes[-1].status == 429


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_revoked_key_is_refused(client: TestClient, transport: str) -> None:
    key, key_id = new_key(client, ["signals:read"])
    assert call(client, transport, key, SIGNAL).code is None
    revoke(client, key_id)
    outcome = call(client, transport, key, SIGNAL)
    if transport == "WS":
        assert outcome.closed == 4403, outcome
    else:
        assert (outcome.status, outcome.code) == (401, "invalid_api_key"), outcome


def test_open_socket_is_closed_within_a_second_of_revocation(client: TestClient) -> None:
    key, key_id = new_key(client, ["signals:read", "keys:manage"])
    with socket(client, key) as ws:
        assert not isinstance(ws, Outcome)
        assert ws.run(SIGNAL).code is None
        revoke(client, key_id)
        started = time.monotonic()
        outcome = ws.run(SIGNAL)  # never answered: the socket closes
        assert outcome.closed == 4403 and time.monotonic() - started < 1.0, outcome


@pytest.mark.redis
def test_revocation_on_another_worker_closes_the_socket_within_a_second(redis_url: str) -> None:
    """Two workers on one store and one Redis: a key revoked through worker B closes its socket on
    worker A (the key-change bus carries it), without any message from the client."""
    import asyncio

    from store import open_store
    from tests.gql.wsclient import app_client

    store = asyncio.run(open_store(None, "insider_selling"))
    with (
        app_client(redis_url=redis_url, store=store) as a,
        app_client(redis_url=redis_url, store=store, prime=False) as b,
    ):
        key, key_id = new_key(a, ["signals:read"])
        with socket(a, key) as ws:
            assert not isinstance(ws, Outcome)
            assert ws.run(SIGNAL).code is None
            bus = a.app.state.services.bus  # type: ignore[attr-defined]
            assert a.portal.call(lambda: asyncio.wait_for(bus.subscribed.wait(), 10)) is True
            revoke(b, key_id)
            started = time.monotonic()
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.ws.receive_json()
            assert closed.value.code == 4403 and time.monotonic() - started < 1.0
