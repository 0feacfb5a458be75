"""Features per pixel: the k x k L patch, plus optional wider context at little cost.

The paper's feature is the k x k luminance patch around the pixel. A patch sees
brightness and texture, not objects; :class:`FeatureSpec` adds, each optionally:

* ``scales``: for each factor ``f``, an ``m x m`` patch (``scale_patch_size``) of L
  averaged over ``f x f`` areas, centred on the pixel's position there: the
  neighbourhood ``f`` times wider at the cost of ``m * m`` more inputs;
* ``position``: the pixel's relative row and column (0..1), the paper's proposed
  future work (skies are at the top);
* ``image_stats``: mean and standard deviation of the whole image's L.

All extraction goes through the numba kernels of :mod:`somcolor.patches`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .patches import check_patch_size, image_patches, patches_at
from .resize import downsample


@dataclass(frozen=True)
class FeatureSpec:
    """Which features describe a pixel."""

    patch_size: int = 5
    scales: tuple[int, ...] = ()
    scale_patch_size: int = 5
    position: bool = False
    image_stats: bool = False

    def __post_init__(self):
        check_patch_size(self.patch_size)
        if self.scales:
            check_patch_size(self.scale_patch_size)
        if any(not isinstance(f, numbers.Integral) or f < 2 for f in self.scales):
            raise ValueError(f"scale factors must be integers >= 2, got {self.scales!r}")

    @classmethod
    def from_params(cls, params: dict) -> FeatureSpec:
        """The features of a model with these (Colorizer) parameters, checked.

        >>> FeatureSpec.from_params({"patch_size": 3, "scales": [4], "scale_patch_size": 5,
        ...                          "position": 0, "image_stats": 1}).n_features
        36
        """
        return cls(
            patch_size=check_patch_size(params["patch_size"]),
            scales=tuple(int(f) for f in params["scales"]),
            scale_patch_size=params["scale_patch_size"],
            position=bool(params["position"]),
            image_stats=bool(params["image_stats"]),
        )

    @property
    def patch_only(self) -> bool:
        """Whether the L patch is the only feature (the paper's model, and what the
        fused kernel of :mod:`somcolor.fused` computes).

        >>> FeatureSpec(5).patch_only, FeatureSpec(5, position=True).patch_only
        (True, False)
        """
        return not (self.scales or self.position or self.image_stats)

    @property
    def n_features(self) -> int:
        """Length of a pixel's feature vector.

        >>> FeatureSpec(7, scales=(4, 16), position=True, image_stats=True).n_features
        103
        """
        n = self.patch_size**2 + len(self.scales) * self.scale_patch_size**2
        return n + 2 * self.position + 2 * self.image_stats


class _Prepared:
    """An image's L with its coarse levels and statistics, computed once."""

    def __init__(self, L: np.ndarray, spec: FeatureSpec):
        self.L = np.ascontiguousarray(L, dtype=np.float32)
        H, W = self.L.shape
        # Each coarse level is L averaged over f x f areas (ceil(H / f) x ceil(W / f)
        # pixels), as the working size itself is made (:func:`~somcolor.resize.downsample`).
        self.levels = [
            downsample(self.L, (max(1, -(-H // f)), max(1, -(-W // f)))) for f in spec.scales
        ]
        self.stats = (
            np.array([self.L.mean(), self.L.std()], dtype=np.float32) if spec.image_stats else None
        )


def _context(prep: _Prepared, spec: FeatureSpec, rows: np.ndarray, cols: np.ndarray):
    """The features beyond the fine patch, for pixels at ``rows``, ``cols``."""
    H, W = prep.L.shape
    parts = []
    for level in prep.levels:
        h, w = level.shape
        # The coarse pixel covering the fine pixel's centre.
        r = np.minimum(((rows + 0.5) * h / H).astype(np.int64), h - 1)
        c = np.minimum(((cols + 0.5) * w / W).astype(np.int64), w - 1)
        parts.append(patches_at(level, r * w + c, spec.scale_patch_size))
    if spec.position:
        pos = np.empty((len(rows), 2), dtype=np.float32)
        pos[:, 0] = rows / max(H - 1, 1)
        pos[:, 1] = cols / max(W - 1, 1)
        parts.append(pos)
    if spec.image_stats:
        parts.append(np.broadcast_to(prep.stats, (len(rows), 2)))
    return parts


def features_at(L: np.ndarray, flat_index: np.ndarray, spec: FeatureSpec, out=None) -> np.ndarray:
    """Feature vectors ``(len(flat_index), spec.n_features)`` float32 of the given pixels.

    Written into ``out`` when given (C-contiguous float32 of that shape), so a training
    set can be filled image by image without concatenating.

    >>> L = np.zeros((6, 8), np.float32)
    >>> features_at(L, np.array([0, 47]), FeatureSpec(3, scales=(2,), position=True)).shape
    (2, 36)
    """
    prep = _Prepared(L, spec)
    flat_index = np.asarray(flat_index, dtype=np.int64)
    if spec.patch_only:
        return patches_at(prep.L, flat_index, spec.patch_size, out=out)
    fine = patches_at(prep.L, flat_index, spec.patch_size)
    rows, cols = np.divmod(flat_index, prep.L.shape[1])
    parts = [fine, *_context(prep, spec, rows, cols)]
    if out is None:
        return np.concatenate(parts, axis=1)
    return np.concatenate(parts, axis=1, out=out)


def image_features(L: np.ndarray, spec: FeatureSpec, block_pixels: int = 1 << 16):
    """Yield ``(row_start, row_stop, features)`` for consecutive row blocks of ``L``.

    Each block holds about ``block_pixels`` pixels, so memory stays bounded for
    any image size.
    """
    prep = _Prepared(L, spec)
    H, W = prep.L.shape
    step = max(1, block_pixels // W)
    col_index = np.arange(W)
    for r0 in range(0, H, step):
        r1 = min(H, r0 + step)
        fine = image_patches(prep.L, spec.patch_size, r0, r1)
        if spec.patch_only:
            yield r0, r1, fine
            continue
        rows = np.repeat(np.arange(r0, r1), W)
        cols = np.tile(col_index, r1 - r0)
        yield r0, r1, np.concatenate([fine, *_context(prep, spec, rows, cols)], axis=1)
