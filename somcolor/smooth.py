"""Edge-aware chroma smoothing and upsampling, after decoding.

Per-pixel predictions speckle (neighbouring pixels flip between codes). The guided
filter (He, Sun & Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013) smooths the
predicted chroma while following the edges of the luminance: inside a window the
output is a linear function of the guide L, so color stops where L jumps.

Two ways to use it:

- :func:`guided_filter` smooths chroma already at the size of its guide (chroma
  predicted at a working resolution is brought to full size by
  :mod:`somcolor.resize` first);
- the fast guided filter (He & Sun, "Fast Guided Filter", arXiv:1505.00996, 2015)
  fits the linear coefficients at the working resolution
  (:func:`guided_coefficients`) and applies them to the full-resolution guide a
  block of rows at a time (:func:`guided_rows`; :func:`guided_upsample` does the
  whole image), which both upsamples and smooths.

Every window mean is a :func:`box_mean`: running sums in a numba kernel, so the
cost per pixel does not depend on the radius.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._threads import threads_for
from .resize import _columns, _source

#: Columns per task of the vertical box pass: a block of columns shares one
#: running-sum row, read and written contiguously.
_COLUMN_BLOCK = 256


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the ``(2r+1) x (2r+1)`` window of each pixel, borders mirrored.

    The same as ``scipy.ndimage.uniform_filter(x, size=(2r+1, 2r+1[, 1]),
    mode="reflect")``, bit for bit when ``radius`` is below both sides of the image,
    in time linear in the pixels whatever the radius.

    Parameters
    ----------
    x : ndarray, shape (H, W) or (H, W, C)
        The image; channels are averaged separately. Kept float32 or float64,
        other types become float64.
    radius : int
        Window half-width in pixels, ``>= 0``; it may exceed the image.

    Returns
    -------
    ndarray
        A new array of ``x``'s shape and (floating) dtype.

    Notes
    -----
    Outside the image an axis of ``n`` pixels is mirrored about its ends
    (half-sample symmetric, ``... b a | a b c | c b a ...``), repeatedly, so the
    extended axis is periodic with period ``2n``. A window wider than the axis
    covers ``q`` whole periods plus ``rem < 2n`` positions: its sum is ``q`` times
    twice the axis sum plus the ``rem`` mirrored values, found in ``O(n)``. Each
    following window adds one value and drops one. The axes are filtered one after
    the other (axis 0, then axis 1), each with a float64 running sum divided by the
    window size and rounded to ``x``'s dtype, as scipy does; an axis of one pixel is
    left as it is (its mirrored extension is constant).

    Examples
    --------
    >>> box_mean(np.float32([[0, 3, 6]]), 1)  # windows (0 0 3), (0 3 6), (3 6 6)
    array([[1., 3., 5.]], dtype=float32)
    >>> box_mean(np.float32([[0, 3, 6]]), 1000).round(2)  # ~ the mean of the whole axis
    array([[3., 3., 3.]], dtype=float32)
    """
    x = np.asarray(x)
    if x.ndim not in (2, 3):
        raise ValueError(f"box_mean: got an array of shape {x.shape}, expected (H, W) or (H, W, C)")
    if radius < 0:
        raise ValueError(f"box_mean: got radius {radius}, expected >= 0")
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    x3 = np.ascontiguousarray(x.reshape(*x.shape[:2], -1), dtype=dtype)
    out = np.empty_like(x3)
    if radius == 0:
        out[...] = x3
        return out.reshape(x.shape)
    H, W, C = x3.shape
    # An axis of one pixel mirrors to a constant: its mean is the pixel, exactly.
    with threads_for(x3.size):
        if H > 1:
            _box_columns(x3.reshape(H, W * C), int(radius), out.reshape(H, W * C))
        else:
            out[...] = x3
        if W > 1:
            _box_rows(out, int(radius))
    return out.reshape(x.shape)


@nb.njit(cache=True, inline="always")
def _mirror(k, n):
    """Where position ``k`` of an axis of ``n`` mirrored at both ends (period ``2n``) reads."""
    if 0 <= k < n:  # the common cases first: a modulo costs ~20 additions
        return k
    if -n <= k < 0:
        return -1 - k
    m = k % (2 * n)
    if m < 0:
        m += 2 * n
    return m if m < n else 2 * n - 1 - m


@nb.njit(cache=True, nogil=True, parallel=True)
def _box_columns(x, r, out):
    """Mean of the ``2r+1`` mirrored rows around each row of ``x`` ``(n, m)`` into ``out``."""
    n, m = x.shape
    size = 2 * r + 1
    q, rem = divmod(size, 2 * n)
    for block in nb.prange((m + _COLUMN_BLOCK - 1) // _COLUMN_BLOCK):
        c0 = block * _COLUMN_BLOCK
        c1 = min(c0 + _COLUMN_BLOCK, m)
        acc = np.zeros(c1 - c0, dtype=np.float64)
        if q > 0:  # whole periods of the mirrored axis: twice its sum, q times
            for i in range(n):
                for c in range(c0, c1):
                    acc[c - c0] += x[i, c]
            for c in range(c1 - c0):
                acc[c] *= 2 * q
        for k in range(rem):
            i = _mirror(k - r, n)
            for c in range(c0, c1):
                acc[c - c0] += x[i, c]
        for i in range(n):
            if i > 0:
                add = _mirror(i + r, n)
                drop = _mirror(i - r - 1, n)
                for c in range(c0, c1):
                    acc[c - c0] += np.float64(x[add, c]) - np.float64(x[drop, c])
            for c in range(c0, c1):
                out[i, c] = acc[c - c0] / size


@nb.njit(cache=True, nogil=True, parallel=True)
def _box_rows(x, r):
    """Mean of the ``2r+1`` mirrored columns around each column of ``x`` ``(H, W, C)``, in place."""
    H, n, C = x.shape
    size = 2 * r + 1
    q, rem = divmod(size, 2 * n)
    chunks = min(H, 256)  # rows share their buffers within a chunk
    for t in nb.prange(chunks):
        line = np.empty((n, C), dtype=np.float64)
        acc = np.empty(C, dtype=np.float64)
        for i in range(t * H // chunks, (t + 1) * H // chunks):
            acc[:] = 0.0
            for j in range(n):
                for c in range(C):
                    line[j, c] = x[i, j, c]
            if q > 0:
                for j in range(n):
                    for c in range(C):
                        acc[c] += line[j, c]
                for c in range(C):
                    acc[c] *= 2 * q
            for k in range(rem):
                j = _mirror(k - r, n)
                for c in range(C):
                    acc[c] += line[j, c]
            for j in range(n):
                if j > 0:
                    add = _mirror(j + r, n)
                    drop = _mirror(j - r - 1, n)
                    for c in range(C):
                        acc[c] += line[add, c] - line[drop, c]
                for c in range(C):
                    x[i, j, c] = acc[c] / size


def guided_coefficients(
    guide: np.ndarray, src: np.ndarray, radius: int, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """The guided filter's window-averaged linear coefficients ``(mean_a, mean_b)``.

    In each window ``k``, ``src ~ a_k guide + b_k`` by least squares, with ``a_k =
    cov_k(guide, src) / (var_k(guide) + eps)`` and ``b_k = mean_k(src) - a_k
    mean_k(guide)``; each pixel then averages the coefficients of the windows that
    contain it. The filtered value is ``mean_a * guide + mean_b``
    (:func:`guided_filter`), or the same with a larger guide and the coefficients
    interpolated to it (:func:`guided_rows`).

    Parameters
    ----------
    guide : ndarray, shape (H, W)
        The gray guide.
    src : ndarray, shape (H, W) or (H, W, C)
        What to filter; each channel has its own coefficients.
    radius : int
        Window half-width in pixels, ``>= 1``.
    eps : float
        Regularisation in squared guide units: larger smooths more across weak edges.

    Returns
    -------
    mean_a, mean_b : ndarray
        Of ``src``'s shape, float32 unless ``src`` is float64.

    Examples
    --------
    >>> g = np.linspace(0, 1, 12).reshape(3, 4)
    >>> a, b = guided_coefficients(g, 2 * g + 1, radius=1, eps=1e-6)  # src linear in g
    >>> bool(np.allclose(a, 2, atol=1e-3) and np.allclose(b, 1, atol=1e-3))
    True
    """
    dtype = np.result_type(src.dtype, np.float32)
    g = np.asarray(guide, dtype=dtype)
    p = np.asarray(src, dtype=dtype)
    if g.ndim != 2 or p.shape[:2] != g.shape or p.ndim not in (2, 3):
        raise ValueError(
            f"guided filter: got guide {g.shape} and src {p.shape}, expected (H, W) and (H, W[, C])"
        )
    g_ = g[..., None] if p.ndim == 3 else g
    mean_g = box_mean(g, radius)
    var_g = box_mean(g * g, radius) - mean_g * mean_g
    mean_g_ = mean_g[..., None] if p.ndim == 3 else mean_g
    var_g_ = var_g[..., None] if p.ndim == 3 else var_g
    mean_p = box_mean(p, radius)
    cov_gp = box_mean(g_ * p, radius) - mean_g_ * mean_p
    a = cov_gp / (var_g_ + eps)
    b = mean_p - a * mean_g_
    return box_mean(a, radius), box_mean(b, radius)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Filter ``src`` ``(H, W[, C])`` with the gray ``guide`` ``(H, W)`` (He et al.).

    Parameters
    ----------
    guide : ndarray, shape (H, W)
        The gray guide.
    src : ndarray, shape (H, W) or (H, W, C)
        What to filter, each channel alike.
    radius : int
        Window half-width in pixels; below 1, ``src`` is returned as is.
    eps : float
        Regularisation in squared guide units: larger smooths more across weak edges.

    Returns
    -------
    ndarray
        ``mean_a * guide + mean_b`` (:func:`guided_coefficients`), of ``src``'s
        shape, float32 unless ``src`` is float64.

    Examples
    --------
    >>> g = np.zeros((8, 8)); g[:, 4:] = 1.0          # an edge in the guide
    >>> s = np.zeros((8, 8)); s[:, 4:] = 1.0          # chroma that follows it
    >>> out = guided_filter(g, s + 0.1 * (np.arange(8) % 2), radius=2, eps=1e-4)
    >>> bool(abs(out[:, :4].mean() - 0.05) < 0.03 and abs(out[:, 4:].mean() - 1.05) < 0.03)
    True
    """
    if radius < 1:
        return src
    mean_a, mean_b = guided_coefficients(guide, src, radius, eps)
    g = np.asarray(guide, dtype=mean_a.dtype)
    g_ = g[..., None] if mean_a.ndim == 3 else g
    return mean_a * g_ + mean_b


def guided_rows(
    G: np.ndarray,
    mean_a: np.ndarray,
    mean_b: np.ndarray,
    r0: int,
    r1: int,
    out: np.ndarray | None = None,
    *,
    scale: float = 1.0,
) -> np.ndarray:
    """Rows ``r0:r1`` of the fast guided filter's output at the size of the full guide.

    ``mean_a`` and ``mean_b`` (:func:`guided_coefficients` at a low resolution)
    are interpolated bilinearly to the full guide's size, with the pixel-area
    alignment of :func:`somcolor.resize.resample`, and combined with it:
    ``out = mean_a * (scale * G) + mean_b``. Looping over blocks of rows colorizes
    a large image with no full-size float array besides the guide.

    Parameters
    ----------
    G : ndarray, shape (H, W)
        The full-resolution guide (e.g. L), float32 or float64; only rows
        ``r0:r1`` are read.
    mean_a, mean_b : ndarray, shape (h, w) or (h, w, C)
        The low-resolution coefficients, fitted to a guide in units of ``scale * G``.
    r0, r1 : int
        The rows, ``0 <= r0 <= r1 <= H``.
    out : ndarray, optional
        float32, shape ``(r1 - r0, W[, C])``, C-contiguous, to write into.
    scale : float
        Multiplies ``G`` (e.g. 1/100 to pass L for a guide of L/100).

    Returns
    -------
    ndarray, shape (r1 - r0, W) or (r1 - r0, W, C), float32
        ``out``, filled.

    Examples
    --------
    >>> a = np.float32([[[1.0], [3.0]]]); b = np.zeros_like(a)   # (1, 2, 1)
    >>> guided_rows(np.full((2, 4), 2.0), a, b, 1, 2)[..., 0]
    array([[3., 3., 5., 5.]], dtype=float32)
    """
    G = np.asarray(G)
    if G.ndim != 2:
        raise ValueError(f"guided_rows: got a guide of shape {G.shape}, expected (H, W)")
    H, W = G.shape
    if mean_a.shape != mean_b.shape or mean_a.ndim not in (2, 3):
        raise ValueError(
            f"guided_rows: got coefficients {mean_a.shape} and {mean_b.shape}, "
            "expected two arrays of one shape (h, w[, C])"
        )
    if not 0 <= r0 <= r1 <= H:
        raise ValueError(f"guided_rows: got rows {r0}:{r1}, expected 0 <= r0 <= r1 <= {H}")
    a = np.ascontiguousarray(mean_a.reshape(*mean_a.shape[:2], -1), dtype=np.float32)
    b = np.ascontiguousarray(mean_b.reshape(a.shape), dtype=np.float32)
    shape = (r1 - r0, W, *mean_a.shape[2:])
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(
            f"guided_rows: got out {out.dtype} {out.shape}, expected C-contiguous float32 {shape}"
        )
    block = G[r0:r1]
    if block.dtype not in (np.float32, np.float64):
        block = block.astype(np.float32)
    with threads_for(block.size * a.shape[2]):
        _guided_rows(block, H, r0, a, b, np.float32(scale), out.reshape(r1 - r0, W, a.shape[2]))
    return out


@nb.njit(cache=True, nogil=True, parallel=True)
def _guided_rows(G, H, r0, a, b, scale, out):
    """``out[i] = bilinear(a) * scale * G[i] + bilinear(b)`` for rows ``G`` ``(n, W)``
    of a guide of ``H`` rows starting at row ``r0`` (inputs assumed validated)."""
    n, W = G.shape
    h, w, C = a.shape
    col0, col1, colf = _columns(w, W)
    for i in nb.prange(n):
        i0, i1, fy = _source(r0 + i, h / H, h)
        fy = np.float32(fy)
        ra = np.empty((w, C), np.float32)  # the coefficients' rows interpolated to this row
        rb = np.empty((w, C), np.float32)
        for j in range(w):
            for c in range(C):
                ra[j, c] = a[i0, j, c] + fy * (a[i1, j, c] - a[i0, j, c])
                rb[j, c] = b[i0, j, c] + fy * (b[i1, j, c] - b[i0, j, c])
        if C == 2:  # chroma: the channel loop unrolled, about 1.5x faster
            for j in range(W):
                k0, k1, fx = col0[j], col1[j], colf[j]
                g = scale * np.float32(G[i, j])
                a0 = ra[k0, 0] + fx * (ra[k1, 0] - ra[k0, 0])
                b0 = rb[k0, 0] + fx * (rb[k1, 0] - rb[k0, 0])
                a1 = ra[k0, 1] + fx * (ra[k1, 1] - ra[k0, 1])
                b1 = rb[k0, 1] + fx * (rb[k1, 1] - rb[k0, 1])
                out[i, j, 0] = a0 * g + b0
                out[i, j, 1] = a1 * g + b1
        else:
            for j in range(W):
                k0, k1, fx = col0[j], col1[j], colf[j]
                g = scale * np.float32(G[i, j])
                for c in range(C):
                    va = ra[k0, c] + fx * (ra[k1, c] - ra[k0, c])
                    vb = rb[k0, c] + fx * (rb[k1, c] - rb[k0, c])
                    out[i, j, c] = va * g + vb


def guided_upsample(
    G: np.ndarray,
    g_low: np.ndarray,
    p_low: np.ndarray,
    radius: int,
    eps: float,
    *,
    scale: float = 1.0,
) -> np.ndarray:
    """The fast guided filter: smooth ``p_low`` guided by ``g_low`` and bring it to ``G``'s size.

    He & Sun's fast guided filter: the coefficients are fitted at the low
    resolution (:func:`guided_coefficients`) and applied to the full guide
    (:func:`guided_rows`), so that color edges follow the full-resolution guide,
    sharper than plain bilinear upsampling of ``p_low``.

    Parameters
    ----------
    G : ndarray, shape (H, W)
        The full-resolution guide.
    g_low : ndarray, shape (h, w)
        The guide at the low resolution (e.g. :func:`somcolor.resize.downsample`
        of ``scale * G``).
    p_low : ndarray, shape (h, w) or (h, w, C)
        What to filter, at the low resolution.
    radius : int
        Window half-width in low-resolution pixels, ``>= 1``.
    eps : float
        Regularisation in squared guide units.
    scale : float
        Multiplies ``G`` to put it in ``g_low``'s units.

    Returns
    -------
    ndarray, shape (H, W) or (H, W, C), float32

    Examples
    --------
    >>> from somcolor.resize import downsample
    >>> G = np.zeros((8, 8), np.float32); G[:, 3:] = 1.0  # an edge off the 2x grid
    >>> uv = guided_upsample(G, downsample(G, (4, 4)), 40 * downsample(G, (4, 4)), 1, 1e-4)
    >>> uv[0].round()
    array([ 0.,  0.,  0., 40., 40., 40., 40., 40.], dtype=float32)
    """
    mean_a, mean_b = guided_coefficients(g_low, p_low, radius, eps)
    G = np.asarray(G)
    return guided_rows(G, mean_a, mean_b, 0, len(G), scale=scale)
