"""Tests for somcolor.decode: code probabilities back to chroma, through classes_."""

import numpy as np
import pytest

from somcolor.decode import DECODERS, decode_argmax, get_decoder
from somcolor.exceptions import SomcolorError

CODEBOOK = np.array([[float(i), -10.0 * i] for i in range(6)])  # code i -> (i, -10 i)


def test_argmax_maps_columns_through_classes():
    classes = np.array([2, 5])
    proba = np.array([[0.1, 0.9], [0.7, 0.3]])
    uv = decode_argmax(proba, classes, CODEBOOK)
    # Column 1 is code 5, column 0 is code 2 -- not codebook rows 1 and 0.
    np.testing.assert_array_equal(uv, [CODEBOOK[5], CODEBOOK[2]])


def test_argmax_never_produces_a_code_missing_from_classes():
    rng = np.random.default_rng(0)
    classes = np.array([0, 3, 4])
    proba = rng.dirichlet(np.ones(3), size=500)
    uv = decode_argmax(proba, classes, CODEBOOK)
    assert uv.shape == (500, 2)
    produced = {int(u) for u in uv[:, 0]}
    assert produced == {0, 3, 4}
    np.testing.assert_array_equal(uv, CODEBOOK[classes[np.argmax(proba, axis=1)]])


def test_argmax_breaks_ties_towards_the_first_column():
    uv = decode_argmax(np.array([[0.5, 0.5]]), np.array([4, 1]), CODEBOOK)
    np.testing.assert_array_equal(uv, [CODEBOOK[4]])


def test_argmax_of_no_pixels_is_empty():
    uv = decode_argmax(np.empty((0, 2)), np.array([0, 1]), CODEBOOK)
    assert uv.shape == (0, 2)


def test_get_decoder_finds_argmax():
    assert get_decoder("argmax") is decode_argmax
    assert "argmax" in DECODERS


@pytest.mark.parametrize("name", ["mean", "", "ARGMAX"])
def test_unknown_decoder_raises_and_lists_the_known_ones(name):
    with pytest.raises(SomcolorError, match=r"unknown decoder .*argmax"):
        get_decoder(name)
