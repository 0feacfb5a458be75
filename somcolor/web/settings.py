"""The web server's limits: every default in one place, checked once.

This module imports nothing from the web extra, so ``somcolor serve --help`` can show
the defaults without FastAPI installed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

MIB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What one server accepts and keeps.

    >>> Limits(max_jobs=1).max_jobs
    1
    >>> Limits(max_jobs=0)
    Traceback (most recent call last):
    ...
    ValueError: max_jobs: got 0, expected a positive number
    """

    #: Largest uploaded file (photo or video), in bytes. Larger uploads get 413.
    max_upload_bytes: int = 100 * MIB
    #: Largest photo or video frame, in pixels (4096 x 4096). Larger ones get 413.
    max_pixels: int = 4096 * 4096
    #: Video jobs queued or running at once; one more gets 429.
    max_jobs: int = 2
    #: Seconds a finished video job and its result are kept; then both are deleted.
    result_ttl_s: float = 15 * 60
    #: Photos decoded and encoded at once (the colorizing step itself runs one at a time).
    image_workers: int = 2
    #: Photo requests in the server at once, waiting or working; one more gets 429.
    max_pending_images: int = 64

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{f.name}: got {value!r}, expected a positive number")
