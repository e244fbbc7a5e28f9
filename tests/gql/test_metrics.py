"""``/metrics``: standard Prometheus types that add up across worker processes, and a client that
hangs up mid-body is neither a 500 nor an error in the log."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from insider_selling.cli import prepare_metrics_dir
from tests.helpers import ROOT, ApiClient, make_settings

# One worker process: its own app on the shared multi-process directory, some requests, and
# (for the last one) a scrape printed on stdout.
WORKER = textwrap.dedent("""
    import asyncio, sys
    import httpx
    from insider_selling.app import build_app
    from insider_selling.settings import Settings

    async def main(directory: str, healthz: int, scrape: bool) -> None:
        settings = Settings(argon2_profile="test", demo_coins=20, prometheus_multiproc_dir=directory)
        app = build_app(settings, run_scheduler=False, prime=False, announce=lambda line: None)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
                for _ in range(healthz):
                    assert (await client.get("/healthz")).status_code == 200
                for _ in range(2):  # the REST fast path, without a key
                    assert (await client.get("/v1/insider-selling/data")).status_code == 401
                if scrape:
                    print((await client.get("/metrics")).text)

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "scrape"))
""")


def _worker(directory: Path, healthz: int, scrape: bool) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSIDER_")}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)  # before prometheus_client is imported
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", WORKER, str(directory), str(healthz), "scrape" if scrape else "quiet"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if found == labels:
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels} in:\n{text}")


def test_one_scrape_reports_the_sum_of_two_worker_processes(tmp_path: Path) -> None:
    _worker(tmp_path, healthz=5, scrape=False)
    text = _worker(tmp_path, healthz=7, scrape=True)
    assert len(list(tmp_path.glob("*.db"))) >= 2  # one file per process and metric type
    assert _sample(text, "insider_http_requests_total", method="GET", route="/healthz", status="200") == 12
    data = {"method": "GET", "route": "/v1/insider-selling/data", "status": "401"}
    assert _sample(text, "insider_http_requests_total", **data) == 4
    assert _sample(text, "insider_http_request_seconds_count", route="/healthz") == 12
    assert _sample(text, "insider_http_request_seconds_bucket", route="/healthz", le="+Inf") == 12
    assert "# TYPE insider_http_request_seconds histogram" in text
    assert re.search(r"^# TYPE insider_http_requests(_total)? counter$", text, flags=re.M)
    assert "insider_last_run_age_seconds" in text


def test_serve_prepares_a_clean_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # restored (to unset) after the test
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    settings, own = prepare_metrics_dir(make_settings(), workers=1)
    assert own is None and settings.prometheus_multiproc_dir is None  # one process: in memory
    settings, own = prepare_metrics_dir(make_settings(), workers=2)
    try:
        assert own is not None and own.is_dir() and not list(own.iterdir())
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(own) == settings.prometheus_multiproc_dir
    finally:
        os.rmdir(own)  # type: ignore[arg-type]
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    (tmp_path / "keep.txt").write_text("not ours")
    settings, own = prepare_metrics_dir(make_settings(prometheus_multiproc_dir=str(tmp_path)), workers=2)
    assert own is None and not list(tmp_path.glob("*.db")) and (tmp_path / "keep.txt").exists()


async def test_a_client_that_hangs_up_mid_body_is_not_a_server_error(
    api: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    app = api.app
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"test"),
            (b"content-type", b"application/json"),
            (b"content-length", b"100"),
            (b"authorization", f"Bearer {api.read_key}".encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("test", 80),
        "app": app,
    }
    messages = [{"type": "http.request", "body": b'{"query": "{ sig', "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    with caplog.at_level(logging.INFO):
        await app(scope, receive, send)
    assert not [m for m in sent if m.get("status") == 500]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    metrics = (await api.http.get("/metrics")).text
    assert 'route="/graphql",status="500"' not in metrics
    assert 'insider_http_requests_total{method="POST",route="/graphql",status="499"} 1.0' in metrics


async def test_the_route_cache_keeps_no_long_paths(api: ApiClient) -> None:
    """Paths are client input: distinct long ones are not kept by the route-name cache."""
    from gql.metrics import MetricsMiddleware

    for i in range(40):
        response = await api.http.get(f"/{'x' * 4000}{i}")
        assert response.status_code == 404
    assert (await api.http.get("/healthz")).status_code == 200
    layer: Any = api.app.middleware_stack
    while not isinstance(layer, MetricsMiddleware):
        layer = layer.app
    assert "/healthz" in layer._routes  # short paths are still remembered
    assert all(len(path) <= 128 for path in layer._routes)
