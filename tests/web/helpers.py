"""Helpers for the browser tests (``tests.web.helpers``; the fixtures are in ``conftest.py``): the
served app, what a page did, screenshots, the contrast check and the dashboard's key entry."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from scoring.pipeline import RunResult
from tests.helpers import ROOT

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


def rest(server: Server, key: str, **params: Any) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.base}/v1/insider-selling/data", params=params, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    coins: list[dict[str, Any]] = response.json()["data"]["coins"]
    return coins


def enter_key(page: Any, key: str) -> float:
    """Type the key and press Enter (keyboard only); returns the seconds until the table is shown."""
    page.goto("/dashboard")
    page.locator("#key-input").focus()
    page.keyboard.type(key)
    started = time.perf_counter()
    page.keyboard.press("Enter")
    return started


def assert_key_kept_out(page: Any, watch: Watch, key: str) -> None:
    assert key not in page.url
    assert all(key not in url for url in watch.requests)
    stored = page.evaluate("JSON.stringify(Object.entries(localStorage))")
    assert key not in stored
    assert key not in json.dumps(page.context.cookies())
