"""One admission for every transport (issue 20 #1): a rule added once, where the app is built, is
enforced on REST, GraphQL over HTTP GET and POST, and on a graphql-transport-ws socket, both when
the socket opens and before each of its operations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gql.admission import Transport
from gql.errors import ApiError
from tenants.principal import Principal
from tests.gql.wsclient import Outcome, TestClient, app_client, call, services, socket

SIGNAL = "{ signal { modelVersion } }"


class Suspended:
    """A rule: the keys of suspended tenants are refused (403 ``tenant_suspended``), on any transport."""

    def __init__(self) -> None:
        self.tenants: set[str] = set()
        self.seen: set[str] = set()

    def __call__(self, principal: Principal, transport: Transport) -> None:
        self.seen.add(transport)
        if principal.tenant_id in self.tenants:
            raise ApiError(403, "tenant_suspended", "this tenant is suspended")


@pytest.fixture(scope="module")
def rule() -> Suspended:
    return Suspended()


@pytest.fixture(scope="module")
def client(rule: Suspended) -> Iterator[TestClient]:
    with app_client(rules=[rule]) as client:
        yield client


def tenant_key(client: TestClient) -> tuple[str, str]:
    """(key, tenant id) of a new tenant's ``signals:read`` key."""
    keys = services(client).keys

    async def go() -> tuple[str, str]:
        tenant = await keys.create_tenant(None, "t", "pro")
        issued = await keys.issue(tenant["tenant_id"], "k", ["signals:read"])
        return issued.key, str(tenant["tenant_id"])

    return client.portal.call(go)


def test_a_rule_added_once_applies_to_every_transport(client: TestClient, rule: Suspended) -> None:
    key, tenant = tenant_key(client)
    auth = {"Authorization": f"Bearer {key}"}
    # served everywhere while the tenant is in good standing
    assert client.get("/v1/insider-selling/data?limit=1", headers=auth).status_code == 200
    assert client.get("/v1/insider-selling/track-record", headers=auth).status_code == 200
    for transport in ("GET", "POST", "WS"):
        assert call(client, transport, key, SIGNAL).code is None, transport
    assert rule.seen == {"REST", "GET", "POST", "WS"}

    with socket(client, key) as open_socket:  # a socket opened before the suspension
        assert not isinstance(open_socket, Outcome)
        rule.tenants.add(tenant)

        for path in ("/v1/insider-selling/data?limit=1", "/v1/insider-selling/track-record"):
            response = client.get(path, headers=auth)
            assert response.status_code == 403, path
            assert response.json()["error"]["code"] == "tenant_suspended"
            assert response.json()["error"]["type"] == "permission_error"
        for transport in ("GET", "POST"):
            outcome = call(client, transport, key, SIGNAL)
            assert (outcome.status, outcome.code) == (403, "tenant_suspended"), outcome
        # the open socket's next operation is refused; the socket serves on for other work
        assert open_socket.run(SIGNAL).code == "tenant_suspended"
    # a new socket is refused when it opens (4403, as for any key that may not be used)
    refused = call(client, "WS", key, SIGNAL)
    assert refused.closed == 4403, refused


def test_a_rule_does_not_touch_other_tenants(client: TestClient, rule: Suspended) -> None:
    key, _ = tenant_key(client)
    for transport in ("GET", "POST", "WS"):
        assert call(client, transport, key, SIGNAL).code is None, transport
    response = client.get("/v1/insider-selling/data?limit=1", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
