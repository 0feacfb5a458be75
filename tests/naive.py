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
