"""OpenAI's 2021 endpoints: ``POST /v1/search`` (and ``/v1/engines/{engine}/search``), ``/v1/classifications`` and
``/v1/answers``. Documents and examples come inline, from an uploaded file (``file``: the id of a ``search``,
``answers`` or ``classifications`` upload) or, for search and answers, from the server's index (``file: "index"``).

As OpenAI did, a file is searched in two steps: a keyword (BM25) pre-search picks up to ``max_rerank`` rows
(``max_examples`` for classifications), which the Engine then reranks by meaning. ``return_metadata`` adds each
row's ``metadata``, ``return_prompt`` the prompt (``prompt``), ``expand`` the whole ``completion`` and ``file``
objects instead of their ids. Each handler validates, calls the Service (the Engine under its locks) and shapes the
answer as OpenAI did."""

from __future__ import annotations

import time
from collections.abc import Sequence

from fastapi import APIRouter

from sixfold.core.errors import SixfoldError
from sixfold.http.errors import ApiError
from sixfold.http.limits import Deadline, DeadlineDep, Limits, LimitsDep, at_most
from sixfold.http.schemas import (
    AnswerRequest,
    ClassificationRequest,
    SearchRequest,
    inline_documents,
    new_id,
    uploaded_file,
)
from sixfold.http.service import Service, ServiceDep
from sixfold.http.uploads import DocumentFile
from sixfold.reader.types import Answer, Label, LabeledExample, Passage
from sixfold.retriever.types import Hit

router = APIRouter(prefix="/v1")
NO_READER = "extractive mode needs a tuned reader (POST /v1/fine-tunes) or SIXFOLD_READER"


# ---- search ------------------------------------------------------------------------------------
@router.post("/search")
def search_any(body: SearchRequest, service: ServiceDep, limits: LimitsDep, deadline: DeadlineDep) -> dict:
    """Rank inline ``documents`` (cosine), an uploaded ``search`` file (``file``: keyword pre-search, then cosine) or
    the index (``file: "index"`` or no documents; hybrid by default)."""
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
    file_id = uploaded_file(body.file)
    if file_id is not None:
        doc = service.files.documents(file_id, "search")
        ranked = service.rank_file(body.query, doc, body.max_rerank, body.max_rerank, deadline)
        data = [_file_result(doc, p, body.return_metadata) for p in ranked]
        return {"object": "list", "model": model, "file": file_id, "data": data}
    hits, generation = service.search(body.query, body.max_rerank, body.mode, deadline)
    data = [_search_result(hit, body.return_metadata) for hit in hits]
    return {"object": "list", "model": model, "generation": generation, "data": data}


def _search_result(hit: Hit, metadata: bool) -> dict:
    item = {"object": "search_result", "document": hit.chunk_id, "score": hit.score, "text": hit.text}
    if metadata:
        names = ("path", "location", "title", "heading", "page", "start_char", "end_char", "rank", "scores")
        item["metadata"] = {name: getattr(hit, name) for name in names}
    return item


def _file_result(doc: DocumentFile, passage: Passage, metadata: bool) -> dict:
    item = {"object": "search_result", "document": passage.id, "score": passage.score, "text": passage.text}
    if metadata:
        item["metadata"] = doc.rows[passage.id].metadata
    return item


# ---- classifications -------------------------------------------------------------------------------
@router.post("/classifications")
def classifications(body: ClassificationRequest, service: ServiceDep, limits: LimitsDep, deadline: DeadlineDep) -> dict:
    model = service.check_model(body.model) or service.embedder_name()
    service.check_model(body.search_model, ("embedder",), "search_model")
    classifier = model if model.startswith("classifier@") else None
    doc, cache = None, False
    examples: list[LabeledExample] | None
    if body.file is not None and body.examples is None:
        doc = _classifications_file(service, body.file)
        examples, cache = service.file_examples(body.query, doc, body.labels, body.max_examples, deadline)
        at_most(len(examples), limits.max_examples, "examples", "max_examples", "max_examples")
    elif body.examples is None and (body.labels or classifier or service.engine.tuned_classifier() is not None):
        examples = None  # zero-shot from the label names, or the tuned classifier's own examples
    else:
        examples = _examples(body, limits)
    label = service.classify(body.query, examples, deadline, cache=cache, labels=body.labels, classifier=classifier)
    tuned = label.decided_by.startswith("classifier@")
    out = _classification(label, label.decided_by if tuned else model, service.embedder_name(), doc, body.return_metadata)
    if body.return_prompt:
        out["prompt"] = _classification_prompt(body.query, examples or label.examples, label.scores)
    return _expanded(out, body.expand, doc, label.label)


def _classifications_file(service: Service, file: str) -> DocumentFile:
    file_id = uploaded_file(file)
    if file_id is None:
        raise ApiError(400, "the index holds no labels: name an uploaded classifications file, or give examples", param="file")
    return service.files.documents(file_id, "classifications")


def _examples(body: ClassificationRequest, limits: Limits) -> list[LabeledExample]:
    """The request's inline examples (only those of ``labels``, when given), each with its position as ``line``."""
    if body.file is not None:
        raise ApiError(400, "give either examples (inline) or file, not both", param="file")
    if not body.examples:
        raise ApiError(
            400, "examples are required: [[text, label], ...] inline, or file: an uploaded classifications file", param="examples"
        )
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


def _classification(label: Label, model: str, search_model: str, doc: DocumentFile | None, metadata: bool) -> dict:
    selected = []
    for e in label.examples:
        item = {"document": e.line, "label": e.label, "text": e.text, "score": e.similarity}
        if metadata and doc is not None and e.line is not None:
            item["metadata"] = doc.rows[e.line].metadata
        selected.append(item)
    return {
        "object": "classification",
        "model": model,
        "search_model": search_model,
        "completion": new_id("cmpl"),
        "label": label.label,
        "score": label.score,
        "scores": label.scores,
        "selected_examples": selected,
        "decided_by": label.decided_by,  # sixfold's: classifier@N, nearest examples (MODEL) or zero-shot (MODEL)
    }


def _classification_prompt(query: str, examples: list[LabeledExample], scores: dict[str, float]) -> str:
    """sixfold's classifier prompts no model: it compares the query with these examples by embedding. This lays out
    what it compared in OpenAI's classification prompt format, so a debugging client sees the same thing."""
    labels = ", ".join(scores)
    shown = "".join(f"Text: {' '.join(e.text.split())}\nCategory: {e.label}\n---\n" for e in examples)
    head = f"Please classify a piece of text into the following categories: {labels}.\n\n"
    return f"{head}{shown}Text: {' '.join(query.split())}\nCategory:"


# ---- answers -----------------------------------------------------------------------------------------
@router.post("/answers")
def answers(body: AnswerRequest, service: ServiceDep, limits: LimitsDep, deadline: DeadlineDep) -> dict:
    model = service.check_model(body.model) or service.generator
    service.check_model(body.search_model, ("embedder",), "search_model")
    documents = inline_documents(body.documents, body.file)
    file_id = uploaded_file(body.file)
    doc = service.files.documents(file_id, "answers") if file_id is not None else None
    reader = service.engine.reader_model()
    try:
        mode = service.engine.answer_mode(body.mode, reader)
    except SixfoldError:
        raise ApiError(400, NO_READER, param="mode") from None
    k = min(body.k, body.max_rerank)
    if documents is not None:
        at_most(len(documents), limits.max_documents, "documents", "max_documents", "documents")
        passages = service.rank_documents(body.question, documents, k, deadline)
    elif doc is not None:
        passages = service.rank_file(body.question, doc, body.max_rerank, k, deadline)
    else:
        passages = service.passages(body.question, k, deadline)
    answer = service.answer(body.question, passages, mode, reader, deadline)
    out = _answer(answer, passages, model, service.embedder_name(), doc, body.return_metadata)
    if body.return_prompt:
        out["prompt"] = service.answer_prompt(body.question, passages, answer.mode, deadline)
    return _expanded(out, body.expand, doc, answer.answer)


def _answer(
    answer: Answer, passages: list[Passage], model: str, search_model: str, doc: DocumentFile | None, metadata: bool
) -> dict:
    selected = []
    for p in passages:
        item = {"document": p.id, "text": p.text}
        if metadata and doc is not None:
            item["metadata"] = doc.rows[p.id].metadata
        selected.append(item)
    return {
        "object": "answer",
        "model": model,
        "search_model": search_model,
        "completion": new_id("cmpl"),
        "answers": [answer.answer],
        "selected_documents": selected,
        "found": answer.found,
        "confidence": answer.confidence,
        "mode": answer.mode,
        "citations": [c.__dict__ for c in answer.citations],
        "sources": [{"document": p.id, "path": p.path, "location": p.location} for p in passages],
        "notes": answer.notes,
    }


def _expanded(out: dict, expand: Sequence[str] | None, doc: DocumentFile | None, text: str) -> dict:
    """``file`` (the id of the file read, if any) and ``completion`` as ids, or as whole objects when ``expand``
    names them. sixfold's completion object holds the answer (or label) the reader produced, as its one choice."""
    expand = expand or []
    if doc is not None:
        out["file"] = dict(doc.meta) if "file" in expand else doc.id
    if "completion" in expand:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}
        out["completion"] = {
            "id": out["completion"],
            "object": "text_completion",
            "created": int(time.time()),
            "model": out["model"],
            "choices": [choice],
        }
    return out
