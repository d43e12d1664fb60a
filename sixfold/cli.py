"""The ``sixfold`` command line: thin argument parsing and printing over ``Engine``.

Every user-fixable failure is one ``error: ...`` line on stderr and a non-zero exit, never a traceback
(set SIXFOLD_DEBUG=1 to see one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sixfold.core import config

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

DEFAULT_INDEX = config.default_index()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        sys.stderr.write(f"error: {message} (see: {self.prog} --help)\n")
        raise SystemExit(2)


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{value} is too small (at least {least})")
    return value


def _positive_int(text: str) -> int:
    """1, 2, 3, ...: counts, sizes, k."""
    return _whole_number(text, 1)


def _non_negative_int(text: str) -> int:
    """0, 1, 2, ...: an overlap may be none."""
    return _whole_number(text, 0)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sixfold", description="Local retrieval-augmented search and QA over your documents.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("index", help="index a folder (incremental: only new, changed or deleted files are touched)")
    p.add_argument("folder")
    p.add_argument("--index", default=DEFAULT_INDEX, help="index folder (default: %(default)s)")
    p.add_argument("--model", help="embedding model: packaged alias, local folder or hub id (new index only)")
    p.add_argument("--index-type", choices=["auto", "flat", "ivf", "hnsw"], help="vector index (new index only; default auto)")
    p.add_argument("--chunk-tokens", type=_positive_int, help="chunk size in model tokens (new index only; default 200)")
    p.add_argument("--chunk-overlap", type=_non_negative_int, help="overlap in tokens (new index only; default 40)")
    p.add_argument("--language", help="language of the BM25 stemmer, e.g. en, es, none (new index only; default en)")
    p.add_argument("--batch-size", type=_positive_int, default=64)
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
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("search", help="rank passages of the index for a query")
    p.add_argument("query")
    p.add_argument("--index", default=DEFAULT_INDEX)
    p.add_argument("-k", type=_positive_int, default=10, help="number of results (default 10)")
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
    p.add_argument("--rerank-depth", type=_positive_int, default=50)
    p.add_argument("--model", help="must match the index's model if given")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("embed", help="print embedding vectors for texts")
    p.add_argument("text", nargs="*")
    p.add_argument("--file", help="a file with one text per line")
    p.add_argument("--index", help="use this index's model")
    p.add_argument("--model", help="embedding model (default: the packaged all-MiniLM-L6-v2)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("ask", help="answer a question from the index (or from given documents), citing passages")
    p.add_argument("question")
    p.add_argument("--index", default=DEFAULT_INDEX)
    p.add_argument("--docs", nargs="+", metavar="FILE", help="answer from these documents instead of an index")
    p.add_argument("--mode", default="auto", help="auto (default), extractive or generative")
    p.add_argument("--reader", metavar="MODEL", help="extractive QA model folder (default: $SIXFOLD_READER)")
    p.add_argument("--generator", metavar="MODEL", help="generative model (default: the packaged SmolLM2-135M-Instruct)")
    p.add_argument("-k", type=_positive_int, default=5, help="passages to read (default 5)")
    p.add_argument("--where", help="SQL condition on metadata, as for search")
    p.add_argument("--rerank", metavar="MODEL", help="cross-encoder to rerank the passages (default: the index's tuned one)")
    p.add_argument("--no-rerank", action="store_true", help="do not rerank, even with a tuned reranker in the index")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("classify", help="label texts from labeled examples (nearest examples decide)")
    p.add_argument("text", nargs="*")
    p.add_argument("--examples", required=True, help="CSV (text,label) or JSONL ({text, label}) of labeled examples")
    p.add_argument("--input", help="a file with one text per line to classify")
    p.add_argument("--index", help="use this index's embedding model")
    p.add_argument("--model", help="embedding model (default: the packaged all-MiniLM-L6-v2)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("complete", help="continue a prompt with the local language model")
    p.add_argument("prompt")
    p.add_argument("--max-tokens", type=_positive_int, default=64)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--stop", action="append", metavar="TEXT", help="stop sequence (repeatable)")
    p.add_argument("--seed", type=int)
    p.add_argument("--model", help="language model (default: the packaged SmolLM2-135M-Instruct)")
    p.add_argument("--stream", action="store_true", help="print tokens as they are generated")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("tune", help="fine-tune a model on your domain and measure it before and after")
    _add_tune_parsers(p)

    p = sub.add_parser("models", help="tuned model versions in an index; switch or roll back")
    p.add_argument("action", nargs="?", default="list", help="list (default), use ROLE@N|ROLE@base, rollback ROLE")
    p.add_argument("target", nargs="?")
    p.add_argument("--index", default=DEFAULT_INDEX)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("eval", help="score sixfold on public benchmarks (BEIR, SQuAD, labeled sets)")
    ev = p.add_subparsers(dest="kind", metavar="KIND", parser_class=_Parser)
    ev.required = True
    e = ev.add_parser("retrieval", help="nDCG@10, Recall@10/100, MRR@10 on a BEIR, SMART or XQuAD-R test collection")
    e.add_argument(
        "--dataset",
        "--beir",
        dest="dataset",
        required=True,
        help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), SMART folder (*.ALL, *.QRY, *.REL: "
        "Cranfield, CISI, MEDLINE) or XQuAD-R file (es.json); the format is detected",
    )
    e.add_argument("--mode", action="append", help="bm25, dense, hybrid, hybrid+rerank (repeatable; default: the first three)")
    e.add_argument("--split", default="test", help="BEIR qrels split (default test)")
    e.add_argument("--rerank", metavar="MODEL", help="cross-encoder for hybrid+rerank (default: the eval index's tuned one)")
    e.add_argument("--rerank-depth", type=_positive_int, help="fused candidates the cross-encoder reads (default 50)")
    e.add_argument("--index", help="where to keep the eval index (default: ~/.cache/sixfold/eval/<set>); reused incrementally")
    e.add_argument("--limit", type=_positive_int, help="only the first N queries")
    e.add_argument("--out", help="write the JSON report here (default: ~/.cache/sixfold/eval/reports/<kind>-<set>-<time>.json)")
    e.add_argument("--json", action="store_true")
    e = ev.add_parser("qa", help="SQuAD EM/F1 with the gold paragraph, or open-book (--open)")
    e.add_argument("--squad", required=True)
    e.add_argument("--open", action="store_true", help="index all paragraphs and answer from retrieved passages")
    e.add_argument("--mode", default="extractive", choices=["extractive", "generative"])
    e.add_argument("--reader", metavar="MODEL", help="extractive QA model folder (default: $SIXFOLD_READER)")
    e.add_argument("--index", help="where to keep the open-book index (default: ~/.cache/sixfold/eval/<file>)")
    e.add_argument("-k", type=_positive_int, default=5)
    e.add_argument("--limit", type=_positive_int)
    e.add_argument("--out", help="write the JSON report here (default: ~/.cache/sixfold/eval/reports/<kind>-<set>-<time>.json)")
    e.add_argument("--json", action="store_true")
    e = ev.add_parser("classify", help="accuracy and macro-F1 of nearest-example classification")
    e.add_argument("--train", required=True, help="labeled examples (CSV text,label or JSONL)")
    e.add_argument("--test", required=True, help="labeled test items, same formats")
    e.add_argument("--shots", type=_positive_int, help="examples per label (default: all)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--limit", type=_positive_int)
    e.add_argument("--out", help="write the JSON report here (default: ~/.cache/sixfold/eval/reports/<kind>-<set>-<time>.json)")
    e.add_argument("--json", action="store_true")

    p = sub.add_parser("serve", help="serve the index over HTTP: OpenAI-compatible API and a search page")
    p.add_argument("--index", default=DEFAULT_INDEX)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    p.add_argument("--port", type=_positive_int, default=8000)
    p.add_argument(
        "--api-key",
        default=os.environ.get("SIXFOLD_API_KEY"),
        help="require 'Authorization: Bearer KEY' on /v1 (default: $SIXFOLD_API_KEY; none: open)",
    )
    p.add_argument("--max-body-mb", type=float, default=1.0, help="largest JSON request body in MiB (default 1)")
    p.add_argument("--embedders", type=_positive_int, default=2, help="copies of the embedder that embed queries in parallel")
    limits = p.add_argument_group("per-request limits (default: $SIXFOLD_<NAME> like $SIXFOLD_MAX_PROMPTS, else the value shown)")
    limits.add_argument("--max-prompts", type=_positive_int, help="prompts per /v1/completions request (16)")
    limits.add_argument("--max-completion-tokens", type=_positive_int, help="prompts x n x max_tokens per request (2048)")
    limits.add_argument("--max-prompt-chars", type=_positive_int, help="characters in one prompt (16000)")
    limits.add_argument("--max-inputs", type=_positive_int, help="texts per /v1/embeddings request (2048)")
    limits.add_argument("--max-documents", type=_positive_int, help="inline documents per /v1/search or /v1/answers call (200)")
    limits.add_argument("--max-examples", type=_positive_int, help="labeled examples per /v1/classifications request (1000)")
    limits.add_argument("--request-timeout", type=float, help="seconds a request may take, waits included; past it: 504 (120)")

    p = sub.add_parser("status", help="what an index holds")
    p.add_argument("--index", default=DEFAULT_INDEX)
    p.add_argument("--json", action="store_true")
    return parser


# ---- commands ------------------------------------------------------------------------------------
def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "140"))
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def _emit_json(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def cmd_index(args: argparse.Namespace) -> int:
    from sixfold.engine import Engine
    from sixfold.progress import IndexProgress, one_line

    engine = Engine.open(args.index, model=args.model)
    if engine.store.exists() and any(
        v is not None for v in (args.index_type, args.chunk_tokens, args.chunk_overlap, args.language)
    ):
        _console(stderr=True).print(
            "[yellow]note:[/] the index exists; --index-type/--chunk-*/--language apply to new indexes only"
        )
    with IndexProgress(_console(stderr=True), quiet=args.json) as progress:
        report = engine.index(
            args.folder,
            progress,
            index_type=args.index_type,
            chunk_tokens=args.chunk_tokens,
            overlap_tokens=args.chunk_overlap,
            language=args.language,
            batch_size=args.batch_size,
            max_file_mb=args.max_file_mb,
            follow_links=args.follow_links,
        )
    if args.json:
        _emit_json(report.__dict__ | {"index": str(engine.store.root)})
        return 0
    console = _console()
    unsupported = sum(report.unsupported.values())
    if report.touched == 0:
        console.print(f"nothing changed: {report.unchanged} files up to date in {one_line(engine.store.root)}")
    else:
        rate = report.chunks_added / report.seconds if report.seconds else 0.0
        console.print(
            f"indexed {one_line(report.folder)} into {one_line(engine.store.root)}: {report.added} added, "
            f"{report.updated} updated, {report.removed} removed, {report.renamed} renamed, {report.unchanged} unchanged; "
            f"{report.chunks_added} chunks added, {report.chunks_removed} removed in {report.seconds:.1f} s ({rate:.0f} chunks/s)"
        )
    for repair in report.repaired:
        console.print(f"repaired: {repair}")
    if report.skipped:
        console.print(f"{len(report.skipped)} files skipped (see warnings above)")
    if unsupported:
        kinds = ", ".join(f"{one_line(ext)} ×{n}" for ext, n in sorted(report.unsupported.items(), key=lambda kv: -kv[1]))
        console.print(f"{unsupported} files of unsupported types ignored ({kinds})")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from rich.table import Table
    from rich.text import Text

    from sixfold.engine import Engine

    engine = Engine.open(args.index, model=args.model)
    rerank = None if args.no_rerank else (args.rerank or "auto")
    args.mode = args.mode or engine.default_mode()
    hits = engine.search(args.query, args.k, mode=args.mode, where=args.where, rerank=rerank, rerank_depth=args.rerank_depth)
    reranked = any("rerank" in h.scores for h in hits)
    if args.json:
        _emit_json({"query": args.query, "mode": args.mode, "reranked": reranked, "hits": [h.to_dict() for h in hits]})
        return 0
    console = _console()
    if not hits:
        console.print("no results")
        return 0
    table = Table(title=f"{args.mode}{'+rerank' if reranked else ''} search: {args.query}", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("source", overflow="fold", max_width=40)
    table.add_column("location", overflow="fold", max_width=28)
    table.add_column("passage", overflow="fold", ratio=1)
    words = [w for w in args.query.split() if len(w) > 2]
    for hit in hits:
        snippet = " ".join(hit.text.split())
        snippet = Text(snippet[:240] + ("…" if len(snippet) > 240 else ""))
        snippet.highlight_words(words, style="bold yellow", case_sensitive=False)
        table.add_row(str(hit.rank), f"{hit.score:.4f}", hit.path, hit.location, snippet)
    console.print(table)
    return 0


def _texts(arguments: list[str], file: str | None, what: str = "file") -> list[str]:
    """Texts given as arguments, then one per non-empty line of ``file``."""
    texts = list(arguments)
    if file:
        path = Path(file)
        if not path.is_file():
            from sixfold.core.errors import SixfoldError

            raise SixfoldError(f"{what} {file} does not exist")
        texts += [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return texts


def cmd_embed(args: argparse.Namespace) -> int:
    from sixfold.core.errors import SixfoldError
    from sixfold.engine import Engine

    texts = _texts(args.text, args.file)
    if not texts:
        raise SixfoldError("no text to embed: give TEXT arguments or --file")
    if args.index:
        engine = Engine.open(args.index, model=args.model)
        if not engine.store.exists():
            engine.store.read_pointer()  # raises the 'no index' error
    else:
        engine = Engine(Path(os.devnull) / "no-index", model=args.model)
    vectors = engine.embed(texts)
    model = engine.embedder.name
    limit = engine.embedder.max_tokens
    counts = engine.embedder.token_counts(texts)
    for number, count in enumerate(counts):
        if count > limit:
            _console(stderr=True).print(f"[yellow]warning:[/] text {number} has {count} tokens; {model} reads the first {limit}")
    if args.json:
        _emit_json(
            {
                "model": model,
                "dimension": int(vectors.shape[1]),
                "data": [
                    {"index": i, "text": t, "tokens": n, "truncated": n > limit, "embedding": [round(float(x), 6) for x in v]}
                    for i, (t, v, n) in enumerate(zip(texts, vectors, counts))
                ],
            }
        )
        return 0
    from rich.table import Table

    table = Table(title=f"{model}: {vectors.shape[1]}-d embeddings (L2-normalised)")
    for column in ("#", "text", "first values"):
        table.add_column(column, overflow="fold")
    for i, (text, vector) in enumerate(zip(texts, vectors)):
        table.add_row(str(i), text[:60], " ".join(f"{x:+.3f}" for x in vector[:6]) + " …")
    _console().print(table)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from rich.table import Table

    from sixfold.engine import Engine

    status = Engine.open(args.index).status()

    def health() -> int:  # damage `search` works around or trips over: what it is and how to fix it
        for problem in status.health:
            sys.stderr.write(f"problem: {problem}\n")
        return 1 if status.health else 0

    if args.json:
        _emit_json(status.to_dict())
        return health()
    table = Table(title=f"sixfold index {status.path}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    size = status.size_bytes
    human = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"
    rows = [
        ("documents", status.documents),
        ("chunks", status.chunks),
        ("model", status.model),
        ("dimension", status.dimension),
        ("index type", f"{status.index_type} (now {status.vector_index})"),
        ("lexical", f"tantivy BM25, stemmer: {status.language}"),
        (
            "search mode",
            status.search_mode + ("" if status.search_mode == "hybrid" else " (the embedder does not read this language)"),
        ),
        ("chunking", f"{status.chunk_tokens} tokens, {status.overlap_tokens} overlap"),
        ("generation", status.generation),
        ("created", status.created_at),
        ("updated", status.updated_at),
        ("size on disk", human),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    _console().print(table)
    return health()


def cmd_ask(args: argparse.Namespace) -> int:
    from rich.table import Table

    from sixfold.engine import Engine

    engine = Engine.open(args.index)
    answer = engine.ask(
        args.question,
        args.k,
        mode=args.mode,
        docs=args.docs,
        reader=args.reader,
        generator=args.generator,
        where=args.where,
        rerank=None if args.no_rerank else (args.rerank or "auto"),
    )
    if args.json:
        _emit_json(answer.to_dict())
        return 0
    console = _console()
    if answer.found:
        console.print(f"[bold]{answer.answer}[/]")
        console.print(f"confidence {answer.confidence:.2f} ({answer.mode})")
        title = "cited passages"
    else:
        console.print(f"[bold]{answer.answer}[/] (evidence {answer.confidence:.2f}, {answer.mode})")
        title = "closest passages"
    for note in answer.notes:
        console.print(f"[yellow]note:[/] {note}")
    table = Table(title=title, show_lines=True)
    table.add_column("source", overflow="fold", max_width=40)
    table.add_column("location", overflow="fold", max_width=28)
    table.add_column("passage", overflow="fold", ratio=1)
    for citation in answer.citations:
        table.add_row(citation.path, citation.location, citation.snippet)
    console.print(table)
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from rich.table import Table

    from sixfold.core.errors import SixfoldError
    from sixfold.engine import Engine

    texts = _texts(args.text, args.input, "input file")
    if not texts:
        raise SixfoldError("nothing to classify: give TEXT arguments or --input FILE")
    from sixfold.reader.classify import load_examples

    examples = load_examples(args.examples)  # before loading a model: bad files fail fast
    engine = Engine.open(args.index, model=args.model) if args.index else Engine(Path(os.devnull) / "no-index", model=args.model)
    labels = engine.classify(texts, examples)
    embedder = engine.embedder
    for number, count in enumerate(embedder.token_counts(texts)):
        if count > embedder.max_tokens:
            _console(stderr=True).print(
                f"[yellow]warning:[/] text {number} has {count} tokens; the classifier reads the first {embedder.max_tokens}"
            )
    if args.json:
        _emit_json([label.to_dict() for label in labels])
        return 0
    table = Table(title=f"classification from {len(examples)} examples", show_lines=True)
    for column in ("text", "label", "score", "deciding examples (similarity)"):
        table.add_column(column, overflow="fold")
    for label in labels:
        deciding = "\n".join(f"{e.label}: {e.text[:60]} ({e.similarity:.2f})" for e in label.examples[:3])
        table.add_row(label.query[:80], label.label, f"{label.score:.2f}", deciding)
    _console().print(table)
    return 0


def cmd_complete(args: argparse.Namespace) -> int:
    from sixfold.engine import Engine

    engine = Engine(Path(os.devnull) / "no-index")
    streaming = args.stream and not args.json

    started = False

    def show(piece: str) -> None:
        nonlocal started
        if not started:  # the prompt appears only once generation has really begun
            sys.stdout.write(args.prompt)
            started = True
        sys.stdout.write(piece)
        sys.stdout.flush()

    completion = engine.complete(
        args.prompt,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        stop=args.stop,
        model=args.model,
        seed=args.seed,
        on_text=show if streaming else None,
    )
    if args.json:
        _emit_json(completion.to_dict())
    elif streaming:
        sys.stdout.write(("" if started else args.prompt) + "\n")
    else:
        sys.stdout.write(args.prompt + completion.text + "\n")
    return 0


def _score_table(title: str, before: dict, after: dict, metrics: list[tuple[str, str]]):
    from rich.table import Table

    table = Table(title=title)
    for column in ("metric", "base", "tuned", "delta"):
        table.add_column(column, justify="right" if column != "metric" else "left")
    for metric, fmt in metrics:
        b, a = before[metric], after[metric]
        table.add_row(metric, format(b, fmt), format(a, fmt), format(a - b, "+" + fmt))
    return table


def _add_tune_parsers(p: argparse.ArgumentParser) -> None:
    """``tune ROLE``: the defaults are each role's config (``sixfold.tuner.<role>``), written once there."""
    from sixfold.tuner.data import RERANK_EVAL_LIMIT, RERANK_HOLDOUT
    from sixfold.tuner.domain import DomainTrainConfig
    from sixfold.tuner.embedder import HOLDOUT, EmbedderTrainConfig
    from sixfold.tuner.reader import EVAL_LIMIT, ReaderTrainConfig
    from sixfold.tuner.reranker import RerankerTrainConfig
    from sixfold.tuner.training import ACTIVATE_CHOICES

    def training(t: argparse.ArgumentParser, config: type, max_length: bool = True) -> None:
        t.add_argument("--epochs", type=float, default=config.epochs, help="default %(default)s")
        t.add_argument("--learning-rate", type=float, default=config.learning_rate, help="default %(default)s")
        t.add_argument("--batch-size", type=_positive_int, default=config.batch_size, help="default %(default)s")
        t.add_argument(
            "--max-steps", type=int, default=config.max_steps, help="stop after this many steps (default: epochs decide)"
        )
        if max_length:
            t.add_argument("--max-length", type=_positive_int, default=config.max_length, help="tokens (default %(default)s)")

    def run(t: argparse.ArgumentParser, config: type, better: str, force: bool = True) -> None:
        t.add_argument("--activate", default="auto", choices=ACTIVATE_CHOICES, help=f"auto (if {better}, default), yes or no")
        t.add_argument("--seed", type=int, default=config.seed, help="default %(default)s")
        if force:
            t.add_argument("--force", action="store_true", help="train even a model too big for this machine (no GPU)")
        t.add_argument("--json", action="store_true")

    tune = p.add_subparsers(dest="role", metavar="ROLE", parser_class=_Parser)
    tune.required = True
    t = tune.add_parser("reader", help="train the extractive reader on QA pairs (SQuAD JSON or JSONL)")
    t.add_argument("--train", required=True, help="QA pairs: SQuAD JSON or JSONL {question, context, answer(s)}")
    t.add_argument("--eval", required=True, help="held-out QA pairs, same formats")
    t.add_argument("--index", default=DEFAULT_INDEX, help="the index whose model registry gets the new version")
    t.add_argument("--base", help="start from this model folder (default: the active reader, else the packaged encoder)")
    training(t, ReaderTrainConfig)
    t.add_argument("--lora", action="store_true", help="train LoRA adapters instead of all weights (PEFT)")
    t.add_argument("--eval-limit", type=_positive_int, default=EVAL_LIMIT, help="eval questions scored (default %(default)s)")
    run(t, ReaderTrainConfig, "better on eval")

    t = tune.add_parser("embedder", help="train the embedding model on (query, passage) pairs; re-embeds the index")
    source = t.add_mutually_exclusive_group(required=True)
    source.add_argument("--pairs", help="JSONL of {query, passage} rows")
    source.add_argument(
        "--synthesize", type=_positive_int, metavar="N", help="no pairs: the local LM writes questions for N sampled chunks"
    )
    t.add_argument("--synthetic-out", help="where to write the synthesized pairs (default: IDX/models/synthetic-pairs.jsonl)")
    t.add_argument("--eval", help="held-out {query, passage} JSONL (default: hold out --holdout of the pairs by query)")
    t.add_argument("--holdout", type=float, default=HOLDOUT, help="default %(default)s")
    t.add_argument("--index", default=DEFAULT_INDEX, help="the index to tune for (and re-embed when the new model is activated)")
    training(t, EmbedderTrainConfig, max_length=False)
    run(t, EmbedderTrainConfig, "nDCG@10 is better")

    t = tune.add_parser("domain", help="domain-adaptive pre-training of the reader's encoder on raw text (masked LM)")
    t.add_argument("--corpus", required=True, help="folder of documents (any format the indexer reads)")
    t.add_argument("--index", default=DEFAULT_INDEX, help="the index whose model registry gets the new version")
    t.add_argument("--base", help="encoder to start from (default: the packaged all-MiniLM-L6-v2)")
    training(t, DomainTrainConfig)
    run(t, DomainTrainConfig, "perplexity is lower")

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
    training(t, RerankerTrainConfig)
    t.add_argument(
        "--negatives",
        type=_positive_int,
        default=RerankerTrainConfig.negatives,
        help="mined hard negatives per query (default %(default)s)",
    )
    t.add_argument(
        "--eval-limit",
        type=_positive_int,
        default=RERANK_EVAL_LIMIT,
        help="at most this many before/after queries (default %(default)s)",
    )
    run(t, RerankerTrainConfig, "better on eval", force=False)


def cmd_tune(args: argparse.Namespace) -> int:
    from sixfold.indexer.store import IndexStore
    from sixfold.progress import TrainProgress

    if args.role == "reranker":  # with --beir it indexes the corpus first, so the index need not exist yet
        return _cmd_tune_reranker(args)
    IndexStore(args.index).read_pointer()  # the registry lives in an existing index
    if args.role == "embedder":
        return _tune_embedder(args)
    if args.role == "domain":
        return _tune_domain(args)
    from sixfold.tuner.reader import ReaderTrainConfig, tune_reader

    config = ReaderTrainConfig(
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        max_steps=args.max_steps,
        max_length=args.max_length,
        lora=args.lora,
        seed=args.seed,
    )
    console = _console(stderr=True)
    with TrainProgress(console, quiet=args.json) as progress:
        result = tune_reader(
            args.index,
            args.train,
            args.eval,
            base=args.base,
            config=config,
            activate=args.activate,
            eval_limit=args.eval_limit,
            callbacks=[progress.callback()],
            force=args.force,
        )
    if args.json:
        _emit_json(result.report())
        return 0
    out = _console()
    if result.overlap:
        out.print(f"[yellow]note:[/] {result.overlap} eval questions also appear in the training file")
    title = f"reader@{result.version}: {result.train_examples} train, {result.eval_examples} eval questions"
    out.print(_score_table(title, result.before, result.after, [("EM", ".1f"), ("F1", ".1f")]))
    verdict = "better on eval" if result.improved else "NOT better on eval"
    state = "now active" if result.activated else f"saved, not active (sixfold models use reader@{result.version})"
    out.print(f"reader@{result.version} is {verdict}; {state}. Saved in {result.path}")
    return 0


def _tune_embedder(args: argparse.Namespace) -> int:
    from sixfold.indexer.embedding import index_embedder_model
    from sixfold.progress import CountProgress, TrainProgress
    from sixfold.tuner.data import load_pairs
    from sixfold.tuner.embedder import EmbedderTrainConfig, tune_embedder
    from sixfold.tuner.synthesize import synthesize_pairs
    from sixfold.tuner.versions import Registry

    console = _console(stderr=True)
    if args.eval and not Path(args.eval).is_file():
        from sixfold.core.errors import SixfoldError

        raise SixfoldError(f"eval pairs file {args.eval} does not exist")
    synthetic_out = None
    index_embedder_model(args.index)  # a broken model folder is reported before minutes of generation
    if args.synthesize:
        synthetic_out = Path(args.synthetic_out) if args.synthetic_out else Registry(args.index).root / "synthetic-pairs.jsonl"
        with CountProgress(console, "writing questions", "passages", quiet=args.json) as progress:
            pairs = synthesize_pairs(args.index, args.synthesize, synthetic_out, seed=args.seed, on_progress=progress.update)
        if not args.json:
            console.print(f"{len(pairs)} synthetic pairs written to {synthetic_out} (read them: they are machine-written)")
    else:
        pairs = load_pairs(args.pairs)
    config = EmbedderTrainConfig(
        epochs=args.epochs, learning_rate=args.learning_rate, batch_size=args.batch_size, max_steps=args.max_steps, seed=args.seed
    )
    with TrainProgress(console, quiet=args.json) as progress, CountProgress(console, "re-embedding", "chunks", args.json) as bar:
        result = tune_embedder(
            args.index,
            pairs,
            args.eval,
            holdout=args.holdout,
            config=config,
            activate=args.activate,
            force=args.force,
            callbacks=[progress.callback()],
            on_reembed=bar.update,
        )
    if args.json:
        _emit_json(result.report() | {"synthetic_pairs_file": str(synthetic_out or "")})
        return 0
    out = _console()
    if result.overlap["queries"]:
        out.print(
            f"[yellow]note:[/] {result.overlap['queries']} eval pairs share their query with the training pairs "
            f"({result.overlap['pairs']} are the same pair)"
        )
    out.print(
        f"embedder@{result.version}: trained on {result.train_pairs} pairs; eval: {result.eval_queries} queries over "
        f"{result.pool} passages (their own and the index's), from {result.eval_source}"
    )
    if result.synthetic_eval:
        out.print("[bold yellow]the eval pairs are SYNTHETIC (machine-written questions): real queries will score lower[/]")
    title = "retrieval on the eval pairs" + (" (synthetic)" if result.synthetic_eval else "")
    out.print(_score_table(title, result.before, result.after, [("nDCG@10", ".3f"), ("Recall@10", ".3f")]))
    verdict = "better on eval" if result.improved else "NOT better on eval"
    if result.activated:
        state = f"now active; the index was re-embedded with it ({result.generation or 'unchanged'})"
    else:
        state = f"saved, not active (sixfold models use embedder@{result.version} re-embeds the index)"
    out.print(f"embedder@{result.version} is {verdict}; {state}. Saved in {result.path}")
    return 0


def _tune_domain(args: argparse.Namespace) -> int:
    from sixfold.progress import TrainProgress
    from sixfold.tuner.domain import DomainTrainConfig, tune_domain

    config = DomainTrainConfig(
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        max_steps=args.max_steps,
        max_length=args.max_length,
        seed=args.seed,
    )
    console = _console(stderr=True)
    with TrainProgress(console, quiet=args.json) as progress:
        result = tune_domain(
            args.corpus,
            args.index,
            base=args.base,
            config=config,
            activate=args.activate,
            force=args.force,
            callbacks=[progress.callback()],
        )
    if args.json:
        _emit_json(result.report())
        return 0
    out = _console()
    for path, reason in result.skipped:
        out.print(f"[yellow]skipped[/] {path}: {reason}")
    out.print(
        f"domain@{result.version}: masked-LM on {result.documents} documents, {result.train_chunks} train / "
        f"{result.eval_chunks} held-out chunks; base = the original encoder, frozen, with the new masked-LM head "
        "fitted for the same steps (the packaged encoder has no masked-LM head)"
    )
    out.print(_score_table("masked-LM on held-out text", result.before, result.after, [("loss", ".3f"), ("perplexity", ".2f")]))
    verdict = "better (lower perplexity)" if result.improved else "NOT better"
    state = "now active" if result.activated else f"saved, not active (sixfold models use domain@{result.version})"
    out.print(f"domain@{result.version} is {verdict} on held-out text; {state}. Saved in {result.path}")
    out.print(f"Next: sixfold tune reader --base domain@{result.version} --train ... --eval ... --index {args.index}")
    return 0


def _scores(scores: dict) -> str:
    numbers = {k: v for k, v in scores.items() if isinstance(v, (int, float))}
    return ", ".join(f"{k} {v:.1f}" if k in ("EM", "F1", "perplexity") else f"{k} {v:.3f}" for k, v in numbers.items())


def _activate(index: str, role: str, number: int | None) -> None:
    """Switch the active version; for the embedder this re-embeds the index (with a progress bar)."""
    from sixfold.progress import CountProgress
    from sixfold.tuner.embedder import activate_embedder
    from sixfold.tuner.versions import Registry

    if role != "embedder":
        Registry(index).use(role, number)
        return
    with CountProgress(_console(stderr=True), "re-embedding", "chunks") as bar:
        activate_embedder(index, number, bar.update)


def _cmd_tune_reranker(args: argparse.Namespace) -> int:
    from rich.table import Table

    from sixfold.evaluation import index_retrieval_set, reranker_queries
    from sixfold.progress import TrainProgress
    from sixfold.tuner.data import RERANK_HOLDOUT, load_rerank_pairs, split_queries
    from sixfold.tuner.reranker import RerankerTrainConfig, tune_reranker

    console = _console(stderr=True)
    say = (lambda m: None) if args.json else (lambda m: console.print(m))
    if args.beir:
        from sixfold.eval_data import load_beir_set

        data = load_beir_set(args.beir, args.split)
        index_retrieval_set(data, args.index, say)  # indexes the corpus if the index does not hold it yet
        train = reranker_queries(data)
        dev = reranker_queries(load_beir_set(args.beir, args.eval_split)) if args.eval_split else None
    else:
        from sixfold.indexer.store import IndexStore

        IndexStore(args.index).read_pointer()
        train, dev = load_rerank_pairs(args.pairs), None
    if dev is None:
        train, dev = split_queries(train, RERANK_HOLDOUT, args.seed, cap=args.eval_limit)
    dev = dev[: args.eval_limit]
    config = RerankerTrainConfig(
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        max_steps=args.max_steps,
        max_length=args.max_length,
        negatives=args.negatives,
        seed=args.seed,
    )
    with TrainProgress(console, quiet=args.json) as progress:
        result = tune_reranker(
            args.index,
            train,
            dev,
            base=args.base,
            config=config,
            activate=args.activate,
            callbacks=[progress.callback()],
            say=say,
        )
    if args.json:
        _emit_json(result.report())
        return 0
    out = _console()
    for note in result.notes:
        out.print(f"[yellow]note:[/] {note}")
    table = Table(
        title=f"reranker@{result.version}: {result.train_queries} train queries ({result.train_pairs} pairs), "
        f"{result.eval_queries} held-out queries"
    )
    for column in ("metric", "hybrid", "hybrid+rerank", "delta"):
        table.add_column(column, justify="right" if column != "metric" else "left")
    for metric in ("nDCG@10", "MRR@10"):
        before, after = result.before[metric], result.after[metric]
        table.add_row(metric, f"{before:.4f}", f"{after:.4f}", f"{after - before:+.4f}")
    out.print(table)
    verdict = "better on held-out queries" if result.improved else "NOT better on held-out queries"
    state = (
        "now active (search, ask and eval use it)"
        if result.activated
        else (f"saved, not active (sixfold models use reranker@{result.version})")
    )
    out.print(f"reranker@{result.version} is {verdict}; {state}. Saved in {result.path} ({result.seconds:.0f} s)")
    return 0


# What ``ROLE@base`` is, per role: ``models`` says so rather than "packaged default" (no reader or reranker ships).
BASE_MODELS = {
    "embedder": "the packaged embedder",
    "reader": "none ships: answers are generative until `sixfold tune reader` (or --reader FOLDER)",
    "reranker": "none: the hybrid order is kept",
    "domain": "the packaged encoder (all-MiniLM-L6-v2)",
}


def cmd_models(args: argparse.Namespace) -> int:
    from rich.table import Table

    from sixfold.core.errors import SixfoldError
    from sixfold.core.models import TUNED_EMBEDDER_PREFIX
    from sixfold.indexer.store import IndexStore
    from sixfold.tuner.versions import ROLES, Registry, parse_version

    pointer = IndexStore(args.index).read_pointer()
    registry = Registry(args.index)
    if args.action == "use":
        if not args.target:
            raise SixfoldError("models use needs ROLE@N, e.g. reader@2 (or reader@base)")
        role, number = parse_version(args.target)
        if number is not None:
            registry.version_dir(role, number)  # refuses an unknown version before any work
        _activate(args.index, role, number)
        _console().print(f"{role}: now using {'the base model' if number is None else f'{role}@{number}'}")
        return 0
    if args.action == "rollback":
        role, _ = parse_version(args.target or "reader")
        target = registry.rollback(role, switch=lambda role, number: _activate(args.index, role, number))
        _console().print(f"{role}: rolled back to {'the base model' if target is None else f'{role}@{target}'}")
        return 0
    if args.action != "list":
        raise SixfoldError(f"unknown models action '{args.action}' (list, use, rollback)")
    data = registry.load()
    model = pointer["model"]  # the index's vectors decide which embedder is active
    if "embedder" in data:
        data["embedder"]["active"] = int(model[len(TUNED_EMBEDDER_PREFIX) :]) if model.startswith(TUNED_EMBEDDER_PREFIX) else None
    if args.json:
        _emit_json(data)
        return 0
    table = Table(title=f"models of {IndexStore(args.index).root}")
    for column in ("version", "active", "created", "eval before -> after", "base"):
        table.add_column(column, overflow="fold")
    for role in (*ROLES, *(r for r in data if r not in ROLES)):
        entry = data.get(role, {})
        default = BASE_MODELS.get(role, "")
        if role == "embedder":
            default = entry.get("base_model") or (model if not model.startswith(TUNED_EMBEDDER_PREFIX) else default)
        table.add_row(f"{role}@base", "yes" if entry.get("active") is None else "", "", "", default)
        for number, info in sorted(entry.get("versions", {}).items(), key=lambda kv: int(kv[0])):
            table.add_row(
                f"{role}@{number}",
                "yes" if entry.get("active") == int(number) else "",
                info.get("created", ""),
                f"{_scores(info.get('eval_before', {}))} -> {_scores(info.get('eval', {}))}",
                info.get("base", ""),
            )
    _console().print(table)
    return 0


def _eval_name(source: str) -> str:
    source_path = Path(source).resolve()
    name = f"{source_path.parent.name}-{source_path.name}" if source_path.is_file() else source_path.name
    return name.replace(".", "_")


def _eval_index(given: str | None, source: str) -> Path:
    from sixfold.core.config import cache_dir

    return Path(given) if given else cache_dir() / "eval" / _eval_name(source)


def _write_report(report: dict, given: str | None, kind: str, source: str) -> Path:
    """The JSON report, written whole (temporary file + rename) to --out or a time-stamped file in the eval cache."""
    import os
    import time

    from sixfold.core.config import cache_dir

    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(given) if given else cache_dir() / "eval" / "reports" / f"{kind}-{_eval_name(source)}-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str))
    os.replace(tmp, path)
    return path


def _check_report_path(given: str | None) -> None:
    """Fail before a long eval, not after it, when --out cannot be written."""
    from sixfold.core.errors import SixfoldError

    if not given:
        return
    path = Path(given)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.with_name(path.name + ".tmp")
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise SixfoldError(f"cannot write the report to {path}: {exc.strerror or exc}") from None


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.table import Table

    from sixfold import evaluation

    _check_report_path(args.out)
    console = _console(stderr=True)
    if args.kind == "retrieval":
        modes = args.mode or ["bm25", "dense", "hybrid"]
        report = evaluation.eval_retrieval(
            args.dataset,
            modes,
            _eval_index(args.index, args.dataset),
            split=args.split,
            limit=args.limit,
            rerank=args.rerank,
            rerank_depth=args.rerank_depth,
            progress=None if args.json else lambda m: console.print(m),
        )
        judged = f"{report['queries']} judged queries" + (
            f" of {report['queries_total']}" if report["queries_total"] > report["queries"] else ""
        )
        table = Table(title=f"retrieval on {args.dataset} ({judged}, {report['documents']} documents)")
        for column in ("mode", "nDCG@10", "Recall@10", "Recall@100", "MRR@10", "p50 ms"):
            table.add_column(column, justify="left" if column == "mode" else "right")
        for mode, m in report["modes"].items():
            table.add_row(
                mode,
                f"{m['nDCG@10']:.4f}",
                f"{m['Recall@10']:.4f}",
                f"{m['Recall@100']:.4f}",
                f"{m['MRR@10']:.4f}",
                f"{m['p50_ms']:.0f}",
            )
    elif args.kind == "qa":
        index = _eval_index(args.index, args.squad) if args.open else None
        report = evaluation.eval_qa(
            args.squad, reader=args.reader, open_book=args.open, index_dir=index, limit=args.limit, k=args.k, mode=args.mode
        )
        table = Table(
            title=f"QA on {args.squad} ({report['questions']} questions, {'open book' if args.open else 'gold paragraph'})"
        )
        for column in ("metric", "value"):
            table.add_column(column)
        for key in ("EM", "F1", "answered_pct", f"recall@{args.k}", "p50_s"):
            if key in report:
                table.add_row(key, f"{report[key]:.2f}")
    else:
        report = evaluation.eval_classify(args.train, args.test, shots=args.shots, seed=args.seed, limit=args.limit)
        table = Table(title=f"classification: {report['examples']} examples, {report['test_items']} test items")
        for column in ("metric", "value"):
            table.add_column(column)
        for key in ("accuracy", "macro_f1", "ms_per_item"):
            table.add_row(key, f"{report[key]:.4f}")
        for c in report["top_confusions"]:
            table.add_row("confused", f"{c['gold']} -> {c['predicted']} ×{c['count']}")
    source = {"retrieval": getattr(args, "dataset", ""), "qa": getattr(args, "squad", "")}.get(args.kind) or args.test
    written = _write_report(report, args.out, args.kind, source)
    if args.json:
        _emit_json(report)
    else:
        _console().print(table)
    console.print(f"report: {written}", soft_wrap=True, highlight=False, markup=False)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from sixfold.core.errors import SixfoldError
    from sixfold.indexer.store import IndexStore

    if not 0 < args.port < 65536:
        raise SixfoldError(f"port must be between 1 and 65535, got {args.port}")
    if args.max_body_mb <= 0:
        raise SixfoldError("--max-body-mb must be positive")
    from sixfold.api_schemas import Limits

    names = ("max_prompts", "max_completion_tokens", "max_prompt_chars", "max_inputs", "max_documents", "max_examples")
    limits = Limits.from_env(**{name: getattr(args, name) for name in (*names, "request_timeout")})  # a bad one: one line
    IndexStore(args.index).read_pointer()  # before loading any model: a missing index is one error line
    from sixfold.server import listen, serve

    sock = listen(args.host, args.port)
    console = _console(stderr=True)
    console.print(f"sixfold: serving {IndexStore(args.index).root} on http://{args.host}:{args.port}/ (API under /v1)")
    serve(
        args.index,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        max_body=int(args.max_body_mb * (1 << 20)),
        embedders=args.embedders,
        sock=sock,
        limits=limits,
    )
    return 0


COMMANDS = {
    "index": cmd_index,
    "search": cmd_search,
    "embed": cmd_embed,
    "status": cmd_status,
    "ask": cmd_ask,
    "classify": cmd_classify,
    "complete": cmd_complete,
    "tune": cmd_tune,
    "models": cmd_models,
    "eval": cmd_eval,
    "serve": cmd_serve,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sixfold.core.errors import SixfoldError

    try:
        return COMMANDS[args.command](args)
    except SixfoldError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: the index keeps its last committed state; run the command again to finish\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: still one line, the traceback on request
        if config.debug():
            raise
        sys.stderr.write(f"error: unexpected {type(exc).__name__}: {exc} (set SIXFOLD_DEBUG=1 for details)\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
