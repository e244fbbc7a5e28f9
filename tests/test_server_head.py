"""The response head that ``insider_selling.server.LeanCycle`` writes is uvicorn's, byte for byte,
and a head uvicorn refuses is refused (the cycle only checks it in fewer steps).

Each case sends one ``http.response.start`` through uvicorn's ``RequestResponseCycle`` and through
``LeanCycle`` with the same state, and compares what each wrote, raised and decided (content length,
chunking, keep-alive).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
from uvicorn.server import ServerState

from insider_selling import server
from insider_selling.server import MAX_NAMES, LeanCycle, TimedHttpToolsProtocol


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class _Flow:
    write_paused = False


def _cycle(cls: type[RequestResponseCycle], method: str, keep_alive: bool) -> RequestResponseCycle:
    cycle = RequestResponseCycle(
        scope={"method": method},  # type: ignore[arg-type]
        transport=_Transport(),  # type: ignore[arg-type]
        flow=_Flow(),  # type: ignore[arg-type]
        logger=None,  # type: ignore[arg-type]
        access_logger=None,  # type: ignore[arg-type]
        access_log=False,
        default_headers=[(b"date", b"Tue, 01 Dec 2026 12:00:00 GMT")],
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=keep_alive,
        on_response=lambda: None,
    )
    cycle.__class__ = cls
    return cycle


def _start(cls: type[RequestResponseCycle], message: dict[str, Any], method: str, keep_alive: bool) -> tuple:
    cycle = _cycle(cls, method, keep_alive)
    error = None

    async def send() -> None:  # as an app awaits it
        await cycle.send(message)  # type: ignore[arg-type]

    try:
        asyncio.run(send())
    except RuntimeError as exc:
        error = "error"
        assert str(exc) in ("Invalid HTTP header name.", "Invalid HTTP header value.")
    return (
        error,
        b"".join(cycle.transport.written),  # type: ignore[attr-defined]
        cycle.response_started,
        cycle.expected_content_length,
        cycle.chunked_encoding,
        cycle.keep_alive,
    )


def _same(message: dict[str, Any], method: str = "GET", keep_alive: bool = True) -> tuple:
    ours = _start(LeanCycle, message, method, keep_alive)
    theirs = _start(RequestResponseCycle, message, method, keep_alive)
    if theirs[0] is None:
        assert ours == theirs
    else:  # refused: nothing written, and uvicorn closes the connection (the rest is moot)
        assert ours[:3] == theirs[:3]
    return ours


REST_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", b"5263"),
    (b"x-request-id", b"req_0123456789abcdef01234567"),
    (b"etag", b'W/"run_abc-20-4.0"'),
    (b"cache-control", b"private, max-age=100"),
    (b"ratelimit-limit", b"600"),
    (b"ratelimit-remaining", b"598"),
    (b"ratelimit-reset", b"1"),
    (b"ratelimit-policy", b'"minute";q=600;w=60, "month";q=1000000;w=2592000'),
    (b"ratelimit", b'"minute";r=598;t=1'),
]


def test_the_rest_head_is_uvicorns() -> None:
    error, head, *_ = _same({"type": "http.response.start", "status": 200, "headers": REST_HEADERS})
    assert error is None
    assert head.startswith(b"HTTP/1.1 200 OK\r\ndate: ") and head.endswith(b'ratelimit: "minute";r=598;t=1\r\n\r\n')


@pytest.mark.parametrize(
    "headers",
    [
        [(b"X-Evil", b"a\r\nset-cookie: x=1")],  # response splitting in a value
        [(b"x-evil\r\nset-cookie", b"1")],  # ... and in a name
        [(b"x-evil\nset-cookie", b"1")],
        [(b"x-ok", b"a\nb")],
        [(b"x-ok", b"nul\x00")],
        [(b"x-ok", b"del\x7f")],
        [(b"bad name", b"1")],
        [(b"bad:name", b"1")],
        [(b"x-ok", b"fine"), (b"content-length", b"1\r")],
    ],
)
def test_a_head_uvicorn_refuses_is_refused(headers: list[tuple[bytes, bytes]]) -> None:
    error, head, started, *_ = _same({"type": "http.response.start", "status": 200, "headers": headers})
    assert error == "error" and head == b"" and started  # nothing written; uvicorn then closes


@pytest.mark.parametrize(
    ("headers", "method", "keep_alive", "status"),
    [
        ([], "GET", True, 200),  # no length: chunked
        ([], "HEAD", True, 200),
        ([], "GET", True, 304),
        ([(b"Content-Length", b"7"), (b"content-length", b"9")], "GET", True, 200),
        ([(b"transfer-encoding", b"Chunked")], "GET", True, 200),
        ([(b"connection", b"keep-alive, Close")], "GET", True, 200),
        ([(b"content-length", b"0")], "GET", False, 204),
        ([(b"X-Tab", b"a\tb"), (b"x-high", b"\xff\x80")], "GET", True, 200),
    ],
)
def test_framing_decisions_are_uvicorns(headers: list, method: str, keep_alive: bool, status: int) -> None:
    _same({"type": "http.response.start", "status": status, "headers": headers}, method, keep_alive)


_NAME_BYTES = st.sampled_from(list(b"abcXYZ-_09!#\r\n\t :;()@\x00\x7f\x80"))
_VALUE_BYTES = st.sampled_from(list(b'az09 \t;,="\r\n\x00\x01\x1f\x7f\x80\xff'))


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(_NAME_BYTES, min_size=0, max_size=8).map(bytes),
            st.lists(_VALUE_BYTES, min_size=0, max_size=12).map(bytes),
        ),
        max_size=6,
    )
)
def test_any_head_is_written_or_refused_as_uvicorn_does(headers: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-length", b"0"), *headers]  # uvicorn parses an invalid length value: keep it valid
    _same({"type": "http.response.start", "status": 200, "headers": headers})


def test_remembered_header_names_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "_KNOWN_NAMES", {})
    for i in range(MAX_NAMES * 4):
        _same({"type": "http.response.start", "status": 200, "headers": [(b"x-echo-%d" % i, b"1")]})
    assert len(server._KNOWN_NAMES) == MAX_NAMES


def test_the_products_protocol_answers_through_the_lean_cycle() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": REST_HEADERS[:1]})
        await send({"type": "http.response.body", "body": b"{}"})

    async def main() -> tuple[str, bytes]:
        config = Config(app, lifespan="off", proxy_headers=False, log_level="warning")
        config.load()
        protocol = TimedHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
        transport = _Transport()
        addresses = {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}
        transport.get_extra_info = lambda name, default=None: addresses.get(name, default)  # type: ignore[attr-defined]
        transport.get_protocol = lambda: protocol  # type: ignore[attr-defined]
        transport.pause_reading = transport.resume_reading = lambda: None  # type: ignore[attr-defined]
        protocol.connection_made(transport)  # type: ignore[arg-type]
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        kind = type(protocol.cycle).__name__
        for _ in range(100):  # the app runs as a task: a few turns of the loop
            if len(transport.written) >= 2:
                break
            await asyncio.sleep(0)
        protocol.connection_lost(None)
        return kind, b"".join(transport.written)

    kind, written = asyncio.run(main())
    assert kind == "LeanCycle"
    assert written.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-type: application/json\r\n" in written
    assert written.endswith(b"transfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
