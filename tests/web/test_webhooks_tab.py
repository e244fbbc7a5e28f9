"""The dashboard's Webhooks tab in a real browser: hidden for a key without webhooks:manage; for an
admin key it lists the tenant's endpoints and their deliveries, and "Send test" sends a signed ping
and shows its outcome (here refused before any connection: the URL is loopback, and the server
does not allow private addresses)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.web.helpers import Server, enter_key

CREATE = """mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { endpoint { id } } }"""


def test_the_webhooks_tab(page: Any, server: Server) -> None:
    enter_key(page, server.read_key)
    expect(page.locator("#board tbody tr").first).to_be_visible(timeout=30_000)
    expect(page.locator("#webhooks-tab")).to_be_hidden()
    page.locator("#forget-key").click()

    url = "https://127.0.0.1:9/hooks"
    server.graphql(CREATE, {"input": {"url": url, "events": ["COIN_LISTED", "RUN_COMPLETED"]}}, key=server.admin_key)
    enter_key(page, server.admin_key)
    expect(page.locator("#webhooks-tab")).to_be_visible(timeout=30_000)
    page.locator("#webhooks-tab a").click()
    expect(page.locator("#view-h")).to_have_text("Webhooks")
    section = page.locator("section.webhook-endpoint", has_text=url)
    expect(section).to_be_visible()
    expect(section).to_contain_text("coin.listed, run.completed")
    section.locator("button.webhook-test").click()
    section = page.locator("section.webhook-endpoint", has_text=url)
    expect(section.locator("table.webhook-deliveries tbody tr").first).to_contain_text("webhook.test")
    expect(section.locator("table.webhook-deliveries tbody tr").first).to_contain_text("failed")
