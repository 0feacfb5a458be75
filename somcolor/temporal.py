"""Temporal consistency of colorized video: chroma smoothed over time, and flicker measured.

Colorizing the frames of a video one by one makes the color flicker: a pixel whose
patch barely changes between two frames (film grain, compression noise) can flip to
another chroma code. :class:`TemporalSmoother` carries chroma over from frame to frame
with a per-pixel exponential moving average,

    s_t = w_t * warp(s_{t-1}) + (1 - w_t) * uv_t,
    w_t = smoothing * exp(-(dL_t / GATE_L) ** 2),

where ``uv_t`` is the model's chroma for frame ``t``, ``warp`` follows the motion from
frame ``t-1`` to ``t`` (the identity, or OpenCV's Farneback optical flow with
``flow=True``), and ``dL_t`` is the local (box-blurred) difference between the
current luminance and the warped previous one. The gate keeps old chroma where the
picture is the same and drops it where something new appears (a moving edge, a
revealed background), so colors do not trail behind moving objects. At a scene cut,
detected from the L histogram, the average starts afresh.

The flicker metrics (:class:`FlickerMeter`) are measured on consecutive frame pairs,
skipping pairs across a scene cut:

* ``flicker``: mean absolute frame-to-frame change of the chroma (u and v, CIELUV
  units) divided by the mean absolute change of the input luminance L: chroma change
  per unit of real picture change. Independent per-frame colorization of a still,
  noisy shot scores high; smoothing lowers it.
* ``warp_error``: the chroma of frame ``t+1`` warped back onto frame ``t`` with the
  forward optical flow, minus the chroma of frame ``t``, mean absolute value over
  the pixels that the forward-backward flow check marks as visible in both frames
  (Sundaram, Brox & Keutzer, "Dense point trajectories by GPU-accelerated large
  displacement optical flow", ECCV 2010; the criterion Ruder, Dosovitskiy & Brox use
  for video style transfer, 2016). It measures flicker that follows the motion.

OpenCV (``cv2``, in the ``video`` extra) is imported when first needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .exceptions import SomcolorError

#: Bins of the L histogram used for scene-cut detection (L 0..100 quantized to uint8 first).
HIST_BINS = 32
#: A scene cut is declared when the L histograms of two consecutive frames differ by more
#: than this total-variation distance (0 = identical, 1 = disjoint) ...
CUT_THRESHOLD = 0.15
#: ... and by more than this many times the typical distance between frames of the scene
#: so far (a running mean), so that busy scenes need a bigger jump than still ones.
CUT_RATIO = 5.0
#: Luminance difference (CIELUV L units, 0..100) at which the carried-over chroma keeps
#: exp(-1) of its weight; much larger than the noise left after the box blur below.
GATE_L = 5.0
#: Side of the box blur applied to the luminance difference before gating.
GATE_BLUR = 5
#: Optical flow is computed on L downscaled to at most this many pixels, then scaled up.
FLOW_MAX_PIXELS = 320 * 240
#: Farneback parameters: pyramid scale, levels, window, iterations, poly_n, poly_sigma.
FARNEBACK = (0.5, 3, 15, 3, 5, 1.2)


def check_smoothing(smoothing) -> float:
    """``smoothing`` as a float in [0, 1), or a :class:`SomcolorError` saying what was given.

    >>> check_smoothing(0.5)
    0.5
    """
    try:
        value = float(smoothing)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 <= value < 1.0:
        raise SomcolorError(f"smoothing must be a number in [0, 1), got {smoothing!r}")
    return value


def _cv2():
    try:
        import cv2
    except ImportError:
        raise SomcolorError(
            "optical flow needs OpenCV: .venv/bin/pip install -e '.[video]' in the somcolor "
            "checkout, or pip install 'somcolor[video]'"
        ) from None
    return cv2


# ---------------------------------------------------------------------------- helpers
def luma8(L: np.ndarray) -> np.ndarray:
    """CIELUV L (0..100) -> uint8 (0..255), the input OpenCV's optical flow wants.

    >>> luma8(np.array([[0.0, 20.0, 100.0]])).tolist()
    [[0, 51, 255]]
    """
    return (np.clip(L, 0.0, 100.0) * 2.55 + 0.5).astype(np.uint8)


def l_histogram(L8: np.ndarray) -> np.ndarray:
    """Normalized histogram of a uint8 luminance image, :data:`HIST_BINS` bins.

    >>> l_histogram(np.zeros((2, 2), np.uint8))[:2].tolist()
    [1.0, 0.0]
    """
    counts = np.bincount((L8 >> 3).ravel(), minlength=HIST_BINS).astype(np.float64)
    return counts / counts.sum()


def histogram_distance(h0: np.ndarray, h1: np.ndarray) -> float:
    """Total-variation distance of two normalized histograms, in [0, 1].

    >>> histogram_distance(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    1.0
    """
    return 0.5 * float(np.abs(h0 - h1).sum())


def optical_flow(src8: np.ndarray, dst8: np.ndarray) -> np.ndarray:
    """Dense Farneback flow ``(H, W, 2)`` float32 with ``src8[y, x] ~ dst8[y + fy, x + fx]``.

    Computed on the images downscaled to at most :data:`FLOW_MAX_PIXELS` pixels and
    scaled back up: chroma is smooth, and full-resolution flow costs ~10x more.
    """
    cv2 = _cv2()
    H, W = src8.shape
    scale = min(1.0, math.sqrt(FLOW_MAX_PIXELS / (H * W)))
    if scale < 1.0:
        size = (max(8, round(W * scale)), max(8, round(H * scale)))
        src8 = cv2.resize(src8, size, interpolation=cv2.INTER_AREA)
        dst8 = cv2.resize(dst8, size, interpolation=cv2.INTER_AREA)
    flow = cv2.calcOpticalFlowFarneback(src8, dst8, None, *FARNEBACK, 0)
    if scale < 1.0:
        h, w = flow.shape[:2]
        flow = cv2.resize(flow, (W, H), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= W / w
        flow[..., 1] *= H / h
    return flow


def warp(image: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``image`` at ``(x + fx, y + fy)``: the warped image and where that is inside.

    ``image`` is ``(H, W)`` or ``(H, W, C)`` float32; bilinear sampling, borders replicated.

    >>> img = np.arange(6, dtype=np.float32).reshape(2, 3)
    >>> flow = np.zeros((2, 3, 2), np.float32); flow[..., 0] = 1   # one pixel to the right
    >>> out, inside = warp(img, flow)
    >>> out.tolist(), inside.tolist()
    ([[1.0, 2.0, 2.0], [4.0, 5.0, 5.0]], [[True, True, False], [True, True, False]])
    """
    cv2 = _cv2()
    H, W = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    mx, my = gx + flow[..., 0], gy + flow[..., 1]
    out = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (mx >= 0) & (mx <= W - 1) & (my >= 0) & (my <= H - 1)
    return out.reshape(image.shape), inside


def consistent_flow(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Pixels of frame ``t`` visible in frame ``t+1`` by the forward-backward check.

    ``forward`` maps ``t -> t+1``, ``backward`` maps ``t+1 -> t``. A pixel passes when
    following the forward flow and then the backward flow returns close to where it
    started: ``|f + b(x + f)|^2 <= 0.01 (|f|^2 + |b(x + f)|^2) + 0.5`` (Sundaram et al.
    2010), and when ``x + f`` lies inside the frame.

    >>> still = np.zeros((2, 2, 2), np.float32)
    >>> bool(consistent_flow(still, still).all())
    True
    """
    back, inside = warp(backward, forward)
    total = forward + back
    err = (total**2).sum(axis=2)
    bound = 0.01 * ((forward**2).sum(axis=2) + (back**2).sum(axis=2)) + 0.5
    return inside & (err <= bound)


# ---------------------------------------------------------------------------- smoothing
class SceneCutDetector:
    """Flags a frame whose L histogram jumps away from the previous frame's.

    A cut is a histogram distance above ``threshold`` and above ``ratio`` times the
    running mean of the distances between the frames of the current scene.

    >>> detect = SceneCutDetector()
    >>> [detect(np.full((4, 4), v, np.uint8)) for v in (10, 10, 200, 200)]
    [False, False, True, False]
    """

    def __init__(self, threshold: float = CUT_THRESHOLD, ratio: float = CUT_RATIO):
        self.threshold = threshold
        self.ratio = ratio
        self._hist = None
        self._typical = None
        self.cuts = 0

    def __call__(self, L8: np.ndarray) -> bool:
        """True when this frame starts a new scene (never for the first frame)."""
        hist = l_histogram(L8)
        cut = False
        if self._hist is not None:
            d = histogram_distance(self._hist, hist)
            typical = 0.0 if self._typical is None else self._typical
            cut = d > self.threshold and d > self.ratio * typical
            if cut:
                self._typical = None  # a new scene: learn its motion afresh
            else:
                self._typical = d if self._typical is None else 0.9 * typical + 0.1 * d
        self._hist = hist
        self.cuts += cut
        return cut


class TemporalSmoother:
    """Chroma averaged over time, gated by luminance change, reset at scene cuts.

    Call it on each frame in order with the frame's L ``(H, W)`` and the model's UV
    ``(H, W, 2)``; it returns the smoothed UV (float32). ``smoothing`` in [0, 1) is the
    weight of the past (0 = off: the model's UV is returned unchanged); ``flow=True``
    follows motion with optical flow. After each call ``cut`` says whether the frame
    started a new scene; ``cuts`` counts them.

    Examples
    --------
    >>> sm = TemporalSmoother(0.5)
    >>> L = np.full((4, 4), 50.0, np.float32)
    >>> a, b = np.zeros((4, 4, 2), np.float32), np.full((4, 4, 2), 10.0, np.float32)
    >>> float(sm(L, a)[0, 0, 0]), float(sm(L, b)[0, 0, 0])  # half of the jump is held back
    (0.0, 5.0)
    """

    def __init__(self, smoothing: float = 0.5, *, flow: bool = False, cut_threshold=CUT_THRESHOLD):
        self.smoothing = check_smoothing(smoothing)
        self.flow = bool(flow)
        self._detect = SceneCutDetector(cut_threshold)
        self._prev_L8 = None
        self._prev_L = None
        self._prev_uv = None
        self.cut = False

    @property
    def cuts(self) -> int:
        return self._detect.cuts

    def _weights(self, dL: np.ndarray) -> np.ndarray:
        """Per-pixel weight of the past: ``smoothing * exp(-(blur(dL) / GATE_L)^2)``, float32."""
        cv2 = _cv2()
        g = cv2.blur(dL, (GATE_BLUR, GATE_BLUR), borderType=cv2.BORDER_REFLECT)
        g *= np.float32(1.0 / GATE_L)
        np.square(g, out=g)
        np.negative(g, out=g)
        np.exp(g, out=g)
        g *= np.float32(self.smoothing)
        return g

    def __call__(self, L: np.ndarray, uv: np.ndarray) -> np.ndarray:
        L8 = luma8(L)
        self.cut = self._detect(L8)
        uv = np.asarray(uv, dtype=np.float32)
        if self.smoothing == 0.0:
            return uv
        if self._prev_uv is None or self.cut or self._prev_uv.shape != uv.shape:
            out = uv
        else:
            prev_uv, prev_L, inside = self._prev_uv, self._prev_L, None
            if self.flow:
                back = optical_flow(L8, self._prev_L8)  # where each pixel was in the last frame
                prev_uv, inside = warp(prev_uv, back)
                prev_L, _ = warp(prev_L, back)
            w = self._weights(np.asarray(L, np.float32) - prev_L)
            if inside is not None:
                w[~inside] = 0.0
            out = prev_uv - uv  # uv + w * (prev - uv), in place
            out *= w[..., None]
            out += uv
        self._prev_L8, self._prev_L, self._prev_uv = L8, np.asarray(L, np.float32), out
        return out


# ---------------------------------------------------------------------------- metrics
@dataclass
class PairGeometry:
    """What the flicker metrics need about one pair of input frames, shared by meters."""

    cut: bool
    luma_change: float  #: mean |L_{t+1} - L_t|
    forward: np.ndarray | None = None  #: flow t -> t+1
    visible: np.ndarray | None = None  #: forward-backward consistent pixels of frame t


def pair_geometry(L0: np.ndarray, L1: np.ndarray, cut: bool, *, warped: bool = True):
    """Measure a pair of consecutive input frames once (flows are the costly part)."""
    luma_change = float(np.mean(np.abs(np.asarray(L1, np.float32) - L0)))
    if cut or not warped:
        return PairGeometry(cut, luma_change)
    a, b = luma8(L0), luma8(L1)
    forward = optical_flow(a, b)
    visible = consistent_flow(forward, optical_flow(b, a))
    return PairGeometry(cut, luma_change, forward, visible)


@dataclass
class FlickerMeter:
    """Accumulates the flicker metrics over the consecutive frame pairs of one video."""

    frames: int = 0
    pairs: int = 0
    scene_cuts: int = 0
    _chroma: float = field(default=0.0, repr=False)
    _luma: float = field(default=0.0, repr=False)
    _warp_sum: float = field(default=0.0, repr=False)
    _warp_pixels: int = field(default=0, repr=False)
    _pixels: int = field(default=0, repr=False)

    def add(self, uv0: np.ndarray, uv1: np.ndarray, geometry: PairGeometry) -> None:
        """Add the pair (frame t chroma ``uv0``, frame t+1 chroma ``uv1``)."""
        if geometry.cut:
            self.scene_cuts += 1
            return
        self.pairs += 1
        self._chroma += float(np.mean(np.abs(uv1 - uv0)))
        self._luma += geometry.luma_change
        if geometry.forward is not None:
            warped, _ = warp(np.asarray(uv1, np.float32), geometry.forward)
            err = np.abs(warped - uv0).mean(axis=2)[geometry.visible]
            self._warp_sum += float(err.sum())
            self._warp_pixels += err.size
            self._pixels += geometry.visible.size

    def result(self) -> dict:
        """The metrics as a dict (NaN where there was no pair to measure)."""
        nan = float("nan")
        chroma = self._chroma / self.pairs if self.pairs else nan
        luma = self._luma / self.pairs if self.pairs else nan
        return {
            "frames": self.frames,
            "pairs": self.pairs,
            "scene_cuts": self.scene_cuts,
            "chroma_change": chroma,
            "luma_change": luma,
            "flicker": chroma / luma if self.pairs and luma > 0 else nan,
            "warp_error": self._warp_sum / self._warp_pixels if self._warp_pixels else nan,
            "visible_fraction": self._warp_pixels / self._pixels if self._pixels else nan,
        }
