"""``sixfold eval retrieval``: a BEIR folder, a classic SMART collection (Cranfield, CISI, MEDLINE) or an XQuAD-R
file (see ``datasets``), indexed with ``Engine.index`` so eval measures what users get.

The corpus is written as one markdown file per document (title as heading); chunk hits are pooled to documents
(best chunk); nDCG@10, Recall@10/100 and MRR@10 by ir-measures over the judged queries. The same collections give
``sixfold tune reranker --beir`` its training and held-out queries.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sixfold.core.errors import SixfoldError
from sixfold.eval.datasets import RetrievalSet, load_beir_set, load_retrieval_set
from sixfold.eval.reports import ModeScores, RetrievalReport

if TYPE_CHECKING:
    from sixfold.engine import Engine
    from sixfold.retriever.types import Hit
    from sixfold.tuner.data import RerankQuery

# "default": what a user's search does when no mode is named (Engine.query_mode: per query, by its language)
RETRIEVAL_MODES = ("bm25", "dense", "hybrid", "hybrid+rerank", "default")
Say = Callable[[str], None]
# Status fields about an index's contents and upkeep; every other field is something the index was given or picked
# (embedder, search mode, languages, chunking, ...), so fields added to the status later are reported as they come.
STATUS_BOOKKEEPING = frozenset({"path", "documents", "chunks", "size_bytes", "generation", "created_at", "updated_at", "health"})


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


def index_retrieval_set(
    data: RetrievalSet, index_dir: str | Path, say: Say | None = None, model: str | None = None
) -> tuple[dict[str, str], float]:
    """Write the collection as one markdown file per document into ``<index>-corpus`` and index that folder with
    ``Engine.index`` (incremental: a second run embeds nothing). Returns (file stem -> doc id, seconds)."""
    from sixfold.engine import Engine

    index_dir = Path(index_dir)
    stems = write_beir_corpus(data.corpus, index_dir.parent / f"{index_dir.name}-corpus")
    engine = Engine.open(index_dir, model=model)
    started = time.perf_counter()
    report = engine.index(index_dir.parent / f"{index_dir.name}-corpus", language=data.language)
    seconds = time.perf_counter() - started
    engine.close()
    if say:
        say(f"index: {report.added} added, {report.unchanged} unchanged, {report.chunks_added} chunks in {seconds:.0f} s")
    return stems, seconds


def index_defaults(status: object) -> dict[str, Any]:
    """What an index got (``Engine.status()`` less ``STATUS_BOOKKEEPING``), read from whatever fields the status has."""
    if hasattr(status, "to_dict"):
        fields = dict(status.to_dict())
    elif dataclasses.is_dataclass(status) and not isinstance(status, type):
        fields = dataclasses.asdict(status)
    else:
        fields = dict(vars(status))
    return {key: value for key, value in fields.items() if key not in STATUS_BOOKKEEPING and not key.startswith("_")}


def _query_modes(engine: Engine, queries: dict[str, str]) -> dict[str, int] | None:
    """How many queries the 'default' mode searches in each mode (it picks one per query by its language)."""
    pick = getattr(engine, "query_mode", None)
    if pick is None:
        return None
    return dict(Counter(pick(text) for text in queries.values()).most_common())


def _pool_documents(hits: list[Hit], stems: dict[str, str], depth: int) -> dict[str, float]:
    """Chunk hits -> documents, each ranked by its best chunk; scores are descending ranks."""
    seen: dict[str, float] = {}
    for hit in hits:
        doc = stems.get(Path(hit.path).stem)
        if doc is not None and doc not in seen:
            seen[doc] = float(len(hits) - len(seen))
        if len(seen) >= depth:
            break
    return seen


def _check_modes(modes: Sequence[str]) -> None:
    for mode in modes:
        if mode not in RETRIEVAL_MODES:
            raise SixfoldError(f"unknown retrieval mode '{mode}' (choose from {', '.join(RETRIEVAL_MODES)})")


def _reranker(engine: Engine, rerank: str | None) -> str:
    """The cross-encoder ``hybrid+rerank`` uses: ``rerank``, else the eval index's tuned one."""
    rerank = rerank or engine.active_model("reranker")
    if not rerank:
        raise SixfoldError(
            "mode hybrid+rerank needs a reranker: --rerank FOLDER, or train one into the eval index with "
            "`sixfold tune reranker --index INDEX` (no reranker ships with sixfold; see docs/models.md)"
        )
    return rerank


def _score_mode(
    engine: Engine, queries: dict[str, str], qrels: dict[str, dict[str, int]], stems: dict[str, str], depth: int, **search
) -> ModeScores:
    """One mode's measures: each query searched ``3 * depth`` chunks deep, pooled to its top ``depth`` documents."""
    import ir_measures
    from ir_measures import RR, R, nDCG

    run, latencies = [], []
    started = time.perf_counter()
    for qid, text in queries.items():
        t = time.perf_counter()
        hits = engine.search(text, k=depth * 3, **search)
        latencies.append(time.perf_counter() - t)
        run += [ir_measures.ScoredDoc(qid, doc, score) for doc, score in _pool_documents(hits, stems, depth).items()]
    seconds = time.perf_counter() - started
    qrel_rows = [ir_measures.Qrel(q, d, rel) for q, docs in qrels.items() for d, rel in docs.items()]
    scores = ir_measures.calc_aggregate([nDCG @ 10, R @ 10, R @ 100, RR @ 10], qrel_rows, run)
    latencies.sort()
    return ModeScores(
        ndcg10=scores[nDCG @ 10],
        recall10=scores[R @ 10],
        recall100=scores[R @ 100],
        mrr10=scores[RR @ 10],
        seconds=seconds,
        p50_ms=1000 * latencies[len(latencies) // 2],
        p95_ms=1000 * latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
    )


def eval_retrieval(
    dataset: str | Path | RetrievalSet,
    modes: Sequence[str],
    index_dir: str | Path,
    *,
    split: str = "test",
    limit: int | None = None,
    rerank: str | None = None,
    rerank_depth: int | None = None,
    depth: int = 100,
    progress: Say | None = None,
    model: str | None = None,
) -> RetrievalReport:
    """Index the collection with the normal pipeline and score each retrieval mode over its judged queries.

    ``hybrid+rerank`` uses ``rerank`` (a cross-encoder folder), else the eval index's active tuned reranker.
    """
    from sixfold.engine import Engine

    say = progress or (lambda message: None)
    _check_modes(modes)
    data = dataset if isinstance(dataset, RetrievalSet) else load_retrieval_set(dataset, split)
    engine = Engine.open(index_dir, model=model)
    rerank = _reranker(engine, rerank) if "hybrid+rerank" in modes else None
    queries = dict(list(data.queries.items())[:limit]) if limit else data.queries
    qrels = {q: data.qrels[q] for q in queries}
    for note in data.notes:
        say(f"note: {note}")
    stems, index_seconds = index_retrieval_set(data, index_dir, say, model)
    status = engine.status()
    picked = f"{'named' if model else 'defaults picked'}: embedder {status.model}, search mode {status.search_mode}"
    data.notes = [*data.notes, picked + f", chunks by language {status.languages}"]
    say(f"note: {data.notes[-1]}")
    report = RetrievalReport(
        dataset=str(dataset if not isinstance(dataset, RetrievalSet) else data.name),
        name=data.name,
        format=data.format,
        split=split,
        queries=len(queries),
        queries_total=data.queries_total,
        documents=len(data.corpus),
        chunks=status.chunks,
        index_seconds=index_seconds,
        notes=data.notes,
        reranker=rerank,
    )
    if data.query_language is not None:  # cross-lingual: which language is which, and what the index picked
        report.query_language, report.corpus_language = data.query_language, data.language
        report.index_defaults = index_defaults(status)
        if "default" in modes:
            report.query_modes = _query_modes(engine, queries)
    extra = {"rerank_depth": rerank_depth} if rerank_depth else {}
    for mode in modes:
        reranked = mode == "hybrid+rerank"
        chosen = None if mode == "default" else "hybrid" if reranked else mode
        search = {"mode": chosen, "rerank": rerank if reranked else None, **extra}
        report.modes[mode] = _score_mode(engine, queries, qrels, stems, depth, **search)
        say(f"{mode}: nDCG@10 {report.modes[mode].ndcg10:.4f}")
    return report


# ---- reranker training queries -----------------------------------------------------------------
def reranker_queries(data: RetrievalSet) -> list[RerankQuery]:
    """The collection's judged queries as reranker training / eval queries (relevant files = document stems)."""
    from sixfold.tuner.data import RerankQuery

    return [
        RerankQuery(data.queries[q], frozenset(_safe_name(d) for d, gain in docs.items() if gain > 0))
        for q, docs in data.qrels.items()
    ]


def reranker_training_queries(
    index: str | Path,
    *,
    beir: str | Path | None = None,
    pairs: str | Path | None = None,
    split: str = "train",
    eval_split: str | None = None,
    seed: int = 0,
    eval_limit: int | None = None,
    say: Say | None = None,
) -> tuple[list[RerankQuery], list[RerankQuery]]:
    """(train, held-out) queries for ``sixfold tune reranker``: a BEIR split's judged queries (the corpus is indexed
    into ``index`` first, incrementally) or a pairs file (the index must exist). Without ``eval_split`` a share
    (``RERANK_HOLDOUT``) of the training queries is held out by query; at most ``eval_limit`` are scored (None: all)."""
    from sixfold.tuner.data import RERANK_HOLDOUT, load_rerank_pairs, split_queries

    dev = None
    if beir:
        data = load_beir_set(beir, split)
        index_retrieval_set(data, index, say)
        train = reranker_queries(data)
        dev = reranker_queries(load_beir_set(beir, eval_split)) if eval_split else None
    elif pairs is not None:
        from sixfold.indexer.store import IndexStore

        IndexStore(index).read_pointer()  # the negatives come from the index: it must exist
        train = load_rerank_pairs(pairs)
    else:
        raise SixfoldError("reranker training needs queries: a BEIR folder (beir) or a pairs file (pairs)")
    if dev is None:
        train, dev = split_queries(train, RERANK_HOLDOUT, seed, cap=len(train) if eval_limit is None else eval_limit)
    return train, dev[:eval_limit]
