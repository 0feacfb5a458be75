"""The bundled models colorize exactly as they did: checksums of a few outputs.

A refactor must leave every output byte unchanged. The checksums below were taken from
the bundled models (the default as retrained on 20 000 pixels a photo, T=0.25) on three
BSDS500 test photos (``data/raw/bsds500/test``), through each inference path: the
L-patch kernel at full resolution (``fast``), the context kernel with the guided
upsampling (``default``), another working size, and the soft decoders. A deliberate
change of the models or of their numerics updates them: ``python -m tests.test_golden``
prints the current values.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import somcolor
from somcolor.io import read_image
from somcolor.paths import RAW_DIR

PHOTOS = ("100007.jpg", "101027.jpg", "10081.jpg")

#: name -> (model, inference parameters set on it)
CASES = {
    "fast": ("fast", {}),
    "fast-mean": ("fast", {"decoder": "mean"}),
    "fast-annealed-work200": ("fast", {"decoder": "annealed", "work_size": 200}),
    "default": ("default", {}),
    "default-work240": ("default", {"work_size": 240}),
}

GOLDEN = {
    "default": {
        "100007.jpg": "0c671845a817f50d",
        "101027.jpg": "55d143fa8baf2610",
        "10081.jpg": "cf253f2e1710ccce",
    },
    "default-work240": {
        "100007.jpg": "bbd1536590c6eeca",
        "101027.jpg": "7d877f5262ad15b5",
        "10081.jpg": "d6bfbefbda0a8332",
    },
    "fast": {
        "100007.jpg": "09b705324c042c11",
        "101027.jpg": "71802664221ce30f",
        "10081.jpg": "67b783bd7eacabb3",
    },
    "fast-annealed-work200": {
        "100007.jpg": "15691ab3e002606b",
        "101027.jpg": "e9b153bb18ec78f0",
        "10081.jpg": "1cd7ad037a1f72e6",
    },
    "fast-mean": {
        "100007.jpg": "46e876ab429774a0",
        "101027.jpg": "48c56d82458b9fea",
        "10081.jpg": "9eb7311791c12497",
    },
}


def _digest(case: str, photo: str) -> str:
    name, params = CASES[case]
    model = somcolor.load(name)
    if params:
        model.set_params(**params)
    out = model.colorize(read_image(RAW_DIR / "bsds500" / "test" / photo))
    assert out.dtype == np.uint8
    return hashlib.sha256(np.ascontiguousarray(out).tobytes()).hexdigest()[:16]


@pytest.mark.parametrize("photo", PHOTOS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_bundled_models_colorize_as_recorded(case, photo):
    assert _digest(case, photo) == GOLDEN[case][photo]


if __name__ == "__main__":
    print({case: {photo: _digest(case, photo) for photo in PHOTOS} for case in sorted(CASES)})
