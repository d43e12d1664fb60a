"""`sixfold eval`: public benchmarks through the normal index and query path, scored by standard libraries.

- retrieval: a BEIR folder, a classic SMART collection (Cranfield, CISI, MEDLINE) or an XQuAD-R file (see
  ``eval_data``); the corpus is written as one markdown file per document (title as heading) and indexed with
  ``Engine.index``, so eval measures what users get; chunk hits are pooled to documents (best chunk); nDCG@10,
  Recall@10/100 and MRR@10 by ir-measures over the judged queries.
- qa: SQuAD v1.1 JSON; EM/F1 with the official normalisation, given the gold paragraph (extractive reader) or
  open-book over the indexed paragraphs.
- classify: train/test files of labeled texts; accuracy and macro-F1 by scikit-learn.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from sixfold.core import config
from sixfold.core.errors import SixfoldError
from sixfold.eval_data import RetrievalSet, load_beir, load_retrieval_set

__all__ = ["RETRIEVAL_MODES", "eval_classify", "eval_qa", "eval_retrieval", "load_beir", "load_retrieval_set"]

RETRIEVAL_MODES = ("bm25", "dense", "hybrid", "hybrid+rerank")


# ---- retrieval ----------------------------------------------------------------------------------
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
    dataset: str | Path | RetrievalSet,
    modes: list[str],
    index_dir: str | Path,
    *,
    split: str = "test",
    limit: int | None = None,
    rerank: str | None = None,
    rerank_depth: int | None = None,
    depth: int = 100,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Index the collection with the normal pipeline and score each retrieval mode over its judged queries.

    ``hybrid+rerank`` uses ``rerank`` (a cross-encoder folder), else the eval index's active tuned reranker.
    """
    import ir_measures
    from ir_measures import RR, R, nDCG

    from sixfold.engine import Engine

    say = progress or (lambda message: None)
    for mode in modes:
        if mode not in RETRIEVAL_MODES:
            raise SixfoldError(f"unknown retrieval mode '{mode}' (choose from {', '.join(RETRIEVAL_MODES)})")
    data = dataset if isinstance(dataset, RetrievalSet) else load_retrieval_set(dataset, split)
    index_dir = Path(index_dir)
    engine = Engine.open(index_dir)
    if "hybrid+rerank" in modes:
        rerank = rerank or engine.active_model("reranker")
        if not rerank:
            raise SixfoldError(
                "mode hybrid+rerank needs a reranker: --rerank FOLDER, or train one into the eval index with "
                "`sixfold tune reranker --index INDEX` (no reranker ships with sixfold; see docs/models.md)"
            )
    queries, qrels = data.queries, data.qrels
    if limit:
        queries = dict(list(queries.items())[:limit])
        qrels = {q: qrels[q] for q in queries}
    for note in data.notes:
        say(f"note: {note}")
    stems, index_seconds = index_retrieval_set(data, index_dir, say)
    measures = [nDCG @ 10, R @ 10, R @ 100, RR @ 10]
    qrel_rows = [ir_measures.Qrel(q, d, rel) for q, docs in qrels.items() for d, rel in docs.items()]
    results = {
        "dataset": str(dataset if not isinstance(dataset, RetrievalSet) else data.name),
        "name": data.name,
        "format": data.format,
        "split": split,
        "queries": len(queries),
        "queries_total": data.queries_total,
        "documents": len(data.corpus),
        "chunks": engine.status().chunks,
        "index_seconds": index_seconds,
        "notes": data.notes,
        "reranker": rerank if "hybrid+rerank" in modes else None,
        "modes": {},
    }
    for mode in modes:
        run, latencies = [], []
        search_mode = "hybrid" if mode == "hybrid+rerank" else mode
        extra = {"rerank_depth": rerank_depth} if rerank_depth else {}
        started = time.perf_counter()
        for qid, text in queries.items():
            t = time.perf_counter()
            hits = engine.search(text, k=depth * 3, mode=search_mode, rerank=rerank if mode == "hybrid+rerank" else None, **extra)
            latencies.append(time.perf_counter() - t)
            run += [ir_measures.ScoredDoc(qid, doc, score) for doc, score in _pool_documents(hits, stems, depth).items()]
        seconds = time.perf_counter() - started
        scores = ir_measures.calc_aggregate(measures, qrel_rows, run)
        latencies.sort()
        results["modes"][mode] = {
            "nDCG@10": scores[nDCG @ 10],
            "Recall@10": scores[R @ 10],
            "Recall@100": scores[R @ 100],
            "MRR@10": scores[RR @ 10],
            "seconds": seconds,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p95_ms": 1000 * latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
        }
        say(f"{mode}: nDCG@10 {scores[nDCG @ 10]:.4f}")
    return results


def index_retrieval_set(data: RetrievalSet, index_dir: str | Path, say: Callable[[str], None] | None = None):
    """Write the collection as one markdown file per document into ``<index>-corpus`` and index that folder with
    ``Engine.index`` (incremental: a second run embeds nothing). Returns (file stem -> doc id, seconds)."""
    from sixfold.engine import Engine

    index_dir = Path(index_dir)
    corpus_dir = index_dir.parent / f"{index_dir.name}-corpus"
    stems = write_beir_corpus(data.corpus, corpus_dir)
    engine = Engine.open(index_dir)
    started = time.perf_counter()
    report = engine.index(corpus_dir, language=data.language)
    seconds = time.perf_counter() - started
    engine.close()
    if say:
        say(f"index: {report.added} added, {report.unchanged} unchanged, {report.chunks_added} chunks in {seconds:.0f} s")
    return stems, seconds


def reranker_queries(data: RetrievalSet):
    """The collection's judged queries as reranker training / eval queries (relevant files = document stems)."""
    from sixfold.tuner.data import RerankQuery

    return [
        RerankQuery(data.queries[q], frozenset(_safe_name(d) for d, gain in docs.items() if gain > 0))
        for q, docs in data.qrels.items()
    ]


def _pool_documents(hits, stems: dict[str, str], depth: int) -> dict[str, float]:
    """Chunk hits -> documents, each ranked by its best chunk; scores are descending ranks."""
    seen: dict[str, float] = {}
    for hit in hits:
        doc = stems.get(Path(hit.path).stem)
        if doc is not None and doc not in seen:
            seen[doc] = float(len(hits) - len(seen))
        if len(seen) >= depth:
            break
    return seen


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

    from sixfold.core.models import DEFAULT_EMBEDDER
    from sixfold.indexer.embedding import load_embedder
    from sixfold.reader.classify import Classifier, load_examples

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
    from sixfold.engine import Engine
    from sixfold.reader.answer import answer_question
    from sixfold.reader.extractive import load_extractive
    from sixfold.reader.metrics import exact_match, f1_score
    from sixfold.reader.types import Passage
    from sixfold.tuner.data import load_qa_file

    examples = load_qa_file(squad)
    if limit:
        examples = random.Random(seed).sample(examples, min(limit, len(examples)))
    reader = reader or config.default_reader()
    if mode == "extractive" and not reader:
        raise SixfoldError(
            "eval qa needs --reader FOLDER or $SIXFOLD_READER (an extractive QA model; none ships with sixfold: "
            "`sixfold tune reader` makes one)"
        )
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
