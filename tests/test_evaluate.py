"""Tests for somcolor.evaluate: colorfulness, the chroma-error AuC, color bins, the metrics of
one image, baselines, and the written summaries."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from conftest import image_array, synthetic_photo

from somcolor import evaluate as ev
from somcolor.evaluate import (
    METRICS,
    THRESHOLDS,
    ColorPrior,
    Evaluation,
    Truth,
    auc,
    color_bins,
    colorfulness,
    error_curve,
    evaluate_image,
)

# --- colorfulness -----------------------------------------------------------------------------


def _pixels(*colors):
    """A 1 x n uint8 RGB image of the given colors."""
    return np.array([colors], dtype=np.uint8)


def test_colorfulness_of_gray_is_zero():
    assert colorfulness(_pixels((0, 0, 0), (128, 128, 128), (255, 255, 255))) == 0.0


def test_colorfulness_of_one_color_is_point_three_times_the_mean_opponent_norm():
    # Pure blue: rg = 0, yb = -255 everywhere; sigma = 0, mu = 255.
    assert colorfulness(_pixels((0, 0, 255), (0, 0, 255))) == pytest.approx(0.3 * 255)
    # (200, 100, 50): rg = 100, yb = 100.
    expected = 0.3 * math.hypot(100, 100)
    assert colorfulness(_pixels((200, 100, 50))) == pytest.approx(expected)


def test_colorfulness_uses_signed_opponents_not_absolute_values():
    # Red and green: rg = +255 and -255 (mean 0, std 255), yb = 127.5 both.
    # Signed (Hasler & Suesstrunk): 255 + 0.3 * 127.5; with |rg|: 0.3 * hypot(255, 127.5).
    value = colorfulness(_pixels((255, 0, 0), (0, 255, 0)))
    assert value == pytest.approx(255 + 0.3 * 127.5)
    assert value != pytest.approx(0.3 * math.hypot(255, 127.5))


def test_colorfulness_hand_computed_two_colors():
    # (100, 0, 0): rg = 100, yb = 50.  (0, 0, 100): rg = 0, yb = -100.
    # std(rg) = 50, std(yb) = 75, mean(rg) = 50, mean(yb) = -25.
    expected = math.hypot(50, 75) + 0.3 * math.hypot(50, -25)
    assert colorfulness(_pixels((100, 0, 0), (0, 0, 100))) == pytest.approx(expected)


def test_colorfulness_of_float_rgb_is_on_the_0_255_scale():
    rgb8 = synthetic_photo(3, (6, 7))
    assert colorfulness(rgb8.astype(np.float64) / 255) == pytest.approx(colorfulness(rgb8))


# --- the cumulative error curve and its area --------------------------------------------------


def test_auc_is_one_when_every_error_is_zero():
    assert auc(np.zeros(7)) == 1.0


def test_auc_is_zero_when_every_error_exceeds_150():
    assert auc(np.full(5, 150.001)) == 0.0


def test_an_error_exactly_at_a_threshold_counts_at_that_threshold():
    curve = error_curve(np.array([3.0]))
    assert curve[3] == 1.0 and curve[2] == 0.0
    # An error of 75 is within t for t = 75..150: 76 of the 151 thresholds.
    assert auc(np.array([75.0])) == pytest.approx(76 / 151)
    assert auc(np.array([150.0])) == pytest.approx(1 / 151)


def test_auc_of_a_uniform_error_between_thresholds():
    # 75.5 is within t for t = 76..150: 75 of the 151 thresholds.
    assert auc(np.full(10, 75.5)) == pytest.approx(75 / 151)


def test_error_curve_is_the_fraction_within_each_threshold():
    err = np.array([0.0, 10.0, 10.0, 200.0])
    curve = error_curve(err)
    assert curve.shape == THRESHOLDS.shape
    assert curve[0] == 0.25 and curve[9] == 0.25 and curve[10] == 0.75 and curve[150] == 0.75
    assert np.all(np.diff(curve) >= 0)


def test_weighted_auc_equals_unweighted_when_weights_are_equal():
    err = np.random.default_rng(0).uniform(0, 200, 50)
    assert auc(err, np.full(50, 3.7)) == pytest.approx(auc(err))


def test_weighted_auc_drops_when_weights_favour_the_bad_pixels():
    err = np.array([0.0] * 5 + [200.0] * 5)
    assert auc(err) == pytest.approx(0.5)
    weights = np.array([1.0] * 5 + [3.0] * 5)
    assert auc(err, weights) == pytest.approx(0.25)


# --- color bins and the color prior -----------------------------------------------------------


def test_color_bins_edges():
    uv = np.array([[-200.0, -200.0], [-190.0, -200.0], [-200.0, 199.9], [199.9, 199.9], [0, 0]])
    assert color_bins(uv).tolist() == [0, 40, 39, 40 * 40 - 1, 20 * 40 + 20]


def test_color_bins_clip_values_beyond_the_range():
    uv = np.array([[-500.0, -201.0], [200.0, 1e6], [-1e6, 0.0]])
    assert color_bins(uv).tolist() == [0, 40 * 40 - 1, 20]


def test_color_bins_keep_the_image_shape():
    assert color_bins(np.zeros((3, 4, 2))).shape == (3, 4)


def test_color_prior_weights_are_inverse_frequencies():
    prior = ColorPrior()
    # Three pixels in the bin of (0, 0), one in the bin of (50, 50).
    prior.add(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 9.0], [50.0, 50.0]]))
    w = prior.weights(np.array([[2.0, 2.0], [55.0, 55.0]]))
    np.testing.assert_allclose(w, [4 / 3, 4 / 1])


def test_color_prior_accumulates_over_images():
    prior = ColorPrior()
    prior.add(np.zeros((2, 2, 2)))
    prior.add(np.full((1, 4, 2), 100.0))
    assert prior.counts.sum() == 8
    np.testing.assert_allclose(prior.weights(np.array([[0.0, 0.0], [100.0, 100.0]])), [2.0, 2.0])


# --- Truth ------------------------------------------------------------------------------------


def test_truth_of_an_rgb_array():
    rgb = synthetic_photo(1, (5, 6))
    t = Truth.of(rgb)
    np.testing.assert_array_equal(t.rgb, rgb)
    assert t.rgb.dtype == np.uint8 and t.L.dtype == np.float32
    assert t.L.shape == (5, 6) and t.uv.shape == (5, 6, 2)
    assert 0 <= t.L.min() and t.L.max() <= 100
    assert np.abs(t.uv).max() > 5  # a color photo has chroma


def test_truth_of_gray_has_no_chroma_and_three_equal_channels():
    t = Truth.of(image_array("gray", (5, 6)))
    assert t.rgb.shape == (5, 6, 3)
    assert np.all(t.rgb[..., 0] == t.rgb[..., 1]) and np.all(t.rgb[..., 1] == t.rgb[..., 2])
    assert np.abs(t.uv).max() < 0.05


def test_truth_of_rgba_drops_alpha():
    rgba = image_array("rgba", (5, 6))
    t = Truth.of(rgba)
    np.testing.assert_array_equal(t.rgb, rgba[..., :3])
    np.testing.assert_array_equal(t.uv, Truth.of(rgba[..., :3]).uv)


def test_truth_of_uint16_gray_equals_uint8_gray():
    t16 = Truth.of(image_array("gray16", (4, 5)))
    t8 = Truth.of(image_array("gray", (4, 5)))
    np.testing.assert_array_equal(t16.rgb, t8.rgb)
    np.testing.assert_allclose(t16.L, t8.L, atol=1e-4)


def test_truth_of_a_path_equals_truth_of_its_pixels(make_image):
    path = make_image("photo.png", shape=(6, 7), seed=2)
    for spelling in (path, str(path)):
        t = Truth.of(spelling)
        np.testing.assert_array_equal(t.rgb, image_array("rgb", (6, 7), seed=2))


def test_truth_of_a_truth_is_itself():
    t = Truth.of(synthetic_photo(0, (4, 4)))
    assert Truth.of(t) is t


# --- one image --------------------------------------------------------------------------------


def _prior_of(*images):
    prior = ColorPrior()
    for image in images:
        prior.add(Truth.of(image).uv)
    return prior


def _score(predictor, truth, codebook=None):
    """evaluate_image with the truth's own prior; an exact output has PSNR inf (no warning)."""
    with np.errstate(divide="ignore"):
        return evaluate_image(predictor, truth, _prior_of(truth), codebook)


def _oracle(truth):
    """A predictor that returns the true chroma of ``truth``."""
    return lambda L: (truth.uv.copy(), None)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_perfect_prediction_scores_perfectly(seed):
    truth = Truth.of(synthetic_photo(seed, (16, 20)))
    r = _score(_oracle(truth), truth)
    assert set(r) == set(METRICS)
    assert r["psnr"] >= 40
    assert r["ssim"] == pytest.approx(1.0, abs=1e-3)
    assert r["auc"] == pytest.approx(1.0, abs=2 / 151)
    assert r["auc_rebal"] == pytest.approx(1.0, abs=2 / 151)
    assert r["chroma_err"] < 1.0
    assert r["gamut_rate"] == 0.0
    assert r["colorfulness"] == pytest.approx(r["colorfulness_orig"], rel=1e-2)
    assert r["colorfulness_orig"] > 10
    assert math.isnan(r["accuracy"])  # no codebook anywhere
    assert r["seconds"] >= 0


def test_gray_predictor_on_a_gray_image_is_colorless_and_exact():
    truth = Truth.of(image_array("gray", (12, 12)))
    r = _score(ev.gray_predictor, truth)
    assert r["colorfulness_orig"] == 0.0
    assert r["colorfulness"] < 0.5
    assert r["chroma_err"] < 0.1
    assert r["auc"] > 0.99


def test_gray_predictor_on_a_color_photo_scores_worse_than_the_truth():
    truth = Truth.of(synthetic_photo(1, (12, 12)))
    r = _score(ev.gray_predictor, truth)
    # Gray chroma can round one channel by one step in uint8: colorfulness ~0, not exactly 0.
    assert r["colorfulness"] < 0.5 < r["colorfulness_orig"]
    assert r["chroma_err"] > 5
    assert r["auc"] < 0.99
    assert r["psnr"] < 40


def test_chroma_error_is_the_mean_uv_distance_of_the_output():
    truth = Truth.of(image_array("gray", (8, 8)))
    # A small constant shift of chroma that stays inside the gamut: the error is about its length.
    r = _score(ev.constant_predictor((6.0, 8.0)), truth)
    assert r["chroma_err"] == pytest.approx(10.0, abs=1.5)
    assert r["gamut_rate"] == 0.0


def test_gamut_rate_counts_clipped_pixels():
    truth = Truth.of(synthetic_photo(0, (8, 8)))
    r = _score(ev.constant_predictor((500.0, -500.0)), truth)
    assert r["gamut_rate"] > 0.9


def test_ssim_is_nan_for_images_smaller_than_its_window():
    truth = Truth.of(synthetic_photo(0, (5, 30)))
    r = _score(ev.gray_predictor, truth)
    assert math.isnan(r["ssim"]) and not math.isnan(r["psnr"])


def test_constant_predictor_returns_its_chroma_everywhere():
    uv, codes = ev.constant_predictor([3.0, -4.0])(np.zeros((2, 3), np.float32))
    assert codes is None and uv.shape == (2, 3, 2)
    np.testing.assert_array_equal(uv, np.broadcast_to([3.0, -4.0], (2, 3, 2)))
    uv[0, 0] = 99  # a writable copy, not a broadcast view
    gray_uv, gray_codes = ev.gray_predictor(np.zeros((2, 3), np.float32))
    assert gray_codes is None and gray_uv.shape == (2, 3, 2) and not gray_uv.any()


# --- code accuracy ----------------------------------------------------------------------------

#: Every color of a gray photo is nearest to code 0 of ONE and to code 1 of TWO.
ONE = np.array([[0.0, 0.0]])
TWO = np.array([[500.0, 500.0], [0.0, 0.0]])


def _all_code_zero(L):
    return np.zeros((*L.shape, 2), np.float32), np.zeros(L.shape, np.intp)


def test_accuracy_uses_the_global_codebook_for_a_plain_predictor():
    truth = Truth.of(image_array("gray", (8, 8)))
    r = _score(_all_code_zero, truth, codebook=TWO)
    assert r["accuracy"] == 0.0


def test_accuracy_prefers_the_predictors_own_codebook():
    truth = Truth.of(image_array("gray", (8, 8)))

    def predict(L):
        return _all_code_zero(L)

    predict.codebook = ONE
    r = _score(predict, truth, codebook=TWO)
    assert r["accuracy"] == 1.0


def test_accuracy_without_codes_uses_the_code_nearest_the_predicted_chroma():
    truth = Truth.of(image_array("gray", (8, 8)))
    r = _score(ev.constant_predictor((480.0, 480.0)), truth, TWO)
    assert r["accuracy"] == 0.0
    r = _score(ev.gray_predictor, truth, TWO)
    assert r["accuracy"] == 1.0


def test_accuracy_upsamples_codes_predicted_at_a_smaller_size():
    truth = Truth.of(image_array("gray", (8, 8)))

    def predict(L):
        codes = np.zeros((4, 4), np.intp)
        codes[:, 2:] = 1  # the right half gets code 1, the wrong code
        return np.zeros((*L.shape, 2), np.float32), codes

    predict.codebook = np.array([[0.0, 0.0], [300.0, 0.0]])
    r = _score(predict, truth)
    assert r["accuracy"] == 0.5


# --- a whole evaluation -----------------------------------------------------------------------


def _row(predictor, image, **values):
    row = {"predictor": predictor, "image": image}
    row.update({m: 0.0 for m in METRICS})
    row.update(values)
    return row


def test_summary_means_each_metric_per_predictor_and_the_colorfulness_ratio():
    result = Evaluation(
        [
            _row("a", "x", psnr=20.0, colorfulness=10.0, colorfulness_orig=40.0, accuracy=0.2),
            _row("b", "x", psnr=30.0, colorfulness=0.0, colorfulness_orig=40.0),
            _row("a", "y", psnr=30.0, colorfulness=30.0, colorfulness_orig=20.0, accuracy=0.4),
            _row("b", "y", psnr=10.0, colorfulness=0.0, colorfulness_orig=20.0),
        ]
    )
    a, b = result.summary()
    assert a["predictor"] == "a" and b["predictor"] == "b"
    assert a["images"] == 2
    assert a["psnr"] == 25.0 and b["psnr"] == 20.0
    assert a["accuracy"] == pytest.approx(0.3)
    # mean(out) / mean(orig) = 20 / 30, not the mean of the per-image ratios (0.25 + 1.5) / 2.
    assert a["colorfulness_ratio"] == pytest.approx(20 / 30)
    assert b["colorfulness_ratio"] == 0.0


def test_summary_skips_nan_values_and_is_nan_when_all_are():
    result = Evaluation(
        [
            _row("a", "x", accuracy=math.nan, ssim=0.5, colorfulness_orig=0.0),
            _row("a", "y", accuracy=math.nan, ssim=math.nan, colorfulness_orig=0.0),
        ]
    )
    (s,) = result.summary()
    assert math.isnan(s["accuracy"])
    assert s["ssim"] == 0.5
    assert math.isnan(s["colorfulness_ratio"])


def test_markdown_shows_a_dash_for_nan():
    result = Evaluation([_row("gray", "x", accuracy=math.nan, psnr=21.456)])
    lines = result.markdown().splitlines()
    assert lines[0].startswith("| predictor |") and "code acc." in lines[0]
    assert len(lines) == 3
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[0] == "gray" and cells[1] == "–" and cells[2] == "21.46"


def test_write_creates_the_three_files_atomically(tmp_path):
    result = Evaluation([_row("gray", "x", psnr=20.0), _row("model", "x", accuracy=math.nan)])
    out = tmp_path / "out" / "deeper"
    written = result.write(out)
    names = {"per_image.csv", "summary.csv", "summary.md"}
    assert {p.name for p in written} == names
    assert {p.name for p in out.iterdir()} == names  # no .part files left behind
    with open(out / "per_image.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["predictor"] for r in rows] == ["gray", "model"]
    assert float(rows[0]["psnr"]) == 20.0 and rows[1]["accuracy"] == "nan"
    with open(out / "summary.csv", newline="") as fh:
        summary = list(csv.DictReader(fh))
    assert [r["predictor"] for r in summary] == ["gray", "model"]
    assert "colorfulness_ratio" in summary[0]
    assert (out / "summary.md").read_text(encoding="utf-8") == result.markdown()
    # Writing again replaces the files.
    Evaluation([_row("other", "y")]).write(out)
    assert "other" in (out / "summary.md").read_text(encoding="utf-8")
    assert {p.name for p in out.iterdir()} == names


def test_evaluate_runs_every_predictor_on_every_image(make_image):
    paths = [make_image(f"p{i}.png", shape=(10, 12), seed=i) for i in range(2)]
    arrays = [synthetic_photo(5, (9, 9))]
    predictors = {"gray": ev.gray_predictor, "mean": ev.constant_predictor((10.0, 0.0))}
    seen = []

    def progress(items, desc=None):
        seen.append(desc)
        return items

    result = ev.evaluate(predictors, paths + arrays, codebook=TWO, progress=progress)
    assert seen == ["evaluating"]
    assert [(r["predictor"], r["image"]) for r in result.rows] == [
        ("gray", str(paths[0])),
        ("mean", str(paths[0])),
        ("gray", str(paths[1])),
        ("mean", str(paths[1])),
        ("gray", "image2"),
        ("mean", "image2"),
    ]
    assert all(not math.isnan(r["auc_rebal"]) for r in result.rows)
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in result.rows)  # the global codebook is used
    assert [s["predictor"] for s in result.summary()] == ["gray", "mean"]


def test_evaluate_takes_the_color_prior_over_all_images():
    # A pixel color that only the second image has must still get a finite rebalancing weight
    # when the first image is scored, so the rebalanced AuC of every row is a number.
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.zeros((8, 8, 3), np.uint8)
    b[..., 0] = 255
    with np.errstate(divide="ignore"):
        result = ev.evaluate({"gray": ev.gray_predictor}, [a, b])
    assert all(0.0 <= r["auc_rebal"] <= 1.0 for r in result.rows)
    # Image a is black: gray is exact there; image b is red: gray is far off.
    assert result.rows[0]["auc_rebal"] == pytest.approx(1.0)
    assert result.rows[1]["auc_rebal"] < 0.5


def test_model_predictor_gives_codes_and_the_models_codebook(tiny_model_path):
    from somcolor.pipeline import Colorizer

    model = Colorizer.load(tiny_model_path)
    predict = ev.model_predictor(model)
    np.testing.assert_array_equal(predict.codebook, model.quantizer_.codebook_)
    L = Truth.of(synthetic_photo(0, (9, 11))).L
    uv, codes = predict(L)
    assert uv.shape == (9, 11, 2) and codes.shape == (9, 11)
    assert set(np.unique(codes)) <= set(model.classifier_.classes_.tolist())
    r = _score(predict, Truth.of(synthetic_photo(0, (9, 11))))
    assert 0.0 <= r["accuracy"] <= 1.0
