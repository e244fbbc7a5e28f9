"""The one public error type of the web layer, and the mapping of every package's exceptions onto it.

Every refusal, on every transport, is an :class:`ApiError`: its status, a stable ``code``, a
message, and what goes with it (the parameter at fault, a retry time, response headers such as
the RateLimit-* values, GraphQL extensions). Each transport renders it its own way:

- REST and every HTTP refusal before GraphQL: the JSON envelope (:meth:`ApiError.body`, rendered
  by ``gql.envelope.error_response``)::

    {"error": {"type": "invalid_request_error", "code": "parameter_invalid", "param": "limit",
               "message": "limit must be an integer from 1 to 500"},
     "meta": {"request_id": "req_...", "timestamp": "...Z", "elapsed_ms": 0}}

- GraphQL over HTTP and websockets: a GraphQL error object (:meth:`ApiError.graphql`), with the
  HTTP status, or an ``error`` message for the socket's operation.
"""

from __future__ import annotations

import math
from typing import Any

from tenants.errors import (
    AuthenticationError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    TenantError,
    TooManyFailures,
)

__all__ = ["ApiError", "from_exception"]

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
}


class ApiError(Exception):
    """A refused request: raised anywhere in the web layer, rendered by each transport."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: str | None = None,
        retry_after: float | None = None,
        *,
        headers: dict[str, str] | None = None,
        path: list[str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.retry_after = retry_after
        self.headers = headers or {}  # RateLimit-*, Allow, ...
        self.path = path  # the GraphQL root field at fault
        self.extensions = extensions or {}  # GraphQL extensions besides code and param

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.code!r}, {self.message!r})"

    @property
    def type(self) -> str:
        return TYPES.get(self.status, "api_error")

    def body(self) -> dict[str, object]:
        """The REST envelope's ``error`` object."""
        error: dict[str, object] = {"type": self.type, "code": self.code}
        if self.param is not None:
            error["param"] = self.param
        error["message"] = self.message
        return error

    def graphql(self) -> dict[str, Any]:
        """The GraphQL error object (``extensions.code`` always set)."""
        out: dict[str, Any] = {"message": self.message}
        if self.path is not None:
            out["path"] = self.path
        extensions: dict[str, Any] = {"code": self.code}
        if self.param is not None:
            extensions["param"] = self.param
        out["extensions"] = {**extensions, **self.extensions}
        return out

    def response_headers(self) -> dict[str, str]:
        """The headers an HTTP rendering carries: its own, ``Retry-After`` when a retry time is
        known, and the ``WWW-Authenticate`` challenge of a 401."""
        out = dict(self.headers)
        if self.retry_after is not None:
            out["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        if self.status == 401:
            out["WWW-Authenticate"] = 'Bearer realm="insider-selling"'
        return out


def from_exception(exc: TenantError) -> ApiError:
    """Map a ``tenants`` exception to its public error (one place for the whole app)."""
    if isinstance(exc, TooManyFailures):
        return ApiError(429, exc.code, str(exc), retry_after=exc.retry_after)
    if isinstance(exc, AuthenticationError):
        return ApiError(401, exc.code, str(exc))
    if isinstance(exc, PermissionDenied):
        return ApiError(403, exc.code, str(exc))
    if isinstance(exc, NotFound):
        return ApiError(404, exc.code, str(exc))
    if isinstance(exc, InvalidArgument):
        return ApiError(400, exc.code, str(exc), param=exc.param)
    return ApiError(400, "invalid_request", str(exc))
