"""The GraphQL object types: ``Coin``, ``SubScores``, ``Venue``, ``Signal``, ``ScoreHistory`` and the
Relay-style ``ScoreHistoryConnection``.

Field names are the seed's coin fields in camelCase (Strawberry converts ``avg_funding_72h`` to
``avgFunding72h``); the seven sub-scores are grouped under ``Coin.subScores``. Objects are built
straight from store documents (:meth:`Coin.from_doc`): the document *is* the instance's attribute
dict, so a field reads the stored value with no copy, and the store projection may leave out the
fields that were not selected.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Self

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from gql.context import Context
from gql.history import next_run_at
from gql.params import validate_board, validate_first
from gql.selection import projection
from gql.values import format_datetime, parse_datetime
from scoring.contract import DESCRIPTION, VENUES, signal_block
from scoring.model import SUB_SCORES  # the seven sub-scores, in the seed's order (Coin.subScores)

if TYPE_CHECKING:
    from gql.track import RunTrackRecord

__all__ = [
    "DATETIME",
    "SUB_SCORES",
    "Coin",
    "Coverage",
    "InsiderSelling",
    "PageInfo",
    "RunStatus",
    "ScoreHistory",
    "ScoreHistoryConnection",
    "ScoreHistoryEdge",
    "ScoringRun",
    "Signal",
    "SubScores",
    "Venue",
    "VenueOutcome",
]


def _parse_datetime_value(value: object) -> datetime:
    """The scalar's input coercion: a bad value is a GraphQL error (a client's mistake, 400), not
    an unexpected exception graphql-core would wrap and the server would mask as a 500."""
    try:
        return parse_datetime(value)
    except ValueError as error:
        raise GraphQLError(str(error)) from None


DATETIME = strawberry.scalar(
    name="DateTime",
    description="An instant as ISO 8601 in UTC, e.g. 2026-04-26T07:00:00Z (input needs a timezone).",
    serialize=format_datetime,
    parse_value=_parse_datetime_value,
)


class _FromDoc:
    """Build a Strawberry object over a store document without copying it."""

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Self:
        obj = object.__new__(cls)
        obj.__dict__ = doc
        return obj


@strawberry.type(description="The seven sub-scores of a coin, each from 0 to 1.")
class SubScores(_FromDoc):
    funding_magnitude: float = strawberry.field(description="Absolute size of negative funding.")
    funding_persistence: float = strawberry.field(description="How consistently funding stays negative.")
    wallet_concentration: float = strawberry.field(
        description="Top-holder, insider, dev, sniper, bundler and old-wallet concentration."
    )
    holder_quality_deterioration: float = strawberry.field(
        description="Fragile holder base, top-heavy supply, liquidity weakness, contract/security context."
    )
    coordination_risk: float = strawberry.field(
        description="Wallet fragmentation, old-wallet flow, churn and short-window holder changes."
    )
    distribution_pressure: float = strawberry.field(
        description="Direct wallet/flow pressure and derivatives-confirmed selling pressure."
    )
    market_confirmation: float = strawberry.field(
        description="Funding, OI, basis, CVD, price path and persistence confirmation."
    )


@strawberry.type(description="One venue's market data for a coin at the latest run.")
class Venue(_FromDoc):
    venue: str = strawberry.field(description="Venue slug, e.g. binance.")
    exchange: str = strawberry.field(description="Display name, e.g. Binance.")
    at: datetime = strawberry.field(description="When the sample was taken.")
    funding_rate: float | None = strawberry.field(description="Funding rate as published, per interval.")
    funding_interval_hours: float | None = strawberry.field(description="The venue's funding interval.")
    funding_rate_per_hour: float | None = strawberry.field(description="Funding rate normalized per hour.")
    open_interest_usd: float | None = strawberry.field(description="Open interest in USD.")
    basis: float | None = strawberry.field(
        description="(mark - index) / index, as a decimal (0.001 is 0.1 %); null when the venue gave no index."
    )

    @strawberry.field(
        description="The venue's mark price in USD at the sample (null for runs stored before this field)."
    )
    def mark_price(self) -> float | None:
        value = self.__dict__.get("mark_price")
        return None if value is None else float(value)


@strawberry.type(
    description=(
        "Which signal families had data for a coin at the run: per family, the share of its input "
        "weight that was available (0 = no data at all, 1 = every input). Missing inputs count as 0 "
        "in their family, so a low coverage caps that family's sub-score; a supply sub-score of 0 "
        "with supplyContext 0 means no on-chain data, not a healthy holder base."
    )
)
class Coverage(_FromDoc):
    hedge_pressure: float = strawberry.field(
        description="Cross-venue funding (magnitude, persistence, breadth): 1 when funding was seen."
    )
    market_confirmation: float = strawberry.field(
        description="OI, basis, taker flow/CVD, long/short crowding and price path."
    )
    sell_side_flow: float = strawberry.field(
        description="DEX flow imbalance, liquidity change, and the derivatives' taker flow and OI."
    )
    supply_context: float = strawberry.field(
        description="On-chain holder, concentration, insider and old-wallet inputs."
    )


@strawberry.type(description="A coin's score at one succeeded scoring run.")
class ScoreHistory(_FromDoc):
    at: datetime = strawberry.field(description="The run's time.")
    run_id: str = strawberry.field(description="The scoring run.")
    score: float = strawberry.field(description="Composite pressure score from 0 to 10.")
    manipulation_phase: str = strawberry.field(description="Phase label at that run.")

    @strawberry.field(description="The seven sub-scores at that run.")
    def sub_scores(self) -> SubScores:
        return SubScores.from_doc(self.__dict__)

    avg_funding_72h: float | None = strawberry.field(
        description="Average funding across venues over the 72 hours before that run, per 8 hours, as a decimal."
    )

    @strawberry.field(
        description=(
            "Each venue's latest funding, open interest, basis and mark price at that run (empty for "
            "coins that were not listed, for runs before every coin's venues were stored)."
        )
    )
    def venues(self) -> list[Venue]:
        return [Venue.from_doc(v) for v in self.__dict__.get("venues") or ()]


@strawberry.type(description="A scored coin at the latest succeeded run; fields as in the REST contract.")
class Coin(_FromDoc):
    coin_id: strawberry.ID = strawberry.field(description="Canonical coin slug.")
    symbol: str = strawberry.field(description="Ticker symbol.")
    name: str = strawberry.field(description="Display name.")
    score: float = strawberry.field(description="Composite pressure score from 0 to 10.")
    avg_funding_72h: float = strawberry.field(
        description="Average funding rate across exchanges over 72 hours, as a decimal."
    )
    funding_magnitude: float = strawberry.field(description="Sub-score: absolute size of negative funding.")
    funding_persistence: float = strawberry.field(description="Sub-score: persistence of negative funding.")
    wallet_concentration: float = strawberry.field(description="Sub-score [0, 1]: wallet concentration.")
    holder_quality_deterioration: float = strawberry.field(description="Sub-score [0, 1]: holder quality.")
    coordination_risk: float = strawberry.field(description="Sub-score [0, 1]: coordination risk.")
    distribution_pressure: float = strawberry.field(description="Sub-score [0, 1]: distribution pressure.")
    market_confirmation: float = strawberry.field(description="Sub-score [0, 1]: market confirmation.")
    manipulation_phase: str = strawberry.field(
        description="Phase label such as active-hedge-pressure, persistent-shorting, supply-risk-supported."
    )
    consecutive_negative_days: int = strawberry.field(
        description="Consecutive trading days with negative average funding."
    )
    price_change_24h: float = strawberry.field(description="Trailing 24h price change, percent.")
    price_change_7d: float = strawberry.field(description="Trailing 7d price change, percent.")
    top10_holders_pct: float | None = strawberry.field(description="Top-10 holders' share of supply.")
    volume_to_liquidity_24h: float | None = strawberry.field(description="24h DEX volume / liquidity.")
    old_wallet_swap_pct_1d: float | None = strawberry.field(description="Percent of recent DEX swaps by older wallets.")
    holders_change_pct: float | None = strawberry.field(
        description="Holder-count change since the previous successful run, as a decimal."
    )
    top10_holders_pct_change: float | None = strawberry.field(
        description="Change in top-10 share since the previous successful run, percentage points."
    )
    signal_start_date: datetime = strawberry.field(description="When the negative funding streak began.")
    updated_at: datetime = strawberry.field(description="The most recent score recomputation.")

    @strawberry.field(description="The seven sub-scores, each from 0 to 1.")
    def sub_scores(self) -> SubScores:
        return SubScores.from_doc(self.__dict__)

    @strawberry.field(
        description="Which signal families had data for this coin (null for runs before model 2026.12.1)."
    )
    def coverage(self) -> Coverage | None:
        doc = self.__dict__.get("coverage")
        return None if doc is None else Coverage.from_doc(dict(doc))

    @strawberry.field(
        description="Per-venue funding (raw and per hour, with interval), OI and basis at the latest run."
    )
    def venues(self) -> list[Venue]:
        return [Venue.from_doc(v) for v in self.__dict__.get("venues") or ()]

    @strawberry.field(description="Scores at earlier succeeded runs, newest first (at most 500).")
    async def history(
        self,
        info: Info[Context, None],
        first: Annotated[int, strawberry.argument(description="How many, 1 to 500.")] = 100,
        before: Annotated[
            datetime | None, strawberry.argument(description="Only runs strictly before this time.")
        ] = None,
    ) -> list[ScoreHistory]:
        first = validate_first(first)
        docs = await info.context.loaders.history.load(
            (self.__dict__["coin_id"], first, before, projection(info, kind="history"))
        )
        return [ScoreHistory.from_doc(d) for d in docs]


@strawberry.type(description="Methodology metadata of the signal.")
class Signal:
    methodology: str
    update_frequency: str
    exchanges: list[str]
    description: str
    model_version: str = strawberry.field(description="The scoring model version of the latest run.")
    last_run_at: datetime | None = strawberry.field(description="The latest succeeded run's time.")
    next_run_at: datetime | None = strawberry.field(description="When the next run is planned.")

    @classmethod
    def of(cls, context: Context, run: dict[str, Any], past: bool = False) -> Signal:
        """The signal block of ``run``: the latest run, or (``past``) a run served earlier."""
        services = context.services
        interval = services.leaderboard.interval_seconds
        block = signal_block(interval)
        if past:  # a run served earlier: the slot that was planned after it
            at = int((run["at"] if run["at"].tzinfo else run["at"].replace(tzinfo=UTC)).timestamp())
            next_run = datetime.fromtimestamp(at - at % interval + interval, UTC)
        else:
            next_run = next_run_at(services, run)
        return cls(
            methodology=str(block["methodology"]),
            update_frequency=str(block["update_frequency"]),
            exchanges=list(block["exchanges"]),  # type: ignore[call-overload]
            description=DESCRIPTION,
            model_version=str(run.get("model_version", "")),
            last_run_at=run["at"],
            next_run_at=next_run,
        )


@strawberry.type(description="The ranked coins, as in the REST `data` object.")
class InsiderSelling:
    description: str
    signal: Signal
    _run_id: strawberry.Private[str]
    _limit: strawberry.Private[int]
    _min_score: strawberry.Private[float]
    _projection: strawberry.Private[tuple[str, ...]]

    @classmethod
    def of(
        cls, info: Info[Context, Any], run: dict[str, Any], limit: int, min_score: float, past: bool = False
    ) -> InsiderSelling:
        """``run``'s ranking (``limit`` and ``min_score`` validated already)."""
        return cls(
            description=DESCRIPTION,
            signal=Signal.of(info.context, run, past),
            _run_id=run["run_id"],
            _limit=limit,
            _min_score=min_score,
            _projection=projection(info, "coins"),
        )

    @strawberry.field(description="Coins with score > 0 and >= minScore, by score descending.")
    async def coins(self, info: Info[Context, None]) -> list[Coin]:
        docs = await info.context.loaders.leaderboard(self._run_id, self._limit, self._min_score, self._projection)
        return [Coin.from_doc(d) for d in docs]

    @strawberry.field(description="Number of rows in coins.")
    async def count(self, info: Info[Context, None]) -> int:
        docs = await info.context.loaders.leaderboard(self._run_id, self._limit, self._min_score, self._projection)
        return len(docs)


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class ScoreHistoryEdge:
    cursor: str
    node: ScoreHistory


@strawberry.type(description="A coin's scores over succeeded runs, newest first.")
class ScoreHistoryConnection:
    edges: list[ScoreHistoryEdge]
    page_info: PageInfo


@strawberry.enum(description="Where a scoring run is.")
class RunStatus(Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@strawberry.type(description="How one venue (or on-chain provider) fared in one run's ingest.")
class VenueOutcome:
    venue: str = strawberry.field(description="Venue slug, e.g. binance.")
    exchange: str = strawberry.field(description="Display name, e.g. Binance.")
    status: str = strawberry.field(description="ok, failed or skipped.")
    latency_ms: float = strawberry.field(description="Time the venue took, in milliseconds.")
    markets: int = strawberry.field(description="Markets read.")
    requests: int = strawberry.field(description="Requests made.")
    rejected: int = strawberry.field(description="Rows or responses refused by validation.")
    error: str | None = strawberry.field(description="Why it failed, when it did.")

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> VenueOutcome:
        venue = str(doc.get("venue", ""))
        return cls(
            venue=venue,
            exchange=VENUES.get(venue, venue),
            status=str(doc.get("status", "")),
            latency_ms=float(doc.get("latency_ms") or 0.0),
            markets=int(doc.get("markets") or 0),
            requests=int(doc.get("requests") or 0),
            rejected=int(doc.get("rejected") or 0),
            error=doc.get("error"),
        )


@strawberry.type(description="One scoring run, whatever its outcome, with each venue's ingest outcome.")
class ScoringRun:
    run_id: str = strawberry.field(description="The run's id.")
    status: RunStatus
    at: datetime = strawberry.field(description="The market time the run scores.")
    started_at: datetime | None = strawberry.field(description="When the run started.")
    finished_at: datetime | None = strawberry.field(description="When it succeeded or failed.")
    model_version: str = strawberry.field(description="The scoring model version.")
    coins: int | None = strawberry.field(description="Coins scored (when finished).")
    listed: int | None = strawberry.field(description="Coins with a score above 0 (when succeeded).")
    error: str | None = strawberry.field(description="Why the run failed, when it did.")
    venues: list[VenueOutcome] = strawberry.field(description="Each venue's outcome (when finished).")
    _doc: strawberry.Private[dict[str, Any]]

    @strawberry.field(
        description=(
            "The run's realized forward excess returns, one per window that has closed (24h, 7d), "
            "stored once under the run's model version."
        )
    )
    def track_record(self) -> list[Annotated[RunTrackRecord, strawberry.lazy("gql.track")]]:
        from gql.track import run_track_records

        return run_track_records(self._doc)

    @strawberry.field(description="The ranking this run served (null unless it succeeded and is still stored in full).")
    async def ranking(
        self,
        info: Info[Context, None],
        limit: Annotated[int, strawberry.argument(description="Maximum coins, 1 to 500.")] = 100,
        min_score: Annotated[float, strawberry.argument(description="Only scores >= this, 0 to 10.")] = 0.0,
    ) -> InsiderSelling | None:
        limit, min_score = validate_board(limit, min_score)
        run = self._doc
        if run.get("status") != "succeeded" or run.get("pruned"):
            return None
        current = await info.context.loaders.current_run()
        return InsiderSelling.of(
            info, run, limit, min_score, past=current is None or current["run_id"] != run["run_id"]
        )

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ScoringRun:
        return cls(
            run_id=doc["run_id"],
            status=RunStatus(doc["status"]),
            at=doc["at"],
            started_at=doc.get("started_at"),
            finished_at=doc.get("finished_at"),
            model_version=str(doc.get("model_version", "")),
            coins=doc.get("coins"),
            listed=doc.get("listed"),
            error=doc.get("error"),
            venues=[VenueOutcome.from_doc(v) for v in doc.get("venues") or ()],
            _doc=doc,
        )
