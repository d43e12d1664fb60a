"""``index``, ``search``, ``embed``, ``status``: the index and what is in it."""

from __future__ import annotations

import argparse
import sys

from sixfold.cli import render
from sixfold.cli.inputs import open_engine, read_texts
from sixfold.core.errors import SixfoldError


def cmd_index(args: argparse.Namespace) -> int:
    from sixfold.engine import Engine
    from sixfold.progress import IndexProgress

    engine = Engine.open(args.index, model=args.model)
    if engine.store.exists() and any(
        v is not None for v in (args.index_type, args.chunk_tokens, args.chunk_overlap, args.language)
    ):
        render.note(render.console(stderr=True), "the index exists; --index-type/--chunk-*/--language apply to new indexes only")
    with IndexProgress(render.console(stderr=True), quiet=args.json) as progress:
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
            workers=args.workers,
            ray=args.ray,
            ray_actors=args.ray_actors,
        )
    if args.json:
        render.emit_json(report.__dict__ | {"index": str(engine.store.root)})
        return 0
    _print_index_report(report, engine.store.root)
    return 0


def _print_index_report(report, root) -> None:
    from sixfold.progress import one_line

    out = render.console()
    if report.touched == 0:
        out.print(f"nothing changed: {report.unchanged} files up to date in {one_line(root)}")
    else:
        rate = report.chunks_added / report.seconds if report.seconds else 0.0
        out.print(
            f"indexed {one_line(report.folder)} into {one_line(root)}: {report.added} added, "
            f"{report.updated} updated, {report.removed} removed, {report.renamed} renamed, {report.unchanged} unchanged; "
            f"{report.chunks_added} chunks added, {report.chunks_removed} removed in {report.seconds:.1f} s ({rate:.0f} chunks/s)"
        )
    for repair in report.repaired:
        out.print(f"repaired: {repair}")
    if report.skipped:
        out.print(f"{len(report.skipped)} files skipped (see warnings above)")
    unsupported = sum(report.unsupported.values())
    if unsupported:
        kinds = ", ".join(f"{one_line(ext)} ×{n}" for ext, n in sorted(report.unsupported.items(), key=lambda kv: -kv[1]))
        out.print(f"{unsupported} files of unsupported types ignored ({kinds})")


def cmd_search(args: argparse.Namespace) -> int:
    from rich.text import Text

    from sixfold.engine import Engine

    engine = Engine.open(args.index, model=args.model)
    mode = args.mode or engine.query_mode(args.query or "")
    rerank = None if args.no_rerank else (args.rerank or "auto")
    hits = engine.search(args.query, args.k, mode=mode, where=args.where, rerank=rerank, rerank_depth=args.rerank_depth)
    reranked = any("rerank" in h.scores for h in hits)
    if args.json:
        render.emit_json({"query": args.query, "mode": mode, "reranked": reranked, "hits": [h.to_dict() for h in hits]})
        return 0
    if not hits:
        render.console().print("no results")
        return 0
    table = render.table(f"{mode}{'+rerank' if reranked else ''} search: {args.query}", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("source", overflow="fold", max_width=40)
    table.add_column("location", overflow="fold", max_width=28)
    table.add_column("passage", overflow="fold", ratio=1)
    words = [w for w in args.query.split() if len(w) > 2]
    for hit in hits:
        flat = " ".join(hit.text.split())
        snippet = Text(flat[:240] + ("…" if len(flat) > 240 else ""))
        snippet.highlight_words(words, style="bold yellow", case_sensitive=False)
        table.add_row(str(hit.rank), f"{hit.score:.4f}", hit.path, hit.location, snippet)
    render.console().print(table)
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    if args.out is not None or args.ray is not None or args.ray_actors is not None:
        return _embed_to_file(args)
    texts = read_texts(args.text, args.file)
    if not texts:
        raise SixfoldError("no text to embed: give TEXT arguments or --file")
    engine = open_engine(args.index, args.model, must_exist=True)
    vectors = engine.embed(texts)
    embedder = engine.embedder
    counts = embedder.token_counts(texts)
    render.warn_truncated(counts, embedder.max_tokens, embedder.name)
    if args.json:
        limit = embedder.max_tokens
        data = [
            {"index": i, "text": t, "tokens": n, "truncated": n > limit, "embedding": [round(float(x), 6) for x in v]}
            for i, (t, v, n) in enumerate(zip(texts, vectors, counts))
        ]
        render.emit_json({"model": embedder.name, "dimension": int(vectors.shape[1]), "data": data})
        return 0
    rows = [
        (str(i), text[:60], " ".join(f"{x:+.3f}" for x in vector[:6]) + " …")
        for i, (text, vector) in enumerate(zip(texts, vectors))
    ]
    title = f"{embedder.name}: {vectors.shape[1]}-d embeddings (L2-normalised)"
    render.console().print(render.table(title, ("#", "text", "first values"), rows, overflow="fold"))
    return 0


def _embed_to_file(args: argparse.Namespace) -> int:
    """``embed --file F --out V.parquet [--ray ADDRESS]``: a bulk job, a count bar on stderr, one summary line."""
    from sixfold.progress import CountProgress, one_line

    if args.out is None:
        raise SixfoldError("--ray and --ray-actors embed into a file: give --file TEXTS and --out FILE.parquet")
    if args.text or not args.file:
        raise SixfoldError("--out embeds the lines of --file TEXTS (one text per line), not TEXT arguments")
    engine = open_engine(args.index, args.model, must_exist=bool(args.index))
    with CountProgress(render.console(stderr=True), "embedding", "lines", args.json) as bar:
        report = engine.embed_file(
            args.file, args.out, batch_size=args.batch_size, ray=args.ray, ray_actors=args.ray_actors, on_progress=bar.update
        )
    if args.json:
        render.emit_json(report.to_dict())
        return 0
    rate = report.texts / report.seconds if report.seconds else 0.0
    where = f" on Ray ({one_line(args.ray)})" if report.ray else ""
    render.console().print(
        f"embedded {report.texts} lines of {one_line(report.file)} with {one_line(report.model)}{where} into "
        f"{one_line(report.out)}: {report.dimension}-d vectors in {report.seconds:.1f} s ({rate:.0f} lines/s)"
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from sixfold.engine import Engine

    status = Engine.open(args.index).status()
    if args.json:
        render.emit_json(status.to_dict())
    else:
        size = status.size_bytes
        mode_note = "" if status.search_mode == "hybrid" else " (the embedder does not read this language)"
        rows = [
            ("documents", status.documents),
            ("chunks", status.chunks),
            ("model", status.model),
            ("dimension", status.dimension),
            ("index type", f"{status.index_type} (now {status.vector_index})"),
            ("lexical", f"tantivy BM25, {_lexical_languages(status)}"),
            ("search mode", status.search_mode + mode_note),
            ("chunking", f"{status.chunk_tokens} tokens, {status.overlap_tokens} overlap"),
            ("generation", status.generation),
            ("created", status.created_at),
            ("updated", status.updated_at),
            ("size on disk", f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"),
        ]
        table = render.table(
            f"sixfold index {status.path}", ("field", "value"), [(k, str(v)) for k, v in rows], show_header=False
        )
        table.columns[0].style = "bold"
        render.console().print(table)
    for problem in status.health:  # damage `search` works around or trips over: what it is and how to fix it
        sys.stderr.write(f"problem: {problem}\n")
    return 1 if status.health else 0


def _lexical_languages(status) -> str:
    """How the BM25 index analyses text: one stemmer (``--language``), or each document's detected language."""
    counts = ", ".join(f"{lang} {n}" for lang, n in sorted(status.languages.items(), key=lambda kv: -kv[1]))
    if status.language != "auto":
        return f"stemmer: {status.language}" + (f" (chunks: {counts})" if counts else "")
    return f"per-language stemmers; chunks by language: {counts or 'none yet'}"
