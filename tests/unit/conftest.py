"""Fixtures of the model-free layer (``make test-fast``): nothing here loads a model.

This folder is a package (``__init__.py``), so its modules are ``unit.test_*`` and may share names with the tests
one level up; ``tests/conftest.py`` is still loaded first (its fixtures are available; it imports no model itself).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sixfold.indexer.store import IndexStore

from .helpers import FILES, SmallIndex, add, settings


@pytest.fixture
def small_index(tmp_path: Path) -> SmallIndex:
    store = IndexStore(tmp_path / "index")
    txn = store.begin(settings())
    stored = {path: add(txn, path, texts, seed=n) for n, (path, texts) in enumerate(FILES.items())}
    txn.commit()
    return SmallIndex(store, stored)
