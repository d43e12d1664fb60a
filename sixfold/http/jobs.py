"""Uploaded files and fine-tune jobs of the HTTP server (the job runner behind ``sixfold.http.files``).

Files are stored under ``<index>/server-files/<id>.jsonl`` (+ ``<id>.json`` with their metadata), addressed only by
their generated id, so no API parameter names a path. Fine-tunes run one at a time in a background thread:
``Engine.tune_reader`` trains a new reader version into the index's model registry, and a ``TrainerCallback``
turns training progress into the job's events. Jobs live in memory (a restart forgets them;
the trained versions stay in the registry).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sixfold.core.errors import SixfoldError

if TYPE_CHECKING:
    from sixfold.engine import Engine
    from sixfold.http.schemas import FineTuneRequest

FILE_ID = re.compile(r"^file-[0-9a-f]{24}$")
FILES_DIR = "server-files"


class FileStore:
    """Uploaded training files inside the index folder, by id."""

    def __init__(self, index_root: Path) -> None:
        self.root = Path(index_root) / FILES_DIR

    def _paths(self, file_id: str) -> tuple[Path, Path]:
        if not isinstance(file_id, str) or not FILE_ID.match(file_id):
            raise KeyError(file_id)
        return self.root / f"{file_id}.jsonl", self.root / f"{file_id}.json"

    def add(self, data: bytes, filename: str, purpose: str) -> dict:
        self.root.mkdir(parents=True, exist_ok=True)
        file_id = "file-" + secrets.token_hex(12)
        data_path, meta_path = self._paths(file_id)
        meta = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": os.path.basename(filename or "upload.jsonl")[:200],
            "purpose": purpose,
            "status": "processed",
        }
        for path, content in ((data_path, data), (meta_path, json.dumps(meta).encode())):
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(content)
            os.replace(tmp, path)
        return meta

    def get(self, file_id: str) -> dict:
        _data, meta = self._paths(file_id)
        if not meta.is_file():
            raise KeyError(file_id)
        return json.loads(meta.read_text())

    def path(self, file_id: str) -> Path:
        self.get(file_id)
        return self._paths(file_id)[0]

    def list(self) -> list[dict]:
        if not self.root.is_dir():
            return []
        return sorted((json.loads(p.read_text()) for p in self.root.glob("file-*.json")), key=lambda m: m["created_at"])


@dataclass
class FineTuneJob:
    id: str
    model: str
    training_file: str
    validation_file: str
    hyperparams: dict
    activate: str
    eval_limit: int
    created_at: int = field(default_factory=lambda: int(time.time()))
    updated_at: int = field(default_factory=lambda: int(time.time()))
    status: str = "pending"  # pending, running, succeeded, failed
    fine_tuned_model: str | None = None
    result: dict | None = None
    events: list[dict] = field(default_factory=list)
    progress: dict = field(default_factory=dict)

    def event(self, message: str, level: str = "info") -> None:
        now = int(time.time())
        self.events.append({"object": "fine-tune-event", "created_at": now, "level": level, "message": message})
        self.updated_at = now

    def to_dict(self, with_events: bool = True) -> dict:
        data = {
            "id": self.id,
            "object": "fine-tune",
            "model": self.model,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "status": self.status,
            "fine_tuned_model": self.fine_tuned_model,
            "hyperparams": self.hyperparams,
            "training_files": [{"id": self.training_file, "object": "file"}],
            "validation_files": [{"id": self.validation_file, "object": "file"}],
            "result_files": [],
            "organization_id": "sixfold",
            "result": self.result,
            "progress": self.progress,
        }
        if with_events:
            data["events"] = list(self.events)
        return data


class FineTunes:
    """Fine-tune jobs over one index; one trains at a time (a second waits its turn)."""

    def __init__(self, engine: Engine, files: FileStore) -> None:
        self.engine = engine
        self.files = files
        self.jobs: dict[str, FineTuneJob] = {}
        self._run_lock = threading.Lock()

    def create(self, request: FineTuneRequest) -> FineTuneJob:
        """Validate the request and its files, then start the job in the background."""
        role = (request.model or "reader").partition("@")[0]
        if role != "reader":
            raise SixfoldError(f"only the reader can be fine-tuned over the API, not '{request.model}'")
        training = self._file(request.training_file, "training_file")
        if not request.validation_file:
            raise SixfoldError("validation_file is required: sixfold scores the reader before and after on it")
        validation = self._file(request.validation_file, "validation_file")
        from sixfold.tuner.data import load_qa_file
        from sixfold.tuner.reader import ReaderTrainConfig

        for name, path in (("training_file", training), ("validation_file", validation)):
            try:
                load_qa_file(path)
            except SixfoldError as exc:
                raise SixfoldError(f"{name}: {exc}".replace(str(path), request.__dict__[name])) from None
        hyper = {
            "n_epochs": request.n_epochs or ReaderTrainConfig.epochs,
            "batch_size": request.batch_size or ReaderTrainConfig.batch_size,
            "learning_rate": ReaderTrainConfig.learning_rate * (request.learning_rate_multiplier or 1.0),
            "max_steps": request.max_steps or ReaderTrainConfig.max_steps,
        }
        job = FineTuneJob(
            id="ft-" + secrets.token_hex(12),
            model="reader",
            training_file=request.training_file,
            validation_file=request.validation_file,
            hyperparams=hyper,
            activate=request.activate,
            eval_limit=request.eval_limit,
        )
        job.event(f"Created fine-tune: {job.id}")
        self.jobs[job.id] = job
        threading.Thread(target=self._run, args=(job, training, validation), name=job.id, daemon=True).start()
        return job

    def _file(self, file_id: str, param: str) -> Path:
        try:
            return self.files.path(file_id)
        except KeyError:
            raise SixfoldError(f"{param}: no uploaded file '{file_id}' (upload it with POST /v1/files)") from None

    def _run(self, job: FineTuneJob, training: Path, validation: Path) -> None:
        from sixfold.tuner.reader import ReaderTrainConfig

        with self._run_lock:
            job.status = "running"
            job.event("Fine-tune started")
            h = job.hyperparams
            config = ReaderTrainConfig(
                epochs=h["n_epochs"], batch_size=h["batch_size"], learning_rate=h["learning_rate"], max_steps=h["max_steps"]
            )
            try:
                result = self.engine.tune_reader(
                    training,
                    validation,
                    config=config,
                    activate=job.activate,
                    eval_limit=job.eval_limit,
                    callbacks=[_events_callback(job)],
                )
            except Exception as exc:  # the job records it; the server keeps serving
                job.status = "failed"
                job.event(f"Fine-tune failed: {exc}", level="error")
                return
            job.fine_tuned_model = f"reader@{result.version}"
            job.result = {
                "before": result.before,
                "after": result.after,
                "improved": result.improved,
                "activated": result.activated,
                "train_examples": result.train_examples,
                "eval_examples": result.eval_examples,
            }
            job.event(
                f"Evaluated: F1 {result.before['F1']:.1f} -> {result.after['F1']:.1f}, EM {result.before['EM']:.1f} -> "
                f"{result.after['EM']:.1f}"
            )
            job.event(f"Uploaded model: {job.fine_tuned_model}" + (" (now active)" if result.activated else " (not active)"))
            job.status = "succeeded"
            job.event("Fine-tune succeeded")


def _events_callback(job: FineTuneJob):
    from transformers import TrainerCallback

    class _Events(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            job.event(f"Training: {state.max_steps} steps")
            self.every = max(1, state.max_steps // 20)

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % self.every == 0 or state.global_step == state.max_steps:
                job.progress = {"step": state.global_step, "steps": state.max_steps}
                job.event(f"Completed step {state.global_step}/{state.max_steps}")

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                job.event(f"Step {state.global_step}/{state.max_steps}: training loss={float(logs['loss']):.4f}")

        def on_train_end(self, args, state, control, **kwargs):
            job.event(f"Training done after {state.global_step} steps; evaluating")

    return _Events()
