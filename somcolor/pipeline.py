"""The image-level colorizer: composes color -> quantize -> patches -> classify -> decode.

Training (:meth:`Colorizer.fit`), for a list of color photos:

1. each photo is converted to CIELUV (:mod:`somcolor.color`);
2. ``pixels_per_image`` pixels are drawn per photo; the k x k L patch around each is
   its feature vector (:mod:`somcolor.patches`) and its UV is kept;
3. a SOM quantizes the sampled UV into a codebook (:mod:`somcolor.quantize`); each
   sampled pixel's code is its label;
4. an MLP learns patch -> code (:mod:`somcolor.classify`).

Colorizing (:meth:`Colorizer.colorize`): the image is reduced to L; every pixel's
patch goes through the MLP; the probabilities are decoded to UV
(:mod:`somcolor.decode`), joined with the input's own L and converted to sRGB. The
output has the input's height and width.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from . import __version__, modelfile
from .classify import PatchClassifier
from .color import compose, luminance, rgb_to_luv, split_luv, to_float_rgb
from .decode import get_decoder
from .exceptions import ModelFormatError, SomcolorError
from .features import FeatureSpec, features_at, image_features
from .io import read_image
from .patches import check_patch_size, sample_positions
from .quantize import SOMQuantizer, rebalance_weights
from .smooth import guided_filter, resample, working_shape

log = logging.getLogger(__name__)

#: Pixels (rows x width) whose patches are built and classified at once in ``colorize``.
BLOCK_PIXELS = 1 << 16


@dataclass
class ColorizeInfo:
    """What :meth:`Colorizer.colorize` did, beyond the pixels."""

    height: int
    width: int
    gamut_clipped: int  #: pixels whose predicted color fell outside sRGB and was clipped
    seconds: float


def _seeds(random_state) -> tuple[np.random.Generator, int, int]:
    """One seed -> independent streams for pixel sampling, the SOM and the MLP."""
    if isinstance(random_state, np.random.RandomState):
        random_state = int(random_state.randint(2**31 - 1))
    ss = np.random.SeedSequence(random_state)
    sample_ss, som_ss, mlp_ss = ss.spawn(3)
    return (
        np.random.default_rng(sample_ss),
        int(som_ss.generate_state(1)[0] % (2**31 - 1)),
        int(mlp_ss.generate_state(1)[0] % (2**31 - 1)),
    )


class Colorizer(BaseEstimator):
    """Colorize grayscale photos: SOM chroma codebook + MLP over luminance patches.

    Parameters
    ----------
    som_shape : tuple of int, default=(3, 3)
        SOM map size; ``rows * cols`` chroma codes.
    patch_size : int, default=5
        Side of the square L patch around each pixel (odd).
    hidden_layer_sizes : tuple of int, default=(50, 50)
        The MLP's hidden layers.
    pixels_per_image : int, default=2500
        Training pixels drawn per photo (the paper's 2500).
    som_iterations, som_samples : int, default=20000
        SOM training steps and the size of the UV subsample it trains on.
    max_iter : int, default=50
        MLP epochs at most (early stopping on 10% of the samples).
    decoder : {"argmax", "mean", "annealed"}, default="argmax"
        How code probabilities become UV (see :mod:`somcolor.decode`).
    temperature : float, default=0.38
        The annealed mean's temperature.
    scales : tuple of int, default=()
        Extra coarse patches of L downsampled by these factors (see :mod:`somcolor.features`).
    scale_patch_size : int, default=5
        Side of each coarse patch.
    position : bool, default=False
        Add the pixel's relative row and column to its features.
    image_stats : bool, default=False
        Add the whole image's L mean and standard deviation to the features.
    rebalance : bool, default=False
        Weight training samples by the inverse of the smoothed color prior mixed with
        uniform (lambda = 0.5), so rare colors count more.
    smooth_radius : float, default=0.0
        Guided-filter radius as a fraction of the image's long side (0: off).
    smooth_eps : float, default=3e-3
        Guided-filter regularisation, with the guide as L / 100.
    work_size : int or None, default=None
        Predict at this long side (pixels) and upsample the chroma to the full image;
        training photos are reduced the same way. None: full resolution.
    random_state : int or None, default=None
        The one seed for pixel sampling, the SOM and the MLP.

    Attributes
    ----------
    quantizer_ : SOMQuantizer
    classifier_ : PatchClassifier
    training_ : dict
        Summary of the training data and run (images, samples, seconds, description).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> photos = [(rng.random((24, 32, 3)) * 255).astype(np.uint8) for _ in range(3)]
    >>> model = Colorizer(patch_size=3, hidden_layer_sizes=(8,), pixels_per_image=200,
    ...                   max_iter=5, random_state=0).fit(photos)
    >>> model.colorize(photos[0][..., 0]).shape
    (24, 32, 3)
    """

    def __init__(
        self,
        som_shape=(3, 3),
        patch_size=5,
        hidden_layer_sizes=(50, 50),
        pixels_per_image=2500,
        *,
        som_iterations=20000,
        som_samples=20000,
        max_iter=50,
        decoder="argmax",
        temperature=0.38,
        scales=(),
        scale_patch_size=5,
        position=False,
        image_stats=False,
        rebalance=False,
        smooth_radius=0.0,
        smooth_eps=3e-3,
        work_size=None,
        random_state=None,
    ):
        self.som_shape = som_shape
        self.patch_size = patch_size
        self.hidden_layer_sizes = hidden_layer_sizes
        self.pixels_per_image = pixels_per_image
        self.som_iterations = som_iterations
        self.som_samples = som_samples
        self.max_iter = max_iter
        self.decoder = decoder
        self.temperature = temperature
        self.scales = scales
        self.scale_patch_size = scale_patch_size
        self.position = position
        self.image_stats = image_stats
        self.rebalance = rebalance
        self.smooth_radius = smooth_radius
        self.smooth_eps = smooth_eps
        self.work_size = work_size
        self.random_state = random_state

    def _check_inference_params(self) -> None:
        get_decoder(self.decoder)
        if not self.temperature > 0:
            raise SomcolorError(f"temperature must be positive, got {self.temperature!r}")
        if self.work_size is not None and not int(self.work_size) >= 8:
            raise SomcolorError(
                f"work_size must be None or at least 8 pixels, got {self.work_size!r}"
            )
        if not 0 <= self.smooth_radius <= 1:
            raise SomcolorError(f"smooth_radius must be in 0..1, got {self.smooth_radius!r}")
        if not self.smooth_eps > 0:
            raise SomcolorError(f"smooth_eps must be positive, got {self.smooth_eps!r}")

    @property
    def feature_spec(self) -> FeatureSpec:
        """The features this model computes per pixel."""
        return FeatureSpec(
            patch_size=check_patch_size(self.patch_size),
            scales=tuple(int(f) for f in self.scales),
            scale_patch_size=self.scale_patch_size,
            position=bool(self.position),
            image_stats=bool(self.image_stats),
        )

    # ------------------------------------------------------------------ training
    def build_dataset(self, images, rng: np.random.Generator, progress=None):
        """Sample features and their UV from each image: ``(X, uv, image_index)``.

        ``images`` holds arrays or paths; ``progress`` wraps the iteration (e.g. tqdm).
        """
        spec = self.feature_spec
        feats, chroma, groups = [], [], []
        items = list(images)
        iterator = progress(items, desc="sampling pixels") if progress else items
        for item in iterator:
            image = read_image(item) if isinstance(item, str | Path) else item
            luv = rgb_to_luv(to_float_rgb(image)).astype(np.float32, copy=False)
            luv = resample(luv, working_shape(luv.shape[:2], self.work_size))
            L, uv = split_luv(luv)
            index = sample_positions(L.shape, self.pixels_per_image, rng)
            feats.append(features_at(L, index, spec))
            chroma.append(uv.reshape(-1, 2)[index])
            groups.append(np.full(len(index), len(groups), dtype=np.int32))
        if not feats:
            raise SomcolorError("no training images given")
        return np.concatenate(feats), np.concatenate(chroma), np.concatenate(groups)

    def fit(self, images, *, description: str = "", progress=None):
        """Train on color photos (arrays or paths); returns ``self``."""
        get_decoder(self.decoder)
        try:
            self.feature_spec  # noqa: B018 - validates the feature parameters
        except ValueError as exc:
            raise SomcolorError(str(exc)) from None
        self._check_inference_params()
        t0 = time.perf_counter()
        rng, som_seed, mlp_seed = _seeds(self.random_state)
        X, uv, groups = self.build_dataset(images, rng, progress)
        n_images = int(groups.max()) + 1
        log.info("sampled %d pixels from %d images", len(X), n_images)

        t1 = time.perf_counter()
        self.quantizer_ = SOMQuantizer(
            som_shape=tuple(self.som_shape),
            n_iterations=self.som_iterations,
            max_samples=self.som_samples,
            random_state=som_seed,
        ).fit(uv)
        codes = self.quantizer_.labels_
        if len(np.unique(codes)) < 2:
            raise SomcolorError(
                "the training photos give only one color code: use more varied photos "
                "or a larger SOM"
            )
        t2 = time.perf_counter()
        log.info("SOM %s trained in %.1f s", self.som_shape, t2 - t1)

        weights = None
        if self.rebalance:
            weights = rebalance_weights(codes, self.quantizer_.codebook_)
        self.classifier_ = PatchClassifier(
            hidden_layer_sizes=tuple(self.hidden_layer_sizes),
            max_iter=self.max_iter,
            random_state=mlp_seed,
        ).fit(X, codes, sample_weight=weights, groups=groups)
        t3 = time.perf_counter()
        log.info("MLP trained in %.1f s (%d epochs)", t3 - t2, self.classifier_.n_iter_)

        self.training_ = {
            "description": description,
            "n_images": n_images,
            "n_samples": len(X),
            "code_counts": np.bincount(codes, minlength=len(self.quantizer_.codebook_)).tolist(),
            "mlp_epochs": self.classifier_.n_iter_,
            "seconds": {
                "sampling": round(t1 - t0, 3),
                "som": round(t2 - t1, 3),
                "mlp": round(t3 - t2, 3),
            },
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        return self

    # ------------------------------------------------------------------ inference
    def predict_proba(self, L: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """Code probabilities per pixel at the working resolution.

        Returns ``(proba, shape)``: ``proba`` is float32 ``(h * w, n_classes)`` with
        columns following ``classifier_.classes_``, ``shape`` is ``(h, w)``.
        """
        check_is_fitted(self, "classifier_")
        L = np.asarray(L, dtype=np.float32)
        shape = working_shape(L.shape, self.work_size)
        L_work = resample(L, shape)
        proba = np.empty((shape[0] * shape[1], len(self.classifier_.classes_)), np.float32)
        w = shape[1]
        for r0, r1, X in image_features(L_work, self.feature_spec, BLOCK_PIXELS):
            proba[r0 * w : r1 * w] = self.classifier_.predict_proba(X)
        return proba, shape

    def predict_uv(self, L: np.ndarray, *, return_codes: bool = False):
        """Predicted chroma ``(H, W, 2)`` float32 for a luminance image ``(H, W)``.

        Probabilities at the working resolution are decoded, upsampled to the full
        image and smoothed with the full-resolution L as guide. With ``return_codes``
        also returns the most probable code per pixel at the working resolution.
        """
        decode = get_decoder(self.decoder)
        L = np.asarray(L, dtype=np.float32)
        proba, shape = self.predict_proba(L)
        classes = self.classifier_.classes_
        uv = decode(proba, classes, self.quantizer_.codebook_, self.temperature)
        uv = resample(uv.astype(np.float32).reshape(*shape, 2), L.shape)
        if self.smooth_radius > 0:
            radius = max(1, round(self.smooth_radius * max(L.shape)))
            uv = guided_filter(L / np.float32(100), uv, radius, self.smooth_eps)
        if return_codes:
            return uv, classes[np.argmax(proba, axis=1)].reshape(shape)
        return uv

    def colorize(self, image, *, return_info: bool = False):
        """Colorize an image (gray, RGB or RGBA array, or a path) -> RGB uint8 ``(H, W, 3)``.

        Color inputs are first reduced to their luminance, so a color photo is
        re-colorized. With ``return_info`` also returns a :class:`ColorizeInfo`.
        """
        check_is_fitted(self, "classifier_")
        t0 = time.perf_counter()
        if isinstance(image, str | Path):
            image = read_image(image)
        L = luminance(image).astype(np.float32, copy=False)
        if self.work_size is None and not self.smooth_radius > 0:
            out, clipped = self._colorize_rows(L)
        else:
            out, clipped = compose(L, self.predict_uv(L))
        if not return_info:
            return out
        info = ColorizeInfo(L.shape[0], L.shape[1], clipped, time.perf_counter() - t0)
        return out, info

    def _colorize_rows(self, L: np.ndarray) -> tuple[np.ndarray, int]:
        """Full resolution, no smoothing: each block of rows goes from features to RGB
        at once, so memory holds L and the output, plus one block."""
        decode = get_decoder(self.decoder)
        classes, codebook = self.classifier_.classes_, self.quantizer_.codebook_
        H, W = L.shape
        out = np.empty((H, W, 3), dtype=np.uint8)
        clipped = 0
        for r0, r1, X in image_features(L, self.feature_spec, BLOCK_PIXELS):
            proba = self.classifier_.predict_proba(X)
            uv = decode(proba, classes, codebook, self.temperature).astype(np.float32)
            out[r0:r1], n = compose(L[r0:r1], uv.reshape(r1 - r0, W, 2))
            clipped += n
        return out, clipped

    # ------------------------------------------------------------------ persistence
    def model_arrays(self) -> dict[str, np.ndarray]:
        """The fitted model as named plain arrays (what :meth:`save` stores)."""
        check_is_fitted(self, "classifier_")
        q, c = self.quantizer_, self.classifier_
        arrays = {
            "som_codebook": q.codebook_,
            "som_mean": q.mean_,
            "som_scale": q.scale_,
            "mlp_classes": c.classes_,
            "mlp_mean": c.mean_,
            "mlp_scale": c.scale_,
        }
        for i, (W, b) in enumerate(zip(c.coefs_, c.intercepts_, strict=True)):
            arrays[f"mlp_coef_{i}"] = W
            arrays[f"mlp_intercept_{i}"] = b
        return arrays

    def save(self, path, *, overwrite: bool = True) -> Path:
        """Write the model as ``.npz`` arrays + JSON metadata (no pickle), atomically."""
        arrays = self.model_arrays()
        c = self.classifier_
        params = self.get_params()
        params["som_shape"] = list(params["som_shape"])
        params["hidden_layer_sizes"] = list(params["hidden_layer_sizes"])
        params["scales"] = list(params["scales"])
        metadata = {
            "config": params,
            "mlp": {"n_layers": len(c.coefs_), "out_activation": c.out_activation_},
            "training": self.training_,
            "somcolor_version": __version__,
        }
        return modelfile.write(path, arrays, metadata, overwrite=overwrite)

    @classmethod
    def load(cls, path) -> Colorizer:
        """Read a model written by :meth:`save`; runs no code from the file.

        Raises
        ------
        ModelFormatError
            If the file is not a somcolor model, is damaged or inconsistent, or is newer.
        """
        arrays, meta = modelfile.read(path)
        try:
            return cls._from_arrays(arrays, meta)
        except SomcolorError as exc:
            raise ModelFormatError(f"{path}: damaged model file ({exc})") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFormatError(
                f"{path}: damaged model file ({type(exc).__name__}: {exc})"
            ) from None

    @classmethod
    def _from_arrays(cls, arrays: dict, meta: dict) -> Colorizer:
        for key in ("config", "mlp"):
            _expect(isinstance(meta.get(key), dict), f"metadata {key!r} must be an object")
        _expect(isinstance(meta.get("training", {}), dict), "metadata 'training' must be an object")
        config = dict(meta["config"])
        config["som_shape"] = tuple(config["som_shape"])
        config["hidden_layer_sizes"] = tuple(config["hidden_layer_sizes"])
        config["scales"] = tuple(config.get("scales", ()))
        model = cls(**config)
        n_features = model.feature_spec.n_features
        rows, cols = model.som_shape

        codebook = np.asarray(arrays["som_codebook"], dtype=np.float64)
        _expect(codebook.shape == (rows * cols, 2), f"codebook shape {codebook.shape}")
        q = SOMQuantizer(som_shape=model.som_shape)
        q.codebook_ = codebook
        q.mean_ = np.asarray(arrays["som_mean"], dtype=np.float64)
        q.scale_ = np.asarray(arrays["som_scale"], dtype=np.float64)
        q.n_features_in_ = 2
        _expect(q.mean_.shape == (2,) and q.scale_.shape == (2,), "SOM scaling shape")
        for arr in (q.codebook_, q.mean_, q.scale_):
            _expect(bool(np.all(np.isfinite(arr))), "non-finite SOM codebook or scaling")

        n_layers = int(meta["mlp"]["n_layers"])
        c = PatchClassifier(hidden_layer_sizes=model.hidden_layer_sizes)
        c.classes_ = np.asarray(arrays["mlp_classes"])
        c.coefs_ = [np.asarray(arrays[f"mlp_coef_{i}"], dtype=np.float32) for i in range(n_layers)]
        c.intercepts_ = [
            np.asarray(arrays[f"mlp_intercept_{i}"], dtype=np.float32) for i in range(n_layers)
        ]
        c.mean_ = np.asarray(arrays["mlp_mean"], dtype=np.float32)
        c.scale_ = np.asarray(arrays["mlp_scale"], dtype=np.float32)
        c.out_activation_ = meta["mlp"]["out_activation"]
        c.n_features_in_ = n_features
        _check_network(c, n_codes=rows * cols, n_features=n_features)

        model.quantizer_, model.classifier_ = q, c
        model.training_ = meta.get("training", {})
        model.metadata_ = meta
        model._check_inference_params()
        return model


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise ModelFormatError(f"inconsistent model: {what}")


def _check_network(c: PatchClassifier, n_codes: int, n_features: int) -> None:
    """Refuse a network whose arrays do not chain, or whose classes are not codes."""
    classes = c.classes_
    _expect(classes.ndim == 1 and classes.dtype.kind in "iu", "classes must be integer codes")
    _expect(len(np.unique(classes)) == len(classes) >= 2, "classes must be >= 2 distinct codes")
    _expect(classes.min() >= 0 and classes.max() < n_codes, "class outside the codebook")
    _expect(c.mean_.shape == (n_features,) and c.scale_.shape == (n_features,), "input scaling")
    _expect(bool(np.all(c.scale_ > 0)), "input scale must be positive")
    width = n_features
    for W, b in zip(c.coefs_, c.intercepts_, strict=True):
        _expect(W.ndim == 2 and W.shape[0] == width and b.shape == (W.shape[1],), "layer shapes")
        width = W.shape[1]
    expected_out = 1 if c.out_activation_ == "logistic" else len(classes)
    _expect(c.out_activation_ in ("softmax", "logistic"), "output activation")
    _expect(width == expected_out, "output layer size does not match classes")
    for arr in (*c.coefs_, *c.intercepts_, c.mean_, c.scale_):
        _expect(bool(np.all(np.isfinite(arr))), "non-finite weights")
