"""One table over several bench/peer_setfit.py result files: mean ± std of accuracy per dataset and examples per label,
over every seed the files hold (a seed measured twice is taken from the first file that has it).

    python bench/peer_setfit_table.py bench/results/peer_setfit.json bench/results/peer_setfit_seeds12.json \\
        --pairs bench/results/peer_setfit_pairs.json [--out bench/results/peer_setfit_3seeds.json]

Columns: untuned nearest examples, sixfold tuned (each objective found: the ``sixfold_<objective>`` entries, or a
file's ``sixfold`` entry under its config's objective; ``--pairs`` files count as the pairs objective), setfit, and
training seconds. Prints markdown and writes the merged cells as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def cells_of(path: Path, objective: str | None = None) -> list[dict]:
    report = json.loads(path.read_text())
    default = objective or report.get("sixfold", {}).get("config", {}).get("objective", "triplets")
    cells = []
    for cell in report["cells"]:
        cell = dict(cell)
        if "sixfold" in cell and not any(k.startswith("sixfold_") for k in cell):
            cell[f"sixfold_{default}"] = cell["sixfold"]
        cells.append(cell)
    return cells


def merge(files: list[Path], pairs: list[Path]) -> dict[tuple[str, int, int], dict]:
    merged: dict[tuple[str, int, int], dict] = {}
    for path, objective in [(p, None) for p in files] + [(p, "pairs") for p in pairs]:
        for cell in cells_of(path, objective):
            key = (cell["dataset"], cell["shots"], cell["seed"])
            into = merged.setdefault(key, {})
            for name, value in cell.items():
                if objective == "pairs" and name in ("setfit", "sixfold", "sixfold_triplets"):
                    continue
                into.setdefault(name, value)
    return merged


def stat(values: list[float]) -> str:
    if not values:
        return "-"
    spread = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.3f}{spread}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--pairs", nargs="*", type=Path, default=[], help="files whose sixfold entry is the pairs objective")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    merged = merge(args.files, args.pairs)
    columns = ["nearest", "sixfold_triplets", "sixfold_pairs", "setfit"]
    head = "| dataset | examples/label | seeds | nearest (untuned) | sixfold triplets | sixfold pairs | setfit |"
    print(head + " train s: triplets / pairs / setfit |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for dataset, shots in sorted({(d, s) for d, s, _ in merged}):
        group = [merged[k] for k in sorted(merged) if k[:2] == (dataset, shots)]
        seeds = ",".join(str(k[2]) for k in sorted(merged) if k[:2] == (dataset, shots))
        accs = [stat([c[col]["accuracy"] for c in group if col in c]) for col in columns]
        secs = " / ".join(
            f"{statistics.mean(v):.0f}" if (v := [c[col]["train_seconds"] for c in group if col in c]) else "-"
            for col in columns[1:]
        )
        print(f"| {dataset} | {shots} | {seeds} | " + " | ".join(accs) + f" | {secs} |")
    if args.out:
        rows = [{"dataset": d, "shots": s, "seed": seed, **cell} for (d, s, seed), cell in sorted(merged.items())]
        sources = [str(p) for p in args.files] + [f"{p} (pairs)" for p in args.pairs]
        args.out.write_text(json.dumps({"sources": sources, "cells": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
