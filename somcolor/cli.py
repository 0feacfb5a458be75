"""The ``somcolor`` command line: colorize, train, info, data, evaluate, video, serve.

Every error a user can cause is printed as one line ``somcolor: error: ...`` on
stderr with a non-zero exit status; no traceback reaches the user unless
``--debug`` is given. Heavy modules are imported inside the commands so that
``somcolor --help`` and small jobs start fast.

Each command has a small parser builder (``_add_<command>``) beside its
``cmd_<command>``; ``train``'s options for the Colorizer come from the parameter table
of :mod:`somcolor.params` (flags, types, help with the defaults), the decoder choices
from :data:`somcolor.decode.DECODERS`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from pathlib import Path

from . import params
from ._version import __version__
from .decode import DECODERS
from .exceptions import SomcolorError
from .paths import VIDEO_MODEL
from .web.settings import MIB

log = logging.getLogger("somcolor")

EXIT_FAILURES = 1  # some inputs of a batch failed
EXIT_USAGE = 2  # bad options, unusable model, nothing to do
EXIT_INTERNAL = 3  # a bug: please report
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool killed by a closed pipe


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


def _inference_model(path, work_size=None, **options):
    """A model to colorize with: a :class:`~somcolor.model.Model` for a SOM model
    file, so scikit-learn and minisom (training only) are never imported; for other
    back ends, what :func:`somcolor.backends.load_model` gives (``options`` go to it).
    ``work_size`` (``--work-size``) replaces the model's working resolution."""
    from .backends import load_model, model_kind

    if model_kind(path) == "som":
        from .model import Model

        model = Model.from_file(path)
    else:
        model = load_model(path, **options)
    return _with_work_size(model, work_size, path)


def _with_work_size(model, work_size, path):
    """``model`` predicting at ``work_size`` px on the long side (None: as trained, 0:
    at full resolution)."""
    if work_size is None:
        return model
    if "work_size" not in model.get_params():
        raise SomcolorError(f"{path}: --work-size applies to SOM models only")
    return model.set_params(work_size=work_size or None)


# ---------------------------------------------------------------------------- types
def _arg(parse):
    """An argparse type from a :mod:`somcolor.params` parser: its ValueError (which says
    what was expected) becomes argparse's one-line usage error."""

    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__
    return convert


_positive = _arg(params.parse_positive)
_positive_number = _arg(params.parse_positive_float)
_work_size = _arg(params.parse_work_size)


def _number(text: str, ok, what: str) -> float:
    """``text`` as a float for which ``ok(value)`` holds, else an argparse error saying
    that ``what`` was expected (text that is no number fails every ``ok``: it is NaN)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _quality(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to 100, got {text!r}")
    return value


def _add_work_size(parser: argparse.ArgumentParser) -> None:
    """The ``--work-size`` option of the commands that colorize with a trained model."""
    parser.add_argument(
        "--work-size",
        type=_work_size,
        help=(
            "predict at this long side in px and upsample the chroma; 0 or full: at full "
            "resolution (default: the model's own)"
        ),
    )


# ---------------------------------------------------------------------------- colorize
def _add_colorize(sub) -> None:
    from .io import MAX_PIXELS

    c = sub.add_parser("colorize", help="colorize images (files, folders, globs)")
    c.add_argument("inputs", nargs="+", metavar="INPUT")
    dest = c.add_mutually_exclusive_group()
    dest.add_argument("-o", "--output", help="output file (one input only)")
    dest.add_argument("--out-dir", help="folder for the outputs (keeps names and sub-folders)")
    c.add_argument("--model", help="model file, or a bundled model: default (the default), fast")
    exists = c.add_mutually_exclusive_group()
    exists.add_argument("--force", action="store_true", help="overwrite existing outputs")
    exists.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip inputs whose output exists (outputs are written whole or not at all): "
        "rerun a stopped run to finish it",
    )
    c.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress or output names")
    c.add_argument(
        "--jobs",
        type=_positive,
        metavar="N",
        help="worker processes (default: the cores, at most one per 512 MiB of memory "
        "available, fewer for small batches; 1: in this process)",
    )
    c.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="colorize on a dask.distributed cluster: a scheduler's address, or local for a "
        "local cluster of --jobs workers (needs the dask extra)",
    )
    c.add_argument(
        "--log",
        metavar="FILE.jsonl",
        help="append one JSON line per input (input, output, status, seconds, error)",
    )
    c.add_argument(
        "--format",
        choices=["jpg", "png", "tiff"],
        help="write outputs in this format (default: the input's)",
    )
    c.add_argument(
        "--quality",
        type=_quality,
        metavar="Q",
        help="JPEG and WebP output quality, 1-100 (default: Pillow's, 75 for JPEG)",
    )
    c.add_argument(
        "--max-pixels",
        type=_positive,
        default=MAX_PIXELS,
        help=f"refuse larger images (default {MAX_PIXELS})",
    )
    c.add_argument(
        "--hints",
        metavar="FILE.json",
        help='colour hints {"points": [{"x": 120, "y": 45, "color": "#c83232"}]} (one input)',
    )
    c.add_argument(
        "--scribbles",
        metavar="FILE.png",
        help="colour strokes: an RGBA image of the input's size, opaque pixels (one input)",
    )
    _add_reference(c)
    _add_work_size(c)
    c.set_defaults(func=cmd_colorize)


def _add_reference(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reference",
        action="append",
        metavar="REF",
        help="a colour photo to take the colours from (repeat for several): the model is "
        "fitted to it once, then colours every input",
    )


def _read_references(paths) -> list:
    """Reference photo files read and checked (a video among them gets its own message)."""
    from .adapt import read_reference
    from .video import is_video

    return [read_reference(r, is_video=is_video) for r in paths]


def _adapted(model, references: list[str] | None, name: str):
    """``model`` fitted to the ``--reference`` photos (itself for an empty list; for None,
    only checked to be adaptable); a model that cannot be adapted, or a bad reference, is
    a one-line error before anything is written."""
    if references == []:
        return model
    if not hasattr(model, "adapt") or getattr(model, "out_activation", None) != "softmax":
        raise SomcolorError(
            f"{name}: this model cannot be adapted to a reference "
            "(only a SOM + MLP model with a softmax output can)"
        )
    if references is None:
        return model
    images = _read_references(references)  # every file checked before fitting
    adapted = model.adapt(images)
    log.info("adapted %s to %d reference photo(s)", name, len(images))
    return adapted


def _colorize_options(args) -> str | None:
    """What is wrong with ``colorize``'s options together, or None."""
    if args.format and args.output is not None:
        from .archive import FORMAT_SUFFIXES

        if Path(args.output).suffix.lower() not in FORMAT_SUFFIXES[args.format]:
            return f"-o {args.output} does not end as --format {args.format} files do"
    if args.dask and args.dask != "local" and args.jobs is not None:
        return "--jobs sets the workers of --dask local; a cluster at an address has its own"
    return None


def cmd_colorize(args) -> int:
    from . import archive
    from .paths import model_path

    problem = _colorize_options(args)
    if problem:
        _error(problem)
        return EXIT_USAGE
    out_dir = Path(args.out_dir) if args.out_dir is not None else None
    destinations = archive.Destinations.for_inputs(
        args.inputs,
        out_dir=out_dir,
        output=Path(args.output) if args.output is not None else None,
        fmt=args.format,
    )
    jobs = archive.JobList(
        args.inputs, recursive=args.recursive, destinations=destinations, exclude=out_dir
    )
    count = jobs.survey()  # two inputs for one output: refused before anything is done
    if not count:
        _error("no input images found in " + ", ".join(args.inputs))
        return EXIT_USAGE
    if args.output is not None and count > 1:
        _error(f"-o names one output file but there are {count} inputs; use --out-dir")
        return EXIT_USAGE

    model = _inference_model(model_path(args.model), args.work_size)
    model = _adapted(model, args.reference or [], args.model or "default")
    if args.hints or args.scribbles:
        if count != 1:
            _error(f"--hints and --scribbles take one input image, got {count}")
            return EXIT_USAGE
        job = next(iter(jobs))
        return _colorize_hinted(job.src, job.dst, model, args)
    workers = 1 if args.dask else archive.workers_for(count, args.jobs)
    videos = _video_colorizer(model, args)
    bar = None
    if count > 1 and not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=count, desc="colorizing", unit="file", file=sys.stderr, disable=None)

    def on_record(record) -> None:
        if record.status == archive.FAILED:
            if bar is not None and not bar.disable:
                bar.write(f"somcolor: error: {record.error}", file=sys.stderr)
            else:
                _error(record.error)
        if bar is not None:
            bar.update()
        if count == 1 and record.status == archive.OK and not args.quiet:
            if record.output not in videos.written:  # a video printed its own line
                print(record.output)

    with contextlib.ExitStack() as stack:  # left in reverse: workers end, then scratch goes
        run_log = stack.enter_context(archive.RunLog(args.log)) if args.log else None
        scratch = stack.enter_context(archive.scratch_folder(out_dir))
        client = None
        if args.dask:
            client = stack.enter_context(archive.dask_client(args.dask, args.jobs))
        if bar is not None:
            stack.enter_context(bar)
        summary = archive.colorize_all(
            model,
            jobs,
            options=archive.WriteOptions(
                max_pixels=args.max_pixels,
                quality=args.quality,
                scratch=None if scratch is None else str(scratch),
            ),
            workers=workers,
            dask=client,
            force=args.force,
            skip_existing=args.skip_existing,
            log_to=run_log,
            on_record=on_record,
            on_video=videos,
        )
    if count > 1 and not args.quiet:
        rate = summary.total / max(summary.seconds, 1e-9)
        print(
            f"{summary.ok} colorized, {summary.skipped} skipped, {summary.failed} failed of "
            f"{summary.total} files in {summary.seconds:.1f} s ({rate:.2f} files/s)"
        )
    if summary.failed:
        _error(f"{summary.failed} of {summary.total} files failed")
        return EXIT_FAILURES
    return 0


def _video_colorizer(model, args):
    """``colorize``'s way with a video among its inputs: the video commands' default model
    (unless ``--model`` or ``--reference``), in this process, one at a time."""
    from .archive import FAILED, OK, SKIPPED, Record
    from .paths import model_path

    video_model = None

    def colorize(src: Path, dst: Path) -> Record:
        nonlocal video_model
        out = _video_output(dst, args)
        t0 = time.perf_counter()
        if args.skip_existing and out.exists():
            return Record(str(src), str(out), SKIPPED)
        try:
            if video_model is None:
                from .video import VIDEO_MODEL

                video_model = (
                    model
                    if args.model or args.reference
                    else _inference_model(model_path(VIDEO_MODEL), args.work_size)
                )
            _colorize_video_file(src, out, video_model, args)
        except SomcolorError as exc:
            return Record(str(src), str(out), FAILED, time.perf_counter() - t0, str(exc))
        colorize.written.append(str(out))
        return Record(str(src), str(out), OK, time.perf_counter() - t0)

    colorize.written = []  # the videos' outputs
    return colorize


# ---------------------------------------------------------------------------- video
def _read_hints(args, shape: tuple[int, int]):
    """The hints of ``--hints`` and ``--scribbles`` for an image of ``shape``, as one
    :class:`~somcolor.guide.Hints`; a bad file raises one line naming it."""
    from . import guide
    from .io import read_image

    hints = guide.Hints.empty(shape)
    if args.hints:
        hints = guide.read_hints(args.hints, shape)
    if args.scribbles:
        rgba = read_image(args.scribbles, max_pixels=args.max_pixels)
        hints = guide.merge_hints(hints, guide.scribble_hints(rgba, shape, args.scribbles))
    return hints


def _colorize_hinted(src: Path, dst: Path, model, args) -> int:
    """``colorize`` of one image with ``--hints`` / ``--scribbles``: every check (the
    output, the image, the hint files) before anything is written."""
    from .archive import SKIPPED, WriteOptions, check_destination, write_result
    from .io import read_photo
    from .video import is_video

    if not hasattr(model, "hint_session"):
        raise SomcolorError(
            f"{args.model or 'default'}: --hints and --scribbles apply to SOM models only"
        )
    if is_video(src):
        raise SomcolorError(
            f"{src}: is a video: give hints on its key frames with colorize-video --hints KEYS.json"
        )
    refused = check_destination(src, dst, force=args.force, skip_existing=args.skip_existing)
    if refused is not None:
        if refused.status == SKIPPED:
            return 0
        raise SomcolorError(refused.error)
    photo = read_photo(src, max_pixels=args.max_pixels)
    hints = _read_hints(args, photo.pixels.shape[:2])
    rgb, info = model.colorize(photo.pixels, hints=hints, return_info=True)
    write_result(dst, rgb, photo, WriteOptions(quality=args.quality), overwrite=args.force)
    log.info("%s -> %s (%d hints, %.2f s)", src, dst, len(hints), info.seconds)
    if not args.quiet:
        print(dst)
    return 0


# ---------------------------------------------------------------------------- suggest
def _point(text: str) -> tuple[float, float]:
    """``"X,Y"`` -> (x, y), two numbers."""
    parts = text.split(",")
    try:
        x, y = (float(v) for v in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y (column,row), got {text!r}") from None
    return x, y


def _add_suggest(sub) -> None:
    s = sub.add_parser(
        "suggest",
        help="colours to pick from at a pixel: the model's most probable, then a palette",
    )
    s.add_argument("input", metavar="INPUT")
    s.add_argument(
        "--at", type=_point, required=True, metavar="X,Y", help="column,row (0-based pixels)"
    )
    s.add_argument("--top", type=_positive, default=12, help="how many colours (default 12)")
    s.add_argument(
        "--model-only",
        action="store_true",
        help="only the model's most probable colours, no palette",
    )
    s.add_argument("--model", help="model file, or a bundled model: default (the default), fast")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_work_size(s)
    s.set_defaults(func=cmd_suggest)


def cmd_suggest(args) -> int:
    import json

    from .paths import model_path

    model = _inference_model(model_path(args.model), args.work_size)
    if not hasattr(model, "suggest"):
        raise SomcolorError(f"{args.model or 'default'}: suggest applies to SOM models only")
    x, y = args.at
    colours = model.suggest(args.input, x, y, int(args.top), model_only=args.model_only)
    if args.json:
        colors = [{"color": c, "p": p, "source": s} for c, p, s in colours]
        print(json.dumps({"x": x, "y": y, "colors": colors}))
        return 0
    for color, p, source in colours:
        share = "" if p is None else f"{100 * p:5.1f}%"  # a palette colour has none
        print(f"{color}  {source:<7}  {share}".rstrip())
    return 0


def _smoothing(text: str) -> float:
    return _number(text, lambda v: 0 <= v < 1, "a number in [0, 1)")


def _crf(text: str) -> int:
    value = int(text) if text.isdigit() else -1
    if not 0 <= value <= 51:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to 51, got {text!r}")
    return value


def _video_output(dst: Path, args) -> Path:
    """A video's output: as given with -o, else the image-style name ending in .mp4."""
    from .video import OUTPUT_FORMATS

    if args.output is not None or dst.suffix.lower() in OUTPUT_FORMATS:
        return dst
    return dst.with_suffix(".mp4")


def _colorize_video_file(src: Path, dst: Path, model, args) -> None:
    """Colorize one video with a progress bar (frames, fps, time left) and a summary line."""
    from .video import colorize_video

    keys = ("smoothing", "flow", "crf", "preset", "hints")
    options = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    bar = None
    if not getattr(args, "quiet", False):
        from tqdm import tqdm

        bar = tqdm(desc=src.name, unit="frame", file=sys.stderr, disable=None, leave=False)

    def progress(done: int, total: int | None) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        report = colorize_video(
            src,
            dst,
            model,
            overwrite=args.force,
            max_pixels=getattr(args, "max_pixels", None),
            progress=progress if bar is not None else None,
            **options,
        )
    finally:
        if bar is not None:
            bar.close()
    if not getattr(args, "quiet", False):
        print(
            f"{dst}: {report.frames} frames, {report.width}x{report.height} at {report.fps} fps, "
            f"{report.duration:.2f} s, audio {report.audio}, scene cuts {report.scene_cuts}; "
            f"{report.seconds:.1f} s ({report.frames / max(report.seconds, 1e-9):.1f} frames/s)"
        )


def _add_adapt(sub) -> None:
    a = sub.add_parser("adapt", help="fit a model to colour reference photos and save it")
    a.add_argument("references", nargs="+", metavar="REF", help="colour photos")
    a.add_argument("-o", "--output", required=True, help="the adapted model file (.npz)")
    a.add_argument("--model", help="model to start from (default: default)")
    a.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    a.add_argument("--force", action="store_true", help="overwrite an existing output")
    a.set_defaults(func=cmd_adapt)


def cmd_adapt(args) -> int:
    from .paths import model_path

    out = Path(args.output)
    if out.suffix.lower() != ".npz":
        raise SomcolorError(f"{out}: a model file ends in .npz")
    if out.exists() and not args.force:
        raise SomcolorError(f"{out}: output exists (use --force to overwrite)")
    if out.is_dir():
        raise SomcolorError(f"{out}: output is a folder")
    path = model_path(args.model)
    _adapted(_inference_model(path), None, args.model or "default")  # adaptable?
    from .pipeline import Colorizer

    images = _read_references(args.references)
    adapted = Colorizer.load(path).adapt(images, random_state=args.seed)
    try:
        adapted.save(out, overwrite=args.force)
    except OSError as exc:
        raise SomcolorError(f"{out}: cannot write ({exc.strerror or exc})") from None
    a = adapted.predictor().training_["adapted"]
    print(f"{out}: adapted to {len(images)} reference photo(s) in {a['seconds']:.2f} s")
    return 0


def _add_colorize_video(sub) -> None:
    v = sub.add_parser("colorize-video", help="colorize a video (needs the video extra)")
    v.add_argument("input", metavar="INPUT")
    v.add_argument("-o", "--output", required=True, help="output video (.mp4, .m4v, .mov, .mkv)")
    v.add_argument("--model", help=f"model file or bundled model name (default: {VIDEO_MODEL})")
    v.add_argument("--force", action="store_true", help="overwrite an existing output")
    v.add_argument("--crf", type=_crf, default=18, help="x264 quality, 0-51, lower is better (18)")
    v.add_argument("--preset", default="medium", help="x264 preset, ultrafast..veryslow (medium)")
    v.add_argument(
        "--smoothing", type=_smoothing, default=0.5, help="temporal smoothing, 0 (off) to <1 (0.5)"
    )
    v.add_argument("--flow", action="store_true", help="smooth along optical flow (slower)")
    v.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    v.add_argument(
        "--reference",
        action="append",
        metavar="KEYFRAME",
        help="a colour photo (e.g. one frame coloured by hand) to take the colours from: the "
        "model (default: default) is fitted to it once, then colours the whole video",
    )
    v.add_argument(
        "--hints",
        metavar="KEYS.json",
        help='colour hints on key frames, carried through each shot: {"keyframes": [{"frame": '
        'N or "time": SECONDS, "points": [{"x", "y", "color"}], "scribbles": "F.png"}]}',
    )
    _add_work_size(v)
    v.set_defaults(func=cmd_colorize_video)


def cmd_colorize_video(args) -> int:
    from .paths import model_path
    from .video import VIDEO_MODEL

    # "fast" predicts from the L patch alone; a reference adapts the context model.
    name = args.model or (None if args.reference else VIDEO_MODEL)
    model = _inference_model(model_path(name), args.work_size)
    model = _adapted(model, args.reference or [], name or "default")
    _colorize_video_file(Path(args.input), Path(args.output), model, args)
    return 0


def _add_evaluate_video(sub) -> None:
    ev = sub.add_parser("evaluate-video", help="measure flicker with and without smoothing")
    ev.add_argument("input", metavar="INPUT")
    ev.add_argument("--model", help=f"model file or bundled model name (default: {VIDEO_MODEL})")
    ev.add_argument(
        "--smoothing",
        type=_smoothing,
        nargs="+",
        default=[0.5],
        help="strengths to compare with no smoothing (default 0.5)",
    )
    ev.add_argument("--flow", action="store_true", help="also measure each with optical flow")
    ev.add_argument("--max-frames", type=_positive, help="measure the first N frames only")
    ev.add_argument("--no-warp", action="store_true", help="skip the flow-warped error (faster)")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_work_size(ev)
    ev.set_defaults(func=cmd_evaluate_video)


def cmd_evaluate_video(args) -> int:
    import math

    from .paths import model_path
    from .video import VIDEO_MODEL, compare_smoothing

    model = _inference_model(model_path(args.model or VIDEO_MODEL), args.work_size)
    strengths = [s for s in dict.fromkeys(args.smoothing) if s > 0]
    settings = [(0.0, False)] + [(s, False) for s in strengths]
    settings += [(s, True) for s in strengths] if args.flow else []
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(desc="measuring", unit="frame", file=sys.stderr, disable=None, leave=False)
    try:
        results = compare_smoothing(
            args.input,
            model,
            settings,
            warped=not args.no_warp,
            max_frames=args.max_frames,
            progress=None if bar is None else (lambda done, total: bar.update(done - bar.n)),
        )
    finally:
        if bar is not None:
            bar.close()

    def num(x: float) -> str:
        return "n/a" if math.isnan(x) else f"{x:.3f}"

    first = results[0]
    print(
        f"{args.input}: {first['frames']} frames, {first['pairs']} frame pairs measured, "
        f"{first['scene_cuts']} scene cuts skipped; model {args.model or VIDEO_MODEL}"
    )
    print(
        f"{'smoothing':>9}  {'flow':>4}  {'flicker':>8}  {'chroma':>8}  {'luma':>8}  "
        f"{'warp err':>8}  {'visible':>7}"
    )
    for r in results:
        print(
            f"{r['smoothing']:9.2f}  {'yes' if r['flow'] else 'no':>4}  {num(r['flicker']):>8}  "
            f"{num(r['chroma_change']):>8}  {num(r['luma_change']):>8}  "
            f"{num(r['warp_error']):>8}  {num(r['visible_fraction']):>7}"
        )
    return 0


# ---------------------------------------------------------------------------- train
#: ``somcolor train`` options of the SOM + MLP back end -> the :class:`Colorizer` parameter
#: each sets: every parameter of :data:`somcolor.params.PARAMS` with an option, but
#: ``--som`` (cnn-cls takes it too). An option not given keeps the Colorizer's default.
SOM_TRAIN_OPTIONS = {
    p.flag[2:].replace("-", "_"): p.name for p in params.PARAMS if p.flag and p.name != "som_shape"
}
#: Those of them a CNN back end takes too (the rest are refused with --backend cnn-*).
CNN_TRAIN_OPTIONS = {"cnn-cls": ("pixels_per_image", "decoder", "temperature")}
#: ``CodeCNNColorizer``'s defaults where they differ from the Colorizer's, for the help
#: (not imported: that would load scikit-learn for ``--help``; a test compares them).
CNN_CLS_DEFAULTS = {"som_shape": (10, 10), "pixels_per_image": 2000, "decoder": "annealed"}


def _train_help(p: params.Param) -> str:
    """An option's help: the parameter's, with its default (and cnn-cls's, if other)."""
    if p.default is None or p.default == () or isinstance(p.default, bool):
        return p.help
    shown = p.show(p.default)
    if p.name in CNN_CLS_DEFAULTS:
        shown += "; cnn-cls: " + p.show(CNN_CLS_DEFAULTS[p.name])
    return f"{p.help} (default {shown})"


def _add_train(sub) -> None:
    from .backends import BACKENDS
    from .io import MAX_PIXELS

    t = sub.add_parser("train", help="train a model on your own color photos")
    t.add_argument("data_dirs", nargs="+", metavar="DATA_DIR")
    t.add_argument("-o", "--output", required=True, help="model file to write (.npz)")
    t.add_argument(
        "--backend",
        choices=list(BACKENDS),
        default="som",
        help="som: SOM + MLP (default); cnn-ae, cnn-cls: CNNs (need the cnn extra, torch)",
    )
    # The Colorizer's options, from the parameter table. They default to None (False for
    # switches) here and to the Colorizer's defaults for --backend som, so that a CNN back
    # end can refuse the ones it would otherwise ignore.
    for p in params.PARAMS:
        if p.flag is None:
            continue
        if p.choices is not None:
            t.add_argument(p.flag, choices=list(p.choices), help=_train_help(p))
        elif p.parse is None:
            t.add_argument(p.flag, action="store_true", help=_train_help(p))
        else:
            t.add_argument(p.flag, type=_arg(p.parse), help=_train_help(p))
    t.add_argument("--seed", type=int, default=0, help="random_state (default 0)")
    t.add_argument("--epochs", type=_positive, help="CNN training epochs (default 5)")
    t.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], help="CNN device (default auto: GPU if any)"
    )
    t.add_argument("--description", help="training data description stored in the model")
    t.add_argument("-r", "--recursive", action="store_true")
    t.add_argument("--force", action="store_true")
    t.add_argument("-q", "--quiet", action="store_true")
    t.add_argument("--max-pixels", type=_positive, default=MAX_PIXELS)
    t.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from .io import find_images, read_image
    from .pipeline import Colorizer

    out = Path(args.output)
    if out.exists() and not args.force:
        _error(f"{out}: output exists (use --force to overwrite)")
        return EXIT_USAGE
    if args.backend == "som" and (args.epochs is not None or args.device is not None):
        _error("--epochs and --device apply to the CNN back ends (som: see --max-iter)")
        return EXIT_USAGE
    # Options not given are None (False for flags); --work-size 0 (full resolution) is
    # the Colorizer's default, None, so it counts as not given either.
    given = [k for k in SOM_TRAIN_OPTIONS if getattr(args, k) not in (None, False, 0)]
    refused = [k for k in given if k not in CNN_TRAIN_OPTIONS.get(args.backend, ())]
    if args.backend != "som" and refused:
        options = ", ".join("--" + k.replace("_", "-") for k in refused)
        _error(f"{options}: SOM + MLP options, not used by --backend {args.backend}")
        return EXIT_USAGE
    cnn = _cnn_model(args) if args.backend != "som" else None  # fails early without torch
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

    model = cnn or Colorizer(
        **{SOM_TRAIN_OPTIONS[k]: getattr(args, k) for k in given},
        **({"som_shape": args.som} if args.som is not None else {}),
        random_state=args.seed,
    )
    description = args.description or "images from " + ", ".join(args.data_dirs)
    model.fit(images, description=description, progress=bar)
    model.save(out, overwrite=args.force)
    t = model.training_
    if cnn is not None:
        per_epoch = sum(t["epoch_seconds"]) / len(t["epoch_seconds"])
        print(
            f"{out}: {args.backend}, {model.n_parameters} parameters, trained on "
            f"{t['n_images']} images ({t['crop_size']} px crops) on {t['device']}, "
            f"{t['epochs']} epochs, {per_epoch:.1f} s/epoch, final loss {t['loss'][-1]:.4f}"
        )
    else:
        print(
            f"{out}: trained on {t['n_images']} images, {t['n_samples']} pixels, "
            f"{sum(t['seconds'].values()):.1f} s"
        )
    if failures:
        _error(f"{failures} of {len(files)} training images could not be read")
        return EXIT_FAILURES
    return 0


def _cnn_model(args):
    """An unfitted CNN model for ``train --backend cnn-ae|cnn-cls``."""
    from .backends import cnn_class
    from .backends.cnn import resolve_device

    params = dict(device=args.device or "auto", random_state=args.seed)
    resolve_device(params["device"])  # no torch, or cuda without a GPU: say so before reading
    if args.epochs is not None:
        params["epochs"] = args.epochs
    if args.backend == "cnn-cls" and args.som is not None:
        params["som_shape"] = args.som
    for key in CNN_TRAIN_OPTIONS.get(args.backend, ()):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    return cnn_class(args.backend)(**params)


# ---------------------------------------------------------------------------- evaluate
def _count(text: str) -> int:
    """A whole number >= 0 (``--hints N``)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _add_evaluate(sub) -> None:
    e = sub.add_parser("evaluate", help="measure colorization quality on color photos")
    e.add_argument("inputs", nargs="+", metavar="INPUT", help="color photos: files, folders, globs")
    e.add_argument(
        "--model",
        action="append",
        help="model file or bundled model (default, fast); repeat to compare (default: default)",
    )
    e.add_argument("--decoder", choices=list(DECODERS), help="override the decoder")
    e.add_argument("--out", help="folder for summary.md, summary.csv and per_image.csv")
    e.add_argument("--no-baselines", action="store_true", help="skip gray / mean / argmax rows")
    e.add_argument("--limit", type=_positive, help="use only the first N images")
    e.add_argument(
        "--hints",
        type=_count,
        default=0,
        metavar="N",
        help="simulate N colour hints per photo, seeded (SOM models; default 0)",
    )
    e.add_argument("-r", "--recursive", action="store_true")
    e.add_argument("-q", "--quiet", action="store_true")
    _add_work_size(e)
    e.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    import copy

    from . import evaluate as ev
    from .backends import load_model
    from .io import find_images
    from .paths import model_path

    files = find_images(args.inputs, recursive=args.recursive)
    missing = [f for f in files if not f.is_file()]
    if missing:
        _error(f"{missing[0]}: no such file")
        return EXIT_USAGE
    if not files:
        _error("no images found in " + ", ".join(args.inputs))
        return EXIT_USAGE
    files = files[: args.limit] if args.limit else files
    model_paths = [model_path(m) for m in args.model or ["default"]]
    models = {}
    for p in model_paths:
        name = Path(p).stem
        if name in models:  # same file name in another folder: name it with its folder
            name = str(Path(Path(p).parent.name) / name)
        models[name] = _with_work_size(load_model(p), args.work_size, p)
    predictors = {}
    # the first model with a codebook (a CNN autoencoder has none) gives the mean and codes
    first = next((m for m in models.values() if hasattr(m, "quantizer_")), None)
    if not args.no_baselines:
        predictors["gray"] = ev.gray_predictor
        if first is not None:
            predictors["train mean chroma"] = ev.constant_predictor(first.quantizer_.mean_)
    for name, model in models.items():
        params = model.get_params()
        if args.decoder and "decoder" in params:
            model.set_params(decoder=args.decoder)
        if not args.no_baselines and getattr(model, "decoder", "argmax") != "argmax":
            paper = copy.deepcopy(model)
            paper.set_params(
                decoder="argmax", **({"smooth_radius": 0.0} if "smooth_radius" in params else {})
            )
            predictors[f"{name} (argmax, unsmoothed)"] = ev.model_predictor(paper)
        predictors[name] = ev.model_predictor(model)
    codebook = first.quantizer_.codebook_ if first is not None else None
    if args.hints:
        without = [n for n, m in models.items() if not hasattr(m, "predictor")]
        if without:
            _error(f"{without[0]}: --hints applies to SOM models only")
            return EXIT_USAGE
    result = ev.evaluate(
        predictors,
        files,
        codebook=codebook,
        progress=_progress(not args.quiet),
        hints=args.hints,
    )
    if args.hints:
        print(f"{args.hints} simulated colour hints per photo (seeded; baselines without)\n")
    print(result.markdown(), end="")
    if args.out:
        for path in result.write(args.out):
            log.info("wrote %s", path)
        print(f"wrote {args.out}/summary.md, summary.csv, per_image.csv")
    return 0


# ---------------------------------------------------------------------------- info
def _add_info(sub) -> None:
    i = sub.add_parser("info", help="show a model's config and provenance")
    i.add_argument("model", nargs="?", help="model file or bundled model name (default: default)")
    i.set_defaults(func=cmd_info)


def cmd_info(args) -> int:
    import json

    from .paths import model_path

    path = model_path(args.model)
    model = _inference_model(path)
    meta = model.metadata_
    t = meta.get("training", {})
    print(f"model:     {path}")
    print(
        f"format:    {meta['format']} v{meta['format_version']}, "
        f"written by somcolor {meta.get('somcolor_version', '?')}"
    )
    print(f"config:    {json.dumps(meta['config'], sort_keys=True)}")
    if "kind" in meta:
        _info_cnn(model, meta)
        return 0
    print(
        f"trained:   {t.get('trained_at', '?')} on {t.get('n_images', '?')} images, "
        f"{t.get('n_samples', '?')} pixels, {t.get('mlp_epochs', '?')} MLP epochs"
    )
    print(f"data:      {t.get('description') or '?'}")
    _info_adapted(t)
    if "seconds" in t:
        secs = ", ".join(f"{k} {v:.1f} s" for k, v in t["seconds"].items())
        print(f"time:      {secs}")
    codebook = model.codebook
    print(f"codebook:  {len(codebook)} codes (u, v):")
    for i, (u, v) in enumerate(codebook):
        seen = "" if i in set(model.classes.tolist()) else "  (never seen in training)"
        print(f"  {i:3d}: ({u:7.2f}, {v:7.2f}){seen}")
    return 0


def _info_adapted(training: dict) -> None:
    """``somcolor info``'s line for a model adapted to reference photos, if it is one."""
    a = training.get("adapted")
    if not isinstance(a, dict):
        return
    options = ", ".join(f"{k} {v}" for k, v in sorted(a.get("options", {}).items()))
    print(
        f"adapted:   to {a.get('n_references', '?')} reference photo(s), "
        f"{a.get('n_samples', '?')} pixels, best epoch {a.get('best_epoch', '?')}; {options}"
    )


def _info_cnn(model, meta: dict) -> None:
    """The rest of ``somcolor info`` for a CNN model file."""
    t = meta.get("training", {})
    seconds = t.get("epoch_seconds") or [float("nan")]
    loss = t.get("loss") or [float("nan")]
    print(
        f"kind:      {meta['kind']}, {model.n_parameters} parameters "
        f"(written with torch {meta.get('torch_version', '?')})"
    )
    print(
        f"trained:   {t.get('trained_at', '?')} on {t.get('n_images', '?')} images, "
        f"{t.get('crop_size', '?')} px crops x {t.get('crops_per_image', '?')} per image, "
        f"{t.get('epochs', '?')} epochs, final loss {loss[-1]:.5f}"
    )
    print(f"data:      {t.get('description') or '?'}")
    print(
        f"time:      {sum(seconds) / len(seconds):.1f} s/epoch on {t.get('device', '?')} "
        f"({t.get('device_name', '?')}, {t.get('torch_threads', '?')} threads)"
    )
    if hasattr(model, "quantizer_"):
        print(f"codebook:  {len(model.quantizer_.codebook_)} codes")


# ---------------------------------------------------------------------------- data
def _add_data(sub) -> None:
    d = sub.add_parser("data", help="verify the bundled data sets against their checksums")
    d.set_defaults(func=cmd_data)


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


# ---------------------------------------------------------------------------- serve
def _port(text: str) -> int:
    port = int(text) if text.isdigit() else 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {text!r}")
    return port


#: ``somcolor serve``'s limit options: flag, :class:`~somcolor.web.settings.Limits` field,
#: unit (the field is the option times it) and help.
SERVE_LIMITS = (
    ("--max-upload-mb", "max_upload_bytes", MIB, "largest upload in MiB"),
    ("--max-pixels", "max_pixels", 1, "largest photo or video frame in pixels"),
    ("--max-uploads", "max_uploads", 1, "uploads received at once; more get 429"),
    ("--upload-chunk-timeout", "upload_chunk_timeout_s", 1, "seconds an upload may stall (408)"),
    ("--upload-timeout", "upload_timeout_s", 1, "seconds a whole upload may take (408)"),
    ("--image-workers", "image_workers", 1, "worker processes colorizing photos"),
    ("--max-pending-images", "max_pending_images", 1, "photos waiting or in work; more get 429"),
    ("--photo-timeout", "photo_timeout_s", 1, "seconds a photo may wait and take (503)"),
    ("--max-jobs", "max_jobs", 1, "video jobs held (running or with a stored result); 429"),
    ("--result-ttl", "result_ttl_s", 1, "seconds a video result is kept"),
    ("--max-video-frames", "max_video_frames", 1, "frames a video job may decode"),
    ("--max-video-seconds", "max_video_seconds", 1, "seconds of video a job may hold"),
    ("--job-timeout", "job_timeout_s", 1, "seconds of wall time a video job may run"),
    ("--max-result-mb", "max_result_bytes", MIB, "largest video result in MiB"),
    ("--hint-workers", "hint_workers", 1, "worker processes holding hint sessions"),
    ("--max-hint-sessions", "max_hint_sessions", 1, "hint sessions held; more close the oldest"),
    ("--max-hint-session-mb", "max_hint_session_bytes", MIB, "MiB all hint sessions may hold"),
    ("--hint-session-ttl", "hint_session_ttl_s", 1, "seconds a hint session may sit unused (410)"),
    ("--hint-timeout", "hint_timeout_s", 1, "seconds one hint request may take (503)"),
    ("--max-hints", "max_hints", 1, "hints one request may carry; more get 422"),
    ("--preview-side", "preview_side", 1, "long side of a hint preview in pixels"),
    ("--rate-per-minute", "rate_per_minute", 1, "/api/ requests per client address a minute"),
    ("--rate-burst", "rate_burst", 1, "/api/ requests one address may send at once"),
    ("--rate-clients", "rate_clients", 1, "client addresses tracked for the rate limit"),
    ("--header-timeout", "header_timeout_s", 1, "seconds for a request line and headers (408)"),
    ("--send-timeout", "send_timeout_s", 1, "seconds an answer may wait on a client not reading"),
    ("--max-connections", "max_connections", 1, "connections open at once; more are closed"),
    (
        "--max-connections-per-client",
        "max_connections_per_client",
        1,
        "connections open from one address (IPv6: its /64); more are closed",
    ),
)


def _public_origin(text: str) -> str:
    from .web.settings import public_origin

    try:
        return public_origin(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_serve(sub) -> None:
    from .web import settings

    s = sub.add_parser("serve", help="the web page: upload a photo or video, get it in color")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    s.add_argument("--model", help="default model file (default: the bundled model)")
    s.add_argument("--models-dir", help="also offer every .npz model in this folder")
    s.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests for this Host name (repeatable; * for any)",
    )
    s.add_argument(
        "--public-origin",
        action="append",
        default=[],
        type=_public_origin,
        metavar="URL",
        help="the origin browsers reach the server by, e.g. https://photos.example.org "
        "behind a TLS proxy (repeatable): then the only one whose POST/DELETE are let in",
    )
    s.add_argument(
        "--memory-budget",
        type=_positive,
        default=settings.SERVE_MEMORY_BUDGET_MIB,
        metavar="MiB",
        help="memory the server's process tree may hold; new hint sessions, photos and "
        "video jobs past it close idle sessions or get 503 "
        f"(default {settings.SERVE_MEMORY_BUDGET_MIB})",
    )
    for flag, field, unit, text in SERVE_LIMITS:
        default = getattr(settings.Limits, field) / unit
        kind = int if isinstance(getattr(settings.Limits, field), int) else float
        default = kind(default)
        s.add_argument(
            flag,
            type=_positive if kind is int else _positive_number,
            default=default,
            help=f"{text} (default {default})",
        )
    s.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    try:
        import uvicorn

        from .web.app import create_app
        from .web.connections import server_options
    except ImportError as exc:
        _error(
            f"serve needs the web extra (no module {exc.name!r}): .venv/bin/pip install -e "
            "'.[web]' in the somcolor checkout, or pip install 'somcolor[web]'"
        )
        return EXIT_USAGE

    limits = {"memory_budget_bytes": args.memory_budget * MIB}
    for flag, field, unit, _ in SERVE_LIMITS:
        limits[field] = getattr(args, flag[2:].replace("-", "_")) * unit
    app = create_app(
        args.model,
        models_dir=args.models_dir,
        host=args.host,
        allowed_hosts=tuple(args.allow_host),
        public_origins=tuple(args.public_origin),
        **limits,
    )
    host = f"[{args.host}]" if ":" in args.host else args.host
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"somcolor: warning: serving on {args.host}: anyone who can reach it can use it "
            "(there is no login)",
            file=sys.stderr,
        )
    print(f"somcolor: serving http://{host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    log_level = "info" if args.verbose else "warning"
    # server_options: somcolor's HTTP protocol (a deadline for every phase of a request,
    # caps on connections; somcolor.web.connections) and proxy_headers=False: the rate
    # limit counts the socket's peer address, which a client must not choose by sending
    # X-Forwarded-For.
    uvicorn.run(app, host=args.host, port=args.port, log_level=log_level, **server_options(app))
    return 0


# ---------------------------------------------------------------------------- main
#: Each command's parser builder, in the order ``--help`` lists them.
COMMANDS = (
    _add_colorize,
    _add_suggest,
    _add_train,
    _add_info,
    _add_data,
    _add_evaluate,
    _add_colorize_video,
    _add_evaluate_video,
    _add_adapt,
    _add_serve,
)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="somcolor", description="Colorize grayscale photos on a CPU (SOM + MLP).")
    p.add_argument("--version", action="version", version=f"somcolor {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log what is done")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in COMMANDS:
        add(sub)
    return p


def _quiet_stdout() -> None:
    """Point stdout at the null device after its reader went away.

    ``somcolor info | head -1``: ``head`` closes the pipe after one line. A Unix tool is then
    killed by SIGPIPE without a word; Python ignores SIGPIPE and raises
    :class:`BrokenPipeError` instead, so ``main`` catches it and returns
    :data:`EXIT_BROKEN_PIPE`, the status a shell shows for a tool killed so (``set -o
    pipefail`` still sees the failure). What is left in stdout's buffer would fail again
    when the interpreter flushes it at exit ("Exception ignored ... BrokenPipeError"):
    it goes to the null device instead.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (an in-process capture)
        pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="somcolor: %(message)s",
        stream=sys.stderr,
    )
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
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
