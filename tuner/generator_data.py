"""Training rows for the generator (``sixfold tune generator``, ``/v1/fine_tuning/jobs``), and how a row becomes text.

Three sources, one row type:

- OpenAI fine-tune files (JSONL): ``{"prompt", "completion"}`` rows (2021) or chat ``{"messages": [...]}`` rows
  (current), the last message the assistant's reply to learn;
- QA pairs with their passages (``{question, context, answer(s)}`` JSONL or SQuAD JSON, as ``tune reader`` reads):
  the row is the prompt ``ask`` sends (the passage's sentences, numbered) and the reply it should get,
  ``ANSWER: <answer> [n]`` citing the sentence that holds the answer, or ``NOT FOUND`` when the pair has none;
- raw domain text (``--corpus FOLDER``): chunks with no prompt, every token learned (continued pre-training).

``render`` turns a row into (prompt, completion) text with the model's own chat template; the loss is taken on the
completion's tokens only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from sixfold.core.errors import SixfoldError

if TYPE_CHECKING:
    from sixfold.reader.llm import LanguageModel

ROLES = ("system", "user", "assistant")


@dataclass
class GeneratorRow:
    """One training or eval row. ``kind``: "completion", "chat", "qa" or "text"."""

    kind: str
    prompt: str = ""
    completion: str = ""
    messages: list[dict] = field(default_factory=list)
    question: str = ""
    context: str = ""
    answers: list[str] = field(default_factory=list)

    def gold(self) -> list[str]:
        """What a generated reply is scored against (exact match / F1)."""
        if self.kind == "qa":
            return self.answers or [""]
        if self.kind == "chat":
            return [self.messages[-1]["content"].strip()]
        return [self.completion.strip()]


def file_format(path: str | os.PathLike[str]) -> str:
    """ "completion", "chat" or "qa": what the first row of a JSONL file holds (SQuAD JSON is "qa")."""
    source = Path(path)
    if source.suffix.lower() == ".json":
        return "qa"
    with open(source, encoding="utf-8-sig") as handle:
        head = handle.read(4000)
        if head.lstrip().startswith("{") and '"data"' in head:  # SQuAD JSON (an upload is stored as .jsonl anyway)
            return "qa"
        handle.seek(0)
        for number, line in enumerate(handle, 1):
            if line.strip():
                return _row_kind(_json_row(line, number), number)
    raise SixfoldError(f"{path} holds no rows")


def _json_row(line: str, number: int) -> dict:
    try:
        row = json.loads(line)
    except ValueError as exc:
        raise SixfoldError(f"line {number}: not JSON ({exc})") from None
    if not isinstance(row, dict):
        raise SixfoldError(f"line {number}: expected a JSON object")
    return row


def _row_kind(row: dict, number: int) -> str:
    if "messages" in row:
        return "chat"
    if "prompt" in row and "completion" in row:
        return "completion"
    if "question" in row:
        return "qa"
    raise SixfoldError(
        f"line {number}: a row needs messages (chat), prompt and completion, or question and context (QA pairs); "
        f"it has {', '.join(sorted(row)) or 'no keys'}"
    )


def _chat_row(row: dict, number: int) -> GeneratorRow:
    """A ``{"messages": [...]}`` row. As in OpenAI's fine-tuning, every assistant message is learned unless it carries
    ``"weight": 0``; the last message must be an assistant reply (it is what the held-out score compares)."""
    messages = row["messages"]
    if not isinstance(messages, list) or not messages:
        raise SixfoldError(f"line {number}: messages must be a non-empty list")
    kept = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise SixfoldError(f"line {number}: each message needs a role ({', '.join(ROLES)}) and a text content")
        message = {"role": m["role"], "content": m["content"]}
        if "weight" in m:
            if m["role"] != "assistant" or m["weight"] not in (0, 1) or isinstance(m["weight"], bool):
                raise SixfoldError(f"line {number}: weight is 0 or 1, on assistant messages only")
            message["weight"] = int(m["weight"])
        kept.append(message)
    if kept[-1]["role"] != "assistant" or not kept[-1]["content"].strip():
        raise SixfoldError(f"line {number}: the last message must be the assistant's reply to learn")
    if len(kept) < 2:
        raise SixfoldError(f"line {number}: the assistant's reply needs a message before it")
    if not any(m["role"] == "assistant" and m.get("weight", 1) for m in kept):
        raise SixfoldError(f"line {number}: every assistant message has weight 0: nothing to learn")
    return GeneratorRow("chat", messages=kept)


def _completion_row(row: dict, number: int) -> GeneratorRow:
    prompt, completion = row["prompt"], row["completion"]
    if not isinstance(prompt, str) or not isinstance(completion, str) or not completion.strip():
        raise SixfoldError(f"line {number}: prompt and completion must be text, and the completion not empty")
    return GeneratorRow("completion", prompt=prompt, completion=completion)


def load_generator_file(path: str | os.PathLike[str], limit: int = 100_000) -> list[GeneratorRow]:
    """The rows of a fine-tune file; every row must be of the first row's kind. Errors name the line."""
    from sixfold.tuner.data import load_qa_file

    source = Path(path)
    if not source.is_file():
        raise SixfoldError(f"training file {path} does not exist")
    kind = file_format(source)
    if kind == "qa":
        return [
            GeneratorRow("qa", question=e.question, context=e.context, answers=[a["text"] for a in e.answers])
            for e in load_qa_file(source, unanswerable=True)
        ]
    rows: list[GeneratorRow] = []
    with open(source, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            row = _json_row(line, number)
            if _row_kind(row, number) != kind:
                raise SixfoldError(f"line {number}: a {_row_kind(row, number)} row in a file of {kind} rows")
            rows.append(_chat_row(row, number) if kind == "chat" else _completion_row(row, number))
            if len(rows) > limit:
                raise SixfoldError(f"more than {limit} rows: split the file")
    return rows


# ---- rows as text ----------------------------------------------------------------------------------------------------
class TemplateLM:
    """What ``reader.generative.build_prompt`` needs of a language model, from a transformers tokenizer: so a QA row
    becomes the very prompt ``ask`` sends."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def truncate(self, text: str, tokens: int) -> str:
        return self.tokenizer.decode(self.tokenizer(text, add_special_tokens=False)["input_ids"][:tokens])

    def chat(self, messages: list[dict]) -> str:
        return chat_prompt(self.tokenizer, messages)

    def chat_prompt(self, system: str, user: str) -> str:
        return self.chat([{"role": "system", "content": system}, {"role": "user", "content": user}])


def _plain(messages: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def chat_prompt(tokenizer, messages: list[dict]) -> str:
    """``messages`` in the model's chat template, ready for the assistant's reply."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(_plain(messages), tokenize=False, add_generation_prompt=True)
    return "\n\n".join(m["content"] for m in messages) + "\n"


def _chat_reply(tokenizer, messages: list[dict]) -> tuple[str, str]:
    """(prompt, completion) of a chat whose last message is the reply: the completion is everything the template
    adds after the prompt (the reply and its end-of-turn marker)."""
    prompt = chat_prompt(tokenizer, messages[:-1])
    if getattr(tokenizer, "chat_template", None):
        whole = tokenizer.apply_chat_template(_plain(messages), tokenize=False)
        if whole.startswith(prompt):
            return prompt, whole[len(prompt) :]
    return prompt, messages[-1]["content"] + (tokenizer.eos_token or "")


def _chat_segments(tokenizer, messages: list[dict]) -> list[tuple[str, bool]]:
    """The whole chat as (text, learned) pieces: each assistant message of weight 1 (with its end-of-turn marker)
    learned, everything else context. A template that does not render a longer chat as an extension of the shorter
    one (some drop earlier turns' reasoning) falls back to learning the last learned reply only, with the turns before
    it as its prompt (what follows a reply does not change its loss in a causal model)."""
    pieces: list[tuple[str, bool]] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt, reply = _chat_reply(tokenizer, messages[: i + 1])
        if not prompt.startswith(done):
            last = max(j for j, m in enumerate(messages) if m["role"] == "assistant" and m.get("weight", 1))
            return [(p, learned) for p, learned in zip(_chat_reply(tokenizer, messages[: last + 1]), (False, True))]
        pieces.append((prompt[len(done) :], False))
        pieces.append((reply, bool(message.get("weight", 1))))
        done = prompt + reply
    return [(text, learned) for text, learned in pieces if text]


def qa_target(question: str, context: str, answers: list[str], lm: TemplateLM) -> tuple[list[dict], int | None]:
    """The chat ``ask`` would send for a QA pair, with the reply it should get; and the number of the sentence that
    holds the answer (None: NOT FOUND)."""
    from sixfold.reader.generative import build_prompt
    from sixfold.reader.types import Passage

    recorded: dict = {}

    class _Recording(TemplateLM):
        def chat_prompt(self, system: str, user: str) -> str:
            recorded.update(system=system, user=user)
            return ""

    recording = cast("LanguageModel", _Recording(lm.tokenizer))  # build_prompt only counts, cuts and templates
    _text, shown, _notes = build_prompt(recording, question, [Passage(0, context, "passage")])
    number = next((i for i, s in enumerate(shown, 1) for a in answers if a and a in s.text), None)
    answer = next((a for a in answers if a), "")
    reply = f"ANSWER: {answer} [{number}]" if number is not None else "NOT FOUND"
    messages = [{"role": "system", "content": recorded["system"]}, {"role": "user", "content": recorded["user"]}]
    return [*messages, {"role": "assistant", "content": reply}], number


def render(row: GeneratorRow, tokenizer) -> tuple[str, str]:
    """(prompt, completion) text of a row for this model: chat rows in its template, completion rows as they are
    with the end-of-text token after the completion (so the tuned model learns to stop), text rows as a completion
    with no prompt."""
    if row.kind == "chat":
        return _chat_reply(tokenizer, row.messages)
    if row.kind == "qa":
        messages, _number = qa_target(row.question, row.context, row.answers, TemplateLM(tokenizer))
        return _chat_reply(tokenizer, messages)
    if row.kind == "text":
        return "", row.completion
    return row.prompt, row.completion + (tokenizer.eos_token or "")


def segments(row: GeneratorRow, tokenizer) -> list[tuple[str, bool]]:
    """A training row as (text, learned) pieces in order: the loss falls on the learned ones only."""
    if row.kind == "chat":
        return _chat_segments(tokenizer, row.messages)
    return [(text, learned) for text, learned in zip(render(row, tokenizer), (False, True)) if text]
