"""Tests for the Levin et al. (2004) reference (experiments/levin.py)."""

from __future__ import annotations

import numpy as np

from experiments import levin


def _edge_image(h: int = 6, w: int = 8) -> np.ndarray:
    L = np.full((h, w), 30.0)
    L[:, w // 2 :] = 80.0
    return L


def test_rows_of_the_affinities_sum_to_one():
    L = np.random.default_rng(0).uniform(0, 100, (5, 7))
    W = levin.affinities(L)
    np.testing.assert_allclose(np.asarray(W.sum(axis=1)).ravel(), 1.0)
    assert W.diagonal().max() == 0.0
    assert W.nnz == 8 * 5 * 7 - 2 * (5 + 7) * 3 + 4  # 8 neighbours, fewer at the borders


def test_sparse_solution_matches_the_dense_twin():
    rng = np.random.default_rng(1)
    L = rng.uniform(0, 100, (6, 7))
    mask = np.zeros(L.shape, bool)
    mask[1, 1] = mask[4, 5] = mask[2, 6] = True
    uv = rng.uniform(-60, 60, (*L.shape, 2))
    np.testing.assert_allclose(
        levin.colorize(L, mask, uv), levin.dense_colorize(L, mask, uv), rtol=1e-5, atol=1e-4
    )


def test_hinted_pixels_keep_their_colour_and_free_ones_are_weighted_means():
    rng = np.random.default_rng(2)
    L = rng.uniform(0, 100, (5, 6))
    mask = np.zeros(L.shape, bool)
    mask[0, 0] = mask[4, 5] = True
    uv = np.zeros((*L.shape, 2))
    uv[0, 0], uv[4, 5] = (40, -10), (-30, 20)
    out = levin.colorize(L, mask, uv).astype(np.float64)
    np.testing.assert_allclose(out[mask], uv[mask], atol=1e-4)
    W = levin.affinities(L)
    flat = out.reshape(-1, 2)
    free = ~mask.ravel()
    np.testing.assert_allclose((W @ flat)[free], flat[free], atol=1e-3)


def test_a_single_hint_on_a_flat_image_colours_all_of_it():
    mask = np.zeros((5, 5), bool)
    mask[2, 2] = True
    uv = np.zeros((5, 5, 2))
    uv[2, 2] = (25, -35)
    out = levin.colorize(np.full((5, 5), 50.0), mask, uv)
    np.testing.assert_allclose(out, np.broadcast_to([25, -35], out.shape), atol=1e-3)


def test_hints_do_not_cross_a_strong_edge():
    L = _edge_image()
    mask = np.zeros(L.shape, bool)
    mask[2, 0] = mask[2, -1] = True
    uv = np.zeros((*L.shape, 2))
    uv[2, 0], uv[2, -1] = (60, 0), (-60, 0)
    out = levin.colorize(L, mask, uv)
    assert np.all(out[:, :4, 0] > 59) and np.all(out[:, 4:, 0] < -59)


def test_no_hints_give_gray():
    out = levin.colorize(_edge_image(), np.zeros((6, 8), bool), np.ones((6, 8, 2)))
    assert out.dtype == np.float32 and not out.any()
