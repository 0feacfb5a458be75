"""The image-level Colorizer: fit, colorize, determinism, model files, the bundled model."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest

import somcolor
from somcolor import datasets
from somcolor.classify import PatchClassifier
from somcolor.color import luminance, luv_to_rgb, rgb_to_luv, to_float_rgb
from somcolor.exceptions import ModelFormatError, SomcolorError
from somcolor.pipeline import Colorizer

TINY = dict(patch_size=3, hidden_layer_sizes=(8,), pixels_per_image=300, max_iter=5)


def _photos(n=4, shape=(24, 32), seed=0):
    """Smooth synthetic color photos: each a blend of two random colors plus texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    out = []
    for _ in range(n):
        a, b = rng.random(3), rng.random(3)
        t = (xx / shape[1])[..., None]
        img = a * t + b * (1 - t) + 0.1 * rng.random((*shape, 1))
        out.append((np.clip(img, 0, 1) * 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def model():
    return Colorizer(random_state=0, **TINY).fit(_photos())


def _arrays(m: Colorizer):
    c = m.classifier_
    return [m.quantizer_.codebook_, c.classes_, *c.coefs_, *c.intercepts_]


def test_same_seed_gives_the_same_model():
    a = Colorizer(random_state=7, **TINY).fit(_photos())
    b = Colorizer(random_state=7, **TINY).fit(_photos())
    for x, y in zip(_arrays(a), _arrays(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_different_seed_gives_a_different_model():
    a = Colorizer(random_state=1, **TINY).fit(_photos())
    b = Colorizer(random_state=2, **TINY).fit(_photos())
    assert not np.array_equal(a.classifier_.coefs_[0], b.classifier_.coefs_[0])


@pytest.mark.parametrize(
    "image",
    [
        np.full((5, 7), 128, np.uint8),
        np.zeros((1, 1), np.uint8),
        np.zeros((1, 9), np.uint8),
        np.zeros((9, 1, 1), np.uint8),
        np.full((6, 4, 3), 200, np.uint8),
        np.full((6, 4, 4), 90, np.uint8),
        np.full((3, 5), 40000, np.uint16),
        np.full((3, 5, 3), 0.25, np.float32),
    ],
    ids=["gray", "1x1", "1x9", "HxWx1", "rgb", "rgba", "gray16", "float32"],
)
def test_colorize_keeps_height_and_width_for_every_input_kind(model, image):
    out = model.colorize(image)
    assert out.shape == (image.shape[0], image.shape[1], 3)
    assert out.dtype == np.uint8


def test_colorize_keeps_the_input_luminance(model):
    photo = _photos(1, seed=3)[0]
    out = model.colorize(photo)
    # Output L equals input L except where gamut clipping moved it (and uint8 rounding).
    diff = np.abs(luminance(out) - luminance(photo))
    assert np.median(diff) < 0.5


def test_color_inputs_are_reduced_to_luminance_first(model):
    photo = _photos(1, seed=4)[0].astype(np.float64) / 255
    # Another photo with the same L everywhere but weaker chroma: its colors must not matter.
    luv = rgb_to_luv(photo)
    luv[..., 1:] *= 0.3
    other, _ = luv_to_rgb(luv)
    assert np.abs(luminance(other) - luminance(photo)).max() < 1e-3
    a, b = model.colorize(photo), model.colorize(other)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_colorize_returns_info_with_gamut_count(model):
    out, info = model.colorize(_photos(1)[0], return_info=True)
    assert (info.height, info.width) == out.shape[:2]
    assert 0 <= info.gamut_clipped <= out.shape[0] * out.shape[1]


def test_predicted_chroma_only_uses_codes_the_classifier_saw(model):
    m = Colorizer(random_state=0, som_shape=(2, 2), **TINY).fit(_photos())
    photos = _photos()
    # Refit the classifier without one code: it must never be predicted.
    X, uv, _ = m.build_dataset(photos, np.random.default_rng(0))
    codes = m.quantizer_.predict(uv)
    dropped = np.bincount(codes).argmax()
    keep = codes != dropped
    m.classifier_ = PatchClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(
        X[keep], codes[keep]
    )
    assert dropped not in m.classifier_.classes_
    uv_pred = m.predict_uv(luminance(photos[0])).reshape(-1, 2)
    used = {tuple(r) for r in np.unique(uv_pred, axis=0)}
    allowed = {tuple(m.quantizer_.codebook_[c].astype(np.float32)) for c in m.classifier_.classes_}
    assert used <= allowed


def test_save_load_round_trip_gives_identical_colorizations(model, tmp_path):
    path = model.save(tmp_path / "m.npz")
    loaded = Colorizer.load(path)
    photo = _photos(1, seed=9)[0]
    np.testing.assert_array_equal(model.colorize(photo), loaded.colorize(photo))
    assert loaded.get_params() == model.get_params()
    assert loaded.training_["n_images"] == 4


def test_load_refuses_a_pickle(tmp_path, monkeypatch):
    path = tmp_path / "evil.npz"
    with open(path, "wb") as fh:
        pickle.dump({"som_codebook": np.zeros((9, 2))}, fh)
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(ModelFormatError, match="pickle"):
        Colorizer.load(path)


def _rewrite(src, dst, change):
    with np.load(src, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    np.savez(dst, **arrays)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.__setitem__("mlp_classes", a["mlp_classes"] + 100), "codebook"),
        (lambda a: a.__setitem__("mlp_coef_0", a["mlp_coef_0"][:-1]), "layer shapes"),
        (lambda a: a.__setitem__("som_codebook", a["som_codebook"][:3]), "codebook shape"),
        (lambda a: a.pop("mlp_mean"), "damaged"),
        (lambda a: a.__setitem__("mlp_scale", a["mlp_scale"] * np.nan), "scale"),
        (
            lambda a: a.__setitem__(
                "metadata",
                np.array(str(a["metadata"]).replace('"format_version": 1', '"format_version": 99')),
            ),
            "newer",
        ),
        (lambda a: a.__setitem__("metadata", np.array("{not json")), "JSON"),
        (
            lambda a: a.__setitem__(
                "metadata", np.array(str(a["metadata"]).replace("somcolor-model", "other"))
            ),
            "not a somcolor model",
        ),
    ],
    ids=["classes", "layer", "codebook", "missing", "nan", "newer", "json", "foreign"],
)
def test_load_refuses_a_tampered_model(model, tmp_path, change, message):
    good = model.save(tmp_path / "good.npz")
    bad = tmp_path / "bad.npz"
    _rewrite(good, bad, change)
    with pytest.raises(ModelFormatError, match=message):
        Colorizer.load(bad)


def test_load_refuses_files_that_are_not_models(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ModelFormatError, match="not a somcolor model"):
        Colorizer.load(text)
    z = tmp_path / "empty.npz"
    with zipfile.ZipFile(z, "w"):
        pass
    with pytest.raises(ModelFormatError):
        Colorizer.load(z)
    with pytest.raises(ModelFormatError, match="no such"):
        Colorizer.load(tmp_path / "missing.npz")


def test_save_writes_no_pickle_and_readable_json(model, tmp_path):
    path = model.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["metadata"]))
        assert all(npz[k].dtype != object for k in npz.files)
    assert meta["format"] == "somcolor-model"
    assert meta["config"]["patch_size"] == 3
    assert meta["somcolor_version"] == somcolor.__version__


def test_fit_rejects_an_unknown_decoder_and_empty_data():
    with pytest.raises(SomcolorError, match="decoder"):
        Colorizer(decoder="mode", **TINY).fit(_photos())
    with pytest.raises(SomcolorError, match="no training images"):
        Colorizer(**TINY).fit([])


def test_bundled_model_colorizes_a_sample_photo_with_real_chroma():
    model = somcolor.load()
    photo_path = datasets.image_paths("bsds500", "test")[0]
    out = model.colorize(photo_path)
    photo = np.asarray(somcolor.io.read_image(photo_path))
    assert out.shape == photo.shape
    chroma = np.hypot(*np.moveaxis(rgb_to_luv(to_float_rgb(out))[..., 1:], -1, 0))
    assert chroma.mean() > 3.0  # not gray
    assert "BSDS500" in model.training_["description"]
