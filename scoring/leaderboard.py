"""Reads of the latest succeeded run, cached per run (the data only changes when a run succeeds).

The current run is re-read from the store at most every ``refresh_seconds`` (so a run finished by
another worker shows up within that time) and at once when this process finishes one
(:meth:`Leaderboard.invalidate`). Cached values are keyed by run id and never hold tenant data.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson

from scoring.contract import COIN_FIELDS, DESCRIPTION, signal_block
from scoring.runs import RunStore

__all__ = ["Leaderboard"]

PUBLIC_PROJECTION = dict.fromkeys(COIN_FIELDS, 1)


class Leaderboard:
    def __init__(
        self,
        runs: RunStore,
        *,
        interval_seconds: int = 1800,
        refresh_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        max_cached_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.runs = runs
        self.interval_seconds = interval_seconds
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._run: dict[str, Any] | None = None
        self._checked = float("-inf")
        self._bytes: OrderedDict[tuple[str, int, float], bytes] = OrderedDict()
        self._cached_bytes = 0
        self.max_cached_bytes = max_cached_bytes
        self._top: dict[str, list[dict[str, Any]]] = {}
        self._past: OrderedDict[tuple[str, int, float], bytes] = OrderedDict()
        self._past_bytes = 0

    @property
    def cached_run(self) -> dict[str, Any] | None:
        """The latest succeeded run as last read, without a store call (metrics, pages)."""
        return self._run

    def invalidate(self) -> None:
        self._checked = float("-inf")

    def fresh(self, limit: int, min_score: float) -> tuple[dict[str, Any], bytes] | None:
        """The hot path, without I/O: the current run and its encoded ``data`` for these
        parameters, when the run needs no re-read and the bytes are cached; else ``None`` (then
        :meth:`current_run` and :meth:`data_bytes` decide)."""
        run = self._run
        if run is None or self._clock() - self._checked >= self.refresh_seconds:
            return None
        data = self._bytes.get((run["run_id"], limit, min_score))
        return None if data is None else (run, data)

    async def current_run(self) -> dict[str, Any] | None:
        now = self._clock()
        if now - self._checked >= self.refresh_seconds:
            run = await self.runs.latest_succeeded()
            self._checked = now
            if run is not None and (self._run is None or run["run_id"] != self._run["run_id"]):
                self._bytes.clear()
                self._cached_bytes = 0
                self._top.clear()
            self._run = run
        return self._run

    async def coins(self, run_id: str, limit: int, min_score: float) -> list[dict[str, Any]]:
        """Public coin fields, score > 0 and >= ``min_score``, descending. One store query per run."""
        top = self._top.get(run_id)
        if top is None:
            top = await self.runs.leaderboard(run_id, limit=500, projection=PUBLIC_PROJECTION)
            top = [{name: doc.get(name) for name in COIN_FIELDS} for doc in top]
            self._top = {run_id: top}
        return [c for c in top if c["score"] >= min_score][:limit]

    async def past_data_bytes(self, run: dict[str, Any], limit: int, min_score: float) -> bytes:
        """The encoded ``data`` object ``run`` served (point-in-time reads): the same fields and
        order as :meth:`data_bytes`, read from its stored scores, cached apart from the current
        run's (at most 64 entries and ``max_cached_bytes // 2`` bytes)."""
        key = (run["run_id"], limit, min_score)
        cached = self._past.get(key)
        if cached is not None:
            self._past.move_to_end(key)
            return cached
        docs = await self.runs.leaderboard(
            run["run_id"], limit=limit, min_score=min_score, projection=PUBLIC_PROJECTION
        )
        encoded = self._encode([{name: doc.get(name) for name in COIN_FIELDS} for doc in docs])
        if len(encoded) <= self.max_cached_bytes // 8:
            self._past[key] = encoded
            self._past_bytes += len(encoded)
            while len(self._past) > 64 or self._past_bytes > self.max_cached_bytes // 2:
                _, old = self._past.popitem(last=False)
                self._past_bytes -= len(old)
        return encoded

    def _encode(self, coins: list[dict[str, Any]]) -> bytes:
        """The encoded ``data`` object of the REST envelope for these coins (current or past run)."""
        signal = signal_block(self.interval_seconds)
        return orjson.dumps({"coins": coins, "count": len(coins), "description": DESCRIPTION, "signal": signal})

    async def data_bytes(self, run: dict[str, Any], limit: int, min_score: float) -> bytes:
        """The encoded ``data`` object of the REST envelope, cached per (run, limit, min_score)."""
        key = (run["run_id"], limit, min_score)
        cached = self._bytes.get(key)
        if cached is not None:
            return cached
        encoded = self._encode(await self.coins(run["run_id"], limit, min_score))
        if len(encoded) <= self.max_cached_bytes // 8:
            self._bytes[key] = encoded
            self._cached_bytes += len(encoded)
            # keyed by the client's min_score: bounded in bytes, not only in entries
            while len(self._bytes) > 2048 or self._cached_bytes > self.max_cached_bytes:
                _, old = self._bytes.popitem(last=False)
                self._cached_bytes -= len(old)
        return encoded
