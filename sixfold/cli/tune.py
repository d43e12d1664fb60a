"""``tune ROLE``: train a new version of a role's model on the user's data, score it before and after, and say
whether it became active. The tuners (``sixfold.tuner.<role>``) do the work; this module wires flags to them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sixfold.cli import render
from sixfold.core.errors import SixfoldError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance
    from rich.console import Console

    from sixfold.tuner.versions import TuneOutcome

Config = TypeVar("Config", bound="DataclassInstance")
Result = TypeVar("Result", bound="TuneOutcome")


def cmd_tune(args: argparse.Namespace) -> int:
    if args.role == "reranker":  # with --beir it indexes the corpus first, so the index need not exist yet
        return _tune_reranker(args)
    from sixfold.indexer.store import IndexStore

    IndexStore(args.index).read_pointer()  # the registry lives in an existing index
    roles = {
        "reader": _tune_reader,
        "embedder": _tune_embedder,
        "domain": _tune_domain,
        "classifier": _tune_classifier,
        "generator": _tune_generator,
    }
    return roles[args.role](args)


# ---- the shape every tune run shares ----------------------------------------------------------------
def _config(cls: type[Config], args: argparse.Namespace) -> Config:
    """The role's training config from the flags named after its fields (``parser._training``)."""
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})


def _train(args: argparse.Namespace, run: Callable[[list], Result]) -> Result:
    """``run(callbacks)`` under a training progress bar (none with --json)."""
    from sixfold.progress import TrainProgress

    with TrainProgress(render.console(stderr=True), quiet=args.json) as progress:
        return run([progress.callback()])


def _say(args: argparse.Namespace) -> Callable[[str], None]:
    """Where a tuner's progress lines go: stderr, or nowhere with --json."""
    console = render.console(stderr=True)
    return (lambda message: None) if args.json else (lambda message: console.print(message))


def _finish(
    args: argparse.Namespace, result: TuneOutcome, show: Callable[[Console], None], extra: dict[str, Any] | None = None
) -> int:
    """--json: the result's report; else ``show`` prints it on stdout."""
    if args.json:
        render.emit_json(result.report() | (extra or {}))
    else:
        show(render.console())
    return 0


# ---- the roles --------------------------------------------------------------------------------------
def _tune_reader(args: argparse.Namespace) -> int:
    from sixfold.tuner.reader import ReaderTrainConfig, tune_reader

    config = _config(ReaderTrainConfig, args)
    result = _train(
        args,
        lambda callbacks: tune_reader(
            args.index,
            args.train,
            args.eval,
            base=args.base,
            config=config,
            activate=args.activate,
            eval_limit=args.eval_limit,
            callbacks=callbacks,
            force=args.force,
        ),
    )

    def show(out: Console) -> None:
        if result.overlap:
            render.note(out, f"{result.overlap} eval questions also appear in the training file")
        title = f"reader@{result.version}: {result.train_examples} train, {result.eval_examples} eval questions"
        out.print(render.score_table(title, result.before, result.after, [("EM", ".1f"), ("F1", ".1f")]))
        out.print(render.tune_verdict(result))

    return _finish(args, result, show)


def _embedder_pairs(args: argparse.Namespace) -> tuple[list, Path | None]:
    """The training pairs: read from --pairs, or written by the local LM (--synthesize N) to a file the user can read."""
    from sixfold.core.models import models_dir
    from sixfold.indexer.embedding import index_embedder_model
    from sixfold.progress import CountProgress
    from sixfold.tuner.data import load_pairs
    from sixfold.tuner.synthesize import synthesize_pairs

    if args.eval and not Path(args.eval).is_file():
        raise SixfoldError(f"eval pairs file {args.eval} does not exist")
    index_embedder_model(args.index)  # a broken model folder is reported before minutes of generation
    if not args.synthesize:
        return load_pairs(args.pairs), None
    written = Path(args.synthetic_out) if args.synthetic_out else models_dir(args.index) / "synthetic-pairs.jsonl"
    console = render.console(stderr=True)
    with CountProgress(console, "writing questions", "passages", quiet=args.json) as progress:
        pairs = synthesize_pairs(args.index, args.synthesize, written, seed=args.seed, on_progress=progress.update)
    if not args.json:
        console.print(f"{len(pairs)} synthetic pairs written to {written} (read them: they are machine-written)")
    return pairs, written


def _tune_embedder(args: argparse.Namespace) -> int:
    from sixfold.progress import CountProgress
    from sixfold.tuner.embedder import EmbedderTrainConfig, tune_embedder

    pairs, synthetic_out = _embedder_pairs(args)
    config = _config(EmbedderTrainConfig, args)
    with CountProgress(render.console(stderr=True), "re-embedding", "chunks", args.json) as bar:
        result = _train(
            args,
            lambda callbacks: tune_embedder(
                args.index,
                pairs,
                args.eval,
                holdout=args.holdout,
                config=config,
                activate=args.activate,
                force=args.force,
                callbacks=callbacks,
                on_reembed=bar.update,
            ),
        )

    def show(out: Console) -> None:
        if result.overlap["queries"]:
            render.note(
                out,
                f"{result.overlap['queries']} eval pairs share their query with the training pairs "
                f"({result.overlap['pairs']} are the same pair)",
            )
        out.print(
            f"embedder@{result.version}: trained on {result.train_pairs} pairs; eval: {result.eval_queries} queries over "
            f"{result.pool} passages (their own and the index's), from {result.eval_source}"
        )
        if result.synthetic_eval:
            out.print("[bold yellow]the eval pairs are SYNTHETIC (machine-written questions): real queries will score lower[/]")
        title = "retrieval on the eval pairs" + (" (synthetic)" if result.synthetic_eval else "")
        out.print(render.score_table(title, result.before, result.after, [("nDCG@10", ".3f"), ("Recall@10", ".3f")]))
        active = f"now active; the index was re-embedded with it ({result.generation or 'unchanged'})"
        inactive = f"saved, not active (sixfold models use embedder@{result.version} re-embeds the index)"
        out.print(render.tune_verdict(result, active=active, inactive=inactive))

    return _finish(args, result, show, {"synthetic_pairs_file": str(synthetic_out or "")})


def _tune_domain(args: argparse.Namespace) -> int:
    from sixfold.tuner.domain import DomainTrainConfig, tune_domain

    config = _config(DomainTrainConfig, args)
    result = _train(
        args,
        lambda callbacks: tune_domain(
            args.corpus, args.index, base=args.base, config=config, activate=args.activate, force=args.force, callbacks=callbacks
        ),
    )

    def show(out: Console) -> None:
        for path, reason in result.skipped:
            out.print(f"[yellow]skipped[/] {path}: {reason}")
        out.print(
            f"domain@{result.version}: masked-LM on {result.documents} documents, {result.train_chunks} train / "
            f"{result.eval_chunks} held-out chunks; base = the original encoder, frozen, with the new masked-LM head "
            "fitted for the same steps (the packaged encoder has no masked-LM head)"
        )
        metrics = [("loss", ".3f"), ("perplexity", ".2f")]
        out.print(render.score_table("masked-LM on held-out text", result.before, result.after, metrics))
        out.print(render.tune_verdict(result, "better (lower perplexity) on held-out text", "NOT better on held-out text"))
        out.print(f"Next: sixfold tune reader --base domain@{result.version} --train ... --eval ... --index {args.index}")

    return _finish(args, result, show)


def _tune_reranker(args: argparse.Namespace) -> int:
    from sixfold.eval.retrieval import reranker_training_queries
    from sixfold.tuner.reranker import RerankerTrainConfig, tune_reranker

    say = _say(args)
    train, dev = reranker_training_queries(
        args.index,
        beir=args.beir,
        pairs=args.pairs,
        split=args.split,
        eval_split=args.eval_split,
        seed=args.seed,
        eval_limit=args.eval_limit,
        say=say,
    )
    config = _config(RerankerTrainConfig, args)
    result = _train(
        args,
        lambda callbacks: tune_reranker(
            args.index, train, dev, base=args.base, config=config, activate=args.activate, callbacks=callbacks, say=say
        ),
    )

    def show(out: Console) -> None:
        for message in result.notes:
            render.note(out, message)
        title = (
            f"reranker@{result.version}: {result.train_queries} train queries ({result.train_pairs} pairs), "
            f"{result.eval_queries} held-out queries"
        )
        metrics = [("nDCG@10", ".4f"), ("MRR@10", ".4f")]
        out.print(render.score_table(title, result.before, result.after, metrics, labels=("hybrid", "hybrid+rerank")))
        verdict = ("better on held-out queries", "NOT better on held-out queries")
        active = "now active (search, ask and eval use it)"
        out.print(render.tune_verdict(result, *verdict, active=active, tail=f" ({result.seconds:.0f} s)"))

    return _finish(args, result, show)


def _tune_classifier(args: argparse.Namespace) -> int:
    from sixfold.reader.classify import load_examples
    from sixfold.tuner.classifier import ClassifierTrainConfig, tune_classifier

    examples = load_examples(args.examples)  # bad files fail before a model loads
    held = load_examples(args.eval) if args.eval else None
    say = _say(args)
    config = _config(ClassifierTrainConfig, args)
    result = _train(
        args,
        lambda callbacks: tune_classifier(
            args.index, examples, held, base=args.base, config=config, activate=args.activate, callbacks=callbacks, say=say
        ),
    )

    def show(out: Console) -> None:
        for message in result.notes:
            render.note(out, message)
        title = (
            f"classifier@{result.version}: {len(result.labels)} labels, {result.train_examples} examples "
            f"({result.train_rows} training rows); scored on {result.eval_source}"
        )
        names = ("nearest examples", "tuned")
        out.print(render.score_table(title, result.before, result.after, [("accuracy", ".3f")], labels=names))
        active = "now active (classify and /v1/classifications use it for these labels)"
        verdict = ("more accurate on held-out examples", "NOT more accurate on held-out examples")
        out.print(render.tune_verdict(result, *verdict, active=active, tail=f" ({result.seconds:.0f} s)"))

    return _finish(args, result, show)


def _tune_generator(args: argparse.Namespace) -> int:
    from sixfold.engine import Engine
    from sixfold.tuner.generator import GeneratorTrainConfig
    from sixfold.tuner.generator_data import load_generator_file

    rows = load_generator_file(args.train) if args.train else None  # bad files fail before a model loads
    held = load_generator_file(args.eval) if args.eval else None
    say = _say(args)
    config = _config(GeneratorTrainConfig, args)
    engine = Engine.open(args.index)
    result = _train(
        args,
        lambda callbacks: engine.tune_generator(
            rows,
            held,
            corpus=args.corpus,
            base=args.base,
            config=config,
            activate=args.activate,
            eval_limit=args.eval_limit,
            force=args.force,
            callbacks=callbacks,
            say=say,
        ),
    )

    def show(out: Console) -> None:
        for message in result.notes:
            render.note(out, message)
        title = (
            f"generator@{result.version}: LoRA on {result.base}, {result.train_rows} {result.data} rows; scored on "
            f"{result.eval_source} ({result.eval_rows} rows, replies by {result.runtime})"
        )
        metrics = [(k, ".3f" if k == "accuracy" else ".2f") for k in ("perplexity", "EM", "F1", "accuracy") if k in result.after]
        out.print(render.score_table(title, result.before, result.after, metrics, labels=(result.base, "tuned")))
        if result.runtimes_agree:
            out.print(f"llama.cpp and transformers gave the same greedy reply to {result.runtimes_agree} eval prompts")
        active = "now active (complete, chat, ask and the API use it)"
        verdict = ("better on held-out rows", "NOT better on held-out rows")
        out.print(render.tune_verdict(result, *verdict, active=active, tail=f" ({result.seconds:.0f} s)"))

    return _finish(args, result, show)
