"""Slow, obviously correct twins of somcolor's fast kernels.

Each function here does the same job as a numba or vectorized kernel in the
package, written the plainest way possible: padding with ``np.pad`` and slicing,
Python loops over codewords, one layer of a network at a time in float64. The
tests compare the fast code with these over edge cases.
"""

from __future__ import annotations

import numpy as np


def patches_at(L, flat_index, k):
    """Flattened k x k patches of ``L`` centred at flat pixel indices (symmetric borders)."""
    L = np.asarray(L, dtype=np.float32)
    h = k // 2
    padded = np.pad(L, h, mode="symmetric")
    W = L.shape[1]
    out = np.empty((len(flat_index), k * k), dtype=np.float32)
    for j, flat in enumerate(flat_index):
        r, c = divmod(int(flat), W)
        # Pixel (r, c) of L sits at (r + h, c + h) of the padded array.
        out[j] = padded[r : r + k, c : c + k].ravel()
    return out


def image_patches(L, k, row_start=0, row_stop=None):
    """The patch of every pixel in rows ``row_start:row_stop``, row-major."""
    L = np.asarray(L, dtype=np.float32)
    H, W = L.shape
    row_stop = H if row_stop is None else row_stop
    flat = [r * W + c for r in range(row_start, row_stop) for c in range(W)]
    return patches_at(L, np.array(flat, dtype=np.int64), k)


def nearest_code(X, codebook):
    """Index of the nearest codeword for each row of ``X``; the first one wins a tie."""
    X = np.asarray(X, dtype=np.float64)
    codebook = np.asarray(codebook, dtype=np.float64)
    best = np.zeros(len(X), dtype=np.intp)
    best_d = np.full(len(X), np.inf)
    for i, code in enumerate(codebook):
        d = np.sqrt(((X - code) ** 2).sum(axis=1))
        closer = d < best_d
        best[closer] = i
        best_d[closer] = d[closer]
    return best


def forward(X, mean, scale, coefs, intercepts, out_activation):
    """Class probabilities of a ReLU MLP, one sample and one unit at a time, in float64."""
    X = np.asarray(X, dtype=np.float64)
    out = []
    for x in X:
        h = [(float(x[i]) - float(mean[i])) / float(scale[i]) for i in range(len(x))]
        for layer, (W, b) in enumerate(zip(coefs, intercepts, strict=True)):
            z = [
                sum(h[i] * float(W[i, j]) for i in range(W.shape[0])) + float(b[j])
                for j in range(W.shape[1])
            ]
            h = [max(v, 0.0) for v in z] if layer < len(coefs) - 1 else z
        if out_activation == "logistic":
            p = 1.0 / (1.0 + np.exp(-h[0]))
            out.append([1.0 - p, p])
        else:
            top = max(h)
            e = [np.exp(v - top) for v in h]
            out.append([v / sum(e) for v in e])
    return np.array(out, dtype=np.float64)
