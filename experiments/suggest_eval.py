"""Suggested colours, measured through the product: ``python -m experiments.suggest_eval``.

Does the colour picker's list hold the true colour? On the BSDS500 photos of ``--split``
(``test`` to report, the bundled default never saw it; ``val`` to choose the palette,
with the model trained on the ``fit`` split, ``--model``), ``--points`` random points
(1000) are spread evenly over the photos, seeded: per photo the points
:func:`somcolor.guide.simulated_hints` gives (``--seed`` plus the photo's position), the
same simulated taps as :mod:`experiments.hints_curve`, each with the mean colour of the
original's 3x3 patch there, the **true colour**. Each photo (the colour original: the
product reduces it to its luminance) is opened as the page opens it,
``model.hint_session(photo)``, and each point is asked ``session.suggest(x, y, k)``,
what ``POST /api/suggest`` and ``somcolor suggest`` answer (:func:`somcolor.guide.suggest`):

* **model only, k=6**: ``suggest(x, y, 6, model_only=True)``, the page's list before the
  palette (its old ``k``);
* **model only, k=12**: the same list extended to 12;
* **model + palette, k=12**: ``suggest(x, y, 12)``, the list the page shows now;

and with ``--designs`` (for ``--split val``) also each palette design of :data:`DESIGNS`
(:class:`somcolor.guide.SuggestParams`). The score of a point is the CIELUV uv distance
from its true colour to the nearest suggestion, both read as a hint reads a colour
(``"#rrggbb"`` -> uv, :func:`somcolor.guide.parse_hints`); the table gives its median, its
90th percentile and the share of points within 5 and 10 uv.

``python -m experiments.suggest_eval [--split test] [--points 1000] [--designs]
[--out experiments/results/suggest_eval.md]`` writes the markdown table and, beside it, a
JSON with the resolved config, every point's distances, the code version and the
package versions.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

import somcolor
from somcolor import datasets, guide
from somcolor.io import atomic_write, read_image
from somcolor.paths import INTERIM_DIR, REPO_DIR, RESULTS_DIR

from .cache import write_json
from .report import provenance

#: The model trained on the ``fit`` split only (``python -m experiments.hints_sweep
#: --train``), for choosing on ``val``.
FIT_MODEL = INTERIM_DIR / "honest" / "default_fit.npz"
#: Suggestions compared with the true colour ("the first 12").
K = 12
#: The model-only list the page showed before the palette.
OLD_K = 6

_GRAY = (("gray", 0.0, 0.0, 0.0),)
_MUTED = tuple((n, h, 10.0, 0.0) for n, h in (("gray-brown", 45), ("khaki", 90),
               ("gray-green", 150), ("gray-blue", 235)))  # fmt: skip
_STRONG = tuple((n, h, 0.0, 0.6) for n, h in (("brown / skin", 45), ("ochre / yellow", 80),
                ("foliage green", 115), ("sky blue", 235)))  # fmt: skip
_RED = (("red", 12.0, 0.0, 0.8),)
_HUES6 = tuple((f"hue {h}", float(h), 0.0, 0.6) for h in range(0, 360, 60))


def _scaled(entries, chroma: float = 1.0, saturation: float = 1.0) -> tuple:
    return tuple((n, h, c * chroma, s * saturation) for n, h, c, s in entries)


#: The palette as it was (the same at every pixel of one lightness), for the fixed designs.
_FIXED = {"cell_mass": None}

#: Palette designs compared on ``val`` (``--designs``): name -> SuggestParams overrides.
#: The first is the product's (:data:`somcolor.guide.SUGGESTION_PALETTE`, each entry
#: drawn toward the model's colours in its cell,
#: :attr:`somcolor.guide.SuggestParams.cell_mass`);
#: then the pull's strength; then fixed palettes (no pull), the first of them the
#: product's palette before the pull.
DESIGNS = {
    "product: palette pulled, cell_mass 0.2": {},
    "pulled, cell_mass 0.05": {"cell_mass": 0.05},
    "pulled, cell_mass 0.1": {"cell_mass": 0.1},
    "pulled, cell_mass 0.5": {"cell_mass": 0.5},
    "pulled, cell_mass 1": {"cell_mass": 1.0},
    "pulled 0.2, model colours: at most 1": {"model_colors": 1},
    "pulled 0.2, model colours: at most 5, p >= 0.02": {"model_colors": 5, "min_probability": 0.02},
    "pulled 0.2, no red": {"colors": _GRAY + _MUTED + _STRONG},
    "fixed: gray, muted ring C=10 x4, strong ring s=0.6 x4, red": _FIXED,
    "fixed: no muted ring": {"colors": _GRAY + _STRONG + _RED, **_FIXED},
    "fixed: no red": {"colors": _GRAY + _MUTED + _STRONG, **_FIXED},
    "fixed: muted ring C=14":
        {"colors": _GRAY + _scaled(_MUTED, chroma=1.4) + _STRONG + _RED, **_FIXED},
    "fixed: strong ring s=0.8":
        {"colors": _GRAY + _MUTED + _scaled(_STRONG, saturation=4 / 3) + _RED, **_FIXED},
    "fixed: strong ring s=0.5":
        {"colors": _GRAY + _MUTED + _scaled(_STRONG, saturation=5 / 6) + _RED, **_FIXED},
    "fixed: gray + 6 even hues s=0.6": {"colors": _GRAY + _HUES6, **_FIXED},
    "fixed: gray + 6 even hues s=0.6 + muted ring": {"colors": _GRAY + _MUTED + _HUES6, **_FIXED},
    "fixed: model colours: at most 1": {"model_colors": 1, **_FIXED},
    "fixed: model colours: at most 5, p >= 0.02":
        {"model_colors": 5, "min_probability": 0.02, **_FIXED},
    "fixed: duplicates within 8 uv": {"min_distance": 8.0, **_FIXED},
    "fixed: duplicates within 3 uv": {"min_distance": 3.0, **_FIXED},
}  # fmt: skip


@dataclass(frozen=True)
class Config:
    split: str = "test"  #: test (report) or val (choose the palette)
    points: int = 1000  #: spread evenly over the split's photos
    seed: int = 0
    model: str | None = None  #: None: "default" on test, FIT_MODEL on val
    designs: bool = False  #: also every design of DESIGNS
    limit: int | None = None  #: the first N photos only (tests)
    out: str = str(RESULTS_DIR / "suggest_eval.md")


def lists(config: Config) -> dict[str, tuple[int, guide.SuggestParams | None]]:
    """The lists measured: name -> (k, params; None: the model's alone)."""
    out = {
        f"model only, k={OLD_K}": (OLD_K, None),
        f"model only, k={K}": (K, None),
        f"model + palette, k={K}": (K, guide.SuggestParams()),
    }
    if config.designs:
        for name, overrides in DESIGNS.items():
            out[f"design: {name}"] = (K, replace(guide.SuggestParams(), **overrides))
    return out


def _uv(session, colors: list[str]) -> np.ndarray:
    """The chroma of ``"#rrggbb"`` colours, as a hint of that colour has it."""
    return guide.parse_hints([(0, 0, c) for c in colors], session.shape).uv


def score_photo(session, points, measured: dict) -> dict[str, list[float]]:
    """Per list, the uv distance from each point's true colour to its nearest suggestion."""
    out = {name: [] for name in measured}
    for x, y, true_color in points:
        truth = _uv(session, [true_color])[0]
        for name, (k, params) in measured.items():
            if params is None:
                shown = session.suggest(x, y, k, model_only=True)
            else:
                shown = session.suggest(x, y, k, params=params)
            uv = _uv(session, [s.color for s in shown])
            out[name].append(float(np.hypot(*(uv - truth).T).min()))
    return out


def run(config: Config) -> tuple[dict[str, list[float]], list[dict]]:
    model_name = config.model or (str(FIT_MODEL) if config.split == "val" else "default")
    if config.split == "val" and config.model is None and not FIT_MODEL.exists():
        raise SystemExit(f"{FIT_MODEL} is missing: python -m experiments.hints_sweep --train")
    model = somcolor.load(model_name).predictor()
    photos = datasets.image_paths("bsds500", config.split)[: config.limit]
    measured = lists(config)
    distances = {name: [] for name in measured}
    rows = []
    for i, path in enumerate(tqdm(photos, desc="suggest eval", file=sys.stderr)):
        n = config.points // len(photos) + (i < config.points % len(photos))
        if n == 0:
            continue
        rgb = read_image(path)
        points = guide.simulated_hints(rgb, n, config.seed + i)
        scores = score_photo(model.hint_session(rgb), points, measured)
        for j, (x, y, color) in enumerate(points):
            row = {"photo": path.stem, "x": x, "y": y, "true": color}
            row.update({name: round(scores[name][j], 3) for name in measured})
            rows.append(row)
        for name in measured:
            distances[name] += scores[name]
    return distances, rows


def summarize(distances: dict[str, list[float]]) -> list[dict]:
    out = []
    for name, d in distances.items():
        d = np.asarray(d)
        out.append(
            {
                "list": name,
                "median": float(np.median(d)),
                "p90": float(np.quantile(d, 0.9)),
                "within5": float(np.mean(d <= 5.0)),
                "within10": float(np.mean(d <= 10.0)),
                "points": len(d),
            }
        )
    return out


def markdown(summary: list[dict], config: Config, model_name: str) -> str:
    lines = [
        f"Suggested colours vs the true colour, BSDS500 {config.split} "
        f"({summary[0]['points']} points, seed {config.seed}, model {model_name}): CIELUV uv "
        "distance from the true colour (3x3 mean) to the nearest suggestion.",
        "",
        "| list | median | 90th percentile | within 5 uv | within 10 uv |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for s in summary:
        lines.append(
            f"| {s['list']} | {s['median']:.2f} | {s['p90']:.2f} | "
            f"{100 * s['within5']:.0f}% | {100 * s['within10']:.0f}% |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", default="test", choices=("test", "val"))
    p.add_argument("--points", type=int, default=Config.points)
    p.add_argument("--seed", type=int, default=Config.seed)
    p.add_argument(
        "--model", default=None, help=f"a bundled model or a model file (default: 'default' "
        f"on test, {FIT_MODEL.relative_to(REPO_DIR)} on val)"
    )  # fmt: skip
    p.add_argument("--designs", action="store_true", help="also the palette designs compared")
    p.add_argument("--limit", type=int, default=None, help="the first N photos only (tests)")
    p.add_argument("--out", default=Config.out, help="markdown table (a .json is written beside)")
    args = p.parse_args(argv)
    if args.points < 1:
        p.error(f"--points must be at least 1, got {args.points}")
    config = Config(**vars(args))
    t0 = time.perf_counter()
    distances, rows = run(config)
    summary = summarize(distances)
    model_name = config.model or (
        FIT_MODEL.name + " (fit split)" if config.split == "val" else "default"
    )
    table = markdown(summary, config, model_name)
    print(table)
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda fh: fh.write(table.encode()), overwrite=True)
    write_json(
        out.with_suffix(".json"),
        {
            "config": asdict(config),
            "params": asdict(guide.SuggestParams()),
            "provenance": provenance(),
            "seconds": round(time.perf_counter() - t0, 1),
            "summary": summary,
            "points": rows,
        },
    )
    print(f"wrote {out} and {out.with_suffix('.json')} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
