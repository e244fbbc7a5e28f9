"""Resolvers of the public data: ``insiderSelling``, ``coin``, ``scoreHistory``, ``signal``,
``Coin.history`` and the ``scoreUpdates`` subscription.

Arguments are validated by the same code as REST (``gql.rest.parse_params``), so both carry the
same ranges and messages. Expected failures raise :class:`gql.errors.ApiError`; the view renders them
with ``extensions.code`` (and ``param``). Store fields are read through the per-request loaders
with a projection computed from the selection (:func:`projection`).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import AsyncGenerator, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from graphql import GraphQLError
from pymongo import DESCENDING
from strawberry.types import Info
from strawberry.types.nodes import SelectedField, Selection

from gql.context import Context
from gql.errors import ApiError
from gql.loaders import Loaders
from gql.rest import parse_params
from gql.track import run_as_of
from gql.types import (
    COIN_GRAPHQL_FIELDS,
    SUB_SCORES,
    Coin,
    InsiderSelling,
    PageInfo,
    ScoreHistory,
    ScoreHistoryConnection,
    ScoreHistoryEdge,
    ScoringRun,
    Signal,
)
from scoring.contract import DESCRIPTION, signal_block
from scoring.schedule import next_run_at as planned_run_at
from tenants.auth import key_is_usable

__all__ = [
    "MAX_FIRST",
    "MAX_SEARCH",
    "MAX_SEARCH_TEXT",
    "coin",
    "coin_history",
    "insider_selling",
    "next_run_at",
    "projection",
    "run_by_id",
    "run_ranking",
    "runs",
    "score_history",
    "score_updates",
    "search_coins",
    "signal",
]

MAX_FIRST = 500

# -- projections -------------------------------------------------------------------------------

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


# -- shared helpers ----------------------------------------------------------------------------


def _validate_board(limit: int, min_score: float) -> tuple[int, float]:
    """REST's validator on GraphQL's typed arguments (same ranges, same messages)."""
    score = repr(float(min_score)) if math.isfinite(min_score) else "nan"
    try:
        return parse_params([("limit", str(limit)), ("min_score", score)])
    except ApiError as error:
        if error.param == "min_score":
            error.param = "minScore"
        raise


def _validate_first(first: int, param: str = "first") -> int:
    if not 1 <= first <= MAX_FIRST:
        raise ApiError(400, "parameter_invalid", f"{param} must be an integer from 1 to {MAX_FIRST}", param=param)
    return first


async def _require_run(context: Context) -> dict[str, Any]:
    run = await context.loaders.current_run()
    if run is None:
        raise ApiError(503, "not_ready", "the first scoring run has not finished yet; retry shortly", retry_after=5)
    return run


def next_run_at(services: Any, run: Mapping[str, Any]) -> datetime:
    """When the next run is planned, from the stored run and the configured interval (the
    leaderboard's, handed over by the composition root): the scheduler may live in another
    process (``insider-selling worker``), so this process never asks one."""
    return planned_run_at(run["at"], services.leaderboard.interval_seconds, services.clock())


def _signal(context: Context, run: dict[str, Any], past: bool = False) -> Signal:
    services = context.services
    interval = services.leaderboard.interval_seconds
    block = signal_block(interval)
    if past:  # a run served earlier: the slot that was planned after it
        at = int((run["at"] if run["at"].tzinfo else run["at"].replace(tzinfo=UTC)).timestamp())
        next_run = datetime.fromtimestamp(at - at % interval + interval, UTC)
    else:
        next_run = next_run_at(services, run)
    return Signal(
        methodology=str(block["methodology"]),
        update_frequency=str(block["update_frequency"]),
        exchanges=list(block["exchanges"]),  # type: ignore[call-overload]
        description=DESCRIPTION,
        model_version=str(run.get("model_version", "")),
        last_run_at=run["at"],
        next_run_at=next_run,
    )


def _board(
    info: Info[Context, Any], run: dict[str, Any], limit: int, min_score: float, past: bool = False
) -> InsiderSelling:
    return InsiderSelling(
        description=DESCRIPTION,
        signal=_signal(info.context, run, past),
        _run_id=run["run_id"],
        _limit=limit,
        _min_score=min_score,
        _projection=projection(info, "coins"),
    )


# -- root fields -------------------------------------------------------------------------------


async def insider_selling(
    info: Info[Context, Any], limit: int = 100, min_score: float = 0.0, as_of: datetime | None = None
) -> InsiderSelling:
    limit, min_score = _validate_board(limit, min_score)
    if as_of is not None:  # point in time: the run in force then, from the stored runs
        run = await run_as_of(info.context.services, as_of, "asOf")
        current = await info.context.loaders.current_run()
        return _board(info, run, limit, min_score, past=current is None or current["run_id"] != run["run_id"])
    run = await _require_run(info.context)
    return _board(info, run, limit, min_score)


async def run_by_id(info: Info[Context, Any], run_id: str) -> ScoringRun | None:
    if not 0 < len(run_id) <= 100:
        raise ApiError(400, "parameter_invalid", "id must be 1 to 100 characters", param="id")
    doc = await info.context.services.runs.get_run(run_id)
    return None if doc is None else ScoringRun.from_doc(doc)


async def run_ranking(
    info: Info[Context, Any], run: dict[str, Any], limit: int, min_score: float
) -> InsiderSelling | None:
    """What ``run`` served: its ranking, when it succeeded and retention has not pruned it."""
    limit, min_score = _validate_board(limit, min_score)
    if run.get("status") != "succeeded" or run.get("pruned"):
        return None
    current = await info.context.loaders.current_run()
    return _board(info, run, limit, min_score, past=current is None or current["run_id"] != run["run_id"])


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
    return _signal(info.context, await _require_run(info.context))


async def coin_history(
    coin_id: str, info: Info[Context, Any], *, first: int, before: datetime | None
) -> list[ScoreHistory]:
    first = _validate_first(first)
    docs = await info.context.loaders.history.load((coin_id, first, before, projection(info, kind="history")))
    return [ScoreHistory.from_doc(d) for d in docs]


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
    first = _validate_first(first)
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
        limit, min_score = _validate_board(limit, min_score)
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
        yield _board(info, run, limit, min_score)
