"""Generative reader: a small instruction LM writes the answer from numbered passages and cites them.

Passages are packed into the prompt in rank order until the token budget is spent; a passage that does
not fit whole is cut and the answer says so. The model is told to answer only from the passages and to
reply NOT FOUND otherwise; citations are the [n] markers it writes.
"""

from __future__ import annotations

import re

from sixfold.reader.llm import CausalLM
from sixfold.reader.types import Citation, Passage

SYSTEM = (
    "You answer questions using only the numbered passages given. Answer in one short sentence and cite the "
    "passages you used like [1]. If the passages do not contain the answer, reply exactly: NOT FOUND."
)
PROMPT_BUDGET = 1536  # tokens of passages; small models read short prompts better and faster on a CPU
_CITE = re.compile(r"\[(\d+)\]")
_PREAMBLE = re.compile(r"^(the answer is|answer)\s*:?\s*", re.IGNORECASE)


def build_prompt(
    llm: CausalLM, question: str, passages: list[Passage], budget: int = PROMPT_BUDGET
) -> tuple[str, list[Passage], list[str]]:
    """The chat prompt, the passages it holds (numbered from 1) and notes on passages cut or left out."""
    used: list[Passage] = []
    notes: list[str] = []
    blocks: list[str] = []
    left = budget
    for passage in passages:
        text = " ".join(passage.text.split())
        tokens = llm.count_tokens(text)
        if tokens > left:
            if left < 64:
                notes.append(f"passage from {passage.path} left out: the model window is full")
                continue
            ids = llm.tokenizer(text, add_special_tokens=False)["input_ids"][:left]
            text = llm.tokenizer.decode(ids)
            notes.append(f"passage [{len(used) + 1}] from {passage.path} was cut to fit the model window")
            tokens = left
        used.append(passage)
        blocks.append(f"[{len(used)}] {text}")
        left -= tokens
    user = "Passages:\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}"
    return llm.chat_prompt(SYSTEM, user), used, notes


def generate_answer(
    llm: CausalLM, question: str, passages: list[Passage], max_tokens: int = 64
) -> tuple[str, list[Citation], list[str], bool]:
    """(answer text, citations, notes, said_not_found)."""
    prompt, used, notes = build_prompt(llm, question, passages)
    completion = llm.complete(prompt, max_tokens=max_tokens, temperature=0.0, stop=["\n\n"])
    text = completion.text.strip()
    if completion.finish_reason == "length":  # cut mid-sentence: keep the complete sentences
        end = max(text.rfind(". "), text.rfind(".\n"), text.rfind(".") if text.endswith(".") else -1)
        if end > 0:
            text = text[: end + 1]
    said_not_found = "NOT FOUND" in text.upper() or not text
    numbers = [int(n) for n in _CITE.findall(text)]
    cited = [used[n - 1] for n in dict.fromkeys(numbers) if 1 <= n <= len(used)]
    answer = _CITE.sub("", text).strip()
    answer = re.sub(r"\s+([.,;:])", r"\1", answer)
    answer = _PREAMBLE.sub("", answer).strip()
    citations = [Citation(p.id, p.path, p.location, " ".join(p.text.split())[:240]) for p in cited]
    return answer, citations, notes, said_not_found
