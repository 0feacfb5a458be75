"""The default model's speed, each figure beside its anchor measured in the same run.

``python -m experiments.bench_default [--model default] [--repeats 5] [--skip video]``
prints one row per target and writes ``experiments/results/bench_default.json``:

1. ``photo``: one 481x321 BSDS500 photo colorized in-process through the public API
   (``somcolor.load(model).colorize``, median of ``--repeats`` after a warm-up), beside
   one forward pass of the ECCV16 classification network of Zhang, Isola & Efros at
   256x256 (torch on the CPU, random weights, built from the paper's layer list:
   about 32 M parameters; skipped where torch is not installed).
2. ``12mp``: a 4000x3000 JPEG through ``somcolor colorize`` in a new process (start-up
   included, and a small launcher that measures its peak RSS: about 0.03 s more), beside
   the *stock floor*: Pillow decode + ``skimage.color.rgb2luv`` + ``luv2rgb`` in float32
   + Pillow encode of the same photo, timed inside its own process without its imports.
3. ``video``: frames/s of ``experiments.bench_video`` at 640x480 with the model.
4. ``reference``: colour from a reference photo: the model adapted to one 0.5 MP photo
   (a BSDS500 photo enlarged to 866x577) and then colouring another 0.5 MP photo (in
   gray), in-process (``model.adapt(ref).colorize(gray)``, median of ``--repeats``);
   the issue's target is 3 s on 2 cores.
5. ``hints``: colour hints on a 0.5 MP photo (the same enlarged photo) through the public
   API: ``model.hint_session(photo)``, its first ``colorize`` with 10 simulated hints,
   then the time to re-colour after each of ``--repeats`` more hints (hints to RGB,
   median; the issue's target is 0.3 s).
6. ``strip``: a 1 x 80 000 strip beside a 283 x 283 image (the same pixel count): time
   must grow with pixels, not with the image's shape.
7. ``arithmetic``: the MLP work of ``predict_uv`` on a 384x256 crop of the photo (the
   network's multiply-adds per working pixel times the working pixels, over the median
   time of the whole ``predict_uv``), in GFLOP/s, beside the same run's float32 2048 x
   2048 matrix product through numpy (``a @ a``, median of ``--repeats``): the ratio is
   how much of the machine's arithmetic prediction uses (issue 28's target: 35%).
8. ``quality``: not timed here but read from ``make compare``'s BSDS500 summary (200 test
   photos): the default's row beside the previous, full-resolution default's row of the
   same run (PSNR, AuC, rebalanced AuC, colorfulness ratio); left out, with a line saying
   so, until ``make compare`` has written that summary for the current default.

Figures depend on the machine and on what else runs on it: the JSON records the load.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import somcolor
from somcolor import datasets
from somcolor.io import read_image
from somcolor.paths import RESULTS_DIR

from .report import cpu_name

PHOTO = "test/100007.jpg"
TWELVE_MP = (3000, 4000)  #: rows, columns
REFERENCE = ("test/100039.jpg", PHOTO)  #: the reference, then the photo coloured
HALF_MP = (577, 866)  #: rows, columns: 0.5 MP
COMPARE_SUMMARY = RESULTS_DIR / "compare" / "bsds500" / "summary.csv"
QUALITY = ("psnr", "auc", "auc_rebal", "colorfulness_ratio")
STRIP = (1, 80_000)
SQUARE = (283, 283)

#: The stock floor, run in a process of its own; prints its seconds as JSON.
_FLOOR = r"""
import json, sys, time
import numpy as np
from PIL import Image
from skimage.color import luv2rgb, rgb2luv
src, dst = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
rgb = np.asarray(Image.open(src).convert("RGB"), dtype=np.float32) / 255
luv = rgb2luv(rgb)
out = luv2rgb(luv)
Image.fromarray((np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)).save(dst, quality=90)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def median_time(fn, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()  # warm-up: numba's cached kernels, first allocations
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ---------------------------------------------------------------------------- anchors
def eccv16(torch):
    """The ECCV16 colorization network (Zhang, Isola & Efros 2016), random weights.

    Eight blocks of 3x3 convolutions with batch norm (64-128-256-512-512 dilated-512
    dilated-512-256 channels), a 313-way softmax over the ab gamut and a 1x1 projection
    to ab; the output is a quarter of the input's size, upsampled bilinearly.
    """
    nn = torch.nn

    def block(cin, cout, n, *, stride_last=1, dilation=1, norm=True):
        layers = []
        for i in range(n):
            stride = stride_last if i == n - 1 else 1
            layers += [
                nn.Conv2d(cin if i == 0 else cout, cout, 3, stride, dilation, dilation),
                nn.ReLU(True),
            ]
        if norm:
            layers.append(nn.BatchNorm2d(cout))
        return layers

    layers = [
        *block(1, 64, 2, stride_last=2),
        *block(64, 128, 2, stride_last=2),
        *block(128, 256, 3, stride_last=2),
        *block(256, 512, 3),
        *block(512, 512, 3, dilation=2),
        *block(512, 512, 3, dilation=2),
        *block(512, 512, 3),
        nn.ConvTranspose2d(512, 256, 4, 2, 1),
        nn.ReLU(True),
        *block(256, 256, 2, norm=False),
        nn.Conv2d(256, 313, 1),
        nn.Softmax(dim=1),
        nn.Conv2d(313, 2, 1, bias=False),
        nn.Upsample(scale_factor=4, mode="bilinear"),
    ]
    return nn.Sequential(*layers).eval()


def eccv16_seconds(repeats: int) -> dict | None:
    """One 256x256 forward pass of :func:`eccv16` on the CPU, median of ``repeats``."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    net = eccv16(torch)
    x = torch.rand(1, 1, 256, 256) * 100 - 50
    with torch.inference_mode():
        seconds = median_time(lambda: net(x), repeats)
    params = sum(p.numel() for p in net.parameters())
    return {"seconds": seconds, "parameters": params, "torch_threads": torch.get_num_threads()}


# ---------------------------------------------------------------------------- rows
def row_photo(model, repeats: int) -> dict:
    photo = read_image(datasets.DATASETS["bsds500"].root / PHOTO)
    seconds = median_time(lambda: model.colorize(photo), repeats)
    anchor = eccv16_seconds(repeats)
    row = {"shape": list(photo.shape[:2]), "seconds": seconds, "eccv16": anchor}
    if anchor:
        row["ratio_to_eccv16"] = seconds / anchor["seconds"]
    return row


#: Runs a command and writes its peak RSS in KiB to the file named first. A forked child's
#: peak RSS includes the pages it shared with its parent before ``exec``, so the command
#: is started from this small launcher, not from the benchmark (torch and the models
#: loaded: 600 MB).
_LAUNCHER = r"""
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _peak_rss_mb(cmd: list[str]) -> tuple[float, float, str]:
    """Run ``cmd``; its wall seconds, its own peak RSS in MB and its stdout."""
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        launcher = [sys.executable, "-c", _LAUNCHER, str(rss_file), *cmd]
        t0 = time.perf_counter()
        proc = subprocess.run(launcher, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
        return seconds, int(rss_file.read_text()) / 1024, proc.stdout


def make_12mp(path: Path) -> Path:
    """A 4000x3000 JPEG: a BSDS500 photo enlarged (bicubic), quality 90."""
    photo = Image.open(datasets.DATASETS["bsds500"].root / PHOTO).convert("RGB")
    if photo.height > photo.width:
        photo = photo.transpose(Image.Transpose.ROTATE_90)
    photo.resize(TWELVE_MP[::-1], Image.Resampling.BICUBIC).save(path, quality=90)
    return path


def row_12mp(model_name: str, repeats: int, folder: Path) -> dict:
    src = make_12mp(folder / "12mp.jpg")
    somcolor_bin = Path(sys.executable).with_name("somcolor")
    cmd = [str(somcolor_bin), "colorize", str(src), "-o", str(folder / "out.jpg"), "--force"]
    cmd += ["--model", model_name]
    _peak_rss_mb(cmd)  # a first run fills numba's on-disk cache if a kernel changed
    runs = [_peak_rss_mb(cmd) for _ in range(repeats)]
    floors = []
    for _ in range(repeats):
        _, _, out = _peak_rss_mb([sys.executable, "-c", _FLOOR, str(src), str(folder / "f.jpg")])
        floors.append(json.loads(out)["seconds"])
    seconds = statistics.median(r[0] for r in runs)
    floor = statistics.median(floors)
    return {
        "shape": list(TWELVE_MP),
        "seconds": seconds,
        "peak_rss_mb": max(r[1] for r in runs),
        "stock_floor_seconds": floor,
        "ratio_to_floor": seconds / floor,
    }


def row_video(model_name: str) -> dict:
    """640x480 frames/s from :mod:`experiments.bench_video` (its own process)."""
    cmd = [sys.executable, "-m", "experiments.bench_video", "--model", model_name]
    cmd += ["--sizes", "640x480", "--seconds", "3"]
    seconds, rss, out = _peak_rss_mb(cmd)
    wrote = [line for line in out.splitlines() if line.startswith("wrote ")]
    result = json.loads(Path(wrote[-1].split(" ", 1)[1]).read_text())
    row = result["results"][0]
    return {
        "size": row["size"],
        "frames_per_s": row["frames_per_s"],
        "floor_frames_per_s": row["floor_frames_per_s"],
        "ratio_to_floor": row["ratio_to_floor"],
        "stage_ms_per_frame": row["stage_ms_per_frame"],
        "peak_rss_mb": rss,
    }


def _half_mp(name: str) -> np.ndarray:
    """A BSDS500 photo enlarged (bicubic) to 0.5 MP, landscape, as RGB uint8."""
    photo = Image.open(datasets.DATASETS["bsds500"].root / name).convert("RGB")
    if photo.height > photo.width:
        photo = photo.transpose(Image.Transpose.ROTATE_90)
    return np.asarray(photo.resize(HALF_MP[::-1], Image.Resampling.BICUBIC))


def row_reference(model, repeats: int) -> dict:
    """Adapt to one 0.5 MP reference, then colour a 0.5 MP gray photo."""
    reference = _half_mp(REFERENCE[0])
    gray = _half_mp(REFERENCE[1]).mean(axis=2).astype(np.uint8)
    timings = {}

    def both():
        t0 = time.perf_counter()
        adapted = model.adapt(reference)
        t1 = time.perf_counter()
        adapted.colorize(gray)
        timings.setdefault("adapt", []).append(t1 - t0)
        timings.setdefault("colorize", []).append(time.perf_counter() - t1)

    seconds = median_time(both, repeats)
    return {
        "shape": list(HALF_MP),
        "seconds": seconds,
        "adapt_seconds": statistics.median(timings["adapt"][1:]),
        "colorize_seconds": statistics.median(timings["colorize"][1:]),
    }


def row_hints(model, repeats: int) -> dict:
    """Open a hint session on a 0.5 MP photo, colour with 10 hints, then one more at a time."""
    from somcolor import guide

    photo = _half_mp(REFERENCE[1])
    points = guide.simulated_hints(photo, 10 + repeats, 0)
    predictor = model.predictor()
    t0 = time.perf_counter()
    session = predictor.hint_session(photo)
    t1 = time.perf_counter()
    session.colorize(points[:10])
    t2 = time.perf_counter()
    again = []
    for k in range(11, 11 + repeats):
        t = time.perf_counter()
        session.colorize(points[:k])
        again.append(time.perf_counter() - t)
    return {
        "shape": list(HALF_MP),
        "working": list(session.L_work.shape),
        "session_seconds": t1 - t0,
        "first_colorize_seconds": t2 - t1,
        "one_more_hint_seconds": statistics.median(again),
        "one_more_hint_all": again,
    }


def row_strip(model, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    strip = rng.integers(0, 256, STRIP, dtype=np.uint8)
    square = rng.integers(0, 256, SQUARE, dtype=np.uint8)
    t_strip = median_time(lambda: model.colorize(strip), repeats)
    t_square = median_time(lambda: model.colorize(square), repeats)
    return {
        "strip": list(STRIP),
        "square": list(SQUARE),
        "strip_seconds": t_strip,
        "square_seconds": t_square,
        "ratio": t_strip / t_square,
    }


def row_arithmetic(model, repeats: int) -> dict:
    """GFLOP/s of ``predict_uv``'s MLP work against numpy's 2048^2 float32 matmul."""
    from somcolor.color import luminance

    predictor = model.predictor() if hasattr(model, "predictor") else model
    photo = read_image(datasets.DATASETS["bsds500"].root / PHOTO)
    L = np.ascontiguousarray(luminance(photo[:256, :384]), dtype=np.float32)
    working = predictor.prior(L).shape
    macs = sum(int(np.shape(W)[0]) * int(np.shape(W)[1]) for W in predictor.coefs)
    flop = 2 * macs * working[0] * working[1]
    predict = median_time(lambda: predictor.predict_uv(L), 4 * repeats)
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    matmul = median_time(lambda: a @ a, repeats)
    ours, blas = flop / predict / 1e9, 2 * 2048**3 / matmul / 1e9
    return {
        "shape": list(L.shape),
        "working": list(working),
        "macs_per_pixel": macs,
        "predict_uv_seconds": predict,
        "predict_gflop_s": ours,
        "matmul_2048_gflop_s": blas,
        "ratio": ours / blas,
    }


def row_quality(summary_csv: Path = COMPARE_SUMMARY) -> dict | None:
    """The default's and the previous default's scores from ``make compare``'s summary, or
    None where that summary (for the current default's row) has not been written."""
    from .compare import DEFAULT_NAME, FULL_NAME

    if not summary_csv.is_file():
        return None
    with summary_csv.open(newline="") as fh:
        rows = {r["predictor"]: r for r in csv.DictReader(fh)}
    if DEFAULT_NAME not in rows or FULL_NAME not in rows:
        return None
    return {
        "source": str(summary_csv),
        "images": int(rows[DEFAULT_NAME]["images"]),
        "default": {k: float(rows[DEFAULT_NAME][k]) for k in QUALITY},
        "previous_default": {k: float(rows[FULL_NAME][k]) for k in QUALITY},
    }


# ---------------------------------------------------------------------------- report
def _blas() -> list[str]:
    """The BLAS libraries numpy uses, with their threads (threadpoolctl)."""
    from threadpoolctl import threadpool_info

    return [
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')} "
        f"{i.get('num_threads')} threads".replace("  ", " ")
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]


def _machine() -> dict:
    return {
        "cpu": cpu_name(),
        "blas": _blas(),
        "cpus": len(os.sched_getaffinity(0)),
        "load_1min": os.getloadavg()[0],
        "python": platform.python_version(),
        "somcolor": somcolor.__version__,
    }


def _print_rows(rows: dict) -> None:
    p = rows.get("photo")
    if p:
        anchor = p.get("eccv16")
        line = f"photo 481x321 in-process: {p['seconds']:.3f} s"
        if anchor:
            line += (
                f"; ECCV16 256x256 forward {anchor['seconds']:.3f} s "
                f"({anchor['parameters'] / 1e6:.1f} M params): ratio {p['ratio_to_eccv16']:.2f}"
            )
        else:
            line += "; ECCV16 anchor skipped (torch not installed)"
        print(line)
    m = rows.get("12mp")
    if m:
        print(
            f"12 MP JPEG, somcolor colorize (new process): {m['seconds']:.2f} s, peak RSS "
            f"{m['peak_rss_mb']:.0f} MB; stock floor {m['stock_floor_seconds']:.2f} s: "
            f"ratio {m['ratio_to_floor']:.2f}"
        )
    v = rows.get("video")
    if v:
        print(
            f"video {v['size']}: {v['frames_per_s']:.2f} frames/s, {v['ratio_to_floor']:.1f}x the "
            f"time of decode + tint + encode ({v['floor_frames_per_s']:.0f} frames/s); "
            f"ms/frame {v['stage_ms_per_frame']}"
        )
    r = rows.get("reference")
    if r:
        print(
            f"reference 866x577 -> colour 866x577: {r['seconds']:.2f} s "
            f"(adapt {r['adapt_seconds']:.2f} s + colour {r['colorize_seconds']:.2f} s)"
        )
    h = rows.get("hints")
    if h:
        print(
            f"hints 866x577 (solved at {h['working'][1]}x{h['working'][0]}): session "
            f"{h['session_seconds']:.2f} s, first colour with 10 hints "
            f"{h['first_colorize_seconds']:.2f} s, one more hint {h['one_more_hint_seconds']:.3f} s"
        )
    if "quality" in rows:
        q = rows["quality"]
        if q is None:
            print("quality: no `make compare` summary for the current default yet")
        else:
            new, old = q["default"], q["previous_default"]
            print(
                f"quality, BSDS500 test ({q['images']} photos, make compare): "
                + ", ".join(f"{k} {new[k]:.3f} (previous default {old[k]:.3f})" for k in QUALITY)
            )
    a = rows.get("arithmetic")
    if a:
        print(
            f"arithmetic: predict_uv {a['shape'][1]}x{a['shape'][0]} (working "
            f"{a['working'][1]}x{a['working'][0]}) {a['predict_uv_seconds'] * 1000:.1f} ms, "
            f"MLP work {a['predict_gflop_s']:.0f} GFLOP/s; numpy 2048^2 float32 matmul "
            f"{a['matmul_2048_gflop_s']:.0f} GFLOP/s: ratio {a['ratio']:.0%}"
        )
    s = rows.get("strip")
    if s:
        print(
            f"1x80000 strip {s['strip_seconds']:.3f} s vs 283x283 {s['square_seconds']:.3f} s: "
            f"ratio {s['ratio']:.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default", help="bundled model name or model file")
    p.add_argument("--repeats", type=int, default=5, help="runs per timing (median)")
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["photo", "arithmetic", "12mp", "video", "strip", "reference", "hints", "quality"],
    )
    p.add_argument("--out", default=str(RESULTS_DIR / "bench_default.json"))
    args = p.parse_args(argv)
    model = somcolor.load(args.model)
    rows: dict = {}
    with tempfile.TemporaryDirectory(prefix="somcolor-bench-") as tmp:
        if "photo" not in args.skip:
            rows["photo"] = row_photo(model, args.repeats)
        if "arithmetic" not in args.skip:
            rows["arithmetic"] = row_arithmetic(model, args.repeats)
        if "reference" not in args.skip:
            rows["reference"] = row_reference(model, args.repeats)
        if "hints" not in args.skip:
            rows["hints"] = row_hints(model, args.repeats)
        if "strip" not in args.skip:
            rows["strip"] = row_strip(model, max(1, args.repeats // 2))
        if "12mp" not in args.skip:
            rows["12mp"] = row_12mp(args.model, max(1, args.repeats // 2), Path(tmp))
        if "video" not in args.skip:
            rows["video"] = row_video(args.model)
        if "quality" not in args.skip and args.model == "default":
            rows["quality"] = row_quality()
    _print_rows(rows)
    machine = _machine()
    print(f"CPU {machine['cpu']} ({machine['cpus']} cores); BLAS {', '.join(machine['blas'])}")
    result = {
        "model": args.model,
        "command": "python -m experiments.bench_default " + " ".join(argv or sys.argv[1:]),
        "rows": rows,
        "machine": machine,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
