"""Uploaded files and fine-tune jobs of the HTTP server (the job runner behind ``sixfold.http.files``).

Files are stored under ``<index>/server-files/<id>.jsonl`` (+ ``<id>.json`` with their metadata), addressed only by
their generated id, so no API parameter names a path.

A job trains what its training file holds: QA pairs train the extractive reader (``Engine.tune_reader``),
``{prompt, completion}`` and chat ``{messages}`` rows train the generator with LoRA (``Engine.tune_generator``).
Jobs run one at a time in a background thread; a ``TrainerCallback`` turns training progress into the job's events
and stops the training when the job is cancelled. Each job's state is written (atomically) to
``<index>/server-files/jobs/<id>.json`` at every change, so jobs survive a server restart: one that was queued or
running when the server stopped is queued again, and its training resumes from its last checkpoint (the tuners
keep checkpoints in a folder keyed by the run's inputs). The same jobs are served in two shapes: OpenAI's 2021
``/v1/fine-tunes`` (``to_legacy``) and the current ``/v1/fine_tuning/jobs`` (``to_current``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sixfold.core.errors import SixfoldError

if TYPE_CHECKING:
    from sixfold.engine import Engine

FILE_ID = re.compile(r"^file-[0-9a-f]{24}$")
JOB_ID = re.compile(r"^(ft|ftjob)-[0-9a-f]{24}$")
FILES_DIR = "server-files"
JOBS_DIR = "jobs"
WAITING = ("pending", "running")
# sixfold's statuses as the current API names them
CURRENT_STATUS = {
    "pending": "queued",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
}


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
            _write_atomic(path, content)
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


def _write_atomic(path: Path, content: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)


class JobCancelled(Exception):
    """Raised inside training when the job was cancelled; the job ends as ``cancelled``."""


@dataclass
class FineTuneJob:
    id: str
    kind: str  # "reader" or "generator": what the training file trains
    model: str  # the model trained from (the reader's base, or the generator's base language model)
    training_file: str
    validation_file: str | None
    hyperparams: dict
    activate: str
    eval_limit: int
    seed: int = 42
    suffix: str | None = None
    created_at: int = field(default_factory=lambda: int(time.time()))
    updated_at: int = field(default_factory=lambda: int(time.time()))
    finished_at: int | None = None
    status: str = "pending"  # pending, running, succeeded, failed, cancelled
    fine_tuned_model: str | None = None
    result: dict | None = None
    error: str | None = None
    events: list[dict] = field(default_factory=list)
    progress: dict = field(default_factory=dict)
    cancel_requested: bool = False
    store: Path | None = field(default=None, repr=False)  # where the job's state is written

    def event(self, message: str, level: str = "info") -> None:
        now = int(time.time())
        self.events.append({"created_at": now, "level": level, "message": message, "id": f"ftevent-{len(self.events)}"})
        self.updated_at = now
        self.save()

    def finish(self, status: str, message: str, level: str = "info") -> None:
        self.status, self.finished_at = status, int(time.time())
        self.event(message, level)

    def save(self) -> None:
        if self.store is None:
            return
        self.store.mkdir(parents=True, exist_ok=True)
        data = {k: v for k, v in asdict(self).items() if k != "store"}
        _write_atomic(self.store / f"{self.id}.json", json.dumps(data).encode())

    @classmethod
    def load(cls, path: Path) -> FineTuneJob:
        data = json.loads(path.read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__}, store=path.parent)

    # ---- the two API shapes --------------------------------------------------------------------------
    def to_legacy(self, with_events: bool = True) -> dict:
        """OpenAI's 2021 fine-tune object."""
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
            "validation_files": [{"id": self.validation_file, "object": "file"}] if self.validation_file else [],
            "result_files": [],
            "organization_id": "sixfold",
            "result": self.result,
            "progress": self.progress,
        }
        if with_events:
            data["events"] = [self.legacy_event(e) for e in self.events]
        return data

    def to_current(self) -> dict:
        """The current API's ``fine_tuning.job`` object."""
        hyper = {
            "n_epochs": self.hyperparams.get("n_epochs"),
            "batch_size": self.hyperparams.get("batch_size"),
            "learning_rate_multiplier": self.hyperparams.get("learning_rate_multiplier", 1.0),
        }
        return {
            "id": self.id,
            "object": "fine_tuning.job",
            "model": self.model,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "fine_tuned_model": self.fine_tuned_model,
            "organization_id": "sixfold",
            "result_files": [],
            "status": CURRENT_STATUS.get(self.status, self.status),
            "validation_file": self.validation_file,
            "training_file": self.training_file,
            "hyperparameters": hyper,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
            "trained_tokens": self.progress.get("tokens"),
            "error": {"code": "training_failed", "message": self.error, "param": None} if self.error else None,
            "seed": self.seed,
            "user_provided_suffix": self.suffix,
            "estimated_finish": None,
            "integrations": [],
            # sixfold's own
            "role": self.kind,
            "result": self.result,
            "progress": self.progress,
        }

    @staticmethod
    def legacy_event(event: dict) -> dict:
        return {"object": "fine-tune-event", **{k: event[k] for k in ("created_at", "level", "message")}}

    @staticmethod
    def current_event(event: dict) -> dict:
        return {"object": "fine_tuning.job.event", "type": "message", "data": {}, **event}


class FineTunes:
    """Fine-tune jobs over one index, kept on disk; one trains at a time (the others wait their turn)."""

    def __init__(self, engine: Engine, files: FileStore) -> None:
        self.engine = engine
        self.files = files
        self.store = files.root / JOBS_DIR
        self.jobs: dict[str, FineTuneJob] = {}
        self._run_lock = threading.Lock()
        self._resume()

    def _resume(self) -> None:
        """Jobs from before a restart; those that were waiting or training are queued again."""
        if not self.store.is_dir():
            return
        for path in sorted(self.store.glob("*.json")):
            try:
                job = FineTuneJob.load(path)
            except (ValueError, TypeError, OSError):
                continue  # a damaged record is skipped, not fatal to the server
            self.jobs[job.id] = job
        for job in sorted(self.jobs.values(), key=lambda j: j.created_at):
            if job.status in WAITING:
                job.status = "pending"
                job.event("Server restarted: the job is queued again and resumes from its last checkpoint")
                self._start(job)

    def create(self, request, api: str = "legacy") -> FineTuneJob:
        """Validate the request and its files, then queue the job. ``request``: ``FineTuneRequest`` (2021) or
        ``FineTuningJobRequest`` (current); ``api``: which of the two created it (the id prefix follows it)."""
        training = self._file(request.training_file, "training_file")
        validation = self._file(request.validation_file, "validation_file") if request.validation_file else None
        kind = self._kind(training, request.model)
        for name, path in (("training_file", training), ("validation_file", validation)):
            if path is not None:
                self._check(path, kind, getattr(request, name), name)
        if kind == "reader" and validation is None:
            raise SixfoldError("validation_file is required: sixfold scores the reader before and after on it")
        hyper = self._hyperparams(request, kind)
        job = FineTuneJob(
            id=("ftjob-" if api == "current" else "ft-") + secrets.token_hex(12),
            kind=kind,
            model=self._base(request.model, kind),
            training_file=request.training_file,
            validation_file=request.validation_file,
            hyperparams=hyper,
            activate=request.activate,
            eval_limit=request.eval_limit,
            seed=request.seed if request.seed is not None else 42,
            suffix=request.suffix,
            store=self.store,
        )
        job.event(f"Created fine-tune: {job.id}")
        job.event(f"Validated the training file: it trains the {kind}")
        self.jobs[job.id] = job
        self._start(job)
        return job

    def cancel(self, job: FineTuneJob) -> FineTuneJob:
        """Cancel a queued job at once, a running one at its next training step; an ended job is left as it is."""
        if job.status == "pending":
            job.cancel_requested = True
            job.finish("cancelled", "Fine-tune cancelled")
        elif job.status == "running":
            job.cancel_requested = True
            job.event("Cancelling: training stops at its next step")
        return job

    # ---- checks ----------------------------------------------------------------------------------------
    def _file(self, file_id: str, param: str) -> Path:
        try:
            return self.files.path(file_id)
        except KeyError:
            raise SixfoldError(f"{param}: no uploaded file '{file_id}' (upload it with POST /v1/files)") from None

    def _kind(self, path: Path, model: str | None) -> str:
        """What the file trains: the generator for completion and chat rows, the reader for QA pairs (unless the
        model asked for is a language model: then QA pairs teach the generator to answer from passages)."""
        from sixfold.tuner.generator_data import file_format

        try:
            found = file_format(path)
        except SixfoldError:
            found = "qa"  # SQuAD JSON uploaded as .jsonl, or a broken file: the checks below name the problem
        if found in ("completion", "chat"):
            return "generator"
        return "generator" if model and (model.startswith("generator") or self._is_language_model(model)) else "reader"

    def _is_language_model(self, model: str) -> bool:
        from sixfold.core.models import resolve_model

        if model.partition("@")[0] in ("reader", "classifier", "embedder", "reranker", "domain"):
            return False
        try:
            resolve_model(model, role="generator")
        except SixfoldError:
            return False
        return True

    def _check(self, path: Path, kind: str, file_id: str, name: str) -> None:
        from sixfold.tuner.data import load_qa_file
        from sixfold.tuner.generator_data import load_generator_file

        try:
            (load_generator_file if kind == "generator" else load_qa_file)(path)
        except SixfoldError as exc:
            raise SixfoldError(f"{name}: {exc}".replace(str(path), file_id)) from None

    def _base(self, model: str | None, kind: str) -> str:
        """The model a job trains from: for the reader always "reader"; for the generator the language model named,
        else the server's untuned one."""
        from sixfold.engine import base_generator

        if kind == "reader":
            role = (model or "reader").partition("@")[0]
            if role != "reader":
                raise SixfoldError(f"QA pairs train the reader; '{model}' cannot be fine-tuned on them")
            return "reader"
        if not model or model.startswith("generator"):
            return base_generator()
        if not self._is_language_model(model):
            raise SixfoldError(
                f"model '{model}' is not a language model on this server: name one (e.g. {base_generator()}) or leave "
                "model out to tune the server's"
            )
        return model

    @staticmethod
    def _hyperparams(request, kind: str) -> dict:
        from sixfold.tuner.generator import GeneratorTrainConfig
        from sixfold.tuner.reader import ReaderTrainConfig

        defaults = GeneratorTrainConfig if kind == "generator" else ReaderTrainConfig
        multiplier = request.learning_rate_multiplier or 1.0
        return {
            "n_epochs": request.n_epochs or defaults.epochs,
            "batch_size": request.batch_size or defaults.batch_size,
            "learning_rate_multiplier": multiplier,
            "learning_rate": defaults.learning_rate * multiplier,
            "max_steps": request.max_steps or defaults.max_steps,
        }

    # ---- running -----------------------------------------------------------------------------------------
    def _start(self, job: FineTuneJob) -> None:
        threading.Thread(target=self._run, args=(job,), name=job.id, daemon=True).start()

    def _run(self, job: FineTuneJob) -> None:
        with self._run_lock:
            if job.status != "pending":  # cancelled while it waited
                return
            job.status = "running"
            job.event("Fine-tune started")
            try:
                result = self._train(job)
            except JobCancelled:
                job.finish("cancelled", "Fine-tune cancelled")
                return
            except Exception as exc:  # the job records it; the server keeps serving
                job.error = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
                job.finish("failed", f"Fine-tune failed: {job.error}", level="error")
                return
            job.fine_tuned_model = f"{job.kind}@{result.version}"
            job.result = result.report() | {"path": None}
            job.event("Evaluated: " + _scores(result.before, result.after))
            job.event(f"Uploaded model: {job.fine_tuned_model}" + (" (now active)" if result.activated else " (not active)"))
            job.finish("succeeded", "Fine-tune succeeded")

    def _train(self, job: FineTuneJob):
        h = job.hyperparams
        callbacks = [_events_callback(job)]
        training = self.files.path(job.training_file)
        validation = self.files.path(job.validation_file) if job.validation_file else None
        if job.kind == "reader":
            from sixfold.tuner.reader import ReaderTrainConfig

            assert validation is not None, "create() refuses a reader job without a validation file"
            reader_config = ReaderTrainConfig(
                epochs=h["n_epochs"], batch_size=h["batch_size"], learning_rate=h["learning_rate"], max_steps=h["max_steps"]
            )
            return self.engine.tune_reader(
                training, validation, config=reader_config, activate=job.activate, eval_limit=job.eval_limit, callbacks=callbacks
            )
        from sixfold.tuner.generator import GeneratorTrainConfig
        from sixfold.tuner.generator_data import load_generator_file

        config = GeneratorTrainConfig(
            epochs=h["n_epochs"],
            batch_size=h["batch_size"],
            learning_rate=h["learning_rate"],
            max_steps=h["max_steps"],
            seed=job.seed,
        )
        rows = load_generator_file(training)
        held = load_generator_file(validation) if validation else None
        return self.engine.tune_generator(
            rows,
            held,
            base=job.model,
            config=config,
            activate=job.activate,
            eval_limit=job.eval_limit,
            callbacks=callbacks,
            say=job.event,
        )


def _scores(before: dict, after: dict) -> str:
    return ", ".join(f"{k} {before[k]:.2f} -> {after[k]:.2f}" for k in after if k in before)


def _events_callback(job: FineTuneJob):
    from transformers import TrainerCallback

    class _Events(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            job.event(
                f"Training: {state.max_steps} steps" + (f", resuming at step {state.global_step}" if state.global_step else "")
            )
            self.every = max(1, state.max_steps // 20)

        def on_step_end(self, args, state, control, **kwargs):
            if job.cancel_requested:
                raise JobCancelled(job.id)
            if state.global_step % self.every == 0 or state.global_step == state.max_steps:
                job.progress = {"step": state.global_step, "steps": state.max_steps}
                job.event(f"Completed step {state.global_step}/{state.max_steps}")

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                job.event(f"Step {state.global_step}/{state.max_steps}: training loss={float(logs['loss']):.4f}")

        def on_train_end(self, args, state, control, **kwargs):
            job.event(f"Training done after {state.global_step} steps; evaluating")

    return _Events()
