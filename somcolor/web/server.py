"""What one web app holds: its limits, models, private folder, thread pool and jobs.

:func:`somcolor.web.app.create_app` makes one :class:`Server` and keeps it as
``app.state.server``; the route handlers (:mod:`.routes`) call its methods. Nothing
here imports FastAPI: the checks raise :class:`~somcolor.web.uploads.UploadError`,
which the app answers as JSON.
"""

from __future__ import annotations

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
from contextlib import contextmanager
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

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "default"


@dataclass
class _ModelEntry:
    """A model the page offers: its name in forms, its label on the page, the model."""

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


class Server:
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
        """Stop the photo pool and delete the private folder with everything in it."""
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
        """The form's temporal smoothing, checked (422 if bad), or the default."""
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

    # ------------------------------------------------------------------ uploads
    async def receive(self, request, fields) -> Upload:
        """Stream the request's upload into the private folder, within the size limit."""
        return await receive_upload(
            request, self.folder, max_bytes=self.limits.max_upload_bytes, fields=fields
        )

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

    def video_work(self, model, smoothing: float):
        """A job's ``work(src, dst, progress)``: colorize the video, return its summary."""
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
            "limits": {
                "max_upload_bytes": lim.max_upload_bytes,
                "max_pixels": lim.max_pixels,
                "max_jobs": lim.max_jobs,
                "result_ttl_s": lim.result_ttl_s,
                "image_formats": list(IMAGE_FORMATS),
            },
        }
