"""Helpers for the GraphQL tests (``tests.gql.helpers``): post a document with a key and read the JSON answer."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers import ApiClient


async def gql(
    api: ApiClient, query: str, variables: dict[str, Any] | None = None, *, key: str | None = "read", **kwargs: Any
) -> httpx.Response:
    """POST ``query``; ``key`` is "read", "admin", a literal key, or None for no header."""
    headers = {}
    if key is not None:
        token = {"read": api.read_key, "admin": api.admin_key}.get(key, key)
        headers["Authorization"] = f"Bearer {token}"
    return await api.http.post("/graphql", json={"query": query, "variables": variables}, headers=headers, **kwargs)


async def data(api: ApiClient, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    response = await gql(api, query, variables, **kwargs)
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body["errors"]
    return body["data"]


async def issue_key(api: ApiClient, scopes: list[str], *, rate_limit: int | None = None) -> str:
    """A new tenant with one key holding ``scopes`` (through the admin mutations)."""
    tenant = await data(
        api,
        """mutation($limit: Int) { createTenant(name: "t", plan: "pro",
        rateLimitPerMinute: $limit) { id } }""",
        {"limit": rate_limit},
        key="admin",
    )
    issued = await data(
        api,
        """mutation($t: ID!, $s: [String!]!) {
        issueApiKey(tenantId: $t, name: "k", scopes: $s) { key } }""",
        {"t": tenant["createTenant"]["id"], "s": scopes},
        key="admin",
    )
    return str(issued["issueApiKey"]["key"])
