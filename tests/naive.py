"""Slow, obviously correct twins of somcolor's fast kernels, and the benchmark's reference.

Each function here does the same job as a numba or vectorized kernel in the
package, written the plainest way possible, the way the paper's published code goes
about it: Python loops build each patch element by element, a per-pixel Python loop
over the codewords finds a pixel's SOM label, and the network predicts on all rows at
once, layer by layer in float64 (as scikit-learn's ``MLPClassifier`` would); colors
go through scikit-image. Borders are reflected as somcolor does, so every function
gives somcolor's result (the network and the color conversions up to float rounding).

The tests compare the fast code with these over edge cases, and the benchmark
(``python -m experiments.bench``) times somcolor against them on the same inputs.
"""

from __future__ import annotations

import math

import numpy as np


def rgb_to_luv(rgb: np.ndarray) -> np.ndarray:
    """sRGB in 0..1 -> CIELUV with scikit-image (float64)."""
    from skimage import color

    return color.rgb2luv(np.asarray(rgb, dtype=np.float64), channel_axis=-1)


def patches_at(L: np.ndarray, flat_index, k: int) -> np.ndarray:
    """The flattened k x k patch around each pixel, built with Python loops.

    Borders by symmetric reflection (the image is padded once, then each patch
    element is read by index). Returns float32 ``(len(flat_index), k * k)``.
    """
    h = k // 2
    padded = np.pad(np.asarray(L, dtype=np.float32), h, mode="symmetric")
    width = np.shape(L)[1]
    rows = []
    for flat in flat_index:
        r, c = divmod(int(flat), width)
        # Pixel (r, c) of L sits at (r + h, c + h) of the padded array: its patch starts at (r, c).
        patch = []
        for dy in range(k):
            for dx in range(k):
                patch.append(padded[r + dy, c + dx])
        rows.append(patch)
    return np.array(rows, dtype=np.float32).reshape(len(rows), k * k)


def image_patches(L, k, row_start=0, row_stop=None):
    """The patch of every pixel in rows ``row_start:row_stop``, row-major."""
    L = np.asarray(L, dtype=np.float32)
    H, W = L.shape
    row_stop = H if row_stop is None else row_stop
    flat = [r * W + c for r in range(row_start, row_stop) for c in range(W)]
    return patches_at(L, np.array(flat, dtype=np.int64), k)


def nearest_code(X: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """The SOM label of each row: a Python loop over the codewords, per row.

    Squared Euclidean distances in float64, summed in feature order; the first
    codeword wins a tie.
    """
    codes = [[float(v) for v in code] for code in np.asarray(codebook, dtype=np.float64)]
    labels = np.empty(len(X), dtype=np.intp)
    for i, x in enumerate(np.asarray(X, dtype=np.float64).tolist()):
        best, best_d = 0, np.inf
        for j, code in enumerate(codes):
            d = 0.0
            for a, b in zip(x, code, strict=True):
                d += (a - b) ** 2
            if d < best_d:
                best, best_d = j, d
        labels[i] = best
    return labels


def forward(X, mean, scale, coefs, intercepts, out_activation) -> np.ndarray:
    """Class probabilities of a ReLU MLP on all rows at once, layer by layer, in float64."""
    h = (np.asarray(X, dtype=np.float64) - mean) / scale
    for i, (W, b) in enumerate(zip(coefs, intercepts, strict=True)):
        h = h @ np.asarray(W, dtype=np.float64) + b
        if i < len(coefs) - 1:
            h = np.maximum(h, 0.0)
    if out_activation == "logistic":
        p = 1.0 / (1.0 + np.exp(-h[:, 0]))
        return np.stack([1.0 - p, p], axis=1)
    e = np.exp(h - h.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def colorize(model, image: np.ndarray, *, return_codes: bool = False):
    """Colorize a uint8 gray or RGB image with a fitted :class:`~somcolor.Colorizer`.

    Only the paper's model is supported: the fine L patch as the only feature,
    argmax decoding, full resolution, no smoothing.
    """
    from skimage import color

    if (
        not model.feature_spec.patch_only
        or model.decoder != "argmax"
        or model.work_size
        or model.smooth_radius > 0
    ):
        raise ValueError("the naive reference colorizes only with the paper's model")
    img = np.asarray(image)
    rgb = img / 255.0 if img.ndim == 3 else np.repeat((img / 255.0)[..., None], 3, axis=2)
    L = rgb_to_luv(rgb[..., :3])[..., 0]
    H, W = L.shape
    X = patches_at(L, range(H * W), model.patch_size)
    c, q = model.classifier_, model.quantizer_
    proba = forward(X, c.mean_, c.scale_, c.coefs_, c.intercepts_, c.out_activation_)
    codes = c.classes_[np.argmax(proba, axis=1)]
    uv = q.codebook_[codes].reshape(H, W, 2)
    out = color.luv2rgb(np.concatenate([L[..., None], uv], axis=-1), channel_axis=-1)
    out = (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return (out, codes.reshape(H, W)) if return_codes else out


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


def nearest_likeness(root, L, root_ref, L_ref, sigma, l_sigma):
    """The reference match's likeness (somcolor.adapt.ReferenceMatch.weights), in
    float64 loops: for each pixel, the largest over the reference pixels of
    ``exp(-hell2 / (2 sigma^2) - (L - L_ref)^2 / (2 l_sigma^2))``, ``hell2`` the squared
    Hellinger distance ``2 - 2 sum sqrt(p q)`` clipped at 0."""
    out = np.zeros(len(L))
    for i in range(len(L)):
        best = 0.0
        for j in range(len(L_ref)):
            hell2 = max(0.0, 2.0 - 2.0 * float(np.dot(root[i], root_ref[j])))
            d = float(L[i]) - float(L_ref[j])
            best = max(best, math.exp(-hell2 / (2 * sigma**2) - d * d / (2 * l_sigma**2)))
        out[i] = best
    return out
