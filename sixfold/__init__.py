"""sixfold: local retrieval-augmented search and QA over your own documents.

The names below are imported when first used (PEP 562), so ``import sixfold.indexer.store`` or the CLI's
``--help`` do not pay for the Engine, torch or the models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sixfold.core.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "Engine": "sixfold.engine",
    "IndexStatus": "sixfold.engine",
    "SixfoldError": "sixfold.core.errors",
    "IndexReport": "sixfold.indexer.pipeline",
    "Hit": "sixfold.retriever.types",
    "Answer": "sixfold.reader.types",
    "Citation": "sixfold.reader.types",
    "Label": "sixfold.reader.types",
    "Completion": "sixfold.reader.types",
    "Passage": "sixfold.reader.types",
    "RetrievalReport": "sixfold.eval.reports",
    "QAReport": "sixfold.eval.reports",
    "ClassifyReport": "sixfold.eval.reports",
    "ModelVersion": "sixfold.engine",
    "RoleModels": "sixfold.engine",
}
__all__ = [
    "Answer",
    "Citation",
    "ClassifyReport",
    "Completion",
    "Engine",
    "Hit",
    "IndexReport",
    "IndexStatus",
    "Label",
    "ModelVersion",
    "Passage",
    "QAReport",
    "RetrievalReport",
    "RoleModels",
    "SixfoldError",
]

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports on first use
    from sixfold.core.errors import SixfoldError
    from sixfold.engine import Engine, IndexStatus, ModelVersion, RoleModels
    from sixfold.eval.reports import ClassifyReport, QAReport, RetrievalReport
    from sixfold.indexer.pipeline import IndexReport
    from sixfold.reader.types import Answer, Citation, Completion, Label, Passage
    from sixfold.retriever.types import Hit


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
