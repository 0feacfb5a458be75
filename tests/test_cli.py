"""The ``somcolor`` command line: colorize, train, info, data, and how it fails.

Most tests call :func:`somcolor.cli.main` in-process; a few run ``python -m somcolor``
to prove the real exit status and that no traceback reaches the user. Every error a
user can cause must be one ``somcolor: error: ...`` line on stderr that names the
file and the reason, with a non-zero exit status and no partial output.
"""

from __future__ import annotations

import errno
import hashlib
import json
import pickle
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import Result
from PIL import Image

from somcolor import __version__, modelfile
from somcolor.cli import EXIT_BROKEN_PIPE, EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_USAGE
from somcolor.paths import DEFAULT_MODEL
from somcolor.pipeline import Colorizer

TRAIN_FAST = ["--patch", "3", "--hidden", "6", "--pixels-per-image", "200", "--max-iter", "5"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder: Path) -> list[str]:
    """Every file under ``folder`` (hidden ``.part`` files included), relative, sorted."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _assert_one_error_line(result: Result, path, *reasons: str) -> None:
    """Exactly one stderr line names ``path``; it says one of ``reasons``; no traceback."""
    assert all(line.startswith("somcolor: error: ") for line in result.err_lines), result.err
    named = result.lines_naming(path)
    assert len(named) == 1, result.err
    assert any(reason in named[0] for reason in reasons), named[0]
    assert "internal error" not in result.err
    assert "Traceback" not in result.err


# ---------------------------------------------------------------------------- colorize
def test_colorize_to_output_writes_rgb_of_the_input_size_and_keeps_the_input(
    cli, make_image, tiny_model_path, tmp_path
):
    src = make_image("scan.png", "gray", shape=(32, 40))
    before = _sha256(src)
    dst = tmp_path / "result.png"

    r = cli("colorize", src, "--model", tiny_model_path, "-o", dst)

    assert r.code == 0, r.err
    assert r.err == ""
    assert r.out.strip() == str(dst)
    with Image.open(dst) as im:
        assert im.mode == "RGB"
        assert im.size == (40, 32)
    assert _sha256(src) == before


def test_colorize_names_the_output_after_the_input_by_default(
    cli, make_image, tiny_model_path, tmp_path
):
    src = make_image("old photo.jpg", "gray", shape=(20, 30))

    r = cli("colorize", src, "--model", tiny_model_path)

    assert r.code == 0, r.err
    dst = tmp_path / "old photo_color.jpg"
    assert r.out.strip() == str(dst)
    with Image.open(dst) as im:
        assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (30, 20))


def test_out_dir_with_recursive_keeps_the_sub_folders(cli, make_image, tiny_model_path, tmp_path):
    make_image("in/a.png")
    make_image("in/sub/b.png", "gray")
    make_image("in/sub/deeper/c.jpg")
    out = tmp_path / "out"

    r = cli("colorize", tmp_path / "in", "--out-dir", out, "-r", "--model", tiny_model_path)

    assert r.code == 0, r.err
    assert _files(out) == ["a.png", "sub/b.png", "sub/deeper/c.jpg"]


def test_out_dir_without_recursive_takes_only_the_top_folder(
    cli, make_image, tiny_model_path, tmp_path
):
    make_image("in/a.png")
    make_image("in/sub/b.png")
    out = tmp_path / "out"

    r = cli("colorize", tmp_path / "in", "--out-dir", out, "--model", tiny_model_path)

    assert r.code == 0, r.err
    assert _files(out) == ["a.png"]


def test_glob_pattern_colorizes_only_the_matching_files(cli, make_image, tiny_model_path, tmp_path):
    for name in ["in/a.png", "in/b.png", "in/c.jpg"]:
        make_image(name)
    out = tmp_path / "out"

    r = cli(
        "colorize", str(tmp_path / "in" / "*.png"), "--out-dir", out, "--model", tiny_model_path
    )

    assert r.code == 0, r.err
    assert _files(out) == ["a.png", "b.png"]


def test_existing_output_is_kept_without_force(cli, make_image, tiny_model_path, tmp_path):
    src = make_image("in.png", "gray")
    dst = make_image("out.png", "rgb", shape=(5, 5), seed=9)
    before = _sha256(dst)

    r = cli("colorize", src, "-o", dst, "--model", tiny_model_path)

    assert r.code == EXIT_FAILURES
    _assert_one_error_line(r, dst, "--force")
    assert _sha256(dst) == before


def test_existing_output_is_replaced_with_force(cli, make_image, tiny_model_path, tmp_path):
    src = make_image("in.png", "gray", shape=(32, 40))
    dst = make_image("out.png", "rgb", shape=(5, 5), seed=9)

    r = cli("colorize", src, "-o", dst, "--force", "--model", tiny_model_path)

    assert r.code == 0, r.err
    with Image.open(dst) as im:
        assert im.size == (40, 32)
    assert _files(tmp_path) == ["in.png", "out.png"]


def test_output_equal_to_the_input_is_refused_even_with_force(cli, make_image, tiny_model_path):
    src = make_image("in.png", "gray")
    before = _sha256(src)

    r = cli("colorize", src, "-o", src, "--force", "--model", tiny_model_path)

    assert r.code == EXIT_FAILURES
    _assert_one_error_line(r, src, "input")
    assert _sha256(src) == before


@pytest.mark.parametrize(
    "name, kind",
    [
        ("gray.png", "gray"),
        ("rgb.png", "rgb"),
        ("rgba.png", "rgba"),
        ("gray16.png", "gray16"),
        ("gray.jpg", "gray"),
        ("rgb.jpg", "rgb"),
    ],
)
def test_every_input_kind_gives_rgb_of_the_same_size(
    cli, make_image, tiny_model_path, tmp_path, name, kind
):
    src = make_image(name, kind, shape=(12, 17))
    dst = tmp_path / "out.png"

    r = cli("colorize", src, "-o", dst, "--model", tiny_model_path)

    assert r.code == 0, r.err
    with Image.open(dst) as im:
        assert (im.mode, im.size) == ("RGB", (17, 12))


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (3, 5)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("kind", ["gray", "rgba"])
def test_tiny_and_odd_sizes_are_colorized(cli, make_image, tiny_model_path, tmp_path, shape, kind):
    src = make_image("in.png", kind, shape=shape)
    dst = tmp_path / "out.png"

    r = cli("colorize", src, "-o", dst, "--model", tiny_model_path)

    assert r.code == 0, r.err
    with Image.open(dst) as im:
        assert (im.mode, im.size) == ("RGB", (shape[1], shape[0]))


# ---------------------------------------------------------------------------- bad images
def _missing(folder: Path) -> Path:
    return folder / "missing.png"


def _zero_bytes(folder: Path) -> Path:
    path = folder / "empty.png"
    path.write_bytes(b"")
    return path


def _text_named_png(folder: Path) -> Path:
    path = folder / "notes.png"
    path.write_text("these are notes, not pixels\n")
    return path


def _truncated(name: str):
    def make(folder: Path) -> Path:
        path = folder / name
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 40, 3), np.uint8)).save(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path

    return make


def _large(folder: Path) -> Path:
    path = folder / "large.png"
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(path)
    return path


@pytest.mark.parametrize(
    "make_bad, reasons, extra",
    [
        (_missing, ["no such file"], []),
        (_zero_bytes, ["empty"], []),
        (_text_named_png, ["not an image"], []),
        (_truncated("truncated.png"), ["truncated", "corrupt"], []),
        (_truncated("truncated.jpg"), ["truncated", "corrupt"], []),
        (_large, ["too large"], ["--max-pixels", "399"]),
    ],
    ids=["missing", "zero-bytes", "text-named-png", "truncated-png", "truncated-jpeg", "too-large"],
)
def test_bad_image_fails_with_one_line_and_no_output(
    cli, tiny_model_path, tmp_path, make_bad, reasons, extra
):
    (tmp_path / "in").mkdir()
    bad = make_bad(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()

    r = cli("colorize", bad, "-o", out / "x.png", "--model", tiny_model_path, *extra)

    assert r.code == EXIT_FAILURES
    _assert_one_error_line(r, bad, *reasons)
    assert r.err_lines[-1] == "somcolor: error: 1 of 1 files failed"
    assert _files(out) == []


def test_batch_writes_the_good_files_and_counts_the_failures(
    cli, make_image, tiny_model_path, tmp_path
):
    good = [make_image("a.png", "gray"), make_image("b.jpg", "rgb")]
    bad = _text_named_png(tmp_path)

    r = cli("colorize", good[0], bad, good[1], "--model", tiny_model_path)

    assert r.code == EXIT_FAILURES
    assert (tmp_path / "a_color.png").is_file()
    assert (tmp_path / "b_color.jpg").is_file()
    assert not (tmp_path / "notes_color.png").exists()
    _assert_one_error_line(r, bad, "not an image")
    assert r.err_lines[-1] == "somcolor: error: 1 of 3 files failed"
    assert len(r.err_lines) == 2


def test_empty_folder_with_output_is_refused_naming_the_folder(cli, tiny_model_path, tmp_path):
    folder = tmp_path / "nothing here"
    folder.mkdir()

    r = cli("colorize", folder, "-o", tmp_path / "out.png", "--model", tiny_model_path)

    assert r.code == EXIT_USAGE
    _assert_one_error_line(r, folder, "no input images")
    assert _files(tmp_path) == []


def test_output_that_is_a_folder_is_refused_without_an_internal_error(
    cli, make_image, tiny_model_path, tmp_path
):
    src = make_image("in.png", "gray")
    folder = tmp_path / "out.png"
    folder.mkdir()

    r = cli("colorize", src, "-o", folder, "--force", "--model", tiny_model_path)

    assert r.code in (EXIT_FAILURES, EXIT_USAGE)
    _assert_one_error_line(r, folder, "folder", "directory")
    assert folder.is_dir()
    assert _files(tmp_path) == ["in.png"]


def _failing_save(monkeypatch, error: BaseException):
    """Make the first Pillow save write a few bytes and then raise ``error``."""
    real_save = Image.Image.save
    calls = []

    def save(self, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) == 1:
            fp.write(b"\x89PNG\r\n\x1a\n half a file")
            raise error
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    return calls


def test_write_error_fails_that_file_only_and_leaves_no_partial_file(
    cli, make_image, tiny_model_path, tmp_path, monkeypatch
):
    a, b = make_image("in/a.png", "gray"), make_image("in/b.png", "gray")
    out = tmp_path / "out"
    _failing_save(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))

    r = cli("colorize", a, b, "--out-dir", out, "--model", tiny_model_path)

    assert r.code == EXIT_FAILURES
    _assert_one_error_line(r, out / "a.png", "No space left")
    assert r.err_lines[-1] == "somcolor: error: 1 of 2 files failed"
    assert _files(out) == ["b.png"]


def test_interrupt_while_writing_leaves_no_partial_file(
    cli, make_image, tiny_model_path, tmp_path, monkeypatch
):
    src = make_image("in.png", "gray")
    out = tmp_path / "out"
    _failing_save(monkeypatch, KeyboardInterrupt())

    r = cli("colorize", src, "-o", out / "x.png", "--model", tiny_model_path)

    assert r.code == EXIT_INTERRUPTED
    assert r.err_lines == ["somcolor: error: interrupted"]
    assert not out.exists() or _files(out) == []


def test_output_option_with_several_inputs_is_refused(cli, make_image, tiny_model_path, tmp_path):
    a, b = make_image("a.png"), make_image("b.png")
    dst = tmp_path / "out.png"

    r = cli("colorize", a, b, "-o", dst, "--model", tiny_model_path)

    assert r.code == EXIT_USAGE
    assert len(r.err_lines) == 1
    assert "--out-dir" in r.err
    assert not dst.exists()


def test_two_inputs_with_the_same_destination_are_refused(
    cli, make_image, tiny_model_path, tmp_path
):
    first, second = make_image("d1/x.png"), make_image("d2/x.png", seed=1)
    out = tmp_path / "out"

    r = cli("colorize", first, second, "--out-dir", out, "--model", tiny_model_path)

    assert r.code == EXIT_USAGE
    assert len(r.err_lines) == 1
    assert str(out / "x.png") in r.err and str(first) in r.err and str(second) in r.err
    assert not out.exists()


def test_one_file_named_twice_is_not_a_half_failed_batch(
    cli, make_image, tiny_model_path, tmp_path, monkeypatch
):
    # "x.png" and "/abs/x.png" are the same file and so the same destination: either
    # colorize it once or refuse up front, but not write it and then fail on it.
    src = make_image("x.png", "gray")
    monkeypatch.chdir(tmp_path)

    r = cli("colorize", "x.png", src, "--model", tiny_model_path)

    assert r.code in (0, EXIT_USAGE), r.err
    assert "output exists" not in r.err


@pytest.mark.parametrize(
    "args, option",
    [
        (["train", "{dir}", "-o", "{model}", "--som", "3y3"], "--som"),
        (["train", "{dir}", "-o", "{model}", "--patch", "4"], "--patch"),
        (["train", "{dir}", "-o", "{model}", "--hidden", "a,b"], "--hidden"),
        (["colorize", "{dir}", "--max-pixels", "0"], "--max-pixels"),
    ],
    ids=["som-3y3", "patch-4", "hidden-a,b", "max-pixels-0"],
)
def test_bad_option_value_is_one_line_naming_the_option(cli, photo_dir, tmp_path, args, option):
    model = tmp_path / "model.npz"
    argv = [a.format(dir=photo_dir, model=model) for a in args]

    r = cli(*argv)

    assert r.code == EXIT_USAGE
    assert len(r.err_lines) == 1, r.err
    assert r.err_lines[0].startswith("somcolor: error: ")
    assert option in r.err and argv[-1] in r.err
    assert not model.exists()
    assert _files(photo_dir) == ["a.png", "b.png", "c.jpg"]


# ---------------------------------------------------------------------------- model files
def _text_model(folder: Path) -> Path:
    path = folder / "model.npz"
    path.write_text("not a model\n")
    return path


def _npz_without_metadata(folder: Path) -> Path:
    path = folder / "model.npz"
    np.savez(path, som_codebook=np.zeros((9, 2)))
    return path


def _npz_with_a_list_as_metadata(folder: Path) -> Path:
    path = folder / "model.npz"
    np.savez(path, metadata=np.array("[1, 2]"), som_codebook=np.zeros((9, 2)))
    return path


def _bare_npy(folder: Path) -> Path:
    path = folder / "model.npy"
    np.save(path, np.zeros(3))
    return path


@pytest.mark.parametrize("command", ["colorize", "info"])
@pytest.mark.parametrize(
    "make_model",
    [_text_model, _npz_without_metadata, _npz_with_a_list_as_metadata, _bare_npy],
    ids=["text", "no-meta", "list-meta", "npy"],
)
def test_file_that_is_not_a_model_is_refused(cli, make_image, tmp_path, command, make_model):
    model = make_model(tmp_path)
    src = make_image("in.png", "gray")
    args = ["colorize", src, "--model", model] if command == "colorize" else ["info", model]

    r = cli(*args)

    assert r.code == EXIT_USAGE
    _assert_one_error_line(r, model, "not a somcolor model")
    assert len(r.err_lines) == 1
    assert not (tmp_path / "in_color.png").exists()


def test_pickle_model_is_refused_without_unpickling(cli, make_image, tmp_path, monkeypatch):
    model = tmp_path / "model.npz"
    with open(model, "wb") as fh:
        pickle.dump({"som_codebook": [[0.0, 0.0]]}, fh)
    src = make_image("in.png", "gray")
    unpickled = []

    def trap(*args, **kwargs):
        unpickled.append(args)
        raise AssertionError("somcolor unpickled a model file")

    monkeypatch.setattr(pickle, "load", trap)
    monkeypatch.setattr(pickle, "loads", trap)

    r = cli("colorize", src, "--model", model)

    assert unpickled == []
    assert r.code == EXIT_USAGE
    _assert_one_error_line(r, model, "pickle")
    assert not (tmp_path / "in_color.png").exists()


def test_model_with_a_newer_format_version_asks_for_an_upgrade(
    cli, make_image, tiny_model_path, tmp_path, monkeypatch
):
    model = tmp_path / "future.npz"
    with monkeypatch.context() as m:
        m.setattr(modelfile, "FORMAT_VERSION", modelfile.FORMAT_VERSION + 1)
        Colorizer.load(tiny_model_path).save(model)
    src = make_image("in.png", "gray")

    r = cli("colorize", src, "--model", model)

    assert r.code == EXIT_USAGE
    _assert_one_error_line(r, model, "newer")
    assert "upgrade" in r.err
    assert not (tmp_path / "in_color.png").exists()


def _rewrite_model(src: Path, dst: Path, edit) -> Path:
    """Copy a model file, letting ``edit(arrays, metadata)`` change it in place.

    When ``edit`` returns something other than None, that becomes the metadata JSON.
    """
    with np.load(src) as npz:
        arrays = {key: npz[key] for key in npz.files}
    meta = json.loads(str(arrays.pop("metadata")))
    replaced = edit(arrays, meta)
    header = json.dumps(meta if replaced is None else replaced)
    np.savez(dst, metadata=np.array(header), **arrays)
    return dst


def _set(key, fn):
    def edit(arrays, meta):
        arrays[key] = fn(arrays[key])

    return edit


def _drop(key):
    def edit(arrays, meta):
        del arrays[key]

    return edit


def _set_config(**changes):
    def edit(arrays, meta):
        meta["config"].update(changes)

    return edit


@pytest.mark.parametrize(
    "edit",
    [
        _set("som_codebook", lambda a: a[:2]),
        _set("mlp_classes", lambda a: a + 100),
        _set("mlp_coef_0", lambda a: a[:, :-1]),
        _drop("mlp_coef_1"),
        _set("som_codebook", lambda a: np.full_like(a, np.nan)),
        _set_config(patch_size=4),
    ],
    ids=[
        "codebook-shape",
        "class-outside-codebook",
        "layer-shape",
        "layer-missing",
        "nan-codebook",
        "even-patch-size",
    ],
)
def test_tampered_model_is_refused_as_damaged(cli, make_image, tiny_model_path, tmp_path, edit):
    model = _rewrite_model(tiny_model_path, tmp_path / "tampered.npz", edit)
    src = make_image("in.png", "gray")

    r = cli("colorize", src, "--model", model)

    assert r.code == EXIT_USAGE
    _assert_one_error_line(r, model, "damaged", "inconsistent")
    assert len(r.err_lines) == 1
    assert not (tmp_path / "in_color.png").exists()


def test_info_on_malformed_training_metadata_is_not_an_internal_error(
    cli, tiny_model_path, tmp_path
):
    def edit(arrays, meta):
        meta["training"] = ["not", "a", "summary"]

    model = _rewrite_model(tiny_model_path, tmp_path / "odd.npz", edit)

    r = cli("info", model)

    assert r.code in (0, EXIT_USAGE)
    assert "internal error" not in r.err


# ---------------------------------------------------------------------------- train
def test_train_writes_a_model_that_info_describes_and_colorize_uses(
    cli, photo_dir, make_image, tmp_path
):
    model = tmp_path / "mine.npz"

    description = ["--description", "three synthetic photos"]
    r = cli("train", photo_dir, "-o", model, "--som", "2x2", *TRAIN_FAST, *description, "-q")

    assert r.code == 0, r.err
    assert "trained on 3 images" in r.out
    assert model.is_file()

    info = cli("info", model)
    assert info.code == 0, info.err
    assert f"model:     {model}" in info.out
    assert '"patch_size": 3' in info.out
    assert '"som_shape": [2, 2]' in info.out
    assert '"hidden_layer_sizes": [6]' in info.out
    assert "on 3 images, 600 pixels" in info.out
    assert "three synthetic photos" in info.out
    assert "4 codes" in info.out

    src = make_image("in.png", "gray", shape=(9, 11))
    dst = tmp_path / "out.png"
    r = cli("colorize", src, "--model", model, "-o", dst)
    assert r.code == 0, r.err
    with Image.open(dst) as im:
        assert (im.mode, im.size) == ("RGB", (11, 9))


def test_train_refuses_to_overwrite_an_existing_file(cli, photo_dir, tmp_path):
    model = tmp_path / "model.npz"
    model.write_bytes(b"precious")

    r = cli("train", photo_dir, "-o", model, *TRAIN_FAST, "-q")

    assert r.code == EXIT_USAGE
    _assert_one_error_line(r, model, "--force")
    assert model.read_bytes() == b"precious"


def test_train_skips_a_corrupt_image_and_still_writes_the_model(cli, photo_dir, tmp_path):
    broken = _truncated("broken.png")(photo_dir)
    model = tmp_path / "model.npz"

    r = cli("train", photo_dir, "-o", model, *TRAIN_FAST, "-q")

    assert r.code == EXIT_FAILURES
    _assert_one_error_line(r, broken, "skipped")
    assert r.err_lines[-1] == "somcolor: error: 1 of 4 training images could not be read"
    assert len(r.err_lines) == 2
    assert Colorizer.load(model).training_["n_images"] == 3


def _one_color_photos(folder: Path) -> Path:
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((16, 16, 3), (120, 80, 40), np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.mark.parametrize(
    "data, extra",
    [("one-color", []), ("photos", ["--som", "1x1"])],
    ids=["one-color-photos", "som-1x1"],
)
def test_train_that_can_learn_only_one_color_fails_cleanly(cli, photo_dir, tmp_path, data, extra):
    folder = _one_color_photos(tmp_path / "flat") if data == "one-color" else photo_dir
    model = tmp_path / "model.npz"

    r = cli("train", folder, "-o", model, *TRAIN_FAST, *extra, "-q")

    assert r.code == EXIT_USAGE
    assert "internal error" not in r.err
    assert len(r.err_lines) == 1, r.err
    assert not model.exists()


# ---------------------------------------------------------------------------- info, data, help
def test_info_without_a_model_describes_the_bundled_model(cli):
    r = cli("info")

    assert r.code == 0, r.err
    assert f"model:     {DEFAULT_MODEL}" in r.out
    assert "BSDS500" in r.out
    assert "config:" in r.out and "codebook:" in r.out


def test_data_verifies_and_lists_the_three_collections(cli):
    r = cli("data")

    assert r.code == 0, r.err
    listed = {line.split()[0]: line for line in r.out.splitlines() if not line.startswith(" ")}
    assert set(listed) == {"bsds500", "opencountry", "fruits100"}
    assert all(" ok " in line for line in listed.values())


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--version"], f"somcolor {__version__}"),
        (["--help"], "usage: somcolor"),
        (["colorize", "--help"], "--out-dir"),
        (["train", "--help"], "--pixels-per-image"),
    ],
    ids=["version", "help", "colorize-help", "train-help"],
)
def test_version_and_help_exit_zero(cli, args, expected):
    r = cli(*args)

    assert r.code == 0
    assert expected in r.out
    assert r.err == ""


def test_missing_command_is_a_usage_error(cli):
    r = cli()

    assert r.code == EXIT_USAGE
    assert len(r.err_lines) == 1 and "required" in r.err


# ---------------------------------------------------------------------------- real processes
def _somcolor(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "somcolor", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_command_colorizes_a_file_and_exits_zero(make_image, tiny_model_path, tmp_path):
    make_image("in.png", "gray", shape=(8, 6))

    p = _somcolor("colorize", "in.png", "--model", tiny_model_path, "-o", "out.png", cwd=tmp_path)

    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "out.png"
    assert "Traceback" not in p.stderr
    with Image.open(tmp_path / "out.png") as im:
        assert (im.mode, im.size) == ("RGB", (6, 8))


def test_command_exits_one_on_a_bad_file_without_a_traceback(tiny_model_path, tmp_path):
    _text_named_png(tmp_path)

    p = _somcolor("colorize", "notes.png", "--model", tiny_model_path, cwd=tmp_path)

    assert p.returncode == EXIT_FAILURES
    assert "Traceback" not in p.stderr
    assert p.stderr.splitlines() == [
        "somcolor: error: notes.png: not an image file of a format read here "
        "(PNG, JPEG, GIF, BMP, TIFF, WEBP)",
        "somcolor: error: 1 of 1 files failed",
    ]
    assert _files(tmp_path) == ["notes.png"]


def test_command_exits_two_on_a_bad_option_without_a_traceback(photo_dir, tmp_path):
    p = _somcolor("train", photo_dir, "-o", "m.npz", "--patch", "4", cwd=tmp_path)

    assert p.returncode == EXIT_USAGE
    assert "Traceback" not in p.stderr
    assert len(p.stderr.splitlines()) == 1
    assert "--patch" in p.stderr
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("unbuffered", ["1", ""], ids=["unbuffered", "buffered"])
def test_closed_pipe_ends_the_command_quietly(tmp_path, monkeypatch, unbuffered):
    # `somcolor info | head -1`, with the reader gone before the first line: unbuffered, the
    # first print fails; buffered, the flush at the end does.
    monkeypatch.setenv("PYTHONUNBUFFERED", unbuffered)
    p = subprocess.Popen(
        [sys.executable, "-m", "somcolor", "info"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    p.stdout.close()
    _, err = p.communicate(timeout=120)

    assert p.returncode == EXIT_BROKEN_PIPE, err
    assert err == ""


def test_bundled_models_are_chosen_by_name(cli, tmp_path):
    from somcolor.paths import FAST_MODEL

    r = cli("info", "fast")
    assert r.code == 0, r.err
    assert f"model:     {FAST_MODEL}" in r.out
    assert '"som_shape": [3, 3]' in r.out and "9 codes" in r.out

    photo = tmp_path / "gray.png"
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((40, 56)) * 255).astype(np.uint8)).save(photo)
    outs = {}
    for name in ("fast", "default"):
        out = tmp_path / f"{name}.png"
        r = cli("colorize", photo, "-o", out, "--model", name, "-q")
        assert r.code == 0, r.err
        outs[name] = np.asarray(Image.open(out))
    assert outs["fast"].shape == outs["default"].shape == (40, 56, 3)
    assert not np.array_equal(outs["fast"], outs["default"])  # two different models


def test_a_file_named_like_a_bundled_model_wins_over_the_name(
    tmp_path, tiny_model_path, monkeypatch
):
    from somcolor.paths import model_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "fast").write_bytes(tiny_model_path.read_bytes())
    assert model_path("fast") == Path("fast")
    assert model_path("default").name == "default.npz"


def test_work_size_colorizes_at_that_long_side_and_keeps_the_input_size(
    cli, make_image, tiny_model_path, tmp_path
):
    from somcolor.io import read_image
    from somcolor.model import Model

    src = make_image("scan.png", "gray", shape=(48, 64))
    outs = {}
    for size in (None, 16):
        dst = tmp_path / f"out_{size}.png"
        extra = [] if size is None else ["--work-size", size]
        r = cli("colorize", src, "-o", dst, "--model", tiny_model_path, "-q", *extra)
        assert r.code == 0, r.err
        outs[size] = np.asarray(Image.open(dst))
    assert outs[None].shape == outs[16].shape == (48, 64, 3)
    expected = Model.from_file(tiny_model_path).set_params(work_size=16)
    assert np.array_equal(outs[16], expected.colorize(read_image(src)))
    assert not np.array_equal(outs[16], outs[None])  # predicted on 12x16, not 48x64


@pytest.mark.parametrize("full", ["0", "full"])
def test_work_size_0_or_full_predicts_at_full_resolution_over_the_models_own(
    cli, make_image, tiny_model_path, tmp_path, full
):
    from somcolor.io import read_image
    from somcolor.model import Model

    model = Model.from_file(tiny_model_path).set_params(work_size=16)
    recorded = tmp_path / "work16.npz"
    from somcolor import modelfile

    modelfile.write(
        recorded,
        model.model_arrays(),
        {
            **model.metadata_,
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in model.config.items()},
        },
    )
    src = make_image("scan.png", "gray", shape=(48, 64))
    outs = {}
    for name, extra in (("own", []), ("full", ["--work-size", full])):
        dst = tmp_path / f"out_{name}.png"
        r = cli("colorize", src, "-o", dst, "--model", recorded, "-q", *extra)
        assert r.code == 0, r.err
        outs[name] = np.asarray(Image.open(dst))
    image = read_image(src)
    assert np.array_equal(outs["own"], model.colorize(image))
    assert np.array_equal(outs["full"], model.set_params(work_size=None).colorize(image))
    assert not np.array_equal(outs["own"], outs["full"])


@pytest.mark.parametrize("size", ["4", "-1", "big"])
def test_work_size_below_8_pixels_is_a_usage_error(cli, make_image, tiny_model_path, size):
    src = make_image("scan.png", "gray")
    r = cli("colorize", src, "--model", tiny_model_path, "--work-size", size)
    assert r.code == EXIT_USAGE
    assert "--work-size" in r.err and "Traceback" not in r.err
    assert not (src.parent / "scan_color.png").exists()


@pytest.mark.parametrize(
    "backend, options",
    [
        ("cnn-ae", ["--patch", "7"]),
        ("cnn-ae", ["--decoder", "mean"]),
        ("cnn-cls", ["--hidden", "8", "--rebalance"]),
        ("cnn-cls", ["--work-size", "64"]),
    ],
)
def test_train_refuses_som_options_a_cnn_would_ignore(cli, photo_dir, tmp_path, backend, options):
    r = cli("train", photo_dir, "-o", tmp_path / "m.npz", "--backend", backend, *options)
    assert r.code == 2 and len(r.err_lines) == 1, r.err
    assert options[0] in r.err_lines[0] and f"--backend {backend}" in r.err_lines[0]
    assert not (tmp_path / "m.npz").exists()  # refused before torch is needed or data read


def test_train_work_size_below_8_pixels_is_refused_before_reading(cli, photo_dir, tmp_path):
    r = cli("train", photo_dir, "-o", tmp_path / "m.npz", "--work-size", "4")
    assert r.code == EXIT_USAGE and "--work-size" in r.err
    assert not (tmp_path / "m.npz").exists()


def test_serve_passes_every_limit_host_and_allowed_host_to_the_app(cli, monkeypatch):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    import uvicorn

    from somcolor.web import app as web_app
    from somcolor.web.settings import MIB, Limits

    seen = {}

    def fake_app(*args, **kwargs):  # what server_options reads: app.state.server.limits
        seen.update(kwargs)
        limits = Limits(**{k: v for k, v in kwargs.items() if k in Limits.__dataclass_fields__})
        return SimpleNamespace(state=SimpleNamespace(server=SimpleNamespace(limits=limits)))

    monkeypatch.setattr(web_app, "create_app", fake_app)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(run=kw))
    r = cli(
        "serve",
        "--host",
        "192.0.2.7",
        "--allow-host",
        "photos.lan",
        "--public-origin",
        "https://Photos.LAN",
        "--max-result-mb",
        "5",
        "--photo-timeout",
        "2.5",
        "--max-video-frames",
        "10",
        "--send-timeout",
        "7",
        "--memory-budget",
        "800",
    )
    assert r.code == 0, r.err
    assert seen["host"] == "192.0.2.7" and seen["allowed_hosts"] == ("photos.lan",)
    assert seen["public_origins"] == ("https://photos.lan",)
    assert seen["max_result_bytes"] == 5 * MIB and seen["photo_timeout_s"] == 2.5
    assert seen["max_video_frames"] == 10 and seen["send_timeout_s"] == 7
    assert seen["memory_budget_bytes"] == 800 * MIB
    assert seen["max_upload_bytes"] == Limits.max_upload_bytes  # a default, unchanged
    assert seen["run"]["host"] == "192.0.2.7"
    assert seen["run"]["proxy_headers"] is False and seen["run"]["http"].keywords["limits"]


# ---------------------------------------------------------------------------- damaged models
def _with_infinite_work_size(src: Path, dst: Path) -> Path:
    """A copy of the model ``src`` whose config says ``"work_size": Infinity``."""
    with np.load(src) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "metadata"}
        meta = json.loads(str(npz["metadata"]))
    meta["config"]["work_size"] = float("inf")
    np.savez(dst, metadata=np.array(json.dumps(meta)), **arrays)
    return dst


def test_a_folder_given_as_model_is_said_to_be_a_folder(cli, make_image, tmp_path):
    src = make_image("scan.png", "gray")
    folder = tmp_path / "models"
    folder.mkdir()
    r = cli("colorize", src, "--model", f"{folder}/", "-o", tmp_path / "out.png")
    assert r.code == EXIT_USAGE
    _assert_one_error_line(r, folder, "is a directory, not a model file")
    assert not (tmp_path / "out.png").exists()


def test_a_model_with_infinite_numbers_is_a_one_line_usage_error(
    cli, make_image, tiny_model_path, tmp_path
):
    bad = _with_infinite_work_size(tiny_model_path, tmp_path / "bad.npz")
    r = cli("colorize", make_image("scan.png", "gray"), "--model", bad, "-o", tmp_path / "o.png")
    assert r.code == EXIT_USAGE
    _assert_one_error_line(r, bad, "damaged model file (metadata holds Infinity)")


# ---------------------------------------------------------------------------- colour hints
def _write_hints(path: Path, points) -> Path:
    path.write_text(json.dumps({"points": points}))
    return path


@pytest.mark.parametrize("model", ["tiny", "fast", "default"])
def test_colorize_with_hints_matches_the_api_with_every_model(
    cli, make_image, tiny_model_path, tmp_path, model
):
    from somcolor.io import read_image
    from somcolor.model import Model
    from somcolor.paths import model_path

    name = tiny_model_path if model == "tiny" else model
    src = make_image("scan.png", "gray", shape=(48, 64))
    hints = _write_hints(tmp_path / "h.json", [{"x": 10, "y": 20, "color": "#c83232"}])
    dst = tmp_path / "out.png"
    r = cli("colorize", src, "-o", dst, "--model", name, "--hints", hints, "-q")
    assert r.code == 0, r.err
    got = np.asarray(Image.open(dst))
    expected = Model.from_file(model_path(str(name))).colorize(
        read_image(src), hints=[(10, 20, "#c83232")]
    )
    assert np.array_equal(got, expected)


def test_colorize_with_hints_and_scribbles_and_work_size(
    cli, make_image, tiny_model_path, tmp_path
):
    from somcolor.io import read_image
    from somcolor.model import Model

    src = make_image("scan.png", "gray", shape=(48, 64))
    hints = _write_hints(tmp_path / "h.json", [{"x": 10, "y": 20, "color": "#c83232"}])
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[30:33, 40:50] = (20, 40, 220, 255)
    strokes = tmp_path / "s.png"
    Image.fromarray(rgba, "RGBA").save(strokes)
    dst = tmp_path / "out.png"
    args = ["--hints", hints, "--scribbles", strokes, "--work-size", "16", "-q"]
    r = cli("colorize", src, "-o", dst, "--model", tiny_model_path, *args)
    assert r.code == 0, r.err
    model = Model.from_file(tiny_model_path).set_params(work_size=16)
    expected = model.colorize(read_image(src), hints=[(10, 20, "#c83232")], scribbles=rgba)
    assert np.array_equal(np.asarray(Image.open(dst)), expected)
    only = tmp_path / "only.png"
    r = cli("colorize", src, "-o", only, "--model", tiny_model_path, "--scribbles", strokes)
    assert r.code == 0, r.err
    assert only.exists()


@pytest.mark.parametrize(
    "content, reason",
    [
        ('{"points": [{"x": 1, "y": 1, "color": "#ff0000", "size": 3}]}', "unknown keys"),
        ('{"points": [{"x": 64, "y": 1, "color": "#ff0000"}]}', "outside the image"),
        ('{"points": [{"x": 1, "y": -1, "color": "#ff0000"}]}', "outside the image"),
        ('{"points": [{"x": 1, "y": 1, "color": "red"}]}', "not an sRGB hex"),
        ('{"points": [{"x": 1, "y": 1, "color": "#ff0000", "radius": -2}]}', "radius"),
        ('{"pts": []}', "unknown keys"),
        ("{not json", "not a JSON hints file"),
        (None, "cannot read"),
    ],
)
def test_colorize_bad_hints_file_is_one_line_exit_2_and_no_output(
    cli, make_image, tiny_model_path, tmp_path, content, reason
):
    src = make_image("scan.png", "gray", shape=(48, 64))
    hints = tmp_path / "h.json"
    if content is not None:
        hints.write_text(content)
    dst = tmp_path / "out.png"
    r = cli("colorize", src, "-o", dst, "--model", tiny_model_path, "--hints", hints)
    assert r.code == EXIT_USAGE
    _assert_one_error_line(r, hints, reason)
    assert len(r.err_lines) == 1
    assert not dst.exists()


@pytest.mark.parametrize(
    "kind, reason",
    [("size", "the scribbles are 10x8"), ("rgb", "expected an RGBA image"), ("bad", "")],
)
def test_colorize_bad_scribbles_are_one_line_exit_2_and_no_output(
    cli, make_image, tiny_model_path, tmp_path, kind, reason
):
    src = make_image("scan.png", "gray", shape=(48, 64))
    strokes = tmp_path / "s.png"
    if kind == "size":
        Image.fromarray(np.zeros((8, 10, 4), np.uint8), "RGBA").save(strokes)
    elif kind == "rgb":
        Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(strokes)
    else:
        strokes.write_bytes(b"not an image at all")
    dst = tmp_path / "out.png"
    r = cli("colorize", src, "-o", dst, "--model", tiny_model_path, "--scribbles", strokes)
    assert r.code == EXIT_USAGE
    _assert_one_error_line(r, strokes, reason)
    assert len(r.err_lines) == 1
    assert not dst.exists()


def test_colorize_with_hints_takes_one_input(cli, make_image, tiny_model_path, tmp_path):
    a = make_image("a.png", "gray", shape=(16, 16))
    b = make_image("b.png", "gray", shape=(16, 16))
    hints = _write_hints(tmp_path / "h.json", [])
    r = cli("colorize", a, b, "--out-dir", tmp_path / "o", "--hints", hints)
    assert r.code == EXIT_USAGE
    assert "one input image" in r.err
    assert not (tmp_path / "o").exists()


def test_suggest_prints_the_models_colours_then_the_palette(cli, make_image, tiny_model_path):
    from somcolor.io import read_image
    from somcolor.model import Model

    src = make_image("scan.png", "gray", shape=(48, 64))
    r = cli("suggest", src, "--at", "10,20", "--model", tiny_model_path)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    expected = Model.from_file(tiny_model_path).suggest(read_image(src), 10, 20)
    assert len(lines) == len(expected) == 12  # the default --top
    for line, (color, p, source) in zip(lines, expected, strict=True):
        if p is None:
            assert line.split() == [color, source] == [color, "palette"]
        else:
            assert line.split() == [color, source, f"{100 * p:.1f}%"]
    assert lines[0].split()[1] == "model" and "palette" in r.out
    r = cli("suggest", src, "--at", "10,20", "--top", "3", "--model", tiny_model_path, "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    got = [(c["color"], c["p"], c["source"]) for c in data["colors"]]
    assert got == expected[:3]
    r = cli("suggest", src, "--at", "10,20", "--top", "3", "--model-only", "--json",
            "--model", tiny_model_path)  # fmt: skip
    assert r.code == 0, r.err
    only = Model.from_file(tiny_model_path).suggest(read_image(src), 10, 20, 3, model_only=True)
    data = json.loads(r.out)
    assert [(c["color"], c["p"], c["source"]) for c in data["colors"]] == only
    assert [c["source"] for c in data["colors"]] == ["model"] * 3
    assert sum(c["p"] for c in data["colors"]) <= 1 + 1e-6


def test_suggest_outside_the_image_is_a_usage_error(cli, make_image, tiny_model_path):
    src = make_image("scan.png", "gray", shape=(48, 64))
    r = cli("suggest", src, "--at", "64,0", "--model", tiny_model_path)
    assert r.code == EXIT_USAGE
    assert len(r.err_lines) == 1 and "outside the image" in r.err
    r = cli("suggest", src, "--at", "nope", "--model", tiny_model_path)
    assert r.code == EXIT_USAGE


def test_evaluate_with_simulated_hints_reports_the_metrics(
    cli, photo_dir, tiny_model_path, tmp_path
):
    import csv

    psnr = {}
    for n in (0, 20):
        out = tmp_path / f"eval{n}"
        args = ["--model", tiny_model_path, "--no-baselines", "-q", "--out", out]
        r = cli("evaluate", photo_dir, "--hints", n, *args)
        assert r.code == 0, r.err
        assert ("20 simulated colour hints per photo" in r.out) == (n == 20)
        with open(out / "summary.csv", newline="") as fh:
            (row,) = list(csv.DictReader(fh))
        psnr[n] = float(row["psnr"])
    assert psnr[20] > psnr[0] + 1.0  # the hints give the photos' own colours
    again = tmp_path / "again"
    r = cli(
        "evaluate",
        photo_dir,
        "--hints",
        20,
        "--model",
        tiny_model_path,
        "--no-baselines",
        "-q",
        "--out",
        again,
    )
    assert (again / "per_image.csv").read_text().split("seconds")[0] == (
        (tmp_path / "eval20" / "per_image.csv").read_text().split("seconds")[0]
    )
    r = cli("evaluate", photo_dir, "--hints", "-1", "--model", tiny_model_path)
    assert r.code == EXIT_USAGE
