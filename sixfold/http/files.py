"""OpenAI's 2021 files and fine-tunes: ``/v1/files`` (uploads stored inside the index folder by id: JSONL training
files, purpose ``fine-tune``, and the document files of ``/v1/search``, ``/v1/answers`` and ``/v1/classifications``,
purposes ``search``, ``answers`` and ``classifications``, checked row by row; ``sixfold.http.uploads``) and
``/v1/fine-tunes`` (the tuner as a background job with events; the runner is ``sixfold.http.jobs``)."""

from __future__ import annotations

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response

from sixfold.http.errors import ApiError
from sixfold.http.jobs import FineTuneJob
from sixfold.http.schemas import FineTuneRequest
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
    return service.fine_tunes.create(body).to_dict()


@router.get("/fine-tunes")
def list_fine_tunes(service: ServiceDep) -> dict:
    return {"object": "list", "data": [job.to_dict(with_events=False) for job in service.fine_tunes.jobs.values()]}


@router.get("/fine-tunes/{fine_tune_id}")
def get_fine_tune(fine_tune_id: str, service: ServiceDep) -> dict:
    return _job(service, fine_tune_id).to_dict()


@router.get("/fine-tunes/{fine_tune_id}/events")
def fine_tune_events(fine_tune_id: str, service: ServiceDep) -> dict:
    return {"object": "list", "data": list(_job(service, fine_tune_id).events)}


def _job(service: Service, fine_tune_id: str) -> FineTuneJob:
    found = service.fine_tunes.jobs.get(fine_tune_id)
    if found is None:
        raise ApiError(404, f"no fine-tune '{fine_tune_id}'", param="fine_tune_id", code="not_found")
    return found
