"""Patch classification: an MLP learns luminance patch -> chroma code.

:class:`PatchClassifier` is a scikit-learn classifier: inputs are standardized,
then scikit-learn's :class:`~sklearn.neural_network.MLPClassifier` (ReLU, Adam,
learning rate 0.001 as in the paper) is trained. After fitting, the network is kept
only as plain arrays (``coefs_``, ``intercepts_``) and ``predict_proba`` runs its
own float32 forward pass over them, so a model saved as arrays predicts exactly
as the trained one did, with no pickle.

Probability columns follow ``classes_``: the network has a column only for the
codes it saw in training, and :mod:`somcolor.decode` maps columns back to codes
through ``classes_``.
"""

from __future__ import annotations

import numbers
import warnings

import numba as nb
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .color import threads_for

#: Rows pushed through the network at once by ``predict_proba``.
CHUNK_ROWS = 65536

#: Rows per tile of the forward kernel: its activations (features x rows, float32)
#: stay in the core's L1/L2 cache while every layer is applied to them.
_TILE = 128


@nb.njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def _dense(src, n_in, weights, biases, w_at, b_at, n_out, relu, dst):
    """``dst[:n_out] = act(W.T @ src[:n_in] + b)`` on a tile stored features x rows.

    The loops over the tile's rows are innermost, contiguous and of constant length,
    so they vectorize; four inputs are accumulated per pass over the outputs.
    """
    for j in range(n_out):
        o = dst[j]
        bias = biases[b_at + j]
        for t in range(_TILE):
            o[t] = bias
        k = 0
        while k + 4 <= n_in:
            w0 = weights[w_at + k * n_out + j]
            w1 = weights[w_at + (k + 1) * n_out + j]
            w2 = weights[w_at + (k + 2) * n_out + j]
            w3 = weights[w_at + (k + 3) * n_out + j]
            s0, s1, s2, s3 = src[k], src[k + 1], src[k + 2], src[k + 3]
            for t in range(_TILE):
                o[t] += w0 * s0[t] + w1 * s1[t] + w2 * s2[t] + w3 * s3[t]
            k += 4
        while k < n_in:
            w = weights[w_at + k * n_out + j]
            s = src[k]
            for t in range(_TILE):
                o[t] += w * s[t]
            k += 1
        if relu:
            for t in range(_TILE):
                o[t] = max(o[t], np.float32(0))


@nb.njit(cache=True, nogil=True, parallel=True, fastmath={"contract"}, error_model="numpy")
def _forward(X, mean, scale, weights, biases, sizes, logistic, out):
    """The fused float32 forward pass, a tile of rows at a time on every core.

    ``weights``/``biases`` hold the layers one after the other (each ``W`` row-major),
    ``sizes`` the layer widths from the input to the output. Inputs assumed validated.
    """
    n, n_features = X.shape
    n_layers = sizes.shape[0] - 1
    width = sizes.max()
    for tile in nb.prange((n + _TILE - 1) // _TILE):
        r0 = tile * _TILE
        m = min(n, r0 + _TILE) - r0
        a = np.zeros((width, _TILE), dtype=np.float32)
        b = np.zeros((width, _TILE), dtype=np.float32)
        for t in range(m):
            for k in range(n_features):
                a[k, t] = (np.float32(X[r0 + t, k]) - mean[k]) / scale[k]
        w_at = 0
        b_at = 0
        for layer in range(n_layers):
            n_in, n_out = sizes[layer], sizes[layer + 1]
            relu = layer < n_layers - 1
            if layer % 2 == 0:
                _dense(a, n_in, weights, biases, w_at, b_at, n_out, relu, b)
            else:
                _dense(b, n_in, weights, biases, w_at, b_at, n_out, relu, a)
            w_at += n_in * n_out
            b_at += n_out
        h = b if n_layers % 2 == 1 else a
        n_out = sizes[n_layers]
        for t in range(m):
            row = out[r0 + t]
            if logistic:
                p = np.float32(1) / (np.float32(1) + np.exp(-h[0, t]))
                row[0] = np.float32(1) - p
                row[1] = p
                continue
            top = h[0, t]
            for j in range(1, n_out):
                top = max(top, h[j, t])
            total = np.float32(0)
            for j in range(n_out):
                e = np.exp(h[j, t] - top)
                row[j] = e
                total += e
            for j in range(n_out):
                row[j] /= total


def forward(X, mean, scale, coefs, intercepts, out_activation, out=None) -> np.ndarray:
    """Class probabilities of a ReLU MLP for rows of ``X`` (inputs assumed validated).

    Standardizes ``X`` with ``mean``/``scale``, applies each layer with ReLU between
    layers, and ``softmax`` (or ``logistic`` for a single output unit, returned as
    two columns) at the end. Computes in float32, in one fused numba kernel over
    tiles of rows (no full-size intermediate activations), on every core; equal to
    the layer-by-layer numpy computation up to float32 rounding (the sums run in
    another order). Writes into ``out`` when given.
    """
    if out_activation not in ("softmax", "logistic"):
        raise ValueError(f"out_activation must be 'softmax' or 'logistic', got {out_activation!r}")
    X = np.asarray(X)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float32)
    X = np.ascontiguousarray(X)
    sizes = np.array([X.shape[1]] + [W.shape[1] for W in coefs], dtype=np.int64)
    n_classes = 2 if out_activation == "logistic" else int(sizes[-1])
    if out is None:
        out = np.empty((len(X), n_classes), dtype=np.float32)
    # Work items for threads_for: about one per 500 multiply-adds of a row.
    with threads_for(len(X) * max(1, int(sizes[:-1] @ sizes[1:]) // 500)):
        _forward(
            X,
            np.ascontiguousarray(np.broadcast_to(mean, X.shape[1:]), dtype=np.float32),
            np.ascontiguousarray(np.broadcast_to(scale, X.shape[1:]), dtype=np.float32),
            np.concatenate([np.asarray(W, dtype=np.float32).ravel() for W in coefs]),
            np.concatenate([np.asarray(b, dtype=np.float32).ravel() for b in intercepts]),
            sizes,
            out_activation == "logistic",
            out,
        )
    return out


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
        the lowest held-out log-loss; without, scikit-learn's random split of samples
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
        scale = np.where(scale > 0, scale, 1.0)
        Xs = (X - mean) / scale
        if groups is not None and self.early_stopping:
            held = self._held_out_groups(groups, len(y), rng)
            if held is not None:
                mlp = self._fit_grouped(Xs, y, sample_weight, held, classes, rng)
                return self._keep(mlp, mean, scale)
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

    def _fit_grouped(self, X, y, sample_weight, held, classes, rng) -> MLPClassifier:
        """Epochs of Adam on the kept groups; keep the weights with the best held-out loss.

        A random split of pixels from the same images flatters a network that has
        memorized its training images; a split by image does not.
        """
        train = ~held
        w_train = None if sample_weight is None else np.asarray(sample_weight)[train]
        X_val, y_val = X[held], y[held]
        mlp = self._mlp(
            batch_size=min(self.batch_size, int(train.sum())),
            random_state=rng.randint(2**31 - 1),
        )
        col = {c: i for i, c in enumerate(classes)}
        y_val_idx = np.array([col[c] for c in y_val])
        best, best_loss, stale, losses = None, np.inf, 0, []
        for _ in range(self.max_iter):
            mlp.partial_fit(X[train], y[train], sample_weight=w_train, classes=classes)
            p = mlp.predict_proba(X_val)
            loss = float(-np.mean(np.log(np.maximum(p[np.arange(len(p)), y_val_idx], 1e-12))))
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
