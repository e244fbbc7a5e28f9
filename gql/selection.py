"""What a GraphQL selection needs from the store: the store fields under a field of the query
(Strawberry's public ``info.selected_fields``), so a query for ``{ coinId score }`` never loads venues."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strawberry.types import Info
from strawberry.types.nodes import SelectedField, Selection

from gql.context import Context
from scoring.contract import COIN_FIELDS
from scoring.model import SUB_SCORES

__all__ = ["COIN_GRAPHQL_FIELDS", "projection"]

#: GraphQL names of the seed's coin fields, and the store field behind each.
COIN_GRAPHQL_FIELDS: dict[str, str] = {
    "".join(w if i == 0 else w[:1].upper() + w[1:] for i, w in enumerate(name.split("_"))): name for name in COIN_FIELDS
}

_COIN_EXTRA = {"subScores": SUB_SCORES, "venues": ("venues",), "history": ("coin_id",), "coverage": ("coverage",)}
_HISTORY_FIELDS = {
    "at": ("at",),
    "runId": ("run_id",),
    "score": ("score",),
    "manipulationPhase": ("manipulation_phase",),
    "subScores": SUB_SCORES,
    "avgFunding72h": ("avg_funding_72h",),
    "venues": ("venues",),
}


def _children(nodes: Iterable[SelectedField]) -> dict[str, list[SelectedField]]:
    """The fields selected directly under ``nodes`` (through fragments), by field name."""
    out: dict[str, list[SelectedField]] = {}

    def walk(selections: Iterable[Selection]) -> None:
        for sel in selections:
            if isinstance(sel, SelectedField):
                out.setdefault(sel.name, []).append(sel)
            else:  # an inline fragment or a fragment spread (validation refuses cycles)
                walk(sel.selections)

    for node in nodes:
        walk(node.selections)
    return out


def _coin_fields(nodes: Iterable[SelectedField]) -> tuple[str, ...]:
    fields = {"coin_id", "score"}
    for name in _children(nodes):
        if name in COIN_GRAPHQL_FIELDS:
            fields.add(COIN_GRAPHQL_FIELDS[name])
        fields.update(_COIN_EXTRA.get(name, ()))
    return tuple(sorted(fields))


def _history_fields(nodes: Iterable[SelectedField]) -> tuple[str, ...]:
    fields = {"coin_id", "at", "run_id"}
    for name in _children(nodes):
        fields.update(_HISTORY_FIELDS.get(name, ()))
    return tuple(sorted(fields))


def projection(info: Info[Context, Any], *path: str, kind: str = "coin") -> tuple[str, ...]:
    """Store fields needed by the selection under this field (following ``path``), memoized per
    request and response path (list indices left out), so 100 coins asking for history compute it
    once. The selection is Strawberry's public ``info.selected_fields``."""
    memo = info.context.loaders.memo
    where = tuple(key for key in info.path.as_list() if isinstance(key, str))
    key = ("projection", where, path, kind)
    cached = memo.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    nodes = [sel for sel in info.selected_fields if isinstance(sel, SelectedField)]
    for name in path:
        nodes = _children(nodes).get(name, [])
    result = _coin_fields(nodes) if kind == "coin" else _history_fields(nodes)
    memo[key] = result
    return result
