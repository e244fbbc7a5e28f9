"""``uv.lock`` pins what every install uses (``make run``, ``make test``, ``.ci/run``, the Dockerfile).
It must say what ``pyproject.toml`` says: the same requirements, every pin inside its bounds, every
direct dependency bounded above, and hashes for every artifact. ``make test`` also installs with
``uv sync --locked``, which refuses a stale lock; this test says which line disagrees, offline."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def _declared(pyproject: dict[str, Any]) -> set[tuple[str, str, frozenset[str], str]]:
    """Each requirement of pyproject.toml as (name, specifier, extras, extra it belongs to)."""
    project = pyproject["project"]
    groups = [("", project["dependencies"]), *project.get("optional-dependencies", {}).items()]
    out = set()
    for extra, reqs in groups:
        for text in reqs:
            req = Requirement(text)
            out.add((canonicalize_name(req.name), str(req.specifier), frozenset(req.extras), extra))
    return out


def _locked_requirements(lock: dict[str, Any], project: str) -> set[tuple[str, str, frozenset[str], str]]:
    root = next(p for p in lock["package"] if p["name"] == project)
    out = set()
    for item in root["metadata"]["requires-dist"]:
        extra = ""
        if "marker" in item:
            marker = Marker(item["marker"])
            extra = next(e for e in ("dev",) if marker.evaluate({"extra": e}))
        spec = str(SpecifierSet(item.get("specifier", "")))
        out.add((canonicalize_name(item["name"]), spec, frozenset(item.get("extras", [])), extra))
    return out


def check_lock(pyproject: dict[str, Any], lock: dict[str, Any]) -> list[str]:
    """Every disagreement between the project's requirements and the lock, in words (empty: none)."""
    problems: list[str] = []
    name = canonicalize_name(pyproject["project"]["name"])
    declared, locked = _declared(pyproject), _locked_requirements(lock, name)
    for item in sorted(declared - locked):
        problems.append(f"pyproject.toml asks for {item[0]}{item[1]} (extra {item[3] or '-'}); uv.lock does not")
    for item in sorted(locked - declared):
        problems.append(f"uv.lock was resolved for {item[0]}{item[1]} (extra {item[3] or '-'}); pyproject.toml is not")
    versions: dict[str, list[Version]] = {}
    for package in lock["package"]:
        versions.setdefault(canonicalize_name(package["name"]), []).append(Version(package["version"]))
        if package.get("source", {}).get("registry"):
            artifacts = package.get("wheels", []) + ([package["sdist"]] if "sdist" in package else [])
            if not artifacts or any(not a.get("hash", "").startswith("sha256:") for a in artifacts):
                problems.append(f"{package['name']} {package['version']} is locked without a sha256 hash")
    for dep, spec, _extras, _extra in sorted(declared):
        if dep == name:
            continue
        pins = versions.get(dep, [])
        if not pins:
            problems.append(f"{dep} is not in uv.lock")
        for pin in pins:
            if pin not in SpecifierSet(spec):
                problems.append(f"uv.lock pins {dep} {pin}, outside {spec}")
        if not any(s.operator in ("<", "==", "~=") for s in SpecifierSet(spec)):
            problems.append(f"{dep}{spec} has no upper bound")
    return problems


@pytest.fixture(scope="module")
def files() -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        tomllib.loads((ROOT / "pyproject.toml").read_text()),
        tomllib.loads((ROOT / "uv.lock").read_text()),
    )


def test_the_lock_agrees_with_pyproject(files: tuple[dict[str, Any], dict[str, Any]]) -> None:
    assert check_lock(*files) == []


def test_a_changed_bound_is_a_disagreement(files: tuple[dict[str, Any], dict[str, Any]]) -> None:
    pyproject, lock = files
    deps = pyproject["project"]["dependencies"]
    edited = {**pyproject, "project": {**pyproject["project"], "dependencies": [*deps, "tomli-w>=1"]}}
    assert any("tomli-w" in p for p in check_lock(edited, lock))
    redis = next(i for i, d in enumerate(deps) if d.startswith("redis"))
    narrowed = [*deps[:redis], "redis>=5.2,<6", *deps[redis + 1 :]]
    problems = check_lock({**pyproject, "project": {**pyproject["project"], "dependencies": narrowed}}, lock)
    assert any("outside <6,>=5.2" in p for p in problems), problems
    unbounded = [*deps[:redis], "redis>=5.2", *deps[redis + 1 :]]
    problems = check_lock({**pyproject, "project": {**pyproject["project"], "dependencies": unbounded}}, lock)
    assert any("redis>=5.2 has no upper bound" in p for p in problems), problems


def test_graphql_core_is_declared_since_the_code_imports_it(files: tuple[dict[str, Any], dict[str, Any]]) -> None:
    names = {Requirement(r).name for r in files[0]["project"]["dependencies"]}
    assert "graphql-core" in names


def test_every_install_goes_through_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "sync --locked" in makefile and "pip install -e" not in makefile
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "sync --locked" in dockerfile and "pip install ." not in dockerfile
    assert "--require-hashes" in dockerfile and "--require-hashes" in makefile  # the uv bootstrap
