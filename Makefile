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

.PHONY: help install demo data model test lint smoke clean

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

smoke: $(STAMP) ## a one-minute run of every command on tiny data
	$(BIN)/python -m experiments.smoke

clean: ## remove generated files (outputs, caches, interim data)
	rm -rf out .pytest_cache .ruff_cache experiments/results
	find data/interim -mindepth 1 ! -name .gitkeep -delete
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
