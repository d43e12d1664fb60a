"""``sixfold``'s arguments: one function per command group, parsing only (the commands live beside this module).

Building the parser imports no model library: the tune defaults come from the role configs, which import torch
only when they train.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn, Protocol

from sixfold.core import config

DEFAULT_INDEX = config.default_index()
REPORT_HELP = "write the JSON report here (default: ~/.cache/sixfold/eval/reports/<kind>-<set>-<time>.json)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        sys.stderr.write(f"error: {message} (see: {self.prog} --help)\n")
        raise SystemExit(2)


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < least:
        wanted = "must be positive (at least 1)" if least == 1 else f"must be at least {least}"
        raise argparse.ArgumentTypeError(f"{wanted}, got {value}")
    return value


def positive_int(text: str) -> int:
    """1, 2, 3, ...: counts, sizes, k."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """0, 1, 2, ...: an overlap may be none."""
    return _whole_number(text, 0)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sixfold", description="Local retrieval-augmented search and QA over your documents.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_index(sub)
    _add_search(sub)
    _add_embed(sub)
    _add_answer(sub)
    _add_tune(sub.add_parser("tune", help="fine-tune a model on your domain and measure it before and after"))
    _add_models(sub)
    _add_eval(sub.add_parser("eval", help="score sixfold on public benchmarks (BEIR, SQuAD, labeled sets)"))
    _add_serve(sub)
    p = sub.add_parser("status", help="what an index holds")
    p.add_argument("--index", default=DEFAULT_INDEX)
    p.add_argument("--json", action="store_true")
    return parser


# ---- index, search, embed -------------------------------------------------------------------------
def _add_index(sub) -> None:
    p = sub.add_parser("index", help="index a folder (incremental: only new, changed or deleted files are touched)")
    p.add_argument("folder")
    p.add_argument("--index", default=DEFAULT_INDEX, help="index folder (default: %(default)s)")
    p.add_argument(
        "--model",
        help="embedding model: packaged alias, local folder or hub id (new index only; default: all-MiniLM-L6-v2 for "
        "an English folder, use-multilingual-v3 for any other)",
    )
    p.add_argument(
        "--index-type", choices=["auto", "flat", "ivf", "hnsw", "ivfpq"], help="vector index (new index only; default auto)"
    )
    p.add_argument("--chunk-tokens", type=positive_int, help="chunk size in model tokens (new index only; default 200)")
    p.add_argument("--chunk-overlap", type=non_negative_int, help="overlap in tokens (new index only; default 40)")
    p.add_argument(
        "--language",
        help="BM25 stemmer for every document, e.g. en, es, none (new index only; default auto: each document's own)",
    )
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument(
        "--max-file-mb",
        type=float,
        metavar="MB",
        help="skip (with a warning) a file holding more text than this, after gunzip; PDF and DOCX files may be 5x "
        "bigger for their images (default 20)",
    )
    p.add_argument(
        "--follow-links", action="store_true", help="follow symbolic links that leave the folder (default: skip and report them)"
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="processes that load and chunk files while the model embeds (default: all but one of the usable cores, at "
        "most 8; 1 on a 2-core machine; runs of under 32 files load in one thread); 1: one loader thread. The index is the "
        "same whatever N",
    )
    _ray_options(p, "load, chunk and embed the files to (re)index on a Ray cluster")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _ray_options(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help=f"{what}: 'auto' (the cluster this machine runs or $RAY_ADDRESS, else a local one for the run) or its head's "
        "HOST:PORT; needs pip install 'sixfold[ray]', and every node must see the files at the same path",
    )
    p.add_argument(
        "--ray-actors",
        type=positive_int,
        metavar="N",
        help="embedder copies on the cluster (default: one per GPU, else half the CPUs, at most 8)",
    )


def _add_search(sub) -> None:
    p = sub.add_parser("search", help="rank passages of the index for a query")
    p.add_argument("query")
    p.add_argument("--index", default=DEFAULT_INDEX)
    p.add_argument("-k", type=positive_int, default=10, help="number of results (default 10)")
    p.add_argument(
        "--mode",
        choices=["hybrid", "dense", "bm25"],
        help="default: hybrid, or bm25 when the embedder does not read the index's language (see `status`)",
    )
    p.add_argument("--where", help="SQL condition on metadata, e.g. \"path LIKE 'guides/%%'\" or \"ext = 'pdf'\"")
    p.add_argument(
        "--rerank", metavar="MODEL", help="rerank the top candidates with this cross-encoder (default: the index's tuned one)"
    )
    p.add_argument("--no-rerank", action="store_true", help="do not rerank, even with a tuned reranker in the index")
    p.add_argument("--rerank-depth", type=positive_int, default=50)
    p.add_argument("--model", help="must match the index's model if given")
    p.add_argument("--json", action="store_true")


def _add_embed(sub) -> None:
    p = sub.add_parser("embed", help="print embedding vectors for texts")
    p.add_argument("text", nargs="*")
    p.add_argument("--file", help="a file with one text per line")
    p.add_argument("--index", help="use this index's model")
    p.add_argument("--model", help="embedding model (default: the packaged all-MiniLM-L6-v2)")
    p.add_argument(
        "--out",
        metavar="FILE.parquet",
        help="bulk: embed each line of --file into this Parquet file (columns line, text, vector), written atomically",
    )
    p.add_argument("--batch-size", type=positive_int, default=64)
    _ray_options(p, "with --out: embed on a Ray cluster")
    p.add_argument("--json", action="store_true")


# ---- ask, classify, complete ----------------------------------------------------------------------
def _add_answer(sub) -> None:
    p = sub.add_parser("ask", help="answer a question from the index (or from given documents), citing passages")
    p.add_argument("question")
    p.add_argument("--index", default=DEFAULT_INDEX)
    p.add_argument("--docs", nargs="+", metavar="FILE", help="answer from these documents instead of an index")
    p.add_argument("--mode", default="auto", help="auto (default), extractive or generative")
    p.add_argument("--reader", metavar="MODEL", help="extractive QA model folder (default: $SIXFOLD_READER)")
    p.add_argument("--generator", metavar="MODEL", help="language model (default: $SIXFOLD_GENERATOR, else the default LM)")
    p.add_argument("-k", type=positive_int, default=5, help="passages to read (default 5)")
    p.add_argument("--where", help="SQL condition on metadata, as for search")
    p.add_argument("--rerank", metavar="MODEL", help="cross-encoder to rerank the passages (default: the index's tuned one)")
    p.add_argument("--no-rerank", action="store_true", help="do not rerank, even with a tuned reranker in the index")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("classify", help="label texts: from labeled examples, a tuned classifier, or label names (zero-shot)")
    p.add_argument("text", nargs="*")
    p.add_argument("--examples", help="CSV (text,label) or JSONL ({text, label}) of labeled examples")
    p.add_argument(
        "--labels",
        help="no examples: zero-shot from label names, comma-separated (or ';' when descriptions hold commas), each "
        "NAME or 'NAME: description'",
    )
    p.add_argument(
        "--classifier",
        metavar="classifier@N",
        help="a tuned classifier of the index (default: its active one, when it has the examples' labels); base: none",
    )
    p.add_argument("--input", help="a file with one text per line to classify")
    p.add_argument("--index", help="use this index's embedding model and tuned classifier")
    p.add_argument("--model", help="embedding model (default: the packaged all-MiniLM-L6-v2)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("complete", help="continue a prompt with the local language model")
    p.add_argument("prompt")
    p.add_argument("--max-tokens", type=positive_int, default=64)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--stop", action="append", metavar="TEXT", help="stop sequence (repeatable)")
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--model",
        help="language model, or generator@N: a tuned version in --index (default: $SIXFOLD_GENERATOR, else the "
        "index's active tuned generator, else the default LM)",
    )
    p.add_argument("--index", default=DEFAULT_INDEX, help="the index whose tuned generator is used (default: %(default)s)")
    p.add_argument("--stream", action="store_true", help="print tokens as they are generated")
    p.add_argument("--json", action="store_true")


# ---- tune ROLE: the defaults are each role's config (sixfold.tuner.<role>), written once there ----------------
class _TrainingDefaults(Protocol):
    """The fields of a role's train config (``ReaderTrainConfig``, ...) that give the shared flags their defaults."""

    epochs: float
    learning_rate: float
    batch_size: int
    max_steps: int
    seed: int


def _training(t: argparse.ArgumentParser, config: type[_TrainingDefaults], max_length: int | None) -> None:
    """The flags every trainer takes; each is named after its config field (``sixfold.cli.tune`` builds the config from them).
    ``max_length`` is the config's default for ``--max-length``; None for a trainer without one (the embedder)."""
    t.add_argument("--epochs", type=float, default=config.epochs, help="default %(default)s")
    t.add_argument("--learning-rate", type=float, default=config.learning_rate, help="default %(default)s")
    t.add_argument("--batch-size", type=positive_int, default=config.batch_size, help="default %(default)s")
    steps = f"default {config.max_steps}; -1: epochs decide" if config.max_steps > 0 else "default: epochs decide"
    t.add_argument("--max-steps", type=int, default=config.max_steps, help=f"stop after this many steps ({steps})")
    if max_length is not None:
        t.add_argument("--max-length", type=positive_int, default=max_length, help="tokens (default %(default)s)")


def _outcome(t: argparse.ArgumentParser, config: type[_TrainingDefaults], better: str, force: bool = True) -> None:
    from sixfold.tuner.training import ACTIVATE_CHOICES

    t.add_argument("--activate", default="auto", choices=ACTIVATE_CHOICES, help=f"auto (if {better}, default), yes or no")
    t.add_argument("--seed", type=int, default=config.seed, help="default %(default)s")
    if force:
        t.add_argument("--force", action="store_true", help="train even a model too big for this machine (no GPU)")
    t.add_argument("--json", action="store_true")


def _add_tune(p: argparse.ArgumentParser) -> None:
    tune = p.add_subparsers(dest="role", metavar="ROLE", parser_class=_Parser)
    tune.required = True
    _tune_reader(tune)
    _tune_embedder(tune)
    _tune_domain(tune)
    _tune_reranker(tune)
    _tune_classifier(tune)
    _tune_generator(tune)


def _tune_reader(tune) -> None:
    from sixfold.tuner.reader import EVAL_LIMIT, ReaderTrainConfig

    t = tune.add_parser("reader", help="train the extractive reader on QA pairs (SQuAD JSON or JSONL)")
    t.add_argument("--train", required=True, help="QA pairs: SQuAD JSON or JSONL {question, context, answer(s)}")
    t.add_argument("--eval", required=True, help="held-out QA pairs, same formats")
    t.add_argument("--index", default=DEFAULT_INDEX, help="the index whose model registry gets the new version")
    t.add_argument("--base", help="start from this model folder (default: the active reader, else the packaged encoder)")
    _training(t, ReaderTrainConfig, max_length=ReaderTrainConfig.max_length)
    t.add_argument("--lora", action="store_true", help="train LoRA adapters instead of all weights (PEFT)")
    t.add_argument("--eval-limit", type=positive_int, default=EVAL_LIMIT, help="eval questions scored (default %(default)s)")
    _outcome(t, ReaderTrainConfig, "better on eval")


def _tune_embedder(tune) -> None:
    from sixfold.tuner.embedder import HOLDOUT, EmbedderTrainConfig

    t = tune.add_parser("embedder", help="train the embedding model on (query, passage) pairs; re-embeds the index")
    source = t.add_mutually_exclusive_group(required=True)
    source.add_argument("--pairs", help="JSONL of {query, passage} rows")
    source.add_argument(
        "--synthesize", type=positive_int, metavar="N", help="no pairs: the local LM writes questions for N sampled chunks"
    )
    t.add_argument("--synthetic-out", help="where to write the synthesized pairs (default: IDX/models/synthetic-pairs.jsonl)")
    t.add_argument("--eval", help="held-out {query, passage} JSONL (default: hold out --holdout of the pairs by query)")
    t.add_argument("--holdout", type=float, default=HOLDOUT, help="default %(default)s")
    t.add_argument("--index", default=DEFAULT_INDEX, help="the index to tune for (and re-embed when the new model is activated)")
    _training(t, EmbedderTrainConfig, max_length=None)
    _outcome(t, EmbedderTrainConfig, "nDCG@10 is better")


def _tune_domain(tune) -> None:
    from sixfold.tuner.domain import DomainTrainConfig

    t = tune.add_parser("domain", help="domain-adaptive pre-training of the reader's encoder on raw text (masked LM)")
    t.add_argument("--corpus", required=True, help="folder of documents (any format the indexer reads)")
    t.add_argument("--index", default=DEFAULT_INDEX, help="the index whose model registry gets the new version")
    t.add_argument("--base", help="encoder to start from (default: the packaged all-MiniLM-L6-v2)")
    _training(t, DomainTrainConfig, max_length=DomainTrainConfig.max_length)
    _outcome(t, DomainTrainConfig, "perplexity is lower")


def _tune_reranker(tune) -> None:
    from sixfold.tuner.data import RERANK_EVAL_LIMIT, RERANK_HOLDOUT
    from sixfold.tuner.reranker import RerankerTrainConfig

    t = tune.add_parser("reranker", help="train a cross-encoder reranker on the index's own candidates (hard negatives)")
    source = t.add_mutually_exclusive_group(required=True)
    source.add_argument("--pairs", help="JSONL {query, positive} or CSV/TSV with columns query,positive")
    source.add_argument("--beir", metavar="FOLDER", help="a BEIR folder: queries and qrels of --split, corpus indexed in --index")
    t.add_argument("--split", default="train", help="BEIR qrels split to train on (default train)")
    t.add_argument(
        "--eval-split", help=f"BEIR split for before/after (default: {RERANK_HOLDOUT:.0%}% of the training queries, held out)"
    )
    t.add_argument("--index", default=DEFAULT_INDEX, help="the index (its hybrid hits give the negatives; gets the version)")
    t.add_argument("--base", help="start from this model folder (default: the packaged MiniLM encoder with a new head)")
    _training(t, RerankerTrainConfig, max_length=RerankerTrainConfig.max_length)
    t.add_argument(
        "--negatives",
        type=positive_int,
        default=RerankerTrainConfig.negatives,
        help="mined hard negatives per query (default %(default)s)",
    )
    t.add_argument(
        "--eval-limit",
        type=positive_int,
        default=RERANK_EVAL_LIMIT,
        help="at most this many before/after queries (default %(default)s)",
    )
    _outcome(t, RerankerTrainConfig, "better on eval", force=False)


def _tune_classifier(tune) -> None:
    from sixfold.tuner.classifier import HOLDOUT, ClassifierTrainConfig

    t = tune.add_parser(
        "classifier", help="train a few-shot classifier on labeled examples (SetFit-style: tuned embedder + head)"
    )
    t.add_argument("--examples", required=True, help="labeled examples: CSV text,label or JSONL {text, label}")
    t.add_argument("--eval", help=f"held-out labeled examples, same formats (default: {HOLDOUT:.0%} of each label held out)")
    t.add_argument("--index", default=DEFAULT_INDEX, help="the index whose model registry gets the new version")
    t.add_argument(
        "--base",
        help="sentence embedder to start from (default: the packaged all-MiniLM-L6-v2; all-mpnet-base-v2 on a GPU once pulled)",
    )
    _training(t, ClassifierTrainConfig, max_length=ClassifierTrainConfig.max_length)
    _classifier_objective(t)
    _outcome(t, ClassifierTrainConfig, "more accurate on held-out examples", force=False)


def _tune_generator(tune) -> None:
    from sixfold.tuner.generator import EVAL_LIMIT, HOLDOUT, GeneratorTrainConfig

    t = tune.add_parser("generator", help="train the language model with LoRA (completions, chats, QA pairs, domain text)")
    source = t.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--train",
        help="JSONL of {prompt, completion} or chat {messages} rows (OpenAI fine-tune files), or QA pairs with "
        "their passages (JSONL {question, context, answer} or SQuAD JSON)",
    )
    source.add_argument("--corpus", metavar="FOLDER", help="raw domain text (continued pre-training on its chunks)")
    t.add_argument("--eval", help=f"held-out rows, same format (default: {HOLDOUT:.0%} of the rows held out)")
    t.add_argument("--index", default=DEFAULT_INDEX, help="the index whose model registry gets the new version")
    t.add_argument("--base", help="language model to tune (default: $SIXFOLD_GENERATOR, else the default LM)")
    _training(t, GeneratorTrainConfig, max_length=GeneratorTrainConfig.max_length)
    t.add_argument("--lora-r", type=positive_int, default=GeneratorTrainConfig.lora_r, help="LoRA rank (default %(default)s)")
    t.add_argument("--eval-limit", type=positive_int, default=EVAL_LIMIT, help="held-out rows scored (default %(default)s)")
    _outcome(t, GeneratorTrainConfig, "better on held-out rows")


def _classifier_objective(t: argparse.ArgumentParser) -> None:
    from sixfold.tuner.classifier import ClassifierTrainConfig

    t.add_argument(
        "--objective",
        choices=("triplets", "pairs"),
        default=ClassifierTrainConfig.objective,
        help="triplets (default): every in-batch triplet of label groups, with a margin; pairs: SetFit's pairs with "
        "cosine targets 1 and 0",
    )
    t.add_argument(
        "--pairs-per-example",
        type=positive_int,
        default=ClassifierTrainConfig.pairs_per_example,
        help="pairs: rounds in which each example gets one same-label and one other-label partner (default %(default)s)",
    )


# ---- models, eval, serve --------------------------------------------------------------------------
def _add_models(sub) -> None:
    p = sub.add_parser("models", help="the model catalogue (pull one) and an index's tuned versions (switch or roll back)")
    p.add_argument(
        "action",
        nargs="?",
        default="list",
        help="list (default), pull NAME (assemble a catalogue model), use ROLE@N|ROLE@base, rollback ROLE",
    )
    p.add_argument("target", nargs="?")
    p.add_argument("--index", default=DEFAULT_INDEX)
    p.add_argument(
        "--from",
        dest="from_dir",
        metavar="DIR",
        help="pull: take the part wheels from this folder (air-gapped machines) instead of pip download",
    )
    p.add_argument("--json", action="store_true")


def _add_eval(p: argparse.ArgumentParser) -> None:
    kinds = p.add_subparsers(dest="kind", metavar="KIND", parser_class=_Parser)
    kinds.required = True
    _eval_retrieval(kinds)
    _eval_qa(kinds)
    _eval_classify(kinds)


def _eval_retrieval(kinds) -> None:
    e = kinds.add_parser("retrieval", help="nDCG@10, Recall@10/100, MRR@10 on a BEIR, SMART or XQuAD-R test collection")
    e.add_argument(
        "--dataset",
        "--beir",
        dest="dataset",
        required=True,
        help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), SMART folder (*.ALL, *.QRY, *.REL: "
        "Cranfield, CISI, MEDLINE) or XQuAD-R file (es.json); the format is detected",
    )
    e.add_argument(
        "--mode",
        action="append",
        help="bm25, dense, hybrid, hybrid+rerank, default (what search does unasked; repeatable; default: the first "
        "three, and default with --queries-from)",
    )
    e.add_argument(
        "--queries-from",
        metavar="FILE",
        help="XQuAD-R: the questions of this parallel file (another language) over the --dataset file's sentences; the "
        "files must line up (same articles, paragraphs and question ids); the report names both languages and the "
        "embedder and search mode the eval index got",
    )
    e.add_argument("--model", help="embedding model of the eval index (default: what the collection's folder picks)")
    e.add_argument("--split", default="test", help="BEIR qrels split (default test)")
    e.add_argument("--rerank", metavar="MODEL", help="cross-encoder for hybrid+rerank (default: the eval index's tuned one)")
    e.add_argument("--rerank-depth", type=positive_int, help="fused candidates the cross-encoder reads (default 50)")
    e.add_argument("--index", help="where to keep the eval index (default: ~/.cache/sixfold/eval/<set>); reused incrementally")
    e.add_argument("--limit", type=positive_int, help="only the first N queries")
    e.add_argument("--out", help=REPORT_HELP)
    e.add_argument("--json", action="store_true")


def _eval_qa(kinds) -> None:
    e = kinds.add_parser(
        "qa",
        help="SQuAD EM/F1 with the gold paragraph or open-book (--squad), or a folder QA set (--questions, --folder)",
    )
    e.add_argument("--squad", metavar="FILE", help="SQuAD v1.1 JSON file")
    e.add_argument(
        "--questions",
        metavar="FILE",
        help="folder QA set, JSONL ({question, answers | answer_regex, source}) or TSV (question, answers|..., source); "
        "rows without answers are unanswerable",
    )
    e.add_argument("--folder", metavar="DIR", help="the folder the --questions are about (indexed incrementally)")
    e.add_argument("--open", action="store_true", help="SQuAD: index all paragraphs and answer from retrieved passages")
    e.add_argument(
        "--mode",
        choices=["auto", "extractive", "generative"],
        help="SQuAD: extractive (default) or generative (the language model reads the gold paragraph, or with --open "
        "the retrieved passages); --questions: as for ask (default auto)",
    )
    e.add_argument("--reader", metavar="MODEL", help="extractive QA model folder (default: $SIXFOLD_READER)")
    e.add_argument("--generator", metavar="MODEL", help="--questions: generative model (default: as for ask)")
    e.add_argument(
        "--index",
        help="where to keep the open-book or folder index (default: ~/.cache/sixfold/eval/<file or folder>); "
        "--questions without --folder: an existing index of that folder",
    )
    e.add_argument("-k", type=positive_int, default=5, help="passages to read (default 5)")
    e.add_argument("--limit", type=positive_int, help="score N questions (SQuAD: a seeded sample; --questions: the first N)")
    e.add_argument("--out", help=REPORT_HELP)
    e.add_argument("--json", action="store_true")


def _eval_classify(kinds) -> None:
    from sixfold.tuner.classifier import ClassifierTrainConfig

    e = kinds.add_parser("classify", help="accuracy and macro-F1 of nearest-example (or --tune: tuned) classification")
    e.add_argument("--train", required=True, help="labeled examples (CSV text,label or JSONL)")
    e.add_argument("--test", required=True, help="labeled test items, same formats")
    e.add_argument("--shots", type=positive_int, help="examples per label (default: all)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--limit", type=positive_int)
    e.add_argument(
        "--tune",
        action="store_true",
        help="also train a SetFit-style classifier on the sampled examples (as tune classifier does) and score it",
    )
    e.add_argument(
        "--max-steps", type=int, default=ClassifierTrainConfig.max_steps, help="with --tune: training steps (default %(default)s)"
    )
    _classifier_objective(e)
    e.add_argument("--out", help=REPORT_HELP)
    e.add_argument("--json", action="store_true")


def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="serve the index over HTTP: OpenAI-compatible API and a search page")
    p.add_argument("--index", default=DEFAULT_INDEX)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    p.add_argument("--port", type=positive_int, default=8000)
    p.add_argument(
        "--api-key",
        default=os.environ.get("SIXFOLD_API_KEY"),
        help="require 'Authorization: Bearer KEY' on /v1 (default: $SIXFOLD_API_KEY; none: open)",
    )
    p.add_argument("--max-body-mb", type=float, default=1.0, help="largest JSON request body in MiB (default 1)")
    p.add_argument("--embedders", type=positive_int, default=2, help="copies of the embedder that embed queries in parallel")
    limits = p.add_argument_group("per-request limits (default: $SIXFOLD_<NAME> like $SIXFOLD_MAX_PROMPTS, else the value shown)")
    limits.add_argument("--max-prompts", type=positive_int, help="prompts per /v1/completions request (16)")
    limits.add_argument("--max-completion-tokens", type=positive_int, help="prompts x n x max_tokens per request (2048)")
    limits.add_argument("--max-prompt-chars", type=positive_int, help="characters in one prompt (16000)")
    limits.add_argument("--max-inputs", type=positive_int, help="texts per /v1/embeddings request (2048)")
    limits.add_argument("--max-documents", type=positive_int, help="inline documents per /v1/search or /v1/answers call (200)")
    limits.add_argument("--max-examples", type=positive_int, help="labeled examples per /v1/classifications request (1000)")
    limits.add_argument("--request-timeout", type=float, help="seconds a request may take, waits included; past it: 504 (120)")
