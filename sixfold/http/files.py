"""OpenAI's 2021 files and fine-tunes: ``/v1/files`` (JSONL training files, stored inside the index folder by id)
and ``/v1/fine-tunes`` (the tuner as a background job with events; the runner is ``sixfold.http.jobs``)."""

from __future__ import annotations

from fastapi import APIRouter, File, Form, UploadFile

from sixfold.http.errors import ApiError
from sixfold.http.jobs import FineTuneJob
from sixfold.http.schemas import FineTuneRequest
from sixfold.http.service import Service, ServiceDep

router = APIRouter(prefix="/v1")


@router.post("/files")
def upload(service: ServiceDep, file: UploadFile = File(...), purpose: str = Form(...)) -> dict:
    """Upload a JSONL training file (purpose ``fine-tune``); it is stored inside the index folder, by id."""
    if purpose != "fine-tune":
        raise ApiError(400, f"purpose '{purpose}' is not supported: upload QA pairs with purpose 'fine-tune'", param="purpose")
    data = file.file.read()
    if not data.strip():
        raise ApiError(400, "the uploaded file is empty", param="file")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the uploaded file is not UTF-8 text (JSONL or SQuAD JSON expected)", param="file") from None
    return service.files.add(data, file.filename or "upload.jsonl", purpose)


@router.get("/files")
def list_files(service: ServiceDep) -> dict:
    return {"object": "list", "data": service.files.list()}


@router.get("/files/{file_id}")
def get_file(file_id: str, service: ServiceDep) -> dict:
    try:
        return service.files.get(file_id)
    except KeyError:
        raise ApiError(404, f"no file '{file_id}'", param="file_id", code="not_found") from None


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
