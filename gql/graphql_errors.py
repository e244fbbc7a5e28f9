"""GraphQL errors as this API writes them: ``extensions.code`` on every error, unexpected ones
masked (and logged), the HTTP status a response's errors call for, and Strawberry's log quiet about
the client's own mistakes."""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from gql.errors import ApiError, from_exception
from tenants.errors import TenantError

__all__ = ["MaskUnexpected", "format_error", "is_expected", "quiet_expected_errors", "status_of"]

log = logging.getLogger("insider_selling.gql.http")
execution_log = logging.getLogger("insider_selling.gql")


def is_expected(error: GraphQLError) -> bool:
    """Expected errors keep their message: GraphQL's own (syntax, validation, limits), errors raised
    as ``GraphQLError`` on purpose, and the packages' typed errors."""
    original = error.original_error
    return original is None or isinstance(original, (GraphQLError, ApiError, TenantError))


class MaskUnexpected(MaskErrors):
    """``MaskErrors`` that logs what it hides and tags it ``internal_error``."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda e: not is_expected(e), error_message="An unexpected error occurred.")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        execution_log.error("unexpected GraphQL error at %s", error.path, exc_info=error.original_error)
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "internal_error"}
        return masked


def format_error(error: GraphQLError) -> dict[str, Any]:
    """GraphQL's error shape, with ``extensions.code`` on every error."""
    if not is_expected(error):
        log.error("unexpected GraphQL error", exc_info=error.original_error)
        return {"message": "An unexpected error occurred.", "extensions": {"code": "internal_error"}}
    out: dict[str, Any] = dict(error.formatted)
    extensions = dict(out.get("extensions") or {})
    original = error.original_error
    if isinstance(original, TenantError):
        original = from_exception(original)
    if isinstance(original, ApiError):
        extensions["code"] = original.code
        if original.param is not None:
            extensions["param"] = original.param
    elif "code" not in extensions:
        extensions["code"] = "graphql_validation_failed" if error.path is None else "graphql_error"
    out["extensions"] = extensions
    return out


def status_of(errors: list[GraphQLError], data: Any) -> int:
    if data is not None or not errors:
        return 200
    if not all(is_expected(e) for e in errors):
        return 500
    statuses = [e.original_error.status for e in errors if isinstance(e.original_error, ApiError)]
    if statuses:
        return max(statuses)
    return 400 if all(e.path is None for e in errors) else 200


class _ExpectedErrors(logging.Filter):
    """Strawberry logs every error with a traceback; expected ones (bad arguments, missing scope)
    are the client's business, not the operator's."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, GraphQLError) and is_expected(record.msg))


def quiet_expected_errors() -> None:
    logger = logging.getLogger("strawberry.execution")
    if not any(isinstance(f, _ExpectedErrors) for f in logger.filters):
        logger.addFilter(_ExpectedErrors())
