"""Tests for somcolor.features: the fine patch plus coarse patches, position and image stats."""

from __future__ import annotations

import naive
import numpy as np
import pytest

from somcolor.exceptions import SomcolorError
from somcolor.features import FeatureSpec, features_at, image_features

SPECS = [
    FeatureSpec(1),
    FeatureSpec(3),
    FeatureSpec(3, scales=(2,), scale_patch_size=3),
    FeatureSpec(5, scales=(2, 4), scale_patch_size=3),
    FeatureSpec(3, position=True),
    FeatureSpec(3, image_stats=True),
    FeatureSpec(3, scales=(3,), scale_patch_size=5, position=True, image_stats=True),
]


def _L(shape, seed=0):
    """A random luminance image in 0..100, float32."""
    return (np.random.default_rng(seed).random(shape) * 100).astype(np.float32)


def _all_pixels(shape):
    return np.arange(shape[0] * shape[1])


def _naive_coarse(L, flat_index, f, m):
    """The m x m patch of L averaged over f x f areas, around the coarse pixel covering
    each pixel's centre."""
    H, W = L.shape
    h, w = -(-H // f), -(-W // f)
    level = naive.downsample(L.astype(np.float64), (h, w))
    padded = np.pad(level, m // 2, mode="symmetric")
    out = []
    for flat in flat_index:
        r, c = divmod(int(flat), W)
        rc = min(int(np.floor((r + 0.5) * h / H)), h - 1)
        cc = min(int(np.floor((c + 0.5) * w / W)), w - 1)
        out.append(padded[rc : rc + m, cc : cc + m].ravel())
    return np.array(out)


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_n_features_is_the_width_of_the_feature_vectors(spec):
    L = _L((7, 9))
    assert features_at(L, np.array([0, 30, 62]), spec).shape == (3, spec.n_features)
    widths = {block.shape[1] for _, _, block in image_features(L, spec, block_pixels=20)}
    assert widths == {spec.n_features}


def test_n_features_counts_each_part():
    spec = FeatureSpec(5, scales=(2, 8, 16), scale_patch_size=3, position=True, image_stats=True)
    assert spec.n_features == 25 + 3 * 9 + 2 + 2


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (7, 5), (5, 13)], ids=str)
@pytest.mark.parametrize("block_pixels", [1, 13, 1 << 16])
@pytest.mark.parametrize("spec", SPECS[1:4] + SPECS[6:], ids=repr)
def test_image_features_blocks_concatenate_to_features_at_every_pixel(shape, block_pixels, spec):
    L = _L(shape, seed=1)
    blocks = list(image_features(L, spec, block_pixels=block_pixels))
    starts = [r0 for r0, _, _ in blocks]
    stops = [r1 for _, r1, _ in blocks]
    assert starts[0] == 0 and stops[-1] == shape[0] and starts[1:] == stops[:-1]
    for r0, r1, block in blocks:
        assert block.shape[0] == (r1 - r0) * shape[1]
    whole = np.concatenate([block for _, _, block in blocks])
    np.testing.assert_array_equal(whole, features_at(L, _all_pixels(shape), spec))


def test_image_features_blocks_hold_about_block_pixels():
    L = _L((10, 4))
    blocks = list(image_features(L, FeatureSpec(3, position=True), block_pixels=8))
    assert [(r0, r1) for r0, r1, _ in blocks] == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]


@pytest.mark.parametrize("shape", [(1, 7), (6, 1), (8, 11)], ids=str)
def test_first_columns_are_the_fine_patch(shape):
    L = _L(shape, seed=2)
    spec = FeatureSpec(5, scales=(2,), scale_patch_size=3, position=True, image_stats=True)
    index = _all_pixels(shape)
    feats = features_at(L, index, spec)
    np.testing.assert_array_equal(feats[:, :25], naive.patches_at(L, index, 5))


@pytest.mark.parametrize("shape", [(1, 1), (1, 10), (9, 1), (7, 5), (12, 17), (16, 16)], ids=str)
@pytest.mark.parametrize("f, m", [(2, 3), (3, 1), (4, 5), (16, 3)])
def test_coarse_patch_is_the_patch_of_the_downsampled_image(shape, f, m):
    L = _L(shape, seed=3)
    index = _all_pixels(shape)
    feats = features_at(L, index, FeatureSpec(1, scales=(f,), scale_patch_size=m))
    np.testing.assert_allclose(feats[:, 1:], _naive_coarse(L, index, f, m), rtol=1e-5, atol=1e-3)


def test_two_scales_come_in_the_order_given():
    L = _L((12, 10), seed=4)
    index = _all_pixels(L.shape)
    feats = features_at(L, index, FeatureSpec(1, scales=(4, 2), scale_patch_size=3))
    np.testing.assert_allclose(feats[:, 1:10], _naive_coarse(L, index, 4, 3), atol=1e-3)
    np.testing.assert_allclose(feats[:, 10:19], _naive_coarse(L, index, 2, 3), atol=1e-3)


def test_coarse_patch_sees_further_than_the_fine_patch():
    # A bright bar from 4 pixels right of a pixel: outside its 3x3 patch, inside a 3x3 at 1/4.
    L = np.zeros((8, 16), np.float32)
    L[:, 10:] = 100.0
    feats = features_at(L, np.array([4 * 16 + 6]), FeatureSpec(3, scales=(4,), scale_patch_size=3))
    assert feats[0, :9].max() == 0.0
    assert feats[0, 9:].max() > 20.0


@pytest.mark.parametrize("shape", [(5, 7), (1, 4), (4, 1), (1, 1)], ids=str)
def test_position_columns_are_relative_row_and_column(shape):
    H, W = shape
    index = _all_pixels(shape)
    feats = features_at(_L(shape), index, FeatureSpec(3, position=True))
    rows, cols = np.divmod(index, W)
    expect_r = rows / (H - 1) if H > 1 else np.zeros(len(index))
    expect_c = cols / (W - 1) if W > 1 else np.zeros(len(index))
    np.testing.assert_allclose(feats[:, -2], expect_r, rtol=1e-6)
    np.testing.assert_allclose(feats[:, -1], expect_c, rtol=1e-6)


def test_position_spans_zero_to_one_at_the_corners():
    feats = features_at(_L((4, 6)), np.array([0, 23]), FeatureSpec(1, position=True))
    np.testing.assert_array_equal(feats[:, 1:], [[0.0, 0.0], [1.0, 1.0]])


def test_image_stats_columns_are_the_mean_and_std_of_the_whole_image():
    L = _L((6, 9), seed=5)
    feats = features_at(L, np.array([0, 17, 53]), FeatureSpec(3, image_stats=True))
    L64 = L.astype(np.float64)
    np.testing.assert_allclose(feats[:, -2], L64.mean(), rtol=1e-5)
    np.testing.assert_allclose(feats[:, -1], L64.std(), rtol=1e-5)


def test_image_stats_come_after_position():
    L = _L((3, 3), seed=6)
    feats = features_at(L, np.array([8]), FeatureSpec(1, position=True, image_stats=True))
    np.testing.assert_allclose(feats[0, 1:], [1.0, 1.0, L.mean(), L.std()], rtol=1e-5)


def test_features_are_float32():
    spec = FeatureSpec(3, scales=(2,), scale_patch_size=3, position=True, image_stats=True)
    L = _L((5, 5)).astype(np.float64)
    assert features_at(L, np.array([3]), spec).dtype == np.float32
    assert all(b.dtype == np.float32 for _, _, b in image_features(L, spec))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(patch_size=4),
        dict(patch_size=0),
        dict(patch_size=3, scales=(2,), scale_patch_size=2),
        dict(patch_size=3, scales=(1,)),
        dict(patch_size=3, scales=(4, 0)),
        dict(patch_size=3, scales=(2.5,)),
    ],
    ids=["even patch", "zero patch", "even scale patch", "scale 1", "scale 0", "scale 2.5"],
)
def test_invalid_specs_raise(kwargs):
    with pytest.raises((SomcolorError, ValueError)):
        FeatureSpec(**kwargs)


def test_scale_patch_size_is_not_checked_without_scales():
    assert FeatureSpec(3, scale_patch_size=4).n_features == 9


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_features_at_fills_rows_of_a_larger_array_in_place(spec):
    rng = np.random.default_rng(2)
    L = rng.uniform(0, 100, (13, 17)).astype(np.float32)
    index = rng.choice(L.size, 20, replace=False)
    big = np.full((30, spec.n_features), -1.0, dtype=np.float32)
    got = features_at(L, index, spec, out=big[5:25])
    assert np.shares_memory(got, big)
    np.testing.assert_array_equal(big[5:25], features_at(L, index, spec))
    assert (big[:5] == -1).all() and (big[25:] == -1).all()


def test_features_at_refuses_an_out_of_the_wrong_shape():
    L = np.zeros((5, 5), np.float32)
    with pytest.raises(SomcolorError, match="out must be"):
        features_at(L, np.array([0, 1]), FeatureSpec(3), out=np.empty((2, 8), np.float32))
