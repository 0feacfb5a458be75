"""Shared fixtures: a tiny trained model and small synthetic image files.

Everything is generated with numpy and written with Pillow directly (not through
:mod:`somcolor.io`), so the tests check somcolor's reading against an independent
writer. Nothing here touches the network or the bundled data sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from somcolor.cli import main

#: Height and width of the synthetic photos.
PHOTO_SHAPE = (32, 40)

#: Settings that train a Colorizer in about a second.
TINY_CONFIG = dict(
    patch_size=3, hidden_layer_sizes=(8,), pixels_per_image=300, max_iter=5, random_state=0
)


def synthetic_photo(seed: int = 0, shape: tuple[int, int] = PHOTO_SHAPE) -> np.ndarray:
    """A smooth color "photo": a horizontal blend of two colors plus a round blob of a third.

    Returns an ``(H, W, 3)`` uint8 array; different seeds give different colors.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    left, right, blob = rng.random((3, 3))
    t = (xx / max(w - 1, 1))[..., None]
    img = left * (1 - t) + right * t
    cy, cx = rng.uniform(0.25, 0.75, 2) * (h, w)
    inside = ((yy - cy) ** 2 + (xx - cx) ** 2 < (min(h, w) / 4) ** 2)[..., None]
    img = np.where(inside, blob, img) + 0.05 * rng.random((h, w, 1))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def image_array(kind: str = "rgb", shape: tuple[int, int] = PHOTO_SHAPE, seed: int = 0):
    """A synthetic image of one kind: ``gray``, ``rgb``, ``rgba`` (uint8) or ``gray16`` (uint16)."""
    rgb = synthetic_photo(seed, shape)
    gray = rgb.mean(axis=2).astype(np.uint8)
    if kind == "rgb":
        return rgb
    if kind == "gray":
        return gray
    if kind == "rgba":
        alpha = np.full((*shape, 1), 200, np.uint8)
        return np.concatenate([rgb, alpha], axis=2)
    if kind == "gray16":
        return gray.astype(np.uint16) * 257
    raise ValueError(f"unknown image kind {kind!r}")


def write_image_file(path, array: np.ndarray, **save_kwargs) -> Path:
    """Write ``array`` with Pillow (format from the file ending); creates parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **save_kwargs)
    return path


@pytest.fixture
def make_image(tmp_path):
    """``make_image(name, kind="rgb", shape=(32, 40), seed=0)`` writes an image under tmp_path.

    The format follows the name's ending (``.png``, ``.jpg``, ...); returns its Path.
    """

    def make(name: str, kind: str = "rgb", shape=PHOTO_SHAPE, seed: int = 0) -> Path:
        return write_image_file(tmp_path / name, image_array(kind, shape, seed))

    return make


@pytest.fixture
def photo_dir(tmp_path) -> Path:
    """A folder of three small synthetic color photos (PNG and JPEG)."""
    folder = tmp_path / "photos"
    for i, name in enumerate(["a.png", "b.png", "c.jpg"]):
        write_image_file(folder / name, synthetic_photo(seed=i))
    return folder


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A Colorizer trained in about a second on four synthetic photos, saved as ``.npz``."""
    from somcolor.pipeline import Colorizer

    photos = [synthetic_photo(seed) for seed in range(4)]
    model = Colorizer(**TINY_CONFIG).fit(photos, description="four synthetic test photos")
    path = tmp_path_factory.mktemp("model") / "tiny.npz"
    model.save(path)
    return path


# ---------------------------------------------------------------- the CLI in-process
@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()

    def lines_naming(self, path) -> list[str]:
        return [line for line in self.err_lines if str(path) in line]


@pytest.fixture
def cli(capsys):
    """``cli(*args)`` runs ``main`` in-process; argparse's SystemExit becomes the exit code."""

    def run(*args) -> Result:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = 0 if exc.code is None else exc.code
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run
