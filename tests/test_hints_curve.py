"""experiments/hints_curve.py measures the product: its outputs are the CLI's, pixel for
pixel, and its table comes from them."""

from __future__ import annotations

import json

import numpy as np

import somcolor
from experiments import hints_curve
from somcolor import guide
from somcolor.io import read_image
from somcolor.paths import DATA_DIR

PHOTO = DATA_DIR / "raw" / "bsds500" / "test" / "100007.jpg"


def test_experiment_outputs_are_the_cli_outputs(cli, tmp_path):
    rgb = read_image(PHOTO)
    points = guide.simulated_hints(rgb, 10, seed=3)
    model = somcolor.load().predictor()
    outputs = hints_curve.photo_outputs(model, rgb, points, (0, 10), ("automatic", "somcolor"))
    hints = tmp_path / "h.json"
    hints.write_text(json.dumps({"points": [{"x": x, "y": y, "color": c} for x, y, c in points]}))
    assert cli("colorize", PHOTO, "-o", tmp_path / "hinted.png", "--hints", hints).code == 0
    assert cli("colorize", PHOTO, "-o", tmp_path / "auto.png").code == 0
    assert np.array_equal(read_image(tmp_path / "hinted.png"), outputs["somcolor", 10])
    assert np.array_equal(read_image(tmp_path / "auto.png"), outputs["automatic", 0])
    # no hints: the hinted path is the automatic output
    assert np.array_equal(outputs["somcolor", 0], outputs["automatic", 0])
    assert not np.array_equal(outputs["somcolor", 10], outputs["automatic", 10])


def test_run_scores_every_method(tmp_path):
    argv = ["--limit", "1", "--hints", "0,2", "--out", str(tmp_path)]
    assert hints_curve.main(argv) == 0
    table = (tmp_path / "summary.md").read_text()
    for label in hints_curve.LABELS.values():
        assert label in table
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["split"] == "test" and config["photos"] == 1
    assert (tmp_path / "curve.png").stat().st_size > 0


def test_bench_default_hints_row_times_the_public_session():
    from experiments.bench_default import HALF_MP, row_hints

    row = row_hints(somcolor.load(), 2)
    assert row["shape"] == list(HALF_MP) and max(row["working"]) == 256
    assert len(row["one_more_hint_all"]) == 2
    assert all(s > 0 for s in (row["session_seconds"], row["one_more_hint_seconds"]))
