"""Issue 17 #9: request heads are bounded (``INSIDER_MAX_HEAD_BYTES``, ``INSIDER_MAX_HEADERS``) and
an oversized head is a 431 with the JSON error envelope, on every path, before any work."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator

import pytest

from insider_selling.builders import server_options
from insider_selling.settings import SettingsError, load_settings
from tests.gql.wsclient import app_client
from tests.helpers import ApiClient, make_settings, start_app

DATA = "/v1/insider-selling/data"


IN_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")  # the loop read_only_api runs in


@pytest.fixture
def api(read_only_api: ApiClient) -> ApiClient:
    """The module's tests only read: one primed app for all of them (``read_only_api``)."""
    return read_only_api


@pytest.mark.parametrize("path", [DATA, "/graphql", "/healthz", "/", "/docs/methodology", "/nowhere"])
@IN_MODULE_LOOP
async def test_a_1_mb_header_is_a_431(api: ApiClient, path: str) -> None:
    headers = {"Authorization": f"Bearer {api.read_key}", "X-Big": "a" * 1_000_000}
    response = await api.http.get(path, headers=headers)
    assert response.status_code == 431, (path, response.status_code)
    error = response.json()["error"]
    assert error["code"] == "request_header_fields_too_large" and "65536 bytes" in error["message"]
    assert response.headers["X-Request-Id"].startswith("req_")


@IN_MODULE_LOOP
async def test_10_000_headers_are_a_431(api: ApiClient) -> None:
    headers = [("Authorization", f"Bearer {api.read_key}")] + [(f"X-H{i}", "1") for i in range(10_000)]
    response = await api.http.get(DATA, headers=headers)
    assert response.status_code == 431 and "100 headers" in response.json()["error"]["message"]


@IN_MODULE_LOOP
async def test_heads_within_the_bounds_are_served(api: ApiClient) -> None:
    headers = [("Authorization", f"Bearer {api.read_key}")] + [(f"X-H{i}", "v" * 500) for i in range(90)]
    assert (await api.http.get(DATA, headers=headers)).status_code == 200


@pytest.fixture
async def tight() -> AsyncIterator[ApiClient]:
    async for client in start_app(make_settings(max_head_bytes=8192, max_headers=20)):
        yield client


async def test_the_bounds_are_settings(tight: ApiClient) -> None:
    auth = ("Authorization", f"Bearer {tight.read_key}")
    assert (await tight.http.get(DATA, headers=[auth, ("X-A", "a" * 9000)])).status_code == 431
    assert (await tight.http.get(DATA, headers=[auth] + [(f"X-{i}", "1") for i in range(25)])).status_code == 431
    assert (await tight.http.get(DATA, headers=[auth, ("X-A", "a" * 6000)])).status_code == 200
    with pytest.raises(SettingsError, match="INSIDER_MAX_HEAD_BYTES"):
        load_settings(max_head_bytes=10 * 1024 * 1024)


def test_uvicorn_is_told_the_head_bound_through_its_public_option() -> None:
    options = server_options(make_settings(max_head_bytes=32768))
    assert options["h11_max_incomplete_event_size"] == 32768


async def test_a_websocket_with_a_huge_head_is_refused() -> None:
    with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 for its TestClient; httpx works
        warnings.simplefilter("ignore")
        from starlette.testclient import WebSocketDenialResponse

    with app_client() as client:
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            client.websocket_connect(
                "/graphql", headers={"X-Big": "a" * 100_000}, subprotocols=["graphql-transport-ws"]
            ),
        ):
            pass
        assert refused.value.status_code == 431  # the server speaks ASGI's websocket.http.response
        assert refused.value.json()["error"]["code"] == "request_header_fields_too_large"
