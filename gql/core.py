"""The graphql-core schema of the Strawberry schema (built from Strawberry's public attributes), and
the scope each root field asks for, read from its permission classes."""

from __future__ import annotations

from typing import cast

from graphql import GraphQLNamedType, GraphQLObjectType, GraphQLSchema, OperationType
from strawberry import Schema
from strawberry.schema.base import BaseSchema

__all__ = ["core_schema", "required_scopes"]


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


def required_scopes(schema: GraphQLSchema) -> dict[tuple[OperationType, str], str]:
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
