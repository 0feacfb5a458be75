"""Resizing between the full image and the working resolution a model predicts at.

Chroma is low-frequency: a model may predict it at a smaller working size
(:func:`working_shape`) and bring it back to the full-resolution luminance
(:func:`resample`, bilinear; enlarging float32 runs in a numba kernel).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._threads import threads_for

# scikit-image's resize is imported where it is used: with scipy.ndimage it takes
# 0.3-0.4 s to import, which colorizing at full resolution never needs.


def working_shape(shape: tuple[int, int], long_side: int | None) -> tuple[int, int]:
    """The shape with the long side at most ``long_side`` (None: unchanged), aspect kept.

    >>> working_shape((321, 481), 240)
    (160, 240)
    """
    H, W = int(shape[0]), int(shape[1])
    if long_side is None or max(H, W) <= long_side:
        return H, W
    f = long_side / max(H, W)
    return max(1, round(H * f)), max(1, round(W * f))


def resample(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``(H, W[, C])`` to ``shape``, anti-aliased when shrinking.

    The same as scikit-image's ``resize(x, shape, order=1, anti_aliasing=shrink,
    preserve_range=True)``; enlarging float32 (the chroma of a working resolution
    brought back to the full image) runs in :func:`_enlarge`, about 15 times faster.
    """
    if tuple(x.shape[:2]) == tuple(shape):
        return x
    shrink = shape[0] < x.shape[0] or shape[1] < x.shape[1]
    if not shrink and x.dtype == np.float32 and x.ndim in (2, 3):
        x3 = np.ascontiguousarray(x.reshape(*x.shape[:2], -1))
        out = np.empty((shape[0], shape[1], x3.shape[2]), dtype=np.float32)
        with threads_for(out.size):
            _enlarge(x3, out)
        return out.reshape(*shape, *x.shape[2:])
    from skimage.transform import resize

    out = resize(x, (*shape, *x.shape[2:]), order=1, anti_aliasing=shrink, preserve_range=True)
    return out.astype(x.dtype, copy=False)


@nb.njit(cache=True, inline="always")
def _source(i, scale, n):
    """Where output pixel ``i`` samples its input axis of ``n`` pixels: ``(i0, i1, f)``.

    Pixel-area alignment (centres at ``(i + 0.5) * scale - 0.5``) and mirroring at the
    ends, as scikit-image's ``resize`` (``mode="reflect"``) does.
    """
    p = (i + 0.5) * scale - 0.5
    if n == 1:
        return 0, 0, 0.0
    if p < 0.0:
        p = -p
    if p > n - 1:
        p = 2.0 * (n - 1) - p
    i0 = min(int(np.floor(p)), n - 2)
    return i0, i0 + 1, p - i0


@nb.njit(cache=True, nogil=True, parallel=True)
def _enlarge(x, out):
    """Bilinear interpolation of ``x`` ``(h, w, c)`` into the larger ``out`` ``(H, W, c)``."""
    h, w, c = x.shape
    H, W = out.shape[0], out.shape[1]
    col0 = np.empty(W, np.int64)
    col1 = np.empty(W, np.int64)
    colf = np.empty(W, np.float32)
    for j in range(W):
        col0[j], col1[j], f = _source(j, w / W, w)
        colf[j] = f
    for r in nb.prange(H):
        i0, i1, fy = _source(r, h / H, h)
        fy = np.float32(fy)
        for j in range(W):
            a, b, fx = col0[j], col1[j], colf[j]
            for k in range(c):
                top = x[i0, a, k] + fx * (x[i0, b, k] - x[i0, a, k])
                bottom = x[i1, a, k] + fx * (x[i1, b, k] - x[i1, a, k])
                out[r, j, k] = top + fy * (bottom - top)
