"""``/graphql``: the GraphQL endpoint (HTTP GET/POST and graphql-transport-ws).

Every operation, whatever its transport, passes :class:`gql.pipeline.Pipeline`: authenticate,
read (size and tokens), authorize the scope, bound (depth, aliases, field merging, cost), charge,
then execute. Over HTTP:

1. Authenticate exactly like REST (same 401/429 envelope, ``WWW-Authenticate``, ``X-Request-Id``).
2. Read the body (at most :data:`MAX_BODY` bytes) or the GET parameters, then admit the operation
   through the pipeline (its refusals carry their status: 400, 403, 405, 413, 429).
3. Serve a cached response when the same normalized document, operation, variables and scoring run
   were answered before (:class:`ResponseCache`); only operations made of public data fields are
   cached, never ``viewer`` or admin fields, and the per-caller ``extensions.cost`` is added to the
   cached bytes on the way out.
4. Otherwise execute with Strawberry (the admitted document, parsed and validated once; masked
   unexpected errors) and encode with orjson.

Websockets are handled by :class:`gql.sockets.TransportWSHandler`: the key comes from the
``connection_init`` payload (``{"Authorization": "Bearer sk_live_..."}``) or the upgrade request's
``Authorization`` header, is re-checked before every operation, and a revoked or expired key's
socket is closed (4403) within a second.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.graphql import OperationType as StrawberryOperationType

from gql.caching import RunValidators, matches
from gql.context import Context
from gql.cost import actual_cost
from gql.errors import ApiError, from_exception
from gql.pipeline import (
    MAX_DOCUMENT,
    MAX_JSON_DEPTH,
    PUBLIC_ROOT_FIELDS,
    Documents,
    Pipeline,
    RequestError,
    Transport,
    check_json_depth,
    core_schema,
)
from gql.resolvers import next_run_at
from gql.rest import error_response, new_request_id
from gql.schema import is_expected
from gql.sockets import ConnectionTimeouts, SocketAdapter, Sockets, TransportWSHandler
from tenants.errors import TenantError

__all__ = ["MAX_BODY", "MAX_QUERY_STRING", "PUBLIC_ROOT_FIELDS", "Documents", "GraphQLView", "ResponseCache"]

log = logging.getLogger("insider_selling.gql.http")

MAX_BODY = MAX_DOCUMENT
#: A GET request's query string (documents, variables): proxies and uvicorn's h11 parser stop at
#: about 16 KiB of request head anyway.
MAX_QUERY_STRING = 16 * 1024
_BODY_MEMBERS = frozenset({"query", "variables", "operationName", "extensions"})


# -- the response cache ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CachedResponse:
    prefix: bytes  # b'{"data":...' without the closing brace: extensions are per caller
    actual: int


class ResponseCache:
    """Encoded responses of public operations, per scoring run. Holds no tenant data: only
    error-free responses of :data:`PUBLIC_ROOT_FIELDS` operations are stored, and they are served
    only to keys with ``signals:read`` (what those fields require)."""

    def __init__(self, maxsize: int = 1024, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str | None, bytes, str], CachedResponse] = OrderedDict()
        self._run: str | None = None
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def _roll(self, run_id: str) -> None:
        if run_id != self._run:  # a new run: every entry is stale
            self._entries.clear()
            self._bytes = 0
            self._run = run_id

    def get(self, key: tuple[str, str | None, bytes, str]) -> CachedResponse | None:
        self._roll(key[3])
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    @staticmethod
    def _size(key: tuple[str, str | None, bytes, str], entry: CachedResponse) -> int:
        # the key holds the client's normalized document and variables: count them too
        return len(entry.prefix) + len(key[0]) + len(key[2]) + sys.getsizeof(key[1] or "") + 256

    def put(self, key: tuple[str, str | None, bytes, str], entry: CachedResponse) -> None:
        self._roll(key[3])
        size = self._size(key, entry)
        if size > self.max_bytes // 8:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= self._size(key, old)
        self._entries[key] = entry
        self._bytes += size
        while len(self._entries) > self.maxsize or self._bytes > self.max_bytes:
            old_key, evicted = self._entries.popitem(last=False)
            self._bytes -= self._size(old_key, evicted)

    @property
    def bytes(self) -> int:
        return self._bytes


# -- errors ------------------------------------------------------------------------------------


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


def _status(errors: list[GraphQLError], data: Any) -> int:
    if data is not None or not errors:
        return 200
    if not all(is_expected(e) for e in errors):
        return 500
    statuses = [e.original_error.status for e in errors if isinstance(e.original_error, ApiError)]
    if statuses:
        return max(statuses)
    return 400 if all(e.path is None for e in errors) else 200


def _budget(headers: dict[str, str]) -> dict[str, Any]:
    def number(name: str) -> int | None:
        value = headers.get(name)
        try:
            return int(float(value)) if value is not None else None
        except ValueError:
            return None

    return {
        "limit": number("RateLimit-Limit"),
        "remaining": number("RateLimit-Remaining"),
        "resetSeconds": number("RateLimit-Reset"),
    }


class _ExpectedErrors(logging.Filter):
    """Strawberry logs every error with a traceback; expected ones (bad arguments, missing scope)
    are the client's business, not the operator's."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, GraphQLError) and is_expected(record.msg))


def _quiet_expected_errors() -> None:
    logger = logging.getLogger("strawberry.execution")
    if not any(isinstance(f, _ExpectedErrors) for f in logger.filters):
        logger.addFilter(_ExpectedErrors())


# -- the view ----------------------------------------------------------------------------------


#: Where the GraphiQL page's scripts and styles are served from (a Mount in ``gql.app``).
GRAPHIQL_ASSETS_PATH = "/graphiql-assets"
GRAPHIQL_ASSETS_DIR = Path(__file__).with_name("static") / "graphiql"


class GraphQLView(GraphQL[Context, None]):
    """Mount at ``/graphql`` for both HTTP and websocket routes."""

    graphql_transport_ws_handler_class = TransportWSHandler
    websocket_adapter_class = SocketAdapter

    def __init__(
        self,
        schema: BaseSchema,
        *,
        introspection: bool,
        graphiql: bool,
        response_cache: ResponseCache | None = None,
        documents: Documents | None = None,
        timeouts: ConnectionTimeouts | None = None,
    ) -> None:
        self.timeouts = timeouts or ConnectionTimeouts()
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql else None,
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=self.timeouts.connection_init),
        )
        self.introspection = introspection
        self.graphiql = graphiql
        self.pipeline = Pipeline(
            core_schema(schema),
            introspection=introspection,
            documents=documents,
        )
        self.documents = self.pipeline.documents
        self.responses = response_cache if response_cache is not None else ResponseCache()
        self.sockets = Sockets(over_limit_grace=self.timeouts.over_limit_grace)
        self.heavy = self.pipeline.heavy
        self._validators: RunValidators | None = None  # ETag and Cache-Control of public GET queries
        _quiet_expected_errors()

    def decode_json(self, data: str | bytes) -> object:
        """Websocket messages are read with orjson (the standard library's reader recurses once per
        level and fails with RecursionError on a deep array; orjson refuses past 1,024 levels with a
        JSONDecodeError, which the protocol answers with a 4400 close)."""
        return orjson.loads(data)

    @property
    def graphql_ide_html(self) -> str:
        """Strawberry's GraphiQL page, loading its scripts from this server (see ``gql/static``), with the
        Authorization header template and a hint (``gql/static/pages/graphiql.html``)."""
        from gql.pages import graphiql_page  # gql.pages imports this module

        return graphiql_page()

    # -- websockets (gql.sockets.TransportWSHandler) --
    async def get_context(self, request: Request | WebSocket, response: Any = None) -> Context:
        services = request.app.state.services
        client = request.client.host if request.client else "unknown"
        return Context.build(
            services,
            None,
            request=request,
            response=response,
            client=client,
            authorization=request.headers.get("authorization"),
        )

    # -- HTTP --
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        response = await self.handle_http(request)
        await response(scope, receive, send)

    def _wants_ide(self, request: Request) -> bool:
        return (
            request.method == "GET"
            and "query" not in request.query_params
            and "text/html" in request.headers.get("accept", "")
        )

    async def handle_http(self, request: Request) -> Response | JSONBytes:
        started = time.perf_counter()
        request_id = new_request_id()
        if self._wants_ide(request):
            if self.graphiql:
                return HTMLResponse(self.graphql_ide_html, headers={"X-Request-Id": request_id})
            return error_response(
                ApiError(404, "graphiql_disabled", "GraphiQL is turned off on this server"), request_id, started
            )
        if request.method not in ("GET", "POST"):
            return error_response(
                ApiError(405, "method_not_allowed", "use GET or POST for /graphql"),
                request_id,
                started,
                {"Allow": "GET, POST"},
            )
        services = request.app.state.services
        headers: dict[str, str] = {"X-Request-Id": request_id}
        try:
            principal = await self.pipeline.authenticate(
                services, request.headers.get("authorization"), request.client.host if request.client else "unknown"
            )
        except ApiError as error:
            return error_response(error, request_id, started, getattr(error, "headers", None))
        try:
            return await self._execute(request, services, principal, headers)
        except RequestError as error:
            body: dict[str, Any] = {"errors": [error.error()]}
            if error.path is not None:
                body["data"] = None
            return Response(
                orjson.dumps(body),
                status_code=error.status,
                media_type="application/json",
                headers={**headers, **error.headers},
            )

    async def _read(self, request: Request) -> tuple[object, object, object]:
        if request.method == "GET":
            if len(request.scope["query_string"]) > MAX_QUERY_STRING:
                raise RequestError(
                    413,
                    "request_too_large",
                    f"the query string exceeds {MAX_QUERY_STRING} bytes; POST larger documents",
                )
            params = request.query_params
            raw_vars = params.get("variables")
            query, name = params.get("query"), params.get("operationName")
            try:
                variables = orjson.loads(raw_vars) if raw_vars else None
            except orjson.JSONDecodeError as error:
                raise _unreadable(error, "variables", "variables must be a JSON object") from None
            check_json_depth(variables, "variables")
            return query, variables, name
        if "json" not in request.headers.get("content-type", ""):
            raise RequestError(415, "unsupported_media_type", "send Content-Type: application/json")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise RequestError(413, "request_too_large", f"the request body exceeds {MAX_BODY} bytes")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise _unreadable(error, "the body", "the body is not valid JSON") from None
        if isinstance(payload, list):
            raise RequestError(400, "batching_unsupported", "send one operation per request")
        if not isinstance(payload, dict):
            raise RequestError(400, "bad_request", "the body must be a JSON object with a query")
        for member, value in payload.items():  # variables, extensions, and whatever else was sent
            check_json_depth(value, member if member in _BODY_MEMBERS else "the body")
        return payload.get("query"), payload.get("variables"), payload.get("operationName")

    async def _execute(
        self, request: Request, services: Any, principal: Any, headers: dict[str, str]
    ) -> JSONBytes | Response:
        query, variables, name = await self._read(request)
        transport: Transport = "GET" if request.method == "GET" else "POST"
        admission = await self.pipeline.admit(services, principal, query, variables, name, transport, headers)
        doc, operation, requested, limits = (
            admission.document,
            admission.operation,
            admission.requested,
            admission.limits,
        )
        key = None
        if doc.public.get(operation.name.value if operation.name else None) and principal.has("signals:read"):
            run = await services.leaderboard.current_run()
            if run is not None:
                # a response names the next planned run (Signal.nextRunAt), which moves on while
                # the run stays the same (a failed run, a restart): it is part of the key
                planned = next_run_at(services, run).isoformat()
                key = (doc.normalized, admission.name, admission.variables_key, f"{run['run_id']}|{planned}")
                if transport == "GET":  # a cacheable answer: ETag and Cache-Control (gql/caching.py)
                    headers.update(self._validator_headers(services, run, key))
                    # a revalidation is a request: admitted (authenticated, scoped, bounded, charged) above
                    if not doc.validation and matches(request.headers.get("if-none-match"), headers["ETag"].encode()):
                        return Response(status_code=304, headers=headers)
                cached = self.responses.get(key)
                if cached is not None:
                    cost = {"requested": requested, "actual": cached.actual, **_budget(limits)}
                    return self._respond(cached.prefix, cost, 200, headers)

        context = Context.build(
            services,
            principal,
            request=request,
            client=request.client.host if request.client else "unknown",
            authorization=request.headers.get("authorization"),
            admission=admission,
        )
        allowed = (
            {StrawberryOperationType.QUERY}
            if transport == "GET"
            else {StrawberryOperationType.QUERY, StrawberryOperationType.MUTATION}
        )
        async with self.heavy.turn(requested):
            result = await self.schema.execute(
                doc.text,
                variable_values=admission.variables,
                context_value=context,
                operation_name=admission.name,
                allowed_operation_types=allowed,
            )
        errors = result.errors or []
        actual = actual_cost(result.data) if result.data is not None else 1
        status = _status(errors, result.data)
        prefix = b'{"data":' + orjson.dumps(result.data)
        if errors:
            headers.pop("ETag", None)
            headers.pop("Cache-Control", None)
            prefix += b',"errors":' + orjson.dumps([format_error(e) for e in errors])
            for error in errors:
                retry = getattr(error.original_error, "retry_after", None)
                if retry is not None:
                    headers["Retry-After"] = str(max(1, int(retry + 0.999)))
        elif key is not None and not context.private:
            self.responses.put(key, CachedResponse(prefix, actual))
        cost = {"requested": requested, "actual": actual, **_budget(limits)}
        return self._respond(prefix, cost, status, headers)

    # -- HTTP caching of public GET queries (see gql/caching.py) --
    def _validator_headers(
        self, services: Any, run: dict[str, Any], key: tuple[str, str | None, bytes, str]
    ) -> dict[str, str]:
        if self._validators is None:
            self._validators = RunValidators(services.leaderboard.interval_seconds)
        text, name, variables_key, version = key  # version: the run and the next planned run
        etag = self._validators.graphql_etag(
            run, b"\0".join((text.encode(), (name or "").encode(), variables_key, version.encode()))
        )
        return {"ETag": etag.decode(), "Cache-Control": self._validators.cache_control(run).decode()}

    @staticmethod
    def _respond(prefix: bytes, cost: dict[str, Any], status: int, headers: dict[str, str]) -> JSONBytes:
        # the (possibly large, cached) prefix is sent as it is, then the per-caller end: no copy
        return JSONBytes(prefix, status, headers, b',"extensions":' + orjson.dumps({"cost": cost}) + b"}")


def _unreadable(error: orjson.JSONDecodeError, what: str, message: str) -> RequestError:
    """A 400 for JSON that cannot be read; nesting past orjson's own limit (1,024 levels) is named
    as what it is: deeper than our bound."""
    if "depth" in str(error).lower() or "recursion" in str(error).lower():
        return RequestError(
            400,
            "bad_request",
            f"{what} nests JSON more than {MAX_JSON_DEPTH} levels deep (the maximum is {MAX_JSON_DEPTH} levels)",
            param=what,
        )
    return RequestError(400, "bad_request", message)


class JSONBytes:
    """An already encoded JSON response sent as two ASGI messages (the hot path skips Starlette's
    ``Response`` header machinery, which costs more than the cache lookup)."""

    __slots__ = ("body", "headers", "status", "tail")

    def __init__(self, body: bytes, status: int, headers: dict[str, str], tail: bytes = b"") -> None:
        self.body, self.status, self.headers, self.tail = body, status, headers, tail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = len(self.body) + len(self.tail)
        raw = [(b"content-type", b"application/json"), (b"content-length", str(length).encode())]
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        if self.tail:
            await send({"type": "http.response.body", "body": self.body, "more_body": True})
            await send({"type": "http.response.body", "body": self.tail})
        else:
            await send({"type": "http.response.body", "body": self.body})
