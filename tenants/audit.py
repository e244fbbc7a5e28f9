"""The audit log: one entry per tenant or key event, never a key or a hash.

An entry holds the actor's key id (``None`` for the operator CLI, with ``actor`` saying so), the
action (``tenant.created``, ``key.issued``, ``key.rotated``, ``key.revoked``), the target, the
tenant it belongs to, the time, and a few non-secret details. Entries are listed newest first with
an opaque cursor.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from pymongo import DESCENDING

from tenants.errors import InvalidArgument
from tenants.principal import Principal

__all__ = ["ACTIONS", "AuditLog", "actor_fields"]

ACTIONS = (
    "tenant.created",
    "key.issued",
    "key.rotated",
    "key.revoked",
    # webhooks (the webhooks package): endpoint changes, and the delivery worker disabling one
    "webhook.created",
    "webhook.updated",
    "webhook.paused",
    "webhook.resumed",
    "webhook.deleted",
    "webhook.secret_rotated",
    "webhook.disabled",
)
MAX_PAGE = 200


def actor_fields(actor: Principal | None) -> dict[str, Any]:
    if actor is None:
        return {"actor": "operator-cli", "actor_key_id": None, "actor_tenant_id": None}
    return {"actor": "api-key", "actor_key_id": actor.key_id, "actor_tenant_id": actor.tenant_id}


def encode_cursor(seq: str) -> str:
    return base64.urlsafe_b64encode(seq.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        seq = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        seq = ""
    if len(seq) != 29 or not seq[:20].isdigit():
        raise InvalidArgument("after", "after must be a cursor returned by auditLog")
    return seq


class AuditLog:
    def __init__(self, db: Any) -> None:
        self.entries = db["audit_log"]

    async def record(
        self,
        actor: Principal | None,
        action: str,
        *,
        tenant_id: str,
        target_type: str,
        target_id: str,
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        assert action in ACTIONS
        seq = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
        entry = {
            "event_id": "evt_" + seq.replace("-", ""),
            "seq": seq,
            "at": datetime.now(UTC),
            **actor_fields(actor),
            "action": action,
            "tenant_id": tenant_id,
            "target_type": target_type,
            "target_id": target_id,
            "details": details or {},
        }
        await self.entries.insert_one(dict(entry))
        return entry

    async def page(self, tenant_id: str | None, first: int, after: str | None) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``first`` entries, newest first, after the cursor; and whether more follow."""
        if not 1 <= first <= MAX_PAGE:
            raise InvalidArgument("first", f"first must be from 1 to {MAX_PAGE}")
        query: dict[str, Any] = {}
        if tenant_id is not None:
            query["tenant_id"] = tenant_id
        if after is not None:
            query["seq"] = {"$lt": decode_cursor(after)}
        docs: list[dict[str, Any]] = (
            await self.entries.find(query, {"_id": 0}).sort([("seq", DESCENDING)]).limit(first + 1).to_list()
        )
        return docs[:first], len(docs) > first
