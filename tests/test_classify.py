"""Classification from labeled examples with the real packaged embedder: labels, scores, deciding examples,
CSV / JSONL inputs, the CLI (batch --input, --json), and bad example files (errors name the line).

Bad files fail before any model is loaded, so those run as real ``python -m sixfold`` subprocesses.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sixfold import Engine
from sixfold.core.errors import SixfoldError
from sixfold.reader.classify import Classifier, load_examples

from conftest import assert_one_error_line, run_cli

EXAMPLES = {
    "card payments": [
        "My card payment was declined at the shop",
        "I was charged twice for one purchase with my debit card",
        "Why is there a pending card transaction on my account?",
        "The contactless payment did not go through",
    ],
    "weather": [
        "Will it rain tomorrow afternoon?",
        "How hot will it be this weekend?",
        "Is there a storm warning for the coast tonight?",
        "What is the forecast for snow next week?",
    ],
    "sports": [
        "Who won the football match last night?",
        "When does the tennis final start?",
        "How many goals did the striker score this season?",
        "The basketball team signed a new coach",
    ],
}
OBVIOUS = [
    ("my visa card got rejected when I tried to pay", "card payments"),
    ("a payment from my card shows up twice", "card payments"),
    ("is it going to be sunny on saturday", "weather"),
    ("do I need an umbrella today", "weather"),
    ("what was the final score of the rugby game", "sports"),
    ("which team is top of the league", "sports"),
]
LABEL_KEYS = {"query", "label", "score", "scores", "examples", "decided_by"}
EXAMPLE_KEYS = {"text", "label", "similarity", "line"}


def write_csv(path, rows, header=True):
    lines = ["text,label"] if header else []
    lines += [f'"{text}",{label}' for text, label in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows), encoding="utf-8")
    return path


ROWS = [(text, label) for label, texts in EXAMPLES.items() for text in texts]


@pytest.fixture(scope="module")
def example_files(tmp_path_factory):
    base = tmp_path_factory.mktemp("examples")
    return write_csv(base / "examples.csv", ROWS), write_jsonl(base / "examples.jsonl", ROWS)


@pytest.fixture(scope="module")
def labels(example_files, embedder):
    engine = Engine.open(example_files[0].parent / "no-index")
    return engine.classify([q for q, _ in OBVIOUS], example_files[0], cache=False)


def test_obvious_queries_get_the_right_label(labels):
    assert [r.label for r in labels] == [expected for _, expected in OBVIOUS]
    for result, (query, _) in zip(labels, OBVIOUS):
        assert result.query == query


def test_scores_are_a_distribution_over_all_labels(labels):
    for result in labels:
        assert set(result.scores) == set(EXAMPLES)
        assert sum(result.scores.values()) == pytest.approx(1.0, abs=1e-6)
        assert all(0.0 <= s <= 1.0 for s in result.scores.values())
        assert result.score == pytest.approx(result.scores[result.label])
        assert result.score == max(result.scores.values())
        assert result.score > 0.5, result  # obvious queries are not close calls


def test_deciding_examples_are_sorted_and_labeled(labels):
    known = {text: label for text, label in ROWS}
    for result in labels:
        sims = [e.similarity for e in result.examples]
        assert 1 <= len(result.examples) <= len(ROWS)
        assert sims == sorted(sims, reverse=True)
        for example in result.examples:
            assert known[example.text] == example.label  # the example's own label, not the prediction
            assert example.line is not None and 2 <= example.line <= len(ROWS) + 1  # CSV line (after the header)
        assert result.examples[0].label == result.label


def test_similarities_are_cosines_of_the_embeddings(labels, embedder):
    result = labels[0]
    query = embedder.encode([result.query])[0]
    for example in result.examples:
        assert example.similarity == pytest.approx(float(embedder.encode([example.text])[0] @ query), abs=1e-4)


def test_jsonl_and_csv_give_the_same_result(example_files, labels, embedder):
    csv_examples = load_examples(example_files[0])
    jsonl_examples = load_examples(example_files[1])
    assert [(e.text, e.label) for e in csv_examples] == [(e.text, e.label) for e in jsonl_examples] == ROWS
    assert [e.line for e in jsonl_examples] == list(range(1, len(ROWS) + 1))
    from_jsonl = Classifier(jsonl_examples, embedder, cache=False).classify([q for q, _ in OBVIOUS])
    assert [r.label for r in from_jsonl] == [r.label for r in labels]
    for a, b in zip(from_jsonl, labels):
        assert a.scores == pytest.approx(b.scores, abs=1e-5)


def test_headerless_and_tab_separated_examples(tmp_path):
    headerless = load_examples(write_csv(tmp_path / "plain.csv", ROWS, header=False))
    assert [(e.text, e.label) for e in headerless] == ROWS
    tsv = tmp_path / "examples.tsv"
    tsv.write_text("".join(f"{t}\t{lab}\n" for t, lab in ROWS), encoding="utf-8")
    assert [(e.text, e.label) for e in load_examples(tsv)] == ROWS


def test_example_embeddings_cache(tmp_path, monkeypatch, embedder):
    monkeypatch.setenv("SIXFOLD_CACHE", str(tmp_path / "cache"))
    examples = load_examples(write_csv(tmp_path / "ex.csv", ROWS))
    first = Classifier(examples, embedder, cache=True)
    cached = list((tmp_path / "cache" / "examples").glob("*.npy"))
    assert len(cached) == 1
    second = Classifier(examples, embedder, cache=True)
    np.testing.assert_array_equal(first.vectors, second.vectors)
    uncached = Classifier(examples, embedder, cache=False)
    np.testing.assert_allclose(first.vectors, uncached.vectors, atol=1e-5)
    # a different example set gets its own cache entry, never the stale vectors
    Classifier(examples[:-1], embedder, cache=True)
    assert len(list((tmp_path / "cache" / "examples").glob("*.npy"))) == 2


def test_empty_query_is_refused(embedder):
    classifier = Classifier(load_examples_from_rows(), embedder, cache=False)
    with pytest.raises(SixfoldError, match="query 2 is empty"):
        classifier.classify(["fine", "  "])


def load_examples_from_rows():
    from sixfold.reader.types import LabeledExample

    return [LabeledExample(t, lab) for t, lab in ROWS]


# ---- CLI ----------------------------------------------------------------------------------------------
def test_cli_json(example_files, cli, embedder):
    rc, out, err = cli("classify", OBVIOUS[0][0], OBVIOUS[2][0], "--examples", example_files[1], "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert [d["label"] for d in data] == ["card payments", "weather"]
    for item in data:
        assert set(item) == LABEL_KEYS
        assert set(item["examples"][0]) == EXAMPLE_KEYS
        assert sum(item["scores"].values()) == pytest.approx(1.0, abs=1e-6)


def test_cli_input_batch(example_files, cli, embedder, tmp_path):
    batch = tmp_path / "queries.txt"
    batch.write_text("\n".join(q for q, _ in OBVIOUS[::2]) + "\n\n   \n", encoding="utf-8")
    rc, out, err = cli("classify", "--input", batch, "--examples", example_files[0], "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert [d["query"] for d in data] == [q for q, _ in OBVIOUS[::2]]  # blank lines skipped, order kept
    assert [d["label"] for d in data] == [lab for _, lab in OBVIOUS[::2]]
    rc, out, err = cli("classify", "--input", batch, "--examples", example_files[0])
    assert rc == 0, err
    assert "classification by nearest examples (all-MiniLM-L6-v2) from 12 examples" in out
    assert all(label in out for label in EXAMPLES)


# ---- bad input ----------------------------------------------------------------------------------------
def cli_error(proc, *fragments):
    return assert_one_error_line(proc.returncode, proc.stderr, *fragments)


def test_missing_examples_file(tmp_path):
    cli_error(run_cli("classify", "hello", "--examples", tmp_path / "nope.csv"), "does not exist")


def test_empty_examples_file(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("\n  \n", encoding="utf-8")
    cli_error(run_cli("classify", "hello", "--examples", empty), "empty")


def test_header_only_examples_file(tmp_path):
    header = tmp_path / "header.csv"
    header.write_text("text,label\n", encoding="utf-8")
    cli_error(run_cli("classify", "hello", "--examples", header), "no rows")


def test_one_label_only(tmp_path):
    one = write_csv(tmp_path / "one.csv", [("a card payment", "cards"), ("another card payment", "cards")])
    cli_error(run_cli("classify", "hello", "--examples", one), "only one label", "cards")


def test_csv_row_with_one_column_names_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text('text,label\n"Will it rain tomorrow?",weather\njust some text without a label\n', encoding="utf-8")
    cli_error(run_cli("classify", "hello", "--examples", bad), "line 3", "two columns")


def test_csv_empty_label_names_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nWill it rain tomorrow?,weather\nWho won?,sports\nWhat a match,\n", encoding="utf-8")
    cli_error(run_cli("classify", "hello", "--examples", bad), "line 4", "empty label")


def test_jsonl_line_not_json_names_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "Will it rain?", "label": "weather"}\n\n{"text": "Who won?", "label": "sports"\n', encoding="utf-8")
    cli_error(run_cli("classify", "hello", "--examples", bad), "line 3", "not valid JSON")


def test_jsonl_line_not_an_object_names_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "Will it rain?", "label": "weather"}\n["Who won?", "sports"]\n', encoding="utf-8")
    cli_error(run_cli("classify", "hello", "--examples", bad), "line 2", "object")


def test_jsonl_missing_text_names_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "Will it rain?", "label": "weather"}\n{"label": "sports"}\n', encoding="utf-8")
    cli_error(run_cli("classify", "hello", "--examples", bad), "line 2", "empty text")


def test_nothing_to_classify(example_files):
    cli_error(run_cli("classify", "--examples", example_files[0]), "nothing to classify")


def test_missing_input_file(example_files, tmp_path):
    cli_error(run_cli("classify", "--input", tmp_path / "nope.txt", "--examples", example_files[0]), "does not exist")


# ---- awkward example files (BOMs, stray commas, multi-line fields) ------------------------------------
def test_csv_with_utf8_bom_header_is_a_header(tmp_path):
    """Excel's BOM does not turn the header into an example labeled 'label' (the file is read as utf-8-sig)."""
    bom = tmp_path / "excel.csv"
    bom.write_text("\ufeff" + "text,label\nWill it rain tomorrow?,weather\nWho won the match?,sports\n", encoding="utf-8")
    examples = load_examples(bom)
    assert [(e.text, e.label) for e in examples] == [("Will it rain tomorrow?", "weather"), ("Who won the match?", "sports")]


def test_jsonl_with_utf8_bom_is_read(tmp_path):
    """A BOM does not make line 1 'not valid JSON (Unexpected UTF-8 BOM)'."""
    bom = tmp_path / "excel.jsonl"
    bom.write_text("\ufeff" + write_jsonl(tmp_path / "x.jsonl", ROWS).read_text(encoding="utf-8"), encoding="utf-8")
    assert [(e.text, e.label) for e in load_examples(bom)] == ROWS


def test_csv_row_with_three_columns_is_refused(tmp_path):
    """An unquoted comma in the text is refused, not read as a text whose second half is the label."""
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "text,label\nWill it rain tomorrow?,weather\nI paid, but it failed,card payments\nWho won?,sports\n", encoding="utf-8"
    )
    with pytest.raises(SixfoldError, match="line 3"):
        load_examples(bad)


def test_csv_line_numbers_count_lines_inside_quoted_fields(tmp_path):
    """Errors name the file line, not the CSV record number, when a quoted field spans lines."""
    bad = tmp_path / "bad.csv"
    bad.write_text('text,label\n"Will it rain\ntomorrow?",weather\nWho won?,sports\nno label here\n', encoding="utf-8")
    with pytest.raises(SixfoldError, match="line 5"):
        load_examples(bad)
