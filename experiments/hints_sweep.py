"""Settings of the hints method compared on the validation photos, through the product.

``python -m experiments.hints_sweep 1,10,50 '{}' '{"radius": 4}' ...``

Each argument after the hint counts is a JSON object of :class:`somcolor.guide.GuideParams`
overrides (``'{}'``: the defaults). On the BSDS500 ``val`` split (every 5th train photo,
40 photos: :mod:`somcolor.datasets`), with a model trained on the ``fit`` split only
(``--model``, default ``data/interim/honest/default_fit.npz``: the bundled default's
configuration, ``python -m experiments.hints_sweep --train`` makes it), the same
simulated hints as :mod:`experiments.hints_curve`, each setting colours every photo
through ``Model.hint_session(photo, params).colorize(points)`` and is scored; one line
per setting: mean PSNR, SSIM and rebalanced AuC per hint count, and the seconds taken.
The test split is never used here.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import somcolor
from experiments import hints_curve as hc
from somcolor import datasets, guide
from somcolor import evaluate as ev
from somcolor.io import read_image
from somcolor.paths import INTERIM_DIR

FIT_MODEL = INTERIM_DIR / "honest" / "default_fit.npz"


def train_fit_model(path=FIT_MODEL):
    """The bundled default's configuration trained on the ``fit`` split only."""
    from somcolor.pipeline import Colorizer

    config = somcolor.load().get_params()
    model = Colorizer(**config).fit(
        datasets.image_paths("bsds500", "fit"),
        description="BSDS500 fit split (train minus every 5th photo): for choosing settings",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    return model.save(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("counts", nargs="?", default="1,10,50")
    ap.add_argument("settings", nargs="*", default=["{}"])
    ap.add_argument("--model", default=str(FIT_MODEL))
    ap.add_argument("--limit", type=int, default=0, help="the first N val photos (0: all)")
    ap.add_argument("--train", action="store_true", help="train the fit-split model first")
    args = ap.parse_args(argv)
    if args.train:
        train_fit_model()
    model = somcolor.load(args.model).predictor()
    photos = datasets.image_paths("bsds500", "val")[: args.limit or None]
    truths = [ev.Truth.of(read_image(x)) for x in photos]
    prior = ev.ColorPrior()
    for t in truths:
        prior.add(t.uv)
    points = [hc.simulated_hints(t.rgb, 100, hc.SEED + i) for i, t in enumerate(truths)]
    counts = [int(n) for n in args.counts.split(",")]
    auto = [ev.score_rgb(model.colorize(t.rgb), t, prior) for t in truths]
    print(
        "automatic | "
        + " ".join(f"{np.mean([a[k] for a in auto]):.3f}" for k in ("psnr", "ssim", "auc_rebal"))
    )
    for spec in args.settings:
        params = guide.GuideParams(**json.loads(spec))
        t0 = time.perf_counter()
        scores = {n: [] for n in counts}
        for truth, pts in zip(truths, points, strict=True):
            outputs = hc.photo_outputs(model, truth.rgb, pts, counts, ("somcolor",), params)
            for n in counts:
                r = ev.score_rgb(outputs["somcolor", n], truth, prior)
                scores[n].append((r["psnr"], r["ssim"], r["auc_rebal"]))
        cells = " | ".join(
            f"N={n}: " + " ".join(f"{v:.3f}" for v in np.mean(scores[n], axis=0)) for n in counts
        )
        print(f"{spec} | {cells} | {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
