"""Incomplete and idle connections are closed by a real uvicorn server (``insider_selling.server``).

Each test starts uvicorn in a subprocess with a one-second ``timeout_keep_alive`` and talks raw
TCP to it. Stock uvicorn arms its timer only after a response, so a request that never completes
holds the connection for ever (the first test shows it); the protocols here close it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.helpers import free_port

TIMEOUT = 1.0
APP = """
import sys, uvicorn

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), http=sys.argv[2], timeout_keep_alive=TIMEOUT,
            log_level="warning")
""".replace("TIMEOUT", repr(TIMEOUT))

PROTOCOLS = ["insider_selling.server:TimedHttpToolsProtocol", "insider_selling.server:TimedH11Protocol"]


def _serve(protocol: str) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", APP, str(port), protocol])  # noqa: S603
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "uvicorn did not start"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module", params=PROTOCOLS, ids=["httptools", "h11"])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    yield from _serve(request.param)


def closed_within(conn: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``conn`` (EOF or reset), or None if still open."""
    started = time.monotonic()
    conn.settimeout(seconds)
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                return time.monotonic() - started
    except TimeoutError:
        return None
    except ConnectionResetError:
        return time.monotonic() - started


def test_stock_uvicorn_keeps_an_incomplete_request_open() -> None:
    for port in _serve("httptools"):
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(b"GET / HT")
            assert closed_within(conn, TIMEOUT + 1.0) is None  # the defect these protocols fix


def test_incomplete_request_line_is_closed(port: int) -> None:
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
    for conn in conns:
        conn.sendall(b"GET / HT")
    waited = [closed_within(conn, TIMEOUT + 2.0) for conn in conns]
    assert all(w is not None for w in waited), waited
    for conn in conns:
        conn.close()
    with socket.create_connection(("127.0.0.1", port)) as conn:  # the server still answers
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(1024).startswith(b"HTTP/1.1 200")


def test_silent_connection_is_closed(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        assert closed_within(conn, TIMEOUT + 2.0) is not None


def test_incomplete_body_is_closed(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        assert closed_within(conn, TIMEOUT + 2.0) is not None


def test_second_request_on_a_kept_alive_connection_is_timed_too(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(1024).startswith(b"HTTP/1.1 200")
        conn.sendall(b"GET / HT")
        assert closed_within(conn, TIMEOUT + 2.0) is not None


def test_slow_but_complete_request_is_served(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        for part in (b"GET / HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
            conn.sendall(part)
            time.sleep(TIMEOUT / 4)
        assert conn.recv(1024).startswith(b"HTTP/1.1 200")


def test_websocket_outlives_the_request_deadline(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        conn.settimeout(5)
        assert conn.recv(1024).startswith(b"HTTP/1.1 101")
        assert closed_within(conn, TIMEOUT * 2.5) is None
