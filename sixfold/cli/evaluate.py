"""``eval retrieval|qa|classify``: run a benchmark (``sixfold.eval``), print its table, write its JSON report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, cast

from sixfold.cli import render
from sixfold.core.errors import SixfoldError

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from sixfold.eval.qa import FolderQAReport
    from sixfold.eval.reports import ClassifyReport, QAReport, Report, RetrievalReport


def cmd_eval(args: argparse.Namespace) -> int:
    from sixfold.eval.reports import check_report_path, write_report

    check_report_path(args.out)
    console = render.console(stderr=True)
    run = {"retrieval": _retrieval, "qa": _qa, "classify": _classify}[args.kind]
    report, table = run(args, None if args.json else console.print)
    written = write_report(cast("Report", report), args.out)  # a FolderQAReport is written the same way
    if args.json:
        render.emit_json(report.to_dict())
    else:
        render.console().print(table)
    console.print(f"report: {written}", soft_wrap=True, highlight=False, markup=False)
    return 0


def _retrieval(args: argparse.Namespace, say) -> tuple[Report, RenderableType]:
    from sixfold.eval.reports import eval_index
    from sixfold.eval.retrieval import eval_retrieval

    dataset = args.dataset
    if args.queries_from:
        from sixfold.eval.datasets import load_xquad_r_crosslingual

        dataset = load_xquad_r_crosslingual(args.dataset, args.queries_from)
    report: RetrievalReport = eval_retrieval(
        dataset,
        args.mode or ["bm25", "dense", "hybrid", *(["default"] if args.queries_from else [])],
        eval_index(args.index, _eval_source(args)),
        model=args.model,
        split=args.split,
        limit=args.limit,
        rerank=args.rerank,
        rerank_depth=args.rerank_depth,
        progress=say,
    )
    judged = f"{report.queries} judged queries" + (f" of {report.queries_total}" if report.queries_total > report.queries else "")
    rows = [
        (mode, f"{m.ndcg10:.4f}", f"{m.recall10:.4f}", f"{m.recall100:.4f}", f"{m.mrr10:.4f}", f"{m.p50_ms:.0f}")
        for mode, m in report.modes.items()
    ]
    columns = ("mode", "nDCG@10", "Recall@10", "Recall@100", "MRR@10", "p50 ms")
    if report.query_language is None:
        title = f"retrieval on {args.dataset} ({judged}, {report.documents} documents)"
        return report, render.table(title, columns, rows, right=True)
    from rich.console import Group

    title = f"retrieval on {args.dataset}, questions from {args.queries_from} ({judged}, {report.documents} documents)"
    picked = "the model named" if args.model else "defaults picked"
    index = render.table(f"eval index ({picked})", ("setting", "value"), crosslingual_rows(report), overflow="fold")
    return report, Group(render.table(title, columns, rows, right=True), index)


def crosslingual_rows(report: RetrievalReport) -> list[tuple[str, str]]:
    """The languages of a cross-lingual run and every setting the eval index got, one row each."""
    rows = [("question language", str(report.query_language)), ("corpus language", str(report.corpus_language))]
    rows += [(key.replace("_", " "), _cell(value)) for key, value in (report.index_defaults or {}).items()]
    if report.query_modes:
        rows.append(("'default' mode per query", _cell(report.query_modes)))
    return rows


def _cell(value: object) -> str:
    """A setting as one table cell: ``{'en': 1181}`` -> ``en 1181``; ``['en', 'es']`` -> ``en, es``."""
    if isinstance(value, dict):
        return ", ".join(f"{key} {item}" for key, item in value.items()) or "-"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(str(item) for item in value) or "-"
    return "-" if value is None or value == "" else str(value)


def _eval_source(args: argparse.Namespace) -> str:
    """What names the default eval index: the collection, and the model when one is named (an index has one)."""
    source = str(args.dataset)
    return f"{source}-{Path(args.model).name}" if args.model else source


def _qa(args: argparse.Namespace, say) -> tuple[Report | FolderQAReport, RenderableType]:
    from sixfold.eval.qa import eval_qa
    from sixfold.eval.reports import eval_index

    if args.questions:
        if args.squad or args.open:
            raise SixfoldError("eval qa takes --squad FILE or --questions FILE, not both (--open is for --squad)")
        return _folder_qa(args, say)
    if not args.squad:
        raise SixfoldError("eval qa needs --squad FILE, or --questions FILE with --folder DIR (or --index IDX)")
    if args.folder or args.generator:
        raise SixfoldError("--folder and --generator go with --questions FILE (a folder QA set), not --squad")
    index = eval_index(args.index, args.squad) if args.open else None
    report: QAReport = eval_qa(
        args.squad,
        reader=args.reader,
        open_book=args.open,
        index_dir=index,
        limit=args.limit,
        k=args.k,
        mode=args.mode or "extractive",
    )
    values = {"EM": report.em, "F1": report.f1, "answered_pct": report.answered_pct, f"recall@{args.k}": report.recall}
    rows = [(key, f"{value:.2f}") for key, value in (*values.items(), ("p50_s", report.p50_s)) if value is not None]
    title = f"QA on {args.squad} ({report.questions} questions, {'open book' if args.open else 'gold paragraph'})"
    return report, render.table(title, ("metric", "value"), rows)


def _folder_qa(args: argparse.Namespace, say) -> tuple[FolderQAReport, RenderableType]:
    from rich.console import Group

    from sixfold.eval.qa import OUTCOMES, eval_folder_qa

    report = eval_folder_qa(
        args.questions,
        folder=args.folder,
        index_dir=args.index,
        k=args.k,
        mode=args.mode or "auto",
        reader=args.reader,
        generator=args.generator,
        limit=args.limit,
        progress=say,
    )
    return report, Group(*folder_qa_tables(report, OUTCOMES))


def _pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f}%)" if whole else "-"


def folder_qa_tables(report: FolderQAReport, outcomes: dict[str, str]) -> list[Table]:
    """The summary of a folder QA report, its reliability bins, and the questions it did not get right."""
    c, cal, n, u = report.counts, report.calibration, report.answerable, report.unanswerable
    rows = [
        ("answerable: correct, right source cited", _pct(c["right"], n)),
        ("answerable: correct, wrong source", _pct(c["wrong_source"], n)),
        ("answerable: wrong answer", _pct(c["wrong"], n)),
        ("answerable: abstained", _pct(c["missed"], n)),
        ("unanswerable: abstained", _pct(c["abstained"], u)),
        ("unanswerable: answered", _pct(c["answered"], u)),
        (f"wrong with confidence >= {report.confident:g}", str(report.wrong_confident)),
        (
            f"right among answers with confidence >= {report.confident:g}",
            "-" if cal.confident_right_pct is None else f"{cal.confident_right_pct:.0f}% of {cal.confident_answers}",
        ),
        ("calibration ECE (answers given)", "-" if cal.ece is None else f"{cal.ece:.3f} over {cal.answers}"),
        ("Brier score", "-" if cal.brier is None else f"{cal.brier:.3f}"),
        (
            f"source among the {report.k} passages read",
            "-" if report.source_retrieved_pct is None else f"{report.source_retrieved_pct:.0f}%",
        ),
        ("latency p50 / p95", f"{report.p50_s:.1f} s / {report.p95_s:.1f} s"),
    ]
    title = (
        f"folder QA: {report.questions} questions ({n} answerable, {u} not) over {report.folder or report.index}, {report.mode}"
    )
    summary = render.table(title, ("measure", "value"), rows)
    bins = [
        (f"{b.low:.1f}-{b.high:.1f}", str(b.count), f"{b.confidence:.2f}", f"{b.accuracy:.2f}")
        for b in cal.bins
        if b.count and b.confidence is not None and b.accuracy is not None
    ]
    reliability = render.table(
        "reliability (answers given)", ("confidence", "answers", "mean confidence", "right"), bins, right=True
    )
    misses = [
        (str(r.line), outcomes[r.outcome], f"{r.confidence:.2f}", r.question, r.answer if r.found else "", ", ".join(r.cited))
        for r in report.items
        if r.outcome not in ("right", "abstained")
    ]
    columns = ("line", "outcome", "conf", "question", "answer", "cited")
    return [summary, reliability, render.table("not right", columns, misses, overflow="fold")]


def _classify(args: argparse.Namespace, say) -> tuple[Report, RenderableType]:
    from sixfold.eval.classify import eval_classify
    from sixfold.tuner.classifier import ClassifierTrainConfig

    config = ClassifierTrainConfig(
        max_steps=args.max_steps, objective=args.objective, pairs_per_example=args.pairs_per_example, seed=args.seed
    )
    if args.tune:
        from sixfold.progress import TrainProgress

        with TrainProgress(render.console(stderr=True), quiet=args.json) as progress:
            report: ClassifyReport = eval_classify(
                args.train, args.test, shots=args.shots, seed=args.seed, limit=args.limit, tune=True, config=config,
                callbacks=[progress.callback()],
            )  # fmt: skip
    else:
        report = eval_classify(args.train, args.test, shots=args.shots, seed=args.seed, limit=args.limit)
    tuned = report.tuned
    columns = ("metric", "nearest examples", *(("tuned",) if tuned else ()))
    rows = [
        ("accuracy", f"{report.accuracy:.4f}", *((f"{tuned.accuracy:.4f}",) if tuned else ())),
        ("macro_f1", f"{report.macro_f1:.4f}", *((f"{tuned.macro_f1:.4f}",) if tuned else ())),
        ("ms_per_item", f"{report.ms_per_item:.1f}", *((f"{tuned.ms_per_item:.1f}",) if tuned else ())),
    ]
    if tuned:
        rows.append(("train seconds", "-", f"{tuned.train_seconds:.0f} ({tuned.train_rows} training rows)"))
    confusions = tuned.top_confusions if tuned else report.top_confusions
    rows += [("confused", *(("",) if tuned else ()), f"{c.gold} -> {c.predicted} ×{c.count}") for c in confusions]
    title = f"classification: {report.examples} examples, {report.test_items} test items"
    return report, render.table(title, columns, rows)
