"""Bounds on what a client sends, whatever the transport: bytes and tokens of a GraphQL document,
levels of nesting of any JSON input."""

from __future__ import annotations

from typing import Any

from gql.errors import ApiError

__all__ = ["MAX_DOCUMENT", "MAX_JSON_DEPTH", "MAX_TOKENS", "check_json_depth", "json_too_deep", "too_deep"]

#: Bytes of one request: an HTTP body, a GET query string's document, a websocket message.
MAX_DOCUMENT = 64 * 1024
MAX_TOKENS = 2000
#: Levels of arrays and objects in any JSON input (variables, extensions, a websocket payload):
#: orjson reads 1,024 levels but writes only 255, and no real input needs more than a few.
MAX_JSON_DEPTH = 32


def too_deep(what: str) -> ApiError:
    """The 400 naming the limit, for ``what`` (the request's part) nested too deep."""
    return ApiError(
        400,
        "bad_request",
        f"{what} nests JSON more than {MAX_JSON_DEPTH} levels deep (the maximum is {MAX_JSON_DEPTH} levels)",
        param=what,
    )


def json_too_deep(value: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``value`` (decoded JSON) nests arrays and objects more than ``limit`` levels deep;
    iterative and linear in the value's size (the top level is level 1)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level > limit:
            return True
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return False


def check_json_depth(value: object, what: str) -> None:
    """Refuse ``value`` (the request's ``what``) with a 400 naming the limit when it nests too deep."""
    if json_too_deep(value):
        raise too_deep(what)
