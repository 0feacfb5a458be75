"""Tests for somcolor.color: sRGB <-> CIELUV, gamut clipping, and input normalisation."""

import numpy as np
import pytest

from somcolor.color import (
    luminance,
    luv_to_rgb,
    merge_luv,
    rgb_to_luv,
    split_luv,
    to_float_rgb,
    to_uint8,
)
from somcolor.exceptions import SomcolorError

# --- an independent implementation of the standard formulas --------------------------
# sRGB transfer function and RGB->XYZ matrix: IEC 61966-2-1:1999 (sRGB), D65 white
# (X, Y, Z) = (0.95047, 1, 1.08883). CIELUV: CIE 15:2004 "Colorimetry", section 8.2.2,
# as written out at http://www.brucelindbloom.com/Eqn_XYZ_to_Luv.html
SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
D65 = np.array([0.95047, 1.0, 1.08883])
CIE_EPSILON = 216 / 24389
CIE_KAPPA = 24389 / 27


def cie_rgb_to_luv(rgb):
    rgb = np.asarray(rgb, dtype=np.float64)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    X, Y, Z = np.moveaxis(linear @ SRGB_TO_XYZ.T, -1, 0)
    yr = Y / D65[1]
    L = np.where(yr > CIE_EPSILON, 116 * np.cbrt(yr) - 16, CIE_KAPPA * yr)
    denom = X + 15 * Y + 3 * Z
    safe = np.where(denom > 0, denom, 1.0)
    u_prime = np.where(denom > 0, 4 * X / safe, 0.0)
    v_prime = np.where(denom > 0, 9 * Y / safe, 0.0)
    white = D65[0] + 15 * D65[1] + 3 * D65[2]
    ur, vr = 4 * D65[0] / white, 9 * D65[1] / white
    u = np.where(denom > 0, 13 * L * (u_prime - ur), 0.0)
    v = np.where(denom > 0, 13 * L * (v_prime - vr), 0.0)
    return np.stack([L, u, v], axis=-1)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# --- rgb_to_luv: ground truth ---------------------------------------------------------


@pytest.mark.parametrize(
    ("rgb", "luv"),
    [
        # Reference values from Bruce Lindbloom's CIE color calculator
        # (http://www.brucelindbloom.com/ColorCalculator.html; sRGB, D65, 2 degree).
        ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
        ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
        ((1.0, 0.0, 0.0), (53.2408, 175.0151, 37.7564)),
        ((0.0, 1.0, 0.0), (87.7347, -83.0776, 107.3985)),
        ((0.0, 0.0, 1.0), (32.2970, -9.4054, -130.3423)),
    ],
)
def test_rgb_to_luv_matches_reference_values(rgb, luv):
    got = rgb_to_luv(np.array([rgb]))[0]
    # scikit-image's matrix and white point are rounded to 4-6 digits; 0.01 covers that.
    np.testing.assert_allclose(got, luv, atol=0.01)


def test_rgb_to_luv_matches_cie_formulas_on_random_colors(rng):
    rgb = rng.random((500, 3))
    np.testing.assert_allclose(rgb_to_luv(rgb), cie_rgb_to_luv(rgb), atol=0.02)


def test_gray_input_has_no_chroma():
    g = np.linspace(0.0, 1.0, 21)
    luv = rgb_to_luv(np.repeat(g[:, None], 3, axis=1))
    # Not exactly 0: scikit-image's D65 white and its sRGB matrix disagree by ~8e-5,
    # which leaves |u|, |v| below 0.008 (u and v span about -130..180).
    assert np.abs(luv[:, 1:]).max() < 0.01
    assert np.all(np.diff(luv[:, 0]) > 0)  # lightness rises with gray level


def test_rgb_to_luv_keeps_image_shape():
    assert rgb_to_luv(np.zeros((4, 5, 3))).shape == (4, 5, 3)


# --- round trips and dtypes -----------------------------------------------------------


@pytest.mark.parametrize(("dtype", "atol"), [(np.float32, 1e-4), (np.float64, 1e-10)])
def test_round_trip_rgb_luv_rgb_on_random_colors(rng, dtype, atol):
    rgb = rng.random((64, 64, 3)).astype(dtype)
    back, clipped = luv_to_rgb(rgb_to_luv(rgb))
    np.testing.assert_allclose(back, rgb, atol=atol)
    assert clipped == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conversions_preserve_float_dtype(dtype):
    rgb = np.full((2, 3, 3), 0.25, dtype=dtype)
    luv = rgb_to_luv(rgb)
    assert luv.dtype == dtype
    back, _ = luv_to_rgb(luv)
    assert back.dtype == dtype


# --- luv_to_rgb: gamut clipping is counted, not hidden --------------------------------


def test_luv_to_rgb_counts_no_clipping_for_in_gamut_colors(rng):
    luv = rgb_to_luv(rng.random((1000, 3)))
    _, clipped = luv_to_rgb(luv)
    assert clipped == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_white_point_is_not_counted_as_clipped(dtype):
    rgb, clipped = luv_to_rgb(np.array([[100.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=dtype))
    assert clipped == 0
    np.testing.assert_allclose(rgb, [[1, 1, 1], [0, 0, 0]], atol=1e-4)


def test_luv_to_rgb_counts_out_of_gamut_pixels_and_clips_them():
    red = rgb_to_luv(np.array([1.0, 0.0, 0.0]))  # a corner of the gamut: just inside
    luv = np.array(
        [
            [50.0, 0.0, 0.0],  # mid gray: in gamut
            [50.0, 200.0, 0.0],  # far too saturated red
            [90.0, 0.0, -150.0],  # light and deep blue: impossible
            red,
        ]
    )
    rgb, clipped = luv_to_rgb(luv)
    assert clipped == 2
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0


def test_luv_to_rgb_counts_pixels_not_channels():
    # One pixel far out of gamut in all three channels is one clipped pixel.
    _, clipped = luv_to_rgb(np.array([[100.0, 150.0, 150.0]]))
    assert clipped == 1


def test_luv_to_rgb_counts_over_an_image():
    luv = np.zeros((3, 4, 3))
    luv[..., 0] = 50.0
    luv[0, :2, 1] = 200.0
    _, clipped = luv_to_rgb(luv)
    assert clipped == 2


# --- to_float_rgb ---------------------------------------------------------------------


def test_to_float_rgb_scales_uint8_to_float32():
    out = to_float_rgb(np.array([[[0, 128, 255]]], dtype=np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[[0.0, 128 / 255, 1.0]]], rtol=1e-6)


def test_to_float_rgb_scales_uint16_by_65535():
    out = to_float_rgb(np.array([[[0, 32768, 65535]]], dtype=np.uint16))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[[0.0, 32768 / 65535, 1.0]]], rtol=1e-6)


@pytest.mark.parametrize("shape", [(3, 4), (3, 4, 1)])
def test_to_float_rgb_repeats_gray_into_three_channels(shape):
    gray = np.arange(12, dtype=np.uint8).reshape(shape)
    out = to_float_rgb(gray)
    assert out.shape == (3, 4, 3)
    expected = gray.reshape(3, 4) / 255
    for ch in range(3):
        np.testing.assert_allclose(out[..., ch], expected, rtol=1e-6)


def test_to_float_rgb_drops_alpha():
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 7
    out = to_float_rgb(rgba)
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[..., 0], 1.0)
    np.testing.assert_array_equal(out[..., 1:], 0.0)


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.float32, np.float32), (np.float64, np.float64), (np.float16, np.float32)],
)
def test_to_float_rgb_keeps_float32_and_float64(dtype, expected):
    out = to_float_rgb(np.full((2, 2, 3), 0.5, dtype=dtype))
    assert out.dtype == expected
    np.testing.assert_array_equal(out, 0.5)


def test_to_float_rgb_maps_bool_to_zero_and_one():
    out = to_float_rgb(np.array([[False, True]]))
    assert out.dtype == np.float32
    assert out[0, :, 0].tolist() == [0.0, 1.0]


@pytest.mark.parametrize("shape", [(5,), (2, 2, 2), (2, 2, 5), (1, 2, 2, 3), (0, 4), (4, 0, 3)])
def test_to_float_rgb_rejects_wrong_shapes(shape):
    with pytest.raises(SomcolorError, match="shape"):
        to_float_rgb(np.zeros(shape, dtype=np.uint8))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint32, np.complex128, object])
def test_to_float_rgb_rejects_unsupported_dtypes(dtype):
    with pytest.raises(SomcolorError, match="expected uint8, uint16 or float"):
        to_float_rgb(np.zeros((2, 2, 3), dtype=dtype))


# --- split, merge, luminance, to_uint8 ------------------------------------------------


def test_split_luv_returns_views_and_merge_luv_inverts_it(rng):
    luv = rng.random((3, 4, 3))
    L, uv = split_luv(luv)
    assert np.shares_memory(L, luv) and np.shares_memory(uv, luv)
    np.testing.assert_array_equal(merge_luv(L, uv), luv)


def test_merge_luv_uses_common_dtype():
    out = merge_luv(np.zeros((2, 2), np.float32), np.zeros((2, 2, 2), np.float64))
    assert out.dtype == np.float64
    out32 = merge_luv(np.zeros((2, 2), np.float32), np.zeros((2, 2, 2), np.float32))
    assert out32.dtype == np.float32


def test_luminance_of_color_image_is_the_luv_lightness(rng):
    img = (rng.random((5, 6, 3)) * 255).astype(np.uint8)
    L = luminance(img)
    assert L.shape == (5, 6) and L.flags.c_contiguous
    np.testing.assert_allclose(L, rgb_to_luv(img / 255.0)[..., 0], atol=1e-3)


def test_luminance_of_gray_extremes_is_0_and_100():
    L = luminance(np.array([[0, 255]], dtype=np.uint8))
    np.testing.assert_allclose(L, [[0.0, 100.0]], atol=1e-4)


def test_to_uint8_rounds_and_clips():
    out = to_uint8(np.array([-0.5, 0.0, 0.499 / 255, 0.501 / 255, 0.5, 1.0, 2.0]))
    assert out.dtype == np.uint8
    assert out.tolist() == [0, 0, 0, 1, 128, 255, 255]
