"""Time colorizing one BSDS500 photo (481x321) with a bundled model: median of N runs.

``python -m experiments.time_colorize [N] [MODEL]`` (MODEL: ``default``, ``fast`` or a
file) prints the in-process time (after one
warm-up call that loads numba's cached kernels) and the model's recorded training time.
"""

from __future__ import annotations

import statistics
import sys
import time

import somcolor
from somcolor import datasets
from somcolor.io import read_image


def main(n: str = "5", name: str = "default") -> int:
    model = somcolor.load(name)
    photo = read_image(datasets.DATASETS["bsds500"].root / "test" / "100007.jpg")
    model.colorize(photo)  # warm-up
    times = []
    for _ in range(int(n)):
        t0 = time.perf_counter()
        model.colorize(photo)
        times.append(time.perf_counter() - t0)
    h, w = photo.shape[:2]
    print(
        f"colorize {w}x{h}: median {statistics.median(times):.3f} s over {n} runs "
        f"(min {min(times):.3f}, max {max(times):.3f})"
    )
    secs = model.training_["seconds"]
    print(f"{name} model training: {sum(secs.values()):.1f} s ({secs})")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
