"""Tuning the extractive reader: real training steps on real QA pairs, versions, rollback, bad data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sixfold.core.errors import SixfoldError
from sixfold.reader.types import Passage
from sixfold.tuner.data import load_qa_file
from sixfold.tuner.reader import ReaderTrainConfig, tune_reader
from sixfold.tuner.versions import Registry

from conftest import assert_one_error_line
from training_callbacks import Losses, Steps, StopAt, Stopped

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, shared_index):
    """One short real training run on a copy of the shared index (10 steps of batch 8)."""
    root = tmp_path_factory.mktemp("tune") / "idx"
    shutil.copytree(shared_index.path, root, ignore=shutil.ignore_patterns(".lock"))
    losses = Losses()
    config = ReaderTrainConfig(max_steps=10, batch_size=8, max_length=192, stride=48, learning_rate=3e-4)
    result = tune_reader(
        root,
        FIXTURES / "qa_train.jsonl",
        FIXTURES / "qa_eval.jsonl",
        config=config,
        activate="yes",
        callbacks=[losses],
    )
    return root, result, losses.losses


def test_training_loss_falls(tuned):
    _root, _result, losses = tuned
    assert len(losses) >= 2
    assert losses[-1] < losses[0]


def test_version_is_saved_scored_and_active(tuned):
    root, result, _ = tuned
    assert result.version == 1 and result.activated
    assert (Path(result.path) / "config.json").is_file()
    registry = Registry(root).load()
    assert registry["reader"]["active"] == 1
    entry = registry["reader"]["versions"]["1"]
    assert set(entry["eval"]) == {"EM", "F1"} and set(entry["eval_before"]) == {"EM", "F1"}
    assert 0.0 <= result.after["F1"] <= 100.0


def test_saved_version_loads_and_answers_with_a_span_of_the_passage(tuned):
    from sixfold.engine import Engine

    root, result, _ = tuned
    engine = Engine.open(root)
    assert engine.active_model("reader") == result.path
    answer = engine.ask("Who were the Normans descended from?", mode="extractive")
    assert answer.mode == "extractive"
    for citation in answer.citations:  # a span is always a piece of the passage it cites
        passage = next(p for p in answer.passages if p.id == citation.passage_id)
        if answer.found:
            assert passage.text[citation.start : citation.end] == answer.answer


def test_models_use_and_rollback(tuned, cli):
    root, _result, _ = tuned
    code, out, _err = cli("models", "--index", str(root))
    assert code == 0 and "reader@1" in out
    assert cli("models", "use", "reader@base", "--index", str(root))[0] == 0
    assert Registry(root).active_path("reader") is None
    assert cli("models", "rollback", "reader", "--index", str(root))[0] == 0
    assert Registry(root).load()["reader"]["active"] == 1


def test_unknown_version_is_an_error(tuned, cli):
    root, _result, _ = tuned
    code, _out, err = cli("models", "use", "reader@99", "--index", str(root))
    assert_one_error_line(code, err)
    assert "reader@99" in err


def test_answer_not_in_context_is_rejected_with_its_line(tmp_path):
    rows = [
        {"question": "Q1?", "context": "Paris is in France.", "answer": "Paris"},
        {"question": "Q2?", "context": "Rome is in Italy.", "answer": "Madrid"},
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(SixfoldError, match="line 2.*does not occur"):
        load_qa_file(path)


def test_malformed_rows_name_their_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "Q?", "context": "C", "answer": "C"}\nnot json\n')
    with pytest.raises(SixfoldError, match="line 2"):
        load_qa_file(path)
    path.write_text('{"question": "", "context": "C", "answer": "C"}\n')
    with pytest.raises(SixfoldError, match="line 1.*question"):
        load_qa_file(path)


def test_training_windows_are_the_windows_the_reader_reads():
    """tuner/reader.py trains on the windows reader/extractive.py answers from (one question_windows): a long context
    is read in overlapping windows, the question without its surrounding space, and every answer position points at
    the answer's characters."""
    from transformers import AutoTokenizer

    from sixfold.core.models import DEFAULT_EMBEDDER, resolve_model
    from sixfold.reader.extractive import question_windows
    from sixfold.tuner.data import QAExample
    from sixfold.tuner.reader import train_features

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(DEFAULT_EMBEDDER).path, local_files_only=True)
    filler = " ".join(f"Sentence {n} tells nothing about rivers." for n in range(60))
    context = f"{filler} The longest river in the valley is the Arno. {filler}"
    answer = {"text": "Arno", "answer_start": context.index("Arno")}
    example = QAExample("1", "  Which river is the longest?  ", context, [answer])
    features = train_features([example], tokenizer, max_length=128, stride=32)
    read = question_windows(tokenizer, [example.question], [context], 128, 32)
    trained = [[t for t, m in zip(ids, mask) if m] for ids, mask in zip(features["input_ids"], features["attention_mask"])]
    assert trained == read["input_ids"] and len(trained) > 3, "training and answering see the same windows"
    question = tokenizer("Which river is the longest?")["input_ids"]
    assert all(window[: len(question)] == question for window in trained)
    offsets = read["offset_mapping"]
    for previous, window in zip(offsets, offsets[1:]):  # consecutive windows share context: no answer is cut off
        assert window[len(question)][0] < previous[-2][1]
    spans = [(w, s, e) for w, (s, e) in enumerate(zip(features["start_positions"], features["end_positions"])) if s]
    assert spans, "some window holds the answer"
    assert all(context[offsets[w][s][0] : offsets[w][e][1]] == "Arno" for w, s, e in spans)


def test_empty_train_and_missing_eval_are_errors(tmp_path, shared_index, cli):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    index = str(shared_index.path)
    code, _out, err = cli("tune", "reader", "--train", str(empty), "--eval", str(FIXTURES / "qa_eval.jsonl"), "--index", index)
    assert_one_error_line(code, err)
    assert "empty" in err
    code, _out, err = cli(
        "tune", "reader", "--train", FIXTURES / "qa_train.jsonl", "--eval", tmp_path / "nope.jsonl", "--index", index
    )
    assert_one_error_line(code, err)
    assert "does not exist" in err


def test_squad_json_format_is_read(tmp_path):
    data = {
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": "Oxygen is element 8.",
                        "qas": [
                            {"id": "a", "question": "Which element is 8?", "answers": [{"text": "Oxygen", "answer_start": 0}]}
                        ],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data))
    (example,) = load_qa_file(path)
    assert example.answers == [{"text": "Oxygen", "answer_start": 0}] and example.title == "T"


def test_disk_full_while_saving_a_reader_keeps_the_active_one(tuned, tmp_path):
    """A real write failure (file size limit, EFBIG) while the new reader is saved: registry and active model unchanged."""
    import resource
    import signal
    import subprocess
    import sys

    from conftest import REPO, cli_env, copy_index

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (8 << 20, 8 << 20))  # the model weights are ~90 MB

    root = copy_index(tuned[0], tmp_path / "idx")
    registry_before = (root / "models" / "registry.json").read_text()
    args = [
        "tune",
        "reader",
        "--train",
        FIXTURES / "qa_train.jsonl",
        "--eval",
        FIXTURES / "qa_eval.jsonl",
        "--index",
        root,
        "--max-steps",
        "1",
        "--batch-size",
        "4",
        "--max-length",
        "128",
        "--eval-limit",
        "4",
        "--activate",
        "yes",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "sixfold", *map(str, args)],
        cwd=REPO,
        env=cli_env(),
        text=True,
        capture_output=True,
        timeout=600,
        preexec_fn=limit,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert_one_error_line(proc.returncode, lines[-1], "could not save", "unchanged")
    assert (root / "models" / "registry.json").read_text() == registry_before
    assert sorted(p.name for p in (root / "models" / "reader").iterdir()) == ["1"]
    assert Registry(root).active_path("reader") == str(root.resolve() / "models" / "reader" / "1")
    from sixfold.reader.extractive import ExtractiveReader

    text, _score, _c = ExtractiveReader("r", Registry(root).active_path("reader"), "cpu").answer(
        "Who were the Normans descended from?", [Passage(0, "The Normans were descended from Norse raiders.", "p")]
    )
    assert text  # the previous active reader still loads and answers


def test_rollback_without_versions_is_an_error(shared_index, cli):
    code, _out, err = cli("models", "rollback", "embedder", "--index", shared_index.path)
    assert_one_error_line(code, err, "no tuned embedder")


def test_eval_qa_scores_a_reader_with_the_gold_paragraph_and_open_book(tuned, cli, tmp_path):
    """`sixfold eval qa` with the tuned reader: official SQuAD EM/F1 on the fixture, a JSON report, and open book
    over the indexed paragraphs (retrieval must find the gold paragraph for most questions)."""
    _root, result, _ = tuned
    out = tmp_path / "qa.json"
    code, stdout, err = cli("eval", "qa", "--squad", FIXTURES / "qa_eval.jsonl", "--reader", result.path, "--out", out, "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report == json.loads(out.read_text())
    assert report["questions"] == 24 and report["open_book"] is False
    assert 0.0 <= report["EM"] <= report["F1"] <= 100.0
    # the same reader on the same questions scored by the tuner (same official metric)
    assert report["F1"] == pytest.approx(result.after["F1"], abs=5.0)

    code, stdout, err = cli(
        "eval", "qa", "--squad", FIXTURES / "qa_eval.jsonl", "--reader", result.path, "--open",
        "--index", tmp_path / "open-idx", "--limit", "8", "-k", "3", "--json", "--out", tmp_path / "open.json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(stdout)
    assert report["questions"] == 8 and report["open_book"] is True
    assert report["recall@3"] >= 75.0
    assert 0.0 <= report["EM"] <= report["F1"] <= 100.0


def test_eval_qa_bad_input_is_one_error_line(tmp_path, cli, monkeypatch):
    monkeypatch.delenv("SIXFOLD_READER", raising=False)
    code, _out, err = cli("eval", "qa", "--squad", FIXTURES / "qa_eval.jsonl")
    assert_one_error_line(code, err, "--reader")
    code, _out, err = cli("eval", "qa", "--squad", tmp_path / "nope.json", "--reader", tmp_path)
    assert "nope.json" in assert_one_error_line(code, err)


def test_interrupted_reader_training_resumes_from_its_last_checkpoint(tmp_path, embedder):
    """Stopped after its step-2 checkpoint (an exception out of the trainer, as a Ctrl-C would be), the same run
    again starts at step 3, saves the reader and removes its checkpoints."""
    from sixfold.tuner.reader import train_reader
    from sixfold.tuner.training import latest_checkpoint

    examples = load_qa_file(FIXTURES / "qa_train.jsonl")
    config = ReaderTrainConfig(max_steps=5, batch_size=4, max_length=128, stride=32, save_steps=2)
    work, out = tmp_path / "work", tmp_path / "reader"
    with pytest.raises(Stopped):
        train_reader(embedder.path, examples, work, out, config, callbacks=[StopAt(3)])
    assert (latest_checkpoint(work) or "").endswith("checkpoint-2")
    assert not out.exists()

    steps = Steps()
    train_reader(embedder.path, examples, work, out, config, callbacks=[steps])
    assert steps.seen == [3, 4, 5]
    assert (out / "config.json").is_file() and not work.exists()


# ---- what every tuner shares -----------------------------------------------------------------------------------------
def test_every_tuner_refuses_a_bad_activate_with_one_message_before_any_work(tmp_path):
    """One rule (tuner.training.should_activate) for all four roles: the same message, before data or index are read."""
    from sixfold.tuner.domain import tune_domain
    from sixfold.tuner.embedder import tune_embedder
    from sixfold.tuner.reranker import tune_reranker
    from sixfold.tuner.training import should_activate

    missing = tmp_path / "nothing"  # no index, no files: a check that ran later would complain about these instead
    calls = [
        lambda: tune_reader(missing, missing / "train.jsonl", missing / "eval.jsonl", activate="maybe"),
        lambda: tune_embedder(missing, [], activate="maybe"),
        lambda: tune_domain(missing, missing, activate="maybe"),
        lambda: tune_reranker(missing, [], [], activate="maybe"),
        lambda: should_activate("maybe", True),
    ]
    for call in calls:
        with pytest.raises(SixfoldError) as error:
            call()
        assert str(error.value) == "--activate takes auto, yes or no, not 'maybe'"
    assert [should_activate(a, improved) for a in ("auto", "yes", "no") for improved in (True, False)] == [
        True, False, True, True, False, False,
    ]  # fmt: skip


def test_improved_is_each_roles_metric_in_its_direction():
    from sixfold.tuner.domain import DomainTuneResult
    from sixfold.tuner.embedder import EmbedderTuneResult
    from sixfold.tuner.reader import ReaderTuneResult
    from sixfold.tuner.reranker import RerankerTuneResult

    assert ReaderTuneResult.better({"F1": 50.0, "EM": 60.0}, {"F1": 51.0, "EM": 10.0})
    assert EmbedderTuneResult.better({"nDCG@10": 0.5}, {"nDCG@10": 0.6})
    assert not RerankerTuneResult.better({"nDCG@10": 0.5}, {"nDCG@10": 0.5})
    assert DomainTuneResult.better({"perplexity": 9.0}, {"perplexity": 8.0})
    assert not DomainTuneResult.better({"perplexity": 8.0}, {"perplexity": 9.0})


def test_the_cli_parser_takes_the_tuners_defaults_and_loads_no_torch():
    """`sixfold --help` or `search` must not pay for torch: the tune parsers read the role configs' defaults, so those
    modules import torch only when they train."""
    import subprocess
    import sys

    from conftest import REPO, cli_env

    script = (
        "import sys, json\n"
        "from sixfold.cli import build_parser\n"
        "p = build_parser()\n"
        "args = {r: vars(p.parse_args(['tune', r, *extra])) for r, extra in [('reader', ['--train', 'a', '--eval', 'b']),"
        " ('embedder', ['--pairs', 'p']), ('domain', ['--corpus', 'c']), ('reranker', ['--pairs', 'p'])]}\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'args': args}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["torch"] is False
    from sixfold.tuner.domain import DomainTrainConfig
    from sixfold.tuner.embedder import EmbedderTrainConfig
    from sixfold.tuner.reranker import RerankerTrainConfig

    for role, config in (
        ("reader", ReaderTrainConfig()), ("embedder", EmbedderTrainConfig()), ("domain", DomainTrainConfig()),
        ("reranker", RerankerTrainConfig()),
    ):  # fmt: skip
        args = report["args"][role]
        for field in ("epochs", "learning_rate", "batch_size", "max_steps", "max_length", "seed", "negatives"):
            if field in args:
                assert args[field] == getattr(config, field), (role, field)
