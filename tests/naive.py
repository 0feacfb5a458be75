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


# ---- smoothing and resizing twins


def box_mean(x, r):
    """Mean over the (2r+1) x (2r+1) window of each pixel (first two axes), in float64.

    The image is padded by mirroring (``np.pad`` "symmetric", which mirrors again
    and again when ``r`` exceeds the image), then each window is summed by
    differences of cumulative sums, one axis after the other.
    """
    x = np.asarray(x, dtype=np.float64)
    k = 2 * r + 1
    rest = [(0, 0)] * (x.ndim - 2)
    padded = np.pad(x, [(r, r), (r, r), *rest], mode="symmetric")
    c = np.cumsum(np.pad(padded, [(1, 0), (0, 0), *rest]), axis=0)
    rows = c[k:] - c[:-k]
    c = np.cumsum(np.pad(rows, [(0, 0), (1, 0), *rest]), axis=1)
    return (c[:, k:] - c[:, :-k]) / (k * k)


def guided_coefficients(guide, src, r, eps, box=box_mean):
    """He et al.'s window-averaged coefficients ``(mean_a, mean_b)``, channel by channel."""
    g = np.asarray(guide, dtype=np.float64)
    p = np.asarray(src, dtype=np.float64)
    channels = [p] if p.ndim == 2 else [p[..., c] for c in range(p.shape[2])]
    mean_a, mean_b = [], []
    for pc in channels:
        mg, mp = box(g, r), box(pc, r)
        a = (box(g * pc, r) - mg * mp) / (box(g * g, r) - mg * mg + eps)
        b = mp - a * mg
        mean_a.append(box(a, r))
        mean_b.append(box(b, r))
    if p.ndim == 2:
        return mean_a[0], mean_b[0]
    return np.stack(mean_a, axis=2), np.stack(mean_b, axis=2)


def _bilinear_axis(n_in, n_out):
    """Rows (or columns) ``i0, i1`` and weight ``f`` of ``i1`` for each of ``n_out`` outputs.

    Output pixel ``i`` is centred at ``(i + 0.5) n_in / n_out - 0.5`` in input pixels
    (pixel areas aligned), mirrored back inside ``[0, n_in - 1]`` at the ends.
    """
    p = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    p = np.abs(p)
    p = np.where(p > n_in - 1, 2 * (n_in - 1) - p, p)
    i0 = np.floor(p).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, p - i0


def bilinear(x, shape):
    """Bilinear interpolation of ``(h, w[, C])`` to ``shape``: the four neighbours
    weighted by the products of the distances, in float64."""
    x = np.asarray(x, dtype=np.float64)
    i0, i1, fy = _bilinear_axis(x.shape[0], shape[0])
    j0, j1, fx = _bilinear_axis(x.shape[1], shape[1])
    fy = fy.reshape(-1, 1, *([1] * (x.ndim - 2)))
    fx = fx.reshape(1, -1, *([1] * (x.ndim - 2)))
    return (
        (1 - fy) * (1 - fx) * x[i0][:, j0]
        + (1 - fy) * fx * x[i0][:, j1]
        + fy * (1 - fx) * x[i1][:, j0]
        + fy * fx * x[i1][:, j1]
    )


def guided_rows(G, mean_a, mean_b, r0, r1, scale=1.0):
    """Rows ``r0:r1`` of ``bilinear(mean_a) * scale * G + bilinear(mean_b)`` at G's size."""
    G = np.asarray(G, dtype=np.float64)
    g = scale * G[r0:r1]
    if np.ndim(mean_a) == 3:
        g = g[..., None]
    a = bilinear(mean_a, G.shape)[r0:r1]
    b = bilinear(mean_b, G.shape)[r0:r1]
    return a * g + b


def downsample(x, shape):
    """Area average: each output pixel the mean of the input over the rectangle it
    covers, pixels cut by its edges weighted by their overlap, in float64."""
    x = np.asarray(x, dtype=np.float64)
    H, W = x.shape
    h, w = shape
    out = np.zeros((h, w))
    for i in range(h):
        top, bottom = i * H / h, (i + 1) * H / h
        for j in range(w):
            left, right = j * W / w, (j + 1) * W / w
            total = 0.0
            for k in range(int(top), min(H, int(np.ceil(bottom)))):
                dy = min(bottom, k + 1) - max(top, k)
                for m in range(int(left), min(W, int(np.ceil(right)))):
                    dx = min(right, m + 1) - max(left, m)
                    total += dy * dx * x[k, m]
            out[i, j] = total / ((bottom - top) * (right - left))
    return out
