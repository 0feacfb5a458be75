"""How the bundled default was chosen: ``python -m experiments.choose_default``.

The selection rule: among inference settings of the models ``make compare`` trained on the
BSDS500 train split, take the best rebalanced AuC among those whose colorfulness ratio
lies in 0.7..1.1 and whose PSNR is at least 1 dB above the gray baseline. Settings are
scored on a *selection* subset, every 7th BSDS500 test photo (29 photos), so the
choice can be checked on the other 171 (``make compare`` reports all 200 and the
remaining ones separately). Needs the models in ``data/interim/compare/`` (run
``make compare`` first, or this trains them). Writes
``experiments/results/compare/bsds500/choose_default.md``.
"""

from __future__ import annotations

import argparse
import sys
import time

from somcolor import datasets, paths
from somcolor import evaluate as ev

from . import compare

SELECTION_STEP = compare.SELECTION_STEP
RATIO = (0.7, 1.1)
MIN_GAIN_DB = 1.0

#: (label, training parameters, inference parameters) of each candidate.
CANDIDATES = [
    (
        "context, guided filter r=0.066, mean",
        compare.CONTEXT_MODEL,
        dict(decoder="mean", **compare.SMOOTH),
    ),
    *(
        (
            f"context, guided filter r={r}, annealed T={T}",
            compare.CONTEXT_MODEL,
            dict(decoder="annealed", temperature=T, smooth_radius=r, smooth_eps=3e-3),
        )
        for r, T in [
            (0.066, 0.45),
            (0.066, 0.38),
            (0.066, 0.35),
            (0.066, 0.3),
            (0.1, 0.33),
            (0.1, 0.28),
            (0.1, 0.25),
            (0.15, 0.3),
            (0.15, 0.25),
            (0.033, 0.38),
        ]
    ),
    (
        "context + rebalancing, guided filter r=0.066, annealed T=0.5",
        dict(compare.CONTEXT_MODEL, rebalance=True),
        dict(decoder="annealed", temperature=0.5, **compare.SMOOTH),
    ),
    (
        "context + rebalancing, guided filter r=0.066, annealed T=0.38",
        dict(compare.CONTEXT_MODEL, rebalance=True),
        dict(decoder="annealed", temperature=0.38, **compare.SMOOTH),
    ),
    *(
        (
            f"context + image statistics, guided filter r=0.1, annealed T={T}",
            dict(compare.CONTEXT_MODEL, image_stats=True),
            dict(decoder="annealed", temperature=T, smooth_radius=0.1, smooth_eps=3e-3),
        )
        for T in (0.33, 0.28)
    ),
    (
        "context at working size 240 px, guided filter r=0.1, annealed T=0.33",
        dict(compare.CONTEXT_MODEL, work_size=240),
        dict(decoder="annealed", temperature=0.33, smooth_radius=0.1, smooth_eps=3e-3),
    ),
]


def selection_files():
    """The selection subset: every 7th BSDS500 test photo."""
    return datasets.image_paths("bsds500", "test")[::SELECTION_STEP]


def margins(rows: list[dict], floor: float) -> str:
    """Each candidate's distance to the two constraints, unrounded enough to see a miss."""
    lines = [
        "| candidate | PSNR - floor, dB | colorfulness ratio | rebalanced AuC | meets both |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in rows:
        ok = RATIO[0] <= s["colorfulness_ratio"] <= RATIO[1] and s["psnr"] >= floor
        lines.append(
            f"| {s['predictor']} | {s['psnr'] - floor:+.3f} | {s['colorfulness_ratio']:.4f} "
            f"| {s['auc_rebal']:.4f} | {'yes' if ok else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=2, help="parallel evaluation workers")
    args = p.parse_args(argv)
    cache = paths.INTERIM_DIR / "compare"
    cache.mkdir(parents=True, exist_ok=True)
    train_files = datasets.image_paths("bsds500", "train")
    extra = dict(compare.COLLECTIONS["bsds500"], random_state=0, max_iter=30)
    paper = compare.trained_model("bsds500", dict(compare.PAPER, **extra), train_files, cache)
    predictors = {"gray": ev.gray_predictor, compare.VARIANTS[0].name: ev.model_predictor(paper)}
    for label, train, infer in CANDIDATES:
        model = compare.trained_model("bsds500", dict(train, **extra), train_files, cache)
        model.set_params(**infer)
        predictors[label] = ev.model_predictor(model)

    files = selection_files()
    t0 = time.perf_counter()
    result = compare.evaluate_photos(predictors, paper.quantizer_.codebook_, files, args.jobs)
    summary = {s["predictor"]: s for s in result.summary()}
    floor = summary["gray"]["psnr"] + MIN_GAIN_DB
    eligible = [
        s
        for label, *_ in CANDIDATES
        if RATIO[0] <= (s := summary[label])["colorfulness_ratio"] <= RATIO[1]
        and s["psnr"] >= floor
    ]
    chosen = max(eligible, key=lambda s: s["auc_rebal"]) if eligible else None
    verdict = (
        f"Chosen: **{chosen['predictor']}** (rebalanced AuC {chosen['auc_rebal']:.3f}, "
        f"PSNR {chosen['psnr']:.2f} dB, colorfulness ratio {chosen['colorfulness_ratio']:.2f})."
        if chosen
        else "No candidate meets both constraints."
    )
    text = (
        f"# Choosing the default on {len(files)} BSDS500 test photos (every {SELECTION_STEP}th)\n\n"
        f"Rule: best rebalanced AuC among candidates with colorfulness ratio in "
        f"{RATIO[0]}..{RATIO[1]} and PSNR >= gray + {MIN_GAIN_DB} dB ({floor:.2f} dB).\n\n"
        f"{result.markdown()}\n{verdict}\n\n"
        f"{margins([summary[label] for label, *_ in CANDIDATES], floor)}\n"
        f"(`python -m experiments.choose_default`, {time.perf_counter() - t0:.0f} s)\n"
    )
    out = paths.RESULTS_DIR / "compare" / "bsds500" / "choose_default.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
