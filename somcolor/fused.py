"""The fused inference kernels: features -> network -> decoded UV, in one numba pass.

Each kernel writes a tile of pixels' features straight into the forward kernel's
tile (:mod:`somcolor.network`), applies the network and decodes the probabilities
to UV through ``classes``, so no feature matrix and no probability array is built:

* :func:`patch_uv`, for a model whose only feature is the L patch
  (``FeatureSpec.patch_only``: the paper's configuration and the bundled ``fast``
  model); :func:`rows_reached` says which rows of an image a block of rows' patches
  read, so that :class:`~somcolor.predict.Predictor` can compute the luminance of one
  block at a time;
* :func:`context_uv`, for context models (coarse scales, position, image
  statistics: the bundled ``default``): each pixel's k x k L patch, its m x m patch of
  every coarse level (read straight from the levels, around the coarse pixel covering
  the fine pixel's centre, borders reflected as in :mod:`somcolor.patches`), its
  relative position and the image's statistics.

The kernels (``_``-prefixed) assume validated input. Their slow twins: for
:func:`patch_uv`, ``tests/naive.py``'s patches and network with
:mod:`somcolor.decode`'s numpy decoders (``tests/test_predict.py``); for
:func:`context_uv`, the unfused path, :func:`~somcolor.features.image_features` +
:func:`~somcolor.network.forward` + the decoders (``tests/test_fused_context.py``).
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

from ._threads import SERIAL_BELOW, single_blas, threads_for
from .network import _TILE, _layers, _output, work_items
from .patches import _reflect


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _decode(row, mode, temperature, palette, uv):
    """Probabilities ``row`` -> UV in ``uv`` (2,); returns the most probable column.

    ``palette`` is the codebook of the classifier's columns (``codebook[classes]``,
    float32). ``mode`` is the decoder's :attr:`~somcolor.decode.Decoder.mode`: 0 the
    UV of the most probable column (argmax), 1 the expectation (mean), 2 the annealed
    mean, each computed as :mod:`somcolor.decode`'s function does.

    Every kernel that calls it has the same ``fastmath`` and ``error_model``: numba
    compiles (and caches) a callee once, with its first caller's, so callers with other
    flags would make the outputs depend on which kernel a process compiled first.
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
    for tile in nb.prange((n + _TILE - 1) // _TILE):
        p0 = tile * _TILE
        m = min(n, p0 + _TILE) - p0
        a = np.zeros((width, _TILE), dtype=np.float32)
        b = np.zeros((width, _TILE), dtype=np.float32)
        row = np.empty(n_classes, dtype=np.float32)
        # The tile's pixels, one run along an image row at a time: each patch element
        # is then a contiguous slice of an L row (vectorized), except near the borders
        # (no per-column table: memory stays the tile's whatever the image's width).
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
                        # Columns c0 + j + dx - h: reflected before 0 (j < lo) and from
                        # W on (j >= hi), a slice in between.
                        lo = min(max(h - dx - c0, 0), run)
                        hi = min(max(W + h - dx - c0, lo), run)
                        for j in range(lo):
                            dst[t0 + j] = (line[_reflect(c0 + j + dx - h, W)] - mu) / sd
                        for j in range(lo, hi):
                            dst[t0 + j] = (line[c0 + j + dx - h] - mu) / sd
                        for j in range(hi, run):
                            dst[t0 + j] = (line[_reflect(c0 + j + dx - h, W)] - mu) / sd
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


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _context_maps(W, k, m, level_shapes):
    """The column maps of :func:`_context_features`, reflected once per image: patch
    column ``dx`` of fine column ``c`` is ``colmap[dx, c]`` in L and ``coarse[l, dx, c]``
    in level ``l``; ``column[c]`` is the column's relative position. A run of pixels
    along a row reads contiguous entries of them."""
    h = k // 2
    hm = m // 2
    n_levels = level_shapes.shape[0]
    colmap = np.empty((k, W), dtype=np.uint64)
    for dx in range(k):
        for c in range(W):
            colmap[dx, c] = _reflect(c + dx - h, W)
    coarse = np.empty((n_levels, m, W), dtype=np.uint64)
    for lv in range(n_levels):
        lw = level_shapes[lv, 1]
        for c in range(W):
            cc = min(np.int64((c + 0.5) * lw / W), lw - 1)
            for dx in range(m):
                coarse[lv, dx, c] = _reflect(cc + dx - hm, lw)
    column = np.empty(W, dtype=np.float32)
    for c in range(W):
        column[c] = c / max(W - 1, 1)
    return colmap, coarse, column


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _context_features(
    L,
    r0,
    p0,
    size,
    k,
    m,
    level_data,
    level_shapes,
    level_starts,
    position,
    stats,
    mean,
    scale,
    colmap,
    coarse,
    column,
    a,
):
    """The standardized features of pixels ``p0:p0 + size`` of rows ``r0:`` of ``L``
    (counted row-major from row ``r0``) into ``a[:, :size]`` (features x pixels: each
    feature a contiguous run; ``a[:, :size].T`` is the pixels' feature matrix).

    A pixel's features, in :func:`~somcolor.features.image_features`'s order: its
    k x k patch of ``L``; for each coarse level ``l`` (``level_shapes[l]`` = ``(h, w)``,
    stored row-major in ``level_data`` from ``level_starts[l]``) the m x m patch
    around the coarse pixel covering the fine pixel's centre; with ``position`` its
    row and column over ``H - 1`` and ``W - 1``; then ``stats`` (empty, or the image's
    L mean and std). Borders are reflected (``colmap``, ``coarse`` and ``column`` from
    :func:`_context_maps`), then standardized as :func:`~somcolor.network.forward`
    does. Inputs assumed validated.
    """
    H, W = L.shape
    h = k // 2
    hm = m // 2
    n_levels = level_shapes.shape[0]
    n_stats = stats.shape[0]
    n_features = a.shape[0]
    # The tile's raw features, one run of pixels along an image row at a time:
    # every feature of the run is read from one row of L or of a level (the
    # column maps are unsigned, so the reads need no negative-index test).
    t0 = 0
    while t0 < size:
        r = r0 + (p0 + t0) // W
        c0 = (p0 + t0) - (r - r0) * W
        run = min(size - t0, W - c0)
        inner = c0 >= h and c0 + run + h <= W
        f = 0
        for dy in range(k):
            line = L[_reflect(r + dy - h, H)]
            for dx in range(k):
                dst = a[f, t0 : t0 + run]
                if inner:
                    dst[:] = line[c0 + dx - h : c0 + dx - h + run]
                else:
                    cols = colmap[dx, c0 : c0 + run]
                    for j in range(run):
                        dst[j] = line[cols[j]]
                f += 1
        for lv in range(n_levels):
            lh, lw = level_shapes[lv, 0], level_shapes[lv, 1]
            cr = min(np.int64((r + 0.5) * lh / H), lh - 1)
            for dy in range(m):
                at = level_starts[lv] + _reflect(cr + dy - hm, lh) * lw
                line = level_data[at : at + lw]
                for dx in range(m):
                    dst = a[f, t0 : t0 + run]
                    cols = coarse[lv, dx, c0 : c0 + run]
                    for j in range(run):
                        dst[j] = line[cols[j]]
                    f += 1
        if position:
            a[f, t0 : t0 + run] = np.float32(r / max(H - 1, 1))
            a[f + 1, t0 : t0 + run] = column[c0 : c0 + run]
            f += 2
        for s in range(n_stats):
            a[f, t0 : t0 + run] = stats[s]
            f += 1
        t0 += run
    for f in range(n_features):
        mu, sd = mean[f], scale[f]
        src = a[f]
        for t in range(size):
            src[t] = (src[t] - mu) / sd


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _bias_relu(h, size, bias, relu):
    """``h[:size] += bias``, then ``max(h, 0)`` if ``relu``, in place."""
    n_out = h.shape[1]
    for t in range(size):
        row = h[t]
        for j in range(n_out):
            x = row[j] + bias[j]
            row[j] = max(x, np.float32(0)) if relu else x


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _shift_logits(z, size, inverse_temperature, shifted, top, p0):
    """Each softmax row of logits ``z[:size]`` -> its largest logit's column in
    ``top[p0:]`` and ``(z - max) / T`` in ``shifted`` (``exp`` of which is the
    probabilities to the power ``1 / T``, up to the row's sum)."""
    n_classes = z.shape[1]
    for t in range(size):
        row = z[t]
        best = 0
        high = row[0]
        for j in range(1, n_classes):
            if row[j] > high:
                high = row[j]
                best = j
        top[p0 + t] = best
        out = shifted[t]
        for j in range(n_classes):
            out[j] = (row[j] - high) * inverse_temperature


@nb.njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def _decode_logistic(z, size, mode, temperature, palette, uv, top, p0):
    """A single logistic unit's rows ``z[:size, 0]`` -> two columns' probabilities,
    decoded by :func:`_decode` into ``uv[p0:]`` and ``top[p0:]``."""
    row = np.empty(2, dtype=np.float32)
    for t in range(size):
        p = np.float32(1) / (np.float32(1) + np.exp(-z[t, 0]))
        row[0] = np.float32(1) - p
        row[1] = p
        top[p0 + t] = _decode(row, mode, temperature, palette, uv[p0 + t])


#: Pixels per tile of :func:`context_uv`: a tile's features and activations (about 1.3 kB
#: a pixel for the default's 101 -> 64 -> 64 -> 100 network) stay in a core's L2 cache
#: while every layer is applied to them as one float32 matrix product.
CONTEXT_TILE = 1024


class _Tiles:
    """Per-thread scratch of :func:`context_uv` (reused across tiles and calls)."""

    _local = threading.local()

    @classmethod
    def get(cls, n_features: int, widths: tuple[int, ...]) -> dict:
        key = (n_features, widths)
        cache = getattr(cls._local, "cache", None)
        if cache is None or cache["key"] != key:
            cache = {
                "key": key,
                "a": np.zeros((n_features, CONTEXT_TILE), dtype=np.float32),
                "h": [np.empty((CONTEXT_TILE, w), dtype=np.float32) for w in widths],
                "shifted": np.empty((CONTEXT_TILE, widths[-1]), dtype=np.float32),
            }
            cls._local.cache = cache
        return cache


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The threads that share :func:`context_uv`'s tiles with its caller (one per numba
    thread beyond the caller's)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            helpers = max(1, nb.config.NUMBA_NUM_THREADS - 1)
            _POOL = ThreadPoolExecutor(helpers, "somcolor-tiles")
        return _POOL


def context_uv(
    L,
    spec,
    levels,
    stats,
    mean,
    scale,
    weights,
    biases,
    sizes,
    logistic: bool,
    mode: int,
    temperature: float,
    palette,
    r0: int = 0,
    r1: int | None = None,
    proba: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """UV and the most probable column of rows ``r0:r1`` of a working-resolution ``L``.

    The pixels go a tile of :data:`CONTEXT_TILE` at a time: their features are gathered
    (:func:`_context_features`), each layer is one float32 matrix product (BLAS, one
    thread per tile, the tiles shared among the cores), and the logits are decoded; so
    memory is bounded by the tile, not the image. A softmax network is decoded from its
    logits, equal to decoding its probabilities up to float32 rounding (the most
    probable column is the largest logit: where two probabilities tie in float32 it may
    pick the other of the two; the annealed mean's ``p ** (1 / T)``, renormalised, is
    the softmax of the logits over T).

    Parameters
    ----------
    L : float32 ndarray of shape (H, W)
        The whole image's luminance (the patches of rows ``r0:r1`` reach beyond them).
    spec : FeatureSpec
        The model's features.
    levels : sequence of float32 ndarrays
        ``L`` downsampled by each of ``spec.scales`` (``_Prepared.levels``).
    stats : float32 ndarray of shape (2,), or None
        The image's L mean and std when ``spec.image_stats``.
    mean, scale : float32 ndarrays of shape (spec.n_features,)
        The network's input standardization.
    weights, biases, sizes : ndarrays
        The layers, as :func:`~somcolor.network.pack` gives them.
    logistic : bool
        Whether the output is a single logistic unit (else softmax).
    mode : int
        The decoder: 0 argmax, 1 mean, 2 annealed mean.
    temperature : float
        The annealed mean's temperature.
    palette : float32 ndarray of shape (n_classes, 2)
        The UV of each column (``codebook[classes]``).
    r0, r1 : int
        The rows to colorize (``r1`` None: to the last row).
    proba : float32 ndarray of shape ((r1 - r0) * W, n_classes), optional
        Filled with the code probabilities (softmax networks), as
        :func:`~somcolor.network.forward` gives them up to float32 rounding.

    Returns
    -------
    uv : float32 ndarray of shape ((r1 - r0) * W, 2)
    top : int64 ndarray of shape ((r1 - r0) * W,)
        The most probable column of each pixel.

    Inputs assumed validated (the model's arrays chain, ``levels`` match ``spec``).
    """
    L = np.ascontiguousarray(L, dtype=np.float32)
    H, W = L.shape
    r1 = H if r1 is None else r1
    levels = [np.ascontiguousarray(level, dtype=np.float32) for level in levels]
    level_shapes = np.array([level.shape for level in levels], dtype=np.int64).reshape(-1, 2)
    level_starts = np.zeros(len(levels), dtype=np.int64)
    level_starts[1:] = np.cumsum([level.size for level in levels])[:-1]
    level_data = (
        np.concatenate([level.ravel() for level in levels])
        if levels
        else np.empty(0, dtype=np.float32)
    )
    stats = (
        np.asarray(stats, dtype=np.float32) if spec.image_stats else np.empty(0, dtype=np.float32)
    )
    k, m = spec.patch_size, spec.scale_patch_size
    colmap, coarse, column = _context_maps(W, k, m, level_shapes)
    mean = np.ascontiguousarray(mean, dtype=np.float32)
    scale = np.ascontiguousarray(scale, dtype=np.float32)
    sizes = [int(s) for s in sizes]
    layers, w_at, b_at = [], 0, 0
    for n_in, n_out in itertools.pairwise(sizes):
        W_layer = np.asarray(weights[w_at : w_at + n_in * n_out], np.float32)
        layers.append(
            (W_layer.reshape(n_in, n_out), np.asarray(biases[b_at : b_at + n_out], np.float32))
        )
        w_at += n_in * n_out
        b_at += n_out
    palette = np.ascontiguousarray(palette, dtype=np.float32)
    palette_one = np.ascontiguousarray(np.hstack([palette, np.ones((len(palette), 1), np.float32)]))
    inverse_temperature = np.float32(1 / temperature if mode == 2 else 1)
    n = (r1 - r0) * W
    uv = np.empty((n, 2), dtype=np.float32)
    top = np.empty(n, dtype=np.int64)

    def tile(p0: int) -> None:
        size = min(n, p0 + CONTEXT_TILE) - p0
        scratch = _Tiles.get(sizes[0], tuple(sizes[1:]))
        a = scratch["a"]
        _context_features(
            L,
            r0,
            p0,
            size,
            k,
            m,
            level_data,
            level_shapes,
            level_starts,
            bool(spec.position),
            stats,
            mean,
            scale,
            colmap,
            coarse,
            column,
            a,
        )
        x = a[:, :size].T  # the first product reads the transposed tile as fast
        for i, (W_layer, b) in enumerate(layers):
            h = scratch["h"][i][:size]
            np.matmul(x, W_layer, out=h)
            _bias_relu(h, size, b, i < len(layers) - 1)
            x = h
        if logistic:
            _decode_logistic(x, size, mode, np.float32(temperature), palette, uv, top, p0)
            return
        # exp(shifted) @ [palette | 1]: the decoded UV's numerator and denominator.
        e = scratch["shifted"][:size] if proba is None else proba[p0 : p0 + size]
        _shift_logits(x, size, inverse_temperature, e, top, p0)
        if mode != 0:
            np.exp(e, out=e)
            sums = e @ palette_one
            uv[p0 : p0 + size] = sums[:, :2] / sums[:, 2:]
        else:
            uv[p0 : p0 + size] = palette[top[p0 : p0 + size]]
        if proba is None:
            return
        if mode == 1:  # the probabilities are e over its sum
            e /= sums[:, 2:]
            return
        if mode == 2:  # e is p ** (1 / T): the logits shifted again, at T = 1
            _shift_logits(x, size, np.float32(1), e, top, p0)
        np.exp(e, out=e)  # (mode 0: e is the shifted logits, not yet exponentiated)
        e /= e.sum(axis=1, keepdims=True)

    starts = range(0, n, CONTEXT_TILE)
    threads = min(len(starts), nb.get_num_threads())
    if work_items(n, np.asarray(sizes)) < SERIAL_BELOW:
        threads = 1
    claimed = itertools.count()  # next() on it is atomic under the GIL

    def share() -> None:  # the next unclaimed tile, until none is left
        i = next(claimed)
        while i < len(starts):
            tile(starts[i])
            i = next(claimed)

    with single_blas():
        # A helper that finds no core free claims fewer tiles: no one waits for it
        # beyond the tile it is on. Each tile's result does not depend on who does it.
        others = [_pool().submit(share) for _ in range(1, threads)]
        share()
        for future in others:
            future.result()
    return uv, top
