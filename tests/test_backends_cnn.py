"""The optional CNN back ends (somcolor.backends.cnn), on tiny images, a few steps on CPU.

CI installs the ``cnn`` extra (the Makefile's EXTRAS), so torch is there; without it
this module is skipped. The core-without-torch checks run in subprocesses.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import synthetic_photo  # noqa: E402

from somcolor import evaluate as ev  # noqa: E402
from somcolor import modelfile  # noqa: E402
from somcolor.backends import load_model, model_kind  # noqa: E402
from somcolor.backends.cnn import (  # noqa: E402
    CHROMA_SCALE,
    AutoencoderColorizer,
    CodeCNNColorizer,
)
from somcolor.exceptions import ModelFormatError, SomcolorError  # noqa: E402
from somcolor.paths import DEFAULT_MODEL  # noqa: E402

#: A few epochs on 32 px crops of six 32x40 photos: well under a second each on one core.
TINY = dict(epochs=4, crop_size=32, crops_per_image=2, batch_size=4, device="cpu", random_state=0)
TINY_CLS = dict(TINY, som_shape=(3, 3), width=8, pixels_per_image=300, som_iterations=500)
MODELS = {
    "cnn-ae": lambda **kw: AutoencoderColorizer(**{**TINY, **kw}),
    "cnn-cls": lambda **kw: CodeCNNColorizer(**{**TINY_CLS, **kw}),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def photos():
    return [synthetic_photo(seed) for seed in range(6)]


@pytest.fixture(scope="module")
def fitted(photos):
    return {kind: make().fit(photos, description="six synthetic") for kind, make in MODELS.items()}


def test_autoencoder_has_the_studys_parameter_count():
    # (k * k * c_in + 1) * c_out per conv: 5x5 1->16, 5x5 16->16, 5x5 16->12,
    # 5x5 12->9 (stride 2), 3x3 9->32, 3x3 32->2; pooling and upsampling have none.
    by_hand = (25 + 1) * 16 + (400 + 1) * 16 + (400 + 1) * 12 + (300 + 1) * 9
    by_hand += (81 + 1) * 32 + (288 + 1) * 2
    assert by_hand == 17555
    assert AutoencoderColorizer().n_parameters == by_hand


def test_code_cnn_parameter_count_follows_codes_and_width():
    # 163 204 with the defaults (10x10 codes, width 32); the 1x1 output conv has
    # (width + 1) parameters per code.
    assert CodeCNNColorizer().n_parameters == 163204
    assert CodeCNNColorizer(som_shape=(3, 3)).n_parameters == 163204 - 91 * 33


@pytest.mark.parametrize("kind", MODELS)
def test_training_lowers_the_loss(fitted, kind):
    loss = fitted[kind].training_["loss"]
    assert len(loss) == TINY["epochs"]
    assert loss[-1] < loss[0]
    assert fitted[kind].training_["device"] == "cpu"


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("shape", [(32, 40), (13, 22), (1, 5)])
def test_outputs_have_the_input_size(fitted, kind, shape):
    model = fitted[kind]
    L = synthetic_photo(3, shape).mean(axis=2) / 2.55
    uv, codes = model.predict_uv(L, return_codes=True)
    assert uv.shape == (*shape, 2) and uv.dtype == np.float32
    if kind == "cnn-ae":
        assert codes is None
        assert np.abs(uv).max() <= CHROMA_SCALE
    else:
        assert codes.shape == shape and codes.min() >= 0 and codes.max() < 9
    rgb, info = model.colorize(synthetic_photo(3, shape), return_info=True)
    assert rgb.shape == (*shape, 3) and rgb.dtype == np.uint8
    assert (info.height, info.width) == shape


@pytest.mark.parametrize("kind", MODELS)
def test_same_seed_gives_the_same_weights(photos, kind):
    a, b = (MODELS[kind](epochs=1).fit(photos[:3]) for _ in range(2))
    sa, sb = a.net_.state_dict(), b.net_.state_dict()
    assert list(sa) == list(sb)
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def test_code_cnn_rebalances_and_decodes_with_the_annealed_mean(fitted):
    model = fitted["cnn-cls"]
    assert model.decoder == "annealed"
    weights = model.class_weights_
    counts = np.bincount(model.quantizer_.labels_, minlength=9)
    seen = counts > 0
    # rarer codes weigh more (lambda = 0.5 keeps the ratio bounded)
    rare, common = np.argmin(np.where(seen, counts, np.inf)), np.argmax(counts)
    assert weights[rare] >= weights[common]


@pytest.mark.parametrize("kind", MODELS)
def test_save_and_load_give_identical_predictions(fitted, kind, tmp_path):
    model = fitted[kind]
    path = model.save(tmp_path / "m.npz")
    assert model_kind(path) == kind
    arrays, meta = modelfile.read(path)
    assert meta["kind"] == kind and meta["n_parameters"] == model.n_parameters
    assert all(v.dtype == np.float32 for k, v in arrays.items() if k.startswith("net."))
    loaded = load_model(path, device="cpu")
    assert type(loaded) is type(model)
    L = synthetic_photo(5, (24, 28)).mean(axis=2) / 2.55
    np.testing.assert_array_equal(loaded.predict_uv(L), model.predict_uv(L))
    assert loaded.get_params() == {**model.get_params(), "device": "cpu"}


def test_a_file_holding_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    header = np.array(
        json.dumps({"format": "somcolor-model", "format_version": 1, "kind": "cnn-ae"})
    )
    np.savez(path, metadata=header, **{"net.conv1.weight": np.array([object()], dtype=object)})
    assert zipfile.is_zipfile(path)
    with pytest.raises(ModelFormatError, match="pickled"):
        load_model(path)


def test_weights_that_do_not_fit_the_architecture_are_refused(fitted, tmp_path):
    arrays, meta = modelfile.read(fitted["cnn-ae"].save(tmp_path / "ok.npz"))
    arrays["net.conv2.weight"] = arrays["net.conv2.weight"][:8]
    modelfile.write(tmp_path / "bad.npz", arrays, meta)
    with pytest.raises(ModelFormatError, match="damaged model file.*conv2"):
        load_model(tmp_path / "bad.npz")
    with pytest.raises(ModelFormatError, match="'som' model, not 'cnn-ae'"):
        AutoencoderColorizer.load(DEFAULT_MODEL)


def test_bad_parameters_are_one_line_errors(photos):
    with pytest.raises(SomcolorError, match="device must be one of"):
        AutoencoderColorizer(device="tpu").fit(photos)
    with pytest.raises(SomcolorError, match="epochs must be an integer >= 1, got 0"):
        AutoencoderColorizer(epochs=0).fit(photos)
    with pytest.raises(SomcolorError, match="at least 8 pixels"):
        AutoencoderColorizer(**TINY).fit([synthetic_photo(0, (6, 40))])


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_one_line_error(photos):
    with pytest.raises(SomcolorError, match="sees no CUDA GPU"):
        AutoencoderColorizer(device="cuda").fit(photos)


def test_evaluate_scores_both_cnns(fitted, tiny_model_path):
    predictors = {kind: ev.model_predictor(m) for kind, m in fitted.items()}
    codebook = fitted["cnn-cls"].quantizer_.codebook_
    result = ev.evaluate(predictors, [synthetic_photo(7), synthetic_photo(8)], codebook=codebook)
    rows = {s["predictor"]: s for s in result.summary()}
    assert set(rows) == {"cnn-ae", "cnn-cls"}
    for s in rows.values():
        assert 0 <= s["accuracy"] <= 1 and 0 <= s["auc"] <= 1 and s["psnr"] > 0


@pytest.mark.parametrize("backend", ["cnn-ae", "cnn-cls"])
def test_cli_trains_colorizes_and_describes_a_cnn(cli, photo_dir, tmp_path, backend):
    model = tmp_path / f"{backend}.npz"
    som = ["--som", "3x3"] if backend == "cnn-cls" else []
    r = cli("train", photo_dir, "-o", model, "--backend", backend, "--epochs", "2", *som,
            "--device", "cpu", "-q")  # fmt: skip
    assert r.code == 0, r.err
    expected = "17555 parameters" if backend == "cnn-ae" else "parameters"
    assert expected in r.out and "on cpu, 2 epochs" in r.out
    out = tmp_path / "color.png"
    r = cli("colorize", photo_dir / "a.png", "-o", out, "--model", model, "-q")
    assert r.code == 0, r.err
    from somcolor.io import read_image

    assert read_image(out).shape == (32, 40, 3)
    r = cli("info", model)
    assert r.code == 0 and f"kind:      {backend}" in r.out
    r = cli("evaluate", photo_dir, "--model", model, "-q")
    assert r.code == 0, r.err
    assert f"| {backend} |" in r.out and "| gray |" in r.out


def test_cli_refuses_cnn_options_for_the_som_backend(cli, photo_dir, tmp_path):
    r = cli("train", photo_dir, "-o", tmp_path / "m.npz", "--epochs", "3")
    assert r.code == 2 and len(r.err_lines) == 1 and "--epochs and --device" in r.err


def test_cli_passes_the_codebook_options_to_the_code_cnn(cli, photo_dir, tmp_path):
    model = tmp_path / "cls.npz"
    r = cli("train", photo_dir, "-o", model, "--backend", "cnn-cls", "--epochs", "1",
            "--som", "2x3", "--decoder", "mean", "--temperature", "0.2",
            "--pixels-per-image", "50", "--device", "cpu", "-q")  # fmt: skip
    assert r.code == 0, r.err
    params = load_model(model).get_params()
    assert params["decoder"] == "mean" and params["temperature"] == 0.2
    assert params["pixels_per_image"] == 50 and tuple(params["som_shape"]) == (2, 3)


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_core_imports_and_a_som_model_loads_without_torch():
    r = _python(
        """
        import sys
        import somcolor, somcolor.cli, somcolor.backends, somcolor.evaluate
        from somcolor.backends import load_model
        from somcolor.paths import DEFAULT_MODEL
        model = load_model(DEFAULT_MODEL)
        assert type(model).__name__ == "Colorizer"
        assert somcolor.cli.main(["info"]) == 0
        print("torch imported:", "torch" in sys.modules)
        """
    )
    assert r.returncode == 0, r.stderr
    assert "torch imported: False" in r.stdout


def test_a_cnn_without_torch_is_a_one_line_error_with_the_install_hint(fitted, tmp_path):
    path = fitted["cnn-ae"].save(tmp_path / "ae.npz")
    r = _python(
        f"""
        import sys

        class NoTorch:  # as if torch were not installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

        sys.meta_path.insert(0, NoTorch())
        from somcolor.cli import main
        code = main(["info", {str(path)!r}])
        code2 = main(["train", {str(tmp_path)!r}, "-o", {str(tmp_path / "x.npz")!r},
                      "--backend", "cnn-cls"])
        sys.exit(code * 10 + code2)
        """
    )
    assert r.returncode == 22, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 2
    assert all("pip install -e '.[cnn]' (torch==2.13.0)" in line for line in lines)
