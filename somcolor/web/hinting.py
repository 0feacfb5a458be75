"""Colour hints on the web page: the hints JSON, and one photo's session in a worker.

The page sends hints in the CLI's format (``somcolor colorize --hints h.json``,
:func:`somcolor.guide.read_hints`): ``{"points": [{"x": 120, "y": 45, "color":
"#c83232"}, ...]}``, ``x`` the column and ``y`` the row in pixels of the original
photo. :func:`hint_points` checks the text and the number of points (the server does,
before anything is sent to a worker); :func:`somcolor.guide.parse_hints` checks each
point against the photo's size.

A :class:`PreviewSession` lives in a hint worker (:mod:`.workers`): it keeps what no
hint changes -- the model's probabilities, chroma and solver set-up at the working
size (a :class:`~somcolor.guide.HintSession`'s), and the luminance and automatic
chroma shrunk to the preview size -- so each change of hints re-solves at the working
size and composes a preview of at most ``preview_side`` pixels on the long side. Its
memory is bounded by the working and preview sizes, whatever the photo's. The
full-size result is not kept: the page gets it from ``POST /api/colorize`` with the
same hints, the CLI's computation.

Nothing here imports FastAPI.
"""

from __future__ import annotations

import io
import json
import time

import numpy as np

from .. import guide
from ..color import compose
from ..exceptions import SomcolorError

#: JPEG quality of the previews (a 0.5 MP preview: about 5 ms to encode, 0.5 MB).
PREVIEW_QUALITY = 90


def hint_points(text: str, max_hints: int) -> list:
    """The points of a hints JSON text ``{"points": [...]}``, at most ``max_hints``.

    Each point is checked later, against the photo's size
    (:func:`somcolor.guide.parse_hints`).

    >>> hint_points('{"points": [{"x": 1, "y": 2, "color": "#ff0000"}]}', 5)
    [{'x': 1, 'y': 2, 'color': '#ff0000'}]
    >>> hint_points('{"points": [1, 2, 3]}', 2)
    Traceback (most recent call last):
    ...
    somcolor.exceptions.SomcolorError: hints: got 3 points, expected at most 2
    """
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        msg = str(exc).splitlines()[0] if isinstance(exc, json.JSONDecodeError) else "too deep"
        raise SomcolorError(f"hints: not JSON ({msg})") from None
    if not isinstance(data, dict):
        raise SomcolorError(f'hints: expected an object {{"points": [...]}}, got {_kind(data)}')
    unknown = sorted(set(data) - {"points"})
    if unknown:
        raise SomcolorError(f"hints: unknown keys {unknown[:5]}, expected only 'points'")
    points = data.get("points")
    if not isinstance(points, list):
        raise SomcolorError(f"hints: 'points' must be a list, got {_kind(points)}")
    if len(points) > max_hints:
        raise SomcolorError(f"hints: got {len(points)} points, expected at most {max_hints}")
    return points


def _kind(value) -> str:
    return "nothing" if value is None else type(value).__name__


def hints_json(points) -> str:
    """Points as the CLI's hints JSON text (what the page offers for download).

    >>> hints_json([{"x": 3, "y": 4, "color": "#00ff00"}])
    '{"points": [{"x": 3, "y": 4, "color": "#00ff00"}]}'
    """
    return json.dumps({"points": list(points)})


def preview_shape(shape: tuple[int, int], side: int) -> tuple[int, int]:
    """``shape`` shrunk to at most ``side`` pixels on its long side (never enlarged).

    >>> preview_shape((3000, 4000), 1280), preview_shape((400, 600), 1280)
    ((960, 1280), (400, 600))
    """
    H, W = int(shape[0]), int(shape[1])
    scale = side / max(H, W)
    if scale >= 1:
        return H, W
    return max(1, round(H * scale)), max(1, round(W * scale))


def _nbytes(obj, depth: int = 2) -> int:
    """Bytes of the arrays (dense or sparse) an object holds, ``depth`` attributes deep."""
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if hasattr(obj, "data") and hasattr(obj, "indices") and hasattr(obj, "indptr"):
        return obj.data.nbytes + obj.indices.nbytes + obj.indptr.nbytes
    if depth == 0:
        return 0
    if isinstance(obj, dict):
        return sum(_nbytes(v, depth - 1) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_nbytes(v, depth - 1) for v in obj)
    if hasattr(obj, "__dict__"):
        return sum(_nbytes(v, depth - 1) for v in vars(obj).values())
    return 0


class PreviewSession:
    """A photo made ready for hints, answering with previews of at most ``side`` px.

    Parameters
    ----------
    predictor : Model
        The model (:class:`~somcolor.model.Model`), set to its decoder.
    image : ndarray
        The photo as :func:`somcolor.io.read_image` gives it.
    side : int
        Long side of the previews, in pixels.
    """

    def __init__(self, predictor, image: np.ndarray, side: int):
        session = predictor.hint_session(image)
        self.shape = tuple(int(n) for n in session.shape)
        self.preview_shape = preview_shape(self.shape, side)
        self.L = guide.shrink(session.L, self.preview_shape)
        self.uv_auto = guide.shrink(session.uv_auto, self.preview_shape)
        self.guide = session.guide
        self.uv_work = session.uv_work
        self.proba = session.proba
        self.palette = session.palette
        # The session's full-size L and chroma go with it: only the preview's are kept.

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays held (the solver's cache of hint likeness included)."""
        return _nbytes(self, depth=3)

    def render(self, points) -> tuple[bytes, float, int]:
        """The preview with these hints (a :class:`~somcolor.guide.Hints`, or what
        :func:`~somcolor.guide.parse_hints` takes, in the original's pixels):
        ``(jpeg, seconds, gamut_clipped)``."""
        t0 = time.perf_counter()
        hints = guide.as_hints(points, None, self.shape)
        guided = self.guide.solve(guide.to_working(hints, self.guide.shape))
        uv = guide.full_size(
            self.uv_auto,
            self.uv_work,
            guided,
            L=self.L,
            L_work=self.guide.L,
            params=self.guide.params,
        )
        rgb, clipped = compose(self.L, uv)
        return _jpeg(rgb), time.perf_counter() - t0, int(clipped)

    def suggest(
        self, x: float, y: float, k: int, *, model_only: bool = False
    ) -> list[guide.Suggestion]:
        """The colours offered at column ``x``, row ``y`` of the original
        (:func:`~somcolor.guide.suggest`: the model's most probable first, then the
        palette), shown at the preview's lightness there (as
        :meth:`~somcolor.guide.HintSession.suggest`)."""
        at = guide.parse_hints([(x, y, "#000000")], self.shape, source="point")
        index = int(guide.to_working(at, self.guide.shape).index[0])
        (h, w), (H, W) = self.preview_shape, self.shape
        row = min(h - 1, int((y + 0.5) * h / H))
        col = min(w - 1, int((x + 0.5) * w / W))
        lightness = float(self.L[row, col])
        return guide.suggest(
            self.proba[index], self.palette, k, lightness=lightness, model_only=model_only
        )


def _jpeg(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=PREVIEW_QUALITY)
    return buf.getvalue()
