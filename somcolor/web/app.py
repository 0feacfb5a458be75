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
    A photo (multipart field ``file``; optional ``model``, ``decoder``, ``hints``,
    ``reference``) -> PNG.
``POST /api/sessions``
    A photo (as above, without ``hints``) -> 201 and a hint session's id.
``POST /api/sessions/{id}/colorize``
    The hints JSON (the CLI's ``--hints`` format) -> a JPEG preview with them.
``DELETE /api/sessions/{id}``
    Close the hint session -> 204.
``POST /api/suggest``
    ``{"session", "x", "y"[, "k"]}`` -> the model's most probable colours there.
``POST /api/jobs``
    A video (``file``; optional ``model``, ``decoder``, ``smoothing``) -> 202 and a job.
``GET /api/jobs/{id}``, ``GET /api/jobs/{id}/result``
    The job's state and progress; its colorized MP4 once done.
``DELETE /api/jobs/{id}``
    Cancel the job and delete it with its result -> 204.
``GET /openapi.json``
    The API's schema. FastAPI's interactive docs are turned off: they load from a CDN.

Every refusal is JSON ``{"detail": "<message for people>", "code": "<short code>"}``:
400 malformed form, a ``Host`` this server does not answer to, none or two
(``bad_host``), two ``Origin`` or ``Sec-Fetch-Site`` headers (``duplicate_header``), 403
a state-changing request from another origin (``cross_origin``), 404 unknown path, job
or hint session (``not_found``, ``unknown_job``, ``unknown_session``), 405 wrong
method (``method_not_allowed``), 408 an upload that stalls or takes too long, 409 job
not done, 410 expired job or closed hint session (``session_expired``), 413 upload,
photo or JSON body too large, 415 not a photo/video (judged by content) or a body that
is not JSON, 422 corrupt file, bad option, bad hints (``bad_hints``) or a gray
reference (``bad_reference``), 429 too busy or too many requests from one address
(``rate_limited``, with ``Retry-After``), 501 no video or reference support, 503
the upload cannot be stored, a photo or hint request took longer than its deadline
(``timeout``) or the memory budget has no room (``memory_budget``, with
``Retry-After``), and 500 (code ``internal``) for a bug. Under ``somcolor serve`` the
HTTP layer answers in the same form (:mod:`.connections`): 408 ``header_timeout``,
431 ``headers_too_large``, 400 ``bad_request`` and ``bad_host``.
Uploads go to a private folder (mode 0700) under generated names and are deleted as
soon as they are used.

The routes live in :mod:`.routes`, the state they share (models, limits, pools, jobs)
in :class:`~somcolor.web.server.Server`; this module builds the app from the two.

Work that takes CPU runs off the event loop: photos in a bounded pool of worker
processes (:mod:`.workers`), each with a deadline, killed when it passes or when the
client leaves; hint sessions pinned to a second pool of worker processes, bounded in
number, memory and idle time (:mod:`.sessions`); videos in one thread per job, bounded
in frames, duration, wall time and output size, their frames colorized one at a time
across jobs (each call already uses every core, and numba's fallback "workqueue"
threading layer aborts the process when two threads enter a parallel loop at once).

Requests to ``/api/`` are limited per client address (a token bucket, :mod:`.ratelimit`;
polling a job's state is not counted). Requests must name this server in exactly one
``Host`` (DNS rebinding), and ``POST``/``DELETE`` requests that carry an ``Origin`` (or
``Sec-Fetch-Site``; at most one of each) must come from the page itself, its origin
compared exactly (another site's form or script cannot drive a visitor's local
server). Hint sessions, photos and video jobs are admitted within the memory budget
(:mod:`.memory`).
"""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from dataclasses import replace
from urllib.parse import urlsplit

from .._version import __version__
from ..exceptions import SomcolorError

try:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.datastructures import MutableHeaders
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        f"somcolor's web page needs the web extra ({exc}): .venv/bin/pip install -e '.[web]'"
        " in the somcolor checkout, or pip install 'somcolor[web]'",
        name=exc.name,
    ) from exc

from .ratelimit import RateLimiter, retry_after
from .routes import ROUTERS, STATIC_DIR
from .server import Server
from .settings import Limits, public_origin, trusted_hosts
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


def _split_host(value: str) -> tuple[str, str]:
    """``(host, port)`` of a ``Host`` header value; IPv6 without brackets, lower case.

    >>> _split_host("[::1]:8000"), _split_host("LocalHost")
    (('::1', '8000'), ('localhost', ''))
    """
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, rest.removeprefix(":")
    host, _, port = value.partition(":")
    return host, port


#: Requests that change nothing: any origin may send them.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The headers :class:`_OriginGuard` decides by: each may come at most once (``Host``
#: exactly once), else the request is refused; with two, which one decides would
#: depend on who reads them.
SINGLE_HEADERS = ("host", "origin", "sec-fetch-site")


class _OriginGuard:
    """Pure ASGI middleware: a ``Host`` this server answers to, and same-origin writes.

    ``Host`` must come exactly once and name one of ``hosts`` (``"*"`` lets every name
    in), else 400 ``bad_host``: a page on another site whose name resolves to this
    machine (DNS rebinding) is refused. ``Origin`` and ``Sec-Fetch-Site`` may come at
    most once (400 ``duplicate_header``). A request other than GET/HEAD/OPTIONS is
    refused with 403 when its ``Origin`` is not exactly this server's own, or, without
    ``Origin``, when the browser's ``Sec-Fetch-Site`` says another site sent it.
    Clients that send neither (curl, scripts) pass.

    The server's own origin is ``public_origins`` when given (the addresses browsers
    reach it by, behind a TLS proxy ``https://photos.example.org``), else the
    connection's scheme and the ``Host`` it was sent to (``http://localhost:8000``):
    compared exactly, so ``https://`` or an upper-case ``HTTP://`` of it are other
    origins (a browser writes its origin in lower case, with the scheme it used).
    """

    def __init__(self, app, hosts, public_origins=()):
        self.app = app
        self.hosts = frozenset(hosts)
        self.public_origins = frozenset(public_origins)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, list[str]] = {}
        for key, value in scope["headers"]:
            name = key.decode("latin-1").lower()
            if name in SINGLE_HEADERS:
                headers.setdefault(name, []).append(value.decode("latin-1"))
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _refuse(send, *refusal)
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope, headers: dict[str, list[str]]) -> tuple | None:
        """``(status, code, message)`` of a refused request, else None."""
        hosts = headers.get("host", [])
        if len(hosts) != 1:
            many = "no Host header" if not hosts else f"{len(hosts)} Host headers"
            return 400, "bad_host", f"the request has {many}; expected exactly one"
        for name in ("origin", "sec-fetch-site"):
            if len(headers.get(name, ())) > 1:
                shown = "Origin" if name == "origin" else "Sec-Fetch-Site"
                count = len(headers[name])
                message = f"the request has {count} {shown} headers; expected at most one"
                return 400, "duplicate_header", message
        host_header = hosts[0].strip()
        host, _ = _split_host(host_header)
        if "*" not in self.hosts and host not in self.hosts:
            return 400, "bad_host", f"this server does not answer to {host_header[:80]!r}"
        if scope["method"] not in SAFE_METHODS and not self._same_origin(
            scope, headers, host_header
        ):
            return 403, "cross_origin", "refused: the request came from another site"
        return None

    def _same_origin(self, scope, headers: dict[str, list[str]], host_header: str) -> bool:
        origin = headers.get("origin")
        if origin is None:
            return headers.get("sec-fetch-site", ["same-origin"])[0] in ("same-origin", "none")
        own = self.public_origins or {f"{scope.get('scheme', 'http')}://{host_header}"}
        return origin[0].strip() in own


def _is_job_poll(method: str, path: str) -> bool:
    """``GET /api/jobs/{id}``: a job's state, which the page asks for twice a second."""
    parts = path.split("/")
    return method in ("GET", "HEAD") and len(parts) == 4 and parts[1:3] == ["api", "jobs"]


class _RateLimit:
    """Pure ASGI middleware: requests to ``/api/`` per client, by socket address.

    Each request under ``/api/`` takes a token from its client's bucket
    (:class:`~.ratelimit.RateLimiter`), except polling a job's state
    (``GET /api/jobs/{id}``: a lookup, asked twice a second while a video runs); an
    empty bucket answers 429 (``rate_limited``) with ``Retry-After``. The page and
    its static files are not counted. The client is the peer address of the
    connection, never a forwarding header.
    """

    def __init__(self, app, limiter: RateLimiter):
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and path.startswith("/api/")
            and not _is_job_poll(scope["method"], path)
        ):
            client = scope.get("client")
            wait = self.limiter.take(client[0] if client else "")
            if wait > 0:
                message = "too many requests from this address: try again in a few seconds"
                extra = [(b"retry-after", retry_after(wait).encode())]
                await _refuse(send, 429, "rate_limited", message, extra)
                return
        await self.app(scope, receive, send)


async def _refuse(send, status: int, code: str, message: str, extra=()) -> None:
    body = json.dumps({"detail": message, "code": code}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    headers += list(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------------- errors
#: The ``code`` of refusals that Starlette itself raises (unknown path, wrong method).
HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request, exc: HTTPException):
    code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    detail = exc.detail if isinstance(exc.detail, str) else "refused"
    return JSONResponse(
        {"detail": detail, "code": code}, status_code=exc.status_code, headers=exc.headers
    )


async def _refused(request, exc: UploadError):
    wait = exc.retry_after if exc.retry_after is not None else 5 if exc.status == 429 else None
    headers = None if wait is None else {"retry-after": str(wait)}
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
    sweeper = asyncio.create_task(_sweep_forever(server))
    try:
        yield
    finally:
        sweeper.cancel()
        server.close()


async def _sweep_forever(server: Server) -> None:
    """Delete expired video results and close hint sessions unused too long."""
    ttl = min(server.jobs.ttl_s, server.sessions.ttl_s)
    period = min(60.0, max(0.5, ttl / 4))
    while True:
        await asyncio.sleep(period)
        server.jobs.sweep()
        server.sessions.sweep()


def create_app(
    model_path=None,
    *,
    models_dir=None,
    limits: Limits | None = None,
    host: str = "127.0.0.1",
    allowed_hosts=(),
    public_origins=(),
    workdir=None,
    **limit_values,
) -> FastAPI:
    """Build the web app.

    Parameters
    ----------
    model_path : path or None
        The default model; None for the bundled one.
    models_dir : path or None
        A folder whose ``*.npz`` models are offered too (named by file stem; a name
        already taken gets ``-2``, ``-3``, ... and a warning).
    limits : Limits, optional
        The limits (default: :class:`~somcolor.web.settings.Limits`' defaults).
    host : str
        The address the server is bound to: requests may name it in ``Host``.
    allowed_hosts : iterable of str
        More ``Host`` names to answer to besides ``host`` and the local names
        (``localhost``, ``127.0.0.1``, ``::1``); ``"*"`` for any.
    public_origins : iterable of str
        The origins browsers reach the server by (``https://photos.example.org``
        behind a TLS proxy): then the only ones whose ``POST``/``DELETE`` are let in,
        and their host names are answered to. Default: the connection's scheme and
        ``Host`` (``http://localhost:8000``).
    workdir : path or None
        Where the private folder for uploads and results is made (default: the
        system's temp folder). It is deleted when the app shuts down.
    **limit_values
        Single limits by name (``max_jobs=4``), applied over ``limits``.

    Raises
    ------
    SomcolorError
        If the model cannot be loaded or ``models_dir`` does not exist.
    ValueError
        If a limit is not a positive number, or a public origin not
        ``http(s)://host[:port]``.
    TypeError
        If a keyword is neither a parameter nor a limit.
    """
    limits = replace(limits or Limits(), **limit_values)
    origins = tuple(public_origin(o) for o in public_origins)
    origin_hosts = [urlsplit(o).hostname for o in origins]
    app = FastAPI(
        title="somcolor",
        version=__version__,
        description="Colorize grayscale photos and videos (SOM codebook + MLP).",
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.server = Server(model_path, models_dir, limits, workdir)
    app.state.rate_limiter = RateLimiter(
        limits.rate_per_minute, limits.rate_burst, limits.rate_clients
    )
    app.add_middleware(_RateLimit, limiter=app.state.rate_limiter)
    hosts = trusted_hosts(host, [*allowed_hosts, *origin_hosts])
    app.add_middleware(_OriginGuard, hosts=hosts, public_origins=origins)
    app.add_middleware(_SecurityHeaders)  # added last: outermost, so on refusals too
    app.add_exception_handler(UploadError, _refused)
    app.add_exception_handler(SomcolorError, _bad_input)
    app.add_exception_handler(Exception, _internal)
    app.add_exception_handler(ClientDisconnect, _gone)
    app.add_exception_handler(HTTPException, _http_error)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)
    return app
