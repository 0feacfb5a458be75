"""The server's memory budget: what its process tree holds, measured, against a bound.

What is measured is the *proportional set size* (PSS) of the server's process and of
every process below it (the photo and hint workers, multiprocessing's resource
tracker), read from ``/proc/<pid>/smaps_rollup``: each process's private pages plus
its share of the pages it shares with others. The sum is what the tree costs in
physical memory. Summing resident sizes (RSS) instead would count the libraries every
worker maps (NumPy, numba's LLVM, the models' pages) once per process: on the default
server about 400 MiB more than the tree holds. Where ``smaps_rollup`` is missing RSS
is used (``/proc/<pid>/statm``): an overestimate, never an underestimate.

A measurement shows memory already in use. Work about to start is counted on top, at
its estimated peak (:func:`photo_bytes`, :func:`session_bytes`, :func:`video_bytes`,
:func:`reference_bytes`: measured on the bundled default model, with a margin), from
the moment it is admitted until it ends: :meth:`MemoryBudget.reserve` admits it only
if the measurement plus every reservation plus its own stays within the budget.
Reservations in a *group* with a concurrency (photos: ``image_workers`` run at once)
count only the group's largest ones, as many as run at once: photos waiting for a
worker lie on disk.

Nothing here imports FastAPI.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

MIB = 1 << 20

#: Peak memory a photo worker adds to colorize a photo: a fixed part plus bytes per
#: pixel. Measured (bundled default): +6 MiB for 0.26 MP, +96 MiB for 12 MP, +143 MiB
#: for 16.8 MP; counted with a margin of about 1.5.
PHOTO_FIXED, PHOTO_PER_PIXEL = 16 * MIB, 12
#: Peak memory a hint worker adds to open a session (the full-size arrays before the
#: preview's are kept). Measured: +73 MiB for 0.5 MP, +261 MiB for 12 MP.
SESSION_FIXED, SESSION_PER_PIXEL = 96 * MIB, 24
#: Peak memory a video job adds to the server process. Measured: +109 MiB for 640 x
#: 480 frames, +333 MiB for 1920 x 1080.
VIDEO_FIXED, VIDEO_PER_PIXEL = 96 * MIB, 160
#: Fine-tuning the model on a reference photo (``somcolor.adapt``), on top.
REFERENCE_FIXED = 64 * MIB


def reference_bytes(pixels: int) -> int:
    """Estimated peak of adapting the model to a reference photo of ``pixels`` (0: none)."""
    return REFERENCE_FIXED + PHOTO_PER_PIXEL * int(pixels) if pixels else 0


def photo_bytes(pixels: int, reference_pixels: int = 0) -> int:
    """Estimated peak a photo of ``pixels`` adds to a photo worker.

    >>> photo_bytes(12_000_000) // MIB
    153
    """
    return PHOTO_FIXED + PHOTO_PER_PIXEL * int(pixels) + reference_bytes(reference_pixels)


def session_bytes(pixels: int, reference_pixels: int = 0) -> int:
    """Estimated peak a hint session over ``pixels`` adds to a hint worker while it opens.

    >>> session_bytes(500_000) // MIB
    107
    """
    return SESSION_FIXED + SESSION_PER_PIXEL * int(pixels) + reference_bytes(reference_pixels)


def video_bytes(frame_pixels: int, reference_pixels: int = 0) -> int:
    """Estimated peak a video job over frames of ``frame_pixels`` adds to the server.

    >>> video_bytes(1920 * 1080) // MIB
    412
    """
    return VIDEO_FIXED + VIDEO_PER_PIXEL * int(frame_pixels) + reference_bytes(reference_pixels)


# ---------------------------------------------------------------------------- measuring
def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:  # gone, or not Linux
        return None


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from ``/proc/*/stat`` (``[pid]`` without /proc)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return [pid]
    for name in entries:
        if not name.isdigit():
            continue
        stat = _read(f"/proc/{name}/stat")
        if stat is None:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def process_bytes(pid: int) -> int:
    """The process's proportional set size in bytes (its resident size where the
    kernel gives no ``smaps_rollup``); 0 when it is gone or nothing can be read."""
    rollup = _read(f"/proc/{pid}/smaps_rollup")
    if rollup is not None:
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    statm = _read(f"/proc/{pid}/statm")
    if statm is not None:
        return int(statm.split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return 0


def tree_bytes(pid: int | None = None) -> int:
    """Memory held by process ``pid`` (default: this one) and every process below it."""
    return sum(process_bytes(p) for p in descendants(os.getpid() if pid is None else pid))


def can_measure() -> bool:
    """Whether this system shows processes' memory (Linux ``/proc``)."""
    return process_bytes(os.getpid()) > 0


# ---------------------------------------------------------------------------- the budget
class OverBudget(Exception):
    """A reservation that does not fit: what it needed and what was in use."""

    def __init__(self, need: int, used: int, budget: int):
        super().__init__(f"need {need} bytes, {used} of {budget} in use")
        self.need, self.used, self.budget = need, used, budget


class Reservation:
    """Memory held for work in flight; :meth:`release` (or leaving ``with``) gives it back."""

    def __init__(self, budget: MemoryBudget | None, nbytes: int, group: str | None):
        self._budget = budget
        self.nbytes = nbytes
        self.group = group

    def release(self) -> None:
        budget, self._budget = self._budget, None
        if budget is not None:
            budget._release(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


class MemoryBudget:
    """At most ``budget`` bytes: the measured tree plus the work admitted and not ended.

    Parameters
    ----------
    budget : int or None
        Bytes; None admits everything (reservations are still counted, for reports).
    measure : callable
        Bytes in use now (default :func:`tree_bytes` of this process); tests pass
        their own.
    groups : dict
        ``{group: n}``: of a group's reservations only the ``n`` largest count (work
        that runs ``n`` at a time).
    max_age_s : float
        A measurement is reused this long (reading ``/proc`` costs about a
        millisecond per process); :meth:`measure_again` drops it.

    Examples
    --------
    >>> used = [600]
    >>> budget = MemoryBudget(1000, measure=lambda: used[0], groups={"photos": 1})
    >>> a = budget.reserve(300, "photos")
    >>> b = budget.reserve(300, "photos")  # only the larger of the two counts
    >>> budget.reserve(200)
    Traceback (most recent call last):
    ...
    somcolor.web.memory.OverBudget: need 200 bytes, 900 of 1000 in use
    >>> a.release(); b.release(); budget.reserve(200).nbytes
    200
    """

    def __init__(
        self,
        budget: int | None,
        *,
        measure: Callable[[], int] = tree_bytes,
        groups: dict[str, int] | None = None,
        max_age_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.budget = budget
        self._measure = measure
        self.groups = dict(groups or {})
        self.max_age_s = max_age_s
        self.clock = clock
        self._held: list[Reservation] = []
        self._measured: tuple[float, int] | None = None
        self._lock = threading.Lock()

    def measured(self) -> int:
        """Bytes the tree holds (a measurement at most ``max_age_s`` old)."""
        now = self.clock()
        with self._lock:
            if self._measured is not None and now - self._measured[0] < self.max_age_s:
                return self._measured[1]
        value = int(self._measure())
        with self._lock:
            self._measured = (now, value)
        return value

    def measure_again(self) -> None:
        """Forget the last measurement (memory was just freed or taken)."""
        with self._lock:
            self._measured = None

    def reserved(self) -> int:
        """Bytes reserved for work in flight, as they count."""
        with self._lock:
            return self._counted(self._held)

    def used(self) -> int:
        """What counts against the budget: measured plus reserved."""
        return self.measured() + self.reserved()

    def reserve(self, nbytes: int, group: str | None = None) -> Reservation:
        """Hold ``nbytes`` for work about to start; :class:`OverBudget` if it does not fit."""
        measured = self.measured()
        reservation = Reservation(self, int(nbytes), group)
        with self._lock:
            before = self._counted(self._held)
            after = self._counted([*self._held, reservation])
            if self.budget is not None and measured + after > self.budget:
                raise OverBudget(after - before, measured + before, self.budget)
            self._held.append(reservation)
        return reservation

    def _release(self, reservation: Reservation) -> None:
        with self._lock:
            self._held = [r for r in self._held if r is not reservation]
            self._measured = None  # the work's memory is in the tree now, or freed

    def _counted(self, held: list[Reservation]) -> int:
        """Reserved bytes as they count: a group's largest ``n`` only (lock held)."""
        total, by_group = 0, {}
        for r in held:
            if r.group in self.groups:
                by_group.setdefault(r.group, []).append(r.nbytes)
            else:
                total += r.nbytes
        for group, sizes in by_group.items():
            total += sum(sorted(sizes, reverse=True)[: self.groups[group]])
        return total

    def report(self) -> dict:
        """``{"budget", "measured", "reserved"}`` in bytes (budget None when unbounded)."""
        return {"budget": self.budget, "measured": self.measured(), "reserved": self.reserved()}
