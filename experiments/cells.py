"""One grid cell's work, run in a worker process (joblib locally, or a Dask worker).

Each function takes plain arrays and JSON-able parameters and returns a JSON-able
dict, so a cell runs the same wherever it is sent and its result can be stored as
it arrives. BLAS threads are limited to ``threads`` so that parallel cells do not
oversubscribe the cores. ``cpu_seconds`` (the worker's CPU time for the cell) says
what a cell costs whatever else the machine is doing; ``fit_seconds`` is wall time.
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

from somcolor.classify import PatchClassifier

from .cache import quantizer_arrays
from .data import fit_som


def mlp_cell(X_train, y_train, X_test, y_test, *, hidden, mlp: dict, seed: int, threads: int):
    """Fit a PatchClassifier on one split; its train/test accuracy, fit time and epochs."""
    cpu0 = time.process_time()
    with threadpool_limits(limits=threads):
        t0 = time.perf_counter()
        clf = PatchClassifier(hidden_layer_sizes=tuple(hidden), random_state=seed, **mlp)
        clf.fit(np.asarray(X_train), np.asarray(y_train))
        fit_seconds = time.perf_counter() - t0
        train_score = clf.score(np.asarray(X_train), np.asarray(y_train))
        test_score = clf.score(np.asarray(X_test), np.asarray(y_test))
    return {
        "train_score": float(train_score),
        "test_score": float(test_score),
        "fit_seconds": round(fit_seconds, 3),
        "epochs": int(clf.n_iter_),
        "n_classes": len(clf.classes_),
        "cpu_seconds": round(time.process_time() - cpu0, 3),
    }


def som_cell(uv_train, uv_test, *, params: dict, threads: int):
    """Train one SOM; its quantization errors (UV and z-score units), time and codebook."""
    cpu0 = time.process_time()
    with threadpool_limits(limits=threads):
        q, seconds = fit_som(np.asarray(uv_train), params)
        out = {
            "qe_uv_train": q.quantization_error(uv_train),
            "qe_z_train": q.quantization_error(uv_train, standardized=True),
            "qe_uv_test": q.quantization_error(uv_test),
            "qe_z_test": q.quantization_error(uv_test, standardized=True),
            "fit_seconds": round(seconds, 3),
            "codes_used": int(len(np.unique(q.predict(uv_train)))),
        }
    out["cpu_seconds"] = round(time.process_time() - cpu0, 3)
    out["som"] = {k: v.tolist() for k, v in quantizer_arrays(q).items()}
    return out
