"""The ranking's arguments, validated once for REST (``limit``, ``min_score``, ``as_of``) and for
GraphQL (the same ranges and messages on ``limit`` and ``minScore``)."""

from __future__ import annotations

import math
import re
from datetime import datetime

from gql.errors import ApiError
from gql.values import parse_datetime

__all__ = ["MAX_FIRST", "PARAMS", "parse_data_params", "parse_params", "validate_board", "validate_first"]

MAX_FIRST = 500

_INT = re.compile(r"^[+]?[0-9]{1,6}$")
_NUM = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
PARAMS = ("limit", "min_score", "as_of")


def parse_params(items: list[tuple[str, str]]) -> tuple[int, float]:
    """Validate the query string: ``limit`` (integer 1-500, default 100) and ``min_score``
    (finite number 0-10, default 0). Unknown and repeated parameters are errors."""
    limit, min_score, _ = parse_data_params(items)
    return limit, min_score


def parse_data_params(items: list[tuple[str, str]]) -> tuple[int, float, datetime | None]:
    """:func:`parse_params`, and ``as_of`` (an ISO 8601 time with a timezone; default none: now)."""
    seen: dict[str, str] = {}
    for name, value in items:
        if name not in PARAMS:
            message = f"unknown parameter {name!r}; allowed: limit, min_score, as_of"
            raise ApiError(400, "parameter_unknown", message, param=name)
        if name in seen:
            raise ApiError(400, "parameter_repeated", f"{name} may be given only once", param=name)
        seen[name] = value
    limit = 100
    if "limit" in seen:
        raw = seen["limit"].strip()
        if not _INT.match(raw) or not 1 <= int(raw) <= 500:
            raise ApiError(400, "parameter_invalid", "limit must be an integer from 1 to 500", param="limit")
        limit = int(raw)
    min_score = 0.0
    if "min_score" in seen:
        raw = seen["min_score"].strip()
        number = float(raw) if _NUM.match(raw) else math.nan
        if not math.isfinite(number) or not 0.0 <= number <= 10.0:
            raise ApiError(400, "parameter_invalid", "min_score must be a number from 0 to 10", param="min_score")
        min_score = number
    as_of = None
    if "as_of" in seen:
        try:
            as_of = parse_datetime(seen["as_of"].strip())
        except ValueError as error:
            raise ApiError(400, "parameter_invalid", f"as_of: {error}", param="as_of") from None
    return limit, min_score, as_of


def validate_board(limit: int, min_score: float) -> tuple[int, float]:
    """REST's validator on GraphQL's typed arguments (same ranges, same messages)."""
    score = repr(float(min_score)) if math.isfinite(min_score) else "nan"
    try:
        return parse_params([("limit", str(limit)), ("min_score", score)])
    except ApiError as error:
        if error.param == "min_score":
            error.param = "minScore"
        raise


def validate_first(first: int, param: str = "first") -> int:
    if not 1 <= first <= MAX_FIRST:
        raise ApiError(400, "parameter_invalid", f"{param} must be an integer from 1 to {MAX_FIRST}", param=param)
    return first
