"""User colour hints: the stage between decoding and composition.

A user says "this point is red": a few points (or strokes) with a colour each. The
hints are spread edge-aware over the image, and the model fills in wherever the user
said nothing. Everything here works on plain arrays at the model's working resolution:

* **Parsing** (:func:`read_hints`, :func:`parse_hints`, :func:`scribble_hints`): the
  JSON format ``{"points": [{"x": 120, "y": 45, "color": "#c83232", "radius": 4}]}``
  (``x`` the column, ``y`` the row, 0-based pixels of the input image; ``radius``
  optional, in input pixels), ``(x, y, (r, g, b))`` tuples or dicts from Python, and
  strokes drawn on an RGBA image of the input's size (its fully opaque pixels). Every
  mistake is one :class:`~somcolor.exceptions.SomcolorError` line naming the source and
  the entry. Hint colours become target chroma (CIELUV UV).
* **Mapping** (:func:`to_working`): input-pixel hints to working-resolution pixels.
* **The method** (:class:`Guide`): minimise, over the chroma ``U`` of every working
  pixel (each of U and V on its own),

  ``sum_rs w_rs (U_r - U_s)^2 + sum_r d_r (U_r - t_r)^2``

  where ``w_rs`` is Levin et al.'s luminance affinity between 8-neighbours (2004), and
  the data term gathers three pulls, each a weight and a target:

  1. *the hints*: an edge-aware disc around each hint (the hinted pixel's weight is
     large, so it wins there; the disc's other pixels count by their luminance
     likeness to the hinted one, so a disc does not cross an edge);
  2. *non-local*: every pixel whose appearance -- the model's code probabilities and
     the luminance -- is like a hinted pixel's is pulled toward the colour of the
     hint it looks most like, by that likeness (so texture like the hinted one
     elsewhere, beyond edges the local spreading cannot cross, gets its colour);
  3. *the model*: a pull toward the model's own chroma (the working chroma the
     automatic output is made from, :meth:`Predictor.prior
     <somcolor.predict.Predictor.prior>`), at every pixel by how unlike every hint it
     looks, and a stronger hold where it is unlike them all, so that where the hints
     say nothing (none looks like it) the model's colour stays instead of a blend of
     unrelated hint colours spread along the smoothness term.

  The system ``(Lap + diag(d)) U = d t`` is symmetric positive definite; it is solved
  by conjugate gradients preconditioned with a two-level method (Jacobi sweeps and a
  coarse-grid correction on 4 x 4 pixel squares), warm-started from the last solution
  (or the model's chroma), so re-solving after one more hint is quick. What does not
  depend on the hints (the affinities, the coarse Laplacian, the appearance features,
  each hint's likeness map once computed) is kept in the :class:`Guide`. With no
  hints the model's chroma is returned unchanged.
* **Full size** (:func:`full_size`): the hints' change to the model's chroma at the
  working resolution, upsampled and added to the automatic full-size chroma, so that
  no hints give the automatic result exactly.
* **Suggestions** (:func:`suggest`): the colours a user picks from at a pixel: the
  model's most probable first, then a palette that covers the gamut at the pixel's
  lightness (:data:`SUGGESTION_PALETTE`), each entry drawn toward where the model's
  probability lies near it, without near duplicates.

References: A. Levin, D. Lischinski, Y. Weiss, "Colorization using Optimization",
SIGGRAPH 2004; R. Zhang, J.-Y. Zhu, P. Isola et al., "Real-Time User-Guided Image
Colorization with Learned Deep Priors", SIGGRAPH 2017.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .color import compose, luv_to_rgb, rgb_to_luv
from .exceptions import SomcolorError
from .predict import ColorizeInfo

# scipy.sparse is imported where it is used: colorizing without hints never needs it.

#: Keys a hint point may have.
POINT_KEYS = ("x", "y", "color", "radius")


# ---------------------------------------------------------------------------- hints
@dataclass(frozen=True)
class Hints:
    """Colour hints in input-image pixels.

    Attributes
    ----------
    xy : float64 ndarray of shape (n, 2)
        Column and row of each hint (0-based pixels of the input image).
    uv : float64 ndarray of shape (n, 2)
        The hinted colours' chroma (CIELUV UV).
    radius : float64 ndarray of shape (n,)
        Each hint's footprint radius in input pixels; NaN for the default
        (:attr:`GuideParams.radius`, in working pixels).
    shape : tuple of int
        The input image's ``(height, width)``.
    """

    xy: np.ndarray
    uv: np.ndarray
    radius: np.ndarray
    shape: tuple[int, int]

    def __len__(self) -> int:
        return len(self.xy)

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> Hints:
        return cls(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0), tuple(shape))


def _hex_rgb(color: str) -> tuple[int, int, int] | None:
    """``"#rrggbb"`` -> (r, g, b), or None if it is not that.

    >>> _hex_rgb("#c83232"), _hex_rgb("c83232"), _hex_rgb("#c8323")
    ((200, 50, 50), None, None)
    """
    if not (isinstance(color, str) and len(color) == 7 and color[0] == "#"):
        return None
    try:
        return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)
    except ValueError:
        return None


def rgb_hex(rgb) -> str:
    """(r, g, b) in 0..255 -> ``"#rrggbb"``.

    >>> rgb_hex((200, 50, 50))
    '#c83232'
    """
    return "#" + "".join(f"{int(c):02x}" for c in rgb)


def _is_number(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _color(value, where: str) -> tuple[int, int, int]:
    if isinstance(value, str):
        rgb = _hex_rgb(value)
        if rgb is None:
            raise SomcolorError(f"{where}: color {value!r} is not an sRGB hex string '#rrggbb'")
        return rgb
    if (
        isinstance(value, list | tuple)
        and len(value) == 3
        and all(isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in value)
        and all(0 <= c <= 255 for c in value)
    ):
        return int(value[0]), int(value[1]), int(value[2])
    raise SomcolorError(f"{where}: color {value!r} is neither '#rrggbb' nor (r, g, b) in 0..255")


def _point(entry, where: str, shape: tuple[int, int]) -> tuple[float, float, tuple, float]:
    """One hint (a dict or an ``(x, y, color)`` tuple) checked against the image's shape."""
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - set(POINT_KEYS), key=str)
        if unknown:
            raise SomcolorError(f"{where}: unknown keys {unknown}, expected some of {POINT_KEYS}")
        missing = [k for k in ("x", "y", "color") if k not in entry]
        if missing:
            raise SomcolorError(f"{where}: missing {missing}, expected x, y and color")
        x, y, color, radius = entry["x"], entry["y"], entry["color"], entry.get("radius")
    elif isinstance(entry, list | tuple) and len(entry) == 3:
        (x, y, color), radius = entry, None
    else:
        raise SomcolorError(
            f"{where}: expected an object with x, y and color, or an (x, y, color) tuple, "
            f"got {entry!r}"
        )
    H, W = shape
    for name, value, size, axis in (("x", x, W, "columns"), ("y", y, H, "rows")):
        if not _is_number(value):
            raise SomcolorError(f"{where}: {name}={value!r} is not a number")
        if not 0 <= value <= size - 1:
            raise SomcolorError(
                f"{where}: {name}={value!r} is outside the image's {axis} 0..{size - 1}"
            )
    if radius is not None and not (_is_number(radius) and radius >= 0):
        raise SomcolorError(f"{where}: radius={radius!r} is not a number >= 0")
    rgb = _color(color, where)
    return float(x), float(y), rgb, math.nan if radius is None else float(radius)


def _uv_of(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 colours ``(n, 3)`` -> their CIELUV chroma ``(n, 2)`` float64."""
    return rgb_to_luv(np.asarray(rgb, np.float64).reshape(-1, 3) / 255.0)[:, 1:]


def parse_hints(points, shape: tuple[int, int], source: str = "hints") -> Hints:
    """Hints from Python: dicts ``{"x", "y", "color"[, "radius"]}`` or ``(x, y, color)``.

    ``color`` is ``"#rrggbb"`` or ``(r, g, b)`` in 0..255; ``shape`` is the input
    image's ``(height, width)``. A mistake raises one :class:`SomcolorError` line that
    names ``source`` and the entry.

    >>> h = parse_hints([(3, 1, (200, 50, 50)), {"x": 0, "y": 2, "color": "#00ff00"}], (4, 5))
    >>> len(h), h.xy.tolist()
    (2, [[3.0, 1.0], [0.0, 2.0]])
    >>> parse_hints([(5, 1, "#ff0000")], (4, 5))
    Traceback (most recent call last):
    ...
    somcolor.exceptions.SomcolorError: hints: point 0: x=5 is outside the image's columns 0..4
    """
    if isinstance(points, dict) or not isinstance(points, list | tuple):
        raise SomcolorError(f"{source}: expected a list of points, got {type(points).__name__}")
    if not points:
        return Hints.empty(shape)
    parsed = [_point(p, f"{source}: point {i}", tuple(shape)) for i, p in enumerate(points)]
    xy = np.array([(p[0], p[1]) for p in parsed], np.float64)
    rgb = np.array([p[2] for p in parsed], np.float64)
    radius = np.array([p[3] for p in parsed], np.float64)
    return Hints(xy, _uv_of(rgb), radius, (int(shape[0]), int(shape[1])))


def read_hints(path, shape: tuple[int, int]) -> Hints:
    """Hints from a JSON file ``{"points": [{"x": ..., "y": ..., "color": "#rrggbb"}, ...]}``.

    Errors (unreadable file, bad JSON, unknown keys, a point outside the image, a bad
    colour or radius) are one :class:`SomcolorError` line naming the file and the entry.
    """
    from .io import read_json

    path = Path(path)
    data = read_json(path, "hints file")
    if not isinstance(data, dict):
        raise SomcolorError(f'{path}: expected an object {{"points": [...]}}')
    unknown = sorted(set(data) - {"points"})
    if unknown:
        raise SomcolorError(f"{path}: unknown keys {unknown}, expected only 'points'")
    if "points" not in data:
        raise SomcolorError(f"{path}: missing 'points'")
    return parse_hints(data["points"], shape, source=str(path))


def scribble_hints(rgba, shape: tuple[int, int], source: str = "scribbles") -> Hints:
    """Hints from strokes drawn on an RGBA image of the input's size: its fully opaque
    pixels (alpha at its maximum), each a hint of radius 0 in its own colour.

    >>> strokes = np.zeros((4, 5, 4), np.uint8); strokes[1, 2] = (255, 0, 0, 255)
    >>> scribble_hints(strokes, (4, 5)).xy.tolist()
    [[2.0, 1.0]]
    """
    arr = np.asarray(rgba)
    if arr.ndim != 3 or arr.shape[2] != 4:
        raise SomcolorError(f"{source}: expected an RGBA image, got an array of shape {arr.shape}")
    if arr.shape[:2] != tuple(shape):
        raise SomcolorError(
            f"{source}: the scribbles are {arr.shape[1]}x{arr.shape[0]} pixels, "
            f"the image {shape[1]}x{shape[0]}"
        )
    if arr.dtype == np.uint8:
        top, scale = 255, 1.0
    elif arr.dtype == np.uint16:
        top, scale = 65535, 255.0 / 65535.0
    elif arr.dtype.kind == "f":
        top, scale = 1.0, 255.0
    else:
        raise SomcolorError(f"{source}: unsupported pixel type {arr.dtype}")
    rows, cols = np.nonzero(arr[..., 3] >= top)
    rgb = np.rint(np.clip(arr[rows, cols, :3].astype(np.float64) * scale, 0, 255))
    xy = np.stack([cols, rows], axis=1).astype(np.float64)
    return Hints(xy, _uv_of(rgb), np.zeros(len(xy)), (int(shape[0]), int(shape[1])))


def merge_hints(*hints: Hints) -> Hints:
    """Several sets of hints on the same image as one (e.g. points and scribbles)."""
    shapes = {h.shape for h in hints}
    if len(shapes) != 1:
        raise SomcolorError(f"hints for different image sizes: {sorted(shapes)}")
    return Hints(
        np.concatenate([h.xy for h in hints]),
        np.concatenate([h.uv for h in hints]),
        np.concatenate([h.radius for h in hints]),
        shapes.pop(),
    )


def as_hints(points, scribbles, shape: tuple[int, int]) -> Hints:
    """The hints a caller gave, as one :class:`Hints` on an image of ``shape``.

    ``points`` is None, a :class:`Hints` (of the same image size) or what
    :func:`parse_hints` takes; ``scribbles`` is None or an RGBA array of the image's
    size (:func:`scribble_hints`). Both given: merged.

    >>> len(as_hints([(1, 1, "#ff0000")], np.zeros((3, 4, 4), np.uint8), (3, 4)))
    1
    """
    shape = (int(shape[0]), int(shape[1]))
    if points is None:
        hints = Hints.empty(shape)
    elif isinstance(points, Hints):
        if tuple(points.shape) != shape:
            raise SomcolorError(
                f"hints: given for a {points.shape[1]}x{points.shape[0]} image, "
                f"the image is {shape[1]}x{shape[0]}"
            )
        hints = points
    else:
        hints = parse_hints(points, shape)
    if scribbles is not None:
        hints = merge_hints(hints, scribble_hints(scribbles, shape))
    return hints


#: Side of the square patch whose mean colour a simulated hint gives.
SIMULATED_PATCH = 3
#: Points drawn per photo by :func:`simulated_hints` before the first ``n`` are kept.
SIMULATED_POOL = 100


def simulated_hints(rgb: np.ndarray, n: int, seed: int) -> list[tuple[int, int, str]]:
    """``n`` simulated user hints on a colour photo, as Zhang et al. (2017) simulated
    them: seeded random points ``(x, y, "#rrggbb")``, each the mean colour of the
    ``SIMULATED_PATCH`` square of ``rgb`` around it (clipped at the borders).

    The sets are nested: the first ``n`` of the same ``max(n, SIMULATED_POOL)`` points.

    >>> rgb = np.zeros((5, 6, 3), np.uint8)
    >>> simulated_hints(rgb, 2, 0) == simulated_hints(rgb, 3, 0)[:2]
    True
    """
    H, W = rgb.shape[:2]
    rng = np.random.default_rng(seed)
    pool = max(int(n), SIMULATED_POOL)
    ys = rng.integers(0, H, pool)[:n]
    xs = rng.integers(0, W, pool)[:n]
    h = SIMULATED_PATCH // 2
    out = []
    for x, y in zip(xs, ys, strict=True):
        patch = rgb[max(0, y - h) : y + h + 1, max(0, x - h) : x + h + 1, :3].reshape(-1, 3)
        out.append((int(x), int(y), rgb_hex(np.rint(patch.mean(axis=0)))))
    return out


# ---------------------------------------------------------------------------- working resolution
@dataclass(frozen=True)
class WorkHints:
    """Hints at the working resolution: one per hinted working pixel.

    ``index`` is the flat (row-major) pixel index, ``uv`` the target chroma (the mean
    of the hints that fell on that pixel), ``radius`` the footprint in working pixels
    (NaN: the default).
    """

    index: np.ndarray
    uv: np.ndarray
    radius: np.ndarray

    def __len__(self) -> int:
        return len(self.index)


@dataclass(frozen=True)
class Exemplars:
    """Hinted pixels by their appearance alone, from another image (a video's key
    frame): the square roots of the model's code probabilities there ``root``
    ``(m, n_classes)``, their luminance ``L`` ``(m,)`` and colour ``uv`` ``(m, 2)``. A
    :class:`Guide` pulls every pixel that looks like one of them toward its colour, as
    it does for its own hinted pixels (the non-local pull), and nothing else."""

    root: np.ndarray
    L: np.ndarray
    uv: np.ndarray

    def __len__(self) -> int:
        return len(self.L)


def working_index(hints: Hints, shape: tuple[int, int]) -> np.ndarray:
    """The flat (row-major) index of the pixel of a working resolution ``shape``
    (``(h, w)``) whose area holds each hint's centre, in the hints' order.

    >>> working_index(parse_hints([(9, 9, "#0000ff"), (0, 0, "#ff0000")], (10, 10)), (5, 5))
    array([24,  0])
    """
    h, w = int(shape[0]), int(shape[1])
    H, W = hints.shape
    col = np.clip(np.floor((hints.xy[:, 0] + 0.5) * w / W), 0, w - 1).astype(np.int64)
    row = np.clip(np.floor((hints.xy[:, 1] + 0.5) * h / H), 0, h - 1).astype(np.int64)
    return row * w + col


def merge_exemplars(exemplars) -> Exemplars | None:
    """Several :class:`Exemplars` as one; None when there are none."""
    exemplars = [e for e in exemplars if e is not None and len(e)]
    if not exemplars:
        return None
    if len(exemplars) == 1:
        return exemplars[0]
    return Exemplars(
        np.concatenate([e.root for e in exemplars]),
        np.concatenate([e.L for e in exemplars]),
        np.concatenate([e.uv for e in exemplars]),
    )


def to_working(hints: Hints, shape: tuple[int, int]) -> WorkHints:
    """Map input-pixel hints onto a working resolution ``shape`` (``(h, w)``).

    A hint lands on the working pixel whose area holds its centre; hints on the same
    working pixel are averaged (their largest radius kept). Radii scale with the image.

    >>> h = parse_hints([(0, 0, "#ff0000"), (1, 1, "#ff0000"), (9, 9, "#0000ff")], (10, 10))
    >>> to_working(h, (5, 5)).index.tolist()
    [0, 24]
    """
    h, w = int(shape[0]), int(shape[1])
    H, W = hints.shape
    if not len(hints):
        return WorkHints(np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros(0))
    flat = working_index(hints, (h, w))
    index, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    uv = np.zeros((len(index), 2))
    np.add.at(uv, inverse, hints.uv)
    uv /= counts[:, None]
    radius = np.full(len(index), np.nan)
    scaled = hints.radius * max(h / H, w / W)
    known = ~np.isnan(scaled)
    np.fmax.at(radius, inverse[known], scaled[known])
    return WorkHints(index, uv, radius)


# ---------------------------------------------------------------------------- the method
@dataclass(frozen=True)
class GuideParams:
    """The method's settings. Chosen on the BSDS500 ``val`` split (40 photos of train)
    with a model trained on the ``fit`` split only, through the product
    (``experiments/hints_sweep.py``; docs/hints.md has the sweep); the test split was
    not used."""

    radius: float = 2.0  #: default footprint radius of a hint, in working pixels
    hint_weight: float = 100.0  #: data weight of a hinted pixel (affinities are <= 1)
    disc_sigma: float = 5.0  #: L difference (0..100) where a disc pixel's weight is e^-0.5
    nonlocal_weight: float = 1.0  #: the pull toward the colour of a hint with the same appearance
    #: Hellinger distance between code probabilities where the likeness is 1/e^0.5
    nonlocal_sigma: float = 0.5
    nonlocal_l_sigma: float = 10.0  #: L difference for the same
    nonlocal_power: float = 16.0  #: how sharply the most alike hint's colour is the target
    #: the pull toward the model's chroma, by how unlike every hint a pixel looks (``unlike``)
    model_weight: float = 0.1
    #: a stronger hold on the model's chroma where every hint looks unlike:
    #: ``model_hold * unlike**model_power`` added to that pull, so that hint colours do not
    #: leak along the smoothness term into regions no hint resembles
    model_hold: float = 0.3
    model_power: float = 16.0
    #: the hints' change is brought to the full size by a guided filter of this radius
    #: (working pixels) fitted to the working L and applied to the full L, so that it
    #: follows the photo's edges there (0: bilinear interpolation)
    upsample_radius: int = 3
    upsample_eps: float = 3e-3  #: its regularisation, in (L / 100) squared
    max_nonlocal: int = 256  #: hinted pixels (evenly spread over the list) the non-local pull uses
    rtol: float = 1e-3  #: conjugate gradients stop at this relative residual
    max_iter: int = 500
    block: int = 4  #: side of the coarse grid's squares in the preconditioner, in pixels


def _edge_weights(L: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric 8-neighbour affinities ``(rows, cols, weights)``, each edge once.

    The affinity of neighbours ``r, s`` is Levin et al.'s ``exp(-(Y_r - Y_s)^2 /
    sigma2)`` with ``Y = L / 100`` and ``sigma2`` the mean of the two pixels' window
    scales (0.6 times the 3x3 variance, at least ``2e-6``).
    """
    Y = np.asarray(L, np.float64) / 100.0
    h, w = Y.shape
    pad = np.pad(Y, 1, mode="edge")
    win = np.stack([pad[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)])
    sigma2 = np.maximum(0.6 * win.var(axis=0), 2e-6)
    index = np.arange(h * w).reshape(h, w)
    rows, cols, vals = [], [], []
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
        r = (slice(0, h - dy), slice(max(0, -dx), w - max(0, dx)))
        s = (slice(dy, h), slice(max(0, dx), w - max(0, -dx)))
        s2 = 0.5 * (sigma2[r] + sigma2[s])
        rows.append(index[r].ravel())
        cols.append(index[s].ravel())
        vals.append(np.exp(-((Y[r] - Y[s]) ** 2) / s2).ravel())
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def laplacian(L: np.ndarray):
    """The graph Laplacian ``D - W`` (CSR, float64) of the luminance affinities."""
    import scipy.sparse as sp

    n = int(np.asarray(L).size)
    r, c, v = _edge_weights(L)
    W = sp.coo_matrix(
        (np.concatenate([v, v]), (np.concatenate([r, c]), np.concatenate([c, r]))), shape=(n, n)
    ).tocsr()
    degree = np.asarray(W.sum(axis=1)).ravel()
    return (sp.diags(degree) - W).tocsr()


class _DiagonalShift:
    """A sparse symmetric matrix ``M`` whose diagonal is shifted in place: ``self(d)`` is
    ``M + diag(d)`` (the same CSR object each time, so nothing is reallocated)."""

    def __init__(self, M):
        import scipy.sparse as sp

        n = M.shape[0]
        self.matrix = (M + sp.identity(n, format="csr")).tocsr()  # every diagonal entry stored
        self.matrix.sort_indices()
        rows = np.repeat(np.arange(n), np.diff(self.matrix.indptr))
        self.position = np.flatnonzero(self.matrix.indices == rows)
        self.base = M.diagonal().astype(np.float64)

    def __call__(self, d: np.ndarray):
        self.matrix.data[self.position] = self.base + d
        return self.matrix


def _spread(n: int, most: int) -> np.ndarray:
    """``min(n, most)`` indices evenly spread over ``0..n-1``.

    >>> _spread(3, 5).tolist(), _spread(10, 4).tolist()
    ([0, 1, 2], [0, 3, 6, 9])
    """
    if n <= most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, most).round().astype(np.int64))


def _aggregates(shape: tuple[int, int], block: int):
    """The piecewise-constant prolongation ``P`` (``n x n_coarse``, CSR) of ``block x block``
    pixel squares: ``P[i, j] = 1`` when pixel ``i`` lies in square ``j``."""
    import scipy.sparse as sp

    h, w = shape
    hc, wc = -(-h // block), -(-w // block)
    rows, cols = np.divmod(np.arange(h * w), w)
    agg = (rows // block) * wc + cols // block
    return sp.csr_matrix((np.ones(h * w), (np.arange(h * w), agg)), shape=(h * w, hc * wc))


class _TwoLevel:
    """A symmetric two-level preconditioner for ``A``: a Jacobi sweep, a coarse-grid
    correction on square aggregates (Galerkin ``P^T A P``, factorised), a Jacobi sweep."""

    def __init__(self, A, diagonal, P, coarse, omega: float = 2.0 / 3.0):
        from scipy.sparse.linalg import splu

        self.A, self.P = A, P
        self.inv = omega / diagonal[:, None]
        # Symmetric positive definite: a symmetric ordering, no pivoting (half the time).
        self.coarse = splu(
            coarse.tocsc(),
            permc_spec="MMD_AT_PLUS_A",
            diag_pivot_thresh=0.0,
            options={"SymmetricMode": True},
        )

    def __call__(self, r: np.ndarray) -> np.ndarray:
        x = self.inv * r
        x += self.P @ self.coarse.solve(self.P.T @ (r - self.A @ x))
        x += self.inv * (r - self.A @ x)
        return x


def _pcg(A, b, x, precondition, rtol: float, max_iter: int):
    """Preconditioned conjugate gradients on ``A X = b`` for the columns of ``b`` at once
    (``(n, k)``), from ``x``; stops when every column's relative residual is below ``rtol``.
    Returns the solution and the iterations taken."""
    r = b - A @ x
    norm_b = np.maximum(np.linalg.norm(b, axis=0), 1e-30)
    z = precondition(r)
    p = z.copy()
    rz = np.einsum("ij,ij->j", r, z)
    for it in range(max_iter):
        if np.all(np.linalg.norm(r, axis=0) <= rtol * norm_b):
            return x, it
        Ap = A @ p
        alpha = rz / np.maximum(np.einsum("ij,ij->j", p, Ap), 1e-300)
        x += alpha * p
        r -= alpha * Ap
        z = precondition(r)
        rz_new = np.einsum("ij,ij->j", r, z)
        p = z + (rz_new / np.maximum(rz, 1e-300)) * p
        rz = rz_new
    return x, max_iter


class Guide:
    """Hint propagation for one image at the working resolution.

    Built once per image from what does not depend on the hints; :meth:`solve` then
    takes any hints and returns the guided chroma, warm-started from the last
    solution.

    Parameters
    ----------
    L : ndarray of shape (h, w)
        Luminance (0..100) at the working resolution.
    proba : ndarray of shape (h * w, n_classes)
        The model's code probabilities per pixel (row-major).
    palette : ndarray of shape (n_classes, 2)
        The UV of each probability column (``codebook[classes]``).
    uv : ndarray of shape (h, w, 2)
        The model's decoded chroma, returned unchanged when there are no hints.
    params : GuideParams, optional
        The method's settings (None: the defaults).
    """

    def __init__(self, L, proba, palette, uv, params: GuideParams | None = None):
        self.params = GuideParams() if params is None else params
        self.L = np.asarray(L, np.float64)
        h, w = self.L.shape
        self.palette = np.asarray(palette, np.float64)
        self.uv = np.asarray(uv)
        if self.uv.shape != (h, w, 2):
            raise ValueError(f"expected uv of shape {(h, w, 2)}, got {self.uv.shape}")
        proba = np.asarray(proba, np.float32)
        if proba.shape != (h * w, len(self.palette)):
            raise ValueError(
                f"expected proba of shape {(h * w, len(self.palette))}, got {proba.shape}"
            )
        self.proba = proba
        #: The Laplacian of the luminance affinities, and its Galerkin coarse twin.
        self.laplacian = laplacian(self.L)
        self.prolongation = _aggregates((h, w), self.params.block)
        P = self.prolongation
        self.coarse_laplacian = (P.T @ self.laplacian @ P).tocsr()
        self._system = _DiagonalShift(self.laplacian)
        self._coarse_system = _DiagonalShift(self.coarse_laplacian)
        #: The Hellinger embedding of the probabilities (square roots).
        self.root = np.sqrt(np.maximum(proba, 0.0))
        self.iterations = 0  #: conjugate-gradient iterations of the last solve
        self._last = None
        self._likeness_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._nonlocal_last = (set(), None, None, None)

    @property
    def shape(self) -> tuple[int, int]:
        return self.L.shape

    def _likeness(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """How much every pixel looks like pixel ``index`` (0..1, ``(n,)``): a Gaussian of
        the Hellinger distance of their code probabilities and of their L difference;
        also its ``nonlocal_power``-th power. Kept for the next solve."""
        cached = self._likeness_cache.get(index)
        if cached is None:
            prm = self.params
            log_like = self._log_likeness(self.root[index], self.L.flat[index])
            cached = np.exp(log_like), np.exp(prm.nonlocal_power * log_like)
            if len(self._likeness_cache) >= 4 * prm.max_nonlocal:
                self._likeness_cache.clear()
            self._likeness_cache[index] = cached
        return cached

    def _log_likeness(self, root: np.ndarray, L) -> np.ndarray:
        """The log of every pixel's likeness to pixels of square-rooted probabilities
        ``root`` (``(C,)``, or ``(m, C)`` for ``m`` of them) and luminance ``L``:
        ``(n,)``, or ``(n, m)``."""
        prm = self.params
        hell2 = np.maximum(0.0, 2.0 - 2.0 * (self.root @ root.T))
        dl = (self.L.reshape(-1, 1) if np.ndim(L) else self.L.ravel()) - L
        return -0.5 * hell2 / prm.nonlocal_sigma**2 - 0.5 * (dl / prm.nonlocal_l_sigma) ** 2

    def _exemplar_sums(self, exemplars: Exemplars, top, total, target) -> None:
        """Add exemplars (hinted pixels of another image) to the non-local sums, in place."""
        prm = self.params
        m = len(exemplars)
        if not m:
            return
        keep = _spread(m, prm.max_nonlocal)
        root = np.asarray(exemplars.root, np.float32)[keep]
        log_like = self._log_likeness(root, np.asarray(exemplars.L, np.float64)[keep])  # (n, m)
        np.maximum(top, np.exp(log_like).max(axis=1), out=top)
        sharp = np.exp(prm.nonlocal_power * log_like)
        total += sharp.sum(axis=1)
        target += sharp @ np.asarray(exemplars.uv, np.float64)[keep]

    def _nonlocal_sums(self, hints: WorkHints):
        """Over the hints: the largest likeness, the sum of the likeness powers and their
        colour-weighted sum. When the hints are the last solve's plus more (a user adding
        hints), only the new ones are added to the last solve's sums."""
        n = self.L.size
        keys = [
            (int(hints.index[k]), float(hints.uv[k, 0]), float(hints.uv[k, 1]))
            for k in _spread(len(hints), self.params.max_nonlocal)
        ]
        last_keys, top, total, target = self._nonlocal_last
        if not last_keys or not last_keys <= set(keys):
            last_keys, top, total, target = set(), np.zeros(n), np.zeros(n), np.zeros((n, 2))
        else:
            top, total, target = top.copy(), total.copy(), target.copy()
        for key in keys:
            if key in last_keys:
                continue
            like, sharp = self._likeness(key[0])
            np.maximum(top, like, out=top)
            total += sharp
            target[:, 0] += sharp * key[1]
            target[:, 1] += sharp * key[2]
        self._nonlocal_last = (set(keys), top, total, target)
        return top, total, target

    def data_term(
        self, hints: WorkHints, exemplars: Exemplars | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The data weights ``d`` ``(n,)`` and targets ``t`` ``(n, 2)`` of these hints
        (and of ``exemplars``, hinted pixels of another image, by appearance)."""
        prm = self.params
        h, w = self.shape
        n = h * w
        Lf = self.L.ravel()
        weight = np.zeros(n)
        pull = np.zeros((n, 2))  # sum of weight * target
        unlike = np.ones(n)
        if prm.nonlocal_weight > 0:
            # The pull is as strong as the likeness of the most alike hint; its target
            # is the alike hints' colours weighted by their likeness to a high power
            # (nearly the most alike one's: a plain average would blend unrelated
            # colours into gray once many hints look somewhat alike).
            top, total, target = self._nonlocal_sums(hints)
            if exemplars is not None and len(exemplars):
                top, total, target = top.copy(), total.copy(), target.copy()
                self._exemplar_sums(exemplars, top, total, target)
            alpha = prm.nonlocal_weight * top
            weight += alpha
            pull += (alpha / np.where(total > 0, total, 1.0))[:, None] * target
            unlike = 1.0 - top
        if prm.model_weight > 0 or prm.model_hold > 0:
            beta = prm.model_weight * unlike + prm.model_hold * unlike**prm.model_power
            weight += beta
            pull += beta[:, None] * self.uv.reshape(-1, 2)
        rows, cols = np.divmod(hints.index, w)
        radius = np.where(np.isnan(hints.radius), prm.radius, hints.radius)
        point = radius < 1  # a footprint of one pixel (e.g. a scribble's)
        weight[hints.index[point]] += prm.hint_weight
        pull[hints.index[point]] += prm.hint_weight * hints.uv[point]
        for k in np.flatnonzero(~point):
            rad = int(math.floor(radius[k]))
            r0, r1 = max(0, rows[k] - rad), min(h, rows[k] + rad + 1)
            c0, c1 = max(0, cols[k] - rad), min(w, cols[k] + rad + 1)
            yy, xx = np.mgrid[r0:r1, c0:c1]
            inside = (yy - rows[k]) ** 2 + (xx - cols[k]) ** 2 <= radius[k] ** 2
            idx = (yy * w + xx)[inside]
            dl = Lf[idx] - Lf[hints.index[k]]
            g = prm.hint_weight * np.exp(-0.5 * (dl / prm.disc_sigma) ** 2)
            weight[idx] += g
            pull[idx] += g[:, None] * hints.uv[k]
        return weight, pull

    def solve(self, hints: WorkHints, exemplars: Exemplars | None = None) -> np.ndarray:
        """The guided chroma ``(h, w, 2)`` float32; the model's own when there are no
        hints (and no ``exemplars``)."""
        h, w = self.shape
        if not len(hints) and (exemplars is None or not len(exemplars)):
            return self.uv.astype(np.float32, copy=True)
        weight, pull = self.data_term(hints, exemplars)
        A = self._system(weight)
        x0 = self.uv.reshape(-1, 2).astype(np.float64) if self._last is None else self._last
        prm = self.params
        coarse = self._coarse_system(self.prolongation.T @ weight)
        precondition = _TwoLevel(A, self._system.base + weight, self.prolongation, coarse)
        x, self.iterations = _pcg(A, pull, x0.copy(), precondition, prm.rtol, prm.max_iter)
        self._last = x
        return x.reshape(h, w, 2).astype(np.float32)


def guided_uv(L, proba, palette, uv, hints: WorkHints, params: GuideParams | None = None):
    """The guided chroma ``(h, w, 2)`` of one image: ``Guide(...).solve(hints)``."""
    return Guide(L, proba, palette, uv, params).solve(hints)


def full_size(
    uv_full: np.ndarray,
    uv_work: np.ndarray,
    guided_work: np.ndarray,
    *,
    L: np.ndarray | None = None,
    L_work: np.ndarray | None = None,
    params: GuideParams | None = None,
) -> np.ndarray:
    """The guided chroma at the input's size: the automatic chroma ``uv_full`` plus the
    hints' change at the working resolution (``guided_work - uv_work``) brought up to it.

    With ``L`` and ``L_work`` (the luminance at both sizes) and ``upsample_radius > 0``
    the change is upsampled by the fast guided filter (coefficients fitted to ``L_work``,
    applied to ``L``), else bilinearly. With no hints the change is zero and
    ``uv_full`` comes back unchanged.
    """
    from .resize import resample

    prm = GuideParams() if params is None else params
    change = np.asarray(guided_work, np.float32) - np.asarray(uv_work, np.float32)
    if not change.any():
        return uv_full
    if L is None or L_work is None or prm.upsample_radius <= 0:
        return uv_full + resample(change, uv_full.shape[:2])
    return add_change(uv_full, L, change_coefficients(change, L_work, prm))


def change_coefficients(change: np.ndarray, L_work: np.ndarray, params: GuideParams):
    """The guided filter's coefficients ``(mean_a, mean_b)`` of a change to the working
    chroma ``(h, w, 2)``, fitted against the working luminance ``L_work`` (radius
    ``upsample_radius``, regularisation ``upsample_eps``): what :func:`add_change` brings
    onto a full-resolution L."""
    from .smooth import guided_coefficients

    L_work = np.asarray(L_work, np.float32)
    return guided_coefficients(
        L_work / np.float32(100),
        np.asarray(change, np.float32),
        int(params.upsample_radius),
        params.upsample_eps,
    )


def add_change(uv_full: np.ndarray, L: np.ndarray, coefficients) -> np.ndarray:
    """``uv_full`` plus the change of :func:`change_coefficients` applied to the
    full-resolution luminance ``L`` (so that it follows L's edges)."""
    from .smooth import guided_rows

    mean_a, mean_b = coefficients
    L = np.ascontiguousarray(L, np.float32)
    return uv_full + guided_rows(L, mean_a, mean_b, 0, L.shape[0], scale=0.01)


# ---------------------------------------------------------------------------- suggestions
class Suggestion(NamedTuple):
    """One colour offered at a point: ``"#rrggbb"``, the model's probability of its code
    (None for a palette colour) and where it comes from, ``"model"`` or ``"palette"``."""

    color: str
    probability: float | None
    source: str


#: The colours that complete the model's: ``(name, hue, chroma, saturation)``. At
#: lightness L an entry's CIELUV chroma is ``chroma + saturation * L`` in the direction
#: ``hue`` (degrees in the uv plane, 0 = +u), brought into the sRGB gamut at L by
#: shrinking the chroma (hue and L kept, :func:`into_gamut`). A gray; a muted ring of
#: fixed chroma, for the near-neutral colours most photo pixels have; a stronger ring
#: whose chroma grows with L, as a lit colour's does (at L 30 the "skin" entry is a
#: brown, at L 70 a skin tone); and a red. These are each entry's default: at a pixel
#: :func:`suggest` draws it toward the model's colours in its cell
#: (:attr:`SuggestParams.cell_mass`). Chosen on the BSDS500 ``val`` split
#: (``python -m experiments.suggest_eval --split val --designs``; docs/web.md,
#: "Suggested colours").
SUGGESTION_PALETTE = (
    ("gray", 0.0, 0.0, 0.0),
    ("gray-brown", 45.0, 10.0, 0.0),
    ("khaki", 90.0, 10.0, 0.0),
    ("gray-green", 150.0, 10.0, 0.0),
    ("gray-blue", 235.0, 10.0, 0.0),
    ("brown / skin", 45.0, 0.0, 0.6),
    ("ochre / yellow", 80.0, 0.0, 0.6),
    ("foliage green", 115.0, 0.0, 0.6),
    ("sky blue", 235.0, 0.0, 0.6),
    ("red", 12.0, 0.0, 0.8),
)


@dataclass(frozen=True)
class SuggestParams:
    """How :func:`suggest` makes its list; the defaults were chosen on BSDS500 ``val``."""

    #: the palette: ``(name, hue, chroma, saturation)`` entries (:data:`SUGGESTION_PALETTE`)
    colors: tuple = SUGGESTION_PALETTE
    #: at most this many of the model's colours lead the list ...
    model_colors: int = 3
    #: ... each with at least this probability (the most probable code always leads):
    #: the model's probabilities are flat (on BSDS500 ``val`` the most probable of 100
    #: codes has a median 0.08), and colours it barely prefers are no better than the
    #: palette's
    min_probability: float = 0.05
    #: a colour closer than this (CIELUV uv, as shown) to an earlier one is left out
    min_distance: float = 5.0
    #: the model's pull on the palette: each entry's *cell* is the model's codes nearer
    #: to it than to any other entry (at the pixel's L, in the gamut), ``m`` their
    #: probability; the entry moves from its default toward their probability-weighted
    #: mean by ``m / (m + cell_mass)`` (half-way when its cell holds ``cell_mass``), so
    #: an entry whose cell the model leaves empty stays where it is. None: the palette
    #: as it is (the same at every pixel of one lightness)
    cell_mass: float | None = 0.2


#: Bisection steps of :func:`into_gamut` (the chroma to 2**-16 of its length).
_GAMUT_STEPS = 16


def _in_gamut(L: float, uv: np.ndarray) -> np.ndarray:
    """Which chroma ``(n, 2)`` at lightness ``L`` are sRGB colours: those that come back
    unchanged (within 0.01) from sRGB clipped to 0..1."""
    luv = np.column_stack([np.full(len(uv), L), uv])
    rgb, _ = luv_to_rgb(luv)
    return np.all(np.abs(rgb_to_luv(rgb)[:, 1:] - uv) <= 0.01, axis=1)


def into_gamut(lightness: float, uv) -> np.ndarray:
    """Chroma ``(n, 2)`` shrunk toward gray just enough to be an sRGB colour at
    ``lightness`` (0..100), each keeping its hue; float64.

    The colours of one lightness in the gamut are a convex region around gray, so each
    chroma's largest in-gamut fraction is found by bisection.

    >>> into_gamut(50.0, [[10.0, 5.0], [300.0, 0.0]]).round(1).tolist()
    [[10.0, 5.0], [137.6, 0.0]]
    >>> into_gamut(100.0, [[30.0, 0.0]]).round(1).tolist()
    [[0.0, 0.0]]
    """
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    L = float(lightness)
    inside = _in_gamut(L, uv)
    if inside.all():
        return uv.copy()
    lo, hi = np.zeros(len(uv)), np.ones(len(uv))
    for _ in range(_GAMUT_STEPS):
        mid = 0.5 * (lo + hi)
        ok = _in_gamut(L, uv * mid[:, None])
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    return np.where(inside[:, None], uv, uv * lo[:, None])


def palette_uv(lightness: float, colors=SUGGESTION_PALETTE) -> np.ndarray:
    """The chroma ``(n, 2)`` of a palette's entries (:data:`SUGGESTION_PALETTE`) at
    ``lightness``, before the gamut (:func:`into_gamut`).

    >>> palette_uv(50.0)[[0, 8]].round(1).tolist()
    [[0.0, 0.0], [-17.2, -24.6]]
    """
    entries = np.array([e[1:] for e in colors], np.float64).reshape(-1, 3)
    hue = np.radians(entries[:, 0])
    chroma = entries[:, 1] + entries[:, 2] * float(lightness)
    return chroma[:, None] * np.column_stack([np.cos(hue), np.sin(hue)])


def _pulled(entries: np.ndarray, codes: np.ndarray, proba: np.ndarray, mass: float):
    """Palette chroma ``entries`` ``(n, 2)`` each moved toward the probability-weighted
    mean of the ``codes`` nearest to it, by ``m / (m + mass)`` (``m`` those codes'
    probability). Both are in the gamut at one L, which is convex there, so the result
    is too.

    >>> codes = np.array([[10.0, 0.0], [20.0, 0.0], [0.0, 30.0]])
    >>> _pulled(np.array([[0.0, 0.0], [0.0, 40.0]]), codes, np.array([0.3, 0.1, 0.0]), 0.2)
    array([[ 8.33333333,  0.        ],
           [ 0.        , 40.        ]])
    """
    if not len(entries):
        return entries
    cell = np.argmin(((codes[:, None] - entries[None]) ** 2).sum(axis=-1), axis=1)
    m = np.bincount(cell, weights=proba, minlength=len(entries))
    total = np.column_stack(
        [np.bincount(cell, weights=proba * codes[:, i], minlength=len(entries)) for i in (0, 1)]
    )
    filled = m > 0
    mean = np.where(filled[:, None], total / np.where(filled, m, 1.0)[:, None], entries)
    return entries + (m / (m + mass))[:, None] * (mean - entries)


def suggest(
    proba: np.ndarray,
    palette: np.ndarray,
    k: int = 12,
    *,
    lightness: float = 50.0,
    model_only: bool = False,
    params: SuggestParams | None = None,
) -> list[Suggestion]:
    """The colours offered at one pixel, at most ``k``: a list of :class:`Suggestion`.

    ``proba`` is that pixel's code probabilities ``(n_classes,)``, ``palette`` the UV of
    each column (the model's codes); every colour is shown at ``lightness`` (the pixel's
    L, 0..100), its chroma shrunk into the sRGB gamut there (:func:`into_gamut`).

    The list (``params``: :class:`SuggestParams`): the model's most probable colours
    first, in probability order (at most ``model_colors``, each at least
    ``min_probability`` likely; the most probable always), then the palette
    (:data:`SUGGESTION_PALETTE`), which covers the gamut at that lightness, each entry
    drawn toward the model's colours nearest to it (``cell_mass``), then the model's
    further colours in probability order until there are ``k``. A colour within
    ``min_distance`` of an earlier one is left out, so the list is shorter than ``k``
    only where the gamut is that small (near black or white). With ``model_only`` it is
    the model's ``k`` most probable colours, near duplicates included (the suggestions
    before the palette, for comparison).

    >>> codes = np.array([[0.0, 0.0], [40.0, 10.0], [-20, 15]])
    >>> suggest(np.array([0.1, 0.7, 0.2]), codes, 2, lightness=50.0, model_only=True)
    [Suggestion(color='#a26765', probability=0.7, source='model'), \
Suggestion(color='#578067', probability=0.2, source='model')]
    >>> [s.source for s in suggest(np.array([0.1, 0.7, 0.2]), codes, 5, lightness=50.0)]
    ['model', 'model', 'model', 'palette', 'palette']
    """
    prm = SuggestParams() if params is None else params
    proba = np.asarray(proba, np.float64).ravel()
    palette = np.asarray(palette, np.float64)
    if len(proba) != len(palette):
        raise SomcolorError(f"expected {len(palette)} probabilities, got {len(proba)}")
    k = max(0, int(k))
    L = min(100.0, max(0.0, float(lightness)))
    order = np.argsort(-proba, kind="stable")
    if model_only:
        chosen = [(j, "model") for j in order[:k]]
        uv = into_gamut(L, palette[order[:k]])
    else:
        uv_codes = into_gamut(L, palette)
        uv_palette = into_gamut(L, palette_uv(L, prm.colors))
        if prm.cell_mass is not None:
            uv_palette = _pulled(uv_palette, uv_codes, proba, prm.cell_mass)
        lead = [j for j in order[: prm.model_colors] if proba[j] >= prm.min_probability]
        lead = lead or list(order[:1])
        candidates = [(j, "model", uv_codes[j]) for j in lead]
        candidates += [(i, "palette", c) for i, c in enumerate(uv_palette)]
        candidates += [(j, "model", uv_codes[j]) for j in order if j not in lead]
        kept: list[np.ndarray] = []
        chosen = []
        for index, source, c in candidates:
            if len(chosen) == k:
                break
            if all(math.hypot(*(c - d)) >= prm.min_distance for d in kept):
                kept.append(c)
                chosen.append((index, source))
        uv = np.array(kept).reshape(-1, 2)
    rgb, _ = compose(np.full((1, len(uv)), L), uv[None])
    return [
        Suggestion(rgb_hex(c), round(float(proba[j]), 6) if s == "model" else None, s)
        for c, (j, s) in zip(rgb[0], chosen, strict=True)
    ]


# ---------------------------------------------------------------------------- one image's session
#: Long side of the hints solve for a model that predicts at full resolution
#: (``work_size=None``); other models solve at their own working size.
HINT_WORK_SIZE = 256


def shrink(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Area-average ``(H, W)`` or ``(H, W, C)`` float32 down to ``shape`` (no copy when it
    is float32 of that shape already).

    >>> shrink(np.ones((4, 6, 2), np.float32), (2, 3)).shape
    (2, 3, 2)
    """
    from .resize import downsample

    if tuple(x.shape[:2]) == tuple(shape):
        return np.ascontiguousarray(x, np.float32)
    if x.ndim == 2:
        return downsample(x, shape)
    return np.stack([downsample(x[..., c], shape) for c in range(x.shape[2])], axis=-1)


class HintSession:
    """One image made ready for colour hints: re-colorize it with any hints, quickly.

    Built by :meth:`somcolor.model.Model.hint_session` (from an image) or directly from
    a model and a luminance ``L`` (``(H, W)``, 0..100). It holds what no hint changes,
    all of it from the model's one prediction (:meth:`Predictor.prior
    <somcolor.predict.Predictor.prior>`): the full-resolution L, the automatic full-size
    chroma (exactly the automatic output's), and at the working size (the model's
    ``work_size``; :data:`HINT_WORK_SIZE` for a model with ``work_size=None``, the prior
    shrunk to it) the luminance, the working chroma the automatic output is brought up
    from, and the code probabilities; the :class:`Guide` of that size is built on first
    use. Each :meth:`colorize` solves for the guided chroma (warm-started from the last
    solve), adds its change to the automatic chroma (:func:`full_size`) and composes it
    with the full-resolution L; with no hints it is the automatic output byte for byte.

    Examples
    --------
    >>> from somcolor.model import Model
    >>> from somcolor.paths import DEFAULT_MODEL
    >>> session = Model.from_file(DEFAULT_MODEL).hint_session(np.full((8, 8), 128, np.uint8))
    >>> session.colorize([(3, 3, "#c83232")])[3, 3].tolist() != [128, 128, 128]
    True
    """

    def __init__(self, predictor, L, params: GuideParams | None = None):
        from .resize import working_shape

        self.L = np.ascontiguousarray(L, dtype=np.float32)
        self.params = params
        p = predictor
        work = working_shape(self.L.shape, p.work_size or HINT_WORK_SIZE)
        own = working_shape(self.L.shape, p.work_size) == work
        prior = p.prior(self.L, proba=own)
        self.uv_auto = prior.full_uv(self.L)
        if own:
            self.L_work, self.uv_work, self.proba = prior.L, prior.uv, prior.proba
        else:  # a full-resolution model: its prior shrunk to the hints' working size
            self.L_work = shrink(prior.L, work)
            self.uv_work = shrink(prior.uv, work)
            self.proba = p.predict_proba(self.L_work)[0]
        self.palette = p.codebook[p.classes]
        self._guide = None

    @property
    def shape(self) -> tuple[int, int]:
        """The input image's ``(height, width)``."""
        return self.L.shape

    @property
    def guide(self) -> Guide:
        """The :class:`Guide` of the working size (built on first use)."""
        if self._guide is None:
            self._guide = Guide(self.L_work, self.proba, self.palette, self.uv_work, self.params)
        return self._guide

    def colorize(self, hints=None, scribbles=None, *, return_info: bool = False):
        """The image colorized with these hints (as :func:`as_hints` takes them) -> RGB
        uint8 ``(H, W, 3)``; with no hints the automatic output. With ``return_info``
        also returns a :class:`~somcolor.predict.ColorizeInfo`."""
        import time

        t0 = time.perf_counter()
        out, clipped = compose(self.L, self.uv(hints, scribbles))
        if not return_info:
            return out
        return out, ColorizeInfo(out.shape[0], out.shape[1], clipped, time.perf_counter() - t0)

    def uv(self, hints=None, scribbles=None) -> np.ndarray:
        """The full-size chroma ``(H, W, 2)`` float32 with these hints (the automatic
        chroma itself when there are none)."""
        given = as_hints(hints, scribbles, self.shape)
        if not len(given):
            return self.uv_auto
        guided = self.guide.solve(to_working(given, self.guide.shape))
        return full_size(
            self.uv_auto, self.uv_work, guided, L=self.L, L_work=self.L_work, params=self.params
        )

    def suggest(
        self,
        x: float,
        y: float,
        k: int = 12,
        *,
        source: str = "point",
        model_only: bool = False,
        params: SuggestParams | None = None,
    ) -> list[Suggestion]:
        """The colours offered at column ``x``, row ``y`` of the input (:func:`suggest`:
        the model's most probable first, then the palette), from the probabilities of
        the working pixel holding it, shown at the input pixel's lightness (a point
        outside the image: an error naming ``source``)."""
        at = parse_hints([(x, y, "#000000")], self.shape, source=source)
        index = int(to_working(at, self.L_work.shape).index[0])
        lightness = float(self.L[int(round(y)), int(round(x))])
        return suggest(
            self.proba[index],
            self.palette,
            k,
            lightness=lightness,
            model_only=model_only,
            params=params,
        )
