"""``ask``, ``classify``, ``complete``: reading with a model."""

from __future__ import annotations

import argparse
import sys

from sixfold.cli import render
from sixfold.cli.inputs import open_engine, read_texts
from sixfold.core.errors import SixfoldError


def cmd_ask(args: argparse.Namespace) -> int:
    from sixfold.engine import Engine

    answer = Engine.open(args.index).ask(
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
        render.emit_json(answer.to_dict())
        return 0
    out = render.console()
    if answer.found:
        out.print(f"[bold]{render.escape(answer.answer)}[/]")
        out.print(f"confidence {answer.confidence:.2f} ({answer.mode})")
        for citation in answer.citations:
            if citation.quote:
                out.print(f'  "{render.escape(" ".join(citation.quote.split()))}"  ({render.escape(citation.path)})')
    else:
        out.print(f"[bold]{answer.answer}[/] ({answer.mode}; why below)")
    for message in answer.notes:
        render.note(out, message)
    table = render.table("cited passages" if answer.found else "closest passages", show_lines=True)
    table.add_column("source", overflow="fold", max_width=40)
    table.add_column("location", overflow="fold", max_width=28)
    table.add_column("passage", overflow="fold", ratio=1)
    for citation in answer.citations:
        table.add_row(citation.path, citation.location, citation.snippet)
    out.print(table)
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from sixfold.reader.classify import load_examples, parse_labels

    texts = read_texts(args.text, args.input, "input file")
    if not texts:
        raise SixfoldError("nothing to classify: give TEXT arguments or --input FILE")
    examples = load_examples(args.examples) if args.examples else None  # before loading a model: bad files fail fast
    if args.labels:
        parse_labels(args.labels)
    if args.classifier and not args.index:
        raise SixfoldError("--classifier names a tuned classifier of an index: give --index too")
    engine = open_engine(args.index, args.model, must_exist=bool(args.classifier))
    if examples is None and not args.labels and engine.tuned_classifier(args.classifier) is None:
        raise SixfoldError(
            "nothing to classify with: give --examples FILE, --labels 'a, b, ...' (zero-shot), or --index with a tuned "
            "classifier (sixfold tune classifier)"
        )
    labels = engine.classify(texts, examples, labels=args.labels, classifier=args.classifier)
    embedder = engine.embedder
    render.warn_truncated(embedder.token_counts(texts), embedder.max_tokens, "the classifier")
    if args.json:
        render.emit_json([label.to_dict() for label in labels])
        return 0
    rows = [
        (
            label.query[:80],
            label.label,
            f"{label.score:.2f}",
            "\n".join(f"{e.label}: {e.text[:60]} ({e.similarity:.2f})" for e in label.examples[:3]) or "-",
        )
        for label in labels
    ]
    columns = ("text", "label", "score", "nearest examples (similarity)")
    title = f"classification by {labels[0].decided_by}" + (f" from {len(examples)} examples" if examples else "")
    render.console().print(render.table(title, columns, rows, overflow="fold", show_lines=True))
    return 0


def cmd_complete(args: argparse.Namespace) -> int:
    engine = open_engine(args.index)
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
        render.emit_json(completion.to_dict())
    elif streaming:
        sys.stdout.write(("" if started else args.prompt) + "\n")
    else:
        sys.stdout.write(args.prompt + completion.text + "\n")
    return 0
