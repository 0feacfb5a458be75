"""A tiny run of the reference evaluation (experiments/reference_eval.py) on shrunk photos."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from experiments import reference_eval
from somcolor import datasets
from somcolor.exceptions import DataError


def _have_data() -> bool:
    try:
        for name in ("bsds500", "fruits100", "opencountry"):
            datasets.image_paths(name, "test")[:1]
    except DataError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _have_data(), reason="data/raw is incomplete")


def test_film_frames_are_the_same_size_and_pan_over_the_photo():
    photo = np.arange(100 * 200 * 3, dtype=np.uint32).reshape(100, 200, 3).astype(np.uint8)
    first = reference_eval.film_frame(photo, 0)
    later = reference_eval.film_frame(photo, 5 * reference_eval.FPS)
    assert first.shape == later.shape == (75, 120, 3)
    assert not np.array_equal(first, later)


def test_a_tiny_run_scores_every_protocol_and_method(tmp_path, capsys):
    out = tmp_path / "reference_eval.md"
    assert reference_eval.main(["--n", "1", "--max-side", "48", "--out", str(out)]) == 0
    table = out.read_text()
    assert table in capsys.readouterr().out
    for protocol in (
        "| halves |",
        "| unrelated |",
        "| same class | Fruits-100",
        "| same class | Open Country",
        "| film |",
    ):
        assert protocol in table
    for method in reference_eval.METHODS:
        assert f"| {method} |" in table
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["config"]["n"] == 1 and data["config"]["max_side"] == 48
    sets = {(r["protocol"], r["set"]) for r in data["results"]}
    assert len(sets) == 6  # halves, unrelated, Fruits-100, Open Country, film k=1s and 5s
    for result in data["results"]:
        assert set(result["summary"]) == set(reference_eval.METHODS)
        for s in result["summary"].values():
            for key in ("psnr", "auc_rebal", "colorfulness_ratio", "seconds"):
                assert math.isfinite(s[key]), (result["set"], s["predictor"], key)
    film = [r for r in data["results"] if r["protocol"] == "film"]
    assert all(len(r["rows"]) == 3 * len(reference_eval.FILM_STARTS) for r in film)


def test_val_split_and_chosen_protocols_with_adapt_settings(tmp_path):
    out = tmp_path / "val.md"
    argv = ["--n", "2", "--max-side", "48", "--out", str(out), "--split", "val"]
    argv += ["--protocols", "halves,unrelated", "--set", "match_sigma=0"]
    assert reference_eval.main(argv) == 0
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["config"]["split"] == "val" and data["config"]["adapt"] == {"match_sigma": 0}
    assert [r["protocol"] for r in data["results"]] == ["halves", "unrelated"]
    rows = data["results"][1]["rows"]
    # unrelated: each photo's reference is the next val photo
    names = [r["image"] for r in rows if r["predictor"] == "default"]
    refs = [r["reference"] for r in rows if r["predictor"] == "default"]
    assert refs == names[1:] + names[:1]
    assert "BSDS500 val" in out.read_text()
    with pytest.raises(SystemExit):
        reference_eval.main(["--protocols", "halves,nope", "--out", str(out)])
