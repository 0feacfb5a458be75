"""Tests for the fast paths the benchmark measures, and for the benchmark itself.

Every fast kernel is compared with a slow, obviously correct version: the naive
reference the benchmark times (``tests/naive.py``), scikit-image for
the color conversions. Inputs are large enough to take the kernels' parallel path
(``SERIAL_BELOW`` items and up) as well as small enough to take the serial one. No
timings are asserted.
"""

import json

import naive
import numpy as np
import pytest
from skimage import color as skcolor
from skimage.color.colorconv import rgb_from_xyz

from experiments import bench
from somcolor._threads import SERIAL_BELOW, threads_for
from somcolor.classify import forward
from somcolor.color import (
    GAMUT_TOLERANCE,
    RGB_FROM_XYZ,
    XYZ_FROM_RGB,
    _u8,
    _u8_encoding,
    _u8_lookup,
    compose,
    luminance,
    luv_to_rgb,
    rgb_to_luv,
    to_float_rgb,
    to_uint8,
)
from somcolor.patches import image_patches, patches_at
from somcolor.pipeline import Colorizer
from somcolor.quantize import nearest_code

BIG = SERIAL_BELOW + 1000  # items: the kernels' parallel path


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def random_luv(rng, n, dtype=np.float64):
    """LUV spanning the whole range, many colors outside the sRGB gamut."""
    luv = np.stack(
        [rng.uniform(0, 100, n), rng.uniform(-120, 180, n), rng.uniform(-140, 110, n)], axis=1
    )
    luv[:10] = [[0, 0, 0], [100, 0, 0], [50, 0, 0], [7.9, 3, -2], [8.1, 1, 1]] * 2
    return luv.astype(dtype)


# --- color: the numba kernels against scikit-image ------------------------------------


def test_color_matrices_are_scikit_images():
    np.testing.assert_array_equal(XYZ_FROM_RGB, skcolor.colorconv.xyz_from_rgb)
    np.testing.assert_allclose(RGB_FROM_XYZ, rgb_from_xyz, rtol=0, atol=1e-15)


@pytest.mark.parametrize(("dtype", "atol"), [(np.float32, 1e-3), (np.float64, 1e-9)])
@pytest.mark.parametrize("n", [1, 5, BIG])
def test_rgb_to_luv_equals_scikit_image(rng, dtype, atol, n):
    rgb = rng.random((n, 3)).astype(dtype)
    rgb[0] = [0, 0, 0]
    got = rgb_to_luv(rgb)
    assert got.dtype == dtype and got.shape == rgb.shape
    np.testing.assert_allclose(got, skcolor.rgb2luv(rgb), rtol=0, atol=atol)


def test_rgb_to_luv_keeps_any_leading_shape(rng):
    rgb = rng.random((3, 4, 5, 3))
    np.testing.assert_array_equal(
        rgb_to_luv(rgb), rgb_to_luv(rgb.reshape(-1, 3)).reshape(rgb.shape)
    )
    assert rgb_to_luv(np.array([1.0, 1.0, 1.0])).shape == (3,)


@pytest.mark.parametrize(("dtype", "atol"), [(np.float32, 1e-4), (np.float64, 1e-12)])
@pytest.mark.parametrize("n", [12, BIG])
def test_luv_to_rgb_equals_scikit_image_and_counts_clipping_the_same(rng, dtype, atol, n):
    luv = random_luv(rng, n, dtype)
    got, clipped = luv_to_rgb(luv)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, skcolor.luv2rgb(luv), rtol=0, atol=atol)
    xyz = skcolor.luv2xyz(luv.astype(np.float64))
    linear = xyz @ rgb_from_xyz.T
    outside = (linear < -GAMUT_TOLERANCE) | (linear > 1 + GAMUT_TOLERANCE)
    expected = int(np.count_nonzero(np.any(outside, axis=1)))
    assert expected > n // 10  # the test does exercise clipping
    assert abs(clipped - expected) <= (0 if dtype == np.float64 else n // 10_000)


@pytest.mark.parametrize("n", [11, BIG])
def test_compose_equals_scikit_image_then_to_uint8_in_float64(rng, n):
    luv = random_luv(rng, n)
    L, uv = luv[:, 0].reshape(1, n), luv[:, 1:].reshape(1, n, 2)
    got, clipped = compose(L, uv)
    np.testing.assert_array_equal(got, to_uint8(skcolor.luv2rgb(luv)).reshape(1, n, 3))
    assert clipped == luv_to_rgb(luv)[1]


def test_compose_in_float32_differs_from_scikit_image_by_rounding_only(rng):
    luv = random_luv(rng, BIG, np.float32)
    got, _ = compose(luv[:, 0], luv[:, 1:])
    diff = np.abs(got.astype(int) - to_uint8(skcolor.luv2rgb(luv)))
    assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3


def test_compose_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="expected UV of shape"):
        compose(np.zeros((2, 3)), np.zeros((3, 2, 2)))


def test_uint8_encoding_table_equals_the_formula_everywhere(rng):
    threshold, start = _u8_encoding()
    edges = threshold[1:256]
    values = np.concatenate(
        [
            rng.uniform(-0.2, 1.2, 200_000),
            rng.uniform(0, 0.005, 50_000),
            edges,
            np.nextafter(edges, -np.inf),
            np.nextafter(edges, np.inf),
            [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, 5e-324, 0.0031308],
        ]
    )
    for v in values:
        assert _u8_lookup(v, threshold, start) == _u8(v), v


@pytest.mark.parametrize(
    "make",
    [
        lambda r: r.integers(0, 256, (60, 70), dtype=np.uint8),
        lambda r: r.integers(0, 256, (60, 70, 1), dtype=np.uint8),
        lambda r: r.integers(0, 256, (60, 70, 3), dtype=np.uint8),
        lambda r: r.integers(0, 256, (60, 70, 4), dtype=np.uint8),
        lambda r: r.integers(0, 256, (200, 200, 3), dtype=np.uint8),
        lambda r: r.integers(0, 65536, (60, 70), dtype=np.uint16),
        lambda r: r.integers(0, 65536, (60, 70, 3), dtype=np.uint16),
        lambda r: r.random((60, 70)) > 0.5,
        lambda r: r.random((60, 70, 3)) > 0.5,
        lambda r: r.random((60, 70)).astype(np.float32),
        lambda r: r.random((200, 200, 3)).astype(np.float32),
        lambda r: r.random((60, 70, 3)),
        lambda r: r.random((60, 70, 3)).astype(np.float16),
    ],
)
def test_luminance_equals_full_conversion_exactly(rng, make):
    image = make(rng)
    expected = rgb_to_luv(to_float_rgb(image))[..., 0]
    got = luminance(image)
    assert got.dtype == expected.dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)


def test_luminance_of_gray_rgb_equals_luminance_of_gray(rng):
    gray = rng.integers(0, 256, (50, 40), dtype=np.uint8)
    np.testing.assert_array_equal(luminance(np.repeat(gray[..., None], 3, axis=2)), luminance(gray))


def test_threads_for_runs_small_jobs_on_one_thread_and_restores():
    import numba

    before = numba.get_num_threads()
    with threads_for(SERIAL_BELOW - 1):
        assert numba.get_num_threads() == 1
    with threads_for(SERIAL_BELOW):
        assert numba.get_num_threads() == before
    assert numba.get_num_threads() == before


# --- SOM lookup: the kernel against the per-pixel loop over codewords -----------------


@pytest.mark.parametrize("n", [1, 127, 128, 129, 3000])
@pytest.mark.parametrize("n_codes", [1, 2, 9, 400])
def test_nearest_code_equals_the_naive_loop(rng, n, n_codes):
    X = rng.normal(0, 30, (n, 2))
    codebook = rng.normal(0, 30, (n_codes, 2))
    np.testing.assert_array_equal(nearest_code(X, codebook), naive.nearest_code(X, codebook))


@pytest.mark.parametrize("n_features", [1, 3, 5])
def test_nearest_code_equals_the_naive_loop_in_other_dimensions(rng, n_features):
    X = rng.normal(size=(700, n_features)).astype(np.float32)
    codebook = rng.normal(size=(30, n_features))
    np.testing.assert_array_equal(nearest_code(X, codebook), naive.nearest_code(X, codebook))


def test_nearest_code_breaks_ties_towards_the_first_code_like_the_loop():
    codebook = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 0.0]])
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 0.5], [-0.5, 0.5]] * 100)
    got = nearest_code(X, codebook)
    np.testing.assert_array_equal(got, naive.nearest_code(X, codebook))
    assert got[:4].tolist() == [0, 0, 0, 1]


def test_nearest_code_parallel_path_equals_the_loop_on_its_prefix(rng):
    X = rng.normal(0, 30, (BIG, 2)).astype(np.float32)
    codebook = rng.normal(0, 30, (400, 2))
    got = nearest_code(X, codebook)
    np.testing.assert_array_equal(got[:2000], naive.nearest_code(X[:2000], codebook))
    np.testing.assert_array_equal(got, nearest_code(X, codebook, chunk_rows=1000))


# --- the forward pass: the fused kernel against float64 numpy --------------------------


def random_network(rng, sizes, scale=1.0):
    coefs = [
        (rng.normal(size=(a, b)) * scale / np.sqrt(a)).astype(np.float32)
        for a, b in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    intercepts = [rng.normal(size=b).astype(np.float32) * 0.1 for b in sizes[1:]]
    mean = rng.normal(50, 5, sizes[0]).astype(np.float32)
    scale_ = rng.uniform(5, 30, sizes[0]).astype(np.float32)
    return mean, scale_, coefs, intercepts


def assert_same_as_naive(X, net, activation):
    got = forward(X, *net, activation)
    expected = naive.forward(X, *net, activation)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5)
    # The same most probable class wherever the top two are not tied at float32 precision.
    top2 = np.sort(expected, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4
    np.testing.assert_array_equal(got.argmax(1)[clear], expected.argmax(1)[clear])


@pytest.mark.parametrize(
    "sizes",
    [(25, 9), (25, 50, 9), (25, 50, 50, 9), (9, 7, 3, 5, 2), (121, 130, 3), (3, 1, 4), (1, 2)],
)
@pytest.mark.parametrize("n", [1, 127, 128, 129, 4000])
def test_forward_softmax_equals_naive(rng, sizes, n):
    net = random_network(rng, sizes)
    X = rng.normal(50, 20, (n, sizes[0]))
    assert_same_as_naive(X, net, "softmax")
    assert_same_as_naive(X.astype(np.float32), net, "softmax")


@pytest.mark.parametrize("n", [5, 4000])
def test_forward_logistic_equals_naive(rng, n):
    net = random_network(rng, (25, 20, 1), scale=3.0)
    assert_same_as_naive(rng.normal(50, 20, (n, 25)), net, "logistic")


def test_forward_writes_into_out_and_handles_no_rows(rng):
    net = random_network(rng, (4, 6, 3))
    out = np.full((10, 3), -1.0, dtype=np.float32)
    X = rng.normal(50, 20, (10, 4)).astype(np.float32)
    assert forward(X, *net, "softmax", out=out) is out
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)
    assert forward(X[:0], *net, "softmax").shape == (0, 3)
    with pytest.raises(ValueError, match="out_activation"):
        forward(X, *net, "identity")


# --- patches: the kernels against the Python loops --------------------------------------


@pytest.mark.parametrize("k", [1, 3, 5, 11])
@pytest.mark.parametrize("shape", [(1, 1), (3, 2), (9, 14), (40, 61)])
def test_patches_at_equals_the_python_loops(rng, k, shape):
    L = rng.random(shape).astype(np.float32) * 100
    index = np.concatenate([np.arange(L.size), rng.integers(0, L.size, 50)])
    np.testing.assert_array_equal(patches_at(L, index, k), naive.patches_at(L, index, k))


@pytest.mark.parametrize("k", [3, 5])
def test_image_patches_parallel_path_equals_the_python_loops(rng, k):
    L = rng.random((190, 180)).astype(np.float32) * 100  # 34 200 px: parallel
    got = image_patches(L, k)
    np.testing.assert_array_equal(got, naive.patches_at(L, range(L.size), k))
    np.testing.assert_array_equal(image_patches(L, k, 20, 23), got[20 * 180 : 23 * 180])


# --- colorizing end to end: the pipeline against the naive reference -------------------


@pytest.fixture(scope="module")
def small_model():
    rng = np.random.default_rng(0)
    photos = [(rng.random((30, 40, 3)) * 255).astype(np.uint8) for _ in range(4)]
    for p in photos:
        p[:15, :, 2] = 220  # a blue top: more than one color code
    return Colorizer(
        patch_size=3, hidden_layer_sizes=(12,), pixels_per_image=400, max_iter=10, random_state=0
    ).fit(photos)


@pytest.mark.parametrize("shape", [(37, 23), (190, 180), (20, 30, 3)])
def test_colorize_equals_the_naive_reference(small_model, shape):
    image = (np.random.default_rng(3).random(shape) * 255).astype(np.uint8)
    expected, expected_codes = naive.colorize(small_model, image, return_codes=True)
    got = small_model.colorize(image)
    _, codes = small_model.predict_uv(luminance(image).astype(np.float32), return_codes=True)
    same = codes == expected_codes
    assert same.mean() > 0.999  # differ only where two codes tie at float32 precision
    assert np.abs(got.astype(int) - expected)[same].max() <= 1


def test_naive_colorize_refuses_models_beyond_the_paper(small_model):
    from sklearn.base import clone

    other = clone(small_model).set_params(decoder="mean")
    other.__dict__.update({k: v for k, v in small_model.__dict__.items() if k.endswith("_")})
    with pytest.raises(ValueError, match="paper's model"):
        naive.colorize(other, np.zeros((4, 4), np.uint8))


# --- the benchmark: a smoke run at tiny sizes ------------------------------------------


def test_measure_reports_time_and_memory():
    m = bench.measure(lambda: np.ones(1000), 3)
    assert set(m) >= {"median_s", "runs_s", "cpu_s", "first_s", "peak_rss_mb", "extra_rss_mb"}
    assert len(m["runs_s"]) == 3 and m["median_s"] >= 0 and m["peak_rss_mb"] > 0


def test_bench_quick_run_writes_a_complete_report(tmp_path):
    only = ["decode_luv", "som_lookup", "patch_build", "forward", "colorize"]
    report = bench.run(bench.QUICK, only=only, isolate=False)
    names = [r["name"] for r in report["rows"]]
    assert names == [
        "decode_luv",
        "som_lookup_5x5",
        "patch_build_5x5",
        "forward",
        "colorize_32x32",
        "colorize_64x48",
    ]
    for row in report["rows"]:
        assert set(row) >= {"name", "what", "unit", "ours", "naive", "speedup", "load_avg"}
        assert set(row["ours"]) >= {"median_s", "per_s", "cpu_s", "peak_rss_mb", "extra_rss_mb"}
    with_naive = [r for r in report["rows"] if r["naive"]]
    assert {r["name"] for r in with_naive} >= {
        "som_lookup_5x5",
        "patch_build_5x5",
        "colorize_32x32",
    }
    assert all(r["speedup"] > 0 and r["equal"] for r in with_naive)
    fwd = next(r for r in report["rows"] if r["name"] == "forward")
    assert set(fwd["rates"]) == {
        "ours",
        "ours_1_thread",
        "numpy_float32_forward",
        "numpy_matmul_only",
    }
    assert {"machine", "config", "load_avg", "targets", "format_version"} <= set(report)
    assert {t["target"] for t in report["targets"]} >= {"patch build 5x5 vs naive"}
    json.dumps(report)  # serializable as it is
    assert "| stage |" in bench.table(report)
    assert bench.plot(report, tmp_path / "inference.png").stat().st_size > 0


def test_bench_main_writes_json_and_plot(tmp_path, capsys):
    assert bench.main(["--quick", "--only", "colorize", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    assert [r["name"] for r in report["rows"]] == ["colorize_32x32", "colorize_64x48"]
    assert (tmp_path / "inference.png").exists()
    assert "| target |" in capsys.readouterr().out
