"""Tests for the Welsh et al. (2002) reference (experiments/welsh.py)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.welsh import jittered_grid, local_std, welsh, welsh_uv
from somcolor.color import compose, luminance, rgb_to_luv, split_luv, to_float_rgb
from somcolor.exceptions import SomcolorError

RED = (200, 60, 50)
BLUE = (40, 70, 160)


def _two_regions(h: int = 40, w: int = 60) -> np.ndarray:
    """A dark blue left half and a brighter red right half (different L, different colour)."""
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:, : w // 2] = BLUE
    rgb[:, w // 2 :] = RED
    return rgb


def _uv(rgb: np.ndarray) -> np.ndarray:
    return split_luv(rgb_to_luv(to_float_rgb(rgb)))[1]


def test_a_gray_copy_gets_each_regions_colour_back():
    ref = _two_regions()
    out = welsh(luminance(ref), ref)
    inner = slice(3, -3)
    w = ref.shape[1] // 2
    for cols in (slice(3, w - 3), slice(w + 3, -3)):
        np.testing.assert_allclose(_uv(out[inner, cols]), _uv(ref[inner, cols]), atol=1.0)
    assert np.abs(out[inner, 3 : w - 3].astype(int) - BLUE).max() <= 2
    assert np.abs(out[inner, w + 3 : -3].astype(int) - RED).max() <= 2


def test_output_is_uint8_rgb_of_the_targets_size_with_its_L():
    rng = np.random.default_rng(0)
    gray = rng.integers(60, 200, (23, 31)).astype(np.uint8)
    ref = np.clip(rng.normal(128, 30, (17, 19, 3)), 0, 255).astype(np.uint8)
    out = welsh(gray, ref, samples=50)
    assert out.shape == (23, 31, 3) and out.dtype == np.uint8
    # Mild colours stay in gamut: the output's L is the target's, up to uint8 rounding.
    np.testing.assert_allclose(luminance(out), luminance(gray), atol=1.0)


def test_a_float_L_target_and_its_gray_image_give_the_same_result():
    ref = _two_regions()
    gray = np.tile(np.linspace(20, 230, 30).astype(np.uint8), (10, 1))
    np.testing.assert_array_equal(welsh(gray, ref), welsh(luminance(gray), ref))


def test_the_same_seed_gives_the_same_output_another_seed_other_samples():
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 256, (30, 30, 3)).astype(np.uint8)
    gray = rng.integers(0, 256, (20, 25)).astype(np.uint8)
    np.testing.assert_array_equal(welsh(gray, ref, seed=3), welsh(gray, ref, seed=3))
    a = jittered_grid((30, 30), 200, np.random.default_rng(3))
    b = jittered_grid((30, 30), 200, np.random.default_rng(4))
    assert not np.array_equal(a, b)


def test_the_jittered_grid_puts_one_sample_in_each_cell():
    idx = jittered_grid((100, 200), 200, np.random.default_rng(0))
    assert len(idx) == 200 and len(np.unique(idx)) == 200
    r, c = np.divmod(idx, 200)
    cells = (r // 10) * 20 + c // 10  # a 10 x 20 grid of 10 x 10 cells
    assert sorted(cells) == list(range(200))


def test_local_std_is_zero_on_flat_regions_and_positive_at_an_edge():
    L = np.zeros((10, 10))
    L[:, 5:] = 50.0
    s = local_std(L)
    assert s[:, :2].max() == 0.0 and s[:, 8:].max() == 0.0
    assert s[:, 4:6].min() > 10.0


@pytest.mark.parametrize(
    "target, ref, samples",
    [
        (np.zeros((4,), np.uint8), _two_regions(), 10),
        (np.zeros((4, 4), np.int64), _two_regions(), 10),
        (np.full((4, 4), 150.0), _two_regions(), 10),  # a float L out of 0..100
        (np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), 10),  # a gray reference array
        (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float64), 10),
        (np.zeros((4, 4), np.uint8), _two_regions(), 0),
    ],
)
def test_bad_input_is_refused_in_one_line(target, ref, samples):
    with pytest.raises(SomcolorError, match="welsh") as err:
        welsh(target, ref, samples=samples)
    assert "\n" not in str(err.value)


def test_welsh_is_its_chroma_joined_with_the_targets_L():
    ref = _two_regions()
    L = luminance(np.tile(np.linspace(20, 230, 30).astype(np.uint8), (10, 1)))
    uv = welsh_uv(L, ref)
    assert uv.shape == (10, 30, 2) and uv.dtype == np.float32
    np.testing.assert_array_equal(welsh(L, ref), compose(L, uv)[0])
