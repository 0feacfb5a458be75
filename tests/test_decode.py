"""Tests for somcolor.decode: code probabilities back to chroma, through classes_."""

import numpy as np
import pytest

from somcolor.decode import (
    DECODERS,
    check_decoder,
    decode_annealed,
    decode_argmax,
    decode_mean,
    get_decoder,
)
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


@pytest.mark.parametrize("name", ["mode", "", "ARGMAX", None, ["argmax"]])
def test_unknown_decoder_raises_and_lists_the_known_ones(name):
    with pytest.raises(SomcolorError, match=r"unknown decoder .*argmax"):
        get_decoder(name)
    with pytest.raises(SomcolorError) as excinfo:
        check_decoder(name)
    assert "\n" not in str(excinfo.value)


def test_each_decoder_is_registered_once_with_its_own_kernel_mode():
    assert list(DECODERS) == [d.name for d in DECODERS.values()]
    modes = [d.mode for d in DECODERS.values()]
    assert sorted(modes) == list(range(len(DECODERS)))
    assert DECODERS["argmax"].mode == 0  # the fused kernel's logit shortcut is for mode 0


@pytest.mark.parametrize("name", list(DECODERS))
def test_only_decoders_that_use_the_temperature_change_with_it(name):
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(4), size=50)
    classes = np.array([0, 2, 3, 5])
    decode = DECODERS[name].decode
    hot, cold = (decode(proba, classes, CODEBOOK, T) for T in (1.0, 0.2))
    assert (not np.allclose(hot, cold)) == DECODERS[name].uses_temperature


def test_mean_is_the_expectation_through_classes():
    proba = np.array([[0.25, 0.75]])
    uv = decode_mean(proba, np.array([4, 1]), CODEBOOK)
    np.testing.assert_allclose(uv, 0.25 * CODEBOOK[[4]] + 0.75 * CODEBOOK[[1]])


def test_annealed_at_temperature_one_is_the_mean():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), size=20)
    classes = np.array([0, 2, 4])
    np.testing.assert_allclose(
        decode_annealed(proba, classes, CODEBOOK, 1.0), decode_mean(proba, classes, CODEBOOK)
    )


def test_annealed_at_low_temperature_approaches_the_argmax():
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(3), size=200)
    top2 = np.sort(proba, axis=1)[:, -2:]
    proba = proba[top2[:, 1] - top2[:, 0] > 0.05]  # no near-ties
    classes = np.array([1, 3, 4])
    np.testing.assert_allclose(
        decode_annealed(proba, classes, CODEBOOK, 1e-3),
        decode_argmax(proba, classes, CODEBOOK),
        atol=1e-6,
    )


def test_annealed_sharpens_towards_the_likely_code():
    proba = np.array([[0.3, 0.7]], dtype=np.float32)
    classes = np.array([0, 1])
    mean = decode_mean(proba, classes, CODEBOOK)
    annealed = decode_annealed(proba, classes, CODEBOOK, 0.38)
    d_mean = np.linalg.norm(mean - CODEBOOK[1])
    d_annealed = np.linalg.norm(annealed - CODEBOOK[1])
    assert d_annealed < d_mean


def test_annealed_survives_tiny_probabilities_without_nan():
    proba = np.array([[1e-30, 1.0 - 1e-30], [0.0, 1.0]], dtype=np.float32)
    uv = decode_annealed(proba, np.array([0, 1]), CODEBOOK, 0.05)
    assert np.all(np.isfinite(uv))


def test_annealed_rejects_a_non_positive_temperature():
    with pytest.raises(SomcolorError, match="temperature"):
        decode_annealed(np.array([[1.0]]), np.array([0]), CODEBOOK, 0.0)
