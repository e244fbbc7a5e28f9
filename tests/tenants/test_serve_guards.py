"""``insider-selling serve`` start-up guards (issue 9): ``--workers N`` with MongoDB but without Redis
is refused, and ``X-Forwarded-For`` is trusted only from ``INSIDER_TRUSTED_PROXIES``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tenants.keys import generate_key
from tests.helpers import ROOT

DATA = "/v1/insider-selling/data"


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INSIDER_") and k not in ("MONGODB_URI", "REDIS_URL", "MONGODB_DATABASE")
    }
    env.update(extra)
    return env


def test_workers_with_mongodb_but_no_redis_are_refused_with_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "insider_selling.cli", "serve", "--workers", "2", "--port", "1"],
        env=_env(MONGODB_URI="mongodb://127.0.0.1:9"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "REDIS_URL" in lines[0] and "INSIDER_ALLOW_UNSAFE" in lines[0]


def _captured_serve(monkeypatch: pytest.MonkeyPatch, **env: str) -> tuple[Any, dict[str, Any]]:
    """Run ``serve`` through the CLI with ``uvicorn.run`` replaced: what would it have served, how?"""
    import uvicorn

    import insider_selling.logs
    from insider_selling.cli import main

    for name in list(os.environ):
        if name.startswith("INSIDER_") or name in ("MONGODB_URI", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR"):
            monkeypatch.delenv(name)
    for name, value in {"INSIDER_ARGON2_PROFILE": "test", "INSIDER_DEMO_COINS": "20", **env}.items():
        monkeypatch.setenv(name, value)
    seen: dict[str, Any] = {}

    def run(app: Any, **kwargs: Any) -> None:
        seen["app"], seen["kwargs"] = app, kwargs

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setattr(insider_selling.logs, "configure_logging", lambda level: None)
    assert main(["serve", "--port", "8123"]) == 0
    return seen["app"], seen["kwargs"]


def test_unsafe_override_lets_workers_start(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from insider_selling.cli import main

    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.append(kwargs))
    import insider_selling.logs

    monkeypatch.setattr(insider_selling.logs, "configure_logging", lambda level: None)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # serve --workers exports one: restored after
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:9")
    monkeypatch.setenv("INSIDER_ALLOW_UNSAFE", "1")
    assert main(["serve", "--workers", "2", "--port", "8123"]) == 0
    assert seen and seen[0]["workers"] == 2 and seen[0]["proxy_headers"] is False


@asynccontextmanager
async def _through_uvicorn(app: Any, kwargs: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    """The app as uvicorn would wrap it with these options (its proxy-headers middleware included),
    reached from 127.0.0.1 (a local reverse proxy)."""
    import uvicorn

    options = {k: v for k, v in kwargs.items() if k in ("proxy_headers", "forwarded_allow_ips")}
    config = uvicorn.Config(app, log_config=None, **options)
    config.load()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=config.loaded_app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


async def _fresh_address_after_20_failures(http: httpx.AsyncClient) -> int:
    for i in range(20):
        await http.get(
            DATA, headers={"Authorization": f"Bearer {generate_key().full}", "X-Forwarded-For": f"203.0.113.{i + 1}"}
        )
    response = await http.get(
        DATA, headers={"Authorization": f"Bearer {generate_key().full}", "X-Forwarded-For": "198.51.100.7"}
    )
    return response.status_code


async def test_forwarded_for_is_ignored_without_trusted_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    app, kwargs = _captured_serve(monkeypatch)
    async with _through_uvicorn(app, kwargs) as http:
        # every attempt came from 127.0.0.1, whatever the header claims: that address is throttled
        assert await _fresh_address_after_20_failures(http) == 429
    assert kwargs["proxy_headers"] is False


async def test_forwarded_for_is_trusted_from_configured_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    app, kwargs = _captured_serve(monkeypatch, INSIDER_TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.1")
    async with _through_uvicorn(app, kwargs) as http:
        # each client is counted at its own address: a new one starts clean
        assert await _fresh_address_after_20_failures(http) == 401
    assert kwargs["proxy_headers"] is True


def test_trusted_proxies_setting_is_validated() -> None:
    from insider_selling.settings import SettingsError, load_settings

    settings = load_settings(INSIDER_TRUSTED_PROXIES=" 10.0.0.0/8 ,::1, 192.168.1.5")
    assert settings.trusted_proxies == ("10.0.0.0/8", "::1/128", "192.168.1.5/32")
    assert load_settings().trusted_proxies == ()
    with pytest.raises(SettingsError, match="INSIDER_TRUSTED_PROXIES"):
        load_settings(INSIDER_TRUSTED_PROXIES="10.0.0.0/8,not-an-address")
