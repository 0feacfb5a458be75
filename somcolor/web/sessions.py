"""Hint sessions: which photo's cached work lives in which hint worker, and for how long.

A session is one photo made ready for colour hints (:class:`~.hinting.PreviewSession`)
in one hint worker (:class:`~.workers.SessionWorkers`). This registry, in the server
process, holds what the server needs to route and bound them: the worker it lives in
(and that worker's generation: a worker that was replaced took its sessions with it),
the photo's size, and when it was last used. At most ``max_sessions`` are held, and
at most ``max_bytes`` of memory (as the workers measured each session when it
opened); opening one more closes the least recently used ones (never the new one),
and a session unused for ``ttl_s`` seconds is closed by :meth:`SessionRegistry.sweep`.
Sessions are also what the server's memory budget gives back first: work that does
not fit closes the least recently used session not serving a request
(:meth:`SessionRegistry.oldest_idle`, :meth:`SessionRegistry.evict`). Ids are random
(``secrets.token_urlsafe``, 128 bits): knowing one is what lets a client use a
session. Closed ids are remembered a while, to answer 410 rather than 404.

Nothing here imports FastAPI.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass

from .uploads import UploadError

#: Closed session ids remembered (to answer 410 rather than 404), oldest forgotten first.
MAX_CLOSED_IDS = 10_000


@dataclass
class Session:
    id: str
    slot: int  #: the hint worker holding it
    generation: int  #: that worker's generation when the session was opened
    shape: tuple[int, int]  #: the photo's (height, width)
    preview_shape: tuple[int, int]
    nbytes: int  #: memory the worker holds for it, as it measured
    reference: str | None  #: the reference photo's name, when its colours came from one
    used: float  #: clock time of its last use
    busy: int = 0  #: requests it is serving now


class SessionRegistry:
    """At most ``max_sessions`` hint sessions holding at most ``max_bytes``, each closed
    after ``ttl_s`` idle seconds.

    ``close(session)`` is called (outside the lock) for every session this registry
    drops: evicted, expired or deleted; it should free the worker's copy.
    """

    def __init__(
        self,
        *,
        max_sessions: int,
        ttl_s: float,
        close,
        max_bytes: float = float("inf"),
        clock=time.monotonic,
    ):
        self.max_sessions = max_sessions
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.clock = clock
        self._close = close
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # least recently used first
        self._closed: OrderedDict[str, str] = OrderedDict()  # id -> why
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(16)

    def counts(self, size: int) -> list[int]:
        """Sessions held per worker slot ``0..size-1``."""
        out = [0] * size
        with self._lock:
            for s in self._sessions.values():
                out[s.slot] += 1
        return out

    def add(self, session: Session) -> None:
        """Hold ``session``; closes the least recently used ones beyond the limit."""
        session.used = self.clock()
        with self._lock:
            self._sessions[session.id] = session
            evicted = []
            held = sum(s.nbytes for s in self._sessions.values())
            while len(self._sessions) > 1 and (
                len(self._sessions) > self.max_sessions or held > self.max_bytes
            ):
                _, old = self._sessions.popitem(last=False)
                held -= old.nbytes
                self._forget(old.id, "closed to make room for newer ones")
                evicted.append(old)
        for old in evicted:
            self._close(old)

    def get(self, session_id: str) -> Session:
        """The session, marked as used now; 410 when it was closed, 404 when unknown."""
        self.sweep()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None:
                session.used = self.clock()
                self._sessions.move_to_end(session_id)
                return session
            why = self._closed.get(session_id)
        if why is not None:
            raise UploadError(410, "session_expired", f"this photo's hint session was {why}")
        raise UploadError(404, "unknown_session", "no such hint session")

    @contextmanager
    def using(self, session_id: str):
        """The session (as :meth:`get`), counted busy inside the ``with``: the memory
        budget does not close a session while it serves a request."""
        session = self.get(session_id)
        with self._lock:
            session.busy += 1
        try:
            yield session
        finally:
            with self._lock:
                session.busy -= 1

    def oldest_idle(self) -> Session | None:
        """The least recently used session serving no request, or None."""
        with self._lock:
            return next((s for s in self._sessions.values() if not s.busy), None)

    def evict(self, session_id: str, why: str) -> Session | None:
        """Forget the session (its id then gets 410 with ``why``) without freeing its
        worker's copy: the caller does, and waits for it. None if it was gone."""
        with self._lock:
            session = self._sessions.pop(session_id, None)
            if session is not None:
                self._forget(session_id, why)
        return session

    def total_bytes(self) -> int:
        """Memory the sessions held, as their workers measured each when it opened."""
        with self._lock:
            return sum(s.nbytes for s in self._sessions.values())

    def lost(self, session_id: str, why: str = "lost: its worker was restarted") -> None:
        """Forget a session its worker no longer holds."""
        with self._lock:
            if self._sessions.pop(session_id, None) is not None:
                self._forget(session_id, why)

    def delete(self, session_id: str) -> None:
        """Close the session now (404/410 as :meth:`get`)."""
        session = self.get(session_id)
        with self._lock:
            if self._sessions.pop(session_id, None) is None:
                return
            self._forget(session_id, "deleted")
        self._close(session)

    def sweep(self) -> int:
        """Close the sessions unused for ``ttl_s`` seconds; how many went."""
        now = self.clock()
        with self._lock:
            old = [s for s in self._sessions.values() if now - s.used >= self.ttl_s]
            for s in old:
                del self._sessions[s.id]
                self._forget(s.id, f"closed after {self.ttl_s:g} s unused")
        for s in old:
            self._close(s)
        return len(old)

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()

    def _forget(self, session_id: str, why: str) -> None:  # with the lock held
        self._closed[session_id] = why
        while len(self._closed) > MAX_CLOSED_IDS:
            self._closed.popitem(last=False)
