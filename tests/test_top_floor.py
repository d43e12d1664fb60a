"""The top floor: an installed name that collides with nothing, commands that load no model start fast, one query
embedding per question, and ``models`` saying what ROLE@base is."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO, cli_env

HEAVY = ("torch", "sentence_transformers", "transformers")

PROBE = """
import json, sys
from sixfold.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as exc:
    rc = exc.code
print(json.dumps({"rc": rc, "heavy": [m for m in HEAVY if m in sys.modules]}))
""".replace("HEAVY", repr(HEAVY))


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["status"], ["models"], ["search", "Who were the Normans descended from?", "--mode", "bm25", "-k", "3"]],
    ids=["help", "status", "models", "bm25-search"],
)
def test_commands_that_need_no_model_do_not_import_torch(shared_index, tmp_path, argv):
    if argv != ["--help"]:
        argv = [*argv, "--index", str(shared_index.path)]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["rc"] in (0, None), proc.stderr
    assert result["heavy"] == [], f"{argv[0]} imported {result['heavy']}"


def test_bm25_search_finds_the_passage_without_the_embedder(shared_index, cli):
    rc, out, err = cli("search", "Who were the Normans descended from?", "--mode", "bm25", "--index", shared_index.path)
    assert rc == 0, err
    assert "normans.md" in out


def test_a_question_is_embedded_once(shared_index, monkeypatch):
    engine = shared_index.engine
    embedder = engine.embedder
    calls = []

    def counting(method):
        real = getattr(embedder, method)

        def count(texts, batch_size=64):
            calls.append(list(texts))
            return real(texts, batch_size=batch_size)

        return count

    for method in ("encode", "encode_queries"):  # queries go through encode_queries (a model's query prompt)
        monkeypatch.setattr(embedder, method, counting(method))
    passages = engine.passages("Who were the Normans descended from?", 3)
    assert passages and passages[0].path.endswith("normans.md")
    assert calls == [["Who were the Normans descended from?"]]


def test_the_wheel_installs_only_the_sixfold_package(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("sixfold-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"sixfold", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}, top
    for room in ("indexer", "retriever", "reader", "tuner", "core"):
        assert f"sixfold/{room}/__init__.py" in names
    assert "sixfold/static/index.html" in names or any(n.startswith("sixfold/static/") for n in names)


def test_the_rooms_are_not_importable_under_their_bare_names(tmp_path):
    rooms = ("indexer", "retriever", "reader", "tuner")
    probe = f"import importlib.util, json; print(json.dumps([importlib.util.find_spec(n) is not None for n in {rooms!r}]))"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == [False, False, False, False]


def test_models_says_what_each_base_is(shared_index, cli):
    rc, out, err = cli("models", "--index", shared_index.path)
    assert rc == 0, err
    assert "packaged default" not in out
    reader_row = next(line for line in out.splitlines() if "reader@base" in line)
    assert "none ships" in reader_row
