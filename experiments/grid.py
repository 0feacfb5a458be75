"""Run a grid of cells in parallel, keep each finished cell, resume from them.

A :class:`Cell` is one unit of work (one SOM, or one MLP on one split) with a key
that hashes everything that determines its result. :func:`run_cells` skips cells
whose result file ``<key>.json`` already exists, runs the rest with joblib (local
processes, or a Dask cluster with ``scheduler``), biggest first, and writes each
result the moment it arrives. Ctrl-C or a crash therefore loses only the cells in
flight; the next run picks up the rest.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import joblib
from tqdm.auto import tqdm

from . import cache
from .config import ConfigError

log = logging.getLogger(__name__)

#: How long ``--scheduler`` waits for the Dask scheduler to answer.
CONNECT_TIMEOUT = "10s"


@dataclass
class Cell:
    """One unit of work of a grid."""

    key: str  # hash of everything that determines the result
    params: dict  # what identifies the cell in the tables (JSON-able)
    func: Callable  # a module-level function (it is sent to worker processes)
    args: Callable[[], tuple]  # builds the (large) positional arguments when the cell starts
    kwargs: dict = field(default_factory=dict)
    cost: float = 1.0  # relative run time; expensive cells start first


@dataclass
class GridStats:
    total: int = 0
    reused: int = 0
    computed: int = 0
    cpu_seconds: float = 0.0  # CPU time of the cells computed in this run


def _call(key: str, func: Callable, args: tuple, kwargs: dict):
    return key, func(*args, **kwargs)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def _backend(scheduler: str | None, n_jobs: int):
    """``(n_jobs, blas_threads)`` under the chosen joblib backend."""
    if scheduler is None:
        workers = cpu_count() if n_jobs == -1 else n_jobs
        yield n_jobs, max(1, cpu_count() // max(1, workers))
        return
    try:
        from dask.distributed import Client
    except ImportError:
        raise ConfigError(
            "--scheduler needs dask.distributed: pip install 'somcolor[dask]'"
        ) from None
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        raise ConfigError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
    with client, joblib.parallel_config(backend="dask"):
        log.info("running on the Dask cluster at %s (%s)", scheduler, client.dashboard_link)
        yield -1, 1


def load_done(cells: list[Cell], cell_dir: Path) -> dict[str, dict]:
    """The stored results of those ``cells`` that already finished."""
    done = {}
    for c in cells:
        f = cell_dir / f"{c.key}.json"
        if f.is_file():
            try:
                record = json.loads(f.read_text())
            except ValueError:  # a damaged file: run the cell again
                continue
            if record.get("key") == c.key:
                done[c.key] = record
    return done


def run_cells(
    cells: list[Cell],
    cell_dir: Path,
    *,
    n_jobs: int = 1,
    scheduler: str | None = None,
    desc: str = "cells",
    stats: GridStats | None = None,
) -> list[dict]:
    """Run the cells not finished yet; every cell's record ``{key, params, result}``, in order."""
    if not cells:
        raise ConfigError("empty grid: nothing to run")
    keys = [c.key for c in cells]
    if len(set(keys)) != len(keys):
        raise ValueError("two cells of the grid have the same key")
    cell_dir = Path(cell_dir)
    cell_dir.mkdir(parents=True, exist_ok=True)
    done = load_done(cells, cell_dir)
    todo = sorted((c for c in cells if c.key not in done), key=lambda c: -c.cost)
    by_key = {c.key: c for c in cells}
    stats = stats if stats is not None else GridStats()
    stats.total, stats.reused = len(cells), len(done)
    log.info("%s: %d cells, %d finished before, %d to run", desc, len(cells), len(done), len(todo))
    if todo:
        with _backend(scheduler, n_jobs) as (jobs, threads):
            # max_nbytes=None: send arrays through the pipe instead of one /dev/shm file per cell.
            parallel = joblib.Parallel(
                n_jobs=jobs, return_as="generator_unordered", max_nbytes=None
            )
            tasks = (
                joblib.delayed(_call)(c.key, c.func, c.args(), {**c.kwargs, "threads": threads})
                for c in todo
            )
            label = f"{desc} ({len(done)} reused)" if done else desc
            with tqdm(total=len(todo), desc=label, unit="cell", smoothing=0) as bar:
                for key, result in parallel(tasks):
                    record = {
                        "key": key,
                        "params": by_key[key].params,
                        "result": result,
                        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                    }
                    cache.write_json(cell_dir / f"{key}.json", record)
                    done[key] = record
                    stats.computed += 1
                    if isinstance(result, dict):
                        stats.cpu_seconds += float(result.get("cpu_seconds", 0.0))
                    bar.update()
    for stale in set(p.stem for p in cell_dir.glob("*.json")) - set(keys):
        (cell_dir / f"{stale}.json").unlink()  # cells of an earlier, different config
    return [done[k] for k in keys]
