"""Run one experiment: ``python -m experiments.run CONFIG [--set KEY=VALUE]... [--scheduler ADDR]``.

CONFIG is a TOML file of overrides (``experiments/configs/table2.toml``). Results go
to ``experiments/results/<name>/``:

=================  ====================================================================
``table.md``       the metrics as Markdown, with the data note and the protocol
``table.csv``      the same metrics as numbers
``cells.csv``      one row per grid cell (tables only)
``figure.png``     the figure (figures only)
``config.json``    the resolved config (defaults + file + ``--set``)
``run.json``       seed, git commit, package versions, machine, run time, cells reused
``cells/``         each finished grid cell, kept so an interrupted run resumes
=================  ====================================================================

A bad config or data set stops the run with one line on stderr (exit status 2 or 1);
Ctrl-C keeps the finished cells (exit status 130).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg

from somcolor import paths
from somcolor.exceptions import SomcolorError

from . import cache, config, report
from .grid import GridStats
from .paper import run_experiment

log = logging.getLogger("experiments")


def write_outputs(outcome, cfg, out_dir: Path, meta: dict) -> None:
    """Write an experiment's files; the Makefile's target (table.md or figure.png) comes last."""
    note = report.DATA_NOTES.get(cfg.dataset, cfg.dataset)
    cache.write_json(out_dir / "config.json", config.as_dict(cfg))
    if outcome.cells:
        (out_dir / "cells.csv").write_text(report.csv_text(outcome.cells))
    (out_dir / "table.csv").write_text(report.csv_text(outcome.rows))
    cache.write_json(out_dir / "run.json", meta)
    lines = [
        f"# {outcome.title}",
        "",
        f"**Data:** {note}",
        "",
        report.markdown_table(outcome.display),
    ]
    lines += [f"- {n}" for n in outcome.notes]
    git = meta["provenance"]["git"]
    commit = git["commit"][:10] + (" + local changes" if git["dirty"] else "")
    lines += [
        "",
        f"Command: `{meta['command']}` — {meta['seconds']:.0f} s on {meta['provenance']['cpus']} "
        f"CPUs, load average {meta['load_average']['start']:.1f} at the start "
        f"({meta['cells']['computed']} cells computed, {meta['cells']['reused']} reused, "
        f"{meta['cpu_seconds']['cells']:.0f} CPU-s in cells); "
        f"seed {cfg.seed}; commit {commit}.",
        "",
    ]
    if outcome.figure is not None:
        lines.insert(4, "![figure](figure.png)\n")
    cache._atomic(out_dir / "table.md", lambda fh: fh.write("\n".join(lines).encode()))
    if outcome.figure is not None:
        FigureCanvasAgg(outcome.figure)  # render with Agg: no display, no pyplot state
        outcome.figure.savefig(out_dir / ".figure.png.part", dpi=150, format="png")
        (out_dir / ".figure.png.part").replace(out_dir / "figure.png")


def execute(
    cfg: config.ExperimentConfig,
    *,
    results_dir: Path = paths.RESULTS_DIR,
    cache_dir: Path = paths.INTERIM_DIR,
    scheduler: str | None = None,
    command: str = "",
):
    """Run ``cfg`` and write its results; returns ``(outcome, meta)``."""
    out_dir = Path(results_dir) / cfg.name
    out_dir.mkdir(parents=True, exist_ok=True)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    t0, cpu0, load0 = time.perf_counter(), time.process_time(), os.getloadavg()
    stats = GridStats()
    outcome = run_experiment(cfg, cache_dir, out_dir / "cells", scheduler, stats)
    meta = {
        "name": cfg.name,
        "experiment": cfg.experiment,
        "seed": cfg.seed,
        "command": command or f"python -m experiments.run ({cfg.name})",
        "data_note": report.DATA_NOTES.get(cfg.dataset, cfg.dataset),
        "scheduler": scheduler,
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - t0, 1),
        "cells": {"total": stats.total, "computed": stats.computed, "reused": stats.reused},
        # What the run cost whatever else ran on the machine, and how busy the machine was.
        "cpu_seconds": {
            "main": round(time.process_time() - cpu0, 1),
            "cells": round(stats.cpu_seconds, 1),
        },
        "load_average": {"start": load0[0], "end": os.getloadavg()[0]},
        "summary": outcome.summary,
        "provenance": report.provenance(),
    }
    write_outputs(outcome, cfg, out_dir, meta)
    return outcome, meta


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m experiments.run",
        description="Run one experiment of the paper reproduction (see docs/reproduction.md).",
    )
    p.add_argument("config", help="TOML file of overrides, e.g. experiments/configs/table2.toml")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value (lists comma-separated); repeatable",
    )
    p.add_argument("--scheduler", metavar="ADDRESS", help="run the grid on this Dask scheduler")
    p.add_argument("--results", type=Path, default=paths.RESULTS_DIR, help=argparse.SUPPRESS)
    p.add_argument("--cache", type=Path, default=paths.INTERIM_DIR, help=argparse.SUPPRESS)
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(name)s: %(message)s",
    )
    prog = "experiments.run"
    try:
        cfg = config.load(args.config, args.overrides)
    except config.ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    command = " ".join(["python -m experiments.run", *sys.argv[1:]]) if argv is None else ""
    try:
        outcome, meta = execute(
            cfg,
            results_dir=args.results,
            cache_dir=args.cache,
            scheduler=args.scheduler,
            command=command or f"python -m experiments.run {' '.join(argv)}",
        )
    except config.ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except SomcolorError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"{prog}: interrupted; finished cells are kept in {args.results / cfg.name / 'cells'} "
            "and a rerun resumes from them",
            file=sys.stderr,
        )
        return 130
    print(f"{args.results / cfg.name}: {outcome.title} ({meta['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
