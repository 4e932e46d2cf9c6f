# The two commands of a fresh clone (the convention of lightning-hydra-template):
#   make train [ARGS="model=gps trainer.max_epochs=2"]   the main job
#   make test  [ARGS="-m 'not slow' -x"]                  the test suite
# Both create .venv in the checkout on first use, with the venv's own pip: torch's CPU
# build first (an unpinned `torch` pulls a multi-GB CUDA build), then graphformer
# (editable) with its dev extras (molecules included), then molsets' data files. Later
# calls skip the set-up until pyproject.toml or setup.cfg change.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
# MOSES molecules for data=zinc_logp: molsets' files only, outside site-packages (its
# requirements pin pomegranate==0.12.0, which has no wheel for Python 3.11, and would break
# `pip check`); graphformer.data.molecules.packages looks in $(VENV)/molsets.
MOLSETS ?= molsets==0.3.1
ARGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.graphformer-installed

.PHONY: help setup train test lint format clean-venv

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv and install graphformer with its dev extras

$(STAMP): pyproject.toml setup.cfg
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --upgrade \
		--target $(VENV)/molsets $(MOLSETS)
	@touch $@

train: $(STAMP)  ## the main job: graph Transformer on generated CLUSTER
	$(BIN)/graphformer-train $(ARGS)

test: $(STAMP)  ## the test suite, slow end-to-end runs included
	$(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)  ## ruff: lint and format check, as CI runs them
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## ruff: fix what it can and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean-venv:  ## remove .venv (the next command sets it up again)
	rm -rf $(VENV)
