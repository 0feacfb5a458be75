"""Video jobs: one background thread each, a bounded number held, results kept a while.

A job slot is reserved once the upload has arrived (a client that sends slowly holds
an upload slot, bounded by the upload deadlines, never a job slot), and the job runs
``work(src, dst, progress, cancel)`` in a daemon thread. When it ends, its upload is
deleted; its result stays for ``ttl_s`` seconds, then :meth:`JobManager.sweep` deletes
it and remembers the id as expired. Every job held counts against ``max_jobs``:
queued, running, or finished with its result still stored. :meth:`JobManager.delete`
cancels a job (its thread stops at the next frame) and deletes its files; the slot
frees once its thread has ended. Job ids are random (96 bits): knowing one is what
lets a client read or delete a job.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..exceptions import SomcolorError
from .uploads import UploadError

log = logging.getLogger(__name__)

#: Expired job ids remembered (to answer 410 rather than 404), oldest forgotten first.
MAX_EXPIRED_IDS = 10_000

#: ``work(src, dst, progress, cancel)`` -> a JSON-able summary; ``progress(done,
#: total_or_None)``; ``cancel`` is a :class:`threading.Event` set when the job is deleted.
Work = Callable[[Path, Path, Callable[[int, int | None], None], threading.Event], dict]


@dataclass
class Job:
    id: str
    src: Path
    dst: Path
    download_name: str
    created: float
    state: str = "queued"  #: queued -> running -> done | failed
    frames_done: int = 0
    frames_total: int | None = None
    error: str | None = None
    summary: dict | None = None
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def status(self, ttl_s: float, now: float) -> dict:
        """The job as the API reports it."""
        total = self.frames_total
        fraction = min(1.0, self.frames_done / total) if total else None
        if self.state == "done":
            fraction = 1.0
        end = self.finished if self.finished is not None else now
        return {
            "id": self.id,
            "state": self.state,
            "frames_done": self.frames_done,
            "frames_total": total,
            "progress": fraction,
            "seconds": round(end - self.created, 2),
            "error": self.error,
            "result_url": f"/api/jobs/{self.id}/result" if self.state == "done" else None,
            "expires_in_s": (
                None if self.finished is None else max(0.0, round(self.finished + ttl_s - now, 1))
            ),
            "summary": self.summary,
        }


class _Reservation:
    used = False


class JobManager:
    """At most ``max_jobs`` video jobs held (queued, running or stored); results kept ``ttl_s``."""

    def __init__(self, folder: Path, *, max_jobs: int, ttl_s: float, clock=time.monotonic):
        self.folder = Path(folder)
        self.max_jobs = max_jobs
        self.ttl_s = ttl_s
        self.clock = clock
        self._jobs: dict[str, Job] = {}
        self._expired: OrderedDict[str, None] = OrderedDict()
        self._reserved = 0
        self._stopping: set[str] = set()  # deleted jobs whose thread has not ended yet
        self._lock = threading.Lock()

    def _held(self) -> int:
        """Jobs held (queued, running, stored, or deleted but still stopping), plus
        reservations (call with the lock held)."""
        return self._reserved + len(self._jobs) + len(self._stopping)

    @contextmanager
    def reservation(self):
        """Hold a job slot while a received upload is checked; 429 when none is free."""
        with self._lock:
            if self._held() >= self.max_jobs:
                raise UploadError(
                    429,
                    "too_many_jobs",
                    f"the server holds {self.max_jobs} video job(s): queued, running, or "
                    "finished with a result not yet deleted (a job counts until DELETE "
                    f"/api/jobs/{{id}}, or until {self.ttl_s:g} s after it ended); try "
                    "again once one is deleted",
                )
            self._reserved += 1
        slot = _Reservation()
        try:
            yield slot
        finally:
            if not slot.used:
                with self._lock:
                    self._reserved -= 1

    def start(self, slot: _Reservation, work: Work, src: Path, *, download_name: str) -> Job:
        """Turn a reservation into a running job over the upload ``src``."""
        job_id = secrets.token_urlsafe(12)
        dst = self.folder / f"{secrets.token_hex(16)}.mp4"
        job = Job(job_id, Path(src), dst, download_name, created=self.clock())
        with self._lock:
            self._reserved -= 1
            slot.used = True
            self._jobs[job_id] = job
        thread = threading.Thread(
            target=self._run, args=(job, work), name=f"somcolor-job-{job_id[:6]}", daemon=True
        )
        thread.start()
        return job

    def _run(self, job: Job, work: Work) -> None:
        def progress(done, total=None):
            job.frames_done = int(done)
            job.frames_total = int(total) if total else None

        job.state = "running"
        try:
            job.summary = work(job.src, job.dst, progress, job.cancel)
            job.state = "done"
            log.info("job %s done in %.1f s", job.id, self.clock() - job.created)
        except SomcolorError as exc:
            job.error = self._scrub(str(exc), job)
            job.state = "failed"
        except Exception:  # noqa: BLE001 - a job's bug must not take the server down
            log.exception("job %s failed", job.id)
            job.error = "internal error while colorizing the video"
            job.state = "failed"
        finally:
            job.src.unlink(missing_ok=True)
            with self._lock:
                job.finished = self.clock()
                self._stopping.discard(job.id)
                deleted = job.id not in self._jobs
            if job.state != "done" or deleted:
                job.dst.unlink(missing_ok=True)

    def _scrub(self, message: str, job: Job) -> str:
        """An error message without the server's private paths."""
        message = message.replace(str(job.src), "the upload").replace(str(job.dst), "the result")
        return message.replace(str(self.folder), "(private)")

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; 410 when its result expired, 404 when unknown."""
        self.sweep()
        with self._lock:
            job = self._jobs.get(job_id)
            expired = job_id in self._expired
        if job is not None:
            return job
        if expired:
            raise UploadError(
                410, "job_expired", f"this job's result was deleted after {self.ttl_s:g} s"
            )
        raise UploadError(404, "unknown_job", "no such job")

    def delete(self, job_id: str) -> None:
        """Cancel the job ``job_id`` and delete it with its files; 404/410 as :meth:`get`."""
        job = self.get(job_id)
        job.cancel.set()
        with self._lock:
            if self._jobs.pop(job.id, None) is None:
                return  # deleted meanwhile
            running = job.finished is None
            if running:
                self._stopping.add(job.id)  # its thread deletes the files when it ends
        if not running:
            job.dst.unlink(missing_ok=True)
            job.src.unlink(missing_ok=True)
        log.info("job %s deleted (%s)", job.id, job.state)

    def status(self, job: Job) -> dict:
        return job.status(self.ttl_s, self.clock())

    def sweep(self) -> int:
        """Delete finished jobs older than the TTL, with their files; how many went."""
        now = self.clock()
        with self._lock:
            old = [
                j
                for j in self._jobs.values()
                if j.finished is not None and now - j.finished >= self.ttl_s
            ]
            for job in old:
                del self._jobs[job.id]
                self._expired[job.id] = None
            while len(self._expired) > MAX_EXPIRED_IDS:
                self._expired.popitem(last=False)
        for job in old:
            job.dst.unlink(missing_ok=True)
            job.src.unlink(missing_ok=True)
        return len(old)
