"""somcolor.archive: colouring a folder of many files in parallel, resumably.

The listing is checked against :func:`somcolor.io.find_images`; the runs go through the
command line (in-process, or as real processes where a signal is the point: ``kill -9``
of the whole run, then a rerun; Ctrl-C), on local worker processes and on a real Dask
``LocalCluster``; every output is compared byte for byte with the one-process run.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile  # scikit-image's dependency, so in every install
from conftest import synthetic_photo, write_image_file
from PIL import Image, ImageCms

from somcolor import archive
from somcolor.archive import Destinations, JobList, RunLog, iter_images
from somcolor.cli import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_USAGE
from somcolor.exceptions import SomcolorError
from somcolor.io import find_images, read_photo
from somcolor.paths import DEFAULT_MODEL


def _files(folder: Path) -> list[str]:
    """Every file under ``folder``, hidden ones included, relative and sorted."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _outputs(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in _files(folder)}


def _log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _decodes(path: Path) -> bool:
    with Image.open(path) as im:
        im.load()
    return True


def _archive(root: Path, n: int, shape=(32, 40)) -> Path:
    """``n`` small gray photos in two folders (PNG and JPEG)."""
    for i in range(n):
        gray = synthetic_photo(seed=i, shape=shape).mean(axis=2).astype(np.uint8)
        name = f"{'a' if i % 2 else 'b/c'}/{i:03d}.{'png' if i % 3 else 'jpg'}"
        write_image_file(root / name, gray)
    return root


def _png16_rgb(path: Path, rgb: np.ndarray) -> Path:
    """A 16-bit RGB PNG, written by hand (Pillow cannot write one)."""
    h, w, _ = rgb.shape
    rows = b"".join(b"\x00" + rgb[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
    path.write_bytes(png + chunk(b"IEND", b""))
    return path


def _run_with(model, src: Path, out: Path, **kwargs) -> archive.Summary:
    """:func:`somcolor.archive.colorize_all` over the folder ``src`` into ``out``."""
    jobs = JobList([src], recursive=True, destinations=Destinations.for_inputs([src], out_dir=out))
    with archive.scratch_folder(out) as scratch:
        options = archive.WriteOptions(scratch=str(scratch))
        return archive.colorize_all(model, jobs, options=options, **kwargs)


# ---------------------------------------------------------------------------- listing
@pytest.fixture
def tree(tmp_path):
    names = ["a.png", "b.JPG", "notes.txt", "sub/c.png", "sub/deeper/d.tif", "sub/e.md", "s.png"]
    for rel in names:
        f = tmp_path / "t" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"x")
    (tmp_path / "t" / "sub.png").mkdir()  # a folder with an image ending is no file
    return tmp_path / "t"


@pytest.mark.parametrize("recursive", [False, True])
@pytest.mark.parametrize(
    "inputs",
    [
        ["."],
        ["sub", "."],
        [".", "sub"],
        ["b.JPG", ".", "a.*"],
        ["sub/c.png", "notes.txt", "gone.png", "*.webp"],
        [".", "."],
    ],
    ids=["folder", "inner-first", "outer-first", "file-folder-glob", "files", "twice"],
)
def test_streamed_listing_finds_what_find_images_finds(tree, monkeypatch, inputs, recursive):
    monkeypatch.chdir(tree)

    streamed = [f.path for f in iter_images(inputs, recursive=recursive)]

    expected = find_images(inputs, recursive=recursive)
    assert sorted(streamed) == sorted(expected)
    assert len(streamed) == len(set(streamed))
    if len(inputs) == 1:
        assert streamed == expected  # the same order: sorted by name, depth first


def test_streamed_listing_never_enters_the_output_folder(tree):
    out = tree / "sub"

    found = [f.path for f in iter_images([tree], recursive=True, exclude=out)]

    assert found == [tree / "a.png", tree / "b.JPG", tree / "s.png"]


def test_a_folder_that_cannot_be_listed_is_one_failed_entry(tree, monkeypatch):
    real = os.scandir

    def scandir(path):
        if Path(path).name == "deeper":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(archive.os, "scandir", scandir)

    found = list(iter_images([tree], recursive=True))

    errors = [f for f in found if f.error]
    assert [f.path for f in errors] == [tree / "sub" / "deeper"]
    assert "cannot list the folder (Permission denied)" in errors[0].error
    assert tree / "sub" / "c.png" in [f.path for f in found]


def test_format_changes_the_ending_unless_it_already_means_it(tmp_path):
    out = tmp_path / "out"
    to = Destinations(out_dir=out, fmt="jpg", roots=(tmp_path,))

    assert to(tmp_path / "x" / "a.tif", tmp_path) == out / "x" / "a.jpg"
    assert to(tmp_path / "b.JPEG", tmp_path) == out / "b.JPEG"
    assert Destinations(fmt="tiff")(tmp_path / "c.png") == tmp_path / "c_color.tif"


def test_survey_counts_and_names_two_inputs_for_one_output(tmp_path):
    src = tmp_path / "in"
    for name in ["p.png", "p.jpg", "q.png"]:
        write_image_file(src / name, synthetic_photo())
    out = tmp_path / "out"
    as_is = Destinations.for_inputs([src], out_dir=out)
    assert JobList([src], destinations=as_is).survey() == 3

    as_png = Destinations.for_inputs([src], out_dir=out, fmt="png")
    with pytest.raises(SomcolorError) as info:
        JobList([src], destinations=as_png).survey()

    assert str(
        info.value
    ) == f"{src / 'p.png'} and {src / 'p.jpg'} would both be written to " + str(out / "p.png")


def test_cli_refuses_two_inputs_for_one_output_before_writing(cli, tiny_model_path, tmp_path):
    src = _archive(tmp_path / "in", 4)
    write_image_file(src / "a" / "001.jpg", synthetic_photo())  # a/001.png's twin
    out = tmp_path / "out"

    r = cli("colorize", src, "-r", "--out-dir", out, "--format", "png", "--model", tiny_model_path)

    assert r.code == EXIT_USAGE
    assert r.err_lines == [
        f"somcolor: error: {src / 'a/001.png'} and {src / 'a/001.jpg'} would both be written "
        f"to {out / 'a/001.png'}"
    ]
    assert not out.exists()


# ---------------------------------------------------------------------------- workers
def test_default_jobs_are_the_cores_capped_by_memory(monkeypatch):
    monkeypatch.setattr(archive, "cpu_count", lambda: 8)
    monkeypatch.setattr(archive, "available_memory", lambda: 64 * archive.WORKER_BYTES)
    assert archive.default_workers() == 8
    monkeypatch.setattr(archive, "available_memory", lambda: 3 * archive.WORKER_BYTES + 1)
    assert archive.default_workers() == 3
    monkeypatch.setattr(archive, "available_memory", lambda: 100)
    assert archive.default_workers() == 1
    # small batches get fewer workers; an explicit --jobs no more than the files
    monkeypatch.setattr(archive, "available_memory", lambda: None)
    assert archive.workers_for(3) == 1
    assert archive.workers_for(2 * archive.MIN_FILES_PER_WORKER) == 2
    assert archive.workers_for(10_000) == 8
    assert archive.workers_for(3, jobs=2) == 2
    assert archive.workers_for(1, jobs=4) == 1


def test_jobs_2_writes_the_same_bytes_as_jobs_1(cli, tiny_model_path, tmp_path):
    src = _archive(tmp_path / "in", 12)
    tiff = src / "a" / "deep.tif"
    Image.fromarray(synthetic_photo(5)[..., 0].astype(np.uint16) * 257).save(tiff)
    runs = {}
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}"
        log = tmp_path / f"log{jobs}.jsonl"
        args = ["colorize", src, "-r", "--out-dir", out, "--jobs", jobs, "--log", log]
        r = cli(*args, "--model", tiny_model_path)
        assert r.code == 0, r.err
        assert r.out.startswith("13 colorized, 0 skipped, 0 failed of 13 files in ")
        runs[jobs] = _outputs(out)
        assert sorted(e["status"] for e in _log(log)) == ["ok"] * 13

    assert list(runs[1]) == sorted(
        [f"a/{i:03d}.{'png' if i % 3 else 'jpg'}" for i in range(1, 12, 2)]
        + [f"b/c/{i:03d}.{'png' if i % 3 else 'jpg'}" for i in range(0, 12, 2)]
        + ["a/deep.tif"]
    )
    assert runs[2] == runs[1]


def test_damaged_files_are_logged_and_the_run_goes_on(cli, tiny_model_path, tmp_path):
    src = _archive(tmp_path / "in", 6)
    (src / "a" / "text.png").write_text("not an image")
    good = src / "a" / "001.png"
    (src / "a" / "cut.png").write_bytes(good.read_bytes()[:60])
    out = tmp_path / "out"
    log = out / "run.jsonl"  # in the output folder, which does not exist yet

    r = cli(
        "colorize", src, "-r", "--out-dir", out, "--jobs", "2", "--log", log,
        "--model", tiny_model_path,
    )  # fmt: skip

    assert r.code == EXIT_FAILURES
    assert r.err_lines[-1] == "somcolor: error: 2 of 8 files failed"
    assert len(r.err_lines) == 3 and "Traceback" not in r.err
    assert r.out.startswith("6 colorized, 0 skipped, 2 failed of 8 files in ")
    records = {Path(e["input"]).name: e for e in _log(log)}
    assert len(records) == 8
    assert records["text.png"]["status"] == "failed"
    assert "not an image file" in records["text.png"]["error"]
    assert "truncated or corrupt" in records["cut.png"]["error"]
    assert records["001.png"] == {
        "input": str(good),
        "output": str(out / "a" / "001.png"),
        "status": "ok",
        "seconds": records["001.png"]["seconds"],
        "error": None,
    }
    assert records["001.png"]["seconds"] > 0
    assert len(_files(out)) == 7 and "run.jsonl" in _files(out)


def test_skip_existing_counts_skips_and_redoes_nothing(cli, tiny_model_path, tmp_path):
    src = _archive(tmp_path / "in", 5)
    out, log = tmp_path / "out", tmp_path / "run.jsonl"
    args = ["colorize", src, "-r", "--out-dir", out, "--model", tiny_model_path, "--log", log]
    assert cli(*args).code == 0

    again = cli(*args)
    (out / "a" / "001.png").unlink()  # one to do again
    before = {p: os.stat(out / p).st_mtime_ns for p in _files(out)}
    resumed = cli(*args, "--skip-existing")

    assert again.code == EXIT_FAILURES
    assert again.err_lines[-1] == "somcolor: error: 5 of 5 files failed"
    assert "output exists (use --force to overwrite)" in again.err
    assert resumed.code == 0, resumed.err
    assert resumed.out.startswith("1 colorized, 4 skipped, 0 failed of 5 files in ")
    assert {p: os.stat(out / p).st_mtime_ns for p in before} == before
    last = _log(log)[-5:]
    assert sorted(e["status"] for e in last) == ["ok"] + ["skipped"] * 4
    assert [e["input"] for e in last if e["status"] == "ok"] == [str(src / "a" / "001.png")]
    assert _files(out) == sorted([*before, "a/001.png"])


def test_skip_existing_and_force_are_exclusive(cli, tmp_path):
    r = cli("colorize", tmp_path, "--skip-existing", "--force")

    assert r.code == EXIT_USAGE
    assert len(r.err_lines) == 1 and "--force" in r.err


@pytest.mark.parametrize("value", ["0", "101", "high", "9.5"])
def test_quality_outside_1_to_100_is_refused(cli, tmp_path, value):
    r = cli("colorize", tmp_path, "--quality", value)

    assert r.code == EXIT_USAGE
    assert len(r.err_lines) == 1 and "--quality" in r.err and value in r.err


def test_quality_sets_the_jpeg_quality(cli, tiny_model_path, tmp_path):
    src = write_image_file(tmp_path / "p.png", synthetic_photo(shape=(64, 80)))
    sizes = []
    for q in (20, 95):
        dst = tmp_path / f"q{q}.jpg"
        assert cli("colorize", src, "-o", dst, "--quality", q, "--model", tiny_model_path).code == 0
        sizes.append(dst.stat().st_size)

    assert sizes[0] < sizes[1]


def test_format_that_the_output_name_contradicts_is_refused(cli, tiny_model_path, tmp_path):
    src = write_image_file(tmp_path / "p.png", synthetic_photo())

    r = cli("colorize", src, "-o", tmp_path / "x.png", "--format", "jpg")

    assert r.code == EXIT_USAGE
    assert len(r.err_lines) == 1 and "--format jpg" in r.err
    assert _files(tmp_path) == ["p.png"]


# ---------------------------------------------------------------------------- what archives hold
def _scan_with_metadata(path: Path, orientation: int = 6) -> Path:
    """A gray 20x30 JPEG shown rotated (EXIF orientation), with a description, dates and
    an sRGB profile."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010E] = "Grandma, Montevideo"
    exif[0x0132] = "2001:02:03 04:05:06"
    exif.get_ifd(0x8769)[0x9003] = "1950:07:16 15:30:00"  # DateTimeOriginal
    exif[0x8769] = 0
    gray = synthetic_photo(shape=(20, 30)).mean(axis=2).astype(np.uint8)
    gray[:4, :4] = 255  # a white corner, to see where it goes
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.stack([gray] * 3, axis=2)).save(
        path, exif=exif, icc_profile=srgb, quality=95
    )
    return path


@pytest.mark.parametrize("fmt", ["jpg", "png", "tiff"])
def test_outputs_are_upright_and_keep_exif_and_icc(cli, tiny_model_path, tmp_path, fmt):
    src = _scan_with_metadata(tmp_path / "in" / "scan.jpg")
    icc = Image.open(src).info["icc_profile"]
    out = tmp_path / "out"

    r = cli(
        "colorize", tmp_path / "in", "--out-dir", out, "--format", fmt, "--model", tiny_model_path
    )

    assert r.code == 0, r.err
    (name,) = _files(out)
    with Image.open(out / name) as im:
        assert im.size == (20, 30)  # 20 wide, 30 high: turned as a viewer shows the input
        rgb = np.asarray(im.convert("RGB"))
        exif = im.getexif()
        assert im.info.get("icc_profile") == icc
    assert rgb[:4, -4:].mean() > 200  # the white corner, turned 90 degrees clockwise
    assert rgb[-4:, :4].mean() < 200
    assert exif.get(0x0112) is None
    assert exif[0x010E] == "Grandma, Montevideo"
    assert exif[0x0132] == "2001:02:03 04:05:06"
    assert exif.get_ifd(0x8769)[0x9003] == "1950:07:16 15:30:00"


def test_a_gray_icc_profile_is_not_put_on_an_rgb_output(cli, tiny_model_path, tmp_path):
    gray_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    gray_icc = gray_icc[:16] + b"GRAY" + gray_icc[20:]
    src = tmp_path / "g.png"
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(src, icc_profile=gray_icc)
    dst = tmp_path / "o.png"

    assert cli("colorize", src, "-o", dst, "--model", tiny_model_path).code == 0

    with Image.open(dst) as im:
        assert "icc_profile" not in im.info


@pytest.mark.parametrize("kind", ["png-rgb16", "png-gray16", "tiff-rgb16", "tiff-gray16"])
def test_16_bit_scans_are_colorized(cli, tiny_model_path, tmp_path, kind):
    rgb16 = (synthetic_photo(shape=(24, 36)).astype(np.uint16) * 257).astype(np.uint16)
    gray16 = rgb16.mean(axis=2).astype(np.uint16)
    src = tmp_path / f"scan.{kind.split('-')[0].replace('tiff', 'tif')}"
    if kind == "png-rgb16":
        _png16_rgb(src, rgb16)
    elif kind == "png-gray16":
        Image.fromarray(gray16).save(src)
    else:
        tifffile.imwrite(src, rgb16 if kind == "tiff-rgb16" else gray16, compression="zlib")
    expected = read_photo(src).pixels
    assert expected.shape[:2] == (24, 36)
    dst = tmp_path / "out.png"

    r = cli("colorize", src, "-o", dst, "--model", tiny_model_path)

    assert r.code == 0, r.err
    with Image.open(dst) as im:
        assert (im.mode, im.size) == ("RGB", (36, 24))


# ---------------------------------------------------------------------------- the run's parts
def test_run_log_ends_a_line_cut_short_before_appending(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text('{"input": "a.png", "status": "ok"}\n{"input": "b.p')

    with RunLog(path) as log:
        log.write(archive.Record("c.png", "o/c.png", "skipped"))

    lines = path.read_text().splitlines()
    assert lines[1] == '{"input": "b.p'
    assert json.loads(lines[2]) == {
        "input": "c.png",
        "output": "o/c.png",
        "status": "skipped",
        "seconds": 0.0,
        "error": None,
    }


def test_scratch_folders_of_stopped_runs_are_removed_and_live_ones_kept(tmp_path):
    fcntl = pytest.importorskip("fcntl")  # POSIX
    base = tmp_path / "out" / archive.SCRATCH
    dead, alive = base / "run-dead", base / "run-alive"
    for run in (dead, alive):
        run.mkdir(parents=True)
        (run / ".lock").touch()
        (run / ".x.png.1234.part").write_bytes(b"half")
    held = os.open(alive / ".lock", os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        with archive.scratch_folder(tmp_path / "out") as mine:
            assert mine.parent == base
            assert not dead.exists() and alive.exists()
        assert not mine.exists()
        assert base.exists()  # the live run's folder is still there
    finally:
        os.close(held)
    with archive.scratch_folder(tmp_path / "out"):
        pass
    assert not base.exists()


# ---------------------------------------------------------------------------- local workers
@dataclass
class _Gray:
    """A stand-in model for the pool's tests: the input's gray level in R, G and B. A
    photo ``kill_rows`` high kills the worker colouring it (as the out-of-memory killer
    would), every time, or only the first if ``once`` names a marker file."""

    kill_rows: int | None = None
    once: str | None = None

    def colorize(self, image):
        if image.shape[0] == self.kill_rows:
            if self.once is None or not os.path.exists(self.once):
                if self.once is not None:
                    Path(self.once).touch()
                os.kill(os.getpid(), signal.SIGKILL)
        return np.repeat(image[..., None], 3, axis=2)


class _Unloadable:
    """Pickles, but cannot be loaded in a worker (a model file out of reach, say)."""

    def __reduce__(self):
        return _cannot_load, ()


def _cannot_load():
    raise RuntimeError("cannot load")


def _gray_archive(folder: Path, rows: list[int]) -> Path:
    for i, h in enumerate(rows):
        write_image_file(folder / f"{i:02d}.png", np.full((h, 7), 10 * i, np.uint8))
    return folder


def _pool_run(model, src: Path, out: Path, workers: int = 2):
    records = []
    summary = _run_with(model, src, out, workers=workers, on_record=records.append)
    return summary, {Path(r.input).name: r for r in records}


def test_a_worker_killed_with_a_file_in_hand_loses_no_file(tmp_path):
    src = _gray_archive(tmp_path / "in", [20] * 9 + [13] + [20] * 4)
    marker = tmp_path / "killed-once"

    summary, records = _pool_run(_Gray(kill_rows=13, once=str(marker)), src, tmp_path / "out")
    _run_with(_Gray(), src, tmp_path / "one")

    assert marker.exists()  # a worker died holding 09.png (and maybe another file)
    assert (summary.ok, summary.failed) == (14, 0)
    assert len(records) == 14
    assert _outputs(tmp_path / "out") == _outputs(tmp_path / "one")


def test_a_file_that_kills_every_worker_fails_after_a_few_tries_and_the_rest_are_done(tmp_path):
    src = _gray_archive(tmp_path / "in", [20, 20, 13, 20, 20, 20])

    summary, records = _pool_run(_Gray(kill_rows=13), src, tmp_path / "out")

    assert (summary.ok, summary.failed) == (5, 1)
    assert records["02.png"].status == "failed"
    assert records["02.png"].error == (
        f"{src / '02.png'}: the worker process died while colorizing it (signal 9)"
    )
    assert _files(tmp_path / "out") == ["00.png", "01.png", "03.png", "04.png", "05.png"]


def test_workers_that_cannot_start_stop_the_run_with_one_line(tmp_path):
    src = _gray_archive(tmp_path / "in", [20] * 4)

    with pytest.raises(
        SomcolorError, match=r"^worker processes die as they start \(exit status 1\)$"
    ):
        _pool_run(_Unloadable(), src, tmp_path / "out")

    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- real processes
def _somcolor(*args) -> list[str]:
    return [sys.executable, "-m", "somcolor", *map(str, args)]


def _wait_for_lines(log: Path, n: int, process: subprocess.Popen, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_bytes().count(b"\n") >= n:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.002)
    raise AssertionError(f"{log}: fewer than {n} lines after {timeout} s")


def _wait_for_group_to_end(pgid: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    raise AssertionError(f"processes of group {pgid} still running after {timeout} s")


@pytest.fixture
def slow_archive(tmp_path):
    """36 photos of 240x320 for the bundled default model: about a second of work for
    two workers, long enough to stop the run in its middle."""
    return _archive(tmp_path / "in", 36, shape=(240, 320))


def test_kill_9_of_the_whole_run_then_a_rerun_finishes_the_rest(slow_archive, tmp_path):
    out, log = tmp_path / "out", tmp_path / "run.jsonl"
    command = _somcolor(
        "colorize", slow_archive, "-r", "--out-dir", out, "--jobs", "2", "--skip-existing",
        "--log", log, "--model", DEFAULT_MODEL, "-q",
    )  # fmt: skip
    run = subprocess.Popen(command, start_new_session=True, stderr=subprocess.PIPE)
    _wait_for_lines(log, 4, run)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)
    _wait_for_group_to_end(run.pid)
    before = {p: os.stat(out / p) for p in _files(out) if not p.startswith(archive.SCRATCH)}
    done_before = {e["input"] for e in _log(log) if e["status"] == "ok"}
    assert run.returncode == -signal.SIGKILL
    assert 4 <= len(done_before) and len(before) < 36, "the run ended before it was killed"

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)

    assert rerun.returncode == 0, rerun.stderr
    expected = sorted(
        str(p.relative_to(slow_archive)) for p in slow_archive.rglob("*") if p.is_file()
    )
    assert _files(out) == expected  # all there, no temporary file left
    assert all(_decodes(out / name) for name in expected)
    for name, st in before.items():  # complete before the kill: not written again
        assert (os.stat(out / name).st_mtime_ns, os.stat(out / name).st_ino) == (
            st.st_mtime_ns,
            st.st_ino,
        )
    records = _log(log)
    after = records[len(records) - 36 :]
    assert sorted(e["input"] for e in after) == sorted(str(slow_archive / n) for n in expected)
    skipped = {e["input"] for e in after if e["status"] == "skipped"}
    assert skipped == {str(out_to_in) for out_to_in in (slow_archive / n for n in before)}
    assert done_before <= skipped
    assert {e["status"] for e in after} == {"ok", "skipped"}


def test_ctrl_c_stops_the_workers_and_leaves_only_whole_outputs(slow_archive, tmp_path):
    out, log = tmp_path / "out", tmp_path / "run.jsonl"
    command = _somcolor(
        "colorize", slow_archive, "-r", "--out-dir", out, "--jobs", "2", "--log", log,
        "--model", DEFAULT_MODEL,
    )  # fmt: skip
    run = subprocess.Popen(command, start_new_session=True, stderr=subprocess.PIPE, text=True)
    _wait_for_lines(log, 2, run)

    os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, err = run.communicate(timeout=60)

    assert run.returncode == EXIT_INTERRUPTED, err
    assert err.splitlines()[-1] == "somcolor: error: interrupted"
    assert "Traceback" not in err
    _wait_for_group_to_end(run.pid)  # the workers are gone too
    written = _files(out)
    assert 2 <= len(written) < 36
    assert not any(archive.SCRATCH in name or name.endswith(".part") for name in written)
    assert all(_decodes(out / name) for name in written)


# ---------------------------------------------------------------------------- Dask
@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("dask.distributed")  # the dask extra
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield cluster, client


def _run(model_path, src: Path, out: Path, **kwargs) -> archive.Summary:
    from somcolor.model import Model

    return _run_with(Model.from_file(model_path), src, out, **kwargs)


def test_dask_local_cluster_writes_the_same_bytes_as_jobs_1(cli, tiny_model_path, tmp_path):
    src = _archive(tmp_path / "in", 10)
    out1, outd, log = tmp_path / "one", tmp_path / "dask", tmp_path / "dask.jsonl"
    assert (
        cli("colorize", src, "-r", "--out-dir", out1, "--jobs", 1, "--model", tiny_model_path).code
        == 0
    )

    r = cli(
        "colorize", src, "-r", "--out-dir", outd, "--dask", "local", "--jobs", 2, "--log", log,
        "--model", tiny_model_path,
    )  # fmt: skip

    assert r.code == 0, r.err
    assert r.out.startswith("10 colorized, 0 skipped, 0 failed of 10 files in ")
    assert _outputs(outd) == _outputs(out1)
    assert sorted(e["status"] for e in _log(log)) == ["ok"] * 10


def test_a_dask_worker_lost_mid_run_loses_no_file(cluster, tmp_path, monkeypatch):
    _, client = cluster
    src = _archive(tmp_path / "in", 40, shape=(240, 320))
    _run(DEFAULT_MODEL, src, tmp_path / "one")
    monkeypatch.setattr(archive, "DASK_BATCH", 2)
    records, killed = [], []
    out = tmp_path / "dask"
    run = threading.Thread(
        target=lambda: records.append(
            _run(DEFAULT_MODEL, src, out, dask=client, on_record=records.append)
        )
    )
    pids = client.run(os.getpid)

    run.start()
    deadline = time.monotonic() + 60
    while not killed and time.monotonic() < deadline:
        busy = [w for w, keys in client.processing().items() if keys]
        if records and busy:  # a worker with a task in hand: kill it
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(busy[0])
        time.sleep(0.005)
    run.join(timeout=120)

    assert killed and not run.is_alive()
    summary, files = records[-1], records[:-1]
    assert (summary.ok, summary.failed) == (40, 0)
    assert sorted(r.input for r in files) == sorted(str(p) for p in src.rglob("*") if p.is_file())
    assert _outputs(out) == _outputs(tmp_path / "one")


def test_dask_without_the_extra_says_how_to_install_it(cli, tiny_model_path, tmp_path, monkeypatch):
    src = _archive(tmp_path / "in", 2)
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import fails

    r = cli(
        "colorize",
        src,
        "-r",
        "--out-dir",
        tmp_path / "o",
        "--dask",
        "local",
        "--model",
        tiny_model_path,
    )

    assert r.code == EXIT_USAGE
    assert len(r.err_lines) == 1
    assert "pip install 'somcolor[dask]'" in r.err


def test_dask_scheduler_out_of_reach_is_one_line_and_writes_nothing(
    cli, tiny_model_path, tmp_path, monkeypatch
):
    pytest.importorskip("dask.distributed")  # the dask extra
    src = _archive(tmp_path / "in", 2)
    monkeypatch.setattr(archive, "DASK_TIMEOUT", "0.5s")
    out = tmp_path / "o"

    r = cli(
        "colorize",
        src,
        "-r",
        "--out-dir",
        out,
        "--dask",
        "tcp://127.0.0.1:9",
        "--model",
        tiny_model_path,
    )

    assert r.code == EXIT_USAGE
    assert len(r.err_lines) == 1
    assert r.err.startswith("somcolor: error: --dask tcp://127.0.0.1:9: cannot connect")
    assert not out.exists()
