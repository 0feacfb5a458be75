"""Colorizing with a trained model: plain arrays in, colors out, no training code loaded.

:class:`Predictor` is the inference half of :class:`~somcolor.pipeline.Colorizer`,
built from the model file's arrays (:mod:`somcolor.modelfile`). It imports neither
scikit-learn nor minisom (they only train), so ``somcolor colorize`` starts fast;
``Colorizer``'s own ``predict_proba``, ``predict_uv`` and ``colorize`` run through a
``Predictor`` too, so there is one inference code path.

Colorizing goes luminance -> patches -> network -> decode -> compose, a block of
rows at a time. For a model whose only feature is the L patch (the paper's, and the
bundled one), one numba kernel reads each tile of patches straight from L, applies
the network (:mod:`somcolor.network`) and decodes the probabilities to UV through
``classes`` (:mod:`somcolor.decode`'s three rules), so no feature matrix and no
probability array is ever built; at full resolution each block's L is computed from
the input's rows (plus the patch margin), so memory holds the input, the output and
one block. Other models (coarse scales, position, image statistics) build each
block's features and run :func:`~somcolor.network.forward` on them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numba as nb
import numpy as np

from . import modelfile
from ._threads import threads_for
from .color import _check_image, compose, luminance
from .decode import get_decoder
from .exceptions import ModelFormatError, SomcolorError
from .features import FeatureSpec, image_features
from .io import read_image
from .network import _TILE, _forward, _layers, _output, pack, work_items
from .patches import _reflect, check_patch_size
from .resize import resample, working_shape
from .smooth import guided_filter

#: Pixels (rows x width) whose patches are built and classified at once.
BLOCK_PIXELS = 1 << 16

#: A model's configuration (the :class:`~somcolor.pipeline.Colorizer` parameters) and
#: the defaults a model file may leave out. ``tests/test_predict.py`` checks that these
#: are ``Colorizer()``'s parameters.
CONFIG_DEFAULTS = {
    "som_shape": (3, 3),
    "patch_size": 5,
    "hidden_layer_sizes": (50, 50),
    "pixels_per_image": 2500,
    "som_iterations": 20000,
    "som_samples": 20000,
    "max_iter": 50,
    "decoder": "argmax",
    "temperature": 0.38,
    "scales": (),
    "scale_patch_size": 5,
    "position": False,
    "image_stats": False,
    "rebalance": False,
    "smooth_radius": 0.0,
    "smooth_eps": 3e-3,
    "work_size": None,
    "random_state": None,
}

#: The parameters that change how a trained model colorizes (``set_params``).
INFERENCE_PARAMS = ("decoder", "temperature", "smooth_radius", "smooth_eps", "work_size")

#: The decoders the fused kernel knows, by number.
_DECODER_CODES = {"argmax": 0, "mean": 1, "annealed": 2}


@dataclass
class ColorizeInfo:
    """What ``colorize`` did, beyond the pixels."""

    height: int
    width: int
    gamut_clipped: int  #: pixels whose predicted color fell outside sRGB and was clipped
    seconds: float


# ---------------------------------------------------------------------------- the kernel
@nb.njit(cache=True, nogil=True, error_model="numpy")
def _decode(row, mode, temperature, palette, uv):
    """Probabilities ``row`` -> UV in ``uv`` (2,); returns the most probable column.

    ``palette`` is the codebook of the classifier's columns (``codebook[classes]``,
    float32). ``mode``: 0 the UV of the most probable column, 1 the expectation, 2
    the annealed mean, each computed as :mod:`somcolor.decode` does.
    """
    n = row.shape[0]
    top = 0
    for j in range(1, n):
        if row[j] > row[top]:
            top = j
    if mode == 0:
        uv[0] = palette[top, 0]
        uv[1] = palette[top, 1]
        return top
    u = np.float32(0)
    v = np.float32(0)
    if mode == 1:
        for j in range(n):
            u += row[j] * palette[j, 0]
            v += row[j] * palette[j, 1]
        uv[0] = u
        uv[1] = v
        return top
    tiny = np.finfo(np.float32).tiny
    high = -np.inf
    for j in range(n):
        row[j] = np.log(max(row[j], tiny)) / temperature
        high = max(high, row[j])
    total = np.float32(0)
    for j in range(n):
        row[j] = np.exp(row[j] - high)
        total += row[j]
    for j in range(n):
        p = row[j] / total
        u += p * palette[j, 0]
        v += p * palette[j, 1]
    uv[0] = u
    uv[1] = v
    return top


@nb.njit(cache=True, nogil=True, parallel=True, fastmath={"contract"}, error_model="numpy")
def _patch_uv(
    L,
    row0,
    height,
    r0,
    r1,
    k,
    mean,
    scale,
    weights,
    biases,
    sizes,
    logistic,
    mode,
    temperature,
    palette,
    uv,
    top,
):
    """UV and the most probable column of every pixel in rows ``r0:r1``, from L patches.

    ``L`` holds rows ``row0:row0 + len(L)`` of an image ``height`` rows tall: every
    row the k x k patches of rows ``r0:r1`` reach (borders reflected as in
    :mod:`somcolor.patches`). Each tile of pixels is read from ``L`` into the forward
    kernel's tile (standardized as :func:`~somcolor.network.forward` does), goes
    through the network and is decoded; ``uv`` is ``((r1 - r0) * W, 2)`` float32,
    ``top`` ``((r1 - r0) * W,)``. The argmax decoder of a softmax network compares
    logits (where two probabilities tie in float32 it may pick the other of the two);
    the other decoders compute the probabilities as ``forward`` does. Inputs assumed
    validated.
    """
    h = k // 2
    W = L.shape[1]
    n = (r1 - r0) * W
    n_layers = sizes.shape[0] - 1
    width = sizes.max()
    n_classes = palette.shape[0]
    colmap = np.empty((W, k), dtype=np.int64)
    for c in range(W):
        for dx in range(k):
            colmap[c, dx] = _reflect(c + dx - h, W)
    for tile in nb.prange((n + _TILE - 1) // _TILE):
        p0 = tile * _TILE
        m = min(n, p0 + _TILE) - p0
        a = np.zeros((width, _TILE), dtype=np.float32)
        b = np.zeros((width, _TILE), dtype=np.float32)
        row = np.empty(n_classes, dtype=np.float32)
        # The tile's pixels, one run along an image row at a time: each patch element
        # is then a contiguous slice of an L row (vectorized), except near the borders.
        t0 = 0
        while t0 < m:
            r = r0 + (p0 + t0) // W
            c0 = (p0 + t0) - (r - r0) * W
            run = min(m - t0, W - c0)
            inner = c0 >= h and c0 + run + h <= W
            f = 0
            for dy in range(k):
                line = L[_reflect(r + dy - h, height) - row0]
                for dx in range(k):
                    mu, sd = mean[f], scale[f]
                    dst = a[f]
                    if inner:
                        src = line[c0 + dx - h : c0 + dx - h + run]
                        for j in range(run):
                            dst[t0 + j] = (src[j] - mu) / sd
                    else:
                        for j in range(run):
                            dst[t0 + j] = (line[colmap[c0 + j, dx]] - mu) / sd
                    f += 1
            t0 += run
        _layers(a, b, weights, biases, sizes)
        out = b if n_layers % 2 == 1 else a
        if mode == 0 and not logistic:
            # The most probable class is the largest logit: softmax is monotonic, so
            # its exponentials (a fifth of the time) are skipped.
            for t in range(m):
                best = 0
                for j in range(1, n_classes):
                    if out[j, t] > out[best, t]:
                        best = j
                top[p0 + t] = best
                uv[p0 + t, 0] = palette[best, 0]
                uv[p0 + t, 1] = palette[best, 1]
            continue
        for t in range(m):
            _output(out, t, sizes[n_layers], logistic, row)
            top[p0 + t] = _decode(row, mode, temperature, palette, uv[p0 + t])


def _rows_reached(r0: int, r1: int, k: int, height: int) -> tuple[int, int]:
    """The rows ``lo:hi`` of an image that the k x k patches of rows ``r0:r1`` read.

    >>> _rows_reached(0, 4, 5, 10), _rows_reached(4, 6, 5, 10), _rows_reached(8, 10, 5, 10)
    ((0, 6), (2, 8), (6, 10))
    """
    h = k // 2
    if r0 - h >= 0 and r1 + h <= height:
        return r0 - h, r1 + h
    i = np.arange(r0 - h, r1 + h) % (2 * height)
    rows = np.where(i >= height, 2 * height - 1 - i, i)
    return int(rows.min()), int(rows.max()) + 1


# ---------------------------------------------------------------------------- validation
def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise ModelFormatError(f"inconsistent model: {what}")


def _check_config(config: dict) -> dict:
    """A model file's config, completed with the defaults; unknown keys refused."""
    unknown = sorted(set(config) - set(CONFIG_DEFAULTS))
    _expect(not unknown, f"unknown config keys {unknown}")
    config = {**CONFIG_DEFAULTS, **config}
    for key in ("som_shape", "hidden_layer_sizes", "scales"):
        config[key] = tuple(config[key])
    return config


def _check_inference_params(config: dict) -> None:
    get_decoder(config["decoder"])
    if not config["temperature"] > 0:
        raise SomcolorError(f"temperature must be positive, got {config['temperature']!r}")
    work_size = config["work_size"]
    if work_size is not None and not int(work_size) >= 8:
        raise SomcolorError(f"work_size must be None or at least 8 pixels, got {work_size!r}")
    if not 0 <= config["smooth_radius"] <= 1:
        raise SomcolorError(f"smooth_radius must be in 0..1, got {config['smooth_radius']!r}")
    if not config["smooth_eps"] > 0:
        raise SomcolorError(f"smooth_eps must be positive, got {config['smooth_eps']!r}")


def feature_spec(config: dict) -> FeatureSpec:
    """The features a model with this config computes per pixel."""
    return FeatureSpec(
        patch_size=check_patch_size(config["patch_size"]),
        scales=tuple(int(f) for f in config["scales"]),
        scale_patch_size=config["scale_patch_size"],
        position=bool(config["position"]),
        image_stats=bool(config["image_stats"]),
    )


def _check_network(p: Predictor, n_codes: int, n_features: int) -> None:
    """Refuse a network whose arrays do not chain, or whose classes are not codes."""
    classes = p.classes
    _expect(classes.ndim == 1 and classes.dtype.kind in "iu", "classes must be integer codes")
    _expect(len(np.unique(classes)) == len(classes) >= 2, "classes must be >= 2 distinct codes")
    _expect(classes.min() >= 0 and classes.max() < n_codes, "class outside the codebook")
    _expect(p.mean.shape == (n_features,) and p.scale.shape == (n_features,), "input scaling")
    _expect(bool(np.all(p.scale > 0)), "input scale must be positive")
    width = n_features
    for W, b in zip(p.coefs, p.intercepts, strict=True):
        _expect(W.ndim == 2 and W.shape[0] == width and b.shape == (W.shape[1],), "layer shapes")
        width = W.shape[1]
    expected_out = 1 if p.out_activation == "logistic" else len(classes)
    _expect(p.out_activation in ("softmax", "logistic"), "output activation")
    _expect(width == expected_out, "output layer size does not match classes")
    for arr in (*p.coefs, *p.intercepts, p.mean, p.scale):
        _expect(bool(np.all(np.isfinite(arr))), "non-finite weights")


# ---------------------------------------------------------------------------- the predictor
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
        for key in ("config", "mlp"):
            _expect(isinstance(meta.get(key), dict), f"metadata {key!r} must be an object")
        training = meta.get("training", {})
        _expect(isinstance(training, dict), "metadata 'training' must be an object")
        config = _check_config(meta["config"])
        n_features = feature_spec(config).n_features
        rows, cols = config["som_shape"]

        codebook = np.asarray(arrays["som_codebook"], dtype=np.float64)
        _expect(codebook.shape == (rows * cols, 2), f"codebook shape {codebook.shape}")
        som_mean = np.asarray(arrays["som_mean"], dtype=np.float64)
        som_scale = np.asarray(arrays["som_scale"], dtype=np.float64)
        _expect(som_mean.shape == (2,) and som_scale.shape == (2,), "SOM scaling shape")
        for arr in (codebook, som_mean, som_scale):
            _expect(bool(np.all(np.isfinite(arr))), "non-finite SOM codebook or scaling")

        n_layers = int(meta["mlp"]["n_layers"])
        model = cls(
            config=config,
            codebook=codebook,
            classes=np.asarray(arrays["mlp_classes"]),
            mean=np.asarray(arrays["mlp_mean"], dtype=np.float32),
            scale=np.asarray(arrays["mlp_scale"], dtype=np.float32),
            coefs=[np.asarray(arrays[f"mlp_coef_{i}"], dtype=np.float32) for i in range(n_layers)],
            intercepts=[
                np.asarray(arrays[f"mlp_intercept_{i}"], dtype=np.float32) for i in range(n_layers)
            ],
            out_activation=meta["mlp"]["out_activation"],
            som_mean=som_mean,
            som_scale=som_scale,
            metadata=meta,
            training=training,
        )
        _check_network(model, n_codes=rows * cols, n_features=n_features)
        _check_inference_params(config)
        return model

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
        _check_inference_params(config)
        self.config = config
        return self

    def get_params(self, deep: bool = True) -> dict:
        """The model's parameters (as :meth:`Colorizer.get_params` gives them)."""
        return dict(self.config)

    @property
    def feature_spec(self) -> FeatureSpec:
        """The features this model computes per pixel."""
        return feature_spec(self.config)

    @property
    def n_codes(self) -> int:
        return len(self.codebook)

    def _fused(self) -> bool:
        """Whether the fused kernel applies: the L patch is the only feature."""
        spec = self.feature_spec
        return not (spec.scales or spec.position or spec.image_stats)

    # ------------------------------------------------------------------ inference
    def predict_proba(self, L: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """Code probabilities per pixel at the working resolution.

        Returns ``(proba, shape)``: ``proba`` is float32 ``(h * w, n_classes)`` with
        columns following ``classes``, ``shape`` is ``(h, w)``.
        """
        L = np.asarray(L, dtype=np.float32)
        shape = working_shape(L.shape, self.work_size)
        L_work = resample(L, shape)
        proba = np.empty((shape[0] * shape[1], len(self.classes)), np.float32)
        w = shape[1]
        for r0, r1, X in image_features(L_work, self.feature_spec, BLOCK_PIXELS):
            self._forward(X, proba[r0 * w : r1 * w])
        return proba, shape

    def _forward(self, X: np.ndarray, out: np.ndarray) -> np.ndarray:
        weights, biases, sizes = self._packed
        with threads_for(work_items(len(X), sizes)):
            logistic = self.out_activation == "logistic"
            _forward(X, self.mean, self.scale, weights, biases, sizes, logistic, out)
        return out

    def _uv_rows(self, L, row0, height, r0, r1) -> tuple[np.ndarray, np.ndarray]:
        """UV ``(n, 2)`` float32 and the most probable column of rows ``r0:r1``
        (fused kernel; ``L`` holds rows ``row0:`` of the image)."""
        weights, biases, sizes = self._packed
        n = (r1 - r0) * L.shape[1]
        uv = np.empty((n, 2), dtype=np.float32)
        top = np.empty(n, dtype=np.int32)
        palette = np.ascontiguousarray(self.codebook[self.classes], dtype=np.float32)
        with threads_for(work_items(n, sizes)):
            _patch_uv(
                np.ascontiguousarray(L, dtype=np.float32),
                row0,
                height,
                r0,
                r1,
                self.feature_spec.patch_size,
                self.mean,
                self.scale,
                weights,
                biases,
                sizes,
                self.out_activation == "logistic",
                _DECODER_CODES[self.decoder],
                np.float32(self.temperature),
                palette,
                uv,
                top,
            )
        return uv, top

    def _work_uv(self, L: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """UV ``(h * w, 2)`` float32 and the most probable column at the working size."""
        shape = working_shape(L.shape, self.work_size)
        L_work = resample(L, shape)
        if self._fused():
            uv, top = self._uv_rows(L_work, 0, shape[0], 0, shape[0])
            return uv, top, shape
        w = shape[1]
        uv = np.empty((shape[0] * w, 2), dtype=np.float32)
        top = np.empty(shape[0] * w, dtype=np.int64)
        for r0, r1, proba, block_uv in self._decoded_blocks(L_work):
            uv[r0 * w : r1 * w] = block_uv
            top[r0 * w : r1 * w] = np.argmax(proba, axis=1)
        return uv, top, shape

    def _decoded_blocks(self, L: np.ndarray):
        """Yield ``(row_start, row_stop, proba, uv)`` for consecutive row blocks of ``L``:
        the block's probabilities and their decoded UV (float32), one block at a time,
        never the whole image's (models without the fused kernel)."""
        decode = get_decoder(self.decoder)
        proba = np.empty((BLOCK_PIXELS + L.shape[1], len(self.classes)), np.float32)
        for r0, r1, X in image_features(L, self.feature_spec, BLOCK_PIXELS):
            p = self._forward(X, proba[: len(X)])
            uv = decode(p, self.classes, self.codebook, self.temperature).astype(np.float32)
            yield r0, r1, p, uv

    def predict_uv(self, L: np.ndarray, *, return_codes: bool = False):
        """Predicted chroma ``(H, W, 2)`` float32 for a luminance image ``(H, W)``.

        Probabilities at the working resolution are decoded, upsampled to the full
        image and smoothed with the full-resolution L as guide. With ``return_codes``
        also returns the most probable code per pixel at the working resolution.
        """
        L = np.asarray(L, dtype=np.float32)
        uv, top, shape = self._work_uv(L)
        uv = resample(uv.reshape(*shape, 2), L.shape)
        if self.smooth_radius > 0:
            radius = max(1, round(self.smooth_radius * max(L.shape)))
            uv = guided_filter(L / np.float32(100), uv, radius, self.smooth_eps)
        if return_codes:
            return uv, self.classes[top].reshape(shape)
        return uv

    def colorize(self, image, *, return_info: bool = False):
        """Colorize an image (gray, RGB or RGBA array, or a path) -> RGB uint8 ``(H, W, 3)``.

        Color inputs are first reduced to their luminance, so a color photo is
        re-colorized. With ``return_info`` also returns a :class:`ColorizeInfo`.
        """
        t0 = time.perf_counter()
        if isinstance(image, str | Path):
            image = read_image(image)
        shape = np.shape(image)[:2]
        full_size = working_shape(shape, self.work_size) == shape
        if full_size and not self.smooth_radius > 0:
            out, clipped = self._colorize_rows(image)
        else:
            L = luminance(image).astype(np.float32, copy=False)
            out, clipped = compose(L, self.predict_uv(L))
        if not return_info:
            return out
        info = ColorizeInfo(out.shape[0], out.shape[1], clipped, time.perf_counter() - t0)
        return out, info

    def _colorize_rows(self, image) -> tuple[np.ndarray, int]:
        """Full resolution, no smoothing: each block of rows goes from the input to RGB
        at once. With the fused kernel only the block's L (and the rows its patches
        reach) is computed, so memory holds the input and the output, plus one block."""
        image = np.asarray(image)
        H, W = _check_image(image).shape[:2]
        out = np.empty((H, W, 3), dtype=np.uint8)
        clipped = 0
        if not self._fused():
            L = luminance(image).astype(np.float32, copy=False)
            for r0, r1, _, uv in self._decoded_blocks(L):
                out[r0:r1], n = compose(L[r0:r1], uv.reshape(r1 - r0, W, 2))
                clipped += n
            return out, clipped
        k = self.feature_spec.patch_size
        step = max(1, BLOCK_PIXELS // max(W, 1))
        for r0 in range(0, H, step):
            r1 = min(H, r0 + step)
            lo, hi = _rows_reached(r0, r1, k, H)
            L = luminance(image[lo:hi]).astype(np.float32, copy=False)
            uv, _ = self._uv_rows(L, lo, H, r0, r1)
            out[r0:r1], n = compose(L[r0 - lo : r1 - lo], uv.reshape(r1 - r0, W, 2))
            clipped += n
        return out, clipped

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
