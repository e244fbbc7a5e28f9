"""Admission: the steps every request takes before it is answered, on every transport.

REST (``/v1/...``), GraphQL over HTTP (GET and POST) and graphql-transport-ws operations all call
the same :class:`Gate`, in this order:

1. **authenticate** the key (:meth:`Gate.warm`, without I/O when the key is in the warm cache, else
   :meth:`Gate.authenticate`), then run the gate's **rules** (:class:`Rule`): checks added once, in
   :func:`gql.app.create_app`, that apply to every transport alike;
2. **authorize**: the scope the answer needs (:meth:`Gate.require`);
3. **bound** what the client sent (each transport's own reading: the REST query string, the GraphQL
   document through :class:`gql.pipeline.Pipeline`);
4. **charge** the key's and tenant's limits (:meth:`Gate.charge`, or :meth:`Gate.charge_encoded`
   for REST's one request); then the transport answers.

Every refusal is a :class:`gql.errors.ApiError`, which each transport renders its own way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Protocol

from gql.errors import ApiError, from_exception
from tenants.errors import TenantError
from tenants.principal import Principal
from tenants.ratelimit import Encoded

if TYPE_CHECKING:
    from gql.services import Services

__all__ = ["Gate", "Rule", "Transport"]

#: Where a request came in: REST, GraphQL over HTTP GET or POST, a graphql-transport-ws operation.
Transport = Literal["REST", "GET", "POST", "WS"]


class Rule(Protocol):
    """A check on an authenticated request; raises :class:`gql.errors.ApiError` to refuse it.

    Called synchronously on the hot path of every transport (a websocket calls it at
    ``connection_init`` and again before each operation), so it does no I/O."""

    def __call__(self, principal: Principal, transport: Transport) -> None: ...


class Gate:
    """The admission steps every transport shares (see the module docstring)."""

    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self.rules = tuple(rules)

    def _checked(self, principal: Principal, transport: Transport) -> Principal:
        for rule in self.rules:
            rule(principal, transport)
        return principal

    # 1. authenticate, then the rules
    def warm(self, services: Services, authorization: bytes | None, transport: Transport) -> Principal | None:
        """The caller's principal without I/O when its key is in the warm cache (rules applied),
        else ``None``: then call :meth:`authenticate`."""
        if authorization is None:
            return None
        principal = services.authenticator.authenticate_warm(authorization)
        return None if principal is None else self._checked(principal, transport)

    async def authenticate(
        self, services: Services, authorization: str | bytes | None, client: str, transport: Transport
    ) -> Principal:
        """The caller's principal (rules applied), or the 401 (429 after too many failures)."""
        if isinstance(authorization, bytes):
            authorization = authorization.decode("latin-1")
        try:
            principal = await services.authenticator.authenticate(authorization, client)
        except TenantError as exc:
            raise from_exception(exc) from None
        return self._checked(principal, transport)

    # 2. authorize
    @staticmethod
    def require(principal: Principal, scope: str, field: str | None = None) -> None:
        """403 unless the key holds ``scope`` (``field``: the GraphQL root field that needs it)."""
        if principal.has(scope):
            return
        if field is None:
            raise ApiError(403, "insufficient_scope", f"this key lacks the {scope} scope")
        raise ApiError(
            403,
            "insufficient_scope",
            f"this key lacks the {scope} scope ({field})",
            path=[field],
            extensions={"scope": scope},
        )

    # 4. charge
    @staticmethod
    async def charge(services: Services, principal: Principal, cost: int = 1) -> dict[str, str]:
        """Charge ``cost`` requests; the RateLimit-* headers, or a 429 (503 when the limiter is down
        and fails closed) carrying them."""
        if services.limiter is None:
            return {}
        return await services.limiter.check_request(principal, cost)

    @staticmethod
    async def charge_encoded(services: Services, principal: Principal) -> Encoded | None:
        """:meth:`charge` for one request with the values encoded (REST's hot path: no I/O while
        the key's lease holds tokens); ``None`` without a limiter."""
        limiter = services.limiter
        if limiter is None:
            return None
        limits = limiter.take(principal)
        return limits if limits is not None else await limiter.check_encoded(principal)
