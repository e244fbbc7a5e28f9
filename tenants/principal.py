"""Who is calling: the result of authentication, checked by the REST handler and GraphQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["SCOPES", "Principal"]

#: ``signals:read`` reads the data; ``keys:manage`` manages its own tenant's keys;
#: ``webhooks:manage`` manages its own tenant's webhook endpoints;
#: ``admin`` manages every tenant (and implies the others).
SCOPES = ("signals:read", "keys:manage", "webhooks:manage", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    key_id: str
    scopes: frozenset[str]
    plan: str
    expires_at: datetime | None = None
    per_minute: int = 60  # the tenant's per-minute limit (all its keys together)
    per_month: int = 10_000  # the tenant's monthly quota
    key_per_minute: int = 60  # this key's own per-minute limit (≤ the tenant's)

    def has(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes
