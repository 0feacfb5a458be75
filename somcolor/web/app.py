"""The web page and its JSON API: a FastAPI app over somcolor's public API.

Routes
------
``GET /``
    The page (``static/index.html``; ``app.js`` and ``style.css`` under ``/static``).
``GET /api/health``
    ``{"status": "ok"}`` while the server is up.
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

Every refusal is JSON ``{"detail": "<message for people>", "code": "<short code>"}``:
400 malformed form, 404/410 unknown/expired job, 409 job not done, 413 upload or photo
too large, 415 not a photo/video (judged by content), 422 corrupt file or bad option,
429 too busy, 501 no video support, 503 the upload cannot be stored, and 500 (code
``internal``) for a bug. Uploads go to a private folder (mode 0700) under generated
names and are deleted as soon as they are used.

The routes live in :mod:`.routes`, the state they share (models, limits, pools, jobs)
in :class:`~somcolor.web.server.Server`; this module builds the app from the two.

Work that takes CPU runs off the event loop: photos in a small thread pool, videos in
one thread per job. The colorizing step itself runs one call at a time under a lock:
each call already uses every core (numba's parallel loops, BLAS), so running several
together gains nothing, and numba's fallback "workqueue" threading layer aborts the
process when two threads enter a parallel loop at once.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from .._version import __version__
from ..exceptions import SomcolorError

try:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.datastructures import MutableHeaders
    from starlette.requests import ClientDisconnect
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        f"somcolor's web page needs the web extra ({exc}): pip install 'somcolor[web]'",
        name=exc.name,
    ) from exc

from .jobs import JobManager
from .routes import ROUTERS, STATIC_DIR
from .server import Server
from .settings import Limits
from .uploads import UploadError

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


# ---------------------------------------------------------------------------- errors
async def _refused(request, exc: UploadError):
    headers = {"retry-after": "5"} if exc.status == 429 else None
    return JSONResponse(
        {"detail": exc.message, "code": exc.code}, status_code=exc.status, headers=headers
    )


async def _bad_input(request, exc: SomcolorError):
    message = str(exc).replace(str(request.app.state.server.folder), "(private)")
    return JSONResponse({"detail": message, "code": "bad_input"}, status_code=422)


async def _internal(request, exc: Exception):  # logged by the server, answered in JSON
    return JSONResponse({"detail": "internal server error", "code": "internal"}, 500)


async def _gone(request, exc: ClientDisconnect):  # the client left mid-upload: nobody reads this
    return JSONResponse({"detail": "client disconnected", "code": "disconnected"}, 400)


# ---------------------------------------------------------------------------- app
@asynccontextmanager
async def _lifespan(app: FastAPI):
    """Sweep expired jobs while the app runs; close the server when it stops."""
    server = app.state.server
    sweeper = asyncio.create_task(_sweep_forever(server.jobs))
    try:
        yield
    finally:
        sweeper.cancel()
        server.close()


async def _sweep_forever(jobs: JobManager) -> None:
    period = min(60.0, max(0.5, jobs.ttl_s / 4))
    while True:
        await asyncio.sleep(period)
        jobs.sweep()


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
    app = FastAPI(
        title="somcolor",
        version=__version__,
        description="Colorize grayscale photos and videos (SOM codebook + MLP).",
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.server = Server(model_path, models_dir, limits, workdir)
    app.add_middleware(_SecurityHeaders)
    app.add_exception_handler(UploadError, _refused)
    app.add_exception_handler(SomcolorError, _bad_input)
    app.add_exception_handler(Exception, _internal)
    app.add_exception_handler(ClientDisconnect, _gone)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)
    return app
