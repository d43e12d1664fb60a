"""``sixfold tune generator``: real LoRA runs of the packaged SmolLM2-135M-Instruct GGUF (dequantised by transformers,
served by llama.cpp with the written adapter), a few steps each, on TREC question types as one-word completions
(tests/fixtures/trec_*.jsonl) and on the bundled corpus as raw text. Then ``complete`` and ``models`` with the tuned
version, the two runtimes side by side, and the refusals (memory, bad rows, no such version) as one error line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sixfold.core.models import DEFAULT_GENERATOR

from conftest import REPO, assert_one_error_line, copy_index, run_cli

FIXTURES = Path(__file__).parent / "fixtures"
BASE = "SmolLM2-135M-Instruct"
TRAIN, EVAL = FIXTURES / "trec_train.jsonl", FIXTURES / "trec_eval.jsonl"
SMALL = ("--max-steps", "8", "--batch-size", "4", "--max-length", "96", "--eval-limit", "16")


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, shared_index):
    """An index copy with generator@1: 8 LoRA steps on the TREC rows, activated."""
    index = copy_index(shared_index.path, tmp_path_factory.mktemp("generator") / "idx")
    args = ("tune", "generator", "--train", TRAIN, "--eval", EVAL, "--base", BASE, "--index", index, *SMALL)
    run = run_cli(*args, "--activate", "yes", "--json", timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return index, json.loads(run.stdout)


def test_tune_generator_trains_scores_and_saves_both_adapter_forms(tuned):
    index, result = tuned
    assert result["role"] == "generator" and result["version"] == 1 and result["base"] == BASE
    assert result["data"] == "completion" and result["train_rows"] == 48 and result["eval_rows"] == 16
    assert {"perplexity", "EM", "F1", "accuracy"} <= set(result["before"]) == set(result["after"])
    assert result["after"]["perplexity"] < result["before"]["perplexity"]  # it learned the label words
    assert result["activated"] is True and result["runtime"] == "llama.cpp"
    folder = Path(result["path"])
    assert folder == index.resolve() / "models" / "generator" / "1"
    assert (folder / "adapter" / "adapter_config.json").is_file() and (folder / "adapter.gguf").stat().st_size > 100_000
    registry = json.loads((index / "models" / "registry.json").read_text())
    assert registry["generator"]["active"] == 1 and registry["generator"]["versions"]["1"]["base"] == BASE
    agree, asked = map(int, result["runtimes_agree"].split("/"))
    assert asked == 5 and agree >= 3
    assert not (index / "models" / ".work").exists() or not any((index / "models" / ".work").iterdir())


def test_every_assistant_turn_is_learned_unless_its_weight_is_0():
    """OpenAI's chat fine-tuning: the loss falls on each assistant message of a multi-turn row (weight 1, the
    default), never on the system and user turns; a cut row keeps its last reply whole."""
    from transformers import AutoTokenizer

    from sixfold.core.models import resolve_model
    from sixfold.tuner.generator import encode
    from sixfold.tuner.generator_data import GeneratorRow

    model = resolve_model(BASE, role="generator")
    tokenizer = AutoTokenizer.from_pretrained(model.path, gguf_file=model.gguf_file, local_files_only=True)
    turns = [
        {"role": "system", "content": "Answer with a number."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "four"},
        {"role": "user", "content": "3+3?"},
        {"role": "assistant", "content": "six"},
    ]

    def learned(row: GeneratorRow, max_length: int = 512) -> str:
        (item,), _cut = encode([row], tokenizer, max_length)
        return tokenizer.decode([t for t in item["labels"] if t != -100])

    both = learned(GeneratorRow("chat", messages=turns))
    assert "four" in both and "six" in both and "3+3" not in both and "number" not in both
    quiet = [*turns[:2], {**turns[2], "weight": 0}, *turns[3:]]
    assert "four" not in learned(GeneratorRow("chat", messages=quiet)) and "six" in learned(GeneratorRow("chat", messages=quiet))
    (item,), cut = encode([GeneratorRow("chat", messages=turns)], tokenizer, 12)
    assert cut == 1 and len(item["input_ids"]) == 12 and "six" in tokenizer.decode(item["input_ids"])


def test_the_human_report_is_a_table_with_a_verdict(tuned, tmp_path):
    index = copy_index(tuned[0], tmp_path / "idx")
    args = ("tune", "generator", "--train", TRAIN, "--eval", EVAL, "--base", BASE, "--index", index, *SMALL)
    run = run_cli(*args, "--max-steps", "2", "--activate", "no", timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    flat = " ".join(run.stdout.split())  # the table wraps its title to the terminal width
    assert "generator@2: LoRA on SmolLM2-135M-Instruct, 48 completion rows" in flat
    for words in ("perplexity", "accuracy", "delta", "gave the same greedy reply", "saved, not active"):
        assert words in flat


def test_complete_uses_the_active_version_and_a_named_one(tuned):
    index, _result = tuned
    prompt = json.loads(EVAL.read_text().splitlines()[0])["prompt"]
    active = run_cli("complete", prompt, "--index", index, "--max-tokens", "3", "--json", timeout=300)
    named = run_cli("complete", prompt, "--index", index, "--model", "generator@1", "--max-tokens", "3", "--json", timeout=300)
    assert active.returncode == 0 and named.returncode == 0, active.stderr + named.stderr
    a, n = json.loads(active.stdout), json.loads(named.stdout)
    assert a["model"] == n["model"] == "generator@1" and a["text"] == n["text"]
    missing = run_cli("complete", prompt, "--index", index, "--model", "generator@7")
    assert_one_error_line(missing.returncode, missing.stderr, "no version generator@7", "generator@1")


def test_models_use_and_rollback_switch_the_generator(tuned, tmp_path):
    index = copy_index(tuned[0], tmp_path / "idx")
    listing = run_cli("models", "list", "--index", index, "--json")
    assert listing.returncode == 0, listing.stderr
    roles = {entry["role"]: entry for entry in json.loads(listing.stdout)["roles"]}
    assert roles["generator"]["active"] == 1 and [v["number"] for v in roles["generator"]["versions"]] == [1]
    assert run_cli("models", "use", "generator@base", "--index", index).returncode == 0
    from sixfold import Engine

    assert Engine.open(index).generator_model(None) == DEFAULT_GENERATOR
    assert run_cli("models", "rollback", "generator", "--index", index).returncode == 0
    assert Engine.open(index).generator_model(None).name == "generator@1"


def test_the_tuned_model_gives_the_same_replies_on_both_runtimes(tuned):
    from sixfold import Engine
    from sixfold.reader.llamacpp import LlamaCppLM
    from sixfold.reader.llm import CausalLM

    model = Engine.open(tuned[0]).tuned_generator(1)
    assert model.adapter and Path(model.adapter, "adapter.gguf").is_file()
    rows = [json.loads(line) for line in EVAL.read_text().splitlines()[:4]]
    runtimes = [LlamaCppLM(model, "cpu"), CausalLM(model, "cpu")]
    replies = [[lm.complete(r["prompt"], max_tokens=3, stop=["\n"]).text.strip() for r in rows] for lm in runtimes]
    assert sum(a == b for a, b in zip(*replies)) >= 3, replies


def test_tune_generator_on_raw_domain_text(tuned, tmp_path):
    index = copy_index(tuned[0], tmp_path / "idx")
    corpus = REPO / "examples" / "corpus"
    args = ("tune", "generator", "--corpus", corpus, "--base", BASE, "--index", index, "--max-steps", "3")
    run = run_cli(*args, "--max-length", "64", "--batch-size", "2", "--activate", "no", "--json", timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["data"] == "text" and set(result["after"]) == {"perplexity"} and result["runtimes_agree"] == ""
    assert result["eval_rows"] >= 1 and "held-out chunks" in result["eval_source"]


@pytest.mark.parametrize(
    "extra, fragments",
    [
        (("--batch-size", "4096", "--max-length", "4096"), ("GiB", "lower --batch-size or --max-length")),
        (("--base", "all-MiniLM-L6-v2"), ("language model",)),
    ],
)
def test_a_job_that_cannot_run_is_refused_before_training(tuned, tmp_path, extra, fragments):
    index = copy_index(tuned[0], tmp_path / "idx")
    before = (index / "models" / "registry.json").read_text()
    args = ("tune", "generator", "--train", TRAIN, "--index", index, "--base", BASE, *extra)
    run = run_cli(*args, timeout=300)
    assert_one_error_line(run.returncode, run.stderr, *fragments)
    assert (index / "models" / "registry.json").read_text() == before
    assert not (index / "models" / "generator" / "2.tmp").exists()


def test_a_bad_training_row_is_one_error_naming_its_line(tuned, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(TRAIN.read_text().splitlines()[0] + '\n{"messages": [{"role": "user", "content": "hi"}]}\n')
    run = run_cli("tune", "generator", "--train", bad, "--index", tuned[0], "--base", BASE)
    assert_one_error_line(run.returncode, run.stderr, "line 2", "chat row in a file of completion rows")


def test_qa_pairs_teach_the_generator_to_answer_from_passages(tuned, tmp_path):
    """QA rows become the prompt ``ask`` sends (numbered sentences) and the reply it should get; scored by EM/F1 of
    the parsed answer, never as labels."""
    index = copy_index(tuned[0], tmp_path / "idx")
    qa = FIXTURES / "qa_train.jsonl"
    args = ("tune", "generator", "--train", qa, "--base", BASE, "--index", index, "--max-steps", "2", "--batch-size", "2")
    run = run_cli(*args, "--max-length", "640", "--eval-limit", "4", "--activate", "no", "--json", timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["data"] == "qa" and result["eval_rows"] == 4 and result["train_rows"] == 38
    assert {"perplexity", "EM", "F1"} == set(result["after"])


def test_a_qa_row_becomes_the_ask_prompt_and_a_cited_reply():
    from sixfold.core.models import resolve_model
    from sixfold.reader.generative import SYSTEM
    from sixfold.reader.llm import load_causal_lm
    from sixfold.tuner.generator_data import GeneratorRow, TemplateLM, qa_target, render

    tokenizer, _lm = load_causal_lm(resolve_model(BASE, role="generator"))
    context = "The Normans were descended from Norse raiders. They settled in Normandy in the 10th century."
    messages, number = qa_target("Who were the Normans descended from?", context, ["Norse raiders"], TemplateLM(tokenizer))
    assert messages[0]["content"] == SYSTEM and "[1] The Normans were descended from Norse raiders." in messages[1]["content"]
    assert number == 1 and messages[2]["content"] == "ANSWER: Norse raiders [1]"
    prompt, completion = render(GeneratorRow("qa", question="Who?", context=context, answers=[]), tokenizer)
    assert completion.startswith("NOT FOUND") and prompt.endswith("assistant\n")
