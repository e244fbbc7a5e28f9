"""The README is the front door: short, the two commands on its first screen, and every link,
command and GraphQL example in it (and in the ``docs/`` pages it links to) true."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from graphql import build_schema, parse, validate

from insider_selling.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "deploy" / "README.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """The text outside fenced code blocks (a ``# comment`` in a shell block is not a heading)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", prose(page.read_text()), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_is_short() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) < 300, f"README.md has {len(lines)} lines; move detail to docs/"


def test_first_screen_has_the_two_commands() -> None:
    first_screen = "\n".join(README.read_text().splitlines()[:40])
    assert "make run" in first_screen and "make test" in first_screen


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_point_at_files_and_headings(page: Path) -> None:
    broken = []
    for url in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", url):
            continue  # https:, mailto:
        path, _, fragment = url.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists() or (fragment and target.suffix == ".md" and fragment not in anchors(target)):
            broken.append(url)
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_readme_commands_parse() -> None:
    lines = [line.split("#")[0] for block in fenced(README.read_text(), "sh") for line in block.splitlines()]
    found = 0
    for line in lines:
        if line.startswith("insider-selling "):
            build_parser().parse_args(shlex.split(line)[1:])
            found += 1
    assert found >= 3


def test_graphql_examples_validate_against_the_schema() -> None:
    schema = build_schema((ROOT / "schema.graphql").read_text())
    documents = []
    for page in (README, ROOT / "docs" / "api.md", ROOT / "docs" / "operations.md"):
        text = page.read_text()
        documents += [block for block in fenced(text, "graphql") if "…" not in block]
        documents += [m.replace('\\"', '"') for m in re.findall(r"\"query\":\"(.*?)\"}", text)]
    assert len(documents) >= 5
    for document in documents:
        errors = validate(schema, parse(document))
        assert not errors, (document, errors)
