"""The experiment config: every default in one place, overrides from small TOML files.

An experiment file under ``experiments/configs/`` holds only what differs from the
defaults below (``table2.toml`` is two lines). :func:`load` reads it, applies
``--set key=value`` overrides, and checks every key and type, so a typo or a wrong
type stops the run with a one-line :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path

from somcolor import datasets, params
from somcolor.exceptions import SomcolorError
from somcolor.patches import check_patch_size
from somcolor.quantize import parse_shape

#: What an experiment computes; the config files are named after the paper's table or figure.
EXPERIMENTS = ("table1", "table2", "codebooks", "colorize")


class ConfigError(ValueError):
    """A config file or override that names an unknown key or gives a bad value."""


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment, fully resolved. Field comments say which experiments read a field."""

    # --- what to run -------------------------------------------------------------------
    experiment: str = "table2"  # table1 | table2 | codebooks (Figs 8/9) | colorize (Fig 10)
    name: str = ""  # results folder experiments/results/<name>; "" = the config file's name

    # --- data (all) ----------------------------------------------------------------------
    dataset: str = "opencountry"  # a name in somcolor.datasets.DATASETS
    test_fraction: float = 0.2  # share of the images held out for testing: split by image
    max_images: int = 0  # use only this many images (after the seeded shuffle); 0 = all
    pixels_per_image: int = 2500  # the paper's random pixels per image
    seed: int = 0  # the one seed: image split, pixel samples, SOMs, data splits, MLPs

    # --- SOM (all) ------------------------------------------------------------------------
    som_shape: str = "3x3"  # the codebook of Table II and Fig 10
    som_shapes: tuple[str, ...] = ("3x3", "5x5", "10x10", "20x20")  # Table I, Figs 8/9
    som_iterations: int = 20000  # minisom steps (one sample each)
    som_samples: int = 20000  # size of the UV subsample each SOM trains on
    som_repeats: int = 3  # Table I: SOMs per size, seeds seed..seed+repeats-1

    # --- Table II grid ----------------------------------------------------------------------
    patch_sizes: tuple[int, ...] = (3, 5, 11)
    hidden_layers: tuple[str, ...] = (
        "10",
        "50",
        "100",
        "50+50",
        "100+100",
        "200+200",
        "300+300",
    )
    n_splits: int = 10  # StratifiedShuffleSplit splits
    train_size: int = 50000  # training patches per split (from the training images)
    test_size: int = 5000  # test patches per split (from the test images)
    split_by: str = "image"  # image: train/test pixels from disjoint images; pixel: the paper's

    # --- MLP (Table II, Fig 10); ReLU, Adam, learning rate 0.001 as in the paper ----------
    max_iter: int = 6  # epochs at most; the paper does not say (the time budget: reproduction.md)
    early_stopping: bool = True  # hold out 10% of the training patches, stop on no gain
    n_iter_no_change: int = 3
    batch_size: int = 200
    learning_rate_init: float = 0.001
    alpha: float = 1e-4

    # --- figures ------------------------------------------------------------------------------
    case: str = "good"  # codebooks: good (lowest 3x3 error) | bad (highest) test image
    image: str = ""  # codebooks: this test image's file name instead of choosing by case
    patch_size: int = 3  # colorize: the paper's best cell of Table II
    hidden: str = "50+50"
    n_images: int = 4  # colorize: test images shown, one row each

    # --- execution ----------------------------------------------------------------------------
    n_jobs: int = 2  # grid cells run in parallel (joblib); BLAS gets cores // n_jobs threads

    # ------------------------------------------------------------------ derived
    @property
    def hidden_tuple(self) -> tuple[int, ...]:
        return parse_hidden(self.hidden)


SETTABLE = tuple(f.name for f in dataclasses.fields(ExperimentConfig))


def parse_hidden(text: str) -> tuple[int, ...]:
    """Hidden layer sizes, as ``somcolor train --hidden`` reads them: ``50+50`` -> ``(50, 50)``.

    One parser for the command line and the experiments (:func:`somcolor.params.parse_hidden`:
    ``50,50`` and ``50+50`` alike); tables show the paper's ``50+50``.

    >>> parse_hidden("200+200"), parse_hidden("50,50")
    ((200, 200), (50, 50))
    """
    try:
        return params.parse_hidden(text)
    except ValueError as exc:
        raise ConfigError(f"hidden layers: {exc}") from None


# ---------------------------------------------------------------------- type checks
def _field_types() -> dict[str, object]:
    hints = typing.get_type_hints(ExperimentConfig)
    return {name: hints[name] for name in SETTABLE}


def _type_name(tp) -> str:
    if typing.get_origin(tp) is tuple:
        return f"list of {typing.get_args(tp)[0].__name__}"
    return tp.__name__


def _coerce(key: str, value, tp):
    """``value`` as type ``tp``, or a ConfigError saying what was expected."""
    if typing.get_origin(tp) is tuple:
        if not isinstance(value, list | tuple):
            value = [value]
        item = typing.get_args(tp)[0]
        return tuple(_coerce(key, v, item) for v in value)
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
    }[tp]
    if not ok(value):
        got = type(value).__name__
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {got} {value!r}")
    return float(value) if tp is float else value


def _parse_text(key: str, text: str, tp):
    """A ``--set`` value (text) as type ``tp``; lists are comma-separated."""
    if typing.get_origin(tp) is tuple:
        item = typing.get_args(tp)[0]
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return tuple(_parse_text(key, p, item) for p in parts)
    try:
        if tp is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text.lower() in ("true", "1", "yes")
        return tp(text)
    except ValueError:
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {text!r}") from None


def _check_key(key: str) -> None:
    if key not in SETTABLE:
        import difflib

        near = difflib.get_close_matches(key, SETTABLE, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(f"unknown config key {key!r}{hint}")


# ---------------------------------------------------------------------- loading
def load(path=None, overrides: typing.Sequence[str] = (), **values) -> ExperimentConfig:
    """The config of file ``path`` (TOML, overrides of the defaults), then ``key=value`` texts.

    Keyword ``values`` (typed, for tests and notebooks) are applied last.

    Raises
    ------
    ConfigError
        On a missing or unparsable file, an unknown key, a wrong type or a bad value.
    """
    types_ = _field_types()
    settings: dict[str, object] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            table = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        for key, value in table.items():
            _check_key(key)
            settings[key] = _coerce(key, value, types_[key])
        settings.setdefault("name", path.stem)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        _check_key(key)
        settings[key] = _parse_text(key, text.strip(), types_[key])
    for key, value in values.items():
        _check_key(key)
        settings[key] = _coerce(key, value, types_[key])
    cfg = ExperimentConfig(**settings)
    if not cfg.name:
        cfg = dataclasses.replace(cfg, name=cfg.experiment)
    validate(cfg)
    return cfg


def validate(cfg: ExperimentConfig) -> None:
    """Check values beyond their types; the first problem raises a one-line ConfigError."""

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    need(
        cfg.experiment in EXPERIMENTS,
        f"experiment: expected one of {EXPERIMENTS}, got {cfg.experiment!r}",
    )
    need(
        cfg.dataset in datasets.DATASETS,
        f"dataset: expected one of {sorted(datasets.DATASETS)}, got {cfg.dataset!r}",
    )
    need(
        cfg.name.replace("_", "").replace("-", "").isalnum(),
        f"name: expected letters, digits, '-' or '_', got {cfg.name!r}",
    )
    need(0 < cfg.test_fraction < 1, f"test_fraction: expected 0 < x < 1, got {cfg.test_fraction}")
    for key in ("pixels_per_image", "som_iterations", "som_samples", "som_repeats", "n_splits"):
        need(getattr(cfg, key) >= 1, f"{key}: expected a positive integer, got {getattr(cfg, key)}")
    for key in (
        "train_size",
        "test_size",
        "max_iter",
        "n_iter_no_change",
        "batch_size",
        "n_images",
    ):
        need(getattr(cfg, key) >= 1, f"{key}: expected a positive integer, got {getattr(cfg, key)}")
    need(cfg.max_images >= 0, f"max_images: expected 0 (all) or more, got {cfg.max_images}")
    need(cfg.n_jobs >= 1 or cfg.n_jobs == -1, f"n_jobs: expected >= 1 or -1, got {cfg.n_jobs}")
    need(
        cfg.learning_rate_init > 0,
        f"learning_rate_init: expected > 0, got {cfg.learning_rate_init}",
    )
    need(cfg.alpha >= 0, f"alpha: expected >= 0, got {cfg.alpha}")
    need(
        cfg.split_by in ("image", "pixel"),
        f"split_by: expected image or pixel, got {cfg.split_by!r}",
    )
    need(cfg.case in ("good", "bad"), f"case: expected good or bad, got {cfg.case!r}")
    if cfg.experiment == "table2":
        need(len(cfg.patch_sizes) > 0, "empty grid: patch_sizes is empty")
        need(len(cfg.hidden_layers) > 0, "empty grid: hidden_layers is empty")
    if cfg.experiment in ("table1", "codebooks"):
        need(len(cfg.som_shapes) > 0, "empty grid: som_shapes is empty")
    try:
        for shape in (cfg.som_shape, *cfg.som_shapes):
            parse_shape(shape)
        for k in (*cfg.patch_sizes, cfg.patch_size):
            check_patch_size(k)
    except (ValueError, SomcolorError) as exc:
        raise ConfigError(str(exc)) from None
    for h in (*cfg.hidden_layers, cfg.hidden):
        parse_hidden(h)


def as_dict(cfg: ExperimentConfig) -> dict:
    """The resolved config as plain JSON-able values (tuples become lists)."""
    out = {}
    for key in SETTABLE:
        value = getattr(cfg, key)
        out[key] = list(value) if isinstance(value, tuple) else value
    return out
