"""The webhook package's exceptions: narrow subclasses of ``tenants``' public error tree, so the
web layer maps them exactly like the admin errors (400, 403, 404)."""

from __future__ import annotations

from tenants.errors import InvalidArgument, NotFound, PermissionDenied, TenantError

__all__ = ["BlockedAddress", "InvalidArgument", "NotFound", "PermissionDenied", "WebhookError", "WebhooksDisabled"]


class WebhookError(TenantError):
    """Base of the errors raised only by ``webhooks``."""


class WebhooksDisabled(WebhookError):
    """Raised when no webhook server key is configured (INSIDER_WEBHOOK_KEY)."""

    code = "webhooks_disabled"


class BlockedAddress(WebhookError):
    """Raised when a URL's host is, or resolves to, an address deliveries may not reach."""

    code = "blocked_address"
