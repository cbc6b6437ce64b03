# rasterlab: the two set-up commands are `make demo` and `make test` (see README.md).
# Both first run scripts/setup.sh, which installs only what is missing.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO_BIN := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin

# Python environment: RASTERLAB_VENV if set, else an active conda env that has jupyter
# (environment.yml), else the project's own .venv. scripts/setup.sh applies the same rule.
ifneq ($(RASTERLAB_VENV),)
  VENV := $(abspath $(RASTERLAB_VENV))
else ifneq ($(and $(CONDA_PREFIX),$(wildcard $(CONDA_PREFIX)/bin/jupyter)),)
  VENV := $(CONDA_PREFIX)
else
  VENV := $(CURDIR)/.venv
endif

export RASTERLAB_VENV := $(VENV)
export PATH := $(CARGO_BIN):$(VENV)/bin:$(PATH)

# conda's libgdal lives in $CONDA_PREFIX/lib, which the loader does not search by default
ifneq ($(and $(CONDA_PREFIX),$(wildcard $(CONDA_PREFIX)/bin/gdal-config)),)
  export RUSTFLAGS := $(strip $(RUSTFLAGS) -C link-arg=-Wl,-rpath,$(CONDA_PREFIX)/lib)
endif

.PHONY: help setup demo test bench lab clean screenshots

help:
	@echo "make demo   set up, build (release) and run the main job (scripts/demo.sh)"
	@echo "make test   set up, then fmt check, clippy, all tests and doctests"
	@echo "make bench  benchmarks (cargo bench)"
	@echo "make lab    JupyterLab on notebooks/ with the Rust kernel"
	@echo "make setup  only the set-up step (idempotent)"
	@echo "make clean  remove target/ and out/ (keeps .venv and the evcxr install)"
	@echo "make screenshots  docs/*.png: 01-quickstart as HTML and the live dashboard (needs chromium)"

setup:
	bash scripts/setup.sh

demo: setup
	cargo build --release
	bash scripts/demo.sh

test: setup
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo test --all-targets
	cargo test --doc

bench: setup
	cargo bench

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

clean:
	cargo clean
	rm -rf out

screenshots: setup
	bash scripts/screenshots.sh
