"""The reference for user hints: Levin, Lischinski & Weiss (2004), colorization by optimization.

No model at all: the chroma of the hinted pixels is spread over the image so that each
free pixel's chroma is the affinity-weighted mean of its 3x3 neighbours', the affinity
falling with the luminance difference. This follows the authors' released
``getColorExact.m``: for pixel ``r`` with luminance ``Y = L / 100`` and window values
``g`` (its 3x3 neighbourhood, clipped at the borders, itself included),

* ``sigma2 = 0.6 * var(g)``, at least ``-min_s (Y_s - Y_r)^2 / ln 0.01`` (so that the
  closest neighbour keeps at least 1% weight) and at least ``2e-6``;
* ``w_rs = exp(-(Y_s - Y_r)^2 / sigma2)`` over the 8 (or fewer) neighbours, normalised
  to sum to 1;
* ``U_r - sum_s w_rs U_s = 0`` for every free pixel, ``U_r = hint`` at every hinted one.

The system is not symmetric (``w_rs`` uses ``r``'s window); it is solved directly
(SuperLU), one factorisation for both chroma channels. Everything runs at a working
resolution and the chroma is brought to full size onto the full-resolution L, as the
automatic path does. With no hints the result is gray (zero chroma).

Reference: A. Levin, D. Lischinski, Y. Weiss, "Colorization using Optimization",
ACM SIGGRAPH 2004.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

#: The 8 neighbours of a pixel, as (row, column) offsets.
OFFSETS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)


def _shifted(Y: np.ndarray, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
    """``Y`` at ``(r + dy, c + dx)`` for every pixel ``(r, c)``, and where that is inside."""
    h, w = Y.shape
    out = np.zeros_like(Y)
    inside = np.zeros(Y.shape, dtype=bool)
    rs = slice(max(0, -dy), h - max(0, dy))
    cs = slice(max(0, -dx), w - max(0, dx))
    rt = slice(max(0, dy), h - max(0, -dy))
    ct = slice(max(0, dx), w - max(0, -dx))
    out[rs, cs] = Y[rt, ct]
    inside[rs, cs] = True
    return out, inside


def affinities(L: np.ndarray) -> sp.csr_matrix:
    """Levin's row-normalised affinity matrix ``W`` (``n x n``, ``n = h * w``) of an L image.

    Row ``r`` holds ``w_rs`` for the 8 neighbours ``s`` of pixel ``r`` (row-major
    indices); each row sums to 1.
    """
    Y = np.asarray(L, dtype=np.float64) / 100.0
    h, w = Y.shape
    n = h * w
    shifted = [_shifted(Y, dy, dx) for dy, dx in OFFSETS]
    count = 1.0 + sum(inside.astype(np.float64) for _, inside in shifted)
    total = Y + sum(np.where(inside, s, 0.0) for s, inside in shifted)
    mean = total / count
    var = (Y - mean) ** 2 + sum(np.where(inside, (s - mean) ** 2, 0.0) for s, inside in shifted)
    var /= count
    closest = np.min([np.where(inside, (s - Y) ** 2, np.inf) for s, inside in shifted], axis=0)
    sigma2 = np.maximum(0.6 * var, -closest / np.log(0.01))
    sigma2 = np.maximum(sigma2, 2e-6)
    weights = np.array(
        [np.where(inside, np.exp(-((s - Y) ** 2) / sigma2), 0.0) for s, inside in shifted]
    )
    weights /= weights.sum(axis=0)
    index = np.arange(n).reshape(h, w)
    rows, cols, vals = [], [], []
    for (dy, dx), (_, inside), wk in zip(OFFSETS, shifted, weights, strict=True):
        rows.append(index[inside])
        cols.append(index[inside] + dy * w + dx)
        vals.append(wk[inside])
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )


def system(L: np.ndarray, mask: np.ndarray) -> sp.csc_matrix:
    """Levin's matrix: ``I - W`` on the free rows, the identity on the hinted (``mask``) rows."""
    W = affinities(L)
    free = sp.diags((~np.asarray(mask, dtype=bool)).ravel().astype(np.float64))
    return (sp.identity(W.shape[0], format="csr") - free @ W).tocsc()


def colorize(L: np.ndarray, mask: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Levin's chroma ``(h, w, 2)`` float32 from hints: ``uv`` at the pixels where ``mask``.

    ``L`` is ``(h, w)`` in 0..100, ``mask`` ``(h, w)`` bool, ``uv`` ``(h, w, 2)`` (read
    only where ``mask``). No hinted pixel: zero chroma.

    >>> L = np.zeros((4, 6)); L[:, 3:] = 100.0        # a strong edge between columns 2 and 3
    >>> mask = np.zeros((4, 6), bool); mask[1, 0] = mask[1, 5] = True
    >>> uv = np.zeros((4, 6, 2)); uv[1, 0] = (50, 0); uv[1, 5] = (-50, 0)
    >>> out = colorize(L, mask, uv)
    >>> bool(np.all(out[:, :3, 0] > 49) and np.all(out[:, 3:, 0] < -49))
    True
    """
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    if not mask.any():
        return np.zeros((h, w, 2), np.float32)
    b = np.where(mask[..., None], np.asarray(uv, np.float64), 0.0).reshape(-1, 2)
    x = splu(system(L, mask)).solve(b)
    return x.reshape(h, w, 2).astype(np.float32)


def dense_colorize(L: np.ndarray, mask: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """:func:`colorize` with a dense matrix and ``numpy.linalg.solve`` (tiny images; tests)."""
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    A = system(L, mask).toarray()
    b = np.where(mask[..., None], np.asarray(uv, np.float64), 0.0).reshape(-1, 2)
    return np.linalg.solve(A, b).reshape(h, w, 2).astype(np.float32)
