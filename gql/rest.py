"""The REST shim: ``GET /v1/insider-selling/data``, exactly the seed's contract."""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql.caching import RateLimitFields, RunValidators, matches
from gql.errors import ApiError, from_exception
from gql.metrics import Metrics
from gql.types import parse_datetime
from tenants.errors import TenantError
from tenants.principal import Principal
from tenants.ratelimit import Encoded

if TYPE_CHECKING:
    from gql.services import Services

__all__ = [
    "DATA_PATH",
    "DataEndpoint",
    "RestFastPath",
    "error_response",
    "new_request_id",
    "parse_data_params",
    "parse_params",
]

DATA_PATH = "/v1/insider-selling/data"
log = logging.getLogger("insider_selling.rest")

_INT = re.compile(r"^[+]?[0-9]{1,6}$")
_NUM = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
PARAMS = ("limit", "min_score", "as_of")
#: Longest query string whose parse result is cached (4096 of them at most: under 2 MiB).
MAX_CACHED_QUERY = 128


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


async def authenticate(services: Services, request: Request) -> Principal:
    client = request.client.host if request.client else "unknown"
    try:
        return await services.authenticator.authenticate(request.headers.get("authorization"), client)
    except TenantError as exc:
        raise from_exception(exc) from None


class DataEndpoint:
    """``GET /v1/insider-selling/data`` as a raw ASGI handler.

    This is the hot path, so it builds no Starlette ``Request`` or ``Response``: the query string is
    parsed once per distinct string (a bounded cache of parse results, never of tenant data), the
    ``meta.timestamp`` text once per second, and the body is spliced from the run's cached ``data``
    bytes and this request's ``meta``. Errors go through :func:`error_response` like every other one.
    """

    def __init__(self) -> None:
        self._params: dict[bytes, tuple[int, float, datetime | None] | ApiError] = {}
        self._second = -1
        self._stamp = b""
        self._ids = RequestIds()
        self._validators: RunValidators | None = None
        # (run, second, {query string: (ETag, Cache-Control) headers}) of the latest response
        self._validator_headers: tuple[object, int, dict[bytes, tuple[tuple[bytes, bytes], tuple[bytes, bytes]]]] = (
            None,
            -1,
            {},
        )
        self.ratelimit_fields = RateLimitFields()

    def _timestamp(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        return self._stamp

    def _parse(self, query_string: bytes) -> tuple[int, float, datetime | None]:
        parsed = self._params.get(query_string)
        if parsed is None:
            try:
                parsed = parse_data_params(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
            except ApiError as error:
                parsed = error
            # bounded in bytes: a valid query string is short ("limit=500&min_score=7.25"); longer
            # ones are parsed every time instead of pinning up to 4096 x 64 KiB of client input
            if len(self._params) < 4096 and len(query_string) <= MAX_CACHED_QUERY:
                self._params[query_string] = parsed
        if isinstance(parsed, ApiError):
            raise parsed
        return parsed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.respond(scope["app"].state.services, scope, send)

    async def respond(self, services: Services, scope: Scope, send: Send, started: float | None = None) -> int:
        """Answer one request; returns the HTTP status sent.

        A warm key whose lease still has tokens is answered without awaiting anything but the
        response itself: :meth:`Authenticator.authenticate_warm`, :meth:`RequestLimiter.take` and
        :meth:`Leaderboard.fresh` are the synchronous paths; the full ones run only when those
        cannot decide."""
        if started is None:
            started = time.perf_counter()
        rid = self._ids.next_bytes()
        limits: Encoded | None = None
        authorization = if_none_match = principal = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"if-none-match":
                if_none_match = value
        try:
            authenticator = services.authenticator
            principal = None if authorization is None else authenticator.authenticate_warm(authorization)
            if principal is None:
                client = scope.get("client")
                try:
                    principal = await authenticator.authenticate(
                        None if authorization is None else authorization.decode("latin-1"),
                        client[0] if client else "unknown",
                    )
                except TenantError as exc:
                    raise from_exception(exc) from None
            if not principal.has("signals:read"):
                raise ApiError(403, "insufficient_scope", "this key lacks the signals:read scope")
            limiter = services.limiter
            if limiter is not None:
                limits = limiter.take(principal)
                if limits is None:
                    limits = await limiter.check_encoded(principal)
            limit, min_score, as_of = self._parse(scope["query_string"])
            leaderboard = services.leaderboard
            fresh = leaderboard.fresh(limit, min_score) if as_of is None else None
            if as_of is not None:  # point in time: what the run in force then served
                from gql.track import run_as_of

                run = await run_as_of(services, as_of, "as_of")
                data = await leaderboard.past_data_bytes(run, limit, min_score)
            elif fresh is None:
                latest = await leaderboard.current_run()
                if latest is None:
                    raise ApiError(
                        503, "not_ready", "the first scoring run has not finished yet; retry shortly", retry_after=5
                    )
                run = latest
                data = await leaderboard.data_bytes(run, limit, min_score)
            else:
                run, data = fresh
        except Exception as exc:  # this handler sits outside Starlette's error middleware
            request_id = rid.decode()
            headers = {} if limits is None else _limit_headers(limits)
            if isinstance(exc, ApiError):
                error = exc
                headers.update(getattr(exc, "headers", None) or {})
                if principal is not None:
                    headers.update(self.ratelimit_fields.headers(principal, headers))
            else:
                log.exception("unhandled error", extra={"path": DATA_PATH, "request_id": request_id})
                error = ApiError(500, "internal_error", "an unexpected error occurred")
            response = error_response(error, request_id, started, headers)
            await response({"type": "http"}, _no_receive, send)
            return error.status
        if if_none_match is not None:
            # a revalidation is a request: authenticated, scope checked and charged above
            if as_of is not None:
                now = int(time.time())
                (_, etag), (_, cache_control) = self._as_of_pair(services, run, limit, min_score, as_of, now)
            else:
                validators = self._validators or self._start_validators(services)
                etag, cache_control = validators.rest_etag(run, limit, min_score), validators.cache_control(run)
            if matches(if_none_match, etag):
                await self._not_modified(principal, limits, etag, cache_control, rid, send)
                return 304
        body = b"".join(
            (
                b'{"data":',
                data,
                b',"meta":{"request_id":"',
                rid,
                b'","timestamp":"',
                self._timestamp(),
                b'","elapsed_ms":',
                b"%d.%03d" % divmod(int((time.perf_counter() - started) * 1e6), 1000),
                b"}}",
            )
        )
        # ETag and Cache-Control, per query string, for this run and this second (one dict lookup)
        second = self._second  # the clock read of this response's meta.timestamp
        cached = self._validator_headers
        if cached[0] is not run or cached[1] != second:
            cached = self._validator_headers = (run, second, {})
        query = scope["query_string"]
        pair = cached[2].get(query) if as_of is None else None
        if as_of is not None:  # the run in force then and the time asked for are both in the tag
            pair = self._as_of_pair(services, run, limit, min_score, as_of, second)
        elif pair is None:
            pair = self._validator_pair(services, run, limit, min_score, second)
            if len(cached[2]) < 256 and len(query) <= MAX_CACHED_QUERY:  # bounded in bytes too
                cached[2][query] = pair
        if limits is None:
            raw = [_JSON, (b"content-length", b"%d" % len(body)), (b"x-request-id", rid), pair[0], pair[1]]
        else:
            policy, current = self.ratelimit_fields.both(principal, limits, second)
            raw = [
                _JSON,
                (b"content-length", b"%d" % len(body)),
                (b"x-request-id", rid),
                pair[0],
                pair[1],
                (b"ratelimit-limit", limits[0]),
                (b"ratelimit-remaining", limits[1]),
                (b"ratelimit-reset", limits[2]),
                (b"ratelimit-policy", policy),
                (b"ratelimit", current),
            ]
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": body})
        return 200

    def _validator_pair(
        self, services: Services, run: dict[str, Any], limit: int, min_score: float, second: int
    ) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
        validators = self._validators or self._start_validators(services)
        return (
            (b"etag", validators.rest_etag(run, limit, min_score)),
            (b"cache-control", validators.cache_control(run, second)),
        )

    def _as_of_pair(
        self, services: Services, run: dict[str, Any], limit: int, min_score: float, as_of: datetime, second: int
    ) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
        stamp = as_of.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ").encode()
        tag = b'W/"%s-%d-%s-%s"' % (run["run_id"].encode(), limit, repr(min_score).encode(), stamp)
        current = services.leaderboard.cached_run
        if current is not None and current["run_id"] == run["run_id"]:  # as long as it stays current
            validators = self._validators or self._start_validators(services)
            cache_control = validators.cache_control(run, second)
        else:
            cache_control = b"private, max-age=3600"  # a past run's ranking does not change
        return (b"etag", tag), (b"cache-control", cache_control)

    def _start_validators(self, services: Services) -> RunValidators:
        self._validators = RunValidators(services.leaderboard.interval_seconds)
        return self._validators

    async def _not_modified(
        self,
        principal: Principal,
        limits: Encoded | None,
        etag: bytes,
        cache_control: bytes,
        rid: bytes,
        send: Send,
    ) -> None:
        """``304`` for a request whose ``If-None-Match`` names the response it would get (the current
        run's, or with ``as_of`` the run in force then); the caller has authenticated the key,
        checked its scope and charged it (see gql/caching.py)."""
        raw = [(b"x-request-id", rid), (b"etag", etag), (b"cache-control", cache_control)]
        if limits is not None:
            policy, current = self.ratelimit_fields.both(principal, limits)
            raw += [
                (b"ratelimit-limit", limits[0]),
                (b"ratelimit-remaining", limits[1]),
                (b"ratelimit-reset", limits[2]),
                (b"ratelimit-policy", policy),
                (b"ratelimit", current),
            ]
        await send({"type": "http.response.start", "status": 304, "headers": raw})
        await send({"type": "http.response.body", "body": b""})


_JSON = (b"content-type", b"application/json")


def _limit_headers(limits: Encoded) -> dict[str, str]:
    return {
        "RateLimit-Limit": limits[0].decode(),
        "RateLimit-Remaining": limits[1].decode(),
        "RateLimit-Reset": limits[2].decode(),
    }


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


class RestFastPath:
    """Pure ASGI middleware in front of the whole stack: answers ``GET /v1/insider-selling/data``
    with :class:`DataEndpoint` and records its metrics; everything else goes on to the app (whose
    router also routes that path for other methods, so they get the 405 envelope). It sits outside
    Starlette's error middleware, so it answers an unexpected error with the 500 envelope itself."""

    def __init__(self, app: ASGIApp, endpoint: DataEndpoint, metrics: Metrics) -> None:
        self.app = app
        self.endpoint = endpoint
        self.metrics = metrics
        self.record = metrics.route(DATA_PATH, "GET").record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != DATA_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        try:
            status = await self.endpoint.respond(scope["app"].state.services, scope, send, started)
        finally:
            self.record(status, time.perf_counter() - started)
