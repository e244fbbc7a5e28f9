"""``insider-selling admin tenants|keys|audit`` against a running embedded server (a real
``insider-selling serve`` process), through the GraphQL admin API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from insider_selling.cli import build_parser, main
from tests.helpers import free_port, serve_process


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, dict[str, str]]]:
    with serve_process(INSIDER_DEMO_COINS="20", INSIDER_HISTORY_HOURS="24") as served:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the keys are printed before uvicorn listens
            try:
                httpx.get(f"{served.base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        # Keep reading the server's log so that a full pipe never blocks it.
        stderr = served.proc.stderr
        drain = threading.Thread(target=lambda: [None for _ in stderr or ()], daemon=True)
        drain.start()
        try:
            yield served.base, served.keys
        finally:
            served.proc.terminate()
            served.proc.wait(timeout=20)
            drain.join(timeout=5)
            if stderr is not None:
                stderr.close()


def admin(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["admin", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_operator_lifecycle_against_the_embedded_server(
    server: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base, keys = server
    monkeypatch.setenv("INSIDER_ADMIN_KEY", keys["bootstrap admin key"])
    url = ["--url", base]

    code, out, _ = admin(
        capsys, "tenants", "create", "--name", "acme", "--plan", "pro", "--rate-limit-per-minute", "120", *url, "--json"
    )
    tenant = json.loads(out)
    assert code == 0 and tenant["plan"] == "pro" and tenant["rateLimitPerMinute"] == 120
    assert tenant["quotaPerMonth"] == 1_000_000 and tenant["customLimits"] is True

    code, out, err = admin(
        capsys,
        "keys",
        "issue",
        "--tenant",
        tenant["id"],
        "--name",
        "ops",
        "--scope",
        "signals:read",
        "--scope",
        "keys:manage",
        *url,
        "--json",
    )
    issued = json.loads(out)
    assert code == 0 and issued["key"].startswith("sk_live_") and "only once" in err
    assert issued["apiKey"]["scopes"] == ["keys:manage", "signals:read"]
    key_id = issued["apiKey"]["keyId"]
    data = httpx.get(f"{base}/v1/insider-selling/data", headers={"Authorization": f"Bearer {issued['key']}"})
    assert data.status_code in (200, 503)  # authenticated (503 only before the first run)

    code, out, _ = admin(capsys, "keys", "list", "--tenant", tenant["id"], *url, "--json")
    listed = json.loads(out)
    assert isinstance(listed, list) and isinstance(tenant, dict)  # the operation's result (docs/operations.md)
    assert [k["keyId"] for k in listed] == [key_id] and issued["key"][8:] not in out

    code, out, err = admin(capsys, "keys", "rotate", key_id, "--grace-seconds", "0", *url, "--json")
    rotated = json.loads(out)
    assert code == 0 and rotated["apiKey"]["rotatedFrom"] == key_id and "only once" in err
    old = httpx.get(f"{base}/v1/insider-selling/data", headers={"Authorization": f"Bearer {issued['key']}"})
    assert old.status_code == 401

    new_id = rotated["apiKey"]["keyId"]
    code, out, _ = admin(capsys, "keys", "revoke", new_id, *url, "--json")
    assert code == 0 and json.loads(out)["state"] == "REVOKED"
    gone = httpx.get(f"{base}/v1/insider-selling/data", headers={"Authorization": f"Bearer {rotated['key']}"})
    assert gone.status_code == 401

    code, out, _ = admin(capsys, "audit", "--tenant", tenant["id"], *url, "--json")
    page = json.loads(out)
    actions = [edge["node"]["action"] for edge in page["edges"]]
    assert actions == ["key.revoked", "key.rotated", "key.issued", "tenant.created"]
    assert {edge["node"]["actor"] for edge in page["edges"]} == {"api-key"}
    assert rotated["key"][8:] not in out and issued["key"][8:] not in out

    # The default output is a table; the tenant and the keys' states show in it.
    code, out, _ = admin(capsys, "keys", "list", "--tenant", tenant["id"], *url)
    assert code == 0 and key_id in out and new_id in out and "REVOKED" in out and "ROTATED" in out
    assert not out.lstrip().startswith(("[", "{"))
    code, out, _ = admin(capsys, "tenants", "list", *url)
    assert code == 0 and "acme" in out and tenant["id"] in out


def test_refusals_are_one_line(
    server: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base, keys = server
    monkeypatch.setenv("INSIDER_ADMIN_KEY", keys["bootstrap admin key"])
    code, out, err = admin(
        capsys, "tenants", "create", "--name", "x", "--plan", "free", "--rate-limit-per-minute", "0", "--url", base
    )
    assert code == 2 and out == "" and err.startswith("error: parameter_invalid") and err.count("\n") == 1
    code, out, err = admin(capsys, "keys", "revoke", "key_000000000000", "--url", base)
    assert code == 1 and out == "" and err.startswith("error: not_found")
    # A read key is refused by the server's authorization, not by the CLI.
    monkeypatch.setenv("INSIDER_ADMIN_KEY", keys["demo read key"])
    code, _, err = admin(capsys, "tenants", "create", "--name", "y", "--plan", "free", "--url", base)
    assert code == 1 and "insufficient_scope" in err
    monkeypatch.setenv("INSIDER_ADMIN_KEY", "sk_live_not-a-key")
    code, _, err = admin(capsys, "tenants", "list", "--url", base)
    assert code == 1 and "malformed_api_key" in err and "not-a-key" not in err
    code, _, err = admin(capsys, "tenants", "list", "--url", f"http://127.0.0.1:{free_port()}")
    assert code == 1 and err.startswith("error: cannot reach") and "--url" in err


def test_the_key_is_prompted_for_and_never_an_argument(
    server: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base, keys = server
    monkeypatch.delenv("INSIDER_ADMIN_KEY", raising=False)
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return keys["bootstrap admin key"]

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    from insider_selling import admin_cli
    from insider_selling.settings import load_settings

    args = build_parser().parse_args(["admin", "tenants", "list", "--url", base, "--json"])
    captured: dict[str, Any] = {}
    import io

    out = io.StringIO()
    assert admin_cli.run(args, load_settings(), out=out, prompt=fake_getpass) == 0
    captured["tenants"] = json.loads(out.getvalue())
    assert len(prompts) == 1 and "admin key" in prompts[0]
    assert captured["tenants"]  # the bootstrap tenant at least
    # No option takes a key: every admin leaf parser's options are listed here.
    for argv in (["tenants", "list"], ["keys", "list", "--tenant", "t"], ["audit"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["admin", *argv, "--key", keys["bootstrap admin key"]])
    # An empty answer at the prompt is a refusal, not a request without a key.
    err = io.StringIO()
    assert admin_cli.run(args, load_settings(), out=io.StringIO(), err=err, prompt=lambda _: "") == 2
    assert "INSIDER_ADMIN_KEY" in err.getvalue()
