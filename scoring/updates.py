"""Run notifications for the ``scoreUpdates`` subscription.

:meth:`RunUpdates.publish` is called by the cycle's ``on_success`` callback when this process
scores; when another process (``insider-selling worker``) scores, a poll of the latest succeeded
run (only while someone is subscribed) notices the new run within ``poll_seconds``. Each
subscriber has a queue of one: a slow subscriber skips to the newest run instead of piling up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

__all__ = ["RunUpdates"]

log = logging.getLogger("insider_selling.scoring.updates")


class RunUpdates:
    def __init__(
        self, current_run: Callable[[], Awaitable[dict[str, Any] | None]], *, poll_seconds: float = 5.0
    ) -> None:
        self._current_run = current_run
        self.poll_seconds = poll_seconds
        self._queues: set[asyncio.Queue[str]] = set()
        self._last: str | None = None
        self._poller: asyncio.Task[None] | None = None

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    def publish(self, run_id: str) -> None:
        if run_id == self._last:
            return
        self._last = run_id
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(run_id)

    async def subscribe(self) -> AsyncIterator[str]:
        """Yield the id of each run that succeeds from now on."""
        if self._last is None:
            run = await self._current_run()
            self._last = run["run_id"] if run else None
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self._queues.add(queue)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="score-updates-poll")
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.discard(queue)

    async def _poll(self) -> None:
        while self._queues:
            await asyncio.sleep(self.poll_seconds)
            try:
                run = await self._current_run()
            except Exception:
                log.exception("polling the latest run failed")
                continue
            if run is not None:
                self.publish(run["run_id"])

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
