"""A one-minute run of every somcolor command and paper target on tiny data: ``make smoke``.

Trains a tiny model on 12 Open Country thumbnails (64x64), colorizes two test
thumbnails with it and with the bundled model, and prints the model's info; colours the
12 as an archive with two workers and a log, then again with ``--skip-existing``. Then
runs every experiment config of ``experiments/configs`` (Tables I and II, Figures
8-10, on both data sets) with :data:`TINY` settings into a temporary folder, and
checks that a bad config is refused with one line; with the cnn extra installed, runs
``experiments.compare_cnn --quick``. Fails (non-zero exit) if any
step fails or an output is missing or has the wrong size.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from experiments import config as exp_config
from experiments import run as exp_run
from somcolor import datasets
from somcolor.cli import main as somcolor
from somcolor.io import read_image

#: Overrides that shrink every paper experiment to seconds (same code paths, tiny data).
TINY = {
    "max_images": 16,
    "pixels_per_image": 300,
    "som_iterations": 1000,
    "som_samples": 2000,
    "som_repeats": 1,
    "som_shapes": ("3x3", "5x5"),
    "patch_sizes": (3, 5),
    "hidden_layers": ("10", "20+20"),
    "n_splits": 2,
    "train_size": 1500,
    "test_size": 300,
    "max_iter": 3,
    "n_images": 2,
}
CONFIG_DIR = Path(__file__).parent / "configs"


def run(*argv: str) -> None:
    code = somcolor(list(argv))
    if code != 0:
        raise SystemExit(f"smoke: `somcolor {' '.join(argv)}` exited {code}")


def main() -> int:
    t0 = time.perf_counter()
    train = datasets.image_paths("opencountry", "train")[:12]
    test = datasets.image_paths("opencountry", "test")[:2]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "train").mkdir()
        for f in train:
            (tmp / "train" / f.name).write_bytes(f.read_bytes())
        model = tmp / "tiny.npz"
        run(
            "train",
            str(tmp / "train"),
            "-o",
            str(model),
            "--hidden",
            "16",
            "--max-iter",
            "5",
            "--pixels-per-image",
            "500",
            "-q",
        )
        run("info", str(model))
        for name, extra in (("tiny", ["--model", str(model)]), ("bundled", [])):
            out = tmp / name
            run("colorize", *map(str, test), "--out-dir", str(out), "-q", *extra)
            for f in test:
                got, want = read_image(out / f.name).shape, read_image(f).shape[:2]
                if got[:2] != want:
                    raise SystemExit(f"smoke: {name} output {got} for input {want}")
        archive(tmp / "train", tmp / "archive", model)
    paper_targets()
    cnn_comparison()
    print(f"smoke: ok in {time.perf_counter() - t0:.1f} s")
    return 0


def archive(folder: Path, out: Path, model: Path) -> None:
    """A folder through two worker processes with a log, then rerun: all skipped."""
    import json

    log = out / "run.jsonl"
    args = ["colorize", str(folder), "-r", "--out-dir", str(out), "--log", str(log)]
    for extra in ([], ["--skip-existing"]):
        run(*args, "--jobs", "2", "--model", str(model), "-q", *extra)
    statuses = [json.loads(line)["status"] for line in log.read_text().splitlines()]
    n = len(list(folder.iterdir()))
    if statuses != ["ok"] * n + ["skipped"] * n:
        raise SystemExit(f"smoke: archive run and rerun logged {statuses}")
    print(f"smoke: archive of {n} files with 2 workers, then skipped on a rerun: ok")


def paper_targets() -> None:
    """Every config under experiments/configs, tiny; then a typo must be refused in one line."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for path in sorted(CONFIG_DIR.glob("*.toml")):
            t0 = time.perf_counter()
            cfg = exp_config.load(path, **TINY)
            exp_run.execute(cfg, results_dir=tmp / "results", cache_dir=tmp / "cache")
            out = tmp / "results" / cfg.name
            target = "figure.png" if (out / "figure.png").exists() else "table.md"
            for name in (target, "table.csv", "config.json", "run.json"):
                if not (out / name).is_file():
                    raise SystemExit(f"smoke: {path.name} wrote no {name}")
            print(f"smoke: {path.name} ok in {time.perf_counter() - t0:.1f} s")
        code = exp_run.main([str(CONFIG_DIR / "table2.toml"), "--set", "max_iters=3"])
        if code != 2:
            raise SystemExit(f"smoke: an unknown config key gave exit status {code}, expected 2")


def cnn_comparison() -> None:
    """``compare_cnn --quick`` into a temporary folder, when the cnn extra (torch) is installed."""
    try:
        import torch  # noqa: F401
    except ImportError:
        print("smoke: compare_cnn skipped (no torch; pip install -e '.[cnn]')")
        return
    from experiments import compare_cnn

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = Path(tmp) / "out"
        code = compare_cnn.main(["--quick", "--out", str(out), "--cache", f"{tmp}/cache"])
        if code != 0 or not (out / "README.md").is_file():
            raise SystemExit(f"smoke: compare_cnn --quick exited {code} or wrote no README.md")
        print(f"smoke: compare_cnn --quick ok in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
