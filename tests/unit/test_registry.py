"""The tuned-model registry (tuner/versions.py): versions, use, rollback, atomic saves, a corrupt registry."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest

from sixfold.core.errors import SixfoldError
from sixfold.tuner import versions
from sixfold.tuner.versions import Registry, TuneOutcome, parse_version, saving


def save_version(registry: Registry, role: str = "reader", activate: bool = True, weights: str = "w") -> int:
    number, tmp = registry.new_version_dir(role)
    (tmp / "config.json").write_text(json.dumps({"weights": weights}))
    registry.add(role, number, tmp, {"base": "base-model", "eval": {"F1": 0.5}}, activate)
    return number


@pytest.fixture
def registry(tmp_path) -> Registry:
    return Registry(tmp_path / "index")


def test_an_index_without_tuned_models(registry):
    assert registry.load() == {}
    assert registry.active_path("reader") is None
    with pytest.raises(SixfoldError, match="no tuned reader versions to roll back"):
        registry.rollback("reader")
    with pytest.raises(SixfoldError, match=r"no version reader@1 \(known: none\)"):
        registry.use("reader", 1)


def test_a_saved_version_is_renamed_into_place_and_recorded(registry):
    number, tmp = registry.new_version_dir("reader")
    assert number == 1 and tmp.name == "1.tmp" and tmp.is_dir()
    (tmp / "config.json").write_text("{}")
    final = registry.add("reader", 1, tmp, {"base": "b", "note": "first"}, activate=True)
    assert final == registry.root / "reader" / "1" and (final / "config.json").is_file() and not tmp.exists()
    entry = registry.load()["reader"]
    assert entry["active"] == 1 and entry["previous"] is None
    assert entry["versions"]["1"]["note"] == "first" and entry["versions"]["1"]["created"]
    assert registry.active_path("reader") == str(final)
    assert registry.version_dir("reader", 1) == final
    assert not list(registry.root.glob("*.tmp")), "the registry's temporary file was renamed away"


def test_versions_count_up_per_role_and_inactive_ones_wait(registry):
    assert save_version(registry) == 1
    assert save_version(registry, activate=False) == 2
    assert save_version(registry, role="reranker") == 1
    assert registry.load()["reader"]["active"] == 1
    assert registry.active_path("reranker") == str(registry.root / "reranker" / "1")


def test_use_and_rollback(registry):
    save_version(registry)
    save_version(registry)  # active: 2, previous: 1
    assert registry.rollback("reader") == 1
    assert registry.load()["reader"]["active"] == 1
    assert registry.rollback("reader") == 2  # a rollback can itself be rolled back
    registry.use("reader", None)  # the packaged base model
    assert registry.active_path("reader") is None
    assert registry.rollback("reader") == 2
    with pytest.raises(SixfoldError, match=r"no version reader@7 \(known: reader@1, reader@2\)"):
        registry.use("reader", 7)
    with pytest.raises(SixfoldError, match="no version reader@7"):
        registry.version_dir("reader", 7)
    assert registry.load()["reader"]["active"] == 2, "a refused use changes nothing"


def test_rollback_lets_the_role_do_the_switch(registry):
    save_version(registry)
    save_version(registry)
    calls = []
    assert registry.rollback("reader", switch=lambda role, number: calls.append((role, number))) == 1
    assert calls == [("reader", 1)]
    assert registry.load()["reader"]["active"] == 2, "the switch records the change itself once it succeeded"


def test_the_active_model_follows_a_moved_index(registry, tmp_path):
    save_version(registry)
    moved = tmp_path / "moved"
    shutil.move(registry.root.parent, moved)
    assert Registry(moved).active_path("reader") == str(moved.resolve() / "models" / "reader" / "1")


def test_a_corrupt_registry_is_one_clear_error(registry):
    save_version(registry)
    registry.path.write_text('{"reader": {"active": 1, "versi')
    for call in (registry.load, lambda: registry.active_path("reader"), lambda: registry.use("reader", None)):
        with pytest.raises(SixfoldError, match="model registry .* is corrupt"):
            call()


def test_a_failed_save_keeps_the_previous_registry(registry, monkeypatch):
    save_version(registry)
    before = registry.path.read_text()

    def disk_full(data, handle, **kwargs):
        handle.write('{"reader": ')
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(versions.json, "dump", disk_full)
    with pytest.raises(OSError):
        registry.use("reader", None)
    assert registry.path.read_text() == before
    assert registry.load()["reader"]["active"] == 1


def test_saving_turns_a_write_failure_into_one_error_and_drops_the_partial_version(registry):
    number, tmp = registry.new_version_dir("reader")
    with pytest.raises(SixfoldError, match="could not save the tuned reader .* the active reader is unchanged") as info:
        with saving("reader", tmp):
            raise OSError(errno.EFBIG, "File too large")
    assert "\n" not in str(info.value)
    assert not tmp.exists()
    with pytest.raises(KeyError):  # a bug is not dressed up as a disk problem
        with saving("reader"):
            raise KeyError("bug")
    with pytest.raises(SixfoldError, match="mine"):
        with saving("reader"):
            raise SixfoldError("mine")


def test_a_new_version_dir_replaces_a_stale_one(registry):
    _, tmp = registry.new_version_dir("domain")
    (tmp / "half-written.bin").write_bytes(b"x")
    _, again = registry.new_version_dir("domain")
    assert again == tmp and list(again.iterdir()) == []


@pytest.mark.parametrize(
    ("spec", "expected"), [("reader@2", ("reader", 2)), ("embedder@base", ("embedder", None)), ("reranker", ("reranker", None))]
)
def test_parse_version(spec, expected):
    assert parse_version(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [("reader@two", "expected ROLE@N"), ("painter@1", "unknown model role 'painter'")])
def test_parse_version_refuses(spec, message):
    with pytest.raises(SixfoldError, match=message):
        parse_version(spec)


def test_unknown_role_is_refused(registry):
    with pytest.raises(SixfoldError, match="unknown model role"):
        registry.new_version_dir("painter")
    assert not Path(registry.root / "painter").exists()


def test_tune_outcome_knows_which_way_is_better():
    class Loss(TuneOutcome):
        metric = "loss"
        lower_is_better = True

    assert TuneOutcome.better({"nDCG@10": 0.4}, {"nDCG@10": 0.5})
    assert not TuneOutcome.better({"nDCG@10": 0.5}, {"nDCG@10": 0.5})
    assert Loss.better({"loss": 2.0}, {"loss": 1.5}) and not Loss.better({"loss": 1.0}, {"loss": 1.5})
    outcome = Loss("domain", 1, "/p", "base", {"loss": 2.0}, {"loss": 1.0}, activated=True)
    assert outcome.improved and outcome.report()["improved"] is True and outcome.report()["version"] == 1
