"""Tests for the paper-reproduction runner (experiments/): config, cache keys, resume, Dask.

Every run here is tiny (a dozen 64x64 Open Country thumbnails, a few hundred pixels
each, two splits) and writes to tmp_path, never to experiments/results or data/interim.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from experiments import config, data, grid, paper, run
from experiments.grid import GridStats
from somcolor import paths

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01-paper-walkthrough.ipynb"

#: A grid of 2 patch sizes x 2 networks x 2 splits = 8 cells, each a fraction of a second.
TINY = {
    "max_images": 12,
    "pixels_per_image": 200,
    "som_iterations": 500,
    "som_samples": 1000,
    "som_repeats": 1,
    "som_shapes": ("2x2", "3x3"),
    "patch_sizes": (3, 5),
    "hidden_layers": ("8", "8+8"),
    "n_splits": 2,
    "train_size": 800,
    "test_size": 150,
    "max_iter": 2,
    "n_jobs": 1,
}


def tiny(file: str = "table2", **more) -> config.ExperimentConfig:
    """The config of ``experiments/configs/<file>.toml`` with the TINY settings and ``more``."""
    return config.load(CONFIGS / f"{file}.toml", **{**TINY, **more})


def scores(results: Path, name: str) -> list[tuple]:
    """The cells' identity and scores (not their timings) from a run's cells.csv."""
    with open(results / name / "cells.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return sorted(
        (r["patch"], r["hidden"], r["split"], r["train_score"], r["test_score"]) for r in rows
    )


# ---------------------------------------------------------------------- bad input
def test_unknown_key_on_the_command_line_is_refused_in_one_line(capsys):
    code = run.main([str(CONFIGS / "table2.toml"), "--set", "max_iters=3"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0
    assert "unknown config key 'max_iters'" in err and "did you mean 'max_iter'" in err


def test_unknown_key_in_a_config_file_is_refused(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('experiment = "table2"\npatch_size = 3\nhiden_layers = ["10"]\n')
    with pytest.raises(config.ConfigError, match="unknown config key 'hiden_layers'"):
        config.load(path)


@pytest.mark.parametrize(
    ("toml", "sets", "message"),
    [
        ('n_splits = "ten"', [], "n_splits: expected int, got str 'ten'"),
        ("early_stopping = 1", [], "early_stopping: expected bool, got int 1"),
        ("patch_sizes = [3, 5.5]", [], "patch_sizes: expected int, got float 5.5"),
        ("", ["n_splits=2.5"], "n_splits: expected int, got '2.5'"),
        ("", ["max_iter"], "--set expects key=value"),
        ("", ["patch_sizes=4"], "patch size must be a positive odd integer"),
        ("", ["hidden_layers=50+x"], "hidden layers: expected layer sizes like 50,50"),
        ("", ["dataset=imagenet"], "dataset: expected one of"),
        ("", ["hidden_layers="], "empty grid: hidden_layers is empty"),
    ],
)
def test_wrong_types_and_values_are_refused_naming_the_key(tmp_path, toml, sets, message):
    path = tmp_path / "bad.toml"
    path.write_text(toml + "\n")
    with pytest.raises(config.ConfigError) as info:
        config.load(path, sets)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_defaults_are_the_papers_protocol():
    cfg = config.load(CONFIGS / "table2.toml")
    assert cfg.name == "table2"
    assert (cfg.som_shape, cfg.patch_sizes, cfg.pixels_per_image) == ("3x3", (3, 5, 11), 2500)
    assert cfg.hidden_layers == ("10", "50", "100", "50+50", "100+100", "200+200", "300+300")
    assert (cfg.n_splits, cfg.train_size, cfg.test_size) == (10, 50000, 5000)
    assert config.load(CONFIGS / "table1.toml").som_shapes == ("3x3", "5x5", "10x10", "20x20")


def test_a_missing_dataset_folder_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(paths, "RAW_DIR", tmp_path / "no-data")
    code = run.main([str(CONFIGS / "table1.toml"), "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.count("\n") == 0 and "no-data" in err and "missing" in err


# ---------------------------------------------------------------------- cache keys
def test_cache_keys_change_with_what_determines_the_data_and_only_with_that():
    base = tiny()
    split = data.split_images(base)

    def keys(**change):
        cfg = tiny(**change)
        s = data.split_images(cfg)
        samples = data.PixelSamples(data.samples_key(s, cfg), None, None, {})
        return samples.key, data.som_key(samples, cfg, "3x3")

    samples_key, som_key = keys()
    assert keys() == (samples_key, som_key)
    assert keys(n_jobs=2, name="other", max_iter=7, n_images=9) == (samples_key, som_key)
    for change in ({"pixels_per_image": 201}, {"seed": 1}, {"max_images": 11}):
        assert keys(**change)[0] != samples_key, change
    for change in ({"som_iterations": 501}, {"som_samples": 999}, {"test_fraction": 0.3}):
        assert keys(**change)[1] != som_key, change
    assert len(split.test_images) + len(split.train_images) == 12
    assert not set(split.test_images) & set(split.train_images)


# ---------------------------------------------------------------------- grid runs
def test_an_interrupted_grid_keeps_finished_cells_and_resumes_from_them(tmp_path, monkeypatch):
    cfg = tiny()
    calls, interrupt_at = [], [3]

    def counted(*args, **kwargs):  # Ctrl-C arrives while the third cell runs
        calls.append(1)
        if len(calls) in interrupt_at:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    real = paper.mlp_cell
    monkeypatch.setattr(paper, "mlp_cell", counted)
    with pytest.raises(KeyboardInterrupt):
        run.execute(cfg, results_dir=tmp_path / "r", cache_dir=tmp_path / "c")
    kept = list((tmp_path / "r" / "table2" / "cells").glob("*.json"))
    assert len(kept) == 2
    assert not (tmp_path / "r" / "table2" / "table.md").exists()

    calls.clear()
    interrupt_at.clear()
    _, meta = run.execute(cfg, results_dir=tmp_path / "r", cache_dir=tmp_path / "c")
    assert meta["cells"] == {"total": 8, "computed": 6, "reused": 2}
    assert len(calls) == 6

    monkeypatch.setattr(paper, "mlp_cell", real)
    _, again = run.execute(cfg, results_dir=tmp_path / "r", cache_dir=tmp_path / "c")
    assert again["cells"] == {"total": 8, "computed": 0, "reused": 8}
    run.execute(tiny(name="fresh"), results_dir=tmp_path / "r", cache_dir=tmp_path / "c")
    assert scores(tmp_path / "r", "table2") == scores(tmp_path / "r", "fresh")


def test_a_changed_parameter_recomputes_only_its_cells(tmp_path):
    run.execute(tiny(), results_dir=tmp_path / "r", cache_dir=tmp_path / "c")
    stats = GridStats()
    paper.table2(
        tiny(hidden_layers=("8", "16")),
        tmp_path / "c",
        tmp_path / "r" / "table2" / "cells",
        stats=stats,
    )
    assert (stats.total, stats.computed, stats.reused) == (8, 4, 4)


def test_outputs_carry_the_data_note_provenance_and_figures(tmp_path):
    results = tmp_path / "r"
    run.execute(tiny("table1"), results_dir=results, cache_dir=tmp_path / "c")
    run.execute(tiny("fig9"), results_dir=results, cache_dir=tmp_path / "c")
    table = (results / "table1" / "table.md").read_text()
    assert "64x64 thumbnails" in table and "256x256" in table
    meta = (results / "table1" / "run.json").read_text()
    for word in ('"seed": 0', '"commit"', '"scikit-learn"', '"minisom"'):
        assert word in meta
    assert (results / "table1" / "config.json").read_text().count('"som_shapes"') == 1
    png = (results / "fig9" / "figure.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    # Fig 9 reuses Table I's SOMs from the cache: only the pixel samples and 2 maps exist.
    assert len(list((tmp_path / "c").glob("som-*.npz"))) == 2


def test_the_dask_backend_gives_the_same_table_as_the_local_run(tmp_path):
    distributed = pytest.importorskip("distributed")
    cfg = tiny()
    run.execute(cfg, results_dir=tmp_path / "local", cache_dir=tmp_path / "c")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        host="127.0.0.1",
        processes=True,
        dashboard_address=None,
    ) as cluster:
        _, meta = run.execute(
            cfg,
            results_dir=tmp_path / "dask",
            cache_dir=tmp_path / "c",
            scheduler=cluster.scheduler_address,
        )
    assert meta["cells"]["computed"] == 8
    assert scores(tmp_path / "dask", "table2") == scores(tmp_path / "local", "table2")


def test_a_scheduler_that_cannot_be_reached_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(grid, "CONNECT_TIMEOUT", "1s")
    argv = [
        str(CONFIGS / "table2.toml"),
        "--scheduler",
        "tcp://127.0.0.1:9",
        "--results",
        str(tmp_path / "r"),
        "--cache",
        str(tmp_path / "c"),
    ]
    argv += [
        f"--set={k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in TINY.items()
    ]
    code = run.main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot connect" in err and err.count("\n") == 0


# ---------------------------------------------------------------------- the notebook
def test_the_walkthrough_notebook_executes(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("SOMCOLOR_WALKTHROUGH_SMALL", "1")  # the kernel inherits it
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    images = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert len(images) >= 4


@pytest.mark.parametrize("module", ["cache", "config", "data", "report"])
def test_the_experiment_modules_doctests_pass(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"experiments.{module}"))
    assert result.failed == 0 and result.attempted > 0
