"""Colour from a reference photo (:mod:`somcolor.adapt`): the model fitted to a colour
photo colours a gray one like it; deterministic, savable, and refusing gray references.

The reference is two flat colours with some grain: a red left half and a darker blue
right half (different L, so the network can tell them apart from luminance alone).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_image_file

from somcolor.adapt import AdaptParams, nearest_column, refine_palette
from somcolor.color import rgb_to_luv, split_luv, to_float_rgb
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
    gray = reference.mean(axis=2).astype(np.uint8)
    want_left, want_right = mean_uv(reference)
    got_left, got_right = mean_uv(adapted.colorize(gray))
    auto_left, auto_right = mean_uv(model.colorize(gray))
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
