"""The web page and its JSON API: a FastAPI app over somcolor's public API.

Routes
------
``GET /``
    The page (``static/index.html``; ``app.js`` and ``style.css`` under ``/static``).
``GET /api/config``
    What the page's controls offer: models, decoders, video support, limits.
``POST /api/colorize``
    A photo (multipart field ``file``; optional ``model``, ``decoder``) -> PNG.
``POST /api/jobs``
    A video (``file``; optional ``model``, ``decoder``, ``smoothing``) -> 202 and a job.
``GET /api/jobs/{id}``, ``GET /api/jobs/{id}/result``
    The job's state and progress; its colorized MP4 once done.
``GET /openapi.json``
    The API's schema. FastAPI's interactive docs are turned off: they load from a CDN.

Every refusal is JSON ``{"detail": "<message for people>", "code": "<short code>"}``
with a 4xx status: 400 malformed form, 404/410 unknown/expired job, 409 job not done,
413 upload or photo too large, 415 not a photo/video (judged by content), 422 corrupt
file or bad option, 429 too busy. Uploads go to a private folder (mode 0700) under
generated names and are deleted as soon as they are used.

Work that takes CPU runs off the event loop: photos in a small thread pool, videos in
one thread per job. The colorizing step itself runs one call at a time under a lock:
each call already uses every core (numba's parallel loops, BLAS), so running several
together gains nothing, and numba's fallback "workqueue" threading layer aborts the
process when two threads enter a parallel loop at once.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import inspect
import io
import logging
import shutil
import tempfile
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .. import load
from .._version import __version__
from ..decode import DECODERS
from ..exceptions import ImageReadError, SomcolorError
from ..io import read_image
from .jobs import JobManager
from .settings import Limits
from .uploads import (
    IMAGE_FORMATS,
    Upload,
    UploadError,
    image_size,
    looks_like_video,
    receive_upload,
)

try:
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel
    from starlette.datastructures import MutableHeaders
    from starlette.requests import ClientDisconnect
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        f"somcolor's web page needs the web extra ({exc}): pip install 'somcolor[web]'",
        name=exc.name,
    ) from exc

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_MODEL_NAME = "default"

#: Sent with every response. The page loads nothing from elsewhere, and says so.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


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


# ---------------------------------------------------------------------------- state
@dataclass
class _ModelEntry:
    name: str
    label: str
    model: object


def _load_models(model_path, models_dir) -> dict[str, _ModelEntry]:
    """The default model (bundled, or ``model_path``) plus every loadable .npz in ``models_dir``."""
    default = load(model_path)
    label = "bundled model" if model_path is None else Path(model_path).name
    models = {DEFAULT_MODEL_NAME: _ModelEntry(DEFAULT_MODEL_NAME, label, default)}
    if model_path is None:
        models["fast"] = _ModelEntry(
            "fast", "bundled fast model (paper's configuration)", load("fast")
        )
    if models_dir is None:
        return models
    folder = Path(models_dir)
    if not folder.is_dir():
        raise SomcolorError(f"{folder}: models folder not found")
    for path in sorted(folder.glob("*.npz")):
        name = path.stem if path.stem not in models else f"{path.stem}-2"
        try:
            models[name] = _ModelEntry(name, path.name, load(path))
        except SomcolorError as exc:
            log.warning("skipping %s: %s", path, exc)
    return models


def _import_video():
    """``(somcolor.video, None)``, or ``(None, why)`` when video support is missing."""
    try:
        video = importlib.import_module("somcolor.video")
    except ImportError as exc:
        missing = exc.name or "somcolor.video"
        return None, f"video support is not installed (no module {missing!r}): " + (
            "pip install 'somcolor[video]'"
        )
    return video, None


def _summary(report, folder: Path) -> dict:
    """A video report as JSON: numbers and short texts (no paths, no other objects)."""
    items = asdict(report) if is_dataclass(report) else dict(getattr(report, "__dict__", {}))
    out = {}
    for key, value in items.items():
        if isinstance(value, float) and not np.isfinite(value):
            continue
        if isinstance(value, bool | int | float):
            out[key] = value
        elif isinstance(value, str) and str(folder) not in value:
            out[key] = value[:200]
    return out


class _LockedModel:
    """A model whose ``predict_uv`` runs under the server's colorize lock.

    :func:`somcolor.video.colorize_video` calls only ``predict_uv``; anything else is
    passed through to the model.
    """

    def __init__(self, model, lock: threading.Lock):
        self._model = model
        self._lock = lock

    def predict_uv(self, L):
        with self._lock:
            return self._model.predict_uv(L)

    def __getattr__(self, name):
        return getattr(self._model, name)


class _Server:
    """Everything one app holds: limits, models, the private folder, pools and jobs."""

    def __init__(self, model_path, models_dir, limits: Limits, workdir):
        self.limits = limits
        self.models = _load_models(model_path, models_dir)
        # mkdtemp: a fresh folder with a random name, mode 0700.
        self.folder = Path(tempfile.mkdtemp(prefix="somcolor-web-", dir=workdir))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.folder, ignore_errors=True)
        self.pool = ThreadPoolExecutor(limits.image_workers, thread_name_prefix="somcolor-photo")
        self.jobs = JobManager(self.folder, max_jobs=limits.max_jobs, ttl_s=limits.result_ttl_s)
        self.video, self.video_error = _import_video()
        self.colorize_lock = threading.Lock()
        self._variants: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()
        self._pending = 0
        # Warm up: load numba's cached kernels now rather than in the first request.
        self.models[DEFAULT_MODEL_NAME].model.colorize(np.zeros((8, 8), np.uint8))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self._cleanup()

    # ------------------------------------------------------------------ options
    def model_for(self, fields: dict[str, str]):
        """The model named in the form, set to the form's decoder (a cached copy)."""
        name = fields.get("model") or DEFAULT_MODEL_NAME
        entry = self.models.get(name)
        if entry is None:
            raise UploadError(
                422,
                "bad_option",
                f"unknown model {name[:40]!r}, expected one of {sorted(self.models)}",
            )
        decoder = fields.get("decoder") or entry.model.decoder
        if decoder not in DECODERS:
            raise UploadError(
                422,
                "bad_option",
                f"unknown decoder {decoder[:40]!r}, expected one of {sorted(DECODERS)}",
            )
        with self._lock:
            variant = self._variants.get((name, decoder))
            if variant is None:
                variant = copy.copy(entry.model).set_params(decoder=decoder)
                self._variants[name, decoder] = variant
        return variant

    def smoothing(self, fields: dict[str, str]) -> float:
        from ..temporal import check_smoothing

        text = fields.get("smoothing")
        if not text:
            return self.default_smoothing()
        try:
            return check_smoothing(text[:40])
        except SomcolorError as exc:
            raise UploadError(422, "bad_option", str(exc)) from None

    def default_smoothing(self) -> float:
        """:func:`~somcolor.video.colorize_video`'s own default (0.5 if it cannot tell)."""
        try:
            default = inspect.signature(self.video.colorize_video).parameters["smoothing"].default
        except (AttributeError, KeyError, TypeError, ValueError):
            return 0.5
        return float(default) if isinstance(default, int | float) else 0.5

    # ------------------------------------------------------------------ photos
    @contextmanager
    def photo_slot(self):
        """Count a photo request in; 429 when ``max_pending_images`` are already in."""
        with self._lock:
            if self._pending >= self.limits.max_pending_images:
                raise UploadError(
                    429, "busy", "the server is busy with other photos; try again in a moment"
                )
            self._pending += 1
        try:
            yield
        finally:
            with self._lock:
                self._pending -= 1

    def identify(self, path: Path, *, video_first: bool = False) -> str:
        """``"photo"`` or ``"video"``, by content; else 415 (foreign) or 422 (damaged).

        Photos over the pixel limit get 413, damaged photos 422 (see :func:`image_size`).
        """
        if video_first and self.is_video(path):
            return "video"
        if image_size(path, self.limits.max_pixels) is not None:
            return "photo"
        if not video_first and self.is_video(path):
            return "video"
        if looks_like_video(path):
            raise UploadError(
                422, "corrupt_video", "the video is damaged or truncated and cannot be read"
            )
        raise UploadError(
            415,
            "unsupported_type",
            f"not a photo ({', '.join(IMAGE_FORMATS)}) or a video this server can read",
        )

    def colorize_photo(self, path: Path, model) -> tuple[bytes, object]:
        """Check, read, colorize and PNG-encode an uploaded photo (in a worker thread)."""
        if self.identify(path) == "video":
            raise UploadError(415, "video_not_photo", "this is a video: send it to POST /api/jobs")
        try:
            image = read_image(path, max_pixels=self.limits.max_pixels)
        except ImageReadError:
            raise UploadError(
                422, "corrupt_image", "the photo is damaged or truncated and cannot be read"
            ) from None
        with self.colorize_lock:
            rgb, info = model.colorize(image, return_info=True)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG")
        return buf.getvalue(), info

    def is_video(self, path: Path) -> bool:
        if self.video is None:
            return False
        try:
            return bool(self.video.is_video(path))
        except (SomcolorError, OSError, ImportError):
            return False

    # ------------------------------------------------------------------ videos
    def check_video(self, path: Path) -> None:
        """Refuse an upload that is not a video (judged by content)."""
        if self.identify(path, video_first=True) == "photo":
            raise UploadError(
                415, "photo_not_video", "this is a photo: send it to POST /api/colorize"
            )

    def video_work(self, model, smoothing: float):
        colorize_video = self.video.colorize_video
        max_pixels = self.limits.max_pixels
        locked = _LockedModel(model, self.colorize_lock)

        def work(src: Path, dst: Path, progress) -> dict:
            report = colorize_video(
                src, dst, locked, smoothing=smoothing, max_pixels=max_pixels, progress=progress
            )
            return _summary(report, self.folder)

        return work

    # ------------------------------------------------------------------ config
    def config(self) -> dict:
        lim = self.limits
        return {
            "version": __version__,
            "models": [
                {"name": e.name, "label": e.label, "decoder": e.model.decoder}
                for e in self.models.values()
            ],
            "default_model": DEFAULT_MODEL_NAME,
            "decoders": sorted(DECODERS),
            "video": {
                "available": self.video is not None,
                "why_not": self.video_error,
                "smoothing": self.default_smoothing(),
            },
            "limits": {
                "max_upload_bytes": lim.max_upload_bytes,
                "max_pixels": lim.max_pixels,
                "max_jobs": lim.max_jobs,
                "result_ttl_s": lim.result_ttl_s,
                "image_formats": list(IMAGE_FORMATS),
            },
        }


class _SecurityHeaders:
    """Pure ASGI middleware: adds :data:`SECURITY_HEADERS` to every response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers.setdefault(key, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ---------------------------------------------------------------------------- app
def create_app(
    model_path=None,
    *,
    models_dir=None,
    max_upload_bytes: int = Limits.max_upload_bytes,
    max_pixels: int = Limits.max_pixels,
    max_jobs: int = Limits.max_jobs,
    result_ttl_s: float = Limits.result_ttl_s,
    image_workers: int = Limits.image_workers,
    max_pending_images: int = Limits.max_pending_images,
    workdir=None,
) -> FastAPI:
    """Build the web app.

    Parameters
    ----------
    model_path : path or None
        The default model; None for the bundled one.
    models_dir : path or None
        A folder whose ``*.npz`` models are offered too (named by file stem).
    max_upload_bytes, max_pixels, max_jobs, result_ttl_s, image_workers, max_pending_images
        The limits, see :class:`~somcolor.web.settings.Limits`.
    workdir : path or None
        Where the private folder for uploads and results is made (default: the
        system's temp folder). It is deleted when the app shuts down.

    Raises
    ------
    SomcolorError
        If the model cannot be loaded or ``models_dir`` does not exist.
    ValueError
        If a limit is not a positive number.
    """
    limits = Limits(
        max_upload_bytes=max_upload_bytes,
        max_pixels=max_pixels,
        max_jobs=max_jobs,
        result_ttl_s=result_ttl_s,
        image_workers=image_workers,
        max_pending_images=max_pending_images,
    )
    server = _Server(model_path, models_dir, limits, workdir)

    @asynccontextmanager
    async def lifespan(app):
        sweeper = asyncio.create_task(_sweep_forever(server.jobs))
        try:
            yield
        finally:
            sweeper.cancel()
            server.close()

    app = FastAPI(
        title="somcolor",
        version=__version__,
        description="Colorize grayscale photos and videos (SOM codebook + MLP).",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.server = server
    app.add_middleware(_SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(UploadError)
    async def _refused(request, exc: UploadError):
        headers = {"retry-after": "5"} if exc.status == 429 else None
        return JSONResponse(
            {"detail": exc.message, "code": exc.code}, status_code=exc.status, headers=headers
        )

    @app.exception_handler(SomcolorError)
    async def _bad_input(request, exc: SomcolorError):
        message = str(exc).replace(str(server.folder), "(private)")
        return JSONResponse({"detail": message, "code": "bad_input"}, status_code=422)

    @app.exception_handler(Exception)
    async def _internal(request, exc: Exception):  # logged by the server, answered in JSON
        return JSONResponse({"detail": "internal server error", "code": "internal"}, 500)

    @app.exception_handler(ClientDisconnect)
    async def _gone(request, exc):  # the client left mid-upload: nobody reads this
        return JSONResponse({"detail": "client disconnected", "code": "disconnected"}, 400)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/health", summary="Is the server up")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/api/config", summary="Models, decoders, video support and limits")
    async def config() -> dict:
        return server.config()

    @app.post(
        "/api/colorize",
        summary="Colorize a photo",
        response_class=Response,
        responses={
            200: {"content": {"image/png": {}}, "description": "the colorized photo (PNG)"},
            **_errors(400, 413, 415, 422, 429),
        },
        openapi_extra=_form_body(video=False),
    )
    async def colorize(request: Request):
        """Send a photo (PNG, JPEG, GIF, BMP, TIFF, WebP; gray or color) as the form field
        ``file``; get the colorized photo back as PNG, the same size."""
        with server.photo_slot():
            upload = await _receive(request, server, ("model", "decoder"))
            try:
                model = server.model_for(upload.fields)
                loop = asyncio.get_running_loop()
                png, info = await loop.run_in_executor(
                    server.pool, server.colorize_photo, upload.path, model
                )
            finally:
                upload.discard()
        return Response(
            png,
            media_type="image/png",
            headers={
                "content-disposition": f'inline; filename="{upload.filename}_color.png"',
                "x-somcolor-seconds": f"{info.seconds:.3f}",
                "x-somcolor-gamut-clipped": str(info.gamut_clipped),
            },
        )

    @app.post(
        "/api/jobs",
        summary="Start colorizing a video",
        status_code=202,
        response_model=JobStatus,
        responses=_errors(400, 413, 415, 422, 429, 501),
        openapi_extra=_form_body(video=True),
    )
    async def create_job(request: Request):
        """Send a video as the form field ``file``; poll ``GET /api/jobs/{id}`` for progress,
        then fetch the MP4 from ``result_url``. Results are deleted after the TTL."""
        if server.video is None:
            raise UploadError(501, "no_video", server.video_error)
        with server.jobs.reservation() as slot:
            upload = await _receive(request, server, ("model", "decoder", "smoothing"))
            try:
                model = server.model_for(upload.fields)
                smoothing = server.smoothing(upload.fields)
                loop = asyncio.get_running_loop()
                # The default pool: a quick probe should not wait behind queued photos.
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

    @app.get(
        "/api/jobs/{job_id}",
        summary="A video job's state and progress",
        response_model=JobStatus,
        responses=_errors(404, 410),
    )
    async def job_status(job_id: str):
        return server.jobs.status(server.jobs.get(job_id))

    @app.get(
        "/api/jobs/{job_id}/result",
        summary="Download a finished job's video",
        response_class=FileResponse,
        responses={
            200: {"content": {"video/mp4": {}}, "description": "the colorized video"},
            **_errors(404, 409, 410),
        },
    )
    async def job_result(job_id: str):
        job = server.jobs.get(job_id)
        if job.state != "done":
            reason = f": {job.error}" if job.error else ""
            raise UploadError(409, "job_not_done", f"the job is {job.state}{reason}")
        return FileResponse(job.dst, media_type="video/mp4", filename=job.download_name)

    return app


async def _receive(request, server: _Server, fields) -> Upload:
    return await receive_upload(
        request, server.folder, max_bytes=server.limits.max_upload_bytes, fields=fields
    )


async def _sweep_forever(jobs: JobManager) -> None:
    period = min(60.0, max(0.5, jobs.ttl_s / 4))
    while True:
        await asyncio.sleep(period)
        jobs.sweep()
