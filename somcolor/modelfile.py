"""The model file format: plain arrays in an ``.npz`` plus JSON metadata, never pickle.

A model file is a NumPy ``.npz`` archive. Its ``metadata`` entry is a 0-d unicode
array holding JSON (``format``, ``format_version``, the model's config, its training
summary, the somcolor version that wrote it); every other entry is a numeric array.
Files are read with ``allow_pickle=False``, so loading one runs no code, and written
atomically (temporary file, then rename).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from .exceptions import ModelFormatError
from .io import atomic_write

FORMAT = "somcolor-model"
FORMAT_VERSION = 1


def write(path, arrays: dict[str, np.ndarray], metadata: dict, *, overwrite: bool = True) -> Path:
    """Write ``arrays`` and ``metadata`` (JSON-serializable) to ``path`` atomically."""
    if "metadata" in arrays:
        raise ValueError("'metadata' is reserved for the JSON header")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    for key, value in payload.items():
        if value.dtype.kind not in "biuf":
            raise ValueError(f"array {key!r} has dtype {value.dtype}; only numbers are stored")
    header = np.array(json.dumps(meta, sort_keys=True))
    return atomic_write(
        path, lambda fh: np.savez_compressed(fh, metadata=header, **payload), overwrite=overwrite
    )


def read(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a model file: ``(arrays, metadata)``.

    Raises
    ------
    ModelFormatError
        If the file is missing, not an npz archive, holds pickled objects, lacks the
        somcolor header, or was written by a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such model file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a bare .npy array has no `with`
            raise ModelFormatError(f"{path}: not a somcolor model (a bare .npy array)")
        with loaded as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ModelFormatError:
        raise
    except ValueError as exc:
        # numpy says "pickled data" for any file that is neither .npz nor .npy; only
        # blame pickle for object arrays inside an archive or a real pickle stream.
        if "pickle" in str(exc) and not (zipfile.is_zipfile(path) or _starts_like_pickle(path)):
            raise ModelFormatError(f"{path}: not a somcolor model (not an .npz archive)") from None
        if "pickle" in str(exc):
            raise ModelFormatError(
                f"{path}: refused: the file holds pickled Python objects, which somcolor "
                "never loads"
            ) from None
        raise ModelFormatError(f"{path}: not a somcolor model ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ModelFormatError(f"{path}: not a somcolor model ({type(exc).__name__})") from None

    raw = arrays.pop("metadata", None)
    if raw is None or raw.dtype.kind != "U" or raw.ndim != 0:
        raise ModelFormatError(f"{path}: not a somcolor model (no metadata header)")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError:
        raise ModelFormatError(f"{path}: damaged model file (metadata is not JSON)") from None
    if not isinstance(meta, dict):
        raise ModelFormatError(f"{path}: not a somcolor model (metadata is not a JSON object)")
    if meta.get("format") != FORMAT:
        raise ModelFormatError(f"{path}: not a somcolor model (format is {meta.get('format')!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFormatError(f"{path}: damaged model file (format_version {version!r})")
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{path}: model format version {version} is newer than this somcolor reads "
            f"({FORMAT_VERSION}); upgrade somcolor"
        )
    for key, value in arrays.items():
        if value.dtype.kind not in "biuf":
            raise ModelFormatError(f"{path}: damaged model file (array {key!r} is {value.dtype})")
    return arrays, meta


def _starts_like_pickle(path: Path) -> bool:
    """Whether the file begins with a pickle protocol 2+ header (opcode PROTO, 0x80)."""
    with open(path, "rb") as fh:
        return fh.read(1) == b"\x80"
