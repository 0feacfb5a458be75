"""A one-minute run of every somcolor command on tiny data: ``make smoke``.

Trains a tiny model on 12 Open Country thumbnails (64x64), colorizes two test
thumbnails with it and with the bundled model, and prints the model's info. Fails
(non-zero exit) if any step fails or an output is missing or has the wrong size.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from somcolor import datasets
from somcolor.cli import main as somcolor
from somcolor.io import read_image


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
    print(f"smoke: ok in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
