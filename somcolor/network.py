"""The MLP's forward pass: one fused float32 numba kernel over plain weight arrays.

Inference needs only the trained network's arrays (``coefs``, ``intercepts`` and the
input standardization), not scikit-learn, so this module imports neither
scikit-learn nor minisom: :mod:`somcolor.classify` trains with scikit-learn and
predicts through :func:`forward`; :mod:`somcolor.predict` colorizes through the same
kernels (:func:`forward_packed`, and :mod:`somcolor.fused`, which applies the layers to
patches read straight from L) without importing the training code.

The kernels (``_``-prefixed) assume validated input; their slow twin is
``tests/naive.py``'s ``forward``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._threads import threads_for

#: Rows per tile of the forward kernel: its activations (features x rows, float32)
#: stay in the core's L1/L2 cache while every layer is applied to them.
_TILE = 128


@nb.njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy", inline="always")
def _dense_one(src, n_in, weights, w_at, n_out, j, o):
    """``o += W[:, j].T @ src[:n_in]``: one output, four inputs per pass over the tile."""
    k = 0
    while k + 4 <= n_in:
        w0 = weights[w_at + k * n_out + j]
        w1 = weights[w_at + (k + 1) * n_out + j]
        w2 = weights[w_at + (k + 2) * n_out + j]
        w3 = weights[w_at + (k + 3) * n_out + j]
        s0, s1, s2, s3 = src[k], src[k + 1], src[k + 2], src[k + 3]
        for t in range(_TILE):
            o[t] += w0 * s0[t] + w1 * s1[t] + w2 * s2[t] + w3 * s3[t]
        k += 4
    while k < n_in:
        w = weights[w_at + k * n_out + j]
        s = src[k]
        for t in range(_TILE):
            o[t] += w * s[t]
        k += 1


@nb.njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def _dense(src, n_in, weights, biases, w_at, b_at, n_out, relu, dst):
    """``dst[:n_out] = act(W.T @ src[:n_in] + b)`` on a tile stored features x rows.

    The loops over the tile's rows are innermost, contiguous and of constant length,
    so they vectorize. Two outputs share each pass over four inputs (half the loads
    of the inputs per multiply-add); every output still sums its inputs in the same
    order, so the result does not depend on that pairing.
    """
    for j in range(n_out):
        o = dst[j]
        bias = biases[b_at + j]
        for t in range(_TILE):
            o[t] = bias
    j = 0
    while j + 2 <= n_out:
        o, p = dst[j], dst[j + 1]
        k = 0
        while k + 4 <= n_in:
            at = w_at + k * n_out + j
            w0, v0 = weights[at], weights[at + 1]
            w1, v1 = weights[at + n_out], weights[at + n_out + 1]
            w2, v2 = weights[at + 2 * n_out], weights[at + 2 * n_out + 1]
            w3, v3 = weights[at + 3 * n_out], weights[at + 3 * n_out + 1]
            s0, s1, s2, s3 = src[k], src[k + 1], src[k + 2], src[k + 3]
            for t in range(_TILE):
                a0, a1, a2, a3 = s0[t], s1[t], s2[t], s3[t]
                o[t] += w0 * a0 + w1 * a1 + w2 * a2 + w3 * a3
                p[t] += v0 * a0 + v1 * a1 + v2 * a2 + v3 * a3
            k += 4
        while k < n_in:
            at = w_at + k * n_out + j
            w, v = weights[at], weights[at + 1]
            s = src[k]
            for t in range(_TILE):
                o[t] += w * s[t]
                p[t] += v * s[t]
            k += 1
        j += 2
    if j < n_out:
        _dense_one(src, n_in, weights, w_at, n_out, j, dst[j])
    if relu:
        for j in range(n_out):
            o = dst[j]
            for t in range(_TILE):
                o[t] = max(o[t], np.float32(0))


@nb.njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def _layers(a, b, weights, biases, sizes):
    """Every layer on a tile whose standardized inputs are in ``a``; ``b`` is scratch.

    The output ends in ``b`` for an odd number of layers, else in ``a``.
    """
    n_layers = sizes.shape[0] - 1
    w_at = 0
    b_at = 0
    for layer in range(n_layers):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        relu = layer < n_layers - 1
        if layer % 2 == 0:
            _dense(a, n_in, weights, biases, w_at, b_at, n_out, relu, b)
        else:
            _dense(b, n_in, weights, biases, w_at, b_at, n_out, relu, a)
        w_at += n_in * n_out
        b_at += n_out


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _output(h, t, n_out, logistic, row):
    """Row ``t`` of the last layer's tile ``h`` -> class probabilities in ``row``.

    Softmax, shifted by the row's maximum; a single logistic unit gives two columns.
    """
    if logistic:
        p = np.float32(1) / (np.float32(1) + np.exp(-h[0, t]))
        row[0] = np.float32(1) - p
        row[1] = p
        return
    top = h[0, t]
    for j in range(1, n_out):
        top = max(top, h[j, t])
    total = np.float32(0)
    for j in range(n_out):
        e = np.exp(h[j, t] - top)
        row[j] = e
        total += e
    for j in range(n_out):
        row[j] /= total


@nb.njit(cache=True, nogil=True, parallel=True, fastmath={"contract"}, error_model="numpy")
def _forward(X, mean, scale, weights, biases, sizes, logistic, out):
    """The fused float32 forward pass, a tile of rows at a time on every core.

    ``weights``/``biases`` hold the layers one after the other (each ``W`` row-major),
    ``sizes`` the layer widths from the input to the output. Inputs assumed validated.
    """
    n, n_features = X.shape
    n_layers = sizes.shape[0] - 1
    width = sizes.max()
    for tile in nb.prange((n + _TILE - 1) // _TILE):
        r0 = tile * _TILE
        m = min(n, r0 + _TILE) - r0
        a = np.zeros((width, _TILE), dtype=np.float32)
        b = np.zeros((width, _TILE), dtype=np.float32)
        for t in range(m):
            for k in range(n_features):
                a[k, t] = (np.float32(X[r0 + t, k]) - mean[k]) / scale[k]
        _layers(a, b, weights, biases, sizes)
        h = b if n_layers % 2 == 1 else a
        for t in range(m):
            _output(h, t, sizes[n_layers], logistic, out[r0 + t])


def forward(X, mean, scale, coefs, intercepts, out_activation, out=None) -> np.ndarray:
    """Class probabilities of a ReLU MLP for rows of ``X`` (inputs assumed validated).

    Standardizes ``X`` with ``mean``/``scale``, applies each layer with ReLU between
    layers, and ``softmax`` (or ``logistic`` for a single output unit, returned as
    two columns) at the end. Computes in float32, in one fused numba kernel over
    tiles of rows (no full-size intermediate activations), on every core; equal to
    the layer-by-layer numpy computation up to float32 rounding (the sums run in
    another order). Writes into ``out`` when given.
    """
    if out_activation not in ("softmax", "logistic"):
        raise ValueError(f"out_activation must be 'softmax' or 'logistic', got {out_activation!r}")
    X = np.asarray(X)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float32)
    X = np.ascontiguousarray(X)
    weights, biases, sizes = pack(coefs, intercepts)
    n_classes = 2 if out_activation == "logistic" else int(sizes[-1])
    if out is None:
        out = np.empty((len(X), n_classes), dtype=np.float32)
    return forward_packed(
        X,
        np.ascontiguousarray(np.broadcast_to(mean, X.shape[1:]), dtype=np.float32),
        np.ascontiguousarray(np.broadcast_to(scale, X.shape[1:]), dtype=np.float32),
        (weights, biases, sizes),
        out_activation == "logistic",
        out,
    )


def forward_packed(X, mean, scale, packed, logistic: bool, out) -> np.ndarray:
    """:func:`forward` on layers already packed (:func:`pack`), into ``out``.

    ``X`` is C-contiguous float32 or float64 ``(n, n_features)``, ``mean`` and ``scale``
    C-contiguous float32 ``(n_features,)``, ``out`` float32 ``(n, n_classes)``; a
    predictor packs its layers once and calls this per block. Inputs assumed validated.
    """
    weights, biases, sizes = packed
    with threads_for(work_items(len(X), sizes)):
        _forward(X, mean, scale, weights, biases, sizes, logistic, out)
    return out


def pack(coefs, intercepts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The layers as the kernels take them: ``(weights, biases, sizes)``.

    ``weights`` and ``biases`` are every layer's float32 ``W`` (row-major) and ``b``
    one after the other, ``sizes`` the layer widths from the input to the output.

    >>> w, b, sizes = pack([np.ones((3, 2)), np.ones((2, 4))], [np.zeros(2), np.zeros(4)])
    >>> w.shape, b.shape, sizes.tolist()
    ((14,), (6,), [3, 2, 4])
    """
    weights = np.concatenate([np.asarray(W, dtype=np.float32).ravel() for W in coefs])
    biases = np.concatenate([np.asarray(b, dtype=np.float32).ravel() for b in intercepts])
    sizes = np.array([np.shape(coefs[0])[0]] + [np.shape(W)[1] for W in coefs], dtype=np.int64)
    return weights, biases, sizes


def work_items(n_rows: int, sizes: np.ndarray) -> int:
    """Work items of ``n_rows`` rows for :func:`~somcolor._threads.threads_for`: about one
    per 500 multiply-adds of a row."""
    return n_rows * max(1, int(sizes[:-1] @ sizes[1:]) // 500)
