"""Color math: sRGB <-> CIELUV, and splitting LUV into luminance L and chroma UV.

Pure functions. Float inputs keep their precision (float32 stays float32; other
inputs become float64 only where scikit-image promotes them). Converting back to
sRGB clips colors that fall outside the gamut; :func:`luv_to_rgb` reports how many
pixels that was instead of hiding it.

Units: L in 0..100, u and v roughly -100..180 (CIE 1976, D65 white, 2 degree observer).
"""

from __future__ import annotations

import numpy as np
from skimage import color as skcolor
from skimage.color.colorconv import rgb_from_xyz

from .exceptions import SomcolorError


def to_float_rgb(image: np.ndarray) -> np.ndarray:
    """Any supported image array -> float RGB in 0..1 with shape ``(H, W, 3)``.

    Accepts grayscale ``(H, W)`` or ``(H, W, 1)``, RGB and RGBA (alpha dropped), as
    ``uint8``, ``uint16`` or float in 0..1. Float32 stays float32; integers become float32.

    >>> to_float_rgb(np.array([[0, 255]], dtype=np.uint8)).tolist()
    [[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]]
    """
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
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / np.float32(255)
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / np.float32(65535)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.floating):
        if arr.dtype not in (np.float32, np.float64):
            arr = arr.astype(np.float32)
    else:
        raise SomcolorError(f"expected uint8, uint16 or float pixels, got {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return arr


def rgb_to_luv(rgb: np.ndarray) -> np.ndarray:
    """sRGB (float, 0..1, last axis = channels) -> CIELUV.

    >>> np.round(rgb_to_luv(np.array([[1.0, 1.0, 1.0]])), 2).tolist()
    [[100.0, 0.0, 0.0]]
    """
    return skcolor.rgb2luv(rgb, channel_axis=-1)


def luv_to_rgb(luv: np.ndarray) -> tuple[np.ndarray, int]:
    """CIELUV -> sRGB in 0..1, and the number of pixels that had to be clipped.

    A pixel counts as clipped when any of its linear-RGB channels falls outside
    0..1 by more than 1e-3 before clipping (scikit-image's D65 white point and its
    sRGB matrix disagree by up to 8e-5, so a tighter tolerance would count the
    white point L=100, u=v=0 itself as out of gamut; 1e-3 is well below a uint8 step).

    >>> rgb, clipped = luv_to_rgb(np.array([[50.0, 0.0, 0.0], [50.0, 200.0, 0.0]]))
    >>> np.round(rgb[0], 3).tolist(), clipped
    ([0.466, 0.466, 0.466], 1)
    """
    xyz = skcolor.luv2xyz(luv, channel_axis=-1)
    linear = xyz @ rgb_from_xyz.T.astype(xyz.dtype)
    eps = 1e-3
    out_of_gamut = np.any((linear < -eps) | (linear > 1 + eps), axis=-1)
    return skcolor.xyz2rgb(xyz, channel_axis=-1), int(np.count_nonzero(out_of_gamut))


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


def luminance(image: np.ndarray) -> np.ndarray:
    """The CIELUV L (0..100) of any supported image; color inputs are reduced to L.

    >>> float(luminance(np.full((1, 1), 255, dtype=np.uint8))[0, 0])
    100.0
    """
    L, _ = split_luv(rgb_to_luv(to_float_rgb(image)))
    return np.ascontiguousarray(L)


def compose(L: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, int]:
    """Join luminance and chroma into a uint8 sRGB image; also the count of clipped pixels.

    >>> rgb, clipped = compose(np.full((1, 2), 100.0), np.zeros((1, 2, 2)))
    >>> rgb.tolist(), clipped
    ([[[255, 255, 255], [255, 255, 255]]], 0)
    """
    rgb, clipped = luv_to_rgb(merge_luv(L, uv))
    return to_uint8(rgb), clipped


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Float RGB in 0..1 -> uint8 (rounded, clipped).

    >>> to_uint8(np.array([0.0, 0.5, 1.2])).tolist()
    [0, 128, 255]
    """
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
