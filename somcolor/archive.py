"""Colouring an archive: many files, in parallel, resumable, on one machine or a Dask cluster.

``somcolor colorize DIR -r --out-dir OUT`` comes here. The work flows top-down:

1. **Listing** (:func:`iter_images`): the inputs' files, streamed: a folder is read with
   :func:`os.scandir` one folder at a time, sorted by name within it, so that memory
   holds the names of one folder (and its parents), never the whole archive.
2. **The job list** (:class:`JobList`): each file and its output (:class:`Destinations`).
   A first pass over it (:meth:`JobList.survey`) counts the files (for the progress bar's
   ETA) and refuses two inputs that would be written to one output, keeping 8 bytes per
   file (a digest of the output's path), not the paths.
3. **The run** (:func:`colorize_all`): outputs that exist are skipped (``skip_existing``)
   or refused (unless ``force``) here, in the calling process; the rest are colourised by
   :func:`colorize_file` in this process (``workers=1``), in a pool of worker processes
   (``workers=N``), or on a Dask cluster (``dask=`` a client, :func:`dask_client`), in
   bounded batches. Each worker receives the model once. Every file gives one
   :class:`Record` (ok, skipped or failed), appended to a :class:`RunLog` as it arrives.

Outputs are written atomically (:func:`somcolor.io.write_image`). With an output folder
the temporary files go to a hidden folder in it (:data:`SCRATCH`), one per run, that
the run removes when it ends, and that the next run removes if a ``kill -9`` left it:
after a rerun no temporary file is left, and an output that exists is complete. Two runs
may not write to one output folder at the same time.

Worker processes colourise with ``cores / workers`` numba threads each (Dask tasks with
one), so N workers on N cores do not oversubscribe them; outputs are identical byte for
byte whatever the number of workers or threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import json
import logging
import os
import shutil
import signal
import stat
import tempfile
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .exceptions import ImageReadError, MissingBackendError, SomcolorError
from .io import IMAGE_SUFFIXES, MAX_PIXELS, read_photo, write_image

log = logging.getLogger(__name__)

MIB = 1 << 20

#: Memory assumed per worker process when ``--jobs`` is left to choose: a process that
#: colourises a 12 MP photo with the default model peaks at about 330 MB RSS (README,
#: Performance), a BSDS500 photo at about 200 MB; 512 MiB leaves room for larger scans.
WORKER_BYTES = 512 * MIB

#: Files per worker below which fewer workers are started when ``--jobs`` is left to
#: choose: starting one (a new Python, imports, the model, numba's cache) takes about
#: 1.2 s, the time of about 20 BSDS500 photos in a warm process (0.055 s each; 2 cores
#: of an AMD EPYC, 2026-12-06).
MIN_FILES_PER_WORKER = 16

#: Files sent to a local worker ahead of the one it is colourising, so it never waits.
AHEAD = 2

#: Tries of a file whose worker processes die while it is in their hands: after the 4th
#: death it is logged as failed (the first try and 3 more, as Dask's ``allowed-failures``).
MAX_TRIES = 4

#: Files in one Dask task; tasks in flight are at most twice the cluster's threads.
DASK_BATCH = 8

#: Seconds ``--dask ADDRESS`` waits for the scheduler to answer.
DASK_TIMEOUT = "10s"

#: Seconds stopped worker processes get to remove their temporary files and exit.
STOP_TIMEOUT = 5.0

#: The hidden folder in the output folder that holds the runs' temporary files.
SCRATCH = ".somcolor-tmp"

#: ``--format`` -> the ending given to outputs, and the endings that already mean it.
FORMATS = {"jpg": ".jpg", "png": ".png", "tiff": ".tif"}
FORMAT_SUFFIXES = {"jpg": (".jpg", ".jpeg"), "png": (".png",), "tiff": (".tif", ".tiff")}

OK, SKIPPED, FAILED = "ok", "skipped", "failed"
#: A worker's answer for a file that turned out to be a video: the caller colours it.
VIDEO = "video"


# ---------------------------------------------------------------------------- records
@dataclass
class Record:
    """What became of one input: a line of the run's log."""

    input: str
    output: str | None
    status: str  #: ``ok``, ``skipped`` or ``failed``
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> str:
        """The record as one line of JSON (with its newline)."""
        fields = dict(self.__dict__, seconds=round(self.seconds, 4))
        return json.dumps(fields, ensure_ascii=False) + "\n"


def _record(src, dst, status: str, seconds: float = 0.0, error: str | None = None) -> Record:
    return Record(str(src), None if dst is None else str(dst), status, seconds, error)


class RunLog:
    """``--log FILE.jsonl``: one :class:`Record` a line, appended as each file finishes.

    Each line is one ``write`` to a file opened for appending, so the log can be read
    (``tail -f``, ``jq``) while the run goes on. A rerun appends to it; a line that a
    ``kill -9`` cut short is ended first, so that the new lines stay whole.
    """

    def __init__(self, path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            size = os.fstat(self._fd).st_size
            if size and _last_byte(self.path) != b"\n":
                os.write(self._fd, b"\n")
        except OSError as exc:
            raise SomcolorError(f"{self.path}: cannot write the log ({exc.strerror})") from None

    def write(self, record: Record) -> None:
        os.write(self._fd, record.to_json().encode("utf-8"))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1)


@dataclass
class Summary:
    """The counts of a run (:func:`colorize_all`)."""

    ok: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.ok + self.skipped + self.failed

    def add(self, record: Record) -> None:
        setattr(self, record.status, getattr(self, record.status) + 1)


# ---------------------------------------------------------------------------- listing
class Found(NamedTuple):
    """A file found by :func:`iter_images`: its path, the folder input it was found in
    (None for a file named on its own), and why it could not be listed (None if it
    could)."""

    path: Path
    root: Path | None = None
    error: str | None = None


def _key(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def iter_images(
    inputs: Iterable[str | os.PathLike], *, recursive: bool = False, exclude=None
) -> Iterator[Found]:
    """The image files of ``inputs`` (files, folders, glob patterns), streamed.

    Like :func:`somcolor.io.find_images`, and in the same order: a folder gives its
    files with an image ending, sorted by name (its whole tree with ``recursive``,
    depth first, folders in their place among the names; symbolic links to folders are
    not followed); a pattern gives its matches; a file named on its own is kept
    whatever its ending, and an input that matches nothing is kept as given, so that
    reading it reports it. A file is given once however many inputs reach it: a folder
    inside an earlier folder input is not listed again, nor a file that a folder input
    lists. The folder ``exclude`` (the output folder) is never entered.

    Memory holds the names of the folder being read and of its parents, never the
    whole list (a pattern's matches are sorted, so held, as the shell would).
    """
    items = [Path(i) for i in inputs]
    roots: dict[tuple[int, int], Path] = {}  # folder inputs kept, by identity
    plan: list[tuple[str, Path]] = []
    for item in items:
        if item.is_dir():
            key = _key(item.stat())
            resolved = item.resolve()
            inside = any(
                key == k or (recursive and r.resolve() in resolved.parents)
                for k, r in roots.items()
            )
            if not inside:
                roots[key] = item
                plan.append(("dir", item))
        elif item.exists():
            plan.append(("file", item))
        elif glob.has_magic(str(item)):
            matches = sorted(glob.glob(str(item), recursive=recursive))
            files = [Path(m) for m in matches if Path(m).is_file()]
            plan.extend(("file", f) for f in files or [item])
        else:
            plan.append(("file", item))

    resolved_roots = {r.resolve() for r in roots.values()}
    skip = dict(roots)
    if exclude is not None and Path(exclude).is_dir():
        skip[_key(Path(exclude).stat())] = Path(exclude)
    seen: set[Path] = set()
    for kind, path in plan:
        if kind == "dir":
            yield from _walk(path, recursive, {k for k in skip if skip[k] is not path})
            continue
        resolved = path.resolve() if path.exists() else path.absolute()
        if resolved in seen or _listed_by(resolved, resolved_roots, recursive):
            continue
        seen.add(resolved)
        yield Found(path)


def _listed_by(resolved: Path, roots: set[Path], recursive: bool) -> bool:
    """Whether a folder input lists this file too."""
    if resolved.suffix.lower() not in IMAGE_SUFFIXES or not resolved.is_file():
        return False
    if recursive:
        return any(parent in roots for parent in resolved.parents)
    return resolved.parent in roots


def _walk(root: Path, recursive: bool, skip: set[tuple[int, int]]) -> Iterator[Found]:
    """The image files under ``root``, depth first, sorted by name in each folder; the
    folders whose identity is in ``skip`` are not entered."""
    stack = [iter(_entries(root, root))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        path, is_dir, error = entry
        if error is not None:
            yield Found(path, root, error)
        elif not is_dir:
            yield Found(path, root)
        elif recursive:
            try:
                if _key(path.stat()) in skip:
                    continue
            except OSError as exc:
                yield Found(path, root, f"{path}: cannot list the folder ({exc.strerror})")
                continue
            stack.append(iter(_entries(path, root)))


def _entries(folder: Path, root: Path) -> list[tuple[Path, bool, str | None]]:
    """A folder's image files and sub-folders (not links to folders), sorted by name:
    ``(path, is_folder, None)``; or one ``(folder, False, error)`` if it cannot be read."""
    names = []
    try:
        with os.scandir(folder) as it:
            for e in it:
                try:
                    if e.is_dir(follow_symlinks=False):
                        names.append((e.name, True))
                    elif os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES and e.is_file():
                        names.append((e.name, False))
                except OSError:
                    continue
    except OSError as exc:
        return [(folder, False, f"{folder}: cannot list the folder ({exc.strerror})")]
    names.sort()
    return [(folder / name, is_dir, None) for name, is_dir in names]


# ---------------------------------------------------------------------------- the job list
@dataclass(frozen=True)
class Destinations:
    """Where each input's colorized copy goes.

    ``output`` (``-o``): that one file. Else, with ``out_dir``: the file's path below the
    folder input it was found in (its name alone for a file named on its own, unless it
    lies below a folder input), in ``out_dir``. Else beside the input as
    ``NAME_color.EXT``. ``fmt`` (``jpg``, ``png``, ``tiff``) changes the ending of the
    outputs not named by ``output`` (an ending that already means it is kept).
    """

    out_dir: Path | None = None
    output: Path | None = None
    fmt: str | None = None
    roots: tuple[Path, ...] = ()  #: the folder inputs, in order

    @classmethod
    def for_inputs(cls, inputs, **kwargs) -> Destinations:
        roots = tuple(Path(i) for i in inputs if Path(i).is_dir())
        return cls(roots=roots, **kwargs)

    def __call__(self, src: Path, root: Path | None = None) -> Path:
        if self.output is not None:
            return Path(self.output)
        if self.out_dir is None:
            dst = src.with_name(f"{src.stem}_color{src.suffix or '.png'}")
        else:
            if root is None:
                root = next((r for r in self.roots if src.is_relative_to(r)), None)
            dst = Path(self.out_dir) / (src.relative_to(root) if root else Path(src.name))
        if self.fmt is not None and dst.suffix.lower() not in FORMAT_SUFFIXES[self.fmt]:
            dst = (
                dst.with_suffix(FORMATS[self.fmt])
                if dst.suffix
                else dst.with_name(dst.name + FORMATS[self.fmt])
            )
        return dst


class Job(NamedTuple):
    """One input and its output (``error``: the input could not be listed)."""

    src: Path
    dst: Path | None
    error: str | None = None


class JobList:
    """The jobs of a run, listed afresh at each iteration (see :func:`iter_images`)."""

    def __init__(
        self,
        inputs: Iterable[str | os.PathLike],
        *,
        recursive: bool = False,
        destinations: Destinations | None = None,
        exclude=None,
    ):
        self.inputs = [str(i) for i in inputs]
        self.recursive = recursive
        self.destinations = destinations or Destinations.for_inputs(self.inputs)
        self.exclude = exclude

    def __iter__(self) -> Iterator[Job]:
        for found in iter_images(self.inputs, recursive=self.recursive, exclude=self.exclude):
            if found.error is not None:
                yield Job(found.path, None, found.error)
            else:
                yield Job(found.path, self.destinations(found.path, found.root))

    def survey(self) -> int:
        """The number of jobs, after checking that no two inputs share an output.

        Keeps an 8-byte digest of each output's absolute path (800 kB for 100 000
        files), sorts them, and only if two are equal lists again to name the inputs.

        Raises
        ------
        SomcolorError
            ``"B and A would both be written to OUT"``.
        """
        digests, unlisted = array("Q"), 0
        one_output = self.destinations.output is not None  # -o: one file, or refused
        for job in self:
            if job.dst is None:
                unlisted += 1
            else:
                digests.append(0 if one_output else _digest(job.dst))
        if one_output:
            return len(digests) + unlisted
        if len(digests) > 1:
            import numpy as np

            values = np.sort(np.frombuffer(digests, np.uint64))
            same = values[1:][values[1:] == values[:-1]]
            if same.size:
                self._name_the_clash({int(v) for v in same})
        return len(digests) + unlisted

    def _name_the_clash(self, digests: set[int]) -> None:
        first: dict[str, Path] = {}
        for job in self:
            if job.dst is None or _digest(job.dst) not in digests:
                continue
            key = os.path.abspath(job.dst)
            if key in first:
                raise SomcolorError(
                    f"{job.src} and {first[key]} would both be written to {job.dst}"
                )
            first[key] = job.src


def _digest(path: Path) -> int:
    key = os.path.abspath(path).encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")


# ---------------------------------------------------------------------------- one file
@dataclass(frozen=True)
class WriteOptions:
    """How each file is read and its output written (sent to every worker)."""

    max_pixels: int = MAX_PIXELS
    quality: int | None = None  #: JPEG and WebP outputs (Pillow's default if None)
    scratch: str | None = None  #: the folder for temporary files (None: beside each output)


def check_destination(src: Path, dst: Path, *, force: bool, skip_existing: bool):
    """What to do with an output before colourising: None (go on), or the skipped or
    failed :class:`Record` if it exists (one ``stat``; the input itself and a folder
    are refused even with ``force``)."""
    try:
        st = os.stat(dst)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _record(src, dst, FAILED, error=f"{dst}: cannot look at the output ({exc.strerror})")
    try:
        same = os.path.samestat(st, os.stat(src))
    except OSError:
        same = False
    if same:
        return _record(src, dst, FAILED, error=f"{dst}: refusing to overwrite the input file")
    if stat.S_ISDIR(st.st_mode):
        return _record(src, dst, FAILED, error=f"{dst}: output is a folder")
    if skip_existing:
        return _record(src, dst, SKIPPED)
    if not force:
        return _record(src, dst, FAILED, error=f"{dst}: output exists (use --force to overwrite)")
    return None


def write_result(dst: Path, rgb, photo, options: WriteOptions, *, overwrite: bool) -> None:
    """Write a colorized photo atomically, with the EXIF and ICC profile of ``photo``
    (a :class:`~somcolor.io.Photo`) where the format holds them; a failure is one
    :class:`SomcolorError` line naming the output."""
    try:
        write_image(
            dst,
            rgb,
            overwrite=overwrite,
            quality=options.quality,
            exif=photo.exif,
            icc_profile=photo.icc_profile,
            tmp_dir=options.scratch,
        )
    except OSError as exc:
        raise SomcolorError(f"{dst}: cannot write ({exc.strerror or exc})") from None


def colorize_file(model, src: Path, dst: Path, options: WriteOptions) -> Record:
    """Read, colourise and write one file: its :class:`Record` (never raises but for
    Ctrl-C and exits). An existing output is replaced: the caller has checked it
    (:func:`check_destination`), and a Dask task tried again after its worker was lost
    must be able to write what the lost worker may have written.

    A file that is no image but a video gives the status ``"video"``: the caller
    colours videos itself.
    """
    t0 = time.perf_counter()
    try:
        try:
            photo = read_photo(src, max_pixels=options.max_pixels)
        except ImageReadError:
            if _is_video(src):
                return _record(src, dst, VIDEO)
            raise
        rgb = model.colorize(photo.pixels)
        write_result(dst, rgb, photo, options, overwrite=True)
        seconds = time.perf_counter() - t0
        log.info("%s -> %s (%dx%d, %.2f s)", src, dst, rgb.shape[1], rgb.shape[0], seconds)
        return _record(src, dst, OK, seconds)
    except SomcolorError as exc:
        error = str(exc)
    except MemoryError:
        error = f"{src}: not enough memory to colorize it"
    except Exception as exc:  # noqa: BLE001 - one file's bug must not stop an archive
        error = f"{src}: internal error: {type(exc).__name__}: {exc} (please report it)"
    return _record(src, dst, FAILED, time.perf_counter() - t0, " ".join(error.split()))


def _is_video(src: Path) -> bool:
    from .video import is_video  # PyAV only when a file is no image

    return is_video(src)


def colorize_batch(model, jobs: list[tuple[str, str]], options: WriteOptions) -> list[Record]:
    """A Dask task: :func:`colorize_file` for each ``(src, dst)``, on one numba thread
    (a Dask worker runs one task per thread)."""
    import numba

    numba.set_num_threads(1)  # this thread's setting only
    return [colorize_file(model, Path(s), Path(d), options) for s, d in jobs]


# ---------------------------------------------------------------------------- scratch space
@contextlib.contextmanager
def scratch_folder(out_dir) -> Iterator[Path | None]:
    """This run's folder for temporary files, ``OUT/.somcolor-tmp/run-*`` (None without
    an output folder), removed at the end (with the output folder, if this made it and
    nothing was written there); the folders of runs that were killed are removed first
    (a run holds a lock on its folder while it lives)."""
    if out_dir is None:
        yield None
        return
    base = Path(out_dir) / SCRATCH
    missing = [d for d in (Path(out_dir), *Path(out_dir).parents) if not d.exists()]
    try:
        base.mkdir(parents=True, exist_ok=True)
        for old in base.iterdir():
            _remove_if_abandoned(old)
        run = Path(tempfile.mkdtemp(prefix="run-", dir=base))
        lock = os.open(run / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
    except OSError as exc:
        why = f"{out_dir}: cannot write to the output folder ({exc.strerror})"
        raise SomcolorError(why) from None
    _lock(lock, wait=True)
    try:
        yield run
    finally:
        shutil.rmtree(run, ignore_errors=True)
        os.close(lock)
        with contextlib.suppress(OSError):
            base.rmdir()  # only if no other run uses it
            for folder in missing:  # a run that wrote nothing leaves no empty folders
                folder.rmdir()


def _lock(fd: int, *, wait: bool) -> bool:
    try:
        import fcntl
    except ImportError:  # not POSIX: no locks, every old folder counts as abandoned
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _remove_if_abandoned(path: Path) -> None:
    """Remove a run's scratch folder whose run is gone (its lock is free), or a stray file."""
    if not path.is_dir() or path.is_symlink():
        path.unlink(missing_ok=True)
        return
    try:
        fd = os.open(path / ".lock", os.O_RDWR)
    except FileNotFoundError:  # a run between mkdtemp and its lock: only if long ago
        if time.time() - path.stat().st_mtime > 60:
            shutil.rmtree(path, ignore_errors=True)
        return
    try:
        if _lock(fd, wait=False):
            log.info("removing %s, left by a run that was stopped", path)
            shutil.rmtree(path, ignore_errors=True)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- workers
def cpu_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes of memory available to new processes (``MemAvailable``), None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def default_workers() -> int:
    """``--jobs`` left to choose: the cores, but no more workers than the memory
    available holds at :data:`WORKER_BYTES` each (at least one)."""
    memory = available_memory()
    by_memory = cpu_count() if memory is None else memory // WORKER_BYTES
    return max(1, min(cpu_count(), by_memory))


def workers_for(n_files: int, jobs: int | None = None) -> int:
    """Worker processes for ``n_files``: ``jobs`` if given (no more than the files),
    else :func:`default_workers`, with at least :data:`MIN_FILES_PER_WORKER` files
    each. 1 means colourising in the calling process."""
    if jobs is not None:
        return max(1, min(jobs, n_files))
    return max(1, min(default_workers(), n_files // MIN_FILES_PER_WORKER))


def _limit_threads(threads: int) -> None:
    """Let numba's kernels and the BLAS use ``threads`` threads in this process."""
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    threadpool_limits(threads)


def _stop_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # unwinds: atomic writes remove their temporary files


def _worker_main(conn, model, options: WriteOptions, threads: int) -> None:
    """A local worker process: say ``("ready", pid)``, then colourise the ``(index, src,
    dst)`` it is sent, one at a time, answering ``(index, Record)``, until it is sent None
    or its pipe closes. Ctrl-C is the parent's to handle; SIGTERM stops it cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # now ignored
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    _limit_threads(threads)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        index, src, dst = task
        conn.send((index, colorize_file(model, src, dst, options)))


@dataclass
class _Worker:
    process: object
    conn: object
    jobs: dict  #: index -> Job, sent and not answered
    ready: bool = False  #: started: it said so


class _LocalPool:
    """Worker processes (``spawn``), each sent the model once, fed at most
    :data:`AHEAD` files ahead. A worker that dies is replaced and the files it held are
    given to another; the one it was colourising is tried at most :data:`MAX_TRIES`
    times."""

    def __init__(self, model, n: int, options: WriteOptions):
        import multiprocessing

        self._ctx = multiprocessing.get_context("spawn")
        self.model, self.n, self.options = model, n, options
        self.threads = max(1, cpu_count() // n)
        self.workers: list[_Worker] = []
        self.tries: dict[int, int] = {}
        self.retry: deque[tuple[int, Job]] = deque()
        self.failed_starts = 0  #: workers in a row that died before they were ready

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_worker_main,
            args=(child, self.model, self.options, self.threads),
            name="somcolor-archive",
            daemon=True,
        )
        with _sigint_blocked():  # Ctrl-C is the parent's: the child starts with it blocked
            process.start()
        child.close()
        return _Worker(process, parent, {})

    def run(self, todo: Iterator[Job], emit: Callable[[Record], None]) -> None:
        """Colourise every job of ``todo``, calling ``emit`` with each record."""
        from multiprocessing.connection import wait

        index = 0
        stream: Iterator[Job] | None = iter(todo)

        def next_job():
            nonlocal stream, index
            if self.retry:
                return self.retry.popleft()
            if stream is None:
                return None
            job = next(stream, None)
            if job is None:
                stream = None
                return None
            index += 1
            return index, job

        first = next_job()
        if first is None:  # everything skipped: no worker started
            return
        self.retry.append(first)
        try:
            while True:
                for worker in self._fill_order():
                    while len(worker.jobs) < AHEAD:
                        item = next_job()
                        if item is None:
                            break
                        i, job = item
                        worker.jobs[i] = job
                        worker.conn.send((i, job.src, job.dst))
                busy = [w for w in self.workers if w.jobs]
                if not busy:
                    if stream is None and not self.retry:
                        return
                    continue
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
                for worker in busy:
                    if worker.conn in ready or worker.process.sentinel in ready:
                        self._collect(worker, emit)
        finally:
            self.close()

    def _fill_order(self) -> list[_Worker]:
        if not self.workers:
            self.workers = [self._start() for _ in range(self.n)]
        return self.workers

    def _collect(self, worker: _Worker, emit) -> None:
        try:
            while worker.conn.poll():
                i, record = worker.conn.recv()
                if i == "ready":
                    worker.ready = True
                    self.failed_starts = 0
                    continue
                worker.jobs.pop(i)
                emit(record)
        except (EOFError, OSError):
            pass
        if worker.process.is_alive():
            return
        self._replace(worker, emit)

    def _replace(self, worker: _Worker, emit) -> None:
        worker.process.join()
        code = worker.process.exitcode
        why = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        if not worker.ready:
            self.failed_starts += 1
            if self.failed_starts >= 3:
                raise SomcolorError(f"worker processes die as they start ({why})")
        # A worker takes its files in the order sent: the first was in hand, the others
        # waited, and go to another worker as they are.
        for n, (i, job) in enumerate(worker.jobs.items()):
            if n == 0 and worker.ready:
                log.warning("a worker process died (%s) colorizing %s", why, job.src)
                self.tries[i] = self.tries.get(i, 1) + 1
                if self.tries[i] > MAX_TRIES:
                    error = f"{job.src}: the worker process died while colorizing it ({why})"
                    emit(_record(job.src, job.dst, FAILED, error=error))
                    continue
            self.retry.append((i, job))
        worker.conn.close()
        self.workers[self.workers.index(worker)] = self._start()

    def close(self) -> None:
        """End the workers: sent None when idle, stopped (SIGTERM, then SIGKILL) if not."""
        for w in self.workers:
            with contextlib.suppress(OSError, ValueError):
                if w.jobs:
                    w.process.terminate()
                else:
                    w.conn.send(None)
        deadline = time.monotonic() + STOP_TIMEOUT
        for w in self.workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.conn.close()
        self.workers = []


@contextlib.contextmanager
def _sigint_blocked():
    """SIGINT held back while a worker starts: the new process inherits the mask, so a
    Ctrl-C during its start-up is not its to see; the parent gets it once unblocked."""
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    except AttributeError:  # not POSIX
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# ---------------------------------------------------------------------------- Dask
@contextlib.contextmanager
def dask_client(address: str, n_workers: int | None = None):
    """A ``dask.distributed`` client: of a new local cluster of ``n_workers`` worker
    processes with one thread each (``address`` ``"local"``), or of the scheduler at
    ``address``."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise MissingBackendError(
            "--dask needs the dask extra: pip install 'somcolor[dask]' "
            "(.venv/bin/pip install -e '.[dask]' in a checkout)"
        ) from None
    if not log.isEnabledFor(logging.INFO):  # distributed's own info lines only with -v
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if address == "local":
        cluster = LocalCluster(
            n_workers=n_workers or default_workers(),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        client = Client(address, timeout=DASK_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SomcolorError(f"--dask {address}: cannot connect ({exc})") from None
    with client:
        yield client


def _run_dask(client, model, todo: Iterator[Job], options: WriteOptions, emit) -> None:
    """Colourise ``todo`` on the cluster of ``client``: batches of :data:`DASK_BATCH`
    files, at most twice the cluster's threads of them in flight, the model scattered to
    every worker once. A lost worker's tasks are run again by the scheduler."""
    from dask.distributed import as_completed

    # workers may run elsewhere, in another folder: they get absolute paths (the same
    # on every machine of a shared file system), the records the paths as given
    if options.scratch is not None:
        options = dataclasses.replace(options, scratch=os.path.abspath(options.scratch))
    model_future = client.scatter(model, broadcast=True, hash=False)
    limit = 2 * max(1, sum(client.nthreads().values()))
    batches = _batches(todo, DASK_BATCH)
    in_flight: dict = {}
    done = as_completed()

    def submit() -> None:
        batch = next(batches, None)
        if batch is not None:
            pairs = [(os.path.abspath(j.src), os.path.abspath(j.dst)) for j in batch]
            future = client.submit(colorize_batch, model_future, pairs, options, pure=False)
            in_flight[future] = batch
            done.add(future)

    try:
        for _ in range(limit):
            submit()
        for future in done:
            batch = in_flight.pop(future)
            try:
                records = future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: the batch failed
                why = " ".join(f"{type(exc).__name__}: {exc}".split())
                records = [_record(j.src, j.dst, FAILED, error=f"{j.src}: {why}") for j in batch]
            for job, record in zip(batch, records, strict=True):
                record.input, record.output = str(job.src), str(job.dst)
                emit(record)
            submit()
    finally:
        if in_flight:
            client.cancel(list(in_flight))


def _batches(jobs: Iterator[Job], size: int) -> Iterator[list[Job]]:
    batch = []
    for job in jobs:
        batch.append(job)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# ---------------------------------------------------------------------------- the run
def colorize_all(
    model,
    jobs: Iterable[Job],
    *,
    options: WriteOptions | None = None,
    workers: int = 1,
    dask=None,
    force: bool = False,
    skip_existing: bool = False,
    log_to: RunLog | None = None,
    on_record: Callable[[Record], None] | None = None,
    on_video: Callable[[Path, Path], Record] | None = None,
) -> Summary:
    """Colourise every job; a :class:`Summary` of the records.

    Parameters
    ----------
    model
        What colours: anything with ``colorize(array) -> RGB``, picklable for workers.
    jobs
        The :class:`Job` objects, e.g. a :class:`JobList` (consumed once, lazily).
    options
        How files are read and written; its ``scratch`` folder must exist.
    workers
        1: colourise in this process; N: in N worker processes (see :func:`workers_for`).
    dask
        A ``dask.distributed.Client`` to colourise on instead of local workers.
    force, skip_existing
        Replace existing outputs, or skip them (as ``skipped``); else they fail.
    log_to, on_record
        Given every :class:`Record` as it arrives (the run's log; e.g. a progress bar).
    on_video
        Colours a file that is a video, in this process, into the output named for it
        (a video found by workers waits for the end of the photos); without it videos
        fail.
    """
    options = options or WriteOptions()
    summary = Summary()
    videos: list[Job] = []
    t0 = time.perf_counter()

    def emit(record: Record) -> None:
        if record.status == VIDEO:
            videos.append(Job(Path(record.input), Path(record.output)))
            if workers == 1 and dask is None:
                emit_videos()
            return
        summary.add(record)
        if log_to is not None:
            log_to.write(record)
        if on_record is not None:
            on_record(record)

    def emit_videos() -> None:
        while videos:
            job = videos.pop(0)
            if on_video is None:
                error = f"{job.src}: is a video; colour it with somcolor colorize-video"
                emit(_record(job.src, job.dst, FAILED, error=error))
                continue
            emit(on_video(job.src, job.dst))

    todo = _to_do(jobs, force, skip_existing, emit)
    if dask is not None:
        _run_dask(dask, model, todo, options, emit)
    elif workers > 1:
        _LocalPool(model, workers, options).run(todo, emit)
    else:
        for job in todo:
            emit(colorize_file(model, job.src, job.dst, options))
    emit_videos()
    summary.seconds = time.perf_counter() - t0
    return summary


def _to_do(jobs: Iterable[Job], force: bool, skip_existing: bool, emit) -> Iterator[Job]:
    """The jobs to colourise; the others' records (unlisted, skipped, refused) emitted."""
    for job in jobs:
        if job.error is not None:
            emit(_record(job.src, job.dst, FAILED, error=job.error))
            continue
        record = check_destination(job.src, job.dst, force=force, skip_existing=skip_existing)
        if record is None:
            yield job
        else:
            emit(record)
