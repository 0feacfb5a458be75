"""Colour hints on a video's key frames, carried through each shot.

A user gives colour points (and scribbles) on a few frames of a video, the key frames;
each key frame's hints colour its own frame as photo hints do (:mod:`somcolor.guide`)
and are carried to the other frames of the same shot, forward and backward, up to the
next key frame or scene cut:

* **by motion**: the hinted points (at most :data:`MAX_TRACKED` a key frame) are
  tracked from frame to frame (pyramidal Lucas-Kanade on the luminance shrunk to
  :data:`TRACK_SIDE` px, OpenCV), kept while the forward-backward check holds and their
  luminance stays close to the key frame's, dropped for good once lost; where a point
  is, it pulls by its appearance there (half the key frame's, half this frame's), not
  as a disc, which would jump from pixel to pixel;
* **by appearance**: the key frame's hinted pixels as the model sees them (the square
  roots of their code probabilities, and their L) pull every pixel of the frame that
  looks like them toward their colour, as the non-local pull of a photo's hints does
  (:class:`~somcolor.guide.Exemplars`); where nothing looks alike nothing moves, so the
  hints fade out where they no longer match.

The keys file (``somcolor colorize-video IN -o OUT --hints KEYS.json``)::

    {"keyframes": [
      {"frame": 0, "points": [{"x": 120, "y": 45, "color": "#c83232"}]},
      {"time": 12.5, "points": [...], "scribbles": "frame300.png"}
    ]}

a key frame by its 0-based decoded frame index (``frame``) or by its presentation time
in seconds from the first frame (``time``: the frame shown then); ``points`` as in a
photo's hints file (``radius`` allowed); ``scribbles`` an RGBA PNG of the frame's size,
relative to the keys file. Bounds: :data:`MAX_KEYFRAMES` key frames, :data:`MAX_POINTS`
points each, a keys file of at most :data:`MAX_KEYS_BYTES`.

Two passes over the video: :func:`plan` decodes it once to find the scene cuts, the key
frames' hinted pixels and the tracks (it holds the video's luminance at the tracking
size, at most :data:`MAX_TRACK_BYTES`); the transcoder then colours each frame with
:meth:`Plan.uv`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import guide
from .exceptions import SomcolorError
from .resize import working_shape

#: At most this many key frames ...
MAX_KEYFRAMES = 100
#: ... each with at most this many points (scribbles: at most MAX_SCRIBBLE_PIXELS pixels).
MAX_POINTS = 100
MAX_SCRIBBLE_PIXELS = 100_000
#: A key frame's index and time (seconds) at most: beyond any video the limits let in.
MAX_INDEX = 10**8
MAX_TIME = 1e6
#: Points of one key frame followed by motion (evenly spread over its points and scribble
#: pixels); all of them still pull by appearance.
MAX_TRACKED = 256
#: A keys file larger than this is refused unread.
MAX_KEYS_BYTES = 1 << 20
#: Long side of the frames the points are tracked on.
TRACK_SIDE = 192
#: The luminance of the whole video at the tracking size is held while tracking: at
#: most this many bytes (about 19 000 frames of 4:3 video, 10 minutes at 30 frames/s).
MAX_TRACK_BYTES = 512 << 20
#: Long side of the hints' solve on a video frame (a photo's is the model's working size):
#: the change the hints make is smooth, and it is brought to the frame's size along the
#: frame's edges (:func:`somcolor.guide.full_size`).
SOLVE_SIDE = 128
#: The hints are solved on every this-many-th frame; the frames between take the last
#: solve's change (objects move a few pixels a frame; the change is smooth).
SOLVE_EVERY = 4
#: Lucas-Kanade window (tracking pixels) and pyramid levels.
LK_WINDOW = 15
LK_LEVELS = 3
#: A tracked point is kept while following it forward and back returns within this many
#: tracking pixels ...
TRACK_FB_ERROR = 1.0
#: ... and its luminance stays within this many L units (0..100) of the key frame's.
TRACK_L_DIFF = 12.0


# ---------------------------------------------------------------------------- the keys file
@dataclass(frozen=True)
class KeyFrame:
    """One key frame as given: its ``frame`` index or its ``time`` (seconds), its
    ``points`` (what :func:`somcolor.guide.parse_hints` takes), its ``scribbles`` (an
    RGBA array, a path, or None) and ``where`` it was given (for error messages)."""

    frame: int | None
    time: float | None
    points: list
    scribbles: object
    where: str


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_keyframes(
    data, source: str = "hints", base: Path | None = None, *, paths: bool = True
) -> list[KeyFrame]:
    """Key frames from the keys file's JSON (or the same structure in Python).

    ``data`` is ``{"keyframes": [...]}`` or the list itself; a scribbles path is taken
    relative to ``base`` (with ``paths=False``, as on a server, a file name is refused:
    scribbles then come as arrays only). A mistake raises one :class:`SomcolorError` line
    naming ``source`` and the entry.

    >>> point = {"x": 1, "y": 2, "color": "#c83232"}
    >>> [k.frame for k in parse_keyframes({"keyframes": [{"frame": 3, "points": [point]}]})]
    [3]
    >>> parse_keyframes({"keyframes": [{"frame": -1, "points": []}]}, source="k")
    Traceback (most recent call last):
    ...
    somcolor.exceptions.SomcolorError: k: keyframes[0]: frame must be a whole number >= 0, got -1
    """
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"keyframes"})
        if unknown:
            raise SomcolorError(f"{source}: unknown keys {unknown}, expected only 'keyframes'")
        if "keyframes" not in data:
            raise SomcolorError(f"{source}: missing 'keyframes'")
        data = data["keyframes"]
    if not isinstance(data, list | tuple):
        raise SomcolorError(f"{source}: 'keyframes' must be a list, got {type(data).__name__}")
    if len(data) > MAX_KEYFRAMES:
        raise SomcolorError(f"{source}: {len(data)} key frames, the limit is {MAX_KEYFRAMES}")
    keys = []
    for i, entry in enumerate(data):
        where = f"{source}: keyframes[{i}]"
        if isinstance(entry, KeyFrame):
            keys.append(entry)
            continue
        if not isinstance(entry, dict):
            raise SomcolorError(f"{where}: expected an object, got {type(entry).__name__}")
        unknown = sorted(set(entry) - {"frame", "time", "points", "scribbles"})
        if unknown:
            raise SomcolorError(
                f"{where}: unknown keys {unknown}, expected frame or time, points, scribbles"
            )
        if ("frame" in entry) == ("time" in entry):
            raise SomcolorError(f"{where}: give either 'frame' or 'time'")
        frame = entry.get("frame")
        time = entry.get("time")
        whole = isinstance(frame, int) and not isinstance(frame, bool)
        if frame is not None and (not whole or not 0 <= frame <= MAX_INDEX):
            raise SomcolorError(f"{where}: frame must be a whole number >= 0, got {frame!r:.40}")
        if time is not None and (not _number(time) or not 0 <= time <= MAX_TIME):
            raise SomcolorError(
                f"{where}: time must be a number of seconds 0..{MAX_TIME:g}, got {time!r:.40}"
            )
        points = entry.get("points", [])
        if not isinstance(points, list):
            raise SomcolorError(f"{where}: points must be a list, got {type(points).__name__}")
        if len(points) > MAX_POINTS:
            raise SomcolorError(f"{where}: {len(points)} points, the limit is {MAX_POINTS}")
        # Their form and colours now; whether they are inside the frame once it is known.
        guide.parse_hints(points, (1 << 30, 1 << 30), source=where)
        scribbles = entry.get("scribbles")
        if isinstance(scribbles, str) and not paths:
            raise SomcolorError(f"{where}: scribbles files are not taken here; give points")
        if isinstance(scribbles, str):
            scribbles = (base or Path(".")) / scribbles
        elif scribbles is not None and not isinstance(scribbles, np.ndarray):
            raise SomcolorError(f"{where}: scribbles must be a file name, got {scribbles!r}")
        if not points and scribbles is None:
            raise SomcolorError(f"{where}: no points and no scribbles")
        keys.append(
            KeyFrame(frame, None if time is None else float(time), points, scribbles, where)
        )
    return keys


def read_keyframes(path) -> list[KeyFrame]:
    """Key frames from a keys file (:func:`parse_keyframes`); its errors name the file."""
    from .io import read_json

    path = Path(path)
    data = read_json(path, "keys file", max_bytes=MAX_KEYS_BYTES)
    return parse_keyframes(data, source=str(path), base=path.parent)


def as_keyframes(hints, source: str = "hints") -> list[KeyFrame]:
    """What a caller gave as video hints: a keys file's path, its JSON structure, or a
    list of :class:`KeyFrame`."""
    if isinstance(hints, str | Path):
        return read_keyframes(hints)
    return parse_keyframes(hints, source=source)


def _key_hints(key: KeyFrame, shape: tuple[int, int]) -> guide.Hints:
    """A key frame's points and scribbles on a frame of ``shape``."""
    hints = guide.parse_hints(key.points, shape, source=key.where) if key.points else None
    scribbles = key.scribbles
    if isinstance(scribbles, Path):
        from .io import read_image

        try:
            scribbles = read_image(scribbles)
        except SomcolorError as exc:
            raise SomcolorError(f"{key.where}: scribbles: {exc}") from None
    if scribbles is not None:
        found = guide.scribble_hints(scribbles, shape, source=f"{key.where}: scribbles")
        if len(found) > MAX_SCRIBBLE_PIXELS:
            raise SomcolorError(
                f"{key.where}: scribbles of {len(found)} pixels, the limit is {MAX_SCRIBBLE_PIXELS}"
            )
        hints = found if hints is None else guide.merge_hints(hints, found)
    return hints


# ---------------------------------------------------------------------------- the plan
@dataclass
class _Key:
    """A key frame resolved on the video: its index, hints, and what pass 1 found."""

    index: int
    hints: guide.Hints
    exemplars: guide.Exemplars | None = None
    #: the hints followed by motion (indices into ``hints``, at most MAX_TRACKED)
    followed: np.ndarray | None = None
    #: frame index -> (positions (m, 2) in frame pixels, alive (m,) bool) of the followed
    tracks: dict = field(default_factory=dict)


class Plan:
    """Where each key frame's hints act: made by :func:`plan`, used per frame by
    :meth:`uv`."""

    def __init__(self, model, shape: tuple[int, int], keys: list[_Key], shots: list[int]):
        self.model = model
        self.shape = shape
        self.keys = keys
        #: the first frame of each shot (0 and every frame a cut starts), sorted
        self.shots = shots
        self.params = guide.GuideParams()
        self._last = None  # the last solve's solution at the solve size
        self._change = None  # the last solve's change (guided filter coefficients)
        self._stretch, self._solved = (), -1  # the key frames it was for, its frame

    def _shot(self, index: int) -> tuple[int, int]:
        """``[start, end)`` of the shot holding frame ``index`` (end: None = the last)."""
        k = np.searchsorted(self.shots, index, side="right") - 1
        start = self.shots[k]
        end = self.shots[k + 1] if k + 1 < len(self.shots) else None
        return start, end

    def acting(self, index: int) -> list[_Key]:
        """The key frames whose hints reach frame ``index``: in its shot, the nearest
        key frame at or before it and the nearest after it (both carried)."""
        start, end = self._shot(index)
        inside = [k for k in self.keys if k.index >= start and (end is None or k.index < end)]
        before = [k for k in inside if k.index <= index]
        after = [k for k in inside if k.index > index]
        out = []
        if before:
            out.append(before[-1])
        if after and not (before and before[-1].index == index):
            out.append(after[0])
        return out

    def hints_at(self, index: int, acting: list[_Key] | None = None):
        """What reaches frame ``index``: ``(hints, tracked, exemplars)``: a key frame's own
        hints (on the key frame itself), the hinted points tracked to this frame and still
        alive (as :class:`~somcolor.guide.Hints`), and the appearance exemplars of the key
        frames that reach it; None when no key frame does. ``acting``: the key frames
        that reach it, when known (:meth:`acting`)."""
        acting = self.acting(index) if acting is None else acting
        if not acting:
            return None
        own, tracked, exemplars = [], [], []
        for key in acting:
            if key.exemplars is not None:
                exemplars.append(key.exemplars)
            if key.index == index:
                own.append(key.hints)
                continue
            track = key.tracks.get(index)
            if track is None:
                continue
            xy, alive = track
            if alive.any():
                picked = key.followed[alive]
                points = guide.Hints(
                    xy[alive].astype(np.float64),
                    key.hints.uv[picked],
                    key.hints.radius[picked],
                    self.shape,
                )
                tracked.append((points, key.exemplars, picked))
        hints = guide.merge_hints(*own) if own else guide.Hints.empty(self.shape)
        return hints, tracked, exemplars

    def uv(self, index: int, L: np.ndarray) -> np.ndarray | None:
        """The chroma ``(H, W, 2)`` of frame ``index`` (its luminance ``L``) with the
        hints that reach it; None when none do (the frame is coloured automatically).

        Frames are expected in order. The hints are solved on every
        :data:`SOLVE_EVERY`-th frame of a stretch (and on every key frame), each solve
        starting from the last one's solution; the frames between take the last solve's
        change, brought onto their own luminance."""
        acting = self.acting(index)
        if not acting:
            self._last = self._change = None
            return None
        frame = FrameGuide(self.model, L, self.params)
        stretch = tuple(k.index for k in acting)
        fresh = (
            self._change is None
            or self._stretch != stretch
            or index - self._solved >= SOLVE_EVERY
            or any(k.index == index for k in acting)
        )
        if not fresh:
            return frame.with_change(self._change)
        hints, tracked, exemplars = self.hints_at(index, acting)
        for points, at_key, picked in tracked:
            # A tracked point pulls by its appearance: half the key frame's, half this
            # frame's where the motion took it (not as a disc, which would jump from pixel
            # to pixel and flicker).
            here = frame.exemplars(points)
            if at_key is not None:  # one row per hint in both
                here = guide.Exemplars(
                    0.5 * (here.root + at_key.root[picked]),
                    0.5 * (here.L + at_key.L[picked]),
                    here.uv,
                )
            exemplars = [*exemplars, here]
        if self._last is not None and self._last.shape[0] == frame.guide.L.size:
            frame.guide._last = self._last
        uv, self._change = frame.uv(hints, exemplars)
        self._last = frame.guide._last
        self._stretch, self._solved = stretch, index
        return uv


class FrameGuide:
    """One video frame made ready for hints: the automatic chroma from the model's one
    prior (so a frame no hint reaches and a hinted one match where the hints say
    nothing), and, built on first use, the :class:`~somcolor.guide.Guide` at
    :data:`SOLVE_SIDE` px with the code probabilities computed there."""

    def __init__(self, model, L: np.ndarray, params: guide.GuideParams | None = None):
        self.model = model
        self.L = np.ascontiguousarray(L, np.float32)
        self.params = guide.GuideParams() if params is None else params
        prior = model.prior(self.L)
        self.uv_auto = prior.full_uv(self.L)
        small = working_shape(self.L.shape, SOLVE_SIDE)
        self.L_small = guide.shrink(prior.L, small)
        self.uv_small = guide.shrink(prior.uv, small)
        self._guide = None

    @property
    def guide(self) -> guide.Guide:
        if self._guide is None:
            proba, _ = self.model._proba_at(self.L_small)
            palette = self.model.codebook[self.model.classes]
            self._guide = guide.Guide(self.L_small, proba, palette, self.uv_small, self.params)
        return self._guide

    def exemplars(self, hints: guide.Hints) -> guide.Exemplars:
        """These hints' pixels as the model sees them in this frame, one row per hint in
        the hints' order (two hints on one pixel give two rows)."""
        index = guide.working_index(hints, self.guide.shape)
        return guide.Exemplars(self.guide.root[index], self.guide.L.ravel()[index], hints.uv)

    def uv(self, hints: guide.Hints, exemplars=()):
        """The frame's chroma ``(H, W, 2)`` with these hints and exemplars, and the
        change they made (guided filter coefficients, for :meth:`with_change`)."""
        merged = guide.merge_exemplars(exemplars)
        guided = self.guide.solve(guide.to_working(hints, self.guide.shape), merged)
        coefficients = guide.change_coefficients(guided - self.uv_small, self.L_small, self.params)
        return self.with_change(coefficients), coefficients

    def with_change(self, coefficients) -> np.ndarray:
        """The automatic chroma plus a solve's change brought onto this frame's L."""
        return guide.add_change(self.uv_auto, self.L, coefficients)


def _track_shape(shape: tuple[int, int]) -> tuple[int, int]:
    return working_shape(shape, TRACK_SIDE)


def _track(frames: list, start_xy: np.ndarray, start_L: np.ndarray, order, scale, check=None):
    """Follow points from ``frames[order[0]]`` through ``order`` (indices into
    ``frames``): ``{index: (xy in frame pixels, alive)}`` for every index after the
    first. ``start_xy`` in tracking pixels; ``scale`` = frame pixels per tracking pixel."""
    import cv2

    out = {}
    pts = start_xy.astype(np.float32).reshape(-1, 1, 2)
    alive = np.ones(len(start_xy), bool)
    lk = {
        "winSize": (LK_WINDOW, LK_WINDOW),
        "maxLevel": LK_LEVELS,
        "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03),
    }
    for prev, cur in zip(order[:-1], order[1:], strict=True):
        if check is not None:
            check()
        a, b = frames[prev], frames[cur]
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(a, b, pts, None, **lk)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(b, a, nxt, None, **lk)
        err = np.linalg.norm((back - pts).reshape(-1, 2), axis=1)
        h, w = b.shape
        xy = nxt.reshape(-1, 2)
        inside = (xy[:, 0] >= 0) & (xy[:, 0] <= w - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= h - 1)
        col = np.clip(np.rint(xy[:, 0]).astype(int), 0, w - 1)
        row = np.clip(np.rint(xy[:, 1]).astype(int), 0, h - 1)
        L_now = b[row, col].astype(np.float32) / 2.55
        alive &= (
            (st.ravel() == 1)
            & (st2.ravel() == 1)
            & (err <= TRACK_FB_ERROR)
            & inside
            & (np.abs(L_now - start_L) <= TRACK_L_DIFF)
        )
        pts = np.where(alive[:, None, None], nxt, pts)
        frame_xy = (pts.reshape(-1, 2) + 0.5) * scale - 0.5
        out[cur] = (frame_xy.astype(np.float32), alive.copy())
        if not alive.any():
            break
    return out


def plan(
    model, keys: list[KeyFrame], frames, rate: float, *, source: str = "video", check=None
) -> Plan:
    """Pass 1: walk the video's frames once and make the :class:`Plan`.

    ``frames`` yields ``(index, L)``: the decoded frame's index and full-resolution
    luminance (float32 ``(H, W)``); ``rate`` is the frame rate (a ``time`` key frame is the
    frame shown then, counted from the first frame at a constant rate). ``check``, if
    given, is called between frames while tracking (a deadline or a cancel). A key frame
    beyond the video, a point outside the frame or a video too long to hold at the
    tracking size raise one :class:`SomcolorError` line. What is held: the luminance at
    the tracking size (at most :data:`MAX_TRACK_BYTES`), each key frame's hints and
    exemplars, and the tracks of at most :data:`MAX_TRACKED` points a key frame.
    """
    from .resize import downsample
    from .temporal import SceneCutDetector, luma8

    detect = SceneCutDetector()
    small, shots, shape, most = [], [0], None, 0
    wanted: dict[int, list[KeyFrame]] = {}
    for k in keys:
        # a time: the frame shown then, the last one starting at or before it (a
        # thousandth of a frame's tolerance for times rounded on the way)
        index = k.frame if k.frame is not None else int(math.floor(k.time * rate + 1e-3))
        wanted.setdefault(index, []).append(k)
    resolved = []
    count = 0
    for index, L in frames:
        if shape is None:
            shape = L.shape
            most = MAX_TRACK_BYTES // int(np.prod(_track_shape(shape)))
        if index >= most:
            raise SomcolorError(
                f"{source}: too long for hints on key frames: more than {most} frames at "
                f"{shape[1]}x{shape[0]} (the limit holds {MAX_TRACK_BYTES >> 20} MiB of frames)"
            )
        if detect(luma8(L)):
            shots.append(index)
        small.append(luma8(downsample(np.asarray(L, np.float32), _track_shape(shape))))
        if index in wanted:
            hints = guide.merge_hints(*(_key_hints(k, shape) for k in wanted[index]))
            key = _Key(index, hints)
            key.exemplars = FrameGuide(model, L).exemplars(hints)
            key.followed = guide._spread(len(hints), MAX_TRACKED)
            resolved.append(key)
        count = index + 1
    if shape is None:
        raise SomcolorError(f"{source}: no frames")
    for index, ks in sorted(wanted.items()):
        if index >= count:
            k = ks[0]
            what = f"frame {k.frame}" if k.frame is not None else f"time {k.time:g} s"
            raise SomcolorError(
                f"{k.where}: {what} is beyond the video ({count} frames, {count / rate:.2f} s)"
            )
    h, w = _track_shape(shape)
    scale = shape[1] / w
    shot_starts = np.array(shots)
    for key in resolved:
        k = np.searchsorted(shot_starts, key.index, side="right") - 1
        start = shots[k]
        end = shots[k + 1] if k + 1 < len(shots) else count
        others = [o.index for o in resolved if start <= o.index < end and o.index != key.index]
        fwd_end = min([o for o in others if o > key.index], default=end)
        back_end = max([o for o in others if o < key.index], default=start - 1)
        xy = (key.hints.xy[key.followed] + 0.5) / scale - 0.5
        col = np.clip(np.rint(xy[:, 0]).astype(int), 0, w - 1)
        row = np.clip(np.rint(xy[:, 1]).astype(int), 0, h - 1)
        L0 = small[key.index][row, col].astype(np.float32) / 2.55
        forward = list(range(key.index, fwd_end))
        backward = list(range(key.index, back_end, -1))
        if len(forward) > 1:
            key.tracks.update(_track(small, xy, L0, forward, scale, check))
        if len(backward) > 1:
            key.tracks.update(_track(small, xy, L0, backward, scale, check))
    return Plan(model, shape, resolved, shots)
