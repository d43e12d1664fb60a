"""The generator fine-tuned over HTTP as OpenAI's API does it, against a real ``sixfold serve`` process: the current
``/v1/fine_tuning/jobs`` through the current ``openai`` client (create, retrieve, list, events, cancel), a job that
survives ``kill -9`` of the server and resumes from its last checkpoint when the server is started again, the
tuned model used by name in ``/v1/completions`` and ``/v1/chat/completions``, and the 2021 ``/v1/fine-tunes`` through
the 0.x client. The base is the packaged SmolLM2-135M-Instruct (fast to train); rows are tests/fixtures/trec_*.jsonl."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import MODEL, REPO, cli_env, copy_index

openai = pytest.importorskip("openai")
FIXTURES = Path(__file__).parent / "fixtures"
BASE = "SmolLM2-135M-Instruct"
TRAIN, EVAL = FIXTURES / "trec_train.jsonl", FIXTURES / "trec_eval.jsonl"
PROMPT = (
    "Classify the question as abbreviation, entity, description, human, location or number.\nQuestion: Who wrote Hamlet ?\nType:"
)


class ServeProcess:
    """``python -m sixfold serve`` on a free loopback port, started and killed for real."""

    def __init__(self, index: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.index = index
        self.process: subprocess.Popen | None = None

    def start(self) -> ServeProcess:
        command = [sys.executable, "-m", "sixfold", "serve", "--index", str(self.index), "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, cwd=REPO, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 180
        while True:
            assert self.process.poll() is None, self.process.stderr.read() if self.process.stderr else ""
            assert time.monotonic() < deadline, "sixfold serve did not start"
            try:
                if httpx.get(self.url + "/v1/models", timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.3)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="module")
def served(tmp_path_factory, shared_index):
    index = copy_index(shared_index.path, tmp_path_factory.mktemp("jobs") / "idx")
    server = ServeProcess(index).start()
    yield server
    server.stop()


def client_for(server: ServeProcess):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="sk-local", max_retries=0, timeout=120)


def wait_for(check, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_job_survives_kill_9_and_resumes_from_its_checkpoint(served):
    client = client_for(served)
    with open(TRAIN, "rb") as train, open(EVAL, "rb") as held:
        training = client.files.create(file=train, purpose="fine-tune").id
        validation = client.files.create(file=held, purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(
        model=BASE,
        training_file=training,
        validation_file=validation,
        hyperparameters={"n_epochs": 1, "batch_size": 2},
        extra_body={"max_steps": 60, "eval_limit": 6, "activate": "yes"},
    )
    assert job.object == "fine_tuning.job" and job.status in ("queued", "running") and job.id.startswith("ftjob-")
    assert job.model == BASE and job.hyperparameters.n_epochs == 1 and job.training_file == training
    work = served.index / "models" / ".work"
    checkpoint = wait_for(lambda: next(work.glob("generator-*/checkpoint-*/trainer_state.json"), None), 600, "a checkpoint")
    served.kill()
    saved = json.loads((served.index / "server-files" / "jobs" / f"{job.id}.json").read_text())
    assert saved["status"] == "running" and saved["fine_tuned_model"] is None
    step = int(checkpoint.parent.name.split("-")[1])

    served.start()
    client = client_for(served)
    assert client.fine_tuning.jobs.retrieve(job.id).status in ("queued", "running", "succeeded")
    done = wait_for(
        lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status not in ("queued", "running") and j, 900, "the job", 1
    )
    assert done.status == "succeeded", done.error
    assert done.fine_tuned_model == "generator@1" and done.finished_at >= done.created_at
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=1000).data]
    assert messages[0] == "Fine-tune succeeded" and messages[-1].startswith("Created fine-tune")  # newest first
    assert any(m.startswith("Server restarted") for m in messages)
    resumed = [int(n) for m in messages for n in re.findall(r"resuming at step (\d+)", m)]
    assert resumed and resumed[0] >= step, messages
    assert "Completed step 60/60" in messages

    # the tuned model, by name, in both generation endpoints; it is listed as a completion model
    models = {m.id: m for m in client.models.list().data}
    assert models["generator@1"].model_extra["role"] == "completion" and models["generator@1"].model_extra["active"]
    text = client.completions.create(model="generator@1", prompt=PROMPT, max_tokens=3, temperature=0, stop=["\n"])
    assert text.model == "generator@1" and text.choices[0].text.strip()
    chat = client.chat.completions.create(
        model="generator@1", messages=[{"role": "user", "content": "Name a colour."}], max_tokens=4, temperature=0
    )
    assert chat.choices[0].message.content


def test_the_2021_answers_read_with_the_active_tuned_generator(served):
    """After the first test generator@1 is active: /v1/answers (generative, with its prompt) runs on it."""
    models = {m["id"]: m for m in httpx.get(served.url + "/v1/models", timeout=30).json()["data"]}
    assert models["generator@1"]["active"] and not models["generator@base"]["active"]
    body = {
        "question": "Who were the Normans descended from?",
        "documents": ["The Normans were descended from Norse raiders and pirates from Denmark, Iceland and Norway."],
        "examples_context": "The Eiffel Tower is in Paris.",
        "examples": [["Where is the Eiffel Tower?", "Paris"]],
        "return_prompt": True,
        "max_tokens": 8,
    }
    response = httpx.post(served.url + "/v1/answers", json=body, timeout=300)
    assert response.status_code == 200, response.text
    assert "Norse raiders" in response.json()["prompt"]  # the reader's prompt, rendered for the tuned model


def test_cancel_list_and_refusals(served):
    client = client_for(served)
    with open(TRAIN, "rb") as train:
        training = client.files.create(file=train, purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(model=BASE, training_file=training, extra_body={"max_steps": 500, "activate": "no"})
    cancelled = client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status in ("cancelled", "running")
    final = wait_for(lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status == "cancelled" and j, 300, "cancel", 0.5)
    assert final.fine_tuned_model is None
    registry = json.loads((served.index / "models" / "registry.json").read_text())
    assert set(registry.get("generator", {}).get("versions", {})) <= {"1"}  # the cancelled job saved nothing

    listed = client.fine_tuning.jobs.list(limit=100)
    assert job.id in [j.id for j in listed.data] and listed.data[0].created_at >= listed.data[-1].created_at
    page = httpx.get(f"{served.url}/v1/fine_tuning/jobs", params={"limit": 1}, timeout=30).json()
    assert len(page["data"]) == 1 and page["has_more"] == (len(listed.data) > 1)

    with pytest.raises(openai.BadRequestError, match="not a language model on this server"):
        client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training)
    with pytest.raises(openai.BadRequestError, match="no uploaded file"):
        client.fine_tuning.jobs.create(model=BASE, training_file="file-" + "0" * 24)
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-" + "0" * 24)
    with pytest.raises(openai.BadRequestError, match="n_epochs"):
        client.fine_tuning.jobs.create(model=BASE, training_file=training, hyperparameters={"n_epochs": 1000})


def test_the_legacy_client_fine_tunes_the_generator_and_completes_with_it(served):
    from test_server import _legacy_python

    python = _legacy_python()
    run = subprocess.run(
        [str(python), str(Path(__file__).parent / "legacy_openai_client.py"), served.url + "/v1", MODEL]
        + ["fine-tune-generator", str(TRAIN), BASE, PROMPT],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout)
    job = out["job"]
    assert job["object"] == "fine-tune" and job["status"] == "succeeded", job
    assert job["fine_tuned_model"].startswith("generator@") and job["fine_tuned_model"] in out["models"]
    assert job["result"]["data"] == "completion" and "perplexity" in job["result"]["after"]
    messages = [e["message"] for e in out["events"]["data"]]
    assert "Validated the training file: it trains the generator" in messages and messages[-1] == "Fine-tune succeeded"
    assert out["completion"]["model"] == job["fine_tuned_model"] and out["completion"]["choices"][0]["text"].strip()
