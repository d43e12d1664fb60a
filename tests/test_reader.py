"""The reader over real models: ``ask`` (generative answers, citations, abstention, --docs), and ``complete``.

The generative model (the default: Qwen2.5-Coder-1.5B-Instruct GGUF on llama.cpp) is loaded once per session by
the ``llm`` fixture; ``load_llm`` is lru-cached, so the Engine and the in-process CLI reuse it. Failures that happen
before any model is needed run as real ``python -m sixfold`` subprocesses (cheap).
"""

from __future__ import annotations

import json
import re

import pytest

from sixfold import Engine
from sixfold.core.models import DEFAULT_GENERATOR
from sixfold.reader.answer import MIN_CONFIDENCE, MIN_EVIDENCE
from sixfold.reader.types import NOT_FOUND

from conftest import assert_one_error_line, run_cli

NORMANS = "Who were the Normans descended from?"
# Nothing in the bundled corpus (Normans, Black Death, oxygen, Amazon, packet switching, steam engine) answers these.
ABSENT = [
    "What is the boiling point of liquid nitrogen in a cryogenic freezer?",
    "Who won the 2018 FIFA World Cup?",
]
DOC_A = (
    "The Zorblat festival is held every spring in the town of Quillhaven. During the festival, residents paint "
    "their doors bright orange and eat roasted chestnuts. The festival was founded in 1843 by a baker named "
    "Edwina Marsh.\n"
)
DOC_B = (
    "The Kestrel-9 drone has a maximum flight time of 47 minutes on a single battery charge. It weighs 2.3 "
    "kilograms and can carry a payload of up to 500 grams. Its camera records video at 60 frames per second.\n"
)
ANSWER_KEYS = {"question", "answer", "found", "confidence", "mode", "citations", "passages", "notes", "features"}
CITATION_KEYS = {"passage_id", "path", "location", "snippet", "start", "end", "quote", "quote_start", "quote_end"}
COMPLETION_KEYS = {"prompt", "text", "finish_reason", "prompt_tokens", "completion_tokens", "model", "token_probabilities"}


@pytest.fixture(scope="session")
def llm():
    """The packaged generative model, loaded once (the first load ever dequantises the GGUF, ~20 s)."""
    from sixfold.reader.llm import load_llm

    return load_llm(DEFAULT_GENERATOR)


@pytest.fixture
def no_reader_env(monkeypatch):
    monkeypatch.delenv("SIXFOLD_READER", raising=False)


@pytest.fixture
def docs(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text(DOC_A, encoding="utf-8")
    b.write_text(DOC_B, encoding="utf-8")
    return a, b


def no_index_engine(tmp_path) -> Engine:
    return Engine.open(tmp_path / "no-index")


# ---- ask over the bundled corpus ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def normans_answer(shared_index, llm):
    return shared_index.engine.ask(NORMANS, mode="generative")


def test_ask_answers_from_the_corpus_and_cites_the_source(normans_answer):
    answer = normans_answer
    assert answer.found, answer
    assert answer.mode == "generative"
    assert answer.answer != NOT_FOUND
    assert re.search(r"norse|viking", answer.answer, re.IGNORECASE), answer.answer
    assert answer.citations, "a found answer must cite a passage"
    assert answer.citations[0].path == "history/normans.md"
    assert answer.citations[0].snippet
    assert answer.passages and answer.passages[0].path == "history/normans.md"
    # the supporting sentence is quoted verbatim from the cited passage, and states the answer
    citation = answer.citations[0]
    cited = next(p for p in answer.passages if p.id == citation.passage_id)
    assert citation.quote and cited.text[citation.quote_start : citation.quote_end] == citation.quote
    assert re.search(r"norse|viking", citation.quote, re.IGNORECASE), citation.quote
    # the confidence is the calibrated one, from the features recorded with the answer
    assert MIN_CONFIDENCE <= answer.confidence <= 1
    assert answer.features and answer.features["evidence"] >= MIN_EVIDENCE


@pytest.mark.parametrize("question", ABSENT)
def test_ask_abstains_when_the_corpus_lacks_the_answer(shared_index, llm, question):
    answer = shared_index.engine.ask(question, mode="generative")
    assert answer.found is False
    assert answer.answer == NOT_FOUND
    # the closest passages are still given, as citations and as the passages read
    assert 1 <= len(answer.citations) <= 3
    assert answer.passages
    assert [c.path for c in answer.citations] == [p.path for p in answer.passages[: len(answer.citations)]]
    # abstained at the evidence gate (observed best cosines 0.24 and 0.13), not by the model
    assert answer.confidence < MIN_EVIDENCE
    assert any("close enough" in note for note in answer.notes), answer.notes


# On-topic questions the corpus cannot answer: oxygen.html gives no melting point, amazon_rainforest.docx no
# population of Brazil. Their best cosines (~0.54 and ~0.52) pass the evidence gate (MIN_EVIDENCE 0.35).
ON_TOPIC_UNANSWERABLE = ["What is the melting point of oxygen?", "What is the population of Brazil?"]


@pytest.mark.parametrize("question", ON_TOPIC_UNANSWERABLE)
def test_ask_does_not_invent_an_answer_the_corpus_does_not_hold(shared_index, llm, question):
    """Past the cosine gate the 135M model never said NOT FOUND and invented an answer (reader/answer.py now checks).

    Observed: "The melting point of oxygen is approximately 13.5 degrees Celsius (56.7 degrees Fahrenheit)."
    and "The population of Brazil is approximately 11.1 million.", found=True, citing oxygen.html / the
    Amazon document, which hold none of these numbers.
    """
    answer = shared_index.engine.ask(question, mode="generative")
    assert not any("close enough" in note for note in answer.notes), "the evidence gate is not what should catch these"
    if answer.found:
        read = " ".join(p.text for p in answer.passages)
        invented = [n for n in re.findall(r"\d+(?:[.,]\d+)*", answer.answer) if n not in read]
        assert not invented, f"answer {answer.answer!r} has numbers in no passage read: {invented}"
    assert answer.found is False and answer.answer == NOT_FOUND, answer.answer


# ---- ask --docs (no index) -------------------------------------------------------------------------
def test_ask_docs_answers_from_the_right_document(tmp_path, docs, cli, llm, no_reader_env):
    a, b = docs
    index = tmp_path / "no-index"
    rc, out, err = cli(
        "ask", "What is the maximum flight time of the Kestrel-9 drone?", "--docs", a, b, "--index", index, "--json"
    )
    assert rc == 0, err
    data = json.loads(out)
    assert set(data) == ANSWER_KEYS
    assert data["found"] is True and data["mode"] == "generative"
    assert "47" in data["answer"], data["answer"]
    assert data["citations"] and set(data["citations"][0]) == CITATION_KEYS
    assert data["citations"][0]["path"] == str(b)
    assert data["passages"][0]["path"] == str(b)
    assert 0 < data["confidence"] <= 1
    assert not index.exists(), "--docs must not create an index"

    answer = Engine.open(index).ask("Who founded the Zorblat festival?", docs=[a, b])
    assert answer.found and "Edwina Marsh" in answer.answer, answer.answer
    assert answer.citations[0].path == str(a)
    assert not index.exists()


def test_ask_docs_missing_file_is_one_error_line(docs, cli, embedder, tmp_path):
    a, _b = docs
    missing = tmp_path / "missing.txt"
    rc, _out, err = cli("ask", "Who founded the Zorblat festival?", "--docs", a, missing, "--index", tmp_path / "idx")
    line = assert_one_error_line(rc, err, "does not exist")
    assert "missing.txt" in line


def test_ask_without_index_or_docs(tmp_path):
    proc = run_cli("ask", "Who were the Normans descended from?", "--index", tmp_path / "nope")
    assert_one_error_line(proc.returncode, proc.stderr, "no index", "--docs")


@pytest.mark.parametrize("question", ["", "   "])
def test_ask_empty_question(docs, question):
    proc = run_cli("ask", question, "--docs", docs[0])
    assert_one_error_line(proc.returncode, proc.stderr, "empty")


def test_ask_unknown_mode(shared_index):
    proc = run_cli("ask", NORMANS, "--index", shared_index.path, "--mode", "telepathic")
    assert_one_error_line(proc.returncode, proc.stderr, "unknown answer mode", "telepathic")


def test_ask_extractive_without_reader_model(shared_index):
    proc = run_cli("ask", NORMANS, "--index", shared_index.path, "--mode", "extractive", SIXFOLD_READER="")
    assert_one_error_line(proc.returncode, proc.stderr, "extractive", "--reader")


def test_ask_reader_folder_that_does_not_exist(shared_index, cli, embedder, tmp_path):
    rc, _out, err = cli(
        "ask", NORMANS, "--index", shared_index.path, "--mode", "extractive", "--reader", tmp_path / "no-such-reader"
    )
    line = assert_one_error_line(rc, err, "not found")
    assert "no-such-reader" in line


def test_ask_human_output_when_not_found(shared_index, cli, llm):
    rc, out, err = cli("ask", ABSENT[0], "--index", shared_index.path, "--mode", "generative")
    assert rc == 0, err
    assert NOT_FOUND in out and "closest passages" in out and "cited passages" not in out


def test_ask_json_when_not_found(shared_index, cli, llm):
    rc, out, err = cli("ask", ABSENT[1], "--index", shared_index.path, "--mode", "generative", "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert set(data) == ANSWER_KEYS
    assert data["question"] == ABSENT[1]
    assert data["found"] is False and data["answer"] == NOT_FOUND
    assert data["citations"] and all(set(c) == CITATION_KEYS for c in data["citations"])
    assert data["passages"] and {"id", "text", "path", "location", "score", "dense"} <= set(data["passages"][0])
    assert isinstance(data["notes"], list) and data["notes"]


# ---- complete -----------------------------------------------------------------------------------------
def test_complete_returns_text_deterministically_at_temperature_zero(tmp_path, llm):
    engine = no_index_engine(tmp_path)
    first = engine.complete("The capital of France is", max_tokens=8, temperature=0.0)
    second = engine.complete("The capital of France is", max_tokens=8, temperature=0.0)
    assert first.text.strip()
    assert first.text == second.text
    assert "paris" in first.text.lower(), first.text
    assert first.prompt == "The capital of France is"
    assert first.prompt_tokens > 0 and 0 < first.completion_tokens <= 8
    assert first.model == DEFAULT_GENERATOR


def test_complete_respects_stop_sequences(cli, llm):
    prompt = "List the days of the week: Monday, Tuesday,"
    rc, out, err = cli("complete", prompt, "--max-tokens", "30", "--stop", "Friday", "--stop", "Thursday", "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert set(data) == COMPLETION_KEYS
    assert data["finish_reason"] == "stop"
    assert "Thursday" not in data["text"] and "Friday" not in data["text"]
    assert "Wednesday" in data["text"], data["text"]
    assert data["completion_tokens"] < 30


def test_complete_max_tokens_bounds_the_completion(tmp_path, llm):
    completion = no_index_engine(tmp_path).complete("Once upon a time", max_tokens=5)
    assert completion.completion_tokens <= 5
    assert completion.finish_reason == "length"
    assert completion.text


def test_complete_stream_prints_prompt_and_text(tmp_path, cli, llm):
    prompt = "The capital of France is"
    rc, plain, err = cli("complete", prompt, "--max-tokens", "12")
    assert rc == 0, err
    rc, streamed, err = cli("complete", prompt, "--max-tokens", "12", "--stream")
    assert rc == 0, err
    assert streamed.startswith(prompt)
    assert streamed == plain
    pieces: list[str] = []
    completion = no_index_engine(tmp_path).complete(prompt, max_tokens=12, on_text=pieces.append)
    assert len(pieces) > 1, "on_text got the completion in one piece: not streamed"
    assert "".join(pieces) == completion.text
    assert streamed == prompt + completion.text + "\n"


@pytest.mark.parametrize("prompt", ["", "  "])
def test_complete_empty_prompt(prompt):
    proc = run_cli("complete", prompt)
    assert_one_error_line(proc.returncode, proc.stderr, "empty prompt")


def test_complete_prompt_longer_than_the_window_is_refused(cli, llm):
    prompt = "word " * (llm.window + 100)
    rc, out, err = cli("complete", prompt, "--max-tokens", "4")
    assert_one_error_line(rc, err, "exceeds the model window", str(llm.window))
    assert out == ""


def test_complete_stream_error_prints_nothing_to_stdout(cli, llm):
    """With --stream the request is validated before anything is written (the prompt used to be echoed first)."""
    prompt = "word " * (llm.window + 100)
    rc, out, err = cli("complete", prompt, "--max-tokens", "4", "--stream")
    assert_one_error_line(rc, err, "exceeds the model window")
    assert len(out) == 0, f"{len(out)} characters of stdout before the error"


@pytest.mark.parametrize(("option", "value", "fragment"), [("--max-tokens", "0", "positive"), ("--temperature", "-1", ">= 0")])
def test_complete_bad_generation_options(cli, llm, option, value, fragment):
    rc, _out, err = cli("complete", "Hello", option, value)
    assert_one_error_line(rc, err, fragment)


def test_eval_qa_reads_the_gold_paragraph_with_the_language_model(tmp_path, cli, llm, no_reader_env):
    """``eval qa --mode generative`` without ``--open``: each question is read with its own paragraph (issue 13's
    gold-paragraph F1 for the default reader), the answer checked against it as ``ask`` does."""
    rows = [
        {
            "question": "What is the capital of Norway?",
            "context": "Oslo is the capital of Norway. Bergen lies on the west coast.",
            "answer": "Oslo",
        },
        {
            "question": "When was the Eiffel Tower completed?",
            "context": "The Eiffel Tower in Paris was completed in 1889 for the World's Fair.",
            "answer": "1889",
        },
    ]
    squad = tmp_path / "qa.jsonl"
    squad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = cli("eval", "qa", "--squad", squad, "--mode", "generative", "--json", "--out", tmp_path / "r.json")
    assert code == 0, err
    report = json.loads(out)
    assert report["questions"] == 2 and report["mode"] == "generative" and not report["open_book"]
    assert report["F1"] == 100.0 and report["answered_pct"] == 100.0
