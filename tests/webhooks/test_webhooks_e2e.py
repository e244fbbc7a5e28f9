"""End to end: an endpoint created over GraphQL, a scoring run, and a real receiver on 127.0.0.1
that verifies every signature with ``standardwebhooks`` and refuses the first three attempts of
each message: every event still arrives, and is acknowledged exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from tests.helpers import make_settings, start_app
from tests.webhooks.receiver import Receiver, gql, wait_for

CREATE = """mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { secret endpoint { id state events threshold } }
}"""
DELIVERIES = (
    """query($id: ID!) { webhookEndpoint(id: $id) { deliveries(first: 100) { webhookId type status attempts } } }"""
)


async def test_a_run_reaches_a_failing_receiver_signed_and_exactly_once(receiver: Receiver) -> None:
    receiver.answer = lambda _id, attempt: 503 if attempt <= 3 else 204
    settings = make_settings(
        webhook_allow_http=True,
        webhook_allow_private=True,
        webhook_retry_schedule=(0.05, 0.05, 0.05, 0.05, 0.05),
        webhook_poll_seconds=0.05,
    )
    async for api in start_app(settings, run_scheduler=True, prime=False):
        created = await gql(
            api,
            api.admin_key,
            CREATE,
            {"input": {"url": receiver.url, "events": ["COIN_LISTED", "COIN_SCORE_CROSSED"], "threshold": 2.0}},
        )
        assert "errors" not in created, created
        endpoint = created["data"]["createWebhookEndpoint"]
        assert endpoint["secret"].startswith("whsec_") and endpoint["endpoint"]["state"] == "ACTIVE"
        receiver.secrets.append(endpoint["secret"])
        endpoint_id = endpoint["endpoint"]["id"]

        result = await api.services.cycle.prime(datetime.now(UTC))
        assert result.status == "succeeded" and result.listed > 0
        deliveries = api.services.store.db["webhook_deliveries"]

        async def all_delivered(deliveries: Any = deliveries, endpoint_id: str = endpoint_id) -> bool:
            docs = await deliveries.find({"endpoint_id": endpoint_id}).to_list()
            return bool(docs) and all(d["status"] == "delivered" for d in docs)

        await wait_for(all_delivered)
        await asyncio.sleep(0.3)  # further passes of the dispatcher send nothing again
        stored = await deliveries.find({"endpoint_id": endpoint_id}).to_list()
        types = {d["type"] for d in stored}
        assert {"coin.listed", "coin.score_crossed"} <= types
        assert sum(1 for d in stored if d["type"] == "coin.listed") == result.listed
        assert receiver.bad_signatures == 0
        ids = {d["msg_id"] for d in stored}
        assert set(receiver.acknowledged) == ids
        assert all(count == 1 for count in receiver.acknowledged.values()), receiver.acknowledged
        assert all(receiver.attempts[i] == 4 for i in ids)  # three refusals, then the acknowledgement
        crossed = [r["payload"] for r in receiver.requests if r["payload"]["type"] == "coin.score_crossed"]
        assert all(p["data"]["score"] >= 2.0 > p["data"]["previous_score"] for p in crossed)
        assert all(p["data"]["direction"] == "up" for p in crossed)

        listing = await gql(api, api.admin_key, DELIVERIES, {"id": endpoint_id})
        rows = listing["data"]["webhookEndpoint"]["deliveries"]
        assert rows and all(r["status"] == "delivered" and r["attempts"] == 4 for r in rows)
        attempts = await api.services.store.db["webhook_attempts"].count_documents({"endpoint_id": endpoint_id})
        assert attempts == 4 * len(ids)
