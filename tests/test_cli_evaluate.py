"""The ``somcolor evaluate`` command: a table of metrics per predictor, files with --out."""

from __future__ import annotations

import csv

import pytest
from conftest import synthetic_photo, write_image_file

from somcolor.cli import EXIT_USAGE
from somcolor.pipeline import Colorizer

TINY = dict(patch_size=3, hidden_layer_sizes=(8,), pixels_per_image=300, max_iter=5, random_state=0)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval") / "photos"
    for i in range(3):
        write_image_file(folder / f"p{i}.png", synthetic_photo(seed=10 + i, shape=(16, 20)))
    return folder


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    model = Colorizer(**TINY).fit([synthetic_photo(seed) for seed in range(4)])
    return model.save(tmp_path_factory.mktemp("models") / "tiny.npz")


def _table_rows(stdout: str) -> dict[str, list[str]]:
    """The markdown table's body rows, keyed by predictor name."""
    rows = {}
    for line in stdout.splitlines():
        if not line.startswith("| ") or line.startswith("| predictor"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] != "---":  # the separator under the header
            rows[cells[0]] = cells[1:]
    return rows


def test_evaluate_prints_a_table_with_baselines_and_the_model(cli, photos, model_path):
    r = cli("evaluate", photos, "--model", model_path, "-q")
    assert r.code == 0, r.err
    header = r.out.splitlines()[0]
    for column in ("predictor", "code acc.", "PSNR dB", "AuC", "AuC rebal.", "colorful. ratio"):
        assert column in header
    rows = _table_rows(r.out)
    assert list(rows) == ["gray", "train mean chroma", "tiny"]
    gray = rows["gray"]
    assert gray[6] == "0.00"  # the gray baseline has no colorfulness
    assert all(cell != "–" for cell in rows["tiny"][:6])  # the model has every metric


def test_evaluate_writes_summary_and_per_image_files(cli, photos, model_path, tmp_path):
    out = tmp_path / "results"
    r = cli("evaluate", photos, "--model", model_path, "--out", out, "-q")
    assert r.code == 0, r.err
    assert sorted(p.name for p in out.iterdir()) == ["per_image.csv", "summary.csv", "summary.md"]
    assert (out / "summary.md").read_text(encoding="utf-8") in r.out
    with open(out / "summary.csv", newline="") as fh:
        summary = list(csv.DictReader(fh))
    assert [s["predictor"] for s in summary] == ["gray", "train mean chroma", "tiny"]
    assert all(s["images"] == "3" for s in summary)
    with open(out / "per_image.csv", newline="") as fh:
        per_image = list(csv.DictReader(fh))
    assert len(per_image) == 3 * 3
    assert {row["image"] for row in per_image} == {str(photos / f"p{i}.png") for i in range(3)}
    assert 0 <= float(per_image[-1]["auc"]) <= 1


def test_evaluate_with_a_missing_input_fails_with_one_line(cli, tmp_path, model_path):
    missing = tmp_path / "nope.png"
    r = cli("evaluate", missing, "--model", model_path, "-q")
    assert r.code == EXIT_USAGE
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("somcolor: error:") and str(missing) in lines[0]
    assert r.out == ""


def test_evaluate_with_an_empty_folder_fails_with_one_line(cli, tmp_path, model_path):
    (tmp_path / "empty").mkdir()
    r = cli("evaluate", tmp_path / "empty", "--model", model_path, "-q")
    assert r.code != 0
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "no images found" in lines[0]


def test_evaluate_with_a_missing_model_fails_with_one_line(cli, photos, tmp_path):
    r = cli("evaluate", photos, "--model", tmp_path / "absent.npz", "-q")
    assert r.code != 0
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "absent.npz" in lines[0] and "Traceback" not in r.err


def test_decoder_mean_adds_the_argmax_baseline_row(cli, photos, model_path):
    r = cli("evaluate", photos, "--model", model_path, "--decoder", "mean", "-q")
    assert r.code == 0, r.err
    rows = _table_rows(r.out)
    assert list(rows) == ["gray", "train mean chroma", "tiny (argmax, unsmoothed)", "tiny"]
    assert rows["tiny (argmax, unsmoothed)"] != rows["tiny"]


def test_decoder_argmax_adds_no_extra_row(cli, photos, model_path):
    r = cli("evaluate", photos, "--model", model_path, "--decoder", "argmax", "-q")
    assert list(_table_rows(r.out)) == ["gray", "train mean chroma", "tiny"]


def test_no_baselines_leaves_only_the_model(cli, photos, model_path):
    r = cli("evaluate", photos, "--model", model_path, "--decoder", "mean", "--no-baselines", "-q")
    assert r.code == 0, r.err
    assert list(_table_rows(r.out)) == ["tiny"]


def test_limit_uses_the_first_images_only(cli, photos, model_path, tmp_path):
    r = cli("evaluate", photos, "--model", model_path, "--limit", "1", "--out", tmp_path, "-q")
    assert r.code == 0, r.err
    with open(tmp_path / "per_image.csv", newline="") as fh:
        images = {row["image"] for row in csv.DictReader(fh)}
    assert images == {str(photos / "p0.png")}


def test_two_models_give_two_rows(cli, photos, model_path, tmp_path):
    other = Colorizer(**{**TINY, "random_state": 1}).fit([synthetic_photo(s) for s in range(4)])
    other_path = other.save(tmp_path / "other.npz")
    r = cli("evaluate", photos, "--model", model_path, "--model", other_path, "-q")
    assert r.code == 0, r.err
    rows = _table_rows(r.out)
    assert list(rows) == ["gray", "train mean chroma", "tiny", "other"]
    assert rows["tiny"] != rows["other"]


def test_two_models_with_the_same_file_name_give_two_rows(cli, photos, model_path, tmp_path):
    # Runs often save "model.npz" in different folders; neither may silently replace the other.
    other = Colorizer(**{**TINY, "random_state": 1}).fit([synthetic_photo(s) for s in range(4)])
    other_path = other.save(tmp_path / "run2" / "tiny.npz")
    r = cli("evaluate", photos, "--model", model_path, "--model", other_path, "--no-baselines")
    assert r.code == 0, r.err
    rows = _table_rows(r.out)
    assert len(rows) == 2, list(rows)


def test_the_model_row_measures_the_model(cli, tmp_path):
    # A model trained on exactly the evaluated photos colors them better than gray does.
    photos = [synthetic_photo(seed=s, shape=(32, 40)) for s in range(3)]
    for i, p in enumerate(photos):
        write_image_file(tmp_path / "in" / f"q{i}.png", p)
    model = Colorizer(**{**TINY, "max_iter": 30, "pixels_per_image": 1280}).fit(photos)
    path = model.save(tmp_path / "fit.npz")
    r = cli("evaluate", tmp_path / "in", "--model", path, "--out", tmp_path / "o", "-q")
    with open(tmp_path / "o" / "summary.csv", newline="") as fh:
        summary = {s["predictor"]: s for s in csv.DictReader(fh)}
    assert r.code == 0, r.err
    assert float(summary["fit"]["chroma_err"]) < float(summary["gray"]["chroma_err"])
    assert float(summary["fit"]["auc"]) > float(summary["gray"]["auc"])
    assert float(summary["gray"]["colorfulness_ratio"]) < 0.01
    assert float(summary["fit"]["colorfulness_ratio"]) > 0.1
