"""Reading and writing image files: the first and last stage of the pipeline.

Reading is strict: a missing, empty, truncated or foreign file, or one with more
pixels than ``max_pixels``, raises :class:`~somcolor.exceptions.ImageReadError`
with a one-line message naming the file. Writing is atomic: the image goes to a
temporary file beside the target, which is then moved into place, so a crash or
Ctrl-C never leaves half a file behind, and an existing file is never replaced
unless asked. :func:`read_photo` also gives a file's EXIF and ICC metadata, which
:func:`write_image` can carry over to the output (archives keep their dates, camera
and description).
"""

from __future__ import annotations

import glob
import logging
import os
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .exceptions import ImageReadError, SomcolorError

log = logging.getLogger(__name__)

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

#: The formats :func:`write_image` stores EXIF and an ICC profile in (Pillow's names).
METADATA_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP")

#: EXIF tags of the first image directory carried over to an output: what describes
#: the photo (description, camera, dates, author, copyright, resolution), never what
#: describes the pixels' layout (a TIFF's size, bit depth, strips, compression), which
#: would be wrong for the output, nor the orientation (outputs are written upright).
#: The Exif and GPS sub-directories (exposure, original date, place) are kept whole.
EXIF_KEPT = frozenset(
    {
        0x010E,  # ImageDescription
        0x010F,  # Make
        0x0110,  # Model
        0x011A,  # XResolution
        0x011B,  # YResolution
        0x0128,  # ResolutionUnit
        0x0131,  # Software
        0x0132,  # DateTime
        0x013B,  # Artist
        0x013C,  # HostComputer
        0x8298,  # Copyright
        0x9C9B,  # XPTitle
        0x9C9C,  # XPComment
        0x9C9D,  # XPAuthor
        0x9C9E,  # XPKeywords
        0x9C9F,  # XPSubject
    }
)
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
#: Tags of the Exif sub-directory that describe the pixels rather than the photo.
_EXIF_IFD_DROPPED = frozenset({0xA002, 0xA003, 0xA005})  # PixelX/YDimension, Interop pointer


@dataclass(frozen=True)
class Photo:
    """An image file's pixels (upright) and the metadata worth keeping in its output."""

    pixels: np.ndarray  #: as :func:`read_image` returns them
    exif: bytes | None = None  #: descriptive EXIF (:data:`EXIF_KEPT`), orientation removed
    icc_profile: bytes | None = None  #: an RGB ICC profile (a gray one fits no RGB output)


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
    return read_photo(path, max_pixels=max_pixels).pixels


def read_photo(path, *, max_pixels: int = MAX_PIXELS) -> Photo:
    """Decode an image file like :func:`read_image`, keeping its EXIF and ICC metadata.

    The pixels are turned upright by the EXIF orientation, so the orientation tag is
    dropped from the EXIF kept; only descriptive tags are kept (:data:`EXIF_KEPT`), and
    an ICC profile only if it describes RGB colours. 16-bit RGB files (PNG, TIFF) are
    read at 8 bits, 16-bit gray ones whole.

    Raises
    ------
    ImageReadError
        As :func:`read_image`.
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
                icc = im.info.get("icc_profile")  # exif_transpose drops it
                exif = _descriptive_exif(im.getexif())
                upright = ImageOps.exif_transpose(im)
                return Photo(_to_array(upright, path), exif, _rgb_profile(icc))
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


def _descriptive_exif(exif: Image.Exif) -> bytes | None:
    """The EXIF tags of :data:`EXIF_KEPT` and the Exif and GPS directories, as bytes to
    save (None when none is left)."""
    kept = Image.Exif()
    for tag, value in exif.items():
        if tag in EXIF_KEPT:
            kept[tag] = value
    for pointer in (_EXIF_IFD, _GPS_IFD):
        ifd = exif.get_ifd(pointer)
        dropped = _EXIF_IFD_DROPPED if pointer == _EXIF_IFD else frozenset()
        entries = {tag: v for tag, v in ifd.items() if tag not in dropped}
        if entries:
            kept.get_ifd(pointer).update(entries)
            kept[pointer] = 0  # written as a pointer to the directory above
    return kept.tobytes() if len(kept) else None


def _rgb_profile(icc: bytes | None) -> bytes | None:
    """``icc`` if it is an ICC profile of an RGB colour space (bytes 16-19 of its header
    say which), else None."""
    if isinstance(icc, bytes) and len(icc) >= 128 and icc[16:20] == b"RGB ":
        return icc
    return None


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


def write_image(
    path,
    image: np.ndarray,
    *,
    overwrite: bool = False,
    quality: int | None = None,
    exif: bytes | None = None,
    icc_profile: bytes | None = None,
    tmp_dir=None,
) -> Path:
    """Write an image atomically; the format follows the file ending.

    The pixels go to a hidden temporary file in the target's folder (or in
    ``tmp_dir``, on the same file system), which is then moved (or hard-linked, when
    ``overwrite`` is false) into place: readers never see a partial file, and an
    interrupted write leaves nothing behind.

    ``quality`` (1-100) applies to JPEG and WebP files (Pillow's default otherwise);
    ``exif`` and ``icc_profile`` (e.g. a :class:`Photo`'s) are stored in JPEG, PNG, TIFF
    and WebP files (:data:`METADATA_FORMATS`) and left out of the others.

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
    options = {}
    if quality is not None and fmt in ("JPEG", "WEBP"):
        options["quality"] = int(quality)
    if fmt in METADATA_FORMATS:
        options.update({k: v for k, v in (("exif", exif), ("icc_profile", icc_profile)) if v})
    elif exif or icc_profile:
        log.debug("%s: %s files hold no EXIF or ICC profile; left out", path, fmt)
    pil = Image.fromarray(image)
    return atomic_write(
        path, lambda fh: pil.save(fh, format=fmt, **options), overwrite=overwrite, tmp_dir=tmp_dir
    )


def atomic_write(path, write, *, overwrite: bool = False, tmp_dir=None) -> Path:
    """Call ``write(fileobj)`` on a temporary file beside ``path`` (or in ``tmp_dir``, a
    folder on the same file system), then move it into place.

    Readers never see a partial file; an error or Ctrl-C leaves nothing behind. With
    ``overwrite`` false an existing file is never replaced (the final step is a hard
    link, which fails if the target appeared meanwhile). The file gets the usual
    permissions (0666 less the umask).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise SomcolorError(f"{path}: output exists (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".part", dir=path.parent if tmp_dir is None else tmp_dir
    )
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
