"""Tests for colour hints on video key frames (somcolor/keyframes.py, colorize-video --hints)."""

from __future__ import annotations

import json

import numpy as np
import pytest

av = pytest.importorskip("av", reason="the video extra is not installed")
pytest.importorskip("cv2", reason="the video extra is not installed")

from test_video import moving_shapes, noisy_still, write_clip  # noqa: E402

from somcolor import keyframes  # noqa: E402
from somcolor.cli import EXIT_USAGE, main  # noqa: E402
from somcolor.exceptions import SomcolorError  # noqa: E402
from somcolor.model import Model  # noqa: E402
from somcolor.paths import DEFAULT_MODEL  # noqa: E402
from somcolor.video import colorize_video, iter_frames  # noqa: E402

SHAPE = (120, 160)
FAST = {"preset": "ultrafast", "smoothing": 0.0}


@pytest.fixture(scope="module")
def model() -> Model:
    return Model.from_file(DEFAULT_MODEL)


def disc_centre(i: int, shape=SHAPE) -> tuple[int, int]:
    """Where :func:`test_video.moving_shapes` puts its bright disc in frame ``i``."""
    return 20 + 3 * i, shape[0] // 3 + i


def reddish(rgb) -> bool:
    r, g, b = (int(c) for c in rgb)
    return r > g + 25 and r > b + 25


def keys(*entries) -> dict:
    return {"keyframes": list(entries)}


def red_on_the_disc(frame: int = 0) -> dict:
    x, y = disc_centre(frame)
    return {"frame": frame, "points": [{"x": x, "y": y, "color": "#d02020"}]}


def test_a_hint_on_a_key_frame_follows_its_object(model, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", moving_shapes(16, SHAPE), audio=None)
    auto, hinted = tmp_path / "auto.mp4", tmp_path / "hinted.mp4"
    colorize_video(clip, auto, model, **FAST)
    colorize_video(clip, hinted, model, hints=keys(red_on_the_disc(0)), **FAST)
    a, h = list(iter_frames(auto)), list(iter_frames(hinted))
    assert len(h) == 16
    for i in (0, 8, 15):  # the key frame, and later frames: the disc moved 24 and 45 px
        x, y = disc_centre(i)
        assert reddish(h[i][y, x]) and not reddish(a[i][y, x]), i
    # The background far from the disc and unlike it keeps the automatic colour.
    far = np.abs(h[15][100:, 100:].astype(int) - a[15][100:, 100:].astype(int)).mean()
    assert far < 6.0


def test_hints_are_carried_backward_from_a_later_key_frame(model, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", moving_shapes(12, SHAPE), audio=None)
    out = tmp_path / "out.mp4"
    colorize_video(clip, out, model, hints=keys(red_on_the_disc(11)), **FAST)
    frames = list(iter_frames(out))
    x, y = disc_centre(2)
    assert reddish(frames[2][y, x])


def test_hints_stop_at_a_scene_cut(model, tmp_path):
    before = moving_shapes(8, SHAPE)
    after = [np.clip(f * 0.5 + 20, 0, 255).astype(np.uint8) for f in noisy_still(8, SHAPE, seed=3)]
    clip = write_clip(tmp_path / "cut.mp4", before + after, audio=None)
    auto, hinted = tmp_path / "auto.mp4", tmp_path / "hinted.mp4"
    report = colorize_video(clip, auto, model, **FAST)
    assert report.scene_cuts == 1
    colorize_video(clip, hinted, model, hints=keys(red_on_the_disc(0)), **FAST)
    a, h = list(iter_frames(auto)), list(iter_frames(hinted))
    x, y = disc_centre(7)
    assert reddish(h[7][y, x])  # before the cut: carried
    for i in range(8, 16):  # after it: the automatic frames (up to the encoder's noise)
        assert np.abs(h[i].astype(int) - a[i].astype(int)).mean() < 1.0, i


def test_a_time_key_frame_is_the_frame_shown_then(model, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", moving_shapes(12, SHAPE), audio=None)
    frames = [(i, np.full(SHAPE, 50.0, np.float32)) for i in range(12)]
    parsed = keyframes.parse_keyframes(
        keys({"time": 0.3, "points": [{"x": 1, "y": 1, "color": "#ff0000"}]})
    )
    plan = keyframes.plan(model, parsed, iter(frames), 30000 / 1001)
    assert [k.index for k in plan.keys] == [8]  # frame 9 starts at 0.3003 s
    out = tmp_path / "out.mp4"
    x, y = disc_centre(9)
    entry = {"time": 9 * 1001 / 30000, "points": [{"x": x, "y": y, "color": "#d02020"}]}
    colorize_video(clip, out, model, hints=keys(entry), **FAST)
    assert reddish(list(iter_frames(out))[9][y, x])


def test_the_cli_and_the_api_write_the_same_video(model, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", moving_shapes(8, SHAPE), audio=None)
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(keys(red_on_the_disc(0))))
    cli_out, api_out = tmp_path / "cli.mp4", tmp_path / "api.mp4"
    args = ["colorize-video", str(clip), "-o", str(cli_out), "--hints", str(path), "-q"]
    assert main([*args, "--preset", "ultrafast", "--smoothing", "0"]) == 0
    colorize_video(clip, api_out, Model.from_file(DEFAULT_MODEL), hints=path, **FAST)
    for c, a in zip(iter_frames(cli_out), iter_frames(api_out), strict=True):
        np.testing.assert_array_equal(c, a)


def test_scribbles_on_a_key_frame_are_read_beside_the_keys_file(model, tmp_path):
    from PIL import Image

    clip = write_clip(tmp_path / "clip.mp4", moving_shapes(6, SHAPE), audio=None)
    strokes = np.zeros((*SHAPE, 4), np.uint8)
    x, y = disc_centre(0)
    strokes[y - 2 : y + 3, x - 2 : x + 3] = (210, 30, 30, 255)
    Image.fromarray(strokes).save(tmp_path / "f0.png")
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(keys({"frame": 0, "scribbles": "f0.png"})))
    out = tmp_path / "out.mp4"
    colorize_video(clip, out, model, hints=path, **FAST)
    x, y = disc_centre(5)
    assert reddish(list(iter_frames(out))[5][y, x])


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not a JSON keys file"),
        ('{"points": []}', "unknown keys ['points']"),
        ('{"keyframes": [{"frame": 40, "points": [{"x": 1, "y": 1, "color": "#ff0000"}]}]}',
         "frame 40 is beyond the video (8 frames"),
        ('{"keyframes": [{"time": 9.5, "points": [{"x": 1, "y": 1, "color": "#ff0000"}]}]}',
         "time 9.5 s is beyond the video"),
        ('{"keyframes": [{"frame": 0, "points": [{"x": 500, "y": 1, "color": "#ff0000"}]}]}',
         "x=500 is outside"),
        ('{"keyframes": [{"frame": 0, "points": [{"x": 1, "y": 1, "color": "red"}]}]}',
         "#rrggbb"),
        ('{"keyframes": [{"frame": 0, "time": 1, "points": []}]}', "either 'frame' or 'time'"),
        ('{"keyframes": [{"frame": 0}]}', "no points and no scribbles"),
        (json.dumps({"keyframes": [{"frame": 0, "points": [{"x": 1, "y": 1, "color": "#ff0000"}]}]
                     * (keyframes.MAX_KEYFRAMES + 1)}), "the limit is 100"),
        (json.dumps({"keyframes": [{"frame": 0, "points": [{"x": 1, "y": 1, "color": "#ff0000"}]
                                    * (keyframes.MAX_POINTS + 1)}]}), "points, the limit is 100"),
    ],
)  # fmt: skip
def test_a_bad_keys_file_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, text, message):
    clip = write_clip(tmp_path / "clip.mp4", moving_shapes(8, SHAPE), audio=None)
    path = tmp_path / "keys.json"
    path.write_text(text)
    out = tmp_path / "out.mp4"
    code = main(["colorize-video", str(clip), "-o", str(out), "--hints", str(path), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USAGE
    assert len(err.splitlines()) == 1 and message in err and "keys.json" in err, err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "keys.json"]


def test_a_missing_keys_file_is_one_line(tmp_path, capsys):
    clip = write_clip(tmp_path / "clip.mp4", moving_shapes(4, SHAPE), audio=None)
    code = main(
        ["colorize-video", str(clip), "-o", str(tmp_path / "o.mp4"), "--hints", "nope.json"]
    )
    assert code == EXIT_USAGE
    assert "nope.json: cannot read the keys file" in capsys.readouterr().err


def test_two_hints_that_meet_on_one_pixel_are_carried(model, tmp_path):
    # Two points on the disc, a pixel apart: tracked, they fall on one solve pixel.
    clip = write_clip(tmp_path / "clip.mp4", moving_shapes(8, SHAPE), audio=None)
    x, y = disc_centre(0)
    points = [{"x": x, "y": y, "color": "#d02020"}, {"x": x + 1, "y": y, "color": "#d02020"}]
    out = tmp_path / "out.mp4"
    colorize_video(clip, out, model, hints=keys({"frame": 0, "points": points}), **FAST)
    x, y = disc_centre(7)
    assert reddish(list(iter_frames(out))[7][y, x])


def test_a_server_takes_no_scribbles_files_and_times_are_bounded():
    entry = {"frame": 0, "scribbles": "/etc/passwd"}
    with pytest.raises(SomcolorError, match="scribbles files are not taken here"):
        keyframes.parse_keyframes(keys(entry), paths=False)
    far = {"time": 1e307, "points": [{"x": 1, "y": 1, "color": "#ff0000"}]}
    with pytest.raises(SomcolorError, match="time must be a number of seconds 0..1e"):
        keyframes.parse_keyframes(keys(far))


def test_python_hints_are_checked_too():
    with pytest.raises(SomcolorError, match="keyframes\\[0\\]: points must be a list"):
        keyframes.parse_keyframes({"keyframes": [{"frame": 0, "points": "#ff0000"}]})
    with pytest.raises(SomcolorError, match="'keyframes' must be a list"):
        keyframes.parse_keyframes({"keyframes": 3})


def test_acting_key_frames_stay_inside_their_shot(model):
    plan = keyframes.Plan(
        model, SHAPE, [keyframes._Key(5, None), keyframes._Key(20, None)], [0, 10, 30]
    )
    assert [k.index for k in plan.acting(2)] == [5]  # backward from the shot's key frame
    assert [k.index for k in plan.acting(7)] == [5]
    assert [k.index for k in plan.acting(9)] == [5]
    assert [k.index for k in plan.acting(12)] == [20]  # frame 5's hints stop at the cut
    assert [k.index for k in plan.acting(25)] == [20]
    assert [k.index for k in plan.acting(20)] == [20]
    assert plan.acting(35) == []
