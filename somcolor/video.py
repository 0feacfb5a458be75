"""Colorize videos: decode, colorize, smooth over time and encode, a batch of frames at a time.

:func:`colorize_video` streams a video through a :class:`~somcolor.pipeline.Colorizer`:
frames are decoded with PyAV (FFmpeg), reduced to their CIELUV luminance, given chroma
by the model, smoothed over time (:mod:`somcolor.temporal`) and encoded again, a batch
of :data:`BATCH_FRAMES` frames at a time, so memory stays flat however long the video.
The colorizing runs on a second thread, beside the decoding and encoding. The output
keeps what a viewer notices:

* the frame count and the frame rate as an exact rational (30000/1001 stays 30000/1001):
  each frame keeps its time, snapped to the nominal frame grid (at most half a frame);
* the size, without rescaling: H.264 in 4:2:0 needs even sizes, so odd-sized videos
  are encoded in 4:4:4 (High 4:4:4 profile), which every FFmpeg-based player shows at
  the exact size (some browsers and hardware decoders do not play that profile);
* the display rotation (the container's display matrix) and the pixel aspect ratio;
* the audio: the first audio stream's packets are copied untouched when the output
  container accepts its codec, and re-encoded to AAC only when it does not
  (:attr:`VideoReport.audio` says which). Other streams (subtitles, data) are dropped.

The output is H.264 (libx264, ``crf``/``preset``) in MP4 (``.mp4``/``.m4v``; ``.mov``
and ``.mkv`` work too), BT.709, written to a temporary file beside the target and
renamed at the end (:func:`somcolor.io.atomic_write`): an error or Ctrl-C leaves no
partial output, and an existing file is replaced only with ``overwrite=True``.

Bad input (a missing, empty, truncated or foreign file, a still image, no video
stream, an undecodable codec, zero frames) raises :class:`VideoError` with a one-line
message naming the file.

:func:`evaluate_video` and :func:`compare_smoothing` measure flicker (see
:mod:`somcolor.temporal` for the metrics).

PyAV and OpenCV come with the ``video`` extra (:data:`INSTALL_HINT`) and are imported when
first needed, so ``import somcolor`` works without them.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ._threads import single_blas, threads_for
from .color import compose, luminance, rgb_to_luv, split_luv, to_float_rgb
from .exceptions import SomcolorError
from .io import atomic_write
from .paths import VIDEO_MODEL  # noqa: F401 - the video commands' model, named here too
from .temporal import (
    FlickerMeter,
    SceneCutDetector,
    TemporalSmoother,
    check_smoothing,
    luma8,
    pair_geometry,
)

log = logging.getLogger(__name__)

#: How to install the ``video`` extra: in the checkout's venv (what ``make demo`` made; ``make
#: install`` adds every extra), or for somcolor installed from a wheel.
INSTALL_HINT = (
    ".venv/bin/pip install -e '.[video]' in the somcolor checkout, or pip install 'somcolor[video]'"
)
#: Whether PyAV and OpenCV are installed (checked without importing them).
HAS_VIDEO = all(importlib.util.find_spec(m) is not None for m in ("av", "cv2"))
#: Frames decoded, then colorized, then encoded together.
BATCH_FRAMES = 8

#: Output file endings and the FFmpeg muxer each one gets.
OUTPUT_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
#: x264's presets, fastest first.
PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
#: Bit rate of re-encoded AAC audio, per channel.
AAC_BITRATE_PER_CHANNEL = 96_000
#: The FFmpeg demuxers a video is read with (FFmpeg has hundreds: playlists such as
#: ``concat`` or ``hls`` open other files or URLs, image demuxers read stills). Files
#: are still identified by content; one that only another demuxer reads is refused.
DEMUXERS = (
    "mov",  # MP4, MOV, M4V (FFmpeg's "mov,mp4,m4a,3gp,3g2,mj2")
    "matroska",  # MKV and WebM ("matroska,webm")
    "avi",
    "h264",  # raw H.264 elementary stream (.h264, .264)
    "hevc",  # raw H.265 elementary stream (.h265, .hevc)
)
#: What :data:`DEMUXERS` covers, in words, for error messages.
_DEMUXERS_IN_WORDS = "MP4/MOV, Matroska/WebM, AVI, raw H.264 or H.265"
#: Passed to FFmpeg when opening an input: only those demuxers, only local files.
_INPUT_OPTIONS = {"format_whitelist": ",".join(DEMUXERS), "protocol_whitelist": "file"}
#: ISO-BMFF brands of still-image files (HEIF, AVIF): ``ftyp`` alone does not mean video.
_IMAGE_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"})


class VideoError(SomcolorError):
    """A video cannot be read or written: the message names the file and the reason."""


@dataclass
class VideoReport:
    """What :func:`colorize_video` wrote."""

    frames: int  #: frames written (= frames decoded)
    fps: str  #: the frame rate as a rational, e.g. "30000/1001"
    width: int
    height: int
    duration: float  #: seconds from the first frame's start to the last frame's end
    audio: str  #: "copied", "re-encoded to AAC" or "none"
    seconds: float  #: wall time
    scene_cuts: int = 0  #: scene cuts found (the smoothing restarts at each)
    pix_fmt: str = "yuv420p"  #: "yuv420p", or "yuv444p" for odd sizes
    gamut_clipped: int = 0  #: pixels clipped to the sRGB gamut, all frames together


# ---------------------------------------------------------------------------- opening
def _import_av():
    """PyAV, or a :class:`VideoError` with the install hint."""
    try:
        import av
    except ImportError:
        raise VideoError(f"video support needs PyAV and OpenCV: {INSTALL_HINT}") from None
    return av


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _looks_like_video(path: Path) -> bool:
    """A quick look at the first bytes for MP4/MOV, Matroska/WebM and AVI containers."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    if head[4:8] == b"ftyp":
        return head[8:12] not in _IMAGE_BRANDS
    return head.startswith(b"\x1a\x45\xdf\xa3") or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")


def _av_open(av, path: Path):
    """Open ``path`` for reading with one of :data:`DEMUXERS` (FFmpeg errors propagate)."""
    return av.open(str(path), metadata_errors="replace", container_options=_INPUT_OPTIONS)


def _is_still_image(path: Path) -> bool:
    """Whether ``path`` is a photo in one of :data:`somcolor.io.IMAGE_FORMATS`."""
    from PIL import Image

    from .io import IMAGE_FORMATS

    try:
        with Image.open(path, formats=IMAGE_FORMATS):
            return True
    except Exception:  # noqa: BLE001 - anything Pillow cannot open is not a photo here
        return False


def _video_streams(container) -> list:
    av = _import_av()
    still = av.stream.Disposition.attached_pic
    return [s for s in container.streams.video if not s.disposition & still]


def is_video(path) -> bool:
    """Whether ``path`` is a video file, judged by probing its content (not its name).

    A video is a file FFmpeg opens with one of :data:`DEMUXERS` with at least one
    video stream that is not cover art. Never raises for unreadable files
    (they are not videos), except that without the ``video`` extra a file that looks
    like a video container raises :class:`VideoError` with the install hint.
    """
    path = Path(path)
    if not path.is_file():
        return False
    try:
        av = _import_av()
    except VideoError as exc:
        if _looks_like_video(path):
            raise VideoError(f"{path}: {exc}") from None
        return False
    try:
        with _av_open(av, path) as container:
            return bool(_video_streams(container))
    except (av.FFmpegError, OSError, ValueError, UnicodeError):
        return False


def frame_size(path) -> tuple[int, int]:
    """The ``(width, height)`` of the video's frames, as its header states them.

    A raw stream may change size midway; :func:`colorize_video` checks every frame.

    Raises
    ------
    VideoError
        If ``path`` is not a video this module reads.
    """
    path = Path(path)
    av = _import_av()
    with _open_input(av, path) as container:
        stream = _video_stream(container, path)
        return int(stream.codec_context.width), int(stream.codec_context.height)


def _open_input(av, path: Path):
    """Open ``path`` for reading, or raise :class:`VideoError` saying why not."""
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if not path.is_file():
        raise VideoError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    try:
        return _av_open(av, path)
    except av.FFmpegError as exc:
        if _is_still_image(path):
            raise VideoError(
                f"{path}: a still image, not a video (use 'somcolor colorize')"
            ) from None
        raise VideoError(
            f"{path}: not a video file of a format read here ({_DEMUXERS_IN_WORDS}): "
            f"{_one_line(exc)}"
        ) from None
    except (OSError, ValueError, UnicodeError) as exc:
        raise VideoError(f"{path}: cannot open ({_one_line(exc)})") from None


def _video_stream(container, path: Path):
    """The video stream to colorize; refuses undecodable and truncated files."""
    streams = _video_streams(container)
    if not streams:
        kinds = ", ".join(s.type for s in container.streams) or "no stream holds any data"
        raise VideoError(f"{path}: no video stream ({kinds})")
    stream = streams[0]
    if stream.codec_context is None:
        raise VideoError(f"{path}: unsupported video codec (FFmpeg has no decoder for it)")
    size = path.stat().st_size
    entries = stream.index_entries
    if len(entries) and max(e.pos + e.size for e in entries) > size:
        raise VideoError(f"{path}: truncated file (its index points past the end)")
    return stream


def _frame_rate(stream, path: Path) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 0 < rate <= 1000:
            return Fraction(rate)
    raise VideoError(f"{path}: cannot tell the frame rate")


def _expected_frames(stream, rate: Fraction, container) -> int | None:
    """Frames the header promises, or an estimate from the duration; None if unknown."""
    if stream.frames:
        return int(stream.frames)
    if stream.duration and stream.time_base:
        return max(1, round(stream.duration * stream.time_base * rate))
    if container.duration:
        return max(1, round(Fraction(container.duration, 1_000_000) * rate))
    return None


def _check_options(smoothing, crf, preset, max_pixels) -> float:
    try:
        smoothing = check_smoothing(smoothing)
    except SomcolorError as exc:
        raise VideoError(str(exc)) from None
    if isinstance(crf, bool) or not isinstance(crf, int | np.integer) or not 0 <= crf <= 51:
        raise VideoError(f"crf must be an integer in 0..51, got {crf!r}")
    if preset not in PRESETS:
        raise VideoError(f"preset must be one of {', '.join(PRESETS)}; got {preset!r}")
    if max_pixels is not None and (not isinstance(max_pixels, int | np.integer) or max_pixels < 1):
        raise VideoError(f"max_pixels must be a positive integer or None, got {max_pixels!r}")
    return smoothing


def _output_format(dst: Path) -> str:
    fmt = OUTPUT_FORMATS.get(dst.suffix.lower())
    if fmt is None:
        endings = ", ".join(OUTPUT_FORMATS)
        raise VideoError(f"{dst}: unknown video file ending {dst.suffix!r} (use {endings})")
    return fmt


# ---------------------------------------------------------------------------- colorizing
@functools.cache
def _gray_luminance_table() -> np.ndarray:
    """:func:`~somcolor.color.luminance` of the 256 gray levels, float32."""
    return luminance(np.arange(256, dtype=np.uint8)[None, :])[0].astype(np.float32)


def frame_luminance(rgb: np.ndarray) -> np.ndarray:
    """:func:`~somcolor.color.luminance` of a uint8 RGB frame, as float32.

    Black-and-white film decodes to R = G = B; such frames are looked up in a
    256-entry table of ``luminance`` itself (same values, tens of times faster than the
    full conversion), others go through ``luminance``.
    """
    r = rgb[..., 0]
    if rgb.dtype == np.uint8 and np.array_equal(r, rgb[..., 1]) and np.array_equal(r, rgb[..., 2]):
        return _gray_luminance_table()[r]
    return luminance(rgb).astype(np.float32, copy=False)


def colorize_frame(
    model, rgb: np.ndarray, smoother: TemporalSmoother | None = None, plan=None, index: int = 0
):
    """One RGB frame -> ``(colorized RGB uint8, L, clipped pixels)``; with a key-frame
    :class:`~somcolor.keyframes.Plan`, frame ``index`` takes the hints that reach it."""
    L = frame_luminance(rgb)
    uv = None if plan is None else plan.uv(index, L)
    if uv is None:
        uv = model.predict_uv(L)
    if smoother is not None:
        uv = smoother(L, uv)
    out, clipped = compose(L, uv)
    return out, L, clipped


@dataclass(frozen=True)
class _Bounds:
    """What one :func:`colorize_video` run may take; None is no bound.

    Every decoded frame is checked against all of them (a header can lie), and the
    output's size after every batch of frames. The web server sets them all; the CLI
    only ``max_pixels``.
    """

    max_pixels: int | None = None  #: pixels per frame
    max_frames: int | None = None  #: frames decoded
    max_duration: float | None = None  #: seconds of video, first frame to last
    max_seconds: float | None = None  #: wall-clock seconds of the whole run
    max_output_bytes: int | None = None  #: size of the output file
    cancel: object = None  #: anything with ``is_set()`` (a threading.Event): stop when set

    def __post_init__(self):
        for name in ("max_pixels", "max_frames", "max_duration", "max_seconds", "max_output_bytes"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float | np.number)
                or not value > 0
            ):
                raise VideoError(f"{name} must be a positive number or None, got {value!r}")


class _FrameChecks:
    """The :class:`_Bounds` of one run, checked on each decoded frame (a header can lie)
    and, with :meth:`running`, between pieces of other work; ``started`` is the run's
    start (``time.monotonic()``; None: now)."""

    def __init__(self, src, bounds: _Bounds, rate, started: float | None = None):
        self.src, self.bounds, self.rate = src, bounds, rate
        self.started = time.monotonic() if started is None else started
        self.decoded = 0
        self.first_time = None

    def __call__(self, frame, done: int | None = None) -> None:
        """Refuse a decoded frame past a bound, or any frame after a cancel or past the
        deadline (``done``: the frames written so far, for the message)."""
        b, src = self.bounds, self.src
        self.decoded += 1
        if b.cancel is not None and b.cancel.is_set():
            raise VideoError(f"{src}: cancelled")
        pixels = frame.width * frame.height
        if b.max_pixels is not None and pixels > b.max_pixels:
            raise VideoError(
                f"{src}: video too large: frame {self.decoded} is {frame.width}x{frame.height} "
                f"= {pixels} pixels, limit is {b.max_pixels}"
            )
        if b.max_frames is not None and self.decoded > b.max_frames:
            raise VideoError(f"{src}: video too long: more than {b.max_frames} frames, the limit")
        if b.max_duration is not None:
            t = frame.time if frame.time is not None else self.decoded / self.rate
            if self.first_time is None:
                self.first_time = t
            if t - self.first_time >= b.max_duration:
                raise VideoError(
                    f"{src}: video too long: more than {b.max_duration:g} s, the limit"
                )
        self.running(done, cancel=False)

    def running(self, done: int | None = None, *, cancel: bool = True) -> None:
        """Stop the run once cancelled or past its deadline."""
        b, src = self.bounds, self.src
        if cancel and b.cancel is not None and b.cancel.is_set():
            raise VideoError(f"{src}: cancelled")
        if b.max_seconds is not None and time.monotonic() - self.started > b.max_seconds:
            frames = "" if done is None else f" ({done} frames done)"
            raise VideoError(
                f"{src}: colorizing took longer than the limit of {b.max_seconds:g} s{frames}"
            )


class _Transcoder:
    """One run of :func:`colorize_video`: decode -> colorize -> encode, plus the audio."""

    def __init__(
        self,
        av,
        src,
        inp,
        video,
        audio,
        model,
        *,
        smoother,
        fmt,
        crf,
        preset,
        progress,
        bounds,
        plan=None,
        started=None,
    ):
        self.av, self.src, self.inp, self.video, self.audio = av, src, inp, video, audio
        self.model, self.smoother, self.fmt = model, smoother, fmt
        self.plan = plan  #: hints on key frames (:mod:`somcolor.keyframes`), or None
        self.colored = 0  #: frames colorized so far (the next frame's index)
        self.crf, self.preset, self.progress = crf, preset, progress
        self.bounds = bounds
        self.rate = _frame_rate(video, src)
        self.checks = _FrameChecks(src, bounds, self.rate, started)
        self.total = _expected_frames(video, self.rate, inp)
        self.fh = None
        self.out = self.vout = self.aout = None
        self.audio_mode = "none"
        self.pix_fmt = "yuv420p"
        self.frames = 0
        self.first_pts = self.last_pts = None
        self.snapped = 0
        self.clipped = 0

    # -- output set-up, at the first decoded frame (its side data carries the rotation)
    def _open_output(self, fh, first, copy_audio: bool):
        av = self.av
        out = av.open(fh, "w", format=self.fmt)
        try:
            width, height = first.width, first.height
            self.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
            vout = out.add_stream(
                "libx264", rate=self.rate, options={"crf": str(self.crf), "preset": self.preset}
            )
            vout.width, vout.height, vout.pix_fmt = width, height, self.pix_fmt
            vout.codec_context.time_base = 1 / self.rate
            vout.thread_type = "AUTO"
            sar = self.video.sample_aspect_ratio
            if sar and sar > 0:
                vout.codec_context.sample_aspect_ratio = sar
            cc = vout.codec_context  # BT.709, limited range: what _to_yuv produces
            cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = 1, 1, 1, 1
            matrix = _display_matrix(first)
            if matrix is not None:
                vout.set_display_matrix(matrix)
            aout = None
            if self.audio is not None:
                if copy_audio:
                    aout = out.add_stream_from_template(self.audio)
                else:
                    ain = self.audio.codec_context
                    aout = out.add_stream("aac", rate=ain.sample_rate)
                    aout.layout = _aac_layout(ain.layout)
                    aout.bit_rate = AAC_BITRATE_PER_CHANNEL * aout.layout.nb_channels
            out.start_encoding()
        except BaseException:
            _close_quietly(out)
            raise
        return out, vout, aout

    def _setup(self, fh, first) -> None:
        av = self.av
        copy = self.audio is not None
        try:
            self.out, self.vout, self.aout = self._open_output(fh, first, copy)
        except (av.FFmpegError, ValueError) as exc:
            if not copy:
                raise VideoError(f"cannot start the encoder ({_one_line(exc)})") from None
            log.info("audio %s cannot be copied (%s)", self.audio.codec.name, _one_line(exc))
            fh.seek(0)
            fh.truncate()
            copy = False
            self.out, self.vout, self.aout = self._open_output(fh, first, copy)
        if self.audio is not None:
            if copy:
                self.audio_mode = "copied"
            else:
                self.audio_mode = "re-encoded to AAC"
                self.audio.codec_context.thread_type = "AUTO"

    # -- timing
    def _pts(self, frame) -> int:
        """The frame's time on the output's frame grid (time base 1/rate), kept increasing."""
        if frame.pts is None or frame.time_base is None:
            pts = 0 if self.last_pts is None else self.last_pts + 1
        else:
            pts = round(frame.pts * frame.time_base * self.rate)
        if self.last_pts is not None and pts <= self.last_pts:
            pts = self.last_pts + 1
            self.snapped += 1
        if self.first_pts is None:
            self.first_pts = pts
        self.last_pts = pts
        return pts

    # -- the bounds
    def _check_frame(self, frame) -> None:
        """Refuse a decoded frame past one of :attr:`bounds` (or after a cancel)."""
        self.checks(frame, self.frames)

    def _check_output_size(self) -> None:
        limit = self.bounds.max_output_bytes
        if limit is not None and self.fh.tell() > limit:
            raise VideoError(f"{self.src}: the output passed the limit of {limit} bytes")

    # -- the streams
    def _colorize_batch(self, frames: list) -> list:
        """Colorize decoded RGB frames in order (on the colorizing thread).

        The kernels run on this one thread (BLAS too, held at one thread for the batch):
        the other core decodes and encodes, and a parallel region would wait for it.
        (Sharing the prediction's tiles with a second thread was measured not to pay:
        the encoder's threads keep the other core busy.)
        """
        out = []
        with threads_for(0), single_blas():
            for rgb in frames:
                out.append(
                    colorize_frame(self.model, rgb, self.smoother, self.plan, self.colored)[::2]
                )
                self.colored += 1
        return out

    def _submit(self, pool, batch: list):
        """Start colorizing ``batch`` (decoded frames) on ``pool``: ``(batch, future)``."""
        rgb = [frame.to_ndarray(format="rgb24") for frame in batch]
        return batch, pool.submit(self._colorize_batch, rgb)

    def _encode_batch(self, batch: list, colored: list) -> None:
        """Encode a batch's colorized frames, with the decoded frames' times."""
        av = self.av
        for frame, (out_rgb, clipped) in zip(batch, colored, strict=True):
            self.clipped += clipped
            oframe = _to_yuv(av, out_rgb, self.pix_fmt)
            oframe.pts = self._pts(frame)
            oframe.time_base = self.vout.codec_context.time_base
            self.out.mux(self.vout.encode(oframe))
            self.frames += 1
        self._check_output_size()
        if self.progress is not None and batch:
            self.progress(self.frames, self.total)

    def _finish(self, pending) -> None:
        """Wait for a submitted batch (re-raising its error) and encode it."""
        if pending is not None:
            batch, future = pending
            self._encode_batch(batch, future.result())

    def _audio_packet(self, packet) -> None:
        if self.audio_mode == "copied":
            if packet.dts is None and packet.pts is None:
                return  # the demuxer's end-of-stream marker
            packet.stream = self.aout
            self.out.mux(packet)
            return
        for frame in packet.decode():
            if frame.pts is not None and frame.time_base is not None:
                frame.pts = round(frame.pts * frame.time_base * frame.sample_rate)
                frame.time_base = Fraction(1, frame.sample_rate)
            self.out.mux(self.aout.encode(frame))

    def run(self, fh) -> None:
        """Write the whole output to the open file ``fh`` (called by ``atomic_write``).

        Two threads: this one demuxes, decodes, encodes and muxes; a second one
        colorizes (the numba kernels release the GIL). While batch n is colorized,
        batch n - 1 is encoded and batch n + 1 decoded; frames stay in order, and at
        most three batches are held.
        """
        av = self.av
        self.fh = fh
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        self.video.codec_context.thread_type = "AUTO"
        early_audio, batch, pending = [], [], None
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="somcolor-colorize")
        try:
            for packet in self.inp.demux(*streams):
                if packet.stream is self.audio:
                    if self.out is None:
                        early_audio.append(packet)  # before the first video frame: a few only
                    else:
                        self._audio_packet(packet)
                    continue
                for frame in packet.decode():
                    self._check_frame(frame)
                    if self.out is None:
                        self._setup(fh, frame)
                        for early in early_audio:
                            self._audio_packet(early)
                        early_audio = []
                    batch.append(frame)
                    if len(batch) >= BATCH_FRAMES:
                        submitted = self._submit(pool, batch)
                        self._finish(pending)
                        pending, batch = submitted, []
            if self.out is None:
                raise VideoError(f"{self.src}: no frames (the video stream is empty)")
            submitted = self._submit(pool, batch)
            self._finish(pending)
            pending = None
            self._finish(submitted)
            self.out.mux(self.vout.encode(None))
            if self.audio_mode == "re-encoded to AAC":
                self.out.mux(self.aout.encode(None))
            self.out.close()
            self._check_output_size()
        except av.FFmpegError as exc:
            raise VideoError(f"{self.src}: truncated or corrupt video ({_one_line(exc)})") from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if self.out is not None:
                _close_quietly(self.out)
        expected = _indexed_frames(self.video)
        if expected is not None and self.frames < expected:
            raise VideoError(
                f"{self.src}: truncated video: decoded {self.frames} of {expected} frames"
            )
        if self.snapped:
            log.warning("%s: %d frame times were moved onto the frame grid", self.src, self.snapped)


def _aac_layout(layout) -> str:
    """A channel layout AAC takes: the input's when it is a named one, else by channel count."""
    if not layout.name.endswith("channels"):
        return layout.name
    return {1: "mono", 6: "5.1", 8: "7.1"}.get(layout.nb_channels, "stereo")


def _indexed_frames(stream) -> int | None:
    """Frames a complete sample index (MP4, MOV) says will decode; None without one."""
    entries = stream.index_entries
    if not stream.frames or len(entries) != stream.frames:
        return None
    return sum(not e.is_discard for e in entries)


def _display_matrix(frame) -> list[int] | None:
    """The frame's display matrix (rotation/flip) as 9 integers, if it has one."""
    for side in frame.side_data:
        if side.type.name == "DISPLAYMATRIX":
            return np.frombuffer(bytes(side), dtype="<i4", count=9).tolist()
    return None


def _to_yuv(av, rgb: np.ndarray, pix_fmt: str):
    """RGB uint8 -> an encoder-ready frame, BT.709 limited range."""
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    return frame.reformat(
        format=pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG", interpolation="BICUBIC"
    )


def _close_quietly(container) -> None:
    try:
        container.close()
    except Exception:  # noqa: BLE001 - the output is discarded anyway
        pass


def colorize_video(
    src,
    dst,
    model,
    *,
    smoothing: float = 0.5,
    flow: bool = False,
    crf: int = 18,
    preset: str = "medium",
    overwrite: bool = False,
    max_pixels: int | None = None,
    max_frames: int | None = None,
    max_duration: float | None = None,
    max_seconds: float | None = None,
    max_output_bytes: int | None = None,
    cancel=None,
    progress: Callable[[int, int | None], None] | None = None,
    hints=None,
) -> VideoReport:
    """Colorize every frame of the video ``src`` into ``dst`` (H.264 in MP4 by default).

    Parameters
    ----------
    src, dst : str or Path
        Input video; output file (``.mp4``, ``.m4v``, ``.mov`` or ``.mkv``).
    model : Colorizer
        A fitted model; only ``predict_uv`` is used.
    smoothing : float in [0, 1), default 0.5
        Strength of the temporal chroma smoothing (0 = off): the weight of the past in
        the moving average (:class:`~somcolor.temporal.TemporalSmoother`).
    flow : bool, default False
        Follow motion with optical flow when smoothing (slower).
    crf : int in 0..51, default 18
        x264 constant rate factor: lower is better quality and larger files.
    preset : str, default "medium"
        x264 speed/compression preset (see :data:`PRESETS`).
    overwrite : bool, default False
        Replace an existing ``dst``.
    max_pixels : int or None
        Refuse videos whose frames have more pixels than this: the stream's header is
        checked before anything is decoded, and every decoded frame.
    max_frames, max_duration, max_seconds, max_output_bytes : number or None
        Stop with a :class:`VideoError` at the first frame past ``max_frames`` frames
        or ``max_duration`` seconds of video, once the run has taken ``max_seconds``
        of wall time, or once the output file is larger than ``max_output_bytes``.
        None (the default) is no bound.
    cancel : threading.Event, optional
        Checked before each frame: once set, the run stops with a :class:`VideoError`.
    progress : callable, optional
        Called as ``progress(frames_done, frames_total)`` after each batch;
        ``frames_total`` is None when the container does not tell.
    hints : str, Path, dict or list, optional
        Colour hints on key frames, carried through each shot (:mod:`somcolor.keyframes`):
        a keys file, its JSON structure (``{"keyframes": [...]}``) or the list. The video
        is then decoded twice: once to find the cuts and track the hinted points.

    Returns
    -------
    VideoReport

    Raises
    ------
    VideoError
        For bad input, bad options or an output that exists; no output file is left.
    """
    t0 = time.perf_counter()
    started = time.monotonic()
    src, dst = Path(src), Path(dst)
    smoothing = _check_options(smoothing, crf, preset, max_pixels)
    bounds = _Bounds(max_pixels, max_frames, max_duration, max_seconds, max_output_bytes, cancel)
    fmt = _output_format(dst)
    av = _import_av()
    _check_output(src, dst, overwrite)
    smoother = TemporalSmoother(smoothing, flow=flow)
    plan = None
    if hints is not None:
        plan = _key_frame_plan(av, src, model, hints, bounds, started)
    with _open_input(av, src) as inp:
        video = _video_stream(inp, src)
        width, height = _frame_size(video, src, max_pixels)
        _check_length(video, inp, src, bounds)
        audio = _audio_stream(inp, src)
        job = _Transcoder(
            av,
            src,
            inp,
            video,
            audio,
            model,
            smoother=smoother,
            fmt=fmt,
            crf=crf,
            preset=preset,
            progress=progress,
            bounds=bounds,
            plan=plan,
            started=started,
        )
        _write(dst, job, overwrite)
    report = _report(job, width, height, t0)
    log.info("%s -> %s: %s", src, dst, report)
    return report


def _key_frame_plan(av, src: Path, model, hints, bounds: _Bounds, started: float):
    """Pass 1 for hints on key frames: read the keys, decode the video once (within the
    same bounds as the colorizing pass) and make the :class:`~somcolor.keyframes.Plan`."""
    from . import keyframes

    try:
        keys = keyframes.as_keyframes(hints)
    except SomcolorError as exc:
        raise VideoError(str(exc)) from None
    if not hasattr(model, "prior") and hasattr(model, "predictor"):
        model = model.predictor()  # a Colorizer: its inference model
    if not hasattr(model, "prior"):
        raise VideoError(f"{src}: hints on key frames apply to SOM models only")
    with _open_input(av, src) as inp:
        video = _video_stream(inp, src)
        _frame_size(video, src, bounds.max_pixels)
        _check_length(video, inp, src, bounds)
        rate = _frame_rate(video, src)
        checks = _FrameChecks(src, bounds, rate, started)
        video.codec_context.thread_type = "AUTO"

        def frames():
            try:
                for index, frame in enumerate(inp.decode(video)):
                    checks(frame)
                    matrix = _display_matrix(frame)
                    if matrix is not None and matrix != [65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30]:
                        raise VideoError(
                            f"{src}: hints on key frames take unrotated videos only (this one "
                            "is shown rotated or flipped)"
                        )
                    yield index, frame_luminance(frame.to_ndarray(format="rgb24"))
            except av.FFmpegError as exc:
                raise VideoError(f"{src}: truncated or corrupt video ({_one_line(exc)})") from None

        try:
            return keyframes.plan(
                model, keys, frames(), float(rate), source=str(src), check=checks.running
            )
        except VideoError:
            raise
        except SomcolorError as exc:
            raise VideoError(str(exc)) from None


def _check_output(src: Path, dst: Path, overwrite: bool) -> None:
    """Refuse to write onto a folder, onto the input, or onto a file without ``overwrite``."""
    if dst.is_dir():
        raise VideoError(f"{dst}: output is a folder")
    if dst.exists():
        if src.exists() and dst.resolve() == src.resolve():
            raise VideoError(f"{dst}: refusing to overwrite the input file")
        if not overwrite:
            raise VideoError(f"{dst}: output exists (use --force to overwrite)")


def _frame_size(video, src: Path, max_pixels: int | None) -> tuple[int, int]:
    """The frames' ``(width, height)``; refuses frames of more than ``max_pixels`` pixels."""
    width, height = video.codec_context.width, video.codec_context.height
    if max_pixels is not None and width * height > max_pixels:
        raise VideoError(
            f"{src}: video too large: {width}x{height} = {width * height} pixels per frame, "
            f"limit is {max_pixels}"
        )
    return width, height


def _check_length(video, inp, src: Path, bounds: _Bounds) -> None:
    """Refuse at once a video whose header states more frames or seconds than allowed."""
    if bounds.max_frames is not None and video.frames and video.frames > bounds.max_frames:
        raise VideoError(
            f"{src}: video too long: {video.frames} frames, the limit is {bounds.max_frames}"
        )
    if bounds.max_duration is not None and inp.duration:
        seconds = inp.duration / 1_000_000
        if seconds > bounds.max_duration:
            raise VideoError(
                f"{src}: video too long: {seconds:.1f} s, the limit is {bounds.max_duration:g} s"
            )


def _audio_stream(inp, src: Path):
    """The first audio stream FFmpeg can decode, or None; logs the streams left out."""
    audio = next((s for s in inp.streams.audio if s.codec_context is not None), None)
    ignored = len(inp.streams) - 1 - (audio is not None)
    if ignored:
        log.info("%s: %d other stream(s) (subtitles, data, more audio) not copied", src, ignored)
    return audio


def _write(dst: Path, job: _Transcoder, overwrite: bool) -> None:
    """Run ``job`` into ``dst`` (:func:`~somcolor.io.atomic_write`); any failure is a VideoError."""
    try:
        atomic_write(dst, job.run, overwrite=overwrite)
    except VideoError:
        raise
    except SomcolorError as exc:
        raise VideoError(str(exc)) from None
    except OSError as exc:
        raise VideoError(f"{dst}: cannot write ({exc.strerror or _one_line(exc)})") from None


def _report(job: _Transcoder, width: int, height: int, t0: float) -> VideoReport:
    """What a finished ``job`` wrote; ``t0`` is when :func:`colorize_video` started."""
    rate = job.rate
    return VideoReport(
        frames=job.frames,
        fps=f"{rate.numerator}/{rate.denominator}",
        width=width,
        height=height,
        duration=float((job.last_pts - job.first_pts + 1) / rate),
        audio=job.audio_mode,
        seconds=time.perf_counter() - t0,
        scene_cuts=job.smoother.cuts,
        pix_fmt=job.pix_fmt,
        gamut_clipped=job.clipped,
    )


# ---------------------------------------------------------------------------- flicker
def iter_frames(source, *, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """RGB uint8 frames ``(H, W, 3)`` of a video file, or of an iterable of image arrays."""
    if isinstance(source, str | Path):
        path = Path(source)
        av = _import_av()
        with _open_input(av, path) as inp:
            video = _video_stream(inp, path)
            video.codec_context.thread_type = "AUTO"
            n = 0
            try:
                for frame in inp.decode(video):
                    if max_frames is not None and n >= max_frames:
                        return
                    yield frame.to_ndarray(format="rgb24")
                    n += 1
            except av.FFmpegError as exc:
                raise VideoError(f"{path}: truncated or corrupt video ({_one_line(exc)})") from None
            if n == 0:
                raise VideoError(f"{path}: no frames (the video stream is empty)")
        return
    for n, frame in enumerate(source):
        if max_frames is not None and n >= max_frames:
            return
        yield np.asarray(frame)


def _measure(frames: Iterable[np.ndarray], chroma_fns: list, *, warped: bool, progress) -> list:
    """Run each ``chroma_fn(L, rgb) -> uv`` over the frames; one FlickerMeter each."""
    meters = [FlickerMeter() for _ in chroma_fns]
    detect = SceneCutDetector()
    prev_L, prev_uvs = None, None
    for rgb in frames:
        L = frame_luminance(rgb) if rgb.ndim == 3 else luminance(rgb).astype(np.float32)
        cut = detect(luma8(L))
        uvs = [fn(L, rgb) for fn in chroma_fns]
        if prev_L is not None:
            geometry = pair_geometry(prev_L, L, cut, warped=warped)
            for meter, uv0, uv1 in zip(meters, prev_uvs, uvs, strict=True):
                meter.add(uv0, uv1, geometry)
        for meter in meters:
            meter.frames += 1
        prev_L, prev_uvs = L, uvs
        if progress is not None:
            progress(meters[0].frames, None)
    return [meter.result() for meter in meters]


def _own_chroma(L, rgb) -> np.ndarray:
    return np.ascontiguousarray(split_luv(rgb_to_luv(to_float_rgb(rgb)))[1], dtype=np.float32)


def compare_smoothing(
    source,
    model,
    settings: Iterable[tuple[float, bool]] = ((0.0, False), (0.5, False)),
    *,
    warped: bool = True,
    max_frames: int | None = None,
    progress=None,
) -> list[dict]:
    """Flicker metrics of ``model`` on ``source`` for several ``(smoothing, flow)`` settings.

    The frames are decoded and run through the model once; each setting smooths the
    same predictions. Nothing is encoded: the metrics are those of the exact chroma.
    Returns one dict per setting: ``smoothing``, ``flow`` and the
    :meth:`~somcolor.temporal.FlickerMeter.result` keys.
    """
    settings = [(check_smoothing(s), bool(f)) for s, f in settings]
    smoothers = [TemporalSmoother(s, flow=f) for s, f in settings]
    cache = {}

    def predicted(L):  # one prediction per frame, shared by all settings
        if cache.get("L") is not L:
            cache["L"], cache["uv"] = L, model.predict_uv(L)
        return cache["uv"]

    fns = [lambda L, rgb, sm=sm: sm(L, predicted(L)) for sm in smoothers]
    frames = iter_frames(source, max_frames=max_frames)
    results = _measure(frames, fns, warped=warped, progress=progress)
    return [{"smoothing": s, "flow": f, **r} for (s, f), r in zip(settings, results, strict=True)]


def evaluate_video(
    source,
    model=None,
    *,
    smoothing: float = 0.0,
    flow: bool = False,
    warped: bool = True,
    max_frames: int | None = None,
    progress=None,
) -> dict:
    """The flicker metrics of a video (see :mod:`somcolor.temporal`).

    Parameters
    ----------
    source : str, Path or iterable of arrays
        A video file, or frames as RGB (or gray) arrays.
    model : Colorizer, optional
        Without a model, the chroma of ``source`` itself is measured (e.g. an output of
        :func:`colorize_video`). With one, the frames are colorized by it (with
        ``smoothing`` and ``flow``), and that chroma is measured, before any encoding.
    warped : bool, default True
        Also compute the flow-warped error (two optical flows per frame pair).
    max_frames : int, optional
        Stop after this many frames.

    Returns
    -------
    dict
        ``frames``, ``pairs``, ``scene_cuts``, ``chroma_change``, ``luma_change``,
        ``flicker`` (their ratio), ``warp_error``, ``visible_fraction``.
    """
    if model is not None:
        return compare_smoothing(
            source,
            model,
            [(smoothing, flow)],
            warped=warped,
            max_frames=max_frames,
            progress=progress,
        )[0]
    frames = iter_frames(source, max_frames=max_frames)
    return _measure(frames, [_own_chroma], warped=warped, progress=progress)[0]
