"""Settings, start-up refusals, health, readiness, metrics, OpenAPI, logs, and run atomicity."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import timedelta

import pytest

from insider_selling.cli import main
from insider_selling.logs import JsonFormatter, scrub
from insider_selling.settings import SettingsError, load_settings
from scoring.errors import RunFailed
from tests.helpers import ApiClient


@pytest.mark.parametrize(
    ("env", "value", "needle"),
    [
        ("INSIDER_PORT", "abc", "INSIDER_PORT"),
        ("INSIDER_PORT", "70000", "INSIDER_PORT"),
        ("INSIDER_SCORE_INTERVAL_SECONDS", "0", "INSIDER_SCORE_INTERVAL_SECONDS"),
        ("INSIDER_INGEST_SOURCE", "csv", "INSIDER_INGEST_SOURCE"),
        ("MONGODB_URI", "postgres://x", "MONGODB_URI"),
        ("REDIS_URL", "http://x", "REDIS_URL"),
    ],
)
def test_invalid_settings_name_the_setting(monkeypatch: pytest.MonkeyPatch, env: str, value: str, needle: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert needle in message and "\n" not in message


def test_cli_refuses_invalid_settings_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INSIDER_PORT", "nope")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "INSIDER_PORT" in err[0]


def test_unsafe_argon2_profile_is_refused_with_mongodb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_URI", "mongodb://localhost:1")
    monkeypatch.setenv("INSIDER_ARGON2_PROFILE", "test")
    with pytest.raises(SettingsError, match="INSIDER_ARGON2_PROFILE"):
        load_settings()


def test_workers_need_mongodb(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--workers", "2"]) == 2
    assert "MONGODB_URI" in capsys.readouterr().err


def test_cli_help_lists_the_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "insider_selling.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("serve", "worker", "admin"):
        assert command in out


async def test_health_ready_metrics_openapi(api: ApiClient) -> None:
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    await api.http.get("/v1/insider-selling/data", headers={"Authorization": f"Bearer {api.read_key}"})
    await api.http.get("/v1/insider-selling/data")
    metrics = (await api.http.get("/metrics")).text
    assert 'insider_http_requests_total{method="GET",route="/v1/insider-selling/data",status="200"} 1.0' in metrics
    assert 'status="401"' in metrics
    assert "insider_http_request_seconds_bucket" in metrics
    age = next(line for line in metrics.splitlines() if line.startswith("insider_last_run_age_seconds "))
    assert float(age.split()[1]) >= 0
    doc = (await api.http.get("/v1/openapi.json")).json()
    op = doc["paths"]["/v1/insider-selling/data"]["get"]
    assert {p["name"] for p in op["parameters"] if p["in"] == "query"} == {"limit", "min_score", "as_of"}
    assert {p["name"] for p in op["parameters"] if p["in"] == "header"} == {"If-None-Match"}
    assert {"ETag", "Cache-Control", "RateLimit-Policy", "RateLimit"} <= set(op["responses"]["200"]["headers"])
    assert "304" in op["responses"]
    assert {"200", "400", "401", "403", "429", "503"} <= set(op["responses"])
    assert doc["openapi"].startswith("3.")
    track = doc["paths"]["/v1/insider-selling/track-record"]["get"]
    assert {p["name"] for p in track["parameters"]} == {"window", "model_version", "band", "top_n", "from", "to"}
    assert set(track["responses"]["200"]["content"]) == {"application/json", "text/csv"}


def test_logs_never_carry_a_key() -> None:
    from tenants.keys import generate_key

    key = generate_key().full
    assert key not in scrub(f"auth failed for {key}")
    record = logging.makeLogRecord({"msg": "header %s", "args": (f"Bearer {key}",), "extra_key": key})
    line = JsonFormatter().format(record)
    assert key not in line and key[:20] in line


async def test_failed_run_leaves_the_previous_leaderboard(api: ApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    headers = {"Authorization": f"Bearer {api.read_key}"}
    before = (await api.http.get("/v1/insider-selling/data", headers=headers)).json()["data"]
    run = await api.services.leaderboard.current_run()
    pipeline = api.services.cycle.pipeline

    def explode(*args: object, **kwargs: object) -> object:
        raise RunFailed("simulated failure half-way")

    monkeypatch.setattr("scoring.pipeline.coin_documents", explode)
    result = await api.services.cycle.run_once(run["at"] + timedelta(minutes=30))
    assert result.status == "failed"
    runs = await pipeline.runs.recent_runs()
    assert runs[0]["status"] == "failed" and "simulated" in runs[0]["error"]
    api.services.leaderboard.invalidate()
    after = (await api.http.get("/v1/insider-selling/data", headers=headers)).json()["data"]
    assert after == before


async def test_a_new_run_replaces_the_leaderboard_at_once(api: ApiClient) -> None:
    headers = {"Authorization": f"Bearer {api.read_key}"}
    first = await api.services.leaderboard.current_run()
    result = await api.services.cycle.run_once(first["at"] + timedelta(minutes=30))
    assert result.status == "succeeded"
    body = (await api.http.get("/v1/insider-selling/data", headers=headers)).json()["data"]
    assert {c["updated_at"] for c in body["coins"]} == {
        (first["at"] + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    }
    # holder changes are measured against the previous succeeded run
    assert any(c["holders_change_pct"] is not None for c in body["coins"])


def test_readme_documents_every_setting() -> None:
    from insider_selling.settings import Settings
    from tests.helpers import ROOT

    readme = (ROOT / "README.md").read_text()
    aliases = {str(field.validation_alias) for field in Settings.model_fields.values()}
    missing = sorted(alias for alias in aliases if f"`{alias}`" not in readme)
    assert not missing, f"README settings table lacks {missing}"
