"""The one request pipeline of ``/graphql``: every transport passes the same steps, in this order.

1. **authenticate** the key (:meth:`Pipeline.authenticate`): the REST authenticator, warm cache and
   revocation included; a websocket re-runs it before every operation.
2. **read** the document: at most :data:`MAX_DOCUMENT` bytes, at most ``MAX_TOKENS`` tokens, parsed
   once per text (:class:`Documents`, bounded in bytes).
3. **authorize**: every root field the operation selects needs its scope (``signals:read`` for
   the data); a key without it is refused before anything is charged.
4. **bound** the document: depth, aliases and field merging (:mod:`gql.bounds`), the cost estimate
   (:mod:`gql.cost`), DateTime arguments, then graphql-core's validation; all linear in the text
   except validation, which the bounds keep to a few milliseconds.
5. **charge** the estimated cost to the key's and tenant's per-minute limits and the monthly quota.
   One request of it is charged before the document is parsed (every operation costs at least
   one), so a key past its limit is refused without any document work.
6. **execute**: the transport runs the admitted document (:class:`Admission`), parsed and validated
   already (:class:`AdmittedDocument` hands both to Strawberry).

HTTP GET, HTTP POST (``gql.graphql_app``) and each graphql-transport-ws ``subscribe`` message
(``gql.sockets``) call :meth:`Pipeline.admit`; a refusal is a :class:`RequestError`, which each
transport renders its own way (an HTTP status, or an ``error`` message on the socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    VariableNode,
    get_named_type,
    get_variable_values,
    parse,
    print_ast,
    specified_rules,
    validate,
)
from strawberry import Schema
from strawberry.extensions import SchemaExtension
from strawberry.schema.base import BaseSchema
from strawberry.schema.schema import validate_document

from gql.bounds import check_shape
from gql.cost import MAX_COST, OBJECTS_PER_POINT, estimate
from gql.errors import ApiError, from_exception
from gql.types import parse_datetime
from tenants.errors import TenantError
from tenants.principal import Principal

if TYPE_CHECKING:
    from gql.services import Services

__all__ = [
    "MAX_DOCUMENT",
    "MAX_JSON_DEPTH",
    "MAX_TOKENS",
    "PUBLIC_ROOT_FIELDS",
    "Admission",
    "AdmittedDocument",
    "Document",
    "Documents",
    "HeavyGate",
    "Pipeline",
    "RequestError",
    "Transport",
    "check_json_depth",
    "core_schema",
    "json_too_deep",
]

#: Bytes of one request: an HTTP body, a GET query string's document, a websocket message.
MAX_DOCUMENT = 64 * 1024
MAX_TOKENS = 2000
#: Levels of arrays and objects in any JSON input (variables, extensions, a websocket payload):
#: orjson reads 1,024 levels but writes only 255, and no real input needs more than a few.
MAX_JSON_DEPTH = 32
#: Root fields whose answer depends only on the run and the arguments (not on who asks).
PUBLIC_ROOT_FIELDS = frozenset({"insiderSelling", "coin", "scoreHistory", "signal", "__typename"})
_INTROSPECTION = frozenset({"__schema", "__type"})

Transport = Literal["GET", "POST", "WS"]
_ALLOWED: dict[str, frozenset[OperationType]] = {
    "GET": frozenset({OperationType.QUERY}),
    "POST": frozenset({OperationType.QUERY, OperationType.MUTATION}),
    "WS": frozenset({OperationType.QUERY, OperationType.MUTATION, OperationType.SUBSCRIPTION}),
}


class RequestError(Exception):
    """A request refused before execution, rendered as ``{"errors": [...]}`` with ``status``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        path: list[str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.path = path
        self.extensions = extensions

    def error(self) -> dict[str, Any]:
        """The GraphQL error object."""
        out: dict[str, Any] = {"message": self.message}
        if self.path is not None:
            out["path"] = self.path
        out["extensions"] = {"code": self.code, **self.extensions}
        return out


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
        raise RequestError(
            400,
            "bad_request",
            f"{what} nests JSON more than {MAX_JSON_DEPTH} levels deep (the maximum is {MAX_JSON_DEPTH} levels)",
            param=what,
        )


_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
_QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?", re.IGNORECASE)


def _written(text: str) -> frozenset[str]:
    return frozenset(_NAME.findall(text))


def conceal(message: str, written: frozenset[str]) -> str:
    """``message`` without suggestions and with every quoted part that names something the caller
    did not write (``on type 'Query'``) replaced by ``'…'``: with introspection off, error messages
    reveal no more of the schema than the request did."""
    message = _SUGGESTION.sub("", message)

    def hide(match: re.Match[str]) -> str:
        inner = match.group(1) if match.group(1) is not None else match.group(2)
        return match.group(0) if set(_NAME.findall(inner)) <= written else "'…'"

    return _QUOTED.sub(hide, message)


# -- documents ---------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Document:
    """A parsed document and what the pipeline knows about it, computed once per text."""

    text: str
    ast: DocumentNode | None
    error: GraphQLError | None = None
    normalized: str = ""
    operations: dict[str | None, OperationDefinitionNode] = field(default_factory=dict)
    fragments: dict[str, FragmentDefinitionNode] = field(default_factory=dict)
    introspection: bool = False
    public: dict[str | None, bool] = field(default_factory=dict)  # per operation: cacheable root fields
    root_fields: dict[str | None, list[str]] = field(default_factory=dict)
    costs: dict[tuple[str | None, bytes], int] = field(default_factory=dict)  # (operation, variables) -> cost
    validation: list[GraphQLError] | None = None  # graphql-core's errors, once validated
    size: int = 0  # estimated bytes held (see :class:`Documents`)

    def operation(self, name: str | None) -> OperationDefinitionNode | None:
        if name is None and len(self.operations) == 1:
            return next(iter(self.operations.values()))
        return self.operations.get(name)

    def remember_cost(self, key: tuple[str | None, bytes], cost: int) -> int:
        """Cache a cost per (operation, variables); returns the bytes added (0 when full)."""
        if len(self.costs) >= 16 or len(key[1]) > 4096:
            return 0
        self.costs[key] = cost
        return 100 + len(key[1])


def _root_fields(selections: Any, fragments: Mapping[str, FragmentDefinitionNode], seen: set[str]) -> Iterator[str]:
    for sel in selections:
        if isinstance(sel, FieldNode):
            yield sel.name.value
        elif isinstance(sel, InlineFragmentNode):
            yield from _root_fields(sel.selection_set.selections, fragments, seen)
        elif isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments and sel.name.value not in seen:
            seen.add(sel.name.value)
            yield from _root_fields(fragments[sel.name.value].selection_set.selections, fragments, seen)


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


#: Bytes a parsed document holds per byte of its text, measured with tracemalloc on the schema's
#: queries (AST nodes, tokens' locations, the normalized text): an over-estimate on purpose.
_AST_BYTES_PER_CHAR = 48


class Documents:
    """An LRU of analysed documents keyed by their text, bounded in bytes (the texts come from
    clients: a size that counts only entries would let 512 documents of 64 KB hold gigabytes).
    4 MiB by default: the parsed documents are a hundred thousand objects that every full pass of
    the cyclic garbage collector walks, and that walk stops the event loop."""

    def __init__(self, max_bytes: int = 4 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._docs: OrderedDict[str, Document] = OrderedDict()

    def __len__(self) -> int:
        return len(self._docs)

    def get(self, query: str) -> Document:
        doc = self._docs.get(query)
        if doc is not None:
            self._docs.move_to_end(query)
            return doc
        doc = self._analyse(query)
        doc.size = sys.getsizeof(query) + len(query) * _AST_BYTES_PER_CHAR + len(doc.normalized) + 512
        if doc.size <= self.max_bytes // 16:
            self._docs[query] = doc
            self.bytes += doc.size
            self._evict()
        return doc

    def peek(self, query: str) -> Document | None:
        """The analysed document if it is cached (no parsing, no change of its rank)."""
        return self._docs.get(query)

    def grew(self, doc: Document, added: int) -> None:
        """``doc`` now holds ``added`` more bytes (a cached cost or validation)."""
        if added and self._docs.get(doc.text) is doc:
            doc.size += added
            self.bytes += added
            self._evict()

    def _evict(self) -> None:
        while self.bytes > self.max_bytes and self._docs:
            _, old = self._docs.popitem(last=False)
            self.bytes -= old.size

    @staticmethod
    def _analyse(query: str) -> Document:
        try:
            ast = parse(query, max_tokens=MAX_TOKENS)
        except GraphQLError as error:
            return Document(query, None, error=error)
        except RecursionError:  # nesting deeper than the interpreter's stack
            return Document(query, None, error=GraphQLError("the document is nested too deeply"))
        operations = {
            d.name.value if d.name else None: d for d in ast.definitions if isinstance(d, OperationDefinitionNode)
        }
        fragments = {d.name.value: d for d in ast.definitions if isinstance(d, FragmentDefinitionNode)}
        _, shape_error = check_shape(ast)
        if shape_error is not None:
            return Document(query, ast, error=shape_error, operations=operations, fragments=fragments)
        roots = {
            name: list(dict.fromkeys(_root_fields(op.selection_set.selections, fragments, set())))
            for name, op in operations.items()
        }
        public = {
            name: op.operation == OperationType.QUERY and set(roots[name]) <= PUBLIC_ROOT_FIELDS
            for name, op in operations.items()
        }
        return Document(
            query,
            ast,
            normalized=print_ast(ast),
            operations=operations,
            fragments=fragments,
            introspection=_uses_introspection(ast),
            public=public,
            root_fields=roots,
        )


# -- the event loop's share ---------------------------------------------------------------------

#: Operations estimated at this cost or more execute one at a time (:class:`HeavyGate`).
HEAVY_COST = 10
#: Documents at least this long are parsed and validated one at a time, when not cached already.
HEAVY_TEXT = 2048


class HeavyGate:
    """The heavy steps of a request (parsing and validating a long document not seen before,
    executing an operation of :data:`HEAVY_COST` or more) take turns, one at a time per process,
    each after a turn of the event loop. Each step is bounded (the document's size and tokens, the
    cost estimate), so the loop's time between two polls of its sockets stays bounded by one such
    step however many clients send them: ``/healthz`` and cheap requests are not queued behind a
    pile of expensive ones."""

    def __init__(self) -> None:
        self._lock: asyncio.Lock | None = None

    @contextlib.asynccontextmanager
    async def turn(self, heavy: bool | int = True) -> AsyncIterator[None]:
        if not heavy or (not isinstance(heavy, bool) and heavy < HEAVY_COST):
            yield
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            await asyncio.sleep(0)  # let the loop poll its sockets before this step runs
            yield


# -- admission ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Admission:
    """A request that passed every step but execution."""

    principal: Principal
    document: Document
    operation: OperationDefinitionNode
    name: str | None
    variables: dict[str, Any] | None
    variables_key: bytes
    requested: int  # the estimated cost, charged
    limits: dict[str, str]  # RateLimit-* headers after the charge


class AdmittedDocument(SchemaExtension):
    """Hands Strawberry the pipeline's parsed and validated document (the context's
    ``admission``), so execution neither parses nor validates again. Without an admission (a
    direct ``schema.execute`` in a test) it parses with the token limit and checks the bounds."""

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        admission = getattr(ctx.context, "admission", None)
        if admission is not None and admission.document.text == ctx.query:
            ctx.graphql_document = admission.document.ast
        elif ctx.query is not None:
            ctx.graphql_document = parse(ctx.query, max_tokens=MAX_TOKENS)
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        admission = getattr(ctx.context, "admission", None)
        if admission is not None and admission.document.ast is ctx.graphql_document:
            ctx.pre_execution_errors = list(admission.document.validation or [])
        elif ctx.graphql_document is not None:
            _, shape_error = check_shape(ctx.graphql_document)
            ctx.pre_execution_errors = (
                [shape_error]
                if shape_error is not None
                else validate_document(core_schema(ctx.schema), ctx.graphql_document, ctx.validation_rules)
            )
        yield


_CORE_SCHEMAS: dict[int, tuple[Schema, GraphQLSchema]] = {}


def core_schema(schema: BaseSchema) -> GraphQLSchema:
    """The graphql-core schema of a Strawberry schema, built from Strawberry's public attributes.

    Strawberry keeps the schema it executes with in a private attribute; this one is made of the
    same type objects (``schema.schema_converter`` converts each definition once and returns the
    same graphql-core type every time), so validation, variable coercion and the cost estimate see
    exactly the types, scalars and permissions execution uses. Built once per schema."""
    if not isinstance(schema, Schema):
        raise TypeError(f"a strawberry.Schema is needed, not {type(schema).__name__}")
    cached = _CORE_SCHEMAS.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    converter = schema.schema_converter

    def root(kind: type | None) -> GraphQLObjectType | None:
        return None if kind is None else converter.from_object(kind.__strawberry_definition__)  # type: ignore[attr-defined]

    query = root(schema.query)
    assert query is not None
    core = GraphQLSchema(
        query=query,
        mutation=root(schema.mutation),
        subscription=root(schema.subscription),
        types=[cast(GraphQLNamedType, concrete.implementation) for concrete in converter.type_map.values()],
    )
    if len(_CORE_SCHEMAS) >= 64:  # bounded: tests build many schemas
        _CORE_SCHEMAS.clear()
    _CORE_SCHEMAS[id(schema)] = (schema, core)
    return core


def _required_scopes(schema: GraphQLSchema) -> dict[tuple[OperationType, str], str]:
    """The scope each root field's permission class asks for (fields that check inside their
    resolver, or need only a key, are absent)."""
    out: dict[tuple[OperationType, str], str] = {}
    roots = (
        (OperationType.QUERY, schema.query_type),
        (OperationType.MUTATION, schema.mutation_type),
        (OperationType.SUBSCRIPTION, schema.subscription_type),
    )
    for kind, root in roots:
        if root is None:
            continue
        for name, field_def in root.fields.items():
            definition = (field_def.extensions or {}).get("strawberry-definition")
            for permission in getattr(definition, "permission_classes", ()) or ():
                scope = getattr(permission, "scope", None)
                if isinstance(scope, str):
                    out[(kind, name)] = scope
                    break
    return out


@dataclass(slots=True, frozen=True)
class Admitted:
    """What admission decided for one operation it admitted before: the document (parsed, bounded,
    validated, its variables coerced), the operation, the scope each root field needs and the
    estimated cost. Nothing in it depends on who asked."""

    document: Document
    operation: OperationDefinitionNode
    scopes: tuple[tuple[str, str], ...]  # (root field, scope) in the document's order
    requested: int
    size: int


class HotAdmissions:
    """An LRU of :class:`Admitted` keyed by the transport, the document text, the operation name
    and the variables (their sorted JSON), bounded in entries and in bytes (the documents it holds
    count in full: an entry keeps its document alive after :class:`Documents` let it go)."""

    def __init__(self, maxsize: int = 1024, max_bytes: int = 4 * 1024 * 1024) -> None:
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[tuple[str, str, str | None, bytes], Admitted] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, str, str | None, bytes]) -> Admitted | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple[str, str, str | None, bytes], entry: Admitted) -> None:
        if entry.size > self.max_bytes // 16 or key in self._entries:
            return
        self._entries[key] = entry
        self.bytes += entry.size
        while len(self._entries) > self.maxsize or self.bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self.bytes -= old.size


class Pipeline:
    """The steps every ``/graphql`` operation passes (see the module docstring)."""

    def __init__(self, schema: GraphQLSchema, *, introspection: bool, documents: Documents | None = None) -> None:
        self.schema = schema
        self.introspection = introspection
        self.documents = documents if documents is not None else Documents()
        self._scopes = _required_scopes(schema)
        self._rules = tuple(specified_rules)
        self.heavy = HeavyGate()
        self.hot = HotAdmissions()

    # 1. authenticate
    @staticmethod
    async def authenticate(services: Services, authorization: str | None, client: str) -> Principal:
        """The caller's principal, or :class:`gql.errors.ApiError` (401, or 429 after too many
        failures), exactly as REST answers it."""
        try:
            return await services.authenticator.authenticate(authorization, client)
        except TenantError as exc:
            raise from_exception(exc) from None

    # 2-5
    async def admit(
        self,
        services: Services,
        principal: Principal,
        query: object,
        variables: object,
        name: object,
        transport: Transport,
        headers: dict[str, str],
    ) -> Admission:
        """Read, authorize, bound and charge one operation; ``headers`` receives the RateLimit-*
        values. Raises :class:`RequestError` for every refusal."""
        check_json_depth(variables, "variables")
        if not isinstance(query, str) or not query.strip():
            raise RequestError(400, "bad_request", "a GraphQL query is required")
        if variables is not None and not isinstance(variables, dict):
            raise RequestError(400, "bad_request", "variables must be a JSON object")
        if name is not None and not isinstance(name, str):
            raise RequestError(400, "bad_request", "operationName must be a string")
        if len(query) > MAX_DOCUMENT:
            raise RequestError(413, "request_too_large", f"the document exceeds {MAX_DOCUMENT} bytes")
        variables_key = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)
        hot_key = (transport, query, name, variables_key)
        admitted = self.hot.get(hot_key)
        if admitted is not None:
            return await self._admit_again(services, principal, admitted, name, variables, variables_key, headers)
        # Every operation costs at least one request, charged before its document is even parsed:
        # a key past its limit is refused for the price of a counter, whatever it sends.
        try:
            limits = await self.charge(services, principal, 1, headers)
        except RequestError as refused:
            known = self._known_cost(query, name, variables)
            if known > 1:  # say what the operation costs when it was seen before
                refused.message = refused.message.replace("(this query costs 1)", f"(this query costs {known})")
                refused.extensions["cost"] = {"requested": known}
            raise
        async with self.heavy.turn(len(query) >= HEAVY_TEXT and self.documents.peek(query) is None):
            doc = self.documents.get(query)
        if doc.ast is None:
            assert doc.error is not None
            raise RequestError(400, "graphql_parse_failed", doc.error.message[:1000])
        if doc.error is not None:  # a bound of gql.bounds
            raise RequestError(
                400,
                "graphql_validation_failed",
                doc.error.message,
                locations=[loc._asdict() for loc in doc.error.locations or ()],
            )
        if doc.introspection and not self.introspection:
            raise RequestError(400, "introspection_disabled", "introspection is turned off on this server")
        operation = doc.operation(name)
        if operation is None:
            raise RequestError(
                400,
                "operation_not_found",
                "name the operation to run with operationName"
                if name is None
                else f"no operation named {name!r} in the document",
            )
        if operation.operation not in _ALLOWED[transport]:
            if operation.operation == OperationType.SUBSCRIPTION:
                raise RequestError(400, "use_websocket", "subscriptions run over graphql-transport-ws at /graphql")
            raise RequestError(
                405, "method_not_allowed", "only queries may be sent with GET; use POST", headers={"Allow": "POST"}
            )
        self.authorize(principal, doc, operation, name)
        requested = doc.costs.get((name, variables_key), 0)
        if not requested:
            self._check_datetimes(operation, doc, variables)
            requested = estimate(self.schema, operation, doc.fragments, variables).points
            self.documents.grew(doc, doc.remember_cost((name, variables_key), requested))
        if requested > MAX_COST:
            raise RequestError(
                400,
                "query_too_expensive",
                f"this query may cost {requested}, above the maximum of {MAX_COST} per query "
                f"(1 per {OBJECTS_PER_POINT} objects it may return); lower first/limit or "
                f"select fewer nested lists",
                cost={"requested": requested, "maximum": MAX_COST},
            )
        if requested > 1:
            limits = await self.charge(services, principal, requested - 1, headers, total=requested)
        if doc.validation is None:
            async with self.heavy.turn(len(query) >= HEAVY_TEXT):
                doc.validation = self._validate(doc)
            self.documents.grew(doc, 256 * len(doc.validation))
        if not doc.validation and operation.variable_definitions:
            self._check_variables(doc, operation, variables, variables_key)
        if not doc.validation:  # admitted whole: the next request like it skips the document work
            size = doc.size + sys.getsizeof(query) + len(variables_key) + 512
            self.hot.put(hot_key, Admitted(doc, operation, self._root_scopes(doc, operation, name), requested, size))
        return Admission(principal, doc, operation, name, variables, variables_key, requested, limits)

    async def _admit_again(
        self,
        services: Services,
        principal: Principal,
        admitted: Admitted,
        name: str | None,
        variables: dict[str, Any] | None,
        variables_key: bytes,
        headers: dict[str, str],
    ) -> Admission:
        """An operation admitted before (the same transport, text, name and variables): only what
        depends on the caller runs again, in the same order and with the same charges as the first
        time. A key without a root field's scope pays one request and is refused (403); any other
        pays the operation's estimated cost, in one charge."""
        for root, scope in admitted.scopes:
            if not principal.has(scope):
                await self.charge(services, principal, 1, headers)
                raise RequestError(
                    403, "insufficient_scope", f"this key lacks the {scope} scope ({root})", path=[root], scope=scope
                )
        limits = await self.charge(services, principal, admitted.requested, headers)
        return Admission(
            principal,
            admitted.document,
            admitted.operation,
            name,
            variables,
            variables_key,
            admitted.requested,
            limits,
        )

    def _root_scopes(
        self, doc: Document, operation: OperationDefinitionNode, name: str | None
    ) -> tuple[tuple[str, str], ...]:
        """The (root field, scope) pairs :meth:`authorize` checks, in its order."""
        key = operation.name.value if operation.name else None
        pairs = []
        for root in doc.root_fields.get(key if key in doc.root_fields else name, ()):
            scope = self._scopes.get((operation.operation, root))
            if scope is not None:
                pairs.append((root, scope))
        return tuple(pairs)

    def _validate(self, doc: Document) -> list[GraphQLError]:
        """graphql-core's validation; with introspection off, no message names a field, type or
        argument the caller did not write (no suggestions, and other names replaced)."""
        assert doc.ast is not None
        errors = validate(self.schema, doc.ast, self._rules, hide_suggestions=not self.introspection)
        if self.introspection or not errors:
            return errors
        written = _written(doc.text)
        return [
            GraphQLError(conceal(e.message, written), e.nodes, e.source, e.positions, e.path, e.original_error)
            for e in errors
        ]

    def _check_variables(
        self, doc: Document, operation: OperationDefinitionNode, variables: dict[str, Any] | None, key: bytes
    ) -> None:
        """The variables coerced to their declared types before execution, so that their errors
        are worded like validation's (suggestions hidden with introspection off)."""
        coerced = get_variable_values(
            self.schema, operation.variable_definitions or (), variables or {}, max_errors=10, hide_suggestions=True
        )
        if not isinstance(coerced, list):
            return
        written = _written(doc.text) | _written(key.decode("utf-8", "replace"))
        first = coerced[0]
        message = first.message if self.introspection else conceal(first.message, written)
        raise RequestError(
            400,
            "graphql_validation_failed",
            message,
            locations=[loc._asdict() for loc in first.locations or ()],
        )

    def _known_cost(self, query: str, name: str | None, variables: object) -> int:
        doc = self.documents.peek(query)
        if doc is None:
            return 0
        return doc.costs.get((name, orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)), 0)

    # 3. authorize
    def authorize(
        self, principal: Principal, doc: Document, operation: OperationDefinitionNode, name: str | None
    ) -> None:
        key = operation.name.value if operation.name else None
        for root in doc.root_fields.get(key if key in doc.root_fields else name, ()):
            scope = self._scopes.get((operation.operation, root))
            if scope is not None and not principal.has(scope):
                raise RequestError(
                    403, "insufficient_scope", f"this key lacks the {scope} scope ({root})", path=[root], scope=scope
                )

    # 4. bound: arguments anyone can get wrong, named
    def _check_datetimes(
        self, operation: OperationDefinitionNode, doc: Document, variables: Mapping[str, Any] | None
    ) -> None:
        """A ``DateTime`` argument (literal or variable) that is not an ISO 8601 instant with a
        timezone is a 400 naming the argument, before graphql-core would turn it into an error
        without one. Linear: each field node of the document is looked at once."""
        root = {
            OperationType.QUERY: self.schema.query_type,
            OperationType.MUTATION: self.schema.mutation_type,
            OperationType.SUBSCRIPTION: self.schema.subscription_type,
        }.get(operation.operation)
        if root is None:
            return
        seen: set[tuple[str, str]] = set()
        stack: list[tuple[GraphQLObjectType, Any]] = [(root, operation.selection_set.selections)]
        while stack:
            parent, selections = stack.pop()
            for sel in selections:
                if isinstance(sel, FieldNode):
                    field_def = parent.fields.get(sel.name.value)
                    if field_def is None:
                        continue
                    for arg in sel.arguments or ():
                        arg_def = field_def.args.get(arg.name.value)
                        if arg_def is not None and get_named_type(arg_def.type).name == "DateTime":
                            self._check_datetime(arg.name.value, arg.value, variables)
                    child = get_named_type(field_def.type)
                    if isinstance(child, GraphQLObjectType) and sel.selection_set is not None:
                        stack.append((child, sel.selection_set.selections))
                elif isinstance(sel, InlineFragmentNode):
                    stack.append((parent, sel.selection_set.selections))
                elif isinstance(sel, FragmentSpreadNode):
                    fragment = doc.fragments.get(sel.name.value)
                    if fragment is not None and (sel.name.value, parent.name) not in seen:
                        seen.add((sel.name.value, parent.name))
                        stack.append((parent, fragment.selection_set.selections))

    @staticmethod
    def _check_datetime(argument: str, value: Any, variables: Mapping[str, Any] | None) -> None:
        raw: object = None
        if isinstance(value, StringValueNode):
            raw = value.value
        elif isinstance(value, VariableNode):
            raw = (variables or {}).get(value.name.value)
            if raw is None:
                return
        else:
            raw = print_ast(value)
        try:
            parse_datetime(raw)
        except (GraphQLError, ValueError) as error:
            message = error.message if isinstance(error, GraphQLError) else str(error)
            raise RequestError(400, "parameter_invalid", f"{argument}: {message}", param=argument) from None

    # 5. charge
    @staticmethod
    async def charge(
        services: Services, principal: Principal, cost: int, headers: dict[str, str], total: int | None = None
    ) -> dict[str, str]:
        """Charge ``cost`` requests (``total``: the operation's whole cost, for the message)."""
        if services.limiter is None:
            return {}
        try:
            limits: dict[str, str] = await services.limiter.check_request(principal, cost)
        except ApiError as error:
            extra = dict(getattr(error, "headers", None) or {})
            if error.retry_after is not None:
                extra["Retry-After"] = str(max(1, int(error.retry_after + 0.999)))
            code = "budget_exceeded" if error.status == 429 else error.code
            total = cost if total is None else total
            raise RequestError(
                error.status,
                code,
                f"{error.message} (this query costs {total})",
                headers=extra,
                cost={"requested": total},
                reason=error.code,
            ) from None
        headers.update(limits)
        return limits
