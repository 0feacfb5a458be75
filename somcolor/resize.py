"""Resizing between the full image and the working resolution a model predicts at.

Chroma is low-frequency: a model may predict it at a smaller working size
(:func:`working_shape`) and bring it back to the full-resolution luminance
(:func:`resample`, bilinear; enlarging float32 runs in a numba kernel).
:func:`downsample` shrinks a float32 image by area averaging, in time linear in
its pixels.
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


@nb.njit(cache=True, nogil=True)
def _columns(w, W):
    """For each of ``W`` output columns, the two of ``w`` input columns it interpolates
    and the weight of the second (:func:`_source` for every column, once)."""
    col0 = np.empty(W, np.int64)
    col1 = np.empty(W, np.int64)
    colf = np.empty(W, np.float32)
    for j in range(W):
        col0[j], col1[j], f = _source(j, w / W, w)
        colf[j] = f
    return col0, col1, colf


@nb.njit(cache=True, nogil=True, parallel=True)
def _enlarge(x, out):
    """Bilinear interpolation of ``x`` ``(h, w, c)`` into the larger ``out`` ``(H, W, c)``."""
    h, w, c = x.shape
    H, W = out.shape[0], out.shape[1]
    col0, col1, colf = _columns(w, W)
    for r in nb.prange(H):
        i0, i1, fy = _source(r, h / H, h)
        fy = np.float32(fy)
        for j in range(W):
            a, b, fx = col0[j], col1[j], colf[j]
            for k in range(c):
                top = x[i0, a, k] + fx * (x[i0, b, k] - x[i0, a, k])
                bottom = x[i1, a, k] + fx * (x[i1, b, k] - x[i1, a, k])
                out[r, j, k] = top + fy * (bottom - top)


def downsample(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Shrink a 2-D image to ``shape`` by area averaging (an anti-aliased box reduction).

    Output pixel ``(i, j)`` is the mean of the input over the rectangle it covers,
    rows ``[i H/h, (i+1) H/h)`` and columns ``[j W/w, (j+1) W/w)``, input pixels
    cut by its edges weighted by the fraction inside: the pixel-area alignment of
    :func:`resample` (output centres at ``(i + 0.5) H/h - 0.5``).

    Parameters
    ----------
    x : ndarray, shape (H, W)
        The image; converted to float32 (no copy when it is float32 already).
    shape : tuple of int
        ``(h, w)`` with ``1 <= h <= H`` and ``1 <= w <= W``.

    Returns
    -------
    ndarray, shape (h, w), float32
        The reduced image; ``x`` itself (as float32) when ``shape`` is its shape.

    Notes
    -----
    A numba kernel (:func:`_area_rows`) sums the few input rows of each output row
    into one float64 row, then the few columns of each output pixel: every input
    pixel is read at most twice, whatever the factor, and no full-size temporary
    is made.

    Examples
    --------
    >>> x = np.arange(16, dtype=np.float32).reshape(4, 4)
    >>> downsample(x, (2, 2))
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    >>> downsample(np.float32([[0, 3, 6]]), (1, 2))  # the middle pixel is split in two
    array([[1., 5.]], dtype=float32)
    """
    x = np.asarray(x, dtype=np.float32)
    h, w = int(shape[0]), int(shape[1])
    if x.ndim != 2:
        raise ValueError(f"downsample: got an array of shape {x.shape}, expected (H, W)")
    H, W = x.shape
    if not (1 <= h <= H and 1 <= w <= W):
        raise ValueError(
            f"downsample: got shape {(h, w)} for an image of {(H, W)}, expected a smaller one"
        )
    if (h, w) == (H, W):
        return x
    rows = _area_weights(H, h)
    cols = _area_weights(W, w)
    out = np.empty((h, w), dtype=np.float32)
    with threads_for(x.size):
        _area_rows(x, *rows, *cols, out)
    return out


def _area_weights(n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The input pixels and weights of each of ``m`` output pixels averaging ``n`` inputs.

    Returns ``(index, weight)``, both ``(m, K)``: output ``i`` is
    ``sum(weight[i] * x[index[i]])``. Coordinates are scaled by ``m`` so that the
    overlaps are exact integers: output ``i`` covers ``[i n, (i + 1) n)``, input
    ``k`` covers ``[k m, (k + 1) m)``. Rows are padded with zero weights.
    """
    lo = np.arange(m, dtype=np.int64)[:, None] * n
    k = lo // m + np.arange(n // m + 2, dtype=np.int64)
    overlap = np.minimum(lo + n, (k + 1) * m) - np.maximum(lo, k * m)
    weight = np.maximum(overlap, 0) / n
    return np.minimum(k, n - 1), weight


@nb.njit(cache=True, nogil=True, parallel=True)
def _area_rows(x, row_index, row_weight, col_index, col_weight, out):
    """Area average of ``x`` ``(H, W)`` into ``out`` ``(h, w)`` with the weights of
    :func:`_area_weights` for rows and columns (inputs assumed validated)."""
    h, w = out.shape
    W = x.shape[1]
    for i in nb.prange(h):
        acc = np.zeros(W, dtype=np.float64)
        for t in range(row_index.shape[1]):
            src, wt = row_index[i, t], row_weight[i, t]
            if wt > 0.0:
                for j in range(W):
                    acc[j] += wt * x[src, j]
        for j in range(w):
            s = 0.0
            for t in range(col_index.shape[1]):
                s += col_weight[j, t] * acc[col_index[j, t]]
            out[i, j] = s
