"""Color math: sRGB <-> CIELUV, and splitting LUV into luminance L and chroma UV.

Pure functions. Float inputs keep their precision (float32 stays float32, float64
stays float64; integer images become float32). Converting back to sRGB clips colors
that fall outside the gamut; :func:`luv_to_rgb` and :func:`compose` report how many
pixels that was instead of hiding it.

The conversions are scikit-image's formulas (``rgb2luv``, ``luv2rgb``: the sRGB
matrix, D65 white point, 2 degree observer, the same constants and the same ``eps``
guards), run by numba kernels over both cores, one pixel at a time in float64, so no
full-size temporary arrays are built: converting a 12-megapixel photo needs only its
output. They agree with scikit-image to float rounding (``tests/test_color.py``
checks them against it, against the CIE formulas and against reference values).
Integer images take shortcuts with identical results: a gray image is looked up in a
table of the L of every gray level, an RGB one goes through a table of linearized
channel values.

Units: L in 0..100, u and v roughly -100..180 (CIE 1976, D65 white, 2 degree observer).
"""

from __future__ import annotations

import functools

import numba as nb
import numpy as np

from ._threads import threads_for
from .exceptions import SomcolorError

#: sRGB -> CIE XYZ (IEC 61966-2-1 primaries), as in scikit-image's ``xyz_from_rgb``.
XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
#: CIE XYZ -> linear sRGB.
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
#: D65 white point, 2 degree observer (scikit-image's ``xyz_tristimulus_values``).
WHITE = np.array([0.95047, 1.0, 1.08883])
_U0 = 4 * WHITE[0] / (WHITE[0] + 15 * WHITE[1] + 3 * WHITE[2])
_V0 = 9 * WHITE[1] / (WHITE[0] + 15 * WHITE[1] + 3 * WHITE[2])

#: A linear-RGB channel further than this outside 0..1 counts its pixel as clipped.
#: scikit-image's D65 white point and its sRGB matrix disagree by up to 8e-5, so a
#: tighter tolerance would count the white point L=100, u=v=0 itself; 1e-3 is well
#: below a uint8 step.
GAMUT_TOLERANCE = 1e-3

_KERNEL = dict(cache=True, nogil=True, error_model="numpy")


# ------------------------------------------------------------------ per-pixel formulas
@nb.njit(**_KERNEL)
def _srgb_to_linear(c):
    if c > 0.04045:
        return ((c + 0.055) / 1.055) ** 2.4
    return c / 12.92


@nb.njit(**_KERNEL)
def _linear_to_srgb(c):
    if c > 0.0031308:
        return 1.055 * c ** (1 / 2.4) - 0.055
    return c * 12.92


@nb.njit(**_KERNEL)
def _lightness(y):
    """CIE L of relative luminance ``y`` (scikit-image's constants)."""
    yr = y / WHITE[1]
    if yr > 0.008856:
        return 116.0 * np.cbrt(yr) - 16.0
    return 903.3 * yr


@nb.njit(**_KERNEL)
def _luminance_of_linear(r, g, b):
    return XYZ_FROM_RGB[1, 0] * r + XYZ_FROM_RGB[1, 1] * g + XYZ_FROM_RGB[1, 2] * b


@nb.njit(**_KERNEL)
def _linear_to_luv(r, g, b, eps):
    x = XYZ_FROM_RGB[0, 0] * r + XYZ_FROM_RGB[0, 1] * g + XYZ_FROM_RGB[0, 2] * b
    y = _luminance_of_linear(r, g, b)
    z = XYZ_FROM_RGB[2, 0] * r + XYZ_FROM_RGB[2, 1] * g + XYZ_FROM_RGB[2, 2] * b
    L = _lightness(y)
    denom = x + 15.0 * y + 3.0 * z + eps
    u = 13.0 * L * (4.0 * x / denom - _U0)
    v = 13.0 * L * (9.0 * y / denom - _V0)
    return L, u, v


@nb.njit(**_KERNEL)
def _luv_to_linear(L, u, v, eps):
    """CIELUV -> linear sRGB (unclipped), as scikit-image's ``luv2xyz`` then its matrix."""
    if L > 7.999625:
        t = (L + 16.0) / 116.0
        y = t * t * t
    else:
        y = L / 903.3
    y *= WHITE[1]
    a = _U0 + u / (13.0 * L + eps)
    b = _V0 + v / (13.0 * L + eps)
    c = 3.0 * y * (5.0 * b - 3.0)
    z = ((a - 4.0) * c - 15.0 * a * b * y) / (12.0 * b)
    x = -(c / b + 3.0 * z)
    r = RGB_FROM_XYZ[0, 0] * x + RGB_FROM_XYZ[0, 1] * y + RGB_FROM_XYZ[0, 2] * z
    g = RGB_FROM_XYZ[1, 0] * x + RGB_FROM_XYZ[1, 1] * y + RGB_FROM_XYZ[1, 2] * z
    bl = RGB_FROM_XYZ[2, 0] * x + RGB_FROM_XYZ[2, 1] * y + RGB_FROM_XYZ[2, 2] * z
    return r, g, bl


@nb.njit(**_KERNEL)
def _outside(c, tol):
    return c < -tol or c > 1.0 + tol


@nb.njit(**_KERNEL)
def _clip01(c):
    """Clip to 0..1; NaN becomes 0."""
    if c > 1.0:
        return 1.0
    if c > 0.0:
        return c
    return 0.0


@nb.njit(**_KERNEL)
def _u8(c):
    """Linear sRGB -> encoded, clipped and rounded half up to uint8, as :func:`to_uint8`."""
    return np.uint8(_clip01(_linear_to_srgb(c)) * 255.0 + 0.5)


#: Buckets of the linear range 0..1 in the uint8 encoding table; the steepest part of
#: the sRGB curve (slope 12.92) crosses at most one uint8 level per bucket.
_U8_BUCKETS = 8192


@nb.njit(**_KERNEL)
def _u8_tables(n_buckets):
    """Tables that give :func:`_u8` of any linear value without a ``pow``.

    ``threshold[k]`` is the smallest linear value encoded as level ``k`` or above
    (found by bisection down to adjacent floats), ``start[i]`` the level of
    ``i / n_buckets``. The curve is monotonic, so the two give :func:`_u8` exactly.
    """
    threshold = np.zeros(257)
    threshold[256] = np.inf
    for k in range(1, 256):
        lo, hi = 0.0, 1.0
        while True:
            mid = 0.5 * (lo + hi)
            if mid <= lo or mid >= hi:
                break
            if _u8(mid) >= k:
                hi = mid
            else:
                lo = mid
        threshold[k] = hi
    start = np.empty(n_buckets + 1, dtype=np.uint8)
    for i in range(n_buckets + 1):
        start[i] = _u8(i / n_buckets)
    return threshold, start


@nb.njit(**_KERNEL)
def _u8_lookup(c, threshold, start):
    """:func:`_u8` by table: equal to it for every input, NaN included."""
    if not c > 0.0:
        return np.uint8(0)
    if c >= 1.0:
        return start[start.shape[0] - 1]
    level = np.int64(start[np.int64(c * (start.shape[0] - 1))])
    while c >= threshold[level + 1]:
        level += 1
    return np.uint8(level)


# ------------------------------------------------------------------ kernels over pixels
# Inputs assumed validated: C-contiguous, channels last, flattened to (n_pixels, ...).
@nb.njit(parallel=True, **_KERNEL)
def _rgb_to_luv(rgb, eps, out):
    for i in nb.prange(rgb.shape[0]):
        r = _srgb_to_linear(np.float64(rgb[i, 0]))
        g = _srgb_to_linear(np.float64(rgb[i, 1]))
        b = _srgb_to_linear(np.float64(rgb[i, 2]))
        out[i, 0], out[i, 1], out[i, 2] = _linear_to_luv(r, g, b, eps)


@nb.njit(parallel=True, **_KERNEL)
def _rgb_lightness(rgb, out):
    for i in nb.prange(rgb.shape[0]):
        r = _srgb_to_linear(np.float64(rgb[i, 0]))
        g = _srgb_to_linear(np.float64(rgb[i, 1]))
        b = _srgb_to_linear(np.float64(rgb[i, 2]))
        out[i] = _lightness(_luminance_of_linear(r, g, b))


@nb.njit(**_KERNEL)
def _linearize(srgb, out):
    for i in range(srgb.shape[0]):
        out[i] = _srgb_to_linear(np.float64(srgb[i]))


@nb.njit(parallel=True, **_KERNEL)
def _gray_lightness(gray, out):
    for i in nb.prange(gray.shape[0]):
        c = _srgb_to_linear(np.float64(gray[i]))
        out[i] = _lightness(_luminance_of_linear(c, c, c))


@nb.njit(parallel=True, **_KERNEL)
def _indexed_rgb_lightness(rgb, linear, out):
    """L of integer RGB(A) pixels, ``linear`` holding the linear value of every level."""
    for i in nb.prange(rgb.shape[0]):
        r = linear[rgb[i, 0]]
        g = linear[rgb[i, 1]]
        b = linear[rgb[i, 2]]
        out[i] = _lightness(_luminance_of_linear(r, g, b))


@nb.njit(parallel=True, **_KERNEL)
def _luv_to_rgb(luv, eps, tol, out):
    clipped = 0
    for i in nb.prange(luv.shape[0]):
        r, g, b = _luv_to_linear(
            np.float64(luv[i, 0]), np.float64(luv[i, 1]), np.float64(luv[i, 2]), eps
        )
        if _outside(r, tol) or _outside(g, tol) or _outside(b, tol):
            clipped += 1
        out[i, 0] = _clip01(_linear_to_srgb(r))
        out[i, 1] = _clip01(_linear_to_srgb(g))
        out[i, 2] = _clip01(_linear_to_srgb(b))
    return clipped


@nb.njit(parallel=True, **_KERNEL)
def _compose(L, uv, eps, tol, threshold, start, out):
    clipped = 0
    for i in nb.prange(L.shape[0]):
        r, g, b = _luv_to_linear(np.float64(L[i]), np.float64(uv[i, 0]), np.float64(uv[i, 1]), eps)
        if _outside(r, tol) or _outside(g, tol) or _outside(b, tol):
            clipped += 1
        out[i, 0] = _u8_lookup(r, threshold, start)
        out[i, 1] = _u8_lookup(g, threshold, start)
        out[i, 2] = _u8_lookup(b, threshold, start)
    return clipped


# ------------------------------------------------------------------ validation helpers
def check_image(image) -> np.ndarray:
    """An image array as ``(H, W)`` or ``(H, W, 3)`` (alpha dropped), dtype checked."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise SomcolorError(
            f"expected an image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise SomcolorError(f"expected a non-empty image, got shape {arr.shape}")
    if not (arr.dtype in (np.uint8, np.uint16, np.bool_) or np.issubdtype(arr.dtype, np.floating)):
        raise SomcolorError(f"expected uint8, uint16 or float pixels, got {arr.dtype}")
    return arr


def _float_dtype(dtype) -> np.dtype:
    """The float type a conversion computes in, as in scikit-image.

    float16 and float32 give float32; float64 and integers give float64.
    """
    return (
        np.dtype(np.float32)
        if np.dtype(dtype) in (np.float16, np.float32)
        else np.dtype(np.float64)
    )


def _as_float(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``arr`` C-contiguous, in its own float type if float32/float64, else in ``dtype``."""
    keep = arr.dtype in (np.float32, np.float64)
    return np.ascontiguousarray(arr, dtype=arr.dtype if keep else dtype)


def _channels_last(arr, what: str, n: int = 3) -> np.ndarray:
    if arr.ndim < 1 or arr.shape[-1] != n:
        raise ValueError(
            f"expected {what} with {n} channels on the last axis, got shape {arr.shape}"
        )
    return arr


def _eps(dtype) -> float:
    """scikit-image's guard against division by zero: the machine epsilon of the dtype."""
    return float(np.finfo(dtype).eps)


# ------------------------------------------------------------------ public functions
def to_float_rgb(image: np.ndarray) -> np.ndarray:
    """Any supported image array -> float RGB in 0..1 with shape ``(H, W, 3)``.

    Accepts grayscale ``(H, W)`` or ``(H, W, 1)``, RGB and RGBA (alpha dropped), as
    ``uint8``, ``uint16`` or float in 0..1. Float32 stays float32; integers become float32.

    >>> to_float_rgb(np.array([[0, 255]], dtype=np.uint8)).tolist()
    [[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]]
    """
    arr = check_image(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / np.float32(255)
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / np.float32(65535)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.float32)
    elif arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return arr


def rgb_to_luv(rgb: np.ndarray) -> np.ndarray:
    """sRGB (float, 0..1, last axis = channels) -> CIELUV, in the input's float type.

    >>> np.round(rgb_to_luv(np.array([[1.0, 1.0, 1.0]])), 2).tolist()
    [[100.0, 0.0, 0.0]]
    """
    arr = _channels_last(np.asarray(rgb), "sRGB")
    dtype = _float_dtype(arr.dtype)
    if arr.dtype.kind == "u":  # as scikit-image: unsigned integers are scaled to 0..1
        arr = arr / np.float64(np.iinfo(arr.dtype).max)
    flat = np.ascontiguousarray(arr.reshape(-1, 3), dtype=dtype)
    out = np.empty(flat.shape, dtype=dtype)
    with threads_for(len(flat)):
        _rgb_to_luv(flat, _eps(dtype), out)
    return out.reshape(arr.shape)


def luv_to_rgb(luv: np.ndarray) -> tuple[np.ndarray, int]:
    """CIELUV -> sRGB in 0..1, and the number of pixels that had to be clipped.

    A pixel counts as clipped when any of its linear-RGB channels falls outside
    0..1 by more than :data:`GAMUT_TOLERANCE` before clipping.

    >>> rgb, clipped = luv_to_rgb(np.array([[50.0, 0.0, 0.0], [50.0, 200.0, 0.0]]))
    >>> np.round(rgb[0], 3).tolist(), clipped
    ([0.466, 0.466, 0.466], 1)
    """
    arr = _channels_last(np.asarray(luv), "CIELUV")
    dtype = _float_dtype(arr.dtype)
    flat = np.ascontiguousarray(arr.reshape(-1, 3), dtype=dtype)
    out = np.empty(flat.shape, dtype=dtype)
    with threads_for(len(flat)):
        clipped = _luv_to_rgb(flat, _eps(dtype), GAMUT_TOLERANCE, out)
    return out.reshape(arr.shape), int(clipped)


def split_luv(luv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split ``(..., 3)`` LUV into L ``(...)`` and UV ``(..., 2)`` (views, no copy).

    >>> L, uv = split_luv(np.zeros((4, 5, 3)))
    >>> L.shape, uv.shape
    ((4, 5), (4, 5, 2))
    """
    return luv[..., 0], luv[..., 1:]


def merge_luv(L: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Join L ``(...)`` and UV ``(..., 2)`` into LUV ``(..., 3)``, in their common dtype.

    >>> merge_luv(np.full((2, 2), 50.0), np.zeros((2, 2, 2))).shape
    (2, 2, 3)
    """
    dtype = np.result_type(L, uv)
    return np.concatenate([np.asarray(L, dtype)[..., None], np.asarray(uv, dtype)], axis=-1)


@functools.cache
def _u8_encoding() -> tuple[np.ndarray, np.ndarray]:
    """The tables of :func:`_u8_lookup`, computed once per process (a few milliseconds)."""
    threshold, start = _u8_tables(_U8_BUCKETS)
    threshold.setflags(write=False)
    start.setflags(write=False)
    return threshold, start


@functools.cache
def _level_table(dtype_name: str, what: str) -> np.ndarray:
    """Per integer level: its L (``what="L"``) or its linear sRGB value (``"linear"``).

    Computed by the same kernels as float pixels, from the same float32 values
    :func:`to_float_rgb` gives, so lookups are identical to converting.
    """
    dtype = np.dtype(dtype_name)
    levels = np.arange(2 if dtype == np.bool_ else np.iinfo(dtype).max + 1)
    gray = to_float_rgb(levels.astype(dtype)[None, :])[0, :, 0]
    if what == "L":
        table = np.empty(len(gray), dtype=np.float32)
        with threads_for(len(gray)):
            _gray_lightness(gray, table)
    else:
        table = np.empty(len(gray), dtype=np.float64)
        _linearize(gray, table)
    table.setflags(write=False)
    return table


def luminance(image: np.ndarray) -> np.ndarray:
    """The CIELUV L (0..100) of any supported image; color inputs are reduced to L.

    Equal to ``split_luv(rgb_to_luv(to_float_rgb(image)))[0]``, without building the
    RGB and LUV arrays: float32 for integer images, the float type of float ones.

    >>> float(luminance(np.full((1, 1), 255, dtype=np.uint8))[0, 0])
    100.0
    """
    arr = check_image(image)
    integer = arr.dtype in (np.uint8, np.uint16, np.bool_)
    dtype = np.dtype(np.float32) if integer else _float_dtype(arr.dtype)
    H, W = arr.shape[:2]
    if integer and arr.ndim == 2:
        levels = arr.view(np.uint8) if arr.dtype == np.bool_ else arr
        return _level_table(arr.dtype.name, "L")[levels]
    out = np.empty(H * W, dtype=dtype)
    with threads_for(H * W):
        if integer:
            # Index RGB(A) in place: the alpha channel of a strided view is never read.
            pixels = np.asarray(image).reshape(H * W, -1)
            if pixels.dtype == np.bool_:
                pixels = pixels.view(np.uint8)
            _indexed_rgb_lightness(pixels, _level_table(arr.dtype.name, "linear"), out)
        elif arr.ndim == 2:
            _gray_lightness(np.ascontiguousarray(arr, dtype=dtype).reshape(-1), out)
        else:
            _rgb_lightness(np.ascontiguousarray(arr, dtype=dtype).reshape(-1, 3), out)
    return out.reshape(H, W)


def compose(L: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, int]:
    """Join luminance and chroma into a uint8 sRGB image; also the count of clipped pixels.

    Equal to ``luv_to_rgb(merge_luv(L, uv))`` then :func:`to_uint8`, in one pass
    without the intermediate float arrays.

    >>> rgb, clipped = compose(np.full((1, 2), 100.0), np.zeros((1, 2, 2)))
    >>> rgb.tolist(), clipped
    ([[[255, 255, 255], [255, 255, 255]]], 0)
    """
    L = np.asarray(L)
    uv = np.asarray(uv)
    if uv.shape != (*L.shape, 2):
        raise ValueError(
            f"expected UV of shape {(*L.shape, 2)} for L of shape {L.shape}, got {uv.shape}"
        )
    dtype = _float_dtype(np.result_type(L, uv))
    L_flat = _as_float(L, dtype).reshape(-1)
    uv_flat = _as_float(uv, dtype).reshape(-1, 2)
    out = np.empty((L_flat.shape[0], 3), dtype=np.uint8)
    threshold, start = _u8_encoding()
    with threads_for(len(L_flat)):
        clipped = _compose(L_flat, uv_flat, _eps(dtype), GAMUT_TOLERANCE, threshold, start, out)
    return out.reshape(*L.shape, 3), int(clipped)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Float RGB in 0..1 -> uint8 (rounded, clipped).

    >>> to_uint8(np.array([0.0, 0.5, 1.2])).tolist()
    [0, 128, 255]
    """
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
