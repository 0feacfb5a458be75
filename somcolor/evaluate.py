"""Measured colorization quality: colorize the L of color photos, compare with the originals.

Per image and averaged over a set:

* ``accuracy``: the paper's score, the fraction of pixels whose predicted code is the
  SOM code of their true chroma (for predictors without codes, the code nearest to
  their predicted chroma);
* ``psnr``, ``ssim``: on the RGB output against the original (uint8, data range 255);
* ``chroma_err``: mean Euclidean distance between the output's UV and the original's;
* ``auc``: area under the cumulative chroma-error curve, the fraction of pixels whose
  output UV lies within ``t`` of the truth for ``t = 0, 1, ..., 150``, normalised to 1;
  ``auc_rebal``: the same with every pixel weighted by the inverse frequency (over the
  whole evaluation set) of its true color's 10x10 UV bin (Zhang et al. 2016);
* ``colorfulness``: Hasler & Suesstrunk (2003), ``sigma_rgyb + 0.3 mu_rgyb`` with
  ``rg = R - G`` and ``yb = (R + G) / 2 - B`` (no absolute values), on 0..255; the set's
  ``colorfulness_ratio`` is mean output colorfulness over mean original colorfulness;
* ``gamut_rate``: fraction of output pixels clipped to the sRGB gamut;
* ``seconds``: time to predict the chroma.

Chroma is compared after the output has been converted to uint8 sRGB, i.e. what a
user sees. A predictor here is a :data:`ChromaFn`: L ``(H, W)`` -> ``(uv (H, W, 2),
codes or None)`` (:func:`model_predictor` makes one of a trained model).
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .color import compose, rgb_to_luv, split_luv, to_float_rgb, to_uint8
from .guide import simulated_hints
from .io import atomic_write, read_image
from .quantize import nearest_code

#: Thresholds of the cumulative chroma-error curve (UV units).
THRESHOLDS = np.arange(0, 151, dtype=np.float64)
#: Side of the UV bins that define "colors" for the rebalanced AuC.
BIN = 10.0
_BIN_LO, _N_BINS = -200.0, 40  # bins cover u, v in -200..200

METRICS = (
    "accuracy",
    "psnr",
    "ssim",
    "chroma_err",
    "auc",
    "auc_rebal",
    "colorfulness",
    "colorfulness_orig",
    "gamut_rate",
    "seconds",
)

#: A colorizer as the evaluation sees it: luminance ``(H, W)`` -> ``(uv, codes)``, the
#: chroma ``(H, W, 2)`` and the most probable code per pixel (None if it has none).
ChromaFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk's colorfulness of an RGB image (uint8, or float in 0..1).

    >>> colorfulness(np.full((4, 4, 3), 128, np.uint8))
    0.0
    >>> round(colorfulness(np.tile(np.array([255, 0, 0], np.uint8), (2, 2, 1))), 2)
    85.53
    """
    rgb = np.asarray(rgb)
    x = rgb.astype(np.float64) * (255.0 if rgb.dtype.kind == "f" else 1.0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = math.hypot(rg.std(), yb.std())
    mu = math.hypot(rg.mean(), yb.mean())
    return float(sigma + 0.3 * mu)


def error_curve(err: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Fraction (weighted) of pixels with chroma error <= t, for each t in THRESHOLDS."""
    err = np.asarray(err, dtype=np.float64).ravel()
    w = np.ones_like(err) if weights is None else np.asarray(weights, np.float64).ravel()
    order = np.argsort(err)
    cum = np.cumsum(w[order])
    idx = np.searchsorted(err[order], THRESHOLDS, side="right")
    return np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0) / cum[-1]


def auc(err: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Area under the cumulative error curve over THRESHOLDS, normalised to 0..1.

    >>> auc(np.zeros(10))
    1.0
    >>> auc(np.full(10, 1000.0))
    0.0
    """
    return float(error_curve(err, weights).mean())


def color_bins(uv: np.ndarray) -> np.ndarray:
    """Index of each UV value's 10x10 bin (over u, v in -200..200)."""
    b = np.floor((np.asarray(uv, np.float64) - _BIN_LO) / BIN).astype(np.int64)
    b = np.clip(b, 0, _N_BINS - 1)
    return b[..., 0] * _N_BINS + b[..., 1]


@dataclass
class ColorPrior:
    """Frequencies of true-color bins over an evaluation set (for the rebalanced AuC)."""

    counts: np.ndarray = field(default_factory=lambda: np.zeros(_N_BINS * _N_BINS))

    def add(self, uv: np.ndarray) -> None:
        self.counts += np.bincount(color_bins(uv).ravel(), minlength=self.counts.size)

    def weights(self, uv: np.ndarray) -> np.ndarray:
        p = self.counts / self.counts.sum()
        return 1.0 / p[color_bins(uv)]


@dataclass
class Truth:
    """A color photo as the metrics need it: uint8 RGB, its L and its UV."""

    rgb: np.ndarray
    L: np.ndarray
    uv: np.ndarray

    @classmethod
    def of(cls, image) -> Truth:
        if isinstance(image, cls):
            return image
        if isinstance(image, str | Path):
            image = read_image(image)
        rgb = to_float_rgb(image)
        L, uv = split_luv(rgb_to_luv(rgb))
        return cls(to_uint8(rgb), np.ascontiguousarray(L, dtype=np.float32), uv)


def _upsample_codes(codes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = codes.shape
    rows = (np.arange(shape[0]) * h) // shape[0]
    cols = (np.arange(shape[1]) * w) // shape[1]
    return codes[rows[:, None], cols[None, :]]


def evaluate_image(
    predictor: ChromaFn,
    image,
    prior: ColorPrior,
    codebook: np.ndarray | None = None,
    hints=None,
) -> dict[str, float]:
    """All metrics of one predictor on one color photo (array, path or :class:`Truth`).

    ``hints`` (colour hints, as :func:`somcolor.guide.parse_hints` takes them) go to a
    predictor that takes them (its ``takes_hints`` attribute, set by
    :func:`model_predictor`); other predictors colorize without them.
    """
    truth = Truth.of(image)
    L, uv_true = truth.L, truth.uv
    t0 = time.perf_counter()
    if hints is not None and getattr(predictor, "takes_hints", False):
        uv_pred, codes = predictor(L, hints)
    else:
        uv_pred, codes = predictor(L)
    seconds = time.perf_counter() - t0
    out, clipped = compose(L, uv_pred)

    accuracy = math.nan
    codebook = getattr(predictor, "codebook", codebook)
    if codebook is not None:
        true_codes = nearest_code(uv_true.reshape(-1, 2), codebook).reshape(L.shape)
        if codes is None:
            codes = nearest_code(np.asarray(uv_pred).reshape(-1, 2), codebook).reshape(L.shape)
        elif codes.shape != L.shape:
            codes = _upsample_codes(codes, L.shape)
        accuracy = float(np.mean(codes == true_codes))
    row = {"accuracy": accuracy, **score_rgb(out, truth, prior)}
    row["gamut_rate"] = clipped / L.size
    row["seconds"] = seconds
    return row


def score_rgb(out: np.ndarray, image, prior: ColorPrior) -> dict[str, float]:
    """The metrics of a colorized RGB uint8 image ``out`` against its colour original
    (array, path or :class:`Truth`): what an experiment scores when it runs the product
    (the public API or the CLI) and gets an image back.

    >>> t = Truth.of(np.full((8, 8, 3), (120, 100, 80), np.uint8)); p = ColorPrior(); p.add(t.uv)
    >>> gray = np.full((8, 8, 3), 104, np.uint8)
    >>> s = score_rgb(gray, t, p); round(s["psnr"], 1), s["chroma_err"] > 10
    (23.6, True)
    """
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    truth = Truth.of(image)
    rgb, uv_true = truth.rgb, truth.uv
    if out.shape != rgb.shape or out.dtype != np.uint8:
        raise ValueError(f"expected uint8 {rgb.shape}, got {out.dtype} {out.shape}")
    uv_out = split_luv(rgb_to_luv(to_float_rgb(out)))[1]
    err = np.linalg.norm(uv_out - uv_true, axis=-1)
    small = min(out.shape[:2]) < 7
    ssim = (
        math.nan
        if small
        else float(structural_similarity(rgb, out, channel_axis=2, data_range=255))
    )
    return {
        "psnr": float(peak_signal_noise_ratio(rgb, out, data_range=255)),
        "ssim": ssim,
        "chroma_err": float(err.mean()),
        "auc": auc(err),
        "auc_rebal": auc(err, prior.weights(uv_true)),
        "colorfulness": colorfulness(out),
        "colorfulness_orig": colorfulness(rgb),
    }


def gray_predictor(L: np.ndarray):
    """Baseline: zero chroma."""
    return np.zeros((*L.shape, 2), np.float32), None


def constant_predictor(uv: Sequence[float]) -> ChromaFn:
    """Baseline: the same chroma everywhere (e.g. the training set's mean)."""
    uv = np.asarray(uv, dtype=np.float32)

    def predict(L):
        return np.broadcast_to(uv, (*L.shape, 2)).copy(), None

    return predict


def model_predictor(model) -> ChromaFn:
    """A fitted model as a predictor (chroma, and the most probable codes if it has codes).

    Any model with ``predict_uv(L, return_codes=True)`` works: a Colorizer, a
    :class:`~somcolor.predict.Predictor`, or a CNN from :mod:`somcolor.backends`; one
    without a codebook (the CNN autoencoder) is scored for code accuracy against the
    codebook :func:`evaluate` is given. A SOM model (one with a
    :class:`~somcolor.model.Model`) also takes colour hints: ``predict(L, hints)``
    colorizes through a :class:`~somcolor.guide.HintSession` (its codes are then
    None: the code nearest to the guided chroma is scored).
    """
    inference = model.predictor() if hasattr(model, "predictor") else model

    def predict(L, hints=None):
        if hints:
            from .guide import HintSession

            return HintSession(inference, L).uv(hints), None
        return model.predict_uv(L, return_codes=True)

    predict.takes_hints = hasattr(inference, "hint_session")

    codebook = getattr(model, "codebook", None)  # a Colorizer or a Predictor
    quantizer = getattr(model, "quantizer_", None)
    if codebook is None and quantizer is not None:  # a CNN that predicts codes
        codebook = quantizer.codebook_
    if codebook is not None:
        predict.codebook = codebook
    return predict


@dataclass
class Evaluation:
    """Per-image rows and per-predictor means of one evaluation run."""

    rows: list[dict] = field(default_factory=list)

    def summary(self) -> list[dict]:
        """One row per predictor: mean of every metric, and the colorfulness ratio."""
        out = []
        for name in dict.fromkeys(r["predictor"] for r in self.rows):
            rows = [r for r in self.rows if r["predictor"] == name]
            s = {"predictor": name, "images": len(rows)}
            for m in METRICS:
                values = [r[m] for r in rows if not math.isnan(r[m])]
                s[m] = float(np.mean(values)) if values else math.nan
            orig = s["colorfulness_orig"]
            s["colorfulness_ratio"] = s["colorfulness"] / orig if orig > 0 else math.nan
            out.append(s)
        return out

    def markdown(self) -> str:
        cols = [
            ("predictor", "predictor", "{}"),
            ("accuracy", "code acc.", "{:.3f}"),
            ("psnr", "PSNR dB", "{:.2f}"),
            ("ssim", "SSIM", "{:.3f}"),
            ("chroma_err", "UV err", "{:.2f}"),
            ("auc", "AuC", "{:.3f}"),
            ("auc_rebal", "AuC rebal.", "{:.3f}"),
            ("colorfulness_ratio", "colorful. ratio", "{:.2f}"),
            ("gamut_rate", "gamut clip", "{:.4f}"),
            ("seconds", "s/img", "{:.3f}"),
        ]
        lines = ["| " + " | ".join(c[1] for c in cols) + " |"]
        lines.append("|" + "|".join(" --- " for _ in cols) + "|")
        for s in self.summary():
            cells = []
            for key, _, fmt in cols:
                v = s[key]
                cells.append("–" if isinstance(v, float) and math.isnan(v) else fmt.format(v))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def write(self, out_dir) -> list[Path]:
        """Write ``per_image.csv``, ``summary.csv`` and ``summary.md`` into ``out_dir``."""
        out_dir = Path(out_dir)
        written = []
        for name, rows in (("per_image.csv", self.rows), ("summary.csv", self.summary())):
            if not rows:
                continue
            text = _csv_text(rows, list(rows[0])).encode()
            written.append(
                atomic_write(out_dir / name, lambda fh, text=text: fh.write(text), overwrite=True)
            )
        md = self.markdown().encode()
        written.append(
            atomic_write(out_dir / "summary.md", lambda fh: fh.write(md), overwrite=True)
        )
        return written


def _csv_text(rows, fields) -> str:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def evaluate(
    predictors: dict[str, ChromaFn],
    images: Sequence,
    *,
    codebook: np.ndarray | None = None,
    progress=None,
    hints: int = 0,
    seed: int = 0,
) -> Evaluation:
    """Evaluate each predictor on each color photo (arrays or paths).

    The color prior for the rebalanced AuC is taken over all ``images`` first. The
    code accuracy uses a predictor's own ``codebook`` attribute (set by
    :func:`model_predictor`), else ``codebook``, else it is NaN.

    With ``hints`` > 0, that many user hints are simulated on each photo
    (:func:`somcolor.guide.simulated_hints`, seeded with ``seed`` plus the photo's
    position, as ``experiments/hints_curve.py`` does) and given to the predictors that
    take hints; the others (baselines) colorize as usual.
    """
    images = list(images)
    prior = ColorPrior()
    for image in images:
        prior.add(Truth.of(image).uv)
    result = Evaluation()
    iterator = progress(images, desc="evaluating") if progress else images
    for i, image in enumerate(iterator):
        name = str(image) if isinstance(image, str | Path) else f"image{i}"
        truth = Truth.of(image)
        points = simulated_hints(truth.rgb, hints, seed + i) if hints > 0 else None
        for pname, predictor in predictors.items():
            row = {"predictor": pname, "image": name}
            row.update(evaluate_image(predictor, truth, prior, codebook, points))
            result.rows.append(row)
    return result
