"""Resolvers of the public data: ``insiderSelling``, ``coin``, ``scoreHistory``, ``signal``,
``Coin.history`` and the ``scoreUpdates`` subscription.

Arguments are validated by the same code as REST (``gql.params.parse_params``), so both carry the
same ranges and messages. Expected failures raise :class:`gql.errors.ApiError`; the view renders them
with ``extensions.code`` (and ``param``). Store fields are read through the per-request loaders
with a projection computed from the selection (:func:`projection`).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import AsyncGenerator, Mapping
from datetime import UTC, datetime
from typing import Any

from graphql import GraphQLError
from pymongo import DESCENDING
from strawberry.types import Info

from gql.context import Context
from gql.errors import ApiError
from gql.history import run_as_of
from gql.loaders import Loaders
from gql.params import MAX_FIRST, validate_board, validate_first
from gql.selection import projection
from gql.types import (
    Coin,
    InsiderSelling,
    PageInfo,
    ScoreHistory,
    ScoreHistoryConnection,
    ScoreHistoryEdge,
    ScoringRun,
    Signal,
)
from tenants.auth import key_is_usable

__all__ = [
    "MAX_FIRST",
    "MAX_SEARCH",
    "MAX_SEARCH_TEXT",
    "coin",
    "insider_selling",
    "run_by_id",
    "runs",
    "score_history",
    "score_updates",
    "search_coins",
    "signal",
]


# -- projections -------------------------------------------------------------------------------

# -- shared helpers ----------------------------------------------------------------------------


async def _require_run(context: Context) -> dict[str, Any]:
    run = await context.loaders.current_run()
    if run is None:
        raise ApiError(503, "not_ready", "the first scoring run has not finished yet; retry shortly", retry_after=5)
    return run


# -- root fields -------------------------------------------------------------------------------


async def insider_selling(
    info: Info[Context, Any], limit: int = 100, min_score: float = 0.0, as_of: datetime | None = None
) -> InsiderSelling:
    limit, min_score = validate_board(limit, min_score)
    if as_of is not None:  # point in time: the run in force then, from the stored runs
        run = await run_as_of(info.context.services, as_of, "asOf")
        current = await info.context.loaders.current_run()
        past = current is None or current["run_id"] != run["run_id"]
        return InsiderSelling.of(info, run, limit, min_score, past=past)
    run = await _require_run(info.context)
    return InsiderSelling.of(info, run, limit, min_score)


async def run_by_id(info: Info[Context, Any], run_id: str) -> ScoringRun | None:
    if not 0 < len(run_id) <= 100:
        raise ApiError(400, "parameter_invalid", "id must be 1 to 100 characters", param="id")
    doc = await info.context.services.runs.get_run(run_id)
    return None if doc is None else ScoringRun.from_doc(doc)


async def coin(info: Info[Context, Any], coin_id: str) -> Coin | None:
    if not 0 < len(coin_id) <= 200:
        raise ApiError(400, "parameter_invalid", "coinId must be 1 to 200 characters", param="coinId")
    run = await _require_run(info.context)
    doc = await info.context.loaders.coin.load((run["run_id"], coin_id, projection(info)))
    return None if doc is None else Coin.from_doc(doc)


MAX_SEARCH = 20
MAX_SEARCH_TEXT = 40


async def search_coins(info: Info[Context, Any], text: str, first: int = 10) -> list[Coin]:
    """Coins of the latest run, listed or not, whose symbol, name or id contains ``text`` (case
    ignored): an exact symbol or id first, then the ones that start with it, then the rest, each by
    score descending. One read of the run's coins (the universe, not the ranking)."""
    needle = text.strip().casefold()
    if not 0 < len(needle) <= MAX_SEARCH_TEXT:
        raise ApiError(400, "parameter_invalid", f"text must be 1 to {MAX_SEARCH_TEXT} characters", param="text")
    if not 1 <= first <= MAX_SEARCH:
        raise ApiError(400, "parameter_invalid", f"first must be an integer from 1 to {MAX_SEARCH}", param="first")
    run = await _require_run(info.context)
    fields = {*projection(info), "symbol", "name"}
    docs = await info.context.services.runs.run_scores(run["run_id"], dict.fromkeys(sorted(fields), 1))
    ranked: list[tuple[int, float, str, dict[str, Any]]] = []
    for doc in docs:
        symbol, name, coin_id = (str(doc.get(k) or "").casefold() for k in ("symbol", "name", "coin_id"))
        if needle in (symbol, coin_id):
            tier = 0
        elif symbol.startswith(needle) or name.startswith(needle) or coin_id.startswith(needle):
            tier = 1
        elif needle in symbol or needle in name or needle in coin_id:
            tier = 2
        else:
            continue
        ranked.append((tier, -float(doc.get("score") or 0.0), coin_id, doc))
    ranked.sort(key=lambda r: r[:3])
    return [Coin.from_doc(r[3]) for r in ranked[:first]]


async def signal(info: Info[Context, Any]) -> Signal:
    return Signal.of(info.context, await _require_run(info.context))


MAX_RUNS = 50


async def runs(info: Info[Context, Any], first: int = 10) -> list[ScoringRun]:
    """The latest runs of any status, newest first (a running one has no outcomes yet)."""
    if not 1 <= first <= MAX_RUNS:
        raise ApiError(400, "parameter_invalid", f"first must be an integer from 1 to {MAX_RUNS}", param="first")
    return [ScoringRun.from_doc(d) for d in await info.context.services.runs.recent_runs(first)]


# -- the connection ----------------------------------------------------------------------------


def encode_cursor(doc: Mapping[str, Any]) -> str:
    at: datetime = doc["at"]
    raw = f"v1|{at.astimezone(UTC).isoformat()}|{doc['run_id']}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    invalid = ApiError(400, "cursor_invalid", "after is not a cursor returned by this API", param="after")
    if len(cursor) > 200:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, at, run_id = raw.split("|")
        parsed = datetime.fromisoformat(at)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid from None
    if version != "v1" or parsed.tzinfo is None or not run_id:
        raise invalid
    return parsed, run_id


async def score_history(
    info: Info[Context, Any],
    coin_id: str,
    from_: datetime | None = None,
    to: datetime | None = None,
    first: int = 100,
    after: str | None = None,
) -> ScoreHistoryConnection:
    """Newest first. ``from``/``to`` bound ``at`` (both inclusive); ``after`` continues a page.
    Ordered by (at, run_id) descending, so two runs at the same time still page without gaps."""
    first = validate_first(first)
    if from_ is not None and to is not None and from_ > to:
        raise ApiError(400, "parameter_invalid", "from must not be later than to", param="from")
    query: dict[str, Any] = {"coin_id": coin_id, "visible": True}
    window: dict[str, Any] = {}
    if from_ is not None:
        window["$gte"] = from_
    if to is not None:
        window["$lte"] = to
    clauses: list[dict[str, Any]] = [{"at": window}] if window else []
    if after is not None:
        at, run_id = decode_cursor(after)
        clauses.append({"$or": [{"at": {"$lt": at}}, {"at": at, "run_id": {"$lt": run_id}}]})
    if clauses:
        query["$and"] = clauses
    fields = projection(info, "edges", "node", kind="history")
    cursor = info.context.services.runs.scores.find(query, {**dict.fromkeys(fields, 1), "_id": 0})
    docs = await cursor.sort([("at", DESCENDING), ("run_id", DESCENDING)]).limit(first + 1).to_list()
    page = docs[:first]
    edges = [ScoreHistoryEdge(cursor=encode_cursor(d), node=ScoreHistory.from_doc(d)) for d in page]
    return ScoreHistoryConnection(
        edges=edges,
        page_info=PageInfo(has_next_page=len(docs) > first, end_cursor=edges[-1].cursor if edges else None),
    )


# -- the subscription --------------------------------------------------------------------------


async def _charge_push(context: Context) -> None:
    """Each push costs one request of the tenant's budget (a push carries at most one REST page; the
    start is charged by the pipeline); over the budget or quota the subscription ends with the code."""
    limiter = context.services.limiter
    if limiter is None or context.principal is None:
        return
    try:
        await limiter.check_request(context.principal, 1)
    except ApiError as error:
        extensions: dict[str, Any] = {"code": error.code}
        if error.retry_after is not None:
            extensions["retryAfter"] = math.ceil(error.retry_after)
        raise GraphQLError(f"{error.message}; subscription closed", extensions=extensions) from None


async def _key_still_usable(context: Context) -> bool:
    """Re-read the key's record for every push: a revoked or expired key stops receiving."""
    principal = context.principal
    if principal is None:
        return False
    doc = await context.services.authenticator.repo.get_key(principal.key_id)
    return doc is not None and key_is_usable(doc, datetime.now(UTC))


async def score_updates(
    info: Info[Context, Any], min_score: float = 0.0, limit: int = 100
) -> AsyncGenerator[InsiderSelling, None]:
    try:
        limit, min_score = validate_board(limit, min_score)
    except ApiError as error:  # websocket errors are not rendered by the HTTP view: carry the code
        raise GraphQLError(error.message, extensions={"code": error.code, "param": error.param}) from None
    context = info.context
    updates = context.services.updates
    if updates is None:
        raise ApiError(503, "not_ready", "subscriptions are not available in this process")
    # the start was charged by the request pipeline (gql.pipeline), like any operation
    async for _run_id in updates.subscribe():
        if not await _key_still_usable(context):
            raise GraphQLError(
                "the API key was revoked or has expired; subscription closed", extensions={"code": "invalid_api_key"}
            )
        await _charge_push(context)
        context.loaders = Loaders(context.services)  # fresh per push: no stale memo across runs
        context.services.leaderboard.invalidate()
        run = await _require_run(context)
        yield InsiderSelling.of(info, run, limit, min_score)
