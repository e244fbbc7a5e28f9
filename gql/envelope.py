"""The JSON envelope every REST answer and every HTTP refusal shares: ``{"data"|"error", "meta"}``,
and the request ids it carries."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.responses import Response

from gql.errors import ApiError

__all__ = ["RequestIds", "error_response", "meta", "new_request_id"]


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


class RequestIds:
    """``req_`` + 24 hex digits from the OS's CSPRNG, read 4 KiB at a time (one syscall per 341
    requests instead of one per request) and hex-encoded a pool at a time."""

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def next(self) -> str:
        return self.next_bytes().decode()

    def next_bytes(self) -> bytes:
        at = self._at
        if at + 24 > len(self._pool):
            self._pool = os.urandom(4092).hex().encode()
            at = 0
        self._at = at + 24
        return b"req_" + self._pool[at : at + 24]


def meta(request_id: str, started: float) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "elapsed_ms": round((time.perf_counter() - started) * 1000.0, 3),
    }


def error_response(
    error: ApiError, request_id: str, started: float, headers: Mapping[str, str] | None = None
) -> Response:
    """``error`` in the envelope, with its headers (``headers``: this response's others, such as
    the RateLimit-* values of a charge that preceded the refusal)."""
    body = orjson.dumps({"error": error.body(), "meta": meta(request_id, started)})
    out = {"X-Request-Id": request_id, **(headers or {}), **error.response_headers()}
    return Response(body, status_code=error.status, media_type="application/json", headers=out)
