"""GraphQL admin operations: tenants, API keys, the audit log and ``viewer``.

``AdminQuery`` and ``AdminMutation`` are plain Strawberry types whose fields the root schema
(``gql/schema.py``) merges into ``Query`` and ``Mutation``. Every resolver reads the caller from
``info.context.principal`` and delegates to :class:`tenants.service.KeyService`, which holds the
authorization rules (``admin`` everything, ``keys:manage`` its own tenant, another tenant answered
exactly like a missing one). Expected failures become GraphQL errors with ``extensions.code``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON
from strawberry.types import Info

from gql.context import Context
from tenants.audit import encode_cursor
from tenants.errors import TenantError
from tenants.plans import limits_for
from tenants.principal import Principal
from tenants.ratelimit import month_window
from tenants.service import key_state, public_key

if TYPE_CHECKING:
    from gql.services import Services

__all__ = ["AdminMutation", "AdminQuery", "ApiKey", "AuditEntry", "IssuedApiKey", "Tenant", "Viewer"]

T = TypeVar("T")


def _context(info: Info[Context, Any]) -> tuple[Principal, Services]:
    info.context.private = True  # tenant-specific: never in a shared response cache
    principal = info.context.principal
    if principal is None:
        raise GraphQLError(
            "authentication required: send 'Authorization: Bearer sk_live_...'", extensions={"code": "unauthenticated"}
        )
    return principal, info.context.services


async def _run(call: Awaitable[T]) -> T:
    """Await a ``KeyService`` call; its expected failures become GraphQL errors with a code."""
    try:
        return await call
    except TenantError as exc:
        extensions: dict[str, Any] = {"code": getattr(exc, "code", "invalid_request")}
        if getattr(exc, "param", None):
            extensions["param"] = exc.param  # type: ignore[attr-defined]
        raise GraphQLError(str(exc), extensions=extensions) from None


@strawberry.enum(description="Where a key is in its life.")
class ApiKeyState(Enum):
    ACTIVE = "active"
    ROTATING = "rotating"  # rotated, still working until graceUntil
    ROTATED = "rotated"  # rotated and past its grace: 401
    REVOKED = "revoked"
    EXPIRED = "expired"


@strawberry.type(description="A customer account: its plan and effective limits.")
class Tenant:
    id: strawberry.ID
    name: str
    plan: str
    rate_limit_per_minute: int = strawberry.field(description="Requests per minute, per key and per tenant.")
    quota_per_month: int = strawberry.field(description="Requests per calendar month (UTC), per tenant.")
    custom_limits: bool = strawberry.field(description="True when the tenant's limits replace its plan's.")
    created_at: datetime
    webhook_endpoints_limit: int = strawberry.field(default=2, description="Webhook endpoints the plan allows.")
    webhook_deliveries_per_minute: int = strawberry.field(
        default=60, description="Webhook deliveries per minute the plan allows (over it, they wait)."
    )

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Tenant:
        limits = limits_for(doc)
        return cls(
            id=strawberry.ID(doc["tenant_id"]),
            name=doc["name"],
            plan=doc["plan"],
            rate_limit_per_minute=limits.per_minute,
            quota_per_month=limits.per_month,
            custom_limits=bool(doc.get("limits")),
            created_at=doc["created_at"],
            webhook_endpoints_limit=limits.webhook_endpoints,
            webhook_deliveries_per_minute=limits.webhook_deliveries_per_minute,
        )


@strawberry.type(description="An API key's public record. The secret and its hash are never shown.")
class ApiKey:
    key_id: strawberry.ID
    tenant_id: strawberry.ID
    name: str
    scopes: list[str]
    state: ApiKeyState
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(
        description="Last authenticated use; written in batches, so up to a few seconds behind."
    )
    expires_at: datetime | None
    revoked_at: datetime | None
    grace_until: datetime | None = strawberry.field(description="After a rotation: when this key stops.")
    replaced_by: strawberry.ID | None
    rotated_from: strawberry.ID | None
    rate_limit_per_minute: int | None = strawberry.field(
        description="This key's own per-minute limit, when lower than its tenant's."
    )

    @classmethod
    def from_doc(cls, doc: dict[str, Any], last_used: datetime | None = None) -> ApiKey:
        doc = public_key(doc)
        stored = doc.get("last_used_at")
        if last_used is not None and (stored is None or _utc(stored) < last_used):
            stored = last_used
        return cls(
            key_id=strawberry.ID(doc["key_id"]),
            tenant_id=strawberry.ID(doc["tenant_id"]),
            name=doc["name"],
            scopes=list(doc.get("scopes", [])),
            state=ApiKeyState(key_state(doc)),
            created_at=doc["created_at"],
            last_used_at=stored,
            expires_at=doc.get("expires_at"),
            revoked_at=doc.get("revoked_at"),
            grace_until=doc.get("grace_until"),
            replaced_by=doc.get("replaced_by"),
            rotated_from=doc.get("rotated_from"),
            rate_limit_per_minute=doc.get("rate_limit_per_minute"),
        )


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@strawberry.type(description="A newly issued key. `key` is shown only in this response; store it now.")
class IssuedApiKey:
    key: str
    api_key: ApiKey


@strawberry.type(description="One tenant or key event. It never contains a key.")
class AuditEntry:
    id: strawberry.ID
    at: datetime
    action: str = strawberry.field(description="tenant.created, key.issued, key.rotated or key.revoked.")
    actor: str = strawberry.field(
        description="api-key (the GraphQL API, also behind `insider-selling admin`), "
        "or operator-cli (`admin bootstrap`)."
    )
    actor_key_id: strawberry.ID | None
    tenant_id: strawberry.ID
    target_type: str
    target_id: strawberry.ID
    details: JSON


@strawberry.type
class AuditEntryEdge:
    cursor: str
    node: AuditEntry


@strawberry.type(description="Audit entries, newest first.")
class AuditLogConnection:
    edges: list[AuditEntryEdge]
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(description="The calling key's limits.")
class RateLimit:
    limit_per_minute: int = strawberry.field(description="This key's per-minute limit.")
    tenant_limit_per_minute: int
    quota_per_month: int


@strawberry.type(description="The calling tenant's use of its monthly quota (counted in batches).")
class Usage:
    month: str
    requests: int
    quota: int
    remaining: int


@strawberry.type(description="Who is calling: the key, its tenant, its limits and usage.")
class Viewer:
    principal: strawberry.Private[Principal]
    services: strawberry.Private[Any]

    @strawberry.field
    async def tenant(self) -> Tenant:
        doc = await self.services.keys.repo.get_tenant(self.principal.tenant_id)
        return Tenant.from_doc(doc)

    @strawberry.field
    async def api_key(self) -> ApiKey:
        doc = await self.services.keys.repo.get_key(self.principal.key_id)
        return ApiKey.from_doc(doc, self.services.authenticator.pending_last_used(self.principal.key_id))

    @strawberry.field
    def rate_limit(self) -> RateLimit:
        p = self.principal
        return RateLimit(
            limit_per_minute=p.key_per_minute, tenant_limit_per_minute=p.per_minute, quota_per_month=p.per_month
        )

    @strawberry.field
    async def usage(self) -> Usage:
        month, _ = month_window(datetime.now(UTC))
        tenant_id = self.principal.tenant_id
        used = await self.services.keys.repo.get_usage(tenant_id, month)
        if self.services.ratelimiter is not None:
            used += self.services.ratelimiter.pending_usage(tenant_id, month)
        quota = self.principal.per_month
        return Usage(month=month, requests=used, quota=quota, remaining=max(0, quota - used))


def _keys(services: Services, docs: list[dict[str, Any]]) -> list[ApiKey]:
    auth = services.authenticator
    return [ApiKey.from_doc(d, auth.pending_last_used(d["key_id"])) for d in docs]


@strawberry.type
class AdminQuery:
    @strawberry.field(description="Tenants: every one for admin, the caller's own for keys:manage.")
    async def tenants(self, info: Info[Context, Any]) -> list[Tenant]:
        principal, services = _context(info)
        docs = await _run(services.keys.list_tenants(principal))
        return [Tenant.from_doc(d) for d in docs]

    @strawberry.field(description="A tenant's keys (never a secret or a hash).")
    async def api_keys(self, info: Info[Context, Any], tenant_id: strawberry.ID) -> list[ApiKey]:
        principal, services = _context(info)
        return _keys(services, await _run(services.keys.list_keys(principal, str(tenant_id))))

    @strawberry.field(description="Tenant and key events, newest first; `after` is a previous endCursor.")
    async def audit_log(
        self,
        info: Info[Context, Any],
        tenant_id: strawberry.ID | None = None,
        first: int | None = 50,
        after: str | None = None,
    ) -> AuditLogConnection:
        principal, services = _context(info)
        entries, more = await _run(
            services.keys.audit_page(
                principal, None if tenant_id is None else str(tenant_id), 50 if first is None else first, after
            )
        )
        edges = [
            AuditEntryEdge(
                cursor=encode_cursor(e["seq"]),
                node=AuditEntry(
                    id=strawberry.ID(e["event_id"]),
                    at=e["at"],
                    action=e["action"],
                    actor=e["actor"],
                    actor_key_id=e.get("actor_key_id"),
                    tenant_id=strawberry.ID(e["tenant_id"]),
                    target_type=e["target_type"],
                    target_id=strawberry.ID(e["target_id"]),
                    details=JSON(e.get("details") or {}),
                ),
            )
            for e in entries
        ]
        return AuditLogConnection(edges=edges, has_next_page=more, end_cursor=edges[-1].cursor if edges else None)

    @strawberry.field(description="The calling key, its tenant, limits and usage.")
    def viewer(self, info: Info[Context, Any]) -> Viewer:
        principal, services = _context(info)
        return Viewer(principal=principal, services=services)


@strawberry.type
class AdminMutation:
    @strawberry.mutation(description="Create a tenant (admin). `rateLimitPerMinute` replaces the plan's.")
    async def create_tenant(
        self,
        info: Info[Context, Any],
        name: str,
        plan: str,
        rate_limit_per_minute: int | None = None,
        quota_per_month: int | None = None,
    ) -> Tenant:
        principal, services = _context(info)
        doc = await _run(
            services.keys.create_tenant(
                principal, name, plan, rate_limit_per_minute=rate_limit_per_minute, quota_per_month=quota_per_month
            )
        )
        return Tenant.from_doc(doc)

    @strawberry.mutation(description="Issue a key; the full key is in this response only.")
    async def issue_api_key(
        self,
        info: Info[Context, Any],
        tenant_id: strawberry.ID,
        name: str,
        scopes: list[str],
        expires_at: datetime | None = None,
        rate_limit_per_minute: int | None = None,
    ) -> IssuedApiKey:
        principal, services = _context(info)
        issued = await _run(
            services.keys.issue_key(
                principal,
                str(tenant_id),
                name,
                scopes,
                expires_at=expires_at,
                rate_limit_per_minute=rate_limit_per_minute,
            )
        )
        return IssuedApiKey(key=issued.key, api_key=ApiKey.from_doc(issued.record))

    @strawberry.mutation(description="Issue a replacement; the old key works for gracePeriodSeconds more.")
    async def rotate_api_key(
        self, info: Info[Context, Any], key_id: strawberry.ID, grace_period_seconds: int
    ) -> IssuedApiKey:
        principal, services = _context(info)
        issued = await _run(services.keys.rotate_key(principal, str(key_id), grace_period_seconds))
        return IssuedApiKey(key=issued.key, api_key=ApiKey.from_doc(issued.record))

    @strawberry.mutation(description="Revoke a key now: 401 on every worker within a second.")
    async def revoke_api_key(self, info: Info[Context, Any], key_id: strawberry.ID) -> ApiKey:
        principal, services = _context(info)
        return ApiKey.from_doc(await _run(services.keys.revoke_key(principal, str(key_id))))
