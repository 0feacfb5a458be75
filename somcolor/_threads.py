"""How many threads somcolor's numba kernels use: all of them, or one for small jobs."""

from __future__ import annotations

import contextlib
import os
import threading

import numba as nb

# somcolor's kernels run as many short parallel regions. By default OpenMP keeps idle
# workers spinning after each one, burning CPU that the calling thread needs when the
# machine is busy (colorizing 1 MP took 1.22 s instead of 0.73 s, load average 6 on 2
# cores). Set before numba starts its OpenMP threads; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: Kernels given fewer items (pixels, rows) than this run on the calling thread only:
#: waking the other threads costs more than they save, and on a busy machine a
#: parallel region can wait milliseconds for a free core.
SERIAL_BELOW = 1 << 15


@contextlib.contextmanager
def threads_for(n_items: int):
    """Run the numba kernels called inside on one thread if ``n_items < SERIAL_BELOW``.

    >>> with threads_for(10):
    ...     nb.get_num_threads()
    1
    """
    if n_items >= SERIAL_BELOW:
        yield
        return
    saved = nb.get_num_threads()
    nb.set_num_threads(1)
    try:
        yield
    finally:
        nb.set_num_threads(saved)


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limit = None
_blas_controller = None  #: threadpoolctl's, made once (finding the BLAS libraries: ~0.4 ms)


@contextlib.contextmanager
def single_blas():
    """Run numpy's matrix products inside on one BLAS thread each (callers share the
    cores among their own threads, a tile each); reference-counted, so concurrent and
    nested users restore the BLAS's own thread count only when the last one leaves.

    >>> with single_blas():
    ...     pass
    """
    global _blas_users, _blas_limit, _blas_controller
    from threadpoolctl import ThreadpoolController

    with _blas_lock:
        if _blas_users == 0:
            if _blas_controller is None:
                _blas_controller = ThreadpoolController()
            _blas_limit = _blas_controller.limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limit.restore_original_limits()
                _blas_limit = None
