"""Chroma quantization: a self-organizing map (minisom) turns UV into a small codebook.

:class:`SOMQuantizer` is a scikit-learn estimator. ``fit`` trains a ``rows x cols``
SOM on standardized UV samples; ``codebook_`` holds the trained codes in UV units;
``predict`` maps UV values to the index of their nearest code (chunked, so a
million pixels against 400 codes never builds a large distance matrix) and
``inverse_transform`` maps code indices back to UV.

minisom trains one Python-level step per sample, so the map is trained on a
seeded random subsample of at most ``max_samples`` rows, for ``n_iterations``
steps drawn from it in random order. With the defaults (20 000 rows, 20 000
steps) a 20x20 map trains in a few seconds; the codebook is then exact on any
amount of data at prediction time.
"""

from __future__ import annotations

import numbers

import numba as nb
import numpy as np
from minisom import MiniSom
from sklearn.base import BaseEstimator, ClusterMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._threads import threads_for
from .params import parse_shape  # noqa: F401 - its old home; experiments import it here

#: Rows of ``X`` handed to the nearest-code kernel at once in :func:`nearest_code`.
CHUNK_ROWS = 1 << 16


#: Rows compared with the codebook together in :func:`_nearest_code`.
_BLOCK = 128


@nb.njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _nearest_code(X, codebook, out):
    """Index of the nearest code of each row of ``X``, written to ``out``.

    Squared distances are summed in feature order in float64 and the first code wins
    a tie, as a Python loop over the codewords would do. A block of rows is compared
    with one code at a time, so the loops over rows vectorize.
    """
    n, n_features = X.shape
    n_codes = codebook.shape[0]
    for block in nb.prange((n + _BLOCK - 1) // _BLOCK):
        r0 = block * _BLOCK
        m = min(n, r0 + _BLOCK) - r0
        x = np.zeros((n_features, _BLOCK))
        for r in range(m):
            for f in range(n_features):
                x[f, r] = X[r0 + r, f]
        best = np.full(_BLOCK, np.inf)
        best_code = np.zeros(_BLOCK, dtype=np.intp)
        if n_features == 2:  # chroma: one fused pass per code
            x0, x1 = x[0], x[1]
            for c in range(n_codes):
                c0, c1 = codebook[c, 0], codebook[c, 1]
                for r in range(_BLOCK):
                    diff0 = x0[r] - c0
                    diff1 = x1[r] - c1
                    d = diff0 * diff0 + diff1 * diff1
                    closer = d < best[r]
                    best[r] = d if closer else best[r]
                    best_code[r] = c if closer else best_code[r]
        else:
            d = np.empty(_BLOCK)
            for c in range(n_codes):
                d[:] = 0.0
                for f in range(n_features):
                    code = codebook[c, f]
                    for r in range(_BLOCK):
                        diff = x[f, r] - code
                        d[r] += diff * diff
                for r in range(_BLOCK):
                    closer = d[r] < best[r]
                    best[r] = d[r] if closer else best[r]
                    best_code[r] = c if closer else best_code[r]
        out[r0 : r0 + m] = best_code[:m]


def nearest_code(X: np.ndarray, codebook: np.ndarray, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """Index of the nearest row of ``codebook`` for each row of ``X`` (Euclidean).

    Inputs assumed validated (2-D, same number of columns). A numba kernel compares
    each row with every code in float64 on both cores and builds no distance matrix.
    Rows go to it ``chunk_rows`` at a time, so an ``X`` that needs converting (not
    float32/float64, or not contiguous) is converted one chunk at a time: memory stays
    at the output plus one chunk. Ties go to the first code.

    >>> nearest_code(np.array([[0.0, 0.0], [9.0, 9.0]]), np.array([[10.0, 10.0], [1.0, 0.0]]))
    array([1, 0])
    """
    codebook = np.ascontiguousarray(codebook, dtype=np.float64)
    out = np.empty(len(X), dtype=np.intp)
    step = max(1, int(chunk_rows))
    for start in range(0, len(X), step):
        x = X[start : start + step]
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float64)
        with threads_for(len(x) * max(1, len(codebook) // 50)):
            _nearest_code(np.ascontiguousarray(x), codebook, out[start : start + len(x)])
    return out


class SOMQuantizer(ClusterMixin, BaseEstimator):
    """Quantize chroma (or any low-dimensional data) with a self-organizing map.

    Parameters
    ----------
    som_shape : tuple of int, default=(3, 3)
        Rows and columns of the map; ``rows * cols`` codes. The paper used 3x3,
        5x5, 10x10 and 20x20.
    sigma : float or None, default=None
        Initial neighbourhood radius in map units; ``None`` means
        ``max(1, max(som_shape) / 2)``. It shrinks linearly to 1 during training
        (``sigma_decay_function="linear_decay_to_one"`` in minisom).
    learning_rate : float, default=0.5
        Initial learning rate; decays towards zero (``inverse_decay_to_zero``).
    n_iterations : int, default=20000
        Training steps (one sample each).
    max_samples : int, default=20000
        Size of the seeded random subsample the map is trained on.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsample, the order of training samples and minisom.

    Attributes
    ----------
    codebook_ : ndarray of shape (n_codes, n_features)
        The codes in the input's units (UV), row-major over the map.
    mean_, scale_ : ndarray of shape (n_features,)
        Standardization applied before training (the SOM sees z-scores).
    labels_ : ndarray of shape (n_samples,)
        Code index of each training row.
    n_features_in_ : int

    Notes
    -----
    The SOM is trained on z-scored data, so the map spreads over both chroma axes
    evenly whatever their ranges; the codebook is mapped back to input units.
    Distances in ``predict`` are in input units.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-20, 1, (200, 2)), rng.normal(30, 1, (200, 2))])
    >>> q = SOMQuantizer(som_shape=(1, 2), sigma=0.5, n_iterations=2000, random_state=0).fit(X)
    >>> sorted(np.round(q.codebook_[:, 0]).tolist())
    [-20.0, 30.0]
    """

    _parameter_constraints: dict = {
        "som_shape": [tuple, list],
        "sigma": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_iterations": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_samples": [Interval(numbers.Integral, 1, None, closed="left")],
        "neighborhood_function": [StrOptions({"gaussian", "bubble", "triangle", "mexican_hat"})],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        som_shape=(3, 3),
        *,
        sigma=None,
        learning_rate=0.5,
        n_iterations=20000,
        max_samples=20000,
        neighborhood_function="gaussian",
        random_state=None,
    ):
        self.som_shape = som_shape
        self.sigma = sigma
        self.learning_rate = learning_rate
        self.n_iterations = n_iterations
        self.max_samples = max_samples
        self.neighborhood_function = neighborhood_function
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the map on (a seeded subsample of) ``X``, shape ``(n_samples, n_features)``."""
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        rows, cols = self._check_shape()
        rng = check_random_state(self.random_state)
        n = len(X)
        take = rng.choice(n, size=min(n, self.max_samples), replace=False)
        sample = X[np.sort(take)].astype(np.float64)

        self.mean_ = sample.mean(axis=0)
        scale = sample.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        z = (sample - self.mean_) / self.scale_

        sigma = self.sigma if self.sigma is not None else max(1.0, max(rows, cols) / 2)
        som = MiniSom(
            rows,
            cols,
            X.shape[1],
            sigma=float(sigma),
            learning_rate=float(self.learning_rate),
            decay_function="inverse_decay_to_zero",
            sigma_decay_function="linear_decay_to_one" if sigma > 1 else "asymptotic_decay",
            neighborhood_function=self.neighborhood_function,
            random_seed=int(rng.randint(2**31 - 1)),
        )
        if X.shape[1] >= 2 and rows > 1 and cols > 1 and np.linalg.matrix_rank(z) >= 2:
            som.pca_weights_init(z)
        else:
            som.random_weights_init(z)
        som.train(z, self.n_iterations, random_order=True)

        weights = som.get_weights().reshape(rows * cols, X.shape[1])
        self.codebook_ = weights * self.scale_ + self.mean_
        self.labels_ = nearest_code(X, self.codebook_)
        return self

    def _check_shape(self) -> tuple[int, int]:
        shape = tuple(self.som_shape)
        if len(shape) != 2 or not all(isinstance(s, numbers.Integral) and s >= 1 for s in shape):
            raise ValueError(f"som_shape must be two positive integers (rows, cols), got {shape!r}")
        return int(shape[0]), int(shape[1])

    @property
    def n_codes(self) -> int:
        rows, cols = self._check_shape()
        return rows * cols

    def predict(self, X):
        """Index of the nearest code for each row of ``X``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return nearest_code(X, self.codebook_)

    def inverse_transform(self, codes):
        """The code vectors (UV) of code indices: the inverse of ``predict``."""
        check_is_fitted(self)
        return self.codebook_[np.asarray(codes, dtype=np.intp)]

    def quantization_error(self, X, *, standardized=False) -> float:
        """Mean distance from each row of ``X`` to its nearest code.

        With ``standardized=True`` the distance is measured in per-feature z-score
        units of the training sample (the units of the paper's Table I).
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        X = np.asarray(X, dtype=np.float64)
        codebook = self.codebook_
        if standardized:
            X = (X - self.mean_) / self.scale_
            codebook = (codebook - self.mean_) / self.scale_
        diff = X - codebook[nearest_code(X, codebook)]
        return float(np.linalg.norm(diff, axis=1).mean())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def rebalance_weights(codes, codebook, *, lam: float = 0.5, sigma: float = 5.0) -> np.ndarray:
    """Per-sample weights that lift rare colors (Zhang, Isola & Efros 2016, eq. 3-4).

    The code frequencies are smoothed over the codebook with a Gaussian of width
    ``sigma`` (UV units), mixed with the uniform distribution (weight ``lam``) and
    inverted; the weights are normalised so that their mean over the samples is 1.

    >>> codebook = np.array([[0.0, 0.0], [100.0, 0.0]])
    >>> w = rebalance_weights(np.array([0, 0, 0, 1]), codebook)
    >>> round(float(w.mean()), 6), bool(w[3] > w[0])
    (1.0, True)
    """
    codes = np.asarray(codes, dtype=np.intp)
    codebook = np.asarray(codebook, dtype=np.float64)
    n_codes = len(codebook)
    prior = np.bincount(codes, minlength=n_codes).astype(np.float64)
    prior /= prior.sum()
    d2 = ((codebook[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)
    smoothed = np.exp(-d2 / (2 * sigma**2)) @ prior
    smoothed /= smoothed.sum()
    per_code = 1.0 / ((1 - lam) * smoothed + lam / n_codes)
    weights = per_code[codes]
    return weights / weights.mean()
