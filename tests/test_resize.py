"""Tests for somcolor.resize: the working shape, bilinear resampling and area downsampling."""

from __future__ import annotations

import naive
import numpy as np
import pytest

from somcolor.resize import downsample, resample, working_shape


def _rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize(
    "shape, long_side, expected",
    [
        ((321, 481), 240, (160, 240)),
        ((481, 321), 240, (240, 160)),
        ((100, 100), 50, (50, 50)),
        ((10, 1000), 100, (1, 100)),
        ((30, 40), 40, (30, 40)),
        ((30, 40), 400, (30, 40)),
        ((30, 40), None, (30, 40)),
    ],
)
def test_working_shape(shape, long_side, expected):
    assert working_shape(shape, long_side) == expected


@pytest.mark.parametrize("shape", [(321, 481), (17, 5), (1, 300), (300, 1), (99, 100)])
@pytest.mark.parametrize("long_side", [1, 7, 64, 240, 1000])
def test_working_shape_keeps_aspect_and_never_enlarges(shape, long_side):
    h, w = working_shape(shape, long_side)
    assert 1 <= h <= shape[0] and 1 <= w <= shape[1]
    assert max(h, w) <= max(long_side, 1)
    assert max(h, w) == min(max(shape), long_side)
    # Aspect kept up to rounding of the short side to a whole pixel (and at least 1 pixel).
    f = max(h, w) / max(shape)
    assert abs(h - shape[0] * f) <= 0.5 + 1e-9 or h == 1
    assert abs(w - shape[1] * f) <= 0.5 + 1e-9 or w == 1


@pytest.mark.parametrize("channels", [(), (2,)])
def test_resample_round_trip_shapes(channels):
    x = _rng(13).random((21, 30, *channels)).astype(np.float32)
    small = resample(x, (7, 10))
    back = resample(small, (21, 30))
    assert small.shape == (7, 10, *channels) and back.shape == x.shape
    assert small.dtype == back.dtype == np.float32


def test_resample_is_identity_when_the_shape_is_equal():
    x = _rng(14).random((5, 6, 2))
    assert resample(x, (5, 6)) is x


def test_resample_keeps_constants_and_range():
    x = np.full((8, 12, 2), [10.0, -20.0])
    np.testing.assert_allclose(resample(x, (3, 5)), np.full((3, 5, 2), [10.0, -20.0]))
    ramp = np.linspace(-50, 50, 40).reshape(4, 10)
    up = resample(ramp, (16, 40))
    assert up.min() >= -50 - 1e-9 and up.max() <= 50 + 1e-9


def test_resample_anti_aliases_when_shrinking():
    # A checkerboard shrunk by 4: anti-aliased it averages to ~0.5; sampled it would alias.
    checker = (np.indices((32, 32)).sum(axis=0) % 2).astype(np.float64)
    small = resample(checker, (8, 8))
    np.testing.assert_allclose(small, 0.5, atol=0.15)


@pytest.mark.parametrize(
    "small, large",
    [
        ((7, 10), (21, 30)),
        ((5, 3), (17, 11)),
        ((1, 4), (3, 9)),
        ((4, 1), (9, 3)),
        ((1, 1), (5, 5)),
        ((3, 3), (3, 7)),
        ((2, 2), (1000, 3)),
        ((24, 32), (480, 640)),
    ],
)
@pytest.mark.parametrize("channels", [(), (1,), (2,), (3,)])
def test_enlarging_float32_equals_scikit_image_resize(small, large, channels):
    """The numba path (float32, enlarging) against scikit-image's bilinear resize."""
    from skimage.transform import resize

    x = (_rng(15).random((*small, *channels)) * 200 - 100).astype(np.float32)
    before = x.copy()
    expected = resize(x, (*large, *channels), order=1, anti_aliasing=False, preserve_range=True)
    out = resample(x, large)
    assert out.shape == (*large, *channels) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-4)
    assert np.array_equal(x, before)  # the input is not modified


def test_enlarging_a_non_contiguous_view_reads_the_view():
    x = _rng(16).random((12, 16, 2)).astype(np.float32)
    view = x[::2, ::2]  # (6, 8, 2), strided
    np.testing.assert_array_equal(resample(view, (18, 24)), resample(view.copy(), (18, 24)))


@pytest.mark.parametrize(
    "large, small",
    [
        ((12, 16), (4, 4)),
        ((12, 16), (5, 7)),
        ((13, 11), (4, 3)),
        ((9, 10), (9, 3)),
        ((9, 10), (2, 10)),
        ((1, 50), (1, 7)),
        ((50, 1), (6, 1)),
        ((7, 9), (1, 1)),
        ((8, 8), (7, 7)),
    ],
    ids=str,
)
def test_downsample_equals_naive_area_average(large, small):
    x = (_rng(20).random(large) * 100).astype(np.float32)
    before = x.copy()
    out = downsample(x, small)
    assert out.shape == small and out.dtype == np.float32
    np.testing.assert_allclose(out, naive.downsample(x, small), rtol=1e-6, atol=1e-5)
    assert np.array_equal(x, before)  # the input is not modified


def test_downsample_by_an_integer_factor_is_the_mean_of_each_block():
    x = _rng(21).random((12, 18)).astype(np.float32)
    expected = x.reshape(4, 3, 6, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(downsample(x, (4, 6)), expected, rtol=1e-6)


def test_downsample_keeps_constants_the_image_mean_and_the_range():
    np.testing.assert_allclose(downsample(np.full((31, 47), 7.5, np.float32), (5, 9)), 7.5)
    x = _rng(22).random((30, 40)).astype(np.float32)
    out = downsample(x, (7, 9))
    # Every output pixel covers the same area, so their mean is the image's.
    assert abs(out.mean() - x.mean()) < 1e-5
    assert out.min() >= x.min() and out.max() <= x.max()


def test_downsample_anti_aliases_a_checkerboard():
    checker = (np.indices((64, 64)).sum(axis=0) % 2).astype(np.float32)
    np.testing.assert_allclose(downsample(checker, (9, 13)), 0.5, atol=0.1)


def test_downsample_of_the_same_shape_returns_the_float32_input():
    x = _rng(23).random((5, 6)).astype(np.float32)
    assert downsample(x, (5, 6)) is x
    out = downsample(x.astype(np.float64), (5, 6))
    assert out.dtype == np.float32


def test_downsample_reads_a_strided_view():
    x = _rng(24).random((20, 30)).astype(np.float32)
    np.testing.assert_array_equal(
        downsample(x[::2, ::3], (3, 4)), downsample(x[::2, ::3].copy(), (3, 4))
    )


@pytest.mark.parametrize("shape", [(11, 10), (0, 5), (5, 0)])
def test_downsample_refuses_a_larger_or_empty_shape(shape):
    with pytest.raises(ValueError, match="expected a smaller one"):
        downsample(np.zeros((10, 10), np.float32), shape)


def test_downsample_refuses_channels():
    with pytest.raises(ValueError, match=r"expected \(H, W\)"):
        downsample(np.zeros((10, 10, 2), np.float32), (5, 5))
