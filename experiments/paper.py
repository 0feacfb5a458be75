"""The paper's tables and figures, one function each: config in, :class:`Outcome` out.

* :func:`table1`: SOM sizes -> quantization error (UV and z-score units), training time;
* :func:`table2`: patch size x hidden layers -> MLP train/test accuracy over stratified splits;
* :func:`codebooks`: one test image painted with each SOM size's codebook (Figs 8 and 9);
* :func:`colorize`: original | its UV | gray | predicted UV | prediction (Fig 10).

Grids go through :func:`experiments.grid.run_cells`; data and SOMs through
:mod:`experiments.data` (cached). Nothing here writes files: :mod:`experiments.run` does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from somcolor.classify import PatchClassifier
from somcolor.color import compose
from somcolor.patches import image_patches
from somcolor.quantize import parse_shape

from . import cache, data
from .cells import mlp_cell, som_cell
from .config import ConfigError, ExperimentConfig, parse_hidden
from .grid import Cell, GridStats, run_cells
from .report import DATA_LABELS, mean_std

#: The paper's Table I: mean quantization error of each SOM size on variance-normalized UV.
PAPER_TABLE1 = {"3x3": 0.62, "5x5": 0.46, "10x10": 0.20, "20x20": 0.10}

#: The paper's best cell of Table II (patch 3x3, hidden 50+50): train and test accuracy.
PAPER_TABLE2_BEST = {"patch": 3, "hidden": "50+50", "train": 0.419, "test": 0.409}


@dataclass
class Outcome:
    """What an experiment produced; :mod:`experiments.run` writes it to disk."""

    title: str
    rows: list[dict]  # the metrics, numeric -> table.csv
    display: list[dict]  # the same, formatted -> table.md
    notes: list[str] = field(default_factory=list)  # bullets under the Markdown table
    cells: list[dict] = field(default_factory=list)  # one row per grid cell -> cells.csv
    figure: Figure | None = None  # -> figure.png
    summary: dict = field(default_factory=dict)  # -> run.json


def mlp_params(cfg: ExperimentConfig) -> dict:
    """The PatchClassifier settings besides the hidden layers and the seed."""
    return {
        "max_iter": cfg.max_iter,
        "early_stopping": cfg.early_stopping,
        "n_iter_no_change": cfg.n_iter_no_change,
        "batch_size": cfg.batch_size,
        "learning_rate_init": cfg.learning_rate_init,
        "alpha": cfg.alpha,
    }


def _codes(shape: str) -> int:
    rows, cols = parse_shape(shape)
    return rows * cols


# ---------------------------------------------------------------------- Table I
def table1(cfg, cache_dir: Path, cell_dir: Path, scheduler=None, stats=None) -> Outcome:
    """SOM sizes trained on the same UV sample: quantization error and training time."""
    split = data.split_images(cfg)
    samples = data.pixel_samples(split, cfg, [], cache_dir)
    uv_train = samples.uv[data.som_training_rows(samples, split, cfg)]
    uv_test = samples.uv[samples.rows_of(split.test_images)]
    cells = []
    for shape in cfg.som_shapes:
        for r in range(cfg.som_repeats):
            cells.append(
                Cell(
                    key=data.som_key(samples, cfg, shape, r),
                    params={"som": shape, "repeat": r},
                    func=som_cell,
                    args=lambda: (uv_train, uv_test),
                    kwargs={"params": data.som_params(cfg, shape, r)},
                    cost=_codes(shape),
                )
            )
    records = run_cells(
        cells,
        cell_dir,
        n_jobs=cfg.n_jobs,
        scheduler=scheduler,
        desc=f"{cfg.name}: SOMs",
        stats=stats,
    )
    for record in records:  # keep every trained map: Figs 8/9 reuse them
        path = Path(cache_dir) / f"{record['key']}.npz"
        if not path.is_file():
            arrays = {k: np.asarray(v) for k, v in record["result"]["som"].items()}
            q = cache.quantizer_from(arrays)
            data.save_som(path, q, record["result"]["fit_seconds"])

    metrics = ("qe_z_train", "qe_z_test", "qe_uv_train", "qe_uv_test", "fit_seconds")
    metrics += ("codes_used", "cpu_seconds")
    cell_rows = [{**r["params"], **{m: r["result"][m] for m in metrics}} for r in records]
    rows, display = [], []
    for shape in cfg.som_shapes:
        mine = [r for r in cell_rows if r["som"] == shape]
        agg = {m: np.array([r[m] for r in mine], dtype=np.float64) for m in metrics}
        paper = PAPER_TABLE1.get(shape)
        rows.append(
            {
                "som": shape,
                "codes": _codes(shape),
                "repeats": len(mine),
                **{f"{m}_mean": round(float(v.mean()), 4) for m, v in agg.items()},
                **{f"{m}_std": round(float(v.std()), 4) for m, v in agg.items()},
                "paper_qe_z": paper,
            }
        )
        display.append(
            {
                "SOM": f"{shape} ({_codes(shape)} codes)",
                "QE z-score, train": mean_std(agg["qe_z_train"]),
                "QE z-score, test images": mean_std(agg["qe_z_test"]),
                "paper (z-score)": "" if paper is None else f"{paper:.2f}",
                "QE UV, train": mean_std(agg["qe_uv_train"], 2),
                "QE UV, test images": mean_std(agg["qe_uv_test"], 2),
                "codes used": f"{agg['codes_used'].mean():.0f}",
                "training time (s)": mean_std(agg["fit_seconds"], 2),
            }
        )
    n_train, n_test = len(uv_train), len(uv_test)
    notes = [
        f"Each SOM trains on a seeded subsample of {cfg.som_samples} of the {n_train} sampled "
        f"UV values of the training images ({cfg.pixels_per_image} random pixels per image), "
        f"{cfg.som_iterations} minisom steps; mean ± std over {cfg.som_repeats} seeds.",
        "QE = mean Euclidean distance from a pixel's UV to its nearest code: in raw CIELUV "
        "UV units, and in per-channel z-score units of the SOM's training sample "
        "(`SOMQuantizer.quantization_error(X, standardized=True)`), the units of the paper's "
        f"Table I. 'train' = all {n_train} training-image pixels, 'test images' = the "
        f"{n_test} sampled pixels of the held-out images.",
        "Training time: `SOMQuantizer.fit` wall time, one BLAS thread, measured when the map "
        "was trained (two maps train at once on the two cores).",
    ]
    return Outcome(
        title="Table I: SOM size vs quantization error",
        rows=rows,
        display=display,
        notes=notes,
        cells=cell_rows,
        summary={"n_train_pixels": n_train, "n_test_pixels": n_test},
    )


# ---------------------------------------------------------------------- Table II
def _mlp_cost(k: int, hidden: tuple[int, ...], n_codes: int) -> float:
    """Multiply-adds per sample of a forward pass, plus a per-layer overhead."""
    widths = [k * k, *hidden, n_codes]
    return sum(a * b for a, b in zip(widths, widths[1:], strict=False)) + 2000 * len(widths)


def _prepare_table2(cfg: ExperimentConfig, cache_dir: Path, patch_sizes):
    split = data.split_images(cfg)
    samples = data.pixel_samples(split, cfg, patch_sizes, cache_dir)
    q, _ = data.som(samples, split, cfg, cfg.som_shape, cache_dir)
    codes = q.predict(samples.uv)
    splits = data.stratified_rows(samples, split, codes, cfg)
    return split, samples, q, codes, splits


def table2(cfg, cache_dir: Path, cell_dir: Path, scheduler=None, stats=None) -> Outcome:
    """Patch size x hidden layers: MLP accuracy over ``n_splits`` stratified splits."""
    split, samples, q, codes, splits = _prepare_table2(cfg, cache_dir, cfg.patch_sizes)
    som_key = data.som_key(samples, cfg, cfg.som_shape)
    mlp = mlp_params(cfg)
    cells = []
    for k in cfg.patch_sizes:
        for h in cfg.hidden_layers:
            hidden = parse_hidden(h)
            for s, (tr, te) in enumerate(splits):
                seed = data.mlp_seed(cfg, s)
                key = cache.make_key(
                    "mlp",
                    samples=samples.key,
                    som=som_key,
                    split_by=cfg.split_by,
                    test_fraction=cfg.test_fraction,
                    train_size=cfg.train_size,
                    test_size=cfg.test_size,
                    split=s,
                    patch=k,
                    hidden=list(hidden),
                    mlp=mlp,
                    seed=seed,
                    code=cache.code_fingerprint(),
                )

                def args(k=k, tr=tr, te=te):
                    X = samples.patches(k)
                    tr, te = np.sort(tr), np.sort(te)
                    return X[tr], codes[tr], X[te], codes[te]

                cells.append(
                    Cell(
                        key=key,
                        params={"patch": k, "hidden": h, "split": s},
                        func=mlp_cell,
                        args=args,
                        kwargs={"hidden": list(hidden), "mlp": mlp, "seed": seed},
                        cost=_mlp_cost(k, hidden, len(q.codebook_)),
                    )
                )
    records = run_cells(
        cells,
        cell_dir,
        n_jobs=cfg.n_jobs,
        scheduler=scheduler,
        desc=f"{cfg.name}: MLP fits",
        stats=stats,
    )
    metrics = ("train_score", "test_score", "fit_seconds", "epochs", "cpu_seconds")
    cell_rows = [{**r["params"], **{m: r["result"][m] for m in metrics}} for r in records]

    rows, display = [], []
    for k in cfg.patch_sizes:
        for h in cfg.hidden_layers:
            mine = [r for r in cell_rows if r["patch"] == k and r["hidden"] == h]
            agg = {m: np.array([r[m] for r in mine], dtype=np.float64) for m in metrics}
            rows.append(
                {
                    "patch": k,
                    "hidden": h,
                    "splits": len(mine),
                    **{f"{m}_mean": round(float(v.mean()), 4) for m, v in agg.items()},
                    **{f"{m}_std": round(float(v.std()), 4) for m, v in agg.items()},
                }
            )
            is_paper_best = (k, h) == (PAPER_TABLE2_BEST["patch"], PAPER_TABLE2_BEST["hidden"])
            display.append(
                {
                    "patch": f"{k}x{k}",
                    "hidden": h,
                    "train score": mean_std(agg["train_score"]),
                    "test score": mean_std(agg["test_score"]),
                    "fit time (s)": mean_std(agg["fit_seconds"], 1),
                    "CPU (s)": f"{agg['cpu_seconds'].mean():.1f}",
                    "epochs": f"{agg['epochs'].mean():.1f}",
                    "paper": (
                        f"{PAPER_TABLE2_BEST['train']:.3f} / {PAPER_TABLE2_BEST['test']:.3f} "
                        "(paper's best)"
                        if is_paper_best
                        else ""
                    ),
                }
            )
    best = max(rows, key=lambda r: r["test_score_mean"])
    for d, r in zip(display, rows, strict=True):
        if r is best:
            d["test score"] = f"**{d['test score']}**"
    n_codes_used = int(len(np.unique(codes)))
    split_text = (
        f"training patches from the {len(split.train_images)} training images, test patches "
        f"from the {len(split.test_images)} held-out images (split by image, seeded)"
        if cfg.split_by == "image"
        else "one StratifiedShuffleSplit over the pixels of all images (the paper's protocol; "
        "pixels of one image can be on both sides)"
    )
    early = (
        f"early stopping on 10% of the training patches after {cfg.n_iter_no_change} epochs "
        "without gain"
        if cfg.early_stopping
        else "no early stopping"
    )
    notes = [
        f"SOM {cfg.som_shape} ({n_codes_used} codes used) on the training pixels' UV; label = "
        f"code of the pixel's UV; {cfg.pixels_per_image} random pixels per image.",
        f"{cfg.n_splits} stratified splits of {cfg.train_size} training / {cfg.test_size} test "
        f"patches: {split_text}. Score = accuracy (fraction of pixels whose code is "
        "predicted exactly); mean ± std over the splits.",
        f"MLP: somcolor's PatchClassifier (standardized patches, ReLU, Adam, learning rate "
        f"{cfg.learning_rate_init}, batch {cfg.batch_size}, L2 {cfg.alpha}), at most "
        f"{cfg.max_iter} epochs, {early}. Train score is on all {cfg.train_size} training "
        "patches. Fit time: wall seconds per fit, one BLAS thread, two fits at once on a shared "
        "machine; CPU: the fit's (and scoring's) CPU seconds, much less sensitive to the load.",
        f"Best test score here: {best['patch']}x{best['patch']} with {best['hidden']} "
        f"({best['test_score_mean']:.3f}). Paper's best: 3x3 with 50+50, train "
        f"{PAPER_TABLE2_BEST['train']} / test {PAPER_TABLE2_BEST['test']}.",
    ]
    return Outcome(
        title="Table II: patch size x hidden layers (SOM 3x3)",
        rows=rows,
        display=display,
        notes=notes,
        cells=cell_rows,
        summary={
            "best": {k: best[k] for k in ("patch", "hidden", "test_score_mean")},
            "n_train_images": len(split.train_images),
            "n_test_images": len(split.test_images),
            "code_counts": np.bincount(codes, minlength=len(q.codebook_)).tolist(),
        },
    )


# ---------------------------------------------------------------------- Figures 8 and 9
def _show(ax, image, title: str) -> None:
    ax.imshow(image, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def codebooks(cfg, cache_dir: Path, cell_dir: Path, scheduler=None, stats=None) -> Outcome:
    """A test image painted with the codebook of each SOM size (good or bad case)."""
    split = data.split_images(cfg)
    samples = data.pixel_samples(split, cfg, [], cache_dir)
    soms = {s: data.som(samples, split, cfg, s, cache_dir)[0] for s in cfg.som_shapes}
    smallest = min(cfg.som_shapes, key=_codes)
    test_paths = [split.paths[i] for i in split.test_images]
    if cfg.image:
        chosen = [p for p in split.paths if p.name == cfg.image]
        if not chosen:
            raise ConfigError(
                f"image: {cfg.image!r} is not among the {len(split.paths)} images used"
            )
        path, ranking = chosen[0], None
    else:
        errors = []
        for p in test_paths:
            _, uv = data.read_luv(p)
            errors.append(soms[smallest].quantization_error(uv.reshape(-1, 2), standardized=True))
        order = np.argsort(errors)
        pick = order[0] if cfg.case == "good" else order[-1]
        path = test_paths[pick]
        ranking = {
            "rank_rule": f"{cfg.case}: {'lowest' if cfg.case == 'good' else 'highest'} "
            f"{smallest} quantization error (z-score) of the {len(test_paths)} test images",
            "median_qe_z": float(np.median(errors)),
        }
    L, uv = data.read_luv(path)
    original, _ = compose(L, uv)
    fig = Figure(figsize=(2.4 * (1 + len(soms)), 2.9), layout="constrained")
    axes = fig.subplots(1, 1 + len(soms))
    _show(axes[0], original, f"original\n{path.name}")
    rows, display = [], []
    for ax, (shape, q) in zip(axes[1:], soms.items(), strict=True):
        flat = uv.reshape(-1, 2)
        painted, clipped = compose(L, q.inverse_transform(q.predict(flat)).reshape(uv.shape))
        qe_z = q.quantization_error(flat, standardized=True)
        qe_uv = q.quantization_error(flat)
        _show(ax, painted, f"SOM {shape} ({_codes(shape)} codes)\nQE {qe_z:.2f} z, {qe_uv:.1f} UV")
        rows.append(
            {
                "image": path.name,
                "som": shape,
                "codes": _codes(shape),
                "qe_z": round(qe_z, 4),
                "qe_uv": round(qe_uv, 3),
                "clipped_pixels": clipped,
            }
        )
        display.append(
            {
                "SOM": f"{shape} ({_codes(shape)} codes)",
                "QE z-score": f"{qe_z:.3f}",
                "QE UV": f"{qe_uv:.2f}",
                "paper Table I (z, all images)": f"{PAPER_TABLE1[shape]:.2f}"
                if shape in PAPER_TABLE1
                else "",
                "pixels clipped to sRGB": clipped,
            }
        )
    fig.suptitle(
        f"{DATA_LABELS[cfg.dataset]}; {cfg.case} case: the image's L with each codebook's UV",
        fontsize=9,
    )
    notes = [f"Image: `{path.name}` ({L.shape[1]}x{L.shape[0]}), a held-out test image."]
    if ranking:
        notes.append(
            f"Chosen by rule: {ranking['rank_rule']} (median {ranking['median_qe_z']:.3f})."
        )
    notes.append("Each pixel keeps its own L; its UV is replaced by the nearest code's UV.")
    return Outcome(
        title=f"Figure {'8' if cfg.case == 'good' else '9'}: one image, every SOM size "
        f"({cfg.case} case)",
        rows=rows,
        display=display,
        notes=notes,
        figure=fig,
        summary={"image": path.name, **(ranking or {})},
    )


# ---------------------------------------------------------------------- Figure 10
def colorize(cfg, cache_dir: Path, cell_dir: Path, scheduler=None, stats=None) -> Outcome:
    """Train one model (SOM + MLP, Table II's split 0) and colorize held-out test images."""
    import time

    split, samples, q, codes, splits = _prepare_table2(
        dataclasses.replace(cfg, n_splits=1), cache_dir, [cfg.patch_size]
    )
    tr = np.sort(splits[0][0])
    X = samples.patches(cfg.patch_size)
    t0 = time.perf_counter()
    clf = PatchClassifier(
        hidden_layer_sizes=cfg.hidden_tuple, random_state=data.mlp_seed(cfg, 0), **mlp_params(cfg)
    ).fit(X[tr], codes[tr])
    fit_seconds = time.perf_counter() - t0

    rng = np.random.default_rng(data.derived_seed(cfg.seed, 9))
    test = split.test_images
    show = [split.paths[i] for i in np.sort(rng.permutation(test)[: cfg.n_images])]
    n_cols = 5
    aspect = 1.0
    rows, display, panels = [], [], []
    for path in show:
        L, uv = data.read_luv(path)
        aspect = L.shape[0] / L.shape[1]
        pred_codes = clf.predict(image_patches(L, cfg.patch_size))
        uv_pred = q.inverse_transform(pred_codes).reshape(uv.shape).astype(np.float32)
        true_codes = q.predict(uv.reshape(-1, 2))
        fifty = np.full_like(L, 50.0)
        original, _ = compose(L, uv)
        predicted, clipped = compose(L, uv_pred)
        panels.append(
            [
                (original, "original"),
                (compose(fifty, uv)[0], "UV at L=50"),
                (compose(L, np.zeros_like(uv))[0], "gray (L)"),
                (compose(fifty, uv_pred)[0], "predicted UV at L=50"),
                (predicted, "prediction"),
            ]
        )
        accuracy = float(np.mean(pred_codes == true_codes))
        uv_error = float(np.linalg.norm(uv_pred - uv, axis=-1).mean())
        rows.append(
            {
                "image": path.name,
                "code_accuracy": round(accuracy, 4),
                "uv_error": round(uv_error, 3),
                "clipped_pixels": clipped,
            }
        )
        display.append(
            {
                "image": path.name,
                "pixels whose code is right": f"{accuracy:.3f}",
                "mean UV error": f"{uv_error:.2f}",
                "pixels clipped to sRGB": clipped,
            }
        )
    fig = Figure(figsize=(2.2 * n_cols, 2.2 * aspect * len(panels) + 0.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(panels), n_cols))
    for r, row in enumerate(panels):
        for c, (image, title) in enumerate(row):
            _show(axes[r, c], image, title if r == 0 else "")
    fig.suptitle(
        f"{DATA_LABELS[cfg.dataset]}; SOM {cfg.som_shape}, patch {cfg.patch_size}x"
        f"{cfg.patch_size}, MLP {cfg.hidden}; held-out test images",
        fontsize=9,
    )
    notes = [
        f"Model: SOM {cfg.som_shape} and MLP {cfg.hidden} on patch {cfg.patch_size}x"
        f"{cfg.patch_size}, trained on Table II's split 0 ({len(tr)} patches of the training "
        f"images) in {fit_seconds:.1f} s, {clf.n_iter_} epochs; colorized with the paper's rule "
        "(the most probable code's UV) on every pixel.",
        f"Rows: {len(show)} test images drawn with the seed. 'pixels whose code is right' "
        "compares the predicted code with the nearest code of the true UV on every pixel.",
    ]
    return Outcome(
        title="Figure 10: colorized test images",
        rows=rows,
        display=display,
        notes=notes,
        figure=fig,
        summary={
            "fit_seconds": round(fit_seconds, 2),
            "epochs": clf.n_iter_,
            "images": [p.name for p in show],
        },
    )


EXPERIMENTS = {"table1": table1, "table2": table2, "codebooks": codebooks, "colorize": colorize}


def run_experiment(
    cfg: ExperimentConfig,
    cache_dir: Path,
    cell_dir: Path,
    scheduler: str | None = None,
    stats: GridStats | None = None,
) -> Outcome:
    return EXPERIMENTS[cfg.experiment](cfg, Path(cache_dir), Path(cell_dir), scheduler, stats)
