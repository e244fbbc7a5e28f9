"""The Strawberry extension that hands execution the document admission parsed and validated."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from gql.bounds import check_shape
from gql.core import core_schema
from gql.limits import MAX_TOKENS

__all__ = ["AdmittedDocument"]


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
