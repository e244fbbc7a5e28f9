"""Issue 17's GraphQL defects (the second abuse round), one test or more each: what an attacker
sent, and what must happen now."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from urllib.parse import quote

import orjson
import pytest
from starlette.websockets import WebSocketDisconnect

from gql.sockets import PING_BURST
from tenants.plans import PLANS
from tests.gql.wsclient import Outcome, Socket, TestClient, app_client, new_key, services, socket


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with app_client() as client:
        yield client


#: the nesting bound of every JSON input (gql.limits.MAX_JSON_DEPTH)
MAX_JSON_DEPTH = 32


def nested(levels: int) -> str:
    """JSON text of an array nested ``levels`` deep (orjson reads 1,024 levels, writes 255)."""
    return "[" * levels + "]" * levels


# -- 3. deeply nested JSON inputs ---------------------------------------------------------------


@pytest.mark.parametrize("levels", [600, 5000])  # within orjson's reader (1,024 levels), and past it
@pytest.mark.parametrize("where", ["variables", "extensions", "operationName", "query"])
def test_deep_json_in_a_post_body_is_a_400_naming_the_limit(client: TestClient, where: str, levels: int) -> None:
    key, _ = new_key(client, ["signals:read"])
    body = {"query": '"{__typename}"', "variables": "null", "extensions": "null", "operationName": "null"}
    body[where] = '{"v":' + nested(levels) + "}"
    text = "{" + ",".join(f'"{name}":{value}' for name, value in body.items()) + "}"
    response = client.post(
        "/graphql", content=text, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "bad_request"
    assert f"{MAX_JSON_DEPTH} levels" in error["message"], error


@pytest.mark.parametrize("levels", [600, 2000])
def test_deep_variables_in_a_get_are_a_400(client: TestClient, levels: int) -> None:
    key, _ = new_key(client, ["signals:read"])
    deep = '{"v":' + nested(levels) + "}"
    url = "/graphql?query=" + quote("{__typename}") + "&variables=" + quote(deep)
    response = client.get(url, headers={"Authorization": f"Bearer {key}"})
    error = response.json()["errors"][0]
    assert response.status_code == 400 and error["extensions"]["code"] == "bad_request"
    assert f"{MAX_JSON_DEPTH} levels" in error["message"]


def test_variables_at_the_limit_still_work(client: TestClient) -> None:
    key, _ = new_key(client, ["signals:read"])
    variables = orjson.loads('{"v":' + nested(MAX_JSON_DEPTH - 1) + "}")
    response = client.post(
        "/graphql", json={"query": "{__typename}", "variables": variables}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text


def test_deep_variables_on_a_socket_are_an_error_and_the_socket_lives(client: TestClient) -> None:
    key, _ = new_key(client, ["signals:read"])
    with socket(client, key) as ws:
        assert not isinstance(ws, Outcome)
        ws.ws.send_text(
            '{"id":"1","type":"subscribe","payload":{"query":"{__typename}","variables":{"v":' + nested(600) + "}}}"
        )
        message = ws.ws.receive_json()
        assert message["type"] == "error" and message["id"] == "1", message
        assert message["payload"][0]["extensions"]["code"] == "bad_request"
        assert ws.run("{ __typename }").code is None  # the socket still serves


def test_a_deep_websocket_message_is_refused_never_a_1006(client: TestClient) -> None:
    key, _ = new_key(client, ["signals:read"])
    with socket(client, key) as ws:
        assert not isinstance(ws, Outcome)
        ws.ws.send_text(
            '{"id":"1","type":"subscribe","payload":{"query":"{__typename}","extensions":' + nested(600) + "}}"
        )
        message = ws.ws.receive_json()
        assert message["type"] == "error" and f"{MAX_JSON_DEPTH} levels" in message["payload"][0]["message"]
        ws.ws.send_text('{"type":"ping","payload":' + nested(30_000) + "}")  # past orjson's reader too
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.ws.receive_json()
        assert closed.value.code == 4400
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as raw:
        raw.send_text('{"type":"connection_init","payload":{"x":' + nested(600) + "}}")
        with pytest.raises(WebSocketDisconnect) as closed:
            raw.receive_json()
        assert closed.value.code == 4400 and str(MAX_JSON_DEPTH) in closed.value.reason


# -- 5. no schema names in errors with introspection off ----------------------------------------

#: Documents (and variables) a read-only key may get wrong; each answer's errors may quote only
#: names the caller wrote.
MISTAKES: list[tuple[str, dict[str, object] | None]] = [
    ("{ tenant { id } }", None),
    ("{ insiderSelling { cont } }", None),
    ("{ insiderSelling(limt: 5) { count } }", None),
    ("{ insiderSelling { coins } }", None),
    ("{ insiderSelling { count { x } } }", None),
    ('{ coin(coinid: "x") { symbol } }', None),
    ("{ coin { symbol } }", None),
    ("query($p: Phas) { signal { modelVersion } }", None),
    ("query($n: Int!) { insiderSelling(limit: $n) { count } }", {"n": "five"}),
    ("query($n: Int!) { runs(first: $n) { statu } }", {"n": 1}),
    ("{ runs(first: 1) { status(x: 1) } }", None),
    ("{ insiderSelling { ... on Tenant { id } } }", None),
    ("fragment F on Coinn { symbol } { signal { ...F } }", None),
    ("{ signal { modelVersion @skp(if: true) } }", None),
]


def _schema_names() -> set[str]:
    from graphql import build_schema

    from gql.schema import schema as served

    schema = build_schema(served.as_str())  # the exported SDL: every name that must stay hidden
    names: set[str] = set()
    for type_ in schema.type_map.values():
        names.add(type_.name)
        for field_name, field in getattr(type_, "fields", {}).items():
            names.add(field_name)
            names.update(getattr(field, "args", {}) or {})
        names.update(getattr(type_, "values", {}) or {})
    names.update(d.name for d in schema.directives)
    return names


def _ws_errors(ws: Socket, query: str, variables: dict[str, object] | None) -> list[dict[str, object]]:
    ws.ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}})
    errors: list[dict[str, object]] = []
    while True:
        message = ws.ws.receive_json()
        if message["type"] == "error":
            return errors + message["payload"]
        if message["type"] == "next":
            errors += message["payload"].get("errors") or []
        if message["type"] == "complete":
            return errors


def test_errors_name_nothing_the_caller_did_not_write_when_introspection_is_off() -> None:
    import re

    hidden_names = _schema_names()
    with app_client(graphql_introspection=False) as closed:
        key, _ = new_key(closed, ["signals:read"])
        for query, variables in MISTAKES:
            written = set(re.findall(r"[_A-Za-z][_0-9A-Za-z]*", query + orjson.dumps(variables).decode()))
            for transport in ("POST", "GET", "WS"):
                if transport == "WS":
                    with socket(closed, key) as ws:
                        assert not isinstance(ws, Outcome)
                        errors = _ws_errors(ws, query, variables)
                elif transport == "GET":
                    params = {"query": query} | ({"variables": orjson.dumps(variables).decode()} if variables else {})
                    errors = closed.get("/graphql", params=params, headers={"Authorization": f"Bearer {key}"}).json()
                    errors = errors.get("errors") or []
                else:
                    body = {"query": query, "variables": variables}
                    errors = closed.post("/graphql", json=body, headers={"Authorization": f"Bearer {key}"}).json()
                    errors = errors.get("errors") or []
                assert errors, (query, transport)
                for error in errors:
                    message = error["message"]
                    assert "did you mean" not in message.lower(), (query, transport, message)
                    quoted = re.findall(r"'([^']*)'|\"([^\"]*)\"", message)
                    named = {n for pair in quoted for part in pair for n in re.findall(r"[_A-Za-z][_0-9A-Za-z]*", part)}
                    leaked = (named & hidden_names) - written
                    assert not leaked, (query, transport, message)


# -- 6. websockets per key ----------------------------------------------------------------------


def _open(client: TestClient, key: str, stack: contextlib.ExitStack) -> int | None:
    """Open one socket and send ``connection_init``: None when acknowledged (the socket stays open
    in ``stack``), else the close code."""
    ws = stack.enter_context(client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]))
    ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
    try:
        message = ws.receive_json()
    except WebSocketDisconnect as closed:
        return closed.code
    assert message == {"type": "connection_ack"}, message
    return None


def _key(client: TestClient, plan: str, *, tenant: str | None = None, rate_limit: int | None = None) -> tuple[str, str]:
    keys = services(client).keys

    async def go() -> tuple[str, str]:
        tenant_id = (
            tenant or (await keys.create_tenant(None, "ws", plan, rate_limit_per_minute=rate_limit))["tenant_id"]
        )
        issued = await keys.issue(tenant_id, "k", ["signals:read"])
        return issued.key, tenant_id

    return client.portal.call(go)


def test_open_sockets_are_capped_per_key_and_per_tenant(client: TestClient) -> None:
    per_key, per_tenant = PLANS["free"].sockets_per_key, PLANS["free"].sockets_per_tenant
    key, tenant = _key(client, "free")
    with contextlib.ExitStack() as stack:
        outcomes = [_open(client, key, stack) for _ in range(per_key + 2)]
        assert outcomes == [None] * per_key + [1013, 1013], outcomes
        others = []
        while len(others) * per_key < per_tenant:  # more keys of the same tenant, up to its cap
            other, _ = _key(client, "free", tenant=tenant)
            others += [_open(client, other, stack) for _ in range(per_key)]
        assert others.count(None) == per_tenant - per_key and set(others) <= {None, 1013}, others
    # closed sockets are counted no more
    with contextlib.ExitStack() as stack:
        assert _open(client, key, stack) is None


def test_connection_init_is_charged_and_a_refused_key_opens_nothing(client: TestClient) -> None:
    key, _ = _key(client, "pro", rate_limit=3)
    with contextlib.ExitStack() as stack:
        outcomes = [_open(client, key, stack) for _ in range(5)]
    assert outcomes == [None, None, None, 1013, 1013], outcomes


def test_pings_are_not_a_free_flood(client: TestClient) -> None:
    key, _ = _key(client, "pro")
    with contextlib.ExitStack() as stack:
        ws = stack.enter_context(client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]))
        ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
        assert ws.receive_json() == {"type": "connection_ack"}
        for _ in range(200):
            ws.send_json({"type": "ping"})
        pongs = 0
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                assert ws.receive_json() == {"type": "pong"}
                pongs += 1
        assert closed.value.code == 1008 and pongs <= PING_BURST, pongs


def test_sockets_of_a_key_over_its_limits_close_after_the_grace_period() -> None:
    with app_client(ws_over_limit_grace=0.5) as strict:
        key, _ = _key(strict, "pro", rate_limit=3)
        with socket(strict, key) as ws:  # connection_init: 1 of 3
            assert not isinstance(ws, Outcome)
            assert [ws.run("{ __typename }").code for _ in range(3)] == [None, None, "budget_exceeded"]
            started = time.monotonic()
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.ws.receive_json()  # nothing sent: the grace period ends and the socket closes
            assert closed.value.code == 1013 and time.monotonic() - started < 5


# -- 4. the cost follows the work ---------------------------------------------------------------


def thirty(offset: float = 0.0) -> str:
    """The issue's document: thirty aliases of the largest leaderboard, each with another minScore."""
    coins = "count coins { coinId symbol name score }"
    aliases = (f"a{i}: insiderSelling(limit: 500, minScore: {i / 100 + offset}) {{ {coins} }}" for i in range(30))
    return "{ " + " ".join(aliases) + " }"


THIRTY = thirty()


def test_the_cost_counts_every_field_of_every_alias(client: TestClient) -> None:
    from gql.cost import FIELDS_PER_POINT, ROOT_QUERY_FIELDS

    key, _ = new_key(client, ["signals:read"])
    headers = {"Authorization": f"Bearer {key}"}
    first = client.post("/graphql", json={"query": THIRTY}, headers=headers)
    assert first.status_code == 200, first.text
    # per alias: the root field, count, coins, and 500 coins x 4 leaves (was 16: leaves were free)
    fields = 30 * (ROOT_QUERY_FIELDS + 1 + 1 + 500 + 500 * 4)
    assert first.json()["extensions"]["cost"]["requested"] == -(-fields // FIELDS_PER_POINT)
    # answered from the response cache the second time, and charged the same
    again = client.post("/graphql", json={"query": THIRTY}, headers=headers)
    assert again.json()["extensions"]["cost"]["requested"] == first.json()["extensions"]["cost"]["requested"]
    one = "{ insiderSelling(limit: 500) { coins { coinId symbol name score } } }"
    single = client.post("/graphql", json={"query": one}, headers=headers).json()["extensions"]["cost"]
    assert single["requested"] == -(-(ROOT_QUERY_FIELDS + 1 + 500 + 2000) // FIELDS_PER_POINT)


def test_aliases_of_the_leaderboard_share_one_store_query(client: TestClient) -> None:
    key, _ = new_key(client, ["signals:read"])
    runs = services(client).runs
    calls = 0
    original = runs.leaderboard

    async def counted(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return await original(*args, **kwargs)

    runs.leaderboard = counted
    try:
        response = client.post(
            "/graphql",
            json={"query": thirty(0.001)},  # not the cost test's document (the response cache holds that)
            headers={"Authorization": f"Bearer {key}"},
        )
    finally:
        runs.leaderboard = original
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    assert calls == 1, calls  # one query per request, sliced per alias (was one per alias)
    counts = [body["data"][f"a{i}"]["count"] for i in range(30)]
    assert counts == sorted(counts, reverse=True) and counts[0] >= counts[-1]
    for i in range(30):
        coins = body["data"][f"a{i}"]["coins"]
        assert all(c["score"] >= i / 100 + 0.001 for c in coins) and len(coins) == counts[i]


async def test_heavy_steps_take_turns_and_cheap_ones_do_not_wait() -> None:
    """Two expensive executions never run in the same turn of the event loop (each takes the gate
    after a turn), so a probe between them is answered; a cheap one never waits for the gate."""
    import asyncio

    from gql.heavy import HEAVY_COST, HeavyGate

    gate = HeavyGate()
    order: list[str] = []

    async def heavy(name: str) -> None:
        async with gate.turn(HEAVY_COST):
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            order.append(f"{name} out")

    async def cheap() -> None:
        async with gate.turn(HEAVY_COST - 1):
            order.append("cheap")

    async def probe() -> None:
        await asyncio.sleep(0)
        order.append("probe")

    await asyncio.gather(heavy("a"), heavy("b"), cheap(), probe())
    assert order.index("a out") < order.index("b in")  # one at a time
    assert order.index("cheap") < order.index("a out") and order.index("probe") < order.index("a out")


def test_a_subscription_refused_for_the_limits_starts_the_grace_period_too() -> None:
    from datetime import timedelta

    with app_client(ws_over_limit_grace=0.5) as strict:
        key, _ = _key(strict, "pro", rate_limit=3)  # connection_init, subscribe, one push
        subscription = "subscription { scoreUpdates(minScore: 0) { count } }"
        with strict.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
            assert ws.receive_json() == {"type": "connection_ack"}
            ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": subscription}})
            updates = services(strict).updates
            deadline = time.monotonic() + 10
            while updates.subscribers != 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            cycle, runs = services(strict).cycle, services(strict).runs
            for _ in range(2):  # the first push is the third request; the second is over the limit
                run = strict.portal.call(runs.latest_succeeded)
                assert strict.portal.call(cycle.run_once, run["at"] + timedelta(minutes=30)).status == "succeeded"
                message = ws.receive_json()
            assert message["payload"]["errors"][0]["extensions"]["code"] == "rate_limited"
            with pytest.raises(WebSocketDisconnect) as closed:
                while True:  # the subscription's complete, then the close when the grace period ends
                    ws.receive_json()
            assert closed.value.code == 1013
