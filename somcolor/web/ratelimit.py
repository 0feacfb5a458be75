"""Requests per client: a token bucket for each socket peer address.

Each client (``request.client.host``, the address the TCP connection comes from)
has a bucket of ``burst`` tokens, refilled at ``per_minute / 60`` tokens a second;
each counted request takes one token, and a request that finds the bucket empty is
refused with 429 and a ``Retry-After`` saying when the next token comes. Headers
such as ``X-Forwarded-For`` are never read (``somcolor serve`` runs uvicorn with
``proxy_headers=False``): a client could set them to anything, and get a fresh
bucket with every request.

At most ``max_clients`` buckets are kept; a new client past that evicts the least
recently seen one, which then starts again with a full bucket. This imports nothing
from the web extra.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    """Token buckets, one per client, bounded in number; thread-safe.

    Parameters
    ----------
    per_minute : float
        Tokens a bucket gets back each minute (the sustained rate).
    burst : int
        Tokens a full bucket holds (requests one client may send at once).
    max_clients : int
        Buckets kept; past it the least recently seen client's is dropped.
    clock : callable
        Seconds, monotonic (default :func:`time.monotonic`); tests pass their own.

    Examples
    --------
    >>> now = [0.0]
    >>> limiter = RateLimiter(per_minute=60, burst=2, max_clients=10, clock=lambda: now[0])
    >>> [limiter.take("a") for _ in range(3)]
    [0.0, 0.0, 1.0]
    >>> now[0] = 1.0
    >>> limiter.take("a")
    0.0
    """

    def __init__(
        self,
        per_minute: float,
        burst: int,
        max_clients: int,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not per_minute > 0 or not burst >= 1 or not max_clients >= 1:
            raise ValueError(
                f"got per_minute={per_minute!r}, burst={burst!r}, max_clients={max_clients!r};"
                " expected positive numbers"
            )
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = int(max_clients)
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """Take one token from ``client``'s bucket.

        Returns 0.0 when the request may go on, else the seconds until the bucket
        holds a token again (nothing is taken then).
        """
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
            if tokens >= 1.0:
                tokens -= 1.0
                wait = 0.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens, now)  # most recently seen last
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        """Clients tracked now (at most ``max_clients``)."""
        with self._lock:
            return len(self._buckets)


def retry_after(wait_s: float) -> str:
    """A ``Retry-After`` value: whole seconds, rounded up, at least 1.

    >>> retry_after(0.2), retry_after(1.0), retry_after(2.5)
    ('1', '1', '3')
    """
    return str(max(1, math.ceil(wait_s)))
