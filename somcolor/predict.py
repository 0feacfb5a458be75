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
  composed with it (:meth:`_colorize_guided`, :meth:`predict_uv`).

:meth:`Predictor.predict_proba` always takes the unfused path: it returns the
probabilities. Colour hints (:mod:`somcolor.guide`) start from those probabilities and
the automatic chroma (:meth:`Predictor.hint_session`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from . import guide, modelfile
from .color import check_image, compose, luminance
from .decode import DECODERS, get_decoder
from .exceptions import ModelFormatError, SomcolorError
from .features import FeatureSpec, _Prepared, image_features
from .fused import context_uv, patch_uv, rows_reached
from .io import read_image
from .network import forward_packed, pack
from .params import INFERENCE_PARAMS, check_params
from .resize import downsample, working_shape
from .smooth import guided_coefficients, guided_rows

__all__ = ["BLOCK_PIXELS", "HINT_WORK_SIZE", "ColorizeInfo", "HintSession", "Predictor"]

#: Pixels (rows x width) whose patches are built and classified at once.
BLOCK_PIXELS = 1 << 16
#: Long side of the hints solve for a model that predicts at full resolution
#: (``work_size=None``); other models solve at their own working size.
HINT_WORK_SIZE = 256


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
        return cls(**contents)

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

    def predict_uv(self, L: np.ndarray, *, return_codes: bool = False):
        """Predicted chroma ``(H, W, 2)`` float32 for a luminance image ``(H, W)``.

        The chroma is predicted at the working resolution and brought to the full
        image guided by its L (:meth:`_full_uv_rows`). With ``return_codes`` also
        returns the most probable code per pixel at the working resolution.
        """
        L = np.ascontiguousarray(L, dtype=np.float32)
        uv = np.empty((*L.shape, 2), dtype=np.float32)
        rows, top, shape = self._upsampler(L)
        for r0, r1 in _row_blocks(*L.shape):
            rows(r0, r1, uv[r0:r1])
        if return_codes:
            return uv, self.classes[top].reshape(shape)
        return uv

    def colorize(
        self, image, *, hints=None, scribbles=None, reference=None, return_info: bool = False
    ):
        """Colorize an image (gray, RGB or RGBA array, or a path) -> RGB uint8 ``(H, W, 3)``.

        Color inputs are first reduced to their luminance, so a color photo is
        re-colorized. With ``return_info`` also returns a :class:`ColorizeInfo`.

        ``reference`` is a colour photo (array or path) or a list of them: the model is
        first adapted to them (:meth:`adapt`, seed 0), then colours the image (with the
        hints, if any, on top). To colour several images from the same references,
        call :meth:`adapt` once and colour with the model it returns.

        ``hints`` are user colour points: a list of dicts ``{"x", "y", "color"[,
        "radius"]}`` or ``(x, y, (r, g, b))`` tuples (``x`` the column, ``y`` the row in
        pixels of the input; colours ``"#rrggbb"`` or 0..255 triples), or a
        :class:`somcolor.guide.Hints`; ``scribbles`` an RGBA array of the input's size
        whose opaque pixels are colour strokes. They are spread edge-aware with the
        model's prediction as the prior (:mod:`somcolor.guide`, through a one-off
        :meth:`hint_session`; use that to add hints one at a time). The hints are solved
        at the model's working size (``work_size``); a model with ``work_size=None``
        solves them at :data:`HINT_WORK_SIZE` (256) px on the long side, and the change
        they make is brought to the full image. With no hints (None or empty) the output
        is exactly the automatic one.

        Raises
        ------
        SomcolorError
            A bad hint (outside the image, a bad colour, unknown keys) or scribbles of
            another size, in one line naming the entry.
        """
        t0 = time.perf_counter()
        if isinstance(image, str | Path):
            image = read_image(image)
        image = np.asarray(image)
        shape = check_image(image).shape[:2]
        if reference is not None:
            out = self.adapt(reference).colorize(
                image, hints=hints, scribbles=scribbles, return_info=return_info
            )
            if return_info:
                out[1].seconds = time.perf_counter() - t0
            return out
        if hints is not None or scribbles is not None:
            given = guide.as_hints(hints, scribbles, shape)
            if len(given):
                out, info = self.hint_session(image).colorize(given, return_info=True)
                info.seconds = time.perf_counter() - t0
                return (out, info) if return_info else out
        full_size = working_shape(shape, self.work_size) == shape
        if full_size and not self.smooth_radius > 0:
            out, clipped = self._colorize_rows(image)
        else:
            out, clipped = self._colorize_guided(image)
        if not return_info:
            return out
        info = ColorizeInfo(out.shape[0], out.shape[1], clipped, time.perf_counter() - t0)
        return out, info

    def adapt(self, references, *, random_state=0, **options) -> Predictor:
        """A new model fitted to reference colour photos (arrays or paths), starting
        from this one, which is not changed: see :func:`somcolor.adapt.adapt` (its
        ``options`` are the fields of :class:`~somcolor.adapt.AdaptParams`)."""
        from .adapt import adapt

        return adapt(self, references, random_state=random_state, **options)

    def hint_session(self, image, params: guide.GuideParams | None = None) -> HintSession:
        """An image (gray, RGB or RGBA array, or a path) made ready for colour hints
        (:class:`HintSession`): the model's probabilities and chroma computed once, so
        each new set of hints only re-solves."""
        if isinstance(image, str | Path):
            image = read_image(image)
        L = luminance(check_image(np.asarray(image))).astype(np.float32, copy=False)
        return HintSession(self, L, params)

    def suggest(self, image, x: float, y: float, k: int = 5) -> list[tuple[str, float]]:
        """The model's ``k`` most probable colours at column ``x``, row ``y`` of the input:
        ``[("#rrggbb", probability), ...]``, each shown at that pixel's lightness.

        The probabilities are those of the working pixel holding ``(x, y)`` (the
        model's working size, :data:`HINT_WORK_SIZE` for a full-resolution model).
        """
        if isinstance(image, str | Path):
            image = read_image(image)
        image = np.asarray(image)
        L = luminance(check_image(image)).astype(np.float32, copy=False)
        at = guide.parse_hints([(x, y, "#000000")], L.shape, source="--at")
        L_work = downsample(L, working_shape(L.shape, self.work_size or HINT_WORK_SIZE))
        proba, shape = self._proba_at(L_work)
        index = int(guide.to_working(at, shape).index[0])
        lightness = float(L[int(round(y)), int(round(x))])
        return guide.suggest(proba[index], self.codebook[self.classes], k, lightness=lightness)

    # ------------------------------------------------------------ the paths (module docstring)
    def _work_L(self, L: np.ndarray) -> np.ndarray:
        """The luminance at the working size (area average; the image's own if smaller)."""
        return downsample(L, working_shape(L.shape, self.work_size))

    def _work_uv(self, L_work: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """UV ``(h * w, 2)`` float32 and the most probable column of every pixel of a
        working-size L, through the fused kernel of the model's features."""
        if self.feature_spec.patch_only:
            return self._uv_rows(L_work, 0, L_work.shape[0], 0, L_work.shape[0])
        return self._context_rows(_Prepared(L_work, self.feature_spec), 0, L_work.shape[0])

    def _upsampler(self, L: np.ndarray):
        """Predict at the working size; returns ``(rows, top, shape)`` where
        ``rows(r0, r1, out)`` writes the full-size UV of rows ``r0:r1`` into ``out``.

        With smoothing, the guided filter's coefficients are fitted at the working size
        (guide: the working L / 100, radius ``smooth_radius`` x its long side) and
        applied to the full-resolution L (He & Sun's fast guided filter); without, the
        UV is interpolated bilinearly. Either way no full-size array is built here.
        """
        L_work = self._work_L(L)
        shape = L_work.shape
        uv, top = self._work_uv(L_work)
        uv = uv.reshape(*shape, 2)
        if self.smooth_radius > 0:
            radius = max(1, round(self.smooth_radius * max(shape)))
            mean_a, mean_b = guided_coefficients(
                L_work / np.float32(100), uv, radius, self.smooth_eps
            )
        elif shape == L.shape:  # full resolution, no smoothing: the prediction itself

            def rows(r0, r1, out):
                out[...] = uv[r0:r1]
                return out

            return rows, top, shape
        else:  # bilinear: the guided form with a = 0
            mean_a, mean_b = np.zeros_like(uv), uv

        def rows(r0, r1, out):
            return guided_rows(L, mean_a, mean_b, r0, r1, out, scale=0.01)

        return rows, top, shape

    def _colorize_guided(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        """Predict at the working size (or full size with smoothing), then each block of
        rows: UV brought up guided by L and composed to RGB at once, so memory holds
        the input, its L and the output, plus one block."""
        L = luminance(image).astype(np.float32, copy=False)
        H, W = L.shape
        rows, _, _ = self._upsampler(L)
        out = np.empty((H, W, 3), dtype=np.uint8)
        block = np.empty((min(H, max(1, BLOCK_PIXELS // max(W, 1))), W, 2), dtype=np.float32)
        clipped = 0
        for r0, r1 in _row_blocks(H, W):
            uv = rows(r0, r1, block[: r1 - r0])
            out[r0:r1], n = compose(L[r0:r1], uv)
            clipped += n
        return out, clipped

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

    def _context_rows(self, prepared: _Prepared, r0: int, r1: int):
        """UV ``(n, 2)`` float32 and the most probable column of rows ``r0:r1`` of a
        prepared image (context kernel: coarse levels, position, statistics)."""
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


class HintSession:
    """One image made ready for colour hints: re-colorize it with any hints, quickly.

    Built by :meth:`Predictor.hint_session` (from an image) or directly from a
    luminance ``L`` (``(H, W)``, 0..100). It holds what no hint changes: the
    full-resolution L, the automatic full-size chroma (the model's own path, guided
    smoothing included), the model's code probabilities and decoded chroma at the
    working size (the model's ``work_size``; :data:`HINT_WORK_SIZE` for a model with
    ``work_size=None``), and the :class:`~somcolor.guide.Guide` of that size. Each
    :meth:`colorize` solves for the guided chroma (warm-started from the last solve),
    adds its change to the automatic chroma (:func:`~somcolor.guide.full_size`) and
    composes it with the full-resolution L.

    Examples
    --------
    >>> from somcolor.paths import DEFAULT_MODEL
    >>> session = Predictor.from_file(DEFAULT_MODEL).hint_session(np.full((8, 8), 128, np.uint8))
    >>> session.colorize([(3, 3, "#c83232")])[3, 3].tolist() != [128, 128, 128]
    True
    """

    def __init__(self, predictor: Predictor, L, params: guide.GuideParams | None = None):
        self.L = np.ascontiguousarray(L, dtype=np.float32)
        p = predictor
        work = working_shape(self.L.shape, p.work_size or HINT_WORK_SIZE)
        L_work = downsample(self.L, work)
        self.proba, _ = p._proba_at(L_work)
        uv = get_decoder(p.decoder)(self.proba, p.classes, p.codebook, p.temperature)
        self.uv_work = np.asarray(uv, np.float32).reshape(*work, 2)
        self.palette = p.codebook[p.classes]
        self.uv_auto = p.predict_uv(self.L)
        self.guide = guide.Guide(L_work, self.proba, self.palette, self.uv_work, params)

    @property
    def shape(self) -> tuple[int, int]:
        """The input image's ``(height, width)``."""
        return self.L.shape

    def colorize(self, hints=None, scribbles=None, *, return_info: bool = False):
        """The image colorized with these hints (as :meth:`Predictor.colorize` takes
        them) -> RGB uint8 ``(H, W, 3)``; with no hints the automatic chroma composed
        with L. With ``return_info`` also returns a :class:`ColorizeInfo`."""
        t0 = time.perf_counter()
        out, clipped = compose(self.L, self.uv(hints, scribbles))
        if not return_info:
            return out
        return out, ColorizeInfo(out.shape[0], out.shape[1], clipped, time.perf_counter() - t0)

    def uv(self, hints=None, scribbles=None) -> np.ndarray:
        """The full-size chroma ``(H, W, 2)`` float32 with these hints (the automatic
        chroma itself when there are none)."""
        given = guide.as_hints(hints, scribbles, self.shape)
        guided = self.guide.solve(guide.to_working(given, self.guide.shape))
        return guide.full_size(self.uv_auto, self.uv_work, guided)

    def suggest(self, x: float, y: float, k: int = 5) -> list[tuple[str, float]]:
        """The model's ``k`` most probable colours at column ``x``, row ``y`` (as
        :meth:`Predictor.suggest`)."""
        at = guide.parse_hints([(x, y, "#000000")], self.shape, source="point")
        index = int(guide.to_working(at, self.guide.shape).index[0])
        lightness = float(self.L[int(round(y)), int(round(x))])
        return guide.suggest(self.proba[index], self.palette, k, lightness=lightness)
