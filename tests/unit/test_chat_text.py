"""The chat endpoint's shapes without a model: the grounded reply's footnotes and ``sixfold`` field, the messages
read from a request, and the multi-turn prompt for a model without a chat template."""

from __future__ import annotations

import pytest

from sixfold.http.chat import ChatCompletionRequest, chat_prompt, conversation, grounded_text, grounding
from sixfold.http.errors import ApiError
from sixfold.reader.types import NOT_FOUND, Answer, Citation


def _citation(path: str, quote: str | None = None) -> Citation:
    citation = Citation(3, path, "§ Oxygen, chars 0-80", "Oxygen is a chemical element\n\nwith atomic number 8.")
    citation.quote = quote  # the reader's quoted sentence (a field of Citation where the reader checks quotes)
    return citation


def test_found_markers_go_after_the_claim_and_each_source_is_a_footnote():
    answer = Answer(
        "q?", "Its atomic number is 8.", True, 0.9, "generative", [_citation("a.html", "number 8."), _citation("b.md")]
    )
    claim, _, notes = grounded_text(answer).partition("\n\n")
    assert claim == "Its atomic number is 8 [1][2]."
    assert notes.splitlines() == ['[1] a.html, § Oxygen, chars 0-80: "number 8."', "[2] b.md, § Oxygen, chars 0-80"]
    field = grounding(answer)
    assert field["found"] and not field["abstained"] and field["confidence"] == 0.9
    assert [(s["marker"], s["path"], s["quote"]) for s in field["sources"]] == [
        ("[1]", "a.html", "number 8."),
        ("[2]", "b.md", None),
    ]


def test_not_found_says_so_and_lists_the_closest_passages_on_one_line_each():
    answer = Answer("q?", NOT_FOUND, False, 0.1, "generative", [_citation("a.html")])
    text = grounded_text(answer)
    assert text.startswith("I could not find an answer to that in the indexed documents. The closest passages:")
    assert text.endswith("[1] a.html, § Oxygen, chars 0-80: Oxygen is a chemical element with atomic number 8.")
    assert grounding(answer)["abstained"] is True
    assert "no passage is close" in grounded_text(Answer("q?", NOT_FOUND, False, 0.0, "generative"))


def _request(messages: list, **extra) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "m", "messages": messages, **extra})


def test_messages_are_read_as_role_and_text():
    body = _request(
        [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
        ]
    )
    assert conversation(body) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "one\ntwo"},
        {"role": "assistant", "content": ""},
    ]
    with pytest.raises(ApiError, match="has type 'input_audio'"):
        conversation(_request([{"role": "user", "content": [{"type": "input_audio"}]}]))
    with pytest.raises(ApiError, match="tools"):
        conversation(_request([{"role": "user", "content": "hi"}], tools=[{"type": "function"}]))


class _NoTemplate:
    """A language model without a chat template: only ``chat_prompt(system, user)``."""

    def chat_prompt(self, system: str, user: str) -> str:
        return f"<{system}|{user}>"


def test_a_model_without_a_template_gets_the_conversation_as_role_lines():
    turns = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "U2"},
    ]
    assert chat_prompt(_NoTemplate(), turns[:2]) == "<S|U1>"
    assert chat_prompt(_NoTemplate(), turns) == "<S|user: U1\n\nassistant: A1\n\nuser: U2>"
