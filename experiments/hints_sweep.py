"""Settings of the hints method compared on 20 photos.

``python -m experiments.hints_sweep 1,10,100 '{}' '{"radius": 4}' ...``

Each argument after the hint counts is a JSON object of :class:`somcolor.guide.GuideParams`
overrides (``'{}'``: the defaults). On every 10th BSDS500 test photo (20 photos, the
model outputs cached by :mod:`experiments.hints_curve`), with the same simulated hints,
each setting is solved from a cold start per hint count and scored; one line per
setting: mean PSNR, AuC and rebalanced AuC per hint count, the mean conjugate-gradient
iterations and the seconds taken. Compare with Levin's row of ``hints_curve`` on the
same photos.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

import somcolor
from experiments import hints_curve as hc
from somcolor import datasets, guide
from somcolor import evaluate as ev
from somcolor.io import read_image


def main(argv: list[str]) -> int:
    p = somcolor.load().predictor()
    palette = p.codebook[p.classes]
    photos = datasets.image_paths("bsds500", "test")[::10][:20]
    truths = [ev.Truth.of(read_image(x)) for x in photos]
    prior = ev.ColorPrior()
    for t in truths:
        prior.add(t.uv)
    data = [hc._photo_data(x, p, hc.WORK_SIZE) for x in photos]
    points = [hc.simulated_hints(t.rgb, 100, hc.SEED + i) for i, t in enumerate(truths)]
    counts = [int(n) for n in argv[0].split(",")]
    for spec in argv[1:]:
        params = guide.GuideParams(**json.loads(spec))
        t0 = time.perf_counter()
        scores = {n: [] for n in counts}
        iterations = []
        for d, truth, pts in zip(data, truths, points, strict=True):
            for n in counts:
                g = guide.Guide(d["L_work"], d["proba_work"], palette, d["uv_work"], params)
                wh = guide.to_working(guide.parse_hints(pts[:n], truth.L.shape), g.shape)
                uv = guide.full_size(d["uv_auto"], d["uv_work"], g.solve(wh))
                iterations.append(g.iterations)
                r = ev.evaluate_image(lambda L, uv=uv: (uv, None), truth, prior)
                scores[n].append((r["psnr"], r["auc"], r["auc_rebal"]))
        cells = " | ".join(
            f"N={n}: " + " ".join(f"{v:.3f}" for v in np.mean(scores[n], axis=0)) for n in counts
        )
        print(f"{spec} | {cells} | its {np.mean(iterations):.0f} | "
              f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
