"""Generated abuse, bounded in time: schemathesis against ``/v1/openapi.json`` through the ASGI app
with every check, and hypothesis-graphql queries and mutations from the served schema with a read,
a manager and an admin key. No 5xx, no answer slower than 1 s, no key or hash in any body or log
line. Each suite prints its case count (``pytest -s``)."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gql.wsclient import TestClient, app_client, new_key

SLOW = 1.0
#: A full key (the public key id alone is fine) or an argon2 hash.
SECRET = re.compile(r"sk_live_[0-9A-Za-z]{20,}|\$argon2id?\$")


def profile(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )


class Secrets(logging.Handler):
    """Collects every log line that carries a key or a hash, formatted as the service writes them."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        from insider_selling.logs import JsonFormatter

        self.setFormatter(JsonFormatter())
        self.leaks: list[str] = []
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        if SECRET.search(line):
            self.leaks.append(line)
        if record.levelno >= logging.ERROR:
            self.errors.append(line)


@pytest.fixture
def log_lines() -> Iterator[Secrets]:
    handler = Secrets()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def check_answer(status: int, body: str, elapsed: float, keys: list[str], what: str) -> None:
    assert status < 500, (what, status, body[:500])
    assert elapsed < SLOW, (what, elapsed)
    for key in keys:
        assert key not in body, what
    assert "$argon2" not in body, what


# -- schemathesis: REST ------------------------------------------------------------------------


def test_schemathesis_rest_every_check(log_lines: Secrets) -> None:
    import schemathesis
    from schemathesis.checks import CHECKS, load_all_checks
    from schemathesis.generation import GenerationMode
    from schemathesis.python import asgi

    from ingest.demo import DemoSource
    from insider_selling.app import build_app
    from tests.helpers import SMALL_DEMO, make_settings

    app = build_app(make_settings(), source=DemoSource(SMALL_DEMO), run_scheduler=False, announce=lambda _: None)
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", app)  # starts the app's lifespan
    with asgi.get_client(app) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the app did not get ready"
            time.sleep(0.05)
    admin, read = app.state.bootstrap
    load_all_checks()
    checks = CHECKS.get_all()
    past_checks = [c for c in checks if c.__name__ != "positive_data_acceptance"]
    assert len(past_checks) == len(checks) - 1
    cases = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @profile(250)
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                nonlocal cases
                cases += 1
                started = time.perf_counter()
                # A valid key, unless this negative case left Authorization out on purpose (adding it
                # back would turn the case into a valid request that the negative check then flags).
                sent = {name.lower() for name in (case.headers or {})}
                valid = mode is GenerationMode.POSITIVE or "authorization" in sent  # noqa: B023 (run() runs now)
                auth = {"Authorization": f"Bearer {admin.key}"} if valid else None
                # which past times are still stored (retention) is not a thing OpenAPI can state: a
                # schema-valid as_of before the first stored run is a documented 400 (before_retention)
                past = "as_of" in (case.query or {})
                response = case.call_and_validate(headers=auth, checks=past_checks if past else checks)
                check_answer(
                    response.status_code,
                    response.text,
                    time.perf_counter() - started,
                    [admin.key, read.key],
                    f"{case.method} {case.formatted_path}",
                )

            run()
    print(f"schemathesis: {cases} cases, {len(checks)} checks each")
    assert cases >= 400
    assert not log_lines.leaks, log_lines.leaks[:3]


# -- hypothesis-graphql: GraphQL ---------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with app_client() as client:
        yield client


def _served_schema(client: TestClient, key: str) -> Any:
    from graphql import build_client_schema, get_introspection_query

    response = client.post(
        "/graphql", json={"query": get_introspection_query()}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text
    return build_client_schema(response.json()["data"])


def _datetimes() -> st.SearchStrategy[Any]:
    from graphql import StringValueNode

    good = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
    bad = st.sampled_from(["yesterday", "2026-04-01T00:00:00", "0000-01-01T00:00:00Z", "", "9999-12-31T23:59:59-01:00"])
    return st.one_of(good, bad, st.text(max_size=50)).map(lambda s: StringValueNode(value=s))


@pytest.mark.parametrize("kind", ["query", "mutation"])
def test_generated_graphql_documents(client: TestClient, log_lines: Secrets, kind: str) -> None:
    from hypothesis_graphql import mutations, queries

    admin, read = client.app.state.bootstrap  # type: ignore[attr-defined]
    manager, _ = new_key(client, ["keys:manage"])
    reader, _ = new_key(client, ["signals:read"])
    keys = {"admin": admin.key, "manager": manager, "read": reader, "demo": read.key}
    schema = _served_schema(client, admin.key)
    strategy = (queries if kind == "query" else mutations)(schema, custom_scalars={"DateTime": _datetimes()})
    cases = 0

    @profile(250)
    @given(document=strategy, who=st.sampled_from(["admin", "manager", "read"]))
    def run(document: str, who: str) -> None:
        nonlocal cases
        cases += 1
        started = time.perf_counter()
        response = client.post("/graphql", json={"query": document}, headers={"Authorization": f"Bearer {keys[who]}"})
        check_answer(
            response.status_code,
            response.text,
            time.perf_counter() - started,
            [keys["admin"], keys["manager"], keys["read"], keys["demo"]],
            document,
        )

    run()
    print(f"hypothesis-graphql {kind}: {cases} documents")
    assert cases >= 200
    assert not log_lines.leaks, log_lines.leaks[:3]
    assert not log_lines.errors, log_lines.errors[:3]


# -- issue 17: revalidation and deep JSON, generated -------------------------------------------

#: Levels of nesting the generated variables reach (the bound is gql.limits.MAX_JSON_DEPTH).
DEEP = st.integers(min_value=33, max_value=1000)


def _exhausted_key(client: TestClient) -> str:
    """A key whose tenant has spent its month (one request of a one-request quota)."""
    services = client.app.state.services  # type: ignore[attr-defined]

    async def go() -> str:
        tenant = await services.keys.create_tenant(None, "spent", "pro", quota_per_month=1)
        return str((await services.keys.issue(tenant["tenant_id"], "k", ["signals:read"])).key)

    key = client.portal.call(go)
    assert client.get("/v1/insider-selling/data", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    return key


def test_schemathesis_rest_revalidation(client: TestClient) -> None:
    """schemathesis' valid REST requests, each sent again with ``If-None-Match`` (``*``, a stale tag,
    the current tag, junk) by a key within its limits and by an exhausted one: a 304 only for the
    current tag and a key that may spend, the refusal for the exhausted key (without the tag), a
    full answer for ``*``; never a 5xx."""
    import schemathesis
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_dict(client.get("/v1/openapi.json").json())
    operation = next(r.ok() for r in schema.get_all_operations() if r.ok().method.upper() == "GET")
    _, read = client.app.state.bootstrap  # type: ignore[attr-defined]
    good, spent = read.key, _exhausted_key(client)
    cases = 0

    @profile(60)
    @given(
        case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        which=st.sampled_from(["*", "stale", "current", "junk", "list"]),
        junk=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    )
    def run(case: Any, which: str, junk: str) -> None:
        nonlocal cases
        cases += 1
        params = {k: v for k, v in (case.query or {}).items() if k in ("limit", "min_score")}
        fresh = client.get("/v1/insider-selling/data", params=params, headers={"Authorization": f"Bearer {good}"})
        if fresh.status_code != 200:
            assert fresh.status_code < 500
            return
        etag = fresh.headers["ETag"]
        value = {
            "*": "*",
            "stale": 'W/"run_old-1-0.0"',
            "current": etag,
            "junk": junk,
            "list": f'"a", {etag}, *',
        }[which]
        for key in (good, spent):
            started = time.perf_counter()
            response = client.get(
                "/v1/insider-selling/data",
                params=params,
                headers={"Authorization": f"Bearer {key}", "If-None-Match": value},
            )
            check_answer(response.status_code, response.text, time.perf_counter() - started, [good, spent], value)
            if key == spent:
                assert response.status_code == 429 and "ETag" not in response.headers, (which, response.status_code)
            elif which in ("current", "list"):
                assert response.status_code == 304 and "RateLimit-Remaining" in response.headers
            else:
                assert response.status_code == 200 and response.json()["data"] == fresh.json()["data"], which

    run()
    print(f"schemathesis revalidation: {cases} cases")
    assert cases >= 50


def test_generated_graphql_revalidation_and_deep_variables(client: TestClient) -> None:
    """hypothesis-graphql queries sent by GET with ``If-None-Match`` (``*``, stale, current) by a
    key within its limits and an exhausted one, and by POST with variables nested past the bound."""
    from hypothesis_graphql import queries

    admin, read = client.app.state.bootstrap  # type: ignore[attr-defined]
    schema = _served_schema(client, admin.key)
    good, spent = read.key, _exhausted_key(client)
    cases = 0

    @profile(120)
    @given(
        document=queries(
            schema, fields=["insiderSelling", "signal", "coin"], custom_scalars={"DateTime": _datetimes()}
        ),
        depth=DEEP,
        which=st.sampled_from(["*", "stale", "current"]),
    )
    def run(document: str, depth: int, which: str) -> None:
        nonlocal cases
        cases += 1
        headers = {"Authorization": f"Bearer {good}"}
        first = client.get("/graphql", params={"query": document}, headers=headers)
        assert first.status_code < 500, (document, first.text[:300])
        etag = first.headers.get("ETag")
        if etag is not None:
            value = {"*": "*", "stale": 'W/"run_old-0"', "current": etag}[which]
            again = client.get("/graphql", params={"query": document}, headers={**headers, "If-None-Match": value})
            assert again.status_code == (304 if which == "current" else 200), (which, again.status_code)
            refused = client.get(
                "/graphql",
                params={"query": document},
                headers={"Authorization": f"Bearer {spent}", "If-None-Match": value},
            )
            assert refused.status_code == 429 and "ETag" not in refused.headers
        deep = "[" * depth + "]" * depth
        started = time.perf_counter()
        posted = client.post(
            "/graphql",
            content='{"query": ' + json.dumps(document) + ', "variables": {"v": ' + deep + "}}",
            headers={**headers, "Content-Type": "application/json"},
        )
        check_answer(posted.status_code, posted.text, time.perf_counter() - started, [good, spent], document)
        assert posted.status_code == 400, posted.text[:300]
        assert posted.json()["errors"][0]["extensions"]["code"] == "bad_request"

    run()
    print(f"hypothesis-graphql revalidation and deep variables: {cases} documents")
    assert cases >= 100
