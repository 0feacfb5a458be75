"""Colour from a reference photo, scored: the automatic default vs Welsh et al. vs adapted.

Three protocols, each a list of (reference in colour, target in gray) pairs; every target
is coloured three ways and scored against its colour original (PSNR, rebalanced AuC,
colourfulness ratio: :mod:`somcolor.evaluate`; the colour prior of the rebalanced AuC is
each set's own targets):

* ``default``: the bundled default model, automatic (the reference is not used);
* ``welsh``: Welsh, Ashikhmin & Mueller 2002, global matching (:mod:`experiments.welsh`);
* ``adapted``: ``model.adapt([reference])`` then its chroma (``predict_uv``, the
  product's prior, reference match included); its seconds include the adaptation.

The photos are those of ``--split``: ``test`` (the report; the bundled default never saw
it) or ``val`` (choosing ``adapt``'s settings, with ``--model`` trained on the ``fit``
split; Fruits-100 and Open Country then use their own ``val`` splits). The protocols:

1. **halves**: BSDS500 photos of the split (sorted, the first ``--n``; all by default):
   the LEFT half in colour is the reference, the RIGHT half in gray the target. Also
   reported: how many photos the adapted model beats Welsh on (PSNR).
2. **unrelated**: the same photos, each whole in gray, with the NEXT photo in sorted
   order (the last: the first) in colour as the reference: a reference of another
   scene, which should leave the automatic colours (the reference match's purpose).
3. **same class**: Fruits-100 test photos, each with a reference drawn (seeded) from the
   same fruit's training photos; Open Country test thumbnails (only 64x64), each with a
   reference drawn from the training thumbnails (one scene class). ``--n`` test photos per
   set, drawn with the seed (all by default).
4. **film**: a 10 s, 25 fps colour "clip" made in memory from a BSDS500 test photo by a
   moving crop (a 60% x 75% window panning left to right, drifting down a little; frames
   are cropped pixels, no codec); frame ``t`` in colour is the reference, frame ``t + k``
   in gray the target, for ``k`` = 1 s and 5 s, start frames 0 s, 2 s, 4 s, over
   ``FILM_PHOTOS`` photos (evenly spaced among the split's photos; fewer with a smaller
   ``--n``).

``python -m experiments.reference_eval [--split test] [--n N] [--protocols halves,...]
[--set match_sigma=0.3] [--out experiments/results/reference_eval.md]``

writes the markdown table and, beside it, a JSON with the resolved config, every
per-target row and the versions. ``--max-side`` shrinks every image first (for tests).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

import somcolor
from somcolor import datasets
from somcolor.adapt import AdaptParams
from somcolor.evaluate import ColorPrior, Evaluation, Truth, evaluate_image, model_predictor
from somcolor.exceptions import SomcolorError
from somcolor.io import atomic_write, read_image
from somcolor.paths import RESULTS_DIR

from .cache import write_json
from .report import git_commit
from .welsh import welsh_uv

METHODS = ("default", "welsh", "adapted")
PROTOCOLS = ("halves", "unrelated", "same class", "film")
FPS = 25
FILM_SECONDS = 10
FILM_STARTS = (0, 2 * FPS, 4 * FPS)
FILM_GAPS = {"k=1s": FPS, "k=5s": 5 * FPS}
FILM_PHOTOS = 8


@dataclass(frozen=True)
class Config:
    n: int | None = None  #: targets per set (None: all; film: at most FILM_PHOTOS photos)
    seed: int = 0  #: reference draws, Welsh's jitter, adapt's random_state
    welsh_samples: int = 200
    max_side: int | None = None  #: shrink every image to this long side first (tests)
    out: str = str(RESULTS_DIR / "reference_eval.md")
    split: str = "test"  #: test (report) or val (choose settings)
    model: str = "default"  #: a bundled model or a model file
    protocols: tuple[str, ...] = PROTOCOLS
    adapt: dict = field(default_factory=dict)  #: AdaptParams overrides (--set)


@dataclass
class Pair:
    """One reference/target pair of a set; ``ref_key`` names the reference (shared adaptation)."""

    name: str
    ref_key: str
    reference: np.ndarray
    target: np.ndarray


@dataclass
class Set:
    protocol: str
    name: str
    pairs: list[Pair] = field(default_factory=list)


# ---------------------------------------------------------------------------- the pairs
def _shrink(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    if max_side is None or max(rgb.shape[:2]) <= max_side:
        return rgb
    from PIL import Image

    h, w = rgb.shape[:2]
    s = max_side / max(h, w)
    size = (max(8, round(w * s)), max(8, round(h * s)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


def _read(path: Path, config: Config) -> np.ndarray:
    return _shrink(read_image(path), config.max_side)


def halves_set(config: Config) -> Set:
    """Protocol 1: left half (reference) / right half (target) of the sorted photos."""
    out = Set("halves", f"BSDS500 {config.split}")
    for path in datasets.image_paths("bsds500", config.split)[: config.n]:
        rgb = _read(path, config)
        w = rgb.shape[1] // 2
        left, right = np.ascontiguousarray(rgb[:, :w]), np.ascontiguousarray(rgb[:, w:])
        out.pairs.append(Pair(path.stem, path.stem, left, right))
    return out


def unrelated_set(config: Config) -> Set:
    """Protocol 2: each photo whole, with the next photo (sorted, wrapping) as reference."""
    out = Set("unrelated", f"BSDS500 {config.split}, the next photo as reference")
    paths = datasets.image_paths("bsds500", config.split)[: config.n]
    for i, path in enumerate(paths):
        ref = paths[(i + 1) % len(paths)]
        out.pairs.append(Pair(path.stem, ref.stem, _read(ref, config), _read(path, config)))
    return out


def _draw(paths: list[Path], n: int | None, rng: np.random.Generator) -> list[Path]:
    if n is None or n >= len(paths):
        return paths
    return [paths[i] for i in sorted(rng.choice(len(paths), n, replace=False))]


def same_class_sets(config: Config) -> list[Set]:
    """Protocol 3: Fruits-100 (reference from the same fruit) and Open Country thumbnails."""
    sets = []
    for name, label, class_of in (
        ("fruits100", f"Fruits-100 {config.split}", lambda p: p.parent.name),
        ("opencountry", f"Open Country {config.split} (64x64 thumbnails)", lambda p: "opencountry"),
    ):
        rng = np.random.default_rng([config.seed, len(sets)])
        train: dict[str, list[Path]] = {}
        pool_split = "train" if config.split == "test" else "fit"
        for p in datasets.image_paths(name, pool_split):
            train.setdefault(class_of(p), []).append(p)
        s = Set("same class", label)
        for p in _draw(datasets.image_paths(name, config.split), config.n, rng):
            pool = train[class_of(p)]
            ref = pool[int(rng.integers(len(pool)))]
            key = f"{class_of(p)}/{ref.name}"
            s.pairs.append(
                Pair(f"{class_of(p)}/{p.name}", key, _read(ref, config), _read(p, config))
            )
        sets.append(s)
    return sets


def film_frame(photo: np.ndarray, i: int) -> np.ndarray:
    """Frame ``i`` of the 10 s colour pan over ``photo``: a 60% x 75% window, left to right."""
    h, w = photo.shape[:2]
    ch, cw = round(0.75 * h), round(0.6 * w)
    t = i / (FILM_SECONDS * FPS - 1)
    x0 = round(t * (w - cw))
    y0 = round((0.25 + 0.5 * t) * (h - ch))
    return np.ascontiguousarray(photo[y0 : y0 + ch, x0 : x0 + cw])


def film_sets(config: Config) -> list[Set]:
    """Protocol 4: frame t in colour -> frame t + k in gray, one set per k."""
    paths = datasets.image_paths("bsds500", config.split)
    count = min(FILM_PHOTOS, config.n or FILM_PHOTOS)
    chosen = [paths[i] for i in np.linspace(0, len(paths) - 1, count).round().astype(int)]
    sets = {gap: Set("film", f"BSDS500 pans, {gap}") for gap in FILM_GAPS}
    for path in chosen:
        photo = _read(path, config)
        for start in FILM_STARTS:
            ref = film_frame(photo, start)
            for gap, k in FILM_GAPS.items():
                name = f"{path.stem}@{start / FPS:g}s"
                sets[gap].pairs.append(Pair(name, name, ref, film_frame(photo, start + k)))
    return list(sets.values())


# ---------------------------------------------------------------------------- scoring
def _welsh_predictor(reference: np.ndarray, config: Config):
    def predict(L):
        return welsh_uv(L, reference, samples=config.welsh_samples, seed=config.seed), None

    return predict


def score_set(s: Set, default, config: Config, adapted: dict, bar) -> Evaluation:
    """Every method on every pair of ``s``: per-target rows (``adapt_s``: the fitting time)."""
    truths = [Truth.of(p.target) for p in s.pairs]
    prior = ColorPrior()
    for t in truths:
        prior.add(t.uv)
    auto = model_predictor(default)
    ev = Evaluation()
    for pair, truth in zip(s.pairs, truths, strict=True):
        base = {"image": pair.name, "reference": pair.ref_key}
        row = evaluate_image(auto, truth, prior)
        ev.rows.append({"predictor": "default", **base, **row, "adapt_s": 0.0, "refused": ""})
        row = evaluate_image(_welsh_predictor(pair.reference, config), truth, prior)
        ev.rows.append({"predictor": "welsh", **base, **row, "adapt_s": 0.0, "refused": ""})
        key = (s.protocol, pair.ref_key)
        if key not in adapted:
            t0 = time.perf_counter()
            try:
                model = default.adapt([pair.reference], random_state=config.seed, **config.adapt)
                refused = ""
            except SomcolorError as err:  # e.g. a reference with too little colour
                model, refused = default, str(err)
            adapted[key] = (model, time.perf_counter() - t0, refused)
        model, secs, refused = adapted[key]
        row = evaluate_image(model_predictor(model), truth, prior)
        row["seconds"] += secs
        ev.rows.append({"predictor": "adapted", **base, **row, "adapt_s": secs, "refused": refused})
        bar.update(1)
    return ev


def summarize(rows: list[dict]) -> dict[str, dict]:
    """Per method: targets, mean PSNR, rebalanced AuC, colourfulness ratio, seconds."""
    ev = Evaluation(rows)
    out = {s["predictor"]: s for s in ev.summary()}
    psnr = {(r["predictor"], r["image"]): r["psnr"] for r in rows}
    images = list(dict.fromkeys(r["image"] for r in rows))
    if "adapted" in out:
        beats = sum(psnr[("adapted", i)] > psnr[("welsh", i)] for i in images)
        out["adapted"]["beats_welsh"] = beats
        out["adapted"]["refused"] = sum(
            bool(r["refused"]) for r in rows if r["predictor"] == "adapted"
        )
    return out


def _fmt(v, spec: str) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def markdown(results: list[dict], config: Config) -> str:
    lines = [
        "| protocol | set | targets | method | PSNR dB | AuC rebal. | colourful. ratio | s/target "
        "| adapted > Welsh |",
        "|" + "|".join(" --- " for _ in range(9)) + "|",
    ]
    for res in results:
        for m in METHODS:
            s = res["summary"].get(m)
            if s is None:
                continue
            beats = f"{s['beats_welsh']}/{s['images']}" if m == "adapted" else ""
            lines.append(
                f"| {res['protocol']} | {res['set']} | {s['images']} | {m}"
                f" | {_fmt(s['psnr'], '.2f')} | {_fmt(s['auc_rebal'], '.3f')}"
                f" | {_fmt(s['colorfulness_ratio'], '.2f')}"
                f" | {_fmt(s['seconds'], '.3f')} | {beats} |"
            )
    refused = sum(r["summary"].get("adapted", {}).get("refused", 0) for r in results)
    lines += [
        "",
        f"n = {config.n or 'all'}, seed {config.seed}, Welsh samples {config.welsh_samples}"
        + (f", images shrunk to {config.max_side} px" if config.max_side else "")
        + f"; references adapt refused (scored as the default): {refused}.",
    ]
    return "\n".join(lines) + "\n"


def _versions() -> dict:
    return {
        "somcolor": somcolor.__version__,
        "commit": git_commit()["commit"],
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def run(config: Config) -> list[dict]:
    """Build every set, score it, return one result per set (summary + per-target rows)."""
    default = somcolor.load(config.model).predictor()
    builders = {
        "halves": lambda: [halves_set(config)],
        "unrelated": lambda: [unrelated_set(config)],
        "same class": lambda: same_class_sets(config),
        "film": lambda: film_sets(config),
    }
    sets = [s for name in config.protocols for s in builders[name]()]
    # Warm up the JIT-compiled kernels so that the first pair's seconds are not compile time.
    warm = sets[0].pairs[0]
    default.adapt([warm.reference], random_state=config.seed, **config.adapt).colorize(warm.target)
    results = []
    adapted: dict = {}
    with tqdm(total=sum(len(s.pairs) for s in sets), desc="reference eval", file=sys.stderr) as bar:
        for s in sets:
            ev = score_set(s, default, config, adapted, bar)
            results.append(
                {
                    "protocol": s.protocol,
                    "set": s.name,
                    "summary": summarize(ev.rows),
                    "rows": ev.rows,
                }
            )
            adapted.clear()
            bar.write(f"{s.protocol} / {s.name}: done")
    return results


def _value(text: str):
    """A ``--set`` value: JSON (a number, true, ...) or else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=None, help="targets per set (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-side", type=int, default=None, help="shrink images first (tests)")
    p.add_argument("--out", default=Config.out, help="markdown table (a .json is written beside)")
    p.add_argument("--split", default="test", choices=("test", "val"))
    p.add_argument("--model", default="default", help="a bundled model or a model file")
    p.add_argument("--protocols", default=",".join(PROTOCOLS), help="comma-separated")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="an AdaptParams setting"
    )
    args = p.parse_args(argv)
    if args.n is not None and args.n < 1:
        p.error(f"--n must be at least 1, got {args.n}")
    protocols = tuple(x for x in args.protocols.split(",") if x)
    if not protocols or set(protocols) - set(PROTOCOLS):
        p.error(f"--protocols: expected some of {','.join(PROTOCOLS)}, got {args.protocols!r}")
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in AdaptParams.__dataclass_fields__:
            p.error(f"--set: unknown setting {key!r}")
        overrides[key] = _value(value)
    config = Config(
        n=args.n,
        seed=args.seed,
        max_side=args.max_side,
        out=args.out,
        split=args.split,
        model=args.model,
        protocols=protocols,
        adapt=overrides,
    )
    t0 = time.perf_counter()
    results = run(config)
    table = markdown(results, config)
    print(table)
    out = Path(config.out)
    atomic_write(out, lambda fh: fh.write(table.encode()), overwrite=True)
    write_json(
        out.with_suffix(".json"),
        {
            "config": asdict(config),
            "versions": _versions(),
            "seconds": time.perf_counter() - t0,
            "results": results,
        },
    )
    print(f"wrote {out} and {out.with_suffix('.json')} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
