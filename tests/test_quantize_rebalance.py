"""Tests for somcolor.quantize.rebalance_weights: the inverse of a smoothed color prior."""

from __future__ import annotations

import numpy as np
import pytest

from somcolor.quantize import rebalance_weights

#: Four codes far apart (no smoothing between them at sigma = 5).
FAR = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]])


def _codes(counts):
    """Labels with ``counts[i]`` samples of code ``i``, shuffled."""
    codes = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(0).permutation(codes)


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("counts", [[10, 1, 1, 1], [3, 3, 3, 3], [50, 0, 7, 1]])
def test_weights_have_mean_one(lam, counts):
    w = rebalance_weights(_codes(counts), FAR, lam=lam)
    assert w.shape == (sum(counts),)
    assert w.mean() == pytest.approx(1.0)
    assert np.all(w > 0)


def test_rare_codes_weigh_more_than_common_ones():
    codes = _codes([30, 5, 1, 10])
    w = rebalance_weights(codes, FAR)
    per_code = {c: w[codes == c][0] for c in range(4)}
    assert per_code[2] > per_code[1] > per_code[3] > per_code[0]
    # Every sample of one code gets the same weight.
    for c in range(4):
        assert np.ptp(w[codes == c]) == 0


def test_weights_match_the_formula_for_far_apart_codes():
    # Codes far apart: smoothing changes nothing; p = counts / n, w ~ 1 / ((1-lam) p + lam/Q).
    counts = np.array([6, 2, 1, 1])
    codes = _codes(counts)
    lam = 0.5
    p = counts / counts.sum()
    per_code = 1 / ((1 - lam) * p + lam / 4)
    expected = per_code[codes] / per_code[codes].mean()
    np.testing.assert_allclose(rebalance_weights(codes, FAR, lam=lam), expected, rtol=1e-9)


def test_lam_one_is_a_uniform_prior_so_all_weights_are_equal():
    w = rebalance_weights(_codes([40, 1, 3, 9]), FAR, lam=1.0)
    np.testing.assert_allclose(w, 1.0)


def test_lam_zero_is_pure_inverse_frequency():
    codes = _codes([8, 2, 1, 1])
    w = rebalance_weights(codes, FAR, lam=0.0)
    assert w[codes == 2][0] / w[codes == 0][0] == pytest.approx(8.0)


def test_smoothing_lowers_the_weight_of_a_rare_code_close_to_a_common_one():
    # Codes 1 and 2 are equally rare; 1 sits 3 units from the common code 0, 2 is far from all.
    codebook = np.array([[0.0, 0.0], [3.0, 0.0], [150.0, 150.0]])
    codes = _codes([50, 2, 2])
    w = rebalance_weights(codes, codebook, sigma=5.0)
    near, isolated = w[codes == 1][0], w[codes == 2][0]
    assert near < isolated
    # Without smoothing (tiny sigma) the two rare codes weigh the same.
    w0 = rebalance_weights(codes, codebook, sigma=1e-3)
    assert w0[codes == 1][0] == pytest.approx(w0[codes == 2][0])


def test_a_single_code_gets_weight_one():
    np.testing.assert_allclose(rebalance_weights(np.zeros(5, int), FAR), 1.0)
