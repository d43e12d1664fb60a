"""Load on /v1/search: requests/s and p50/p99 latency at 1, 8 and 32 concurrent clients on loopback.

Starts ``sixfold serve`` (uvicorn, one worker) as a subprocess over an index of examples/corpus (built under
$SIXFOLD_BENCH_CACHE/server-idx, else ~/.cache/sixfold/bench/server-idx, unless --index is given), warms it up,
then for each concurrency runs a fixed number of requests (or until a time cap) from that many client threads,
each with its own keep-alive connection (httpx). Also times the same searches in-process (``Engine.search`` and
the query embedding alone), to show where the time goes. Prints a table and writes bench/results/server_load.json.

    python bench/server_load.py [--requests 400] [--concurrency 1 8 32] [--time-cap 60] [--index IDX]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from benchdata import default_cache_dir  # bench/ is sys.path[0]

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
QUERIES = [
    "Who were the Normans descended from?",
    "How many people died in the Black Death plague pandemic in Europe?",
    "What is the atomic number of oxygen?",
    "How much of the Amazon rainforest is in Brazil?",
    "What is packet switching and how does it group data into packets?",
    "how does a steam engine turn heat into work",
    "Norman conquest of England 1066",
    "photosynthesis oxygen cycle",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_index(index: Path) -> None:
    if (index / "sixfold-index.json").is_file():
        return
    subprocess.run(
        [sys.executable, "-m", "sixfold", "index", str(REPO / "examples" / "corpus"), "--index", str(index)], check=True, cwd=REPO
    )


def run_level(url: str, concurrency: int, total: int, time_cap: float, k: int) -> dict:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    issued = 0
    deadline = time.perf_counter() + time_cap

    def client(number: int) -> None:
        nonlocal issued, errors
        with httpx.Client(timeout=60) as http:
            while True:
                with lock:
                    if issued >= total or time.perf_counter() > deadline:
                        return
                    issued += 1
                    query = QUERIES[issued % len(QUERIES)]
                started = time.perf_counter()
                response = http.post(url + "/v1/search", json={"query": query, "max_rerank": k})
                elapsed = time.perf_counter() - started
                with lock:
                    if response.status_code == 200 and response.json()["data"]:
                        latencies.append(elapsed)
                    else:
                        errors += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ms = [x * 1000 for x in latencies]
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(wall, 2),
        "rps": round(len(latencies) / wall, 1),
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "mean_ms": round(statistics.fmean(ms), 1),
    }


def in_process(index: Path, k: int, repeats: int = 100) -> dict:
    """The same searches without HTTP: the whole Engine.search, and the query embedding alone."""
    from sixfold import Engine

    engine = Engine.open(index)
    engine.search(QUERIES[0], k)
    search_ms, embed_ms = [], []
    for i in range(repeats):
        query = QUERIES[i % len(QUERIES)]
        started = time.perf_counter()
        engine.search(query, k)
        search_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        engine.embedder.encode([query])
        embed_ms.append((time.perf_counter() - started) * 1000)
    return {"search_p50_ms": round(statistics.median(search_ms), 2), "embed_query_p50_ms": round(statistics.median(embed_ms), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--index", type=Path, default=default_cache_dir("server-idx"), help="index to serve (default %(default)s)"
    )
    parser.add_argument("--requests", type=int, default=400, help="requests per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--time-cap", type=float, default=60.0, help="seconds per level at most")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--embedders", type=int, nargs="+", default=[2], help="server embedder copies to compare")
    parser.add_argument(
        "--torch-threads", type=int, help="OMP_NUM_THREADS for the server and the in-process timing (default: torch's own)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "server_load.json")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if args.torch_threads:
        os.environ["OMP_NUM_THREADS"] = str(args.torch_threads)
    ensure_index(args.index)
    load_before = os.getloadavg()
    runs = [{"embedders": n, "levels": serve_and_load(args, n)} for n in args.embedders]
    direct = in_process(args.index, args.k)
    load_after = os.getloadavg()

    from rich.console import Console
    from rich.table import Table

    threads = os.environ.get("OMP_NUM_THREADS", "default")
    table = Table(title=f"/v1/search on loopback, k={args.k}, uvicorn 1 worker, {os.cpu_count()} CPUs, torch threads {threads}")
    for column in ("embedders", "clients", "requests", "errors", "req/s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="right")
    for run in runs:
        for level in run["levels"]:
            values = [str(level[key]) for key in ("concurrency", "requests", "errors", "rps", "p50_ms", "p99_ms")]
            table.add_row(str(run["embedders"]), *values)
    Console().print(table)
    print(
        f"in-process Engine.search p50 {direct['search_p50_ms']} ms, "
        f"of which embedding the query {direct['embed_query_p50_ms']} ms; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    report = {
        "endpoint": "/v1/search",
        "k": args.k,
        "runs": runs,
        "in_process": direct,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "load_average_before": round(load_before[0], 2),
            "load_average_after": round(load_after[0], 2),
        },
        "index": {"corpus": "examples/corpus", "path": str(args.index)},
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def serve_and_load(args: argparse.Namespace, embedders: int) -> list[dict]:
    """Start ``sixfold serve`` with ``embedders`` copies, warm it up, and run each concurrency level."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sixfold",
            "serve",
            "--index",
            str(args.index),
            "--port",
            str(port),
            "--embedders",
            str(embedders),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/v1/status", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start: {server.stderr.read() if server.stderr else ''}")
            time.sleep(0.5)
        run_level(url, 4, 40, 30, args.k)  # warm-up
        levels = [run_level(url, c, args.requests, args.time_cap, args.k) for c in args.concurrency]
    finally:
        server.terminate()
        server.wait(timeout=30)
    return levels


if __name__ == "__main__":
    raise SystemExit(main())
