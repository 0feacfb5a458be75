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


def test_the_change_is_brought_to_full_size_along_the_full_size_edges():
    # A change that stops at an edge of the working image: bilinear upsampling smears it
    # over the edge of the full-size L; the guided upsampling keeps it on its side.
    L_work = _edge_image(12, 16)
    L = _edge_image(48, 64)
    change = np.zeros((12, 16, 2), np.float32)
    change[:, :8] = (40.0, -20.0)
    zero = np.zeros((48, 64, 2), np.float32)
    args = (zero, np.zeros_like(change), change)
    smeared = guide.full_size(*args)
    guided = guide.full_size(*args, L=L, L_work=L_work)
    # On either side of the edge (column 32) the smear blends; the guided change holds.
    assert np.abs(guided[:, 32:34]).max() < np.abs(smeared[:, 32:34]).max() / 3
    assert np.abs(guided[:, 30:32, 0]).min() > 35.0 > 30.0 > np.abs(smeared[:, 31, 0]).max()
    np.testing.assert_allclose(guided[:, :26], np.broadcast_to(change[0, 0], (48, 26, 2)), atol=1.5)
    bilinear = guide.full_size(
        *args, L=L, L_work=L_work, params=guide.GuideParams(upsample_radius=0)
    )
    np.testing.assert_array_equal(bilinear, smeared)


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
    assert [s.probability for s in out] == [0.6, 0.2, 0.1]
    assert all(len(s.color) == 7 and s.color[0] == "#" for s in out)
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


# ---------------------------------------------------------------------------- the suggestion list
#: Ten codes of a model that knows only browns: the hue of #653d20 at chroma 10..30 uv.
BROWNS = np.array([[c * np.cos(0.63), c * np.sin(0.63)] for c in np.linspace(10, 30, 10)])


def _luv(hex_color: str) -> np.ndarray:
    return rgb_to_luv(np.array(guide._hex_rgb(hex_color), np.float64)[None] / 255.0)[0]


def _hue(uv) -> float:
    return float(np.degrees(np.arctan2(uv[1], uv[0])) % 360)


def test_suggestions_start_with_the_models_colours_in_probability_order():
    proba = np.array([0.05, 0.3, 0.02, 0.4, 0.04, 0.19])
    codes = np.array([[0, 0], [60, 10], [-30, 30], [20, -50], [5, 5], [-40, -20]], float)
    out = guide.suggest(proba, codes, 12, lightness=55.0)
    sources = [s.source for s in out]
    n_model = sources.index("palette")
    # the three most probable (each at least min_probability), most probable first
    assert n_model == guide.SuggestParams().model_colors == 3
    assert [s.probability for s in out[:n_model]] == [0.4, 0.3, 0.19]
    assert all(s.probability is None for s in out if s.source == "palette")
    assert set(sources) == {"model", "palette"} and len(out) == 12
    assert out[:3] == guide.suggest(proba, codes, 3, lightness=55.0, model_only=True)


def test_only_a_likely_model_colour_leads_and_the_most_probable_always_does():
    flat = np.full(len(BROWNS), 1.0 / len(BROWNS))  # 0.1 each
    flat[3] += 0.01
    out = guide.suggest(flat / flat.sum(), BROWNS, 12, lightness=50.0)
    assert [s.source for s in out[:2]] == ["model", "model"]  # 0.1 >= 0.05: likely enough
    tiny = np.full(len(BROWNS), 0.01)
    tiny[7] = 0.02  # none has real probability: only the most probable leads
    out = guide.suggest(tiny, BROWNS, 12, lightness=50.0)
    assert [s.source for s in out[:2]] == ["model", "palette"]
    assert out[0].probability == 0.02


def test_suggestions_have_no_near_duplicates():
    proba = np.linspace(1.0, 2.0, len(BROWNS))
    for lightness in (20.0, 50.0, 80.0):
        out = guide.suggest(proba / proba.sum(), BROWNS, 12, lightness=lightness)
        uv = np.array([_luv(s.color)[1:] for s in out])
        gaps = np.hypot(*(uv[:, None] - uv[None]).transpose(2, 0, 1))
        gaps[np.diag_indices(len(uv))] = np.inf
        # uint8 rounding moves a colour by at most about one uv unit
        assert gaps.min() > guide.SuggestParams().min_distance - 1.5, lightness
        assert len({s.color for s in out}) == len(out)


def test_a_model_that_says_only_brown_still_offers_blue_green_red_and_gray():
    proba = np.linspace(2.0, 1.0, len(BROWNS))
    for lightness in (40.0, 55.0, 70.0):
        out = guide.suggest(proba / proba.sum(), BROWNS, 12, lightness=lightness)
        assert len(out) == 12
        uv = [_luv(s.color)[1:] for s in out]
        strong = [_hue(c) for c in uv if np.hypot(*c) > 15]
        assert any(200 <= h <= 270 for h in strong), lightness  # a (sky) blue
        assert any(100 <= h <= 160 for h in strong), lightness  # a (foliage) green
        assert any(h <= 25 or h >= 340 for h in strong), lightness  # a red
        assert min(np.hypot(*c) for c in uv) < 1.0  # a gray
    # today's list, the model's alone, has nothing but browns
    only = guide.suggest(proba / proba.sum(), BROWNS, 12, lightness=55.0, model_only=True)
    assert all(25 <= _hue(_luv(s.color)[1:]) <= 50 for s in only)


def _gap(colors, codes) -> float:
    """The mean uv distance from ``colors`` (``"#rrggbb"``) to the nearest of ``codes``."""
    uv = np.array([_luv(c)[1:] for c in colors])
    return float(np.hypot(*(uv[:, None] - codes[None]).transpose(2, 0, 1)).min(axis=1).mean())


def test_the_palette_is_drawn_toward_the_models_colours_near_it():
    proba = np.linspace(2.0, 1.0, len(BROWNS))
    proba /= proba.sum()
    fixed = guide.SuggestParams(cell_mass=None)
    for lightness in (40.0, 55.0, 70.0):
        pulled = guide.suggest(proba, BROWNS, 12, lightness=lightness)
        plain = guide.suggest(proba, BROWNS, 12, lightness=lightness, params=fixed)
        assert pulled != plain
        a = {s.color for s in pulled if s.source == "palette"}
        b = {s.color for s in plain if s.source == "palette"}
        # entries whose cells the model leaves empty (greens, blues) stay where they were
        empty = {c for c in b if 100 <= _hue(_luv(c)[1:]) <= 300}
        assert empty and empty <= a
        # the moved ones come nearer the browns the model gives
        browns = guide.into_gamut(lightness, BROWNS)
        assert _gap(a - b, browns) < _gap(b - a, browns)


@pytest.mark.parametrize("lightness", [5.0, 20.0, 35.0, 50.0, 65.0, 80.0, 95.0])
def test_suggestions_are_shown_at_the_pixels_lightness(lightness):
    proba = np.linspace(1.0, 2.0, len(BROWNS))
    out = guide.suggest(proba / proba.sum(), BROWNS, 12, lightness=lightness)
    L = np.array([_luv(s.color)[0] for s in out])
    # every colour is brought into the gamut at this L, so it keeps L up to uint8 rounding
    np.testing.assert_allclose(L, lightness, atol=0.6)


def test_palette_colours_keep_their_hue_when_brought_into_the_gamut():
    for lightness in (15.0, 50.0, 90.0):
        want = guide.palette_uv(lightness)
        got = guide.into_gamut(lightness, want)
        chroma_want, chroma_got = np.hypot(*want.T), np.hypot(*got.T)
        assert np.all(chroma_got <= chroma_want + 1e-9)
        strong = chroma_got > 1.0
        cosine = np.sum(want * got, axis=1)[strong] / (chroma_want * chroma_got)[strong]
        np.testing.assert_allclose(cosine, 1.0, atol=1e-9)
    # out of the gamut at L 50: shrunk to its edge, just inside
    edge = guide.into_gamut(50.0, [[300.0, 0.0]])[0]
    assert 100 < edge[0] < 300 and edge[1] == 0.0
    assert guide._in_gamut(50.0, edge[None])[0]
    assert not guide._in_gamut(50.0, 1.01 * edge[None])[0]


def test_near_black_and_white_the_list_is_short_rather_than_repeated():
    proba = np.linspace(1.0, 2.0, len(BROWNS))
    for lightness, color in ((0.0, "#000000"), (100.0, "#ffffff")):
        out = guide.suggest(proba / proba.sum(), BROWNS, 12, lightness=lightness)
        assert [(s.color, s.source) for s in out] == [(color, "model")]
    assert guide.suggest(proba / proba.sum(), BROWNS, 0) == []


def test_suggest_params_set_the_palette_the_model_colours_and_the_spacing():
    proba = np.linspace(2.0, 1.0, len(BROWNS))
    proba /= proba.sum()
    bare = guide.suggest(proba, BROWNS, 12, params=guide.SuggestParams(colors=()))
    assert {s.source for s in bare} == {"model"}  # no palette: the model's, spaced apart
    uv = np.array([_luv(s.color)[1:] for s in bare])
    assert len(bare) < len(BROWNS) and np.hypot(*np.diff(uv, axis=0).T).min() > 3.5
    one = guide.suggest(proba, BROWNS, 12, params=guide.SuggestParams(model_colors=1))
    assert [s.source for s in one[:2]] == ["model", "palette"]
    assert guide.suggest(proba, BROWNS, 12, params=guide.SuggestParams()) == guide.suggest(
        proba, BROWNS, 12
    )
