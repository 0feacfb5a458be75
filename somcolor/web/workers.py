"""Photos are colorized in worker processes: a bounded pool, each call with a deadline.

Each worker is a process of its own (started with ``spawn``) that loads the server's
models once, then takes one photo at a time: it reads the uploaded file, colorizes
it, encodes the PNG and sends it back over a pipe. The event loop never runs this
work, and workers run side by side (no lock between them).

Stopping work that has started is why these are processes and not threads: numba's
kernels cannot be interrupted, but a process can be killed. A call whose deadline
passes, or whose client goes away, has its worker killed; a fresh one is started in
its place when next needed (it loads the models again: a few seconds).

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
    """A worker process: load the models, then answer tasks until the pipe closes."""
    import copy

    import numpy as np

    from .. import load

    models = {name: load(source) for name, source in sources}
    variants = {}
    next(iter(models.values())).colorize(np.zeros((8, 8), np.uint8))  # load numba's cache
    conn.send(("ready", os.getpid()))
    while True:
        try:
            path, name, decoder, max_pixels = conn.recv()
        except (EOFError, OSError):
            return
        key = (name, decoder)
        if key not in variants:
            variants[key] = copy.copy(models[name]).set_params(decoder=decoder)
        conn.send(_colorize(variants[key], path, max_pixels))


def _colorize(model, path: str, max_pixels: int) -> tuple:
    """``("ok", png, seconds, clipped)``, ``("refused", status, code, message)``,
    ``("bad_input", message)`` or ``("internal", message)``."""
    from PIL import Image

    from ..exceptions import ImageReadError, SomcolorError
    from ..io import read_image

    try:
        image = read_image(path, max_pixels=max_pixels)
    except ImageReadError:
        return ("refused", 422, "corrupt_image", "the photo is damaged or truncated")
    try:
        rgb, info = model.colorize(image, return_info=True)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG")
    except SomcolorError as exc:
        return ("bad_input", str(exc))
    except Exception as exc:  # noqa: BLE001 - reported to the server, which logs it
        return ("internal", f"{type(exc).__name__}: {exc}")
    return ("ok", buf.getvalue(), float(info.seconds), int(info.gamut_clipped))


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
    """One photo's trip through the pool, which the event loop may stop."""

    def __init__(self):
        self._lock = threading.Lock()
        self.worker: _Worker | None = None
        self.stopped = False

    def attach(self, worker: _Worker) -> bool:
        """Note the worker doing this call; False if the call was already stopped."""
        with self._lock:
            self.worker = worker
            return not self.stopped

    def stop(self) -> None:
        """Kill the worker doing this call, if any: its pipe then reads EOF."""
        with self._lock:
            self.stopped = True
            worker = self.worker
        if worker is not None:
            worker.process.kill()


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
                self._live.discard(worker)
            self._idle.put(worker if healthy else None)

    # -- on the event loop
    async def colorize(self, path, name, decoder, max_pixels, *, timeout, disconnected):
        """Colorize the photo at ``path`` with model ``name`` and ``decoder``.

        ``disconnected`` is an async callable telling whether the client left. Raises
        :class:`Stopped` when ``timeout`` seconds pass first or the client leaves (the
        worker is killed), :class:`RuntimeError` when the worker died, else returns the
        worker's reply (see :func:`_colorize`).
        """
        if self._closed:
            raise RuntimeError("the photo workers are shut down")
        loop = asyncio.get_running_loop()
        call = _Call()
        future = loop.run_in_executor(
            self._threads, self._call, (str(path), name, decoder, max_pixels), call
        )
        deadline = loop.time() + timeout
        why = None
        while why is None:
            done, _ = await asyncio.wait({future}, timeout=POLL_S)
            if done:
                reply = future.result()
                if reply is None:
                    raise RuntimeError("a photo worker died")
                return reply
            if loop.time() >= deadline:
                why = "timeout"
            elif await disconnected():
                why = "disconnected"
        call.stop()
        future.cancel()
        log.info("photo stopped (%s); its worker was killed", why)
        raise Stopped(why)


def _kill_all(workers) -> None:
    for worker in list(workers):
        worker.kill()
