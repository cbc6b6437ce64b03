# rasterlab: the two set-up commands are `make demo` and `make test` (see README.md).
# Both first run scripts/setup.sh, which installs only what is missing.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Cargo features beyond the notebook defaults that builds and tests need. Not `--all-features`:
# a feature may need system libraries that `make setup` does not install.
FEATURES := cli,dashboard,profile,spectral,mpi

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

.PHONY: help setup demo test bench lab clean screenshots first-cell prewarm class-load

help:
	@echo "make demo   set up, build (release) and run the main job (scripts/demo.sh)"
	@echo "make test   set up, then fmt check, clippy, all tests and doctests"
	@echo "make bench  rasterlab vs its Python peers, side by side (bench/run.py)"
	@echo "make lab    JupyterLab on notebooks/ with the Rust kernel"
	@echo "make setup  only the set-up step (idempotent)"
	@echo "make clean  remove target/ and out/ (keeps .venv and the evcxr install)"
	@echo "make first-cell  time a notebook's first cell in fresh kernels (cold, warm, later; --quick)"
	@echo "make prewarm SLOTS=30  fill the kernel pool's build folders before a class (scripts/prewarm_pool.py)"
	@echo "make class-load KERNELS=10  N kernels at once, each running notebook 01: time, RAM, disk (heavy)"
	@echo "make screenshots  docs/*.png: 01-quickstart as HTML and the live dashboard (needs chromium)"

setup:
	bash scripts/setup.sh

demo: setup
	cargo build --release --features $(FEATURES)
	bash scripts/demo.sh

# No incremental caches in the full run: they doubled target/ (several GB on a clean clone)
# and a clean build gains nothing from them; `cargo test` by hand keeps them.
test: export CARGO_INCREMENTAL := 0
test: setup
	cargo fmt --all -- --check
	cargo clippy --all-targets --features $(FEATURES) -- -D warnings
	cargo clippy --lib --no-default-features -- -D warnings
	cargo clippy --lib --no-default-features --features profile -- -D warnings
	cargo test --all-targets --features $(FEATURES)
	cargo test --doc --features $(FEATURES)

# Side-by-side benchmarks with the Python peers (see bench/run.py): BENCH_RUNS=3,
# BENCH_QUICK=1 (1 run, a few rows), BENCH_THREADS, BENCH_ONLY=W1,W6, BENCH_PROFILE=1.
# Criterion benches (benches/*.rs) stay separate: `cargo bench --features spectral`.
BENCH_VENV := $(CURDIR)/.venv-bench
bench: setup
	BENCH_VENV=$(BENCH_VENV) bash bench/setup_venv.sh
	cargo build --release --features $(FEATURES) --bin rasterlab --example bench_runner
	$(BENCH_VENV)/bin/python bench/gen_data.py
	$(BENCH_VENV)/bin/python bench/run.py

# Jupyter refuses to run as root unless told: root is the usual user in containers and CI.
lab: setup
	$(VENV)/bin/jupyter lab notebooks/ $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

clean:
	cargo clean
	rm -rf out

# Cold/warm first cell and a later cell in fresh evcxr kernels (scripts/first_cell.py):
# the quick run; `$(VENV)/bin/python scripts/first_cell.py` compares every option.
first-cell: setup
	$(VENV)/bin/python scripts/first_cell.py --quick

screenshots: setup
	bash scripts/screenshots.sh

# Before a class: every slot of the kernel launcher's pool (RASTERLAB_EVCXR_POOL, default
# ~/.cache/rasterlab/evcxr-pool) built once and copied, so each student's first cell is warm.
SLOTS ?= $(or $(RASTERLAB_EVCXR_SLOTS),8)
prewarm: setup
	$(VENV)/bin/python scripts/prewarm_pool.py --slots $(SLOTS)

# KERNELS kernels started at once, each running notebook 01 (scripts/class_load.py): wall
# time, first cell, RAM and disk per kernel. Loads every core for minutes: not in `make test`.
KERNELS ?= 10
class-load: setup
	$(VENV)/bin/python scripts/class_load.py --kernels $(KERNELS)
