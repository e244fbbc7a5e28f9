"""The typed per-request GraphQL context: who is calling, the app's services, fresh DataLoaders.

One :class:`Context` is built per HTTP request (and per websocket connection) by
``gql.graphql_app.GraphQLView.get_context``; its loaders are never shared across requests, so a
DataLoader's memo can never leak one tenant's data into another's response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tenants.principal import Principal

if TYPE_CHECKING:
    from gql.loaders import Loaders
    from gql.services import Services

__all__ = ["Context"]


@dataclass(slots=True, eq=False)
class Context:
    """What every resolver gets as ``info.context``.

    ``principal`` is ``None`` only before authentication (a websocket before ``connection_init``);
    every HTTP request is authenticated before execution. ``loaders`` batch the store reads of one
    request. ``cost`` is filled by the view (the estimate charged to the tenant's budget).
    """

    services: Services
    principal: Principal | None
    loaders: Loaders
    request: Any = None  # the Starlette Request or WebSocket
    response: Any = None  # the Starlette Response (headers) for HTTP requests
    client: str = "unknown"
    authorization: str | None = None  # the raw Authorization header
    connection_params: dict[str, Any] | None = None  # a websocket's connection_init payload
    cost: dict[str, Any] = field(default_factory=dict)
    #: Tenant-specific fields were resolved (``viewer``, admin fields): the response is not shared.
    private: bool = False
    #: The operation as the pipeline admitted it (``gql.pipeline.Admission``): its parsed and
    #: validated document is what Strawberry executes.
    admission: Any = None

    @classmethod
    def build(cls, services: Services, principal: Principal | None, **kwargs: Any) -> Context:
        from gql.loaders import Loaders

        return cls(services=services, principal=principal, loaders=Loaders(services), **kwargs)

    def require_principal(self) -> Principal:
        from gql.errors import ApiError

        if self.principal is None:
            raise ApiError(401, "missing_api_key", "authenticate first")
        return self.principal
