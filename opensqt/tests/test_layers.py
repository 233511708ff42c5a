"""Layers inside ``opensqt`` point one way (the table is in ``opensqt/__init__.py``).

Every ``import`` / ``from ... import`` in ``opensqt/src/opensqt/**/*.py`` (including function-level and
``TYPE_CHECKING`` imports) is parsed with ``ast``; a package may import only itself and packages of a
LOWER layer.  ``model`` imports nothing from ``opensqt`` but ``model``.  A new top-level package or module
must be given a layer here, or this test fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "opensqt"

# Lowest first.  Same number = same layer, and packages of one layer may not import each other.
LAYERS: dict[str, int] = {
    "model": 0,
    "observability": 0,
    "live": 0,
    "config": 1,
    "strategy": 2,
    "risk": 3,
    "engine": 4,
    "connector": 4,
    "arb": 5,  # the funding-arbitrage strategy runner: composes engine collaborators (executor, DBOS)
    "ui": 5,
    "app": 6,
    "cli": 7,
    "__init__": 8,  # the package docstring; imports nothing
}


def _unit(path: Path, src: Path) -> str:
    """The top-level package (or module) of ``opensqt`` a file belongs to."""
    return path.relative_to(src).parts[0].removesuffix(".py")


def _imported_units(tree: ast.AST, module_parts: tuple[str, ...]) -> set[str]:
    """Top-level ``opensqt`` units a module imports (absolute and relative imports)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = module_parts[: len(module_parts) - node.level]
                names = [".".join((*base, node.module or ""))]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "opensqt" and len(parts) > 1:
                out.add(parts[1])
    return out


def _violations(src: Path = SRC) -> list[str]:
    bad: list[str] = []
    for path in sorted(src.rglob("*.py")):
        unit = _unit(path, src)
        where = path.relative_to(src)
        if unit not in LAYERS:
            bad.append(f"{where}: package {unit!r} has no layer in tests/test_layers.py")
            continue
        rel = path.relative_to(src.parent).with_suffix("")
        module_parts = rel.parts if rel.name != "__init__" else rel.parts[:-1]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for target in sorted(_imported_units(tree, module_parts) - {unit}):
            if unit == "model":
                bad.append(f"{where}: model imports opensqt.{target} (model is pure)")
            elif target not in LAYERS:
                bad.append(f"{where}: imports unknown opensqt.{target}")
            elif LAYERS[target] >= LAYERS[unit]:
                bad.append(
                    f"{where}: {unit} (layer {LAYERS[unit]}) imports "
                    f"opensqt.{target} (layer {LAYERS[target]})"
                )
    return bad


def test_layers_point_one_way() -> None:
    assert _violations() == []


@pytest.mark.parametrize(
    ("unit", "source", "expected"),
    [
        ("model", "from opensqt.config import Config", "model imports opensqt.config"),
        ("strategy", "from opensqt.engine.ledger import SlotLedger", "strategy (layer 2) imports"),
        ("engine", "import opensqt.app.runner", "engine (layer 4) imports opensqt.app"),
        ("engine", "from opensqt.connector.remote import RemoteVenue", "imports opensqt.connector"),
        ("ui", "if True:\n    from opensqt.app import runner", "ui (layer 5) imports opensqt.app"),
    ],
)
def test_the_checker_catches_an_upward_import(unit: str, source: str, expected: str, tmp_path: Path) -> None:
    fake = tmp_path / "opensqt"
    (fake / unit).mkdir(parents=True)
    (fake / unit / "bad.py").write_text(source + "\n", encoding="utf-8")
    found = _violations(fake)
    assert len(found) == 1 and expected in found[0]


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    fake = tmp_path / "opensqt"
    (fake / "strategy").mkdir(parents=True)
    (fake / "strategy" / "bad.py").write_text("from ..engine import ledger\n", encoding="utf-8")
    (fake / "strategy" / "ok.py").write_text("from . import bad\nfrom ..model import slots\n")
    assert _violations(fake) == ["strategy/bad.py: strategy (layer 2) imports opensqt.engine (layer 4)"]


def test_every_package_says_what_lives_there() -> None:
    for init in sorted(SRC.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"{init.relative_to(SRC)} has no docstring"
