"""`insider-selling serve` as a user runs it: keys printed once, the documented curl, the scheduler."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

KEY_LINE = re.compile(r"^(bootstrap admin key|demo read key): (sk_live_[0-9A-Za-z]{40})$")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served() -> Iterator[tuple[str, dict[str, str], subprocess.Popen[str]]]:
    port = _free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("INSIDER_") and k not in ("MONGODB_URI", "REDIS_URL")
    }
    env.update(INSIDER_DEMO_COINS="60", INSIDER_SCORE_INTERVAL_SECONDS="10", INSIDER_ARGON2_PROFILE="test")
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "insider_selling.cli", "serve", "--port", str(port)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    keys: dict[str, str] = {}
    lines: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stderr is not None
    while len(keys) < 2 and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        match = KEY_LINE.match(line.rstrip("\n"))
        if match:
            keys[match.group(1)] = match.group(2)
    assert len(keys) == 2, "".join(lines)
    assert any("in-memory" in line and "lost on exit" in line for line in lines)
    try:
        yield f"http://127.0.0.1:{port}", keys, proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_prints_keys_and_answers_the_documented_call(
    served: tuple[str, dict[str, str], subprocess.Popen[str]],
) -> None:
    base, keys, proc = served
    headers = {"Authorization": f"Bearer {keys['demo read key']}"}
    deadline = time.monotonic() + 60
    first = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(
                f"{base}/v1/insider-selling/data", params={"limit": 20, "min_score": 4}, headers=headers, timeout=5
            )
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        if response.status_code == 200:
            first = response.json()["data"]
            break
        assert response.status_code == 503, response.text
        time.sleep(0.2)
    assert first is not None and first["count"] == len(first["coins"]) > 0
    # The scheduler runs inside `serve` in the embedded mode: a new run replaces the first one.
    updated = {c["updated_at"] for c in first["coins"]}
    while time.monotonic() < deadline:
        data = httpx.get(f"{base}/v1/insider-selling/data", headers=headers, timeout=5).json()["data"]
        if {c["updated_at"] for c in data["coins"]} - updated:
            break
        time.sleep(0.5)
    else:
        pytest.fail("no second scoring run within the deadline")
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    # Each key is printed exactly once, and never logged.
    for key in keys.values():
        assert key not in err
