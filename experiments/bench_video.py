"""Video speed: frames per second of ``somcolor.video.colorize_video`` with the video model.

``python -m experiments.bench_video`` generates a clip per size (640x480 and 1920x1080 by
default), colorizes it with the default settings (smoothing 0.5, no flow, crf 18, preset
medium), and prints end-to-end frames/s, the time per frame of each stage (decode,
luminance, the model's ``predict_uv``, smoothing, composing RGB, encoding), the
resident memory after the first batch, at 10% of the frames (x264's lookahead is full
by then) and after the last batch (flat = streaming works), and the peak. A long clip
checks the memory: ``--sizes 320x240 --seconds 40``. The resolved config, versions and machine go to
``experiments/results/bench_video_<sizes>.json``.

Beside each size, the *floor*: the same clip decoded, given a fixed tint (a per-channel
scale of its RGB) and re-encoded with the same codec and settings through PyAV, end to end
(audio left out); ``ratio_to_floor`` is colorizing's time over it (issue 28's target: 5).

``python -m experiments.bench_video --make-clip out/demo.mp4`` only writes the demo
clip: film-grained gray pans over two BSDS500 photos with a scene cut between them,
and a stereo tone that changes pitch at the cut (so audio sync can be checked by ear).

Options: ``--sizes 640x480,1920x1080``, ``--seconds S`` (clip length per size; the
1080p clip is a third as long), ``--flow`` (smooth with ``flow=True``), ``--model M``
(default: the video commands' model, ``fast``), ``--work-size N`` (predict at N px on the
long side, as ``somcolor colorize-video --work-size N``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

import somcolor
from somcolor import datasets
from somcolor.color import compose
from somcolor.io import read_image
from somcolor.paths import RESULTS_DIR, model_path
from somcolor.predict import Predictor
from somcolor.temporal import TemporalSmoother
from somcolor.video import VIDEO_MODEL, frame_luminance

from .report import cpu_name


@dataclass
class BenchConfig:
    """Defaults of the benchmark; the command line overrides them."""

    sizes: tuple[tuple[int, int], ...] = ((640, 480), (1920, 1080))
    seconds: float = 3.0  #: clip length at 640x480; 1080p clips are a third as long
    rate: str = "30000/1001"
    grain: float = 4.0  #: film grain, standard deviation in 8-bit levels
    photos: tuple[str, ...] = ("test/100039.jpg", "test/103078.jpg")
    smoothing: float = 0.5
    crf: int = 18
    preset: str = "medium"
    flow: bool = False
    model: str = VIDEO_MODEL  #: a bundled model name or a model file
    work_size: int | None = None  #: predict at this long side (None: the model's own)
    stage_frames: int = 8  #: frames used for the per-stage timings
    seed: int = 0
    results: str = str(RESULTS_DIR)  #: folder of bench_video_<sizes>.json


# ---------------------------------------------------------------------------- the clip
def _gray_photo(rel: str) -> np.ndarray:
    """A BSDS500 photo in black and white (Pillow's luma), as float 0..255."""
    rgb = read_image(datasets.DATASETS["bsds500"].root / rel)
    return np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32)


def _view(photo: np.ndarray, size: tuple[int, int], t: float, zoom: bool) -> np.ndarray:
    """A pan (or a slow zoom) over ``photo`` at time ``t`` in [0, 1], resized to ``size``."""
    w, h = size
    ph, pw = photo.shape
    aspect = w / h
    crop_h = min(ph, pw / aspect) * (0.85 - 0.15 * t if zoom else 0.8)
    crop_w = crop_h * aspect
    x0 = (pw - crop_w) * (0.5 if zoom else t)
    y0 = (ph - crop_h) * 0.5
    img = Image.fromarray(photo.astype(np.float32), mode="F")
    box = (x0, y0, x0 + crop_w, y0 + crop_h)
    return np.asarray(img.resize(size, Image.Resampling.BICUBIC, box=box))


def make_clip(path, size=(640, 480), seconds=3.0, config: BenchConfig | None = None) -> Path:
    """Write a gray test clip with AAC stereo audio (see the module docstring)."""
    import av

    config = config or BenchConfig()
    rate = Fraction(config.rate)
    n = max(2, round(seconds * rate))
    rng = np.random.default_rng(config.seed)
    photos = [_gray_photo(p) for p in config.photos]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate, options={"crf": "16", "preset": "fast"})
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        sound = out.add_stream("aac", rate=48000, layout="stereo")
        for i in range(n):
            scene, t = divmod(2 * i / n, 1.0)
            gray = _view(photos[int(scene)], size, t, zoom=bool(scene))
            gray = np.clip(gray + rng.normal(0, config.grain, gray.shape), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.repeat(gray[..., None], 3, axis=2), "rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode())
        samples = round(48000 * n / rate)
        t = np.arange(samples) / 48000
        pitch = np.where(t < n / 2 / rate, 440.0, 660.0)
        tone = (0.2 * np.sin(2 * np.pi * np.cumsum(pitch) / 48000)).astype(np.float32)
        for start in range(0, samples, 4800):
            chunk = np.ascontiguousarray(np.stack([tone[start : start + 4800]] * 2))
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = 48000, start
            out.mux(sound.encode(frame))
        out.mux(sound.encode())
    return path


# ---------------------------------------------------------------------------- timing
def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _encoder(out, rate, width: int, height: int, config: BenchConfig):
    """An x264 stream of ``out`` with the settings ``colorize_video`` is given."""
    options = {"crf": str(config.crf), "preset": config.preset}
    stream = out.add_stream("libx264", rate=rate, options=options)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    return stream


def _stages(clip: Path, model, config: BenchConfig) -> dict:
    """Seconds per frame of each stage, on the clip's first frames."""
    import av

    names = ["luminance", "predict_uv", "smooth", "compose"]
    timings = dict.fromkeys(["decode", *names, "encode"], 0.0)
    with av.open(str(clip)) as inp:
        frames = []
        t0 = time.perf_counter()
        for frame in inp.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == config.stage_frames:
                break
        timings["decode"] = time.perf_counter() - t0
    smoother = TemporalSmoother(config.smoothing, flow=config.flow)
    outs = []
    for rgb in frames:
        t = [time.perf_counter()]
        L = frame_luminance(rgb)
        t.append(time.perf_counter())
        uv = model.predict_uv(L)
        t.append(time.perf_counter())
        uv = smoother(L, uv)
        t.append(time.perf_counter())
        out, _ = compose(L, uv)
        t.append(time.perf_counter())
        outs.append(out)
        for name, a, b in zip(names, t[:-1], t[1:], strict=True):
            timings[name] += b - a
    h, w = frames[0].shape[:2]
    with tempfile.TemporaryFile() as fh, av.open(fh, "w", format="mp4") as out:
        stream = _encoder(out, Fraction(config.rate), w, h, config)
        t0 = time.perf_counter()
        for i, rgb in enumerate(outs):
            frame = av.VideoFrame.from_ndarray(rgb, "rgb24").reformat(format="yuv420p")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        timings["encode"] = time.perf_counter() - t0
    return {k: v / len(frames) for k, v in timings.items()}


def floor_seconds(clip: Path, out_path: Path, config: BenchConfig) -> float:
    """Decode ``clip``, tint every frame, encode it as ``colorize_video`` does: seconds."""
    import av

    tint = np.array([1.0, 0.9, 0.75], np.float32)
    t0 = time.perf_counter()
    with av.open(str(clip)) as inp, av.open(str(out_path), "w") as out:
        video = inp.streams.video[0]
        video.codec_context.thread_type = "AUTO"
        stream = _encoder(out, video.average_rate, video.width, video.height, config)
        for frame in inp.decode(video):
            rgb = (frame.to_ndarray(format="rgb24") * tint).astype(np.uint8)
            oframe = av.VideoFrame.from_ndarray(rgb, "rgb24").reformat(format="yuv420p")
            oframe.pts, oframe.time_base = frame.pts, frame.time_base
            out.mux(stream.encode(oframe))
        out.mux(stream.encode())
    return time.perf_counter() - t0


def bench_size(size, model, config: BenchConfig, folder: Path) -> dict:
    from somcolor.video import colorize_video

    seconds = config.seconds if size[0] * size[1] <= 640 * 480 else config.seconds / 3
    clip = make_clip(folder / f"clip_{size[0]}x{size[1]}.mp4", size, seconds, config)
    rss = []
    report = colorize_video(
        clip,
        folder / f"color_{size[0]}x{size[1]}.mp4",
        model,
        smoothing=config.smoothing,
        flow=config.flow,
        crf=config.crf,
        preset=config.preset,
        progress=lambda done, total: rss.append(_rss_mb()),
    )
    stages = _stages(clip, model, config)
    floor = floor_seconds(clip, folder / f"tint_{size[0]}x{size[1]}.mp4", config)
    return {
        "size": f"{size[0]}x{size[1]}",
        "frames": report.frames,
        "seconds": round(report.seconds, 2),
        "frames_per_s": round(report.frames / report.seconds, 2),
        "floor_seconds": round(floor, 2),
        "floor_frames_per_s": round(report.frames / floor, 2),
        "ratio_to_floor": round(report.seconds / floor, 2),
        "stage_ms_per_frame": {k: round(1000 * v, 1) for k, v in stages.items()},
        "predict_uv_share": round(stages["predict_uv"] / sum(stages.values()), 2),
        "rss_mb_first_batch": round(rss[0], 1),
        "rss_mb_at_10pct": round(rss[len(rss) // 10], 1),  # the encoder's lookahead is full
        "rss_mb_last_batch": round(rss[-1], 1),
        "rss_mb_by_batch": [round(r) for r in rss[:: max(1, len(rss) // 20)]],
        "audio": report.audio,
        "scene_cuts": report.scene_cuts,
    }


def _machine() -> dict:
    cpu = cpu_name()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    from threadpoolctl import threadpool_info

    blas = [
        f"{i.get('internal_api')} {i.get('version')}"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "blas": blas,
        "load_1min": load,
        "python": platform.python_version(),
    }


def _versions() -> dict:
    import av
    import cv2

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    return {
        "somcolor": somcolor.__version__,
        "commit": commit,
        "numpy": np.__version__,
        "av": av.__version__,
        "opencv": cv2.__version__,
    }


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", help="e.g. 640x480,1920x1080")
    p.add_argument("--seconds", type=float, help="clip length (the 640x480 one)")
    p.add_argument("--flow", action="store_true", help="smooth with optical flow")
    p.add_argument("--model", help=f"model file or bundled model name (default: {VIDEO_MODEL})")
    p.add_argument("--work-size", type=int, help="predict at this long side in px")
    p.add_argument("--make-clip", metavar="PATH", help="only write the demo clip")
    p.add_argument("--size", default="640x480", help="size of --make-clip's clip")
    args = p.parse_args(argv)
    config = BenchConfig()
    if args.sizes:
        config.sizes = tuple(_size(s) for s in args.sizes.split(","))
    if args.seconds:
        config.seconds = args.seconds
    config.flow = args.flow
    config.model = args.model or config.model
    if args.work_size is not None and args.work_size < 8:
        p.error(f"--work-size must be at least 8 pixels, got {args.work_size}")
    config.work_size = args.work_size
    if args.make_clip:
        path = make_clip(args.make_clip, _size(args.size), config.seconds * 2, config)
        print(path)
        return 0

    # what `somcolor colorize-video` runs: the sklearn-free predictor of the model file
    model = Predictor.from_file(model_path(config.model))
    if config.work_size is not None:  # else the model's own working size
        model.set_params(work_size=config.work_size)
    model.predict_uv(np.zeros((32, 32), np.float32))  # warm up numba's cached kernels
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in config.sizes:
            row = bench_size(size, model, config, Path(tmp))
            rows.append(row)
            st = row["stage_ms_per_frame"]
            print(
                f"{row['size']:>9}: {row['frames_per_s']:6.2f} frames/s end to end "
                f"({row['frames']} frames in {row['seconds']} s), {row['ratio_to_floor']:.1f}x "
                f"the floor's {row['floor_frames_per_s']:.1f} frames/s; ms/frame: "
                + ", ".join(f"{k} {v}" for k, v in st.items())
                + f"; predict_uv {row['predict_uv_share']:.0%} of the stages; RSS "
                f"{row['rss_mb_first_batch']:.0f} MB after the first batch, "
                f"{row['rss_mb_at_10pct']:.0f} MB at 10% of the frames, "
                f"{row['rss_mb_last_batch']:.0f} MB after the last"
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    machine = _machine()
    print(
        f"model {config.model}, working size {model.work_size or 'full'} px; "
        f"peak RSS {peak:.0f} MB; {machine['cpus']} CPUs ({machine['cpu']}; BLAS "
        f"{', '.join(machine['blas'])}), "
        f"load {machine['load_1min']:.2f} at the end"
    )
    result = {
        "config": asdict(config),
        "results": rows,
        "peak_rss_mb": round(peak, 1),
        "machine": machine,
        "versions": _versions(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    sizes = "_".join(f"{w}x{h}" for w, h in config.sizes)
    if config.model != VIDEO_MODEL:
        sizes += f"_{Path(config.model).stem}"
    if config.work_size:
        sizes += f"_work{config.work_size}"
    out = Path(config.results) / f"bench_video_{sizes}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
