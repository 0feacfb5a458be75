"""The model file format: plain arrays in an ``.npz`` plus JSON metadata, never pickle.

A model file is a NumPy ``.npz`` archive. Its ``metadata`` entry is a 0-d unicode
array holding JSON (``format``, ``format_version``, the model's config, its training
summary, the somcolor version that wrote it); every other entry is a numeric array
named as a model writes it (:data:`MEMBER_NAMES`). Files are written atomically
(temporary file, then rename).

Files are read strictly, entry by entry, without :func:`numpy.load`: each entry's
name and ``.npy`` header (dtype, shape) are checked against the archive's directory
before anything is decompressed, so loading one runs no code (no object arrays, so
no pickle) and reads at most :data:`MAX_MODEL_BYTES`, at most :data:`MAX_INFLATION`
times the file's size. The metadata is JSON without ``NaN`` or ``Infinity``, with
finite numbers and integers that fit in 64 bits.

:func:`read` checks the container (an archive of numbers with a somcolor header);
:func:`som_model` checks a SOM + MLP model's contents (its config against
:mod:`somcolor.params`, the codebook, the network's shapes) and gives the arrays
:class:`~somcolor.predict.Predictor` is built from.
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .exceptions import ModelFormatError
from .io import atomic_write
from .params import DEFAULTS, TUPLE_PARAMS

FORMAT = "somcolor-model"
FORMAT_VERSION = 1

#: The most bytes a model file may take, on disk and once its arrays are read: 256 MiB
#: (the bundled models take under 100 KiB, a codebook CNN of the default width 640 KiB).
MAX_MODEL_BYTES = 256 << 20
#: How many times its own size a file's arrays may take once decompressed: 100 (float
#: weights compress about 1.1 times, a run of zeros about 1000 times) ...
MAX_INFLATION = 100
#: ... except that arrays of up to 1 MiB in all are always allowed (tiny files compress well).
SMALL_MODEL_BYTES = 1 << 20
#: The most characters the JSON metadata may have: 1 Mi (the default model's has 1.5 K).
MAX_METADATA_CHARS = 1 << 20
#: The most entries, dimensions per array and MLP layers a model file may have.
MAX_MEMBERS, MAX_NDIM, MAX_LAYERS = 1024, 8, 100
#: The most reference pixels a model adapted with a reference match may keep.
MAX_MATCH_PIXELS = 1 << 16
#: Integers in a model's config are whole numbers from 0 to this (what a numpy seed may be).
MAX_CONFIG_INT = 2**32 - 1
#: The entries a model file may hold: ``metadata``; a SOM + MLP model's arrays
#: (:meth:`somcolor.predict.Predictor.model_arrays`); a codebook CNN's SOM and class
#: weights; a CNN's weights, ``net.<state_dict name>``.
MEMBER_NAMES = re.compile(
    r"metadata|som_codebook|som_mean|som_scale|class_weights|mlp_classes|mlp_mean|mlp_scale"
    r"|(?:mlp|match)_(?:coef|intercept)_(?:0|[1-9][0-9]?)|match_root|match_L|match_codebook"
    r"|net(?:\.[A-Za-z0-9_]+)+"
)
_NPY_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def write(path, arrays: dict[str, np.ndarray], metadata: dict, *, overwrite: bool = True) -> Path:
    """Write ``arrays`` and ``metadata`` (JSON-serializable) to ``path`` atomically.

    Raises ValueError for what :func:`read` would refuse: a name outside
    :data:`MEMBER_NAMES`, an array that is not numbers, more than :data:`MAX_MODEL_BYTES`.
    """
    if "metadata" in arrays:
        raise ValueError("'metadata' is reserved for the JSON header")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    for key, value in payload.items():
        if not MEMBER_NAMES.fullmatch(key):
            raise ValueError(f"array name {key!r} is not one a model file holds")
        if value.dtype.kind not in "biuf":
            raise ValueError(f"array {key!r} has dtype {value.dtype}; only numbers are stored")
    if sum(value.nbytes for value in payload.values()) > MAX_MODEL_BYTES:
        raise ValueError(f"the arrays take more than {MAX_MODEL_BYTES >> 20} MiB")
    header = np.array(json.dumps(meta, sort_keys=True, allow_nan=False))
    return atomic_write(
        path, lambda fh: np.savez_compressed(fh, metadata=header, **payload), overwrite=overwrite
    )


def read(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a model file: ``(arrays, metadata)``.

    Raises
    ------
    ModelFormatError
        If the file is missing or a directory, is not an npz archive, holds pickled
        objects, unknown entries or more bytes than its limits allow, lacks the
        somcolor header, holds metadata that is not strict JSON, or was written by a
        newer format version. Its message is one line that starts with the path.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelFormatError(f"{path}: is a directory, not a model file")
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such model file")
    try:
        with open(path, "rb") as fh:
            arrays = _read_archive(fh)
        meta = _read_metadata(arrays.pop("metadata", None))
    except _Refused as exc:
        raise ModelFormatError(f"{path}: {exc}") from None
    except (OSError, EOFError, ValueError, RuntimeError, zipfile.BadZipFile, zlib.error) as exc:
        # RuntimeError: an encrypted entry (NotImplementedError: an unknown compression).
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise ModelFormatError(f"{path}: damaged model file ({reason})") from None
    return arrays, meta


class _Refused(Exception):
    """Why a file is refused (:func:`read` puts the path in front)."""


class _Damaged(_Refused):
    """A damaged model file: ``damaged model file (<reason>)``."""

    def __str__(self) -> str:
        return f"damaged model file ({self.args[0]})"


def _read_archive(fh) -> dict[str, np.ndarray]:
    """Every entry of the open file ``fh``, checked (names, sizes, dtypes) before it is read."""
    start = fh.read(6)
    fh.seek(0)
    if start == b"\x93NUMPY":
        raise _Refused("not a somcolor model (a bare .npy array)")
    if start[:1] == b"\x80":  # pickle protocol 2+ begins with the opcode PROTO
        raise _Refused("refused: the file holds pickled Python objects, which somcolor never loads")
    if not zipfile.is_zipfile(fh):
        raise _Refused("not a somcolor model (not an .npz archive)")
    size = os.fstat(fh.fileno()).st_size
    if size > MAX_MODEL_BYTES:
        raise _Damaged(f"{size} bytes, more than the {MAX_MODEL_BYTES >> 20} MiB allowed")
    with zipfile.ZipFile(fh) as zf:
        infos = zf.infolist()
        _check_directory(infos, size)
        return {info.filename[: -len(".npy")]: _read_member(zf, info) for info in infos}


def _check_directory(infos: list[zipfile.ZipInfo], size: int) -> None:
    """Refuse unknown, repeated, encrypted or oddly compressed entries, and entries that
    would decompress to more than the limits allow (from the sizes the archive declares)."""
    if len(infos) > MAX_MEMBERS:
        raise _Damaged(f"{len(infos)} entries, more than {MAX_MEMBERS}")
    seen = set()
    for info in infos:
        name = info.filename
        if not (name.endswith(".npy") and MEMBER_NAMES.fullmatch(name[: -len(".npy")])):
            raise _Damaged(f"unknown entry {name[:80]!r}")
        if name in seen:
            raise _Damaged(f"entry {name!r} appears twice")
        seen.add(name)
        if info.flag_bits & 0x1:
            raise _Damaged(f"entry {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Damaged(f"entry {name!r} uses compression method {info.compress_type}")
    total = sum(info.file_size for info in infos)
    if total > MAX_MODEL_BYTES:
        raise _Damaged(
            f"its arrays declare {total} bytes, more than the {MAX_MODEL_BYTES >> 20} MiB allowed"
        )
    if total > max(MAX_INFLATION * size, SMALL_MODEL_BYTES):
        raise _Damaged(
            f"its arrays would inflate to {total} bytes from a file of {size}, "
            f"more than {MAX_INFLATION} times"
        )


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One entry's array; its ``.npy`` header is checked before its data is decompressed."""
    key = info.filename[: -len(".npy")]
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version not in _NPY_READERS:
            raise _Damaged(f"array {key!r} has .npy format version {version}")
        shape, fortran_order, dtype = _NPY_READERS[version](fh)
        if key == "metadata":
            if dtype.kind != "U" or shape != () or dtype.itemsize // 4 > MAX_METADATA_CHARS:
                raise _Refused("not a somcolor model (no metadata header)")
        elif dtype.hasobject:
            raise _Damaged(
                f"array {key!r} holds pickled Python objects, which somcolor never loads"
            )
        elif dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
            raise _Damaged(f"array {key!r} is {dtype}")
        if len(shape) > MAX_NDIM or min(shape, default=0) < 0:
            raise _Damaged(f"array {key!r} has shape {shape}")
        count = math.prod(shape)  # Python ints: no overflow
        stored = info.file_size - fh.tell()
        if count * dtype.itemsize != stored:
            raise _Damaged(
                f"array {key!r} declares {count * dtype.itemsize} bytes, its entry holds {stored}"
            )
        array = np.empty(count, dtype=dtype)
        buffer, done = memoryview(array.view(np.uint8)), 0
        while done < stored:
            n = fh.readinto(buffer[done:])
            if not n:
                raise _Damaged(f"array {key!r} is truncated")
            done += n
        fh.read(1)  # at the end of the entry: zipfile checks its CRC
    return array.reshape(shape, order="F" if fortran_order else "C")


def _read_metadata(raw) -> dict:
    """The JSON header, parsed strictly: no NaN or Infinity, finite numbers, 64-bit integers."""
    if raw is None:
        raise _Refused("not a somcolor model (no metadata header)")
    try:
        meta = json.loads(
            str(raw), parse_constant=_no_constant, parse_float=_finite, parse_int=_int64
        )
    except _BadNumber as exc:
        raise _Damaged(f"metadata holds {exc}") from None
    except (ValueError, RecursionError):
        raise _Damaged("metadata is not JSON") from None
    if not isinstance(meta, dict):
        raise _Refused("not a somcolor model (metadata is not a JSON object)")
    if meta.get("format") != FORMAT:
        raise _Refused(f"not a somcolor model (format is {str(meta.get('format'))[:80]!r})")
    version = meta.get("format_version")
    if not _is_int(version) or version < 1:
        raise _Damaged(f"format_version {version!r}")
    if version > FORMAT_VERSION:
        raise _Refused(
            f"model format version {version} is newer than this somcolor reads "
            f"({FORMAT_VERSION}); upgrade somcolor"
        )
    return meta


class _BadNumber(ValueError):
    """A number JSON metadata may not hold."""


def _no_constant(name: str):
    raise _BadNumber(name)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumber(f"the number {text[:40]}, which is not finite")
    return value


def _int64(text: str) -> int:
    if len(text.lstrip("-")) > 19 or not -(2**63) <= int(text) < 2**63:
        raise _BadNumber(f"the integer {text[:40]}, larger than 64 bits")
    return int(text)


def _is_int(value) -> bool:
    """Whether ``value`` is an integer (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------- a SOM + MLP model's contents
def expect(ok: bool, what: str) -> None:
    """Refuse an inconsistent model: ModelFormatError ``inconsistent model: <what>``."""
    if not ok:
        raise ModelFormatError(f"inconsistent model: {what}")


def check_config(config: dict) -> dict:
    """A model file's config, completed with the defaults (:data:`somcolor.params.DEFAULTS`);
    unknown keys, and values not of their parameter's kind, refused.

    Each value must be of its default's kind: a bool; a whole number from 0 to
    :data:`MAX_CONFIG_INT` (also where the default is None, which stays allowed); a
    finite number; a string; a list of at most :data:`MAX_LAYERS` such whole numbers.
    This is checked before any ``int()`` conversion.
    """
    unknown = sorted(set(config) - set(DEFAULTS))
    expect(not unknown, f"unknown config keys {unknown}")
    for key, value in config.items():
        expect(_of_kind(value, DEFAULTS[key]), f"config {key!r} is {_short(value)}")
    config = {**DEFAULTS, **config}
    for key in TUPLE_PARAMS:
        config[key] = tuple(config[key])
    return config


def check_numbers(value, where: str = "config") -> None:
    """Refuse a non-finite number, or an integer outside 0..:data:`MAX_CONFIG_INT`,
    anywhere in ``value`` (nested lists and dicts included)."""
    if isinstance(value, dict):
        for key, item in value.items():
            check_numbers(item, f"{where} {key!r}")
    elif isinstance(value, list | tuple):
        for item in value:
            check_numbers(item, where)
    elif isinstance(value, float):
        expect(math.isfinite(value), f"{where} is {value!r}")
    elif _is_int(value):
        expect(0 <= value <= MAX_CONFIG_INT, f"{where} is {_short(value)}")


def _of_kind(value, default) -> bool:
    """Whether ``value`` may stand where ``default`` is (see :func:`check_config`)."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, tuple):
        return (
            isinstance(value, list | tuple)
            and len(value) <= MAX_LAYERS
            and all(_small_int(v) for v in value)
        )
    if default is None:
        return value is None or _small_int(value)
    if isinstance(default, int):
        return _small_int(value)
    if isinstance(default, float):
        return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)
    return isinstance(value, type(default))


def _small_int(value) -> bool:
    return _is_int(value) and 0 <= value <= MAX_CONFIG_INT


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def som_model(arrays: dict, meta: dict, n_features) -> dict:
    """The checked contents of a SOM + MLP model file, as the keyword arguments of
    :class:`~somcolor.predict.Predictor`.

    ``n_features(config)`` is the length of the feature vector of a model with that
    config (:class:`~somcolor.features.FeatureSpec`'s, which also checks the feature
    parameters). The inference parameters are checked by the caller.

    Raises
    ------
    ModelFormatError
        If the metadata, the codebook or the network are inconsistent; KeyError,
        TypeError or ValueError if an entry is missing or of the wrong kind.
    """
    for key in ("config", "mlp"):
        expect(isinstance(meta.get(key), dict), f"metadata {key!r} must be an object")
    training = meta.get("training", {})
    expect(isinstance(training, dict), "metadata 'training' must be an object")
    config = check_config(meta["config"])
    width = n_features(config)
    rows, cols = config["som_shape"]

    codebook = np.asarray(arrays["som_codebook"], dtype=np.float64)
    expect(codebook.shape == (rows * cols, 2), f"codebook shape {codebook.shape}")
    som_mean = np.asarray(arrays["som_mean"], dtype=np.float64)
    som_scale = np.asarray(arrays["som_scale"], dtype=np.float64)
    expect(som_mean.shape == (2,) and som_scale.shape == (2,), "SOM scaling shape")
    for arr in (codebook, som_mean, som_scale):
        expect(bool(np.all(np.isfinite(arr))), "non-finite SOM codebook or scaling")

    n_layers = meta["mlp"].get("n_layers")
    expect(
        _is_int(n_layers) and 1 <= n_layers <= MAX_LAYERS,
        f"mlp 'n_layers' is {_short(n_layers)}, expected 1 to {MAX_LAYERS}",
    )
    expected = {"som_codebook", "som_mean", "som_scale", "mlp_classes", "mlp_mean", "mlp_scale"}
    expected |= {f"mlp_{part}_{i}" for part in ("coef", "intercept") for i in range(n_layers)}
    has_match = "match" in meta or any(k.startswith("match_") for k in arrays)
    if has_match:
        expected |= {"match_root", "match_L", "match_codebook"}
        expected |= {f"match_{part}_{i}" for part in ("coef", "intercept") for i in range(n_layers)}
    expect(set(arrays) == expected, f"missing or extra arrays {sorted(set(arrays) ^ expected)}")
    network = dict(
        classes=np.asarray(arrays["mlp_classes"]),
        mean=np.asarray(arrays["mlp_mean"], dtype=np.float32),
        scale=np.asarray(arrays["mlp_scale"], dtype=np.float32),
        coefs=[np.asarray(arrays[f"mlp_coef_{i}"], dtype=np.float32) for i in range(n_layers)],
        intercepts=[
            np.asarray(arrays[f"mlp_intercept_{i}"], dtype=np.float32) for i in range(n_layers)
        ],
        out_activation=meta["mlp"]["out_activation"],
    )
    check_network(**network, n_codes=rows * cols, n_features=width)
    contents = dict(
        config=config,
        codebook=codebook,
        som_mean=som_mean,
        som_scale=som_scale,
        metadata=meta,
        training=training,
        **network,
    )
    if has_match:
        contents["match"] = reference_match(arrays, meta, network, rows * cols)
    return contents


def reference_match(arrays: dict, meta: dict, network: dict, n_codes: int) -> dict:
    """The checked arrays of an adapted model's reference match
    (:class:`somcolor.adapt.ReferenceMatch`): the starting model's codebook and layers
    (the same shapes as the model's own), and the reference pixels' probability roots
    (``(k, n_classes)``, in 0..1) and L (0..100), with the match's settings (metadata
    ``match``: ``sigma`` and ``l_sigma`` > 0, ``0 <= low < high <= 1``)."""
    m = meta.get("match")
    keys = {"sigma", "l_sigma", "low", "high"}
    expect(isinstance(m, dict) and set(m) == keys, f"metadata 'match' must hold {sorted(keys)}")
    for key in ("sigma", "l_sigma"):
        value = m[key]
        expect(
            isinstance(value, int | float) and not isinstance(value, bool) and value > 0,
            f"match {key} is {_short(value)}, expected a number > 0",
        )
    low, high = m["low"], m["high"]
    expect(
        all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
        and 0 <= low < high <= 1,
        f"match low, high are {_short(low)}, {_short(high)}, expected 0 <= low < high <= 1",
    )
    n_layers = len(network["coefs"])
    coefs = [np.asarray(arrays[f"match_coef_{i}"], dtype=np.float32) for i in range(n_layers)]
    intercepts = [
        np.asarray(arrays[f"match_intercept_{i}"], dtype=np.float32) for i in range(n_layers)
    ]
    for mine, theirs in ((coefs, network["coefs"]), (intercepts, network["intercepts"])):
        expect(
            all(a.shape == b.shape for a, b in zip(mine, theirs, strict=True)),
            "match layers differ in shape from the model's",
        )
    codebook = np.asarray(arrays["match_codebook"], dtype=np.float64)
    expect(codebook.shape == (n_codes, 2), f"match codebook shape {codebook.shape}")
    root = np.asarray(arrays["match_root"], dtype=np.float32)
    L = np.asarray(arrays["match_L"], dtype=np.float32)
    k = len(L)
    expect(
        L.shape == (k,) and 1 <= k <= MAX_MATCH_PIXELS,
        f"match_L shape {L.shape}, expected 1 to {MAX_MATCH_PIXELS} pixels",
    )
    expect(root.shape == (k, len(network["classes"])), f"match_root shape {root.shape}")
    for arr in (*coefs, *intercepts, codebook, root, L):
        expect(bool(np.all(np.isfinite(arr))), "non-finite match arrays")
    expect(bool(np.all((root >= 0) & (root <= 1))), "match_root outside 0..1")
    expect(bool(np.all((L >= 0) & (L <= 100))), "match_L outside 0..100")
    return dict(
        codebook=codebook,
        coefs=coefs,
        intercepts=intercepts,
        root=root,
        L=L,
        sigma=float(m["sigma"]),
        l_sigma=float(m["l_sigma"]),
        low=float(low),
        high=float(high),
    )


def check_network(
    classes, mean, scale, coefs, intercepts, out_activation, *, n_codes: int, n_features: int
) -> None:
    """Refuse a network whose arrays do not chain, or whose classes are not codes."""
    expect(classes.ndim == 1 and classes.dtype.kind in "iu", "classes must be integer codes")
    expect(len(np.unique(classes)) == len(classes) >= 2, "classes must be >= 2 distinct codes")
    expect(classes.min() >= 0 and classes.max() < n_codes, "class outside the codebook")
    expect(mean.shape == (n_features,) and scale.shape == (n_features,), "input scaling")
    expect(bool(np.all(scale > 0)), "input scale must be positive")
    width = n_features
    for W, b in zip(coefs, intercepts, strict=True):
        expect(W.ndim == 2 and W.shape[0] == width and b.shape == (W.shape[1],), "layer shapes")
        width = W.shape[1]
    expected_out = 1 if out_activation == "logistic" else len(classes)
    expect(out_activation in ("softmax", "logistic"), "output activation")
    expect(width == expected_out, "output layer size does not match classes")
    for arr in (*coefs, *intercepts, mean, scale):
        expect(bool(np.all(np.isfinite(arr))), "non-finite weights")
