"""The API's routes, in four routers, and the schema types they document.

* :data:`page_router`: ``GET /``, the page;
* :data:`meta_router`: ``GET /api/health`` and ``GET /api/config``;
* :data:`photo_router`: ``POST /api/colorize``;
* :data:`job_router`: ``POST /api/jobs``, ``GET`` and ``DELETE /api/jobs/{id}``, and
  ``GET /api/jobs/{id}/result``.

Handlers hold no state of their own: each reads the app's
:class:`~somcolor.web.server.Server` from ``request.app.state.server``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from ..decode import DECODERS
from .server import Server
from .uploads import UploadError
from .workers import Stopped

STATIC_DIR = Path(__file__).resolve().parent / "static"


# ---------------------------------------------------------------------------- schema
class ErrorBody(BaseModel):
    """A refused request."""

    detail: str
    code: str


class JobStatus(BaseModel):
    """A video job."""

    id: str
    state: str  #: queued, running, done or failed
    frames_done: int
    frames_total: int | None
    progress: float | None  #: 0..1, or null while the frame count is unknown
    seconds: float
    error: str | None
    result_url: str | None
    expires_in_s: float | None  #: once finished: seconds until the result is deleted
    summary: dict | None


def _errors(*statuses: int) -> dict:
    return {s: {"model": ErrorBody} for s in statuses}


def _form_body(*, video: bool) -> dict:
    """OpenAPI text for the multipart forms (parsed by hand, see :mod:`.uploads`)."""
    props = {
        "file": {"type": "string", "format": "binary", "description": "the file"},
        "model": {"type": "string", "description": "a name from GET /api/config"},
        "decoder": {"type": "string", "enum": sorted(DECODERS)},
    }
    if video:
        props["smoothing"] = {
            "type": "number",
            "minimum": 0,
            "exclusiveMaximum": 1,
            "description": "temporal smoothing of the colors between frames",
        }
    schema = {"type": "object", "required": ["file"], "properties": props}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


def _server(request: Request) -> Server:
    return request.app.state.server


# ---------------------------------------------------------------------------- page
page_router = APIRouter()


@page_router.get("/", include_in_schema=False)
async def page():
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


# ---------------------------------------------------------------------------- meta
meta_router = APIRouter()


@meta_router.get("/api/health", summary="Is the server up")
async def health() -> dict:
    return {"status": "ok"}


@meta_router.get("/api/config", summary="Models, decoders, video support and limits")
async def config(request: Request) -> dict:
    return _server(request).config()


# ---------------------------------------------------------------------------- photos
photo_router = APIRouter()


@photo_router.post(
    "/api/colorize",
    summary="Colorize a photo",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "the colorized photo (PNG)"},
        **_errors(400, 403, 408, 413, 415, 422, 429, 503),
    },
    openapi_extra=_form_body(video=False),
)
async def colorize(request: Request):
    """Send a photo (PNG, JPEG, GIF, BMP, TIFF, WebP; gray or color) as the form field
    ``file``; get the colorized photo back as PNG, the same size."""
    server = _server(request)
    upload = await server.receive(request, ("model", "decoder"))
    try:
        with server.photo_slot():
            choice = server.model_choice(upload.fields)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, server.check_photo, upload.path)
            try:
                result = await server.colorize_photo(upload.path, choice, request.is_disconnected)
            except Stopped:  # the client left: nobody reads the answer
                raise ClientDisconnect() from None
    finally:
        upload.discard()
    return Response(
        result.png,
        media_type="image/png",
        headers={
            "content-disposition": f'inline; filename="{upload.filename}_color.png"',
            "x-somcolor-seconds": f"{result.seconds:.3f}",
            "x-somcolor-gamut-clipped": str(result.gamut_clipped),
        },
    )


# ---------------------------------------------------------------------------- video jobs
job_router = APIRouter()


@job_router.post(
    "/api/jobs",
    summary="Start colorizing a video",
    status_code=202,
    response_model=JobStatus,
    responses=_errors(400, 403, 408, 413, 415, 422, 429, 501),
    openapi_extra=_form_body(video=True),
)
async def create_job(request: Request):
    """Send a video as the form field ``file``; poll ``GET /api/jobs/{id}`` for progress,
    then fetch the MP4 from ``result_url``. Results are deleted after the TTL, or by
    ``DELETE /api/jobs/{id}``; until then they count against the job limit."""
    server = _server(request)
    if server.video is None:
        raise UploadError(501, "no_video", server.video_error)
    upload = await server.receive(request, ("model", "decoder", "smoothing"))
    try:
        with server.jobs.reservation() as slot:  # only once the whole upload is in
            model = server.model_for(upload.fields)
            smoothing = server.smoothing(upload.fields)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, server.check_video, upload.path)
            job = server.jobs.start(
                slot,
                server.video_work(model, smoothing),
                upload.path,
                download_name=f"{upload.filename}_color.mp4",
            )
    except BaseException:
        upload.discard()
        raise
    status = server.jobs.status(job)
    return JSONResponse(status, status_code=202, headers={"location": f"/api/jobs/{job.id}"})


@job_router.get(
    "/api/jobs/{job_id}",
    summary="A video job's state and progress",
    response_model=JobStatus,
    responses=_errors(404, 410),
)
async def job_status(request: Request, job_id: str):
    jobs = _server(request).jobs
    return jobs.status(jobs.get(job_id))


@job_router.delete(
    "/api/jobs/{job_id}",
    summary="Cancel a video job and delete it with its result",
    status_code=204,
    response_class=Response,
    responses=_errors(403, 404, 410),
)
async def delete_job(request: Request, job_id: str):
    """A running job stops at its next frame; the job, its upload and its result are
    deleted, and its slot frees once it has stopped."""
    _server(request).jobs.delete(job_id)
    return Response(status_code=204)


@job_router.get(
    "/api/jobs/{job_id}/result",
    summary="Download a finished job's video",
    response_class=FileResponse,
    responses={
        200: {"content": {"video/mp4": {}}, "description": "the colorized video"},
        **_errors(404, 409, 410),
    },
)
async def job_result(request: Request, job_id: str):
    job = _server(request).jobs.get(job_id)
    if job.state != "done":
        reason = f": {job.error}" if job.error else ""
        raise UploadError(409, "job_not_done", f"the job is {job.state}{reason}")
    return FileResponse(job.dst, media_type="video/mp4", filename=job.download_name)


#: In the order the app includes them (the order of the paths in the schema).
ROUTERS = (page_router, meta_router, photo_router, job_router)
