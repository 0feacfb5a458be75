"""Writing results: Markdown and CSV tables, and the provenance saved beside every result."""

from __future__ import annotations

import csv
import io
import platform
import subprocess
import sys

import numpy as np

from somcolor import paths

from . import cache
from .grid import cpu_count

#: Said at the top of every Open Country result: our copy is not the paper's resolution.
DATA_NOTES = {
    "opencountry": (
        "Open Country **64x64 thumbnails only** (410 images); the paper used the 256x256 "
        "originals, so these numbers are not the paper's setting."
    ),
    "bsds500": "BSDS500 train+test, 400 photos at full resolution (481x321): the full-resolution "
    "counterpart; not a data set of the paper.",
    "fruits100": "Fruits-360 subset, 100x100; not a data set of the paper.",
}

#: Short data labels for figure titles.
DATA_LABELS = {
    "opencountry": "Open Country, 64x64 thumbnails (paper: 256x256)",
    "bsds500": "BSDS500, 481x321",
    "fruits100": "Fruits-360, 100x100",
}

#: Packages whose versions are recorded with every result.
VERSIONED = (
    "somcolor",
    "numpy",
    "scikit-learn",
    "scikit-image",
    "minisom",
    "numba",
    "joblib",
    "threadpoolctl",
    "matplotlib",
    "pillow",
    "dask",
    "distributed",
)


def git_commit() -> dict:
    """The repository's HEAD commit and whether the working tree differs from it."""

    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=paths.REPO_DIR, capture_output=True, text=True, timeout=10
        )

    try:
        head = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}
    if head.returncode != 0:
        return {"commit": "unknown", "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` says: figures
    from different machines are never compared as if alike."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "?"


def provenance() -> dict:
    """Code version, library versions and machine: what a reader needs to redo a result."""
    return {
        "git": git_commit(),
        "python": sys.version.split()[0],
        "packages": {name: cache.package_version(name) for name in VERSIONED},
        "platform": platform.platform(),
        "cpus": cpu_count(),
        "code_fingerprint": cache.code_fingerprint(),
    }


def mean_std(values, digits: int = 3) -> str:
    """``mean ± std`` of the values (std of one value is shown as 0).

    >>> mean_std([0.4, 0.42])
    '0.410 ± 0.010'
    """
    v = np.asarray(values, dtype=np.float64)
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A GitHub Markdown table of ``rows`` (dicts), in the order of ``columns``."""
    if not rows:
        return "(no rows)\n"
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()
