"""Bad parameters, bad keys, wrong methods and paths: each gets its 4xx and the error envelope."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.helpers import ApiClient, make_settings, start_app

PATH = "/v1/insider-selling/data"
# One primed app serves the whole module: these tests only read (or add an unrelated tenant).
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api() -> AsyncIterator[ApiClient]:
    async for client in start_app():
        yield client


BAD_PARAMS = [
    ("limit=0", "limit", "parameter_invalid"),
    ("limit=501", "limit", "parameter_invalid"),
    ("limit=-1", "limit", "parameter_invalid"),
    ("limit=abc", "limit", "parameter_invalid"),
    ("limit=1.5", "limit", "parameter_invalid"),
    ("limit=", "limit", "parameter_invalid"),
    ("limit=1e2", "limit", "parameter_invalid"),
    ("limit=99999999999999999999", "limit", "parameter_invalid"),
    ("min_score=-0.1", "min_score", "parameter_invalid"),
    ("min_score=10.01", "min_score", "parameter_invalid"),
    ("min_score=nan", "min_score", "parameter_invalid"),
    ("min_score=NaN", "min_score", "parameter_invalid"),
    ("min_score=inf", "min_score", "parameter_invalid"),
    ("min_score=1e999", "min_score", "parameter_invalid"),
    ("min_score=abc", "min_score", "parameter_invalid"),
    ("min_score=", "min_score", "parameter_invalid"),
    ("min_score=0x1", "min_score", "parameter_invalid"),
    ("limit=5&limit=6", "limit", "parameter_repeated"),
    ("min_score=1&min_score=1", "min_score", "parameter_repeated"),
    ("limt=5", "limt", "parameter_unknown"),
]


def assert_envelope(response, status: int, error_type: str, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "meta"}
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    assert body["meta"]["request_id"] == response.headers["x-request-id"]
    assert set(body["meta"]) == {"request_id", "timestamp", "elapsed_ms"}
    return body


@pytest.mark.parametrize(("query", "param", "code"), BAD_PARAMS)
async def test_bad_parameters_get_400(api: ApiClient, query: str, param: str, code: str) -> None:
    response = await api.http.get(f"{PATH}?{query}", headers={"Authorization": f"Bearer {api.read_key}"})
    body = assert_envelope(response, 400, "invalid_request_error", code)
    assert body["error"]["param"] == param


@pytest.mark.parametrize(
    "query",
    ["limit=1", "limit=500", "min_score=0", "min_score=10", "min_score=4.5", "limit=%2B5", "min_score=.5", "limit=007"],
)
async def test_edge_values_are_accepted(api: ApiClient, query: str) -> None:
    response = await api.http.get(f"{PATH}?{query}", headers={"Authorization": f"Bearer {api.read_key}"})
    assert response.status_code == 200


def _flip_checksum(key: str) -> str:
    last = key[-1]
    return key[:-1] + ("A" if last != "A" else "B")


BAD_AUTH = [
    (None, "missing_api_key"),
    ("", "missing_api_key"),
    ("Basic dXNlcjpwYXNz", "missing_api_key"),
    ("Bearer", "missing_api_key"),
    ("Bearer sk_test_abc", "missing_api_key"),
    ("Bearer sk_live_", "malformed_api_key"),
    ("Bearer sk_live_tooshort", "malformed_api_key"),
    ("Bearer sk_live_" + "!" * 40, "malformed_api_key"),
    ("Bearer sk_live_" + "a" * 41, "malformed_api_key"),
]


@pytest.mark.parametrize(("header", "code"), BAD_AUTH)
async def test_bad_authorization_gets_401(api: ApiClient, header: str | None, code: str) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = await api.http.get(PATH, headers=headers)
    assert_envelope(response, 401, "authentication_error", code)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_mistyped_key_is_rejected_without_a_lookup(api: ApiClient) -> None:
    ops_before = api.services.store.client.ops["api_keys"]
    lookups_before = api.services.authenticator.lookups
    response = await api.http.get(PATH, headers={"Authorization": f"Bearer {_flip_checksum(api.read_key)}"})
    assert_envelope(response, 401, "authentication_error", "malformed_api_key")
    assert api.services.store.client.ops["api_keys"] == ops_before
    assert api.services.authenticator.lookups == lookups_before


async def test_unknown_well_formed_key_gets_401(api: ApiClient) -> None:
    from tenants.keys import generate_key

    response = await api.http.get(PATH, headers={"Authorization": f"Bearer {generate_key().full}"})
    assert_envelope(response, 401, "authentication_error", "invalid_api_key")


async def test_key_without_read_scope_gets_403(api: ApiClient) -> None:
    tenant = await api.services.keys.repo.create_tenant("acme", "pro")
    issued = await api.services.keys.issue(tenant["tenant_id"], "ops", ["keys:manage"])
    response = await api.http.get(PATH, headers={"Authorization": f"Bearer {issued.key}"})
    assert_envelope(response, 403, "permission_error", "insufficient_scope")


async def test_admin_key_reads_the_data(api: ApiClient) -> None:
    response = await api.http.get(PATH, headers={"Authorization": f"Bearer {api.admin_key}"})
    assert response.status_code == 200


async def test_unknown_path_and_wrong_method(api: ApiClient) -> None:
    assert_envelope(await api.http.get("/v1/nope"), 404, "invalid_request_error", "resource_missing")
    response = await api.http.post(PATH, headers={"Authorization": f"Bearer {api.read_key}"})
    assert_envelope(response, 405, "invalid_request_error", "method_not_allowed")
    assert "GET" in response.headers["allow"]


@pytest_asyncio.fixture(loop_scope="module")
async def unprimed() -> AsyncIterator[ApiClient]:
    async for client in start_app(make_settings(), prime=False):
        yield client


async def test_not_ready_until_the_first_run(unprimed: ApiClient) -> None:
    response = await unprimed.http.get(PATH, headers={"Authorization": f"Bearer {unprimed.read_key}"})
    assert_envelope(response, 503, "api_error", "not_ready")
    assert int(response.headers["retry-after"]) >= 1
    ready = await unprimed.http.get("/readyz")
    assert ready.status_code == 503
