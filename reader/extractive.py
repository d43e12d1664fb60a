"""Extractive reader: a question-answering (span) model over the retrieved passages.

transformers' question-answering pipeline reads each passage in overlapping windows of the model's length
(``doc_stride``), so long passages are read whole, never truncated. Candidate spans from all passages are
pooled; the same answer found in several passages keeps its best score and cites every passage it came from.
"""

from __future__ import annotations

import logging
import re
import string
import warnings
from functools import lru_cache

from indexer.embedding import choose_device
from indexer.errors import SixfoldError
from indexer.models import resolve_model
from reader.types import Citation, Passage

SPANS_PER_PASSAGE = 3
MAX_ANSWER_TOKENS = 30


def normalize_answer(text: str) -> str:
    """The official SQuAD v1.1 normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


class ExtractiveReader:
    def __init__(self, name: str, path: str, device: str) -> None:
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer, pipeline

        logging.getLogger("transformers").setLevel(logging.ERROR)
        self.name = name
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model = AutoModelForQuestionAnswering.from_pretrained(path, local_files_only=True)
        except Exception as exc:
            raise SixfoldError(f"cannot load extractive reader {name}: {type(exc).__name__}: {exc}") from None
        self.max_length = min(int(getattr(tokenizer, "model_max_length", 384) or 384), 384)
        self.pipe = pipeline("question-answering", model=model, tokenizer=tokenizer, device=device)

    def spans(
        self, question: str, passages: list[Passage], top_k: int = SPANS_PER_PASSAGE
    ) -> list[tuple[str, float, Passage, int, int]]:
        """(answer, score, passage, start, end) candidates, best first."""
        if not passages:
            return []
        inputs = [{"question": question, "context": p.text} for p in passages]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outputs = self.pipe(
                inputs,
                top_k=top_k,
                doc_stride=min(128, self.max_length // 3),
                max_seq_len=self.max_length,
                max_answer_len=MAX_ANSWER_TOKENS,
                handle_impossible_answer=False,
            )
        if (
            len(passages) == 1
            and isinstance(outputs, (dict, list))
            and (isinstance(outputs, dict) or isinstance(outputs[0], dict))
        ):
            outputs = [outputs]
        found = []
        for passage, candidates in zip(passages, outputs):
            candidates = [candidates] if isinstance(candidates, dict) else candidates
            for c in candidates:
                answer = c["answer"].strip()
                if answer:
                    found.append((answer, float(c["score"]), passage, int(c["start"]), int(c["end"])))
        return sorted(found, key=lambda item: -item[1])

    def answer(self, question: str, passages: list[Passage]) -> tuple[str, float, list[Citation]]:
        """The best answer over all passages, its score and the passages it came from ('' when none)."""
        candidates = self.spans(question, passages)
        if not candidates:
            return "", 0.0, []
        best_text, best_score, *_ = candidates[0]
        key = normalize_answer(best_text)
        citations, cited = [], set()
        for text, _score, passage, start, end in candidates:
            if normalize_answer(text) == key and passage.id not in cited:
                cited.add(passage.id)
                snippet = passage.text[max(0, start - 120) : end + 120].strip()
                citations.append(Citation(passage.id, passage.path, passage.location, snippet, start, end))
        return best_text, best_score, citations


@lru_cache(maxsize=2)
def _cached(name: str, path: str, device: str) -> ExtractiveReader:
    return ExtractiveReader(name, path, device)


def load_extractive(spec: str) -> ExtractiveReader:
    model = resolve_model(spec, role="reader")
    return _cached(model.name, model.path, choose_device())
