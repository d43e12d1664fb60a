"""The generator tuner's model-free parts: reading fine-tune files (each format, and what a bad row says), the
memory refusal, the task scores, the fine-tuning job's saved state and its two API shapes, and the current API's
hyperparameters."""

from __future__ import annotations

import json

import pytest

from sixfold.core.errors import SixfoldError
from sixfold.http.errors import ApiError
from sixfold.http.jobs import FineTuneJob
from sixfold.http.schemas import FineTuningJobRequest
from sixfold.tuner.generator import (
    EvalItem,
    GeneratorTrainConfig,
    GeneratorTuneResult,
    ModelShape,
    memory_needed,
    split_rows,
    task_scores,
)
from sixfold.tuner.generator_data import file_format, load_generator_file


def write(tmp_path, rows: list, name: str = "rows.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


CHAT = {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}


def test_each_file_format_is_read(tmp_path):
    completion = write(tmp_path, [{"prompt": "Q: 2+2?\nA:", "completion": " 4"}] * 2, "c.jsonl")
    chat = write(tmp_path, [CHAT, CHAT], "chat.jsonl")
    qa = write(tmp_path, [{"question": "Who?", "context": "Ann wrote it.", "answer": "Ann"}], "qa.jsonl")
    assert [file_format(p) for p in (completion, chat, qa)] == ["completion", "chat", "qa"]
    rows = load_generator_file(completion)
    assert len(rows) == 2 and rows[0].kind == "completion" and rows[0].gold() == ["4"]
    assert load_generator_file(chat)[0].gold() == ["4"]
    (row,) = load_generator_file(qa)
    assert row.kind == "qa" and row.answers == ["Ann"] and row.context == "Ann wrote it."


@pytest.mark.parametrize(
    "rows, fragment",
    [
        ([{"prompt": "a", "completion": "b"}, "{not json"], "line 2: not JSON"),
        ([{"prompt": "a", "completion": "b"}, CHAT], "line 2: a chat row in a file of completion rows"),
        ([{"text": "x"}], "line 1: a row needs messages"),
        ([{"messages": [{"role": "user", "content": "hi"}]}], "line 1: the last message must be the assistant's"),
        ([{"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}], "each message needs a role"),
        ([{"prompt": "a", "completion": "  "}], "line 1: prompt and completion must be text"),
        ([{"messages": [{"role": "user", "content": "x", "weight": 1}, {"role": "assistant", "content": "y"}]}], "on assistant"),
        ([{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": 2}]}], "0 or 1"),
        ([{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": 0}]}], "nothing"),
    ],
)
def test_a_bad_row_is_named_by_its_line(tmp_path, rows, fragment):
    with pytest.raises(SixfoldError, match=fragment):
        load_generator_file(write(tmp_path, rows))


def test_a_missing_file_is_one_error(tmp_path):
    with pytest.raises(SixfoldError, match="does not exist"):
        load_generator_file(tmp_path / "nope.jsonl")


def test_rows_are_held_out_reproducibly():
    rows = load_rows = [type("R", (), {"i": i})() for i in range(10)]
    train, held = split_rows(load_rows, seed=1)
    assert len(held) == 2 and len(train) == 8 and set(map(id, train + held)) == set(map(id, rows))
    assert [r.i for r in split_rows(rows, seed=1)[1]] == [r.i for r in held]
    with pytest.raises(SixfoldError, match="at least 2 rows"):
        split_rows(rows[:1], seed=1)


def test_memory_grows_with_the_model_and_the_batch():
    shape = ModelShape(parameters=494_000_000, vocab=151_936, hidden=896, layers=24)
    small = memory_needed(shape, GeneratorTrainConfig(batch_size=4, max_length=512))
    assert 4e9 < small < 12e9  # 0.5B in float32 twice, plus the logits of 2k tokens over 152k words
    assert memory_needed(shape, GeneratorTrainConfig(batch_size=8, max_length=512)) > small
    assert memory_needed(ModelShape(1_500_000_000, 151_936, 1536, 28), GeneratorTrainConfig()) > small


def test_task_scores_take_labels_answers_and_not_found():
    labels = [EvalItem("p", [gold]) for gold in ("human", "location") * 4]
    scores = task_scores(labels, [" human", "place", "Human.", "location"] * 2)
    assert scores["accuracy"] == 0.75 and scores["EM"] == 75.0
    answers = [EvalItem("p", [gold]) for gold in ("Paris", "in 1066", "Ann", "blue")]
    assert "accuracy" not in task_scores(answers, ["Paris"] * 4)  # four different replies in four: not labels
    qa = [EvalItem("p", ["Ann"], qa=True), EvalItem("p", [""], qa=True)]
    scores = task_scores(qa, ["ANSWER: Ann [1]", "NOT FOUND"])
    assert scores == {"EM": 100.0, "F1": 100.0}  # no accuracy: QA replies are not labels
    assert task_scores(qa, ["ANSWER: Bob [1]", "ANSWER: Ann [2]"])["EM"] == 0.0


def test_the_deciding_metric_is_accuracy_then_f1_then_perplexity():
    assert (
        GeneratorTuneResult.better(
            {"perplexity": 9.0, "F1": 50.0, "accuracy": 0.5}, {"perplexity": 3.0, "F1": 60, "accuracy": 0.4}
        )
        is False
    )
    assert GeneratorTuneResult.better({"perplexity": 9.0, "F1": 50.0}, {"perplexity": 12.0, "F1": 51.0}) is True
    assert GeneratorTuneResult.better({"perplexity": 9.0}, {"perplexity": 8.0}) is True


def test_a_job_is_saved_and_read_back_in_both_shapes(tmp_path):
    job = FineTuneJob(
        "ftjob-" + "a" * 24,
        "generator",
        "SmolLM2-135M-Instruct",
        "file-" + "b" * 24,
        None,
        {"n_epochs": 2, "batch_size": 4},
        "auto",
        50,
        store=tmp_path,
    )
    job.event("Created fine-tune")
    job.status = "running"
    job.event("Fine-tune started")
    again = FineTuneJob.load(tmp_path / f"{job.id}.json")
    assert again.status == "running" and [e["message"] for e in again.events] == ["Created fine-tune", "Fine-tune started"]
    current = again.to_current()
    assert (
        current["object"] == "fine_tuning.job" and current["status"] == "running" and current["hyperparameters"]["n_epochs"] == 2
    )
    assert current["validation_file"] is None and current["error"] is None
    legacy = again.to_legacy()
    assert (
        legacy["object"] == "fine-tune"
        and legacy["validation_files"] == []
        and legacy["events"][0]["object"] == "fine-tune-event"
    )
    again.finish("failed", "Fine-tune failed: boom", level="error")
    assert FineTuneJob.load(tmp_path / f"{job.id}.json").to_current()["status"] == "failed"
    job.status = "pending"
    assert job.to_current()["status"] == "queued"


def test_current_hyperparameters_take_auto_and_the_method_form():
    plain = FineTuningJobRequest(model="m", training_file="f", hyperparameters={"n_epochs": 3, "batch_size": "auto"})
    assert plain.hyper() == {"n_epochs": 3, "batch_size": None, "learning_rate_multiplier": None}
    method = {"type": "supervised", "supervised": {"hyperparameters": {"learning_rate_multiplier": 2.0}}}
    assert FineTuningJobRequest(model="m", training_file="f", method=method).hyper()["learning_rate_multiplier"] == 2.0
    with pytest.raises(ApiError, match="n_epochs"):
        FineTuningJobRequest(model="m", training_file="f", hyperparameters={"n_epochs": 500}).hyper()


def test_squad_json_is_qa_whatever_its_name(tmp_path):
    squad = {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "Ann wrote it.",
                        "qas": [{"id": "1", "question": "Who?", "answers": [{"text": "Ann", "answer_start": 0}]}],
                    }
                ],
            }
        ]
    }
    upload = tmp_path / "file-upload.jsonl"  # how the server stores every upload
    upload.write_text(json.dumps(squad, indent=2))
    assert file_format(upload) == "qa" and load_generator_file(upload)[0].answers == ["Ann"]
    long_row = {"messages": [{"role": "user", "content": "x " * 5000}, {"role": "assistant", "content": "y"}]}
    assert file_format(write(tmp_path, [long_row], "long.jsonl")) == "chat"


class ForgetfulTemplate:
    """A chat template that drops the assistant replies before the last user turn (as templates that strip earlier
    turns' reasoning do), so a longer chat does not render as an extension of a shorter one."""

    chat_template = "forgetful"
    eos_token = "</s>"

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        kept = [m for i, m in enumerate(messages) if m["role"] != "assistant" or i > last_user]
        return "".join(f"<{m['role']}>{m['content']}</s>" for m in kept) + ("<assistant>" if add_generation_prompt else "")


def test_a_template_that_drops_earlier_turns_learns_the_last_reply_of_weight_one():
    from sixfold.tuner.generator_data import GeneratorRow, segments

    turns = [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "four"},
        {"role": "user", "content": "3+3?"},
        {"role": "assistant", "content": "six"},
    ]
    tokenizer = ForgetfulTemplate()
    learned = [text for text, on in segments(GeneratorRow("chat", messages=turns), tokenizer) if on]
    assert learned == ["six</s>"]
    quiet = [*turns[:3], {**turns[3], "weight": 0}]
    pieces = segments(GeneratorRow("chat", messages=quiet), tokenizer)
    assert [text for text, on in pieces if on] == ["four</s>"]  # not the weight-0 reply
    assert "six" not in "".join(text for text, _ in pieces)
