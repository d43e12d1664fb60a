"""Extractive reader: a question-answering (span) model over the retrieved passages.

Each passage is read in overlapping windows of the model's length, so long passages are read whole, never
truncated. Candidate spans from all passages are pooled; the same answer found in several passages keeps its
best score and cites every passage it came from.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sixfold.core.loading import load_model, quiet_loading
from sixfold.core.models import ResolvedModel
from sixfold.indexer.chunking import word_window
from sixfold.reader.metrics import normalize_answer
from sixfold.reader.types import Citation, Passage

if TYPE_CHECKING:  # transformers is imported when a reader is loaded, not by every command that imports this module
    from transformers import BatchEncoding, PreTrainedTokenizerBase

SPANS_PER_PASSAGE = 3
MAX_ANSWER_TOKENS = 30
# On SQuAD dev (bench, 120 held-out questions, k=5) weighting spans by passage similarity raised open-book F1
# from 16.0 (raw span probability across passages) to 32.0, near reading the top passage only (33.6).
PASSAGE_TEMPERATURE = 0.05


def question_windows(
    tokenizer: PreTrainedTokenizerBase, questions: list[str], contexts: list[str], max_length: int, stride: int, **options: Any
) -> BatchEncoding:
    """Tokenise (question, context) pairs into the windows a span reader reads, the same for training
    (``tuner/reader.py``) and answering: the question stripped of surrounding space, then as much of the context as
    fits in ``max_length`` tokens; a longer context goes on in further windows that overlap by ``stride`` tokens, so
    no answer is cut off. Each window keeps its tokens' character offsets (``offset_mapping``) and the pair it came
    from (``overflow_to_sample_mapping``). ``options``: padding and tensor type, as the caller needs them."""
    return tokenizer(
        [q.strip() for q in questions],
        contexts,
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        **options,
    )


class ExtractiveReader:
    """Span prediction with a transformers question-answering model.

    transformers 5 dropped the question-answering pipeline, so the usual post-processing is done here:
    each passage is read in overlapping windows of the model's length (never truncated), and a span's score
    is p(start) * p(end) under softmaxes over the window's context tokens, as the old pipeline scored it.
    """

    def __init__(self, name: str, path: str, device: str) -> None:
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        self.name = name
        self.device = device
        with quiet_loading("extractive reader", name, "transformers"):
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            # Half-precision checkpoints are read as float32 on a CPU (fp16 matmuls there are slow or missing).
            dtype = "float32" if device == "cpu" else "auto"
            self.model = AutoModelForQuestionAnswering.from_pretrained(path, local_files_only=True, dtype=dtype)
        self.model.to(device).eval()
        limit = int(getattr(self.tokenizer, "model_max_length", 384) or 384)
        self.max_length = min(limit if limit < 100_000 else 384, 384)
        self.stride = self.max_length // 3

    @classmethod
    def from_model(cls, model: ResolvedModel, device: str) -> ExtractiveReader:
        return cls(model.name, model.path, device)

    def spans(
        self, question: str, passages: list[Passage], top_k: int = SPANS_PER_PASSAGE
    ) -> list[tuple[str, float, Passage, int, int]]:
        """(answer, score, passage, start, end) candidates over all passages, best first."""
        import torch

        if not passages:
            return []
        enc = question_windows(
            self.tokenizer,
            [question] * len(passages),
            [p.text for p in passages],
            self.max_length,
            self.stride,
            padding=True,
            return_tensors="pt",
        )
        sample_map = enc.pop("overflow_to_sample_mapping").tolist()
        offsets = enc.pop("offset_mapping").tolist()
        inputs = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.inference_mode():
            out = self.model(**inputs)
        starts, ends = out.start_logits.float().cpu(), out.end_logits.float().cpu()
        found: dict[tuple[int, int, int], float] = {}
        for w in range(len(sample_map)):
            sequence_ids = enc.sequence_ids(w)
            context = torch.tensor([sid == 1 for sid in sequence_ids])
            if not context.any():
                continue
            p_start = torch.softmax(starts[w].masked_fill(~context, -1e4), dim=-1)
            p_end = torch.softmax(ends[w].masked_fill(~context, -1e4), dim=-1)
            best_starts = torch.topk(p_start, min(20, int(context.sum()))).indices.tolist()
            best_ends = torch.topk(p_end, min(20, int(context.sum()))).indices.tolist()
            for i in best_starts:
                for j in best_ends:
                    if j < i or j - i + 1 > MAX_ANSWER_TOKENS or not (context[i] and context[j]):
                        continue
                    char_start, char_end = offsets[w][i][0], offsets[w][j][1]
                    key = (sample_map[w], char_start, char_end)
                    found[key] = max(found.get(key, 0.0), float(p_start[i] * p_end[j]))
        per_passage: dict[int, list] = {}
        for (sample, char_start, char_end), score in sorted(found.items(), key=lambda kv: -kv[1]):
            bucket = per_passage.setdefault(sample, [])
            if len(bucket) < top_k:
                passage = passages[sample]
                text = passage.text[char_start:char_end].strip()
                if text:
                    bucket.append((text, score, passage, char_start, char_end))
        return sorted((c for bucket in per_passage.values() for c in bucket), key=lambda item: -item[1])

    def answer(self, question: str, passages: list[Passage]) -> tuple[str, float, list[Citation]]:
        """The best answer over all passages, its score and the passages it came from ('' when none)."""
        candidates = self.spans(question, passages)
        if not candidates:
            return "", 0.0, []
        # A span's own probability is relative to its passage; weigh it by how close that passage is to the
        # question, so a confident span in a weak passage does not beat the right passage's answer.
        top = max((p.dense for p in passages if p.dense is not None), default=None)

        def weighted(candidate: tuple) -> float:
            passage = candidate[2]
            if top is None or passage.dense is None:
                return candidate[1]
            return candidate[1] * math.exp((passage.dense - top) / PASSAGE_TEMPERATURE)

        candidates = sorted(candidates, key=lambda c: -weighted(c))
        best_text = candidates[0][0]
        best_score = weighted(candidates[0])
        key = normalize_answer(best_text)
        citations, cited = [], set()
        for text, _score, passage, start, end in candidates:
            if normalize_answer(text) == key and passage.id not in cited:
                cited.add(passage.id)
                snippet = word_window(passage.text, start, end, 120)
                citations.append(Citation(passage.id, passage.path, passage.location, snippet, start, end))
        return best_text, best_score, citations


def load_extractive(spec: str) -> ExtractiveReader:
    """A span (QA) reader by name or folder, loaded once per process."""
    return load_model("reader", spec, ExtractiveReader.from_model)
