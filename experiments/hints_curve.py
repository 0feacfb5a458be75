"""User hints, measured through the product: ``python -m experiments.hints_curve [--split test]``.

On a BSDS500 split (``test`` to report, ``val`` to choose settings; ``--limit``,
``--step``, ``--offset`` pick photos), N hints are simulated per photo as Zhang et al.
(2017) did: seeded random points, each the mean colour of the original's 3x3 patch there
(given as ``"#rrggbb"``, as a user would); the sets are nested (the first N of the same
100 points), seeded with ``--seed`` plus the photo's position in the run. Each photo
(the colour original: the product reduces it to its luminance, as ``somcolor colorize
photo.jpg`` does) is colorized

* **automatic**: ``model.colorize(photo)``, no hints;
* **somcolor + hints**: ``model.hint_session(photo).colorize(points)`` -- the public
  API that ``somcolor colorize photo.jpg --hints h.json`` and the page run (a test
  proves the CLI writes the same pixels, :func:`photo_outputs`);
* **Levin alone**: Levin, Lischinski & Weiss (2004) from the same hints, no model
  (:mod:`experiments.levin`), at the session's working size, the chroma brought onto
  the full-resolution L by the same edge-aware upsampling as the hints' change
  (:func:`somcolor.guide.full_size`);

and the RGB outputs are scored with :func:`somcolor.evaluate.score_rgb` (PSNR, SSIM,
AuC, rebalanced AuC, colourfulness). Writes ``summary.md`` (the table), ``curve.csv``,
``per_image.csv``, ``curve.png`` and ``config.json`` under
``experiments/results/hints_curve/`` (``--out``).

``--step 2`` and ``--step 2 --offset 1`` split the photos in two runs (e.g. in
parallel); ``--from-csv A/per_image.csv B/per_image.csv`` joins them into one table
(each run's rebalanced AuC uses the colour prior of its own photos).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from experiments import levin
from somcolor import datasets, guide, paths
from somcolor import evaluate as ev
from somcolor.color import compose
from somcolor.io import read_image

HINT_COUNTS = (0, 1, 2, 5, 10, 20, 50, 100)
PATCH = guide.SIMULATED_PATCH
SEED = 0
OUT_DIR = paths.RESULTS_DIR / "hints_curve"
METHODS = ("automatic", "somcolor", "levin")
LABELS = {
    "automatic": "automatic (no hints)",
    "somcolor": "somcolor + hints",
    "levin": "Levin alone",
}


#: The simulation lives in the package (``somcolor evaluate --hints N`` uses it too).
simulated_hints = guide.simulated_hints


def photo_outputs(model, rgb: np.ndarray, points, counts, methods, params=None) -> dict:
    """The RGB outputs of one photo: ``{(method, n): uint8 (H, W, 3)}`` for every hint
    count ``n`` in ``counts``, each made as a user's request makes it (module docstring).

    ``points`` are the simulated hints (at least ``max(counts)``); ``params`` the
    :class:`~somcolor.guide.GuideParams` (None: the product's defaults).
    """
    out = {}
    session = model.hint_session(rgb, params)
    if "automatic" in methods:
        auto = model.colorize(rgb)
    for n in counts:
        if "automatic" in methods:
            out["automatic", n] = auto
        if "somcolor" in methods:
            out["somcolor", n] = session.colorize(points[:n])
        if "levin" in methods:
            work = session.L_work.shape
            wh = guide.to_working(guide.parse_hints(points[:n], session.shape), work)
            mask = np.zeros(work, bool)
            uv = np.zeros((*work, 2))
            mask.flat[wh.index] = True
            uv.reshape(-1, 2)[wh.index] = wh.uv
            chroma = levin.colorize(session.L_work, mask, uv).astype(np.float32)
            # brought to the full size by the same edge-aware upsampling as the hints'
            zero = np.zeros((*session.shape, 2), np.float32)
            uv_full = guide.full_size(
                zero, 0 * chroma, chroma, L=session.L, L_work=session.L_work, params=params
            )
            out["levin", n] = compose(session.L, uv_full)[0]
    return out


def run(args) -> list[dict]:
    import somcolor

    params = guide.GuideParams(**args.params)
    model = somcolor.load(args.model).predictor()
    if args.work_size:
        model.set_params(work_size=args.work_size)
    photos = datasets.image_paths("bsds500", args.split)[args.offset :: args.step]
    photos = photos[: args.limit or None]
    truths = [ev.Truth.of(read_image(p)) for p in photos]
    prior = ev.ColorPrior()
    for t in truths:
        prior.add(t.uv)
    rows = []
    for i, (path, truth) in enumerate(zip(photos, truths, strict=True)):
        t0 = time.perf_counter()
        points = simulated_hints(truth.rgb, max(args.hints), args.seed + i)
        outputs = photo_outputs(model, truth.rgb, points, args.hints, args.methods, params)
        for (method, n), rgb in outputs.items():
            row = {"photo": path.stem, "hints": n, "method": method}
            row.update(ev.score_rgb(rgb, truth, prior))
            rows.append(row)
        print(
            f"{i + 1}/{len(photos)} {path.stem} {time.perf_counter() - t0:.1f} s", file=sys.stderr
        )
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Mean metrics per (hints, method), and the colourfulness ratio."""
    out = []
    keys = sorted({(r["hints"], METHODS.index(r["method"])) for r in rows})
    for n, m in keys:
        sel = [r for r in rows if r["hints"] == n and r["method"] == METHODS[m]]
        s = {"hints": n, "method": METHODS[m], "photos": len(sel)}
        for k in ("psnr", "ssim", "auc", "auc_rebal", "colorfulness", "colorfulness_orig"):
            s[k] = float(np.mean([r[k] for r in sel]))
        s["colorfulness_ratio"] = s["colorfulness"] / s["colorfulness_orig"]
        out.append(s)
    return out


def markdown(summary: list[dict]) -> str:
    lines = [
        "| hints | method | PSNR dB | SSIM | AuC | AuC rebal. | colourful. ratio | photos |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summary:
        lines.append(
            f"| {s['hints']} | {LABELS[s['method']]} | {s['psnr']:.2f} | {s['ssim']:.3f} | "
            f"{s['auc']:.3f} | "
            f"{s['auc_rebal']:.3f} | {s['colorfulness_ratio']:.2f} | {s['photos']} |"
        )
    return "\n".join(lines) + "\n"


def plot(summary: list[dict], path: Path, split: str = "test") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in zip(
        axes, ("psnr", "auc_rebal"), ("PSNR (dB)", "rebalanced AuC"), strict=True
    ):
        for method in METHODS:
            pts = [(s["hints"], s[key]) for s in summary if s["method"] == method]
            if not pts:
                continue
            xs, ys = zip(*pts, strict=True)
            xs = [max(x, 0.5) for x in xs]  # 0 hints drawn at 0.5 on the log axis
            ax.plot(xs, ys, "o-", label=LABELS[method])
        ax.set_xscale("log")
        ax.set_xlabel("simulated hints per photo (0 drawn at 0.5)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"BSDS500 {split}: somcolor + hints vs Levin et al. 2004 alone")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def _read_rows(files) -> list[dict]:
    """The rows of per_image.csv files (numbers as numbers)."""
    rows = []
    for path in files:
        with open(path, newline="") as fh:
            for r in csv.DictReader(fh):
                rows.append(
                    {k: (v if k in ("photo", "method") else float(v)) for k, v in r.items()}
                )
    for r in rows:
        r["hints"] = int(r["hints"])
    return rows


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="at most this many photos (0: all)")
    ap.add_argument("--step", type=int, default=1, help="every STEP-th test photo")
    ap.add_argument("--offset", type=int, default=0, help="starting with this one (0-based)")
    ap.add_argument(
        "--from-csv",
        type=Path,
        nargs="+",
        metavar="CSV",
        help="no run: the table and plot from these per_image.csv files, joined",
    )
    ap.add_argument("--hints", default=",".join(map(str, HINT_COUNTS)))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument(
        "--split",
        default="test",
        choices=("test", "val"),
        help="test: report (the bundled default never saw it); val: choose settings, with "
        "a model trained on the fit split (--model)",
    )
    ap.add_argument(
        "--work-size", type=int, default=0, help="the model's working size (0: as trained)"
    )
    ap.add_argument("--model", default="default", help="a bundled model or a model file")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a GuideParams setting, e.g. --set radius=3",
    )
    args = ap.parse_args(argv)
    args.hints = [int(n) for n in args.hints.split(",")]
    args.methods = [m for m in args.methods.split(",") if m]
    fields = {f.name for f in dataclasses.fields(guide.GuideParams)}
    args.params = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in fields:
            ap.error(f"unknown setting {key!r}, expected one of {sorted(fields)}")
        args.params[key] = _value(value)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    if args.from_csv:
        rows = _read_rows(args.from_csv)
    else:
        rows = run(args)
    summary = summarize(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    _write_csv(args.out / "per_image.csv", rows)
    _write_csv(args.out / "curve.csv", summary)
    table = markdown(summary)
    (args.out / "summary.md").write_text(table)
    plot(summary, args.out / "curve.png", args.split)
    config = {
        "argv": sys.argv[1:] if argv is None else list(argv),
        "photos": len({r["photo"] for r in rows}),
        "step": args.step,
        "offset": args.offset,
        "from_csv": [str(p) for p in args.from_csv or ()],
        "limit": args.limit,
        "split": args.split,
        "model": args.model,
        "work_size": args.work_size,
        "seed": args.seed,
        "patch": PATCH,
        "params": dataclasses.asdict(guide.GuideParams(**args.params)),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (args.out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    print(table)
    return 0 if not any(math.isnan(s["psnr"]) for s in summary) else 1


if __name__ == "__main__":
    raise SystemExit(main())
