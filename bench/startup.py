"""Wall time of CLI commands that need no model (--help, status, models, a bm25 search), and of a dense search for
comparison (it loads the embedder): each command run as a whole process, several times.

    python bench/startup.py [--runs 5] [--out bench/results/startup.json]

Prints a table (min / median / max seconds) and writes JSON. Target (issue 12): each model-free command under 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUESTION = "Who were the Normans descended from?"


def timed(argv: list[str], runs: int) -> list[float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sixfold", *argv], env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "startup.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        index = str(Path(scratch) / "index")
        subprocess.run(
            [sys.executable, "-m", "sixfold", "index", str(REPO / "examples" / "corpus"), "--index", index, "--json"],
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            capture_output=True,
            check=True,
        )
        commands = {
            "--help": ["--help"],
            "status": ["status", "--index", index],
            "models": ["models", "--index", index],
            "search --mode bm25": ["search", QUESTION, "--mode", "bm25", "--index", index, "-k", "3"],
            "search (hybrid, loads the embedder)": ["search", QUESTION, "--index", index, "-k", "3"],
        }
        rows = {name: timed(argv, args.runs) for name, argv in commands.items()}
    print("| command | min s | median s | max s | runs |\n|---|---:|---:|---:|---:|")
    for name, times in rows.items():
        print(f"| `{name}` | {min(times):.2f} | {statistics.median(times):.2f} | {max(times):.2f} | {len(times)} |")
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores",
        "commands": {k: {"min": min(v), "median": statistics.median(v), "max": max(v), "runs": v} for k, v in rows.items()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
