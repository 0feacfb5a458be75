"""Tests for somcolor.quantize: the SOM chroma codebook."""

import naive
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from somcolor.params import parse_shape
from somcolor.quantize import SOMQuantizer, nearest_code

FAST = dict(n_iterations=300, max_samples=1000)


@pytest.fixture
def uv():
    """Chroma-like samples: mean 40, spread 30 on u and 3 on v."""
    rng = np.random.default_rng(7)
    return np.column_stack([rng.normal(40, 30, 600), rng.normal(40, 3, 600)])


@pytest.fixture
def fitted(uv):
    return SOMQuantizer((3, 3), random_state=0, **FAST).fit(uv)


# --- determinism ------------------------------------------------------------------------


def test_same_seed_gives_same_codebook(uv):
    a = SOMQuantizer((3, 3), random_state=3, **FAST).fit(uv)
    b = SOMQuantizer((3, 3), random_state=3, **FAST).fit(uv)
    np.testing.assert_array_equal(a.codebook_, b.codebook_)
    np.testing.assert_array_equal(a.labels_, b.labels_)


def test_different_seeds_give_different_codebooks(uv):
    a = SOMQuantizer((3, 3), random_state=1, **FAST).fit(uv)
    b = SOMQuantizer((3, 3), random_state=2, **FAST).fit(uv)
    assert not np.array_equal(a.codebook_, b.codebook_)


def test_subsample_is_seeded(uv):
    # Fewer samples than rows: the subsample itself must follow the seed.
    kw = dict(n_iterations=200, max_samples=50)
    a = SOMQuantizer((2, 2), random_state=5, **kw).fit(uv)
    b = SOMQuantizer((2, 2), random_state=5, **kw).fit(uv)
    np.testing.assert_array_equal(a.mean_, b.mean_)
    assert not np.allclose(a.mean_, uv.mean(axis=0))  # it really is a subsample
    np.testing.assert_array_equal(a.codebook_, b.codebook_)


# --- units --------------------------------------------------------------------------------


def test_codebook_is_in_input_units_not_z_scores(fitted, uv):
    cb = fitted.codebook_
    assert cb.shape == (9, 2)
    assert np.all(cb >= uv.min(axis=0)) and np.all(cb <= uv.max(axis=0))
    np.testing.assert_allclose(cb.mean(axis=0), uv.mean(axis=0), atol=10)
    # The u codes spread over tens of units, as the data does (z-scores would stay near 0..2).
    assert np.ptp(cb[:, 0]) > 20


def test_standardization_is_recorded(fitted, uv):
    np.testing.assert_allclose(fitted.mean_, uv.mean(axis=0))
    np.testing.assert_allclose(fitted.scale_, uv.std(axis=0))


def test_constant_feature_gets_unit_scale():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=100), np.full(100, 5.0)])
    q = SOMQuantizer((2, 2), random_state=0, n_iterations=100).fit(X)
    assert q.scale_[1] == 1.0
    np.testing.assert_allclose(q.codebook_[:, 1], 5.0)


def test_two_clusters_are_found_with_a_narrow_neighbourhood():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-20, 1, (200, 2)), rng.normal(30, 1, (200, 2))])
    q = SOMQuantizer((1, 2), sigma=0.5, n_iterations=2000, random_state=0).fit(X)
    np.testing.assert_allclose(np.sort(q.codebook_[:, 0]), [-20, 30], atol=0.5)


def test_neighbourhood_pulls_adjacent_codes_together():
    # With the default sigma (1 map unit) each code also learns from its neighbour's
    # samples, so the two codes sit inside the cluster centres, not on them.
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-20, 1, (200, 2)), rng.normal(30, 1, (200, 2))])
    q = SOMQuantizer((1, 2), n_iterations=2000, random_state=0).fit(X)
    lo, hi = np.sort(q.codebook_[:, 0])
    assert -20 < lo < -15 and 25 < hi < 30


# --- predict, nearest_code ----------------------------------------------------------------


def test_predict_equals_naive_nearest_code(fitted):
    X = np.random.default_rng(1).normal(40, 40, (777, 2))
    np.testing.assert_array_equal(fitted.predict(X), naive.nearest_code(X, fitted.codebook_))


def test_labels_are_the_predictions_on_the_training_data(fitted, uv):
    np.testing.assert_array_equal(fitted.labels_, fitted.predict(uv))


@pytest.mark.parametrize("chunk_rows", [1, 7, 100, 1000])
def test_nearest_code_chunking_matches_one_chunk(chunk_rows):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(503, 3))
    codebook = rng.normal(size=(25, 3))
    whole = nearest_code(X, codebook, chunk_rows=len(X))
    np.testing.assert_array_equal(nearest_code(X, codebook, chunk_rows=chunk_rows), whole)
    np.testing.assert_array_equal(whole, naive.nearest_code(X, codebook))


def test_nearest_code_accepts_float32_and_empty_input():
    codebook = np.array([[0.0, 0.0], [5.0, 5.0]])
    X = np.array([[4.0, 4.5], [0.5, -1.0]], dtype=np.float32)
    assert nearest_code(X, codebook).tolist() == [1, 0]
    assert nearest_code(np.empty((0, 2)), codebook).shape == (0,)


def test_inverse_transform_of_predict_gives_codebook_rows(fitted):
    X = np.random.default_rng(3).normal(40, 30, (50, 2))
    codes = fitted.predict(X)
    np.testing.assert_array_equal(fitted.inverse_transform(codes), fitted.codebook_[codes])
    np.testing.assert_array_equal(fitted.inverse_transform(np.arange(9)), fitted.codebook_)
    # Each code is its own nearest code.
    np.testing.assert_array_equal(fitted.predict(fitted.codebook_), np.arange(9))


def test_predict_before_fit_raises():
    with pytest.raises(NotFittedError):
        SOMQuantizer().predict(np.zeros((2, 2)))


def test_predict_rejects_wrong_number_of_features(fitted):
    with pytest.raises(ValueError, match="features"):
        fitted.predict(np.zeros((4, 3)))


# --- quantization_error -------------------------------------------------------------------


def _hand_made_quantizer():
    q = SOMQuantizer((1, 2), n_iterations=10, random_state=0).fit(np.eye(2))
    q.codebook_ = np.array([[0.0, 0.0], [10.0, 0.0]])
    q.mean_ = np.array([0.0, 0.0])
    q.scale_ = np.array([2.0, 1.0])
    return q


def test_quantization_error_raw_is_mean_distance_in_input_units():
    q = _hand_made_quantizer()
    # (1, 0) is 1 from code 0; (7, 0) is 3 from code 1: mean 2.
    assert q.quantization_error(np.array([[1.0, 0.0], [7.0, 0.0]])) == pytest.approx(2.0)


def test_quantization_error_standardized_is_in_z_units():
    q = _hand_made_quantizer()
    # z: (0.5, 0) and (3.5, 0) against codes (0, 0) and (5, 0): distances 0.5, 1.5.
    err = q.quantization_error(np.array([[1.0, 0.0], [7.0, 0.0]]), standardized=True)
    assert err == pytest.approx(1.0)


def test_quantization_error_matches_naive_computation(fitted):
    X = np.random.default_rng(4).normal(40, 30, (300, 2))
    cb = fitted.codebook_
    raw = np.linalg.norm(X - cb[naive.nearest_code(X, cb)], axis=1).mean()
    z, cz = (X - fitted.mean_) / fitted.scale_, (cb - fitted.mean_) / fitted.scale_
    std = np.linalg.norm(z - cz[naive.nearest_code(z, cz)], axis=1).mean()
    assert fitted.quantization_error(X) == pytest.approx(raw)
    assert fitted.quantization_error(X, standardized=True) == pytest.approx(std)
    assert raw != pytest.approx(std)


def test_bigger_maps_quantize_more_finely(uv):
    small = SOMQuantizer((2, 2), random_state=0, **FAST).fit(uv)
    big = SOMQuantizer((6, 6), random_state=0, **FAST).fit(uv)
    assert big.quantization_error(uv) < small.quantization_error(uv)


# --- map shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 3), (5, 5), (10, 10), (20, 20), [4, 2]])
def test_paper_map_sizes_fit(uv, shape):
    q = SOMQuantizer(shape, random_state=0, n_iterations=200, max_samples=400).fit(uv)
    n = shape[0] * shape[1]
    assert q.n_codes == n
    assert q.codebook_.shape == (n, 2)
    assert np.all(np.isfinite(q.codebook_))
    assert q.labels_.min() >= 0 and q.labels_.max() < n


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (-1, 2), (3,), (3, 3, 3), (2.5, 3), ("3", 3)])
def test_bad_som_shape_raises(uv, shape):
    with pytest.raises(ValueError, match="som_shape"):
        SOMQuantizer(shape, n_iterations=10).fit(uv)


def test_som_shape_as_string_is_rejected(uv):
    with pytest.raises(ValueError, match="som_shape"):
        SOMQuantizer("3x3", n_iterations=10).fit(uv)


@pytest.mark.parametrize(("text", "shape"), [("10x10", (10, 10)), ("3X5", (3, 5)), ("2×7", (2, 7))])
def test_parse_shape_reads_rows_x_cols(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["10", "axb", "0x3", "3x-1", "2x3x4", ""])
def test_parse_shape_rejects_bad_text(text):
    with pytest.raises(ValueError, match="map size"):
        parse_shape(text)


# --- scikit-learn's estimator contract ----------------------------------------------------


def _expected_failed_checks(estimator):
    return {
        "check_clustering": (
            "a SOM keeps map units between clusters to preserve the map's topology; such "
            "units may win no sample, so labels_ need not be consecutive integers"
        ),
    }


@parametrize_with_checks(
    [SOMQuantizer(n_iterations=50, random_state=0)],
    expected_failed_checks=_expected_failed_checks,
    xfail_strict=True,
)
def test_sklearn_estimator_contract(estimator, check):
    check(estimator)
