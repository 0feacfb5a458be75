"""Cached intermediates in ``data/interim``, keyed by a hash of everything that determines them.

A key is the sha256 of a JSON description: the parameters, the keys of the inputs
it was made from, the source of the code that computes it and the versions of the
libraries it calls. Change any of them and the key changes, so a stale file is never
read; unchanged, a rerun loads the file instead of recomputing it.

Files are ``.npz`` (plain arrays, read with ``allow_pickle=False``) or ``.npy``
(memory-mapped), written atomically so an interrupted run leaves no half file.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import tempfile
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from somcolor.quantize import SOMQuantizer

#: Modules whose source determines the cached data and the grid cells' results.
COMPUTE_MODULES = (
    "somcolor.io",
    "somcolor.color",
    "somcolor.datasets",
    "somcolor.patches",
    "somcolor.quantize",
    "somcolor.classify",
    "experiments.data",
    "experiments.cells",
)

#: Libraries whose version determines the numbers.
COMPUTE_PACKAGES = ("numpy", "scikit-learn", "scikit-image", "minisom", "numba", "pillow")


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


@cache
def code_fingerprint() -> str:
    """sha256 of the :data:`COMPUTE_MODULES` sources and :data:`COMPUTE_PACKAGES` versions."""
    h = hashlib.sha256()
    for name in COMPUTE_MODULES:
        h.update(name.encode())
        h.update(Path(importlib.import_module(name).__file__).read_bytes())
    for name in COMPUTE_PACKAGES:
        h.update(f"{name}=={package_version(name)}".encode())
    return h.hexdigest()[:16]


def make_key(kind: str, **parts) -> str:
    """A short, stable key for a ``kind`` of intermediate determined by ``parts``.

    >>> make_key("som", shape=[3, 3]) == make_key("som", shape=[3, 3])
    True
    >>> make_key("som", shape=[3, 3]) == make_key("som", shape=[5, 5])
    False
    """
    text = json.dumps({"kind": kind, **parts}, sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _atomic(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_npz(path: Path, **arrays) -> Path:
    return _atomic(Path(path), lambda fh: np.savez(fh, **arrays))


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def save_npy(path: Path, array: np.ndarray) -> Path:
    return _atomic(Path(path), lambda fh: np.save(fh, array, allow_pickle=False))


def load_npy(path: Path, mmap: bool = True) -> np.ndarray:
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def write_json(path: Path, obj) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"
    return _atomic(Path(path), lambda fh: fh.write(text.encode()))


# ---------------------------------------------------------------------- SOMs as arrays
def quantizer_arrays(q: SOMQuantizer) -> dict[str, np.ndarray]:
    """The fitted state of a SOM quantizer as plain arrays (what :func:`quantizer_from` needs)."""
    return {
        "codebook": q.codebook_,
        "mean": q.mean_,
        "scale": q.scale_,
        "som_shape": np.asarray(q.som_shape, dtype=np.int64),
    }


def quantizer_from(arrays: dict[str, np.ndarray]) -> SOMQuantizer:
    """A fitted :class:`SOMQuantizer` rebuilt from :func:`quantizer_arrays` (no pickle)."""
    q = SOMQuantizer(som_shape=tuple(int(s) for s in arrays["som_shape"]))
    q.codebook_ = np.asarray(arrays["codebook"], dtype=np.float64)
    q.mean_ = np.asarray(arrays["mean"], dtype=np.float64)
    q.scale_ = np.asarray(arrays["scale"], dtype=np.float64)
    q.n_features_in_ = q.codebook_.shape[1]
    return q
