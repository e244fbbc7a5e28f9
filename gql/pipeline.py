"""The request pipeline of ``/graphql``: after the :class:`gql.admission.Gate` has authenticated
the caller, every operation, whatever its transport, passes the same steps, in this order.

1. **read** the document: at most :data:`gql.limits.MAX_DOCUMENT` bytes and ``MAX_TOKENS`` tokens,
   parsed once per text (:class:`gql.documents.Documents`, bounded in bytes).
2. **authorize**: every root field the operation selects needs its scope (``signals:read`` for
   the data); a key without it is refused before anything but one request is charged.
3. **bound** the document: depth, aliases and field merging (:mod:`gql.bounds`), the cost estimate
   (:mod:`gql.cost`), DateTime arguments, then graphql-core's validation; all linear in the text
   except validation, which the bounds keep to a few milliseconds.
4. **charge** the estimated cost to the key's and tenant's per-minute limits and the monthly quota.
   One request of it is charged before the document is parsed (every operation costs at least
   one), so a key past its limit is refused without any document work.
5. **execute**: the transport runs the admitted document (:class:`Admission`), parsed and validated
   already (:class:`gql.extension.AdmittedDocument` hands both to Strawberry).

An operation admitted before (the same transport, text, name and variables) skips steps 1 and 3:
only what depends on the caller runs again (:class:`HotAdmissions`).

HTTP GET, HTTP POST (``gql.graphql_app``) and each graphql-transport-ws ``subscribe`` message
(``gql.sockets``) call :meth:`Pipeline.admit`; a refusal is a :class:`gql.errors.ApiError`, which
each transport renders its own way (an HTTP status, or an ``error`` message on the socket).
"""

from __future__ import annotations

import re
import sys
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    VariableNode,
    get_named_type,
    get_variable_values,
    print_ast,
    specified_rules,
    validate,
)

from gql.admission import Gate, Transport
from gql.core import required_scopes
from gql.cost import MAX_COST, OBJECTS_PER_POINT, estimate
from gql.documents import Document, Documents
from gql.errors import ApiError
from gql.heavy import HEAVY_TEXT, HeavyGate
from gql.limits import MAX_DOCUMENT, check_json_depth
from gql.values import parse_datetime
from tenants.principal import Principal

if TYPE_CHECKING:
    from gql.services import Services

__all__ = ["Admission", "Admitted", "HotAdmissions", "Pipeline", "conceal"]

_ALLOWED: dict[str, frozenset[OperationType]] = {
    "GET": frozenset({OperationType.QUERY}),
    "POST": frozenset({OperationType.QUERY, OperationType.MUTATION}),
    "WS": frozenset({OperationType.QUERY, OperationType.MUTATION, OperationType.SUBSCRIPTION}),
}


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

    def __init__(
        self, schema: GraphQLSchema, gate: Gate, *, introspection: bool, documents: Documents | None = None
    ) -> None:
        self.schema = schema
        self.gate = gate
        self.introspection = introspection
        self.documents = documents if documents is not None else Documents()
        self._scopes = required_scopes(schema)
        self._rules = tuple(specified_rules)
        self.heavy = HeavyGate()
        self.hot = HotAdmissions()

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
        """Read, authorize, bound and charge one operation of an authenticated caller (see
        :class:`gql.admission.Gate`); ``headers`` receives the RateLimit-* values. Raises
        :class:`gql.errors.ApiError` for every refusal."""
        check_json_depth(variables, "variables")
        if not isinstance(query, str) or not query.strip():
            raise ApiError(400, "bad_request", "a GraphQL query is required")
        if variables is not None and not isinstance(variables, dict):
            raise ApiError(400, "bad_request", "variables must be a JSON object")
        if name is not None and not isinstance(name, str):
            raise ApiError(400, "bad_request", "operationName must be a string")
        if len(query) > MAX_DOCUMENT:
            raise ApiError(413, "request_too_large", f"the document exceeds {MAX_DOCUMENT} bytes")
        variables_key = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)
        hot_key = (transport, query, name, variables_key)
        admitted = self.hot.get(hot_key)
        if admitted is not None:
            return await self._admit_again(services, principal, admitted, name, variables, variables_key, headers)
        # Every operation costs at least one request, charged before its document is even parsed:
        # a key past its limit is refused for the price of a counter, whatever it sends (and told
        # what the operation costs when it was seen before).
        limits = await self.charge(services, principal, 1, headers, total=self._known_cost(query, name, variables_key))
        async with self.heavy.turn(len(query) >= HEAVY_TEXT and self.documents.peek(query) is None):
            doc = self.documents.get(query)
        if doc.ast is None:
            assert doc.error is not None
            raise ApiError(400, "graphql_parse_failed", doc.error.message[:1000])
        if doc.error is not None:  # a bound of gql.bounds
            raise ApiError(
                400,
                "graphql_validation_failed",
                doc.error.message,
                extensions={"locations": [loc._asdict() for loc in doc.error.locations or ()]},
            )
        if doc.introspection and not self.introspection:
            raise ApiError(400, "introspection_disabled", "introspection is turned off on this server")
        operation = doc.operation(name)
        if operation is None:
            raise ApiError(
                400,
                "operation_not_found",
                "name the operation to run with operationName"
                if name is None
                else f"no operation named {name!r} in the document",
            )
        if operation.operation not in _ALLOWED[transport]:
            if operation.operation == OperationType.SUBSCRIPTION:
                raise ApiError(400, "use_websocket", "subscriptions run over graphql-transport-ws at /graphql")
            raise ApiError(
                405, "method_not_allowed", "only queries may be sent with GET; use POST", headers={"Allow": "POST"}
            )
        self.authorize(principal, doc, operation, name)
        requested = doc.costs.get((name, variables_key), 0)
        if not requested:
            self._check_datetimes(operation, doc, variables)
            requested = estimate(self.schema, operation, doc.fragments, variables).points
            self.documents.grew(doc, doc.remember_cost((name, variables_key), requested))
        if requested > MAX_COST:
            raise ApiError(
                400,
                "query_too_expensive",
                f"this query may cost {requested}, above the maximum of {MAX_COST} per query "
                f"(1 per {OBJECTS_PER_POINT} objects it may return); lower first/limit or "
                f"select fewer nested lists",
                extensions={"cost": {"requested": requested, "maximum": MAX_COST}},
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
                self.gate.require(principal, scope, root)
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
        raise ApiError(
            400,
            "graphql_validation_failed",
            message,
            extensions={"locations": [loc._asdict() for loc in first.locations or ()]},
        )

    def _known_cost(self, query: str, name: str | None, variables_key: bytes) -> int:
        """The operation's cost when this document and these variables were estimated before, else 1."""
        doc = self.documents.peek(query)
        return 1 if doc is None else max(1, doc.costs.get((name, variables_key), 1))

    # 3. authorize
    def authorize(
        self, principal: Principal, doc: Document, operation: OperationDefinitionNode, name: str | None
    ) -> None:
        key = operation.name.value if operation.name else None
        for root in doc.root_fields.get(key if key in doc.root_fields else name, ()):
            scope = self._scopes.get((operation.operation, root))
            if scope is not None:
                self.gate.require(principal, scope, root)

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
            raise ApiError(400, "parameter_invalid", f"{argument}: {message}", param=argument) from None

    # 5. charge
    async def charge(
        self, services: Services, principal: Principal, cost: int, headers: dict[str, str], total: int | None = None
    ) -> dict[str, str]:
        """Charge ``cost`` requests through the gate; a refusal names the operation's whole cost
        (``total``) in its message and ``extensions.cost``."""
        total = cost if total is None else total
        try:
            limits = await self.gate.charge(services, principal, cost)
        except ApiError as error:
            raise ApiError(
                error.status,
                "budget_exceeded" if error.status == 429 else error.code,
                f"{error.message} (this query costs {total})",
                retry_after=error.retry_after,
                headers=error.headers,
                extensions={"cost": {"requested": total}, "reason": error.code},
            ) from None
        headers.update(limits)
        return limits
