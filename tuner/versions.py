"""The model registry inside an index folder: tuned versions of each role, their scores, and which is active.

Layout: ``idx/models/<role>/<n>/`` (a model folder) and ``idx/models/registry.json``::

    {"reader": {"active": 2, "versions": {"1": {"base": ..., "created": ..., "eval": {...}, "note": ...}}}}

A version is written to ``<n>.tmp`` and renamed into place, and the registry is replaced atomically, so a
failed or interrupted save (disk full, kill) leaves the previous active model in place.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from indexer.errors import SixfoldError

ROLES = ("reader", "embedder", "reranker")


class Registry:
    def __init__(self, index_root: str | Path) -> None:
        self.root = Path(index_root).expanduser().resolve() / "models"
        self.path = self.root / "registry.json"

    def load(self) -> dict:
        if not self.path.is_file():
            return {}
        try:
            return json.loads(self.path.read_text())
        except ValueError as exc:
            raise SixfoldError(f"model registry {self.path} is corrupt: {exc}") from None

    def _save(self, data: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        with open(tmp, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    def new_version_dir(self, role: str) -> tuple[int, Path]:
        """A fresh temporary folder for the next version of ``role`` (commit it with ``add``)."""
        self._check_role(role)
        versions = self.load().get(role, {}).get("versions", {})
        number = max((int(v) for v in versions), default=0) + 1
        folder = self.root / role / f"{number}.tmp"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return number, folder

    def add(self, role: str, number: int, tmp_folder: Path, info: dict, activate: bool) -> Path:
        final = self.root / role / str(number)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp_folder, final)
        data = self.load()
        entry = data.setdefault(role, {"active": None, "versions": {}})
        entry["versions"][str(number)] = {**info, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "path": str(final)}
        if activate:
            entry["previous"] = entry.get("active")
            entry["active"] = number
        self._save(data)
        return final

    def active_path(self, role: str) -> str | None:
        entry = self.load().get(role)
        if not entry or entry.get("active") is None:
            return None
        return entry["versions"][str(entry["active"])]["path"]

    def use(self, role: str, number: int | None) -> None:
        """Make version ``number`` active (None: the packaged base model)."""
        data = self.load()
        entry = data.get(role)
        if number is not None and (not entry or str(number) not in entry["versions"]):
            known = ", ".join(f"{role}@{v}" for v in (entry or {}).get("versions", {})) or "none"
            raise SixfoldError(f"no version {role}@{number} (known: {known})")
        entry = data.setdefault(role, {"active": None, "versions": {}})
        entry["previous"], entry["active"] = entry.get("active"), number
        self._save(data)

    def rollback(self, role: str) -> int | None:
        entry = self.load().get(role)
        if not entry:
            raise SixfoldError(f"no tuned {role} versions to roll back")
        target = entry.get("previous")
        self.use(role, target)
        return target

    @staticmethod
    def _check_role(role: str) -> None:
        if role not in ROLES:
            raise SixfoldError(f"unknown model role '{role}' (choose from {', '.join(ROLES)})")


def parse_version(spec: str) -> tuple[str, int | None]:
    """'reader@2' -> ('reader', 2); 'reader@base' -> ('reader', None)."""
    role, _, number = spec.partition("@")
    Registry._check_role(role)
    if number in ("", "base"):
        return role, None
    if not number.isdigit():
        raise SixfoldError(f"bad version '{spec}': expected ROLE@N, e.g. reader@2")
    return role, int(number)
