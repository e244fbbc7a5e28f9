"""Tenants, ``sk_live_`` API keys (argon2id), authentication, scopes and rate limits."""

from tenants.errors import TenantError

__all__ = ["TenantError"]
