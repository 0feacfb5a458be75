"""Tests for somcolor.io: strict reading, atomic writing, and finding image files."""

import os
import stat

import numpy as np
import pytest
import tifffile  # scikit-image's dependency, so in every install
from PIL import Image

from somcolor.exceptions import ImageReadError, SomcolorError
from somcolor.io import (
    IMAGE_FORMATS,
    atomic_write,
    find_images,
    read_image,
    read_photo,
    write_image,
)


def noise(shape, dtype=np.uint8, seed=0):
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(0, info.max, shape, endpoint=True, dtype=dtype)


def save(path, array, **kw):
    Image.fromarray(array).save(path, **kw)
    return path


def assert_one_line_error(excinfo, path):
    msg = str(excinfo.value)
    assert str(path) in msg
    assert "\n" not in msg


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


# --- read_image: formats ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "suffix"),
    [((5, 7), ".png"), ((5, 7, 3), ".png"), ((5, 7, 4), ".png"), ((5, 7, 3), ".bmp")],
    ids=["gray-png", "rgb-png", "rgba-png", "rgb-bmp"],
)
def test_read_image_returns_lossless_pixels_exactly(tmp_path, shape, suffix):
    img = noise(shape)
    path = save(tmp_path / f"img{suffix}", img)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == shape
    np.testing.assert_array_equal(out, img)


def test_read_image_keeps_16_bit_gray(tmp_path):
    img = noise((6, 4), np.uint16)
    img[0, 0], img[0, 1] = 0, 65535
    path = save(tmp_path / "deep.png", img)
    out = read_image(path)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize("shape", [(16, 24), (16, 24, 3)], ids=["gray", "rgb"])
def test_read_image_decodes_jpeg(tmp_path, shape):
    img = np.full(shape, 100, dtype=np.uint8)
    img[:8] = 200
    path = save(tmp_path / "photo.jpg", img, quality=95)
    out = read_image(path)
    assert out.shape == shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img).mean() < 3


def test_read_image_honours_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "portrait.jpg"
    Image.fromarray(np.zeros((10, 30, 3), np.uint8)).save(path, exif=exif)
    assert read_image(path).shape == (30, 10, 3)


def test_read_image_gives_rgba_for_palette_with_transparency(tmp_path):
    im = Image.fromarray(noise((4, 4, 3))).convert("P")
    im.info["transparency"] = 0
    path = tmp_path / "pal.png"
    im.save(path, transparency=0)
    assert read_image(path).shape == (4, 4, 4)


def test_read_image_gives_rgb_for_plain_palette(tmp_path):
    path = tmp_path / "pal.gif"
    Image.fromarray(noise((4, 4, 3))).convert("P").save(path)
    assert read_image(path).shape == (4, 4, 3)


def test_read_image_gives_0_or_255_for_bilevel(tmp_path):
    path = tmp_path / "bits.png"
    Image.fromarray(np.eye(4, dtype=bool)).save(path)
    out = read_image(path)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.eye(4) * 255)


def test_read_image_does_not_modify_the_file(tmp_path):
    path = save(tmp_path / "keep.jpg", noise((8, 8, 3)))
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    read_image(path)
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.jpg"]


# --- read_image: errors -----------------------------------------------------------------


def test_missing_file_is_an_image_read_error(tmp_path):
    path = tmp_path / "nope.png"
    with pytest.raises(ImageReadError, match="no such file") as excinfo:
        read_image(path)
    assert_one_line_error(excinfo, path)
    assert isinstance(excinfo.value, SomcolorError) and isinstance(excinfo.value, OSError)


def test_directory_is_an_image_read_error(tmp_path):
    folder = tmp_path / "pics.png"
    folder.mkdir()
    with pytest.raises(ImageReadError, match="not a regular file") as excinfo:
        read_image(folder)
    assert_one_line_error(excinfo, folder)


def test_zero_byte_file_is_an_image_read_error(tmp_path):
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(ImageReadError, match="empty") as excinfo:
        read_image(path)
    assert_one_line_error(excinfo, path)


def test_text_file_named_png_is_an_image_read_error(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are not pixels\nat all\n")
    with pytest.raises(ImageReadError, match="not an image") as excinfo:
        read_image(path)
    assert_one_line_error(excinfo, path)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_file_is_an_image_read_error(tmp_path, suffix):
    path = save(tmp_path / f"whole{suffix}", noise((64, 64, 3)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated or corrupt") as excinfo:
        read_image(path)
    assert_one_line_error(excinfo, path)


def test_image_over_the_pixel_limit_is_refused(tmp_path):
    path = save(tmp_path / "big.png", noise((10, 10)))
    with pytest.raises(ImageReadError, match="too large") as excinfo:
        read_image(path, max_pixels=99)
    assert_one_line_error(excinfo, path)
    assert read_image(path, max_pixels=100).shape == (10, 10)


# --- write_image and atomic_write ---------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 6), (5, 6, 3), (5, 6, 4)])
def test_write_image_round_trips_png(tmp_path, shape):
    img = noise(shape)
    path = write_image(tmp_path / "out.png", img)
    np.testing.assert_array_equal(read_image(path), img)
    assert leftovers(tmp_path) == []


def test_write_image_drops_alpha_for_jpeg(tmp_path):
    path = write_image(tmp_path / "out.jpg", np.full((4, 4, 4), 128, np.uint8))
    assert read_image(path).shape == (4, 4, 3)


def test_write_image_creates_missing_folders(tmp_path):
    path = write_image(tmp_path / "a" / "b" / "out.png", noise((2, 2)))
    assert path.is_file()


def test_write_image_gives_the_usual_permissions(tmp_path):
    path = write_image(tmp_path / "out.png", noise((2, 2)))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_write_image_refuses_an_existing_file(tmp_path):
    path = tmp_path / "out.png"
    path.write_bytes(b"precious")
    with pytest.raises(SomcolorError, match="exists"):
        write_image(path, noise((3, 3)))
    assert path.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []


def test_write_image_overwrite_replaces_the_file(tmp_path):
    path = write_image(tmp_path / "out.png", noise((3, 3), seed=1))
    new = noise((3, 3), seed=2)
    write_image(path, new, overwrite=True)
    np.testing.assert_array_equal(read_image(path), new)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_write_image_rejects_unknown_ending(tmp_path):
    with pytest.raises(SomcolorError, match="unknown image file ending"):
        write_image(tmp_path / "out.xyz", noise((3, 3)))
    assert list(tmp_path.iterdir()) == []


def test_write_image_rejects_non_uint8_pixels(tmp_path):
    with pytest.raises(SomcolorError, match="uint8"):
        write_image(tmp_path / "out.png", np.zeros((3, 3), np.float32))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path, error):
    def write(fh):
        fh.write(b"half a file")
        raise error("boom")

    with pytest.raises(error):
        atomic_write(tmp_path / "out.bin", write)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_the_old_file_when_an_overwrite_fails(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def write(fh):
        fh.write(b"new but incomplete")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, write, overwrite=True)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_atomic_write_never_clobbers_a_file_that_appears_meanwhile(tmp_path):
    path = tmp_path / "out.bin"

    def write(fh):
        path.write_bytes(b"someone else's")  # another process wins the race
        fh.write(b"ours")

    with pytest.raises(SomcolorError, match="exists"):
        atomic_write(path, write)
    assert path.read_bytes() == b"someone else's"
    assert leftovers(tmp_path) == []


def test_atomic_write_writes_the_bytes(tmp_path):
    path = atomic_write(tmp_path / "out.bin", lambda fh: fh.write(b"\x00\x01payload"))
    assert path.read_bytes() == b"\x00\x01payload"
    assert leftovers(tmp_path) == []


# --- find_images ------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    for rel in ["a.png", "b.JPG", "notes.txt", "sub/c.png", "sub/deeper/d.tif", "sub/e.md"]:
        f = tmp_path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"x")
    return tmp_path


def test_find_images_lists_a_folder_by_image_ending(tree):
    assert find_images([tree]) == [tree / "a.png", tree / "b.JPG"]


def test_find_images_recursive_walks_the_whole_tree(tree):
    found = find_images([tree], recursive=True)
    assert set(found) == {
        tree / "a.png",
        tree / "b.JPG",
        tree / "sub/c.png",
        tree / "sub/deeper/d.tif",
    }
    assert found == sorted(found)


def test_find_images_keeps_a_named_file_whatever_its_ending(tree):
    assert find_images([tree / "notes.txt"]) == [tree / "notes.txt"]


def test_find_images_expands_globs(tree):
    assert find_images([str(tree / "*.png")]) == [tree / "a.png"]
    found = find_images([str(tree / "**" / "*.png")], recursive=True)
    assert found == [tree / "a.png", tree / "sub/c.png"]


def test_find_images_keeps_missing_inputs_so_reading_reports_them(tree):
    missing = tree / "gone.png"
    pattern = str(tree / "*.webp")
    assert find_images([missing, pattern]) == [missing, tree / "*.webp"]
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(find_images([missing])[0])


def test_find_images_keeps_order_and_drops_duplicates(tree):
    found = find_images([tree / "b.JPG", tree, str(tree / "a.*")])
    assert found == [tree / "b.JPG", tree / "a.png"]


def test_find_images_of_nothing_is_empty():
    assert find_images([]) == []


# --- read_image: formats outside the list -------------------------------------------------


@pytest.mark.parametrize("fmt", ["PPM", "TGA", "ICO", "PCX", "SGI"])
def test_formats_outside_the_list_are_refused_whatever_the_name(tmp_path, fmt):
    """Pillow reads these; the CLI and the web server read only IMAGE_FORMATS."""
    path = tmp_path / "photo.png"
    Image.fromarray(noise((16, 16, 3))).save(path, format=fmt)
    with pytest.raises(ImageReadError, match="not an image file of a format read here") as info:
        read_image(path)
    assert_one_line_error(info, path)
    assert fmt not in IMAGE_FORMATS


def test_the_web_server_accepts_the_same_formats():
    pytest.importorskip("python_multipart", reason="the web extra is not installed")
    from somcolor.web import uploads

    assert uploads.IMAGE_FORMATS is IMAGE_FORMATS


# --- read_photo and write_image: metadata -------------------------------------------------


def test_read_photo_keeps_descriptive_exif_but_not_a_tiffs_layout_or_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the pixels come upright, so it must go
    exif[0x010E] = "a scan"
    exif[0x0110] = "Epson V600"
    path = save(tmp_path / "scan.tif", noise((10, 30, 3)), exif=exif)

    photo = read_photo(path)

    kept = Image.Exif()
    kept.load(photo.exif)
    assert photo.pixels.shape == (30, 10, 3)
    assert dict(kept) == {0x010E: "a scan", 0x0110: "Epson V600"}  # no width, strips, bits


def test_read_photo_of_a_file_without_metadata_has_none(tmp_path):
    photo = read_photo(save(tmp_path / "plain.png", noise((4, 5))))

    assert (photo.exif, photo.icc_profile) == (None, None)


def test_read_photo_reads_16_bit_rgb_at_8_bits(tmp_path):
    rgb16 = noise((6, 7, 3), np.uint16)
    path = tmp_path / "deep.tif"
    tifffile.imwrite(path, rgb16, photometric="rgb")

    out = read_photo(path).pixels

    assert out.dtype == np.uint8 and out.shape == (6, 7, 3)
    assert np.abs(out.astype(int) - (rgb16 >> 8)).max() <= 1


def test_write_image_keeps_exif_and_icc_where_the_format_holds_them(tmp_path):
    exif = Image.Exif()
    exif[0x010E] = "kept"
    icc = b"\x00" * 16 + b"RGB " + b"\x00" * 108  # only carried, never parsed
    for name in ("a.jpg", "a.png", "a.tif", "a.webp", "a.bmp"):
        write_image(tmp_path / name, noise((4, 5, 3)), exif=exif.tobytes(), icc_profile=icc)
        with Image.open(tmp_path / name) as im:
            holds = name != "a.bmp"
            assert (im.getexif().get(0x010E) == "kept") == holds, name
            assert (im.info.get("icc_profile") == icc) == holds, name


def test_write_image_quality_applies_to_jpeg(tmp_path):
    img = noise((64, 64, 3))
    low = write_image(tmp_path / "low.jpg", img, quality=10).stat().st_size
    high = write_image(tmp_path / "high.jpg", img, quality=95).stat().st_size
    png = write_image(tmp_path / "a.png", img, quality=10).read_bytes()

    assert low < high
    assert png == write_image(tmp_path / "b.png", img).read_bytes()


def test_write_image_puts_its_temporary_file_in_tmp_dir(tmp_path, monkeypatch):
    scratch, out = tmp_path / "scratch", tmp_path / "out"
    scratch.mkdir()
    seen = []
    real_save = Image.Image.save

    def save_and_look(self, fp, *args, **kwargs):
        seen.append(sorted(p.name for p in scratch.iterdir()))
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save_and_look)
    write_image(out / "x.png", noise((3, 3)), tmp_dir=scratch)

    assert len(seen) == 1 and len(seen[0]) == 1 and seen[0][0].startswith(".x.png.")
    assert list(scratch.iterdir()) == [] and (out / "x.png").is_file()
