"""Photos are colorized in worker processes: bounded pools, each call with a deadline.

Each worker is a process of its own (started with ``spawn``) that loads the server's
models once, then takes one photo at a time: it reads the uploaded file, colorizes
it, encodes the PNG and sends it back over a pipe. The event loop never runs this
work, and workers run side by side (no lock between them).

Stopping work that has started is why these are processes and not threads: numba's
kernels cannot be interrupted, but a process can be killed. A call whose deadline
passes, or whose client goes away, has its worker killed; a fresh one is started in
its place when next needed (it loads the models again: a few seconds).

Hint sessions live in a second, separate pool (:class:`SessionWorkers`): a session is
opened in one of its workers and stays there, so its cached probabilities and solver
never cross a pipe; each change of hints sends only the points and gets back a
preview. A hint worker takes its tasks one at a time, in order.

Nothing here imports FastAPI.
"""

from __future__ import annotations

import asyncio
import io
import logging
import multiprocessing
import os
import queue
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Seconds between two looks at a waiting call's deadline and client.
POLL_S = 0.1


class Stopped(Exception):
    """A call stopped before its worker answered: its deadline passed or its client left."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why  #: "timeout" or "disconnected"


@dataclass
class PhotoResult:
    """A worker's answer for one photo."""

    png: bytes
    seconds: float  #: colorizing time, as the model measured it
    gamut_clipped: int


# ---------------------------------------------------------------------------- the worker side
def _worker_main(conn, sources: list[tuple[str, object]]) -> None:
    """A worker process: load the models, then answer tasks until the pipe closes.

    Tasks are tuples whose first item names them (see :func:`_answer`); a hint worker
    also keeps its photos' :class:`~.hinting.PreviewSession` objects, by session id.
    """
    import numpy as np

    from .. import load

    models = {name: load(source) for name, source in sources}
    state = {"models": models, "variants": {}, "sessions": {}}
    next(iter(models.values())).colorize(np.zeros((8, 8), np.uint8))  # load numba's cache
    conn.send(("ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(_answer(state, task))


def _answer(state: dict, task: tuple) -> tuple:
    """One task's reply: ``("ok", ...)``, ``("refused", status, code, message)``,
    ``("bad_input", message)`` or ``("internal", message)``.

    * ``("colorize", path, model, decoder, max_pixels, points, reference)`` -> ``("ok",
      png, seconds, clipped)``: the photo in full, with the hints ``points`` (None: none)
      and colours from the ``reference`` photo's path (None: none);
    * ``("open", session_id, path, model, decoder, max_pixels, side, reference)`` ->
      ``("ok", (height, width), (preview height, preview width), nbytes)``;
    * ``("render", session_id, points)`` -> ``("ok", jpeg, seconds, clipped)``;
    * ``("suggest", session_id, x, y, k)`` -> ``("ok", [(hex, probability, source), ...])``
      (:class:`~somcolor.guide.Suggestion`; probability None for a palette colour);
    * ``("drop", session_id)`` -> ``("ok",)``.
    """
    from ..exceptions import SomcolorError

    kind, *args = task
    try:
        if kind == "colorize":
            return _colorize(state, *args)
        if kind == "open":
            return _open(state, *args)
        if kind == "drop":
            state["sessions"].pop(args[0], None)
            return ("ok",)
        session = state["sessions"].get(args[0])
        if session is None:
            return ("refused", 410, "session_expired", SESSION_GONE)
        if kind == "render":
            try:
                points = guide_points(args[1], session.shape)
            except SomcolorError as exc:
                return ("refused", 422, "bad_hints", str(exc))
            return ("ok", *session.render(points))
        if kind == "suggest":
            return ("ok", session.suggest(*args[1:]))
        return ("internal", f"unknown task {kind!r}")
    except SomcolorError as exc:
        return ("bad_input", str(exc))
    except MemoryError:
        return ("refused", 503, "no_memory", "the server has not enough memory for this photo")
    except Exception as exc:  # noqa: BLE001 - reported to the server, which logs it
        return ("internal", f"{type(exc).__name__}: {exc}")


#: What a request for a session its worker no longer holds is told.
SESSION_GONE = "this photo's hint session has ended; open the photo again"


def guide_points(points, shape):
    """``points`` checked against an image of ``shape`` (:func:`~somcolor.guide.parse_hints`)."""
    from .. import guide

    return guide.parse_hints(points, shape, source="hints")


def _model(state: dict, name: str, decoder: str):
    """The model ``name`` set to ``decoder`` (a copy kept per pair)."""
    import copy

    key = (name, decoder)
    if key not in state["variants"]:
        state["variants"][key] = copy.copy(state["models"][name]).set_params(decoder=decoder)
    return state["variants"][key]


def _read(path: str, max_pixels: int):
    """The photo at ``path``, or a ``("refused", ...)`` reply when it cannot be read."""
    from ..exceptions import ImageReadError
    from ..io import read_image

    try:
        return read_image(path, max_pixels=max_pixels), None
    except ImageReadError:
        return None, ("refused", 422, "corrupt_image", "the photo is damaged or truncated")


def _predictor(state: dict, name: str, decoder: str, reference: str | None, max_pixels: int):
    """The model (a :class:`~somcolor.model.Model`), adapted to the reference photo
    when one is given, or a ``("refused", ...)`` reply."""
    predictor = _model(state, name, decoder).predictor()
    if reference is None:
        return predictor, None
    from ..exceptions import SomcolorError

    try:
        from ..adapt import read_reference
    except ImportError:
        return None, ("refused", 501, "no_reference", "reference photos are not supported here")
    try:
        from ..video import is_video

        rgb = read_reference(reference, max_pixels=max_pixels, is_video=is_video)
    except SomcolorError as exc:
        message = str(exc).replace(reference, "the reference photo")
        return None, ("refused", 422, "bad_reference", message)
    return predictor.adapt([rgb], random_state=0), None


def _colorize(state, path, name, decoder, max_pixels, points, reference) -> tuple:
    from PIL import Image

    from ..exceptions import SomcolorError

    image, refused = _read(path, max_pixels)
    if refused:
        return refused
    if points is not None:
        try:
            points = guide_points(points, image.shape[:2])
        except SomcolorError as exc:
            return ("refused", 422, "bad_hints", str(exc))
    model, refused = _predictor(state, name, decoder, reference, max_pixels)
    if refused:
        return refused
    rgb, info = model.colorize(image, hints=points, return_info=True)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return ("ok", buf.getvalue(), float(info.seconds), int(info.gamut_clipped))


def _open(state, session_id, path, name, decoder, max_pixels, side, reference) -> tuple:
    from .hinting import PreviewSession

    image, refused = _read(path, max_pixels)
    if refused:
        return refused
    model, refused = _predictor(state, name, decoder, reference, max_pixels)
    if refused:
        return refused
    session = PreviewSession(model, image, side)
    state["sessions"][session_id] = session
    return ("ok", session.shape, session.preview_shape, session.nbytes)


# ---------------------------------------------------------------------------- the server side
class _Worker:
    """One worker process and our end of its pipe."""

    def __init__(self, ctx, sources):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_worker_main, args=(child, sources), name="somcolor-photo", daemon=True
        )
        self.process.start()
        child.close()
        self.ready = False

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class _Call:
    """One task's trip through a pool, which the event loop may stop."""

    def __init__(self):
        self._lock = threading.Lock()
        self.worker: _Worker | None = None
        self.stopped = False
        self.generation: int | None = None  #: a hint worker's, when the call reached it

    def attach(self, worker: _Worker) -> bool:
        """Note the worker doing this call; False if the call was already stopped."""
        with self._lock:
            self.worker = worker
            return not self.stopped

    def stop(self, *, kill: bool = True) -> None:
        """Stop the call: it will not start; if it has, kill its worker (its pipe then
        reads EOF) unless ``kill`` is False (then it runs to its end)."""
        with self._lock:
            self.stopped = True
            worker = self.worker
        if worker is not None and kill:
            worker.process.kill()


def _exchange(worker: _Worker, task: tuple) -> tuple | None:
    """Send ``task`` to ``worker`` and wait for its reply; None if the worker died (it
    is then killed for good)."""
    healthy = False
    try:
        if not worker.ready:
            worker.conn.recv()  # ("ready", pid), or EOF if the start failed or was stopped
            worker.ready = True
        worker.conn.send(task)
        reply = worker.conn.recv()
        healthy = True
        return reply
    except (EOFError, OSError):
        return None
    finally:
        if not healthy:
            worker.kill()


async def _wait(loop, future, call: _Call, timeout: float, disconnected, *, kill_on_leave: bool):
    """Wait for a pool thread's ``future``, looking every :data:`POLL_S` at the deadline
    and the client. Raises :class:`Stopped` (the call stopped, its worker killed if it
    had started, or on a client leaving only when ``kill_on_leave``)."""
    deadline = loop.time() + timeout
    why = None
    while why is None:
        done, _ = await asyncio.wait({future}, timeout=POLL_S)
        if done:
            return future.result()
        if loop.time() >= deadline:
            why = "timeout"
        elif disconnected is not None and await disconnected():
            why = "disconnected"
    call.stop(kill=why == "timeout" or kill_on_leave)
    future.cancel()
    log.info("task stopped (%s)", why)
    raise Stopped(why)


class PhotoWorkers:
    """``size`` worker processes over the models ``sources`` (``(name, load argument)``)."""

    def __init__(self, sources: list[tuple[str, object]], size: int):
        self.sources = list(sources)
        self.size = size
        self.started = 0  #: worker processes started so far (a killed one is replaced)
        self._ctx = multiprocessing.get_context("spawn")
        self._idle: queue.SimpleQueue[_Worker | None] = queue.SimpleQueue()
        for _ in range(size):
            self._idle.put(None)  # started when first needed
        self._threads = ThreadPoolExecutor(size, thread_name_prefix="somcolor-photo")
        self._live: weakref.WeakSet[_Worker] = weakref.WeakSet()
        self._closed = False
        self._finalizer = weakref.finalize(self, _kill_all, self._live)

    def close(self) -> None:
        """Kill every worker; calls still waiting fail."""
        self._closed = True
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._finalizer()

    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [w.process.pid for w in list(self._live) if w.process.is_alive()]

    # -- in a pool thread
    def _take(self) -> _Worker:
        worker = self._idle.get()
        if worker is not None and worker.process.is_alive():
            return worker
        if worker is not None:
            worker.kill()
        worker = _Worker(self._ctx, self.sources)
        self._live.add(worker)
        self.started += 1
        return worker

    def _call(self, task: tuple, call: _Call):
        worker = self._take()
        if not call.attach(worker):  # stopped while it waited for a thread
            self._idle.put(worker)
            return None
        reply = _exchange(worker, task)
        if reply is None:
            self._live.discard(worker)
        self._idle.put(worker if reply is not None else None)
        return reply

    # -- on the event loop
    async def run(self, task: tuple, *, timeout, disconnected):
        """Have a worker answer ``task`` (see :func:`_answer`).

        ``disconnected`` is an async callable telling whether the client left. Raises
        :class:`Stopped` when ``timeout`` seconds pass first or the client leaves (the
        worker is killed), :class:`RuntimeError` when the worker died, else returns the
        worker's reply.
        """
        if self._closed:
            raise RuntimeError("the photo workers are shut down")
        loop = asyncio.get_running_loop()
        call = _Call()
        future = loop.run_in_executor(self._threads, self._call, task, call)
        reply = await _wait(loop, future, call, timeout, disconnected, kill_on_leave=True)
        if reply is None:
            raise RuntimeError("a photo worker died")
        return reply


class _Slot:
    """One hint worker: its process (started when first needed), the thread that talks
    to it (so its tasks run one at a time, in order), and its generation, which goes
    up each time its process is replaced (the sessions it held are then gone)."""

    def __init__(self, index: int):
        self.index = index
        self.worker: _Worker | None = None
        self.generation = 0
        self.thread = ThreadPoolExecutor(1, thread_name_prefix=f"somcolor-hints-{index}")


class SessionWorkers:
    """``size`` hint worker processes, each holding the sessions opened in it.

    A session is pinned to the worker that opened it: its requests go to that worker's
    thread and run one at a time. When a request passes its deadline its worker is
    killed, and every session it held is lost (:meth:`generation` tells). A client
    that leaves only takes its own request off the queue: a running one finishes
    (killing the worker would end other clients' sessions).
    """

    def __init__(self, sources: list[tuple[str, object]], size: int):
        self.sources = list(sources)
        self.size = size
        self.started = 0
        self._ctx = multiprocessing.get_context("spawn")
        self._slots = [_Slot(i) for i in range(size)]
        self._live: weakref.WeakSet[_Worker] = weakref.WeakSet()
        self._closed = False
        self._finalizer = weakref.finalize(self, _kill_all, self._live)

    def close(self) -> None:
        self._closed = True
        for slot in self._slots:
            slot.thread.shutdown(wait=False, cancel_futures=True)
        self._finalizer()

    def pids(self) -> list[int]:
        return [w.process.pid for w in list(self._live) if w.process.is_alive()]

    def generation(self, slot: int) -> int:
        """How many times worker ``slot``'s process has been replaced."""
        return self._slots[slot].generation

    # -- in a slot's thread
    def _call(self, slot: _Slot, task: tuple, call: _Call, generation: int | None):
        if generation is not None and generation != slot.generation:
            return ("refused", 410, "session_expired", SESSION_GONE)
        if slot.worker is None or not slot.worker.process.is_alive():
            if slot.worker is not None:
                slot.worker.kill()
                slot.generation += 1
            slot.worker = _Worker(self._ctx, self.sources)
            self._live.add(slot.worker)
            self.started += 1
            if generation is not None:  # the session lived in the process just replaced
                return ("refused", 410, "session_expired", SESSION_GONE)
        worker = slot.worker
        call.generation = slot.generation
        if not call.attach(worker):
            return None
        reply = _exchange(worker, task)
        if reply is None:
            self._live.discard(worker)
            slot.worker = None
            slot.generation += 1
        return reply

    # -- on the event loop
    async def run(self, slot: int, task: tuple, *, generation=None, timeout, disconnected=None):
        """Have worker ``slot`` answer ``task``; with ``generation``, only if its process
        is still the one of that generation (else a 410 reply: the session is gone).
        Returns the reply and the generation of the process that gave it.

        Raises :class:`Stopped` when ``timeout`` passes (the worker is killed if the
        task had started) or the client leaves before it started, and
        :class:`RuntimeError` when the worker died.
        """
        if self._closed:
            raise RuntimeError("the hint workers are shut down")
        loop = asyncio.get_running_loop()
        call = _Call()
        chosen = self._slots[slot]
        future = loop.run_in_executor(chosen.thread, self._call, chosen, task, call, generation)
        reply = await _wait(loop, future, call, timeout, disconnected, kill_on_leave=False)
        if reply is None:
            raise RuntimeError("a hint worker died")
        return reply, call.generation

    def send_later(self, slot: int, task: tuple, generation: int) -> None:
        """Queue ``task`` for worker ``slot`` without waiting for it (closing a session)."""
        if self._closed:
            return
        chosen = self._slots[slot]
        call = _Call()

        def send():
            if chosen.worker is not None and chosen.generation == generation:
                self._call(chosen, task, call, generation)

        try:
            chosen.thread.submit(send)
        except RuntimeError:  # shut down meanwhile
            pass


def _kill_all(workers) -> None:
    for worker in list(workers):
        worker.kill()
