"""Synthetic (query, passage) pairs for an index without user pairs: the local generative LM writes a question
for each sampled chunk. Every row is marked ``synthetic: true`` and written to a JSONL file the user can read.

Synthetic questions are easier than real ones (they reuse the passage's words), so scores measured on them
overstate retrieval quality; the tune report says when its eval is synthetic.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

from sixfold.core.errors import SixfoldError
from sixfold.core.models import DEFAULT_GENERATOR
from sixfold.indexer.store import IndexStore
from sixfold.tuner.data import Pair, write_pairs

# A plain few-shot completion prompt: the 135M instruction model writes real questions this way, while a chat
# prompt mostly gets "What is the answer to the question ..." back.
EXAMPLES = (
    "Passage: The Eiffel Tower is a wrought-iron tower in Paris. It was completed in 1889 for the World Fair and is "
    "330 metres tall.\nQuestion: When was the Eiffel Tower completed?\n\n"
    "Passage: Photosynthesis lets plants turn light, water and carbon dioxide into sugar and oxygen.\n"
    "Question: What do plants make from light, water and carbon dioxide?\n\n"
)
MAX_PASSAGE_CHARS = 800
MIN_PASSAGE_CHARS = 200  # a heading-only chunk gives no question worth training on


def clean_question(text: str) -> str | None:
    """The generated question, or None when the model wrote something else (no '?', too short, or a loop)."""
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^\s*(?:question\s*\d*\s*[:.-]\s*|q\s*[:.]\s*|\d+[.)]\s*)", "", line, flags=re.IGNORECASE)
    line = line.strip().strip('"“”')
    if "?" not in line:
        return None
    line = line[: line.index("?") + 1].strip()
    if not 8 <= len(line) <= 200 or "answer to" in line.lower():
        return None
    return line


def synthesize_pairs(
    index_root: str | Path,
    n: int,
    out_path: str | Path,
    *,
    seed: int = 42,
    generator: str = DEFAULT_GENERATOR,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Pair]:
    """Sample ``n`` chunks of the index, generate a question for each, write and return the pairs."""
    from sixfold.reader.llm import load_llm

    if n <= 0:
        raise SixfoldError(f"--synthesize needs a positive number of pairs, got {n}")
    snapshot = IndexStore(index_root).open()
    try:
        query = "SELECT chunk_id FROM chunks WHERE length(text) >= ? ORDER BY chunk_id"
        ids = [int(i) for i in snapshot.con.execute(query, [MIN_PASSAGE_CHARS]).fetchnumpy()["chunk_id"]]
        if len(ids) < 2:
            raise SixfoldError(f"the index has fewer than 2 chunks of {MIN_PASSAGE_CHARS}+ characters to write questions for")
        chosen = sorted(random.Random(seed).sample(ids, min(n, len(ids))))
        rows = snapshot.chunks(chosen)
    finally:
        snapshot.close()
    llm = load_llm(generator)
    pairs: list[Pair] = []
    if on_progress:
        on_progress(0, len(chosen))
    for done, chunk_id in enumerate(chosen, start=1):
        row = rows[chunk_id]
        passage = row["text"]
        prompt = EXAMPLES + "Passage: " + " ".join(passage[:MAX_PASSAGE_CHARS].split()) + "\nQuestion:"
        question = clean_question(llm.complete(prompt, max_tokens=40, temperature=0.0, stop=["\n"]).text)
        if question:
            pairs.append(Pair(question, passage, synthetic=True, source=row["path"]))
        if on_progress:
            on_progress(done, len(chosen))
    if len(pairs) < 2:
        raise SixfoldError(f"the language model wrote usable questions for only {len(pairs)} of {len(chosen)} passages")
    write_pairs(pairs, out_path)
    return pairs
