"""``insider-selling admin webhooks …`` against a real embedded server process: create (the secret
printed once), list, test (a signed ping reaches a local receiver), rotate, pause, replay, delete."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from insider_selling.cli import main
from tests.helpers import serve_process
from tests.webhooks.receiver import Receiver


def admin(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["admin", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_operator_manages_webhooks_from_the_cli(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "INSIDER_DEMO_COINS": "20",
        "INSIDER_HISTORY_HOURS": "24",
        "INSIDER_WEBHOOK_ALLOW_HTTP": "1",
        "INSIDER_WEBHOOK_ALLOW_PRIVATE": "1",
    }
    with serve_process(**env) as served:
        stderr = served.proc.stderr
        drain = threading.Thread(target=lambda: [None for _ in stderr or ()], daemon=True)
        drain.start()
        try:
            _operate(served.base, served.keys["bootstrap admin key"], receiver, monkeypatch, capsys)
        finally:
            served.proc.terminate()
            served.proc.wait(timeout=20)
            drain.join(timeout=5)
            if stderr is not None:
                stderr.close()


def _operate(
    base: str, key: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base}/healthz", timeout=2)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    monkeypatch.setenv("INSIDER_ADMIN_KEY", key)
    url = ["--url", base]
    code, out, err = admin(
        capsys, "webhooks", "create", "--endpoint-url", receiver.url, "--event", "coin.score_crossed",
        "--threshold", "5", "--direction", "up", *url, "--json",
    )  # fmt: skip
    assert code == 0, err
    created = json.loads(out)
    assert created["secret"].startswith("whsec_") and "shown only once" in err
    endpoint_id = created["endpoint"]["id"]
    receiver.secrets.append(created["secret"])

    code, out, _ = admin(capsys, "webhooks", "list", *url)
    assert code == 0 and endpoint_id in out and "whsec_" not in out

    code, out, _ = admin(capsys, "webhooks", "test", endpoint_id, *url, "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    assert receiver.requests[-1]["payload"]["type"] == "webhook.test" and receiver.bad_signatures == 0

    code, out, _ = admin(capsys, "webhooks", "rotate-secret", endpoint_id, *url, "--json")
    assert code == 0 and json.loads(out)["secret"] != created["secret"]

    code, out, _ = admin(capsys, "webhooks", "pause", endpoint_id, *url, "--json")
    assert code == 0 and json.loads(out)["state"] == "PAUSED"

    code, out, _ = admin(capsys, "webhooks", "replay", endpoint_id, "--since", "2026-12-07T00:00:00Z", *url)
    assert code == 0 and "replayed" in out

    code, _, err = admin(capsys, "webhooks", "update", endpoint_id, "--threshold", "42", *url)
    assert code == 2 and "threshold" in err

    code, out, _ = admin(capsys, "webhooks", "delete", endpoint_id, *url, "--json")
    assert code == 0 and json.loads(out) is True
