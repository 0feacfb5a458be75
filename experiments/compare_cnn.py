"""The CNN back ends against SOM + MLP, measured: ``make compare-cnn``.

Trains the Fruits-360 autoencoder and the codebook CNN (:mod:`somcolor.backends.cnn`)
on a collection's train split, colorizes the L of its test split and scores them
with :mod:`somcolor.evaluate` beside the gray baseline, the bundled fast SOM + MLP
model and, when ``make compare`` has cached it, the SOM + MLP default configuration
trained on the same split. Besides the quality table it measures what each model costs: parameters,
model file size, training seconds per epoch (and device), prediction seconds per
image, and the autoencoder study's figure of merit, the MSE of chroma scaled to
-1..1, both in LUV (u, v / 180, what somcolor predicts) and in the study's Lab
(a, b / 128 of the output image; the study reported 0.0151).

Writes ``experiments/results/compare_cnn/<collection>/summary.{md,csv}``,
``per_image.csv``, ``costs.{md,csv}``, ``grid.png`` and ``run.json`` (resolved
config, seed, code version, packages, device), and ``README.md`` with all tables.
Trained CNNs are cached in ``data/interim/compare_cnn/`` keyed by their config and
training files, so a rerun only evaluates. torch runs on ``--threads`` threads (1).

``--quick`` trains on a handful of photos for one epoch (for ``make smoke``);
``--epochs-factor N`` trains every CNN N times as many epochs (use another ``--out``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from experiments import compare, report
from somcolor import datasets, paths
from somcolor import evaluate as ev
from somcolor.backends import cnn_class
from somcolor.backends.cnn import CHROMA_SCALE
from somcolor.color import compose
from somcolor.pipeline import Colorizer


@dataclass(frozen=True)
class Settings:
    """What each CNN is trained with on one collection (the rest: the classes' defaults)."""

    ae: dict
    cls: dict
    test_limit: int | None = None


#: Shared by every CNN run: the seed, Adam's step, the batch.
COMMON = dict(batch_size=16, learning_rate=1e-3, random_state=0)
#: Chosen so that all four trainings fit in about 20 minutes on one (shared) CPU thread.
SETTINGS = {
    # 690 photos of 100x100: one 96 px crop per photo covers nearly all of it
    "fruits100": Settings(
        ae=dict(epochs=10, crop_size=96, crops_per_image=1),
        cls=dict(epochs=8, crop_size=96, crops_per_image=1),
    ),
    # 200 photos of 481x321: four 96 px crops per photo and epoch; all 200 test photos
    "bsds500": Settings(
        ae=dict(epochs=6, crop_size=96, crops_per_image=4),
        cls=dict(epochs=4, crop_size=96, crops_per_image=4),
    ),
}
QUICK = Settings(
    ae=dict(epochs=1, crop_size=64, crops_per_image=1),
    cls=dict(epochs=1, crop_size=64, crops_per_image=1, som_iterations=1000),
    test_limit=3,
)
QUICK_TRAIN = 16

NAMES = {
    "gray": "gray",
    "fast": "SOM+MLP bundled fast model (3x3, 5x5 patch, argmax; BSDS500 train split)",
    "context": "SOM+MLP default configuration, this train split (context, T=0.28, guided filter)",
    "cnn-ae": "CNN autoencoder (Fruits-360 study)",
    "cnn-cls": "CNN codebook classifier + global branch (annealed T=0.38)",
}


@dataclass
class Costs:
    """What one predictor costs, beside its quality."""

    parameters: int | None = None
    file_kb: float | None = None
    epochs: int | None = None
    train_s_per_epoch: float | None = None
    train_device: str = ""
    extra: dict = field(default_factory=dict)


def _key(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def trained_cnn(kind: str, params: dict, collection: str, train_files, cache: Path, device: str):
    """Train (or load from ``cache``) a CNN of ``kind`` with ``params`` on ``train_files``."""
    files_key = _key([f.name for f in train_files])
    path = cache / f"{collection}-{kind}-{_key(params)}-{files_key}.npz"
    cls = cnn_class(kind)
    if path.exists():
        print(f"  {kind}: cached {path.name}", flush=True)
        return cls.load(path, device=device), path
    model = cls(**params, device=device)
    print(f"  {kind}: training, {model.n_parameters} parameters, {params}", flush=True)
    model.fit(train_files, description=f"{collection} train split ({len(train_files)} photos)")
    model.save(path)
    t = model.training_
    print(
        f"  {kind}: {t['epochs']} epochs on {t['device']}, {np.mean(t['epoch_seconds']):.1f} "
        f"s/epoch, loss {t['loss'][0]:.4f} -> {t['loss'][-1]:.4f}",
        flush=True,
    )
    return model, path


def _som_parameters(model: Colorizer) -> int:
    c = model.classifier_
    return int(sum(W.size + b.size for W, b in zip(c.coefs_, c.intercepts_, strict=True)))


def _som_costs(model: Colorizer, path: Path) -> Costs:
    t = model.training_
    return Costs(
        parameters=_som_parameters(model) + model.quantizer_.codebook_.size,
        file_kb=path.stat().st_size / 1024,
        epochs=t.get("mlp_epochs"),
        train_s_per_epoch=(t["seconds"]["mlp"] / t["mlp_epochs"]) if "seconds" in t else None,
        train_device="cpu (sklearn MLP)",
        extra={"train_total_s": sum(t.get("seconds", {}).values())},
    )


def _cnn_costs(model, path: Path) -> Costs:
    t = model.training_
    return Costs(
        parameters=model.n_parameters,
        file_kb=path.stat().st_size / 1024,
        epochs=t["epochs"],
        train_s_per_epoch=float(np.mean(t["epoch_seconds"])),
        train_device=f"{t['device']} ({t.get('torch_threads', '?')} torch threads)",
        extra={"train_total_s": sum(t["seconds"].values()), "loss": t["loss"]},
    )


def _recording(predictor):
    """``predictor``, keeping the chroma of its last call in ``.last``."""

    def predict(L):
        uv, codes = predictor(L)
        predict.last = uv
        return uv, codes

    if hasattr(predictor, "codebook"):
        predict.codebook = predictor.codebook
    return predict


def chroma_mse(truth: ev.Truth, uv_pred: np.ndarray) -> tuple[float, float]:
    """The study's MSE on chroma scaled to -1..1: in LUV (u, v / 180, as predicted) and
    in Lab (a, b / 128 of the composed uint8 output against the original)."""
    from skimage.color import rgb2lab

    luv = float(np.mean(((np.asarray(uv_pred, np.float64) - truth.uv) / CHROMA_SCALE) ** 2))
    out, _ = compose(truth.L, uv_pred)
    ab_out = rgb2lab(out)[..., 1:] / 128.0
    ab_true = rgb2lab(truth.rgb)[..., 1:] / 128.0
    return luv, float(np.mean((ab_out - ab_true) ** 2))


def _context_model(collection: str, train_files) -> tuple[Colorizer, Path] | None:
    """``make compare``'s new-default row on this split, if cached (never trained here)."""
    variant = next(v for v in compare.VARIANTS if v.name == compare.DEFAULT_NAME)
    extra = dict(compare.COLLECTIONS[collection], random_state=0, max_iter=30)
    params = compare.training_params(variant, collection, extra)
    files_key = compare._key({"files": [str(f.name) for f in train_files]})
    path = paths.INTERIM_DIR / "compare" / f"{collection}-{compare._key(params)}-{files_key}.npz"
    if not path.exists():
        return None
    model = Colorizer.load(path)
    model.set_params(**variant.infer)
    return model, path


def run_collection(
    collection: str, out: Path, cache: Path, *, quick: bool, device: str, epochs_factor: int = 1
) -> tuple[ev.Evaluation, dict]:
    settings = QUICK if quick else SETTINGS[collection]
    if epochs_factor != 1:  # longer training: every CNN's epochs times the factor
        settings = replace(
            settings,
            ae=dict(settings.ae, epochs=settings.ae["epochs"] * epochs_factor),
            cls=dict(settings.cls, epochs=settings.cls["epochs"] * epochs_factor),
        )
    train_files = datasets.image_paths(collection, "train")
    test_files = datasets.image_paths(collection, "test")
    if quick:
        train_files = train_files[:QUICK_TRAIN]
    if settings.test_limit:
        test_files = test_files[: settings.test_limit]

    models, costs, files = {}, {}, {}
    models["fast"] = Colorizer.load(paths.FAST_MODEL)
    costs["fast"] = _som_costs(models["fast"], paths.FAST_MODEL)
    context = None if quick else _context_model(collection, train_files)
    if context is not None:
        models["context"], files["context"] = context
        costs["context"] = _som_costs(*context)
    elif not quick:
        print("  SOM+MLP context model: not in data/interim/compare (run make compare); skipped")
    resolved = {}
    for kind, params in (("cnn-ae", settings.ae), ("cnn-cls", settings.cls)):
        params = dict(COMMON, **params)
        resolved[kind] = params
        models[kind], files[kind] = trained_cnn(
            kind, params, collection, train_files, cache, device
        )
        costs[kind] = _cnn_costs(models[kind], files[kind])

    predictors = {"gray": _recording(ev.gray_predictor)}
    for key, model in models.items():
        predictors[NAMES[key]] = _recording(ev.model_predictor(model))
    codebook = models["fast"].quantizer_.codebook_  # accuracy of codebook-free rows

    prior = ev.ColorPrior()
    truths = [ev.Truth.of(f) for f in test_files]
    for t in truths:
        prior.add(t.uv)
    result = ev.Evaluation()
    mse = {name: ([], []) for name in predictors}
    t0 = time.perf_counter()
    for truth, f in zip(truths, test_files, strict=True):
        for name, predictor in predictors.items():
            row = {"predictor": name, "image": f.name}
            row.update(ev.evaluate_image(predictor, truth, prior, codebook))
            luv, lab = chroma_mse(truth, predictor.last)
            row.update(mse_luv=luv, mse_lab=lab)
            mse[name][0].append(luv)
            mse[name][1].append(lab)
            result.rows.append(row)
    print(
        f"  evaluated {len(test_files)} images x {len(predictors)} rows "
        f"in {time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    (out / collection).mkdir(parents=True, exist_ok=True)
    result.write(out / collection)

    seconds = {s["predictor"]: s["seconds"] for s in result.summary()}
    rows = []
    for key, name in [("gray", "gray"), *((k, NAMES[k]) for k in models)]:
        c = costs.get(key, Costs())
        rows.append(
            {
                "predictor": name,
                "parameters": c.parameters,
                "file_kb": None if c.file_kb is None else round(c.file_kb, 1),
                "train_epochs": c.epochs,
                "train_s_per_epoch": None
                if c.train_s_per_epoch is None
                else round(c.train_s_per_epoch, 2),
                "train_device": c.train_device,
                "predict_s_per_image": round(seconds[name], 4),
                "mse_luv": round(float(np.mean(mse[name][0])), 5),
                "mse_lab": round(float(np.mean(mse[name][1])), 5),
            }
        )
    _write_costs(rows, out / collection)
    compare.grid(
        {NAMES[k]: m for k, m in models.items()},
        test_files[:4],
        out / collection / "grid.png",
        columns=[NAMES[k] for k in models],
    )
    run = {
        "collection": collection,
        "quick": quick,
        "train_images": len(train_files),
        "test_images": len(test_files),
        "cnn_params": resolved,
        "model_files": {k: str(v) for k, v in files.items()},
        "training": {k: models[k].training_ for k in ("cnn-ae", "cnn-cls")},
        "costs": {k: asdict(v) for k, v in costs.items()},
        "provenance": report.provenance(),
    }
    (out / collection / "run.json").write_text(json.dumps(run, indent=2, default=str) + "\n")
    return result, run


COST_COLUMNS = [
    ("predictor", "predictor"),
    ("parameters", "parameters"),
    ("file_kb", "file KB"),
    ("train_epochs", "epochs"),
    ("train_s_per_epoch", "train s/epoch"),
    ("train_device", "trained on"),
    ("predict_s_per_image", "predict s/img"),
    ("mse_luv", "MSE, LUV u,v/180"),
    ("mse_lab", "MSE, Lab a,b/128 (study: 0.0151)"),
]


def _write_costs(rows: list[dict], folder: Path) -> None:
    with open(folder / "costs.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[c for c, _ in COST_COLUMNS])
        writer.writeheader()
        writer.writerows(rows)
    table = [
        {title: "–" if row[key] in (None, "") else row[key] for key, title in COST_COLUMNS}
        for row in rows
    ]
    (folder / "costs.md").write_text(report.markdown_table(table, [t for _, t in COST_COLUMNS]))


def write_readme(out: Path, command: str) -> None:
    sections = []
    for collection in SETTINGS:
        folder = out / collection
        if not (folder / "summary.md").exists():
            continue
        run = json.loads((folder / "run.json").read_text())
        seconds = folder / "seconds.txt"
        secs = seconds.read_text().strip() if seconds.exists() else "?"
        sections.append(
            f"## {collection} test ({run['test_images']} photos; trained on "
            f"{run['train_images']})\n\n"
            f"Costs, and the autoencoder study's MSE (chroma scaled to -1..1):\n\n"
            f"{(folder / 'costs.md').read_text()}\n"
            f"Quality:\n\n{(folder / 'summary.md').read_text()}\n"
            f"![examples]({collection}/grid.png)\n\n"
            f"CNN settings: `{json.dumps(run['cnn_params'])}`; train + evaluate {secs} s.\n"
        )
    text = (
        "# CNN back ends vs SOM + MLP\n\n"
        f"Made by `{command}`. Code accuracy of rows without their own codebook is "
        "measured against the bundled fast model's 3x3 codebook. Prediction times are "
        "single images, on the device in the 'trained on' column (SOM+MLP: the CPU; "
        "torch on --threads threads). The bundled fast "
        "model was trained on BSDS500 train **and test**, so its BSDS500 row has seen the "
        "test photos.\n\n" + "\n".join(sections)
    )
    (out / "README.md").write_text(text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--collections", default=",".join(SETTINGS))
    p.add_argument("--out", default=str(paths.RESULTS_DIR / "compare_cnn"))
    p.add_argument("--cache", default=str(paths.INTERIM_DIR / "compare_cnn"))
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--quick", action="store_true", help="tiny version for make smoke")
    p.add_argument(
        "--epochs-factor", type=int, default=1, help="train every CNN this many times longer"
    )
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    out, cache = Path(args.out), Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    for collection in args.collections.split(","):
        if collection not in SETTINGS:
            print(f"compare_cnn: error: unknown collection {collection!r}", file=sys.stderr)
            return 2
        print(f"{collection}:", flush=True)
        t0 = time.perf_counter()
        result, _ = run_collection(
            collection,
            out,
            cache,
            quick=args.quick,
            device=args.device,
            epochs_factor=args.epochs_factor,
        )
        (out / collection / "seconds.txt").write_text(f"{time.perf_counter() - t0:.0f}\n")
        for s in result.summary():
            auc = "nan" if math.isnan(s["auc"]) else f"{s['auc']:.3f}"
            print(f"    {s['predictor'][:60]:60s} AuC {auc}  PSNR {s['psnr']:.2f}")
    command = "python -m experiments.compare_cnn " + " ".join(argv or sys.argv[1:])
    write_readme(out, command.strip())
    print(f"wrote {out}/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
