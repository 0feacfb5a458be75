"""Tests for somcolor.patches: the numba patch kernels against their naive twins."""

import naive
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from somcolor.exceptions import SomcolorError
from somcolor.patches import (
    _column_map,
    check_patch_size,
    image_patches,
    patches_at,
    sample_patches,
    sample_positions,
)

# Odd and even sizes, single pixels, single rows and columns.
SHAPES = [(1, 1), (1, 6), (6, 1), (2, 3), (5, 5), (4, 6), (7, 4)]
# Patch size 1, ordinary sizes, and sizes larger than most of the images above.
SIZES = [1, 3, 5, 9, 15]


def make_L(shape, dtype=np.float64, seed=0):
    return (np.random.default_rng(seed).random(shape) * 100).astype(dtype)


# --- patches_at ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", SIZES)
@pytest.mark.parametrize("shape", SHAPES)
def test_patches_at_matches_naive_at_every_pixel(shape, k, dtype):
    L = make_L(shape, dtype)
    index = np.arange(L.size)
    got = patches_at(L, index, k)
    assert got.dtype == np.float32 and got.shape == (L.size, k * k)
    np.testing.assert_array_equal(got, naive.patches_at(L, index, k))


def test_patches_at_reflects_symmetrically_at_the_corner():
    L = np.arange(9, dtype=np.float32).reshape(3, 3)
    # Top-left corner: rows (0, 0, 1) and columns (0, 0, 1) of L.
    assert patches_at(L, [0], 3).reshape(3, 3).tolist() == [[0, 0, 1], [0, 0, 1], [3, 3, 4]]
    # Bottom-right corner: rows (1, 2, 2) and columns (1, 2, 2).
    assert patches_at(L, [8], 3).reshape(3, 3).tolist() == [[4, 5, 5], [7, 8, 8], [7, 8, 8]]


def test_patch_larger_than_image_repeats_the_reflection():
    L = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    # Columns around pixel 0 with h = 3: c b a | a b c | c  ->  3 2 1 | 1 2 3 | 3.
    assert patches_at(L, [0], 7)[0, 21:28].tolist() == [3, 2, 1, 1, 2, 3, 3]


def test_patch_centre_is_the_pixel_itself():
    L = make_L((5, 7), np.float32)
    p = patches_at(L, np.arange(L.size), 5)
    np.testing.assert_array_equal(p[:, 12], L.ravel())


def test_patch_size_1_is_the_pixel_value():
    L = make_L((4, 3))
    np.testing.assert_array_equal(
        patches_at(L, np.arange(12), 1)[:, 0], L.astype(np.float32).ravel()
    )


def test_constant_image_gives_constant_patches():
    p = image_patches(np.full((3, 4), 42.0), 7)
    assert np.all(p == 42.0)


def test_patches_at_keeps_index_order_and_repeats():
    L = make_L((4, 4))
    index = np.array([15, 0, 15, 5])
    np.testing.assert_array_equal(patches_at(L, index, 3), naive.patches_at(L, index, 3))


def test_patches_at_with_no_indices_is_empty():
    assert patches_at(make_L((3, 3)), np.array([], dtype=np.int64), 3).shape == (0, 9)


@pytest.mark.parametrize("bad", [-1, 9, 100])
def test_patches_at_rejects_out_of_range_indices(bad):
    with pytest.raises(SomcolorError, match="out of range"):
        patches_at(make_L((3, 3)), np.array([0, bad]), 3)


# --- image_patches ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", SIZES)
@pytest.mark.parametrize("shape", SHAPES)
def test_image_patches_matches_naive_on_whole_image(shape, k, dtype):
    L = make_L(shape, dtype)
    got = image_patches(L, k)
    assert got.dtype == np.float32 and got.shape == (L.size, k * k)
    np.testing.assert_array_equal(got, naive.image_patches(L, k))


@pytest.mark.parametrize("rows", [(0, 1), (6, 7), (2, 5), (0, 7), (3, 3)])
@pytest.mark.parametrize("k", [1, 3, 11])
def test_image_patches_matches_naive_on_row_ranges(rows, k):
    L = make_L((7, 5))
    got = image_patches(L, k, *rows)
    assert got.shape == ((rows[1] - rows[0]) * 5, k * k)
    np.testing.assert_array_equal(got, naive.image_patches(L, k, *rows))


def test_row_blocks_join_into_the_whole_image():
    L = make_L((9, 4))
    blocks = [image_patches(L, 5, start, min(start + 2, 9)) for start in range(0, 9, 2)]
    np.testing.assert_array_equal(np.concatenate(blocks), image_patches(L, 5))


def test_image_patches_equals_patches_at_every_pixel():
    L = make_L((6, 5))
    np.testing.assert_array_equal(image_patches(L, 3), patches_at(L, np.arange(30), 3))


@pytest.mark.parametrize("rows", [(-1, 3), (0, 8), (4, 2), (8, 8)])
def test_image_patches_rejects_rows_outside_the_image(rows):
    with pytest.raises(SomcolorError, match="row range"):
        image_patches(make_L((7, 5)), 3, *rows)


@given(
    L=st.tuples(st.integers(1, 9), st.integers(1, 9)).flatmap(
        lambda shape: arrays(
            np.float32, shape, elements=st.floats(-1e3, 1e3, allow_nan=False, width=32)
        )
    ),
    k=st.sampled_from([1, 3, 5, 7, 9, 13, 21]),
    data=st.data(),
)
@settings(max_examples=60, deadline=None)
def test_image_patches_equals_naive_for_any_small_image(L, k, data):
    H = L.shape[0]
    start = data.draw(st.integers(0, H), label="row_start")
    stop = data.draw(st.integers(start, H), label="row_stop")
    np.testing.assert_array_equal(
        image_patches(L, k, start, stop), naive.image_patches(L, k, start, stop)
    )


# --- sample_patches -----------------------------------------------------------------------


def test_sample_patches_is_deterministic_under_a_seed():
    L = make_L((20, 30))
    p1, i1 = sample_patches(L, 5, 100, np.random.default_rng(42))
    p2, i2 = sample_patches(L, 5, 100, np.random.default_rng(42))
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(p1, p2)
    _, i3 = sample_patches(L, 5, 100, np.random.default_rng(43))
    assert not np.array_equal(i1, i3)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (6, 8)])
@pytest.mark.parametrize("k", [1, 3, 13])
def test_sample_patches_matches_naive_at_its_positions(shape, k):
    L = make_L(shape)
    patches, index = sample_patches(L, k, 10, np.random.default_rng(0))
    assert len(index) == min(10, L.size)
    assert len(np.unique(index)) == len(index)  # distinct positions
    assert index.min() >= 0 and index.max() < L.size
    np.testing.assert_array_equal(patches, naive.patches_at(L, index, k))


def test_sample_patches_returns_every_pixel_when_n_exceeds_them():
    L = make_L((4, 5))
    patches, index = sample_patches(L, 3, 1000, np.random.default_rng(0))
    assert patches.shape == (20, 9)
    np.testing.assert_array_equal(np.sort(index), np.arange(20))


def test_sample_positions_with_n_zero_is_empty():
    assert sample_positions((4, 5), 0, np.random.default_rng(0)).shape == (0,)


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 21, np.int64(5), np.int32(7)])
def test_check_patch_size_accepts_positive_odd_integers(k):
    assert check_patch_size(k) == int(k)
    assert type(check_patch_size(k)) is int


@pytest.mark.parametrize("k", [0, 2, 4, -1, -3, True, False, np.bool_(True), 3.0, "3", None])
def test_check_patch_size_rejects_even_negative_bool_and_non_integers(k):
    with pytest.raises(SomcolorError, match="positive odd integer"):
        check_patch_size(k)


@pytest.mark.parametrize("k", [2, -3, True])
def test_kernels_reject_bad_patch_sizes(k):
    L = make_L((3, 3))
    with pytest.raises(SomcolorError):
        patches_at(L, [0], k)
    with pytest.raises(SomcolorError):
        image_patches(L, k)


@pytest.mark.parametrize(
    "L",
    [np.zeros(5), np.zeros((2, 2, 2)), np.zeros((0, 3)), np.zeros((3, 0))],
    ids=["1d", "3d", "no-rows", "no-cols"],
)
def test_kernels_reject_non_2d_or_empty_luminance(L):
    with pytest.raises(SomcolorError, match="2-D"):
        image_patches(L, 3)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.bool_])
def test_kernels_reject_non_float_luminance(dtype):
    with pytest.raises(SomcolorError, match="float"):
        image_patches(np.zeros((3, 3), dtype=dtype), 3)


@pytest.mark.parametrize("W", [1, 2, 3, 7])
@pytest.mark.parametrize("k", [1, 3, 5, 9])
def test_column_map_is_numpys_symmetric_padding(W, k):
    h = k // 2
    padded = np.pad(np.arange(W), h, mode="symmetric")
    expected = np.array([padded[c : c + k] for c in range(W)])
    np.testing.assert_array_equal(_column_map(W, k), expected)
