"""The HTTP server, live on loopback: the current openai client, the 2021 calls through the legacy client, bad
requests, auth, fine-tunes as a background job, and searches while another process re-indexes.

Real everything: uvicorn on a free port in a thread, the packaged embedder and language model, FAISS, tantivy
and DuckDB files on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import httpx
import numpy as np
import pytest

from sixfold.core.models import DEFAULT_GENERATOR

from conftest import MODEL, REPO, cli_env, copy_index, current_generation
from live_server import LiveServer

openai = pytest.importorskip("openai")
FIXTURES = Path(__file__).parent / "fixtures"
LEGACY_VENV = REPO / ".venv-legacy-openai"
LEGACY_VERSION = "0.25.0"  # the last openai release with Search, Classification and Answer


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_index):
    """The server over a private copy of the shared index (fine-tunes write to its model registry)."""
    from sixfold.http import create_app

    index = copy_index(shared_index.path, tmp_path_factory.mktemp("server") / "idx")
    with LiveServer(create_app(index)) as live:
        live.index = index
        yield live


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="sk-local", max_retries=0, timeout=120)


def post(server, path: str, **kwargs) -> httpx.Response:
    return httpx.post(server.url + path, timeout=120, **kwargs)


# ---- today's endpoints through the current openai client ----------------------------------------
def test_embeddings_with_the_current_openai_client(client, embedder):
    texts = ["Who were the Normans descended from?", "how does a steam engine work"]
    expected = embedder.encode(texts)
    default = client.embeddings.create(model=MODEL, input=texts)  # the client asks for base64 and decodes it
    as_float = client.embeddings.create(model=MODEL, input=texts[0], encoding_format="float")
    assert [d.index for d in default.data] == [0, 1]
    got = np.array([d.embedding for d in default.data], dtype=np.float32)
    assert got.shape == (2, embedder.dim)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(np.array(as_float.data[0].embedding), expected[0], atol=1e-5)
    assert default.model == MODEL and default.usage.prompt_tokens > 4


def test_completions_with_the_current_openai_client(client):
    from sixfold import Engine

    prompt = "The capital of France is"
    done = client.completions.create(model=DEFAULT_GENERATOR, prompt=prompt, max_tokens=3, temperature=0)
    expected = Engine.open(os.devnull).complete(prompt, max_tokens=3, temperature=0.0)
    assert done.object == "text_completion" and len(done.choices) == 1
    assert done.choices[0].text == expected.text and done.choices[0].text.strip()
    assert done.choices[0].finish_reason in ("stop", "length")
    assert done.usage.completion_tokens == expected.completion_tokens <= 3
    streamed = client.completions.create(model=DEFAULT_GENERATOR, prompt=prompt, max_tokens=3, temperature=0, stream=True)
    chunks = list(streamed)
    assert "".join(c.choices[0].text for c in chunks) == expected.text
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_unknown_model_is_a_404_the_client_understands(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.embeddings.create(model="text-embedding-ada-002", input="hello")
    assert "text-embedding-ada-002" in str(caught.value) and MODEL in str(caught.value)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi", max_tokens=1)


def test_models_lists_the_embedder_the_generator_and_the_base_reader(client):
    ids = {m.id for m in client.models.list().data}
    assert {MODEL, DEFAULT_GENERATOR, "reader@base"} <= ids


# ---- the 2021 calls through the legacy client ---------------------------------------------------
def _legacy_python() -> Path:
    python = LEGACY_VENV / "bin" / "python"
    check = [str(python), "-c", f"import openai, sys; sys.exit(openai.version.VERSION != '{LEGACY_VERSION}')"]
    if python.is_file() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    shutil.rmtree(LEGACY_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(LEGACY_VENV)], check=True, capture_output=True)
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"openai=={LEGACY_VERSION}"], capture_output=True, text=True, timeout=600
    )
    if pip.returncode != 0:
        shutil.rmtree(LEGACY_VENV, ignore_errors=True)
        pytest.skip(f"cannot install openai=={LEGACY_VERSION} from the package registry: {pip.stderr.strip()[-300:]}")
    return python


def run_legacy(server, *args: str) -> dict:
    python = _legacy_python()
    run = subprocess.run(
        [str(python), str(Path(__file__).parent / "legacy_openai_client.py"), server.url + "/v1", MODEL, *args],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


def test_search_classifications_answers_with_the_legacy_client(server):
    out = run_legacy(server)
    assert out["version"] == LEGACY_VERSION
    ranked = out["search_documents"]["data"]
    assert [r["document"] for r in ranked][0] == 1 and len(ranked) == 3
    assert all(r["object"] == "search_result" for r in ranked) and ranked[0]["score"] > ranked[1]["score"]
    index_hits = out["search_index"]["data"]
    assert len(index_hits) == 3 and index_hits[0]["metadata"]["path"] == "history/normans.md"
    assert "descended from Norse" in index_hits[0]["text"]
    assert out["classification"]["label"] == "billing"
    assert out["classification"]["selected_examples"][0]["document"] == 1
    answer = out["answer"]
    assert answer["object"] == "answer" and len(answer["answers"]) == 1
    assert answer["selected_documents"][0]["document"] == 2  # the oxygen sentence is read first
    if answer["found"]:
        assert "8" in answer["answers"][0]
    assert out["unknown_model"]["status"] == 404 and "ada" in out["unknown_model"]["message"]


# ---- bad requests: one clear 4xx each, in OpenAI's error shape ----------------------------------
BAD = [
    ("/v1/search", b'{"query": "normans", ', 400, "not valid JSON"),
    ("/v1/search", b"[1, 2]", 400, "JSON object"),
    ("/v1/search", b"", 400, "missing"),
    ("/v1/search", json.dumps({"query": 5}).encode(), 400, "'query'"),
    ("/v1/search", json.dumps({"query": "normans", "max_rerank": "many"}).encode(), 400, "'max_rerank'"),
    ("/v1/search", json.dumps({"query": "  "}).encode(), 400, "empty query"),
    ("/v1/search", json.dumps({"query": "x", "file": "/etc/passwd"}).encode(), 400, "reads no files"),
    ("/v1/search", json.dumps({"query": "x", "file": "../idx/chunks.duckdb"}).encode(), 400, "reads no files"),
    ("/v1/search", json.dumps({"query": "x", "documents": ["a", ""]}).encode(), 400, "documents[1]"),
    ("/v1/search", json.dumps({"query": "x", "model": "ada", "documents": ["a"]}).encode(), 404, "'ada' does not exist"),
    ("/v1/embeddings", json.dumps({"model": MODEL, "input": [[1, 2, 3]]}).encode(), 400, "token arrays"),
    ("/v1/embeddings", json.dumps({"model": MODEL, "input": 5}).encode(), 400, "'input'"),
    ("/v1/embeddings", json.dumps({"input": "x"}).encode(), 400, "missing required parameter 'model'"),
    ("/v1/completions", json.dumps({"model": DEFAULT_GENERATOR, "prompt": "x", "max_tokens": -1}).encode(), 400, "max_tokens"),
    ("/v1/completions", json.dumps({"model": DEFAULT_GENERATOR, "prompt": "x", "max_tokens": 5000}).encode(), 400, "max_tokens"),
    ("/v1/completions", json.dumps({"model": DEFAULT_GENERATOR, "prompt": "x", "logprobs": 2}).encode(), 400, "logprobs"),
    ("/v1/classifications", json.dumps({"query": "x", "examples": [["a", "b"]], "file": "/etc/passwd"}).encode(), 400, "inline"),
    ("/v1/classifications", json.dumps({"query": "x", "examples": [["a"]]}).encode(), 400, "examples[0]"),
    ("/v1/answers", json.dumps({"question": "x", "file": "/etc/hosts"}).encode(), 400, "reads no files"),
    ("/v1/fine-tunes", json.dumps({"training_file": "../../etc/passwd"}).encode(), 400, "no uploaded file"),
    ("/v1/nothing", b"{}", 404, "no such endpoint"),
]


@pytest.mark.parametrize(("path", "body", "status", "fragment"), BAD, ids=[f"{p} {f}" for p, _b, _s, f in BAD])
def test_bad_requests_get_a_4xx_with_a_message(server, path, body, status, fragment):
    response = post(server, path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert fragment.lower() in error["message"].lower(), error["message"]


def test_huge_bodies_are_refused_with_413_by_length_and_when_chunked(server):
    huge = json.dumps({"query": "a" * (2 << 20)}).encode()
    response = post(server, "/v1/search", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "too large" in response.json()["error"]["message"]

    def chunks():  # no Content-Length: the limit applies while reading
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536]

    response = post(server, "/v1/search", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_file_ids_cannot_walk_out_of_the_index(server):
    for file_id in ("..%2F..%2Fetc%2Fpasswd", "file-../../x", "file-0123"):
        response = httpx.get(f"{server.url}/v1/files/{file_id}", timeout=30)
        assert response.status_code == 404, response.text


def test_api_key_is_required_when_set(shared_index, tmp_path):
    from sixfold.http import create_app

    with LiveServer(create_app(shared_index.path, api_key="s3cret", warm=False)) as live:
        assert httpx.get(live.url + "/v1/models", timeout=30).status_code == 401
        wrong = httpx.get(live.url + "/v1/models", headers={"Authorization": "Bearer nope"}, timeout=30)
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(live.url + "/v1/models", headers={"Authorization": "Bearer s3cret"}, timeout=30).status_code == 200
        assert httpx.get(live.url + "/", timeout=30).status_code == 200  # the page itself; it sends the key it is given
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=live.url + "/v1", api_key="nope", max_retries=0).models.list()


def test_page_status_and_openapi_schema(server):
    page = httpx.get(server.url + "/", timeout=30)
    assert page.status_code == 200 and "<input" in page.text and "http://" not in page.text.replace(server.url, "")
    status = httpx.get(server.url + "/v1/status", timeout=30).json()
    assert status["documents"] == 6 and status["model"] == MODEL and status["generation"].startswith("gen-")
    schema = httpx.get(server.url + "/openapi.json", timeout=30).json()
    assert {"/v1/embeddings", "/v1/completions", "/v1/search", "/v1/answers", "/v1/fine-tunes"} <= set(schema["paths"])


# ---- fine-tunes: the tuner as a background job ---------------------------------------------------
def test_fine_tune_runs_in_the_background_with_events_and_adds_a_model(server, client):
    uploaded = {}
    for name in ("qa_train.jsonl", "qa_eval.jsonl"):
        with open(FIXTURES / name, "rb") as handle:
            uploaded[name] = client.files.create(file=handle, purpose="fine-tune").id
    bad = post(server, "/v1/fine-tunes", json={"training_file": uploaded["qa_train.jsonl"]})
    assert bad.status_code == 400 and "validation_file" in bad.json()["error"]["message"]
    created = post(
        server,
        "/v1/fine-tunes",
        json={
            "training_file": uploaded["qa_train.jsonl"],
            "validation_file": uploaded["qa_eval.jsonl"],
            "model": "reader",
            "batch_size": 4,
            "max_steps": 4,
            "eval_limit": 4,
            "activate": "no",
        },
    )
    assert created.status_code == 200, created.text
    job = created.json()
    assert job["object"] == "fine-tune" and job["status"] in ("pending", "running")
    # the server keeps answering while it trains
    assert post(server, "/v1/search", json={"query": "Normans", "max_rerank": 1}).status_code == 200
    deadline = time.monotonic() + 300
    while job["status"] in ("pending", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(1)
        job = httpx.get(f"{server.url}/v1/fine-tunes/{job['id']}", timeout=30).json()
    assert job["status"] == "succeeded", job["events"]
    assert job["fine_tuned_model"].startswith("reader@") and set(job["result"]["after"]) == {"EM", "F1"}
    events = httpx.get(f"{server.url}/v1/fine-tunes/{job['id']}/events", timeout=30).json()["data"]
    messages = [e["message"] for e in events]
    assert any(m.startswith("Completed step 4/4") for m in messages), messages
    assert messages[-1] == "Fine-tune succeeded"
    models = {m.id: m for m in client.models.list().data}
    assert job["fine_tuned_model"] in models and models["reader@base"].model_extra["active"] is True


def test_fine_tune_with_the_legacy_client(server):
    """openai 0.25: File.create, FineTune.create / retrieve / list_events, Model.list."""
    out = run_legacy(server, "fine-tune", str(FIXTURES / "qa_train.jsonl"), str(FIXTURES / "qa_eval.jsonl"))
    assert out["created_status"] in ("pending", "running")
    job = out["job"]
    assert job["object"] == "fine-tune" and job["status"] == "succeeded", job
    messages = [e["message"] for e in out["events"]["data"]]
    assert (
        messages[0].startswith("Created fine-tune") and "Completed step 2/2" in messages and messages[-1] == "Fine-tune succeeded"
    )
    assert job["fine_tuned_model"] in out["models"]


# ---- searches while another process re-indexes ---------------------------------------------------
def test_fifty_concurrent_searches_while_reindexing_all_see_whole_generations(indexed, tmp_path):
    from sixfold.http import create_app

    old_generation = current_generation(indexed.index).name
    (indexed.folder / "science" / "zorblax.md").write_text(
        "# Zorblax\n\nThe zorblax festival is held in the town of Quetzal every spring, with lanterns on the river.\n"
    )
    steam = indexed.folder / "science" / "steam_engine.txt"
    steam.write_text(steam.read_text() + "\nA zorblax engine is a steam engine named after the festival.\n")
    (indexed.folder / "technology" / "packet_switching.md").unlink()
    queries = ["zorblax festival in Quetzal", "Who were the Normans descended from?", "packet switching networks"]
    responses: list[tuple[str, dict]] = []

    with LiveServer(create_app(indexed.index)) as live:
        writer = subprocess.Popen(
            [sys.executable, "-m", "sixfold", "index", str(indexed.folder), "--index", str(indexed.index)],
            cwd=REPO,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def worker(number: int) -> int:
            count, http = 0, httpx.Client(timeout=120)
            while True:
                finished = writer.poll() is not None
                query = queries[(number + count) % len(queries)]
                response = http.post(live.url + "/v1/search", json={"query": query, "max_rerank": 5, "return_metadata": True})
                assert response.status_code == 200, response.text
                responses.append((query, response.json()))
                count += 1
                if finished or count >= 200:
                    return count

        with ThreadPoolExecutor(50) as pool:
            counts = list(pool.map(worker, range(50)))
        _out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err

    new_generation = current_generation(indexed.index).name
    assert new_generation != old_generation and all(c >= 1 for c in counts)
    seen = {data["generation"] for _q, data in responses}
    assert seen == {old_generation, new_generation}  # searches ran before, during and after the commit
    # every hit is exactly a chunk of the generation its response names
    chunks = {}
    for generation in seen:
        con = duckdb.connect(str(indexed.index / generation / "chunks.duckdb"), read_only=True)
        chunks[generation] = {
            cid: (path, text) for cid, path, text in con.execute("SELECT chunk_id, path, text FROM chunks").fetchall()
        }
        con.close()
    for query, data in responses:
        table = chunks[data["generation"]]
        assert data["data"], query
        for hit in data["data"]:
            assert table[hit["document"]] == (hit["metadata"]["path"], hit["text"])
        paths = {hit["metadata"]["path"] for hit in data["data"]}
        if data["generation"] == new_generation:
            assert "technology/packet_switching.md" not in paths
            if query.startswith("zorblax"):
                assert data["data"][0]["metadata"]["path"] in ("science/zorblax.md", "science/steam_engine.txt")
        else:
            assert "science/zorblax.md" not in paths


# ---- the command -----------------------------------------------------------------------------------
def test_serve_without_an_index_is_one_error_line(tmp_path):
    from conftest import assert_one_error_line, run_cli

    run = run_cli("serve", "--index", tmp_path / "missing", "--port", "8123")
    assert_one_error_line(run.returncode, run.stderr, "no index")


def test_serve_on_a_port_in_use_is_one_error_line(shared_index):
    import socket

    from conftest import assert_one_error_line, run_cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        run = run_cli("serve", "--index", shared_index.path, "--port", taken.getsockname()[1], timeout=120)
    assert_one_error_line(run.returncode, run.stderr, "cannot listen on 127.0.0.1")


def test_sixfold_serve_answers_on_loopback(shared_index):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "sixfold", "serve", "--index", str(shared_index.path), "--port", str(port), "--api-key", "k"],
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "sixfold serve did not start"
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/v1/status", headers={"Authorization": "Bearer k"}, timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert response.status_code == 200 and response.json()["documents"] == 6
    finally:
        process.terminate()
        _out, err = process.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in err  # it says where it listens (loopback by default)
