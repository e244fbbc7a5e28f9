"""Per-request batching of store reads: one store query per kind of data, whatever the query's shape.

A :class:`Loaders` is built for each request (``gql.context.Context.build``) and dropped with it.

- ``leaderboard(run_id, limit, min_score, projection)``: the ranked coins. One query per run and
  projection reads the whole ranking (at most 500 coins, the largest ``limit``), and each
  ``(limit, min_score)`` is a slice of it: ``coins`` and ``count`` and thirty aliases with thirty
  different ``minScore`` values share one store query.
- ``coin``: coins of the current run by id, batched into one ``$in`` query.
- ``history``: a coin's earlier runs, batched across coins into one query per distinct
  ``(first, before, projection)`` (a leaderboard of 100 coins asking for history is one query).

Every read names the fields it needs: the projection comes from the GraphQL selection
(``gql.resolvers.projection``), so a query for ``{ coinId score }`` never loads venues.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader

if TYPE_CHECKING:
    from gql.services import Services

__all__ = ["MAX_BOARD", "HistoryKey", "Loaders"]

#: The largest ``limit`` of a leaderboard (REST's and GraphQL's): one read of this many serves all.
MAX_BOARD = 500

# (coin_id, first, before, projection)
HistoryKey = tuple[str, int, datetime | None, tuple[str, ...]]
CoinKey = tuple[str, str, tuple[str, ...]]  # (run_id, coin_id, projection)


def _proj(fields: Sequence[str]) -> dict[str, int]:
    return dict.fromkeys(fields, 1)


class Loaders:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.memo: dict[Any, Any] = {}  # per-request memo (projections of a field node)
        self._boards: dict[tuple[str, tuple[str, ...]], asyncio.Future[list[dict[str, Any]]]] = {}
        self._run: asyncio.Future[dict[str, Any] | None] | None = None
        self.history: DataLoader[HistoryKey, list[dict[str, Any]]] = DataLoader(self._load_history)
        self.coin: DataLoader[CoinKey, dict[str, Any] | None] = DataLoader(self._load_coins)

    async def current_run(self) -> dict[str, Any] | None:
        """The latest succeeded run, read once per request (consistent across resolvers)."""
        if self._run is None:
            self._run = asyncio.ensure_future(self.services.leaderboard.current_run())
        return await self._run

    async def leaderboard(
        self, run_id: str, limit: int, min_score: float, projection: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        key = (run_id, projection)
        future = self._boards.get(key)
        if future is None:  # the whole ranking (score > 0, by score descending), once per request
            fields = projection if "score" in projection else (*projection, "score")
            future = self._boards[key] = asyncio.ensure_future(
                self.services.runs.leaderboard(run_id, limit=MAX_BOARD, min_score=0.0, projection=_proj(fields))
            )
        ranked = await future
        # the coins with score >= min_score are a prefix of the ranking
        end = next((i for i, doc in enumerate(ranked) if doc["score"] < min_score), len(ranked))
        return ranked[: min(end, limit)]

    async def _load_coins(self, keys: Sequence[CoinKey]) -> list[dict[str, Any] | None]:
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for (run_id, projection), coin_ids in _group(keys, lambda k: (k[0], k[2]), lambda k: k[1]).items():
            cursor = self.services.runs.scores.find(
                {"run_id": run_id, "coin_id": {"$in": sorted(set(coin_ids))}}, {**_proj(projection), "_id": 0}
            )
            for doc in await cursor.to_list():
                found[(run_id, doc["coin_id"])] = doc
        return [found.get((k[0], k[1])) for k in keys]

    async def _load_history(self, keys: Sequence[HistoryKey]) -> list[list[dict[str, Any]]]:
        out: dict[HistoryKey, list[dict[str, Any]]] = {}
        groups = _group(keys, lambda k: (k[1], k[2], k[3]), lambda k: k[0])
        for (first, before, projection), coin_ids in groups.items():
            rows = await self.services.runs.history(
                sorted(set(coin_ids)), before=before, limit_per_coin=first, projection=_proj(projection)
            )
            for coin_id in coin_ids:
                out[(coin_id, first, before, projection)] = rows.get(coin_id, [])
        return [out[k] for k in keys]


def _group(keys: Sequence[Any], by: Callable[[Any], Any], value: Callable[[Any], Any]) -> dict[Any, list[Any]]:
    groups: dict[Any, list[Any]] = {}
    for key in keys:
        groups.setdefault(by(key), []).append(value(key))
    return groups
