"""The REST shim: ``GET /v1/insider-selling/data``, exactly the seed's contract."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql.admission import Gate
from gql.caching import RateLimitFields, RunValidators, matches
from gql.envelope import RequestIds, error_response
from gql.errors import ApiError
from gql.history import run_as_of
from gql.metrics import Metrics
from gql.params import parse_data_params
from tenants.principal import Principal
from tenants.ratelimit import Encoded

if TYPE_CHECKING:
    from gql.services import Services

__all__ = ["DATA_PATH", "DataEndpoint", "RestFastPath"]

DATA_PATH = "/v1/insider-selling/data"
log = logging.getLogger("insider_selling.rest")

#: Longest query string whose parse result is cached (4096 of them at most: under 2 MiB).
MAX_CACHED_QUERY = 128


class DataEndpoint:
    """``GET /v1/insider-selling/data`` as a raw ASGI handler.

    This is the hot path, so it builds no Starlette ``Request`` or ``Response``: the query string is
    parsed once per distinct string (a bounded cache of parse results, never of tenant data), the
    ``meta.timestamp`` text once per second, and the body is spliced from the run's cached ``data``
    bytes and this request's ``meta``. It admits the request through the :class:`gql.admission.Gate`
    every transport shares (authenticate and rules, the ``signals:read`` scope, one request charged);
    every refusal is rendered by :func:`gql.envelope.error_response`.
    """

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
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
            gate = self.gate
            principal = gate.warm(services, authorization, "REST")
            if principal is None:
                client = scope.get("client")
                principal = await gate.authenticate(
                    services, authorization, client[0] if client else "unknown", "REST"
                )
            gate.require(principal, "signals:read")
            limits = await gate.charge_encoded(services, principal)
            limit, min_score, as_of = self._parse(scope["query_string"])
            leaderboard = services.leaderboard
            fresh = leaderboard.fresh(limit, min_score) if as_of is None else None
            if as_of is not None:  # point in time: what the run in force then served
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
                headers.update(exc.headers)
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
