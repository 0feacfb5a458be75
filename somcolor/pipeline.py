"""The image-level colorizer: composes color -> quantize -> patches -> classify -> decode.

Training (:meth:`Colorizer.fit`), for a list of color photos:

1. each photo is converted to CIELUV (:mod:`somcolor.color`);
2. ``pixels_per_image`` pixels are drawn per photo; the k x k L patch around each
   (plus any wider context the parameters ask for) is its feature vector
   (:mod:`somcolor.features`, over :mod:`somcolor.patches`) and its UV is kept;
3. a SOM quantizes the sampled UV into a codebook (:mod:`somcolor.quantize`); each
   sampled pixel's code is its label;
4. an MLP learns patch -> code (:mod:`somcolor.classify`).

Colorizing (:meth:`Colorizer.colorize`): the image is reduced to L; every pixel's
patch goes through the MLP; the probabilities are decoded to UV
(:mod:`somcolor.decode`), joined with the input's own L and converted to sRGB. The
output has the input's height and width. Inference runs through a
:class:`~somcolor.predict.Predictor` over the fitted arrays, the same code that
``somcolor colorize`` uses without importing the training code.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from . import modelfile
from ._version import __version__
from .classify import PatchClassifier
from .color import rgb_to_luv, split_luv, to_float_rgb
from .decode import check_decoder
from .exceptions import SomcolorError
from .features import FeatureSpec, features_at
from .io import read_image
from .model import Model
from .params import TUPLE_PARAMS, check_params
from .patches import sample_positions
from .predict import ColorizeInfo, Predictor
from .quantize import SOMQuantizer, rebalance_weights
from .resize import downsample, working_shape

__all__ = ["Colorizer", "ColorizeInfo"]

log = logging.getLogger(__name__)


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

    The parameters are declared once, with their allowed values, in
    :mod:`somcolor.params`; a test checks that this signature and the list below agree
    with it.

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
        MLP epochs at most. Early stopping holds out 10% of the training photos, whole
        (their pixels never train the MLP); with fewer than 5 photos, 10% of the sampled
        pixels.
    decoder : str, default="argmax"
        How code probabilities become UV: a name in :data:`somcolor.decode.DECODERS`
        (``argmax``, ``mean``, ``annealed``).
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

    @property
    def feature_spec(self) -> FeatureSpec:
        """The features this model computes per pixel."""
        return FeatureSpec.from_params(self.get_params())

    @property
    def codebook(self) -> np.ndarray:
        """The SOM's chroma codes ``(n_codes, 2)``, as :attr:`Predictor.codebook`."""
        check_is_fitted(self, "quantizer_")
        return self.quantizer_.codebook_

    # ------------------------------------------------------------------ training
    def build_dataset(self, images, rng: np.random.Generator, progress=None):
        """Sample features and their UV from each image: ``(X, uv, image_index)``.

        ``images`` holds arrays or paths; ``progress`` wraps the iteration (e.g. tqdm).
        """
        spec = self.feature_spec
        items = list(images)
        if not items:
            raise SomcolorError("no training images given")
        # Filled image by image (no list of parts to concatenate: half the peak memory);
        # an image smaller than pixels_per_image gives all its pixels and leaves rows over.
        most = len(items) * int(self.pixels_per_image)
        X = np.empty((most, spec.n_features), dtype=np.float32)
        chroma = np.empty((most, 2), dtype=np.float32)
        groups = np.empty(most, dtype=np.int32)
        n = 0
        iterator = progress(items, desc="sampling pixels") if progress else items
        for i, item in enumerate(iterator):
            image = read_image(item) if isinstance(item, str | Path) else item
            luv = rgb_to_luv(to_float_rgb(image)).astype(np.float32, copy=False)
            shape = working_shape(luv.shape[:2], self.work_size)  # as Predictor._work_L
            if shape != luv.shape[:2]:
                luv = np.stack([downsample(luv[..., c], shape) for c in range(3)], axis=-1)
            L, uv = split_luv(luv)
            index = sample_positions(L.shape, self.pixels_per_image, rng)
            features_at(L, index, spec, out=X[n : n + len(index)])
            chroma[n : n + len(index)] = uv.reshape(-1, 2)[index]
            groups[n : n + len(index)] = i
            n += len(index)
        if n < most:
            return X[:n].copy(), chroma[:n].copy(), groups[:n].copy()
        return X, chroma, groups

    def fit(self, images, *, description: str = "", progress=None):
        """Train on color photos (arrays or paths); returns ``self``."""
        check_decoder(self.decoder)
        try:
            self.feature_spec  # noqa: B018 - validates the feature parameters
        except ValueError as exc:
            raise SomcolorError(str(exc)) from None
        check_params(self.get_params())
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
    def predictor(self) -> Model:
        """The fitted model's inference (a :class:`~somcolor.model.Model`: automatic
        colour, hints, references), over its arrays as they are now (not copied)."""
        check_is_fitted(self, "classifier_")
        q, c = self.quantizer_, self.classifier_
        model = Model(
            config=self.get_params(),
            codebook=q.codebook_,
            classes=c.classes_,
            mean=c.mean_,
            scale=c.scale_,
            coefs=c.coefs_,
            intercepts=c.intercepts_,
            out_activation=c.out_activation_,
            som_mean=q.mean_,
            som_scale=q.scale_,
            metadata=getattr(self, "metadata_", None),
            training=getattr(self, "training_", None),
        )
        model.reference_match = getattr(self, "reference_match_", None)
        return model

    def predict_proba(self, L: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """Code probabilities per pixel at the working resolution.

        Returns ``(proba, shape)``: ``proba`` is float32 ``(h * w, n_classes)`` with
        columns following ``classifier_.classes_``, ``shape`` is ``(h, w)``.
        """
        return self.predictor().predict_proba(L)

    def predict_uv(self, L: np.ndarray, *, return_codes: bool = False):
        """Predicted chroma ``(H, W, 2)`` float32 for a luminance image ``(H, W)``.

        See :meth:`Predictor.predict_uv`.
        """
        return self.predictor().predict_uv(L, return_codes=return_codes)

    def colorize(
        self, image, *, hints=None, scribbles=None, reference=None, return_info: bool = False
    ):
        """Colorize an image (gray, RGB or RGBA array, or a path) -> RGB uint8 ``(H, W, 3)``.

        Color inputs are first reduced to their luminance, so a color photo is
        re-colorized. With ``return_info`` also returns a :class:`ColorizeInfo`.
        ``hints`` and ``scribbles`` are user colour hints; ``reference`` colour photos
        the model is first adapted to; see :meth:`Model.colorize <somcolor.model.Model.colorize>`.
        """
        return self.predictor().colorize(
            image, hints=hints, scribbles=scribbles, reference=reference, return_info=return_info
        )

    def adapt(self, references, *, random_state=0, **options) -> Colorizer:
        """A new model fitted to reference colour photos (arrays or paths), starting from
        this one, which is not changed (:func:`somcolor.adapt.adapt`); it saves with
        :meth:`save` and loads back to the same colorizations."""
        return self._from_predictor(
            self.predictor().adapt(references, random_state=random_state, **options)
        )

    # ------------------------------------------------------------------ persistence
    def model_arrays(self) -> dict[str, np.ndarray]:
        """The fitted model as named plain arrays (what :meth:`save` stores)."""
        check_is_fitted(self, "classifier_")
        return self.predictor().model_arrays()

    def save(self, path, *, overwrite: bool = True) -> Path:
        """Write the model as ``.npz`` arrays + JSON metadata (no pickle), atomically."""
        model = self.predictor()
        arrays = model.model_arrays()
        c = self.classifier_
        params = self.get_params()
        for key in TUPLE_PARAMS:
            params[key] = list(params[key])
        metadata = {
            "config": params,
            "mlp": {"n_layers": len(c.coefs_), "out_activation": c.out_activation_},
            "training": self.training_,
            "somcolor_version": __version__,
            **model.match_metadata(),
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
        return cls._from_predictor(Model.from_file(path))

    @classmethod
    def _from_predictor(cls, p: Predictor) -> Colorizer:
        """A fitted Colorizer from a model file's contents (checked by :class:`Predictor`)."""
        model = cls(**p.config)
        q = SOMQuantizer(som_shape=model.som_shape)
        q.codebook_, q.mean_, q.scale_ = p.codebook, p.som_mean, p.som_scale
        q.n_features_in_ = 2
        c = PatchClassifier(hidden_layer_sizes=model.hidden_layer_sizes)
        c.classes_, c.mean_, c.scale_ = p.classes, p.mean, p.scale
        c.coefs_, c.intercepts_ = p.coefs, p.intercepts
        c.out_activation_ = p.out_activation
        c.n_features_in_ = len(p.mean)
        model.quantizer_, model.classifier_ = q, c
        model.training_ = p.training_
        model.metadata_ = p.metadata_
        model.reference_match_ = getattr(p, "reference_match", None)
        return model
