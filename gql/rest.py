"""The REST shim: ``GET /v1/insider-selling/data``, exactly the seed's contract."""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gql.errors import ApiError, from_exception
from tenants.errors import TenantError
from tenants.principal import Principal

if TYPE_CHECKING:
    from gql.services import Services

__all__ = ["data_endpoint", "error_response", "new_request_id", "parse_params"]

_INT = re.compile(r"^[+]?[0-9]{1,6}$")
_NUM = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
PARAMS = ("limit", "min_score")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def meta(request_id: str, started: float) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "elapsed_ms": round((time.perf_counter() - started) * 1000.0, 3),
    }


def error_response(error: ApiError, request_id: str, started: float,
                   headers: Mapping[str, str] | None = None) -> Response:
    body = orjson.dumps({"error": error.body(), "meta": meta(request_id, started)})
    out = {"X-Request-Id": request_id, **(headers or {})}
    if error.retry_after is not None:
        out["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if error.status == 401:
        out["WWW-Authenticate"] = 'Bearer realm="insider-selling"'
    return Response(body, status_code=error.status, media_type="application/json", headers=out)


def parse_params(items: list[tuple[str, str]]) -> tuple[int, float]:
    """Validate the query string: ``limit`` (integer 1-500, default 100) and ``min_score``
    (finite number 0-10, default 0). Unknown and repeated parameters are errors."""
    seen: dict[str, str] = {}
    for name, value in items:
        if name not in PARAMS:
            message = f"unknown parameter {name!r}; allowed: limit, min_score"
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
    return limit, min_score


async def authenticate(services: Services, request: Request) -> Principal:
    client = request.client.host if request.client else "unknown"
    try:
        return await services.authenticator.authenticate(request.headers.get("authorization"), client)
    except TenantError as exc:
        raise from_exception(exc) from None


async def data_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    started = time.perf_counter()
    request_id = new_request_id()
    headers: dict[str, str] = {}
    try:
        principal = await authenticate(services, request)
        if not principal.has("signals:read"):
            raise ApiError(403, "insufficient_scope", "this key lacks the signals:read scope")
        if services.limiter is not None:
            headers = await services.limiter.check_request(principal)
        limit, min_score = parse_params(request.query_params.multi_items())
        run = await services.leaderboard.current_run()
        if run is None:
            raise ApiError(503, "not_ready", "the first scoring run has not finished yet; retry shortly",
                           retry_after=5)
        data = await services.leaderboard.data_bytes(run, limit, min_score)
    except ApiError as error:
        headers.update(getattr(error, "headers", None) or {})
        return error_response(error, request_id, started, headers)
    body = b'{"data":' + data + b',"meta":' + orjson.dumps(meta(request_id, started)) + b"}"
    headers["X-Request-Id"] = request_id
    return Response(body, media_type="application/json", headers=headers)
