"""The inference path: Predictor from plain arrays, its fused kernel, and a cold CLI start.

The fused kernel (patches read from L -> network -> decode) is compared with its slow
twin: the patches and the float64 layer-by-layer network of ``tests/naive.py`` and
:mod:`somcolor.decode`'s numpy decoders. The
Colorizer must give exactly what a Predictor built from its model file gives.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import naive
import numpy as np
import pytest
from conftest import TINY_CONFIG, synthetic_photo

from somcolor import predict
from somcolor._threads import SERIAL_BELOW
from somcolor.color import compose, luminance
from somcolor.decode import DECODERS, get_decoder
from somcolor.exceptions import ModelFormatError, SomcolorError
from somcolor.fused import rows_reached
from somcolor.params import DEFAULTS
from somcolor.paths import DEFAULT_MODEL
from somcolor.pipeline import Colorizer
from somcolor.predict import Predictor


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model = Colorizer(som_shape=(2, 3), **TINY_CONFIG).fit([synthetic_photo(s) for s in range(4)])
    return model, model.save(tmp_path_factory.mktemp("model") / "tiny.npz")


def random_predictor(rng, k, hidden, n_classes, decoder="argmax", n_codes=6, logistic=False):
    """A Predictor with a random network over k x k patches (no training)."""
    sizes = (k * k, *hidden, 1 if logistic else n_classes)
    coefs = [
        (rng.normal(size=(a, b)) * 2 / np.sqrt(a)).astype(np.float32)
        for a, b in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    intercepts = [rng.normal(size=b).astype(np.float32) * 0.1 for b in sizes[1:]]
    classes = np.sort(rng.choice(n_codes, n_classes, replace=False))
    config = dict(DEFAULTS, patch_size=k, som_shape=(1, n_codes), decoder=decoder)
    return Predictor(
        config=config,
        codebook=rng.normal(0, 30, (n_codes, 2)),
        classes=classes,
        mean=np.full(k * k, 50, np.float32),
        scale=np.full(k * k, 20, np.float32),
        coefs=coefs,
        intercepts=intercepts,
        out_activation="logistic" if logistic else "softmax",
    )


def slow_uv(p: Predictor, L: np.ndarray):
    """The twin of the fused kernel: explicit patches, a float64 network, numpy decoding."""
    X = naive.image_patches(L, p.feature_spec.patch_size)
    proba = naive.forward(X, p.mean, p.scale, p.coefs, p.intercepts, p.out_activation)
    uv = get_decoder(p.decoder)(proba, p.classes, p.codebook, p.temperature)
    return uv, proba


# --- the model's configuration ---------------------------------------------------------


def test_config_defaults_are_the_colorizers_parameters():
    assert DEFAULTS == Colorizer().get_params()


# --- the fused kernel against its slow twin --------------------------------------------


@pytest.mark.parametrize("decoder", list(DECODERS))
@pytest.mark.parametrize(
    ("shape", "k"),
    [((1, 1), 3), ((2, 3), 5), ((3, 1), 7), ((9, 14), 1), ((17, 33), 3), ((40, 37), 5)],
)
def test_fused_kernel_equals_patches_network_and_decoder(decoder, shape, k):
    rng = np.random.default_rng(sum(shape) + k)
    p = random_predictor(rng, k, (7, 5), n_classes=4, decoder=decoder)
    L = rng.uniform(0, 100, shape).astype(np.float32)
    uv, top = p._uv_rows(L, 0, shape[0], 0, shape[0])
    expected, proba = slow_uv(p, L)
    top2 = np.sort(proba, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4
    np.testing.assert_array_equal(top[clear], proba.argmax(1)[clear])
    if decoder == "argmax":
        np.testing.assert_array_equal(uv[clear], expected[clear].astype(np.float32))
    else:
        np.testing.assert_allclose(uv, expected, rtol=0, atol=2e-3)


@pytest.mark.parametrize("decoder", list(DECODERS))
def test_fused_kernel_on_many_pixels_takes_the_parallel_path_and_still_agrees(decoder):
    rng = np.random.default_rng(3)
    p = random_predictor(rng, 5, (8,), n_classes=5, decoder=decoder)
    shape = (190, 181)
    assert shape[0] * shape[1] > SERIAL_BELOW
    L = rng.uniform(0, 100, shape).astype(np.float32)
    uv, top = p._uv_rows(L, 0, shape[0], 0, shape[0])
    expected, proba = slow_uv(p, L)
    top2 = np.sort(proba, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(top[clear], proba.argmax(1)[clear])
    np.testing.assert_allclose(uv[clear], expected[clear], rtol=0, atol=2e-3)


def test_fused_kernel_with_a_logistic_output_decodes_through_both_classes():
    rng = np.random.default_rng(4)
    p = random_predictor(rng, 3, (6,), n_classes=2, logistic=True)
    L = rng.uniform(0, 100, (12, 15)).astype(np.float32)
    uv, top = p._uv_rows(L, 0, 12, 0, 12)
    expected, proba = slow_uv(p, L)
    clear = np.abs(proba[:, 1] - proba[:, 0]) > 1e-4
    np.testing.assert_array_equal(top[clear], proba.argmax(1)[clear])
    np.testing.assert_array_equal(uv[clear], expected[clear].astype(np.float32))


@pytest.mark.parametrize("decoder", list(DECODERS))
def test_fused_kernel_equals_the_forward_kernel_and_numpy_decoders(decoder):
    """The network runs as network.forward runs it, so the fused path and the general
    one (features, forward, numpy decoders) agree: exactly for argmax, except where two
    probabilities tie in float32, and to float32 rounding for the means."""
    rng = np.random.default_rng(5)
    p = random_predictor(rng, 5, (9, 7), n_classes=4, decoder=decoder)
    L = rng.uniform(0, 100, (31, 29)).astype(np.float32)
    proba, _ = p.predict_proba(L)
    uv, top = p._uv_rows(L, 0, 31, 0, 31)
    top2 = np.sort(proba, axis=1)[:, -2:]
    clear = top2[:, 1] > top2[:, 0]
    np.testing.assert_array_equal(top[clear], proba.argmax(1)[clear])
    expected = get_decoder(decoder)(proba, p.classes, p.codebook, p.temperature)
    if decoder == "argmax":
        np.testing.assert_array_equal(uv[clear], expected[clear].astype(np.float32))
    else:
        np.testing.assert_allclose(uv, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("height", [1, 2, 3, 4, 6, 11, 40])
@pytest.mark.parametrize("k", [1, 3, 5, 9])
def test_rows_reached_are_exactly_the_rows_the_patches_read(height, k):
    h = k // 2
    for r0 in range(height):
        for r1 in range(r0 + 1, min(height, r0 + 4) + 1):
            i = np.arange(r0 - h, r1 + h) % (2 * height)
            rows = np.where(i >= height, 2 * height - 1 - i, i)
            assert rows_reached(r0, r1, k, height) == (rows.min(), rows.max() + 1)


@pytest.mark.parametrize("kind", ["gray", "rgb", "rgba", "float"])
def test_colorizing_in_small_blocks_of_rows_changes_nothing(monkeypatch, kind):
    rng = np.random.default_rng(6)
    p = random_predictor(rng, 5, (8,), n_classes=4)
    image = rng.integers(0, 256, (23, 19, 3), dtype=np.uint8)
    image = {
        "gray": image[..., 0],
        "rgb": image,
        "rgba": np.dstack([image, image[..., :1]]),
        "float": image / np.float32(255),
    }[kind]
    L = luminance(image).astype(np.float32)
    uv, _ = p._uv_rows(L, 0, L.shape[0], 0, L.shape[0])
    whole = compose(L, uv.reshape(*L.shape, 2))
    for block in (1, 19, 40, 57):  # one row, several rows, a ragged last block
        monkeypatch.setattr(predict, "BLOCK_PIXELS", block)
        got = p._colorize_rows(image)
        np.testing.assert_array_equal(got[0], whole[0])
        assert got[1] == whole[1]


# --- one code path: Colorizer and Predictor ---------------------------------------------


@pytest.mark.parametrize("decoder", list(DECODERS))
def test_predictor_from_the_file_colorizes_exactly_as_the_colorizer(tiny, decoder):
    model, path = tiny
    model = copy.deepcopy(model).set_params(decoder=decoder)
    p = Predictor.from_file(path).set_params(decoder=decoder)
    photo = synthetic_photo(9, shape=(45, 38))
    np.testing.assert_array_equal(model.colorize(photo), p.colorize(photo))
    L = luminance(photo)
    uv, codes = model.predict_uv(L, return_codes=True)
    np.testing.assert_array_equal(uv, p.predict_uv(L))
    np.testing.assert_array_equal(codes, p.predict_uv(L, return_codes=True)[1])
    np.testing.assert_array_equal(model.predict_proba(L)[0], p.predict_proba(L)[0])


@pytest.mark.parametrize(
    "options",
    [
        dict(scales=(2,), scale_patch_size=3),
        dict(position=True, image_stats=True),
        dict(work_size=16),
        dict(smooth_radius=0.05),
    ],
    ids=["scales", "position-stats", "work-size", "smoothing"],
)
def test_models_with_context_features_or_smoothing_go_through_the_predictor_too(tmp_path, options):
    photos = [synthetic_photo(s) for s in range(3)]
    model = Colorizer(**TINY_CONFIG, **options).fit(photos)
    p = Predictor.from_file(model.save(tmp_path / "m.npz"))
    photo = synthetic_photo(7)
    np.testing.assert_array_equal(model.colorize(photo), p.colorize(photo))
    assert p.colorize(photo).shape == photo.shape


def test_predictor_keeps_the_files_arrays_and_metadata(tiny):
    model, path = tiny
    p = Predictor.from_file(path)
    np.testing.assert_array_equal(p.codebook, model.codebook)
    np.testing.assert_array_equal(p.classes, model.classifier_.classes_)
    assert p.config == Colorizer.load(path).get_params()
    assert p.training_["n_images"] == 4 and p.metadata_["format"] == "somcolor-model"
    assert p.decoder == "argmax" and p.feature_spec.patch_size == 3
    for key, value in model.model_arrays().items():
        np.testing.assert_array_equal(p.model_arrays()[key], value)


def test_evaluate_takes_a_predictor_or_a_colorizer_with_their_codebook(tiny):
    from somcolor.evaluate import model_predictor

    model, path = tiny
    for m in (model, Predictor.from_file(path)):
        predict = model_predictor(m)
        np.testing.assert_array_equal(predict.codebook, model.quantizer_.codebook_)
        uv, codes = predict(luminance(synthetic_photo(3)))
        assert uv.shape == (*codes.shape, 2)


def test_set_params_changes_a_copy_only_and_refuses_training_parameters(tiny):
    _, path = tiny
    p = Predictor.from_file(path)
    q = copy.copy(p).set_params(decoder="mean")
    assert (p.decoder, q.decoder) == ("argmax", "mean")
    with pytest.raises(SomcolorError, match="cannot set"):
        p.set_params(patch_size=5)
    with pytest.raises(SomcolorError, match="unknown decoder"):
        p.set_params(decoder="median")
    with pytest.raises(AttributeError):
        p.no_such_parameter  # noqa: B018


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda a, m: m["config"].update(patch_size=4), "patch size"),
        (lambda a, m: m["config"].update(colour="blue"), "unknown config keys"),
        (lambda a, m: m["config"].update(decoder="median"), "unknown decoder"),
        (lambda a, m: a.__setitem__("mlp_classes", a["mlp_classes"] + 100), "codebook"),
        (lambda a, m: a.pop("mlp_coef_0"), "damaged"),
    ],
    ids=["even-patch", "unknown-key", "decoder", "classes", "missing"],
)
def test_from_file_refuses_inconsistent_models_as_the_colorizer_does(tiny, tmp_path, edit, message):
    _, path = tiny
    with np.load(path) as npz:
        arrays = {key: npz[key] for key in npz.files}
    meta = json.loads(str(arrays.pop("metadata")))
    edit(arrays, meta)
    bad = tmp_path / "bad.npz"
    np.savez(bad, metadata=np.array(json.dumps(meta)), **arrays)
    for load in (Predictor.from_file, Colorizer.load):
        with pytest.raises(ModelFormatError, match=message):
            load(bad)


def test_bundled_model_through_the_predictor_equals_the_colorizer():
    photo = synthetic_photo(2, shape=(70, 90))
    p = Predictor.from_file(DEFAULT_MODEL)
    np.testing.assert_array_equal(p.colorize(photo), Colorizer.load(DEFAULT_MODEL).colorize(photo))


# --- a cold start loads no training code ------------------------------------------------


def test_cli_colorize_imports_neither_scikit_learn_nor_minisom(tiny, tmp_path):
    """Nor scipy.ndimage or scikit-image, for a model whose feature is the L patch."""
    from PIL import Image

    _, model = tiny
    src = tmp_path / "gray.png"
    Image.fromarray(synthetic_photo(1)[..., 0]).save(src)
    out = tmp_path / "out.png"
    code = (
        "import sys\n"
        "from somcolor.cli import main\n"
        f"rc = main(['colorize', {str(src)!r}, '-o', {str(out)!r}, '--model', {str(model)!r}])\n"
        "heavy = ('sklearn', 'minisom', 'scipy.ndimage', 'scipy.stats', 'skimage.transform')\n"
        "print(rc, sorted(m for m in heavy if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split("\n")[-2] == "0 []", run.stdout + run.stderr
    assert out.is_file()


def test_a_working_size_at_least_the_image_colorizes_as_full_resolution(tiny_model_path):
    from somcolor.predict import Predictor

    gray = (np.random.default_rng(3).random((30, 44)) * 255).astype(np.uint8)
    full = Predictor.from_file(tiny_model_path).colorize(gray)
    for size in (44, 45, 1000):
        same = Predictor.from_file(tiny_model_path).set_params(work_size=size)
        assert np.array_equal(same.colorize(gray), full)
    smaller = Predictor.from_file(tiny_model_path).set_params(work_size=22)
    assert smaller.colorize(gray).shape == full.shape
    assert not np.array_equal(smaller.colorize(gray), full)


@pytest.mark.parametrize("decoder", list(DECODERS))
@pytest.mark.parametrize("work_size", [None, 20])
def test_context_models_predict_as_decoding_the_whole_probability_array(
    tmp_path, monkeypatch, decoder, work_size
):
    """predict_uv of a context model (fused context kernel, then upsampling a block of
    rows at a time) gives what decoding predict_proba's whole array and resizing it
    gives, to float32 rounding (the kernel decodes a softmax from its logits)."""
    from somcolor.decode import get_decoder
    from somcolor.resize import resample

    photos = [synthetic_photo(s) for s in range(3)]
    model = Colorizer(**TINY_CONFIG, scales=(2,), scale_patch_size=3).fit(photos)
    p = Predictor.from_file(model.save(tmp_path / "m.npz"))
    p.set_params(decoder=decoder, work_size=work_size)
    L = luminance(synthetic_photo(8, shape=(37, 29)))
    proba, shape = p.predict_proba(L)
    whole = get_decoder(decoder)(proba, p.classes, p.codebook, p.temperature)
    expected = resample(whole.astype(np.float32).reshape(*shape, 2), L.shape)
    top = np.sort(proba, axis=1)
    clear = (top[:, -1] - top[:, -2] > 1e-5).reshape(shape)  # no float32 tie for the top
    for block in (1 << 16, 50, 7):  # one block, several, one row at a time (W = 29 > 7)
        monkeypatch.setattr(predict, "BLOCK_PIXELS", block)
        uv, codes = p.predict_uv(L, return_codes=True)
        np.testing.assert_allclose(uv, expected, rtol=1e-5, atol=2e-4)
        best = p.classes[np.argmax(proba, axis=1)].reshape(shape)
        np.testing.assert_array_equal(codes[clear], best[clear])
