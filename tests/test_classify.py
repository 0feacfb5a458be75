"""Tests for somcolor.classify: the patch -> code MLP and its own forward pass."""

import warnings

import naive
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.neural_network import MLPClassifier
from sklearn.utils import check_random_state
from sklearn.utils.estimator_checks import parametrize_with_checks

from somcolor import classify
from somcolor.classify import PatchClassifier, forward

SMALL = dict(hidden_layer_sizes=(8,), max_iter=30, learning_rate_init=0.01)


def make_data(classes, n=300, n_features=9, seed=0):
    """Patches whose label is the class of the largest of a few linear projections."""
    rng = np.random.default_rng(seed)
    X = rng.normal(50, 20, (n, n_features))
    proj = rng.normal(size=(n_features, len(classes)))
    y = np.asarray(classes)[np.argmax((X - 50) @ proj, axis=1)]
    return X, y


@pytest.fixture(scope="module")
def three_codes():
    """Codes {0, 3, 7}: not contiguous, as when a SOM code never occurs in training."""
    X, y = make_data([0, 3, 7])
    clf = PatchClassifier(**SMALL, random_state=0).fit(X, y)
    return clf, X, y


# --- the forward pass ---------------------------------------------------------------------


def test_predict_proba_equals_naive_forward(three_codes):
    clf, X, _ = three_codes
    X = X[:40]
    expected = naive.forward(X, clf.mean_, clf.scale_, clf.coefs_, clf.intercepts_, "softmax")
    np.testing.assert_allclose(clf.predict_proba(X), expected, atol=1e-5)


def test_predict_proba_equals_sklearn_mlp_trained_identically():
    X, y = make_data([0, 3, 7])
    clf = PatchClassifier(**SMALL, early_stopping=False, random_state=0).fit(X, y)
    # The same network, trained by scikit-learn on the same standardized data with the
    # seed PatchClassifier derives from its random_state.
    mean, scale = X.mean(axis=0), X.std(axis=0)
    mlp = MLPClassifier(
        hidden_layer_sizes=(8,),
        learning_rate_init=0.01,
        max_iter=30,
        batch_size=200,
        alpha=1e-4,
        random_state=check_random_state(0).randint(2**31 - 1),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit((X - mean) / scale, y)
    for ours, theirs in zip(clf.coefs_, mlp.coefs_, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(clf.classes_, mlp.classes_)
    np.testing.assert_allclose(
        clf.predict_proba(X), mlp.predict_proba((X - mean) / scale), atol=1e-5
    )


def test_forward_works_in_float32(three_codes):
    clf, X, _ = three_codes
    p = forward(X, clf.mean_, clf.scale_, clf.coefs_, clf.intercepts_, "softmax")
    assert p.dtype == np.float32
    assert clf.predict_proba(X).dtype == np.float32
    assert all(W.dtype == np.float32 for W in clf.coefs_ + clf.intercepts_)


def test_forward_softmax_is_stable_for_huge_logits():
    coefs = [np.array([[1000.0, -1000.0, 0.0]], dtype=np.float32)]
    intercepts = [np.zeros(3, dtype=np.float32)]
    p = forward(np.array([[1.0]]), np.float32(0), np.float32(1), coefs, intercepts, "softmax")
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p, [[1.0, 0.0, 0.0]], atol=1e-6)


def test_rows_sum_to_one(three_codes):
    clf, X, _ = three_codes
    p = clf.predict_proba(X)
    assert p.min() >= 0.0 and p.max() <= 1.0
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_chunked_predict_proba_equals_one_chunk(three_codes, monkeypatch):
    clf, X, _ = three_codes
    whole = clf.predict_proba(X)
    monkeypatch.setattr(classify, "CHUNK_ROWS", 7)
    # Equal up to float32 rounding: BLAS may sum in another order for other block sizes.
    np.testing.assert_allclose(clf.predict_proba(X), whole, rtol=0, atol=1e-6)


# --- classes_ ---------------------------------------------------------------------------


def test_columns_follow_classes_for_non_contiguous_codes(three_codes):
    clf, X, y = three_codes
    np.testing.assert_array_equal(clf.classes_, [0, 3, 7])
    p = clf.predict_proba(X)
    assert p.shape == (len(X), 3)  # no columns for codes 1, 2, 4, 5, 6 never seen
    pred = clf.predict(X)
    assert set(np.unique(pred)) <= {0, 3, 7}
    np.testing.assert_array_equal(pred, clf.classes_[np.argmax(p, axis=1)])
    assert np.mean(pred == y) > 0.8  # it did learn the rule


def test_binary_case_uses_a_logistic_output():
    X, y = make_data([2, 9], seed=1)
    clf = PatchClassifier(**SMALL, random_state=0).fit(X, y)
    assert clf.out_activation_ == "logistic"
    assert clf.coefs_[-1].shape[1] == 1
    p = clf.predict_proba(X)
    assert p.shape == (len(X), 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    expected = naive.forward(X[:30], clf.mean_, clf.scale_, clf.coefs_, clf.intercepts_, "logistic")
    np.testing.assert_allclose(p[:30], expected, atol=1e-5)
    # Column 1 is the probability of classes_[1] = 9.
    assert np.mean(clf.predict(X) == y) > 0.8
    np.testing.assert_array_equal(clf.predict(X) == 9, p[:, 1] > 0.5)


def test_single_class_raises_value_error():
    X = np.random.default_rng(0).normal(size=(20, 9))
    with pytest.raises(ValueError, match="at least 2 classes"):
        PatchClassifier(**SMALL).fit(X, np.full(20, 4))


def test_predict_before_fit_raises():
    with pytest.raises(NotFittedError):
        PatchClassifier().predict(np.zeros((2, 9)))
    with pytest.raises(NotFittedError):
        PatchClassifier().predict_proba(np.zeros((2, 9)))


def test_predict_rejects_wrong_number_of_features(three_codes):
    clf, _, _ = three_codes
    with pytest.raises(ValueError, match="features"):
        clf.predict_proba(np.zeros((2, 5)))


# --- randomness and standardization -------------------------------------------------------


def test_same_seed_gives_same_network():
    X, y = make_data([0, 1, 2])
    a = PatchClassifier(**SMALL, random_state=5).fit(X, y)
    b = PatchClassifier(**SMALL, random_state=5).fit(X, y)
    for wa, wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_array_equal(wa, wb)
    c = PatchClassifier(**SMALL, random_state=6).fit(X, y)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def test_inputs_are_standardized_and_constant_features_kept_finite():
    X, y = make_data([0, 1])
    X[:, 4] = 17.0  # a flat patch position
    clf = PatchClassifier(**SMALL, random_state=0).fit(X, y)
    np.testing.assert_allclose(clf.mean_, X.mean(axis=0), rtol=1e-6)
    assert clf.scale_[4] == 1.0
    assert np.all(np.isfinite(clf.predict_proba(X)))


def test_tiny_data_trains_without_early_stopping_split():
    X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    clf = PatchClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, [1, 1, 2, 2])
    assert clf.predict_proba(X).shape == (4, 2)
    assert clf.n_iter_ >= 1 and len(clf.loss_curve_) == clf.n_iter_


# --- scikit-learn's estimator contract ----------------------------------------------------


def _expected_failed_checks(estimator):
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            "Adam on shuffled mini-batches (and the early-stopping split) sees a repeated "
            "row in other batches than a weighted one, so the two fits agree only in "
            "expectation; scikit-learn checks MLPClassifier only with solver='lbfgs'"
        ),
    }


@parametrize_with_checks(
    [
        PatchClassifier(
            hidden_layer_sizes=(10,), max_iter=200, learning_rate_init=0.01, random_state=0
        )
    ],
    expected_failed_checks=_expected_failed_checks,
    xfail_strict=True,
)
def test_sklearn_estimator_contract(estimator, check):
    check(estimator)
