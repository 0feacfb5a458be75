"""Tests for somcolor.smooth: the guided filter, the working shape and chroma resampling."""

from __future__ import annotations

import numpy as np
import pytest

from somcolor.resize import resample, working_shape
from somcolor.smooth import guided_filter


def _window_mean(x, r, i, j):
    """Mean of the (2r+1) x (2r+1) window of 2-D ``x`` at (i, j), borders mirrored (abc|cba)."""
    padded = np.pad(x, r, mode="symmetric")
    return padded[i : i + 2 * r + 1, j : j + 2 * r + 1].mean()


def _naive_guided(guide, p, r, eps):
    """He et al.'s guided filter for one channel, every window mean computed by hand (float64).

    a_k = cov_k(g, p) / (var_k(g) + eps), b_k = mean_k(p) - a_k mean_k(g);
    q_i = mean over windows k containing i of a_k g_i + b_k.
    """
    g = np.asarray(guide, np.float64)
    p = np.asarray(p, np.float64)
    H, W = g.shape
    a = np.empty((H, W))
    b = np.empty((H, W))
    for i in range(H):
        for j in range(W):
            mg = _window_mean(g, r, i, j)
            mp = _window_mean(p, r, i, j)
            var = _window_mean(g * g, r, i, j) - mg * mg
            cov = _window_mean(g * p, r, i, j) - mg * mp
            a[i, j] = cov / (var + eps)
            b[i, j] = mp - a[i, j] * mg
    q = np.empty((H, W))
    for i in range(H):
        for j in range(W):
            q[i, j] = _window_mean(a, r, i, j) * g[i, j] + _window_mean(b, r, i, j)
    return q


def _rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("shape", [(5, 6), (1, 7), (7, 1), (3, 3)], ids=str)
@pytest.mark.parametrize("radius", [1, 2, 4])
@pytest.mark.parametrize("eps", [1e-4, 0.1])
def test_guided_filter_2d_equals_naive_formulas(shape, radius, eps):
    guide = _rng(1).random(shape)
    src = _rng(2).random(shape)
    out = guided_filter(guide, src, radius, eps)
    np.testing.assert_allclose(out, _naive_guided(guide, src, radius, eps), atol=1e-9)


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_guided_filter_3d_filters_each_channel_like_2d(channels):
    shape = (6, 5)
    guide = _rng(3).random(shape)
    src = _rng(4).normal(0, 30, (*shape, channels))
    out = guided_filter(guide, src, 2, 0.01)
    assert out.shape == src.shape
    for c in range(channels):
        expected = _naive_guided(guide, src[..., c], 2, 0.01)
        np.testing.assert_allclose(out[..., c], expected, atol=1e-8)


def test_guided_filter_float32_matches_naive_loosely():
    guide = _rng(5).random((6, 7)).astype(np.float32)
    src = _rng(6).normal(0, 20, (6, 7, 2)).astype(np.float32)
    out = guided_filter(guide, src, 1, 1e-3)
    for c in range(2):
        np.testing.assert_allclose(
            out[..., c], _naive_guided(guide, src[..., c], 1, 1e-3), atol=1e-3
        )


def test_guided_filter_keeps_a_step_of_the_guide_and_reduces_noise_in_flat_regions():
    H, W = 20, 20
    guide = np.zeros((H, W))
    guide[:, W // 2 :] = 1.0
    clean = np.where(guide > 0, 40.0, -40.0)
    noisy = clean + _rng(7).normal(0, 5, (H, W))
    out = guided_filter(guide, noisy, 3, 1e-4)
    left, right = out[:, : W // 2 - 1], out[:, W // 2 + 1 :]
    # The step survives: the pixels either side of the edge stay about 80 apart...
    step = out[:, W // 2] - out[:, W // 2 - 1]
    assert np.all(step > 70)
    # ... while the noise in each flat half falls well below its original std.
    assert left.std() < 0.5 * noisy[:, : W // 2 - 1].std()
    assert right.std() < 0.5 * noisy[:, W // 2 + 1 :].std()
    np.testing.assert_allclose([left.mean(), right.mean()], [-40.0, 40.0], atol=1.5)


def test_guided_filter_with_flat_guide_blurs_like_a_box_filter():
    # With no edge in the guide, a = 0-ish and the filter is a (double) box blur: a step fades.
    src = np.zeros((9, 9))
    src[:, 5:] = 10.0
    out = guided_filter(np.full((9, 9), 0.5), src, 2, 1e-2)
    assert 0 < out[4, 4] < 10 and 0 < out[4, 5] < 10


@pytest.mark.parametrize("src_shape", [(4, 5), (4, 5, 2)])
def test_guided_filter_radius_zero_returns_src(src_shape):
    src = _rng(8).random(src_shape)
    out = guided_filter(_rng(9).random((4, 5)), src, 0, 1e-3)
    assert out is src


@pytest.mark.parametrize("src_shape", [(6, 6), (6, 6, 2)])
def test_guided_filter_keeps_float32(src_shape):
    guide = _rng(10).random((6, 6)).astype(np.float32)
    src = _rng(11).random(src_shape).astype(np.float32)
    out = guided_filter(guide, src, 2, 1e-3)
    assert out.dtype == np.float32 and out.shape == src_shape


def test_guided_filter_keeps_float64():
    out = guided_filter(np.ones((4, 4), np.float32), np.ones((4, 4)), 1, 1e-3)
    assert out.dtype == np.float64


def test_guided_filter_of_constant_src_is_that_constant():
    out = guided_filter(_rng(12).random((7, 8)), np.full((7, 8, 2), 3.5), 2, 1e-3)
    np.testing.assert_allclose(out, 3.5, atol=1e-9)


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
