"""Decoding: from code probabilities back to chroma (UV), the inverse of quantizing.

A decoder takes the classifier's probabilities ``(n_pixels, n_classes)``, its
``classes_`` (which code each column stands for: an MLP has columns only for codes
it saw in training), the SOM codebook ``(n_codes, 2)`` and a temperature, and
returns UV ``(n_pixels, 2)``:

* ``argmax``: the paper's rule, the UV of the most probable code;
* ``mean``: the expectation of the codebook under the probabilities;
* ``annealed``: the expectation under probabilities sharpened with a temperature
  ``T`` (``p ** (1/T)``, renormalised; Zhang et al. 2016 use ``T = 0.38``). ``T = 1``
  is the mean; ``T -> 0`` approaches the argmax.

:data:`DECODERS` registers each one once (:class:`Decoder`): its numpy function, its
number in the fused kernel of :mod:`somcolor.fused` and whether it uses the
temperature.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .exceptions import SomcolorError

#: Zhang, Isola & Efros (2016): the annealed mean's default temperature.
DEFAULT_TEMPERATURE = 0.38


def decode_argmax(proba, classes, codebook, temperature=None) -> np.ndarray:
    """The paper's rule: the UV of the most probable code.

    >>> codebook = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    >>> decode_argmax(np.array([[0.2, 0.8]]), np.array([0, 2]), codebook).tolist()
    [[0.0, 10.0]]
    """
    return codebook[classes[np.argmax(proba, axis=1)]]


def decode_mean(proba, classes, codebook, temperature=None) -> np.ndarray:
    """The expectation of the codebook under the class probabilities.

    >>> codebook = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    >>> decode_mean(np.array([[0.5, 0.5]]), np.array([1, 2]), codebook).tolist()
    [[5.0, 5.0]]
    """
    return proba @ codebook[classes].astype(proba.dtype)


def decode_annealed(proba, classes, codebook, temperature=DEFAULT_TEMPERATURE) -> np.ndarray:
    """The annealed mean: the expectation under ``p ** (1 / T)``, renormalised.

    >>> codebook = np.array([[0.0, 0.0], [10.0, 0.0]])
    >>> np.round(decode_annealed(np.array([[0.25, 0.75]]), np.array([0, 1]), codebook, 0.5), 2)
    array([[9., 0.]])
    """
    T = DEFAULT_TEMPERATURE if temperature is None else float(temperature)
    if not T > 0:
        raise SomcolorError(f"temperature must be positive, got {T}")
    # Work in logs, shifted by the row maximum, so small probabilities do not underflow.
    logp = np.log(np.maximum(proba, np.finfo(proba.dtype).tiny)) / T
    logp -= logp.max(axis=1, keepdims=True)
    sharp = np.exp(logp)
    sharp /= sharp.sum(axis=1, keepdims=True)
    return sharp @ codebook[classes].astype(sharp.dtype)


@dataclass(frozen=True)
class Decoder:
    """One decoder: its numpy function and how the fused kernel knows it."""

    name: str
    #: ``decode(proba, classes, codebook, temperature) -> uv``
    decode: Callable[..., np.ndarray]
    #: Its number in the fused kernel (:func:`somcolor.fused._decode`).
    mode: int
    #: Whether ``temperature`` changes its result.
    uses_temperature: bool


#: Every decoder, by name: validation, the CLI's choices, the web form and the tests'
#: parametrization all come from here.
DECODERS: dict[str, Decoder] = {
    d.name: d
    for d in (
        Decoder("argmax", decode_argmax, mode=0, uses_temperature=False),
        Decoder("mean", decode_mean, mode=1, uses_temperature=False),
        Decoder("annealed", decode_annealed, mode=2, uses_temperature=True),
    )
}


def check_decoder(name) -> Decoder:
    """The registry entry of decoder ``name``; :class:`SomcolorError` for an unknown name.

    >>> check_decoder("mean").mode
    1
    """
    try:
        return DECODERS[name]
    except (KeyError, TypeError):
        raise SomcolorError(
            f"unknown decoder {name!r}, expected one of {sorted(DECODERS)}"
        ) from None


def get_decoder(name: str) -> Callable[..., np.ndarray]:
    """The decoder function registered under ``name``."""
    return check_decoder(name).decode
