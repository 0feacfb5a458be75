"""Choose how ``somcolor.adapt`` fits a model to a reference photo: the "halves" protocol.

For N BSDS500 validation photos (the ``val`` split: every 5th train photo, sorted, the
first N; the test split is never used here), the LEFT half in colour is the reference and
the RIGHT half in gray the target. Each candidate adapts a model trained on the ``fit``
split only (``--model``; :mod:`experiments.hints_sweep` ``--train`` makes it) to the left
half and colours the right half; it is scored
(PSNR, rebalanced AuC, colourfulness ratio: :mod:`somcolor.evaluate`) beside the
automatic default on the same right halves. Prints one table row per candidate, the mean
gain in PSNR over the default, how many photos got worse, and the mean seconds to adapt.

``python -m experiments.choose_reference [--n 40] [--only NAME ...]``

The reference match (``match_*``) is chosen with ``experiments/reference_eval.py --split
val`` (the halves and unrelated protocols); docs/reference.md has both tables. The chosen
defaults are in :class:`somcolor.adapt.AdaptParams`.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import somcolor
from somcolor import datasets
from somcolor.evaluate import ColorPrior, Evaluation, Truth, evaluate_image, model_predictor
from somcolor.io import read_image

from .hints_sweep import FIT_MODEL

#: The candidates: AdaptParams overrides (an empty dict: the chosen defaults).
CANDIDATES: dict[str, dict] = {
    "chosen": {},
    "no-match": {"match_sigma": 0.0},
    "keep-codebook": {"codebook": "keep"},
    "som-codebook": {"codebook": "som"},
    "no-anchor": {"anchor": 0.0},
    "strong-anchor": {"anchor": 1e-1},
    "prior-0.5": {"prior": 0.5},
    "prior-1": {"prior": 1.0},
    "lr-3e-3": {"learning_rate": 3e-3},
    "lr-3e-4": {"learning_rate": 3e-4},
    "epochs-20": {"epochs": 20, "patience": 3},
}


def halves(n: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, left half, right half)`` of the first ``n`` val photos (sorted)."""
    out = []
    for path in datasets.image_paths("bsds500", "val")[:n]:
        rgb = read_image(path)
        w = rgb.shape[1] // 2
        out.append((path.stem, np.ascontiguousarray(rgb[:, :w]), np.ascontiguousarray(rgb[:, w:])))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=40, help="photos (default 40: all of val)")
    p.add_argument("--model", default=str(FIT_MODEL), help="the model adapted")
    p.add_argument("--only", nargs="*", help="candidates to run (default: all)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    default = somcolor.load(args.model).predictor()
    photos = halves(args.n)
    truths = [Truth.of(right) for _, _, right in photos]
    prior = ColorPrior()
    for t in truths:
        prior.add(t.uv)
    names = args.only or list(CANDIDATES)
    ev = Evaluation()
    auto = model_predictor(default)
    for (stem, _, _), truth in zip(photos, truths, strict=True):
        ev.rows.append(
            {"predictor": "default", "image": stem, **evaluate_image(auto, truth, prior)}
        )
    base = {r["image"]: r["psnr"] for r in ev.rows}
    seconds: dict[str, list[float]] = {}
    for name in names:
        seconds[name] = []
        for (stem, left, _), truth in zip(photos, truths, strict=True):
            t0 = time.perf_counter()
            model = default.adapt([left], random_state=args.seed, **CANDIDATES[name])
            seconds[name].append(time.perf_counter() - t0)
            row = evaluate_image(model_predictor(model), truth, prior)
            ev.rows.append({"predictor": name, "image": stem, **row})
        print(f"{name}: done", file=sys.stderr)
    print(f"halves protocol, {len(photos)} BSDS500 val photos, seed {args.seed}\n")
    print("| candidate | PSNR dB | gain dB | worse | AuC rebal. | colourful. ratio | adapt s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for s in ev.summary():
        name = s["predictor"]
        rows = [r for r in ev.rows if r["predictor"] == name]
        gain = np.mean([r["psnr"] - base[r["image"]] for r in rows])
        worse = sum(r["psnr"] < base[r["image"]] - 0.05 for r in rows)
        secs = np.mean(seconds[name]) if name in seconds else 0.0
        print(
            f"| {name} | {s['psnr']:.2f} | {gain:+.2f} | {worse}/{len(rows)} | "
            f"{s['auc_rebal']:.3f} | {s['colorfulness_ratio']:.2f} | {secs:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
