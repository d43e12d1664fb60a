"""SQuAD-format QA files (tuner.data.load_qa_file): what a real translated set holds."""

from __future__ import annotations

import json

import pytest


def test_a_squad_question_keeps_its_aligned_references_and_drops_empty_ones(tmp_path):
    """SQuAD-es (machine-translated) leaves some of a question's several references empty (answer_start -1): the
    others still score it; a question with no answer text at all is still an error naming it."""
    from sixfold.core.errors import SixfoldError
    from sixfold.tuner.data import load_qa_file

    context = "El Super Bowl 50 se jugó en el Levi's Stadium de Santa Clara, California."
    qas = [
        {
            "id": "q1",
            "question": "¿Dónde se jugó el Super Bowl 50?",
            "answers": [{"text": "Santa Clara, California", "answer_start": 49}, {"text": "", "answer_start": -1}],
        }
    ]
    data = {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    [example] = load_qa_file(path)
    assert example.answers == [{"text": "Santa Clara, California", "answer_start": 49}]
    qas[0]["answers"] = [{"text": "", "answer_start": -1}]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SixfoldError, match="question 0: empty answer"):
        load_qa_file(path)
