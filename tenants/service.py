"""Issuing keys and bootstrapping the first tenants."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tenants.errors import InvalidArgument
from tenants.hashing import KeyHasher
from tenants.keys import generate_key
from tenants.principal import SCOPES
from tenants.repository import TenantRepository

__all__ = ["IssuedKey", "KeyService"]

PLANS = ("free", "pro", "enterprise")


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str  # shown once
    record: dict[str, Any]

    def __repr__(self) -> str:
        return f"IssuedKey(key_id={self.record['key_id']!r})"


class KeyService:
    def __init__(self, repo: TenantRepository, hasher: KeyHasher) -> None:
        self.repo = repo
        self.hasher = hasher

    async def issue(self, tenant_id: str, name: str, scopes: Sequence[str], *,
                    expires_at: datetime | None = None, created_by: str | None = None) -> IssuedKey:
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise InvalidArgument("scopes", f"scopes must be a non-empty subset of {list(SCOPES)}")
        parsed = generate_key()
        import asyncio

        secret_hash = await asyncio.to_thread(self.hasher.hash, parsed.full)
        record = {
            "key_id": parsed.key_id, "tenant_id": tenant_id, "name": name,
            "scopes": sorted(set(scopes)), "created_at": datetime.now(UTC), "created_by": created_by,
            "expires_at": expires_at, "last_used_at": None, "revoked_at": None,
            "grace_until": None, "replaced_by": None, "secret_hash": secret_hash,
        }
        await self.repo.insert_key(record)
        public = {k: v for k, v in record.items() if k not in ("secret_hash", "_id")}
        return IssuedKey(parsed.full, public)

    async def bootstrap_embedded(self) -> tuple[IssuedKey, IssuedKey] | None:
        """On an empty store: a platform tenant with an admin key, a demo tenant with a read key."""
        if await self.repo.count_tenants() > 0:
            return None
        platform = await self.repo.create_tenant("platform", "enterprise")
        demo = await self.repo.create_tenant("demo", "pro")
        admin = await self.issue(platform["tenant_id"], "bootstrap admin", ["admin"], created_by="bootstrap")
        read = await self.issue(demo["tenant_id"], "demo read", ["signals:read"], created_by="bootstrap")
        return admin, read

    async def bootstrap_admin(self) -> IssuedKey:
        """``insider-selling admin bootstrap``: the first admin key (platform tenant created once)."""
        tenants = [t for t in await self.repo.list_tenants() if t["name"] == "platform"]
        platform = tenants[0] if tenants else await self.repo.create_tenant("platform", "enterprise")
        return await self.issue(platform["tenant_id"], "bootstrap admin", ["admin"], created_by="bootstrap")
