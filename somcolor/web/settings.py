"""The web server's limits: every default in one place, checked once.

This module imports nothing from the web extra, so ``somcolor serve --help`` can show
the defaults without FastAPI installed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from urllib.parse import urlsplit

MIB = 1 << 20
GIB = 1 << 30

#: ``somcolor serve --memory-budget``'s default, in MiB: the default limits with 8 hint
#: sessions open and photos in work fit in it (docs/web.md, "Memory budget"). A
#: :class:`Limits` made in Python has no budget unless given one (the budget measures
#: the whole process tree, which in another program holds more than the app).
SERVE_MEMORY_BUDGET_MIB = 1536

#: Host names every server answers to: the machine itself.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Addresses that mean "every interface": not a name a browser sends in ``Host``.
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def trusted_hosts(bound_host: str = "127.0.0.1", extra=()) -> tuple[str, ...]:
    """The ``Host`` names a server bound to ``bound_host`` answers to.

    The bound host itself (unless it is a wildcard address), the local names, and
    ``extra``; ``"*"`` in ``extra`` lets every name in. Names are lower case, IPv6
    addresses without brackets.

    >>> trusted_hosts("192.168.1.5")
    ('192.168.1.5', '127.0.0.1', 'localhost', '::1')
    >>> trusted_hosts("0.0.0.0", ["photos.lan"])
    ('127.0.0.1', 'localhost', '::1', 'photos.lan')
    """
    names = [] if bound_host in WILDCARD_HOSTS else [bound_host]
    names += [*LOCAL_HOSTS, *extra]
    out = []
    for name in names:
        name = name.strip().lower().removeprefix("[").removesuffix("]")
        if name and name not in out:
            out.append(name)
    return tuple(out)


def public_origin(text: str) -> str:
    """``text`` checked as an origin a browser sends: ``scheme://host[:port]``, lower
    case, ``http`` or ``https``, no path; a default port is left out, as browsers do.

    >>> public_origin("https://Photos.Example.org:443/")
    'https://photos.example.org'
    >>> public_origin("photos.example.org")
    Traceback (most recent call last):
    ...
    ValueError: public origin: got 'photos.example.org', expected http(s)://host[:port]
    """
    expected = "expected http(s)://host[:port]"
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"public origin: got {text[:80]!r}, {expected}") from None
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ValueError(f"public origin: got {text[:80]!r}, {expected}")
    scheme, host = parts.scheme.lower(), parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}" + ("" if port in (None, default) else f":{port}")


@dataclass(frozen=True)
class Limits:
    """What one server accepts and keeps.

    >>> Limits(max_jobs=1).max_jobs
    1
    >>> Limits(max_jobs=0)
    Traceback (most recent call last):
    ...
    ValueError: max_jobs: got 0, expected a positive number
    """

    #: Largest uploaded file (photo or video), in bytes. Larger uploads get 413.
    max_upload_bytes: int = 100 * MIB
    #: Largest photo or video frame, in pixels (4096 x 4096). Larger ones get 413 (a
    #: photo) or fail the job (a video: every decoded frame is checked).
    max_pixels: int = 4096 * 4096
    #: Uploads being received at once (photos and videos); one more gets 429.
    max_uploads: int = 64
    #: Seconds an upload may go without sending a byte; then it gets 408.
    upload_chunk_timeout_s: float = 30.0
    #: Seconds a whole upload may take; then it gets 408.
    upload_timeout_s: float = 600.0
    #: Worker processes colorizing photos, one photo each at a time.
    image_workers: int = 2
    #: Photos received and waiting for a worker or being colorized; one more gets 429.
    max_pending_images: int = 64
    #: Seconds a received photo may wait and be colorized; then its worker is stopped
    #: and the request gets 503.
    photo_timeout_s: float = 120.0
    #: Video jobs held at once, queued, running or finished with a result not yet
    #: deleted (by ``DELETE /api/jobs/{id}`` or after ``result_ttl_s``); one more gets 429.
    max_jobs: int = 2
    #: Seconds a finished video job and its result are kept; then both are deleted.
    result_ttl_s: float = 15 * 60
    #: Frames a video job may decode (10 minutes at 30 frames/s); then it fails.
    max_video_frames: int = 18_000
    #: Seconds of video a job may hold, first frame to last; then it fails.
    max_video_seconds: float = 10 * 60
    #: Seconds of wall time a video job may run; then it fails.
    job_timeout_s: float = 60 * 60
    #: Bytes a video job's result may reach; then it fails.
    max_result_bytes: int = 2 * GIB
    #: Worker processes holding hint sessions (a session lives in one of them).
    hint_workers: int = 1
    #: Hint sessions held at once, across the hint workers; opening one more closes the
    #: least recently used (its id then gets 410).
    max_hint_sessions: int = 8
    #: Memory the hint sessions may hold together, in bytes, as their workers measure it
    #: when they open (about 70 to 90 MiB each, whatever the photo's size); opening one
    #: past it closes the least recently used ones.
    max_hint_session_bytes: int = 1 * GIB
    #: Seconds a hint session may go unused; then it is closed (its id then gets 410).
    hint_session_ttl_s: float = 15 * 60
    #: Seconds one hint request (new hints, suggestions) may wait and take; then its
    #: worker is stopped, with every session it held, and the request gets 503.
    hint_timeout_s: float = 30.0
    #: Hints one request may carry; more get 422.
    max_hints: int = 100
    #: Long side, in pixels, of the preview a hint session answers with (the download
    #: is the full size).
    preview_side: int = 1280
    #: Requests to ``/api/`` one client (its socket address) may make per minute,
    #: sustained; past it they get 429 with ``Retry-After``. Polling a video job's
    #: state (``GET /api/jobs/{id}``) is not counted.
    rate_per_minute: float = 120.0
    #: Requests to ``/api/`` one client may make at once before that rate applies.
    rate_burst: int = 60
    #: Clients whose request rate is tracked; past it the least recently seen is
    #: forgotten (and starts again with a full burst).
    rate_clients: int = 10_000
    #: Seconds a connection may take to send a request line and headers, from the moment
    #: the server waits for them (the connection opened, or the last answer was sent);
    #: then it is closed (408 in JSON if part of a request came). Served by
    #: ``somcolor serve`` (:mod:`.connections`), not by other ASGI servers.
    header_timeout_s: float = 10.0
    #: Seconds an answer may stay unsent because the client does not read it; then the
    #: connection is dropped (``somcolor serve`` only).
    send_timeout_s: float = 30.0
    #: Connections open at once; one more is closed at once (``somcolor serve`` only).
    max_connections: int = 256
    #: Connections open at once from one client address (an IPv6 client: its /64); one
    #: more is closed at once (``somcolor serve`` only).
    max_connections_per_client: int = 32
    #: Memory the server's process tree may hold, in bytes (its proportional set size,
    #: measured; :mod:`.memory`): a new hint session, video job or photo that would
    #: pass it first closes the least recently used idle hint sessions, else gets 503
    #: with ``Retry-After``. None: no budget (``somcolor serve``'s default is
    #: :data:`SERVE_MEMORY_BUDGET_MIB` MiB).
    memory_budget_bytes: int | None = None

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name == "memory_budget_bytes":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{f.name}: got {value!r}, expected a positive number")
