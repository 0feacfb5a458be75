"""Patch classification: an MLP learns luminance patch -> chroma code.

:class:`PatchClassifier` is a scikit-learn classifier: inputs are standardized,
then scikit-learn's :class:`~sklearn.neural_network.MLPClassifier` (ReLU, Adam,
learning rate 0.001 as in the paper) is trained. After fitting, the network is kept
only as plain arrays (``coefs_``, ``intercepts_``) and ``predict_proba`` runs its
own float32 forward pass over them (:func:`somcolor.network.forward`), so a model
saved as arrays predicts exactly as the trained one did, with no pickle.

Probability columns follow ``classes_``: the network has a column only for the
codes it saw in training, and :mod:`somcolor.decode` maps columns back to codes
through ``classes_``.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

# The forward pass lives in .network, which inference imports without scikit-learn.
from .network import forward

#: Rows pushed through the network at once by ``predict_proba``.
CHUNK_ROWS = 65536
#: Training rows given to scikit-learn at once. Its ``partial_fit`` one-hot encodes the
#: labels as int64 (8 bytes x classes a row: 840 MB for this many rows and 100 codes), so a
#: larger training set goes through each epoch in shuffled chunks of at most this many
#: rows, standardized chunk by chunk: memory stays the features plus one chunk.
FIT_CHUNK_ROWS = 1 << 20


class PatchClassifier(ClassifierMixin, BaseEstimator):
    """Standardize features, then a ReLU MLP; probabilities over ``classes_``.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(50, 50)
    learning_rate_init : float, default=0.001
        Adam's step size (the paper's learning rate).
    alpha : float, default=1e-4
        L2 penalty.
    batch_size : int, default=200
    max_iter : int, default=50
        Maximum epochs.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the samples and stop when their score
        has not improved for ``n_iter_no_change`` epochs.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=5
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialization, batch order and the validation split.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coefs_, intercepts_ : list of float32 ndarrays
        The trained network.
    mean_, scale_ : float32 ndarray of shape (n_features,)
        Input standardization.
    out_activation_ : {"softmax", "logistic"}
    n_iter_ : int
        Epochs run.
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [tuple, list],
        "learning_rate_init": [Interval(numbers.Real, 0, None, closed="neither")],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(50, 50),
        *,
        learning_rate_init=0.001,
        alpha=1e-4,
        batch_size=200,
        max_iter=50,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=5,
        random_state=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.learning_rate_init = learning_rate_init
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, groups=None):
        """Train on patches ``X`` (n_samples, n_features) and code labels ``y``.

        With ``groups`` (e.g. the image each sample comes from) early stopping holds
        out whole groups, ``validation_fraction`` of them, and keeps the epoch with
        the lowest held-out log-loss (weighted by ``sample_weight`` like the training
        loss); without, scikit-learn's random split of samples
        (by accuracy) is used.
        """
        self.__dict__.pop("validation_loss_curve_", None)
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"PatchClassifier needs at least 2 classes in y, got 1 class ({classes[0]!r})"
            )
        rng = check_random_state(self.random_state)
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0).astype(X.dtype)
        if groups is not None and self.early_stopping:
            held = self._held_out_groups(groups, len(y), rng)
            if held is not None:
                mlp = self._fit_grouped(X, y, sample_weight, held, classes, rng, mean, scale)
                return self._keep(mlp, mean, scale)
        Xs = (X - mean) / scale
        # Early stopping needs a validation split with at least 2 samples; skip it on tiny data.
        early = bool(self.early_stopping and len(X) * self.validation_fraction >= 2)
        n_train = len(X) - int(np.ceil(len(X) * self.validation_fraction)) if early else len(X)
        mlp = self._mlp(
            batch_size=min(self.batch_size, n_train),
            max_iter=self.max_iter,
            early_stopping=early,
            random_state=rng.randint(2**31 - 1),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp.fit(Xs, y, sample_weight=sample_weight)
        self.loss_curve_ = list(map(float, mlp.loss_curve_))
        return self._keep(mlp, mean, scale)

    def _mlp(self, **kw) -> MLPClassifier:
        return MLPClassifier(
            hidden_layer_sizes=tuple(int(h) for h in self.hidden_layer_sizes),
            activation="relu",
            solver="adam",
            alpha=self.alpha,
            learning_rate_init=self.learning_rate_init,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            **kw,
        )

    def _held_out_groups(self, groups, n_samples, rng) -> np.ndarray | None:
        """A boolean mask of the samples in held-out groups, or None if too few groups."""
        groups = np.asarray(groups)
        if groups.shape != (n_samples,):
            raise ValueError(f"groups must have shape ({n_samples},), got {groups.shape}")
        unique = np.unique(groups)
        if len(unique) < 5:
            return None
        n_held = max(1, round(len(unique) * self.validation_fraction))
        held = rng.permutation(unique)[:n_held]
        return np.isin(groups, held)

    def _fit_grouped(self, X, y, sample_weight, held, classes, rng, mean, scale):
        """Epochs of Adam on the kept groups; keep the weights with the best held-out loss.

        A random split of pixels from the same images flatters a network that has
        memorized its training images; a split by image does not. ``X`` is not yet
        standardized: each chunk of rows is, as it goes in (:data:`FIT_CHUNK_ROWS`).
        """
        train = np.flatnonzero(~held)
        w_val = None if sample_weight is None else np.asarray(sample_weight)[held]
        X_val, y_val = (X[held] - mean) / scale, y[held]
        mlp = self._mlp(
            batch_size=min(self.batch_size, len(train)),
            random_state=rng.randint(2**31 - 1),
        )
        n_chunks = -(-len(train) // FIT_CHUNK_ROWS)
        if n_chunks == 1:  # one standardized copy, fed whole every epoch
            X_train = (X[train] - mean) / scale
        col = {c: i for i, c in enumerate(classes)}
        y_val_idx = np.array([col[c] for c in y_val])
        best, best_loss, stale, losses = None, np.inf, 0, []
        for _ in range(self.max_iter):
            if n_chunks == 1:
                self._partial_fit(mlp, X_train, y, sample_weight, train, classes)
            else:
                for rows in np.array_split(train[rng.permutation(len(train))], n_chunks):
                    self._partial_fit(
                        mlp, (X[rows] - mean) / scale, y, sample_weight, rows, classes
                    )
            p = mlp.predict_proba(X_val)
            # The held-out loss weighs samples as training does (e.g. rebalanced colors).
            nll = -np.log(np.maximum(p[np.arange(len(p)), y_val_idx], 1e-12))
            loss = float(np.average(nll, weights=w_val))
            losses.append(loss)
            if loss < best_loss - 1e-4:
                best_loss, stale = loss, 0
                best = ([W.copy() for W in mlp.coefs_], [b.copy() for b in mlp.intercepts_])
            else:
                stale += 1
                if stale >= self.n_iter_no_change:
                    break
        mlp.coefs_, mlp.intercepts_ = best
        mlp.n_iter_ = len(losses)
        self.loss_curve_ = list(map(float, mlp.loss_curve_))
        self.validation_loss_curve_ = losses
        return mlp

    @staticmethod
    def _partial_fit(mlp, X_rows, y, sample_weight, rows, classes):
        """One pass of ``mlp`` over standardized ``X_rows``, the rows ``rows`` of the data."""
        w = None if sample_weight is None else np.asarray(sample_weight)[rows]
        mlp.partial_fit(X_rows, y[rows], sample_weight=w, classes=classes)

    def _keep(self, mlp: MLPClassifier, mean, scale):
        """Keep the trained network as plain float32 arrays."""
        self.classes_ = mlp.classes_
        self.coefs_ = [np.ascontiguousarray(W, dtype=np.float32) for W in mlp.coefs_]
        self.intercepts_ = [np.asarray(b, dtype=np.float32) for b in mlp.intercepts_]
        self.mean_ = mean.astype(np.float32)
        self.scale_ = scale.astype(np.float32)
        self.out_activation_ = mlp.out_activation_
        self.n_iter_ = int(mlp.n_iter_)
        return self

    def predict_proba(self, X):
        """Probability of each class in ``classes_`` for each row of ``X`` (float32)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        out = np.empty((len(X), len(self.classes_)), dtype=np.float32)
        for start in range(0, len(X), CHUNK_ROWS):
            stop = start + CHUNK_ROWS
            forward(
                X[start:stop],
                self.mean_,
                self.scale_,
                self.coefs_,
                self.intercepts_,
                self.out_activation_,
                out=out[start:stop],
            )
        return out

    def predict(self, X):
        """Most probable class of each row."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
