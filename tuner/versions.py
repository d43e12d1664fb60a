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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from sixfold.core.errors import SixfoldError, first_line
from sixfold.core.models import models_dir

ROLES = ("reader", "embedder", "reranker", "domain", "classifier", "generator")


@dataclass
class TuneOutcome:
    """What every ``tune`` run reports: the saved version, its score on held-out data before and after, and whether
    it became active. Each role's result adds its own counts and names the metric that decides ``improved``."""

    role: str
    version: int
    path: str
    base: str
    before: dict[str, float]
    after: dict[str, float]
    activated: bool

    metric: ClassVar[str] = "nDCG@10"
    lower_is_better: ClassVar[bool] = False

    @classmethod
    def better(cls, before: dict[str, float], after: dict[str, float]) -> bool:
        """Whether ``after`` beats ``before`` on this role's metric: what ``improved`` says, known before the result
        exists (the registry records activation as the version is saved)."""
        b, a = before[cls.metric], after[cls.metric]
        return a < b if cls.lower_is_better else a > b

    @property
    def improved(self) -> bool:
        return self.better(self.before, self.after)

    def report(self) -> dict:
        """Every field, plus ``improved``: what ``tune --json`` prints."""
        return {**self.__dict__, "improved": self.improved}


class Registry:
    def __init__(self, index_root: str | Path) -> None:
        self.root = models_dir(index_root)
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

    def version_dir(self, role: str, number: int) -> Path:
        """The folder of a saved version (refuses one that the registry does not list)."""
        entry = self.load().get(role) or {}
        if str(number) not in entry.get("versions", {}):
            known = ", ".join(f"{role}@{v}" for v in entry.get("versions", {})) or "none"
            raise SixfoldError(f"no version {role}@{number} (known: {known})")
        return self.root / role / str(number)

    def set_role_field(self, role: str, key: str, value: object) -> None:
        data = self.load()
        data.setdefault(role, {"active": None, "versions": {}})[key] = value
        self._save(data)

    def active_path(self, role: str) -> str | None:
        entry = self.load().get(role)
        if not entry or entry.get("active") is None:
            return None
        return str(self.root / role / str(entry["active"]))  # not the recorded path: the index folder may have moved

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

    def rollback(self, role: str, switch: Callable[[str, int | None], None] | None = None) -> int | None:
        """Make the version that was active before the current one active again (None: the base model) and return it.

        ``switch(role, number)`` does the switching, default ``use``; the embedder's also re-embeds the index
        (``sixfold.tuner.embedder.activate_embedder``), and records the switch with ``use`` once that has succeeded."""
        entry = self.load().get(role)
        if not entry:
            raise SixfoldError(f"no tuned {role} versions to roll back")
        target = entry.get("previous")
        (switch or self.use)(role, target)
        return target

    @staticmethod
    def _check_role(role: str) -> None:
        if role not in ROLES:
            raise SixfoldError(f"unknown model role '{role}' (choose from {', '.join(ROLES)})")


@contextmanager
def saving(role: str, tmp_folder: Path | None = None) -> Iterator[None]:
    """Turn a failed write (disk full, file too large, read-only) into one clear error; drop the partial version."""
    try:
        yield
    except BaseException as exc:
        if tmp_folder is not None:
            shutil.rmtree(tmp_folder, ignore_errors=True)
        if isinstance(exc, (SixfoldError, KeyboardInterrupt, SystemExit)):
            raise
        text = first_line(exc)
        if isinstance(exc, OSError) or any(w in text.lower() for w in ("no space", "too large", "write", "serializ", "i/o")):
            raise SixfoldError(
                f"could not save the tuned {role} ({text[:200]}); nothing was added and the active {role} is unchanged"
            ) from None
        raise


def parse_version(spec: str) -> tuple[str, int | None]:
    """'reader@2' -> ('reader', 2); 'reader@base' -> ('reader', None)."""
    role, _, number = spec.partition("@")
    Registry._check_role(role)
    if number in ("", "base"):
        return role, None
    if not number.isdigit():
        raise SixfoldError(f"bad version '{spec}': expected ROLE@N, e.g. reader@2")
    return role, int(number)
