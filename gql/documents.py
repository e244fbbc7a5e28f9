"""Documents: a GraphQL text parsed and analysed once (operations, fragments, root fields, whether
it is public or uses introspection), kept in an LRU bounded in bytes."""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

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

from gql.bounds import check_shape
from gql.limits import MAX_TOKENS

__all__ = ["PUBLIC_ROOT_FIELDS", "Document", "Documents"]

#: Root fields whose answer depends only on the run and the arguments (not on who asks).
PUBLIC_ROOT_FIELDS = frozenset({"insiderSelling", "coin", "scoreHistory", "signal", "__typename"})
_INTROSPECTION = frozenset({"__schema", "__type"})


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
