"""schema.graphql is exactly what ``strawberry export-schema gql.schema:schema`` writes."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from strawberry.printer import print_schema

from gql.schema import schema
from tests.helpers import ROOT

STALE = "schema.graphql is stale: run `strawberry export-schema gql.schema:schema --output schema.graphql`"


def test_schema_file_matches_the_code() -> None:
    on_disk = (ROOT / "schema.graphql").read_text()
    # what export-schema prints (strawberry/cli/commands/export_schema.py: print_schema + newline)
    assert on_disk == print_schema(schema) + "\n", STALE
    for name in (
        "type Coin",
        "type SubScores",
        "type Signal",
        "type ScoreHistory",
        "scoreUpdates(",
        "scoreHistory(",
        "insiderSelling(",
        "createTenant(",
        "viewer",
    ):
        assert name in on_disk


def test_the_cli_agrees() -> None:
    if importlib.util.find_spec("typer") is None:  # the CLI extra; the check above still holds
        return
    exported = subprocess.run(
        [sys.executable, "-m", "strawberry", "export-schema", "gql.schema:schema"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert exported == (ROOT / "schema.graphql").read_text(), STALE
