"""The house's import rules (docs/architecture.md), read from the source with ``ast``: data flows one way, the kernel
imports nothing of sixfold, and no room below the top floor imports the Engine, the CLI, the server or the evals."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOMS = {
    "core": REPO / "sixfold" / "core",
    "indexer": REPO / "indexer",
    "retriever": REPO / "retriever",
    "reader": REPO / "reader",
    "tuner": REPO / "tuner",
}
# What each room below the top floor may import of sixfold (besides itself).
ALLOWED = {
    "core": set(),
    "indexer": {"core"},
    "retriever": {"core", "indexer"},
    "reader": {"core", "indexer", "retriever"},
    "tuner": {"core", "indexer", "retriever", "reader"},
}


def sixfold_imports(folder: Path) -> dict[str, set[str]]:
    """room -> the files of ``folder`` that import it (``sixfold.<room>...``)."""
    found: dict[str, set[str]] = {}
    for file in folder.glob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "sixfold":
                    found.setdefault(parts[1] if len(parts) > 1 else "sixfold", set()).add(file.name)
    return found


@pytest.mark.parametrize("room", list(ROOMS))
def test_a_room_imports_only_the_rooms_below_it(room):
    imported = sixfold_imports(ROOMS[room])
    imported.pop(room, None)
    wrong = {other: sorted(files) for other, files in imported.items() if other not in ALLOWED[room]}
    assert not wrong, f"{room} may import {sorted(ALLOWED[room]) or 'nothing of sixfold'}, but imports {wrong}"


def test_the_rooms_are_where_the_package_map_says():
    import tomllib

    mapping = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    assert mapping == {f"sixfold.{room}": room for room in ("indexer", "retriever", "reader", "tuner")}
