"""Colour from a reference photo: a trained model adapted to one or a few colour photos.

A user has a colour photo of the same place or object (or one hand-coloured frame of a
film) and wants a gray photo coloured like it. :func:`adapt` returns a *new*
:class:`~somcolor.predict.Predictor` fitted to the references, starting from a trained
model (the bundled ``default``); the model given is not changed.

The method (defaults in :class:`AdaptParams`, checked with ``experiments/choose_reference.py``
on the "halves" protocol -- the left half of a photo in colour is the reference, its right
half in gray the target -- on the BSDS500 ``val`` split; the match's with
``experiments/reference_eval.py --split val``, halves and unrelated references):

1. **sample** each reference at the model's working size, as
   :meth:`Colorizer.build_dataset <somcolor.pipeline.Colorizer.build_dataset>` does: the
   same features (L patch, coarse scales, position);
2. **a palette from the reference's chroma** (``codebook``): by default ("refine") the
   model's codes are moved towards the reference's own UV by a few Lloyd (k-means)
   steps from where they are (:func:`refine_palette`; a code no pixel is nearest to
   keeps its UV), so each network column keeps its meaning but the output takes the
   reference's colours; "som" trains a SOM on the reference's UV from the model's codes
   instead (:func:`som_palette`), "keep" keeps the model's palette. The label of a pixel
   is the code of that palette nearest to its UV; the adapted model carries the new
   codebook (it is saved in its model file);
3. **hold out** whole spatial blocks of each reference (a grid of ``blocks x blocks``,
   ``holdout`` of them drawn at random) for early stopping;
4. **fine-tune** the network *warm-started* from the model's weights: a few epochs of
   mini-batch Adam on the cross-entropy (a small numpy trainer over the network's
   arrays, :func:`_train`), with an L2 pull towards the starting weights; the epoch with
   the lowest held-out loss is kept, the starting weights included, so a reference whose
   held-out blocks the start already predicts best leaves the network as it was;
5. optionally a **prior**: the reference's code histogram (smoothed), raised to
   ``prior``, multiplied into the probabilities (folded into the output layer's biases:
   ``softmax(z + prior * log p)`` is ``softmax(z) * p ** prior``, renormalised).
6. a **reference match** (:class:`ReferenceMatch`, on by default): the adapted model keeps
   the model it started from and reference pixels as that model sees them, and uses its
   adapted colours where a photo looks like the references, the starting model's elsewhere
   (composed in :class:`somcolor.model.Model`'s prior; saved in its model file).

Everything random comes from one ``random_state``: the same seed gives bit-identical
arrays. :func:`read_reference` reads and checks a reference file (a colour photo, not a
gray one, not a video, within the pixel limit).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numba as nb
import numpy as np
from threadpoolctl import threadpool_limits

from ._threads import threads_for
from .color import rgb_to_luv, split_luv, to_float_rgb
from .exceptions import ImageReadError, SomcolorError
from .features import features_at
from .io import MAX_PIXELS, read_image
from .resize import downsample, working_shape

__all__ = ["AdaptParams", "ReferenceMatch", "adapt", "check_reference", "read_reference"]

log = logging.getLogger(__name__)

#: A reference is gray when fewer than this fraction of its pixels have a chroma
#: (CIELUV ``sqrt(u**2 + v**2)``) of at least :data:`GRAY_CHROMA`.
GRAY_FRACTION = 0.01
#: The chroma below which a pixel counts as gray (JPEG noise on a gray photo stays under 2).
GRAY_CHROMA = 4.0
#: The choices of :attr:`AdaptParams.codebook`.
CODEBOOKS = ("refine", "keep", "som")
#: Steps of the "som" palette's training, and its neighbourhood radius (in codes).
SOM_ITERATIONS = 5000
SOM_SIGMA = 1.0


@dataclass(frozen=True)
class AdaptParams:
    """How :func:`adapt` fits a model to reference photos (the defaults are the chosen
    method; see the module docstring)."""

    #: Training pixels drawn per reference at the working size (all of them if fewer).
    pixels: int = 20000
    #: Epochs of Adam at most (the starting weights count as epoch 0).
    epochs: int = 8
    #: Stop after this many epochs without a better held-out loss.
    patience: int = 2
    #: Adam's step size.
    learning_rate: float = 1e-3
    #: Mini-batch size.
    batch_size: int = 256
    #: L2 pull of every weight towards its starting value (per sample, as scikit-learn's alpha).
    anchor: float = 1e-3
    #: Each reference is cut into ``blocks x blocks`` spatial blocks ...
    blocks: int = 4
    #: ... and this fraction of them (at least one) is held out for early stopping.
    holdout: float = 0.2
    #: Exponent of the reference's code histogram multiplied into the probabilities (0: none).
    prior: float = 0.0
    #: The palette of the adapted model: "refine" (the model's codes moved to the
    #: reference's own chroma by :func:`refine_palette`), "keep" (the model's codes as
    #: they are) or "som" (a SOM trained on the reference's UV from the model's codes,
    #: :func:`som_palette`).
    codebook: str = "refine"
    #: Lloyd (k-means) steps of "refine".
    refine_steps: int = 5
    #: Where the photo coloured does not look like the references, keep the starting
    #: model's own colours (:class:`ReferenceMatch`): a pixel's likeness to the references
    #: is a Gaussian of the Hellinger distance between the starting model's code
    #: probabilities at it and at the nearest of ``match_pixels`` reference pixels (width
    #: ``match_sigma``; 0: no match, the adapted colours everywhere) and of their L
    #: difference (``match_l_sigma``).
    match_sigma: float = 0.15
    match_l_sigma: float = 10.0
    match_pixels: int = 1024
    #: The photo as a whole: where its pixels' mean likeness to the references is at least
    #: ``match_high`` the adapted colours are used everywhere, at most ``match_low`` only
    #: by each pixel's own likeness, linearly between.
    match_low: float = 0.25
    match_high: float = 0.4

    def check(self) -> AdaptParams:
        """Refuse values out of range, in one line saying what was expected."""
        if self.codebook not in CODEBOOKS:
            raise SomcolorError(
                f"adapt: codebook must be one of {list(CODEBOOKS)}, got {self.codebook!r}"
            )
        ints = {
            "pixels": 1,
            "epochs": 0,
            "patience": 1,
            "batch_size": 1,
            "blocks": 2,
            "refine_steps": 0,
            "match_pixels": 1,
        }
        for name, low in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise SomcolorError(f"adapt: {name} must be an integer >= {low}, got {value!r}")
        for name in ("learning_rate", "anchor", "prior", "match_sigma"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise SomcolorError(f"adapt: {name} must be a number >= 0, got {value!r}")
        value = self.match_l_sigma
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise SomcolorError(f"adapt: match_l_sigma must be a number > 0, got {value!r}")
        low, high = self.match_low, self.match_high
        if not (
            all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
            and 0 <= low < high <= 1
        ):
            raise SomcolorError(
                f"adapt: expected 0 <= match_low < match_high <= 1, got {low!r} and {high!r}"
            )
        if not 0 < self.holdout < 1:
            raise SomcolorError(f"adapt: holdout must be in (0, 1), got {self.holdout!r}")
        return self


# ---------------------------------------------------------------------------- references
def check_reference(image, name: str = "reference") -> np.ndarray:
    """A reference photo as RGB uint8 ``(H, W, 3)`` (alpha dropped), checked.

    Raises
    ------
    SomcolorError
        If it is not an RGB(A) uint8 array, has more than ``MAX_PIXELS`` pixels, or is
        gray (no colour), in one line naming it.
    """
    arr = np.asarray(image)
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 2)):
        raise SomcolorError(f"{name} is gray (no colour): a reference must be a colour photo")
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
        raise SomcolorError(
            f"{name}: got a {arr.dtype} array of shape {arr.shape}, expected RGB uint8 (H, W, 3)"
        )
    if arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise SomcolorError(
            f"{name}: image too large: {arr.shape[1]}x{arr.shape[0]} pixels, limit is {MAX_PIXELS}"
        )
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise SomcolorError(
            f"{name}: got a {arr.shape[1]}x{arr.shape[0]} image, expected 2x2 or more"
        )
    rgb = arr[..., :3]
    if _colour_fraction(rgb) < GRAY_FRACTION:
        raise SomcolorError(f"{name} is gray (no colour): a reference must be a colour photo")
    return np.ascontiguousarray(rgb)


def _colour_fraction(rgb: np.ndarray) -> float:
    """The fraction of pixels whose CIELUV chroma is at least :data:`GRAY_CHROMA`
    (on at most about 250 000 pixels, evenly strided)."""
    step = max(1, int(math.sqrt(rgb.shape[0] * rgb.shape[1] / 250_000)))
    sample = rgb[::step, ::step]
    if not np.any(sample.max(axis=-1) != sample.min(axis=-1)):
        return 0.0
    _, uv = split_luv(rgb_to_luv(to_float_rgb(sample)).astype(np.float32))
    chroma = np.hypot(uv[..., 0], uv[..., 1])
    return float(np.mean(chroma >= GRAY_CHROMA))


def read_reference(path, *, max_pixels: int = MAX_PIXELS, is_video=None) -> np.ndarray:
    """Read a reference photo file -> validated RGB uint8 ``(H, W, 3)``.

    ``is_video`` (e.g. :func:`somcolor.video.is_video`, which the CLI and the page pass)
    is asked about a file that does not read as an image, so that a video gets its own
    message; guidance imports no video layer.

    Raises
    ------
    SomcolorError
        One line naming the file: missing, unreadable, a video, larger than
        ``max_pixels``, or gray.
    """
    path = Path(path)
    try:
        image = read_image(path, max_pixels=max_pixels)
    except ImageReadError:
        if is_video is not None and _is_video(path, is_video):
            raise SomcolorError(
                f"{path} is a video: a reference must be a photo (save one frame as a PNG)"
            ) from None
        raise
    return check_reference(image, str(path))


def _is_video(path: Path, is_video) -> bool:
    """Whether ``path`` is a video (probed only once it failed to read as an image)."""
    try:
        return is_video(path)
    except SomcolorError:  # a video container without the video extra installed
        return True


def references_list(references) -> list:
    """One reference or a list of them (arrays or paths) as a non-empty list."""
    if isinstance(references, str | Path | np.ndarray):
        return [references]
    items = list(references)
    if not items:
        raise SomcolorError("no reference photos given, expected at least one")
    return items


def _as_rgb(item, index: int) -> tuple[np.ndarray, str]:
    if isinstance(item, str | Path):
        return read_reference(item), Path(item).name
    name = f"reference {index}"
    return check_reference(item, name), name


# ---------------------------------------------------------------------------- sampling
def _sample(predictor, images: list[np.ndarray], params: AdaptParams, rng: np.random.Generator):
    """Features, UV, a held-out mask and the L of pixels drawn from each reference at the
    model's working size; the held-out pixels are those in the drawn spatial blocks."""
    spec = predictor.feature_spec
    Xs, uvs, helds, Ls = [], [], [], []
    n_blocks = params.blocks * params.blocks
    n_held = max(1, round(params.holdout * n_blocks))
    for image in images:
        luv = rgb_to_luv(to_float_rgb(image)).astype(np.float32, copy=False)
        shape = working_shape(luv.shape[:2], predictor.work_size)
        if shape != luv.shape[:2]:
            luv = np.stack([downsample(luv[..., c], shape) for c in range(3)], axis=-1)
        L, uv = split_luv(luv)
        L = np.ascontiguousarray(L)
        H, W = L.shape
        size = H * W
        index = np.sort(rng.choice(size, size=min(params.pixels, size), replace=False))
        rows, cols = np.divmod(index, W)
        block = (rows * params.blocks // H) * params.blocks + cols * params.blocks // W
        held_blocks = rng.choice(n_blocks, size=n_held, replace=False)
        Xs.append(features_at(L, index, spec))
        uvs.append(uv.reshape(-1, 2)[index])
        helds.append(np.isin(block, held_blocks))
        Ls.append(L.ravel()[index])
    return np.concatenate(Xs), np.concatenate(uvs), np.concatenate(helds), np.concatenate(Ls)


def nearest_column(uv: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """The index of the row of ``palette`` (n_codes, 2) nearest to each UV row.

    >>> nearest_column(np.array([[0.0, 0.0], [9.0, 1.0]]), np.array([[10.0, 0], [0, 0]]))
    array([1, 0])
    """
    uv = np.asarray(uv, np.float64)
    d = (uv**2).sum(1)[:, None] - 2 * uv @ palette.T + (palette**2).sum(1)[None, :]
    return np.argmin(d, axis=1)


def refine_palette(uv: np.ndarray, palette: np.ndarray, steps: int) -> np.ndarray:
    """``palette`` (n_codes, 2) moved towards the chroma ``uv`` (n, 2) by ``steps``
    Lloyd (k-means) steps: each code goes to the mean UV of the pixels nearest to it;
    a code no pixel is nearest to stays where it is.

    >>> uv = np.array([[1.0, 0], [3, 0], [20, 2]])
    >>> refine_palette(uv, np.array([[0.0, 0], [10, 0], [-9, 9]]), 2)
    array([[ 2.,  0.],
           [20.,  2.],
           [-9.,  9.]])
    """
    palette = np.array(palette, dtype=np.float64)
    uv = np.asarray(uv, np.float64)
    for _ in range(steps):
        labels = nearest_column(uv, palette)
        counts = np.bincount(labels, minlength=len(palette))
        moved = counts > 0
        for c in range(2):
            sums = np.bincount(labels, weights=uv[:, c], minlength=len(palette))
            palette[moved, c] = sums[moved] / counts[moved]
    return palette


def som_palette(uv: np.ndarray, codebook: np.ndarray, shape: tuple[int, int], seed: int):
    """A SOM of ``shape`` (rows, cols) trained on the chroma ``uv`` (n, 2), its weights
    starting from ``codebook`` (rows * cols, 2), in units of the chroma's standard
    deviation; returns the trained codebook in UV."""
    from minisom import MiniSom  # training code, imported only here

    rows, cols = shape
    uv = np.asarray(uv, np.float64)
    mean = uv.mean(axis=0)
    scale = uv.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    som = MiniSom(
        rows,
        cols,
        2,
        sigma=SOM_SIGMA,
        learning_rate=0.5,
        decay_function="inverse_decay_to_zero",
        neighborhood_function="gaussian",
        random_seed=seed,
    )
    som._weights = ((codebook - mean) / scale).reshape(rows, cols, 2).copy()
    som.train((uv - mean) / scale, SOM_ITERATIONS, random_order=True)
    return som.get_weights().reshape(rows * cols, 2) * scale + mean


# ---------------------------------------------------------------------------- training
def _loss(X, y, coefs, intercepts) -> float:
    """Mean cross-entropy of the network on standardized rows ``X`` with labels ``y``."""
    z = X
    for i, (W, b) in enumerate(zip(coefs, intercepts, strict=True)):
        z = z @ W + b
        if i < len(coefs) - 1:
            np.maximum(z, 0, out=z)
    z -= z.max(axis=1, keepdims=True)
    logp = z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))
    return float(-logp.mean())


def _train(X, y, X_val, y_val, coefs, intercepts, params: AdaptParams, rng):
    """Mini-batch Adam on the softmax cross-entropy, from ``coefs``/``intercepts``
    (float32, not modified); returns the best weights by held-out loss and the curve.

    ``X`` and ``X_val`` are standardized float32 rows, ``y`` and ``y_val`` output columns.
    The L2 term pulls each weight towards its starting value. Deterministic for a given
    ``rng``.
    """
    start = [p.copy() for p in (*coefs, *intercepts)]
    params_ = [p.copy() for p in start]
    n_layers = len(coefs)
    m = [np.zeros_like(p) for p in params_]
    v = [np.zeros_like(p) for p in params_]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    lr, anchor = np.float32(params.learning_rate), np.float32(params.anchor)
    best_loss = _loss(X_val, y_val, params_[:n_layers], params_[n_layers:])
    best, curve, stale, step = [p.copy() for p in params_], [best_loss], 0, 0
    n = len(X)
    for _ in range(params.epochs):
        order = rng.permutation(n)
        for s in range(0, n, params.batch_size):
            batch = order[s : s + params.batch_size]
            grads = _gradients(X[batch], y[batch], params_, n_layers)
            step += 1
            c1, c2 = 1 - beta1**step, 1 - beta2**step
            for p, g, p0, mi, vi in zip(params_, grads, start, m, v, strict=True):
                g += anchor * (p - p0) * np.float32(len(batch) / n)
                mi *= beta1
                mi += (1 - beta1) * g
                vi *= beta2
                vi += (1 - beta2) * g * g
                p -= (lr / c1) * mi / (np.sqrt(vi / c2) + eps)
        loss = _loss(X_val, y_val, params_[:n_layers], params_[n_layers:])
        curve.append(loss)
        if loss < best_loss - 1e-4:
            best_loss, best, stale = loss, [p.copy() for p in params_], 0
        else:
            stale += 1
            if stale >= params.patience:
                break
    return best[:n_layers], best[n_layers:], curve


def _gradients(X, y, params_, n_layers):
    """Gradients of the mean cross-entropy of one batch, for weights then biases."""
    acts = [X]
    z = X
    for i in range(n_layers):
        z = z @ params_[i] + params_[n_layers + i]
        if i < n_layers - 1:
            np.maximum(z, 0, out=z)
        acts.append(z)
    z = acts[-1]
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    delta = p / np.float32(len(y))
    gW, gb = [None] * n_layers, [None] * n_layers
    for i in range(n_layers - 1, -1, -1):
        gW[i] = acts[i].T @ delta
        gb[i] = delta.sum(axis=0)
        if i:
            delta = (delta @ params_[i].T) * (acts[i] > 0)
    return [*gW, *gb]


# ---------------------------------------------------------------------------- the match
@dataclass
class ReferenceMatch:
    """Where a photo looks like the references an adapted model was fitted to.

    The adapted colours are right where the photo shows what the references show, and
    may be wrong elsewhere (a second tiger photo on brown ground turned the grass brown).
    A model carrying a match (:class:`~somcolor.model.Model`) blends, at every working
    pixel, its adapted chroma with the starting model's own by :meth:`weights`: the
    likeness of the pixel to the nearest of the reference pixels, as the starting model
    sees them (its code probabilities, compared by Hellinger distance, and L), so that a
    reference of another scene leaves the automatic colours.

    Attributes
    ----------
    base : Predictor
        The model adapted from; its colours are kept where nothing looks alike.
    root : float32 ndarray of shape (k, n_classes)
        Square roots of ``base``'s code probabilities at ``k`` reference pixels.
    L : float32 ndarray of shape (k,)
        Their luminance (0..100).
    sigma, l_sigma, low, high : float
        :attr:`AdaptParams.match_sigma`, :attr:`AdaptParams.match_l_sigma`,
        :attr:`AdaptParams.match_low` and :attr:`AdaptParams.match_high`.
    """

    base: object
    root: np.ndarray
    L: np.ndarray
    sigma: float
    l_sigma: float
    low: float = 0.25
    high: float = 0.4

    #: Working pixels compared with the references at once (bounds the memory).
    CHUNK = 4096

    @classmethod
    def of(cls, base, X: np.ndarray, L: np.ndarray, params: AdaptParams) -> ReferenceMatch:
        """The match of reference pixels with features ``X`` (raw, as sampled) and L
        ``L``: ``params.match_pixels`` of them, evenly spread (no random draw)."""
        k = min(len(X), params.match_pixels)
        pick = np.unique(np.linspace(0, len(X) - 1, k).round().astype(np.int64))
        proba = np.empty((len(pick), len(base.classes)), np.float32)
        base._forward(np.ascontiguousarray(X[pick], np.float32), proba)
        root = np.sqrt(np.maximum(proba, 0)).astype(np.float32)
        return cls(
            base,
            root,
            L[pick].astype(np.float32),
            params.match_sigma,
            params.match_l_sigma,
            params.match_low,
            params.match_high,
        )

    def weights(self, proba: np.ndarray, L: np.ndarray) -> np.ndarray:
        """The weight in 0..1 ``(n,)`` float32 of the adapted colours at pixels with
        ``base``'s probabilities ``proba`` ``(n, n_classes)`` and luminance ``L`` ``(n,)``:
        ``trust + (1 - trust) * likeness``, where ``likeness`` (:meth:`likeness`) is each
        pixel's to the references and ``trust`` rises from 0 to 1 as their mean goes from
        ``low`` to ``high`` (a photo of what the references show takes their colours
        everywhere)."""
        like = self.likeness(proba, L)
        trust = np.float32(np.clip((like.mean() - self.low) / (self.high - self.low), 0, 1))
        return trust + (1 - trust) * like

    def likeness(self, proba: np.ndarray, L: np.ndarray) -> np.ndarray:
        """Likeness in 0..1 ``(n,)`` float32 of pixels with ``base``'s probabilities
        ``proba`` ``(n, n_classes)`` and luminance ``L`` ``(n,)`` to the references."""
        n = len(L)
        out = np.empty(n, np.float32)
        a = np.float32(0.5 / self.sigma**2)
        b = np.float32(0.5 / self.l_sigma**2)
        L = np.ascontiguousarray(L, np.float32)
        for r0 in range(0, n, self.CHUNK):
            r1 = min(n, r0 + self.CHUNK)
            root = np.sqrt(np.maximum(proba[r0:r1], 0), dtype=np.float32)
            with threads_for((r1 - r0) * len(self.L)):
                _nearest_likeness(root @ self.root.T, L[r0:r1], self.L, a, b, out[r0:r1])
        return out


@nb.njit(cache=True, nogil=True, parallel=True)
def _nearest_likeness(dot, L, L_ref, a, b, out):
    """``out[i] = exp(-min_j (a * (2 - 2 dot[i, j]) + b * (L[i] - L_ref[j])**2))``, the
    Hellinger part clipped at 0 (inputs assumed validated; the naive twin is in
    ``tests/naive.py``)."""
    n, k = dot.shape
    for i in nb.prange(n):
        best = np.inf
        for j in range(k):
            d = L[i] - L_ref[j]
            h = max(np.float32(0.0), np.float32(2.0) - np.float32(2.0) * dot[i, j])
            cost = a * h + b * d * d
            if cost < best:
                best = cost
        out[i] = np.exp(-best)


# ---------------------------------------------------------------------------- adapt
def adapt(predictor, references, *, random_state=0, **options):
    """A new model fitted to reference colour photos, starting from ``predictor``.

    Parameters
    ----------
    predictor : Predictor
        The model to start from (not modified); a SOM + MLP model with a softmax output.
    references : array, path, or a list of them
        Colour photos (RGB or RGBA uint8 arrays, or image files).
    random_state : int
        The one seed for pixel sampling, the held-out blocks and the batch order.
    **options
        Fields of :class:`AdaptParams`.

    Returns
    -------
    Predictor
        The adapted model, of the class of ``predictor`` (a
        :class:`~somcolor.model.Model` stays one); its ``training_`` (and saved
        metadata) says it was adapted, from how many references, with which options.

    Raises
    ------
    SomcolorError
        An empty list, a gray, unreadable or too large reference, a video, an unknown
        option, in one line.
    """
    t0 = time.perf_counter()
    known = list(AdaptParams.__dataclass_fields__)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise SomcolorError(f"adapt: unknown options {unknown}, expected some of {known}")
    params = AdaptParams(**options).check()
    if predictor.out_activation != "softmax":
        raise SomcolorError("adapt: the model has a single logistic output, expected softmax")
    images = [_as_rgb(item, i)[0] for i, item in enumerate(references_list(references))]
    rng = np.random.default_rng(np.random.SeedSequence(random_state))
    X, uv, held, L_ref = _sample(predictor, images, params, rng)
    codebook = predictor.codebook.copy()
    if params.codebook == "som":
        seed = int(rng.integers(2**31 - 1))
        codebook = som_palette(uv, codebook, tuple(predictor.config["som_shape"]), seed)
    palette = codebook[predictor.classes]
    if params.codebook == "refine":
        palette = refine_palette(uv, palette, params.refine_steps)
        codebook[predictor.classes] = palette
    y = nearest_column(uv, palette)
    Xs = ((X - predictor.mean) / predictor.scale).astype(np.float32)
    # The batches' matrix products are small: one BLAS thread is faster than several
    # (which spin and wait on each other, the more so on a busy machine).
    with threadpool_limits(1, "blas"):
        coefs, intercepts, curve = _train(
            Xs[~held],
            y[~held],
            Xs[held],
            y[held],
            predictor.coefs,
            predictor.intercepts,
            params,
            rng,
        )
    counts = np.bincount(y, minlength=len(palette))
    if params.prior > 0:
        prior = (counts + 1.0) / (counts.sum() + len(palette))
        intercepts[-1] = (intercepts[-1] + params.prior * np.log(prior)).astype(np.float32)
    seconds = time.perf_counter() - t0
    best_epoch = int(np.argmin(curve))
    log.info(
        "adapted to %d reference(s): %d pixels, held-out loss %.3f -> %.3f (epoch %d), %.2f s",
        len(images),
        len(X),
        curve[0],
        curve[best_epoch],
        best_epoch,
        seconds,
    )
    record = {
        "n_references": len(images),
        "options": {**asdict(params), "random_state": random_state},
        "n_samples": int(len(X)),
        "n_held_out": int(held.sum()),
        "held_out_loss": [round(v, 5) for v in curve],
        "best_epoch": best_epoch,
        "seconds": round(seconds, 3),
    }
    training = {**predictor.training_, "adapted": record}
    base = predictor.training_.get("description", "")
    training["description"] = f"adapted to {len(images)} reference photo(s) from: {base}"
    metadata = {**predictor.metadata_, "training": training}
    adapted = type(predictor)(
        config=predictor.config,
        codebook=codebook,
        classes=predictor.classes.copy(),
        mean=predictor.mean.copy(),
        scale=predictor.scale.copy(),
        coefs=coefs,
        intercepts=intercepts,
        out_activation=predictor.out_activation,
        som_mean=None if predictor.som_mean is None else np.array(predictor.som_mean),
        som_scale=None if predictor.som_scale is None else np.array(predictor.som_scale),
        metadata=metadata,
        training=training,
    )
    if params.match_sigma > 0:
        base = getattr(predictor, "reference_match", None)
        base = predictor if base is None else base.base
        adapted.reference_match = ReferenceMatch.of(base, X, L_ref, params)
    return adapted
