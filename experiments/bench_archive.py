"""Archive speed and memory: ``somcolor colorize DIR -r --out-dir OUT`` as users run it.

``python -m experiments.bench_archive`` (``make bench-archive``) times the command in new
processes, on copies of BSDS500 photos (481x321, the train split cycled) in a temporary
folder, and prints each figure beside its command and the machine's CPU:

a. ``--jobs 1`` against ``--jobs 2`` on ``--photos`` photos (default 1000): seconds,
   files/s and the ratio (target on 2 cores: at least 1.8x); and ``--jobs 1`` held to one
   core (numba's and the BLAS's threads at one), since ``--jobs 1`` colours in its own
   process with threads on every core: ``--jobs 2`` over it is how the workers scale;
b. ``--dask local --jobs 2`` (a LocalCluster of two one-thread workers) against
   ``--jobs 2`` of (a), same photos (target: at least 0.9x its files/s);
c. ``--skip-existing`` over ``--tiny`` tiny files (default 100 000) whose outputs all
   exist: seconds and the command's peak RSS (target: under 200 MB), beside the same
   run over 1 000 files (memory must not grow with the number of files).

Peak RSS is the largest of the command's processes (``RUSAGE_CHILDREN`` of a wrapper
process that runs only it). Results, the resolved config and the versions go to
``experiments/results/bench_archive.json`` and ``.md``. ``--photos 60`` is a quick run
(its ratios are dominated by the workers' start-up, about a second: not the figures).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from somcolor.paths import RAW_DIR, RESULTS_DIR

from .report import cpu_name, provenance


@dataclass
class BenchConfig:
    """Defaults of the benchmark; the command line overrides them."""

    photos: int = 1000  #: BSDS500-size photos for (a) and (b)
    tiny: int = 100_000  #: tiny files listed and skipped in (c)
    small_tiny: int = 1000  #: the same at this count, to see memory not grow
    per_folder: int = 1000  #: files per sub-folder of the archives made here
    jobs: int = 2  #: workers of the parallel runs
    model: str = "default"
    source: str = str(RAW_DIR / "bsds500" / "train")  #: photos cycled to make the archive
    parts: tuple[str, ...] = ("jobs", "dask", "skip")
    results: str = str(RESULTS_DIR)
    targets: dict = field(
        default_factory=lambda: {
            "jobs_ratio_min": 1.8,
            "dask_vs_jobs_min": 0.9,
            "skip_peak_rss_mb_max": 200,
        }
    )


#: Runs a command and prints its wall time, exit status and peak RSS as JSON: a process
#: of its own, so that RUSAGE_CHILDREN holds the command's processes only.
WRAPPER = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rc": p.returncode, "peak_rss_mb": peak,
                  "stdout": p.stdout[-2000:], "stderr": p.stderr[-2000:]}))
"""


def somcolor_command(*args) -> list[str]:
    return [sys.executable, "-m", "somcolor", *map(str, args)]


#: The environment of a run on one core: numba's and the BLAS's threads at one.
ONE_CORE = {"NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def run(command: list[str], env: dict | None = None) -> dict:
    """The command's wall seconds, exit status, peak RSS (MB) and output tails (``env``:
    variables set for it)."""
    out = subprocess.run(
        [sys.executable, "-c", WRAPPER, *command],
        capture_output=True,
        text=True,
        check=True,
        env=None if env is None else {**os.environ, **env},
    )
    result = json.loads(out.stdout)
    if result["rc"] != 0:
        raise RuntimeError(f"{' '.join(command)} exited {result['rc']}: {result['stderr']}")
    return result


def shown(command: list[str], tmp: Path) -> str:
    """The command as a user would type it (temporary paths shortened)."""
    words = ["somcolor", *command[3:]]
    return " ".join(w.replace(str(tmp) + os.sep, "") for w in words)


# ---------------------------------------------------------------------------- the archives
def make_photos(folder: Path, n: int, config: BenchConfig) -> Path:
    """``n`` photos: copies of ``config.source``'s JPEGs, cycled, ``per_folder`` a folder."""
    sources = sorted(Path(config.source).glob("*.jpg"))
    if not sources:
        raise SystemExit(f"no photos in {config.source}: run `somcolor data`")
    for i in range(n):
        dst = folder / f"d{i // config.per_folder:03d}" / f"p{i:06d}.jpg"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources[i % len(sources)], dst)
    return folder


def make_tiny(folder: Path, out: Path, n: int, config: BenchConfig) -> Path:
    """``n`` tiny PNGs, and in ``out`` a file of the same name for each (all "done")."""
    from io import BytesIO

    import numpy as np
    from PIL import Image

    buf = BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(buf, format="PNG")
    data = buf.getvalue()
    for i in range(n):
        rel = Path(f"d{i // config.per_folder:03d}") / f"t{i:06d}.png"
        for root in (folder, out):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
    return folder


# ---------------------------------------------------------------------------- the parts
def bench_jobs(photos: Path, tmp: Path, config: BenchConfig, rows: list[dict]) -> dict:
    """(a) ``--jobs 1`` vs ``--jobs N``."""
    seconds = {}
    for jobs in (1, config.jobs):
        command = somcolor_command(
            "colorize", photos, "-r", "--out-dir", tmp / f"out_jobs{jobs}", "--jobs", jobs,
            "--model", config.model, "-q",
        )  # fmt: skip
        r = run(command)
        seconds[jobs] = r["seconds"]
        rows.append(_row(f"--jobs {jobs}", config.photos, r, shown(command, tmp)))
    ratio = seconds[1] / seconds[config.jobs]
    print(f"  --jobs {config.jobs} vs --jobs 1: {ratio:.2f}x")
    # --jobs 1 colours in this process with numba's and the BLAS's threads on every core;
    # the same run held to one core says how the worker processes scale.
    command = somcolor_command(
        "colorize", photos, "-r", "--out-dir", tmp / "out_one_core", "--jobs", 1,
        "--model", config.model, "-q",
    )  # fmt: skip
    r = run(command, ONE_CORE)
    env = " ".join(f"{k}={v}" for k, v in ONE_CORE.items())
    rows.append(_row("--jobs 1 on one core", config.photos, r, f"{env} {shown(command, tmp)}"))
    scaling = r["seconds"] / seconds[config.jobs]
    print(f"  --jobs {config.jobs} vs --jobs 1 on one core: {scaling:.2f}x")
    return {"seconds": seconds, "ratio": ratio, "one_core_ratio": scaling}


def bench_dask(photos: Path, tmp: Path, config: BenchConfig, rows, jobs_seconds) -> dict:
    """(b) ``--dask local --jobs N`` vs ``--jobs N`` (measured in the same run)."""
    command = somcolor_command(
        "colorize", photos, "-r", "--out-dir", tmp / "out_dask", "--dask", "local",
        "--jobs", config.jobs, "--model", config.model, "-q",
    )  # fmt: skip
    r = run(command)
    rows.append(_row(f"--dask local --jobs {config.jobs}", config.photos, r, shown(command, tmp)))
    ratio = jobs_seconds / r["seconds"]
    print(f"  --dask local vs --jobs {config.jobs}: {ratio:.2f}x the files/s")
    return {"seconds": r["seconds"], "vs_jobs": ratio}


def bench_skip(tmp: Path, config: BenchConfig, rows: list[dict]) -> dict:
    """(c) ``--skip-existing`` over many tiny files whose outputs exist."""
    result = {}
    for n in (config.small_tiny, config.tiny):
        folder, out = tmp / f"tiny{n}", tmp / f"tiny{n}_out"
        t0 = time.perf_counter()
        make_tiny(folder, out, n, config)
        print(f"  made {n} tiny files and their outputs in {time.perf_counter() - t0:.1f} s")
        command = somcolor_command(
            "colorize", folder, "-r", "--out-dir", out, "--skip-existing", "--model", config.model
        )
        r = run(command)
        expected = f"0 colorized, {n} skipped, 0 failed of {n} files"
        if not r["stdout"].startswith(expected):
            raise RuntimeError(f"expected {expected!r}, got {r['stdout']!r}")
        rows.append(_row("--skip-existing, all done", n, r, shown(command, tmp)))
        result[n] = {"seconds": r["seconds"], "peak_rss_mb": r["peak_rss_mb"]}
    return result


def _row(what: str, files: int, r: dict, command: str) -> dict:
    row = {
        "run": what,
        "files": files,
        "seconds": round(r["seconds"], 2),
        "files_per_s": round(files / r["seconds"], 1),
        "peak_rss_mb": round(r["peak_rss_mb"]),
        "command": f"`{command}`",
    }
    print(
        f"  {what}: {files} files in {row['seconds']} s, {row['files_per_s']} files/s, "
        f"peak RSS {row['peak_rss_mb']} MB   [{command}]"
    )
    return row


# ---------------------------------------------------------------------------- report
def machine() -> dict:
    cpu = cpu_name()
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_1min_before": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def markdown(rows: list[dict], summary: dict, config: BenchConfig, where: dict) -> str:
    from .report import markdown_table

    lines = [
        "# Archive benchmark (`make bench-archive`)",
        "",
        f"{where['cpu']}, {where['cores']} cores, load {where['load_1min_before']:.2f} before "
        f"the run, {summary['finished']}; {config.photos} BSDS500-size photos, "
        f"{config.tiny} tiny files; model `{config.model}`.",
        "",
        markdown_table(rows, ["run", "files", "seconds", "files_per_s", "peak_rss_mb", "command"]),
    ]
    for key, text in (
        ("jobs_ratio", f"`--jobs {config.jobs}` / `--jobs 1` speed-up"),
        ("one_core_ratio", f"`--jobs {config.jobs}` / `--jobs 1` held to one core speed-up"),
        ("dask_vs_jobs", f"`--dask local` files/s / `--jobs {config.jobs}` files/s"),
        ("skip_peak_rss_mb", f"peak RSS skipping {config.tiny} files (MB)"),
    ):
        if key in summary:
            lines.append(f"- {text}: **{summary[key]:.2f}**")
    if config.photos < 1000:
        lines += ["", f"Quick run ({config.photos} photos): not the figures of the issue."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=int, help="photos for (a) and (b) (default 1000)")
    p.add_argument("--tiny", type=int, help="tiny files for (c) (default 100000)")
    p.add_argument("--jobs", type=int, help="workers of the parallel runs (default 2)")
    p.add_argument("--model", help="model file or bundled model (default: default)")
    p.add_argument("--skip", action="append", default=[], choices=list(BenchConfig.parts))
    args = p.parse_args(argv)
    config = BenchConfig()
    for key in ("photos", "tiny", "jobs", "model"):
        if getattr(args, key) is not None:
            setattr(config, key, getattr(args, key))
    config.parts = tuple(x for x in config.parts if x not in args.skip)
    where = machine()
    print(f"{where['cpu']}, {where['cores']} cores, load {where['load_1min_before']:.2f}")

    rows: list[dict] = []
    summary: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench_archive_") as tmp:
        tmp = Path(tmp)
        if "jobs" in config.parts or "dask" in config.parts:
            make_photos(tmp / "photos", config.photos, config)
        if "jobs" in config.parts:
            jobs = bench_jobs(tmp / "photos", tmp, config, rows)
            summary["jobs_ratio"] = jobs["ratio"]
            summary["one_core_ratio"] = jobs["one_core_ratio"]
            if "dask" in config.parts:
                dask = bench_dask(tmp / "photos", tmp, config, rows, jobs["seconds"][config.jobs])
                summary["dask_vs_jobs"] = dask["vs_jobs"]
        if "skip" in config.parts:
            skip = bench_skip(tmp, config, rows)
            summary["skip_peak_rss_mb"] = skip[config.tiny]["peak_rss_mb"]
            summary["skip_peak_rss_mb_small"] = skip[config.small_tiny]["peak_rss_mb"]
    summary["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    where["load_1min_after"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    results = Path(config.results)
    results.mkdir(parents=True, exist_ok=True)
    record = {
        "config": asdict(config),
        "machine": where,
        "summary": summary,
        "rows": rows,
        "provenance": provenance(),
    }
    (results / "bench_archive.json").write_text(json.dumps(record, indent=2) + "\n")
    (results / "bench_archive.md").write_text(markdown(rows, summary, config, where))
    print(f"wrote {results / 'bench_archive.json'} and bench_archive.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
