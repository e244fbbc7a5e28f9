"""The event loop's share: heavy steps of a request take turns, one at a time per process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["HEAVY_COST", "HEAVY_TEXT", "HeavyGate"]

#: Operations estimated at this cost or more execute one at a time (:class:`HeavyGate`).
HEAVY_COST = 10
#: Documents at least this long are parsed and validated one at a time, when not cached already.
HEAVY_TEXT = 2048


class HeavyGate:
    """The heavy steps of a request (parsing and validating a long document not seen before,
    executing an operation of :data:`HEAVY_COST` or more) take turns, one at a time per process,
    each after a turn of the event loop. Each step is bounded (the document's size and tokens, the
    cost estimate), so the loop's time between two polls of its sockets stays bounded by one such
    step however many clients send them: ``/healthz`` and cheap requests are not queued behind a
    pile of expensive ones."""

    def __init__(self) -> None:
        self._lock: asyncio.Lock | None = None

    @contextlib.asynccontextmanager
    async def turn(self, heavy: bool | int = True) -> AsyncIterator[None]:
        if not heavy or (not isinstance(heavy, bool) and heavy < HEAVY_COST):
            yield
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            await asyncio.sleep(0)  # let the loop poll its sockets before this step runs
            yield
