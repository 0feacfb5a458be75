"""The API's routes, in four routers, and the schema types they document.

* :data:`page_router`: ``GET /``, the page;
* :data:`meta_router`: ``GET /api/health`` and ``GET /api/config``;
* :data:`photo_router`: ``POST /api/colorize``;
* :data:`hint_router`: ``POST /api/sessions``, ``POST /api/sessions/{id}/colorize``,
  ``DELETE /api/sessions/{id}`` and ``POST /api/suggest``;
* :data:`job_router`: ``POST /api/jobs``, ``GET`` and ``DELETE /api/jobs/{id}``, and
  ``GET /api/jobs/{id}/result``.

Handlers hold no state of their own: each reads the app's
:class:`~somcolor.web.server.Server` from ``request.app.state.server``.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from ..decode import DECODERS
from .server import Server
from .uploads import UploadError
from .workers import Stopped

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Most colours ``POST /api/suggest`` gives, and how many it gives by default: the page
#: shows 12 (the model's most probable, then the palette; docs/web.md).
MAX_SUGGESTIONS = 12
DEFAULT_SUGGESTIONS = 12


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


class HintSessionInfo(BaseModel):
    """A photo opened for colour hints."""

    id: str  #: the session id: unguessable, the only key to the session
    width: int  #: the photo's size in pixels: hints are given in these pixels
    height: int
    preview_width: int  #: the size of the previews ``POST /api/sessions/{id}/colorize`` sends
    preview_height: int
    max_hints: int
    expires_after_s: float  #: the session is closed after this many seconds unused
    reference: str | None  #: the reference photo's name, when its colours came from one
    seconds: float  #: the server's time to open it (reading, checking, predicting)


class SuggestedColor(BaseModel):
    """One colour offered at a point."""

    color: str  #: "#rrggbb", at the pixel's lightness
    #: the model's probability of this colour's code; null for a palette colour
    probability: float | None
    source: Literal["model", "palette"]  #: the model's colours first, then the palette


class Suggestions(BaseModel):
    """The colours offered at a point: the model's most probable first (``source``
    ``"model"``, in probability order), then a palette that covers the gamut at the
    point's lightness (``"palette"``), without near duplicates; at most ``k``."""

    x: float
    y: float
    colors: list[SuggestedColor]


#: Every counted ``/api/`` route may answer this (:mod:`.ratelimit`).
RATE_LIMITED = {
    "model": ErrorBody,
    "description": "Too many requests from this address (code `rate_limited`), or too busy",
    "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
}


def _errors(*statuses: int, counted: bool = True) -> dict:
    """OpenAPI ``responses`` for these refusals; 429 too when the route is rate-limited."""
    out = {s: {"model": ErrorBody} for s in statuses}
    if counted:
        out[429] = RATE_LIMITED
    return out


#: A hint in the CLI's format (``somcolor colorize --hints``).
HINT_POINT = {
    "type": "object",
    "required": ["x", "y", "color"],
    "properties": {
        "x": {"type": "number", "description": "column, 0-based pixels of the photo"},
        "y": {"type": "number", "description": "row, 0-based pixels of the photo"},
        "color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
        "radius": {"type": "number", "minimum": 0, "description": "in pixels of the photo"},
    },
    "additionalProperties": False,
}
HINTS_SCHEMA = {
    "type": "object",
    "required": ["points"],
    "properties": {"points": {"type": "array", "items": HINT_POINT}},
    "additionalProperties": False,
}


def _form_body(*, video: bool = False, hints: bool = False) -> dict:
    """OpenAPI text for the multipart forms (parsed by hand, see :mod:`.uploads`)."""
    props = {
        "file": {"type": "string", "format": "binary", "description": "the file"},
        "model": {"type": "string", "description": "a name from GET /api/config"},
        "decoder": {"type": "string", "enum": sorted(DECODERS)},
        "reference": {
            "type": "string",
            "format": "binary",
            "description": "optional: a colour photo whose colours the result takes",
        },
    }
    if hints:
        props["hints"] = {
            "type": "string",
            "description": 'optional colour hints, the JSON of "somcolor colorize --hints": '
            + json.dumps({"points": [{"x": 120, "y": 45, "color": "#c83232"}]}),
        }
    if video:
        props["smoothing"] = {
            "type": "number",
            "minimum": 0,
            "exclusiveMaximum": 1,
            "description": "temporal smoothing of the colors between frames",
        }
        props["hints"] = {
            "type": "string",
            "description": "optional colour hints on key frames, the JSON of "
            '"somcolor colorize-video --hints": '
            + json.dumps(
                {"keyframes": [{"time": 1.5, "points": [{"x": 120, "y": 45, "color": "#c83232"}]}]}
            ),
        }
    schema = {"type": "object", "required": ["file"], "properties": props}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


def _json_body(schema: dict, description: str) -> dict:
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": True, "description": description, "content": content}}


def _server(request: Request) -> Server:
    return request.app.state.server


# ---------------------------------------------------------------------------- page
page_router = APIRouter()


@page_router.get("/", include_in_schema=False)
async def page():
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


# ---------------------------------------------------------------------------- meta
meta_router = APIRouter()


@meta_router.get("/api/health", summary="Is the server up", responses=_errors())
async def health() -> dict:
    return {"status": "ok"}


@meta_router.get(
    "/api/config", summary="Models, decoders, video support and limits", responses=_errors()
)
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
        **_errors(400, 403, 408, 413, 415, 422, 429, 501, 503),
    },
    openapi_extra=_form_body(hints=True),
)
async def colorize(request: Request):
    """Send a photo (PNG, JPEG, GIF, BMP, TIFF, WebP; gray or color) as the form field
    ``file``; get the colorized photo back as PNG, the same size. Optional: ``hints``,
    colour hints as the JSON of ``somcolor colorize --hints`` (the same result), and
    ``reference``, a colour photo whose colours the model takes up."""
    server = _server(request)
    upload = await server.receive(request, ("model", "decoder", "hints"), ("reference",))
    reference = upload.files.get("reference")
    try:
        with server.photo_slot():
            choice = server.model_choice(upload.fields)
            points = server.points(upload.fields.get("hints"))
            loop = asyncio.get_running_loop()
            pixels = await loop.run_in_executor(None, server.check_photo, upload.path)
            ref_pixels = await loop.run_in_executor(None, server.check_reference, reference)
            try:
                result = await server.colorize_photo(
                    upload.path,
                    choice,
                    request.is_disconnected,
                    points=points,
                    reference=reference,
                    pixels=pixels,
                    reference_pixels=ref_pixels,
                )
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
            "x-somcolor-hints": str(len(points or ())),
            "x-somcolor-reference": "yes" if reference is not None else "no",
        },
    )


# ---------------------------------------------------------------------------- hints
hint_router = APIRouter()


@hint_router.post(
    "/api/sessions",
    summary="Open a photo for colour hints",
    status_code=201,
    response_model=HintSessionInfo,
    responses=_errors(400, 403, 408, 413, 415, 422, 429, 501, 503),
    openapi_extra=_form_body(),
)
async def open_session(request: Request):
    """Send a photo as the form field ``file`` (optional: ``model``, ``decoder``,
    ``reference``); the server computes what no hint changes once and keeps it, in a
    hint worker, under the returned unguessable ``id`` until it has gone unused for
    ``expires_after_s`` seconds or ``max_hint_sessions`` newer ones are opened. Then
    send hints to ``POST /api/sessions/{id}/colorize``."""
    server = _server(request)
    upload = await server.receive(request, ("model", "decoder"), ("reference",))
    reference = upload.files.get("reference")
    t0 = time.perf_counter()
    try:
        with server.photo_slot():
            choice = server.model_choice(upload.fields)
            loop = asyncio.get_running_loop()
            pixels = await loop.run_in_executor(None, server.check_photo, upload.path)
            ref_pixels = await loop.run_in_executor(None, server.check_reference, reference)
            name = upload.names.get("reference", "reference")
            session = await server.open_session(
                upload.path, choice, reference, name, pixels=pixels, reference_pixels=ref_pixels
            )
    finally:
        upload.discard()
    lim = server.limits
    body = {
        "id": session.id,
        "width": session.shape[1],
        "height": session.shape[0],
        "preview_width": session.preview_shape[1],
        "preview_height": session.preview_shape[0],
        "max_hints": lim.max_hints,
        "expires_after_s": lim.hint_session_ttl_s,
        "reference": session.reference,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return JSONResponse(body, status_code=201, headers={"location": f"/api/sessions/{session.id}"})


@hint_router.post(
    "/api/sessions/{session_id}/colorize",
    summary="The photo's preview with these colour hints",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "the preview (JPEG)"},
        **_errors(400, 403, 404, 408, 410, 413, 415, 422, 429, 503),
    },
    openapi_extra=_json_body(HINTS_SCHEMA, "the hints, the JSON of somcolor colorize --hints"),
)
async def session_colorize(request: Request, session_id: str):
    """The photo colorized with these hints (all of them, each time: the server keeps
    no hints), as a JPEG preview at most ``preview_side`` pixels on the long side. Hints
    are in the photo's own pixels. For the full-size PNG send the photo and the same
    hints to ``POST /api/colorize``."""
    server = _server(request)
    points = await server.hints_body(request)
    with server.photo_slot():
        try:
            jpeg, seconds, clipped = await server.in_session(
                session_id, ("render", points), request.is_disconnected
            )
        except Stopped:
            raise ClientDisconnect() from None
    return Response(
        jpeg,
        media_type="image/jpeg",
        headers={
            "x-somcolor-seconds": f"{seconds:.3f}",
            "x-somcolor-gamut-clipped": str(clipped),
            "x-somcolor-hints": str(len(points or ())),
            "cache-control": "no-store",
        },
    )


@hint_router.delete(
    "/api/sessions/{session_id}",
    summary="Close a hint session",
    status_code=204,
    response_class=Response,
    responses=_errors(403, 404, 410),
)
async def delete_session(request: Request, session_id: str):
    _server(request).sessions.delete(session_id)
    return Response(status_code=204)


SUGGEST_SCHEMA = {
    "type": "object",
    "required": ["session", "x", "y"],
    "properties": {
        "session": {"type": "string", "description": "an id from POST /api/sessions"},
        "x": {"type": "number", "description": "column, pixels of the photo"},
        "y": {"type": "number", "description": "row, pixels of the photo"},
        "k": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_SUGGESTIONS,
            "default": DEFAULT_SUGGESTIONS,
        },
    },
    "additionalProperties": False,
}


@hint_router.post(
    "/api/suggest",
    summary="The colours to pick from at a point",
    response_model=Suggestions,
    responses=_errors(400, 403, 404, 408, 410, 413, 415, 422, 429, 503),
    openapi_extra=_json_body(SUGGEST_SCHEMA, "the session and the point"),
)
async def suggest(request: Request):
    """At most ``k`` colours to pick from at column ``x``, row ``y`` of the session's
    photo, each shown at that point's lightness: the model's most probable first, then a
    palette that covers the gamut there (:func:`somcolor.guide.suggest`); a palette
    colour's ``probability`` is null."""
    server = _server(request)
    session_id, x, y, k = _suggest_request(await server.receive_json(request, 1024))
    with server.photo_slot():
        try:
            (colors,) = await server.in_session(
                session_id, ("suggest", x, y, k), request.is_disconnected
            )
        except Stopped:
            raise ClientDisconnect() from None
    return {
        "x": x,
        "y": y,
        "colors": [{"color": c, "probability": p, "source": s} for c, p, s in colors],
    }


def _suggest_request(text: str) -> tuple[str, float, float, int]:
    """``(session, x, y, k)`` of a suggest request's JSON; 422 ``bad_request`` if bad."""

    def bad(message: str) -> UploadError:
        return UploadError(422, "bad_request", message)

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad(f"not JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise bad("expected an object with session, x and y")
    unknown = sorted(set(data) - {"session", "x", "y", "k"})
    if unknown:
        raise bad(f"unknown keys {unknown[:5]}, expected session, x, y and k")
    session, x, y = data.get("session"), data.get("x"), data.get("y")
    k = data.get("k", DEFAULT_SUGGESTIONS)
    if not isinstance(session, str) or not session:
        raise bad(f"session: got {session!r:.40}, expected a session id")
    for name, value in (("x", x), ("y", y)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad(f"{name}: got {value!r:.40}, expected a number")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_SUGGESTIONS:
        raise bad(f"k: got {k!r:.40}, expected a whole number 1..{MAX_SUGGESTIONS}")
    return session, float(x), float(y), k


# ---------------------------------------------------------------------------- video jobs
job_router = APIRouter()


@job_router.post(
    "/api/jobs",
    summary="Start colorizing a video",
    status_code=202,
    response_model=JobStatus,
    responses=_errors(400, 403, 408, 413, 415, 422, 429, 501, 503),
    openapi_extra=_form_body(video=True),
)
async def create_job(request: Request):
    """Send a video as the form field ``file`` (optional: ``reference``, a colour photo
    whose colours the whole clip takes up; ``hints``, colour hints on key frames as
    ``somcolor colorize-video --hints`` takes them, JSON); poll ``GET /api/jobs/{id}`` for progress,
    then fetch the MP4 from ``result_url``. Results are deleted after the TTL, or by
    ``DELETE /api/jobs/{id}``; until then they count against the job limit."""
    server = _server(request)
    if server.video is None:
        raise UploadError(501, "no_video", server.video_error)
    fields = ("model", "decoder", "smoothing", "hints")
    upload = await server.receive(request, fields, ("reference",))
    reference = upload.files.get("reference")
    try:
        with server.jobs.reservation() as slot:  # only once the whole upload is in
            model = server.model_for(upload.fields)
            smoothing = server.smoothing(upload.fields)
            hints = server.video_hints(upload.fields)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, server.check_video, upload.path)
            ref_pixels = await loop.run_in_executor(None, server.check_reference, reference)
            memory = await server.video_room(upload.path, ref_pixels)
            try:
                job = server.jobs.start(
                    slot,
                    server.video_work(model, smoothing, reference, hints, memory),
                    upload.path,
                    download_name=f"{upload.filename}_color.mp4",
                )
            except BaseException:
                memory.release()
                raise
    except BaseException:
        upload.discard()
        raise
    status = server.jobs.status(job)
    return JSONResponse(status, status_code=202, headers={"location": f"/api/jobs/{job.id}"})


@job_router.get(
    "/api/jobs/{job_id}",
    summary="A video job's state and progress",
    response_model=JobStatus,
    responses=_errors(404, 410, counted=False),
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
ROUTERS = (page_router, meta_router, photo_router, hint_router, job_router)
