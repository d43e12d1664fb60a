"""The HTTP server against abusive requests: too much work, too long, out-of-range integers, big unauthenticated
bodies, paths leaked by /v1/status. Every refusal is a 4xx (or the documented 504) in OpenAI's error shape.

Real everything: uvicorn on a free port in a thread of this process, the packaged embedder and language model,
the current openai client and httpx as the clients.
"""

from __future__ import annotations

import json
import time
import tracemalloc

import httpx
import pytest

from sixfold.core.errors import SixfoldError
from sixfold.core.models import DEFAULT_GENERATOR
from sixfold.http.limits import Limits
from sixfold.http.schemas import MAX_TEXT

from conftest import MODEL
from live_server import LiveServer

openai = pytest.importorskip("openai")
GEN = DEFAULT_GENERATOR
KEY = "s3cret"
BIG = 30 << 20  # the 30 MB upload of the issue


@pytest.fixture(scope="module")
def server(shared_index):
    """Default limits, no key; only reads the shared index."""
    from sixfold.http import create_app

    with LiveServer(create_app(shared_index.path, limits=Limits())) as live:
        yield live


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="sk-local", max_retries=0, timeout=60)


def post(server, path: str, body, timeout: float = 60, **kwargs) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=timeout, **kwargs)


def assert_error(response: httpx.Response, status: int, *fragments: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    for fragment in fragments:
        assert fragment.lower() in error["message"].lower(), error["message"]
    return error


# ---- 1. the work one request may ask for --------------------------------------------------------
def test_three_thousand_prompts_are_one_fast_400_naming_the_limit(server, client):
    started = time.monotonic()
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=GEN, prompt=["hello"] * 3000, max_tokens=16)
    assert time.monotonic() - started < 10  # refused before any generation, not after 300 s of it
    message = caught.value.body["message"]
    assert "3000" in message and "16 prompts" in message and "--max-prompts" in message, message
    assert caught.value.body["code"] == "limit_exceeded"


@pytest.mark.parametrize("stream", [False, True])
def test_prompts_times_n_times_max_tokens_is_bounded(server, stream):
    body = {"model": GEN, "prompt": ["a", "b", "c", "d"], "n": 4, "max_tokens": 200, "stream": stream}
    error = assert_error(post(server, "/v1/completions", body), 400, "4 prompts x n 4 x max_tokens 200 = 3200", "2048")
    assert error["param"] == "max_tokens" and "SIXFOLD_MAX_COMPLETION_TOKENS" in error["message"]


def test_prompt_length_is_bounded(server):
    body = {"model": GEN, "prompt": ["fine", "x" * 16_001], "max_tokens": 1}
    error = assert_error(post(server, "/v1/completions", body), 400, "prompt[1] has 16001 characters", "16000")
    assert error["param"] == "prompt"


BOUNDED = [
    ("/v1/embeddings", {"model": MODEL, "input": ["a"] * 2049}, "at most 2048 inputs per request, got 2049"),
    ("/v1/embeddings", {"model": MODEL, "input": "a" * (MAX_TEXT + 1)}, "at most 100000 characters"),
    ("/v1/search", {"query": "x", "documents": ["a"] * 201}, "at most 200 documents per request, got 201"),
    ("/v1/search", {"query": "x", "documents": ["a", "b" * (MAX_TEXT + 1)]}, "at most 100000 characters"),
    ("/v1/answers", {"question": "x", "documents": ["a"] * 201}, "at most 200 documents per request, got 201"),
    ("/v1/answers", {"question": "x", "documents": ["a"], "max_tokens": 10**9}, "max_tokens"),
    ("/v1/classifications", {"query": "x", "examples": [["a", "b"]] * 1001}, "at most 1000 examples per request"),
    ("/v1/classifications", {"query": "x", "examples": [["a", "b"]], "max_examples": 10**12}, "max_examples"),
    ("/v1/fine-tunes", {"training_file": "file-0", "max_steps": 10**12}, "max_steps"),
]


@pytest.mark.parametrize(("path", "body", "fragment"), BOUNDED, ids=[f"{p} {f[:30]}" for p, _b, f in BOUNDED])
def test_other_model_heavy_endpoints_are_bounded(server, path, body, fragment):
    assert_error(post(server, path, body), 400, fragment)


# ---- 3. integers: negative, zero, huge ------------------------------------------------------------
INTEGERS = [
    ("/v1/completions", "seed", 2**63),
    ("/v1/completions", "seed", 2**64),
    ("/v1/completions", "seed", -(2**63) - 1),
    ("/v1/completions", "seed", 10**40),
    ("/v1/completions", "n", 0),
    ("/v1/completions", "n", -1),
    ("/v1/completions", "n", 10**30),
    ("/v1/completions", "max_tokens", 0),
    ("/v1/completions", "max_tokens", 10**30),
    ("/v1/completions", "logprobs", -1),
    ("/v1/completions", "logprobs", 10**30),
    ("/v1/completions", "best_of", 0),
    ("/v1/completions", "best_of", 10**30),
    ("/v1/embeddings", "dimensions", 0),
    ("/v1/embeddings", "dimensions", 10**30),
    ("/v1/search", "max_rerank", 0),
    ("/v1/search", "max_rerank", 10**30),
    ("/v1/answers", "k", 0),
    ("/v1/answers", "k", 10**30),
    ("/v1/answers", "max_tokens", -5),
    ("/v1/fine-tunes", "batch_size", 10**30),
    ("/v1/fine-tunes", "eval_limit", 0),
]
BASE = {
    "/v1/completions": {"model": GEN, "prompt": "The capital of France is", "max_tokens": 1, "temperature": 0.7},
    "/v1/embeddings": {"model": MODEL, "input": "hello"},
    "/v1/search": {"query": "normans", "documents": ["a", "b"]},
    "/v1/answers": {"question": "who?", "documents": ["a"]},
    "/v1/fine-tunes": {"training_file": "file-0"},
}


@pytest.mark.parametrize(("path", "field", "value"), INTEGERS, ids=[f"{p} {f}={v}" for p, f, v in INTEGERS])
def test_out_of_range_integers_are_a_400_in_openai_shape(server, path, field, value):
    error = assert_error(post(server, path, {**BASE[path], field: value}), 400, field)
    assert error["param"] == field and error["type"] == "invalid_request_error"


def test_a_seed_in_range_still_works(client):
    done = client.completions.create(model=GEN, prompt="The capital of France is", max_tokens=1, seed=2**63 - 1)
    assert done.choices[0].text


# ---- 2. the request time limit ------------------------------------------------------------------
@pytest.fixture(scope="module")
def hasty(shared_index):
    """A server whose requests may take 3 s."""
    from sixfold.http import create_app

    with LiveServer(create_app(shared_index.path, warm=False, embedders=1, limits=Limits(request_timeout=3))) as live:
        yield live


def _hasty_client(server, timeout: float = 45):
    # a client timeout well under the minutes the old server took: without the limit the test fails, not hangs
    return openai.OpenAI(base_url=server.url + "/v1", api_key="sk-local", max_retries=0, timeout=timeout)


def test_a_completion_past_the_time_limit_is_a_504_and_generation_stops(hasty):
    client = _hasty_client(hasty)
    client.completions.create(model=GEN, prompt="Hi", max_tokens=1)  # the model is loaded (may take a while)
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        client.completions.create(model=GEN, prompt="Once upon a time", max_tokens=2000, temperature=0)
    assert time.monotonic() - started < 15
    assert caught.value.status_code == 504 and caught.value.body["code"] == "request_timeout"
    assert "time limit of 3 s" in caught.value.body["message"]
    # generation stopped: the model (one lock) is free at once for the next request, which itself has 3 s
    done = client.completions.create(model=GEN, prompt="The capital of France is", max_tokens=2, temperature=0)
    assert done.choices[0].text


def test_a_streamed_completion_past_the_time_limit_ends_with_an_error_event(hasty):
    client = _hasty_client(hasty)
    client.completions.create(model=GEN, prompt="Hi", max_tokens=1)
    started, texts = time.monotonic(), []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.completions.create(model=GEN, prompt="Once upon a time", max_tokens=2000, temperature=0, stream=True):
            texts.append(chunk.choices[0].text)
    assert time.monotonic() - started < 15
    assert "time limit" in caught.value.message and texts  # it streamed text, then stopped at the limit
    done = client.completions.create(model=GEN, prompt="The capital of France is", max_tokens=2, temperature=0)
    assert done.choices[0].text


def test_embeddings_past_the_time_limit_are_a_504_within_a_batch(hasty):
    texts = [f"passage {i}: " + "the quick brown fox jumps over the lazy dog " * 9 for i in range(2048)]
    started = time.monotonic()
    response = post(hasty, "/v1/embeddings", {"model": MODEL, "input": texts}, timeout=45)
    assert time.monotonic() - started < 20
    error = assert_error(response, 504, "time limit of 3 s")
    assert error["code"] == "request_timeout"
    assert post(hasty, "/v1/embeddings", {"model": MODEL, "input": "hello"}).status_code == 200  # its embedder is back


def test_limits_come_from_flags_then_the_environment_then_defaults():
    env = {"SIXFOLD_MAX_PROMPTS": "4", "SIXFOLD_REQUEST_TIMEOUT": "2.5"}
    assert Limits.from_env(env) == Limits(max_prompts=4, request_timeout=2.5)
    assert Limits.from_env(env, max_prompts=8, request_timeout=None).max_prompts == 8
    assert Limits.from_env({}) == Limits()
    with pytest.raises(SixfoldError, match="SIXFOLD_MAX_PROMPTS must be a positive number, got 'many'"):
        Limits.from_env({"SIXFOLD_MAX_PROMPTS": "many"})
    with pytest.raises(SixfoldError, match="--request-timeout must be positive"):
        Limits.from_env({}, request_timeout=0)


# ---- 4. the API key before the body; the body cap --------------------------------------------------
@pytest.fixture(scope="module")
def keyed(shared_index):
    """A key and the default caps: 1 MiB for JSON, 64 MiB for uploads (more than the 30 MB below)."""
    from sixfold.http import create_app

    with LiveServer(create_app(shared_index.path, api_key=KEY, warm=False, embedders=1)) as live:
        yield live


@pytest.fixture(scope="module")
def capped(shared_index):
    """A key and an 8 MiB upload cap (less than the 30 MB below)."""
    from sixfold.http import create_app

    with LiveServer(create_app(shared_index.path, api_key=KEY, warm=False, embedders=1, max_upload=8 << 20)) as live:
        yield live


@pytest.fixture(scope="module")
def big_upload() -> tuple[bytes, str]:
    """A 30 MB multipart upload of a JSONL file (built before any memory is measured)."""
    boundary = "sixfold-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    line = b'{"question": "q", "context": "c", "answer": "c"}\n'
    return head + line * (BIG // len(line)) + f"\r\n--{boundary}--\r\n".encode(), boundary


def _send(url: str, body: bytes, content_type: str, chunked: bool, key: str | None = None) -> tuple[httpx.Response, float, int]:
    """POST ``body`` in 64 KiB pieces (by Content-Length, or chunked); the status, seconds and the peak of memory
    allocated by this process (the server's thread included) meanwhile."""
    headers = {"content-type": content_type}
    if not chunked:
        headers["content-length"] = str(len(body))
    if key:
        headers["authorization"] = f"Bearer {key}"

    def pieces():
        view = memoryview(body)
        for start in range(0, len(body), 65536):
            yield bytes(view[start : start + 65536])

    tracemalloc.start()
    try:
        started = time.monotonic()
        response = httpx.post(url, content=pieces(), headers=headers, timeout=60)
        seconds = time.monotonic() - started
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return response, seconds, peak


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_unauthenticated_30_mb_upload_gets_its_401_without_being_read(keyed, big_upload, chunked):
    body, boundary = big_upload
    response, seconds, peak = _send(keyed.url + "/v1/files", body, f"multipart/form-data; boundary={boundary}", chunked)
    error = assert_error(response, 401, "API key")
    assert error["code"] == "invalid_api_key"
    assert seconds < 10
    assert peak < 4 << 20, f"the server allocated {peak >> 20} MiB for a body it should not read"


def test_an_unauthenticated_big_json_body_is_a_401_not_a_413(keyed):
    body = json.dumps({"query": "a" * BIG}).encode()
    response, _seconds, peak = _send(keyed.url + "/v1/search", body, "application/json", chunked=True, key="wrong")
    assert_error(response, 401, "API key")
    assert peak < 4 << 20


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_authenticated_body_over_the_cap_is_a_413_read_no_further_than_the_cap(capped, big_upload, chunked):
    body, boundary = big_upload
    response, _seconds, peak = _send(capped.url + "/v1/files", body, f"multipart/form-data; boundary={boundary}", chunked, KEY)
    error = assert_error(response, 413, "too large", str(8 << 20))
    assert error["code"] == "request_too_large"
    assert peak < 24 << 20  # at most the 8 MiB cap held (and joined once), never the 30 MB
    json_body = json.dumps({"query": "a" * (2 << 20)}).encode()
    response, _seconds, peak = _send(capped.url + "/v1/search", json_body, "application/json", chunked, KEY)
    assert_error(response, 413, "too large", str(1 << 20))
    assert peak < 6 << 20


def test_the_key_still_opens_everything_and_the_page_needs_none(keyed):
    ok = httpx.get(keyed.url + "/v1/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert ok.status_code == 200
    assert httpx.get(keyed.url + "/", timeout=30).status_code == 200
    assert httpx.get(keyed.url + "/openapi.json", timeout=30).status_code == 200
    assert httpx.get(keyed.url + "/v1", timeout=30).status_code == 401
    client = openai.OpenAI(base_url=keyed.url + "/v1", api_key=KEY, max_retries=0, timeout=60)
    line = b'{"question": "Who?", "context": "The Normans.", "answer": "The Normans"}\n'
    uploaded = client.files.create(file=("qa.jsonl", line), purpose="fine-tune")
    assert uploaded.bytes == len(line)


# ---- 5. /v1/status names the index, not where it lives ----------------------------------------------
def test_status_gives_the_index_name_not_its_path(server, shared_index):
    response = httpx.get(server.url + "/v1/status", timeout=30)
    assert response.status_code == 200
    data = response.json()
    assert data["name"] == shared_index.path.name and "path" not in data
    assert str(shared_index.path.parent) not in response.text


def test_serve_with_a_bad_limit_is_one_error_line(shared_index):
    from conftest import assert_one_error_line, run_cli

    run = run_cli("serve", "--index", shared_index.path, "--request-timeout", "0")
    assert_one_error_line(run.returncode, run.stderr, "--request-timeout must be positive")
    run = run_cli("serve", "--index", shared_index.path, SIXFOLD_MAX_COMPLETION_TOKENS="lots")
    assert_one_error_line(run.returncode, run.stderr, "SIXFOLD_MAX_COMPLETION_TOKENS must be a positive number, got 'lots'")
