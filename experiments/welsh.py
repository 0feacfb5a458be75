"""The reference for colour from a photo: Welsh, Ashikhmin & Mueller (2002), global version.

No model at all: a gray target takes its chroma from a colour reference by matching
luminance statistics, pixel by pixel:

1. *Luminance remapping*: the reference's L is shifted and scaled to the target's L mean
   and standard deviation, ``L' = (L_r - mean_r) * std_t / std_r + mean_t``, so that the
   two histograms line up (the reference keeps its chroma).
2. *Jittered samples*: about ``samples`` reference pixels, one at a random place in each
   cell of a grid over the reference (the grid's aspect follows the reference's).
3. *Matching*: every pixel (sample or target) is described by its (remapped) L and the
   standard deviation of L in its 5x5 neighbourhood; each target pixel takes the sample
   that minimises ``0.5 * dL^2 + 0.5 * dstd^2`` (a nearest neighbour in the 2-D feature
   space, found with a k-d tree).
4. *Transfer*: the target keeps its own L and takes the sample's chroma.

Simplified from the paper: chroma is CIELUV UV (the project's colour space,
:mod:`somcolor.color`) instead of the paper's lalphabeta; the weights are fixed at
0.5/0.5 and the window at 5x5 (the paper's defaults); the best sample is found exactly
(the paper searches the samples linearly too); the paper's "swatches" (user-chosen
matching regions, its interactive mode) and its texture-synthesis step inside the
target are left out. Neighbourhood statistics are taken with reflected borders.

Reference: T. Welsh, M. Ashikhmin, K. Mueller, "Transferring Color to Greyscale
Images", ACM Transactions on Graphics 21(3) (SIGGRAPH 2002), 277-280.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter
from scipy.spatial import cKDTree

from somcolor.color import compose, luminance, rgb_to_luv, split_luv, to_float_rgb
from somcolor.exceptions import SomcolorError

#: The side of the window the neighbourhood standard deviation is taken over.
WINDOW = 5
#: The weights of the L and the neighbourhood std in the matching distance.
WEIGHTS = (0.5, 0.5)


def _check_target(gray_or_L) -> np.ndarray:
    """The target's CIELUV L (float32): a gray or RGB integer image, or a float L array."""
    arr = np.asarray(gray_or_L)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise SomcolorError(
            f"welsh: expected a gray (H, W) or RGB image or an L array, got shape {arr.shape}"
        )
    if arr.dtype.kind == "f":
        if arr.ndim != 2:
            raise SomcolorError(f"welsh: a float target must be an (H, W) L array, got {arr.shape}")
        if not np.all(np.isfinite(arr)) or arr.min() < -0.01 or arr.max() > 100.01:
            raise SomcolorError("welsh: a float target is an L array, expected values in 0..100")
        return np.clip(arr, 0.0, 100.0).astype(np.float32)
    if arr.dtype not in (np.uint8, np.uint16):
        raise SomcolorError(f"welsh: expected uint8, uint16 or float, got dtype {arr.dtype}")
    return luminance(arr)


def _check_reference(reference_rgb) -> np.ndarray:
    arr = np.asarray(reference_rgb)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or min(arr.shape[:2]) < 1:
        raise SomcolorError(f"welsh: expected an RGB reference (H, W, 3), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise SomcolorError(f"welsh: expected a uint8 reference, got dtype {arr.dtype}")
    return arr[..., :3]


def local_std(L: np.ndarray, size: int = WINDOW) -> np.ndarray:
    """The standard deviation of ``L`` in the ``size`` x ``size`` window around each pixel.

    >>> float(local_std(np.full((4, 4), 50.0)).max())
    0.0
    """
    L = np.asarray(L, dtype=np.float64)
    mean = uniform_filter(L, size, mode="reflect")
    sq = uniform_filter(L * L, size, mode="reflect")
    return np.sqrt(np.maximum(sq - mean * mean, 0.0))


def jittered_grid(shape: tuple[int, int], samples: int, rng: np.random.Generator) -> np.ndarray:
    """About ``samples`` flat pixel indices: one random pixel in each cell of a grid."""
    h, w = shape
    rows = int(np.clip(round(np.sqrt(samples * h / w)), 1, h))
    cols = int(np.clip(round(samples / rows), 1, w))
    r_edges = np.linspace(0, h, rows + 1)
    c_edges = np.linspace(0, w, cols + 1)
    r = r_edges[:-1, None] + rng.random((rows, cols)) * np.diff(r_edges)[:, None]
    c = c_edges[None, :-1] + rng.random((rows, cols)) * np.diff(c_edges)[None, :]
    r = np.minimum(r.astype(np.intp), h - 1)
    c = np.minimum(c.astype(np.intp), w - 1)
    return (r * w + c).ravel()


def welsh_uv(L, reference_rgb, *, samples: int = 200, seed: int = 0) -> np.ndarray:
    """The chroma :func:`welsh` gives an L array (float (H, W) in 0..100): float32 (H, W, 2).

    The same checks and result as :func:`welsh`, before joining with L (what
    :func:`somcolor.evaluate.evaluate_image` scores).
    """
    if isinstance(samples, bool) or not isinstance(samples, int | np.integer) or samples < 1:
        raise SomcolorError(f"welsh: samples must be a positive integer, got {samples!r}")
    L_t = _check_target(L)
    ref = _check_reference(reference_rgb)
    L_r, uv_r = split_luv(rgb_to_luv(to_float_rgb(ref)))
    L_r = np.asarray(L_r, dtype=np.float64)
    mean_t, std_t = float(L_t.mean()), float(L_t.std())
    mean_r, std_r = float(L_r.mean()), float(L_r.std())
    scale = std_t / std_r if std_r > 1e-6 else 1.0
    L_r = (L_r - mean_r) * scale + mean_t

    rng = np.random.default_rng(seed)
    idx = jittered_grid(L_r.shape, samples, rng)
    wl, ws = np.sqrt(WEIGHTS)
    feat_r = np.column_stack([wl * L_r.ravel()[idx], ws * local_std(L_r).ravel()[idx]])
    feat_t = np.column_stack([wl * L_t.ravel(), ws * local_std(L_t).ravel()])
    _, nearest = cKDTree(feat_r).query(feat_t, k=1)
    uv = uv_r.reshape(-1, 2)[idx][nearest].reshape(*L_t.shape, 2)
    return uv.astype(np.float32)


def welsh(gray_or_L, reference_rgb, *, samples: int = 200, seed: int = 0) -> np.ndarray:
    """Colour ``gray_or_L`` from ``reference_rgb`` (Welsh et al. 2002, global matching).

    Parameters
    ----------
    gray_or_L : array
        The target: a uint8/uint16 gray (H, W) or RGB image (reduced to its L), or a
        float (H, W) CIELUV L array in 0..100.
    reference_rgb : array
        The colour reference, uint8 (h, w, 3) (an alpha channel is ignored).
    samples : int
        About how many reference pixels are sampled (jittered grid).
    seed : int
        The seed of the jitter; the same seed gives the same output.

    Returns
    -------
    uint8 (H, W, 3) sRGB: the target's L with the matched samples' chroma.

    Raises
    ------
    SomcolorError
        A target or reference of the wrong shape or dtype, or ``samples < 1``.
    """
    uv = welsh_uv(gray_or_L, reference_rgb, samples=samples, seed=seed)
    return compose(_check_target(gray_or_L), uv)[0]
