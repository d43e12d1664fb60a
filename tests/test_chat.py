"""``/v1/chat/completions`` live on loopback: the plain language model and the grounded ``sixfold-answers`` model
through the current openai client (plain and streamed), bad requests in OpenAI's error shape, the model window and
the request deadline, and ``ChatCompletion.create`` through the legacy 0.28 client.

Real everything: uvicorn on a free port in a thread, the packaged embedder and language model, the shared index of
examples/corpus.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sixfold.core.models import DEFAULT_GENERATOR

from conftest import copy_index
from live_server import LiveServer

openai = pytest.importorskip("openai")
GROUNDED = "sixfold-answers"
OXYGEN = "What is the atomic number of oxygen?"
ABSENT = "Who won the 2018 football world cup?"
LEGACY_CHAT_VERSION = "0.28.1"  # the last 0.x release; ChatCompletion came in 0.27


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_index):
    from sixfold.http import create_app

    index = copy_index(shared_index.path, tmp_path_factory.mktemp("chat") / "idx")
    with LiveServer(create_app(index)) as live:
        live.index = index
        yield live


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="sk-local", max_retries=0, timeout=300)


def chat(server, body: dict, **kwargs) -> httpx.Response:
    return httpx.post(server.url + "/v1/chat/completions", json=body, timeout=300, **kwargs)


def same_grounding(one: dict, other: dict) -> bool:
    """The same answer and sources; the confidence to 0.01 (float sums differ a little between runs of the models)."""
    strip = lambda g: {k: v for k, v in g.items() if k != "confidence"}  # noqa: E731
    return strip(one) == strip(other) and one["confidence"] == pytest.approx(other["confidence"], abs=0.01)


# ---- the plain language model ------------------------------------------------------------------------
def test_multi_turn_prompt_is_the_models_chat_template_in_order():
    from sixfold.http.chat import chat_prompt
    from sixfold.reader.llm import load_llm

    llm = load_llm(DEFAULT_GENERATOR)
    turns = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another one?"},
    ]
    prompt = chat_prompt(llm, turns)
    positions = [prompt.find(m["content"]) for m in turns]
    assert -1 not in positions and positions == sorted(positions), prompt
    assert prompt.rstrip().endswith("assistant"), prompt  # ChatML's generation prompt: the reply comes next
    assert chat_prompt(llm, turns[:2]) == llm.chat_prompt("You are terse.", "Name a colour.")


def test_plain_chat_with_the_current_client_is_the_models_own_reply(client):
    from sixfold.http.chat import chat_prompt
    from sixfold.reader.llm import load_llm

    messages = [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    done = client.chat.completions.create(model=DEFAULT_GENERATOR, messages=messages, max_tokens=6, temperature=0, user="u1")
    llm = load_llm(DEFAULT_GENERATOR)
    expected = llm.complete(chat_prompt(llm, messages), max_tokens=6, temperature=0.0)
    assert done.object == "chat.completion" and done.id.startswith("chatcmpl-") and done.model == DEFAULT_GENERATOR
    assert len(done.choices) == 1 and done.choices[0].message.role == "assistant"
    assert done.choices[0].message.content == expected.text and expected.text.strip()
    assert done.choices[0].finish_reason == expected.finish_reason in ("stop", "length")
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (expected.prompt_tokens, expected.completion_tokens)
    assert done.usage.total_tokens == expected.prompt_tokens + expected.completion_tokens
    # content as text parts reads the same; max_completion_tokens is today's name for max_tokens
    parts = [messages[0], {"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]}]
    again = client.chat.completions.create(model=DEFAULT_GENERATOR, messages=parts, max_completion_tokens=6, temperature=0)
    assert again.choices[0].message.content == expected.text


def test_plain_chat_streams_role_then_text_then_finish_and_usage(client):
    messages = [{"role": "user", "content": "Say hello to Ada."}]
    whole = client.chat.completions.create(model=DEFAULT_GENERATOR, messages=messages, max_tokens=8, temperature=0)
    stream = client.chat.completions.create(
        model=DEFAULT_GENERATOR,
        messages=messages,
        max_tokens=8,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    with_choices = [c for c in chunks if c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text == whole.choices[0].message.content and text.strip()
    assert with_choices[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert all(c.choices[0].finish_reason is None for c in with_choices[:-1])
    assert not chunks[-1].choices and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_n_choices_sample_with_seed_plus_their_index(client):
    ask = dict(model=DEFAULT_GENERATOR, messages=[{"role": "user", "content": "Tell me a word."}], max_tokens=5, temperature=1.0)
    both = client.chat.completions.create(**ask, n=2, seed=7)
    again = client.chat.completions.create(**ask, n=2, seed=7)
    first = client.chat.completions.create(**ask, seed=7)
    second = client.chat.completions.create(**ask, seed=8)
    assert [c.index for c in both.choices] == [0, 1]
    assert [c.message.content for c in both.choices] == [c.message.content for c in again.choices]
    assert [c.message.content for c in both.choices] == [first.choices[0].message.content, second.choices[0].message.content]
    assert both.usage.prompt_tokens == first.usage.prompt_tokens  # the prompt counts once, however many choices
    assert both.usage.completion_tokens == first.usage.completion_tokens + second.usage.completion_tokens


# ---- the grounded model ------------------------------------------------------------------------------
def test_models_list_the_grounded_model(client):
    models = {m.id: m for m in client.models.list().data}
    assert GROUNDED in models and models[GROUNDED].model_extra["role"] == "grounded"
    assert client.models.retrieve(GROUNDED).id == GROUNDED


def test_grounded_answer_cites_the_right_file_with_a_footnote(client):
    done = client.chat.completions.create(model=GROUNDED, messages=[{"role": "user", "content": OXYGEN}])
    grounding = done.model_extra["sixfold"]
    content = done.choices[0].message.content
    assert done.model == GROUNDED and done.choices[0].finish_reason == "stop"
    assert grounding["found"] is True and grounding["abstained"] is False and 0 < grounding["confidence"] <= 1
    first = grounding["sources"][0]
    assert first["path"] == "science/oxygen.html" and first["marker"] == "[1]"
    assert {"passage_id", "path", "location", "snippet", "quote"} <= set(first)
    claim, _, footnotes = content.partition("\n\n")
    assert "8" in claim and "[1]" in claim and not claim.startswith("[1]")
    assert footnotes.startswith("[1] science/oxygen.html")
    assert done.usage.prompt_tokens > 0 and done.usage.completion_tokens > 0


def test_grounded_answers_the_last_user_message(client):
    messages = [
        {"role": "system", "content": "Cite your sources."},
        {"role": "user", "content": "Tell me about steam engines."},
        {"role": "assistant", "content": "Steam engines turn heat into work."},
        {"role": "user", "content": OXYGEN},
    ]
    done = client.chat.completions.create(model=GROUNDED, messages=messages)
    grounding = done.model_extra["sixfold"]
    assert grounding["question"] == OXYGEN and grounding["sources"][0]["path"] == "science/oxygen.html"


def test_grounded_not_found_says_so_and_lists_the_closest_passages(client):
    done = client.chat.completions.create(model=GROUNDED, messages=[{"role": "user", "content": ABSENT}])
    grounding = done.model_extra["sixfold"]
    content = done.choices[0].message.content
    assert grounding["found"] is False and grounding["abstained"] is True
    assert content.startswith("I could not find an answer to that in the indexed documents")
    assert grounding["sources"], grounding
    for i, source in enumerate(grounding["sources"], 1):
        assert f"[{i}] {source['path']}" in content


def test_grounded_streams_the_same_answer_with_sixfold_on_the_last_chunk(client):
    whole = client.chat.completions.create(model=GROUNDED, messages=[{"role": "user", "content": OXYGEN}])
    chunks = list(client.chat.completions.create(model=GROUNDED, messages=[{"role": "user", "content": OXYGEN}], stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole.choices[0].message.content
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and same_grounding(last.model_extra["sixfold"], whole.model_extra["sixfold"])
    assert all("sixfold" not in c.model_extra for c in chunks[:-1])


# ---- bad requests: a 4xx in OpenAI's shape ----------------------------------------------------------
HI = [{"role": "user", "content": "hi"}]
BAD = [
    ({"model": "gpt-4o", "messages": HI}, 404, "model_not_found", "'gpt-4o' does not exist"),
    ({"model": GROUNDED, "messages": []}, 400, None, "messages is empty"),
    ({"model": DEFAULT_GENERATOR}, 400, "invalid_value", "missing required parameter 'messages'"),
    ({"model": DEFAULT_GENERATOR, "messages": [{"role": "wizard", "content": "hi"}]}, 400, "invalid_value", "messages[0].role"),
    ({"model": DEFAULT_GENERATOR, "messages": [{"role": "user", "content": 5}]}, 400, "invalid_value", "messages[0].content"),
    ({"model": DEFAULT_GENERATOR, "messages": [{"role": "user"}]}, 400, None, "messages[0] has no content"),
    (
        {"model": DEFAULT_GENERATOR, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
        400,
        None,
        "only text parts",
    ),
    ({"model": DEFAULT_GENERATOR, "messages": [{"role": "user", "content": "  "}]}, 400, None, "no text"),
    ({"model": GROUNDED, "messages": [{"role": "system", "content": "x"}]}, 400, None, "last user message"),
    ({"model": GROUNDED, "messages": HI, "n": 2}, 400, None, "n must be 1"),
    ({"model": DEFAULT_GENERATOR, "messages": HI, "n": 5}, 400, "invalid_value", "'n'"),
    ({"model": DEFAULT_GENERATOR, "messages": HI, "max_tokens": 0}, 400, "invalid_value", "max_tokens"),
    ({"model": DEFAULT_GENERATOR, "messages": HI, "temperature": 3}, 400, "invalid_value", "temperature"),
    ({"model": DEFAULT_GENERATOR, "messages": HI, "stop": ["a", "b", "c", "d", "e"]}, 400, None, "at most 4 stop"),
    ({"model": DEFAULT_GENERATOR, "messages": HI, "logprobs": True}, 400, None, "logprobs"),
    ({"model": DEFAULT_GENERATOR, "messages": HI, "tools": [{"type": "function"}]}, 400, None, "tools"),
    ({"model": DEFAULT_GENERATOR, "messages": HI, "response_format": {"type": "json_object"}}, 400, None, "response_format"),
    (
        {"model": DEFAULT_GENERATOR, "messages": HI, "n": 4, "max_completion_tokens": 1000},
        400,
        "limit_exceeded",
        "--max-completion-tokens",
    ),
    ({"model": DEFAULT_GENERATOR, "messages": [{"role": "user", "content": "a" * 16_001}]}, 400, "limit_exceeded", "16000"),
    ({"model": GROUNDED, "messages": [{"role": "user", "content": "a " * 8_001}]}, 400, "limit_exceeded", "question"),
]


@pytest.mark.parametrize(("body", "status", "code", "fragment"), BAD, ids=[f for *_x, f in BAD])
def test_bad_requests_get_a_4xx_in_openais_shape(server, body, status, code, fragment):
    response = chat(server, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
    assert fragment.lower() in error["message"].lower(), error["message"]


def test_bad_requests_are_errors_the_client_understands(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=HI)
    with pytest.raises(openai.BadRequestError, match="messages is empty"):
        client.chat.completions.create(model=DEFAULT_GENERATOR, messages=[], stream=True)  # a status, not an event


def test_a_conversation_past_the_model_window_is_a_400(shared_index):
    from sixfold.http import Limits, create_app

    with LiveServer(create_app(shared_index.path, warm=False, limits=Limits(max_prompt_chars=100_000))) as live:
        long = chat(live, {"model": DEFAULT_GENERATOR, "messages": [{"role": "user", "content": "word " * 19_000}]})
        assert long.status_code == 400, long.text
        error = long.json()["error"]
        assert error["code"] == "context_length_exceeded" and "window" in error["message"] and error["param"] == "messages"


def test_past_the_deadline_generation_stops_with_a_504(shared_index):
    from sixfold.http import Limits, create_app

    with LiveServer(create_app(shared_index.path, warm=False, limits=Limits(request_timeout=2))) as live:
        ask = {"model": DEFAULT_GENERATOR, "messages": [{"role": "user", "content": "Write a long story."}], "max_tokens": 2000}
        late = chat(live, ask)
        assert late.status_code == 504 and late.json()["error"]["code"] == "request_timeout", late.text
        streamed = chat(live, {**ask, "stream": True})
        if streamed.status_code == 200:  # the status line was sent: the stream ends with the error, then [DONE]
            events = [line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")]
            assert events[-1] == "[DONE]" and json.loads(events[-2])["error"]["code"] == "request_timeout"
        else:
            assert streamed.status_code == 504


# ---- the legacy 0.x client ------------------------------------------------------------------------------
LEGACY_SCRIPT = """
import json, sys
import openai
openai.api_base, openai.api_key = sys.argv[1], "sk-local"
plain = openai.ChatCompletion.create(
    model=sys.argv[2], messages=[{"role": "user", "content": "Say hi."}], max_tokens=4, temperature=0
)
grounded = openai.ChatCompletion.create(model="sixfold-answers", messages=[{"role": "user", "content": sys.argv[3]}])
streamed = [c.to_dict_recursive() for c in openai.ChatCompletion.create(
    model="sixfold-answers", messages=[{"role": "user", "content": sys.argv[3]}], stream=True
)]
try:
    openai.ChatCompletion.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
    missing = None
except openai.error.InvalidRequestError as exc:
    missing = {"status": exc.http_status, "code": exc.code}
print(json.dumps({"version": openai.version.VERSION, "plain": plain.to_dict_recursive(),
                  "grounded": grounded.to_dict_recursive(), "streamed": streamed, "missing": missing}))
"""


def _legacy_chat_python() -> Path:
    """A venv with ``openai==0.28.1`` under sixfold's cache (built once; skipped when the registry cannot be reached)."""
    from sixfold.core.config import cache_dir

    venv = cache_dir() / "test-venvs" / f"openai-{LEGACY_CHAT_VERSION}"
    python = venv / "bin" / "python"
    check = [str(python), "-c", f"import openai, sys; sys.exit(openai.version.VERSION != '{LEGACY_CHAT_VERSION}')"]
    if python.is_file() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"openai=={LEGACY_CHAT_VERSION}"], capture_output=True, text=True, timeout=600
    )
    if pip.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        pytest.skip(f"cannot install openai=={LEGACY_CHAT_VERSION} from the package registry: {pip.stderr.strip()[-300:]}")
    return python


def test_chat_completion_with_the_legacy_client(server):
    python = _legacy_chat_python()
    run = subprocess.run(
        [str(python), "-c", LEGACY_SCRIPT, server.url + "/v1", DEFAULT_GENERATOR, OXYGEN],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout)
    assert out["version"] == LEGACY_CHAT_VERSION
    plain = out["plain"]
    assert plain["object"] == "chat.completion" and plain["choices"][0]["message"]["content"].strip()
    assert plain["usage"]["completion_tokens"] <= 4
    grounded = out["grounded"]
    assert grounded["sixfold"]["sources"][0]["path"] == "science/oxygen.html"
    streamed = out["streamed"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in streamed)
    assert text == grounded["choices"][0]["message"]["content"]
    assert same_grounding(streamed[-1]["sixfold"], grounded["sixfold"])
    assert out["missing"] == {"status": 404, "code": "model_not_found"}
