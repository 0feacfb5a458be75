"""Colour hints on a video's key frame, measured through the CLI: ``make video-hints``.

``python -m experiments.video_hints [--photos N] [--frames F] [--out DIR]``

Clips are made from BSDS500 test photos, which the bundled default never saw: a window
panning 2 px a frame along each photo's long side (the window: the photo less 2 px per
frame of pan, even sides), encoded in gray (x264, lossless); the truth is the same window
of the colour photo. Each clip is coloured by the CLI twice, as a user would:

* automatic: ``somcolor colorize-video clip.mp4 -o auto.mp4``;
* hinted: the same with ``--hints keys.json``, 10 hints on frame 0 only, simulated as
  the photo hints curve simulates them (:func:`somcolor.guide.simulated_hints` on
  frame 0's colour truth: seeded random points, the mean colour of a 3x3 patch).

and the outputs, decoded, are scored against the truth per frame (PSNR on RGB): the mean
over all frames and over the last quarter (the hints are carried, not only painted on
frame 0), and the flicker ratio of each output (``somcolor.video.evaluate_video``: chroma
change per unit of luminance change). A clip with a cut in the middle (the second half
another photo, hints on frame 0 of the first) checks that hints stop at the cut: the
frames after it are scored against automatic. Speed: one 640x480 clip (a photo enlarged
2x, panned), frames/s as the CLI reports them with and without hints, in the same run.

Writes ``summary.md``, ``per_clip.csv`` and ``still.jpg`` (the first clip: its key frame
with the hints marked | its last frame automatic | the same frame with the hints carried |
the truth) under ``experiments/results/video_hints/``.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from somcolor import datasets, guide
from somcolor.io import read_image

OUT_DIR = Path(__file__).resolve().parent / "results" / "video_hints"
RATE = 24
PAN = 2  # pixels a frame
HINTS = 10
SEED = 0


def gray_of(rgb: np.ndarray) -> np.ndarray:
    return (rgb @ np.array([0.299, 0.587, 0.114])).round().clip(0, 255).astype(np.uint8)


def panning(rgb: np.ndarray, frames: int) -> list[np.ndarray]:
    """``frames`` windows of ``rgb`` panning :data:`PAN` px a frame along its long side."""
    H, W = rgb.shape[:2]
    span = PAN * (frames - 1)
    if W >= H:
        h, w = H // 2 * 2, (W - span) // 2 * 2
        return [rgb[:h, PAN * i : PAN * i + w] for i in range(frames)]
    h, w = (H - span) // 2 * 2, W // 2 * 2
    return [rgb[PAN * i : PAN * i + h, :w] for i in range(frames)]


def write_gray_clip(frames: list[np.ndarray], path: Path) -> None:
    """The frames in gray, H.264 lossless (qp 0) in MP4."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=RATE)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"qp": "0", "preset": "veryfast"}
        for rgb in frames:
            gray = np.repeat(gray_of(rgb)[..., None], 3, axis=2)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(gray, format="rgb24")))
        out.mux(stream.encode(None))


def cli(*args: str) -> float:
    """Run ``somcolor ARGS``; the frames/s its summary line reports."""
    done = subprocess.run(
        [sys.executable, "-m", "somcolor", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"somcolor {' '.join(args)} failed:\n{done.stderr}")
    found = re.search(r"\(([0-9.]+) frames/s\)", done.stdout)
    return float(found[1]) if found else float("nan")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def still(frames, keys: dict, auto: Path, hinted: Path, path: Path) -> None:
    """Four panels side by side: the key frame in gray with its hints marked, the last
    frame automatic, the same frame hinted, the truth."""
    from PIL import Image, ImageDraw

    from somcolor.video import iter_frames

    gray = np.repeat(gray_of(frames[0])[..., None], 3, axis=2)
    key = Image.fromarray(gray)
    draw = ImageDraw.Draw(key)
    for p in keys["keyframes"][0]["points"]:
        x, y = p["x"], p["y"]
        draw.ellipse((x - 5, y - 5, x + 5, y + 5), fill=p["color"], outline="white", width=2)
    last = [list(iter_frames(v))[-1] for v in (auto, hinted)]
    panels = [np.asarray(key), *last, frames[-1]]
    h = min(p.shape[0] for p in panels)
    gap = np.full((h, 6, 3), 255, np.uint8)
    row = [x for p in panels for x in (p[:h], gap)][:-1]
    Image.fromarray(np.concatenate(row, axis=1)).save(path, quality=88)


def colour_both(frames: list[np.ndarray], keys: dict, work: Path, name: str) -> dict:
    """Write the clip and keys, colour it automatically and with the hints; scores."""
    from somcolor.video import evaluate_video, iter_frames

    clip = work / f"{name}.mp4"
    write_gray_clip(frames, clip)
    (work / f"{name}.json").write_text(json.dumps(keys))
    auto, hinted = work / f"{name}_auto.mp4", work / f"{name}_hints.mp4"
    fps_auto = cli("colorize-video", str(clip), "-o", str(auto), "--force")
    fps_hints = cli(
        "colorize-video",
        str(clip),
        "-o",
        str(hinted),
        "--force",
        "--hints",
        str(work / f"{name}.json"),
    )
    score = {}
    for label, path in (("auto", auto), ("hints", hinted)):
        out = list(iter_frames(path))
        if len(out) != len(frames):
            raise SystemExit(f"{path}: {len(out)} frames, expected {len(frames)}")
        score[label] = [psnr(o, t) for o, t in zip(out, frames, strict=True)]
        flicker = evaluate_video(path)
        score[f"flicker_{label}"] = flicker["flicker"]
        score[f"warp_{label}"] = flicker["warp_error"]
    truth = evaluate_video(frames)
    score["flicker_truth"], score["warp_truth"] = truth["flicker"], truth["warp_error"]
    score["fps_auto"], score["fps_hints"] = fps_auto, fps_hints
    score["paths"] = (auto, hinted)
    return score


def keys_for(frame0: np.ndarray, seed: int) -> dict:
    points = guide.simulated_hints(frame0, HINTS, seed)
    return {
        "keyframes": [{"frame": 0, "points": [{"x": x, "y": y, "color": c} for x, y, c in points]}]
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=20, help="every (200 / N)-th test photo")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--work", type=Path, default=None, help="folder for the clips (temporary)")
    args = ap.parse_args(argv)
    import tempfile

    t0 = time.perf_counter()
    photos = datasets.image_paths("bsds500", "test")
    step = max(1, len(photos) // args.photos)
    chosen = photos[::step][: args.photos]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for i, path in enumerate(chosen):
            frames = panning(read_image(path), args.frames)
            keys = keys_for(frames[0], SEED + i)
            s = colour_both(frames, keys, work, f"pan{i}")
            if i == 0:
                args.out.mkdir(parents=True, exist_ok=True)
                still(frames, keys, *s["paths"], args.out / "still.jpg")
            q = 3 * len(frames) // 4
            rows.append(
                {
                    "photo": path.stem,
                    "auto": np.mean(s["auto"]),
                    "hints": np.mean(s["hints"]),
                    "auto_last": np.mean(s["auto"][q:]),
                    "hints_last": np.mean(s["hints"][q:]),
                    "flicker_auto": s["flicker_auto"],
                    "flicker_hints": s["flicker_hints"],
                    "flicker_truth": s["flicker_truth"],
                    "warp_auto": s["warp_auto"],
                    "warp_hints": s["warp_hints"],
                    "warp_truth": s["warp_truth"],
                }
            )
            r = rows[-1]
            print(f"{i + 1}/{len(chosen)} {path.stem}: {r['auto']:.2f} -> {r['hints']:.2f} dB")
        # A cut in the middle: the second half another photo; hints on frame 0 only.
        a = panning(read_image(chosen[0]), args.frames // 2)
        b = panning(read_image(chosen[1]), args.frames // 2)
        h, w = min(a[0].shape[0], b[0].shape[0]), min(a[0].shape[1], b[0].shape[1])
        cut_frames = [f[:h, :w] for f in a + b]
        cut = colour_both(cut_frames, keys_for(cut_frames[0], SEED), work, "cut")
        half = len(a)
        cut_row = {
            "before_auto": np.mean(cut["auto"][:half]),
            "before_hints": np.mean(cut["hints"][:half]),
            "after_auto": np.mean(cut["auto"][half:]),
            "after_hints": np.mean(cut["hints"][half:]),
        }
        # Speed at 640x480: a photo enlarged 2x, panned.
        from PIL import Image

        big = read_image(chosen[0])
        big = np.asarray(
            Image.fromarray(big).resize((big.shape[1] * 2, big.shape[0] * 2), Image.LANCZOS)
        )
        if big.shape[0] > big.shape[1]:
            big = np.ascontiguousarray(big.transpose(1, 0, 2))
        fast = [big[:480, PAN * i : PAN * i + 640] for i in range(args.frames)]
        speed = colour_both(fast, keys_for(fast[0], SEED), work, "speed")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "photo"}
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "per_clip.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = [
        f"Hints on frame 0 carried through panning clips of {len(rows)} BSDS500 test photos "
        f"({args.frames} frames at {RATE} frames/s, {HINTS} simulated hints), through the CLI:",
        "",
        "| measure | automatic | with hints on frame 0 | difference |",
        "| --- | ---: | ---: | ---: |",
        f"| PSNR dB, all frames | {mean['auto']:.2f} | {mean['hints']:.2f} | "
        f"{mean['hints'] - mean['auto']:+.2f} |",
        f"| PSNR dB, last quarter | {mean['auto_last']:.2f} | {mean['hints_last']:.2f} | "
        f"{mean['hints_last'] - mean['auto_last']:+.2f} |",
        f"| flicker ratio (the colour originals: {mean['flicker_truth']:.3f}) | "
        f"{mean['flicker_auto']:.3f} | {mean['flicker_hints']:.3f} | "
        f"{mean['flicker_hints'] - mean['flicker_auto']:+.3f} |",
        f"| warp error, UV units (the colour originals: {mean['warp_truth']:.2f}) | "
        f"{mean['warp_auto']:.2f} | {mean['warp_hints']:.2f} | "
        f"{mean['warp_hints'] - mean['warp_auto']:+.2f} |",
        *(
            f"| a cut in the middle: PSNR dB {when} the cut | {cut_row[when + '_auto']:.2f} | "
            f"{cut_row[when + '_hints']:.2f} | "
            f"{cut_row[when + '_hints'] - cut_row[when + '_auto']:+.2f} |"
            for when in ("before", "after")
        ),
        f"| speed at 640x480, frames/s (the CLI's own figure) | {speed['fps_auto']:.1f} | "
        f"{speed['fps_hints']:.1f} | x{speed['fps_hints'] / speed['fps_auto']:.2f} |",
        "",
        f"({time.perf_counter() - t0:.0f} s in all)",
    ]
    text = "\n".join(table) + "\n"
    (args.out / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
