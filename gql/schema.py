"""The root GraphQL schema: a pure type definition, built at import without any I/O.

``schema.graphql`` at the repository root is ``strawberry export-schema gql.schema:schema``; a test
fails when it drifts. Per-request state (the caller, the services, DataLoaders) arrives through the
context built by ``gql.graphql_app``.

Protections live in the request pipeline (``gql.pipeline``), which every transport passes before
execution: token, depth, alias, field-merging and cost limits, then validation, once per document
text. Here, unexpected errors are masked (expected ones carry ``extensions.code``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info

from gql import resolvers
from gql.admin import AdminMutation, AdminQuery
from gql.bounds import MAX_ALIASES, MAX_DEPTH
from gql.context import Context
from gql.execution import FastExecutor
from gql.extension import AdmittedDocument
from gql.graphql_errors import MaskUnexpected
from gql.limits import MAX_TOKENS
from gql.permissions import SignalsRead
from gql.track import DEFAULT_SPAN_DAYS, MAX_SPAN_DAYS, ScoreBand, TrackRecordReport, TrackWindow, track_record
from gql.types import DATETIME, Coin, InsiderSelling, ScoreHistoryConnection, ScoringRun, Signal
from gql.webhooks import WebhookMutation, WebhookQuery
from scoring.track import MAX_TOP_N, TOP_N

__all__ = ["MAX_ALIASES", "MAX_DEPTH", "MAX_TOKENS", "schema"]

log = logging.getLogger("insider_selling.gql")


@strawberry.type
class Query(AdminQuery, WebhookQuery):
    @strawberry.field(
        permission_classes=[SignalsRead],
        description="Coins ranked by their composite pressure score: the REST data object.",
    )
    async def insider_selling(
        self,
        info: Info[Context, None],
        limit: Annotated[int, strawberry.argument(description="Maximum coins, 1 to 500.")] = 100,
        min_score: Annotated[float, strawberry.argument(description="Only scores >= this, 0 to 10.")] = 0.0,
        as_of: Annotated[
            datetime | None,
            strawberry.argument(
                description=(
                    "Point in time: what the run in force then served (from the stored runs); an error "
                    "before the retention limit."
                )
            ),
        ] = None,
    ) -> InsiderSelling:
        return await resolvers.insider_selling(info, limit, min_score, as_of)

    @strawberry.field(
        permission_classes=[SignalsRead],
        description="A coin scored at the latest run (also one at 0, which the ranking omits).",
    )
    async def coin(self, info: Info[Context, None], coin_id: strawberry.ID) -> Coin | None:
        return await resolvers.coin(info, str(coin_id))

    @strawberry.field(
        permission_classes=[SignalsRead],
        description=(
            "Coins of the latest run, listed or not (a coin at 0 too), whose symbol, name or id contains "
            "the text (case ignored): an exact symbol or id first, then prefixes, then the rest."
        ),
    )
    async def search_coins(
        self,
        info: Info[Context, None],
        text: Annotated[
            str, strawberry.argument(description=f"What to look for, 1 to {resolvers.MAX_SEARCH_TEXT} characters.")
        ],
        first: Annotated[
            int, strawberry.argument(description=f"How many coins at most, 1 to {resolvers.MAX_SEARCH}.")
        ] = 10,
    ) -> list[Coin]:
        return await resolvers.search_coins(info, text, first)

    @strawberry.field(
        permission_classes=[SignalsRead],
        description="A coin's scores over succeeded runs, newest first, as a Relay connection.",
    )
    async def score_history(
        self,
        info: Info[Context, None],
        coin_id: strawberry.ID,
        from_: Annotated[
            datetime | None, strawberry.argument(name="from", description="Earliest run time (inclusive).")
        ] = None,
        to: Annotated[datetime | None, strawberry.argument(description="Latest run time (inclusive).")] = None,
        first: Annotated[int, strawberry.argument(description=f"Page size, 1 to {resolvers.MAX_FIRST}.")] = 100,
        after: Annotated[str | None, strawberry.argument(description="endCursor of the previous page.")] = None,
    ) -> ScoreHistoryConnection:
        return await resolvers.score_history(info, str(coin_id), from_, to, first, after)

    @strawberry.field(permission_classes=[SignalsRead], description="Methodology and run timing of the signal.")
    async def signal(self, info: Info[Context, None]) -> Signal:
        return await resolvers.signal(info)

    @strawberry.field(
        permission_classes=[SignalsRead],
        description="The latest scoring runs of any status, newest first, with each venue's outcome.",
    )
    async def runs(
        self,
        info: Info[Context, None],
        first: Annotated[int, strawberry.argument(description=f"How many, 1 to {resolvers.MAX_RUNS}.")] = 10,
    ) -> list[ScoringRun]:
        return await resolvers.runs(info, first)

    @strawberry.field(permission_classes=[SignalsRead], description="One scoring run by its id (null when unknown).")
    async def run(self, info: Info[Context, None], id: strawberry.ID) -> ScoringRun | None:
        return await resolvers.run_by_id(info, str(id))

    @strawberry.field(
        permission_classes=[SignalsRead],
        description=(
            "The live track record: realized forward excess returns (against the universe median) of the "
            "runs whose window has closed, with 95 % intervals, by selection; and the chart's series."
        ),
    )
    async def track_record(
        self,
        info: Info[Context, None],
        window: Annotated[TrackWindow, strawberry.argument(description="24 h or 7 d returns.")] = TrackWindow.H24,
        model_version: Annotated[
            str | None, strawberry.argument(description="Only runs scored by this model version.")
        ] = None,
        band: Annotated[
            ScoreBand | None, strawberry.argument(description="Only this score band among the bands.")
        ] = None,
        top_n: Annotated[
            int, strawberry.argument(name="topN", description=f"The top N of each run, 1 to {MAX_TOP_N}.")
        ] = TOP_N,
        from_: Annotated[
            datetime | None,
            strawberry.argument(name="from", description=f"Earliest run time (default: {DEFAULT_SPAN_DAYS} days ago)."),
        ] = None,
        to: Annotated[
            datetime | None,
            strawberry.argument(
                description=f"Latest run time (default now); at most {MAX_SPAN_DAYS} days are covered."
            ),
        ] = None,
    ) -> TrackRecordReport:
        return await track_record(info, window, model_version, band, top_n, from_, to)


@strawberry.type
class Mutation(AdminMutation, WebhookMutation):
    pass


@strawberry.type
class Subscription:
    @strawberry.subscription(
        permission_classes=[SignalsRead], description="The new ranking slice each time a scoring run succeeds."
    )
    async def score_updates(
        self,
        info: Info[Context, None],
        min_score: Annotated[float, strawberry.argument(description="Only scores >= this, 0 to 10.")] = 0.0,
        limit: Annotated[int, strawberry.argument(description="Maximum coins, 1 to 500.")] = 100,
    ) -> AsyncGenerator[InsiderSelling, None]:
        async for board in resolvers.score_updates(info, min_score, limit):
            yield board


def _extensions() -> list[Any]:
    # Parsing, the bounds and validation happen once per document text in gql.pipeline (whose
    # cache is bounded in bytes); AdmittedDocument hands Strawberry the result.
    return [AdmittedDocument, MaskUnexpected]


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=_extensions(),
    execution_context_class=FastExecutor,
    config=StrawberryConfig(scalar_map={datetime: DATETIME}),
)
