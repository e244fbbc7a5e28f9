"""Bounds of a request's head, checked on the ASGI scope before anything else runs.

A head (request line and header fields) larger than ``max_bytes``, or with more than
``max_headers`` fields, is answered ``431 Request Header Fields Too Large`` with the JSON error
envelope (RFC 6585); a websocket upgrade with such a head is refused before it is accepted (a 431
where the server supports ASGI's ``websocket.http.response`` extension, else a 1008 close, which
uvicorn sends as a 403). The settings are ``INSIDER_MAX_HEAD_BYTES`` and ``INSIDER_MAX_HEADERS``;
uvicorn's h11 protocol is also given the byte bound through its public
``h11_max_incomplete_event_size`` option, so that it stops reading an oversized head early.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Receive, Scope, Send

from gql.envelope import error_response, new_request_id
from gql.errors import ApiError

__all__ = ["MAX_HEADERS", "MAX_HEAD_BYTES", "HeadLimits", "head_size"]

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100


def head_size(scope: Scope) -> int:
    """Bytes of the request head as it was sent: the request line and every ``name: value`` line."""
    path = scope.get("raw_path") or scope.get("path", "").encode()
    query = scope.get("query_string", b"")
    size = len(scope.get("method", "GET")) + len(path) + len(query) + 12  # " ", "?", " HTTP/1.1\r\n"
    for name, value in scope.get("headers", ()):
        size += len(name) + len(value) + 4  # ": " and "\r\n"
    return size + 2


class HeadLimits:
    """Pure ASGI middleware, outermost: refuses an oversized head before any other work."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_HEAD_BYTES, max_headers: int = MAX_HEADERS) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_headers = max_headers

    def refusal(self, scope: Scope) -> str | None:
        headers = scope.get("headers", ())
        if len(headers) > self.max_headers:
            return f"the request has {len(headers)} header fields; the maximum is {self.max_headers} headers"
        size = head_size(scope)
        if size > self.max_bytes:
            return f"the request head is {size} bytes; the maximum is {self.max_bytes} bytes"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        message = self.refusal(scope)
        if message is None:
            await self.app(scope, receive, send)
            return
        error = ApiError(431, "request_header_fields_too_large", message)
        response = error_response(error, new_request_id(), time.perf_counter(), {"Connection": "close"})
        if scope["type"] == "http":
            await response(scope, receive, send)
        elif "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": 431, "headers": response.raw_headers})
            await send({"type": "websocket.http.response.body", "body": response.body})
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
