"""Query cost: an estimate before execution (charged to the tenant's budget) and the actual cost after.

The unit is the *request*: the budget is the tenant's per-minute request limit. The estimate
follows what the server does to answer: every field it resolves, leaves included, as many times as
it may be resolved, and a store query for every root field (per alias: thirty aliases are thirty
answers to build, whether or not a cache holds some of them):

    fields = Σ over selected fields of (the number of parents) × (the list size, for a list)
             + :data:`ROOT_QUERY_FIELDS` per root field that reads the store
    cost   = max(1, ceil(fields / 1000))

A list's size is its ``first``/``limit`` argument (or the default of that argument), or that of
the parent field for a list without arguments (``insiderSelling(limit: 100) { coins }``), or
:data:`VENUE_COUNT` for ``venues``; any other list counts :data:`DEFAULT_LIST_SIZE`. A query whose
estimate exceeds :data:`MAX_COST` is refused before it runs, whatever the budget, which bounds the
work (and so the event-loop time) of any one request. The same document costs the same whether the
response cache answers it or not. The actual cost counts the objects in the response.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    get_named_type,
)

__all__ = [
    "DEFAULT_LIST_SIZE",
    "FIELDS_PER_POINT",
    "MAX_COST",
    "OBJECTS_PER_POINT",
    "ROOT_QUERY_FIELDS",
    "Estimate",
    "actual_cost",
    "estimate",
]

FIELDS_PER_POINT = 1000
OBJECTS_PER_POINT = FIELDS_PER_POINT  # the actual cost's unit (objects in the response)
#: What one store query weighs, in fields (a root field other than ``__typename``).
ROOT_QUERY_FIELDS = 100
MAX_COST = 100
VENUE_COUNT = 13
DEFAULT_LIST_SIZE = 100
MAX_LIST_SIZE = 500
_SIZE_ARGS = ("first", "limit", "last")
_MAX_DEPTH = 64
_CEILING = 10**15  # objects: far above any limit, small enough for cheap integers


@dataclass(frozen=True, slots=True)
class Estimate:
    objects: int
    points: int


def points(fields: int) -> int:
    return max(1, math.ceil(fields / FIELDS_PER_POINT))


def _unwrap_list(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def _int_arg(node: FieldNode, field_def: Any, variables: Mapping[str, Any], defaults: Mapping[str, Any]) -> int | None:
    """The field's size argument as given (literal or variable) or its schema default."""
    given = {a.name.value: a.value for a in node.arguments or ()}
    for name in _SIZE_ARGS:
        if name not in field_def.args:
            continue
        value: Any = field_def.args[name].default_value
        if name in given:
            raw = given[name]
            if isinstance(raw, IntValueNode):
                value = int(raw.value)
            elif isinstance(raw, VariableNode):
                var = raw.name.value
                value = variables.get(var, defaults.get(var, value))
        if isinstance(value, int) and not isinstance(value, bool):
            return max(0, min(value, MAX_LIST_SIZE))
        return DEFAULT_LIST_SIZE
    return None


def estimate(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any] | None,
) -> Estimate:
    """Upper bound of the fields the operation may resolve (see the module doc), in time linear
    in the document: a fragment's fields per parent are computed once per (fragment, type, list
    size) and reused wherever it is spread. Safe on any parsed document: unknown fields and fragments are skipped,
    and a fragment already being expanded counts nothing again."""
    variables = variables or {}
    defaults: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        if isinstance(definition.default_value, IntValueNode):
            defaults[definition.variable.name.value] = int(definition.default_value.value)
    root_type = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }.get(operation.operation)
    if root_type is None:
        return Estimate(0, 1)
    root: GraphQLObjectType = root_type
    memo: dict[tuple[str, str, int | None], int] = {}
    expanding: set[str] = set()

    def objects(parent: GraphQLObjectType, selections: Any, parent_size: int | None, depth: int) -> int:
        """Fields resolved below one instance of ``parent`` (saturating at :data:`_CEILING`)."""
        if depth > _MAX_DEPTH:
            return 0
        total = 0
        for sel in selections:
            if isinstance(sel, FieldNode):
                field_def = parent.fields.get(sel.name.value)
                if field_def is None:
                    continue
                if parent is root and not sel.name.value.startswith("__"):
                    total += ROOT_QUERY_FIELDS  # a root field: a store query (or a cache lookup)
                if sel.selection_set is None:
                    total += 1  # a leaf: resolved and serialized once per parent
                    continue
                child = get_named_type(field_def.type)
                size = _int_arg(sel, field_def, variables, defaults)
                if _unwrap_list(field_def.type):
                    if size is None:
                        size = VENUE_COUNT if sel.name.value == "venues" else (parent_size or DEFAULT_LIST_SIZE)
                    n = size
                else:
                    n = 1
                total += n
                if isinstance(child, GraphQLObjectType) and n:
                    total += n * objects(child, sel.selection_set.selections, size, depth + 1)
            elif isinstance(sel, InlineFragmentNode):
                target = parent
                if sel.type_condition is not None:
                    named = schema.get_type(sel.type_condition.name.value)
                    target = named if isinstance(named, GraphQLObjectType) else parent
                total += objects(target, sel.selection_set.selections, parent_size, depth + 1)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                fragment = fragments.get(name)
                if fragment is None or name in expanding:
                    continue
                named = schema.get_type(fragment.type_condition.name.value)
                target = named if isinstance(named, GraphQLObjectType) else parent
                key = (name, target.name, parent_size)
                known = memo.get(key)
                if known is None:
                    expanding.add(name)
                    known = memo[key] = objects(target, fragment.selection_set.selections, parent_size, depth + 1)
                    expanding.discard(name)
                total += known
            if total >= _CEILING:
                return _CEILING
        return total

    total = objects(root, operation.selection_set.selections, None, 0)
    return Estimate(total, points(total))


def actual_cost(data: Any) -> int:
    """Points for the objects actually returned (every JSON object below ``data``)."""
    count = 0
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            count += 1
            stack.extend(v for v in value.values() if isinstance(v, (dict, list)))
        elif isinstance(value, list):
            stack.extend(v for v in value if isinstance(v, (dict, list)))
    return points(max(0, count - 1))
