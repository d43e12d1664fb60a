"""``eval retrieval|qa|classify``: run a benchmark (``sixfold.eval``), print its table, write its JSON report."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sixfold.cli import render

if TYPE_CHECKING:
    from rich.table import Table

    from sixfold.eval.reports import ClassifyReport, QAReport, Report, RetrievalReport


def cmd_eval(args: argparse.Namespace) -> int:
    from sixfold.eval.reports import check_report_path, write_report

    check_report_path(args.out)
    console = render.console(stderr=True)
    run = {"retrieval": _retrieval, "qa": _qa, "classify": _classify}[args.kind]
    report, table = run(args, None if args.json else console.print)
    written = write_report(report, args.out)
    if args.json:
        render.emit_json(report.to_dict())
    else:
        render.console().print(table)
    console.print(f"report: {written}", soft_wrap=True, highlight=False, markup=False)
    return 0


def _retrieval(args: argparse.Namespace, say) -> tuple[Report, Table]:
    from sixfold.eval.reports import eval_index
    from sixfold.eval.retrieval import eval_retrieval

    report: RetrievalReport = eval_retrieval(
        args.dataset,
        args.mode or ["bm25", "dense", "hybrid"],
        eval_index(args.index, args.dataset),
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
    title = f"retrieval on {args.dataset} ({judged}, {report.documents} documents)"
    return report, render.table(title, columns, rows, right=True)


def _qa(args: argparse.Namespace, say) -> tuple[Report, Table]:
    from sixfold.eval.qa import eval_qa
    from sixfold.eval.reports import eval_index

    index = eval_index(args.index, args.squad) if args.open else None
    report: QAReport = eval_qa(
        args.squad, reader=args.reader, open_book=args.open, index_dir=index, limit=args.limit, k=args.k, mode=args.mode
    )
    values = {"EM": report.em, "F1": report.f1, "answered_pct": report.answered_pct, f"recall@{args.k}": report.recall}
    rows = [(key, f"{value:.2f}") for key, value in (*values.items(), ("p50_s", report.p50_s)) if value is not None]
    title = f"QA on {args.squad} ({report.questions} questions, {'open book' if args.open else 'gold paragraph'})"
    return report, render.table(title, ("metric", "value"), rows)


def _classify(args: argparse.Namespace, say) -> tuple[Report, Table]:
    from sixfold.eval.classify import eval_classify

    report: ClassifyReport = eval_classify(args.train, args.test, shots=args.shots, seed=args.seed, limit=args.limit)
    rows = [
        ("accuracy", f"{report.accuracy:.4f}"),
        ("macro_f1", f"{report.macro_f1:.4f}"),
        ("ms_per_item", f"{report.ms_per_item:.4f}"),
    ]
    rows += [("confused", f"{c.gold} -> {c.predicted} ×{c.count}") for c in report.top_confusions]
    title = f"classification: {report.examples} examples, {report.test_items} test items"
    return report, render.table(title, ("metric", "value"), rows)
