"""Browser tests: a real uvicorn server (in a thread, embedded store, demo market) and Debian's
Chromium driven by Playwright. Never a downloaded browser: ``/usr/bin/chromium`` (``.ci/run``
installs the ``chromium`` package when it is missing; in CI a missing browser fails the run).

Every page a test opens is watched: a request to any other origin, a page error or a console
error fails the test (a test that expects the browser's own log line for a refused request says so).
Screenshots go to ``build/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from ingest.demo import DemoSource
from insider_selling.app import build_app
from scoring.pipeline import RunResult
from tests.conftest import ROOT, SMALL_DEMO, _free_port, make_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "build" / "screenshots"
#: The browser's own console line for a response with an error status (expected in key tests).
HTTP_ERROR_LOG = re.compile(r"^Failed to load resource: the server responded with a status of (401|403)\b")


@dataclass
class Server:
    base: str
    app: Any
    loop: asyncio.AbstractEventLoop
    read_key: str
    admin_key: str

    @property
    def services(self) -> Any:
        return self.app.state.services

    def call(self, coro: Any, timeout: float = 60) -> Any:
        """Run a coroutine on the server's event loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def score_run(self) -> RunResult:
        """One more ingest-and-score cycle, 30 minutes after the latest succeeded run."""

        async def go() -> RunResult:
            latest = await self.services.runs.latest_succeeded()
            return await self.services.cycle.run_once(latest["at"] + timedelta(minutes=30))

        result: RunResult = self.call(go())
        assert result.status == "succeeded"
        return result

    def graphql(self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = None) -> Any:
        response = httpx.post(
            f"{self.base}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {key or self.admin_key}"},
            timeout=30,
        )
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        return body["data"]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """The app as ``make run`` serves it (default argon2 profile, so a first key check costs what it
    costs in production), with a small demo market and no timed scheduler: tests score runs."""
    settings = make_settings(argon2_profile="owasp")
    app = build_app(
        settings, source=DemoSource(SMALL_DEMO), run_scheduler=False, prime=True, announce=lambda line: None
    )
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(uv.serve(),), name="uvicorn", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    else:
        uv.should_exit = True
        pytest.fail("the server did not become ready")
    admin, read = app.state.bootstrap
    yield Server(base, app, loop, read.key, admin.key)
    uv.should_exit = True
    thread.join(timeout=30)
    loop.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Watch:
    """What a page did: every request URL, console errors and page errors."""

    origin: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    allowed_http_errors: int = 0  # browser log lines for refused requests that a test expects

    def check(self) -> None:
        foreign = [
            u
            for u in self.requests
            if not u.startswith((self.origin, self.origin.replace("http", "ws", 1))) and not u.startswith("data:")
        ]
        assert foreign == [], f"requests to another origin: {foreign}"
        unexpected = [e for e in self.errors if not HTTP_ERROR_LOG.match(e)]
        assert unexpected == [], f"console or page errors: {unexpected}"
        refused = len(self.errors) - len(unexpected)
        assert refused <= self.allowed_http_errors, self.errors


@pytest.fixture
def context(browser: Any, server: Server) -> Iterator[Any]:
    # not UTC on purpose: every time shown says UTC, and must be
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        base_url=server.base,
        service_workers="block",
        timezone_id="Asia/Kolkata",
        locale="en-GB",
    )
    yield context
    context.close()


@pytest.fixture
def watch(server: Server) -> Watch:
    return Watch(server.base)


@pytest.fixture
def page(context: Any, watch: Watch) -> Iterator[Any]:
    page = context.new_page()
    page.set_default_timeout(10_000)
    attach(page, watch)
    yield page
    watch.check()


def attach(page: Any, watch: Watch) -> None:
    page.on("request", lambda request: watch.requests.append(request.url))
    page.on("websocket", lambda ws: watch.requests.append(ws.url))
    page.on("console", lambda message: message.type == "error" and watch.errors.append(message.text))
    page.on("pageerror", lambda error: watch.errors.append(f"page error: {error}"))


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


CONTRAST_JS = (Path(__file__).with_name("contrast.js")).read_text()


def assert_contrast(page: Any) -> int:
    """WCAG AA contrast of every visible text on the page (4.5:1, 3:1 for large text), against its
    composited background; returns how many elements were checked."""
    result = page.evaluate(CONTRAST_JS)
    assert result["failures"] == [], result["failures"]
    assert result["checked"] > 10
    return int(result["checked"])
