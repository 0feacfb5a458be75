"""Decoding: from code probabilities back to chroma (UV), the inverse of quantizing.

A decoder takes the classifier's probabilities ``(n_pixels, n_classes)``, its
``classes_`` (which code each column stands for: an MLP has columns only for codes
it saw in training) and the SOM codebook ``(n_codes, 2)``, and returns UV
``(n_pixels, 2)``.
"""

from __future__ import annotations

import numpy as np

from .exceptions import SomcolorError


def decode_argmax(proba: np.ndarray, classes: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """The paper's rule: the UV of the most probable code.

    >>> codebook = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    >>> decode_argmax(np.array([[0.2, 0.8]]), np.array([0, 2]), codebook).tolist()
    [[0.0, 10.0]]
    """
    return codebook[classes[np.argmax(proba, axis=1)]]


DECODERS = {"argmax": decode_argmax}


def get_decoder(name: str):
    """The decoder function registered under ``name``."""
    try:
        return DECODERS[name]
    except KeyError:
        raise SomcolorError(
            f"unknown decoder {name!r}, expected one of {sorted(DECODERS)}"
        ) from None
