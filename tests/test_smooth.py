"""Tests for somcolor.smooth: the box mean, the guided filter and fast guided upsampling."""

from __future__ import annotations

import time

import naive
import numpy as np
import pytest

from somcolor.resize import downsample, resample
from somcolor.smooth import (
    box_mean,
    guided_coefficients,
    guided_filter,
    guided_rows,
    guided_upsample,
)


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


# ------------------------------------------------------------------ box mean


@pytest.mark.parametrize(
    "shape", [(5, 6), (6, 5), (7, 7), (1, 9), (9, 1), (1, 1), (4, 7, 2), (3, 2, 3)], ids=str
)
@pytest.mark.parametrize("radius", [0, 1, 2, 3, 5, 6, 13, 50])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_box_mean_equals_naive_including_windows_wider_than_the_image(shape, radius, dtype):
    # Radii 5-50 exceed some sides: the window then spans the image mirrored again and again.
    x = (_rng(30).random(shape) * 100 - 50).astype(dtype)
    out = box_mean(x, radius)
    assert out.shape == x.shape and out.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(out, naive.box_mean(x, radius), rtol=0, atol=tol)


@pytest.mark.parametrize(
    "shape, radius", [((9, 12), 1), ((30, 20), 9), ((12, 40, 2), 4), ((8, 9, 3), 7)]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_box_mean_is_scipy_reflect_uniform_filter_bit_for_bit(shape, radius, dtype):
    """Below both sides of the image: the same sums in the same order as scipy."""
    from scipy.ndimage import uniform_filter

    x = _rng(31).random(shape).astype(dtype)
    size = (2 * radius + 1, 2 * radius + 1) + (1,) * (x.ndim - 2)
    np.testing.assert_array_equal(box_mean(x, radius), uniform_filter(x, size, mode="reflect"))


@pytest.mark.parametrize("shape", [(1, 5), (5, 1), (2, 3), (3, 2, 2)], ids=str)
def test_box_mean_with_a_huge_radius_is_about_the_mean_of_the_image(shape):
    # A window of 2r+1 >> n covers the mirrored axis ~ (2r+1) / 2n times: its mean tends
    # to the axis mean, off by at most (2n * max|x|) / (2r+1).
    x = _rng(32).random(shape)
    out = box_mean(x, 10**6)
    expected = x.mean(axis=(0, 1))
    np.testing.assert_allclose(out, np.broadcast_to(expected, x.shape), atol=1e-5)


def test_box_mean_keeps_a_constant_and_converts_integers_to_float64():
    out = box_mean(np.full((5, 7), 3, dtype=np.int32), 4)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, 3.0)


def test_box_mean_radius_zero_is_a_copy():
    x = _rng(33).random((4, 5)).astype(np.float32)
    out = box_mean(x, 0)
    assert out is not x
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((2, 2, 2, 2))], ids=["1d", "4d"])
def test_box_mean_refuses_other_dimensions(bad):
    with pytest.raises(ValueError, match="expected"):
        box_mean(bad, 1)


def test_box_mean_refuses_a_negative_radius():
    with pytest.raises(ValueError, match="expected >= 0"):
        box_mean(np.zeros((3, 3)), -1)


def _best_time(f, repeat=7):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def test_box_mean_costs_the_same_for_strips_and_a_square_of_as_many_pixels():
    """Time linear in pixels whatever the shape and radius: 1 x 40000 and 2 x 20000
    strips (and their transposes) with a radius of a tenth of their length, windows
    of thousands of rows over one or two, against a 200 x 200 square with radius 20,
    on one thread. A ratio, not an absolute time: scipy's filter took ~1000x longer."""
    import numba as nb

    x = _rng(34).random((200, 200, 2)).astype(np.float32)
    box_mean(x[:5, :5], 1)  # compile
    saved = nb.get_num_threads()
    nb.set_num_threads(1)
    try:
        square = _best_time(lambda: box_mean(x, 20))
        strips = [
            _best_time(lambda shape=shape: box_mean(x.reshape(*shape, 2), max(shape) // 10))
            for shape in [(1, 40000), (40000, 1), (2, 20000), (20000, 2)]
        ]
    finally:
        nb.set_num_threads(saved)
    assert max(strips) < 5 * square, (square, strips)


# ------------------------------------------------------------------ guided filter


@pytest.mark.parametrize("shape", [(20, 30), (31, 17), (1, 40), (40, 1)], ids=str)
@pytest.mark.parametrize("radius", [2, 5, 25])
def test_guided_filter_float32_is_within_float32_rounding_of_the_float64_formulas(shape, radius):
    guide = _rng(35).random(shape).astype(np.float32)
    src = _rng(36).normal(0, 30, (*shape, 2)).astype(np.float32)
    out = guided_filter(guide, src, radius, 3e-3)
    a, b = naive.guided_coefficients(guide, src, radius, 3e-3)
    np.testing.assert_allclose(out, a * guide[..., None] + b, rtol=0, atol=2e-3)


def _scipy_box(x, r):
    """The box mean guided_filter used before: scipy's uniform filter, in x's dtype."""
    from scipy.ndimage import uniform_filter

    return uniform_filter(x, (2 * r + 1, 2 * r + 1) + (1,) * (x.ndim - 2), mode="reflect")


def test_guided_filter_equals_its_scipy_version_bit_for_bit_below_the_image_size():
    guide = _rng(37).random((40, 50)).astype(np.float32)
    src = _rng(38).normal(0, 30, (40, 50, 2)).astype(np.float32)
    g, p = guide, src
    mean_g = _scipy_box(g, 6)
    var_g = _scipy_box(g * g, 6) - mean_g * mean_g
    mean_p = _scipy_box(p, 6)
    cov = _scipy_box(g[..., None] * p, 6) - mean_g[..., None] * mean_p
    a = cov / (var_g[..., None] + 3e-3)
    b = mean_p - a * mean_g[..., None]
    expected = _scipy_box(a, 6) * g[..., None] + _scipy_box(b, 6)
    np.testing.assert_array_equal(guided_filter(guide, src, 6, 3e-3), expected)


@pytest.mark.parametrize("channels", [(), (2,)])
def test_guided_coefficients_equal_naive(channels):
    guide = _rng(39).random((13, 16))
    src = _rng(40).normal(0, 20, (13, 16, *channels))
    mean_a, mean_b = guided_coefficients(guide, src, 3, 1e-2)
    a, b = naive.guided_coefficients(guide, src, 3, 1e-2)
    assert mean_a.shape == mean_b.shape == src.shape
    np.testing.assert_allclose(mean_a, a, atol=1e-9)
    np.testing.assert_allclose(mean_b, b, atol=1e-9)


def test_guided_coefficients_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match="expected"):
        guided_coefficients(np.zeros((4, 5)), np.zeros((5, 4, 2)), 1, 1e-3)


# ------------------------------------------------------------------ fast guided upsampling


def _coefficients(low, channels, seed=41):
    a = _rng(seed).normal(0, 2, (*low, *channels)).astype(np.float32)
    b = _rng(seed + 1).normal(0, 20, (*low, *channels)).astype(np.float32)
    return a, b


@pytest.mark.parametrize(
    "low, full",
    [
        ((4, 6), (16, 24)),
        ((5, 7), (17, 23)),
        ((3, 3), (10, 9)),
        ((6, 8), (6, 8)),
        ((1, 5), (1, 40)),
        ((5, 1), (40, 1)),
        ((1, 1), (3, 4)),
        ((1, 6), (4, 25)),
        ((7, 5), (8, 6)),
    ],
    ids=str,
)
@pytest.mark.parametrize("channels", [(), (2,)])
def test_guided_rows_equals_naive(low, full, channels):
    a, b = _coefficients(low, channels)
    G = (_rng(43).random(full) * 100).astype(np.float32)
    out = guided_rows(G, a, b, 0, full[0], scale=0.01)
    assert out.shape == (*full, *channels) and out.dtype == np.float32
    expected = naive.guided_rows(G, a, b, 0, full[0], scale=0.01)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("G_dtype", [np.float32, np.float64, np.uint8])
def test_guided_rows_block_by_block_equals_the_whole_image(G_dtype):
    a, b = _coefficients((6, 8), (2,))
    G = (_rng(44).random((37, 50)) * 100).astype(G_dtype)
    whole = guided_rows(G, a, b, 0, 37)
    out = np.empty((5, 50, 2), np.float32)
    for r0 in range(0, 37, 5):
        r1 = min(r0 + 5, 37)
        block = guided_rows(G, a, b, r0, r1, out[: r1 - r0])
        assert block.base is out or block is out
        np.testing.assert_array_equal(block, whole[r0:r1])
    assert guided_rows(G, a, b, 10, 10).shape == (0, 50, 2)


def test_guided_rows_validates_its_arguments():
    a, b = _coefficients((3, 4), (2,))
    G = np.zeros((9, 12), np.float32)
    with pytest.raises(ValueError, match="0 <= r0 <= r1 <= 9"):
        guided_rows(G, a, b, 5, 10)
    with pytest.raises(ValueError, match="one shape"):
        guided_rows(G, a, b[..., :1], 0, 9)
    with pytest.raises(ValueError, match="expected C-contiguous float32"):
        guided_rows(G, a, b, 0, 9, np.empty((9, 12, 2), np.float64))
    with pytest.raises(ValueError, match=r"expected \(H, W\)"):
        guided_rows(G[0], a, b, 0, 1)


@pytest.mark.parametrize("full", [(40, 60), (41, 59), (1, 90), (90, 1), (12, 12)], ids=str)
def test_guided_upsample_keeps_a_constant_chroma(full):
    G = _rng(45).random(full).astype(np.float32)
    low = (max(1, full[0] // 4), max(1, full[1] // 4))
    g_low = downsample(G, low)
    p_low = np.broadcast_to(np.float32([12.5, -30.0]), (*low, 2))
    uv = guided_upsample(G, g_low, p_low, 2, 3e-3)
    assert uv.shape == (*full, 2) and uv.dtype == np.float32
    np.testing.assert_allclose(uv, np.broadcast_to([12.5, -30.0], uv.shape), atol=1e-3)


def test_guided_upsample_at_equal_size_is_the_guided_filter():
    G = _rng(46).random((30, 40)).astype(np.float32)
    p = _rng(47).normal(0, 20, (30, 40, 2)).astype(np.float32)
    np.testing.assert_allclose(
        guided_upsample(G, G, p, 3, 1e-3), guided_filter(G, p, 3, 1e-3), rtol=0, atol=1e-4
    )


@pytest.mark.parametrize("full, factor", [((60, 90), 6), ((61, 89), 5), ((1, 240), 8)], ids=str)
def test_guided_upsample_keeps_chroma_on_its_side_of_an_edge_of_the_guide(full, factor):
    """Chroma that follows a step of the full guide at the low resolution comes back at
    full resolution with the step where the guide has it, sharper than bilinear."""
    H, W = full
    edge = W // 2 + factor // 2  # not on the low-resolution grid
    G = np.zeros(full, np.float32)
    G[:, edge:] = 1.0
    low = (max(1, H // factor), W // factor)
    g_low = downsample(G, low)
    p_low = np.stack([40 * g_low - 20, 10 - 20 * g_low], axis=2)  # follows g_low
    ideal = np.stack([40 * G - 20, 10 - 20 * G], axis=2)
    uv = guided_upsample(G, g_low, p_low, 2, 1e-4)
    plain = resample(p_low, full)
    # Every pixel on its side of the step (ideal: -20 left, +20 right), which bilinear
    # upsampling of the same chroma smears over a few pixels.
    assert np.all(uv[:, :edge, 0] < -15) and np.all(uv[:, edge:, 0] > 15)
    assert np.any(np.abs(plain[:, edge - 2 : edge + 2, 0]) < 10)
    err, plain_err = np.abs(uv - ideal).max(), np.abs(plain - ideal).max()
    assert err < 0.25 * plain_err


def test_guided_upsample_of_one_channel_returns_two_dimensions():
    G = _rng(48).random((20, 30)).astype(np.float32)
    p_low = _rng(49).random((5, 6)).astype(np.float32)
    out = guided_upsample(G * 100, downsample(G, (5, 6)), p_low, 1, 1e-2, scale=0.01)
    assert out.shape == (20, 30) and out.dtype == np.float32
    mean_a, mean_b = guided_coefficients(downsample(G, (5, 6)), p_low, 1, 1e-2)
    expected = naive.guided_rows(G * 100, mean_a, mean_b, 0, 20, scale=0.01)
    np.testing.assert_allclose(out, expected, atol=1e-4)
