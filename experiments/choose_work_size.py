"""Choose the default model's working size by measurement: quality against speed.

``python -m experiments.choose_work_size [--sizes 256,320] [--temperatures 0.28,0.24,0.2]
[--pixels 2500,20000] [--hidden 96,96] [--no-position]`` trains the context model of
``make compare`` (:data:`experiments.compare.CONTEXT_MODEL`) at each working size (and,
with ``--pixels``, each number of training pixels drawn per photo) on the BSDS500 train
split (cached in ``data/interim/compare``, like ``make compare``'s models), then scores on
the 200 test photos, for each annealing temperature, the predictions brought to full size
by the fast guided filter (``smooth_radius`` 0.1 of the working long side), beside the gray
baseline and the full-resolution configuration the default had before (trained at full
size, guided filter at full size, T = 0.28). Each row also gives the in-process time of
``colorize`` on one 481x321 photo (median of 5). Writes
``experiments/results/choose_work_size/summary.{md,csv}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from somcolor import datasets, paths
from somcolor import evaluate as ev
from somcolor.io import read_image

from .bench_default import median_time
from .compare import (
    COLLECTIONS,
    CONTEXT_MODEL,
    PREVIOUS_INFER,
    evaluate_photos,
    trained_model,
)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="256,320", help="working sizes to train (px)")
    p.add_argument("--temperatures", default="0.28,0.24,0.2")
    p.add_argument("--scales", default="4,16", help="coarse context levels of the models")
    p.add_argument(
        "--pixels",
        default=str(COLLECTIONS["bsds500"]["pixels_per_image"]),
        help="training pixels drawn per photo at the working size, comma-separated",
    )
    p.add_argument("--hidden", help="hidden layer sizes of the working-size models, e.g. 96,96")
    p.add_argument(
        "--no-position",
        action="store_true",
        help="working-size models without the position feature",
    )
    p.add_argument("--limit", type=int, help="score only every n-th test photo")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--no-full", action="store_true", help="skip the full-resolution row")
    p.add_argument("--out", default=str(paths.RESULTS_DIR / "choose_work_size"))
    args = p.parse_args(argv)
    cache = paths.INTERIM_DIR / "compare"
    cache.mkdir(parents=True, exist_ok=True)
    train_files = datasets.image_paths("bsds500", "train")
    test_files = datasets.image_paths("bsds500", "test")
    if args.limit:
        test_files = test_files[:: args.limit]
    extra = dict(COLLECTIONS["bsds500"], random_state=0, max_iter=30)
    photo = read_image(datasets.DATASETS["bsds500"].root / "test" / "100007.jpg")

    predictors: dict = {"gray": ev.gray_predictor}
    seconds: dict = {"gray": 0.0}
    codebook = None
    configs = []
    if not args.no_full:
        configs.append((None, [PREVIOUS_INFER["temperature"]]))
    temps = [float(t) for t in args.temperatures.split(",")]
    pixels = [int(n) for n in args.pixels.split(",")]
    configs += [(int(s), temps) for s in args.sizes.split(",")]
    for size, temperatures in configs:
        for n_pixels in pixels if size is not None else [extra["pixels_per_image"]]:
            params = dict(CONTEXT_MODEL, work_size=size, **dict(extra, pixels_per_image=n_pixels))
            if size is not None:
                params["scales"] = tuple(int(f) for f in args.scales.split(","))
                if args.hidden:
                    params["hidden_layer_sizes"] = tuple(int(n) for n in args.hidden.split(","))
                if args.no_position:
                    params["position"] = False
            model = trained_model("bsds500", params, train_files, cache)
            codebook = model.quantizer_.codebook_
            for T in temperatures:
                m = model.predictor()  # a Predictor of its own: set_params leaves model as is
                m.set_params(**dict(PREVIOUS_INFER, temperature=T))
                scales = params["scales"]
                name = f"work {size or 'full'}, scales {scales}, {n_pixels} px/photo, T={T}"
                if size is not None and (args.hidden or args.no_position):
                    name += (
                        f", hidden {params['hidden_layer_sizes']}, position {params['position']}"
                    )
                predictors[name] = ev.model_predictor(m)
                seconds[name] = median_time(lambda m=m: m.colorize(photo), 5)
                print(f"  {name}: {seconds[name]:.3f} s/photo", flush=True)
    t0 = time.perf_counter()
    result = evaluate_photos(predictors, codebook, test_files, args.jobs)
    print(f"  evaluated {len(test_files)} photos in {time.perf_counter() - t0:.0f} s")
    out = Path(args.out)
    result.write(out)
    lines = ["| predictor | PSNR | AuC | rebalanced AuC | colorfulness ratio | s/photo |"]
    lines.append("| --- | --- | --- | --- | --- | --- |")
    for row in result.summary():
        name = row["predictor"]
        lines.append(
            f"| {name} | {row['psnr']:.2f} | {row['auc']:.3f} | {row['auc_rebal']:.3f} "
            f"| {row['colorfulness_ratio']:.3f} | {seconds.get(name, float('nan')):.3f} |"
        )
    table = "\n".join(lines)
    (out / "table.md").write_text(
        f"BSDS500 test, {len(test_files)} photos; "
        f"`python -m experiments.choose_work_size {' '.join(argv or sys.argv[1:])}`\n\n"
        + table
        + "\n"
    )
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
