"""The model file format: plain arrays in an ``.npz`` plus JSON metadata, never pickle.

A model file is a NumPy ``.npz`` archive. Its ``metadata`` entry is a 0-d unicode
array holding JSON (``format``, ``format_version``, the model's config, its training
summary, the somcolor version that wrote it); every other entry is a numeric array.
Files are read with ``allow_pickle=False``, so loading one runs no code, and written
atomically (temporary file, then rename).

:func:`read` checks the container (an archive of numbers with a somcolor header);
:func:`som_model` checks a SOM + MLP model's contents (its config against
:mod:`somcolor.params`, the codebook, the network's shapes) and gives the arrays
:class:`~somcolor.predict.Predictor` is built from.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from .exceptions import ModelFormatError
from .io import atomic_write
from .params import DEFAULTS, TUPLE_PARAMS

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


# ---------------------------------------------------------------- a SOM + MLP model's contents
def expect(ok: bool, what: str) -> None:
    """Refuse an inconsistent model: ModelFormatError ``inconsistent model: <what>``."""
    if not ok:
        raise ModelFormatError(f"inconsistent model: {what}")


def check_config(config: dict) -> dict:
    """A model file's config, completed with the defaults (:data:`somcolor.params.DEFAULTS`);
    unknown keys refused."""
    unknown = sorted(set(config) - set(DEFAULTS))
    expect(not unknown, f"unknown config keys {unknown}")
    config = {**DEFAULTS, **config}
    for key in TUPLE_PARAMS:
        config[key] = tuple(config[key])
    return config


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

    n_layers = int(meta["mlp"]["n_layers"])
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
    return dict(
        config=config,
        codebook=codebook,
        som_mean=som_mean,
        som_scale=som_scale,
        metadata=meta,
        training=training,
        **network,
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
