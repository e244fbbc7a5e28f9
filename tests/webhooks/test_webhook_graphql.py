"""The GraphQL operations: the scope, tenant isolation, and bad input on every new argument as
a clear error with a code (never an internal error)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import ApiClient
from tests.webhooks.receiver import gql

CREATE = """mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { secret endpoint { id tenantId } }
}"""
LIST = "{ webhookEndpoints { id url state } }"


async def key_for(api: ApiClient, scopes: list[str], plan: str = "pro") -> str:
    keys = api.services.keys
    tenant = await keys.create_tenant(None, "t", plan)
    issued = await keys.issue(tenant["tenant_id"], "k", scopes)
    return str(issued.key)


def code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0]["extensions"].get("code") if errors and errors[0].get("extensions") else None


async def test_the_scope_is_needed_and_tenants_are_isolated(api: ApiClient) -> None:
    reader = await key_for(api, ["signals:read", "keys:manage"])
    assert code(await gql(api, reader, LIST, {})) == "insufficient_scope"
    alice = await key_for(api, ["webhooks:manage", "keys:manage"])
    bob = await key_for(api, ["webhooks:manage"])
    made = await gql(api, alice, CREATE, {"input": {"url": "https://a.example/h", "events": ["RUN_COMPLETED"]}})
    endpoint_id = made["data"]["createWebhookEndpoint"]["endpoint"]["id"]
    assert [e["id"] for e in (await gql(api, alice, LIST, {}))["data"]["webhookEndpoints"]] == [endpoint_id]
    assert (await gql(api, bob, LIST, {}))["data"]["webhookEndpoints"] == []
    for document in (
        "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }",
        "mutation($id: ID!) { pauseWebhookEndpoint(id: $id) { id } }",
        "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }",
        "mutation($id: ID!) { sendTestWebhook(endpointId: $id) { ok } }",
        'mutation($id: ID!) { replayWebhookDeliveries(endpointId: $id, since: "2026-12-07T00:00:00Z") }',
        "query($id: ID!) { webhookEndpoint(id: $id) { id } }",
    ):
        assert code(await gql(api, bob, document, {"id": endpoint_id})) == "not_found", document
    # the plan shows the webhook limits
    tenants = await gql(api, alice, "{ tenants { webhookEndpointsLimit webhookDeliveriesPerMinute } }", {})
    assert tenants["data"]["tenants"] == [{"webhookEndpointsLimit": 20, "webhookDeliveriesPerMinute": 600}]


@pytest.mark.parametrize(
    ("document", "variables", "expected"),
    [
        (CREATE, {"input": {"url": "ftp://a.example/h", "events": ["COIN_LISTED"]}}, "parameter_invalid"),
        (CREATE, {"input": {"url": "https://a.example/h", "events": []}}, "parameter_invalid"),
        (CREATE, {"input": {"url": "https://a.example/h", "events": ["COIN_SCORE_CROSSED"]}}, "parameter_invalid"),
        (CREATE, {"input": {"url": "https://a.example/h", "events": ["NOPE"]}}, None),  # variable validation
        (
            CREATE,
            {"input": {"url": "https://a.example/h", "events": ["COIN_LISTED"], "minScore": 99}},
            "parameter_invalid",
        ),
        (
            CREATE,
            {"input": {"url": "https://a.example/h", "events": ["COIN_LISTED"], "description": "x" * 500}},
            "parameter_invalid",
        ),
        (
            'mutation { updateWebhookEndpoint(id: "we_missing", input: {url: "https://b.example"}) { id } }',
            {},
            "not_found",
        ),
        ('mutation { replayWebhookDeliveries(endpointId: "we_x", since: "not a date") }', {}, None),
        ('{ webhookEndpoint(id: "we_x") { deliveries(first: 1000) { id } } }', {}, "not_found"),
    ],
)
async def test_bad_input_is_a_clear_error(
    api: ApiClient, document: str, variables: dict[str, Any], expected: str | None
) -> None:
    key = await key_for(api, ["webhooks:manage"])
    body = await gql(api, key, document, variables)
    assert body.get("errors"), body
    assert code(body) != "internal_error"
    message = body["errors"][0]["message"]
    assert "unexpected" not in message.lower()
    if expected is not None:
        assert code(body) == expected, body


async def test_deliveries_first_is_bounded(api: ApiClient) -> None:
    key = await key_for(api, ["webhooks:manage"])
    made = await gql(api, key, CREATE, {"input": {"url": "https://a.example/h", "events": ["RUN_COMPLETED"]}})
    endpoint_id = made["data"]["createWebhookEndpoint"]["endpoint"]["id"]
    query = "query($id: ID!, $n: Int!) { webhookEndpoint(id: $id) { deliveries(first: $n) { id } } }"
    body = await gql(api, key, query, {"id": endpoint_id, "n": 1000})
    assert code(body) == "parameter_invalid" and body["errors"][0]["extensions"]["param"] == "first"
