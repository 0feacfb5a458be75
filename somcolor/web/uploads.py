"""Receiving uploads: streamed to a private folder, size-limited, identified by content.

A ``multipart/form-data`` body is parsed as it arrives (python-multipart's streaming
parser): the one file part goes straight to a file with a generated name in the
server's private folder, the few text fields stay in memory. Nothing of the client's
file name is used for storage, and the upload is cut off with 413 as soon as it
passes the size limit, before the rest is read, and with 408 when the client stops
sending for longer than the read deadline or takes longer than the total one.
(FastAPI's ``UploadFile`` would spool large files to the system's shared temp folder,
and only after the whole body is in.)

What a file *is* is decided by its content only: Pillow, limited to
:data:`somcolor.io.IMAGE_FORMATS` (the list the CLI reads too), for photos;
:func:`somcolor.video.is_video` for videos.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from ..io import IMAGE_FORMATS

#: Leading bytes of those formats: a file that starts like one but does not decode is
#: reported as a corrupt photo rather than as a foreign type.
_IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
)

#: ISO-BMFF brands of still images (HEIF, AVIF): ``ftyp`` alone does not make a video.
_STILL_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"})

#: Longest text field, in bytes; fields named in :data:`FIELD_BYTES` may be longer.
MAX_FIELD_BYTES = 1024
#: Longest hints field (JSON): 100 hints written loosely take about 8 KiB.
MAX_HINTS_BYTES = 32 * 1024
#: Fields allowed more than :data:`MAX_FIELD_BYTES`.
FIELD_BYTES = {"hints": MAX_HINTS_BYTES}
#: Bytes allowed in a request beyond its files (boundaries, part headers, fields).
FORM_OVERHEAD = 64 * 1024 + MAX_HINTS_BYTES


class UploadError(Exception):
    """A request the server refuses: an HTTP status, a short code and a message for
    people; ``retry_after`` (seconds) is sent as ``Retry-After`` (429s get 5 without it)."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclass
class Upload:
    """A received file: where it lies (a generated name) and what came with it."""

    path: Path
    size: int
    filename: str = "upload"  #: the client's name made safe, for download names only
    fields: dict[str, str] = field(default_factory=dict)
    #: Other file parts received (``reference``), by field name, under generated names.
    files: dict[str, Path] = field(default_factory=dict)
    #: Their client names made safe, by field name (for messages only).
    names: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        """Delete the file and the other files received with it."""
        self.path.unlink(missing_ok=True)
        for path in self.files.values():
            path.unlink(missing_ok=True)


def safe_stem(name: str | None, default: str = "upload") -> str:
    """A download-safe stem of a client's file name: ASCII letters, digits, ``._-``.

    >>> safe_stem("../../etc/passwd")
    'passwd'
    >>> safe_stem("Grand-mère 1931.JPG")
    'Grand-m_re_1931'
    >>> safe_stem("")
    'upload'
    """
    base = re.split(r"[\\/]", name or "")[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:80]
    return stem or default


def new_file(folder: Path, suffix: str = "") -> tuple[int, Path]:
    """Create an empty file with a random name in ``folder``, readable by us only."""
    while True:
        path = folder / f"{secrets.token_hex(16)}{suffix}"
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), path
        except FileExistsError:  # pragma: no cover - 128 random bits
            continue


def _too_large(max_bytes: int) -> UploadError:
    return UploadError(
        413, "upload_too_large", f"the file is larger than the limit of {_human(max_bytes)}"
    )


def _human(n: int) -> str:
    """
    >>> _human(100 * 2**20), _human(1536)
    ('100 MiB', '1.5 KiB')
    """
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


class _FormReader:
    """python-multipart callbacks: file parts to disk, text fields to memory.

    The ``file`` part goes to ``fd``; each other file part named in ``files`` to a new
    file in ``folder`` (kept in :attr:`files`). All the files together may hold
    ``max_bytes``.
    """

    def __init__(
        self, fd: int, max_bytes: int, allowed: frozenset[str], folder: Path, files=frozenset()
    ):
        self.fd, self.max_bytes, self.allowed = fd, max_bytes, allowed
        self.folder, self.file_parts = folder, frozenset(files)
        self.size = 0
        self.filename: str | None = None
        self.fields: dict[str, str] = {}
        self.files: dict[str, Path] = {}
        self.names: dict[str, str] = {}
        self.sizes: dict[str, int] = {}
        self._fds: dict[str, int] = {"file": fd}
        self._header_name = self._header_value = b""
        self._disposition = b""
        self._part: str | None = None  # "file" or a field name
        self._value = bytearray()

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._part = None
        self._value.clear()

    def on_header_field(self, data, start, end) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data, start, end) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        expected = "expected " + ", ".join(sorted(self.allowed | self.file_parts | {"file"}))
        if name in self.file_parts:
            if name in self.files:
                raise UploadError(400, "bad_form", f"form field {name!r} given twice")
            if b"filename" not in options:
                raise UploadError(400, "bad_form", f"the {name!r} field must be a file")
            self._fds[name], self.files[name] = new_file(self.folder)
            self.names[name] = safe_stem(options[b"filename"].decode("utf-8", "replace"))
            self.sizes[name] = 0
        elif name == "file":
            if self.filename is not None:
                raise UploadError(400, "bad_form", "send one file per request")
            if b"filename" not in options:
                raise UploadError(400, "bad_form", "the 'file' field must be a file")
            self.filename = options[b"filename"].decode("utf-8", "replace")
        elif name not in self.allowed:
            raise UploadError(400, "bad_form", f"unexpected form field {name[:40]!r}, {expected}")
        elif name in self.fields:
            raise UploadError(400, "bad_form", f"form field {name!r} given twice")
        self._part = name

    def on_part_data(self, data, start, end) -> None:
        chunk = data[start:end]
        fd = self._fds.get(self._part)
        if fd is not None:
            if self._part == "file":
                self.size += len(chunk)
            else:
                self.sizes[self._part] += len(chunk)
            if self.size + sum(self.sizes.values()) > self.max_bytes:
                raise _too_large(self.max_bytes)
            # A plain write from the event loop: the chunks are small (tens of KiB) and
            # land in the page cache, so this costs microseconds.
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        else:
            self._value += chunk
            if len(self._value) > FIELD_BYTES.get(self._part, MAX_FIELD_BYTES):
                raise UploadError(400, "bad_form", f"form field {self._part!r} is too long")

    def on_part_end(self) -> None:
        if self._part is not None and self._part not in self._fds:
            self.fields[self._part] = self._value.decode("utf-8", "replace").strip()

    def close_files(self) -> None:
        """Close the other file parts' descriptors (the ``file`` part's is the caller's)."""
        for name, fd in list(self._fds.items()):
            if name != "file":
                os.close(fd)
                del self._fds[name]

    def discard_files(self) -> None:
        for path in self.files.values():
            path.unlink(missing_ok=True)


async def _chunks(request, chunk_timeout_s: float, total_timeout_s: float):
    """The request body's chunks; 408 when one takes longer than ``chunk_timeout_s`` to
    come or the whole body longer than ``total_timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total_timeout_s
    stream = request.stream().__aiter__()
    while True:
        left = deadline - loop.time()
        wait = min(chunk_timeout_s, left)
        try:
            if wait <= 0:
                raise TimeoutError
            chunk = await asyncio.wait_for(anext(stream), None if wait == float("inf") else wait)
        except StopAsyncIteration:
            return
        except TimeoutError:
            await stream.aclose()
            if wait < chunk_timeout_s:
                message = f"the upload took longer than the limit of {total_timeout_s:g} s"
            else:
                message = f"the upload stalled: nothing received for {chunk_timeout_s:g} s"
            raise UploadError(408, "upload_timeout", message) from None
        yield chunk


async def receive_upload(
    request,
    folder: Path,
    *,
    max_bytes: int,
    fields=(),
    files=(),
    chunk_timeout_s: float = float("inf"),
    total_timeout_s: float = float("inf"),
) -> Upload:
    """Stream a multipart upload (one ``file`` part, text ``fields``, optional other
    file parts named in ``files``) into ``folder``.

    Raises
    ------
    UploadError
        415 when the body is not ``multipart/form-data``, 413 when the file is larger
        than ``max_bytes`` (from ``Content-Length`` before reading, or as it arrives),
        408 when no byte comes for ``chunk_timeout_s`` seconds or the body takes
        longer than ``total_timeout_s``, 400 for a malformed form, a missing or empty
        file, or unknown fields. ``max_bytes`` bounds all the files together.
    """
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise UploadError(
            415, "not_multipart", "send the file as multipart/form-data in a field named 'file'"
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + FORM_OVERHEAD:
        raise _too_large(max_bytes)

    fd, path = new_file(folder)
    reader = _FormReader(fd, max_bytes, frozenset(fields), Path(folder), files)
    ok = False
    try:
        try:
            parser = MultipartParser(params[b"boundary"], reader.callbacks())
        except (FormParserError, ValueError):
            raise UploadError(400, "bad_form", "malformed multipart boundary") from None
        received = 0
        async for chunk in _chunks(request, chunk_timeout_s, total_timeout_s):
            received += len(chunk)
            if received > max_bytes + FORM_OVERHEAD:
                raise _too_large(max_bytes)
            parser.write(chunk)
        parser.finalize()
        ok = True
    except FormParserError:
        raise UploadError(400, "bad_form", "malformed multipart form data") from None
    except OSError as exc:  # e.g. the disk is full
        raise UploadError(
            503, "no_storage", f"the server cannot store the upload now ({exc.strerror})"
        ) from None
    finally:
        os.close(fd)
        reader.close_files()
        if not ok:
            path.unlink(missing_ok=True)
            reader.discard_files()
    empty = [name for name, size in reader.sizes.items() if size == 0]
    if reader.filename is None or reader.size == 0 or empty:
        path.unlink(missing_ok=True)
        reader.discard_files()
    if reader.filename is None:
        raise UploadError(400, "no_file", "no file received: send it in a field named 'file'")
    if reader.size == 0:
        raise UploadError(400, "empty_file", "the file is empty (0 bytes)")
    if empty:
        raise UploadError(400, "empty_file", f"the {empty[0]!r} file is empty (0 bytes)")
    stem = safe_stem(reader.filename)
    return Upload(path, reader.size, stem, reader.fields, reader.files, reader.names)


# ---------------------------------------------------------------------------- content
def image_size(path: Path, max_pixels: int) -> tuple[int, int] | None:
    """``(width, height)`` if ``path`` holds a photo of an accepted format, else None.

    Raises
    ------
    UploadError
        413 for more than ``max_pixels`` pixels; 422 for a file that starts like an
        accepted photo format but cannot be decoded.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=IMAGE_FORMATS) as im:
                width, height = im.size
    except Image.DecompressionBombError:
        raise _too_many_pixels(None, max_pixels) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        with open(path, "rb") as fh:
            head = fh.read(16)
        if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
            raise UploadError(
                422, "corrupt_image", "the photo is damaged or truncated and cannot be read"
            ) from None
        return None
    if width * height > max_pixels:
        raise _too_many_pixels((width, height), max_pixels)
    return width, height


def _too_many_pixels(size, max_pixels: int) -> UploadError:
    what = f"{size[0]}x{size[1]} = {size[0] * size[1]:,} pixels" if size else "too many pixels"
    return UploadError(
        413, "too_many_pixels", f"the photo is too large: {what}, the limit is {max_pixels:,}"
    )


def looks_like_video(path: Path) -> bool:
    """Whether the file starts like an MP4/MOV, Matroska/WebM or AVI container.

    Only used to word the error for a file that is not a readable video: a damaged
    video (422) rather than a foreign type (415).
    """
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[4:8] == b"ftyp":
        return head[8:12] not in _STILL_BRANDS
    return head.startswith(b"\x1a\x45\xdf\xa3") or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")


async def receive_json(
    request,
    *,
    max_bytes: int,
    chunk_timeout_s: float = float("inf"),
    total_timeout_s: float = float("inf"),
) -> str:
    """A small ``application/json`` request body as text, read within the bounds.

    Raises
    ------
    UploadError
        415 when the body is not declared ``application/json``, 413 past ``max_bytes``
        (from ``Content-Length`` before reading, or as it arrives), 408 past the read
        deadlines, 400 when it is not UTF-8.
    """
    kind, _ = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"application/json":
        raise UploadError(415, "not_json", "send the request body as application/json")
    declared = request.headers.get("content-length", "")
    too_large = UploadError(
        413, "body_too_large", f"the request body is larger than the limit of {_human(max_bytes)}"
    )
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    body = bytearray()
    async for chunk in _chunks(request, chunk_timeout_s, total_timeout_s):
        body += chunk
        if len(body) > max_bytes:
            raise too_large
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise UploadError(400, "bad_json", "the request body is not UTF-8 text") from None
