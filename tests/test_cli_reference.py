"""``somcolor colorize --reference`` and ``colorize-video --reference``: the model is
fitted to the reference once and colours every input; a bad reference is one line on
stderr, a non-zero exit and nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_image_file
from test_adapt import gray_of, mean_uv, two_colours

from somcolor.cli import EXIT_USAGE
from somcolor.io import read_image


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """The two-colour reference, gray copies of it, and bad references."""
    ref = two_colours()
    gray = gray_of(ref)
    out = {
        "ref": write_image_file(tmp_path / "ref.png", ref),
        "gray": write_image_file(tmp_path / "gray.png", gray),
        "gray2": write_image_file(tmp_path / "gray2.png", gray_of(two_colours(1))),
        "gray_rgb": write_image_file(tmp_path / "gray_rgb.png", np.dstack([gray] * 3)),
    }
    out["truncated"] = tmp_path / "truncated.png"
    out["truncated"].write_bytes(out["ref"].read_bytes()[:200])
    out["junk"] = tmp_path / "junk.jpg"
    out["junk"].write_bytes(b"not an image at all")
    out["missing"] = tmp_path / "missing.png"
    return out


def test_colorize_with_reference_colours_every_input_like_it(cli, files, tmp_path):
    out_dir = tmp_path / "out"
    r = cli(
        "colorize", files["gray"], files["gray2"], "--out-dir", out_dir, "--reference", files["ref"]
    )
    assert r.code == 0, r.err
    left, right = mean_uv(read_image(out_dir / "gray.png"))
    assert left[0] > 50 and right[1] < -40  # red left, blue right
    left, right = mean_uv(read_image(out_dir / "gray2.png"))  # other grain
    assert left[0] > 50 and right[1] < -40


def test_colorize_with_reference_and_hints(cli, files, tmp_path):
    hints = tmp_path / "hints.json"
    hints.write_text('{"points": [{"x": 5, "y": 5, "color": "#20c020"}]}')
    out = tmp_path / "out.png"
    r = cli("colorize", files["gray"], "-o", out, "--reference", files["ref"], "--hints", hints)
    assert r.code == 0, r.err
    assert read_image(out)[5, 5, 1] > read_image(out)[5, 5, 0]  # green where hinted


def test_two_references_are_accepted(cli, files, tmp_path):
    out = tmp_path / "out.png"
    r = cli(
        "colorize",
        files["gray"],
        "-o",
        out,
        "--reference",
        files["ref"],
        "--reference",
        files["ref"],
    )
    assert r.code == 0, r.err
    assert out.exists()


@pytest.mark.parametrize(
    "name, message",
    [
        ("gray", "is gray (no colour)"),
        ("gray_rgb", "is gray (no colour)"),
        ("truncated", "truncated"),
        ("junk", "not an image"),
        ("missing", "no such file"),
    ],
)
def test_bad_reference_is_one_line_and_writes_nothing(cli, files, tmp_path, name, message):
    out = tmp_path / "out.png"
    r = cli("colorize", files["gray"], "-o", out, "--reference", files[name])
    assert r.code == EXIT_USAGE
    assert len(r.err_lines) == 1 and message in r.err and str(files[name]) in r.err
    assert not out.exists()


def test_bad_reference_in_a_new_process_has_no_traceback(files, tmp_path):
    out = tmp_path / "out.png"
    cmd = [sys.executable, "-m", "somcolor", "colorize", str(files["gray"]), "-o", str(out)]
    proc = subprocess.run([*cmd, "--reference", str(files["gray"])], capture_output=True, text=True)
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not out.exists()


def test_model_that_cannot_be_adapted_is_one_line(cli, files, tmp_path):
    from conftest import TINY_CONFIG, synthetic_photo

    from somcolor.pipeline import Colorizer

    # two codes: scikit-learn's MLP has one logistic output, not a softmax to fine-tune
    two = Colorizer(**{**TINY_CONFIG, "som_shape": (2, 1)}).fit([synthetic_photo(0)])
    model = two.save(tmp_path / "two.npz")
    out = tmp_path / "out.png"
    r = cli("colorize", files["gray"], "-o", out, "--model", model, "--reference", files["ref"])
    assert r.code == EXIT_USAGE and len(r.err_lines) == 1 and "cannot be adapted" in r.err
    assert not out.exists()


def test_info_says_a_model_was_adapted(cli, tmp_path):
    import somcolor

    path = somcolor.load().adapt(two_colours()).save(tmp_path / "adapted.npz")
    r = cli("info", path)
    assert r.code == 0, r.err
    line = next(line for line in r.out.splitlines() if line.startswith("adapted:"))
    assert "1 reference photo" in line and "codebook refine" in line
    assert "adapted:" not in cli("info").out


# ---------------------------------------------------------------------------- video
@pytest.fixture
def clip(tmp_path) -> Path:
    pytest.importorskip("av", reason="the video extra is not installed")
    pytest.importorskip("cv2", reason="the video extra is not installed")
    from test_video import write_clip

    gray = gray_of(two_colours())
    return write_clip(
        tmp_path / "clip.mp4", [np.roll(gray, i, axis=1) for i in range(6)], audio=None
    )


def test_colorize_video_with_reference_colours_the_film(cli, files, clip, tmp_path):
    import av

    out = tmp_path / "out.mp4"
    r = cli(
        "colorize-video",
        clip,
        "-o",
        out,
        "--reference",
        files["ref"],
        "-q",
        "--preset",
        "ultrafast",
    )
    assert r.code == 0, r.err
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 6
    left, right = mean_uv(frames[0][:, 4:60])
    assert left[0] > 30 and right[1] < -30


@pytest.mark.parametrize("name", ["gray", "truncated", "missing", "video"])
def test_colorize_video_bad_reference_writes_nothing(cli, files, clip, tmp_path, name):
    out = tmp_path / "out.mp4"
    reference = clip if name == "video" else files[name]
    r = cli("colorize-video", clip, "-o", out, "--reference", reference)
    assert r.code == EXIT_USAGE
    assert len(r.err_lines) == 1 and str(reference) in r.err
    if name == "video":
        assert "is a video" in r.err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


# ---------------------------------------------------------------------------- adapt
def test_adapt_saves_the_model_the_api_gives(cli, files, tmp_path):
    import somcolor

    out = tmp_path / "adapted.npz"
    r = cli("adapt", files["ref"], "-o", out)
    assert r.code == 0, r.err
    gray = read_image(files["gray"])
    api = somcolor.load().adapt(read_image(files["ref"]))
    np.testing.assert_array_equal(somcolor.load(out).colorize(gray), api.colorize(gray))
    assert cli("adapt", files["ref"], "-o", out).code == EXIT_USAGE  # exists, no --force


@pytest.mark.parametrize("name", ["gray", "junk", "missing"])
def test_adapt_bad_reference_writes_no_model(cli, files, tmp_path, name):
    out = tmp_path / "adapted.npz"
    r = cli("adapt", files[name], "-o", out)
    assert r.code == EXIT_USAGE and len(r.err_lines) == 1 and str(files[name]) in r.err
    assert not out.exists()
