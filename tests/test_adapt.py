"""Colour from a reference photo (:mod:`somcolor.adapt`): the model fitted to a colour
photo colours a gray one like it; deterministic, savable, and refusing gray references.

The reference is two flat colours with some grain: a red left half and a darker blue
right half (different L, so the network can tell them apart from luminance alone).
"""

from __future__ import annotations

import naive
import numpy as np
import pytest
from conftest import write_image_file

from somcolor.adapt import AdaptParams, nearest_column, refine_palette
from somcolor.color import compose, luminance, rgb_to_luv, split_luv, to_float_rgb
from somcolor.exceptions import SomcolorError
from somcolor.model import Model
from somcolor.paths import DEFAULT_MODEL

RED, BLUE = (200, 40, 40), (40, 60, 150)


def two_colours(seed: int = 0) -> np.ndarray:
    """48x64 RGB: red left half, blue right half, each with a little gray grain."""
    rng = np.random.default_rng(seed)
    img = np.zeros((48, 64, 3), np.int16)
    img[:, :32], img[:, 32:] = RED, BLUE
    img += rng.integers(-15, 16, (48, 64, 1), dtype=np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def gray_of(rgb: np.ndarray) -> np.ndarray:
    """The gray photo of a colour one: uint8 gray levels with its CIELUV lightness (a mean
    of R, G and B would change the regions' contrast, so the reference match would rightly
    see another scene: docs/reference.md)."""
    L = luminance(rgb)
    return compose(L, np.zeros((*L.shape, 2), np.float32))[0][..., 0]


def mean_uv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean UV of the left and the right half."""
    _, uv = split_luv(rgb_to_luv(to_float_rgb(rgb)))
    return uv[:, :32].reshape(-1, 2).mean(0), uv[:, 32:].reshape(-1, 2).mean(0)


def angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle in degrees between two UV vectors (their hue difference)."""
    cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))))


@pytest.fixture(scope="module")
def model() -> Model:
    return Model.from_file(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return two_colours()


@pytest.fixture(scope="module")
def adapted(model, reference) -> Model:
    return model.adapt(reference)


# ---------------------------------------------------------------------------- colours
def test_adapted_model_gives_each_region_its_reference_colour(model, reference, adapted):
    # The reference itself as the input: colorize reduces it to its luminance (a gray photo
    # of the same scene with other gray levels may look unlike it: the reference match).
    want_left, want_right = mean_uv(reference)
    got_left, got_right = mean_uv(adapted.colorize(reference))
    auto_left, auto_right = mean_uv(model.colorize(reference))
    for got, want, auto in [(got_left, want_left, auto_left), (got_right, want_right, auto_right)]:
        assert angle(got, want) < 30  # the reference's hue ...
        assert np.linalg.norm(got) > 0.5 * np.linalg.norm(want)  # ... and much of its chroma
        assert angle(auto, want) > 30 or np.linalg.norm(auto) < 0.5 * np.linalg.norm(want)
    assert got_left[0] > 50 and got_right[1] < -40  # red: u > 0; blue: v < 0


def test_refined_codebook_moves_towards_the_reference_chroma(model, reference, adapted):
    kept = model.adapt(reference, codebook="keep")
    np.testing.assert_array_equal(kept.codebook, model.codebook)
    _, uv = split_luv(rgb_to_luv(to_float_rgb(reference)))
    uv = uv.reshape(-1, 2).astype(np.float64)

    def quantization_error(codebook):
        palette = codebook[model.classes]
        return np.linalg.norm(uv - palette[nearest_column(uv, palette)], axis=1).mean()

    assert quantization_error(adapted.codebook) < 0.5 * quantization_error(model.codebook)
    som = model.adapt(reference, codebook="som")
    assert quantization_error(som.codebook) < quantization_error(model.codebook)
    assert adapted.training_["adapted"]["options"]["codebook"] == "refine"


def test_refine_palette_is_lloyd_and_keeps_unused_codes():
    uv = np.array([[1.0, 0], [3, 0], [20, 2], [22, 2]])
    palette = np.array([[0.0, 0], [10, 0], [-50, 50]])
    np.testing.assert_allclose(refine_palette(uv, palette, 0), palette)
    np.testing.assert_allclose(refine_palette(uv, palette, 3), [[2, 0], [21, 2], [-50, 50]])


def test_input_model_is_not_modified(reference):
    model = Model.from_file(DEFAULT_MODEL)
    before = {k: np.array(v) for k, v in model.model_arrays().items() if v is not None}
    model.adapt(reference)
    for k, v in model.model_arrays().items():
        if v is not None:
            np.testing.assert_array_equal(v, before[k], err_msg=k)
    assert "adapted" not in model.training_


# ---------------------------------------------------------------------------- determinism
def test_same_seed_gives_bit_identical_models_and_another_seed_differs(model, reference, adapted):
    again = model.adapt(reference)
    other = model.adapt(reference, random_state=1)
    a, b, c = adapted.model_arrays(), again.model_arrays(), other.model_arrays()
    for k in a:
        if k != "metadata" and a[k] is not None:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert any(not np.array_equal(a[k], c[k]) for k in a if k != "metadata" and a[k] is not None)


def test_saved_adapted_model_loads_to_identical_colorizations(adapted, reference, tmp_path):
    import somcolor

    path = somcolor.load().adapt(reference).save(tmp_path / "adapted.npz")
    loaded = somcolor.load(path)
    gray = reference.mean(axis=2).astype(np.uint8)
    np.testing.assert_array_equal(loaded.colorize(gray), adapted.colorize(gray))
    np.testing.assert_array_equal(loaded.predictor().codebook, adapted.codebook)
    assert loaded.predictor().training_["adapted"]["n_references"] == 1


# ---------------------------------------------------------------------------- refusals
def test_gray_reference_is_refused_as_array_and_as_file(model, reference, tmp_path):
    gray = reference.mean(axis=2).astype(np.uint8)
    with pytest.raises(SomcolorError, match="gray"):
        model.adapt(gray)
    with pytest.raises(SomcolorError, match="gray"):
        model.adapt(np.repeat(gray[..., None], 3, axis=2))
    path = write_image_file(tmp_path / "gray.png", np.repeat(gray[..., None], 3, axis=2))
    with pytest.raises(SomcolorError, match=r"gray\.png is gray"):
        model.adapt(path)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"codebook": "kmeans"}, "codebook must be one of"),
        ({"refine_steps": -1}, "refine_steps must be an integer >= 0"),
        ({"epochs": 1.5}, "epochs must be an integer"),
        ({"holdout": 1.0}, "holdout must be in"),
        ({"colours": 3}, "unknown options"),
    ],
)
def test_bad_options_are_refused_in_one_line(model, reference, options, message):
    with pytest.raises(SomcolorError, match=message) as info:
        model.adapt(reference, **options)
    assert "\n" not in str(info.value)


def test_params_defaults_are_the_documented_choice():
    p = AdaptParams().check()
    assert p.codebook == "refine" and p.refine_steps == 5


# ---------------------------------------------------------------------------- reference match
def test_match_likeness_kernel_equals_its_naive_twin():
    from somcolor.adapt import ReferenceMatch

    rng = np.random.default_rng(0)
    n, k, c = 37, 11, 5
    p_ref = rng.dirichlet(np.ones(c), k).astype(np.float32)
    proba = rng.dirichlet(np.ones(c), n).astype(np.float32)
    proba[0] = p_ref[3]  # one pixel exactly like a reference pixel
    L, L_ref = rng.uniform(0, 100, n), rng.uniform(0, 100, k)
    L[0] = L_ref[3]
    match = ReferenceMatch(None, np.sqrt(p_ref), L_ref.astype(np.float32), 0.3, 10.0)
    match.CHUNK = 8  # several chunks
    got = match.likeness(proba, L.astype(np.float32))
    want = naive.nearest_likeness(np.sqrt(proba), L, np.sqrt(p_ref), L_ref, 0.3, 10.0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert got[0] == pytest.approx(1.0, abs=1e-5)


def test_unrelated_reference_leaves_the_automatic_colours(model):
    """A reference of another scene (flat red and blue) leaves a textured photo's
    colours as the model's own where nothing in it looks like the reference; the same
    reference still colours a photo like it."""
    from skimage import data

    photo = data.astronaut()[::2, ::2]
    ref = two_colours()
    matched = model.adapt(ref, match_sigma=0.3)
    plain = model.adapt(ref, match_sigma=0.0)
    auto = model.colorize(photo).astype(int)
    far_plain = np.abs(plain.colorize(photo).astype(int) - auto).mean()
    far_matched = np.abs(matched.colorize(photo).astype(int) - auto).mean()
    assert far_matched < 0.5 * far_plain
    got_left, got_right = mean_uv(matched.colorize(ref))
    want_left, want_right = mean_uv(ref)
    assert angle(got_left, want_left) < 30 and angle(got_right, want_right) < 30


def test_match_saves_and_loads_to_identical_colorizations(model, tmp_path):
    from somcolor.pipeline import Colorizer

    ref = two_colours()
    gray = ref.mean(axis=2).astype(np.uint8)
    adapted = Colorizer.load(DEFAULT_MODEL).adapt(ref, match_sigma=0.3)
    assert adapted.predictor().reference_match is not None
    path = adapted.save(tmp_path / "matched.npz")
    back = Model.from_file(path)
    assert back.reference_match is not None and back.metadata_["match"]["sigma"] == 0.3
    assert np.array_equal(back.colorize(gray), adapted.colorize(gray))
    assert np.array_equal(back.colorize(gray), model.adapt(ref, match_sigma=0.3).colorize(gray))
