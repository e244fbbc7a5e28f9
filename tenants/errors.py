"""The tenants package's exceptions. Each maps to one public error (see ``gql/errors.py``)."""

from __future__ import annotations


class TenantError(Exception):
    """Base of every error raised by ``tenants``."""


class AuthenticationError(TenantError):
    """Raised when a request carries no usable API key (401)."""

    code = "invalid_api_key"


class MissingKey(AuthenticationError):
    """Raised when the Authorization header is absent or not ``Bearer sk_live_...``."""

    code = "missing_api_key"


class MalformedKey(AuthenticationError):
    """Raised when a key fails its shape or checksum; no store lookup happens."""

    code = "malformed_api_key"


class InvalidKey(AuthenticationError):
    """Raised when a well-formed key is unknown, wrong, revoked or expired.

    One error for all four, so a caller learns nothing about which keys exist.
    """

    code = "invalid_api_key"


class TooManyFailures(AuthenticationError):
    """Raised when a client address has failed authentication too often (429)."""

    code = "too_many_failed_attempts"

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many failed authentication attempts")
        self.retry_after = retry_after


class PermissionDenied(TenantError):
    """Raised when an authenticated key lacks the scope for an operation (403)."""

    code = "insufficient_scope"


class NotFound(TenantError):
    """Raised when a tenant or key does not exist or is not visible to the caller (404)."""

    code = "not_found"


class InvalidArgument(TenantError):
    """Raised when an admin argument is invalid (400)."""

    code = "parameter_invalid"

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class RateLimited(TenantError):
    """Raised when a request exceeds its key's, its tenant's or the monthly limit (429)."""

    code = "rate_limited"

    def __init__(self, retry_after: float, headers: dict[str, str]) -> None:
        super().__init__("rate limit exceeded; retry after the Retry-After header's seconds")
        self.retry_after = max(0.0, retry_after)
        self.headers = headers


class QuotaExceeded(RateLimited):
    """Raised when the tenant's monthly quota is used up (429 until the 1st, 00:00 UTC)."""

    code = "quota_exceeded"


class LimiterUnavailable(TenantError):
    """Raised when Redis is unreachable and the failure mode is ``closed`` (503)."""

    code = "rate_limiter_unavailable"

    def __init__(self, retry_after: float) -> None:
        super().__init__("the rate limiter is unavailable; retry shortly")
        self.retry_after = retry_after
