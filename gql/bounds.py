"""Shape limits of a parsed GraphQL document, checked in time linear in its size.

Depth, aliases, repeated response names and fragment use are measured on the document as written:
a fragment is measured once (memoized by name), however many times it is spread, so a document
whose fragments spread each other twice per level (2^24 fields from 1 KB) costs what its text
costs. A spread of an unknown fragment, or a cycle of fragments, is an error here rather than a
crash further on.

The merge limit exists because graphql-core's ``OverlappingFieldsCanBeMerged`` rule compares
every pair of fields that share a response name, and recursively their sub-selections: 500 copies
of ``signal { modelVersion }`` (12 KB) take it two seconds, and two copies per level nested eight
deep (4 KB) a third of one. :data:`MAX_MERGE_PAIRS` bounds the pairs it can meet; a real query
repeats a field a few times at most (through fragments).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    NameNode,
    Node,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
)

__all__ = ["MAX_ALIASES", "MAX_DEPTH", "MAX_MERGE_PAIRS", "Shape", "check_shape"]

MAX_DEPTH = 8
#: Introspection (``__schema``, ``__type`` and fragments on ``__Type``...) is schema metadata: it
#: does not count toward :data:`MAX_DEPTH` (the standard introspection query GraphiQL sends nests
#: ``ofType`` nine deep), but it is walked like the rest, against this larger limit.
MAX_INTROSPECTION_DEPTH = 24
MAX_ALIASES = 30
#: Pairs of fields that share a response name, summed over the document's merged field tree
#: (fragments expanded): the work of graphql-core's field-merging rule grows with this number.
MAX_MERGE_PAIRS = 500
#: Fragments spread within fragments, this many deep at most (keeps every walk's recursion short).
MAX_FRAGMENT_NESTING = 32


@dataclass(frozen=True, slots=True)
class Shape:
    depth: int
    aliases: int


class _Refused(Exception):
    def __init__(self, message: str, node: Node | None) -> None:
        super().__init__(message)
        self.message = message
        self.node = node


class _Walker:
    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self._heights: dict[str, int] = {}
        self._flat: dict[int, list[FieldNode]] = {}
        self._keep: list[SelectionSetNode] = []
        self._pairs: dict[tuple[int, ...], int] = {}
        self._open: set[str] = set()

    def fragment(self, spread: FragmentSpreadNode) -> FragmentDefinitionNode:
        name = spread.name.value
        fragment = self.fragments.get(name)
        if fragment is None:
            raise _Refused(f"Unknown fragment '{name}'.", spread)
        if name in self._open:
            raise _Refused(f"Cannot spread fragment '{name}' within itself.", spread)
        if len(self._open) >= MAX_FRAGMENT_NESTING:
            raise _Refused(f"fragments are nested more than {MAX_FRAGMENT_NESTING} deep", spread)
        return fragment

    def height(self, selections: Iterable[SelectionNode], level: int = 0, limit: int = MAX_DEPTH) -> int:
        """Levels of fields below this selection set (0 when it holds only leaves); ``level`` is
        the set's own level, so a too deep document is refused on the way down. Introspection
        parts are walked against :data:`MAX_INTROSPECTION_DEPTH` and count 0."""
        if level > limit:
            raise _Refused(f"the query exceeds the maximum depth of {limit}", None)
        best = 0
        for sel in selections:
            if isinstance(sel, FieldNode):
                if sel.selection_set is not None and sel.name.value.startswith("__"):
                    self.height(sel.selection_set.selections, level + 1, MAX_INTROSPECTION_DEPTH)
                elif sel.selection_set is not None:
                    best = max(best, 1 + self.height(sel.selection_set.selections, level + 1, limit))
            elif isinstance(sel, InlineFragmentNode):
                if _introspection(sel):
                    self.height(sel.selection_set.selections, level, MAX_INTROSPECTION_DEPTH)
                else:
                    best = max(best, self.height(sel.selection_set.selections, level, limit))
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                known = self._heights.get(name)
                if known is None:
                    fragment = self.fragment(sel)
                    self._open.add(name)
                    if _introspection(fragment):
                        self.height(fragment.selection_set.selections, level, MAX_INTROSPECTION_DEPTH)
                        known = 0
                    else:
                        known = self.height(fragment.selection_set.selections, level, limit)
                    self._heights[name] = known
                    self._open.discard(name)
                best = max(best, known)
            if level + best > limit:
                raise _Refused(f"the query exceeds the maximum depth of {limit}", sel)
        return best

    def flat(self, selection_set: SelectionSetNode) -> list[FieldNode]:
        """The fields of one selection set with inline fragments and fragment spreads flattened
        (a fragment spread twice counts once, as graphql-core merges it once), memoized per set."""
        known = self._flat.get(id(selection_set))
        if known is not None:
            return known
        out: list[FieldNode] = []
        seen: set[str] = set()

        def walk(sel_set: SelectionSetNode) -> None:
            for sel in sel_set.selections:
                if isinstance(sel, FieldNode):
                    out.append(sel)
                elif isinstance(sel, InlineFragmentNode):
                    walk(sel.selection_set)
                elif isinstance(sel, FragmentSpreadNode) and sel.name.value not in seen:
                    seen.add(sel.name.value)
                    out.extend(self.flat(self.fragments[sel.name.value].selection_set))

        walk(selection_set)
        self._flat[id(selection_set)] = out
        self._keep.append(selection_set)  # ids stay unique while memoized
        return out

    def pairs(self, group: Sequence[FieldNode]) -> int:
        """Pairs of same-named fields that field merging compares below (and within) ``group``, a
        list of fields merged under one response name: Σ m·(m-1)/2 over the merged tree, where m is
        the number of fields merged at a response path. Memoized per group, saturating."""
        key = tuple(id(node) for node in group)
        known = self._pairs.get(key)
        if known is not None:
            return known
        children: dict[str, list[FieldNode]] = {}
        for node in group:
            if node.selection_set is not None:
                for child in self.flat(node.selection_set):
                    children.setdefault(child.alias.value if child.alias else child.name.value, []).append(child)
        total = 0
        for same in children.values():
            m = len(same)
            total += m * (m - 1) // 2
            if total <= MAX_MERGE_PAIRS:
                total += self.pairs(same)
            if total > MAX_MERGE_PAIRS:
                raise _Refused(
                    f"too many fields to merge (more than {MAX_MERGE_PAIRS} pairs of fields share "
                    f"a response name); select each field once",
                    same[0],
                )
        self._pairs[key] = total
        return total


def _introspection(node: InlineFragmentNode | FragmentDefinitionNode) -> bool:
    """A fragment on an introspection type (``__Type``, ``__Field``...)."""
    return node.type_condition is not None and node.type_condition.name.value.startswith("__")


def _aliases(document: DocumentNode) -> int:
    count = 0
    stack: list[Node] = list(document.definitions)
    while stack:
        node = stack.pop()
        if isinstance(node, FieldNode) and node.alias is not None:
            count += 1
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)
    return count


def check_shape(document: DocumentNode) -> tuple[Shape | None, GraphQLError | None]:
    """The document's depth and alias count, or the first limit it breaks (as a GraphQL
    validation error). Each definition and each fragment is visited a bounded number of times."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    walker = _Walker(fragments)
    depth = 0
    try:
        aliases = _aliases(document)
        if aliases > MAX_ALIASES:
            raise _Refused(f"{aliases} aliases found; the maximum is {MAX_ALIASES}", None)
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                depth = max(depth, walker.height(definition.selection_set.selections))
            elif isinstance(definition, FragmentDefinitionNode):  # unused ones are checked too
                walker.height([FragmentSpreadNode(name=definition.name)])
        # every fragment is known and acyclic now: measure field merging
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
                walker.pairs([FieldNode(name=NameNode(value="_"), selection_set=definition.selection_set)])
    except _Refused as refused:
        return None, GraphQLError(refused.message, refused.node)
    return Shape(depth, aliases), None
