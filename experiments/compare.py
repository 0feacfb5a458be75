"""Beyond the paper, measured: ``make compare`` (``python -m experiments.compare``).

Trains each variant on a collection's train split, colorizes the L of its test
split and scores the result with :mod:`somcolor.evaluate`, beside the gray and
mean-chroma baselines and the paper's argmax rule. Each variant changes one thing
from the row it builds on, so each row measures one improvement. Writes, per
collection, ``experiments/results/compare/<collection>/summary.{md,csv}``,
``per_image.csv`` and ``grid.png`` (example images), and ``README.md`` with all the
tables. Trained models are cached in ``data/interim/compare/`` keyed by their
config, so a rerun only evaluates.

``--quick`` runs a tiny version (few images, few epochs) for ``make smoke``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from joblib import Parallel, delayed

from somcolor import datasets, paths
from somcolor import evaluate as ev
from somcolor.color import luminance
from somcolor.io import read_image
from somcolor.pipeline import Colorizer

#: The paper's published configuration (Richart et al. 2017): SOM 3x3, 3x3 patch, MLP 50+50.
PAPER = dict(som_shape=(3, 3), patch_size=3, hidden_layer_sizes=(50, 50), decoder="argmax")
CONTEXT = dict(scales=(4, 16), scale_patch_size=5, position=True)
SMOOTH = dict(smooth_radius=0.066, smooth_eps=3e-3)
#: The context model: 10x10 codebook, 7x7 patch plus coarse patches and position, MLP 64+64.
CONTEXT_MODEL = dict(
    PAPER, som_shape=(10, 10), patch_size=7, hidden_layer_sizes=(64, 64), **CONTEXT
)

#: How the full-resolution default colorized: a wide guided filter and the annealed mean at
#: T=0.28, chosen on every 7th BSDS500 test photo as the configuration with the best
#: rebalanced AuC among those with a colorfulness ratio in 0.7..1.1 and PSNR at least 1 dB
#: above gray (experiments/choose_default.py; docs/quality.md lists the candidates).
PREVIOUS_INFER = dict(decoder="annealed", temperature=0.28, smooth_radius=0.1, smooth_eps=3e-3)
#: How the default colorizes: the same filter, T=0.25, the highest temperature of
#: experiments/choose_work_size.py's grid (0.22, 0.25, 0.28, 0.35) that keeps the 256 px
#: model trained on DEFAULT_PIXELS pixels a photo inside the 0.7..1.1 colorfulness ratio.
DEFAULT_INFER = dict(PREVIOUS_INFER, temperature=0.25)
#: The bundled default (``make model``): the context model at a 256 px working size, with
#: coarse levels at 1/2 and 1/8 of it (about the 1/4 and 1/16 of a full 481x321 photo),
#: chosen for speed by experiments/choose_work_size.py (docs/quality.md), trained on
#: DEFAULT_PIXELS pixels drawn per BSDS500 photo (of about 44 000 at the working size).
DEFAULT_TRAIN = dict(CONTEXT_MODEL, work_size=256, scales=(2, 8))
DEFAULT_PIXELS = 20000
DEFAULT_NAME = "default: context model at 256 px, guided upsampling r=0.1, annealed T=0.25"
#: The default until the working size: the same at full resolution.
FULL_NAME = "previous default: context model at full resolution, guided filter, T=0.28"
#: Every 7th BSDS500 test photo chose the default (experiments/choose_default.py); the
#: others are also reported on their own.
SELECTION_STEP = 7


@dataclass(frozen=True)
class Variant:
    name: str
    train: dict  # Colorizer parameters that need training
    infer: dict = field(default_factory=dict)  # parameters applied after loading
    everywhere: bool = False  # also on the smaller collections (else BSDS500 only)
    #: Training pixels drawn per BSDS500 photo, in place of the collection's 2500
    #: (the small collections keep theirs: their photos hold few more pixels).
    bsds500_pixels: int | None = None


VARIANTS = [
    Variant("paper: SOM 3x3, 3x3 patch, 50+50, argmax", PAPER, everywhere=True),
    Variant("+ mean decoding", PAPER, {"decoder": "mean"}, everywhere=True),
    Variant("+ annealed mean (T=0.38)", PAPER, {"decoder": "annealed"}),
    Variant(
        "10x10 codebook, 5x5 patch, mean",
        dict(PAPER, som_shape=(10, 10), patch_size=5),
        {"decoder": "mean"},
    ),
    Variant(
        "20x20 codebook, 5x5 patch, mean",
        dict(PAPER, som_shape=(20, 20), patch_size=5),
        {"decoder": "mean"},
    ),
    Variant(
        "+ context: 7x7 + coarse 1/4, 1/16 patches + position, 64+64",
        CONTEXT_MODEL,
        {"decoder": "mean"},
    ),
    Variant(
        "+ rebalancing (lambda=0.5)",
        dict(CONTEXT_MODEL, rebalance=True),
        {"decoder": "mean"},
    ),
    Variant(
        "+ guided filter (context model)",
        CONTEXT_MODEL,
        {"decoder": "mean", **SMOOTH},
        everywhere=True,
    ),
    Variant(
        "+ annealed T=0.6 (context model, guided filter)",
        CONTEXT_MODEL,
        {"decoder": "annealed", "temperature": 0.6, **SMOOTH},
        everywhere=True,
    ),
    Variant(
        "+ working resolution 240 px (context, guided filter)",
        dict(CONTEXT_MODEL, work_size=240),
        {"decoder": "mean", **SMOOTH},
    ),
    Variant(FULL_NAME, CONTEXT_MODEL, PREVIOUS_INFER),
    Variant(
        DEFAULT_NAME, DEFAULT_TRAIN, DEFAULT_INFER, everywhere=True, bsds500_pixels=DEFAULT_PIXELS
    ),
]

#: Per collection: training pixels per image (the paper's 2500 where images are large).
COLLECTIONS = {
    "bsds500": {"pixels_per_image": 2500},
    "opencountry": {"pixels_per_image": 1000},  # 64x64 thumbnails: 4096 pixels each
    "fruits100": {"pixels_per_image": 500},  # 100x100, mostly white background
}


def _key(params: dict) -> str:
    text = json.dumps(params, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def training_params(v: Variant, collection: str, extra: dict, *, quick: bool = False) -> dict:
    """The Colorizer parameters variant ``v`` trains with on ``collection`` (``extra``: the
    collection's pixels per image, seed and epochs)."""
    params = dict(v.train, **extra)
    if collection == "bsds500" and v.bsds500_pixels and not quick:
        params["pixels_per_image"] = v.bsds500_pixels
    return params


def trained_model(collection: str, params: dict, train_files, cache: Path) -> Colorizer:
    """Train (or load from the cache) a Colorizer with ``params`` on ``train_files``."""
    files_key = _key({"files": [str(f.name) for f in train_files]})
    path = cache / f"{collection}-{_key(params)}-{files_key}.npz"
    if path.exists():
        return Colorizer.load(path)
    t0 = time.perf_counter()
    model = Colorizer(**params).fit(train_files, description=f"{collection} train split")
    model.save(path)
    print(f"  trained {path.name} in {time.perf_counter() - t0:.0f} s", flush=True)
    return model


def _evaluate_one(predictors, codebook, truth, prior, name):
    rows = []
    for pname, predictor in predictors.items():
        row = {"predictor": pname, "image": name}
        row.update(ev.evaluate_image(predictor, truth, prior, codebook))
        rows.append(row)
    return rows


def run_collection(collection: str, out: Path, *, quick: bool, n_jobs: int) -> ev.Evaluation:
    cache = paths.INTERIM_DIR / "compare"
    cache.mkdir(parents=True, exist_ok=True)
    train_files = datasets.image_paths(collection, "train")
    test_files = datasets.image_paths(collection, "test")
    extra = dict(COLLECTIONS[collection], random_state=0, max_iter=30)
    if quick:
        train_files, test_files = train_files[:12], test_files[:3]
        extra.update(pixels_per_image=300, max_iter=3)

    models = {}
    predictors: dict = {"gray": ev.gray_predictor}
    for v in VARIANTS:
        if collection != "bsds500" and not v.everywhere:
            continue
        params = training_params(v, collection, extra, quick=quick)
        model = trained_model(collection, params, train_files, cache)
        model.set_params(**v.infer)
        models[v.name] = model
        predictors[v.name] = ev.model_predictor(model)
    paper = models[VARIANTS[0].name]
    predictors = {
        "gray": ev.gray_predictor,
        "train mean chroma": ev.constant_predictor(paper.quantizer_.mean_),
        **{k: v for k, v in predictors.items() if k != "gray"},
    }

    t0 = time.perf_counter()
    result = evaluate_photos(predictors, paper.quantizer_.codebook_, test_files, n_jobs)
    print(
        f"  evaluated {len(test_files)} images x {len(predictors)} rows "
        f"in {time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    result.write(out / collection)
    if collection == "bsds500":
        write_unselected(result, test_files, out / collection)
    grid(models, test_files[:4], out / collection / "grid.png")
    return result


def evaluate_photos(predictors: dict, codebook, files, n_jobs: int) -> ev.Evaluation:
    """Every predictor on every photo, ``n_jobs`` photos at a time; the class-rebalancing
    prior is that of ``files`` themselves."""
    prior = ev.ColorPrior()
    truths = []
    for f in files:
        truths.append(ev.Truth.of(f))
        prior.add(truths[-1].uv)
    per_image = Parallel(n_jobs=n_jobs)(
        delayed(_evaluate_one)(predictors, codebook, t, prior, f.name)
        for t, f in zip(truths, files, strict=True)
    )
    return ev.Evaluation([row for rows in per_image for row in rows])


def write_unselected(result: ev.Evaluation, test_files, out: Path) -> Path:
    """The summary over the test photos that did not choose the default."""
    chosen_on = {f.name for f in test_files[::SELECTION_STEP]}
    rest = ev.Evaluation([r for r in result.rows if r["image"] not in chosen_on])
    n = len({r["image"] for r in rest.rows})
    path = out / "summary_unselected.md"
    path.write_text(
        f"The {n} test photos not used to choose the default "
        f"(all but every {SELECTION_STEP}th):\n\n{rest.markdown()}"
    )
    return path


def grid(models: dict, files, path: Path, columns=None) -> None:
    """Example images: gray | selected variants | original, one row per photo."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = columns or [VARIANTS[0].name, VARIANTS[1].name, VARIANTS[7].name, DEFAULT_NAME]
    fig, axes = plt.subplots(
        len(files),
        len(names) + 2,
        figsize=(2.6 * (len(names) + 2), 2.0 * len(files)),
        squeeze=False,
    )
    for r, f in enumerate(files):
        photo = read_image(f)
        L = luminance(photo)
        cells = [
            ("gray input", L),
            *((n, models[n].colorize(photo)) for n in names),
            ("original", photo),
        ]
        for c, (title, img) in enumerate(cells):
            ax = axes[r, c]
            ax.imshow(
                img,
                cmap="gray" if img.ndim == 2 else None,
                vmin=0,
                vmax=100 if img.ndim == 2 else None,
            )
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title if len(title) < 28 else title[:26] + "…", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--collections", default=",".join(COLLECTIONS))
    p.add_argument("--out", default=str(paths.RESULTS_DIR / "compare"))
    p.add_argument("--quick", action="store_true", help="tiny version for make smoke")
    p.add_argument("--jobs", type=int, default=2, help="parallel evaluation workers")
    args = p.parse_args(argv)
    out = Path(args.out)
    for collection in args.collections.split(","):
        if collection not in COLLECTIONS:
            print(f"compare: error: unknown collection {collection!r}", file=sys.stderr)
            return 2
        print(f"{collection}:", flush=True)
        t0 = time.perf_counter()
        run_collection(collection, out, quick=args.quick, n_jobs=args.jobs)
        (out / collection / "seconds.txt").write_text(f"{time.perf_counter() - t0:.0f}\n")
    write_readme(out)
    print(f"wrote {out}/README.md")
    return 0


def write_readme(out: Path) -> None:
    """Gather every collection's table (whichever runs produced them) into one page."""
    sections = []
    for collection in COLLECTIONS:
        table = out / collection / "summary.md"
        if not table.exists():
            continue
        note = " (64x64 thumbnails, not the paper's 256x256)" if collection == "opencountry" else ""
        seconds = out / collection / "seconds.txt"
        secs = seconds.read_text().strip() if seconds.exists() else "?"
        extra = ""
        unselected = out / collection / "summary_unselected.md"
        if unselected.exists():
            extra = (
                f"\n{unselected.read_text()}\n"
                f"How the default was chosen: {collection}/choose_default.md\n"
            )
        sections.append(
            f"## {collection} test{note}\n\n{table.read_text()}\n"
            f"![examples]({collection}/grid.png)\n\n(train + evaluate: {secs} s)\n{extra}"
        )
    text = "# Colorization quality: variants against baselines\n\n" + "\n".join(sections)
    (out / "README.md").write_text(text)


if __name__ == "__main__":
    sys.exit(main())
