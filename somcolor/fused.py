"""The fused inference kernel: L patches -> network -> decoded UV, in one numba pass.

For a model whose only feature is the L patch (``FeatureSpec.patch_only``: the
paper's, and the bundled models), :func:`patch_uv` reads each tile of patches
straight from L into the forward kernel's tile (:mod:`somcolor.network`), applies
the network and decodes the probabilities to UV through ``classes``, so no feature
matrix and no probability array is ever built. :func:`rows_reached` says which rows
of an image a block of rows' patches read, so that
:class:`~somcolor.predict.Predictor` can compute the luminance of one block at a time.

The kernels (``_``-prefixed) assume validated input; their slow twin is
``tests/naive.py``'s patches, :mod:`somcolor._naive_reference`'s network and
:mod:`somcolor.decode`'s numpy decoders (``tests/test_predict.py`` compares them).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._threads import threads_for
from .network import _TILE, _layers, _output, work_items
from .patches import _column_map, _reflect


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _decode(row, mode, temperature, palette, uv):
    """Probabilities ``row`` -> UV in ``uv`` (2,); returns the most probable column.

    ``palette`` is the codebook of the classifier's columns (``codebook[classes]``,
    float32). ``mode`` is the decoder's :attr:`~somcolor.decode.Decoder.mode`: 0 the
    UV of the most probable column (argmax), 1 the expectation (mean), 2 the annealed
    mean, each computed as :mod:`somcolor.decode`'s function does.
    """
    n = row.shape[0]
    top = 0
    for j in range(1, n):
        if row[j] > row[top]:
            top = j
    if mode == 0:
        uv[0] = palette[top, 0]
        uv[1] = palette[top, 1]
        return top
    u = np.float32(0)
    v = np.float32(0)
    if mode == 1:
        for j in range(n):
            u += row[j] * palette[j, 0]
            v += row[j] * palette[j, 1]
        uv[0] = u
        uv[1] = v
        return top
    tiny = np.finfo(np.float32).tiny
    high = -np.inf
    for j in range(n):
        row[j] = np.log(max(row[j], tiny)) / temperature
        high = max(high, row[j])
    total = np.float32(0)
    for j in range(n):
        row[j] = np.exp(row[j] - high)
        total += row[j]
    for j in range(n):
        p = row[j] / total
        u += p * palette[j, 0]
        v += p * palette[j, 1]
    uv[0] = u
    uv[1] = v
    return top


@nb.njit(cache=True, nogil=True, parallel=True, fastmath={"contract"}, error_model="numpy")
def _patch_uv(
    L,
    row0,
    height,
    r0,
    r1,
    k,
    mean,
    scale,
    weights,
    biases,
    sizes,
    logistic,
    mode,
    temperature,
    palette,
    uv,
    top,
):
    """UV and the most probable column of every pixel in rows ``r0:r1``, from L patches.

    ``L`` holds rows ``row0:row0 + len(L)`` of an image ``height`` rows tall: every
    row the k x k patches of rows ``r0:r1`` reach (borders reflected as in
    :mod:`somcolor.patches`). Each tile of pixels is read from ``L`` into the forward
    kernel's tile (standardized as :func:`~somcolor.network.forward` does), goes
    through the network and is decoded; ``uv`` is ``((r1 - r0) * W, 2)`` float32,
    ``top`` ``((r1 - r0) * W,)``. The argmax decoder of a softmax network compares
    logits (where two probabilities tie in float32 it may pick the other of the two);
    the other decoders compute the probabilities as ``forward`` does. Inputs assumed
    validated.
    """
    h = k // 2
    W = L.shape[1]
    n = (r1 - r0) * W
    n_layers = sizes.shape[0] - 1
    width = sizes.max()
    n_classes = palette.shape[0]
    colmap = _column_map(W, k)
    for tile in nb.prange((n + _TILE - 1) // _TILE):
        p0 = tile * _TILE
        m = min(n, p0 + _TILE) - p0
        a = np.zeros((width, _TILE), dtype=np.float32)
        b = np.zeros((width, _TILE), dtype=np.float32)
        row = np.empty(n_classes, dtype=np.float32)
        # The tile's pixels, one run along an image row at a time: each patch element
        # is then a contiguous slice of an L row (vectorized), except near the borders.
        t0 = 0
        while t0 < m:
            r = r0 + (p0 + t0) // W
            c0 = (p0 + t0) - (r - r0) * W
            run = min(m - t0, W - c0)
            inner = c0 >= h and c0 + run + h <= W
            f = 0
            for dy in range(k):
                line = L[_reflect(r + dy - h, height) - row0]
                for dx in range(k):
                    mu, sd = mean[f], scale[f]
                    dst = a[f]
                    if inner:
                        src = line[c0 + dx - h : c0 + dx - h + run]
                        for j in range(run):
                            dst[t0 + j] = (src[j] - mu) / sd
                    else:
                        for j in range(run):
                            dst[t0 + j] = (line[colmap[c0 + j, dx]] - mu) / sd
                    f += 1
            t0 += run
        _layers(a, b, weights, biases, sizes)
        out = b if n_layers % 2 == 1 else a
        if mode == 0 and not logistic:
            # The most probable class is the largest logit: softmax is monotonic, so
            # its exponentials (a fifth of the time) are skipped.
            for t in range(m):
                best = 0
                for j in range(1, n_classes):
                    if out[j, t] > out[best, t]:
                        best = j
                top[p0 + t] = best
                uv[p0 + t, 0] = palette[best, 0]
                uv[p0 + t, 1] = palette[best, 1]
            continue
        for t in range(m):
            _output(out, t, sizes[n_layers], logistic, row)
            top[p0 + t] = _decode(row, mode, temperature, palette, uv[p0 + t])


def rows_reached(r0: int, r1: int, k: int, height: int) -> tuple[int, int]:
    """The rows ``lo:hi`` of an image that the k x k patches of rows ``r0:r1`` read.

    >>> rows_reached(0, 4, 5, 10), rows_reached(4, 6, 5, 10), rows_reached(8, 10, 5, 10)
    ((0, 6), (2, 8), (6, 10))
    """
    h = k // 2
    if r0 - h >= 0 and r1 + h <= height:
        return r0 - h, r1 + h
    i = np.arange(r0 - h, r1 + h) % (2 * height)
    rows = np.where(i >= height, 2 * height - 1 - i, i)
    return int(rows.min()), int(rows.max()) + 1


def patch_uv(L, row0, height, r0, r1, k, mean, scale, packed, logistic, mode, temperature, palette):
    """UV ``((r1 - r0) * W, 2)`` float32 and the most probable column (int32) of every
    pixel in rows ``r0:r1`` of an image ``height`` rows tall, of which ``L`` holds rows
    ``row0:row0 + len(L)`` (at least :func:`rows_reached`).

    ``packed`` is the network as :func:`~somcolor.network.pack` gives it, ``mode`` the
    decoder's :attr:`~somcolor.decode.Decoder.mode`, ``palette`` ``codebook[classes]``
    as float32. Inputs assumed validated.
    """
    weights, biases, sizes = packed
    n = (r1 - r0) * L.shape[1]
    uv = np.empty((n, 2), dtype=np.float32)
    top = np.empty(n, dtype=np.int32)
    with threads_for(work_items(n, sizes)):
        _patch_uv(
            np.ascontiguousarray(L, dtype=np.float32),
            row0,
            height,
            r0,
            r1,
            k,
            mean,
            scale,
            weights,
            biases,
            sizes,
            logistic,
            mode,
            np.float32(temperature),
            np.ascontiguousarray(palette, dtype=np.float32),
            uv,
            top,
        )
    return uv, top
