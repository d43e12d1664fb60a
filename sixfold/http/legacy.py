"""OpenAI's 2021 endpoints: ``POST /v1/search`` (and ``/v1/engines/{engine}/search``), ``/v1/classifications`` and
``/v1/answers``. Documents and examples come inline; ``file`` may only name the server's index (``"index"``).
Each handler validates, calls the Service (the Engine under its locks) and shapes the answer as OpenAI did."""

from __future__ import annotations

from fastapi import APIRouter

from sixfold.core.errors import SixfoldError
from sixfold.http.errors import ApiError
from sixfold.http.limits import Deadline, DeadlineDep, Limits, LimitsDep, at_most
from sixfold.http.schemas import AnswerRequest, ClassificationRequest, SearchRequest, inline_documents, new_id
from sixfold.http.service import Service, ServiceDep
from sixfold.reader.types import Answer, Label, LabeledExample, Passage
from sixfold.retriever.types import Hit

router = APIRouter(prefix="/v1")
NO_READER = "extractive mode needs a tuned reader (POST /v1/fine-tunes) or SIXFOLD_READER"


# ---- search ------------------------------------------------------------------------------------
@router.post("/search")
def search_any(body: SearchRequest, service: ServiceDep, limits: LimitsDep, deadline: DeadlineDep) -> dict:
    """Rank inline ``documents`` (cosine) or the index (``file: "index"`` or no documents; hybrid by default)."""
    return _search(body, None, service, limits, deadline)


@router.post("/engines/{engine_id}/search")
def search_engine(engine_id: str, body: SearchRequest, service: ServiceDep, limits: LimitsDep, deadline: DeadlineDep) -> dict:
    return _search(body, engine_id, service, limits, deadline)


def _search(body: SearchRequest, engine_id: str | None, service: Service, limits: Limits, deadline: Deadline) -> dict:
    model = service.check_model(body.model or engine_id, ("embedder",)) or service.embedder_name()
    documents = inline_documents(body.documents, body.file)
    if documents is not None:
        at_most(len(documents), limits.max_documents, "documents", "max_documents", "documents")
        ranked = service.rank_documents(body.query, documents, body.max_rerank, deadline)
        data = [{"object": "search_result", "document": p.id, "score": p.score} for p in ranked]
        return {"object": "list", "model": model, "data": data}
    hits, generation = service.search(body.query, body.max_rerank, body.mode, deadline)
    data = [_search_result(hit, body.return_metadata) for hit in hits]
    return {"object": "list", "model": model, "generation": generation, "data": data}


def _search_result(hit: Hit, metadata: bool) -> dict:
    item = {"object": "search_result", "document": hit.chunk_id, "score": hit.score, "text": hit.text}
    if metadata:
        names = ("path", "location", "title", "heading", "page", "start_char", "end_char", "rank", "scores")
        item["metadata"] = {name: getattr(hit, name) for name in names}
    return item


# ---- classifications -------------------------------------------------------------------------------
@router.post("/classifications")
def classifications(body: ClassificationRequest, service: ServiceDep, limits: LimitsDep, deadline: DeadlineDep) -> dict:
    model = service.check_model(body.model) or service.embedder_name()
    service.check_model(body.search_model, ("embedder",), "search_model")
    label = service.classify(body.query, _examples(body, limits), deadline)
    return _classification(label, model, service.embedder_name())


def _examples(body: ClassificationRequest, limits: Limits) -> list[LabeledExample]:
    """The request's inline examples (only those of ``labels``, when given), each with its position as ``line``."""
    if body.file is not None:
        raise ApiError(400, "give the labeled examples inline as examples: [[text, label], ...]", param="file")
    if not body.examples:
        raise ApiError(400, "examples are required: [[text, label], ...]", param="examples")
    at_most(len(body.examples), limits.max_examples, "examples", "max_examples", "examples")
    examples = []
    for i, (text, label) in enumerate(body.examples):
        if not text.strip() or not label.strip():
            raise ApiError(400, f"examples[{i}] has an empty text or label", param=f"examples[{i}]")
        examples.append(LabeledExample(text.strip(), label.strip(), line=i))
    if body.labels:
        have = {e.label for e in examples}
        missing = [label for label in body.labels if label not in have]
        if missing:
            raise ApiError(400, f"label '{missing[0]}' has no examples; give examples for every label", param="labels")
        examples = [e for e in examples if e.label in set(body.labels)]
    return examples


def _classification(label: Label, model: str, search_model: str) -> dict:
    return {
        "object": "classification",
        "model": model,
        "search_model": search_model,
        "completion": new_id("cmpl"),
        "label": label.label,
        "score": label.score,
        "scores": label.scores,
        "selected_examples": [
            {"document": e.line, "label": e.label, "text": e.text, "score": e.similarity} for e in label.examples
        ],
    }


# ---- answers -----------------------------------------------------------------------------------------
@router.post("/answers")
def answers(body: AnswerRequest, service: ServiceDep, limits: LimitsDep, deadline: DeadlineDep) -> dict:
    model = service.check_model(body.model) or service.generator
    service.check_model(body.search_model, ("embedder",), "search_model")
    documents = inline_documents(body.documents, body.file)
    reader = service.engine.reader_model()
    try:
        mode = service.engine.answer_mode(body.mode, reader)
    except SixfoldError:
        raise ApiError(400, NO_READER, param="mode") from None
    k = min(body.k, body.max_rerank)
    if documents is not None:
        at_most(len(documents), limits.max_documents, "documents", "max_documents", "documents")
        passages = service.rank_documents(body.question, documents, k, deadline)
    else:
        passages = service.passages(body.question, k, deadline)
    answer = service.answer(body.question, passages, mode, reader, deadline)
    return _answer(answer, passages, model, service.embedder_name())


def _answer(answer: Answer, passages: list[Passage], model: str, search_model: str) -> dict:
    return {
        "object": "answer",
        "model": model,
        "search_model": search_model,
        "completion": new_id("cmpl"),
        "answers": [answer.answer],
        "selected_documents": [{"document": p.id, "text": p.text} for p in passages],
        "found": answer.found,
        "confidence": answer.confidence,
        "mode": answer.mode,
        "citations": [c.__dict__ for c in answer.citations],
        "sources": [{"document": p.id, "path": p.path, "location": p.location} for p in passages],
        "notes": answer.notes,
    }
