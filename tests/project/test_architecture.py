"""The one-way arrows between packages are contracts (import-linter, ``[tool.importlinter]`` in
pyproject.toml), and breaking one fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("insider_selling", "gql", "research", "webhooks", "tenants", "scoring", "ingest", "store")
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(  # noqa: S603
        [str(LINT), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _copy_tree(dest: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    for package in PACKAGES:
        skip = shutil.ignore_patterns("static", "__pycache__", "*.toml")
        shutil.copytree(ROOT / package, dest / package, ignore=skip)
    return dest


def test_the_contracts_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("gql/_probe.py", "import insider_selling.settings", "One-way arrows"),
        ("gql/_probe.py", "from ingest.venues import base", "The web layer never reads settings"),
        ("scoring/_probe.py", "import gql.schema", "The scoring core never imports web code"),
        ("scoring/_probe.py", "from research import report", "The scoring core never imports web code"),
        ("scoring/_probe.py", "import argparse", "The scoring core is the model only"),
        ("scoring/_probe.py", "import matplotlib.pyplot", "The scoring core is the model only"),
        ("scoring/_probe.py", "from ingest.importers import import_frames", "The scoring core is the model only"),
        ("research/_probe.py", "import tenants.service", "Research is never served"),
        ("research/_probe.py", "import insider_selling.settings", "Research is never served"),
        ("gql/_probe.py", "import research.replay", "One-way arrows"),
        ("ingest/_probe.py", "import research.replay", "One-way arrows"),
        ("store/_probe.py", "import ingest.snapshot", "One-way arrows"),
        ("webhooks/_probe.py", "import gql.schema", "One-way arrows"),
        ("tenants/_probe.py", "import webhooks.service", "One-way arrows"),
    ],
)
def test_a_backward_import_breaks_a_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    tree = _copy_tree(tmp_path)
    (tree / module).write_text(f'"""probe"""\n{line}\n')
    result = _lint(tree)
    assert result.returncode != 0
    assert contract in result.stdout.split("Broken contracts")[-1], result.stdout
