"""Tests for the Colorizer's newer options: richer features, rebalancing, decoders, smoothing,
a working resolution, codes from predict_uv, and model files with and without them."""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
from conftest import TINY_CONFIG, synthetic_photo

from somcolor import modelfile
from somcolor.color import luminance
from somcolor.pipeline import Colorizer
from somcolor.resize import working_shape

#: TINY_CONFIG with a shorter SOM run: a fit takes about half a second.
FAST = dict(TINY_CONFIG, som_iterations=2000)

#: Six photos: enough groups (images) for the grouped early stopping to hold one out.
PHOTOS = [synthetic_photo(seed, (24, 32)) for seed in range(6)]

EVERY_OPTION = dict(
    decoder="annealed",
    temperature=0.3,
    scales=(2, 4),
    scale_patch_size=3,
    position=True,
    image_stats=True,
    rebalance=True,
    smooth_radius=0.1,
    smooth_eps=1e-2,
    work_size=20,
)

OPTIONS = {
    "scales": dict(scales=(2, 4), scale_patch_size=3),
    "position": dict(position=True),
    "image_stats": dict(image_stats=True),
    "rebalance": dict(rebalance=True),
    "smooth": dict(smooth_radius=0.1, smooth_eps=1e-2),
    "work_size": dict(work_size=16),
    "mean": dict(decoder="mean"),
    "annealed": dict(decoder="annealed", temperature=0.2),
    "every option": EVERY_OPTION,
}


def _fit(**kw) -> Colorizer:
    return Colorizer(**{**FAST, **kw}).fit(PHOTOS)


@functools.cache
def _trained(name: str) -> Colorizer:
    """The model of one entry of OPTIONS ("plain": no option), trained once per test session.

    Tests must not change it; :func:`_with` gives a modified copy.
    """
    return _fit(**OPTIONS.get(name, {}))


@pytest.fixture
def plain():
    return _trained("plain")


@pytest.fixture(params=list(OPTIONS), ids=list(OPTIONS))
def optioned(request):
    return request.param, _trained(request.param)


@pytest.fixture
def every_option():
    return _trained("every option")


def _gray(shape=(24, 32), seed=10):
    return luminance(synthetic_photo(seed, shape)).astype(np.float32)


# --- every option trains and colorizes --------------------------------------------------------


@pytest.mark.parametrize("shape", [(24, 32), (17, 23), (1, 9), (40, 5)], ids=str)
def test_every_option_trains_and_keeps_the_output_shape(optioned, shape):
    _, model = optioned
    out = model.colorize(synthetic_photo(7, shape))
    assert out.shape == (*shape, 3) and out.dtype == np.uint8
    uv = model.predict_uv(_gray(shape))
    assert uv.shape == (*shape, 2) and uv.dtype == np.float32
    assert np.all(np.isfinite(uv))


def test_the_network_has_one_input_per_feature(optioned):
    _, model = optioned
    assert model.classifier_.n_features_in_ == model.feature_spec.n_features
    assert model.classifier_.coefs_[0].shape[0] == model.feature_spec.n_features


def test_feature_options_widen_the_input():
    assert Colorizer(**FAST).feature_spec.n_features == 9
    assert Colorizer(**FAST, **OPTIONS["scales"]).feature_spec.n_features == 9 + 2 * 9
    assert Colorizer(**FAST, position=True, image_stats=True).feature_spec.n_features == 13


def test_grouped_early_stopping_is_used_with_enough_images(plain):
    # Six images: one is held out, so the classifier records a held-out loss per epoch.
    assert len(plain.classifier_.validation_loss_curve_) == plain.classifier_.n_iter_


def test_every_option_is_deterministic_under_random_state(every_option):
    again = _fit(**EVERY_OPTION)
    np.testing.assert_array_equal(again.quantizer_.codebook_, every_option.quantizer_.codebook_)
    for a, b in zip(again.classifier_.coefs_, every_option.classifier_.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(again.colorize(PHOTOS[0]), every_option.colorize(PHOTOS[0]))


# --- working resolution -----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(24, 32), (40, 5), (7, 9)], ids=str)
def test_work_size_predicts_small_and_returns_full_size(shape):
    model = _trained("work_size")
    L = _gray(shape)
    proba, work = model.predict_proba(L)
    assert work == working_shape(shape, 16)
    assert max(work) == min(16, max(shape))
    assert proba.shape == (work[0] * work[1], len(model.classifier_.classes_))
    assert model.predict_uv(L).shape == (*shape, 2)


def test_work_size_reduces_the_training_photos_too():
    # Asking for more pixels than a reduced photo has takes all of its pixels.
    model = _fit(work_size=16, pixels_per_image=10_000)
    h, w = working_shape((24, 32), 16)
    assert model.training_["n_samples"] == len(PHOTOS) * h * w


def test_without_work_size_predict_proba_is_at_full_size(plain):
    proba, work = plain.predict_proba(_gray((13, 21)))
    assert work == (13, 21) and len(proba) == 13 * 21


# --- codes from predict_uv --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["plain", "work_size"])
def test_return_codes_gives_the_most_probable_code_at_the_working_shape(name):
    model = _trained(name)
    L = _gray((24, 32))
    uv, codes = model.predict_uv(L, return_codes=True)
    proba, work = model.predict_proba(L)
    assert uv.shape == (24, 32, 2)
    assert codes.shape == work
    assert set(np.unique(codes).tolist()) <= set(model.classifier_.classes_.tolist())
    expected = model.classifier_.classes_[np.argmax(proba, axis=1)].reshape(work)
    np.testing.assert_array_equal(codes, expected)
    np.testing.assert_array_equal(uv, model.predict_uv(L))


# --- decoders ---------------------------------------------------------------------------------


def _with(model, **params):
    m = copy.deepcopy(model)
    return m.set_params(**params)


def test_argmax_chroma_values_are_codebook_rows(plain):
    uv = plain.predict_uv(_gray()).reshape(-1, 2)
    rows = plain.quantizer_.codebook_[plain.classifier_.classes_].astype(np.float32)
    matches = (uv[:, None, :] == rows[None, :, :]).all(axis=2)
    assert matches.any(axis=1).all()


def test_mean_chroma_lies_within_the_codebooks_bounding_box_and_is_not_a_codebook_row(plain):
    uv = _with(plain, decoder="mean").predict_uv(_gray()).reshape(-1, 2)
    rows = plain.quantizer_.codebook_[plain.classifier_.classes_]
    lo, hi = rows.min(axis=0) - 1e-3, rows.max(axis=0) + 1e-3
    assert np.all((uv >= lo) & (uv <= hi))
    on_a_row = (np.abs(uv[:, None, :] - rows[None, :, :]).max(axis=2) < 1e-3).any(axis=1)
    assert not on_a_row.all()


def test_decoders_give_different_chroma(plain):
    L = _gray()
    argmax = plain.predict_uv(L)
    mean = _with(plain, decoder="mean").predict_uv(L)
    annealed = _with(plain, decoder="annealed", temperature=0.38).predict_uv(L)
    assert not np.allclose(argmax, mean, atol=0.5)
    assert not np.allclose(annealed, mean, atol=0.5)
    # The annealed mean lies between the mean and the argmax: closer to the argmax than the mean.
    assert np.abs(annealed - argmax).mean() < np.abs(mean - argmax).mean()


def test_annealed_temperature_one_is_the_mean(plain):
    L = _gray()
    mean = _with(plain, decoder="mean").predict_uv(L)
    t1 = _with(plain, decoder="annealed", temperature=1.0).predict_uv(L)
    np.testing.assert_allclose(t1, mean, atol=1e-3)


def test_annealed_small_temperature_approaches_the_argmax(plain):
    L = _gray()
    argmax = plain.predict_uv(L)
    dist = []
    for T in (1.0, 0.3, 0.03, 0.001):
        uv = _with(plain, decoder="annealed", temperature=T).predict_uv(L)
        dist.append(np.abs(uv - argmax).mean())
    # Colder is closer to the argmax; only near-ties between the top two codes stay mixed.
    assert dist == sorted(dist, reverse=True) and dist[0] > 5 * dist[-1]
    cold = _with(plain, decoder="annealed", temperature=0.001).predict_uv(L)
    assert (np.abs(cold - argmax).max(axis=2) < 0.1).mean() > 0.9


def test_an_unknown_decoder_is_refused_before_training():
    from somcolor.exceptions import SomcolorError

    with pytest.raises(SomcolorError, match="unknown decoder"):
        Colorizer(**FAST, decoder="median").fit(PHOTOS)


# --- rebalancing and smoothing ----------------------------------------------------------------


def test_rebalance_changes_the_network_but_not_the_codebook(plain):
    rebalanced = _trained("rebalance")
    np.testing.assert_array_equal(rebalanced.quantizer_.codebook_, plain.quantizer_.codebook_)
    assert not np.array_equal(rebalanced.classifier_.coefs_[0], plain.classifier_.coefs_[0])
    L = _gray()
    assert not np.array_equal(rebalanced.predict_uv(L), plain.predict_uv(L))


def _roughness(uv):
    return np.abs(np.diff(uv, axis=0)).mean() + np.abs(np.diff(uv, axis=1)).mean()


def test_smoothing_makes_the_chroma_smoother(plain):
    L = _gray()
    raw = plain.predict_uv(L)
    smooth = _with(plain, smooth_radius=0.1, smooth_eps=1e-2).predict_uv(L)
    assert smooth.shape == raw.shape and smooth.dtype == np.float32
    assert _roughness(smooth) < _roughness(raw)
    # Smoothing moves chroma, but not far on average.
    assert 0 < np.abs(smooth - raw).mean() < 20


# --- model files ------------------------------------------------------------------------------


def test_save_load_round_trip_with_every_option(every_option, tmp_path):
    path = every_option.save(tmp_path / "every.npz")
    loaded = Colorizer.load(path)
    assert loaded.get_params() == every_option.get_params()
    for shape in [(24, 32), (11, 7)]:
        photo = synthetic_photo(8, shape)
        np.testing.assert_array_equal(loaded.colorize(photo), every_option.colorize(photo))


#: The config keys of a model file written before the newer options existed.
ORIGINAL_KEYS = (
    "som_shape",
    "patch_size",
    "hidden_layer_sizes",
    "pixels_per_image",
    "som_iterations",
    "som_samples",
    "max_iter",
    "decoder",
    "random_state",
)


def test_an_old_model_file_without_the_new_config_keys_still_loads(plain, tmp_path):
    c = plain.classifier_
    arrays = plain.model_arrays()
    params = plain.get_params()
    config = {k: params[k] for k in ORIGINAL_KEYS}
    config["som_shape"] = list(config["som_shape"])
    config["hidden_layer_sizes"] = list(config["hidden_layer_sizes"])
    meta = {
        "config": config,
        "mlp": {"n_layers": len(c.coefs_), "out_activation": c.out_activation_},
        "training": {"n_images": 6},
        "somcolor_version": "0.1.0",
    }
    path = modelfile.write(tmp_path / "old.npz", arrays, meta)

    old = Colorizer.load(path)
    defaults = Colorizer().get_params()
    for key in set(defaults) - set(ORIGINAL_KEYS):
        assert old.get_params()[key] == defaults[key], key
    np.testing.assert_array_equal(old.colorize(PHOTOS[1]), plain.colorize(PHOTOS[1]))
