"""Video colorization (:mod:`somcolor.video`) and temporal smoothing (:mod:`somcolor.temporal`).

The clips are generated here with PyAV directly (moving shapes over a textured
background, a sine-wave audio track, an odd size, 30000/1001 frames/s), so that the
output is checked against an independent writer and reader. The model is the tiny one
of ``conftest.py``; encoding uses x264's ``ultrafast`` preset except in one test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av", reason="the video extra is not installed")
pytest.importorskip("cv2", reason="the video extra is not installed")

from somcolor.cli import EXIT_FAILURES, EXIT_USAGE, main  # noqa: E402
from somcolor.exceptions import SomcolorError  # noqa: E402
from somcolor.pipeline import Colorizer  # noqa: E402
from somcolor.temporal import TemporalSmoother, consistent_flow, warp  # noqa: E402
from somcolor.video import (  # noqa: E402
    BATCH_FRAMES,
    VideoError,
    colorize_frame,
    colorize_video,
    compare_smoothing,
    evaluate_video,
    frame_luminance,
    frame_size,
    is_video,
)

RATE = Fraction(30000, 1001)
ODD = (121, 161)  # height, width
FAST = dict(preset="ultrafast")


# ---------------------------------------------------------------------------- clips
def _background(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    fx, fy = rng.uniform(0.15, 0.4, 2)
    return 128 + 50 * np.sin(xx * fx) * np.cos(yy * fy)


def moving_shapes(n: int, shape=ODD, seed: int = 0) -> list[np.ndarray]:
    """Gray frames: a bright disc and a dark bar moving over a textured background."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    bg = _background(h, w, seed)
    frames = []
    for i in range(n):
        img = bg.copy()
        img[(xx - 20 - 3 * i) ** 2 + (yy - h // 3 - i) ** 2 < 14**2] = 230
        img[(yy > h // 2) & (yy < h // 2 + 25) & (xx > w - 60 - 2 * i) & (xx < w - 30 - 2 * i)] = 35
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def noisy_still(n: int, shape=ODD, sigma: float = 6.0, seed: int = 0) -> list[np.ndarray]:
    """Gray frames of one still scene with fresh noise in each (film grain)."""
    rng = np.random.default_rng(seed)
    bg = _background(*shape, seed)
    return [np.clip(bg + rng.normal(0, sigma, shape), 0, 255).astype(np.uint8) for _ in range(n)]


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    *,
    audio: str | None = "aac",
    rate: Fraction = RATE,
    rotation: int | None = None,
    container: str | None = None,
) -> Path:
    """Encode gray frames with libx264 (4:4:4 for odd sizes) and a 440 Hz mono tone."""
    h, w = frames[0].shape
    with av.open(str(path), "w", format=container) as out:
        video = out.add_stream("libx264", rate=rate, options={"preset": "ultrafast"})
        video.width, video.height = w, h
        video.pix_fmt = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
        if rotation is not None:
            video.set_display_rotation(rotation)
        sound = out.add_stream(audio, rate=48000, layout="mono") if audio else None
        for i, gray in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.repeat(gray[..., None], 3, axis=2), "rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if sound is not None:
            t = np.arange(round(48000 * len(frames) / rate)) / 48000
            tone = 0.3 * np.sin(2 * np.pi * 440 * t)
            if audio == "pcm_u8":  # a codec MP4 cannot hold
                samples = av.AudioFrame.from_ndarray(
                    (128 + 127 * tone).astype(np.uint8)[None], format="u8", layout="mono"
                )
            else:
                samples = av.AudioFrame.from_ndarray(
                    tone.astype(np.float32)[None], format="fltp", layout="mono"
                )
            samples.sample_rate, samples.pts = 48000, 0
            out.mux(sound.encode(samples))
            out.mux(sound.encode())
    return path


def probe(path: Path) -> dict:
    """What an independent reader sees in a video file."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        decoded = list(c.decode(v))
        info = {
            "frames": len(decoded),
            "rate": v.average_rate,
            "size": (decoded[0].width, decoded[0].height),
            "duration": float(v.duration * v.time_base) if v.duration else None,
            "rotation": decoded[0].rotation,
            "codec": v.codec_context.name,
            "first_rgb": decoded[0].to_ndarray(format="rgb24"),
        }
        info["audio"] = [a.codec_context.name for a in c.streams.audio]
    return info


def audio_packets(path: Path) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [(p.pts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]


def leftovers(folder: Path) -> list[str]:
    """Partial or temporary files left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or "part" in p.name)


@pytest.fixture(scope="module")
def model(tiny_model_path) -> Colorizer:
    return Colorizer.load(tiny_model_path)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """24 frames, 161x121, 30000/1001 frames/s, with AAC audio."""
    folder = tmp_path_factory.mktemp("clip")
    return write_clip(folder / "shapes.mp4", moving_shapes(24))


# ---------------------------------------------------------------------------- the output
def test_output_keeps_frames_rate_size_duration_and_audio_bytes(clip, model, tmp_path):
    out = tmp_path / "out.mp4"
    calls = []
    report = colorize_video(clip, out, model, progress=lambda d, t: calls.append((d, t)))
    src, dst = probe(clip), probe(out)
    assert dst["frames"] == src["frames"] == report.frames == 24
    assert dst["rate"] == RATE and report.fps == "30000/1001"
    assert dst["size"] == src["size"] == (161, 121) == (report.width, report.height)
    assert abs(dst["duration"] - src["duration"]) <= 1 / RATE
    assert abs(report.duration - 24 / RATE) < 1e-9
    assert report.audio == "copied" and dst["audio"] == ["aac"]
    assert audio_packets(out) == audio_packets(clip)  # byte-identical, same timestamps
    assert dst["codec"] == "h264" and report.pix_fmt == "yuv444p"  # odd size: 4:4:4, not padded
    assert calls[-1] == (24, 24) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert leftovers(tmp_path) == []
    # the colors are the model's: the first frame matches colorizing it as an image
    expected = model.colorize(src["first_rgb"])
    assert np.abs(dst["first_rgb"].astype(int) - expected).mean() < 6


def test_every_frame_comes_back_in_order_from_the_colorizing_thread(model, tmp_path):
    # More than two batches (frames are colorized on a second thread while the previous
    # batch is encoded): each output frame is its own input frame colorized with the
    # smoothing state of the frames before it, not a neighbour's.
    frames = moving_shapes(3 * BATCH_FRAMES + 3, seed=1)
    src = write_clip(tmp_path / "in.mp4", frames, audio=None)
    out = tmp_path / "out.mp4"
    colorize_video(src, out, model, smoothing=0.5, preset="ultrafast", crf=0)
    decoded = [f.to_ndarray(format="rgb24") for f in av.open(str(src)).decode(video=0)]
    with av.open(str(out)) as c:
        got = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    smoother = TemporalSmoother(0.5)
    expected = [colorize_frame(model, rgb, smoother)[0].astype(int) for rgb in decoded]
    assert len(got) == len(expected) == len(frames)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        own = np.abs(g - e).mean()
        assert own < 3, (i, own)
        for j in (i - 1, i + 1):
            if 0 <= j < len(expected) and np.abs(expected[j] - e).mean() > 3 * own + 1:
                assert np.abs(g - expected[j]).mean() > own


class _FailsAt:
    """A model whose prediction fails at the n-th frame."""

    def __init__(self, model, n):
        self.model, self.n, self.calls = model, n, 0

    def predict_uv(self, L):
        self.calls += 1
        if self.calls == self.n:
            raise SomcolorError("the model failed on this frame")
        return self.model.predict_uv(L)


def test_an_error_on_the_colorizing_thread_stops_the_run_with_no_output(clip, model, tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(SomcolorError, match="failed on this frame"):
        colorize_video(clip, out, _FailsAt(model, BATCH_FRAMES + 2), **FAST)
    assert not out.exists() and leftovers(tmp_path) == []


def test_video_without_audio_keeps_rotation(model, tmp_path):
    src = write_clip(tmp_path / "rot.mp4", moving_shapes(10, (64, 96)), audio=None, rotation=90)
    out = tmp_path / "rot_color.mp4"
    report = colorize_video(src, out, model, **FAST)
    info = probe(out)
    assert report.audio == "none" and info["audio"] == []
    assert info["rotation"] == 90 and info["size"] == (96, 64)
    assert report.pix_fmt == "yuv420p" and info["frames"] == 10


def test_audio_the_container_refuses_is_reencoded_to_aac(model, tmp_path):
    src = write_clip(tmp_path / "u8.mkv", moving_shapes(10), audio="pcm_u8", container="matroska")
    out = tmp_path / "u8.mp4"
    report = colorize_video(src, out, model, **FAST)
    assert report.audio == "re-encoded to AAC"
    assert probe(out)["audio"] == ["aac"]
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        assert abs(float(a.duration * a.time_base) - 10 / RATE) < 0.05  # in sync, same length


def test_odd_rate_and_timing_survive_a_matroska_input(model, tmp_path):
    """Matroska stores times in milliseconds; the output still gets exactly 30000/1001."""
    src = write_clip(tmp_path / "ms.mkv", moving_shapes(12), audio=None, container="matroska")
    out = tmp_path / "ms.mp4"
    report = colorize_video(src, out, model, **FAST)
    assert probe(out)["rate"] == RATE and report.frames == probe(out)["frames"] == 12


def test_existing_output_is_kept_unless_overwrite(clip, model, tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(VideoError, match="exists"):
        colorize_video(clip, out, model, **FAST)
    assert out.read_bytes() == b"precious"
    colorize_video(clip, out, model, overwrite=True, **FAST)
    assert probe(out)["frames"] == 24


def test_interrupt_leaves_no_output(clip, model, tmp_path):
    out = tmp_path / "out.mp4"

    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        colorize_video(clip, out, model, progress=stop, **FAST)
    assert not out.exists() and leftovers(tmp_path) == []


def test_frame_size_is_the_headers_and_a_non_video_is_refused(clip, tmp_path):
    assert frame_size(clip) == (161, 121)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    with pytest.raises(VideoError, match="not a video file"):
        frame_size(text)


def test_max_pixels_refuses_large_frames(clip, model, tmp_path):
    with pytest.raises(VideoError, match="too large"):
        colorize_video(clip, tmp_path / "out.mp4", model, max_pixels=1000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(smoothing=1.0), "smoothing"),
        (dict(crf=60), "crf"),
        (dict(preset="warp9"), "preset"),
    ],
)
def test_bad_options_are_refused(clip, model, tmp_path, options, message):
    with pytest.raises(VideoError, match=message):
        colorize_video(clip, tmp_path / "out.mp4", model, **options)


def test_unknown_output_ending_is_refused(clip, model, tmp_path):
    with pytest.raises(VideoError, match="ending"):
        colorize_video(clip, tmp_path / "out.avi", model)


# ---------------------------------------------------------------------------- bad input
def _not_a_video(folder: Path) -> Path:
    path = folder / "notes.mp4"
    path.write_text("this is text, not a video\n" * 50)
    return path


def _truncated(folder: Path) -> Path:
    whole = write_clip(folder / "whole.mp4", moving_shapes(12))
    path = folder / "truncated.mp4"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    whole.unlink()
    return path


def _zero_frames(folder: Path) -> Path:
    """A Matroska file with a video track that holds no frames (and a little audio)."""
    path = folder / "empty.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=RATE)
        stream.width, stream.height = 64, 48
        sound = out.add_stream("aac", rate=48000, layout="mono")
        out.mux(sound.encode(_silence()))
        out.mux(sound.encode())
    return path


def _silence() -> av.AudioFrame:
    samples = av.AudioFrame.from_ndarray(np.zeros((1, 4800), np.float32), "fltp", "mono")
    samples.sample_rate, samples.pts = 48000, 0
    return samples


def _no_video_stream(folder: Path) -> Path:
    path = folder / "sound.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        sound = out.add_stream("aac", rate=48000, layout="mono")
        out.mux(sound.encode(_silence()))
        out.mux(sound.encode())
    return path


def _unsupported_codec(folder: Path) -> Path:
    """A Matroska file whose video track names a codec FFmpeg has never heard of."""
    good = write_clip(folder / "good.mkv", moving_shapes(5), audio=None, container="matroska")
    data = good.read_bytes()
    assert data.count(b"V_MPEG4/ISO/AVC") == 1
    path = folder / "strange.mkv"
    path.write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_SOMCOLOR/NONE"))
    good.unlink()
    return path


def _still_image(folder: Path) -> Path:
    from PIL import Image

    path = folder / "photo.mp4"  # the name lies; the content decides
    Image.fromarray(moving_shapes(1)[0]).save(path, format="PNG")
    return path


def _missing(folder: Path) -> Path:
    return folder / "missing.mp4"


def _empty(folder: Path) -> Path:
    path = folder / "zero.mp4"
    path.write_bytes(b"")
    return path


BAD_INPUTS = {
    "not a video": (_not_a_video, "not a video file"),
    "truncated": (_truncated, "truncated"),
    "zero frames": (_zero_frames, "no frames"),
    "no video stream": (_no_video_stream, "no video stream"),
    "unsupported codec": (_unsupported_codec, "unsupported video codec"),
    "still image": (_still_image, "still image"),
    "missing": (_missing, "no such file"),
    "empty file": (_empty, "empty"),
}


def _make_bad(kind: str, folder: Path) -> Path:
    return BAD_INPUTS[kind][0](folder)


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_raises_one_line_and_leaves_no_output(kind, model, tmp_path):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    src = _make_bad(kind, inputs)
    with pytest.raises(VideoError) as info:
        colorize_video(src, outputs / "out.mp4", model)
    message = str(info.value)
    assert "\n" not in message and str(src) in message
    assert BAD_INPUTS[kind][1] in message
    assert list(outputs.iterdir()) == []


@pytest.mark.parametrize("kind", ["truncated", "no video stream", "unsupported codec"])
def test_cli_bad_input_exits_nonzero_with_one_stderr_line(kind, tiny_model_path, tmp_path, capsys):
    src = _make_bad(kind, tmp_path)
    out = tmp_path / "out.mp4"
    code = main(["colorize-video", str(src), "-o", str(out), "--model", str(tiny_model_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_USAGE
    assert len(err) == 1 and err[0].startswith("somcolor: error: ") and str(src) in err[0]
    assert not out.exists() and leftovers(tmp_path) == []


def test_is_video_judges_content_not_name(clip, tmp_path):
    disguised = tmp_path / "holiday.png"
    disguised.write_bytes(clip.read_bytes())
    assert is_video(clip) and is_video(disguised)
    assert not is_video(_still_image(tmp_path))
    assert not is_video(_not_a_video(tmp_path))
    assert not is_video(_no_video_stream(tmp_path))
    assert not is_video(tmp_path / "missing.mp4") and not is_video(tmp_path)


# ---------------------------------------------------------------------------- temporal
def test_smoothing_lowers_flicker_on_a_noisy_still_scene(model):
    frames = noisy_still(12)
    off, on = compare_smoothing(frames, model, [(0.0, False), (0.7, False)])
    assert off["pairs"] == on["pairs"] == 11 and off["scene_cuts"] == 0
    assert off["chroma_change"] > 0  # per-frame colorization does flicker here
    assert on["flicker"] < 0.6 * off["flicker"]
    assert on["warp_error"] < off["warp_error"]
    # evaluate_video gives the same numbers for one setting
    alone = evaluate_video(frames, model, smoothing=0.7)
    assert alone["flicker"] == pytest.approx(on["flicker"])


def test_a_scene_cut_resets_the_smoothing(model):
    scene_a, scene_b = noisy_still(5, seed=1), [f // 3 for f in noisy_still(3, seed=2)]
    smoother = TemporalSmoother(0.9)
    for gray in scene_a:
        L = _L(gray)
        smoother(L, model.predict_uv(L))
    assert not smoother.cut and smoother.cuts == 0
    L = _L(scene_b[0])
    raw = model.predict_uv(L)
    after = smoother(L, raw)
    assert smoother.cut and smoother.cuts == 1
    np.testing.assert_array_equal(after, raw)  # nothing carried over from scene A
    # within scene B the smoothing is back
    L2 = _L(scene_b[1])
    raw2 = model.predict_uv(L2)
    assert not np.array_equal(smoother(L2, raw2), raw2) and not smoother.cut


def test_moving_shapes_are_not_scene_cuts_and_a_real_cut_is(model, tmp_path):
    frames = moving_shapes(6) + [f // 3 for f in moving_shapes(6, seed=3)]  # a dark scene
    src = write_clip(tmp_path / "cut.mp4", frames, audio=None)
    report = colorize_video(src, tmp_path / "cut_color.mp4", model, **FAST)
    assert report.scene_cuts == 1


def test_flow_follows_motion(model):
    """With flow, chroma carried over moves with the picture; without, it is gated away."""
    h, w = 60, 80
    yy, xx = np.mgrid[0:h, 0:w]
    texture = lambda dx: 50 + 30 * np.sin((xx - dx) * 0.3) * np.cos(yy * 0.25)  # noqa: E731
    uv0 = np.stack([texture(0) - 50, np.zeros((h, w))], axis=2).astype(np.float32)
    shifted = np.stack([texture(2) - 50, np.zeros((h, w))], axis=2).astype(np.float32)
    zero = np.zeros_like(uv0)
    inner = (slice(10, -10), slice(10, -10))
    errors = {}
    for flow in (False, True):
        sm = TemporalSmoother(0.8, flow=flow)
        sm(texture(0).astype(np.float32), uv0)
        out = sm(texture(2).astype(np.float32), zero)  # the model "loses" the color
        errors[flow] = np.abs(out - 0.8 * shifted)[inner].mean()
    assert errors[True] < 0.5 * errors[False]


def test_warp_error_is_small_for_chroma_that_moves_with_the_picture():
    h, w = 60, 80
    yy, xx = np.mgrid[0:h, 0:w]

    def frame(dx, color_moves=True):
        L = 128 + 80 * np.sin((xx - dx) * 0.3) * np.cos(yy * 0.25)
        hue = np.where(((xx - (dx if color_moves else 0)) // 10) % 2 == 0, 40, -40)
        rgb = np.repeat(L[..., None], 3, axis=2)
        rgb[..., 0] += hue
        return np.clip(rgb, 0, 255).astype(np.uint8)

    moving = evaluate_video([frame(2 * i) for i in range(5)])
    stuck = evaluate_video([frame(2 * i, color_moves=False) for i in range(5)])
    assert moving["visible_fraction"] > 0.7
    assert moving["warp_error"] < 0.5 * stuck["warp_error"]


def test_forward_backward_check_and_warp_basics():
    flow = np.zeros((4, 5, 2), np.float32)
    flow[..., 0] = 1.0
    img = np.arange(20, dtype=np.float32).reshape(4, 5)
    warped, inside = warp(img, flow)
    np.testing.assert_array_equal(warped[:, :4], img[:, 1:])
    assert not inside[:, 4].any() and inside[:, :4].all()
    assert consistent_flow(flow, -flow)[:, :4].all()
    assert not consistent_flow(flow, flow)[:, :4].any()  # going on instead of coming back


@pytest.mark.parametrize("gray", [True, False])
def test_frame_luminance_equals_color_luminance(gray):
    from somcolor.color import luminance

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (9, 11, 1 if gray else 3), dtype=np.uint8).repeat(
        3 if gray else 1, axis=2
    )
    np.testing.assert_array_equal(frame_luminance(rgb), luminance(rgb).astype(np.float32))


def _L(gray: np.ndarray) -> np.ndarray:
    from somcolor.color import luminance

    return luminance(gray).astype(np.float32)


# ---------------------------------------------------------------------------- CLI
def test_cli_colorize_video_prints_a_summary(clip, tiny_model_path, tmp_path, capsys):
    out = tmp_path / "c.mp4"
    args = ["colorize-video", clip, "-o", out, "--model", tiny_model_path, "--preset", "ultrafast"]
    code = main([str(a) for a in [*args, "--crf", "30", "--smoothing", "0.3", "--flow"]])
    stdout = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(stdout) == 1
    assert "24 frames" in stdout[0] and "30000/1001" in stdout[0] and "audio copied" in stdout[0]
    assert probe(out)["frames"] == 24


def test_cli_colorize_routes_videos_by_content(clip, tiny_model_path, tmp_path, capsys):
    src = tmp_path / "film.bin"
    src.write_bytes(clip.read_bytes())
    code = main(["colorize", str(src), "--model", str(tiny_model_path)])
    assert code == 0, capsys.readouterr().err
    assert probe(tmp_path / "film_color.mp4")["frames"] == 24
    bad = _truncated(tmp_path)
    out = tmp_path / "x.mp4"
    code = main(["colorize", str(bad), "-o", str(out), "--model", str(tiny_model_path)])
    err = capsys.readouterr().err.splitlines()
    assert code == EXIT_FAILURES and any(str(bad) in line for line in err)
    assert not out.exists()


def test_cli_colorize_gives_videos_the_video_model_and_its_work_size(
    clip, tiny_model_path, tmp_path, monkeypatch
):
    import somcolor.video

    used = []
    monkeypatch.setattr(
        somcolor.video, "colorize_video", lambda src, dst, model, **kw: used.append(model)
    )
    from PIL import Image

    from somcolor.model import Model
    from somcolor.paths import DEFAULT_MODEL

    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((20, 30), 128, np.uint8)).save(photo)
    for args in (["--quiet"], ["--quiet", "--force", "--work-size", "64"]):
        out_dir = str(tmp_path / "o")
        assert main(["colorize", str(clip), str(photo), "--out-dir", out_dir, *args]) == 0
    # without --model the video gets the bundled video model (the default), photos too
    video_model = Model.from_file(DEFAULT_MODEL)
    codebook = video_model.codebook
    assert all(np.array_equal(m.codebook, codebook) for m in used) and len(used) == 2
    assert [m.work_size for m in used] == [video_model.work_size, 64]  # its own, then --work-size
    assert video_model.work_size not in (None, 64)
    with Image.open(tmp_path / "o" / "photo.png") as im:
        assert im.size == (30, 20)
    used.clear()
    assert main(["colorize-video", str(clip), "-o", str(tmp_path / "v.mp4"), "-q"]) == 0
    assert main(["colorize", str(clip), "--model", str(tiny_model_path), "-q"]) == 0
    tiny = Model.from_file(tiny_model_path).codebook
    assert np.array_equal(used[0].codebook, codebook) and np.array_equal(used[1].codebook, tiny)
    assert not np.array_equal(codebook, tiny)


def test_cli_colorize_with_workers_hands_videos_back_to_the_main_process(
    clip, tiny_model_path, tmp_path, monkeypatch
):
    # the workers find the video (by content, whatever its name); the calling process,
    # where colorize_video is replaced, colours it after the photos
    from PIL import Image

    import somcolor.video

    used = []
    monkeypatch.setattr(
        somcolor.video, "colorize_video", lambda src, dst, model, **kw: used.append((src, dst))
    )
    film = tmp_path / "film.png"
    film.write_bytes(clip.read_bytes())
    photos = []
    for i in range(3):
        photos.append(tmp_path / f"p{i}.png")
        Image.fromarray(np.full((20, 30), 60 * i, np.uint8)).save(photos[-1])
    out, log = tmp_path / "o", tmp_path / "run.jsonl"

    code = main(
        ["colorize", str(film), *map(str, photos), "--out-dir", str(out), "--jobs", "2"]
        + ["--log", str(log), "--model", str(tiny_model_path), "-q"]
    )

    assert code == 0
    assert used == [(film, out / "film.mp4")]
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.png", "p2.png"]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[-1]["input"] == str(film) and records[-1]["output"] == str(out / "film.mp4")
    assert [r["status"] for r in records] == ["ok"] * 4


def test_cli_evaluate_video_compares_with_and_without_smoothing(tiny_model_path, tmp_path, capsys):
    src = write_clip(tmp_path / "still.mp4", noisy_still(8), audio=None)
    code = main(
        ["evaluate-video", str(src), "--model", str(tiny_model_path), "--smoothing", "0.5", "0.8"]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    rows = [line.split() for line in lines[2:]]
    assert [r[0] for r in rows] == ["0.00", "0.50", "0.80"]
    flicker = [float(r[2]) for r in rows]
    assert flicker[2] < flicker[1] < flicker[0]


def test_import_somcolor_video_does_not_import_av_or_cv2():
    code = (
        "import sys, somcolor, somcolor.video, somcolor.temporal, somcolor.cli; "
        "assert 'av' not in sys.modules and 'cv2' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_extra_gives_the_install_hint(clip, model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    with pytest.raises(VideoError, match=r"\.venv/bin/pip install -e '\.\[video\]' in the"):
        colorize_video(clip, tmp_path / "out.mp4", model)
    with pytest.raises(VideoError, match=r"somcolor\[video\]"):
        is_video(clip)  # it looks like a video: say what is missing
    assert not is_video(_still_image(tmp_path))


# ---------------------------------------------------------------------------- bounds
def write_raw_h264(path: Path, parts: list[tuple[int, int, int]]) -> Path:
    """A raw H.264 stream: ``(frames, height, width)`` parts one after the other."""
    data = b""
    for i, (n, h, w) in enumerate(parts):
        part = path.with_name(f"part{i}.h264")
        with av.open(str(part), "w", format="h264") as out:
            stream = out.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            for gray in moving_shapes(n, shape=(h, w)):
                frame = np.repeat(gray[..., None], 3, axis=2)
                out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, "rgb24")))
            out.mux(stream.encode())
        data += part.read_bytes()
        part.unlink()
    path.write_bytes(data)
    return path


def test_raw_h264_is_read_and_every_frame_is_checked_against_max_pixels(model, tmp_path):
    """The header shows the first frames' 64x64; later ones are 320x320."""
    src = write_raw_h264(tmp_path / "switch.h264", [(30, 64, 64), (3, 320, 320)])
    with av.open(str(src)) as c:
        assert c.streams.video[0].codec_context.width == 64  # what the header check sees
    small = write_raw_h264(tmp_path / "small.h264", [(4, 64, 64)])
    assert colorize_video(small, tmp_path / "small.mp4", model, max_pixels=4096, **FAST).frames == 4
    out = tmp_path / "out.mp4"
    with pytest.raises(VideoError, match=r"frame 31 is 320x320 = 102400 pixels, limit is 4096"):
        colorize_video(src, out, model, max_pixels=4096, **FAST)
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "bound, message, enough",
    [
        (dict(max_frames=5), "more than 5 frames", dict(max_frames=20)),
        (dict(max_duration=0.3), "more than 0.3 s", dict(max_duration=2.0)),
        (dict(max_output_bytes=2000), "limit of 2000 bytes", dict(max_output_bytes=10**6)),
        (dict(max_seconds=1e-6), "longer than the limit of 1e-06 s", dict(max_seconds=600)),
    ],
    ids=["frames", "duration", "output-bytes", "wall-time"],
)
def test_a_run_past_a_bound_stops_with_the_reason(model, tmp_path, bound, message, enough):
    src = write_raw_h264(tmp_path / "clip.h264", [(20, 48, 64)])  # no length in a header
    out = tmp_path / "out.mp4"
    with pytest.raises(VideoError, match=message):
        colorize_video(src, out, model, **bound, **FAST)
    assert not out.exists() and leftovers(tmp_path) == []
    assert colorize_video(src, out, model, **enough, **FAST).frames == 20


def test_a_header_stating_too_many_frames_or_seconds_is_refused_before_decoding(
    clip, model, tmp_path
):
    calls = []
    with pytest.raises(VideoError, match="24 frames, the limit is 5"):
        colorize_video(clip, tmp_path / "a.mp4", model, max_frames=5, progress=calls.append)
    with pytest.raises(VideoError, match=r"0\.8 s, the limit is 0\.1 s"):
        colorize_video(clip, tmp_path / "b.mp4", model, max_duration=0.1)
    assert calls == [] and list(tmp_path.iterdir()) == []


def test_a_cancelled_run_stops_at_the_next_frame(clip, model, tmp_path):
    import threading

    cancel = threading.Event()
    done = []

    def progress(frames, total):
        done.append(frames)
        cancel.set()

    with pytest.raises(VideoError, match="cancelled"):
        colorize_video(clip, tmp_path / "out.mp4", model, cancel=cancel, progress=progress, **FAST)
    assert done == [8]  # one batch, then the first frame of the next one stops it
    assert not (tmp_path / "out.mp4").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("bad", [dict(max_frames=0), dict(max_seconds=-1), dict(max_duration=True)])
def test_bad_bounds_are_refused(clip, model, tmp_path, bad):
    with pytest.raises(VideoError, match="must be a positive number or None"):
        colorize_video(clip, tmp_path / "out.mp4", model, **bad)


# ---------------------------------------------------------------------------- demuxers
def test_playlists_and_other_demuxers_are_refused(clip, model, tmp_path):
    """An ffconcat playlist named like a video must not make FFmpeg read another file."""
    playlist = tmp_path / "holiday.mp4"
    playlist.write_text(f"ffconcat version 1.0\nfile '{clip}'\n")
    assert not is_video(playlist)
    with pytest.raises(VideoError, match="not a video file of a format read here"):
        colorize_video(playlist, tmp_path / "out.mp4", model)
    gif = tmp_path / "anim.mp4"
    from PIL import Image

    frames = [Image.fromarray(f) for f in moving_shapes(3)]
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    assert not is_video(gif)
    with pytest.raises(VideoError, match="still image"):
        colorize_video(gif, tmp_path / "out.mp4", model)
