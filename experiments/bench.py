"""Speed and memory of every stage, against a naive reference, in one run: ``make bench``.

``python -m experiments.bench [--quick] [--out DIR] [--only NAME ...] [--repeats N]``

Each row of the table is one stage on fixed synthetic (or bundled) inputs, run in a
fresh Python process so that stages do not pollute each other's memory. Inference rows
use the bundled fast model (``paths.FAST_MODEL``: the paper's configuration, SOM 3x3,
5x5 patches, MLP 50+50), the model the targets (:data:`TARGETS`) are stated for; the
naive reference colorizes only that configuration.

* the median wall time of several runs (after one untimed warm-up call, reported as
  ``first_s``: it loads numba's cached kernels), the process CPU time of the same
  runs, and the throughput;
* peak memory: the process's peak resident set (``VmHWM``, reset just before the
  timed runs) and how far it rose above the resident set the inputs already took;
* where the paper's way of computing applies, the same inputs through
  ``tests/naive.py`` (Python loops per patch and per codeword, one float64 predict
  per image), its throughput, the speed-up ratio, and whether the outputs agree.

The machine this runs on may be shared: the load average is recorded before and after
every row. Ratios measured in the same run are the figures to quote. Results go to
``experiments/results/bench/``: ``bench.json`` (everything), ``bench.md`` (the table)
and ``inference.png`` (colorizing time against image size).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

import numpy as np

#: Version of the JSON layout written by this module.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class BenchConfig:
    """What is measured, at which sizes, how often."""

    repeats: int = 5  #: timed runs of quick stages (the median is reported)
    slow_repeats: int = 3  #: timed runs of SOM and MLP fits and of the 12 MP photo
    image_shape: tuple[int, int] = (321, 481)  #: BSDS500's photo size
    n_images: int = 400  #: images in the patch dataset
    pixels_per_image: int = 2500
    patch_sizes: tuple[int, ...] = (3, 5, 11)
    som_shapes: tuple[tuple[int, int], ...] = ((3, 3), (10, 10), (20, 20))
    som_fit_samples: int = 1_000_000  #: UV values given to the SOM fit (it subsamples 20 000)
    lookup_samples: int = 1_000_000  #: UV values labelled by the SOM lookup
    lookup_shape: tuple[int, int] = (20, 20)
    mlp_samples: int = 50_000
    mlp_hidden: tuple[int, ...] = (50, 50)
    forward_rows: int = 1 << 20  #: rows of the forward-pass comparison
    inference_shapes: tuple[tuple[int, int], ...] = ((256, 256), (1000, 1000), (3000, 4000))
    naive_shape: tuple[int, int] = (256, 256)  #: the image the naive colorizer runs on
    naive_lookup_samples: int = 5_000  #: rows the naive per-pixel codeword loop labels
    naive_forward_rows: int = 1 << 16
    naive_patch_elements: int = 4_000_000  #: patch elements the naive Python loops build
    decode_images: int = 20  #: photos decoded and converted to LUV
    cold_runs: int = 5  #: runs of the command line
    seed: int = 0
    quick: bool = False  #: synthetic photos only, fewer SOM steps


#: A run of every stage at tiny sizes, for tests and for a first look (seconds).
QUICK = BenchConfig(
    quick=True,
    repeats=2,
    slow_repeats=1,
    image_shape=(40, 60),
    n_images=6,
    pixels_per_image=300,
    patch_sizes=(5,),
    som_shapes=((3, 3),),
    som_fit_samples=20_000,
    lookup_samples=20_000,
    lookup_shape=(5, 5),
    mlp_samples=3_000,
    mlp_hidden=(8,),
    forward_rows=5_000,
    inference_shapes=((32, 32), (48, 64)),
    naive_shape=(32, 32),
    naive_lookup_samples=300,
    naive_forward_rows=2_000,
    naive_patch_elements=20_000,
    decode_images=2,
    cold_runs=1,
)

#: The speed and memory somcolor is held to, on the fast model.
TARGETS = {
    "patch_speedup": 50.0,  #: patch-dataset build (5x5) vs the naive loops
    "patch_samples_per_s": 2e6,  #: patch-dataset build (5x5)
    "lookup_s": 1.0,  #: SOM label of 10^6 UV values, 20x20 map
    "lookup_extra_mb": 200.0,
    "colorize_speedup": 20.0,  #: one 256x256 image end to end vs the naive reference
    "inference_mpx_s": 4.0,  #: full-resolution inference
    "peak_12mp_mb": 1024.0,  #: colorizing a 12 MP photo
    "cold_start_s": 2.0,  #: `somcolor colorize` on one small image, new process
}


# ---------------------------------------------------------------------------- measuring
def _status_kb(field: str) -> float | None:
    """A ``kB`` field of ``/proc/self/status`` (Linux), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the process's peak resident set (Linux >= 4.0); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    rss = _status_kb("VmRSS")
    return rss / 1024 if rss is not None else _peak_mb()


def measure(fn, repeats: int, *, warmup=True) -> dict:
    """Time ``fn()``: median wall and CPU seconds of ``repeats`` runs, and peak memory.

    One untimed warm-up call first (``first_s``): of ``fn`` itself, or of ``warmup``
    when that is a function (a smaller job that loads the same kernels). Peak memory
    is the resident set's high-water mark over the timed runs; ``extra_rss_mb`` is how
    far it rose above the resident set before them.
    """
    first = None
    if warmup:
        t0 = time.perf_counter()
        (warmup if callable(warmup) else fn)()
        first = time.perf_counter() - t0
    before = _rss_mb()
    exact = _reset_peak()
    walls, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        del result
    peak = _peak_mb()
    return {
        "median_s": statistics.median(walls),
        "runs_s": [round(w, 5) for w in walls],
        "cpu_s": statistics.median(cpus),
        "first_s": first,
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(peak, 1),
        "extra_rss_mb": round(peak - before, 1),
        "peak_method": "VmHWM reset before the runs" if exact else "lifetime peak (ru_maxrss)",
    }


def _row(
    name: str, what: str, n: float, unit: str, ours: dict, naive: dict | None = None, **extra
) -> dict:
    """One table row: our measurement, the naive one on the same inputs, their ratio.

    ``speedup`` compares wall-clock throughputs (the figure to quote);
    ``speedup_cpu`` compares throughput per CPU-second of the process, which a busy
    machine disturbs less.
    """
    ours = dict(ours, per_s=n / ours["median_s"], n=n)
    row = {"name": name, "what": what, "unit": unit, "ours": ours, "naive": None, "speedup": None}
    if naive is not None:
        naive = dict(naive, per_s=naive["n"] / naive["median_s"])
        row["naive"] = naive
        row["speedup"] = ours["per_s"] / naive["per_s"]
        row["speedup_cpu"] = (n / ours["cpu_s"]) / (naive["n"] / naive["cpu_s"])
    row.update(extra)
    return row


# ---------------------------------------------------------------------------- inputs
def synthetic_gray(shape: tuple[int, int], seed: int) -> np.ndarray:
    """A uint8 gray photo stand-in: smooth shading, edges and grain (deterministic)."""
    rng = np.random.default_rng(seed)
    H, W = shape
    y = np.arange(H, dtype=np.float32)[:, None]
    x = np.arange(W, dtype=np.float32)[None, :]
    img = 110 + 60 * np.sin(y / (7 + H / 9)) * np.cos(x / (5 + W / 11))
    img += 40 * ((x + 2 * y) % (W / 3 + 17) < (W / 6 + 8))
    img += rng.integers(0, 24, size=shape, dtype=np.uint8)
    return np.clip(img, 0, 255).astype(np.uint8)


def synthetic_L(shape: tuple[int, int], seed: int) -> np.ndarray:
    """The CIELUV L (float32) of :func:`synthetic_gray`."""
    from somcolor.color import luminance

    return luminance(synthetic_gray(shape, seed))


def synthetic_uv(n: int, seed: int) -> np.ndarray:
    """``n`` chroma values (float64) from a mixture of colored clusters around gray."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0], [15, 25], [-8, -8], [5, 22], [-4, 19], [30, 40], [-20, 10]])
    spread = np.array([3, 8, 5, 6, 4, 12, 7])[:, None]
    which = rng.integers(0, len(centres), n)
    return centres[which] + rng.normal(size=(n, 2)) * spread[which]


def _patch_dataset(images, k: int, n: int, seed: int) -> np.ndarray:
    """Training samples as :meth:`Colorizer.build_dataset` draws them, from L images."""
    from somcolor.features import FeatureSpec, features_at
    from somcolor.patches import sample_positions

    rng = np.random.default_rng(seed)
    spec = FeatureSpec(patch_size=k)
    X = np.empty((sum(min(n, L.size) for L in images), spec.n_features), dtype=np.float32)
    at = 0
    for L in images:  # filled in place, as build_dataset does
        index = sample_positions(L.shape, n, rng)
        features_at(L, index, spec, out=X[at : at + len(index)])
        at += len(index)
    return X


def _naive_patch_dataset(images, k: int, n: int, seed: int) -> np.ndarray:
    from somcolor.patches import sample_positions
    from tests import naive

    rng = np.random.default_rng(seed)
    return np.concatenate(
        [naive.patches_at(L, sample_positions(L.shape, n, rng), k) for L in images]
    )


# ---------------------------------------------------------------------------- stages
def stage_decode(cfg: BenchConfig) -> list[dict]:
    """Read photos and convert them to CIELUV, as training does for every photo."""
    from somcolor.color import rgb_to_luv, to_float_rgb
    from somcolor.io import read_image
    from somcolor.paths import RAW_DIR
    from tests import naive

    files = sorted((RAW_DIR / "bsds500" / "test").glob("*.jpg"))[: cfg.decode_images]
    tmp = None
    if len(files) < cfg.decode_images or cfg.quick:
        from PIL import Image

        tmp = tempfile.mkdtemp(prefix="somcolor-bench-")
        files = []
        for i in range(cfg.decode_images):
            gray = synthetic_gray(cfg.image_shape, cfg.seed + i)
            rgb = np.stack([gray, np.roll(gray, 7, axis=1), gray[::-1]], axis=2)
            path = Path(tmp, f"photo{i}.jpg")
            Image.fromarray(rgb).save(path, quality=90)
            files.append(path)
    try:

        def ours():
            return [rgb_to_luv(to_float_rgb(read_image(f))) for f in files]

        def reference():
            from PIL import Image

            out = []
            for f in files:
                with Image.open(f) as im:
                    out.append(naive.rgb_to_luv(np.asarray(im.convert("RGB")) / 255.0))
            return out

        mine = measure(ours, cfg.repeats)
        theirs = measure(reference, cfg.repeats)
        a, b = ours(), reference()
        n_px = sum(x.shape[0] * x.shape[1] for x in a)
        diff = max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))
        source = "BSDS500 test photos" if tmp is None else "synthetic JPEGs"
        return [
            _row(
                "decode_luv",
                f"decode {len(files)} JPEGs ({source}) + sRGB -> CIELUV",
                n_px,
                "px",
                mine,
                dict(theirs, n=n_px, how="PIL + scikit-image rgb2luv (float64)"),
                equal=diff < 1e-3,
                max_abs_diff=diff,
            )
        ]
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def stage_som_fit(cfg: BenchConfig, shape: tuple[int, int]) -> list[dict]:
    """Train the SOM quantizer (minisom, 20 000 steps on a 20 000-value subsample)."""
    from somcolor.quantize import SOMQuantizer

    uv = synthetic_uv(cfg.som_fit_samples, cfg.seed)
    n_iterations = 2_000 if cfg.quick else 20_000

    def fit():
        return SOMQuantizer(som_shape=shape, n_iterations=n_iterations, random_state=0).fit(uv)

    m = measure(fit, cfg.slow_repeats, warmup=False)
    name = f"som_fit_{shape[0]}x{shape[1]}"
    what = f"SOM fit {shape[0]}x{shape[1]} ({n_iterations} steps) + label {len(uv)} UV"
    return [_row(name, what, n_iterations, "steps", m)]


def stage_som_lookup(cfg: BenchConfig) -> list[dict]:
    """Label UV values with their nearest SOM code."""
    from somcolor.quantize import SOMQuantizer, nearest_code
    from tests import naive

    uv = synthetic_uv(cfg.lookup_samples, cfg.seed + 1)
    q = SOMQuantizer(som_shape=cfg.lookup_shape, n_iterations=2000, random_state=0)
    codebook = q.fit(uv[:20_000]).codebook_
    mine = measure(lambda: nearest_code(uv, codebook), cfg.repeats)
    few = uv[: cfg.naive_lookup_samples]
    theirs = measure(lambda: naive.nearest_code(few, codebook), 1, warmup=False)
    equal = bool(np.array_equal(nearest_code(few, codebook), naive.nearest_code(few, codebook)))
    rows, cols = cfg.lookup_shape
    return [
        _row(
            f"som_lookup_{rows}x{cols}",
            f"SOM label of {len(uv):,} UV values, {rows}x{cols} map",
            len(uv),
            "values",
            mine,
            dict(theirs, n=len(few), how=f"per-pixel Python loop over codewords, first {len(few)}"),
            equal=equal,
        )
    ]


def stage_patch_build(cfg: BenchConfig, k: int) -> list[dict]:
    """Draw pixels from every image and build their k x k L patches (training set)."""
    images = [synthetic_L(cfg.image_shape, cfg.seed + i) for i in range(cfg.n_images)]
    n = cfg.pixels_per_image
    n_samples = len(images) * min(n, images[0].size)
    mine = measure(lambda: _patch_dataset(images, k, n, cfg.seed), cfg.repeats)
    n_naive = max(1, min(len(images), cfg.naive_patch_elements // (n * k * k)))
    few = images[:n_naive]
    theirs = measure(lambda: _naive_patch_dataset(few, k, n, cfg.seed), 1, warmup=False)
    equal = bool(
        np.array_equal(
            _patch_dataset(few, k, n, cfg.seed), _naive_patch_dataset(few, k, n, cfg.seed)
        )
    )
    H, W = cfg.image_shape
    return [
        _row(
            f"patch_build_{k}x{k}",
            f"patch dataset {k}x{k}: {n} px/img x {len(images)} images {W}x{H}",
            n_samples,
            "samples",
            mine,
            dict(
                theirs,
                n=n_naive * min(n, images[0].size),
                how=f"Python loops per patch element, first {n_naive} images",
            ),
            equal=equal,
        )
    ]


def _mlp_data(cfg: BenchConfig):
    """Patches and learnable labels: the code of the strongest of 9 random projections."""
    per_image = cfg.pixels_per_image
    n_images = -(-cfg.mlp_samples // per_image)
    images = [synthetic_L(cfg.image_shape, cfg.seed + i) for i in range(n_images)]
    X = _patch_dataset(images, 5, per_image, cfg.seed)[: cfg.mlp_samples]
    rng = np.random.default_rng(cfg.seed)
    z = (X - X.mean(axis=0)) / X.std(axis=0)
    y = np.argmax(z @ rng.normal(size=(X.shape[1], 9)), axis=1)
    return X, y


def stage_mlp_fit(cfg: BenchConfig) -> list[dict]:
    """Train the patch classifier (scikit-learn MLP, Adam, early stopping)."""
    from somcolor.classify import PatchClassifier

    X, y = _mlp_data(cfg)
    fitted = []

    def fit():
        clf = PatchClassifier(hidden_layer_sizes=cfg.mlp_hidden, random_state=0).fit(X, y)
        fitted.append(clf.n_iter_)
        return clf

    m = measure(fit, cfg.slow_repeats, warmup=False)
    hidden = "+".join(map(str, cfg.mlp_hidden))
    return [
        _row(
            "mlp_fit",
            f"MLP fit {hidden} on {len(X):,} 5x5 patches ({fitted[0]} epochs)",
            len(X) * fitted[0],
            "sample-epochs",
            m,
            epochs=fitted[0],
        )
    ]


def _numpy_forward(X, mean, scale, coefs, intercepts):
    """The float32 numpy forward pass somcolor used before its numba kernel."""
    h = (np.asarray(X, dtype=np.float32) - mean) / scale
    for i, (W, b) in enumerate(zip(coefs, intercepts, strict=True)):
        h = h @ W
        h += b
        if i < len(coefs) - 1:
            np.maximum(h, 0, out=h)
    h -= h.max(axis=1, keepdims=True)
    np.exp(h, out=h)
    h /= h.sum(axis=1, keepdims=True)
    return h


def stage_forward(cfg: BenchConfig) -> list[dict]:
    """The MLP forward pass alone: our kernel against numpy on the same rows."""
    import numba

    from somcolor import load
    from somcolor.classify import forward
    from somcolor.paths import FAST_MODEL
    from tests import naive

    c = load(FAST_MODEL).classifier_
    n_images = -(-cfg.forward_rows // (cfg.image_shape[0] * cfg.image_shape[1]))
    X = np.concatenate(
        [synthetic_L(cfg.image_shape, cfg.seed + i).reshape(-1) for i in range(n_images + 25)]
    )
    # Patches of a long row of pixels: 5x5 windows of consecutive values suffice here.
    X = np.lib.stride_tricks.sliding_window_view(X, 25)[: cfg.forward_rows]
    X = np.ascontiguousarray(X, dtype=np.float32)
    args = (c.mean_, c.scale_, c.coefs_, c.intercepts_)
    macs = sum(W.shape[0] * W.shape[1] for W in c.coefs_)

    def ours():
        return forward(X, *args, c.out_activation_)

    mine = measure(ours, cfg.repeats)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    one = measure(ours, cfg.repeats)
    numba.set_num_threads(threads)
    numpy32 = measure(lambda: _numpy_forward(X, *args), cfg.repeats)

    def matmuls():
        h = X
        for W in c.coefs_:
            h = h @ W
        return h

    blas = measure(matmuls, cfg.repeats)
    few = X[: cfg.naive_forward_rows]
    theirs = measure(lambda: naive.forward(few, *args, c.out_activation_), cfg.repeats)
    p, q = ours(), naive.forward(X[:50_000], *args, c.out_activation_)
    p = p[:50_000]
    n = len(X)

    def rate(m):
        return {
            "Mpx_s": n / m["median_s"] / 1e6,
            "GFLOP_s": 2 * macs * n / m["median_s"] / 1e9,
            "Mpx_per_cpu_s": n / m["cpu_s"] / 1e6,
        }

    return [
        _row(
            "forward",
            f"MLP forward pass, {n:,} rows of 5x5 patches, 25-50-50-9, float32",
            n,
            "rows",
            mine,
            dict(theirs, n=len(few), how="float64 numpy, layer by layer, all rows at once"),
            equal=bool(np.array_equal(p.argmax(1), q.argmax(1))),
            max_abs_diff=float(np.abs(p - q).max()),
            threads=threads,
            macs_per_row=macs,
            rates={
                "ours": rate(mine),
                "ours_1_thread": rate(one),
                "numpy_float32_forward": rate(numpy32),
                "numpy_matmul_only": rate(blas),
            },
            fraction_of_numpy_matmul=blas["median_s"] / mine["median_s"],
            one_thread=one,
            numpy_float32_forward=numpy32,
            numpy_matmul_only=blas,
        )
    ]


def stage_colorize(cfg: BenchConfig, shape: tuple[int, int]) -> list[dict]:
    """Colorize one gray photo end to end in-process with the bundled fast model."""
    from somcolor import load
    from somcolor.color import compose, luminance
    from somcolor.paths import FAST_MODEL
    from tests import naive

    model = load(FAST_MODEL)
    image = synthetic_gray(shape, cfg.seed)
    H, W = shape
    big = H * W > 4e6
    mine = measure(
        lambda: model.colorize(image),
        cfg.slow_repeats if big else cfg.repeats,
        warmup=lambda: model.colorize(image[:64, :64]),
    )
    # Where the time goes: one run of each step of colorize, on the whole image at once
    # (colorize does them a block of rows at a time). The fast model predicts at full
    # resolution without smoothing, so predict_uv is the fused kernel alone.
    predictor = model.predictor()
    t0 = time.perf_counter()
    L = luminance(image)
    t1 = time.perf_counter()
    uv = predictor.predict_uv(L)
    t2 = time.perf_counter()
    compose(L, uv)
    t3 = time.perf_counter()
    parts = {
        "luminance": t1 - t0,
        "patches + MLP + decode (one fused kernel)": t2 - t1,
        "compose (LUV -> sRGB uint8)": t3 - t2,
    }
    del L, uv
    naive_m, extra = None, {}
    if tuple(shape) == tuple(cfg.naive_shape):
        naive_m = measure(lambda: naive.colorize(model, image), 1, warmup=False)
        naive_m = dict(naive_m, n=H * W, how="Python-loop patches, one float64 predict, skimage")
        ref, ref_codes = naive.colorize(model, image, return_codes=True)
        out = model.colorize(image)
        _, codes = model.predict_uv(luminance(image), return_codes=True)
        same = codes == ref_codes
        extra = {
            "codes_agree": float(same.mean()),
            "max_abs_diff_where_codes_agree": int(
                np.abs(out.astype(int) - ref)[same].max(initial=0)
            ),
            "equal": bool(same.mean() > 0.999),
        }
    return [
        _row(
            f"colorize_{W}x{H}",
            f"colorize {W}x{H} gray ({H * W / 1e6:.2f} MP), fast model, in-process",
            H * W,
            "px",
            mine,
            naive_m,
            pixels=H * W,
            parts_s=parts,
            **extra,
        )
    ]


def stage_cold_start(cfg: BenchConfig) -> list[dict]:
    """``somcolor colorize`` on one small image in a new process, wall time."""
    import resource

    from PIL import Image

    from somcolor.paths import FAST_MODEL

    exe = Path(sys.executable).with_name("somcolor")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "somcolor"]
    tmp = Path(tempfile.mkdtemp(prefix="somcolor-bench-"))
    try:
        src, dst = tmp / "small.png", tmp / "small_color.png"
        Image.fromarray(synthetic_gray((64, 96), cfg.seed)).save(src)
        full = [*cmd, "colorize", str(src), "-o", str(dst), "--force", "--model", str(FAST_MODEL)]

        def run(args):
            t0 = time.perf_counter()
            subprocess.run(args, check=True, capture_output=True)
            return time.perf_counter() - t0

        first = run(full)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        walls = [run(full) for _ in range(cfg.cold_runs)]
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / len(walls)
        # What starting costs, each in a new process: the interpreter alone, the heaviest
        # imports, and numba's first call of a cached kernel (it sets up its compiler
        # target, which imports scipy.linalg for BLAS).
        tries = 1 if cfg.quick else 3
        first_call = (
            "import numpy as np; from somcolor.color import luminance; "
            "luminance(np.zeros((2, 2), np.uint8))"
        )
        programs = {"python alone": "pass"}
        for module in ("numpy", "numba", "sklearn.base", "somcolor.pipeline", "somcolor.predict"):
            programs[f"import {module}"] = f"import {module}"
        programs["import numba + first kernel call"] = first_call
        imports = {
            label: statistics.median(run([sys.executable, "-c", code]) for _ in range(tries))
            for label, code in programs.items()
        }
        m = {
            "median_s": statistics.median(walls),
            "runs_s": [round(w, 3) for w in walls],
            "cpu_s": cpu,
            "first_s": first,
            "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
            "rss_before_mb": None,
            "extra_rss_mb": None,
            "peak_method": "ru_maxrss of the child processes",
        }
        return [
            _row(
                "cold_start",
                "`somcolor colorize` 96x64 PNG (fast model), new process (wall)",
                1,
                "runs",
                m,
                command=" ".join([*full[:1], "colorize", "small.png", "--model", "fast.npz"]),
                import_s=imports,
            )
        ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _plan(cfg: BenchConfig) -> list[tuple[str, object, tuple]]:
    """Every row to run: (name, stage function, extra arguments)."""
    plan = [("decode_luv", stage_decode, ())]
    plan += [(f"som_fit_{r}x{c}", stage_som_fit, ((r, c),)) for r, c in cfg.som_shapes]
    plan += [("som_lookup", stage_som_lookup, ())]
    plan += [(f"patch_build_{k}x{k}", stage_patch_build, (k,)) for k in cfg.patch_sizes]
    plan += [("mlp_fit", stage_mlp_fit, ()), ("forward", stage_forward, ())]
    plan += [(f"colorize_{w}x{h}", stage_colorize, ((h, w),)) for h, w in cfg.inference_shapes]
    plan += [("cold_start", stage_cold_start, ())]
    return plan


def _run_stage(fn, cfg: BenchConfig, args: tuple) -> list[dict]:
    """Run one stage (in a fresh process), with the load average around it."""
    load_before = os.getloadavg()
    rows = fn(cfg, *args)
    load_after = os.getloadavg()
    for row in rows:
        row["load_avg"] = {"before": list(load_before), "after": list(load_after)}
    return rows


# ---------------------------------------------------------------------------- report
def machine() -> dict:
    """The machine and software the figures were measured on."""
    import numba

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    mem_gb = None
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("numpy", "numba", "scikit-learn", "scikit-image", "minisom", "pillow"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    from somcolor import __version__

    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": round(mem_gb, 1) if mem_gb else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "somcolor": __version__,
        "versions": versions,
    }


def targets(rows: dict[str, dict]) -> list[dict]:
    """Each target of :data:`TARGETS`: what it asks, what was measured, met or not."""
    out = []

    def add(name, asked, measured, met, note=""):
        out.append(
            {"target": name, "asked": asked, "measured": measured, "met": bool(met), "note": note}
        )

    if "patch_build_5x5" in rows:
        r = rows["patch_build_5x5"]
        add(
            "patch build 5x5 vs naive",
            f">= {TARGETS['patch_speedup']:.0f}x",
            _fmt_ratio(r["speedup"]),
            r["speedup"] >= TARGETS["patch_speedup"],
        )
        rate = r["ours"]["per_s"]
        add(
            "patch build 5x5 throughput",
            ">= 2 M samples/s",
            f"{rate / 1e6:.2f} M samples/s",
            rate >= TARGETS["patch_samples_per_s"],
        )
    lookup = next((r for n, r in rows.items() if n.startswith("som_lookup")), None)
    if lookup is not None:
        add(
            f"SOM label, {lookup['ours']['n']:,} UV",
            "<= 1 s",
            f"{lookup['ours']['median_s']:.2f} s",
            lookup["ours"]["median_s"] <= TARGETS["lookup_s"],
        )
        extra = lookup["ours"]["extra_rss_mb"]
        add(
            "SOM label extra memory",
            "<= 200 MB",
            f"{extra:.0f} MB",
            extra <= TARGETS["lookup_extra_mb"],
        )
    naive_row = next(
        (r for r in rows.values() if r["name"].startswith("colorize") and r["naive"]), None
    )
    if naive_row is not None:
        add(
            f"{naive_row['name']} vs naive",
            ">= 20x",
            _fmt_ratio(naive_row["speedup"]),
            naive_row["speedup"] >= TARGETS["colorize_speedup"],
        )
    colorize = sorted(
        (r for r in rows.values() if r["name"].startswith("colorize")), key=lambda r: r["pixels"]
    )
    if colorize:
        big = [r for r in colorize if r["pixels"] >= 1e6] or colorize[-1:]
        worst = min(big, key=lambda r: r["ours"]["per_s"])
        best = max(big, key=lambda r: r["ours"]["per_s"])
        lo, hi = worst["ours"]["per_s"] / 1e6, best["ours"]["per_s"] / 1e6
        add(
            "full-resolution inference (end to end)",
            ">= 4 Mpx/s",
            f"{lo:.2f}-{hi:.2f} Mpx/s",
            lo >= TARGETS["inference_mpx_s"],
        )
        largest = colorize[-1]
        add(
            f"peak RSS, {largest['name']}",
            "< 1 GB",
            f"{largest['ours']['peak_rss_mb']:.0f} MB",
            largest["ours"]["peak_rss_mb"] < TARGETS["peak_12mp_mb"],
        )
        if len(colorize) >= 2:
            a, b = colorize[-2], colorize[-1]
            per_px = (
                (b["ours"]["peak_rss_mb"] - a["ours"]["peak_rss_mb"])
                * 2**20
                / (b["pixels"] - a["pixels"])
            )
            add(
                "memory growth with image size",
                "the output only (3 B/px + the 1 B/px input)",
                f"{per_px:.0f} B/px",
                per_px <= 6,
                "peak RSS difference between the two largest sizes",
            )
    if "forward" in rows:
        r = rows["forward"]
        mpx = r["rates"]["ours"]["Mpx_s"]
        add(
            "MLP forward pass alone",
            ">= 4 Mpx/s",
            f"{mpx:.2f} Mpx/s ({r['fraction_of_numpy_matmul']:.1f}x numpy's matmuls)",
            mpx >= TARGETS["inference_mpx_s"],
        )
    if "cold_start" in rows:
        r = rows["cold_start"]
        add(
            "`somcolor colorize`, new process",
            "< 2 s",
            f"{r['ours']['median_s']:.2f} s",
            r["ours"]["median_s"] < TARGETS["cold_start_s"],
        )
    return out


def _fmt_time(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def _fmt_rate(per_s: float, unit: str) -> str:
    """``2.31 Mpx/s``, ``12.5 k samples/s``."""
    space = "" if unit == "px" else " "
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if per_s >= scale:
            return f"{per_s / scale:.2f} {prefix}{space}{unit}/s"
    return f"{per_s:.2f} {unit}/s"


def _fmt_ratio(x: float) -> str:
    return f"{x:.0f}x" if x >= 100 else f"{x:.1f}x"


def table(report: dict) -> str:
    """The report as a Markdown table, with the targets below it."""
    lines = [
        "| stage | median wall (CPU) | throughput | peak RSS (rise) | naive reference "
        "| speed-up wall (CPU) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["rows"]:
        o = r["ours"]
        rise = f" (+{o['extra_rss_mb']:.0f})" if o.get("extra_rss_mb") is not None else ""
        rate = "" if r["unit"] == "runs" else _fmt_rate(o["per_s"], r["unit"])
        naive = speed = ""
        if r["naive"]:
            naive = _fmt_rate(r["naive"]["per_s"], r["unit"])
            speed = f"{_fmt_ratio(r['speedup'])} ({_fmt_ratio(r['speedup_cpu'])})"
        lines.append(
            f"| {r['what']} | {_fmt_time(o['median_s'])} ({_fmt_time(o['cpu_s'])}) | {rate} | "
            f"{o['peak_rss_mb']:.0f} MB{rise} | {naive} | {speed} |"
        )
    lines += ["", "| target | asked | measured | met |", "| --- | --- | --- | --- |"]
    for t in report["targets"]:
        met = "yes" if t["met"] else "no"
        lines.append(f"| {t['target']} | {t['asked']} | {t['measured']} | {met} |")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> Path | None:
    """Inference time against image size (log-log), with linear scaling for reference."""
    rows = sorted(
        (r for r in report["rows"] if r["name"].startswith("colorize")), key=lambda r: r["pixels"]
    )
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    px = np.array([r["pixels"] for r in rows], dtype=float)
    med = np.array([r["ours"]["median_s"] for r in rows])
    # runs_s are rounded, median_s not: the median can sit a hair outside their min..max
    lo = np.maximum(med - np.array([min(r["ours"]["runs_s"]) for r in rows]), 0)
    hi = np.maximum(np.array([max(r["ours"]["runs_s"]) for r in rows]) - med, 0)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.errorbar(px, med, yerr=[lo, hi], marker="o", capsize=3, label="somcolor (median, min-max)")
    ref = med[-1] * px / px[-1]
    ax.plot(px, ref, ls="--", color="gray", label="linear in pixels")
    ax.plot(
        px,
        px / (TARGETS["inference_mpx_s"] * 1e6),
        ls=":",
        color="green",
        label=f"target {TARGETS['inference_mpx_s']:.0f} Mpx/s",
    )
    for r in rows:
        if r["naive"]:
            ax.plot(
                r["pixels"],
                r["naive"]["median_s"],
                "s",
                color="red",
                label=f"naive reference ({_fmt_ratio(r['speedup'])} slower)",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("image size (pixels)")
    ax.set_ylabel("colorize time (s)")
    load = report["load_avg"]["before"][0]
    ax.set_title(f"somcolor colorize, {report['machine']['usable_cpus']} CPUs, load {load:.1f}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run(cfg: BenchConfig, only: list[str] | None = None, progress=None, isolate=True) -> dict:
    """Run every stage and return the report.

    Each stage runs in a new process (``isolate``) so that its memory figures are its
    own; ``isolate=False`` runs them here (for tests).
    """
    plan = [p for p in _plan(cfg) if not only or any(p[0].startswith(o) for o in only)]
    report = {
        "format_version": FORMAT_VERSION,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": asdict(cfg),
        "load_avg": {"before": list(os.getloadavg())},
        "rows": [],
    }
    ctx = get_context("spawn")
    for name, fn, args in plan:
        if progress:
            progress(f"{name} ... (load average {os.getloadavg()[0]:.1f})")
        if not isolate:
            report["rows"] += _run_stage(fn, cfg, args)
            continue
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            report["rows"] += pool.submit(_run_stage, fn, cfg, args).result()
    report["load_avg"]["after"] = list(os.getloadavg())
    report["targets"] = targets({r["name"]: r for r in report["rows"]})
    return report


def main(argv=None) -> int:
    from somcolor.paths import RESULTS_DIR

    parser = argparse.ArgumentParser(
        prog="python -m experiments.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in seconds")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "bench", help="output folder")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="rows whose name starts so")
    parser.add_argument("--repeats", type=int, help="timed runs of the quick stages")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else BenchConfig()
    if args.repeats:
        cfg = replace(cfg, repeats=args.repeats)
    report = run(cfg, args.only, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    report["command"] = "python -m experiments.bench " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    png = plot(report, args.out / "inference.png")
    m = report["machine"]
    load = report["load_avg"]
    header = (
        f"somcolor bench on {m['cpu']}, {m['usable_cpus']} CPUs, {m['memory_gb']} GB; "
        f"load average {load['before'][0]:.1f} -> {load['after'][0]:.1f} (1 min)\n"
    )
    (args.out / "bench.md").write_text(header + "\n" + table(report) + "\n")
    print(header)
    print(table(report))
    print(f"\nwrote {args.out}/bench.json, bench.md" + (f" and {png.name}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
