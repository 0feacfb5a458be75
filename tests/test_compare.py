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


def test_bundled_default_has_the_configuration_of_the_new_default_row():
    """`make model` trains what `make compare` measured as the new default."""
    from somcolor.modelfile import read
    from somcolor.paths import DEFAULT_MODEL

    config = read(DEFAULT_MODEL)[1]["config"]
    row = next(v for v in compare.VARIANTS if v.name == compare.DEFAULT_NAME)
    expected = dict(row.train, **row.infer)
    for key, value in expected.items():
        got = config[key]
        assert (tuple(got) if isinstance(got, list) else got) == value, key
    assert config["pixels_per_image"] == row.bsds500_pixels


def test_unselected_summary_leaves_out_the_photos_that_chose_the_default(tmp_path):
    from pathlib import Path

    from somcolor import evaluate as ev

    files = [Path(f"{i:03d}.jpg") for i in range(15)]
    rows = [
        {"predictor": "p", "image": f.name, **{m: float(i) for m in ev.METRICS}}
        for i, f in enumerate(files)
    ]
    text = compare.write_unselected(ev.Evaluation(rows), files, tmp_path).read_text()
    # photos 0, 7, 14 chose the default; the other 12 average to their mean index
    kept = [i for i in range(15) if i % compare.SELECTION_STEP]
    assert text.startswith(f"The {len(kept)} test photos")
    assert f"| p | {sum(kept) / len(kept):.3f} |" in text


def test_choose_default_margins_say_which_candidate_meets_both_constraints():
    from experiments import choose_default

    rows = [
        dict(predictor="a", psnr=22.70, colorfulness_ratio=0.72, auc_rebal=0.74),  # meets both
        dict(predictor="b", psnr=22.61, colorfulness_ratio=0.6971, auc_rebal=0.74),  # ratio low
        dict(predictor="c", psnr=22.55, colorfulness_ratio=0.71, auc_rebal=0.74),  # PSNR low
        dict(predictor="d", psnr=23.00, colorfulness_ratio=1.2, auc_rebal=0.74),  # too colorful
    ]
    lines = choose_default.margins(rows, floor=22.60).splitlines()[2:]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert [c[0] for c in cells] == ["a", "b", "c", "d"]
    assert [c[-1] for c in cells] == ["yes", "no", "no", "no"]
    assert cells[1][1] == "+0.010" and cells[1][2] == "0.6971"  # a miss by 0.003 stays visible
    assert cells[2][1] == "-0.050"


def test_bench_quality_row_reads_the_default_and_previous_rows_of_make_compare(tmp_path):
    from experiments.bench_default import QUALITY, row_quality

    summary = tmp_path / "summary.csv"
    assert row_quality(summary) is None  # make compare has not run
    names = ["gray", compare.FULL_NAME, compare.DEFAULT_NAME]
    with summary.open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["predictor", "images", *QUALITY])
        w.writeheader()
        for i, name in enumerate(names):
            w.writerow({"predictor": name, "images": 200, **{k: 0.5 + i for k in QUALITY}})
    q = row_quality(summary)
    assert q["images"] == 200
    assert q["default"] == dict.fromkeys(QUALITY, 2.5)
    assert q["previous_default"] == dict.fromkeys(QUALITY, 1.5)
    # A summary from before the current default (its row named otherwise) is not read.
    summary.write_text(summary.read_text().replace(compare.DEFAULT_NAME, "an older default"))
    assert row_quality(summary) is None
