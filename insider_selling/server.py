"""uvicorn's HTTP protocols with a deadline for receiving each request.

uvicorn closes a keep-alive connection that stays idle after a response (``timeout_keep_alive``),
but nothing closes a connection whose first request never completes: a client that sends
``GET / HT`` and nothing more holds its socket (and a file descriptor) for ever, and a few hundred
of them exhaust the process's descriptors. Here each connection notes when a request starts
arriving (the connection opening, or the next request on a kept-alive one) and forgets it once the
request's head and body are in; one timer per connection closes it when a request has been pending
longer than the deadline. The deadline is uvicorn's ``timeout_keep_alive`` (the
``INSIDER_CONNECTION_TIMEOUT`` setting), so one number bounds both an idle and an incomplete
connection. A connection upgraded to a websocket stops its timer (the graphql-transport-ws
handler has its own ``connection_init`` deadline).

The protocols are uvicorn's own classes, subclassed and named by uvicorn's documented ``http``
option (a protocol class's import path); the response heads are written by uvicorn's own code.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["TimedH11Protocol", "TimedHttpToolsProtocol", "http_protocol"]


class _RequestDeadline:
    """Mixin for uvicorn's ``H11Protocol`` and ``HttpToolsProtocol`` (both define ``transport``,
    ``loop``, ``cycle`` and ``timeout_keep_alive``; the annotations below only name them).

    A request costs two attribute writes, not a timer: ``_since`` is the loop time at which the
    pending request started arriving (``None`` while none is pending), and one timer per connection
    wakes up once per deadline to close the connection if a request has been pending that long."""

    transport: Any
    loop: asyncio.AbstractEventLoop
    cycle: Any
    timeout_keep_alive: int
    _timer: asyncio.TimerHandle | None = None
    _since: float | None = None
    _deadline_cycle: object = None

    def _start_request(self) -> None:
        self._deadline_cycle = self.cycle
        self._since = self.loop.time()

    def _check(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        wait: float = self.timeout_keep_alive
        if self._since is not None:
            waited = self.loop.time() - self._since
            if waited >= wait:
                self.transport.close()
                return
            wait -= waited
        self._timer = self.loop.call_later(wait, self._check)

    def _stop(self) -> None:
        self._since = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._start_request()
        self._timer = self.loop.call_later(self.timeout_keep_alive, self._check)

    def data_received(self, data: bytes) -> None:
        if self._since is None:
            cycle = self.cycle
            if cycle is None or cycle.response_complete:
                self._start_request()  # the next request on a kept-alive connection starts arriving
        super().data_received(data)  # type: ignore[misc]
        if self._since is None:
            return
        if self.transport.get_protocol() is not self:  # upgraded to a websocket
            self._stop()
            return
        cycle = self.cycle
        if cycle is not None and cycle is not self._deadline_cycle and not cycle.more_body:
            self._since = None  # the whole request is in: the app may take its time

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        super().connection_lost(exc)  # type: ignore[misc]


class TimedH11Protocol(_RequestDeadline, H11Protocol):
    """uvicorn's h11 protocol with the request deadline."""


class TimedHttpToolsProtocol(_RequestDeadline, HttpToolsProtocol):
    """uvicorn's httptools protocol (uvicorn's default when httptools is installed, as
    ``uvicorn[standard]`` does) with the request deadline."""


def http_protocol() -> str:
    """The protocol for uvicorn's ``http`` option, as an import path (it survives the spawn of
    ``--workers``)."""
    return f"{__name__}:TimedHttpToolsProtocol"
