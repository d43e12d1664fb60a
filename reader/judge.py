"""The language model's own check that a quoted sentence answers the question with the answer given.

``reader.evidence`` checks words: that a sentence states the answer. It cannot tell whether that sentence is about
what was asked ("Valgrind was the name of the main entrance to Valhalla" states "Valgrind" for "What was Valgrind
called before it was released?"), nor see that a question in the user's own words asks what a sentence answers in
others ("1 Jan 1 is a Saturday because that's what cal says" for "which day of the week was 1 January of year 1?").
The model reads the question, the answer and that one sentence (with its file and heading) and replies Yes or No;
the probability it gives Yes is a feature of the confidence (``reader.calibration``) and lets a short answer be
taken from a sentence the model did not cite (``reader.answer.verify``).

One short call: about 60 prompt tokens and one generated token, 1.3-1.6 s on the 2-core CPU with the 1.5B model.
"""

from __future__ import annotations

from sixfold.reader.generative import complement, first_token, prompt_source
from sixfold.reader.llm import LanguageModel
from sixfold.reader.types import Passage

SYSTEM = "You check whether a sentence from a document answers a question."


def judge_prompt(llm: LanguageModel, question: str, answer: str, passage: Passage, sentence: str) -> str:
    """The chat prompt of the check (the sentence on one line: a table row or a wrapped line reads as prose)."""
    user = (
        f"Source: {prompt_source(passage)}\n"
        f'Sentence: "{" ".join(sentence.split())}"\n\n'
        f"Question: {question}\n"
        f"Proposed answer: {answer}\n\n"
        "Does the sentence support this answer to the question? Reply Yes or No."
    )
    return llm.chat_prompt(SYSTEM, user)


def judge_support(llm: LanguageModel, question: str, answer: str, passage: Passage, sentence: str) -> float | None:
    """P(Yes): the model's probability that ``sentence`` supports ``answer`` to ``question``; None where the runtime
    records no token probabilities (transformers) or the reply is neither Yes nor No."""
    # Two tokens: llama.cpp scores a generated token only when the next one is asked for.
    completion = llm.complete(judge_prompt(llm, question, answer, passage, sentence), max_tokens=2, temperature=0.0)
    yes = first_token(completion, "YES")
    return yes if yes is not None else complement(first_token(completion, "NO"))
