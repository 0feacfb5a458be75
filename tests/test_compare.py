"""`make compare`'s runner, in its quick form: trains, evaluates and writes its tables."""

from __future__ import annotations

import csv

from experiments import compare


def test_quick_compare_writes_tables_with_baselines_and_variants(tmp_path, monkeypatch):
    monkeypatch.setattr(compare.paths, "INTERIM_DIR", tmp_path / "interim")
    out = tmp_path / "results"
    assert (
        compare.main(["--quick", "--collections", "opencountry", "--out", str(out), "--jobs", "1"])
        == 0
    )
    with open(out / "opencountry" / "summary.csv") as fh:
        rows = {r["predictor"]: r for r in csv.DictReader(fh)}
    expected = {"gray", "train mean chroma"} | {v.name for v in compare.VARIANTS if v.everywhere}
    assert set(rows) == expected
    assert float(rows["gray"]["colorfulness"]) < 1.0  # gray output has no color
    assert all(int(r["images"]) == 3 for r in rows.values())
    assert (out / "opencountry" / "grid.png").stat().st_size > 0
    readme = (out / "README.md").read_text()
    assert "64x64 thumbnails" in readme and "| gray |" in readme
    # A rerun reuses the cached models: no new model files appear.
    cached = sorted((tmp_path / "interim" / "compare").glob("*.npz"))
    assert (
        compare.main(["--quick", "--collections", "opencountry", "--out", str(out), "--jobs", "1"])
        == 0
    )
    assert sorted((tmp_path / "interim" / "compare").glob("*.npz")) == cached


def test_unknown_collection_is_refused(tmp_path, capsys):
    assert compare.main(["--collections", "mnist", "--out", str(tmp_path)]) == 2
    assert "unknown collection 'mnist'" in capsys.readouterr().err
