"""Runtime dependencies are what the runtime imports, for each distribution of the workspace.

* Every third-party import under ``<dist>/src`` (module level or lazy, outside ``if TYPE_CHECKING``) is
  declared in that distribution's ``[project] dependencies``; ``cqvx.testing`` may also use the
  ``testing`` extra.
* Every declared dependency is imported somewhere (or listed in :data:`_NOT_IMPORTED` with its reason).
* ``import cqvx`` and every module outside ``cqvx.testing`` (whose package ``__init__`` is included)
  import with pytest and hypothesis absent.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = ("cqc", "cqvx", "opensqt")

# Imports that need no declaration: an optional integration only ever called by the package that
# provides it (Secret's pydantic schema hook runs only inside pydantic, which the caller has).
_OPTIONAL_IMPORTS = {("cqvx", "pydantic_core")}
# Declared, never imported by name: the reason each is still a runtime dependency.
_NOT_IMPORTED = {("opensqt", "psycopg"): "SQLAlchemy loads it for postgresql+psycopg URLs"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _req_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert match is not None, requirement
    return _norm(match.group(0))


@cache
def _distributions_of(module: str) -> frozenset[str]:
    if module in WORKSPACE:
        return frozenset({module})
    found = importlib.metadata.packages_distributions().get(module)
    return frozenset(_norm(d) for d in found or ())


def _project(dist: str) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / dist / "pyproject.toml").read_text())["project"]
    return project


def _declared(dist: str, extra: str | None = None) -> set[str]:
    project = _project(dist)
    reqs: list[str] = list(project.get("dependencies", []))
    if extra is not None:
        reqs += project.get("optional-dependencies", {}).get(extra, [])
    return {_req_name(r) for r in reqs}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> set[str]:
    """Top-level names of absolute imports, skipping ``if TYPE_CHECKING:`` bodies."""
    out: set[str] = set()
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                out |= _imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
        out |= _imports(node)
    return out


def _third_party(dist: str) -> dict[Path, set[str]]:
    """Per source file: the third-party (and other workspace) modules it imports."""
    out: dict[Path, set[str]] = {}
    for path in sorted((ROOT / dist / "src").rglob("*.py")):
        names = _imports(ast.parse(path.read_text(), str(path)))
        out[path] = {n for n in names if n not in sys.stdlib_module_names and n != dist}
    return out


@pytest.mark.parametrize("dist", WORKSPACE)
def test_every_runtime_import_is_declared(dist: str) -> None:
    runtime = _declared(dist)
    testing = _declared(dist, "testing")
    missing: list[str] = []
    for path, modules in _third_party(dist).items():
        in_testing = "testing" in path.relative_to(ROOT / dist / "src").parts[1:-1]
        allowed = testing if in_testing else runtime
        for module in sorted(modules):
            if (dist, module) in _OPTIONAL_IMPORTS:
                continue
            provided_by = _distributions_of(module)
            if not provided_by & allowed:
                where = path.relative_to(ROOT)
                missing.append(f"{where}: {module} (from {sorted(provided_by) or 'not installed'})")
    assert not missing, f"{dist}: imports not declared in pyproject.toml:\n" + "\n".join(missing)


@pytest.mark.parametrize("dist", WORKSPACE)
def test_every_declared_dependency_is_imported(dist: str) -> None:
    imported: set[str] = set()
    for modules in _third_party(dist).values():
        for module in modules:
            imported |= _distributions_of(module)
    unused = {d for d in _declared(dist) - imported if (dist, d) not in _NOT_IMPORTED}
    assert not unused, f"{dist} declares runtime dependencies its src never imports: {sorted(unused)}"


def test_testing_extra_holds_the_test_tools_and_runtime_does_not() -> None:
    runtime = _declared("cqvx")
    assert {"pytest", "pytest-asyncio"} <= _declared("cqvx", "testing")
    assert not runtime & {"pytest", "pytest-asyncio", "hypothesis"}
    # ccxt is a runtime dependency since cqvx.venues.ccxt uses it (issue 16).
    assert "ccxt" in runtime


_BLOCK_TEST_TOOLS = """
import importlib, importlib.abc, pkgutil, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"pytest", "_pytest", "hypothesis", "pytest_asyncio"}:
            raise ImportError(f"{name} is blocked: cqvx must import without test tools")
        return None

sys.meta_path.insert(0, Block())
import cqvx
names = sorted(
    m.name for m in pkgutil.walk_packages(cqvx.__path__, "cqvx.")
    if not m.name.startswith("cqvx.testing.")
)
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_cqvx_imports_without_pytest() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _BLOCK_TEST_TOOLS], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.strip()) > 20  # the walk really found the modules
