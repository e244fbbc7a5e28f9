"""No code of ``insider_selling`` writes to the process environment (issue 20, item 3).

Settings are read once and travel as arguments: a ``--host`` put into ``os.environ`` for a later
``load_settings()`` to find is wiring nobody can see. The scan below reads every module of the
composition root and reports each write: an assignment, augmented assignment or ``del`` on
``os.environ[...]``; a call of a mutating ``os.environ`` method (``update``, ``setdefault``,
``pop``, ...); ``os.putenv`` and ``os.unsetenv``; the same through ``from os import environ``
and ``os.environb``.

One function is allowed: :func:`insider_selling.cli.export_metrics_dir`, which names the
Prometheus multi-process directory to prometheus_client, a library that reads it from nowhere
but the environment (in each uvicorn worker process, at import).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "insider_selling"
ALLOWED = {("insider_selling/cli.py", "export_metrics_dir")}
MUTATORS = {"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__"}
ENVIRONS = {"environ", "environb"}


def _is_environ(node: ast.expr, aliases: set[str]) -> bool:
    """``os.environ`` / ``os.environb``, or a name bound by ``from os import environ``."""
    if isinstance(node, ast.Attribute):
        return node.attr in ENVIRONS and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id in aliases


def _writes(func: ast.expr, aliases: set[str]) -> bool:
    """Is a call of ``func`` a write: a mutating ``os.environ`` method, ``os.putenv``/``os.unsetenv``,
    or one of them imported by name?"""
    if isinstance(func, ast.Attribute):
        if func.attr in MUTATORS and _is_environ(func.value, aliases):
            return True
        return func.attr in ("putenv", "unsetenv") and isinstance(func.value, ast.Name) and func.value.id == "os"
    return isinstance(func, ast.Name) and func.id in aliases - ENVIRONS


def environment_writes(source: str) -> Iterator[tuple[int, str | None]]:
    """``(line, enclosing function)`` of each write to the process environment in ``source``."""
    tree = ast.parse(source)
    aliases = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "os"
        for alias in node.names
        if alias.name in ENVIRONS | {"putenv", "unsetenv"}
    }

    def visit(node: ast.AST, function: str | None) -> Iterator[tuple[int, str | None]]:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Subscript) and _is_environ(target.value, aliases):
                yield node.lineno, function
        if isinstance(node, ast.Call) and _writes(node.func, aliases):
            yield node.lineno, function
        for child in ast.iter_child_nodes(node):
            yield from visit(child, function)

    yield from visit(tree, None)


def test_the_scan_finds_every_kind_of_write() -> None:
    source = """
import os
from os import environ as env, putenv

os.environ["A"] = "1"
os.environ["A"] += "2"
del os.environ["A"]
os.environ.update({"A": "1"})
os.environ.setdefault("A", "1")
os.environ.pop("A", None)
os.environb[b"A"] = b"1"
os.putenv("A", "1")
os.unsetenv("A")
env["A"] = "1"
env.clear()
putenv("A", "1")

def reads_only() -> str:
    return os.environ.get("A", "") + os.environ["B"] + str("A" in os.environ)
"""
    assert [line for line, _ in environment_writes(source)] == list(range(5, 17))


def test_insider_selling_never_writes_to_the_environment() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        for line, function in environment_writes(path.read_text()):
            if (name, function) not in ALLOWED:
                found.append(f"{name}:{line} (in {function or 'the module'})")
    assert not found, "writes to os.environ: " + ", ".join(found)


def test_the_one_allowed_writer_exists() -> None:
    """The allowance names a function that still writes: remove it from ALLOWED once it is gone."""
    for name, function in ALLOWED:
        writers = {f for _, f in environment_writes((ROOT / name).read_text())}
        assert function in writers, f"{name}: {function} no longer writes to os.environ"
