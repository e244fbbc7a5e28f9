"""A graphql-core executor with a fast path for plain leaf fields.

Most of a leaderboard response is leaves read straight off an object (``Coin.score``,
``SubScores.fundingMagnitude``): 100 coins × 30 fields. graphql-core builds a ``ResolveInfo``, a
``Path`` and a completion call for each; here a selection's plain leaves are planned once per
executed selection set and then read with ``getattr`` and coerced with the scalar's own
``coerce_output_value`` — the same result graphql-core computes, without the per-field machinery.

A field takes the fast path only when all of these hold: Strawberry's public ``is_basic_field`` says
it is basic (no resolver, no permission or field extension), it has no arguments, its type is a
scalar or enum (optionally non-null, never a list), and no schema extension wraps resolvers (the
public ``middleware_manager.middlewares`` of graphql-core's execution context is empty). Any value the
fast path cannot complete exactly (``None`` for a non-null field, a coercion error) is handed back to
graphql-core's own ``execute_field``, so errors and their paths are the standard ones.

It also never drops a coroutine unawaited. graphql-core runs sibling fields and list items as tasks
(``gather_with_cancel``) and, when one fails with an error that propagates (a non-null field), cancels
the others; a task cancelled before its first step never runs its coroutine, so whatever coroutine
that one was handed (the resolver's ``_async_resolver`` coroutine, a nested selection's
``get_results``) was collected unawaited: "coroutine … was never awaited" on stderr, and "Exception
ignored … KeyError: '__import__'" when that happened at interpreter shutdown. Every coroutine the
executor hands on is therefore wrapped in :class:`_Owned`, which closes it if it is dropped before
being awaited (closing a coroutine that never started runs none of its code and warns nothing).
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from types import CoroutineType
from typing import Any, cast

from graphql import GraphQLNonNull, GraphQLObjectType, Undefined, is_leaf_type
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

__all__ = ["FastExecutor"]

_DEFINITION = "strawberry-definition"

# (response name, attribute, coerce, non_null, field_details_list) or (response name, None, ...) = slow
_Plan = list[tuple[str, str | None, Any, bool, Any]]


class _Owned(Coroutine[Any, Any, Any]):
    """A coroutine that is closed, not dropped, when it is not going to run.

    ``await`` hands the coroutine on at once. A task drives it with ``send``/``throw`` itself, so a
    task cancelled before its first step (``throw`` first) closes it explicitly instead of letting it
    be collected unstarted (possibly in a reference cycle, where the order of finalizers would decide
    whether the coroutines it holds warn). Dropped any other way, ``__del__`` closes it."""

    __slots__ = ("_coroutine", "_running")

    def __init__(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self._coroutine: Coroutine[Any, Any, Any] | None = coroutine
        self._running: Coroutine[Any, Any, Any] | None = None

    def _start(self) -> Coroutine[Any, Any, Any]:
        coroutine, self._coroutine = self._coroutine, None
        if coroutine is None:
            raise RuntimeError("cannot reuse already awaited coroutine")
        return coroutine

    def __await__(self) -> Generator[Any, None, Any]:
        return self._start().__await__()

    def send(self, value: Any) -> Any:
        running = self._running
        if running is None:
            running = self._running = self._start()
        return running.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        running = self._running
        if running is None:  # cancelled before it started: it never runs, so close it
            self.close()
            raise typ if isinstance(typ, BaseException) else typ(val)
        return running.throw(typ) if val is None and tb is None else running.throw(typ, val, tb)

    def close(self) -> None:
        coroutine, self._coroutine = self._coroutine, None
        if coroutine is not None:
            coroutine.close()
        if self._running is not None:
            self._running.close()

    def __del__(self) -> None:
        if self._coroutine is not None:
            self._coroutine.close()


def _owned(value: Any) -> Any:
    return _Owned(value) if type(value) is CoroutineType else value


class FastExecutor(StrawberryGraphQLCoreExecutionContext):
    _plans: dict[tuple[GraphQLObjectType, int], tuple[Any, _Plan]]

    def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> _Plan:
        plans = self.__dict__.setdefault("_plans", {})
        key = (parent_type, id(grouped_field_set))
        cached = plans.get(key)
        if cached is not None:
            return cast(_Plan, cached[1])
        middleware = self.middleware_manager
        no_middleware = middleware is None or not middleware.middlewares
        plan: _Plan = []
        for response_name, details in grouped_field_set.items():
            node = details[0].node
            field_def = parent_type.fields.get(node.name.value)
            attribute = None
            coerce = None
            non_null = False
            if field_def is not None and no_middleware and not node.arguments and not field_def.args:
                definition = (field_def.extensions or {}).get(_DEFINITION)
                resolve = field_def.resolve
                type_ = field_def.type
                non_null = isinstance(type_, GraphQLNonNull)
                inner = type_.of_type if non_null else type_
                if definition is not None and definition.is_basic_field and resolve is not None and is_leaf_type(inner):
                    attribute = definition.python_name
                    coerce = inner.coerce_output_value
            plan.append((response_name, attribute, coerce, non_null, details))
        plans[key] = (grouped_field_set, plan)  # keep the set alive so its id is not reused
        return plan

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        plan = self._plan(parent_type, grouped_field_set)
        if all(step[1] is None for step in plan):
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        results: dict[str, Any] = {}
        slow: dict[str, Any] = {}
        attrs = getattr(source_value, "__dict__", None)
        for response_name, attribute, coerce, non_null, details in plan:
            if attribute is not None:
                try:
                    value = attrs[attribute] if attrs is not None else getattr(source_value, attribute)
                    if value is None:
                        if not non_null:
                            results[response_name] = None
                            continue
                    else:
                        coerced = coerce(value)
                        if coerced is not None and coerced is not Undefined:
                            results[response_name] = coerced
                            continue
                except Exception:  # noqa: S110 - graphql-core reports it below, with its path
                    pass
            results[response_name] = None  # keeps the response's field order
            slow[response_name] = details
        if not slow:
            return results
        rest = super().execute_fields(parent_type, source_value, path, slow, position_context)
        if self.is_awaitable(rest):
            owned = _owned(rest)

            async def merge() -> dict[str, Any]:
                return _merge(results, await owned, slow)

            return _Owned(merge())
        return _merge(results, cast(dict[str, Any], rest), slow)

    # -- every coroutine graphql-core creates is owned (see the module docstring) -----------------

    def execute_field(self, *args: Any) -> Any:
        return _owned(super().execute_field(*args))

    def complete_value(self, *args: Any) -> Any:
        return _owned(super().complete_value(*args))

    def complete_awaitable_value(
        self, return_type: Any, field_details_list: Any, info: Any, path: Any, result: Any, position_context: Any
    ) -> Any:
        # the resolver's own coroutine: its wrapper below may be cancelled before it starts
        return _owned(
            super().complete_awaitable_value(
                return_type, field_details_list, info, path, _owned(result), position_context
            )
        )

    def complete_awaitable_list_item_value(self, item: Any, *args: Any) -> Any:
        return _owned(super().complete_awaitable_list_item_value(_owned(item), *args))

    def complete_list_item_value(self, item: Any, complete_results: list[Any], *args: Any) -> bool:
        awaitable = super().complete_list_item_value(item, complete_results, *args)
        if awaitable:
            complete_results[-1] = _owned(complete_results[-1])
        return awaitable


def _merge(results: dict[str, Any], rest: dict[str, Any], slow: dict[str, Any]) -> dict[str, Any]:
    for name in slow:
        if name in rest:
            results[name] = rest[name]
        else:  # graphql-core omitted it (Undefined): so do we
            del results[name]
    return results
