"""The webhook collections (indexes in ``store.collections``):

- ``webhook_endpoints``: one document per endpoint (``endpoint_id`` unique), its tenant, URL,
  events and filters, state (``active | paused | disabled``), the salts its secrets derive from;
- ``webhook_deliveries``: one document per (endpoint, ``webhook-id``), unique: the payload, status
  (``pending | delivered | failed``), attempts made, when the next is due (a claimed delivery's
  ``next_at`` is pushed a lease ahead, so a crashed sender's work becomes due again); kept 30 days;
- ``webhook_attempts``: one document per attempt (status, latency, response code, error), kept 7
  days by a TTL index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError

__all__ = ["WebhookStore"]

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


class WebhookStore:
    def __init__(self, db: Any) -> None:
        self.endpoints = db["webhook_endpoints"]
        self.deliveries = db["webhook_deliveries"]
        self.attempts = db["webhook_attempts"]
        self.runs = db["runs"]
        self.tenants = db["tenants"]

    async def endpoint(self, endpoint_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.endpoints.find_one({"endpoint_id": endpoint_id}, {"_id": 0})
        return doc

    async def tenant_endpoints(self, tenant_id: str) -> list[dict[str, Any]]:
        cursor = self.endpoints.find({"tenant_id": tenant_id}, {"_id": 0}).sort([("created_at", ASCENDING)])
        docs: list[dict[str, Any]] = await cursor.to_list()
        return docs

    async def count_endpoints(self, tenant_id: str) -> int:
        return int(await self.endpoints.count_documents({"tenant_id": tenant_id}))

    async def active_endpoints(self) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = await self.endpoints.find({"state": "active"}, {"_id": 0}).to_list()
        return docs

    async def update_endpoint(self, endpoint_id: str, changes: Mapping[str, Any]) -> dict[str, Any] | None:
        await self.endpoints.update_one({"endpoint_id": endpoint_id}, {"$set": dict(changes)})
        return await self.endpoint(endpoint_id)

    async def enqueue(self, deliveries: Sequence[dict[str, Any]]) -> int:
        """Insert deliveries; one already stored (same endpoint and ``webhook-id``) is skipped."""
        if not deliveries:
            return 0
        try:
            result = await self.deliveries.insert_many([dict(d) for d in deliveries], ordered=False)
            return len(result.inserted_ids)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise
            return int(exc.details.get("nInserted", 0))

    async def pending_outboxes(self, limit: int = 20) -> list[dict[str, Any]]:
        cursor = self.runs.find({"outbox_pending": True}, {"_id": 0}).sort([("finished_at", ASCENDING)]).limit(limit)
        docs: list[dict[str, Any]] = await cursor.to_list()
        return docs

    async def clear_outbox(self, run_id: str) -> None:
        await self.runs.update_one({"run_id": run_id}, {"$unset": {"outbox_pending": ""}})

    async def due_endpoints(self, now: datetime, limit: int) -> list[str]:
        """Endpoints with a delivery due (at most ``limit``)."""
        ids = await self.deliveries.distinct("endpoint_id", {"status": PENDING, "next_at": {"$lte": now}})
        return [str(i) for i in ids[:limit]]

    async def claim(
        self, endpoint_id: str, now: datetime, lease_until: datetime, token: str, limit: int
    ) -> list[dict[str, Any]]:
        """Take up to ``limit`` of an endpoint's due deliveries, oldest first, for one attempt
        each: their ``next_at`` moves to ``lease_until`` (no other pass takes them before) and
        they carry ``token``; returns them."""
        due = {"endpoint_id": endpoint_id, "status": PENDING, "next_at": {"$lte": now}}
        found = (
            await self.deliveries.find(due, {"delivery_id": 1, "_id": 0})
            .sort([("created_at", ASCENDING)])
            .limit(limit)
            .to_list()
        )
        if not found:
            return []
        ids = [d["delivery_id"] for d in found]
        await self.deliveries.update_many(
            {**due, "delivery_id": {"$in": ids}}, {"$set": {"next_at": lease_until, "claim": token}}
        )
        cursor = self.deliveries.find({"delivery_id": {"$in": ids}, "claim": token}, {"_id": 0})
        docs: list[dict[str, Any]] = await cursor.sort([("created_at", ASCENDING)]).to_list()
        return docs

    async def settle(self, delivery_id: str, changes: Mapping[str, Any], attempt: Mapping[str, Any]) -> None:
        await self.attempts.insert_one(dict(attempt))
        await self.deliveries.update_one(
            {"delivery_id": delivery_id, "status": PENDING}, {"$set": dict(changes), "$inc": {"attempts": 1}}
        )

    async def recent_deliveries(self, endpoint_id: str, limit: int) -> list[dict[str, Any]]:
        cursor = (
            self.deliveries.find({"endpoint_id": endpoint_id}, {"_id": 0})
            .sort([("created_at", DESCENDING)])
            .limit(limit)
        )
        docs: list[dict[str, Any]] = await cursor.to_list()
        return docs

    async def recent_attempts(self, endpoint_id: str, limit: int) -> list[dict[str, Any]]:
        cursor = self.attempts.find({"endpoint_id": endpoint_id}, {"_id": 0}).sort([("at", DESCENDING)]).limit(limit)
        docs: list[dict[str, Any]] = await cursor.to_list()
        return docs
