"""The Colorizer's parameters, declared once: default, allowed values, CLI option, help.

:data:`PARAMS` lists every :class:`~somcolor.pipeline.Colorizer` parameter once, in
the spirit of scikit-learn's ``_parameter_constraints``. Everything else is derived
from it or checked against it:

* ``Colorizer.__init__``'s defaults (scikit-learn needs an explicit signature;
  ``tests/test_pipeline.py`` compares it with :data:`DEFAULTS`);
* :data:`DEFAULTS`, which complete a model file's config (:mod:`somcolor.modelfile`);
* :data:`INFERENCE_PARAMS`, those a trained model may change (``set_params``), and
  their validation, :func:`check_params`;
* the ``somcolor train`` options, with their help showing the default
  (:mod:`somcolor.cli`).

A parameter's ``check`` is None where the stage it goes to validates it
(``FeatureSpec``, ``SOMQuantizer``, ``PatchClassifier``). This module imports no
numba, scikit-learn or minisom, so the CLI builds its parser fast.

>>> DEFAULTS["patch_size"], "decoder" in INFERENCE_PARAMS
(5, True)
>>> parse_hidden("50,50"), parse_hidden("200+200")
((50, 50), (200, 200))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .decode import DECODERS, DEFAULT_TEMPERATURE, check_decoder
from .exceptions import SomcolorError


# ---------------------------------------------------------------------------- text -> value
def _ints(text: str, seps: str) -> tuple[int, ...]:
    """Integers separated by any one of ``seps`` (ValueError if not)."""
    for sep in seps[1:]:
        text = text.replace(sep, seps[0])
    return tuple(int(p) for p in text.split(seps[0]))


def parse_hidden(text: str) -> tuple[int, ...]:
    """Hidden layer sizes written ``50,50`` (or ``50+50``) -> ``(50, 50)``.

    Raises ValueError whose message says what was expected.
    """
    try:
        sizes = _ints(str(text), ",+")
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise ValueError(f"expected layer sizes like 50,50, got {text!r}")
    return sizes


def parse_shape(text: str) -> tuple[int, int]:
    """Parse a map size written ``ROWSxCOLS``.

    >>> parse_shape("10x10")
    (10, 10)
    """
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        rows, cols = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"expected a map size like 3x3, got {text!r}") from None
    if rows < 1 or cols < 1:
        raise ValueError(f"expected a map size with at least 1 row and column, got {text!r}")
    return rows, cols


def parse_som_shape(text: str) -> tuple[int, int]:
    """A map size of at least 2 codes (:func:`parse_shape`).

    >>> parse_som_shape("2x1")
    (2, 1)
    """
    rows, cols = parse_shape(text)
    if rows * cols < 2:
        raise ValueError(f"a map needs at least 2 codes, got {text!r}")
    return rows, cols


def parse_factors(text: str) -> tuple[int, ...]:
    """Scale factors written ``4,16`` -> ``(4, 16)``, each at least 2.

    >>> parse_factors("4,16")
    (4, 16)
    """
    try:
        factors = _ints(str(text), ",")
    except ValueError:
        raise ValueError(f"expected factors like 4,16, got {text!r}") from None
    if not all(f >= 2 for f in factors):
        raise ValueError(f"scale factors must be >= 2, got {text!r}")
    return factors


def _parse_int(text: str, ok: Callable[[int], bool], what: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = None
    if n is None or not ok(n):
        raise ValueError(f"expected {what}, got {text!r}")
    return n


def _parse_float(text: str, ok: Callable[[float], bool], what: str) -> float:
    """Text that is no number fails every ``ok``: it is NaN."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not ok(value):
        raise ValueError(f"expected {what}, got {text!r}")
    return value


def parse_positive(text: str) -> int:
    return _parse_int(text, lambda n: n >= 1, "a positive integer")


def parse_odd(text: str) -> int:
    return _parse_int(text, lambda n: n >= 1 and n % 2 == 1, "a positive odd integer")


def parse_work_size(text: str) -> int:
    """A working size in pixels, or ``0`` for ``0`` / ``full``: predict at full resolution.

    >>> parse_work_size("256"), parse_work_size("full"), parse_work_size("0")
    (256, 0, 0)
    """
    if str(text).strip().lower() in ("0", "full"):
        return 0
    try:
        n = parse_positive(text)
    except ValueError:
        n = 0
    if n < MIN_WORK_SIZE:
        raise ValueError(f"expected 0, full or at least {MIN_WORK_SIZE} pixels, got {text!r}")
    return n


def parse_positive_float(text: str) -> float:
    return _parse_float(text, lambda v: 0 < v < float("inf"), "a positive number")


def parse_fraction(text: str) -> float:
    return _parse_float(text, lambda v: 0 <= v < 1, "a fraction in [0, 1)")


# ---------------------------------------------------------------------------- the table
#: The smallest working size (long side, pixels).
MIN_WORK_SIZE = 8


def _must(ok: Callable[[Any], bool], phrase: str) -> Callable[[str, Any], None]:
    """A check that raises ``SomcolorError("<name> must be <phrase>, got <value>")``."""

    def check(name: str, value) -> None:
        if not ok(value):
            raise SomcolorError(f"{name} must be {phrase}, got {value!r}")

    return check


def _check_decoder(name: str, value) -> None:
    check_decoder(value)


@dataclass(frozen=True)
class Param:
    """One Colorizer parameter."""

    name: str
    default: Any
    #: What it does, one line (the start of the CLI help).
    help: str
    #: ``check(name, value)`` raises :class:`SomcolorError`; None: checked where used.
    check: Callable[[str, Any], None] | None = None
    #: Whether a trained model may change it (``set_params``).
    inference: bool = False
    #: The ``somcolor train`` option, or None.
    flag: str | None = None
    #: The option's text -> value (raises ValueError saying what was expected); None
    #: for an on/off switch.
    parse: Callable[[str], Any] | None = None
    #: The allowed values, when they are a list.
    choices: tuple | None = None
    #: How the CLI writes a tuple default's items apart (``50,50``, ``3x3``).
    sep: str = ","

    def show(self, value) -> str:
        """A value of this parameter as the CLI writes it.

        >>> BY_NAME["hidden_layer_sizes"].show((50, 50)), BY_NAME["som_shape"].show((3, 3))
        ('50,50', '3x3')
        >>> BY_NAME["smooth_eps"].show(3e-3)
        '0.003'
        """
        if isinstance(value, tuple):
            return self.sep.join(map(str, value))
        return str(value)


PARAMS: tuple[Param, ...] = (
    # --- the SOM: chroma codebook
    Param("som_shape", (3, 3), "SOM map size", flag="--som", parse=parse_som_shape, sep="x"),
    # --- features (checked by FeatureSpec)
    Param("patch_size", 5, "patch side, odd", flag="--patch", parse=parse_odd),
    # --- the MLP (checked by PatchClassifier)
    Param("hidden_layer_sizes", (50, 50), "hidden layers", flag="--hidden", parse=parse_hidden),
    Param(
        "pixels_per_image",
        2500,
        "pixels drawn per photo",
        flag="--pixels-per-image",
        parse=parse_positive,
    ),
    Param("som_iterations", 20000, "SOM training steps"),
    Param("som_samples", 20000, "size of the UV subsample the SOM trains on"),
    Param("max_iter", 50, "MLP epochs at most", flag="--max-iter", parse=parse_positive),
    # --- decoding
    Param(
        "decoder",
        "argmax",
        "how codes become chroma",
        check=_check_decoder,
        inference=True,
        flag="--decoder",
        choices=tuple(DECODERS),
    ),
    Param(
        "temperature",
        DEFAULT_TEMPERATURE,
        "annealed mean T",
        check=_must(lambda v: v > 0, "positive"),
        inference=True,
        flag="--temperature",
        parse=parse_positive_float,
    ),
    # --- more features
    Param("scales", (), "coarse patches, e.g. 4,16", flag="--scales", parse=parse_factors),
    Param("scale_patch_size", 5, "coarse patch side", flag="--scale-patch", parse=parse_odd),
    Param("position", False, "add the pixel's relative position", flag="--position"),
    Param("image_stats", False, "add the image's L mean and std", flag="--image-stats"),
    Param("rebalance", False, "weight rare colors up (lambda 0.5)", flag="--rebalance"),
    # --- smoothing and working size
    Param(
        "smooth_radius",
        0.0,
        "guided filter radius, fraction of the long side, 0: off",
        check=_must(lambda v: 0 <= v <= 1, "in 0..1"),
        inference=True,
        flag="--smooth-radius",
        parse=parse_fraction,
    ),
    Param(
        "smooth_eps",
        3e-3,
        "guided filter eps",
        check=_must(lambda v: v > 0, "positive"),
        inference=True,
        flag="--smooth-eps",
        parse=parse_positive_float,
    ),
    Param(
        "work_size",
        None,
        "predict at this long side (px)",
        check=_must(
            lambda v: v is None or int(v) >= MIN_WORK_SIZE,
            f"None or at least {MIN_WORK_SIZE} pixels",
        ),
        inference=True,
        flag="--work-size",
        parse=parse_work_size,
    ),
    # --- randomness (the CLI's --seed defaults to 0, so that a command line is repeatable)
    Param("random_state", None, "the one seed for pixel sampling, the SOM and the MLP"),
)

#: Each parameter by name.
BY_NAME: dict[str, Param] = {p.name: p for p in PARAMS}
#: Every parameter's default: what a model file's config leaves out.
DEFAULTS: dict[str, Any] = {p.name: p.default for p in PARAMS}
#: The tuple-valued parameters (a model file's JSON stores them as lists).
TUPLE_PARAMS: tuple[str, ...] = tuple(p.name for p in PARAMS if isinstance(p.default, tuple))
#: The parameters that change how a trained model colorizes (``set_params``).
INFERENCE_PARAMS: tuple[str, ...] = tuple(p.name for p in PARAMS if p.inference)


def check_params(params: dict, names=INFERENCE_PARAMS) -> None:
    """Check ``params[name]`` for each of ``names`` that has a check; SomcolorError if bad.

    >>> check_params({**DEFAULTS, "smooth_eps": 0})
    Traceback (most recent call last):
    ...
    somcolor.exceptions.SomcolorError: smooth_eps must be positive, got 0
    """
    for name in names:
        check = BY_NAME[name].check
        if check is not None:
            check(name, params[name])
