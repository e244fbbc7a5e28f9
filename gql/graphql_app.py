"""``/graphql``: the GraphQL endpoint (HTTP GET/POST and graphql-transport-ws).

Every operation, whatever its transport, is admitted first: the :class:`gql.admission.Gate`
authenticates the key and applies its rules, exactly as for REST (same 401/429 envelope,
``WWW-Authenticate``, ``X-Request-Id``); then :class:`gql.pipeline.Pipeline` reads, authorizes,
bounds and charges the operation. Over HTTP:

1. Read the body (at most :data:`MAX_BODY` bytes) or the GET parameters, then admit the operation
   (its refusals carry their status: 400, 403, 405, 413, 429).
2. Serve a cached response when the same normalized document, operation, variables and scoring run
   were answered before (:class:`gql.responses.ResponseCache`); only operations made of public data
   fields are cached, never ``viewer`` or admin fields, and the per-caller ``extensions.cost`` is
   added to the cached bytes on the way out. A public GET answer carries an ETag and answers a
   matching ``If-None-Match`` with a 304 (after admission: a revalidation is a request).
3. Otherwise execute with Strawberry (the admitted document, parsed and validated once; masked
   unexpected errors) and encode with orjson.

Websockets are handled by :class:`gql.sockets.TransportWSHandler`: the key comes from the
``connection_init`` payload (``{"Authorization": "Bearer sk_live_..."}``) or the upgrade request's
``Authorization`` header, is re-checked before every operation, and a revoked or expired key's
socket is closed (4403) within a second.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.graphql import OperationType as StrawberryOperationType

from gql.admission import Gate, Transport
from gql.caching import RunValidators, matches
from gql.context import Context
from gql.core import core_schema
from gql.cost import actual_cost
from gql.documents import Document, Documents
from gql.envelope import error_response, new_request_id
from gql.errors import ApiError, from_exception
from gql.graphql_errors import format_error, quiet_expected_errors, status_of
from gql.history import next_run_at
from gql.limits import MAX_DOCUMENT, check_json_depth, too_deep
from gql.pages import graphiql_page
from gql.pipeline import Admission, Pipeline
from gql.responses import CachedResponse, JSONBytes, ResponseCache, ResponseKey
from gql.sockets import ConnectionTimeouts, SocketAdapter, Sockets, TransportWSHandler
from tenants.errors import TenantError

__all__ = ["MAX_BODY", "MAX_QUERY_STRING", "GraphQLView"]

MAX_BODY = MAX_DOCUMENT
#: A GET request's query string (documents, variables): proxies and uvicorn's h11 parser stop at
#: about 16 KiB of request head anyway.
MAX_QUERY_STRING = 16 * 1024
_BODY_MEMBERS = frozenset({"query", "variables", "operationName", "extensions"})


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


def _refusal(error: ApiError, headers: dict[str, str]) -> Response:
    """An operation refused before execution: ``{"errors": [...]}`` with the error's status."""
    body: dict[str, Any] = {"errors": [error.graphql()]}
    if error.path is not None:
        body["data"] = None
    return Response(
        orjson.dumps(body),
        status_code=error.status,
        media_type="application/json",
        headers={**headers, **error.response_headers()},
    )


class GraphQLView(GraphQL[Context, None]):
    """Mount at ``/graphql`` for both HTTP and websocket routes."""

    graphql_transport_ws_handler_class = TransportWSHandler
    websocket_adapter_class = SocketAdapter

    def __init__(
        self,
        schema: BaseSchema,
        *,
        gate: Gate,
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
        self.gate = gate
        self.introspection = introspection
        self.graphiql = graphiql
        self.pipeline = Pipeline(core_schema(schema), gate, introspection=introspection, documents=documents)
        self.documents = self.pipeline.documents
        self.responses = response_cache if response_cache is not None else ResponseCache()
        self.sockets = Sockets(over_limit_grace=self.timeouts.over_limit_grace)
        self.heavy = self.pipeline.heavy
        self._validators: RunValidators | None = None  # ETag and Cache-Control of public GET queries
        quiet_expected_errors()

    def decode_json(self, data: str | bytes) -> object:
        """Websocket messages are read with orjson (the standard library's reader recurses once per
        level and fails with RecursionError on a deep array; orjson refuses past 1,024 levels with a
        JSONDecodeError, which the protocol answers with a 4400 close)."""
        return orjson.loads(data)

    @property
    def graphql_ide_html(self) -> str:
        """Strawberry's GraphiQL page, loading its scripts from this server (see ``gql/static``), with the
        Authorization header template and a hint (``gql/static/pages/graphiql.html``)."""
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
                ApiError(405, "method_not_allowed", "use GET or POST for /graphql", headers={"Allow": "GET, POST"}),
                request_id,
                started,
            )
        services = request.app.state.services
        transport: Transport = "GET" if request.method == "GET" else "POST"
        client = request.client.host if request.client else "unknown"
        try:
            principal = await self.gate.authenticate(services, request.headers.get("authorization"), client, transport)
        except ApiError as error:  # refused before GraphQL: the envelope, exactly as REST
            return error_response(error, request_id, started)
        headers: dict[str, str] = {"X-Request-Id": request_id}
        try:
            query, variables, name = await self._read(request)
            admission = await self.pipeline.admit(services, principal, query, variables, name, transport, headers)
            return await self._answer(request, services, admission, transport, headers)
        except ApiError as error:
            return _refusal(error, headers)

    async def _read(self, request: Request) -> tuple[object, object, object]:
        if request.method == "GET":
            if len(request.scope["query_string"]) > MAX_QUERY_STRING:
                raise ApiError(
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
            raise ApiError(415, "unsupported_media_type", "send Content-Type: application/json")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise ApiError(413, "request_too_large", f"the request body exceeds {MAX_BODY} bytes")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise _unreadable(error, "the body", "the body is not valid JSON") from None
        if isinstance(payload, list):
            raise ApiError(400, "batching_unsupported", "send one operation per request")
        if not isinstance(payload, dict):
            raise ApiError(400, "bad_request", "the body must be a JSON object with a query")
        for member, value in payload.items():  # variables, extensions, and whatever else was sent
            check_json_depth(value, member if member in _BODY_MEMBERS else "the body")
        return payload.get("query"), payload.get("variables"), payload.get("operationName")

    async def _response_key(self, services: Any, admission: Admission) -> tuple[ResponseKey, dict[str, Any]] | None:
        """The response cache's key of a public operation (and the run it answers from), or ``None``
        when its answer depends on who asks or no run has finished yet."""
        doc: Document = admission.document
        operation = admission.operation
        if not doc.public.get(operation.name.value if operation.name else None):
            return None
        if not admission.principal.has("signals:read"):
            return None
        run = await services.leaderboard.current_run()
        if run is None:
            return None
        # a response names the next planned run (Signal.nextRunAt), which moves on while the run
        # stays the same (a failed run, a restart): it is part of the key
        planned = next_run_at(services, run).isoformat()
        return (doc.normalized, admission.name, admission.variables_key, f"{run['run_id']}|{planned}"), run

    async def _answer(
        self, request: Request, services: Any, admission: Admission, transport: Transport, headers: dict[str, str]
    ) -> JSONBytes | Response:
        doc, requested, limits = admission.document, admission.requested, admission.limits
        keyed = await self._response_key(services, admission)
        key = None
        if keyed is not None:
            key, run = keyed
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
            admission.principal,
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
        status = status_of(errors, result.data)
        prefix = b'{"data":' + orjson.dumps(result.data)
        if errors:
            headers.pop("ETag", None)
            headers.pop("Cache-Control", None)
            prefix += b',"errors":' + orjson.dumps([format_error(e) for e in errors])
            for error in errors:
                original = error.original_error
                if isinstance(original, TenantError):
                    original = from_exception(original)
                if isinstance(original, ApiError) and original.retry_after is not None:
                    headers["Retry-After"] = original.response_headers()["Retry-After"]
        elif key is not None and not context.private:
            self.responses.put(key, CachedResponse(prefix, actual))
        cost = {"requested": requested, "actual": actual, **_budget(limits)}
        return self._respond(prefix, cost, status, headers)

    # -- HTTP caching of public GET queries (see gql/caching.py) --
    def _validator_headers(self, services: Any, run: dict[str, Any], key: ResponseKey) -> dict[str, str]:
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


def _unreadable(error: orjson.JSONDecodeError, what: str, message: str) -> ApiError:
    """A 400 for JSON that cannot be read; nesting past orjson's own limit (1,024 levels) is named
    as what it is: deeper than our bound."""
    if "depth" in str(error).lower() or "recursion" in str(error).lower():
        return too_deep(what)
    return ApiError(400, "bad_request", message)
