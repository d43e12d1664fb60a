"""`sixfold eval`: public benchmarks through the normal index and query path, scored by standard libraries.

- retrieval: a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv); the corpus is written as one
  markdown file per document (title as heading) and indexed with ``Engine.index``, so eval measures what users
  get; chunk hits are pooled to documents (best chunk); nDCG@10, Recall@10/100 and MRR@10 by ir-measures.
- qa: SQuAD v1.1 JSON; EM/F1 with the official normalisation, given the gold paragraph (extractive reader) or
  open-book over the indexed paragraphs.
- classify: train/test files of labeled texts; accuracy and macro-F1 by scikit-learn.
"""

from __future__ import annotations

import csv
import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from indexer.errors import SixfoldError

RETRIEVAL_MODES = ("bm25", "dense", "hybrid", "hybrid+rerank")


# ---- BEIR ---------------------------------------------------------------------------------------
def _read_jsonl(path: Path, what: str) -> list[dict]:
    if not path.is_file():
        raise SixfoldError(f"BEIR {what} file {path} does not exist")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            row["_id"] = str(row["_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SixfoldError(f"{path} line {number}: not a BEIR row ({exc})") from None
        rows.append(row)
    if not rows:
        raise SixfoldError(f"BEIR {what} file {path} is empty")
    return rows


def load_beir(folder: str | Path, split: str = "test") -> tuple[dict[str, dict], dict[str, str], dict[str, dict[str, int]]]:
    """(corpus id -> {title, text}, query id -> text, qrels query -> {doc: relevance}) with checks that name the line."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SixfoldError(f"BEIR folder {folder} does not exist")
    corpus = {
        r["_id"]: {"title": r.get("title") or "", "text": r.get("text") or ""}
        for r in _read_jsonl(folder / "corpus.jsonl", "corpus")
    }
    queries_all = {r["_id"]: r.get("text") or "" for r in _read_jsonl(folder / "queries.jsonl", "queries")}
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise SixfoldError(f"BEIR qrels file {qrels_path} does not exist")
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_path, encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or (number == 1 and row[0] == "query-id"):
                continue
            if len(row) < 3:
                raise SixfoldError(f"{qrels_path} line {number}: expected query-id, corpus-id, score")
            qid, did, score = row[0], row[1], row[2]
            if did not in corpus:
                raise SixfoldError(f"{qrels_path} line {number}: corpus id {did} is not in corpus.jsonl")
            if qid not in queries_all:
                raise SixfoldError(f"{qrels_path} line {number}: query id {qid} is not in queries.jsonl")
            qrels.setdefault(qid, {})[did] = int(float(score))
    if not qrels:
        raise SixfoldError(f"BEIR split '{split}' in {qrels_path} is empty")
    queries = {qid: queries_all[qid] for qid in qrels}
    return corpus, queries, qrels


def _safe_name(doc_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in doc_id)


def write_beir_corpus(corpus: dict[str, dict], folder: Path) -> dict[str, str]:
    """One markdown file per document (only rewritten when its text changed); returns file stem -> doc id."""
    folder.mkdir(parents=True, exist_ok=True)
    stems = {}
    for doc_id, doc in corpus.items():
        stem = _safe_name(doc_id)
        stems[stem] = doc_id
        body = (f"# {doc['title']}\n\n" if doc["title"] else "") + doc["text"] + "\n"
        path = folder / f"{stem}.md"
        if not path.is_file() or path.read_text(encoding="utf-8") != body:
            path.write_text(body, encoding="utf-8")
    return stems


def eval_retrieval(
    beir: str | Path,
    modes: list[str],
    index_dir: str | Path,
    *,
    split: str = "test",
    limit: int | None = None,
    rerank: str | None = None,
    depth: int = 100,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Index the BEIR corpus with the normal pipeline and score each retrieval mode."""
    import ir_measures
    from ir_measures import RR, R, nDCG

    from sixfold.engine import Engine

    say = progress or (lambda message: None)
    for mode in modes:
        if mode not in RETRIEVAL_MODES:
            raise SixfoldError(f"unknown retrieval mode '{mode}' (choose from {', '.join(RETRIEVAL_MODES)})")
        if mode == "hybrid+rerank" and not rerank:
            raise SixfoldError("mode hybrid+rerank needs --rerank MODEL (no reranker ships with sixfold; see docs/models.md)")
    corpus, queries, qrels = load_beir(beir, split)
    if limit:
        queries = dict(list(queries.items())[:limit])
        qrels = {q: qrels[q] for q in queries}
    index_dir = Path(index_dir)
    stems = write_beir_corpus(corpus, index_dir.parent / f"{index_dir.name}-corpus")
    engine = Engine.open(index_dir)
    started = time.perf_counter()
    report = engine.index(index_dir.parent / f"{index_dir.name}-corpus")
    index_seconds = time.perf_counter() - started
    say(f"index: {report.added} added, {report.unchanged} unchanged, {report.chunks_added} chunks in {index_seconds:.0f} s")
    measures = [nDCG @ 10, R @ 10, R @ 100, RR @ 10]
    qrel_rows = [ir_measures.Qrel(q, d, rel) for q, docs in qrels.items() for d, rel in docs.items()]
    results = {
        "beir": str(beir),
        "split": split,
        "queries": len(queries),
        "documents": len(corpus),
        "chunks": engine.status().chunks,
        "index_seconds": index_seconds,
        "modes": {},
    }
    for mode in modes:
        run, latencies = [], []
        search_mode = "hybrid" if mode == "hybrid+rerank" else mode
        for qid, text in queries.items():
            t = time.perf_counter()
            hits = engine.search(text, k=depth * 3, mode=search_mode, rerank=rerank if mode == "hybrid+rerank" else None)
            latencies.append(time.perf_counter() - t)
            seen: dict[str, float] = {}
            for hit in hits:  # chunks -> documents, best chunk first
                doc = stems.get(Path(hit.path).stem)
                if doc is not None and doc not in seen:
                    seen[doc] = float(len(hits) - len(seen))
                if len(seen) >= depth:
                    break
            run += [ir_measures.ScoredDoc(qid, doc, score) for doc, score in seen.items()]
        scores = ir_measures.calc_aggregate(measures, qrel_rows, run)
        latencies.sort()
        results["modes"][mode] = {
            "nDCG@10": scores[nDCG @ 10],
            "Recall@10": scores[R @ 10],
            "Recall@100": scores[R @ 100],
            "MRR@10": scores[RR @ 10],
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p95_ms": 1000 * latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
        }
        say(f"{mode}: nDCG@10 {scores[nDCG @ 10]:.4f}")
    return results


# ---- classification -----------------------------------------------------------------------------
def eval_classify(
    train: str | Path,
    test: str | Path,
    *,
    shots: int | None = None,
    seed: int = 0,
    limit: int | None = None,
    model: str | None = None,
) -> dict:
    """Accuracy and macro-F1 of nearest-example classification; ``shots`` examples per label (all when None)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    from indexer.embedding import load_embedder
    from indexer.models import DEFAULT_EMBEDDER
    from reader.classify import Classifier, load_examples

    examples = load_examples(train)
    tests = load_examples(test)
    if limit:
        tests = random.Random(seed).sample(tests, min(limit, len(tests)))
    if shots:
        by_label: dict[str, list] = {}
        for e in examples:
            by_label.setdefault(e.label, []).append(e)
        rng = random.Random(seed)
        examples = [e for label in sorted(by_label) for e in rng.sample(by_label[label], min(shots, len(by_label[label])))]
    classifier = Classifier(examples, load_embedder(model or DEFAULT_EMBEDDER))
    started = time.perf_counter()
    predicted = [label.label for label in classifier.classify([t.text for t in tests])]
    seconds = time.perf_counter() - started
    gold = [t.label for t in tests]
    labels = sorted(set(gold) | set(predicted))
    matrix = confusion_matrix(gold, predicted, labels=labels)
    confusions = sorted(
        (
            (int(matrix[i][j]), labels[i], labels[j])
            for i in range(len(labels))
            for j in range(len(labels))
            if i != j and matrix[i][j]
        ),
        reverse=True,
    )[:5]
    return {
        "train": str(train),
        "test": str(test),
        "examples": len(examples),
        "test_items": len(tests),
        "shots": shots,
        "accuracy": float(accuracy_score(gold, predicted)),
        "macro_f1": float(f1_score(gold, predicted, average="macro")),
        "ms_per_item": 1000 * seconds / max(len(tests), 1),
        "top_confusions": [{"count": c, "gold": g, "predicted": p} for c, g, p in confusions],
    }


# ---- QA -----------------------------------------------------------------------------------------
def eval_qa(
    squad: str | Path,
    *,
    reader: str | None = None,
    open_book: bool = False,
    index_dir: str | Path | None = None,
    limit: int | None = None,
    k: int = 5,
    seed: int = 0,
    mode: str = "extractive",
) -> dict:
    """SQuAD EM/F1: with the gold paragraph (extractive), or open-book over all paragraphs indexed with Engine.index."""
    from reader.answer import answer_question
    from reader.extractive import load_extractive
    from reader.metrics import exact_match, f1_score
    from reader.types import Passage
    from sixfold.engine import Engine
    from tuner.qa_data import load_qa_file

    examples = load_qa_file(squad)
    if limit:
        examples = random.Random(seed).sample(examples, min(limit, len(examples)))
    if mode == "extractive" and not reader:
        raise SixfoldError("eval qa needs --reader FOLDER (an extractive QA model; none ships with sixfold)")
    extractive = load_extractive(reader) if mode == "extractive" else None
    em, f1, latencies, found = [], [], [], 0
    engine = None
    paths: dict[str, str] = {}
    if open_book:
        if index_dir is None:
            raise SixfoldError("open-book eval needs an index folder")
        corpus = Path(index_dir).parent / f"{Path(index_dir).name}-corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        for e in load_qa_file(squad):
            if e.context not in paths:
                rel = f"p{len(paths):05d}.txt"
                paths[e.context] = rel
                if not (corpus / rel).is_file():
                    (corpus / rel).write_text(e.context, encoding="utf-8")
        engine = Engine.open(index_dir)
        engine.index(corpus)
    recall = []
    for e in examples:
        t = time.perf_counter()
        if open_book:
            assert engine is not None
            passages = engine.passages(e.question, k)
            recall.append(float(paths[e.context] in [p.path for p in passages]))
            if mode == "extractive":
                answer = answer_question(e.question, passages, "extractive", extractive=extractive)
            else:
                answer = engine.ask(e.question, k, mode="generative")
            text = answer.answer if answer.found else ""
            found += answer.found
        else:
            assert extractive is not None
            text, _score, _c = extractive.answer(e.question, [Passage(0, e.context, "gold")])
            found += bool(text)
        latencies.append(time.perf_counter() - t)
        gold = [a["text"] for a in e.answers]
        em.append(exact_match(text, gold))
        f1.append(f1_score(text, gold))
    result = {
        "squad": str(squad),
        "questions": len(examples),
        "open_book": open_book,
        "mode": mode,
        "EM": 100 * statistics.mean(em),
        "F1": 100 * statistics.mean(f1),
        "answered_pct": 100 * found / len(examples),
        "p50_s": sorted(latencies)[len(latencies) // 2],
    }
    if recall:
        result[f"recall@{k}"] = 100 * statistics.mean(recall)
    return result
