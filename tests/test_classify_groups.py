"""Tests for PatchClassifier.fit(..., groups=...): early stopping on held-out whole groups."""

from __future__ import annotations

import numpy as np
import pytest

from somcolor.classify import PatchClassifier

#: A network that overfits noise within a few epochs (so held-out loss soon rises).
OVERFIT = dict(hidden_layer_sizes=(64,), learning_rate_init=0.01, max_iter=200)


def _noise(n_groups=10, per_group=40, seed=0):
    """Labels unrelated to the features: only memorising helps, so held-out loss soon rises."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_groups * per_group, 9))
    y = rng.integers(0, 3, n_groups * per_group)
    return X, y, np.repeat(np.arange(n_groups), per_group)


def _learnable(n_groups=10, per_group=40, seed=0):
    """Labels that are a function of the features: the class of the largest of three projections."""
    rng = np.random.default_rng(seed)
    X = rng.normal(50, 20, (n_groups * per_group, 9))
    y = np.array([0, 3, 7])[np.argmax((X - 50) @ rng.normal(size=(9, 3)), axis=1)]
    return X, y, np.repeat(np.arange(n_groups), per_group)


def _log_loss(clf, X, y):
    p = clf.predict_proba(X).astype(np.float64)
    col = np.searchsorted(clf.classes_, y)
    return float(-np.mean(np.log(np.maximum(p[np.arange(len(y)), col], 1e-12))))


def test_grouped_fit_records_a_held_out_loss_per_epoch():
    X, y, groups = _noise()
    clf = PatchClassifier(**OVERFIT, random_state=0).fit(X, y, groups=groups)
    curve = clf.validation_loss_curve_
    assert len(curve) == clf.n_iter_ <= clf.max_iter
    assert all(np.isfinite(curve)) and all(v > 0 for v in curve)
    assert len(clf.loss_curve_) == clf.n_iter_


def test_grouped_fit_stops_when_held_out_loss_stops_improving():
    X, y, groups = _noise()
    clf = PatchClassifier(**OVERFIT, n_iter_no_change=3, random_state=0).fit(X, y, groups=groups)
    curve = np.array(clf.validation_loss_curve_)
    assert clf.n_iter_ < clf.max_iter
    # The last improvement came exactly n_iter_no_change epochs before the end...
    best = len(curve) - 3 - 1
    assert curve[best] == curve.min() or curve.min() > curve[best] - 1e-4
    # ... and none of the epochs after it improved on it.
    assert np.all(curve[best + 1 :] >= curve[best] - 1e-4)


def test_grouped_fit_keeps_the_epoch_with_the_best_held_out_loss():
    X, y, groups = _noise()
    clf = PatchClassifier(**OVERFIT, random_state=0).fit(X, y, groups=groups)
    curve = np.array(clf.validation_loss_curve_)
    assert curve[-1] > curve.min() + 1e-3  # the last epoch is not the best one here
    # One group (10% of 10) was held out; the kept network scores exactly the best loss on it.
    per_group = [_log_loss(clf, X[groups == g], y[groups == g]) for g in np.unique(groups)]
    gaps = np.abs(np.array(per_group) - curve.min())
    assert gaps.min() < 1e-4
    assert np.all(np.abs(np.array(per_group) - curve[-1]) > 1e-4)


def _group_labelled(n_groups=10, per_group=40, seed=1):
    """Each group (image) is a tight cluster with its own label: seen groups are easy to
    predict, an unseen group is not."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_groups, 9)) * 3
    labels = rng.permutation(np.arange(n_groups) % 3)
    groups = np.repeat(np.arange(n_groups), per_group)
    X = centres[groups] + 0.1 * rng.normal(size=(len(groups), 9))
    return X, labels[groups], groups


def test_held_out_groups_are_whole_groups():
    X, y, groups = _group_labelled()
    by_group = PatchClassifier(**OVERFIT, random_state=0).fit(X, y, groups=groups)
    # Holding out single samples of seen groups flatters the network: held-out loss -> 0 ...
    by_sample = PatchClassifier(**OVERFIT, random_state=0).fit(X, y, groups=np.arange(len(y)))
    assert min(by_sample.validation_loss_curve_) < 0.05
    # ... while a held-out whole group stays hard, so training stops early.
    assert min(by_group.validation_loss_curve_) > 0.3
    assert by_group.n_iter_ < by_sample.n_iter_


def test_grouped_fit_is_deterministic_under_random_state():
    X, y, groups = _noise()
    a = PatchClassifier(**OVERFIT, random_state=5).fit(X, y, groups=groups)
    b = PatchClassifier(**OVERFIT, random_state=5).fit(X, y, groups=groups)
    assert a.validation_loss_curve_ == b.validation_loss_curve_
    for Wa, Wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_array_equal(Wa, Wb)
    c = PatchClassifier(**OVERFIT, random_state=6).fit(X, y, groups=groups)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((400, 1)), np.zeros(401)])
def test_groups_of_the_wrong_shape_raise(bad):
    X, y, _ = _noise()
    with pytest.raises(ValueError, match="groups must have shape"):
        PatchClassifier(**OVERFIT, random_state=0).fit(X, y, groups=bad)


@pytest.mark.parametrize("n_groups", [1, 2, 4])
def test_fewer_than_five_groups_fall_back_to_the_ordinary_split(n_groups):
    X, y, groups = _learnable(n_groups=n_groups, per_group=400 // n_groups)
    grouped = PatchClassifier(**OVERFIT, random_state=0).fit(X, y, groups=groups)
    plain = PatchClassifier(**OVERFIT, random_state=0).fit(X, y)
    assert not hasattr(grouped, "validation_loss_curve_")
    np.testing.assert_array_equal(grouped.coefs_[0], plain.coefs_[0])
    assert grouped.n_iter_ == plain.n_iter_


def test_five_groups_are_enough_for_the_grouped_split():
    # Five groups is the documented minimum; 10% of 5 rounds to 0, yet one group must be held out.
    X, y, groups = _noise(n_groups=5, per_group=80)
    clf = PatchClassifier(**OVERFIT, random_state=0).fit(X, y, groups=groups)
    assert hasattr(clf, "validation_loss_curve_")


@pytest.mark.parametrize("n_groups", [6, 14, 15])
def test_grouped_split_is_used_from_six_groups(n_groups):
    X, y, groups = _noise(n_groups=n_groups, per_group=400 // n_groups)
    clf = PatchClassifier(**OVERFIT, random_state=0).fit(X, y, groups=groups)
    assert len(clf.validation_loss_curve_) == clf.n_iter_


def test_refit_without_usable_groups_drops_the_old_validation_curve():
    X, y, groups = _noise()
    clf = PatchClassifier(**OVERFIT, random_state=0).fit(X, y, groups=groups)
    assert hasattr(clf, "validation_loss_curve_")
    clf.fit(X, y, groups=groups % 2)  # two groups: the ordinary path
    assert not hasattr(clf, "validation_loss_curve_")


def test_groups_are_ignored_without_early_stopping():
    X, y, groups = _learnable()
    kw = dict(OVERFIT, max_iter=20, early_stopping=False, random_state=0)
    grouped = PatchClassifier(**kw).fit(X, y, groups=groups)
    plain = PatchClassifier(**kw).fit(X, y)
    assert not hasattr(grouped, "validation_loss_curve_")
    assert grouped.n_iter_ == plain.n_iter_ == 20
    np.testing.assert_array_equal(grouped.coefs_[0], plain.coefs_[0])


def test_grouped_predictions_are_valid_probabilities_over_the_classes():
    X, y, groups = _learnable()
    clf = PatchClassifier(**OVERFIT, random_state=0).fit(X, y, groups=groups)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and proba.dtype == np.float32
    assert np.all(proba >= 0) and np.all(proba <= 1)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert clf.classes_.tolist() == [0, 3, 7]
    assert np.mean(clf.predict(X) == y) > 0.8  # it learned, not just stopped


def test_grouped_fit_accepts_sample_weights():
    X, y, groups = _learnable()
    w = np.where(y == 7, 5.0, 1.0)
    clf = PatchClassifier(**OVERFIT, random_state=0).fit(X, y, sample_weight=w, groups=groups)
    plain = PatchClassifier(**OVERFIT, random_state=0).fit(X, y, groups=groups)
    assert hasattr(clf, "validation_loss_curve_")
    assert not np.array_equal(clf.coefs_[0], plain.coefs_[0])


def test_a_class_seen_only_in_held_out_groups_still_gets_a_column():
    X, y, groups = _noise()
    y = y.copy()
    y[groups == 9] = 5  # only group 9 has class 5; it may be the held-out group
    for seed in range(4):
        clf = PatchClassifier(**OVERFIT, random_state=seed).fit(X, y, groups=groups)
        assert clf.classes_.tolist() == [0, 1, 2, 5]
        assert clf.predict_proba(X[:3]).shape == (3, 4)


# ---------------------------------------------------------------- chunked epochs (big data)
def _fit(X, y, groups, **kw):
    params = dict(
        hidden_layer_sizes=(16,),
        learning_rate_init=0.01,
        batch_size=50,
        max_iter=30,
        random_state=0,
    )
    return PatchClassifier(**dict(params, **kw)).fit(X, y, groups=groups)


def test_chunked_epochs_learn_what_whole_epochs_learn(monkeypatch):
    """Past FIT_CHUNK_ROWS training rows an epoch goes through in shuffled chunks; the
    network still learns a learnable rule (held-out accuracy well above chance, 1/3)."""
    import somcolor.classify as classify

    X, y, groups = _learnable(n_groups=25, per_group=100)
    test = groups >= 20  # five groups seen by neither network
    X, y, groups, X_test, y_test = X[~test], y[~test], groups[~test], X[test], y[test]
    whole = _fit(X, y, groups)
    monkeypatch.setattr(classify, "FIT_CHUNK_ROWS", 300)  # 1800 training rows: 6 chunks
    chunked = _fit(X, y, groups)
    acc_whole = np.mean(whole.predict(X_test) == y_test)
    acc_chunked = np.mean(chunked.predict(X_test) == y_test)
    assert acc_chunked > 0.8 and abs(acc_chunked - acc_whole) < 0.1
    # Another network than the one of whole epochs (the batches differ), and deterministic.
    assert not np.array_equal(chunked.coefs_[0], whole.coefs_[0])
    again = _fit(X, y, groups)
    assert all(np.array_equal(a, b) for a, b in zip(again.coefs_, chunked.coefs_, strict=True))


def test_chunked_epochs_leave_the_input_unmodified_and_apply_weights(monkeypatch):
    import somcolor.classify as classify

    monkeypatch.setattr(classify, "FIT_CHUNK_ROWS", 128)
    X, y, groups = _learnable(n_groups=10, per_group=60)
    X = X.astype(np.float32)
    before = X.copy()
    # Weight 0 on every sample of class 7: the network never learns to predict it.
    weights = np.where(y == 7, 0.0, 1.0)
    clf = PatchClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, batch_size=50)
    clf.set_params(max_iter=30, random_state=0).fit(X, y, groups=groups, sample_weight=weights)
    np.testing.assert_array_equal(X, before)
    assert np.mean(clf.predict(X) == 7) < 0.02 < np.mean(y == 7)


def test_one_chunk_is_the_whole_epoch(monkeypatch):
    """With the training rows inside one chunk, training is what it always was: a chunk
    limit far above the data gives the bit-identical network."""
    import somcolor.classify as classify

    X, y, groups = _learnable(n_groups=10, per_group=60)
    first = _fit(X, y, groups)
    monkeypatch.setattr(classify, "FIT_CHUNK_ROWS", 540)  # exactly the 540 training rows
    second = _fit(X, y, groups)
    assert all(np.array_equal(a, b) for a, b in zip(first.coefs_, second.coefs_, strict=True))
