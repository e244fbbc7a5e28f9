"""``/graphql``: the GraphQL endpoint (HTTP GET/POST and graphql-transport-ws subscriptions).

HTTP requests take a direct path, in this order:

1. Authenticate exactly like REST (same 401/429 envelope, ``WWW-Authenticate``, ``X-Request-Id``).
2. Read the body (at most :data:`MAX_BODY` bytes) and look the document up in a parse cache
   (:class:`Documents`): a syntax error or more than ``MAX_TOKENS`` tokens is refused here.
3. Refuse introspection when the settings turn it off.
4. Estimate the cost (``gql.cost``); refuse one above ``MAX_COST``; charge the estimate to the
   tenant's budget (``services.limiter.check_request(principal, cost)``).
5. Serve a cached response when the same normalized document, operation, variables and scoring run
   were answered before (:class:`ResponseCache`); only operations made of public data fields are
   cached, never ``viewer`` or admin fields, and the per-caller ``extensions.cost`` is added to the
   cached bytes on the way out.
6. Otherwise execute with Strawberry (parse and validation cached there too; depth, alias and token
   limits; masked unexpected errors) and encode with orjson.

Websockets go to Strawberry's graphql-transport-ws handler; the key comes from the
``connection_init`` payload (``{"Authorization": "Bearer sk_live_..."}``) or the upgrade request's
``Authorization`` header, and each push re-checks that the key is still usable.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    parse,
    print_ast,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.graphql import OperationType as StrawberryOperationType
from strawberry.types.unset import UNSET, UnsetType

from gql.context import Context
from gql.cost import MAX_COST, OBJECTS_PER_POINT, actual_cost, estimate
from gql.errors import ApiError, from_exception
from gql.rest import authenticate, error_response, new_request_id
from gql.schema import MAX_TOKENS, is_expected
from tenants.errors import TenantError

__all__ = ["MAX_BODY", "PUBLIC_ROOT_FIELDS", "Documents", "GraphQLView", "ResponseCache"]

log = logging.getLogger("insider_selling.gql.http")

MAX_BODY = 64 * 1024
#: Root fields whose answer depends only on the run and the arguments (not on who asks).
PUBLIC_ROOT_FIELDS = frozenset({"insiderSelling", "coin", "scoreHistory", "signal", "__typename"})
_INTROSPECTION = frozenset({"__schema", "__type"})


# -- documents ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Document:
    """A parsed document and what the view needs to know about it, computed once per text."""

    ast: DocumentNode | None
    error: GraphQLError | None = None
    normalized: str = ""
    operations: dict[str | None, OperationDefinitionNode] = field(default_factory=dict)
    fragments: dict[str, FragmentDefinitionNode] = field(default_factory=dict)
    introspection: bool = False
    public: dict[str | None, bool] = field(default_factory=dict)  # per operation: cacheable root fields
    costs: dict[tuple[str | None, bytes], int] = field(default_factory=dict)  # (operation, variables) -> cost

    def operation(self, name: str | None) -> OperationDefinitionNode | None:
        if name is None and len(self.operations) == 1:
            return next(iter(self.operations.values()))
        return self.operations.get(name)


def _root_fields(selections: Any, fragments: dict[str, FragmentDefinitionNode], seen: set[str]) -> set[str]:
    names: set[str] = set()
    for sel in selections:
        if isinstance(sel, FieldNode):
            names.add(sel.name.value)
        elif isinstance(sel, InlineFragmentNode):
            names |= _root_fields(sel.selection_set.selections, fragments, seen)
        elif isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments and sel.name.value not in seen:
            seen.add(sel.name.value)
            names |= _root_fields(fragments[sel.name.value].selection_set.selections, fragments, seen)
    return names


def _uses_introspection(doc: DocumentNode) -> bool:
    stack: list[Any] = list(doc.definitions)
    while stack:
        node = stack.pop()
        if isinstance(node, FieldNode) and node.name.value in _INTROSPECTION:
            return True
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)
    return False


class Documents:
    """An LRU of analysed documents keyed by the query text (bounded: texts come from clients)."""

    def __init__(self, maxsize: int = 512) -> None:
        self.maxsize = maxsize
        self._docs: OrderedDict[str, Document] = OrderedDict()

    def get(self, query: str) -> Document:
        doc = self._docs.get(query)
        if doc is not None:
            self._docs.move_to_end(query)
            return doc
        doc = self._analyse(query)
        self._docs[query] = doc
        if len(self._docs) > self.maxsize:
            self._docs.popitem(last=False)
        return doc

    @staticmethod
    def _analyse(query: str) -> Document:
        try:
            ast = parse(query, max_tokens=MAX_TOKENS)
        except GraphQLError as error:
            return Document(None, error=error)
        operations = {d.name.value if d.name else None: d for d in ast.definitions
                      if isinstance(d, OperationDefinitionNode)}
        fragments = {d.name.value: d for d in ast.definitions if isinstance(d, FragmentDefinitionNode)}
        public = {name: op.operation == OperationType.QUERY
                  and _root_fields(op.selection_set.selections, fragments, set()) <= PUBLIC_ROOT_FIELDS
                  for name, op in operations.items()}
        return Document(ast, normalized=print_ast(ast), operations=operations, fragments=fragments,
                        introspection=_uses_introspection(ast), public=public)


# -- the response cache ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CachedResponse:
    prefix: bytes  # b'{"data":...' without the closing brace: extensions are per caller
    actual: int


class ResponseCache:
    """Encoded responses of public operations, per scoring run. Holds no tenant data: only
    error-free responses of :data:`PUBLIC_ROOT_FIELDS` operations are stored, and they are served
    only to keys with ``signals:read`` (what those fields require)."""

    def __init__(self, maxsize: int = 1024, max_bytes: int = 64 * 1024 * 1024) -> None:
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

    def put(self, key: tuple[str, str | None, bytes, str], entry: CachedResponse) -> None:
        self._roll(key[3])
        if len(entry.prefix) > self.max_bytes // 8:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.prefix)
        self._entries[key] = entry
        self._bytes += len(entry.prefix)
        while len(self._entries) > self.maxsize or self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.prefix)


# -- errors ------------------------------------------------------------------------------------


class RequestError(Exception):
    """A request refused before execution, rendered as ``{"errors": [...]}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 **extensions: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extensions = extensions


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

    return {"limit": number("RateLimit-Limit"), "remaining": number("RateLimit-Remaining"),
            "resetSeconds": number("RateLimit-Reset")}


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

    def __init__(self, schema: BaseSchema, *, introspection: bool, graphiql: bool,
                 response_cache: ResponseCache | None = None, documents: Documents | None = None) -> None:
        super().__init__(
            schema, graphql_ide="graphiql" if graphiql else None, allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
        )
        self.introspection = introspection
        self.graphiql = graphiql
        self.documents = documents or Documents()
        self.responses = response_cache if response_cache is not None else ResponseCache()
        self._graphql_schema = schema._schema  # type: ignore[attr-defined]
        _quiet_expected_errors()

    @property
    def graphql_ide_html(self) -> str:
        """Strawberry's GraphiQL page, loading its scripts from this server (see ``gql/static``), with the
        Authorization header template and a hint (``gql/static/pages/graphiql.html``)."""
        from gql.pages import graphiql_page  # gql.pages imports this module

        return graphiql_page()

    # -- websockets (Strawberry's handler) --
    async def get_context(self, request: Request | WebSocket, response: Any = None) -> Context:
        services = request.app.state.services
        client = request.client.host if request.client else "unknown"
        return Context.build(services, None, request=request, response=response, client=client,
                             authorization=request.headers.get("authorization"))

    async def on_ws_connect(self, context: Context) -> UnsetType:
        params = context.connection_params or {}
        header = params.get("Authorization") or params.get("authorization") or context.authorization
        if not isinstance(header, str):
            header = None
        try:
            context.principal = await context.services.authenticator.authenticate(header, context.client)
        except TenantError:
            raise ConnectionRejectionError from None
        context.authorization = header
        return cast(UnsetType, UNSET)

    # -- HTTP --
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        response = await self.handle_http(request)
        await response(scope, receive, send)

    def _wants_ide(self, request: Request) -> bool:
        return (request.method == "GET" and "query" not in request.query_params
                and "text/html" in request.headers.get("accept", ""))

    async def handle_http(self, request: Request) -> Response | JSONBytes:
        started = time.perf_counter()
        request_id = new_request_id()
        if self._wants_ide(request):
            if self.graphiql:
                return HTMLResponse(self.graphql_ide_html, headers={"X-Request-Id": request_id})
            return error_response(ApiError(404, "graphiql_disabled", "GraphiQL is turned off on this server"),
                                  request_id, started)
        if request.method not in ("GET", "POST"):
            return error_response(ApiError(405, "method_not_allowed", "use GET or POST for /graphql"),
                                  request_id, started, {"Allow": "GET, POST"})
        services = request.app.state.services
        headers: dict[str, str] = {"X-Request-Id": request_id}
        try:
            principal = await authenticate(services, request)
        except ApiError as error:
            return error_response(error, request_id, started, getattr(error, "headers", None))
        try:
            return await self._execute(request, services, principal, headers)
        except RequestError as error:
            body = {"errors": [{"message": error.message, "extensions": {"code": error.code, **error.extensions}}]}
            return Response(orjson.dumps(body), status_code=error.status, media_type="application/json",
                            headers={**headers, **error.headers})

    async def _read(self, request: Request) -> tuple[str, dict[str, Any] | None, str | None]:
        if request.method == "GET":
            params = request.query_params
            raw_vars = params.get("variables")
            query, name = params.get("query"), params.get("operationName")
            try:
                variables = orjson.loads(raw_vars) if raw_vars else None
            except orjson.JSONDecodeError:
                raise RequestError(400, "bad_request", "variables must be a JSON object") from None
        else:
            if "json" not in request.headers.get("content-type", ""):
                raise RequestError(415, "unsupported_media_type", "send Content-Type: application/json")
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    raise RequestError(413, "request_too_large", f"the request body exceeds {MAX_BODY} bytes")
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise RequestError(400, "bad_request", "the body is not valid JSON") from None
            if isinstance(payload, list):
                raise RequestError(400, "batching_unsupported", "send one operation per request")
            if not isinstance(payload, dict):
                raise RequestError(400, "bad_request", "the body must be a JSON object with a query")
            query, variables, name = payload.get("query"), payload.get("variables"), payload.get("operationName")
        if not isinstance(query, str) or not query.strip():
            raise RequestError(400, "bad_request", "a GraphQL query is required")
        if variables is not None and not isinstance(variables, dict):
            raise RequestError(400, "bad_request", "variables must be a JSON object")
        if name is not None and not isinstance(name, str):
            raise RequestError(400, "bad_request", "operationName must be a string")
        return query, variables, name

    async def _charge(self, services: Any, principal: Any, cost: int, headers: dict[str, str]) -> dict[str, str]:
        if services.limiter is None:
            return {}
        try:
            limits: dict[str, str] = await services.limiter.check_request(principal, cost)
        except ApiError as error:
            extra = dict(getattr(error, "headers", None) or {})
            if error.retry_after is not None:
                extra["Retry-After"] = str(max(1, int(error.retry_after + 0.999)))
            code = "budget_exceeded" if error.status == 429 else error.code
            raise RequestError(error.status, code, f"{error.message} (this query costs {cost})",
                               headers=extra, cost={"requested": cost}) from None
        headers.update(limits)
        return limits

    async def _execute(self, request: Request, services: Any, principal: Any,
                       headers: dict[str, str]) -> JSONBytes:
        query, variables, name = await self._read(request)
        doc = self.documents.get(query)
        if doc.ast is None:
            assert doc.error is not None
            await self._charge(services, principal, 1, headers)
            raise RequestError(400, "graphql_parse_failed", doc.error.message)
        if doc.introspection and not self.introspection:
            raise RequestError(400, "introspection_disabled", "introspection is turned off on this server")
        operation = doc.operation(name)
        if operation is None:
            raise RequestError(400, "operation_not_found",
                               "name the operation to run with operationName" if name is None
                               else f"no operation named {name!r} in the document")
        if request.method == "GET" and operation.operation != OperationType.QUERY:
            raise RequestError(405, "method_not_allowed", "only queries may be sent with GET; use POST",
                               headers={"Allow": "POST"})
        if operation.operation == OperationType.SUBSCRIPTION:
            raise RequestError(400, "use_websocket", "subscriptions run over graphql-transport-ws at /graphql")
        variables_key = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)
        requested = doc.costs.get((name, variables_key), 0)
        if not requested:
            requested = estimate(self._graphql_schema, operation, doc.fragments, variables).points
            if len(doc.costs) < 64:
                doc.costs[(name, variables_key)] = requested
        if requested > MAX_COST:
            raise RequestError(400, "query_too_expensive",
                               f"this query may cost {requested}, above the maximum of {MAX_COST} per query "
                               f"(1 per {OBJECTS_PER_POINT} objects it may return); lower first/limit or "
                               f"select fewer nested lists", cost={"requested": requested, "maximum": MAX_COST})
        limits = await self._charge(services, principal, requested, headers)

        key = None
        if doc.public.get(operation.name.value if operation.name else None) and principal.has("signals:read"):
            run = await services.leaderboard.current_run()
            if run is not None:
                key = (doc.normalized, name, variables_key, run["run_id"])
                cached = self.responses.get(key)
                if cached is not None:
                    cost = {"requested": requested, "actual": cached.actual, **_budget(limits)}
                    return self._respond(cached.prefix, cost, 200, headers)

        context = Context.build(services, principal, request=request,
                                client=request.client.host if request.client else "unknown",
                                authorization=request.headers.get("authorization"))
        allowed = {StrawberryOperationType.QUERY} if request.method == "GET" else {
            StrawberryOperationType.QUERY, StrawberryOperationType.MUTATION}
        result = await self.schema.execute(query, variable_values=variables, context_value=context,
                                           operation_name=name, allowed_operation_types=allowed)
        errors = result.errors or []
        actual = actual_cost(result.data) if result.data is not None else 1
        status = _status(errors, result.data)
        prefix = b'{"data":' + orjson.dumps(result.data)
        if errors:
            prefix += b',"errors":' + orjson.dumps([format_error(e) for e in errors])
            for error in errors:
                retry = getattr(error.original_error, "retry_after", None)
                if retry is not None:
                    headers["Retry-After"] = str(max(1, int(retry + 0.999)))
        elif key is not None and not context.private:
            self.responses.put(key, CachedResponse(prefix, actual))
        cost = {"requested": requested, "actual": actual, **_budget(limits)}
        return self._respond(prefix, cost, status, headers)

    @staticmethod
    def _respond(prefix: bytes, cost: dict[str, Any], status: int, headers: dict[str, str]) -> JSONBytes:
        return JSONBytes(prefix + b',"extensions":' + orjson.dumps({"cost": cost}) + b"}", status, headers)


class JSONBytes:
    """An already encoded JSON response sent as two ASGI messages (the hot path skips Starlette's
    ``Response`` header machinery, which costs more than the cache lookup)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, body: bytes, status: int, headers: dict[str, str]) -> None:
        self.body, self.status, self.headers = body, status, headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(self.body)).encode())]
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        await send({"type": "http.response.body", "body": self.body})
