"""What one web app holds: its limits, models, private folder, photo workers and jobs.

:func:`somcolor.web.app.create_app` makes one :class:`Server` and keeps it as
``app.state.server``; the route handlers (:mod:`.routes`) call its methods. Nothing
here imports FastAPI: the checks raise :class:`~somcolor.web.uploads.UploadError`,
which the app answers as JSON.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import inspect
import logging
import shutil
import tempfile
import threading
import weakref
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

import numpy as np

from .. import load
from .._version import __version__
from ..decode import DECODERS
from ..exceptions import SomcolorError
from ..io import IMAGE_FORMATS
from .hinting import hint_points
from .jobs import JobManager
from .memory import (
    MIB,
    MemoryBudget,
    OverBudget,
    can_measure,
    photo_bytes,
    session_bytes,
    tree_bytes,
    video_bytes,
)
from .sessions import Session, SessionRegistry
from .settings import Limits
from .uploads import (
    MAX_HINTS_BYTES,
    Upload,
    UploadError,
    image_size,
    looks_like_video,
    receive_json,
    receive_upload,
)
from .workers import PhotoResult, PhotoWorkers, SessionWorkers, Stopped

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "default"
#: ``Retry-After`` of a request refused for memory, in seconds.
MEMORY_RETRY_AFTER_S = 10


@dataclass
class _ModelEntry:
    """A model the page offers: its name in forms, its label on the page, the model."""

    name: str
    label: str
    model: object
    source: object  #: what :func:`somcolor.load` was given (for the photo workers)


def _free_name(stem: str, taken) -> str:
    """``stem``, or ``stem-2``, ``stem-3``, ... whichever is not ``taken``.

    >>> _free_name("default", {"default", "default-2"})
    'default-3'
    """
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}"
    return name


def _load_models(model_path, models_dir) -> dict[str, _ModelEntry]:
    """The default model (bundled, or ``model_path``) plus every loadable .npz in ``models_dir``.

    A file whose stem is taken (``default.npz`` beside the default model, or by a
    ``default-2.npz``) is offered under the next free ``stem-N``, with a warning.
    """
    source = None if model_path is None else str(model_path)
    label = "bundled model" if model_path is None else Path(model_path).name
    entry = _ModelEntry(DEFAULT_MODEL_NAME, label, load(source), source)
    models = {DEFAULT_MODEL_NAME: entry}
    if model_path is None:
        label = "bundled fast model (paper's configuration)"
        models["fast"] = _ModelEntry("fast", label, load("fast"), "fast")
    if models_dir is None:
        return models
    folder = Path(models_dir)
    if not folder.is_dir():
        raise SomcolorError(f"{folder}: models folder not found")
    paths = sorted(folder.glob("*.npz"))
    stems = {p.stem for p in paths}
    for path in paths:
        # Reserve the folder's own stems, so that default-2.npz keeps its name.
        name = _free_name(path.stem, models.keys() | (stems - {path.stem}))
        if name != path.stem:
            log.warning(
                "models folder: %s is offered as %r (the name %r is taken)",
                path.name,
                name,
                path.stem,
            )
        try:
            models[name] = _ModelEntry(name, path.name, load(path), str(path))
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
            ".venv/bin/pip install -e '.[video]' in the somcolor checkout, "
            "or pip install 'somcolor[video]'"
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


def _timeout(limit: float) -> UploadError:
    return UploadError(503, "timeout", f"colorizing took longer than the limit of {limit:g} s")


def _reference_support() -> str | None:
    """None when reference photos can be used, else why not."""
    try:
        importlib.import_module("somcolor.adapt")
    except ImportError:
        return "reference photos need a somcolor with somcolor.adapt"
    from ..model import Model

    if not hasattr(Model, "adapt"):
        return "reference photos need a somcolor whose models have adapt()"
    return None


class _LockedModel:
    """A model whose ``predict_uv`` runs under the video jobs' shared lock.

    :func:`somcolor.video.colorize_video` calls only ``predict_uv``; anything else is
    passed through to the model.
    """

    def __init__(self, model, lock: threading.Lock):
        self._model = model
        self._lock = lock

    def predict_uv(self, L):
        with self._lock:
            return self._model.predict_uv(L)

    def prior(self, L, **options):  # hints on key frames ask for the prior ...
        with self._lock:
            return self._model.prior(L, **options)

    def _proba_at(self, L_work):  # ... and for probabilities at their solve size
        with self._lock:
            return self._model._proba_at(L_work)

    def __getattr__(self, name):
        return getattr(self._model, name)


class Server:
    """Everything one app holds: limits, models, the private folder, workers and jobs.

    Photos are colorized in :attr:`photos` (worker processes, see :mod:`.workers`);
    video jobs in threads of this process, their frames one at a time across jobs
    (each call already uses every core).
    """

    def __init__(self, model_path, models_dir, limits: Limits, workdir):
        self.limits = limits
        self.models = _load_models(model_path, models_dir)
        # mkdtemp: a fresh folder with a random name, mode 0700.
        self.folder = Path(tempfile.mkdtemp(prefix="somcolor-web-", dir=workdir))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.folder, ignore_errors=True)
        sources = [(e.name, e.source) for e in self.models.values()]
        self.photos = PhotoWorkers(sources, limits.image_workers)
        self.hints = SessionWorkers(sources, limits.hint_workers)
        self.sessions = SessionRegistry(
            max_sessions=limits.max_hint_sessions,
            max_bytes=limits.max_hint_session_bytes,
            ttl_s=limits.hint_session_ttl_s,
            close=self._drop_session,
        )
        self.memory = MemoryBudget(
            limits.memory_budget_bytes,
            measure=tree_bytes if can_measure() else self.sessions.total_bytes,
            groups={"photos": limits.image_workers, "sessions": limits.hint_workers},
        )
        self.reference_error = _reference_support()
        self.jobs = JobManager(self.folder, max_jobs=limits.max_jobs, ttl_s=limits.result_ttl_s)
        self.video, self.video_error = _import_video()
        self.video_lock = threading.Lock()
        self._variants: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()
        self._pending = 0
        self._uploading = 0
        # Warm up: load numba's cached kernels now rather than in the first video.
        self.models[DEFAULT_MODEL_NAME].model.colorize(np.zeros((8, 8), np.uint8))
        self._check_budget()

    def _check_budget(self) -> None:
        """Log what the memory budget can and cannot see, once, at the start."""
        budget = self.limits.memory_budget_bytes
        if budget is None:
            return
        if not can_measure():
            log.warning(
                "memory budget: this system does not show processes' memory (no /proc): "
                "only hint sessions and the work in flight are counted"
            )
            return
        used = self.memory.measured()
        log.info("memory budget: %.0f MiB, %.0f MiB in use at the start", budget / MIB, used / MIB)
        if used > budget:
            log.warning(
                "memory budget: the server already holds %.0f MiB, more than its budget of "
                "%.0f MiB: hint sessions, photos and video jobs will be refused",
                used / MIB,
                budget / MIB,
            )

    def close(self) -> None:
        """Stop the workers and delete the private folder with everything in it."""
        self.photos.close()
        self.hints.close()
        self.sessions.clear()
        self._cleanup()

    # ------------------------------------------------------------------ options
    def model_choice(self, fields: dict[str, str]) -> tuple[str, str]:
        """The form's ``(model name, decoder)``, checked (422 if unknown)."""
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
        return name, decoder

    def model_for(self, fields: dict[str, str]):
        """The model named in the form, set to the form's decoder (a cached copy)."""
        name, decoder = self.model_choice(fields)
        entry = self.models[name]
        with self._lock:
            variant = self._variants.get((name, decoder))
            if variant is None:
                variant = copy.copy(entry.model).set_params(decoder=decoder)
                self._variants[name, decoder] = variant
        return variant

    def smoothing(self, fields: dict[str, str]) -> float:
        """The form's temporal smoothing, checked (422 if bad), or the default."""
        from ..temporal import check_smoothing

        text = fields.get("smoothing")
        if not text:
            return self.default_smoothing()
        try:
            return check_smoothing(text[:40])
        except SomcolorError as exc:
            raise UploadError(422, "bad_option", str(exc)) from None

    def video_hints(self, fields: dict[str, str]):
        """The form's colour hints on key frames (``{"keyframes": [...]}``, JSON; the
        points in the video's pixels), checked (422 if bad), or None."""
        import json

        from ..keyframes import parse_keyframes

        text = fields.get("hints")
        if not text:
            return None
        try:
            return parse_keyframes(json.loads(text), source="hints", paths=False)
        except json.JSONDecodeError as exc:
            raise UploadError(422, "bad_hints", f"hints: not JSON ({exc.msg})") from None
        except RecursionError:
            raise UploadError(422, "bad_hints", "hints: not JSON (nested too deeply)") from None
        except SomcolorError as exc:
            raise UploadError(422, "bad_hints", str(exc)) from None

    def default_smoothing(self) -> float:
        """:func:`~somcolor.video.colorize_video`'s own default (0.5 if it cannot tell)."""
        try:
            default = inspect.signature(self.video.colorize_video).parameters["smoothing"].default
        except (AttributeError, KeyError, TypeError, ValueError):
            return 0.5
        return float(default) if isinstance(default, int | float) else 0.5

    # ------------------------------------------------------------------ uploads
    async def receive(self, request, fields, files=()) -> Upload:
        """Stream the request's upload into the private folder, within the limits.

        ``files`` names optional file parts besides ``file`` (``reference``). 429 when
        ``max_uploads`` are being received already; 413 past the size limit (all the
        files together); 408 past the read deadlines.
        """
        lim = self.limits
        with self._count("_uploading", lim.max_uploads, "uploads"):
            return await receive_upload(
                request,
                self.folder,
                max_bytes=lim.max_upload_bytes,
                fields=fields,
                files=files,
                chunk_timeout_s=lim.upload_chunk_timeout_s,
                total_timeout_s=lim.upload_timeout_s,
            )

    async def receive_json(self, request, max_bytes: int) -> str:
        """A small JSON body as text (415 not JSON, 413 too large, 408 too slow)."""
        lim = self.limits
        with self._count("_uploading", lim.max_uploads, "uploads"):
            return await receive_json(
                request,
                max_bytes=max_bytes,
                chunk_timeout_s=lim.upload_chunk_timeout_s,
                total_timeout_s=lim.upload_timeout_s,
            )

    @contextmanager
    def _count(self, counter: str, limit: int, what: str):
        """Count a request in ``counter`` while inside; 429 when ``limit`` are in."""
        with self._lock:
            if getattr(self, counter) >= limit:
                raise UploadError(
                    429, "busy", f"the server is busy with other {what}; try again in a moment"
                )
            setattr(self, counter, getattr(self, counter) + 1)
        try:
            yield
        finally:
            with self._lock:
                setattr(self, counter, getattr(self, counter) - 1)

    # ------------------------------------------------------------------ photos
    def photo_slot(self):
        """Count a received photo in; 429 when ``max_pending_images`` are already in."""
        return self._count("_pending", self.limits.max_pending_images, "photos")

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

    def check_photo(self, path: Path) -> int:
        """Refuse an upload that is not a photo (judged by content; in a thread); its
        pixels."""
        if self.identify(path) == "video":
            raise UploadError(415, "video_not_photo", "this is a video: send it to POST /api/jobs")
        width, height = image_size(path, self.limits.max_pixels)
        return width * height

    async def colorize_photo(
        self,
        path: Path,
        choice: tuple[str, str],
        disconnected,
        *,
        points: list | None = None,
        reference: Path | None = None,
        pixels: int = 0,
        reference_pixels: int = 0,
    ):
        """Colorize a checked photo of ``pixels`` in a worker process, within
        ``photo_timeout_s``, with the hints ``points`` (checked against the photo in the
        worker) and colours from the ``reference`` photo (checked by
        :meth:`check_reference`), within the memory budget (:meth:`room`).

        ``disconnected`` is an async callable (``request.is_disconnected``). Raises
        :class:`~.workers.Stopped` if the client leaves, and :class:`UploadError` 503
        (``timeout``) when the deadline passes; in both cases the worker is killed.
        """
        limit = self.limits.photo_timeout_s
        ref = None if reference is None else str(reference)
        task = ("colorize", str(path), *choice, self.limits.max_pixels, points, ref)
        need = photo_bytes(pixels, reference_pixels)
        with await self.room(need, "a photo", group="photos"):
            try:
                reply = await self.photos.run(task, timeout=limit, disconnected=disconnected)
            except Stopped as exc:
                if exc.why == "timeout":
                    raise _timeout(limit) from None
                raise
        return PhotoResult(*self._unpack(reply))

    # ------------------------------------------------------------------ memory
    async def room(self, nbytes: int, what: str, *, group: str | None = None):
        """A :class:`~.memory.Reservation` of ``nbytes`` for ``what`` within the memory
        budget. When it does not fit, the least recently used hint sessions serving no
        request are closed (their ids then get 410), one at a time, each waited for in
        its worker; when none is left, 503 ``memory_budget`` with ``Retry-After``."""
        while True:
            try:
                return self.memory.reserve(nbytes, group)
            except OverBudget as exc:
                session = self.sessions.oldest_idle()
                if session is None:
                    raise UploadError(
                        503,
                        "memory_budget",
                        f"the server's memory is taken ({exc.used / MIB:.0f} of its budget of "
                        f"{exc.budget / MIB:.0f} MiB in use; {what} needs about "
                        f"{exc.need / MIB:.0f} MiB); try again in a moment",
                        retry_after=MEMORY_RETRY_AFTER_S,
                    ) from None
            why = "closed to make room in the server's memory budget"
            if self.sessions.evict(session.id, why) is not None:
                log.info("hint session closed for %s: over the memory budget", what)
                await self._free(session)
            self.memory.measure_again()

    async def _free(self, session: Session) -> None:
        """Free a session's memory in its worker and wait until it is done."""
        try:
            await self.hints.run(
                session.slot,
                ("drop", session.id),
                generation=session.generation,
                timeout=self.limits.hint_timeout_s,
            )
        except (Stopped, RuntimeError):  # the worker was stopped: its memory went with it
            pass

    def _unpack(self, reply: tuple) -> list:
        """A worker's ``("ok", ...)`` reply's values; its refusals raised as such."""
        kind, *rest = reply
        if kind == "ok":
            return rest
        if kind == "refused":
            status, code, message = rest
            raise UploadError(status, code, message.replace(str(self.folder), "(private)"))
        if kind == "bad_input":
            raise SomcolorError(rest[0])
        raise RuntimeError(f"worker: {rest[0]}")

    # ------------------------------------------------------------------ hints
    def points(self, text: str | None) -> list | None:
        """The points of a hints JSON text (None when there is none); 422 ``bad_hints``
        when it is malformed or holds more than ``max_hints`` points."""
        if text is None or text == "":
            return None
        try:
            return hint_points(text, self.limits.max_hints)
        except SomcolorError as exc:
            raise UploadError(422, "bad_hints", str(exc)) from None

    async def hints_body(self, request) -> list:
        """The points of a request whose body is the hints JSON."""
        return self.points(await self.receive_json(request, MAX_HINTS_BYTES))

    def check_reference(self, path: Path | None) -> int:
        """Refuse a reference that is not a photo of an accepted format and size (by
        content): 415, 413 over the pixel limit, 422 damaged; 501 without support.
        Its pixels (0 without a reference)."""
        if path is None:
            return 0
        try:
            size = image_size(path, self.limits.max_pixels)
        except UploadError as exc:
            raise UploadError(exc.status, exc.code, f"the reference photo: {exc.message}") from None
        if size is None:
            raise UploadError(
                415,
                "unsupported_type",
                f"the reference is not a photo ({', '.join(IMAGE_FORMATS)})",
            )
        if self.reference_error is not None:
            raise UploadError(501, "no_reference", self.reference_error)
        return size[0] * size[1]

    async def open_session(
        self,
        path: Path,
        choice: tuple[str, str],
        reference: Path | None,
        reference_name: str,
        *,
        pixels: int = 0,
        reference_pixels: int = 0,
    ) -> Session:
        """Open a hint session over a checked photo of ``pixels`` in the least busy hint
        worker, within ``photo_timeout_s`` and the memory budget (:meth:`room`); the
        least recently used session beyond ``max_hint_sessions`` is closed."""
        lim = self.limits
        need = session_bytes(pixels, reference_pixels)
        with await self.room(need, "a hint session", group="sessions"):
            counts = self.sessions.counts(self.hints.size)
            slot = counts.index(min(counts))
            session_id = self.sessions.new_id()
            ref = None if reference is None else str(reference)
            task = ("open", session_id, str(path), *choice, lim.max_pixels, lim.preview_side, ref)
            try:
                reply, generation = await self.hints.run(slot, task, timeout=lim.photo_timeout_s)
            except Stopped:
                raise _timeout(lim.photo_timeout_s) from None
        shape, preview_shape, nbytes = self._unpack(reply)
        session = Session(
            session_id,
            slot,
            generation,
            tuple(shape),
            tuple(preview_shape),
            int(nbytes),
            reference_name if reference is not None else None,
            used=0.0,
        )
        self.sessions.add(session)
        log.info("hint session opened: %dx%d, %.1f MiB", shape[1], shape[0], nbytes / 2**20)
        return session

    async def in_session(self, session_id: str, task: tuple, disconnected):
        """Run ``(kind, *args)`` on session ``session_id`` in its worker, within
        ``hint_timeout_s``; 404/410 for an unknown or closed session."""
        limit = self.limits.hint_timeout_s
        kind, *args = task
        with self.sessions.using(session_id) as session:
            try:
                reply, _ = await self.hints.run(
                    session.slot,
                    (kind, session.id, *args),
                    generation=session.generation,
                    timeout=limit,
                    disconnected=disconnected,
                )
            except Stopped as exc:
                if exc.why == "timeout":
                    self.sessions.lost(session.id, "lost: its worker was stopped at a deadline")
                    raise _timeout(limit) from None
                raise
        if reply[:3] == ("refused", 410, "session_expired"):
            self.sessions.lost(session.id)
        return self._unpack(reply)

    def _drop_session(self, session: Session) -> None:
        """Free a closed session's memory in its worker (queued, not awaited)."""
        self.hints.send_later(session.slot, ("drop", session.id), session.generation)

    def is_video(self, path: Path) -> bool:
        """Whether ``path`` is a video this server can read (False without video support)."""
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

    async def video_room(self, path: Path, reference_pixels: int = 0):
        """A :meth:`room` reservation for a video job over the checked video at ``path``
        (its frames' size from its header), and a reference photo of ``reference_pixels``."""
        loop = asyncio.get_running_loop()
        width, height = await loop.run_in_executor(None, self.video.frame_size, path)
        need = video_bytes(width * height, reference_pixels)
        return await self.room(need, "a video job")

    def video_work(
        self, model, smoothing: float, reference: Path | None = None, hints=None, memory=None
    ):
        """A job's ``work(src, dst, progress, cancel)``: colorize the video within the
        limits (with the model adapted to the ``reference`` photo, which the job then
        deletes, and the ``hints`` on key frames), return its summary. ``memory``, a
        :class:`~.memory.Reservation`, is released when the work ends."""
        colorize_video = self.video.colorize_video
        lim = self.limits

        def work(src: Path, dst: Path, progress, cancel) -> dict:
            try:
                return run(src, dst, progress, cancel)
            finally:
                if memory is not None:
                    memory.release()

        def run(src: Path, dst: Path, progress, cancel) -> dict:
            adapted = model
            if reference is not None:
                try:
                    adapted = self._adapted(model, reference)
                finally:
                    reference.unlink(missing_ok=True)
            if hints is not None and hasattr(adapted, "predictor"):
                adapted = adapted.predictor()  # what the hints read: the prior, as the CLI's
            locked = _LockedModel(adapted, self.video_lock)
            report = colorize_video(
                src,
                dst,
                locked,
                smoothing=smoothing,
                max_pixels=lim.max_pixels,
                max_frames=lim.max_video_frames,
                max_duration=lim.max_video_seconds,
                max_seconds=lim.job_timeout_s,
                max_output_bytes=lim.max_result_bytes,
                cancel=cancel,
                progress=progress,
                hints=hints,
            )
            summary = _summary(report, self.folder)
            if reference is not None:
                summary["reference"] = True
            return summary

        return work

    def _adapted(self, model, reference: Path):
        """``model`` adapted to the colours of the photo at ``reference`` (under the
        video lock: adapting runs numba's parallel kernels too)."""
        from ..adapt import read_reference

        try:
            from ..video import is_video

            rgb = read_reference(reference, max_pixels=self.limits.max_pixels, is_video=is_video)
        except SomcolorError as exc:
            raise SomcolorError(str(exc).replace(str(reference), "the reference photo")) from None
        with self.video_lock:
            return model.predictor().adapt([rgb], random_state=0)

    # ------------------------------------------------------------------ config
    def config(self) -> dict:
        """What ``GET /api/config`` answers."""
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
            "limits": {**asdict(lim), "image_formats": list(IMAGE_FORMATS)},
            "reference": {
                "available": self.reference_error is None,
                "why_not": self.reference_error,
            },
        }
