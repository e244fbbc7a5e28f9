"""Scope checks for the schema (authentication happens at the edge, in ``gql.graphql_app``).

Use on a field: ``@strawberry.field(permission_classes=[SignalsRead])``. A refused field resolves to
an error with ``extensions.code`` (``unauthenticated`` or ``insufficient_scope``) and, for a nullable
field, ``null``; the rest of the response is untouched.

- :class:`SignalsRead` — ``signals:read`` (the data);
- :class:`KeysManage` — ``keys:manage`` (a tenant's own keys);
- :class:`WebhooksManage` — ``webhooks:manage`` (a tenant's own webhook endpoints);
- :class:`Admin` — ``admin`` (every tenant; implies the other two, see ``Principal.has``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from graphql import GraphQLError
from strawberry.permission import BasePermission
from strawberry.types import Info

from gql.context import Context

__all__ = ["Admin", "Authenticated", "KeysManage", "ScopePermission", "SignalsRead", "WebhooksManage", "private"]


class ScopePermission(BasePermission):
    """Grants a field when the caller's key carries ``scope`` (``admin`` implies every scope)."""

    scope: ClassVar[str | None] = None

    def has_permission(self, source: Any, info: Info[Context, Any], **kwargs: Any) -> bool:
        # Raised rather than returned: the message depends on the caller, and permission instances
        # are shared by every request.
        principal = info.context.principal
        if principal is None:
            raise GraphQLError(
                "authentication required: send 'Authorization: Bearer sk_live_...'",
                extensions={"code": "unauthenticated"},
            )
        if self.scope is not None and not principal.has(self.scope):
            raise GraphQLError(
                f"this key lacks the {self.scope} scope", extensions={"code": "insufficient_scope", "scope": self.scope}
            )
        return True


class Authenticated(ScopePermission):
    """Any authenticated key (e.g. ``viewer``)."""

    scope = None


class SignalsRead(ScopePermission):
    scope = "signals:read"


class KeysManage(ScopePermission):
    scope = "keys:manage"


class WebhooksManage(ScopePermission):
    scope = "webhooks:manage"


class Admin(ScopePermission):
    scope = "admin"


def private(info: Info[Context, Any]) -> None:
    """Mark the response as tenant-specific: it is then never stored in the shared response cache.

    Call it from every resolver whose result depends on who asks (``viewer``, admin listings)."""
    info.context.private = True
