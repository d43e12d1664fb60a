"""Type-check the installed package ``sixfold`` with mypy (``make lint`` runs it).

The rooms live at the repository root (``indexer/``, ``retriever/``, ...) but are imported as ``sixfold.indexer``
and so on, mapped by ``[tool.setuptools.package-dir]`` in pyproject.toml; the editable install does that mapping
with an import hook, which type checkers do not run. So this script lays out the package as it is installed: a
tree of symbolic links in ``build/typecheck/sixfold/`` (each entry of ``sixfold/`` plus each mapped folder). It
runs mypy on it (settings in pyproject's ``[tool.mypy]``, whose ``mypy_path`` is that folder) and rewrites the
reported paths back to the files in the repository, so an editor or a terminal can jump to them.
Exit status: mypy's. Arguments are passed on to mypy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
TREE = REPO / "build" / "typecheck"
PACKAGE = "sixfold"


def link_tree(repo: Path = REPO, tree: Path = TREE) -> Path:
    """``tree/sixfold/`` as pip installs it: links to every entry of ``sixfold/`` and to each package-dir folder."""
    mapping: dict[str, str] = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    root = tree / PACKAGE
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for entry in sorted((repo / PACKAGE).iterdir()):
        if entry.name != "__pycache__":
            (root / entry.name).symlink_to(entry)
    for name, folder in mapping.items():
        link = tree.joinpath(*name.split("."))
        if link.exists() or link.is_symlink():
            raise SystemExit(f"typecheck: {name} is both a folder of {PACKAGE}/ and mapped to {folder}/ in pyproject.toml")
        link.symlink_to(repo / folder)
    return root


def repository_path(line: str, tree: Path = TREE, repo: Path = REPO) -> str:
    """A mypy line about ``build/typecheck/sixfold/indexer/store.py`` made about ``indexer/store.py``."""
    prefix = os.path.relpath(tree, repo) + os.sep
    path, sep, rest = line.partition(":")
    if not sep or not path.startswith(prefix):
        return line
    real = Path(os.path.realpath(repo / path))
    return f"{real.relative_to(repo) if real.is_relative_to(repo) else real}:{rest}"


def main(argv: list[str]) -> int:
    link_tree()
    command = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), *argv]
    result = subprocess.run([*command, "-p", PACKAGE], cwd=REPO, capture_output=True, text=True)
    for line in result.stdout.splitlines():
        print(repository_path(line))
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
