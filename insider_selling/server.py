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

The httptools protocol also writes each response head in fewer steps (:class:`LeanCycle`): uvicorn
checks every header name and value with its own regular-expression search, two per header, which is
most of what a header costs; here the names are checked together and the values together, by the
same expressions, and everything else (the bytes written, the errors raised) is uvicorn's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Generator
from types import FunctionType
from typing import Any

from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

__all__ = ["LeanCycle", "TimedH11Protocol", "TimedHttpToolsProtocol", "http_protocol"]

#: Header names that passed uvicorn's check, with their lower-case form (bounded: an app could echo
#: names a client sent).
MAX_NAMES = 256
_KNOWN_NAMES: dict[bytes, bytes] = {}
#: The bytes uvicorn's HEADER_VALUE_RE forbids in a header value.
_VALUE_FORBIDDEN = bytes(b for b in range(256) if HEADER_VALUE_RE.match(bytes([b])))


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


class LeanCycle(RequestResponseCycle):
    """uvicorn's httptools request/response cycle, with the response head checked in fewer steps.

    uvicorn searches every header name and every value with a regular expression, about 0.2 us
    each, which is most of what a header costs. Here a name is checked by that same expression the
    first time it is seen (the names an app sends are few; at most :data:`MAX_NAMES` are
    remembered, with their lower-case form), and the values are checked all at once: the head may
    hold the bytes that uvicorn's value expression forbids only in its own line ends, so one
    ``translate`` counts them. The head written and the errors raised are uvicorn's."""

    def send(self, message: Any) -> Awaitable[None]:  # type: ignore[override]
        """Every message but a response head is uvicorn's own coroutine, returned as it is (no
        coroutine of ours around it); a head is written here and the awaitable returned is done."""
        if (
            self.response_started
            or self.disconnected
            or self.access_log
            or self.flow.write_paused
            or message["type"] != "http.response.start"
        ):
            return RequestResponseCycle.send(self, message)
        self.response_started = True  # before the checks, as uvicorn does: a bad head closes the connection
        self.waiting_for_100_continue = False
        status_code = message["status"]
        content = [STATUS_LINE[status_code]]
        has_connection_close = False
        known = _KNOWN_NAMES
        for raw, value in (*self.default_headers, *message.get("headers", ())):
            name = known.get(raw)
            if name is None:
                if HEADER_RE.search(raw):
                    raise RuntimeError("Invalid HTTP header name.")
                name = raw.lower()
                if len(known) < MAX_NAMES:
                    known[bytes(raw)] = name
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection" and b"close" in [token.lower().strip() for token in value.split(b",")]:
                self.keep_alive = False
                has_connection_close = True
            content += (name, b": ", value, b"\r\n")
        head = b"".join(content)
        # CR and LF are the only bytes of _VALUE_FORBIDDEN in the status line, the names and the
        # separators: two per line (the status line's included)
        lines = 1 + (len(content) - 1) // 4
        if len(head) - len(head.translate(None, _VALUE_FORBIDDEN)) != 2 * lines:
            raise RuntimeError("Invalid HTTP header value.")
        if not self.keep_alive and not has_connection_close:
            head += b"connection: close\r\n"
        if self.chunked_encoding is None and self.scope["method"] != "HEAD" and status_code not in (204, 304):
            self.chunked_encoding = True
            head += b"transfer-encoding: chunked\r\n"
        self.transport.write(head + b"\r\n")
        return _DONE


class _Done:
    """An awaitable that is already done (what :meth:`LeanCycle.send` returns for a head)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return iter(())  # type: ignore[return-value]


_DONE = _Done()


class TimedH11Protocol(_RequestDeadline, H11Protocol):
    """uvicorn's h11 protocol with the request deadline."""


class TimedHttpToolsProtocol(_RequestDeadline, HttpToolsProtocol):
    """uvicorn's httptools protocol (uvicorn's default when httptools is installed, as
    ``uvicorn[standard]`` does) with the request deadline and :class:`LeanCycle`."""

    # uvicorn's own ``on_headers_complete``, with ``RequestResponseCycle`` in its globals naming
    # LeanCycle: the cycle is created as a LeanCycle by uvicorn's code, whichever version is installed
    on_headers_complete = FunctionType(
        HttpToolsProtocol.on_headers_complete.__code__,
        {**vars(httptools_impl), "RequestResponseCycle": LeanCycle},
        "on_headers_complete",
    )


def http_protocol() -> str:
    """The protocol for uvicorn's ``http`` option, as an import path (it survives the spawn of
    ``--workers``)."""
    return f"{__name__}:TimedHttpToolsProtocol"
