"""OpenAI's files and fine-tunes: ``/v1/files`` (uploads stored inside the index folder by id: JSONL training
files, purpose ``fine-tune``, and the document files of ``/v1/search``, ``/v1/answers`` and ``/v1/classifications``,
purposes ``search``, ``answers`` and ``classifications``, checked row by row; ``sixfold.http.uploads``) and
``/v1/fine-tunes`` (2021) and ``/v1/fine_tuning/jobs`` (current): the same tuner jobs in the background, with
events, in each API's shape (the runner is ``sixfold.http.jobs``)."""

from __future__ import annotations

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response

from sixfold.http.errors import ApiError
from sixfold.http.jobs import FineTuneJob
from sixfold.http.schemas import FineTuneRequest, FineTuningJobRequest
from sixfold.http.service import Service, ServiceDep

router = APIRouter(prefix="/v1")


@router.post("/files")
def upload(service: ServiceDep, file: UploadFile = File(...), purpose: str = Form(...), model: str | None = Form(None)) -> dict:
    """Upload a file: QA pairs (purpose ``fine-tune``) or JSONL documents (``search``, ``answers``: ``{"text",
    "metadata"}``; ``classifications``: ``{"text", "label", "metadata"}``). ``model`` (2021 search files) is ignored:
    documents are embedded with the index's model when they are searched."""
    return service.files.add(file.file.read(), file.filename or "upload.jsonl", purpose)


@router.get("/files")
def list_files(service: ServiceDep, purpose: str | None = None) -> dict:
    return {"object": "list", "data": [f for f in service.files.list() if purpose is None or f["purpose"] == purpose]}


@router.get("/files/{file_id}")
def get_file(file_id: str, service: ServiceDep) -> dict:
    return service.files.meta(file_id)


@router.get("/files/{file_id}/content")
def file_content(file_id: str, service: ServiceDep) -> Response:
    """The file as it was uploaded."""
    return Response(service.files.content(file_id), media_type="application/octet-stream")


@router.delete("/files/{file_id}")
def delete_file(file_id: str, service: ServiceDep) -> dict:
    """Delete an upload; one a fine-tune still waits for or trains on is kept (409)."""
    service.files.meta(file_id)
    for job in service.fine_tunes.jobs.values():
        if job.status in ("pending", "running") and file_id in (job.training_file, job.validation_file):
            raise ApiError(
                409, f"file {file_id} is in use by fine-tune {job.id} ({job.status})", param="file_id", code="file_in_use"
            )
    return service.files.delete(file_id)


@router.post("/fine-tunes")
def create_fine_tune(body: FineTuneRequest, service: ServiceDep) -> dict:
    return service.fine_tunes.create(body).to_legacy()


@router.get("/fine-tunes")
def list_fine_tunes(service: ServiceDep) -> dict:
    jobs = sorted(service.fine_tunes.jobs.values(), key=lambda j: j.created_at)
    return {"object": "list", "data": [job.to_legacy(with_events=False) for job in jobs]}


@router.get("/fine-tunes/{fine_tune_id}")
def get_fine_tune(fine_tune_id: str, service: ServiceDep) -> dict:
    return _job(service, fine_tune_id).to_legacy()


@router.get("/fine-tunes/{fine_tune_id}/events")
def fine_tune_events(fine_tune_id: str, service: ServiceDep) -> dict:
    return {"object": "list", "data": [FineTuneJob.legacy_event(e) for e in _job(service, fine_tune_id).events]}


@router.post("/fine-tunes/{fine_tune_id}/cancel")
def cancel_fine_tune(fine_tune_id: str, service: ServiceDep) -> dict:
    return service.fine_tunes.cancel(_job(service, fine_tune_id)).to_legacy()


# ---- the current API -------------------------------------------------------------------------------
@router.post("/fine_tuning/jobs")
def create_job(body: FineTuningJobRequest, service: ServiceDep) -> dict:
    hyper = body.hyper()
    request = FineTuneRequest(
        training_file=body.training_file,
        validation_file=body.validation_file,
        model=body.model,
        suffix=body.suffix,
        seed=body.seed,
        max_steps=body.max_steps,
        eval_limit=body.eval_limit,
        activate=body.activate,
        **hyper,
    )
    return service.fine_tunes.create(request, api="current").to_current()


@router.get("/fine_tuning/jobs")
def list_jobs(service: ServiceDep, after: str | None = None, limit: int = Query(20, ge=1, le=100)) -> dict:
    """Newest first; ``after``: the id of the last job of the previous page."""
    jobs = sorted(service.fine_tunes.jobs.values(), key=lambda j: (j.created_at, j.id), reverse=True)
    if after is not None:
        ids = [j.id for j in jobs]
        if after not in ids:
            raise ApiError(404, f"no fine-tuning job '{after}'", param="after", code="not_found")
        jobs = jobs[ids.index(after) + 1 :]
    page = jobs[:limit]
    return {"object": "list", "data": [j.to_current() for j in page], "has_more": len(jobs) > limit}


@router.get("/fine_tuning/jobs/{job_id}")
def get_job(job_id: str, service: ServiceDep) -> dict:
    return _job(service, job_id).to_current()


@router.get("/fine_tuning/jobs/{job_id}/events")
def job_events(job_id: str, service: ServiceDep, after: str | None = None, limit: int = Query(20, ge=1, le=1000)) -> dict:
    """Newest first, as OpenAI lists them; ``after``: the id of the last event of the previous page."""
    events = [FineTuneJob.current_event(e) for e in reversed(_job(service, job_id).events)]
    if after is not None:
        ids = [e["id"] for e in events]
        events = events[ids.index(after) + 1 :] if after in ids else []
    return {"object": "list", "data": events[:limit], "has_more": len(events) > limit}


@router.post("/fine_tuning/jobs/{job_id}/cancel")
def cancel_job(job_id: str, service: ServiceDep) -> dict:
    return service.fine_tunes.cancel(_job(service, job_id)).to_current()


def _job(service: Service, job_id: str) -> FineTuneJob:
    found = service.fine_tunes.jobs.get(job_id)
    if found is None:
        raise ApiError(404, f"no fine-tuning job '{job_id}'", param="fine_tuning_job_id", code="not_found")
    return found
