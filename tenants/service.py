"""Tenant and key operations, with their authorization and audit entries.

Every operation takes the acting :class:`~tenants.principal.Principal` (``None`` means the operator
CLI, which acts with the store's credentials). The rules:

- ``admin`` manages every tenant; only ``admin`` creates tenants or grants the ``admin`` scope.
- No operation hands a caller a key with a scope the caller does not hold (:meth:`KeyService.check_grant`,
  applied where every new key is made, whichever mutation asked for it: issue or rotate).
- ``keys:manage`` manages its own tenant's keys. Another tenant's tenant id or key id is answered
  exactly like one that does not exist (:class:`NotFound`), so a refusal reveals nothing.
- Every change writes an audit entry and calls the ``on_key_change`` hooks (cache eviction on this
  worker and the Redis broadcast to the others, wired by the app).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tenants.audit import AuditLog
from tenants.errors import InvalidArgument, NotFound, PermissionDenied
from tenants.hashing import KeyHasher
from tenants.keys import generate_key
from tenants.plans import limits_for, validate_limits, validate_plan
from tenants.principal import SCOPES, Principal
from tenants.repository import TenantRepository

__all__ = ["MAX_GRACE_SECONDS", "IssuedKey", "KeyService", "key_state", "public_key"]

MAX_GRACE_SECONDS = 7 * 86_400
MAX_NAME = 100

KeyHook = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str  # shown once
    record: dict[str, Any]

    def __repr__(self) -> str:
        return f"IssuedKey(key_id={self.record['key_id']!r})"


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def key_state(doc: dict[str, Any], now: datetime | None = None) -> str:
    """``active``, ``rotating`` (old key in its grace), ``rotated``, ``revoked`` or ``expired``."""
    now = now or datetime.now(UTC)
    if doc.get("revoked_at") is not None:
        return "revoked"
    if doc.get("expires_at") is not None and _aware(doc["expires_at"]) <= now:
        return "expired"
    if doc.get("grace_until") is not None:
        return "rotating" if _aware(doc["grace_until"]) > now else "rotated"
    return "active"


def public_key(doc: dict[str, Any]) -> dict[str, Any]:
    """A key record without anything secret."""
    return {k: v for k, v in doc.items() if k not in ("secret_hash", "_id")}


def _name(value: str, param: str = "name") -> str:
    value = value.strip()
    if not 1 <= len(value) <= MAX_NAME or not value.isprintable():
        raise InvalidArgument(param, f"{param} must be 1 to {MAX_NAME} printable characters")
    return value


@dataclass(slots=True)
class KeyService:
    repo: TenantRepository
    hasher: KeyHasher
    audit: AuditLog | None = None
    on_key_change: list[KeyHook] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.audit is None:
            self.audit = AuditLog(self.repo.db)

    @property
    def log(self) -> AuditLog:
        assert self.audit is not None
        return self.audit

    # -- authorization --
    @staticmethod
    def require_manager(actor: Principal | None) -> None:
        if actor is not None and not actor.has("keys:manage"):
            raise PermissionDenied("this key lacks the keys:manage scope")

    @staticmethod
    def check_grant(actor: Principal | None, scopes: Sequence[str]) -> None:
        """Refuse to hand ``actor`` a key with a scope it does not hold; only ``admin`` grants
        ``admin``. ``None`` (the operator CLI, bootstrap) acts with the store's authority."""
        if actor is None:
            return
        if "admin" in scopes and not actor.is_admin:
            raise PermissionDenied("only an admin key may grant the admin scope")
        missing = sorted(scope for scope in set(scopes) if not actor.has(scope))
        if missing:
            raise PermissionDenied(f"this key cannot grant scopes it does not hold: {', '.join(missing)}")

    async def visible_tenant(self, actor: Principal | None, tenant_id: str) -> dict[str, Any]:
        """The tenant if the actor may manage it; otherwise the same answer as for no tenant."""
        self.require_manager(actor)
        if actor is not None and not actor.is_admin and actor.tenant_id != tenant_id:
            raise NotFound("no such tenant")
        tenant = await self.repo.get_tenant(tenant_id)
        if tenant is None:
            raise NotFound("no such tenant")
        return tenant

    async def visible_key(self, actor: Principal | None, key_id: str) -> dict[str, Any]:
        self.require_manager(actor)
        doc = await self.repo.get_key(key_id)
        if doc is None or (actor is not None and not actor.is_admin and doc["tenant_id"] != actor.tenant_id):
            raise NotFound("no such key")
        return doc

    # -- tenants --
    async def create_tenant(
        self,
        actor: Principal | None,
        name: str,
        plan: str,
        *,
        rate_limit_per_minute: int | None = None,
        quota_per_month: int | None = None,
    ) -> dict[str, Any]:
        if actor is not None and not actor.is_admin:
            raise PermissionDenied("creating tenants needs the admin scope")
        name = _name(name)
        validate_plan(plan)
        limits = validate_limits(rate_limit_per_minute, quota_per_month)
        tenant = await self.repo.create_tenant(name, plan, limits=limits)
        await self.log.record(
            actor,
            "tenant.created",
            tenant_id=tenant["tenant_id"],
            target_type="tenant",
            target_id=tenant["tenant_id"],
            details={"plan": plan, **limits},
        )
        return tenant

    async def list_tenants(self, actor: Principal | None) -> list[dict[str, Any]]:
        self.require_manager(actor)
        if actor is None or actor.is_admin:
            return await self.repo.list_tenants()
        own = await self.repo.get_tenant(actor.tenant_id)
        return [own] if own else []

    # -- keys --
    async def issue_key(
        self,
        actor: Principal | None,
        tenant_id: str,
        name: str,
        scopes: Sequence[str],
        *,
        expires_at: datetime | None = None,
        rate_limit_per_minute: int | None = None,
    ) -> IssuedKey:
        tenant = await self.visible_tenant(actor, tenant_id)
        self.check_grant(actor, scopes)
        if expires_at is not None and _aware(expires_at) <= datetime.now(UTC):
            raise InvalidArgument("expiresAt", "expiresAt must be in the future")
        if rate_limit_per_minute is not None:
            tenant_limit = limits_for(tenant).per_minute
            if not 1 <= rate_limit_per_minute <= tenant_limit:
                raise InvalidArgument(
                    "rateLimitPerMinute", f"rateLimitPerMinute must be from 1 to the tenant's {tenant_limit}"
                )
        issued = await self.issue(
            tenant_id,
            _name(name),
            scopes,
            expires_at=expires_at,
            created_by=actor.key_id if actor else "operator-cli",
            rate_limit_per_minute=rate_limit_per_minute,
            grantor=actor,
        )
        await self.log.record(
            actor,
            "key.issued",
            tenant_id=tenant_id,
            target_type="api_key",
            target_id=issued.record["key_id"],
            details={"name": issued.record["name"], "scopes": issued.record["scopes"]},
        )
        return issued

    async def list_keys(self, actor: Principal | None, tenant_id: str) -> list[dict[str, Any]]:
        await self.visible_tenant(actor, tenant_id)
        return [public_key(d) for d in await self.repo.list_keys(tenant_id)]

    async def rotate_key(self, actor: Principal | None, key_id: str, grace_period_seconds: int) -> IssuedKey:
        """A new key with the old one's tenant, name, scopes and expiry; the old key keeps working
        for ``grace_period_seconds`` (0 = stops now), then gets 401."""
        old = await self.visible_key(actor, key_id)
        if not 0 <= grace_period_seconds <= MAX_GRACE_SECONDS:
            raise InvalidArgument("gracePeriodSeconds", f"gracePeriodSeconds must be from 0 to {MAX_GRACE_SECONDS}")
        if key_state(old) != "active" or old.get("replaced_by"):
            raise InvalidArgument("keyId", "only an active key can be rotated")
        record, full = await self._new_record(
            actor,
            old["tenant_id"],
            old["name"],
            old["scopes"],
            expires_at=old.get("expires_at"),
            created_by=actor.key_id if actor else "operator-cli",
            rate_limit_per_minute=old.get("rate_limit_per_minute"),
        )
        grace_until = datetime.now(UTC) + timedelta(seconds=grace_period_seconds)
        claimed = await self.repo.keys.find_one_and_update(
            {"key_id": key_id, "revoked_at": None, "replaced_by": None},
            {"$set": {"grace_until": grace_until, "replaced_by": record["key_id"]}},
            {"_id": 0},
        )
        if claimed is None:  # revoked or rotated concurrently
            raise InvalidArgument("keyId", "only an active key can be rotated")
        record["rotated_from"] = key_id
        await self.repo.insert_key(record)
        await self._changed(key_id)
        await self.log.record(
            actor,
            "key.rotated",
            tenant_id=old["tenant_id"],
            target_type="api_key",
            target_id=key_id,
            details={"new_key_id": record["key_id"], "grace_period_seconds": grace_period_seconds},
        )
        return IssuedKey(full, public_key(record))

    async def revoke_key(self, actor: Principal | None, key_id: str) -> dict[str, Any]:
        """Revoke now (idempotent); every worker answers 401 within a second."""
        doc = await self.visible_key(actor, key_id)
        if doc.get("revoked_at") is not None:
            return public_key(doc)
        updated = await self.repo.update_key(key_id, {"revoked_at": datetime.now(UTC)})
        await self._changed(key_id)
        await self.log.record(actor, "key.revoked", tenant_id=doc["tenant_id"], target_type="api_key", target_id=key_id)
        return updated or public_key(doc)

    async def audit_page(
        self, actor: Principal | None, tenant_id: str | None, first: int, after: str | None
    ) -> tuple[list[dict[str, Any]], bool]:
        self.require_manager(actor)
        if actor is not None and not actor.is_admin:
            if tenant_id is not None and tenant_id != actor.tenant_id:
                raise NotFound("no such tenant")
            tenant_id = actor.tenant_id
        return await self.log.page(tenant_id, first, after)

    async def _changed(self, key_id: str) -> None:
        for hook in self.on_key_change:
            await hook(key_id)

    # -- issuing --
    async def _new_record(
        self,
        grantor: Principal | None,
        tenant_id: str,
        name: str,
        scopes: Sequence[str],
        *,
        expires_at: datetime | None,
        created_by: str | None,
        rate_limit_per_minute: int | None = None,
    ) -> tuple[dict[str, Any], str]:
        """Every new key is made here, so the grant check cannot be skipped by any path."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise InvalidArgument("scopes", f"scopes must be a non-empty subset of {list(SCOPES)}")
        self.check_grant(grantor, scopes)
        parsed = generate_key()
        secret_hash = await asyncio.to_thread(self.hasher.hash, parsed.full)
        record = {
            "key_id": parsed.key_id,
            "tenant_id": tenant_id,
            "name": name,
            "scopes": sorted(set(scopes)),
            "created_at": datetime.now(UTC),
            "created_by": created_by,
            "expires_at": expires_at,
            "last_used_at": None,
            "revoked_at": None,
            "grace_until": None,
            "replaced_by": None,
            "rotated_from": None,
            "rate_limit_per_minute": rate_limit_per_minute,
            "secret_hash": secret_hash,
        }
        return record, parsed.full

    async def issue(
        self,
        tenant_id: str,
        name: str,
        scopes: Sequence[str],
        *,
        expires_at: datetime | None = None,
        created_by: str | None = None,
        rate_limit_per_minute: int | None = None,
        grantor: Principal | None = None,
    ) -> IssuedKey:
        """Issue without tenant checks or audit (bootstrap; :meth:`issue_key` wraps it); the grant
        check still applies to ``grantor``."""
        record, full = await self._new_record(
            grantor,
            tenant_id,
            name,
            scopes,
            expires_at=expires_at,
            created_by=created_by,
            rate_limit_per_minute=rate_limit_per_minute,
        )
        await self.repo.insert_key(record)
        return IssuedKey(full, public_key(record))

    async def bootstrap_embedded(self) -> tuple[IssuedKey, IssuedKey] | None:
        """On an empty store: a platform tenant with an admin key, a demo tenant with a read key."""
        if await self.repo.count_tenants() > 0:
            return None
        platform = await self.repo.create_tenant("platform", "enterprise")
        demo = await self.repo.create_tenant("demo", "pro")
        admin = await self.issue(platform["tenant_id"], "bootstrap admin", ["admin"], created_by="bootstrap")
        read = await self.issue(demo["tenant_id"], "demo read", ["signals:read"], created_by="bootstrap")
        for tenant in (platform, demo):
            await self.log.record(
                None,
                "tenant.created",
                tenant_id=tenant["tenant_id"],
                target_type="tenant",
                target_id=tenant["tenant_id"],
                details={"plan": tenant["plan"]},
            )
        for issued in (admin, read):
            await self.log.record(
                None,
                "key.issued",
                tenant_id=issued.record["tenant_id"],
                target_type="api_key",
                target_id=issued.record["key_id"],
                details={"name": issued.record["name"], "scopes": issued.record["scopes"]},
            )
        return admin, read

    async def bootstrap_admin(self) -> IssuedKey:
        """``insider-selling admin bootstrap``: the first admin key (platform tenant created once)."""
        tenants = [t for t in await self.repo.list_tenants() if t["name"] == "platform"]
        platform = tenants[0] if tenants else await self.repo.create_tenant("platform", "enterprise")
        issued = await self.issue(platform["tenant_id"], "bootstrap admin", ["admin"], created_by="bootstrap")
        await self.log.record(
            None,
            "key.issued",
            tenant_id=platform["tenant_id"],
            target_type="api_key",
            target_id=issued.record["key_id"],
            details={"name": "bootstrap admin", "scopes": ["admin"]},
        )
        return issued
