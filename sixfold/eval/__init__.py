"""``sixfold eval``: public benchmarks through the normal index and query path.

- ``datasets``: readers of the published formats (BEIR, SMART, XQuAD-R) with errors that name the file and line.
- ``reports``: the typed reports (``RetrievalReport``, ``QAReport``, ``ClassifyReport``) and their atomic JSON files.
- ``retrieval``, ``qa``, ``classify``: the runners, ``eval_retrieval``, ``eval_qa``, ``eval_classify`` (SQuAD EM/F1
  come from ``sixfold.reader.metrics``).

Names are imported on first use (PEP 562): ``import sixfold.eval.reports`` loads neither the runners nor the Engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sixfold.core.lazy import lazy_exports

_EXPORTS = {
    "eval_retrieval": "sixfold.eval.retrieval",
    "eval_qa": "sixfold.eval.qa",
    "eval_classify": "sixfold.eval.classify",
    "RetrievalReport": "sixfold.eval.reports",
    "ModeScores": "sixfold.eval.reports",
    "QAReport": "sixfold.eval.reports",
    "ClassifyReport": "sixfold.eval.reports",
    "RetrievalSet": "sixfold.eval.datasets",
    "load_retrieval_set": "sixfold.eval.datasets",
}
__all__ = [
    "ClassifyReport",
    "ModeScores",
    "QAReport",
    "RetrievalReport",
    "RetrievalSet",
    "eval_classify",
    "eval_qa",
    "eval_retrieval",
    "load_retrieval_set",
]

if TYPE_CHECKING:
    from sixfold.eval.classify import eval_classify
    from sixfold.eval.datasets import RetrievalSet, load_retrieval_set
    from sixfold.eval.qa import eval_qa
    from sixfold.eval.reports import ClassifyReport, ModeScores, QAReport, RetrievalReport
    from sixfold.eval.retrieval import eval_retrieval


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
