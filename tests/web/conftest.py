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
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from ingest.demo import DemoSource
from insider_selling.app import build_app
from tests.helpers import SMALL_DEMO, free_port, make_settings
from tests.web.helpers import Server, Watch, attach

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


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """The app as ``make run`` serves it (default argon2 profile, so a first key check costs what it
    costs in production), with a small demo market and no timed scheduler: tests score runs."""
    settings = make_settings(argon2_profile="owasp")
    app = build_app(
        settings, source=DemoSource(SMALL_DEMO), run_scheduler=False, prime=True, announce=lambda line: None
    )
    port = free_port()
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
