"""The shared real datasets (``../shared/data`` beside the repository, see its README).

Tests that need them fail, not skip, when the folder is missing in CI (``CI=true``), where
``../shared`` is always laid beside the clone. ``SHARED_DATA_DIR`` points elsewhere (a
worktree that is not beside ``shared/``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path | None:
    candidates = [Path(p) for p in [os.environ.get("SHARED_DATA_DIR")] if p]
    candidates.append(ROOT.parent / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        message = f"the real datasets are missing: expected {ROOT.parent / 'shared' / 'data'} (or SHARED_DATA_DIR)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message + "; CI fails here instead of skipping")
    return path
