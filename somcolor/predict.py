"""Colorizing with a trained model: plain arrays in, colors out, no training code loaded.

:class:`Predictor` is the inference half of :class:`~somcolor.pipeline.Colorizer`,
built from the model file's arrays (checked by :func:`somcolor.modelfile.som_model`).
It imports neither scikit-learn nor minisom (they only train), so ``somcolor
colorize`` starts fast; ``Colorizer``'s own ``predict_proba``, ``predict_uv`` and
``colorize`` run through a ``Predictor`` too, so there is one inference code path.

Colorizing goes luminance -> features -> network -> decode -> compose, a block of
``BLOCK_PIXELS`` pixels (whole rows) at a time. Two choices pick the path:

* **which fused kernel** (:mod:`somcolor.fused`): a model whose only feature is the L
  patch (:attr:`FeatureSpec.patch_only <somcolor.features.FeatureSpec.patch_only>`: the
  paper's, and the bundled ``fast``) runs ``patch_uv``; a context model (coarse scales,
  position, image statistics: the bundled ``default``) runs ``context_uv`` over the
  image's prepared levels. Either reads its features straight from L, applies the
  network and decodes, so no feature matrix and no probability array is built.
* **full resolution or working size**: when the working size is the image's own and
  there is no smoothing, :meth:`Predictor.colorize` goes from the input's rows to RGB
  block by block (with ``patch_uv`` only each block's L, plus the rows its patches
  reach, is computed), so memory holds the input, the output and one block. Otherwise
  the UV is predicted for the whole image at the working size (L area-averaged down to
  it); the guided filter's coefficients are fitted there (guide L / 100) and, a block
  of full-resolution rows at a time, interpolated and applied to the full-resolution L
  (He & Sun's fast guided filter; without smoothing, bilinear interpolation), then
  composed with it (:meth:`prior`, :meth:`compose`, :meth:`predict_uv`).

**One prior.** :meth:`Predictor.prior` is the model's prediction at the working size:
the working L, the working chroma the full-size output is made from (the guided
filter's output there, when the model smooths), the coefficients that bring it to the
full size and, on request, the code probabilities. The automatic path
(:meth:`Predictor.colorize`, :meth:`Predictor.predict_uv`) and every guided path --
colour hints (:class:`somcolor.guide.HintSession`), suggestions, the page, reference
adaptation, video -- take their chroma from it, so a guided result with no guidance is
the automatic one byte for byte. This module imports no guidance: hints and references
sit on top of it (:mod:`somcolor.guide`, :mod:`somcolor.adapt`, composed by
:class:`somcolor.model.Model`).

:meth:`Predictor.predict_proba` always takes the unfused path: it returns the
probabilities.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from . import modelfile
from .color import check_image, compose, luminance
from .decode import DECODERS
from .exceptions import ModelFormatError, SomcolorError
from .features import FeatureSpec, _Prepared, image_features
from .fused import context_uv, patch_uv, rows_reached
from .io import read_image
from .network import forward_packed, pack
from .params import INFERENCE_PARAMS, check_params
from .resize import downsample, working_shape
from .smooth import guided_coefficients, guided_rows

__all__ = ["BLOCK_PIXELS", "ColorizeInfo", "Predictor", "Prior"]

#: Pixels (rows x width) whose patches are built and classified at once.
BLOCK_PIXELS = 1 << 16


def _row_blocks(H: int, W: int):
    """``(r0, r1)`` of consecutive blocks of whole rows, about ``BLOCK_PIXELS`` each."""
    step = max(1, BLOCK_PIXELS // max(W, 1))
    for r0 in range(0, H, step):
        yield r0, min(H, r0 + step)


@dataclass
class ColorizeInfo:
    """What ``colorize`` did, beyond the pixels."""

    height: int
    width: int
    gamut_clipped: int  #: pixels whose predicted color fell outside sRGB and was clipped
    seconds: float


@dataclass
class Prior:
    """The model's prediction of one image at its working size: what every path uses.

    Made by :meth:`Predictor.prior`. The automatic output is :meth:`rows` composed with
    the full-resolution L; guidance (hints, references) starts from the same arrays.

    Attributes
    ----------
    L : float32 ndarray of shape (h, w)
        The luminance (0..100) at the working size.
    uv : float32 ndarray of shape (h, w, 2)
        The working chroma the full-size chroma is brought up from: with smoothing, the
        guided filter's output at the working size (``a * L / 100 + b``), else the
        decoded prediction itself.
    top : int ndarray of shape (h * w,)
        The most probable probability column of every working pixel.
    proba : float32 ndarray of shape (h * w, n_classes), or None
        The code probabilities (only when asked for).
    coefficients : tuple of two float32 ndarrays of shape (h, w, 2), or None
        The guided filter's ``(a, b)`` (bilinear upsampling: ``(0, uv)``); None when the
        working size is the image's and there is no smoothing (the chroma is ``uv``).
    """

    L: np.ndarray
    uv: np.ndarray
    top: np.ndarray
    proba: np.ndarray | None = None
    coefficients: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """The working ``(h, w)``."""
        return self.L.shape

    def rows(self, L: np.ndarray, r0: int, r1: int, out: np.ndarray) -> np.ndarray:
        """Rows ``r0:r1`` of the full-size chroma for the full-resolution luminance ``L``
        (float32 ``(H, W)``), written into ``out`` (float32 ``(r1 - r0, W, 2)``)."""
        if self.coefficients is None:
            out[...] = self.uv[r0:r1]
            return out
        mean_a, mean_b = self.coefficients
        return guided_rows(L, mean_a, mean_b, r0, r1, out, scale=0.01)

    def full_uv(self, L: np.ndarray) -> np.ndarray:
        """The full-size chroma ``(H, W, 2)`` float32 for the full-resolution ``L``."""
        L = np.ascontiguousarray(L, dtype=np.float32)
        uv = np.empty((*L.shape, 2), dtype=np.float32)
        for r0, r1 in _row_blocks(*L.shape):
            self.rows(L, r0, r1, uv[r0:r1])
        return uv


class Predictor:
    """A trained model's inference: gray image -> code probabilities -> UV -> RGB.

    Build one with :meth:`from_file` or :meth:`from_arrays` (both validate); the
    constructor trusts its arrays (``Colorizer`` hands over its fitted ones).

    Attributes
    ----------
    config : dict
        The model's parameters (those of :class:`~somcolor.pipeline.Colorizer`).
    codebook : float64 ndarray of shape (n_codes, 2)
        The SOM's chroma codes (UV).
    classes : int ndarray of shape (n_classes,)
        The code each probability column stands for.
    metadata_, training_ : dict
        The model file's JSON metadata and its training summary.

    Examples
    --------
    >>> from somcolor.paths import DEFAULT_MODEL
    >>> model = Predictor.from_file(DEFAULT_MODEL)
    >>> model.colorize(np.zeros((4, 6), np.uint8)).shape
    (4, 6, 3)
    """

    def __init__(
        self,
        *,
        config,
        codebook,
        classes,
        mean,
        scale,
        coefs,
        intercepts,
        out_activation,
        som_mean=None,
        som_scale=None,
        metadata=None,
        training=None,
    ):
        self.config = dict(config)
        self.codebook = np.asarray(codebook, dtype=np.float64)
        self.classes = np.asarray(classes)
        self.mean = np.ascontiguousarray(mean, dtype=np.float32)
        self.scale = np.ascontiguousarray(scale, dtype=np.float32)
        self.coefs = [np.ascontiguousarray(W, dtype=np.float32) for W in coefs]
        self.intercepts = [np.ascontiguousarray(b, dtype=np.float32) for b in intercepts]
        self.out_activation = out_activation
        self.som_mean = som_mean
        self.som_scale = som_scale
        self.metadata_ = {} if metadata is None else metadata
        self.training_ = {} if training is None else training

    @cached_property
    def _packed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The layers as the kernels take them (packed on first use, after validation)."""
        return pack(self.coefs, self.intercepts)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_file(cls, path) -> Predictor:
        """Read a model file (:mod:`somcolor.modelfile`); runs no code from the file.

        Raises
        ------
        ModelFormatError
            If the file is not a somcolor model, is damaged or inconsistent, or is newer.
        """
        arrays, meta = modelfile.read(path)
        try:
            return cls.from_arrays(arrays, meta)
        except SomcolorError as exc:
            raise ModelFormatError(f"{path}: damaged model file ({exc})") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFormatError(
                f"{path}: damaged model file ({type(exc).__name__}: {exc})"
            ) from None

    @classmethod
    def from_arrays(cls, arrays: dict, meta: dict) -> Predictor:
        """A predictor from a model file's arrays and metadata, checked for consistency."""
        contents = modelfile.som_model(
            arrays, meta, n_features=lambda config: FeatureSpec.from_params(config).n_features
        )
        check_params(contents["config"])
        match = contents.pop("match", None)
        predictor = cls(**contents)
        if match is not None:
            predictor._attach_match(match)
        return predictor

    def _attach_match(self, match: dict) -> None:
        """A model file of a model adapted with a reference match: the composed model
        (:class:`somcolor.model.Model`) reads it; prediction alone cannot use it."""
        raise ModelFormatError(
            "an adapted model with a reference match: load it with somcolor.model.Model"
        )

    # ------------------------------------------------------------------ parameters
    def __getattr__(self, name):
        """The model's parameters read as attributes (``model.decoder``, ...)."""
        config = self.__dict__.get("config")
        if config is not None and name in config:
            return config[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def set_params(self, **params) -> Predictor:
        """Change how it colorizes (decoder, temperature, smoothing, working size).

        Returns ``self``. The config is replaced, not changed in place, so a
        :func:`copy.copy` of a predictor can be set independently.
        """
        unknown = sorted(set(params) - set(INFERENCE_PARAMS))
        if unknown:
            raise SomcolorError(
                f"cannot set {unknown} on a trained model, expected some of {INFERENCE_PARAMS}"
            )
        config = {**self.config, **params}
        check_params(config)
        self.config = config
        return self

    def get_params(self, deep: bool = True) -> dict:
        """The model's parameters (as :meth:`Colorizer.get_params` gives them)."""
        return dict(self.config)

    @property
    def feature_spec(self) -> FeatureSpec:
        """The features this model computes per pixel."""
        return FeatureSpec.from_params(self.config)

    # ------------------------------------------------------------------ inference
    def predict_proba(self, L: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """Code probabilities per pixel at the working resolution.

        Returns ``(proba, shape)``: ``proba`` is float32 ``(h * w, n_classes)`` with
        columns following ``classes``, ``shape`` is ``(h, w)``.
        """
        return self._proba_at(self._work_L(np.asarray(L, dtype=np.float32)))

    def _proba_at(self, L_work: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """:meth:`predict_proba` of a luminance already at the size to predict at."""
        shape = L_work.shape
        proba = np.empty((shape[0] * shape[1], len(self.classes)), np.float32)
        w = shape[1]
        for r0, r1, X in image_features(L_work, self.feature_spec, BLOCK_PIXELS):
            self._forward(X, proba[r0 * w : r1 * w])
        return proba, shape

    def prior(self, L: np.ndarray, *, proba: bool = False) -> Prior:
        """The model's prediction of a luminance image ``(H, W)`` (0..100) at its working
        size: the one :class:`Prior` every path starts from (module docstring).

        The chroma comes from the fused kernel of the model's features; with ``proba``
        the code probabilities are computed too (for a context model in the same pass).
        With smoothing, the guided filter's coefficients are fitted at the working size
        (guide: the working L / 100, radius ``smooth_radius`` x its long side) and
        :meth:`Prior.rows` applies them to the full-resolution L (He & Sun's fast
        guided filter); without, the chroma is interpolated bilinearly.
        """
        L = np.ascontiguousarray(L, dtype=np.float32)
        L_work = self._work_L(L)
        shape = L_work.shape
        uv, top, probabilities = self._work_prediction(L_work, proba)
        uv = uv.reshape(*shape, 2)
        if self.smooth_radius > 0:
            radius = max(1, round(self.smooth_radius * max(shape)))
            mean_a, mean_b = guided_coefficients(
                L_work / np.float32(100), uv, radius, self.smooth_eps
            )
            coefficients = (mean_a, mean_b)
            uv = guided_rows(L_work, mean_a, mean_b, 0, shape[0], scale=0.01)
        elif shape == L.shape:  # full resolution, no smoothing: the prediction itself
            coefficients = None
        else:  # bilinear: the guided form with a = 0
            coefficients = (np.zeros_like(uv), uv)
        return Prior(L_work, uv, top, probabilities, coefficients)

    def predict_uv(self, L: np.ndarray, *, return_codes: bool = False):
        """Predicted chroma ``(H, W, 2)`` float32 for a luminance image ``(H, W)``.

        The chroma of :meth:`prior` brought to the full image guided by its L
        (:meth:`Prior.full_uv`). With ``return_codes`` also returns the most probable
        code per pixel at the working resolution.
        """
        L = np.ascontiguousarray(L, dtype=np.float32)
        prior = self.prior(L)
        uv = prior.full_uv(L)
        if return_codes:
            return uv, self.classes[prior.top].reshape(prior.shape)
        return uv

    def colorize(self, image, *, return_info: bool = False):
        """Colorize an image (gray, RGB or RGBA array, or a path) -> RGB uint8 ``(H, W, 3)``.

        Color inputs are first reduced to their luminance, so a color photo is
        re-colorized. With ``return_info`` also returns a :class:`ColorizeInfo`.
        Colour hints and references: :class:`somcolor.model.Model`.
        """
        t0 = time.perf_counter()
        if isinstance(image, str | Path):
            image = read_image(image)
        image = np.asarray(image)
        shape = check_image(image).shape[:2]
        if self._rows_are_the_prior(shape):
            out, clipped = self._colorize_rows(image)
        else:
            L = luminance(image).astype(np.float32, copy=False)
            out, clipped = self.compose(L, self.prior(L))
        if not return_info:
            return out
        info = ColorizeInfo(out.shape[0], out.shape[1], clipped, time.perf_counter() - t0)
        return out, info

    def compose(self, L: np.ndarray, prior: Prior) -> tuple[np.ndarray, int]:
        """RGB uint8 ``(H, W, 3)`` of the full-resolution ``L`` and the prior's chroma, and
        the number of pixels clipped to sRGB: each block of rows brought up and composed
        at once, so memory holds L and the output, plus one block."""
        H, W = L.shape
        out = np.empty((H, W, 3), dtype=np.uint8)
        block = np.empty((min(H, max(1, BLOCK_PIXELS // max(W, 1))), W, 2), dtype=np.float32)
        clipped = 0
        for r0, r1 in _row_blocks(H, W):
            uv = prior.rows(L, r0, r1, block[: r1 - r0])
            out[r0:r1], n = compose(L[r0:r1], uv)
            clipped += n
        return out, clipped

    # ------------------------------------------------------------ the paths (module docstring)
    def _rows_are_the_prior(self, shape: tuple[int, int]) -> bool:
        """Whether the input's rows can go to RGB block by block (:meth:`_colorize_rows`)
        and give what :meth:`prior` would: at full resolution without smoothing, the
        prediction being the fused kernel's alone."""
        full_size = working_shape(shape, self.work_size) == tuple(shape)
        return full_size and not self.smooth_radius > 0

    def _work_L(self, L: np.ndarray) -> np.ndarray:
        """The luminance at the working size (area average; the image's own if smaller)."""
        return downsample(L, working_shape(L.shape, self.work_size))

    def _work_prediction(self, L_work: np.ndarray, proba: bool):
        """``(uv (h * w, 2) float32, top, proba or None)`` of a working-size L: the decoded
        chroma before smoothing (the fused kernel), and the probabilities if asked for
        (from the same pass where the kernel gives them: a softmax context model).
        :class:`~somcolor.model.Model` blends here when it carries a reference match."""
        probabilities = None
        if proba and not self.feature_spec.patch_only and self.out_activation != "logistic":
            probabilities = np.empty((L_work.size, len(self.classes)), np.float32)
        uv, top = self._work_uv(L_work, probabilities)
        if proba and probabilities is None:
            probabilities = self._proba_at(L_work)[0]
        return uv, top, probabilities

    def _work_uv(self, L_work: np.ndarray, proba=None) -> tuple[np.ndarray, np.ndarray]:
        """UV ``(h * w, 2)`` float32 and the most probable column of every pixel of a
        working-size L, through the fused kernel of the model's features (the context
        kernel also fills ``proba``, ``(h * w, n_classes)`` float32, when given)."""
        if self.feature_spec.patch_only:
            return self._uv_rows(L_work, 0, L_work.shape[0], 0, L_work.shape[0])
        prepared = _Prepared(L_work, self.feature_spec)
        return self._context_rows(prepared, 0, L_work.shape[0], proba)

    def _colorize_rows(self, image) -> tuple[np.ndarray, int]:
        """Full resolution, no smoothing: each block of rows goes from the input to RGB
        at once. With the L-patch kernel only the block's L (and the rows its patches
        reach) is computed, so memory holds the input and the output, plus one block."""
        image = np.asarray(image)
        H, W = check_image(image).shape[:2]
        out = np.empty((H, W, 3), dtype=np.uint8)
        clipped = 0
        if not self.feature_spec.patch_only:
            L = luminance(image).astype(np.float32, copy=False)
            prepared = _Prepared(L, self.feature_spec)
            for r0, r1 in _row_blocks(H, W):
                uv, _ = self._context_rows(prepared, r0, r1)
                out[r0:r1], n = compose(L[r0:r1], uv.reshape(r1 - r0, W, 2))
                clipped += n
            return out, clipped
        k = self.feature_spec.patch_size
        for r0, r1 in _row_blocks(H, W):
            lo, hi = rows_reached(r0, r1, k, H)
            L = luminance(image[lo:hi]).astype(np.float32, copy=False)
            uv, _ = self._uv_rows(L, lo, H, r0, r1)
            out[r0:r1], n = compose(L[r0 - lo : r1 - lo], uv.reshape(r1 - r0, W, 2))
            clipped += n
        return out, clipped

    def _uv_rows(self, L, row0, height, r0, r1) -> tuple[np.ndarray, np.ndarray]:
        """UV ``(n, 2)`` float32 and the most probable column of rows ``r0:r1``
        (L-patch kernel; ``L`` holds rows ``row0:`` of the image)."""
        return patch_uv(
            L,
            row0,
            height,
            r0,
            r1,
            self.feature_spec.patch_size,
            self.mean,
            self.scale,
            self._packed,
            self.out_activation == "logistic",
            DECODERS[self.decoder].mode,
            self.temperature,
            self.codebook[self.classes],
        )

    def _context_rows(self, prepared: _Prepared, r0: int, r1: int, proba=None):
        """UV ``(n, 2)`` float32 and the most probable column of rows ``r0:r1`` of a
        prepared image (context kernel: coarse levels, position, statistics); with
        ``proba`` (``(n, n_classes)`` float32, softmax networks) the probabilities too."""
        weights, biases, sizes = self._packed
        return context_uv(
            prepared.L,
            self.feature_spec,
            prepared.levels,
            prepared.stats,
            self.mean,
            self.scale,
            weights,
            biases,
            sizes,
            self.out_activation == "logistic",
            DECODERS[self.decoder].mode,
            self.temperature,
            self.codebook[self.classes],
            r0,
            r1,
            proba,
        )

    def _forward(self, X: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The network's probabilities of the feature rows ``X``, written into ``out``."""
        logistic = self.out_activation == "logistic"
        return forward_packed(X, self.mean, self.scale, self._packed, logistic, out)

    # ------------------------------------------------------------------ persistence
    def model_arrays(self) -> dict[str, np.ndarray]:
        """The model as named plain arrays (what a model file stores)."""
        arrays = {
            "som_codebook": self.codebook,
            "som_mean": self.som_mean,
            "som_scale": self.som_scale,
            "mlp_classes": self.classes,
            "mlp_mean": self.mean,
            "mlp_scale": self.scale,
        }
        for i, (W, b) in enumerate(zip(self.coefs, self.intercepts, strict=True)):
            arrays[f"mlp_coef_{i}"] = W
            arrays[f"mlp_intercept_{i}"] = b
        return arrays
