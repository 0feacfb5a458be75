"""The experiments' data: images split by image, sampled pixels and their patches, SOMs.

Everything here is seeded from the config's one ``seed`` and cached in the cache
folder (``data/interim``) under a key of everything that determines it
(:mod:`experiments.cache`):

* :func:`split_images`: the data set's images, shuffled with the seed, the first
  ``test_fraction`` of them held out for testing (no image is in both parts);
* :func:`pixel_samples`: ``pixels_per_image`` random pixels of every image
  (``patches.sample_patches``), their UV, and their k x k L patches for each patch size,
  one memory-mapped ``.npy`` per size; the pixels are the same for every patch size;
* :func:`som`: a SOM codebook trained on the training images' sampled UV;
* :func:`stratified_rows`: the ``StratifiedShuffleSplit`` train/test rows of each split.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedShuffleSplit
from tqdm.auto import tqdm

from somcolor import datasets
from somcolor.color import rgb_to_luv, split_luv, to_float_rgb
from somcolor.io import read_image
from somcolor.patches import patches_at, sample_patches
from somcolor.quantize import SOMQuantizer, parse_shape

from . import cache
from .config import ConfigError, ExperimentConfig

log = logging.getLogger(__name__)

# Independent random streams derived from the one seed, one per use.
_STREAM_IMAGES, _STREAM_PIXELS, _STREAM_SOM, _STREAM_SPLITS, _STREAM_MLP = range(5)


def derived_seed(seed: int, stream: int, *more: int) -> int:
    """An int seed for one use (``stream``) of the config's seed; stable across runs.

    >>> derived_seed(0, 2) == derived_seed(0, 2) != derived_seed(0, 3)
    True
    """
    ss = np.random.SeedSequence([seed, stream, *more])
    return int(ss.generate_state(1)[0] % (2**31 - 1))


# ---------------------------------------------------------------------- images
@dataclass(frozen=True)
class ImageSplit:
    """The images an experiment uses, and which of them are for training and testing."""

    dataset: str
    paths: tuple[Path, ...]  # the used images, in the data set's sorted order
    ids: tuple[int, ...]  # each image's position in the whole data set (seeds its pixels)
    test: frozenset[int] = field(default_factory=frozenset)  # positions in ``paths``

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.paths]

    @property
    def train_images(self) -> np.ndarray:
        return np.array([i for i in range(len(self.paths)) if i not in self.test], dtype=np.int64)

    @property
    def test_images(self) -> np.ndarray:
        return np.array(sorted(self.test), dtype=np.int64)


def split_images(cfg: ExperimentConfig) -> ImageSplit:
    """The config's images (all, or ``max_images``), split into train and test by image.

    Raises :class:`~somcolor.exceptions.DataError` (one line) if the data set's folder
    or a file is missing or fails its checksum.
    """
    all_paths = datasets.image_paths(cfg.dataset)
    if not all_paths:
        raise ConfigError(
            f"dataset {cfg.dataset!r}: no images in {datasets.DATASETS[cfg.dataset].root}"
        )
    order = np.random.default_rng(derived_seed(cfg.seed, _STREAM_IMAGES)).permutation(
        len(all_paths)
    )
    if cfg.max_images:
        order = order[: cfg.max_images]
    if len(order) < 2:
        raise ConfigError(f"max_images: need at least 2 images to split, got {len(order)}")
    n_test = min(len(order) - 1, max(1, round(len(order) * cfg.test_fraction)))
    test_ids = set(order[:n_test].tolist())
    ids = sorted(order.tolist())
    return ImageSplit(
        dataset=cfg.dataset,
        paths=tuple(all_paths[i] for i in ids),
        ids=tuple(ids),
        test=frozenset(j for j, i in enumerate(ids) if i in test_ids),
    )


def read_luv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An image file's L ``(H, W)`` and UV ``(H, W, 2)``, float32."""
    luv = rgb_to_luv(to_float_rgb(read_image(path))).astype(np.float32, copy=False)
    L, uv = split_luv(luv)
    return np.ascontiguousarray(L), np.ascontiguousarray(uv)


# ---------------------------------------------------------------------- pixel samples
@dataclass
class PixelSamples:
    """Sampled pixels of every used image: their image, UV and (memory-mapped) patches."""

    key: str
    image: np.ndarray  # (N,) position in ImageSplit.paths
    uv: np.ndarray  # (N, 2) float32
    patch_files: dict[int, Path]  # patch size -> .npy of (N, k*k) float32

    def patches(self, k: int) -> np.ndarray:
        return cache.load_npy(self.patch_files[k], mmap=True)

    def rows_of(self, images: np.ndarray) -> np.ndarray:
        return np.flatnonzero(np.isin(self.image, images))


def samples_key(split: ImageSplit, cfg: ExperimentConfig) -> str:
    return cache.make_key(
        "pixels",
        dataset=split.dataset,
        images=split.names,
        ids=list(split.ids),
        pixels_per_image=cfg.pixels_per_image,
        seed=cfg.seed,
        code=cache.code_fingerprint(),
    )


def pixel_samples(
    split: ImageSplit, cfg: ExperimentConfig, patch_sizes, cache_dir: Path
) -> PixelSamples:
    """``pixels_per_image`` seeded pixels of each image with their UV and patches (cached).

    The pixels of image ``i`` are drawn with a generator seeded by (seed, i), so they
    are the same for every patch size and whichever other images are used.
    """
    key = samples_key(split, cfg)
    base = Path(cache_dir) / f"{key}.npz"
    files = {int(k): Path(cache_dir) / f"{key}-patch{k}.npy" for k in patch_sizes}
    missing = [k for k, f in files.items() if not f.is_file()]
    if base.is_file() and not missing:
        arrays = cache.load_npz(base)
        log.info("pixel samples %s: from the cache", key)
        return PixelSamples(key, arrays["image"], arrays["uv"], files)

    t0 = time.perf_counter()
    sizes = missing or [1]
    image_idx, uvs, feats = [], [], {k: [] for k in sizes}
    for j, (path, dataset_id) in enumerate(
        tqdm(list(zip(split.paths, split.ids, strict=True)), desc="sampling pixels", leave=False)
    ):
        L, uv = read_luv(path)
        rng = np.random.default_rng(derived_seed(cfg.seed, _STREAM_PIXELS, dataset_id))
        first, index = sample_patches(L, sizes[0], cfg.pixels_per_image, rng)
        feats[sizes[0]].append(first)
        for k in sizes[1:]:
            feats[k].append(patches_at(L, index, k))
        uvs.append(uv.reshape(-1, 2)[index])
        image_idx.append(np.full(len(index), j, dtype=np.int32))
    image = np.concatenate(image_idx)
    uv = np.concatenate(uvs).astype(np.float32)
    for k in missing:
        cache.save_npy(files[k], np.concatenate(feats.pop(k)))
    cache.save_npz(base, image=image, uv=uv)
    log.info("pixel samples %s: %d pixels in %.1f s", key, len(uv), time.perf_counter() - t0)
    return PixelSamples(key, image, uv, files)


def som_training_rows(samples: PixelSamples, split: ImageSplit, cfg: ExperimentConfig):
    """The rows the SOM learns from: the training images' pixels (all pixels if split_by=pixel)."""
    if cfg.split_by == "pixel":
        return np.arange(len(samples.uv))
    return samples.rows_of(split.train_images)


# ---------------------------------------------------------------------- SOMs
def som_params(cfg: ExperimentConfig, shape: str, repeat: int = 0) -> dict:
    """The SOMQuantizer parameters of one map (JSON-able)."""
    return {
        "som_shape": list(parse_shape(shape)),
        "n_iterations": cfg.som_iterations,
        "max_samples": cfg.som_samples,
        "random_state": derived_seed(cfg.seed, _STREAM_SOM, repeat),
    }


def som_key(samples: PixelSamples, cfg: ExperimentConfig, shape: str, repeat: int = 0) -> str:
    return cache.make_key(
        "som",
        samples=samples.key,
        split_by=cfg.split_by,
        test_fraction=cfg.test_fraction,
        params=som_params(cfg, shape, repeat),
        code=cache.code_fingerprint(),
    )


def fit_som(uv: np.ndarray, params: dict) -> tuple[SOMQuantizer, float]:
    """A SOMQuantizer fitted on ``uv`` with ``params``, and the seconds it took."""
    t0 = time.perf_counter()
    q = SOMQuantizer(
        som_shape=tuple(params["som_shape"]),
        n_iterations=params["n_iterations"],
        max_samples=params["max_samples"],
        random_state=params["random_state"],
    ).fit(uv)
    return q, time.perf_counter() - t0


def save_som(path: Path, q: SOMQuantizer, seconds: float) -> None:
    cache.save_npz(path, seconds=np.float64(seconds), **cache.quantizer_arrays(q))


def som(
    samples: PixelSamples,
    split: ImageSplit,
    cfg: ExperimentConfig,
    shape: str,
    cache_dir: Path,
    repeat: int = 0,
) -> tuple[SOMQuantizer, float]:
    """The SOM of ``shape`` for these samples (cached), and the seconds its training took."""
    path = Path(cache_dir) / f"{som_key(samples, cfg, shape, repeat)}.npz"
    if path.is_file():
        arrays = cache.load_npz(path)
        return cache.quantizer_from(arrays), float(arrays["seconds"])
    rows = som_training_rows(samples, split, cfg)
    q, seconds = fit_som(samples.uv[rows], som_params(cfg, shape, repeat))
    save_som(path, q, seconds)
    return q, seconds


# ---------------------------------------------------------------------- Table II splits
def _stratified_subsets(codes: np.ndarray, size: int, n_splits: int, seed: int, what: str):
    """``n_splits`` stratified random subsets of ``size`` rows (StratifiedShuffleSplit).

    Codes seen fewer than twice are left out first (StratifiedShuffleSplit needs two
    of each class); with 9 codes over 10^5 pixels that never happens.
    """
    values, counts = np.unique(codes, return_counts=True)
    keep = np.flatnonzero(np.isin(codes, values[counts >= 2]))
    n_classes = int(np.count_nonzero(counts >= 2))
    if size > len(keep) - n_classes:
        raise ConfigError(
            f"{what}: {size} patches asked, but the {what.split('_')[0]} images give only "
            f"{len(keep)} sampled pixels (lower {what} or use more images)"
        )
    sss = StratifiedShuffleSplit(n_splits=n_splits, train_size=size, random_state=seed)
    return [keep[part] for part, _ in sss.split(np.zeros(len(keep)), codes[keep])]


def stratified_rows(
    samples: PixelSamples, split: ImageSplit, codes: np.ndarray, cfg: ExperimentConfig
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train_rows, test_rows)`` of each of the ``n_splits`` splits, stratified by code.

    ``split_by="image"``: training rows come from the training images, test rows from
    the held-out images. ``split_by="pixel"`` is the paper's protocol: one
    StratifiedShuffleSplit over all sampled pixels (neighbouring pixels of one image
    can land on both sides).
    """
    if cfg.split_by == "pixel":
        n = len(codes)
        if cfg.train_size + cfg.test_size > n:
            raise ConfigError(
                f"train_size + test_size = {cfg.train_size + cfg.test_size} exceeds the "
                f"{n} sampled pixels"
            )
        sss = StratifiedShuffleSplit(
            n_splits=cfg.n_splits,
            train_size=cfg.train_size,
            test_size=cfg.test_size,
            random_state=derived_seed(cfg.seed, _STREAM_SPLITS),
        )
        return list(sss.split(np.zeros(n), codes))
    train_pool = samples.rows_of(split.train_images)
    test_pool = samples.rows_of(split.test_images)
    seed = derived_seed(cfg.seed, _STREAM_SPLITS)
    train = _stratified_subsets(codes[train_pool], cfg.train_size, cfg.n_splits, seed, "train_size")
    test = _stratified_subsets(codes[test_pool], cfg.test_size, cfg.n_splits, seed + 1, "test_size")
    return [(train_pool[a], test_pool[b]) for a, b in zip(train, test, strict=True)]


def mlp_seed(cfg: ExperimentConfig, split_index: int) -> int:
    """The MLP's seed in one split: the same for every cell of that split."""
    return derived_seed(cfg.seed, _STREAM_MLP, split_index)
