"""The fused kernel for context models (fused.context_uv) against the unfused path.

The unfused path (``image_features`` + ``network.forward`` + the decoders of
``somcolor.decode``) is the fused kernel's slow twin: for every feature combination,
decoder, output unit and image shape they must give the same UV (up to float32
rounding) and the same most probable column (up to ties).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import somcolor
from somcolor.decode import DECODERS
from somcolor.features import FeatureSpec, _Prepared, image_features
from somcolor.fused import context_uv
from somcolor.network import forward, pack

MODES = {"argmax": 0, "mean": 1, "annealed": 2}

SPECS = [
    FeatureSpec(5, scales=scales, scale_patch_size=3, position=position, image_stats=stats)
    for scales, position, stats in itertools.product(
        [(), (4,), (4, 16)], [False, True], [False, True]
    )
]

#: Odd and even sizes, several tiles, images smaller than the patches, one row, one column.
SHAPES = [(13, 11), (12, 16), (40, 37), (3, 2), (2, 3), (1, 1), (1, 20), (20, 1)]


def _L(shape, seed=0):
    """A luminance image in 0..100: noise on a left-to-right ramp, so coarse levels vary."""
    rng = np.random.default_rng(seed)
    L = rng.random(shape) * 60 + np.linspace(0, 40, shape[1])[None, :]
    return L.astype(np.float32)


class _Model:
    """A small random network over a spec's features, with a codebook and classes."""

    def __init__(self, spec, logistic=False, hidden=(8, 6), seed=1):
        rng = np.random.default_rng(seed)
        n_codes = 9
        self.classes = np.sort(rng.choice(n_codes, size=2 if logistic else 5, replace=False))
        self.codebook = rng.normal(size=(n_codes, 2)) * 30
        widths = [spec.n_features, *hidden, 1 if logistic else len(self.classes)]
        self.coefs = [rng.normal(size=(i, o)) * 0.5 for i, o in itertools.pairwise(widths)]
        self.intercepts = [rng.normal(size=o) * 0.1 for o in widths[1:]]
        self.mean = (rng.normal(size=spec.n_features) * 5 + 50).astype(np.float32)
        self.scale = rng.uniform(10, 30, size=spec.n_features).astype(np.float32)
        self.out_activation = "logistic" if logistic else "softmax"
        self.temperature = 0.38


def _fused(L, spec, model, decoder, r0=0, r1=None, proba=None):
    prep = _Prepared(L, spec)
    weights, biases, sizes = pack(model.coefs, model.intercepts)
    palette = model.codebook[model.classes].astype(np.float32)
    return context_uv(
        prep.L,
        spec,
        prep.levels,
        prep.stats,
        model.mean,
        model.scale,
        weights,
        biases,
        sizes,
        model.out_activation == "logistic",
        MODES[decoder],
        model.temperature,
        palette,
        r0,
        r1,
        proba,
    )


def _unfused(L, spec, model, decoder):
    """Probabilities and UV of every pixel, through the feature matrix."""
    X = np.concatenate([block for _, _, block in image_features(L, spec, block_pixels=50)])
    proba = forward(X, model.mean, model.scale, model.coefs, model.intercepts, model.out_activation)
    decode = DECODERS[decoder].decode
    uv = decode(proba, model.classes, model.codebook, model.temperature).astype(np.float32)
    return proba, uv


def _assert_same(uv, top, proba, ref_uv, decoder):
    assert uv.shape == ref_uv.shape and uv.dtype == np.float32
    assert top.shape == (len(proba),)
    same = top == np.argmax(proba, axis=1)
    # Where the columns differ, the two probabilities tie in float32.
    best = proba.max(axis=1)
    np.testing.assert_allclose(proba[~same, top[~same]], best[~same], rtol=1e-6)
    assert np.count_nonzero(~same) <= 0.01 * len(same)
    # The argmax decoder's UV is its column's: compare it where the columns agree.
    keep = same if decoder == "argmax" else np.ones(len(uv), dtype=bool)
    np.testing.assert_allclose(uv[keep], ref_uv[keep], rtol=1e-5, atol=2e-4)


@pytest.mark.parametrize("decoder", sorted(MODES))
@pytest.mark.parametrize("hidden", [(8, 6), (7,)], ids=str)
@pytest.mark.parametrize("logistic", [False, True], ids=["softmax", "logistic"])
@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_fused_kernel_matches_the_feature_matrix_path(spec, logistic, hidden, decoder):
    L = _L((13, 11))
    model = _Model(spec, logistic, hidden)
    uv, top = _fused(L, spec, model, decoder)
    proba, ref_uv = _unfused(L, spec, model, decoder)
    _assert_same(uv, top, proba, ref_uv, decoder)


@pytest.mark.parametrize("decoder", sorted(MODES))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_fused_kernel_matches_on_every_image_shape(shape, decoder):
    spec = FeatureSpec(7, scales=(4, 16), scale_patch_size=5, position=True, image_stats=True)
    L = _L(shape, seed=2)
    model = _Model(spec)
    uv, top = _fused(L, spec, model, decoder)
    proba, ref_uv = _unfused(L, spec, model, decoder)
    _assert_same(uv, top, proba, ref_uv, decoder)


@pytest.mark.parametrize("rows", [(0, 1), (5, 9), (17, 40), (39, 40), (7, 7)], ids=str)
def test_fused_kernel_colorizes_a_range_of_rows(rows):
    r0, r1 = rows
    spec = FeatureSpec(5, scales=(4, 16), scale_patch_size=3, position=True, image_stats=True)
    L = _L((40, 37), seed=3)
    model = _Model(spec)
    uv, top = _fused(L, spec, model, "annealed", r0, r1)
    proba, ref_uv = _unfused(L, spec, model, "annealed")
    W = L.shape[1]
    _assert_same(uv, top, proba[r0 * W : r1 * W], ref_uv[r0 * W : r1 * W], "annealed")


@pytest.fixture(scope="module")
def default_model():
    return somcolor.load("default").predictor()


@pytest.mark.parametrize("decoder", sorted(MODES))
@pytest.mark.parametrize("shape", [(48, 33), (3, 2), (1, 20), (20, 1)], ids=str)
def test_fused_kernel_matches_with_the_default_model(default_model, shape, decoder):
    model = default_model
    spec = model.feature_spec
    assert spec.scales and spec.position
    L = _L(shape, seed=4)
    uv, top = _fused(L, spec, model, decoder)
    proba, ref_uv = _unfused(L, spec, model, decoder)
    _assert_same(uv, top, proba, ref_uv, decoder)


def _fused_proba(L, spec, model, decoder):
    """The fused kernel's UV, columns and probabilities."""
    proba = np.empty((L.size, len(model.classes)), np.float32)
    uv, top = _fused(L, spec, model, decoder, proba=proba)
    return uv, top, proba


@pytest.mark.parametrize("decoder", sorted(MODES))
@pytest.mark.parametrize("spec", SPECS[::3], ids=repr)
def test_fused_kernel_gives_the_networks_probabilities_in_the_same_pass(spec, decoder):
    L = _L((40, 37), seed=5)
    model = _Model(spec)
    uv, top, proba = _fused_proba(L, spec, model, decoder)
    ref_proba, ref_uv = _unfused(L, spec, model, decoder)
    np.testing.assert_allclose(proba, ref_proba, rtol=1e-5, atol=1e-6)
    _assert_same(uv, top, ref_proba, ref_uv, decoder)
    # The UV is what the kernel gives without the probabilities.
    uv_alone, top_alone = _fused(L, spec, model, decoder)
    np.testing.assert_array_equal(uv, uv_alone)
    np.testing.assert_array_equal(top, top_alone)


def test_tiles_shared_among_threads_give_the_one_thread_result(default_model):
    import numba

    from somcolor.fused import CONTEXT_TILE

    model = default_model
    L = _L((211, 307), seed=6)  # 64 777 pixels: many tiles, the last one partial
    assert L.size > 40 * CONTEXT_TILE and L.size % CONTEXT_TILE
    uv, top = _fused(L, model.feature_spec, model, "annealed")
    saved = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        uv_one, top_one = _fused(L, model.feature_spec, model, "annealed")
    finally:
        numba.set_num_threads(saved)
    np.testing.assert_array_equal(uv, uv_one)
    np.testing.assert_array_equal(top, top_one)
    proba, ref_uv = _unfused(L, model.feature_spec, model, "annealed")
    _assert_same(uv, top, proba, ref_uv, "annealed")
