# somcolor — every target is named after what it produces; `make` alone lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORE   := $(VENV)/.core
EXTRAS ?= dev,video,web,dask,cnn
MODEL  := somcolor/models/default.npz
# At every editable install setuptools warns "Editable installation. Please be careful with
# folders in your working directory with the same name as your package", and pip shows a local
# project's build warnings even with --quiet. It is information, not a problem in our config
# (the same for any flat-layout project); a filter on its first words hides only it.
PIP    := PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip
SAMPLE := data/raw/bsds500/test/100007.jpg

# The bundled models: documented configs, fixed seed, the repo's own photos.
# default: the configuration of the default row of `make compare` (experiments/compare.py:
# DEFAULT_TRAIN + DEFAULT_PIXELS + DEFAULT_INFER), trained on the BSDS500 train split only
# (200 photos; about 3.5 min and 3.7 GB peak memory on 2 cores): it never sees the test
# split, on which every documented figure about it is measured.
MODEL_ARGS := --som 10x10 --patch 7 --hidden 64,64 --scales 2,8 --scale-patch 5 --position \
              --work-size 256 --decoder annealed --temperature 0.25 --smooth-radius 0.1 \
              --smooth-eps 0.003 --pixels-per-image 20000 --max-iter 30 --seed 0 \
              --description "BSDS500 train (200 photos, 481x321) from data/raw/bsds500; never saw the test split"
# fast: the paper's configuration with a 5x5 patch; about 10x faster, duller colors.
FAST_MODEL := somcolor/models/fast.npz
FAST_ARGS  := --som 3x3 --patch 5 --hidden 50,50 --pixels-per-image 2500 --seed 0 \
              --description "BSDS500 train (200 photos, 481x321) from data/raw/bsds500; never saw the test split"

.PHONY: help install install-core demo data model model-fast test lint smoke bench bench-archive clean table1 table2 fig8 fig9 fig10 paper compare compare-cnn hints-curve reference-eval docs-pictures video-hints

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' \
	  '{ name[NR] = $$1; text[NR] = $$2; if (length($$1) > w) w = length($$1) } \
	   END { for (i = 1; i <= NR; i++) printf "  make %-" w "s  %s\n", name[i], text[i] }'

# Two levels: the core (what colorizing photos needs) and everything (tests, extras).
$(CORE): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

$(STAMP): $(CORE)
	$(PIP) install --quiet -e '.[$(EXTRAS)]'
	touch $@

install: $(STAMP) ## create .venv and install somcolor with dev tools and the optional extras

install-core: $(CORE) ## create .venv with somcolor's core only (enough to colorize photos)

demo: $(CORE) ## colorize a sample photo with the bundled model -> out/ (core install only)
	$(BIN)/somcolor colorize $(SAMPLE) -o out/$(notdir $(basename $(SAMPLE)))_color.png --force

data: $(CORE) ## verify data/raw against its checksums, say what is missing
	$(BIN)/somcolor data

model: $(CORE) ## retrain the bundled default model from data/raw/bsds500/train (never the test split)
	$(BIN)/somcolor data
	$(BIN)/somcolor -v train data/raw/bsds500/train -o $(MODEL) --force $(MODEL_ARGS)
	$(BIN)/somcolor info $(MODEL)

model-fast: $(CORE) ## retrain the bundled fast model (paper's configuration) from data/raw/bsds500/train
	$(BIN)/somcolor data
	$(BIN)/somcolor -v train data/raw/bsds500/train -o $(FAST_MODEL) --force $(FAST_ARGS)
	$(BIN)/somcolor info $(FAST_MODEL)

test: $(STAMP) ## run the test suite (unit tests + doctests)
	$(BIN)/python -m pytest

# The page's pictures in docs/ (web.png, hints.png, phone.png), taken in headless Chromium;
# the tests write only to temporary folders, so `make test` leaves docs/ as committed.
docs-pictures: $(STAMP) ## the web page's screenshots in docs/ (web.png, hints.png, phone.png)
	$(BIN)/python -m experiments.page_pictures

lint: $(STAMP) ## ruff: lint and format check
	$(BIN)/ruff check somcolor tests experiments
	$(BIN)/ruff format --check somcolor tests experiments

smoke: $(STAMP) ## a one-minute run of every command and every paper target on tiny data
	$(BIN)/python -m experiments.smoke

bench: $(STAMP) ## the default model's speed vs its anchors; every stage vs a naive reference; video frames/s -> experiments/results/
	$(BIN)/python -m experiments.bench_default
	$(BIN)/python -m experiments.bench
	$(BIN)/python -m experiments.bench_video
	$(BIN)/python -m experiments.bench_video --work-size 480

# Archives (docs/archives.md): `somcolor colorize DIR -r --out-dir OUT` in new processes, on
# 1000 copies of BSDS500 train photos and 100 000 tiny files in a temporary folder;
# `python -m experiments.bench_archive --photos 60` is a quick run.
bench-archive: $(STAMP) ## --jobs 1 vs 2, --dask local vs --jobs 2, 100 000 files skipped -> experiments/results/bench_archive.{json,md}
	$(BIN)/python -m experiments.bench_archive

COMPARE := experiments/results/compare/README.md
compare: $(COMPARE) ## quality of every variant vs baselines on BSDS500, Open Country, Fruits-100 test

$(COMPARE): experiments/compare.py $(wildcard somcolor/*.py) | $(STAMP)
	$(BIN)/python -m experiments.compare

# The CNN back ends (docs/cnn.md), trained on CPU with one torch thread unless a GPU is found;
# trained models are cached in data/interim/compare_cnn, so a rerun only evaluates.
COMPARE_CNN := experiments/results/compare_cnn/README.md
compare-cnn: $(COMPARE_CNN) ## the CNN autoencoder and codebook CNN vs SOM+MLP on Fruits-100 and BSDS500 test

$(COMPARE_CNN): experiments/compare_cnn.py $(wildcard somcolor/*.py) $(wildcard somcolor/backends/*.py) | $(STAMP)
	$(BIN)/python -m experiments.compare_cnn

hints-curve: $(STAMP) ## the colour-hints curve on BSDS500 test, through the product: somcolor with N hints vs Levin alone
	$(BIN)/python -m experiments.hints_curve

# Hints on a video's key frame carried through the clip (README "Colour hints on video"):
# panning clips of BSDS500 test photos, through the CLI, automatic vs hinted.
video-hints: $(STAMP) ## hints on frame 0 carried through panning clips, through the CLI
	$(BIN)/python -m experiments.video_hints

# Colour from a reference photo (docs/reference.md): automatic default vs Welsh et al. 2002 vs
# the default adapted to the reference, on four protocols (halves, unrelated, same class, film).
REFERENCE_EVAL := experiments/results/reference_eval.md
reference-eval: $(REFERENCE_EVAL) ## colour from a reference: default vs Welsh 2002 vs adapted, four protocols

$(REFERENCE_EVAL): experiments/reference_eval.py experiments/welsh.py $(wildcard somcolor/*.py) | $(STAMP)
	$(BIN)/python -m experiments.reference_eval --out $@

# The paper's tables and figures (docs/reproduction.md): each result file is remade only when
# its config, the experiment code or the package code changed; grid cells already computed and
# cached data in data/interim are reused. Every target runs on Open Country (64x64 thumbnails;
# the paper used 256x256) and on BSDS500 (481x321) as the full-resolution counterpart.
RESULTS  := experiments/results
CONFIGS  := experiments/configs
EXP_DEPS := $(wildcard experiments/*.py) $(wildcard somcolor/*.py)
EXP_RUN  := $(BIN)/python -m experiments.run

$(RESULTS)/%/table.md: $(CONFIGS)/%.toml $(EXP_DEPS) | $(STAMP)
	$(EXP_RUN) $<

$(RESULTS)/%/figure.png: $(CONFIGS)/%.toml $(EXP_DEPS) | $(STAMP)
	$(EXP_RUN) $<

table1: $(RESULTS)/table1/table.md $(RESULTS)/table1_bsds500/table.md ## Table I: SOM size vs quantization error (and the SOMs Figs 8/9 reuse)

table2: $(RESULTS)/table2/table.md $(RESULTS)/table2_bsds500/table.md ## Table II: patch size x hidden layers, 10 stratified splits

fig8: $(RESULTS)/fig8/figure.png $(RESULTS)/fig8_bsds500/figure.png ## Figure 8: a test image painted with each SOM size (good case)

fig9: $(RESULTS)/fig9/figure.png $(RESULTS)/fig9_bsds500/figure.png ## Figure 9: the same, bad case

fig10: $(RESULTS)/fig10/figure.png $(RESULTS)/fig10_bsds500/figure.png ## Figure 10: original | UV | gray | predicted UV | prediction

paper: table1 table2 fig8 fig9 fig10 ## every table and figure of the paper (docs/reproduction.md)

clean: ## remove generated files (outputs, caches, interim data)
	rm -rf out .pytest_cache .ruff_cache experiments/results
	find data/interim -mindepth 1 ! -name .gitkeep -delete
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
