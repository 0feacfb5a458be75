"""The README's example: gray input | the two bundled models' colors | the original photo.

``python -m experiments.example_pair [OUT]`` (default ``docs/example.jpg``) colorizes
two photos that ship with scikit-image (so they are in no training set of ours) with
both bundled models and writes gray | fast model | default model | original side by side.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import skimage.data

import somcolor
from somcolor.color import luminance, luv_to_rgb, merge_luv, to_uint8
from somcolor.io import write_image

PHOTOS = ("coffee", "chelsea")  # skimage.data photos, available offline


def main(out: str = "docs/example.jpg") -> int:
    models = [somcolor.load("fast"), somcolor.load("default")]
    rows = []
    for name in PHOTOS:
        photo = getattr(skimage.data, name)()
        L = luminance(photo)
        gray, _ = luv_to_rgb(merge_luv(L, np.zeros((*L.shape, 2), L.dtype)))
        sep = np.full((photo.shape[0], 6, 3), 255, np.uint8)
        cells = [to_uint8(gray), *(m.colorize(photo) for m in models), photo]
        rows.append(np.concatenate([x for c in cells for x in (c, sep)][:-1], 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    write_image(Path(out), np.concatenate(rows, 0)[:-6], overwrite=True)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
