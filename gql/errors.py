"""The one public error envelope, and the mapping of every package's exceptions onto it.

{"error": {"type": "invalid_request_error", "code": "parameter_invalid", "param": "limit",
           "message": "limit must be an integer from 1 to 500"},
 "meta": {"request_id": "req_...", "timestamp": "...Z", "elapsed_ms": 0}}
"""

from __future__ import annotations

from dataclasses import dataclass

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
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
}


@dataclass(slots=True)
class ApiError(Exception):
    """An error with its HTTP status; raised by handlers, rendered by ``gql.rest.error_response``."""

    status: int
    code: str
    message: str
    param: str | None = None
    retry_after: float | None = None

    @property
    def type(self) -> str:
        return TYPES.get(self.status, "api_error")

    def body(self) -> dict[str, object]:
        error: dict[str, object] = {"type": self.type, "code": self.code}
        if self.param is not None:
            error["param"] = self.param
        error["message"] = self.message
        return error


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
