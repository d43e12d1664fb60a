"""``models``: list an index's tuned versions, switch to one (``use ROLE@N`` / ``ROLE@base``) or roll back."""

from __future__ import annotations

import argparse

from sixfold.cli import render
from sixfold.core.errors import SixfoldError


def _reembed_bar():
    """Switching the embedder re-embeds the index: a bar on stderr follows the chunks."""
    from sixfold.progress import CountProgress

    return CountProgress(render.console(stderr=True), "re-embedding", "chunks")


def _name(role: str, number: int | None) -> str:
    return "the base model" if number is None else f"{role}@{number}"


def cmd_models(args: argparse.Namespace) -> int:
    from sixfold.engine import Engine
    from sixfold.tuner.versions import parse_version

    engine = Engine.open(args.index)
    if args.action == "use":
        if not args.target:
            raise SixfoldError("models use needs ROLE@N, e.g. reader@2 (or reader@base)")
        role, number = parse_version(args.target)
        with _reembed_bar() as bar:
            engine.use_model(role, number, bar.update)
        render.console().print(f"{role}: now using {_name(role, number)}")
        return 0
    if args.action == "rollback":
        role, _ = parse_version(args.target or "reader")
        with _reembed_bar() as bar:
            target = engine.rollback_model(role, bar.update)
        render.console().print(f"{role}: rolled back to {_name(role, target)}")
        return 0
    if args.action != "list":
        raise SixfoldError(f"unknown models action '{args.action}' (list, use, rollback)")
    listing = engine.models()
    if args.json:
        render.emit_json({"index": str(engine.store.root), "roles": [role.to_dict() for role in listing]})
        return 0
    rows = []
    for entry in listing:
        rows.append((f"{entry.role}@base", "yes" if entry.active is None else "", "", "", entry.base))
        for v in entry.versions:
            evals = f"{render.scores(v.eval_before)} -> {render.scores(v.eval)}"
            rows.append((f"{entry.role}@{v.number}", "yes" if entry.active == v.number else "", v.created, evals, v.base))
    columns = ("version", "active", "created", "eval before -> after", "base")
    render.console().print(render.table(f"models of {engine.store.root}", columns, rows, overflow="fold"))
    return 0
