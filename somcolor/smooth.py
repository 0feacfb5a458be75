"""Edge-aware chroma smoothing and resampling, after decoding.

Per-pixel predictions speckle (neighbouring pixels flip between codes). The guided
filter (He, Sun & Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013) smooths the
predicted chroma while following the edges of the luminance: inside a window the
output is a linear function of the guide L, so color stops where L jumps.
Chroma predicted at a working resolution is brought to full size by
:mod:`somcolor.resize` first.
"""

from __future__ import annotations

import numpy as np

# scipy.ndimage is imported where it is used: it takes 0.3 s to import, which
# colorizing without smoothing never needs.


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1) x (2r+1) window per pixel (first two axes), borders mirrored."""
    from scipy.ndimage import uniform_filter

    size = (2 * radius + 1, 2 * radius + 1) + (1,) * (x.ndim - 2)
    return uniform_filter(x, size=size, mode="reflect")


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Filter ``src`` ``(H, W[, C])`` with the gray ``guide`` ``(H, W)`` (He et al.).

    ``radius`` is the window half-width in pixels, ``eps`` the regularisation in
    squared guide units: larger ``eps`` smooths more across weak edges.

    >>> g = np.zeros((8, 8)); g[:, 4:] = 1.0          # an edge in the guide
    >>> s = np.zeros((8, 8)); s[:, 4:] = 1.0          # chroma that follows it
    >>> out = guided_filter(g, s + 0.1 * (np.arange(8) % 2), radius=2, eps=1e-4)
    >>> bool(abs(out[:, :4].mean() - 0.05) < 0.03 and abs(out[:, 4:].mean() - 1.05) < 0.03)
    True
    """
    if radius < 1:
        return src
    dtype = np.result_type(src.dtype, np.float32)
    g = np.asarray(guide, dtype=dtype)
    p = np.asarray(src, dtype=dtype)
    g_ = g[..., None] if p.ndim == 3 else g
    mean_g = _box(g, radius)
    var_g = _box(g * g, radius) - mean_g * mean_g
    mean_g_ = mean_g[..., None] if p.ndim == 3 else mean_g
    var_g_ = var_g[..., None] if p.ndim == 3 else var_g
    mean_p = _box(p, radius)
    cov_gp = _box(g_ * p, radius) - mean_g_ * mean_p
    a = cov_gp / (var_g_ + eps)
    b = mean_p - a * mean_g_
    return (_box(a, radius) * g_ + _box(b, radius)).astype(dtype, copy=False)
