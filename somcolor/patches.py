"""Luminance patches: the k x k patch of L around a pixel, extracted by numba kernels.

Two uses, both through :mod:`somcolor.features` (which adds any wider context):

* training: :func:`sample_positions` draws N pixel positions of an image (seeded) and
  :func:`patches_at` returns their patches, so labels are read at the same positions
  (:func:`sample_patches` does both, for the experiments);
* inference: :func:`image_patches` returns the patch of every pixel of a block of
  rows, so an image of any size is processed in bounded memory. The fused kernel of
  :mod:`somcolor.fused` reads the same patches straight from L, with the same
  reflection (:func:`_reflect`).

Borders are handled by symmetric reflection (``... c b a | a b c ... x y z | z y x ...``,
numpy's ``mode="symmetric"``), so every pixel has a patch and the output keeps the
input's full size; the paper's code cropped the border instead. Reflection repeats
as often as needed, so a patch may be larger than the image.

The kernels (``_``-prefixed) assume validated input; each has a naive twin in
``tests/naive.py`` that the tests compare it with.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._threads import threads_for
from .exceptions import SomcolorError


@nb.njit(cache=True, inline="always")
def _reflect(i, n):
    """Symmetric reflection of index ``i`` into ``0..n-1`` (any ``i``, any ``n >= 1``)."""
    period = 2 * n
    i = i % period
    if i >= n:
        i = period - 1 - i
    return i


@nb.njit(cache=True, nogil=True)
def _patches_at(L, flat_index, k, out):
    """Fill ``out[j]`` with the flattened k x k patch of ``L`` centred at ``flat_index[j]``.

    The pixels are visited row by row (a counting sort of their rows), so the image
    is read from top to bottom instead of at random; interior patches are copied row
    by row without the reflection arithmetic. ``L`` and ``out`` are C-contiguous.
    """
    h = k // 2
    H, W = L.shape
    n = flat_index.shape[0]
    start = np.zeros(H + 1, dtype=np.int64)
    for j in range(n):
        start[flat_index[j] // W + 1] += 1
    for r in range(H):
        start[r + 1] += start[r]
    order = np.empty(n, dtype=np.int64)
    for j in range(n):
        r = flat_index[j] // W
        order[start[r]] = j
        start[r] += 1
    flat_L = L.ravel()
    flat_out = out.ravel()
    for j in order:
        r = flat_index[j] // W
        c = flat_index[j] - r * W
        if h <= r < H - h and h <= c < W - h:
            # Unsigned offsets into the flat arrays: no negative-index wraparound to test.
            src = np.uint64(flat_index[j] - h * W - h)
            dst = np.uint64(j * k * k)
            for _ in range(k):
                for dx in range(np.uint64(k)):
                    flat_out[dst + dx] = flat_L[src + dx]
                src += np.uint64(W)
                dst += np.uint64(k)
            continue
        m = 0
        for dy in range(-h, h + 1):
            y = _reflect(r + dy, H)
            for dx in range(-h, h + 1):
                out[j, m] = L[y, _reflect(c + dx, W)]
                m += 1


@nb.njit(cache=True, nogil=True)
def _column_map(W, k):
    """``colmap[c, dx]``: the column of L that element ``dx`` of a patch row centred on
    column ``c`` reads (reflected once, reused by every row of a block)."""
    h = k // 2
    colmap = np.empty((W, k), dtype=np.int64)
    for c in range(W):
        for dx in range(k):
            colmap[c, dx] = _reflect(c + dx - h, W)
    return colmap


@nb.njit(cache=True, nogil=True, parallel=True)
def _row_patches(L, row_start, row_stop, k, out):
    """Fill ``out`` with the patch of every pixel in rows ``row_start:row_stop`` (row-major)."""
    h = k // 2
    H, W = L.shape
    colmap = _column_map(W, k)
    for rr in nb.prange(row_stop - row_start):
        r = row_start + rr
        base = rr * W
        for dy in range(k):
            y = _reflect(r + dy - h, H)
            for c in range(W):
                for dx in range(k):
                    out[base + c, dy * k + dx] = L[y, colmap[c, dx]]


def _check_L(L) -> np.ndarray:
    L = np.asarray(L)
    if L.ndim != 2 or L.shape[0] < 1 or L.shape[1] < 1:
        raise SomcolorError(f"expected a 2-D luminance array, got shape {L.shape}")
    if not np.issubdtype(L.dtype, np.floating):
        raise SomcolorError(f"expected float luminance, got {L.dtype}")
    return np.ascontiguousarray(L, dtype=np.float32)


def check_patch_size(k) -> int:
    """Validate a patch size: a positive odd integer.

    >>> check_patch_size(5)
    5
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 or k % 2 == 0:
        raise SomcolorError(f"patch size must be a positive odd integer, got {k!r}")
    return int(k)


def patches_at(L: np.ndarray, flat_index: np.ndarray, k: int, out=None) -> np.ndarray:
    """Patches of ``L`` centred at the given flat (row-major) pixel indices.

    Returns float32 of shape ``(len(flat_index), k * k)``, written into ``out`` when
    given (a C-contiguous float32 array of that shape, e.g. rows of a larger dataset).

    >>> L = np.arange(9, dtype=np.float32).reshape(3, 3)
    >>> patches_at(L, np.array([4]), 3).reshape(3, 3).tolist()
    [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]
    """
    L = _check_L(L)
    k = check_patch_size(k)
    flat_index = np.asarray(flat_index, dtype=np.int64)
    if flat_index.size and (flat_index.min() < 0 or flat_index.max() >= L.size):
        raise SomcolorError(f"pixel index out of range for an image of shape {L.shape}")
    shape = (len(flat_index), k * k)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise SomcolorError(
            f"out must be C-contiguous float32 of shape {shape}, got {out.dtype} {out.shape}"
        )
    _patches_at(L, flat_index, k, out)
    return out


def sample_positions(shape: tuple[int, int], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct flat pixel indices drawn uniformly (all pixels, shuffled, if fewer)."""
    size = int(shape[0]) * int(shape[1])
    return rng.choice(size, size=min(n, size), replace=False)


def sample_patches(
    L: np.ndarray, k: int, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` pixels of ``L`` and return ``(patches, flat_index)``.

    ``patches`` is float32 ``(m, k*k)`` with ``m = min(n, L.size)``; ``flat_index``
    says where each patch is centred, so labels can be read at the same pixels.
    """
    index = sample_positions(np.shape(L), n, rng)
    return patches_at(L, index, k), index


def image_patches(L: np.ndarray, k: int, row_start: int = 0, row_stop: int | None = None):
    """The patch of every pixel in rows ``row_start:row_stop`` of ``L``, row-major.

    Returns float32 of shape ``((row_stop - row_start) * W, k * k)``.

    >>> image_patches(np.zeros((4, 6), np.float32), 3).shape
    (24, 9)
    """
    L = _check_L(L)
    k = check_patch_size(k)
    H, W = L.shape
    row_stop = H if row_stop is None else row_stop
    if not 0 <= row_start <= row_stop <= H:
        raise SomcolorError(f"row range {row_start}:{row_stop} outside an image of {H} rows")
    out = np.empty(((row_stop - row_start) * W, k * k), dtype=np.float32)
    with threads_for(len(out)):
        _row_patches(L, row_start, row_stop, k, out)
    return out
