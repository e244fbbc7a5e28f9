"""Managing endpoints: the authorization rules and every bound on client input.

A key with ``webhooks:manage`` manages its own tenant's endpoints; ``admin`` any tenant's (it names
the tenant when creating). Another tenant's endpoint is answered exactly like a missing one. The
full secret is returned once (creation, rotation) and never logged; listings show a masked prefix.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tenants.audit import AuditLog
from tenants.plans import limits_for
from tenants.principal import Principal
from webhooks.addresses import Resolver, check_url
from webhooks.config import WebhookConfig
from webhooks.dispatcher import new_delivery
from webhooks.errors import InvalidArgument, NotFound, PermissionDenied, WebhooksDisabled
from webhooks.events import TEST_EVENT, Filters, iso, validate_events
from webhooks.repository import PENDING, WebhookStore
from webhooks.sender import Outcome, Sender
from webhooks.signing import SecretKeeper, masked

__all__ = ["MAX_DESCRIPTION", "MAX_LIST", "CreatedEndpoint", "WebhookService"]

log = logging.getLogger("insider_selling.webhooks")

SCOPE = "webhooks:manage"
MAX_DESCRIPTION = 200
MAX_LIST = 100
MAX_ID = 64
MAX_REPLAY = 10_000
REPLAY_DAYS = 30


@dataclass(frozen=True, slots=True)
class CreatedEndpoint:
    endpoint: dict[str, Any]
    secret: str  # shown once


def _bounded_id(value: str, param: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID:
        raise InvalidArgument(param, f"{param} must be 1 to {MAX_ID} characters")
    return value


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class WebhookService:
    def __init__(self, db: Any, config: WebhookConfig, *, resolver: Resolver | None = None) -> None:
        self.store = WebhookStore(db)
        self.audit = AuditLog(db)
        self.config = config
        self.resolver = resolver
        self.keeper = SecretKeeper(config.server_key) if config.server_key is not None else None

    @property
    def enabled(self) -> bool:
        return self.keeper is not None

    def _keeper(self) -> SecretKeeper:
        if self.keeper is None:
            raise WebhooksDisabled("webhooks are not enabled on this server (the operator sets INSIDER_WEBHOOK_KEY)")
        return self.keeper

    @staticmethod
    def _authorize(actor: Principal | None) -> Principal:
        if actor is None or not actor.has(SCOPE):
            raise PermissionDenied(f"this key lacks the {SCOPE} scope")
        return actor

    async def _tenant_for(self, actor: Principal, tenant_id: str | None) -> dict[str, Any]:
        if tenant_id is not None:
            _bounded_id(tenant_id, "tenantId")
        target = tenant_id or actor.tenant_id
        if target != actor.tenant_id and not actor.is_admin:
            raise NotFound("no such tenant")
        tenant: dict[str, Any] | None = await self.store.tenants.find_one({"tenant_id": target}, {"_id": 0})
        if tenant is None:
            raise NotFound("no such tenant")
        return tenant

    async def _owned(self, actor: Principal, endpoint_id: str) -> dict[str, Any]:
        self._authorize(actor)
        endpoint = await self.store.endpoint(_bounded_id(endpoint_id, "endpointId"))
        if endpoint is None or (endpoint["tenant_id"] != actor.tenant_id and not actor.is_admin):
            raise NotFound("no such webhook endpoint")
        return endpoint

    def _check_url(self, url: str) -> str:
        check_url(url, allow_http=self.config.allow_http)
        return url

    @staticmethod
    def _description(text: str | None) -> str:
        text = text or ""
        if len(text) > MAX_DESCRIPTION or any(ord(ch) < 0x20 for ch in text):
            raise InvalidArgument("description", f"description must be at most {MAX_DESCRIPTION} printable characters")
        return text

    async def create(
        self,
        actor: Principal | None,
        *,
        url: str,
        events: Sequence[str],
        tenant_id: str | None = None,
        description: str | None = None,
        min_score: float | None = None,
        threshold: float | None = None,
        direction: str | None = None,
    ) -> CreatedEndpoint:
        actor = self._authorize(actor)
        keeper = self._keeper()
        wanted = validate_events(list(events))
        filters = Filters.checked(wanted, min_score, threshold, direction)
        self._check_url(url)
        description = self._description(description)
        tenant = await self._tenant_for(actor, tenant_id)
        cap = limits_for(tenant).webhook_endpoints
        if await self.store.count_endpoints(tenant["tenant_id"]) >= cap:
            raise InvalidArgument("url", f"this plan allows {cap} webhook endpoints; delete one first")
        now = datetime.now(UTC)
        endpoint_id = "we_" + secrets.token_hex(10)
        salt = keeper.new_salt()
        doc = {
            "endpoint_id": endpoint_id,
            "tenant_id": tenant["tenant_id"],
            "url": url,
            "description": description,
            "events": wanted,
            "filters": filters.doc(),
            "state": "active",
            "salt": salt,
            "previous_salt": None,
            "previous_until": None,
            "created_at": now,
            "updated_at": now,
            "consecutive_failures": 0,
            "failing_since": None,
            "disabled_at": None,
            "disabled_reason": None,
        }
        await self.store.endpoints.insert_one(dict(doc))
        secret = keeper.secret(endpoint_id, salt)
        await self._audit(actor, "webhook.created", doc, {"url": url, "events": wanted, "secret": masked(secret)})
        return CreatedEndpoint(doc, secret)

    async def list_endpoints(self, actor: Principal | None, tenant_id: str | None = None) -> list[dict[str, Any]]:
        actor = self._authorize(actor)
        tenant = await self._tenant_for(actor, tenant_id)
        return (await self.store.tenant_endpoints(tenant["tenant_id"]))[:MAX_LIST]

    async def get(self, actor: Principal | None, endpoint_id: str) -> dict[str, Any]:
        return await self._owned(self._authorize(actor), endpoint_id)

    async def update(
        self,
        actor: Principal | None,
        endpoint_id: str,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        description: str | None = None,
        min_score: float | None = None,
        threshold: float | None = None,
        direction: str | None = None,
        clear_min_score: bool = False,
    ) -> dict[str, Any]:
        actor = self._authorize(actor)
        endpoint = await self._owned(actor, endpoint_id)
        wanted = validate_events(list(events)) if events is not None else list(endpoint["events"])
        current = Filters.from_doc(endpoint.get("filters"))
        filters = Filters.checked(
            wanted,
            None if clear_min_score else (min_score if min_score is not None else current.min_score),
            threshold if threshold is not None else current.threshold,
            direction if direction is not None else current.direction,
        )
        changes: dict[str, Any] = {"events": wanted, "filters": filters.doc(), "updated_at": datetime.now(UTC)}
        if url is not None:
            changes["url"] = self._check_url(url)
        if description is not None:
            changes["description"] = self._description(description)
        updated = await self.store.update_endpoint(endpoint["endpoint_id"], changes)
        if updated is None:
            raise NotFound("no such webhook endpoint")
        await self._audit(
            actor, "webhook.updated", updated, {"fields": sorted(k for k in changes if k != "updated_at")}
        )
        return updated

    async def set_paused(self, actor: Principal | None, endpoint_id: str, paused: bool) -> dict[str, Any]:
        """Pause (no new events, pending ones held) or resume (also re-enables a disabled one)."""
        actor = self._authorize(actor)
        endpoint = await self._owned(actor, endpoint_id)
        now = datetime.now(UTC)
        changes: dict[str, Any] = {"state": "paused" if paused else "active", "updated_at": now}
        if not paused:
            changes.update(consecutive_failures=0, failing_since=None, disabled_at=None, disabled_reason=None)
            await self.store.deliveries.update_many(
                {"endpoint_id": endpoint["endpoint_id"], "status": PENDING}, {"$set": {"next_at": now}}
            )
        updated = await self.store.update_endpoint(endpoint["endpoint_id"], changes)
        assert updated is not None
        await self._audit(actor, "webhook.paused" if paused else "webhook.resumed", updated, {})
        return updated

    async def delete(self, actor: Principal | None, endpoint_id: str) -> bool:
        actor = self._authorize(actor)
        endpoint = await self._owned(actor, endpoint_id)
        await self.store.endpoints.delete_one({"endpoint_id": endpoint["endpoint_id"]})
        await self.store.deliveries.delete_many({"endpoint_id": endpoint["endpoint_id"], "status": PENDING})
        await self._audit(actor, "webhook.deleted", endpoint, {"url": endpoint["url"]})
        return True

    async def rotate_secret(self, actor: Principal | None, endpoint_id: str) -> CreatedEndpoint:
        """A new secret; the previous one keeps signing (beside it) for the overlap."""
        actor = self._authorize(actor)
        keeper = self._keeper()
        endpoint = await self._owned(actor, endpoint_id)
        now = datetime.now(UTC)
        salt = keeper.new_salt()
        until = now + timedelta(seconds=self.config.secret_overlap_seconds)
        updated = await self.store.update_endpoint(
            endpoint["endpoint_id"],
            {"salt": salt, "previous_salt": endpoint["salt"], "previous_until": until, "updated_at": now},
        )
        assert updated is not None
        secret = keeper.secret(endpoint["endpoint_id"], salt)
        await self._audit(
            actor, "webhook.secret_rotated", updated, {"secret": masked(secret), "overlap_until": iso(until)}
        )
        return CreatedEndpoint(updated, secret)

    async def deliveries(self, actor: Principal | None, endpoint_id: str, first: int) -> list[dict[str, Any]]:
        if not isinstance(first, int) or not 1 <= first <= MAX_LIST:
            raise InvalidArgument("first", f"first must be from 1 to {MAX_LIST}")
        endpoint = await self._owned(self._authorize(actor), endpoint_id)
        return await self.store.recent_deliveries(endpoint["endpoint_id"], first)

    async def attempts(self, actor: Principal | None, endpoint_id: str, first: int) -> list[dict[str, Any]]:
        if not isinstance(first, int) or not 1 <= first <= MAX_LIST:
            raise InvalidArgument("first", f"first must be from 1 to {MAX_LIST}")
        endpoint = await self._owned(self._authorize(actor), endpoint_id)
        return await self.store.recent_attempts(endpoint["endpoint_id"], first)

    async def replay(self, actor: Principal | None, endpoint_id: str, since: datetime) -> int:
        """Queue the endpoint's stored deliveries created at or after ``since`` again (same
        ``webhook-id``, attempts from zero); returns how many (at most :data:`MAX_REPLAY`)."""
        actor = self._authorize(actor)
        endpoint = await self._owned(actor, endpoint_id)
        now = datetime.now(UTC)
        since = _utc(since)
        if since > now or since < now - timedelta(days=REPLAY_DAYS):
            raise InvalidArgument("since", f"since must be within the last {REPLAY_DAYS} days")
        found = (
            await self.store.deliveries.find(
                {"endpoint_id": endpoint["endpoint_id"], "created_at": {"$gte": since}, "type": {"$ne": TEST_EVENT}},
                {"delivery_id": 1, "_id": 0},
            )
            .limit(MAX_REPLAY)
            .to_list()
        )
        ids = [d["delivery_id"] for d in found]
        if ids:
            await self.store.deliveries.update_many(
                {"delivery_id": {"$in": ids}},
                {"$set": {"status": PENDING, "next_at": now, "attempts": 0, "replayed_at": now}},
            )
        log.info("webhook deliveries replayed", extra={"endpoint_id": endpoint["endpoint_id"], "count": len(ids)})
        return len(ids)

    async def send_test(self, actor: Principal | None, endpoint_id: str) -> tuple[dict[str, Any], Outcome]:
        """Send a signed ``webhook.test`` ping now (whatever the endpoint's state) and keep it as
        a delivery with its attempt."""
        actor = self._authorize(actor)
        keeper = self._keeper()
        endpoint = await self._owned(actor, endpoint_id)
        now = datetime.now(UTC)
        msg_id = "msg_" + secrets.token_hex(16)
        payload = {"type": TEST_EVENT, "timestamp": iso(now), "data": {"endpoint_id": endpoint["endpoint_id"]}}
        delivery = new_delivery(endpoint, msg_id, TEST_EVENT, payload, now)
        sender = Sender(self.config, keeper, self.resolver)
        try:
            outcome = await sender.send(endpoint, msg_id, payload)
        finally:
            await sender.aclose()
        delivery.update(
            status="delivered" if outcome.ok else "failed",
            attempts=1,
            last_status_code=outcome.status_code,
            last_error=outcome.error,
            delivered_at=now if outcome.ok else None,
        )
        await self.store.deliveries.insert_one(dict(delivery))
        await self.store.attempts.insert_one(
            {
                "delivery_id": delivery["delivery_id"],
                "endpoint_id": endpoint["endpoint_id"],
                "tenant_id": endpoint["tenant_id"],
                "msg_id": msg_id,
                "type": TEST_EVENT,
                "at": now,
                "status": outcome.status,
                "status_code": outcome.status_code,
                "latency_ms": outcome.latency_ms,
                "error": outcome.error,
                "response": outcome.excerpt,
            }
        )
        return delivery, outcome

    async def _audit(self, actor: Principal, action: str, endpoint: dict[str, Any], details: dict[str, Any]) -> None:
        await self.audit.record(
            actor,
            action,
            tenant_id=endpoint["tenant_id"],
            target_type="webhook_endpoint",
            target_id=endpoint["endpoint_id"],
            details=details,
        )
