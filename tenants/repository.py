"""Tenants and API keys in the document store. Only argon2id hashes of keys are stored."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING

from store import Update, update_each

__all__ = ["TenantRepository"]


def new_tenant_id() -> str:
    return "ten_" + secrets.token_hex(8)


class TenantRepository:
    def __init__(self, db: Any) -> None:
        self.db = db
        self.tenants = db["tenants"]
        self.keys = db["api_keys"]
        self.usage = db["usage"]

    async def create_tenant(
        self, name: str, plan: str, *, limits: dict[str, int] | None = None, tenant_id: str | None = None
    ) -> dict[str, Any]:
        doc = {
            "tenant_id": tenant_id or new_tenant_id(),
            "name": name,
            "plan": plan,
            "limits": limits or {},
            "created_at": datetime.now(UTC),
        }
        await self.tenants.insert_one(doc)
        doc.pop("_id", None)
        return doc

    async def get_tenant(self, tenant_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.tenants.find_one({"tenant_id": tenant_id}, {"_id": 0})
        return doc

    async def list_tenants(self) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = await self.tenants.find({}, {"_id": 0}).sort([("created_at", ASCENDING)]).to_list()
        return docs

    async def count_tenants(self) -> int:
        return int(await self.tenants.count_documents({}))

    async def insert_key(self, doc: dict[str, Any]) -> None:
        await self.keys.insert_one(dict(doc))

    async def get_key(self, key_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.keys.find_one({"key_id": key_id}, {"_id": 0})
        return doc

    async def list_keys(self, tenant_id: str) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = (
            await self.keys.find({"tenant_id": tenant_id}, {"_id": 0, "secret_hash": 0})
            .sort([("created_at", ASCENDING)])
            .to_list()
        )
        return docs

    async def update_key(self, key_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        from pymongo import ReturnDocument

        doc: dict[str, Any] | None = await self.keys.find_one_and_update(
            {"key_id": key_id},
            {"$set": changes},
            {"_id": 0, "secret_hash": 0},
            return_document=ReturnDocument.AFTER,
        )
        return doc

    async def touch_keys(self, last_used: Sequence[tuple[str, datetime]]) -> None:
        """Record ``last_used_at`` for many keys in one batch (never on the request path)."""
        await update_each(
            self.keys, [Update({"key_id": k}, {"$max": {"last_used_at": at}}) for k, at in last_used], ordered=False
        )

    async def add_usage(self, counts: dict[tuple[str, str], int]) -> None:
        """Add request counts per (tenant, month) in one batch."""
        await update_each(
            self.usage,
            [
                Update({"tenant_id": t, "month": m}, {"$inc": {"requests": n}}, upsert=True)
                for (t, m), n in counts.items()
            ],
            ordered=False,
        )

    async def get_usage(self, tenant_id: str, month: str) -> int:
        doc = await self.usage.find_one({"tenant_id": tenant_id, "month": month}, {"_id": 0})
        return int(doc["requests"]) if doc else 0
