# somcolor — every target is named after what it produces; `make` alone lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS ?= dev,video,web,dask
MODEL  := somcolor/models/default.npz
SAMPLE := data/raw/bsds500/test/100007.jpg

# The bundled default model: documented config, fixed seed, the repo's own photos.
MODEL_ARGS := --som 3x3 --patch 5 --hidden 50,50 --pixels-per-image 2500 --seed 0 \
              --description "BSDS500 train+test (400 photos, 481x321) from data/raw/bsds500"

.PHONY: help install demo data model test lint smoke bench clean table1 table2 fig8 fig9 fig10 paper compare

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

install: $(STAMP) ## create .venv and install somcolor with dev tools and the optional extras

demo: $(STAMP) ## colorize a sample photo with the bundled model -> out/
	$(BIN)/somcolor colorize $(SAMPLE) -o out/$(notdir $(basename $(SAMPLE)))_color.png --force

data: $(STAMP) ## verify data/raw against its checksums, say what is missing
	$(BIN)/somcolor data

model: $(STAMP) ## retrain the bundled default model from data/raw/bsds500
	$(BIN)/somcolor data
	$(BIN)/somcolor -v train data/raw/bsds500/train data/raw/bsds500/test -o $(MODEL) --force $(MODEL_ARGS)
	$(BIN)/somcolor info $(MODEL)

test: $(STAMP) ## run the test suite (unit tests + doctests)
	$(BIN)/python -m pytest

lint: $(STAMP) ## ruff: lint and format check
	$(BIN)/ruff check somcolor tests experiments
	$(BIN)/ruff format --check somcolor tests experiments

smoke: $(STAMP) ## a one-minute run of every command and every paper target on tiny data
	$(BIN)/python -m experiments.smoke

bench: $(STAMP) ## speed and memory of every stage vs a naive reference -> experiments/results/bench/
	$(BIN)/python -m somcolor.bench

COMPARE := experiments/results/compare/README.md
compare: $(COMPARE) ## quality of every variant vs baselines on BSDS500, Open Country, Fruits-100 test

$(COMPARE): experiments/compare.py $(wildcard somcolor/*.py) | $(STAMP)
	$(BIN)/python -m experiments.compare

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
