"""uvicorn's HTTP protocols with a deadline for receiving each request.

uvicorn closes a keep-alive connection that stays idle after a response (``timeout_keep_alive``),
but nothing closes a connection whose first request never completes: a client that sends
``GET / HT`` and nothing more holds its socket (and a file descriptor) for ever, and a few hundred
of them exhaust the process's descriptors. Here a timer is armed when a connection opens and
whenever a new request starts arriving, and disarmed once that request's head and body are in; if
it fires first, the connection is closed. The deadline is uvicorn's ``timeout_keep_alive`` (the
``INSIDER_CONNECTION_TIMEOUT`` setting), so one number bounds both an idle and an incomplete
connection. A connection upgraded to a websocket leaves the timer behind (the graphql-transport-ws
handler has its own ``connection_init`` deadline).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["TimedH11Protocol", "TimedHttpToolsProtocol", "http_protocol"]


class _RequestDeadline:
    """Mixin for uvicorn's ``H11Protocol`` and ``HttpToolsProtocol`` (their attributes are read
    through ``_proto``: both define ``transport``, ``loop``, ``cycle`` and ``timeout_keep_alive``)."""

    _deadline: asyncio.TimerHandle | None = None
    _deadline_cycle: object = None

    @property
    def _proto(self) -> Any:
        return self

    def _arm(self) -> None:
        self._disarm()
        proto = self._proto
        self._deadline_cycle = proto.cycle
        self._deadline = proto.loop.call_later(proto.timeout_keep_alive, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        transport = self._proto.transport
        if not transport.is_closing():
            transport.close()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def data_received(self, data: bytes) -> None:
        proto = self._proto
        cycle = proto.cycle
        if self._deadline is None and (cycle is None or cycle.response_complete):
            self._arm()  # the next request on a kept-alive connection starts arriving
        super().data_received(data)  # type: ignore[misc]
        if self._deadline is None:
            return
        if proto.transport.get_protocol() is not proto:  # upgraded to a websocket
            self._disarm()
            return
        cycle = proto.cycle
        if cycle is not None and cycle is not self._deadline_cycle and not cycle.more_body:
            self._disarm()  # the whole request is in: the app may take its time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
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
