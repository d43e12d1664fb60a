"""Cross-lingual XQuAD-R: the sentences and judgments of one file, the questions of its parallel file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sixfold.core.errors import SixfoldError
from sixfold.eval.datasets import load_xquad_r_crosslingual

TINY = Path(__file__).resolve().parent.parent / "fixtures" / "xquad_r_tiny_es.json"


def _english_copy(tmp_path: Path, keep_ids: bool = True) -> Path:
    """The fixture as a stand-in "en" file: same structure, questions marked so the test can tell them apart."""
    raw = json.loads(TINY.read_text(encoding="utf-8"))
    for article in raw["data"]:
        for paragraph in article["paragraphs"]:
            for n, qa in enumerate(paragraph["qas"]):
                qa["question"] = "EN " + qa["question"]
                if not keep_ids:
                    qa["id"] = f"other-{n}-{qa['id']}"
    path = tmp_path / "en.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def test_questions_come_from_one_file_and_sentences_from_the_other(tmp_path):
    english = _english_copy(tmp_path)
    data = load_xquad_r_crosslingual(english, TINY)  # Spanish questions over "English" sentences
    assert data.name == "xquad-r-es-en" and data.language == "en"
    assert data.queries and not any(q.startswith("EN ") for q in data.queries.values())
    assert set(data.qrels) == set(data.queries)
    assert any("questions in 'es'" in note for note in data.notes)
    reverse = load_xquad_r_crosslingual(TINY, english)
    assert all(q.startswith("EN ") for q in reverse.queries.values()) and reverse.language == "es"


def test_files_that_are_not_parallel_are_refused(tmp_path):
    with pytest.raises(SixfoldError, match="not parallel XQuAD-R files: 0 of"):
        load_xquad_r_crosslingual(TINY, _english_copy(tmp_path, keep_ids=False))
