"""The ``somcolor`` command line: colorize, train, info, data.

Every error a user can cause is printed as one line ``somcolor: error: ...`` on
stderr with a non-zero exit status; no traceback reaches the user unless
``--debug`` is given. Heavy modules are imported inside the commands so that
``somcolor --help`` and small jobs start fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__
from .exceptions import SomcolorError

log = logging.getLogger("somcolor")

EXIT_FAILURES = 1  # some inputs of a batch failed
EXIT_USAGE = 2  # bad options, unusable model, nothing to do
EXIT_INTERNAL = 3  # a bug: please report
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line and exit with EXIT_USAGE."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"somcolor: error: {message} (see --help)\n")


def _error(message: str) -> None:
    print(f"somcolor: error: {message}", file=sys.stderr)


def _progress(enabled: bool):
    """A tqdm wrapper for the library's ``progress=`` hooks (None when disabled)."""
    if not enabled:
        return None
    from tqdm import tqdm

    def wrap(iterable, desc=None, total=None):
        return tqdm(iterable, desc=desc, total=total, unit="img", file=sys.stderr, disable=None)

    return wrap


# ---------------------------------------------------------------------------- types
def _som_shape(text: str) -> tuple[int, int]:
    from .quantize import parse_shape

    try:
        rows, cols = parse_shape(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if rows * cols < 2:
        raise argparse.ArgumentTypeError(f"a map needs at least 2 codes, got {text!r}")
    return rows, cols


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(p) for p in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected layer sizes like 50,50, got {text!r}")
    return sizes


def _odd(text: str) -> int:
    try:
        k = int(text)
    except ValueError:
        k = 0
    if k < 1 or k % 2 == 0:
        raise argparse.ArgumentTypeError(f"expected a positive odd integer, got {text!r}")
    return k


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


# ---------------------------------------------------------------------------- colorize
def _destinations(inputs: list[str], files: list[Path], args) -> list[Path]:
    """Where each input's colorized copy goes."""
    if args.output is not None:
        return [Path(args.output)]
    if args.out_dir is None:
        return [f.with_name(f"{f.stem}_color{f.suffix or '.png'}") for f in files]
    out_dir = Path(args.out_dir)
    roots = [Path(i) for i in inputs if Path(i).is_dir()]
    dests = []
    for f in files:
        root = next((r for r in roots if f.is_relative_to(r)), None)
        dests.append(out_dir / (f.relative_to(root) if root else Path(f.name)))
    return dests


def cmd_colorize(args) -> int:
    from .io import find_images, read_image, write_image
    from .paths import DEFAULT_MODEL
    from .pipeline import Colorizer

    files = find_images(args.inputs, recursive=args.recursive)
    if not files:
        _error("no input images found in " + ", ".join(args.inputs))
        return EXIT_USAGE
    if args.output is not None and len(files) > 1:
        _error(f"-o names one output file but there are {len(files)} inputs; use --out-dir")
        return EXIT_USAGE
    dests = _destinations(args.inputs, files, args)
    seen = {}
    for src, dst in zip(files, dests, strict=True):
        key = dst.resolve()
        if key in seen:
            _error(f"{src} and {seen[key]} would both be written to {dst}")
            return EXIT_USAGE
        seen[key] = src

    model = Colorizer.load(args.model or DEFAULT_MODEL)
    failures = 0
    pairs = list(zip(files, dests, strict=True))
    bar = _progress(len(pairs) > 1 and not args.quiet)
    for src, dst in bar(pairs, desc="colorizing") if bar else pairs:
        try:
            if dst.exists() and dst.resolve() == src.resolve():
                raise SomcolorError(f"{dst}: refusing to overwrite the input file")
            if dst.is_dir():
                raise SomcolorError(f"{dst}: output is a folder")
            if dst.exists() and not args.force:
                raise SomcolorError(f"{dst}: output exists (use --force to overwrite)")
            image = read_image(src, max_pixels=args.max_pixels)
            rgb, info = model.colorize(image, return_info=True)
            try:
                write_image(dst, rgb, overwrite=args.force)
            except OSError as exc:
                raise SomcolorError(f"{dst}: cannot write ({exc.strerror or exc})") from None
            log.info(
                "%s -> %s (%dx%d, %.2f s, %d pixels clipped to gamut)",
                src,
                dst,
                info.width,
                info.height,
                info.seconds,
                info.gamut_clipped,
            )
            if len(pairs) == 1 and not args.quiet:
                print(dst)
        except SomcolorError as exc:
            failures += 1
            _error(str(exc))
    if failures:
        _error(f"{failures} of {len(pairs)} files failed")
        return EXIT_FAILURES
    return 0


# ---------------------------------------------------------------------------- train
def cmd_train(args) -> int:
    from .io import find_images, read_image
    from .pipeline import Colorizer

    out = Path(args.output)
    if out.exists() and not args.force:
        _error(f"{out}: output exists (use --force to overwrite)")
        return EXIT_USAGE
    missing = [d for d in args.data_dirs if not Path(d).exists()]
    if missing:
        _error(f"{missing[0]}: no such file or folder")
        return EXIT_USAGE
    files = find_images(args.data_dirs, recursive=args.recursive)
    if not files:
        _error("no training images found in " + ", ".join(args.data_dirs))
        return EXIT_USAGE

    images, failures = [], 0
    bar = _progress(not args.quiet)
    for f in bar(files, desc="reading") if bar else files:
        try:
            images.append(read_image(f, max_pixels=args.max_pixels))
        except SomcolorError as exc:
            failures += 1
            _error(f"{exc} (skipped)")
    if not images:
        _error("none of the training images could be read")
        return EXIT_USAGE

    model = Colorizer(
        som_shape=args.som,
        patch_size=args.patch,
        hidden_layer_sizes=args.hidden,
        pixels_per_image=args.pixels_per_image,
        max_iter=args.max_iter,
        random_state=args.seed,
    )
    description = args.description or "images from " + ", ".join(args.data_dirs)
    model.fit(images, description=description, progress=bar)
    model.save(out, overwrite=args.force)
    t = model.training_
    print(
        f"{out}: trained on {t['n_images']} images, {t['n_samples']} pixels, "
        f"{sum(t['seconds'].values()):.1f} s"
    )
    if failures:
        _error(f"{failures} of {len(files)} training images could not be read")
        return EXIT_FAILURES
    return 0


# ---------------------------------------------------------------------------- info
def cmd_info(args) -> int:
    import json

    from .paths import DEFAULT_MODEL
    from .pipeline import Colorizer

    path = Path(args.model or DEFAULT_MODEL)
    model = Colorizer.load(path)
    meta = model.metadata_
    t = meta.get("training", {})
    print(f"model:     {path}")
    print(
        f"format:    {meta['format']} v{meta['format_version']}, "
        f"written by somcolor {meta.get('somcolor_version', '?')}"
    )
    print(f"config:    {json.dumps(meta['config'], sort_keys=True)}")
    print(
        f"trained:   {t.get('trained_at', '?')} on {t.get('n_images', '?')} images, "
        f"{t.get('n_samples', '?')} pixels, {t.get('mlp_epochs', '?')} MLP epochs"
    )
    print(f"data:      {t.get('description') or '?'}")
    if "seconds" in t:
        secs = ", ".join(f"{k} {v:.1f} s" for k, v in t["seconds"].items())
        print(f"time:      {secs}")
    codebook = model.quantizer_.codebook_
    print(f"codebook:  {len(codebook)} codes (u, v):")
    for i, (u, v) in enumerate(codebook):
        seen = "" if i in set(model.classifier_.classes_.tolist()) else "  (never seen in training)"
        print(f"  {i:3d}: ({u:7.2f}, {v:7.2f}){seen}")
    return 0


# ---------------------------------------------------------------------------- data
def cmd_data(args) -> int:
    from . import datasets

    bad = 0
    for name, ds in datasets.DATASETS.items():
        try:
            ok, missing, mismatched = datasets.verify(name)
        except SomcolorError as exc:
            _error(str(exc))
            bad += 1
            continue
        status = "ok" if not (missing or mismatched) else "PROBLEM"
        print(f"{name:12s} {ok:4d} files verified  {status:7s}  {ds.root}  ({ds.note})")
        for rel in missing:
            print(f"  missing:  {rel}")
        for rel in mismatched:
            print(f"  sha256 mismatch: {rel}")
        bad += bool(missing or mismatched)
    if bad:
        _error(
            f"{bad} data set(s) incomplete; copy them from the project's shared data into data/raw"
        )
        return EXIT_FAILURES
    return 0


# ---------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    from .io import MAX_PIXELS

    p = _Parser(prog="somcolor", description="Colorize grayscale photos on a CPU (SOM + MLP).")
    p.add_argument("--version", action="version", version=f"somcolor {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log what is done")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("colorize", help="colorize images (files, folders, globs)")
    c.add_argument("inputs", nargs="+", metavar="INPUT")
    dest = c.add_mutually_exclusive_group()
    dest.add_argument("-o", "--output", help="output file (one input only)")
    dest.add_argument("--out-dir", help="folder for the outputs (keeps names and sub-folders)")
    c.add_argument("--model", help="model file (default: the bundled model)")
    c.add_argument("--force", action="store_true", help="overwrite existing outputs")
    c.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress or output names")
    c.add_argument(
        "--max-pixels",
        type=_positive,
        default=MAX_PIXELS,
        help=f"refuse larger images (default {MAX_PIXELS})",
    )
    c.set_defaults(func=cmd_colorize)

    t = sub.add_parser("train", help="train a model on your own color photos")
    t.add_argument("data_dirs", nargs="+", metavar="DATA_DIR")
    t.add_argument("-o", "--output", required=True, help="model file to write (.npz)")
    t.add_argument("--som", type=_som_shape, default=(3, 3), help="SOM map size (default 3x3)")
    t.add_argument("--patch", type=_odd, default=5, help="patch side, odd (default 5)")
    t.add_argument("--hidden", type=_hidden, default=(50, 50), help="hidden layers (default 50,50)")
    t.add_argument("--pixels-per-image", type=_positive, default=2500)
    t.add_argument("--max-iter", type=_positive, default=50, help="MLP epochs at most")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--description", help="training data description stored in the model")
    t.add_argument("-r", "--recursive", action="store_true")
    t.add_argument("--force", action="store_true")
    t.add_argument("-q", "--quiet", action="store_true")
    t.add_argument("--max-pixels", type=_positive, default=MAX_PIXELS)
    t.set_defaults(func=cmd_train)

    i = sub.add_parser("info", help="show a model's config and provenance")
    i.add_argument("model", nargs="?", help="model file (default: the bundled model)")
    i.set_defaults(func=cmd_info)

    d = sub.add_parser("data", help="verify the bundled data sets against their checksums")
    d.set_defaults(func=cmd_data)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="somcolor: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args)
    except SomcolorError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence for users
        if args.debug:
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
