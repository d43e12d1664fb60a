"""``sixfold eval qa --questions FILE --folder DIR``: a folder QA set asked through the Engine with the default models,
on a tiny folder of real package documentation (copied from bench/folder_qa/docs). The current default models are
weak, so no accuracy is asserted: the report's fields and counts must be consistent with each other and with what
was asked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import assert_one_error_line

DOCS = Path(__file__).resolve().parents[1] / "bench" / "folder_qa" / "docs"
FILES = ("psmisc/README.md", "ed/README.gz", "systemd/README.logs")
QUESTIONS = [
    {"question": "Which psmisc tool shows the data passing through a file descriptor?", "answers": ["peekfd"],
     "source": "psmisc/README.md"},
    {"question": "What is the restricted version of ed called?", "answers": ["red"], "source": "ed/README.gz"},
    {"question": "Which command shows the logs now that /var/log has no text files?", "answer_regex": r"journalctl",
     "source": "systemd/README.logs"},
    {"question": "Which signal does killall send by default?", "answers": [], "source": None},
]  # fmt: skip


@pytest.fixture(scope="module")
def folder_set(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("folder_qa")
    for name in FILES:
        (base / "docs" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DOCS / name, base / "docs" / name)
    questions = base / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")
    return base / "docs", questions


def check_consistent(report: dict, asked: int) -> None:
    counts, items, cal = report["counts"], report["items"], report["calibration"]
    assert report["questions"] == len(items) == asked
    assert sum(counts.values()) == asked
    assert report["answerable"] == sum(i["answerable"] for i in items)
    assert report["unanswerable"] == asked - report["answerable"]
    assert counts["right"] + counts["wrong_source"] + counts["wrong"] + counts["missed"] == report["answerable"]
    assert counts["abstained"] + counts["answered"] == report["unanswerable"]
    for i in items:
        assert i["outcome"] in ({"right", "wrong_source", "wrong", "missed"} if i["answerable"] else {"abstained", "answered"})
        assert i["found"] == (i["outcome"] not in ("missed", "abstained"))
        assert i["cited"] == [] or i["found"], "an abstention cites nothing as the answer's source"
        if i["outcome"] == "right":
            assert set(i["cited"]) & set(i["sources"])
        assert 0.0 <= i["confidence"] <= 1.0 and i["seconds"] > 0
        assert isinstance(i["source_retrieved"], bool) if i["answerable"] else i["source_retrieved"] is None
        assert isinstance(i["notes"], list) and (i["found"] or i["notes"]), "an abstention says why"
        if i["found"] and i["mode"] == "generative":
            assert i["features"] and 0.0 <= i["features"]["support"] <= 1.0, "what the confidence was made of"
    for pct, part, whole in (("right_pct", "right", "answerable"), ("abstained_pct", "abstained", "unanswerable")):
        expected = 100 * counts[part] / report[whole] if report[whole] else None
        assert report[pct] == (pytest.approx(expected) if expected is not None else None)
    given = [i for i in items if i["found"]]
    assert cal["answers"] == len(given) == sum(b["count"] for b in cal["bins"])
    assert report["wrong_confident"] == sum(i["outcome"] in ("wrong", "answered") and i["confidence"] >= 0.8 for i in given)
    assert cal["confident_answers"] == sum(i["confidence"] >= 0.8 for i in given)
    assert (cal["ece"] is None) == (not given)
    assert 0 < report["p50_s"] <= report["p95_s"] <= max(i["seconds"] for i in items)


def test_folder_eval_reports_consistent_counts_and_a_table(folder_set, tmp_path, cli):
    docs, questions = folder_set
    index, out = tmp_path / "idx", tmp_path / "report.json"
    code, stdout, err = cli("eval", "qa", "--folder", docs, "--questions", questions, "--index", index, "--out", out)
    assert code == 0, err
    report = json.loads(out.read_text())
    check_consistent(report, len(QUESTIONS))
    assert report["folder"] == str(docs) and report["index"] == str(index) and report["index_seconds"] > 0
    assert [i["line"] for i in report["items"]] == [1, 2, 3, 4]
    assert report["items"][1]["sources"] == ["ed/README.gz"]
    assert "correct, right source cited" in stdout and "unanswerable: abstained" in stdout and "p50" in stdout
    assert f"report: {out}" in err and "[4/4]" in err, "progress goes to stderr, one line per question"

    # The index alone (no --folder), machine-readable, a TSV set (an unanswerable row: quick to ask twice).
    tsv = tmp_path / "questions.tsv"
    tsv.write_text("question\tanswers\tsource\nWhich signal does killall send by default?\t\t\n")
    code, stdout, err = cli("eval", "qa", "--questions", tsv, "--index", index, "--json", "--out", tmp_path / "r2.json")
    assert code == 0, err
    again = json.loads(stdout)
    check_consistent(again, 1)
    assert again["items"][0]["line"] == 2 and again["answerable"] == 0 and again["right_pct"] is None
    assert again["folder"] is None and again["index_seconds"] == 0.0
    assert again == json.loads((tmp_path / "r2.json").read_text())


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ((), "needs --squad FILE, or --questions FILE"),
        (("--questions", "Q"), "needs --folder DIR"),
        (("--questions", "Q", "--squad", "s.json"), "not both"),
        (("--questions", "Q", "--folder", "DOCS", "--open"), "not both"),
        (("--squad", "s.json", "--folder", "DOCS"), "go with --questions"),
        (("--questions", "Q", "--index", "MISSING"), "no index at"),
        (("--questions", "Q", "--folder", "MISSING"), "does not exist"),
    ],
)
def test_bad_folder_eval_arguments_are_one_error_line(folder_set, tmp_path, cli, extra, fragment):
    docs, questions = folder_set
    names = {"Q": str(questions), "DOCS": str(docs), "MISSING": str(tmp_path / "missing")}
    code, _out, err = cli("eval", "qa", *(names.get(a, a) for a in extra))
    assert_one_error_line(code, err, fragment)


def test_a_source_missing_from_the_folder_names_the_line_before_indexing(folder_set, tmp_path, cli):
    docs, _questions = folder_set
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(QUESTIONS[0]) + "\n" + json.dumps({**QUESTIONS[1], "source": "ed/README"}) + "\n")
    code, _out, err = cli("eval", "qa", "--folder", docs, "--questions", bad, "--index", tmp_path / "idx")
    assert_one_error_line(code, err, "bad.jsonl line 2: source ed/README is not a file in")
    assert not (tmp_path / "idx").exists(), "nothing was indexed"
