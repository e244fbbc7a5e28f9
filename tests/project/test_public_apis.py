"""The project's packages use only the public names of their dependencies (issue 19).

A name that starts with ``_`` (and is not a ``__dunder__``) is private to the package that defines
it. The scan below reads every module of the project's packages and reports:

1. an import of a third-party private name: ``from x import _y``, ``import x._y``,
   ``from x._y import z`` (any private component of a third-party module path);
2. an attribute read or write ``obj._name`` whose name the project itself never defines, whatever
   ``obj`` is: the project's own private attributes (``self._timer``, ``other._contexts``,
   ``module._helper``) are names the project binds somewhere (an assignment to an attribute, a
   function, a class, a module-level or class-level name, ``__slots__``), so a private name that no
   project module binds can only be someone else's (``info._raw_info``, ``schema._schema``,
   ``middleware._middleware_resolvers``, ``child._buckets``);
3. the same through ``getattr``/``setattr``/``hasattr``/``delattr`` with a constant name
   (``getattr(resolve, "_is_default", False)``).

A project-defined name that happens to equal a dependency's private name would hide a read of the
dependency's; :data:`KNOWN_PRIVATE_READS` lists the private reads this project once had and the
test proves each one is caught against the project's current names.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("insider_selling", "gql", "tenants", "scoring", "ingest", "store")
_REFLECTION = {"getattr", "setattr", "hasattr", "delattr"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _third_party(module: str) -> bool:
    top = module.split(".")[0]
    return bool(top) and top not in PACKAGES and top not in sys.stdlib_module_names


def _modules() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


#: namedtuple's documented methods and attributes, public though they start with ``_``
NAMEDTUPLE_API = {"_asdict", "_replace", "_make", "_fields", "_field_defaults"}


class Names:
    """The names the project binds: as attributes (``x.name = ...``, methods, class-level names,
    ``__slots__``) and at module level (functions, classes, assignments)."""

    def __init__(self) -> None:
        self.attributes: set[str] = set()
        self.module_level: set[str] = set()

    def __or__(self, other: Names) -> Names:
        both = Names()
        both.attributes = self.attributes | other.attributes
        both.module_level = self.module_level | other.module_level
        return both


def _defined_names(tree: ast.Module) -> Names:
    names = Names()
    for statement in tree.body:
        for node in ast.walk(statement) if isinstance(statement, ast.If | ast.Try) else (statement,):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.module_level.add(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.module_level.update(t.id for t in targets if isinstance(t, ast.Name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.attributes.add(node.attr)
        elif isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    names.attributes.add(member.name)
                elif isinstance(member, ast.Assign | ast.AnnAssign):
                    targets = member.targets if isinstance(member, ast.Assign) else [member.target]
                    for target in targets:
                        if isinstance(target, ast.Name):
                            names.attributes.add(target.id)
                    if any(isinstance(t, ast.Name) and t.id == "__slots__" for t in targets) and member.value:
                        names.attributes.update(
                            element.value
                            for element in ast.walk(member.value)
                            if isinstance(element, ast.Constant) and isinstance(element.value, str)
                        )
    return names


def project_names() -> Names:
    names = Names()
    for path in _modules():
        names = names | _defined_names(ast.parse(path.read_text(), str(path)))
    return names


def _project_module_aliases(tree: ast.Module) -> set[str]:
    """Local names that stand for a project module (``from gql import heads``, ``import gql.heads as h``)."""
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _third_party(alias.name):
                    aliases.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module and not _third_party(node.module))):
            aliases.update(alias.asname or alias.name for alias in node.names)
    return aliases


def _allowed(name: str, base: ast.expr, own: Names, modules: set[str]) -> bool:
    if name in own.attributes or name in NAMEDTUPLE_API:
        return True
    return isinstance(base, ast.Name) and base.id in modules and name in own.module_level


def private_uses(source: str, filename: str, own: Names) -> list[str]:
    """The third-party private names ``source`` imports or reads, as ``file:line: what``."""
    found: list[str] = []
    tree = ast.parse(source, filename)
    own = own | _defined_names(tree)
    modules = _project_module_aliases(tree)
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and _third_party(node.module):
            parts = node.module.split(".")
            if any(_private(part) for part in parts):
                found.append(f"{where}: from {node.module} import ...")
            found.extend(
                f"{where}: from {node.module} import {alias.name}" for alias in node.names if _private(alias.name)
            )
        elif isinstance(node, ast.Import):
            found.extend(
                f"{where}: import {alias.name}"
                for alias in node.names
                if _third_party(alias.name) and any(_private(part) for part in alias.name.split("."))
            )
        elif (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and not _allowed(node.attr, node.value, own, modules)
        ) or (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _REFLECTION
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
            and not _allowed(node.args[1].value, node.args[0], own, modules)
        ):
            found.append(f"{where}: {ast.unparse(node)}")
    return found


def scan() -> list[str]:
    own = project_names()
    found: list[str] = []
    for path in _modules():
        found += private_uses(path.read_text(), str(path.relative_to(ROOT)), own)
    return found


def test_no_private_name_of_a_dependency_is_used() -> None:
    found = scan()
    print(f"private names of third-party packages in {', '.join(PACKAGES)}: {len(found)} found")
    for line in found:
        print("  " + line)
    assert found == []


#: The private reads this project had before issue 19, each as one line of code.
KNOWN_PRIVATE_READS = [
    "from uvicorn.protocols.http.httptools_impl import HEADER_RE, _KNOWN\n",
    "from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import _OperationStreamClosed\n",
    "import uvicorn._types\n",
    "from strawberry.schema._graphql_core import x\n",
    "no_middleware = middleware is None or not middleware._middleware_resolvers\n",
    "ok = getattr(resolve, '_is_default', False)\n",
    "graphql_schema = schema._schema\n",
    "nodes = list(info._raw_info.field_nodes)\n",
    "counts = [child._buckets[i].get() for i in range(3)]\n",
    "total = child._sum.get()\n",
]


@pytest.mark.parametrize("line", KNOWN_PRIVATE_READS)
def test_a_private_read_added_back_is_found(line: str) -> None:
    found = private_uses(
        f"def probe(schema, info, child, middleware, resolve):\n    {line}", "probe.py", project_names()
    )
    assert len(found) == 1, found


def test_the_project_own_private_names_pass() -> None:
    source = (
        "class Box:\n"
        "    __slots__ = ('_held',)\n"
        "    def __init__(self):\n"
        "        self._held = 1\n"
        "def peek(other: Box) -> int:\n"
        "    return other._held + getattr(other, '_held')\n"
    )
    assert private_uses(source, "probe.py", Names()) == []
