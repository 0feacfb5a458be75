"""Tests for user colour hints (somcolor/guide.py): parsing, mapping, the method, suggestions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from somcolor import guide
from somcolor.color import rgb_to_luv
from somcolor.exceptions import SomcolorError

#: Four codes' chroma: gray, red-ish, green-ish, blue-ish.
PALETTE = np.array([[0.0, 0.0], [80.0, 20.0], [-40.0, 40.0], [-10.0, -60.0]])


def _problem(L: np.ndarray, uv=(10.0, 5.0), proba=None, **params):
    """A Guide over ``L`` with the same model probabilities and chroma everywhere."""
    h, w = L.shape
    if proba is None:
        proba = np.full(len(PALETTE), 1.0 / len(PALETTE))
    P = np.tile(np.asarray(proba, np.float32), (h * w, 1))
    model_uv = np.broadcast_to(np.asarray(uv, np.float32), (h, w, 2)).copy()
    return guide.Guide(L, P, PALETTE, model_uv, guide.GuideParams(**params))


def _hint(shape, x, y, color, radius=None):
    point = {"x": x, "y": y, "color": color}
    if radius is not None:
        point["radius"] = radius
    return guide.to_working(guide.parse_hints([point], shape), shape)


def _uv(hex_color: str) -> np.ndarray:
    rgb = np.array(guide._hex_rgb(hex_color), np.float64) / 255.0
    return rgb_to_luv(rgb[None])[0, 1:]


def _edge_image(h: int = 24, w: int = 32) -> np.ndarray:
    L = np.full((h, w), 30.0)
    L[:, w // 2 :] = 80.0
    return L


# ---------------------------------------------------------------------------- the method
def test_no_hints_return_the_model_chroma_exactly():
    g = _problem(_edge_image())
    out = g.solve(guide.to_working(guide.parse_hints([], (24, 32)), (24, 32)))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, g.uv)
    uv_full = np.random.default_rng(0).normal(size=(48, 64, 2)).astype(np.float32)
    assert guide.full_size(uv_full, g.uv, out) is uv_full


def test_a_hint_does_not_cross_a_strong_luminance_edge():
    L = _edge_image()
    g = _problem(L)
    unhinted = g.solve(guide.WorkHints(np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros(0)))
    out = g.solve(_hint(L.shape, 3, 12, "#c83232"))
    # The hint is ~100 UV units from the model's colour; across the edge under 2% of it
    # leaks (a colour difference of about one just-noticeable step).
    right = np.linalg.norm(out[:, 16:] - unhinted[:, 16:], axis=-1)
    assert right.max() < 2.0, right.max()
    np.testing.assert_allclose(out[12, 3], _uv("#c83232"), atol=0.5)  # it wins where it is
    assert np.abs(out[:, :16] - _uv("#c83232")).max() < 2.0  # and spreads on its side


def test_a_single_hint_on_a_flat_image_colours_it():
    g = _problem(np.full((16, 20), 55.0), uv=(0.0, 0.0))
    out = g.solve(_hint((16, 20), 4, 7, "#3c78c8"))
    np.testing.assert_allclose(out, np.broadcast_to(_uv("#3c78c8"), out.shape), atol=0.5)


def _naive_system(g: guide.Guide, weight: np.ndarray) -> np.ndarray:
    """The dense matrix of the energy, built pixel by pixel from its definition."""
    Y = g.L / 100.0
    h, w = Y.shape
    sigma2 = np.empty((h, w))
    for r in range(h):
        for c in range(w):
            win = [Y[min(max(r + dy, 0), h - 1), min(max(c + dx, 0), w - 1)]
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1)]  # fmt: skip
            sigma2[r, c] = max(0.6 * np.var(win), 2e-6)
    A = np.diag(weight.astype(np.float64))
    for r in range(h):
        for c in range(w):
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    rr, cc = r + dy, c + dx
                    if (dy or dx) and 0 <= rr < h and 0 <= cc < w:
                        s2 = 0.5 * (sigma2[r, c] + sigma2[rr, cc])
                        a = np.exp(-((Y[r, c] - Y[rr, cc]) ** 2) / s2)
                        i, j = r * w + c, rr * w + cc
                        A[i, i] += a
                        A[i, j] -= a
    return A


def test_the_sparse_solver_matches_a_dense_twin():
    rng = np.random.default_rng(3)
    L = rng.uniform(0, 100, (7, 9))
    P = rng.dirichlet(np.ones(len(PALETTE)), 63).astype(np.float32)
    uv = rng.normal(0, 30, (7, 9, 2)).astype(np.float32)
    g = guide.Guide(L, P, PALETTE, uv, guide.GuideParams(rtol=1e-12, block=3))
    hints = guide.to_working(
        guide.parse_hints([(1, 2, "#ff0000"), (7, 5, "#00a0ff"), (4, 0, "#30c030")], (7, 9)),
        (7, 9),
    )
    weight, pull = g.data_term(hints)
    expected = np.linalg.solve(_naive_system(g, weight), pull).reshape(7, 9, 2)
    np.testing.assert_allclose(g.solve(hints), expected, rtol=1e-4, atol=1e-3)


def test_re_solving_warm_started_matches_a_cold_solve():
    rng = np.random.default_rng(4)
    L = rng.uniform(0, 100, (20, 24))
    g = _problem(L, rtol=1e-8)
    shape = L.shape
    first = guide.to_working(guide.parse_hints([(2, 3, "#ff0000")], shape), shape)
    both = guide.to_working(guide.parse_hints([(2, 3, "#ff0000"), (20, 15, "#0000ff")], shape),
                            shape)  # fmt: skip
    g.solve(first)
    warm = g.solve(both)  # a hint added: the non-local sums are updated, not recomputed
    np.testing.assert_allclose(warm, _problem(L, rtol=1e-8).solve(both), atol=1e-3)
    fewer = g.solve(first)  # a hint removed: recomputed
    np.testing.assert_allclose(fewer, _problem(L, rtol=1e-8).solve(first), atol=1e-3)


def test_a_hint_pulls_a_far_pixel_that_looks_like_it():
    """Non-local: two same-looking regions cut apart by a dark line; a hint in one
    colours the other, where the model said something else."""
    L = np.full((20, 30), 60.0)
    L[:, 14:16] = 5.0  # the line
    proba = np.tile(np.array([0.05, 0.85, 0.05, 0.05], np.float32), (600, 1))
    proba.reshape(20, 30, 4)[:, 14:16] = (0.85, 0.05, 0.05, 0.05)
    model_uv = np.zeros((20, 30, 2), np.float32)
    g = guide.Guide(L, proba, PALETTE, model_uv)
    out = g.solve(_hint(L.shape, 3, 10, "#2e8b57"))
    assert np.abs(out[:, 20:] - _uv("#2e8b57")).max() < 5.0


# ---------------------------------------------------------------------------- mapping
def test_to_working_maps_centres_and_scales_radii():
    hints = guide.parse_hints([{"x": 9, "y": 0, "color": "#000000", "radius": 4}], (10, 20))
    wh = guide.to_working(hints, (5, 10))
    assert wh.index.tolist() == [4] and wh.radius.tolist() == [2.0]
    assert np.isnan(
        guide.to_working(guide.parse_hints([(0, 0, "#000000")], (4, 4)), (4, 4)).radius[0]
    )


def test_scribbles_become_one_pixel_hints_in_their_colour():
    strokes = np.zeros((6, 8, 4), np.uint8)
    strokes[2, 3:6] = (200, 50, 50, 255)
    strokes[4, 1] = (0, 0, 255, 128)  # not opaque: not a stroke
    hints = guide.scribble_hints(strokes, (6, 8))
    assert hints.xy.tolist() == [[3, 2], [4, 2], [5, 2]]
    np.testing.assert_allclose(hints.uv, np.tile(_uv("#c83232"), (3, 1)))
    assert hints.radius.tolist() == [0, 0, 0]
    merged = guide.merge_hints(hints, guide.parse_hints([(0, 0, "#ffffff")], (6, 8)))
    assert len(merged) == 4


def test_python_hints_take_tuples_dicts_hex_and_rgb():
    hints = guide.parse_hints(
        [(1, 2, (200, 50, 50)), {"x": 0.5, "y": 1, "color": "#C83232", "radius": 0}], (4, 4)
    )
    np.testing.assert_allclose(hints.uv[0], hints.uv[1])
    assert hints.xy.tolist() == [[1, 2], [0.5, 1]]


# ---------------------------------------------------------------------------- suggestions
def test_suggest_gives_the_most_probable_colours_first():
    out = guide.suggest(np.array([0.1, 0.2, 0.6, 0.1]), PALETTE, 3, lightness=60.0)
    assert [p for _, p in out] == [0.6, 0.2, 0.1]
    assert all(len(c) == 7 and c[0] == "#" for c, _ in out)
    assert out[0][0] == guide.suggest(np.array([0, 0, 1.0, 0]), PALETTE, 1, lightness=60.0)[0][0]
    with pytest.raises(SomcolorError, match="expected 4 probabilities"):
        guide.suggest(np.ones(3), PALETTE)


# ---------------------------------------------------------------------------- bad input
BAD_FILES = [
    ('{"points": [{"x": 1, "y": 1, "color": "#ff0000", "size": 3}]}', "point 0: unknown keys"),
    (
        '{"points": [{"x": 1, "y": 1, "color": "#ff0000"}, {"x": 8, "y": 1, "color": "#ff0000"}]}',
        "point 1: x=8 is outside",
    ),  # fmt: skip
    ('{"points": [{"x": 1, "y": -1, "color": "#ff0000"}]}', "point 0: y=-1 is outside"),
    ('{"points": [{"x": 1, "y": 1, "color": "#ff00"}]}', "point 0: color '#ff00'"),
    ('{"points": [{"x": 1, "y": 1, "color": "red"}]}', "point 0: color 'red'"),
    ('{"points": [{"x": 1, "y": 1, "color": "#gg0000"}]}', "point 0: color '#gg0000'"),
    ('{"points": [{"x": "1", "y": 1, "color": "#ff0000"}]}', "point 0: x='1' is not a number"),
    ('{"points": [{"x": true, "y": 1, "color": "#ff0000"}]}', "point 0: x=True is not a number"),
    ('{"points": [{"x": 1, "y": 1, "color": "#ff0000", "radius": -2}]}', "point 0: radius=-2"),
    ('{"points": [{"x": 1, "y": 1}]}', "point 0: missing ['color']"),
    ('{"points": [[1, 1]]}', "point 0: expected an object"),
    ('{"points": {"x": 1}}', "expected a list of points"),
    ('{"points": [], "size": 3}', "unknown keys ['size']"),
    ("{}", "missing 'points'"),
    ("[1, 2]", "expected an object"),
    ('{"points": [', "not a JSON hints file"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_every_bad_hints_file_gets_a_one_line_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "hints.json"
    path.write_text(text)
    with pytest.raises(SomcolorError) as info:
        guide.read_hints(path, (6, 8))
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path)) and message in text, text


def test_a_missing_hints_file_gets_a_one_line_error(tmp_path):
    with pytest.raises(SomcolorError, match="cannot read the hints file") as info:
        guide.read_hints(tmp_path / "nope.json", (6, 8))
    assert "\n" not in str(info.value)


def test_a_good_hints_file_is_read(tmp_path):
    path = tmp_path / "hints.json"
    path.write_text(json.dumps({"points": [{"x": 7, "y": 5, "color": "#c83232", "radius": 2}]}))
    hints = guide.read_hints(path, (6, 8))
    assert hints.xy.tolist() == [[7, 5]] and hints.radius.tolist() == [2]


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([(1, 1)], "point 0: expected an object"),
        ([(1, 1, (256, 0, 0))], "point 0: color (256, 0, 0)"),
        ([(1, 1, (1.5, 0, 0))], "point 0: color (1.5, 0, 0)"),
        ([(1, 9, "#ff0000")], "point 0: y=9 is outside the image's rows 0..5"),
        ([(float("nan"), 1, "#ff0000")], "point 0: x=nan is not a number"),
        ("#ff0000", "expected a list of points"),
    ],
)
def test_bad_python_hints_get_a_one_line_error(points, message):
    with pytest.raises(SomcolorError) as info:
        guide.parse_hints(points, (6, 8))
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((6, 9, 4), np.uint8), "the scribbles are 9x6 pixels, the image 8x6"),
        (np.zeros((6, 8, 3), np.uint8), "expected an RGBA image"),
        (np.zeros((6, 8, 4), np.int32), "unsupported pixel type"),
    ],
)
def test_bad_scribbles_get_a_one_line_error(array, message):
    with pytest.raises(SomcolorError, match=message):
        guide.scribble_hints(array, (6, 8), source="strokes.png")


def test_simulated_hints_are_seeded_nested_and_the_patch_mean():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (30, 40, 3)).astype(np.uint8)
    ten = guide.simulated_hints(rgb, 10, 7)
    assert ten == guide.simulated_hints(rgb, 10, 7)
    assert ten == guide.simulated_hints(rgb, 100, 7)[:10]
    assert ten != guide.simulated_hints(rgb, 10, 8)
    for x, y, color in ten:
        patch = rgb[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2].reshape(-1, 3)
        assert color == guide.rgb_hex(np.rint(patch.mean(axis=0)))
