"""The install does not rot: what the code imports is declared, and the lock pins all of it (model-free, fast)."""

from __future__ import annotations

import importlib
import re
from importlib.metadata import packages_distributions

import pytest
import tomllib

from conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
LOCK = REPO / "constraints.txt"


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string ("lxml_html_clean>=0.4" -> "lxml-html-clean")."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]).lower()


DECLARED = {_name(r) for r in PYPROJECT["project"]["dependencies"]}

# Modules the loaders import at run time. lxml_html_clean is imported by trafilatura (through lxml.html.clean);
# lxml 5.2+ no longer ships it, and an old pip (23.x, what `python3 -m venv` brings) does not pull it in, so without
# it declared every HTML file would fail to load.
LOADER_MODULES = ["trafilatura", "lxml_html_clean", "bs4", "pypdf", "docx", "charset_normalizer"]


@pytest.mark.parametrize("module", LOADER_MODULES)
def test_loader_imports_are_declared_dependencies(module):
    importlib.import_module(module)
    providers = {_name(d) for d in packages_distributions().get(module.split(".")[0], [])}
    assert providers, f"no installed distribution provides {module}"
    assert providers & DECLARED, f"{module} comes from {sorted(providers)}, none of which pyproject.toml declares"


def test_trafilatura_can_clean_html():
    """The import chain that failed on a bare install: trafilatura -> lxml.html.clean -> lxml_html_clean."""
    import trafilatura

    text = trafilatura.extract("<html><body><article><p>" + "Plain words here. " * 20 + "</p></article></body></html>")
    assert text and "Plain words here." in text


def _locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: '{line}' is not an exact pin"
            pins[_name(name)] = version
    return pins


def test_lock_pins_every_declared_dependency():
    locked = _locked()
    extras = {_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["dev"]}
    missing = sorted((DECLARED | extras) - set(locked))
    assert not missing, f"constraints.txt lacks {missing}; refresh it with: make lock"


def test_lock_pins_the_cpu_torch_the_makefile_installs():
    makefile = (REPO / "Makefile").read_text()
    assert f"torch=={_locked()['torch']}" in makefile
    assert "-c constraints.txt" in makefile
