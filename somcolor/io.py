"""Reading and writing image files: the first and last stage of the pipeline.

Reading is strict: a missing, empty, truncated or foreign file, or one with more
pixels than ``max_pixels``, raises :class:`~somcolor.exceptions.ImageReadError`
with a one-line message naming the file. Writing is atomic: the image goes to a
temporary file beside the target, which is then moved into place, so a crash or
Ctrl-C never leaves half a file behind, and an existing file is never replaced
unless asked.
"""

from __future__ import annotations

import glob
import os
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .exceptions import ImageReadError, SomcolorError

#: Largest image read by default: 100 megapixels (a 12 MP photo fits 8 times over).
#: Larger files are refused before their pixels are decoded (decompression bombs).
MAX_PIXELS = 100_000_000

#: The image formats read, as Pillow names them: by the CLI (:func:`read_image`) and by
#: the web server's uploads alike. Pillow opens many more (EPS, PSD, ICNS, ...); only
#: these common, well-fuzzed ones are let in. ``MPO`` is the JPEG variant many cameras
#: write (Pillow reads it through its JPEG plugin).
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")

#: File endings treated as images when a folder is listed.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"})


def read_image(path, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file into an array, honouring its EXIF orientation.

    Parameters
    ----------
    path : str or Path
        The image file, in one of :data:`IMAGE_FORMATS` (judged by content, not name).
    max_pixels : int
        Refuse images with more pixels than this, before decoding them.

    Returns
    -------
    ndarray
        ``(H, W)`` for grayscale, ``(H, W, 3)`` for RGB, ``(H, W, 4)`` for RGBA;
        ``uint8``, or ``uint16`` for 16-bit grayscale files.

    Raises
    ------
    ImageReadError
        With a one-line message naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if not path.is_file():
        raise ImageReadError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # We apply our own pixel limit below; Pillow's bomb warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=IMAGE_FORMATS) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise ImageReadError(
                        f"{path}: image too large: {width}x{height} = {width * height} pixels, "
                        f"limit is {max_pixels}"
                    )
                im.load()
                im = ImageOps.exif_transpose(im)
                return _to_array(im, path)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        formats = ", ".join(IMAGE_FORMATS)
        raise ImageReadError(
            f"{path}: not an image file of a format read here ({formats})"
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{path}: image too large ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageReadError(f"{path}: truncated or corrupt image ({_one_line(exc)})") from None


def _to_array(im: Image.Image, path: Path) -> np.ndarray:
    """Convert a loaded Pillow image to uint8 (or uint16 gray) arrays of 2, 3 or 4 channels."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(im, dtype=np.uint16)
    if mode in ("I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0 and hi <= 65535:
            return arr.astype(np.uint16)
        raise ImageReadError(f"{path}: {mode}-mode image with values outside 0..65535")
    if mode in ("1", "L"):
        return np.asarray(im.convert("L"))
    if mode in ("LA", "La", "PA", "RGBA", "RGBa") or (mode == "P" and "transparency" in im.info):
        return np.asarray(im.convert("RGBA"))
    return np.asarray(im.convert("RGB"))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def read_json(path, what: str, *, max_bytes: int | None = None):
    """The JSON in the file ``path``; an unreadable, oversized or malformed file raises
    one :class:`SomcolorError` line naming the file and ``what`` it should be (e.g.
    ``"hints file"``).
    """
    import json

    path = Path(path)
    try:
        if max_bytes is not None and (size := path.stat().st_size) > max_bytes:
            raise SomcolorError(f"{path}: {size} bytes, a {what} may have {max_bytes}")
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SomcolorError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = str(exc).splitlines()[0]
        raise SomcolorError(f"{path}: not a JSON {what} ({msg})") from None
    except RecursionError:
        raise SomcolorError(f"{path}: not a JSON {what} (nested too deeply)") from None


def write_image(path, image: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write an image atomically; the format follows the file ending.

    The pixels go to a hidden temporary file in the target's folder, which is then
    moved (or hard-linked, when ``overwrite`` is false) into place: readers never see
    a partial file, and an interrupted write leaves nothing behind.

    Raises
    ------
    SomcolorError
        If the target exists and ``overwrite`` is false, or the ending is unknown.
    """
    path = Path(path)
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise SomcolorError(f"{path}: expected uint8 pixels to write, got {image.dtype}")
    # PNG, JPEG, BMP, GIF and PPM first: registered_extensions() imports every Pillow
    # plugin (about 0.1 s, a twentieth of a cold `somcolor colorize`).
    Image.preinit()
    fmt = Image.EXTENSION.get(path.suffix.lower())
    fmt = fmt or Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise SomcolorError(f"{path}: unknown image file ending {path.suffix!r}")
    if fmt == "JPEG" and image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    pil = Image.fromarray(image)
    return atomic_write(path, lambda fh: pil.save(fh, format=fmt), overwrite=overwrite)


def atomic_write(path, write, *, overwrite: bool = False) -> Path:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then move it into place.

    Readers never see a partial file; an error or Ctrl-C leaves nothing behind. With
    ``overwrite`` false an existing file is never replaced (the final step is a hard
    link, which fails if the target appeared meanwhile). The file gets the usual
    permissions (0666 less the umask).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise SomcolorError(f"{path}: output exists (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o666 & ~_umask())
        _move_into_place(tmp, path, overwrite)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _move_into_place(tmp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if path appeared meanwhile: never clobbers
    except FileExistsError:
        raise SomcolorError(f"{path}: output exists (use --force to overwrite)") from None
    except OSError:  # file systems without hard links
        if path.exists():
            raise SomcolorError(f"{path}: output exists (use --force to overwrite)") from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def find_images(inputs: Iterable[str | os.PathLike], *, recursive: bool = False) -> list[Path]:
    """Expand files, folders and glob patterns into a list of image paths.

    A folder contributes the files with an image ending (its whole tree with
    ``recursive``); a pattern contributes its matches; an existing file is kept as
    given whatever its ending. Inputs that match nothing are kept as given, so that
    reading them reports "no such file" for each. Order is preserved and
    duplicates (one file however it is spelled) are dropped.
    """
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            walker = p.rglob("*") if recursive else p.iterdir()
            found.extend(
                sorted(f for f in walker if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            )
        elif p.exists():
            found.append(p)
        elif glob.has_magic(str(item)):
            matches = [Path(m) for m in sorted(glob.glob(str(item), recursive=recursive))]
            files = [m for m in matches if m.is_file()]
            found.extend(files or [p])
        else:
            found.append(p)
    unique: dict[Path, Path] = {}
    for f in found:
        unique.setdefault(f.resolve(), f)
    return list(unique.values())
