"""`insider-selling serve` as a user runs it: keys printed once, the documented curl, the scheduler."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import serve_process


@pytest.fixture
def served() -> Iterator[tuple[str, dict[str, str], subprocess.Popen[str]]]:
    with serve_process(INSIDER_DEMO_COINS="60", INSIDER_SCORE_INTERVAL_SECONDS="10") as server:
        assert any("in-memory" in line and "lost on exit" in line for line in server.lines)
        yield server.base, server.keys, server.proc


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
