#!/usr/bin/env bash
# rasterlab set-up: installs only what is missing, so a second run takes seconds.
#
#   1. system packages (GDAL headers/tools, pkg-config, fontconfig, Open MPI, libclang) via apt-get
#      (root, or sudo when it works without a password); skipped when
#      RASTERLAB_SKIP_SYSTEM=1 or when an active conda env provides gdal-config
#   2. the Python environment for notebooks and reference checks
#      (.venv, or the active conda env when it has jupyter; RASTERLAB_VENV overrides)
#   3. the evcxr Rust kernel (cargo install --locked evcxr_jupyter), registered
#      into that environment, not into ~/.local, started through
#      scripts/evcxr-kernel.sh (a persistent build folder leased per kernel)
#   4. rustfmt and clippy
#
# Environment knobs:
#   RASTERLAB_SKIP_SYSTEM=1   never call apt-get; only check that gdal-config works
#   RASTERLAB_VENV=DIR        Python environment to use/create (default .venv)
#   RASTERLAB_EVCXR_VERSION   evcxr_jupyter version to install (default 0.22.0)
#   RASTERLAB_EVCXR_WAIT=S    seconds to wait for an evcxr build already running (default 1500)
#   PYTHON=python3            interpreter used to create the venv
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export DEBIAN_FRONTEND=noninteractive
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) export PATH="$CARGO_BIN:$PATH" ;; esac

PYTHON="${PYTHON:-python3}"
REQS="$ROOT/scripts/requirements-notebook.txt"
EVCXR_VERSION="${RASTERLAB_EVCXR_VERSION:-0.22.0}"
EVCXR_WAIT="${RASTERLAB_EVCXR_WAIT:-1500}"
# slurmctld slurmd slurm-client munge: the single-node Slurm tests/slurm.rs starts;
# libopenmpi-dev openmpi-bin libclang-dev: feature `mpi` (rsmpi binds Open MPI with bindgen,
# which needs libclang), built and tested by `make test` (tests/mpi.rs).
APT_PACKAGES=(libgdal-dev gdal-bin pkg-config libfontconfig1-dev make netcdf-bin
    slurmctld slurmd slurm-client munge libopenmpi-dev openmpi-bin libclang-dev)

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

# conda mode: an active env that provides GDAL (environment.yml)
CONDA_GDAL=0
if [[ -n "${CONDA_PREFIX:-}" ]]; then
    gc="$(command -v gdal-config || true)"
    [[ -n "$gc" && "$gc" == "$CONDA_PREFIX"/* ]] && CONDA_GDAL=1
fi

# Python environment: explicit > active conda env with jupyter > .venv
if [[ -n "${RASTERLAB_VENV:-}" ]]; then
    VENV="$RASTERLAB_VENV"
elif [[ -n "${CONDA_PREFIX:-}" && -x "$CONDA_PREFIX/bin/jupyter" ]]; then
    VENV="$CONDA_PREFIX"
else
    VENV="$ROOT/.venv"
fi
VENV="$(mkdir -p "$VENV" 2>/dev/null; cd "$VENV" && pwd)" || die "cannot use Python environment directory $VENV"
# A directory with a python but no pyvenv.cfg is an external (conda) environment: we add
# missing packages to it with pip, but never create or delete it.
EXTERNAL_ENV=0
[[ -x "$VENV/bin/python" && ! -f "$VENV/pyvenv.cfg" ]] && EXTERNAL_ENV=1

# ---------------------------------------------------------------- 1. system packages
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

python_has_venv() { "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; }

apt_hint() {
    cat >&2 <<EOF
setup: cannot install system packages (not root, and no working passwordless sudo).
Ask an administrator to run:

    apt-get update && apt-get install -y $*

or use conda instead (no root needed):

    conda env create -f environment.yml && conda activate rasterlab
    RASTERLAB_SKIP_SYSTEM=1 make test

(see README.md, "Requirements").
EOF
    exit 1
}

check_gdal_config() {
    command -v gdal-config >/dev/null 2>&1 || die "gdal-config not found: install GDAL development files (Debian: libgdal-dev) or activate the conda env from environment.yml"
    command -v pkg-config >/dev/null 2>&1 || die "pkg-config not found (Debian: pkg-config; conda: pkg-config)"
    pkg-config --exists gdal || die "pkg-config does not know gdal (PKG_CONFIG_PATH?): the Rust build needs gdal.pc"
    say "gdal $(gdal-config --version) ($(command -v gdal-config)): ok (present)"
}

system_packages() {
    if [[ "${RASTERLAB_SKIP_SYSTEM:-0}" == 1 || "$CONDA_GDAL" == 1 ]]; then
        if [[ "$CONDA_GDAL" == 1 ]]; then
            say "system packages: skipped (GDAL from conda env $CONDA_PREFIX)"
        else
            say "system packages: skipped (RASTERLAB_SKIP_SYSTEM=1)"
        fi
        check_gdal_config
        return
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        say "system packages: not a Debian/Ubuntu system; install GDAL (with headers), pkg-config and fontconfig yourself, or use environment.yml"
        check_gdal_config
        return
    fi
    local wanted=("${APT_PACKAGES[@]}") missing=() p
    # Debian's system python needs python3-venv for `python3 -m venv` (pyenv/conda pythons have it).
    if ! python_has_venv && [[ ! -x "$VENV/bin/python" ]]; then
        wanted+=(python3-venv)
    fi
    for p in "${wanted[@]}"; do pkg_installed "$p" || missing+=("$p"); done
    if ((${#missing[@]} == 0)); then
        say "system packages (${wanted[*]}): ok (present)"
    else
        local sudo=()
        if [[ "$(id -u)" -ne 0 ]]; then
            if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
                sudo=(sudo -n env DEBIAN_FRONTEND=noninteractive)
            else
                apt_hint "${missing[*]}"
            fi
        fi
        say "system packages: installing ${missing[*]} (apt-get${sudo:+ via sudo})"
        "${sudo[@]}" apt-get update -qq
        "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
        say "system packages: installed ${missing[*]}"
    fi
    check_gdal_config
}

# ---------------------------------------------------------------- 2. python environment
reqs_hash() { { cat "$REQS"; "$VENV/bin/python" -VV; } | sha256sum | cut -d' ' -f1; }

python_env() {
    [[ -f "$REQS" ]] || die "missing $REQS"
    if ((EXTERNAL_ENV)); then
        # conda env: check imports (no marker file written into someone else's env)
        if "$VENV/bin/python" -c 'import jupyterlab, nbclient, nbconvert, nbformat, ipykernel, numpy, sklearn' 2>/dev/null; then
            say "python env $VENV (external): ok (present)"
        else
            say "python env $VENV (external): pip-installing notebook requirements"
            "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQS" </dev/null
        fi
        return
    fi
    local marker="$VENV/.rasterlab-reqs"
    if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c '' 2>/dev/null; then
        if [[ -f "$marker" && "$(cat "$marker")" == "$(reqs_hash)" && -x "$VENV/bin/jupyter" ]]; then
            say "python venv $VENV ($("$VENV/bin/python" -V 2>&1), notebook requirements): ok (present)"
            return
        fi
    else
        command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: install Python 3 (Debian: python3 python3-venv)"
        python_has_venv || die "$PYTHON cannot create virtual environments: install python3-venv (Debian) and re-run"
        # never wipe a directory that is not (the remains of) a venv
        if [[ -n "$(ls -A "$VENV")" && ! -f "$VENV/pyvenv.cfg" ]]; then
            die "$VENV exists, is not empty and is not a virtual environment; remove it or set RASTERLAB_VENV"
        fi
        say "python venv: creating $VENV with $("$PYTHON" -V 2>&1)"
        "$PYTHON" -m venv --clear "$VENV"
    fi
    say "python venv: installing $(grep -v '^\s*#' "$REQS" | grep -c .) requirements from ${REQS#"$ROOT"/} (a minute or two)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip </dev/null
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQS" </dev/null
    reqs_hash >"$marker"
    say "python venv $VENV: ready"
}

# ---------------------------------------------------------------- 3. evcxr kernel
find_evcxr() { command -v evcxr_jupyter 2>/dev/null || { [[ -x "$CARGO_BIN/evcxr_jupyter" ]] && echo "$CARGO_BIN/evcxr_jupyter"; } || true; }

evcxr_build_running() { pgrep -f 'cargo install.*evcxr_jupyter' >/dev/null 2>&1; }

evcxr_kernel() {
    local evcxr
    evcxr="$(find_evcxr)"
    if [[ -z "$evcxr" ]] && evcxr_build_running; then
        say "evcxr_jupyter: another 'cargo install ... evcxr_jupyter' is running; waiting for it (up to $((EVCXR_WAIT / 60)) min)"
        local waited=0
        while evcxr_build_running && [[ -z "$(find_evcxr)" ]] && ((waited < EVCXR_WAIT)); do
            sleep 15
            waited=$((waited + 15))
            if ((waited % 120 == 0)); then say "evcxr_jupyter: still waiting (${waited}s)"; fi
        done
        # cargo copies the binary in at the very end; give it a moment to finish
        for _ in 1 2 3 4 5 6; do evcxr_build_running || break; sleep 5; done
        evcxr="$(find_evcxr)"
        [[ -z "$evcxr" ]] && evcxr_build_running && die "evcxr_jupyter build still running after ${EVCXR_WAIT}s; re-run when it is done"
    fi
    if [[ -z "$evcxr" ]]; then
        command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup (https://rustup.rs) or use environment.yml"
        say "evcxr_jupyter: building with 'cargo install --locked evcxr_jupyter --version $EVCXR_VERSION' (about 17 min on 2 cores; done once)"
        cargo install --locked evcxr_jupyter --version "$EVCXR_VERSION" </dev/null
        evcxr="$(find_evcxr)"
        [[ -n "$evcxr" ]] || die "cargo install evcxr_jupyter finished but evcxr_jupyter is not in $CARGO_BIN"
        say "evcxr_jupyter: installed $evcxr"
    else
        say "evcxr_jupyter ($evcxr): ok (present)"
    fi

    # evcxr_jupyter --install writes $JUPYTER_PATH/kernels/rust when JUPYTER_PATH is set
    # (else ~/.local/share/jupyter); jupyter finds {sys.prefix}/share/jupyter/kernels.
    # The kernel then starts through scripts/evcxr-kernel.sh, which leases a persistent
    # build folder per kernel (warm restarts, never shared; see notebooks/README.md).
    local kdir="$VENV/share/jupyter/kernels/rust" launcher="$ROOT/scripts/evcxr-kernel.sh" current=""
    if [[ -f "$kdir/kernel.json" ]]; then
        current="$("$VENV/bin/python" -c 'import json,sys; k=json.load(open(sys.argv[1])); print(k["argv"][0], k.get("env", {}).get("RASTERLAB_EVCXR", ""))' "$kdir/kernel.json" 2>/dev/null || true)"
    fi
    if [[ "$current" == "$launcher $evcxr" ]]; then
        say "rust kernel ($kdir -> scripts/evcxr-kernel.sh -> $evcxr): ok (present)"
        return
    fi
    say "rust kernel: registering into $VENV (through scripts/evcxr-kernel.sh)"
    JUPYTER_PATH="$VENV/share/jupyter" "$evcxr" --install >/dev/null
    "$VENV/bin/python" - "$kdir/kernel.json" "$launcher" "$evcxr" <<'PY'
import json, sys
path, launcher, evcxr = sys.argv[1:4]
spec = json.load(open(path))
spec["argv"] = [launcher, "--control_file", "{connection_file}"]
spec.setdefault("env", {})["RASTERLAB_EVCXR"] = evcxr
json.dump(spec, open(path, "w"), indent=2)
PY
    "$VENV/bin/jupyter" kernelspec list 2>/dev/null | grep -Eq '^[[:space:]]*rust[[:space:]]' ||
        die "rust kernel not visible in '$VENV/bin/jupyter kernelspec list'"
    say "rust kernel: registered ($kdir)"
}

# ---------------------------------------------------------------- 4. rustfmt / clippy
rust_components() {
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup (https://rustup.rs)"
    local missing=()
    cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
    if ((${#missing[@]} == 0)); then
        say "rustfmt + clippy ($(cargo --version | cut -d' ' -f1-2)): ok (present)"
        return
    fi
    command -v rustup >/dev/null 2>&1 || die "missing ${missing[*]} and no rustup to add them: install them with your Rust distribution"
    say "rust components: adding ${missing[*]}"
    rustup component add "${missing[@]}" </dev/null
}

# ---------------------------------------------------------------- 5. disk space
# A full `make test` on a clean clone builds ~4 GB under target/ (test binaries, the four
# notebooks' kernels) and writes a few hundred MB of temporary rasters: say so before a
# build fails half-way with "No space left on device".
disk_space() {
    local need_kb=$((5 * 1024 * 1024)) free_kb
    free_kb="$(df -Pk "$ROOT" | awk 'NR==2 {print $4}')"
    [[ "$free_kb" =~ ^[0-9]+$ ]] || return 0
    if ((free_kb < need_kb)); then
        say "WARNING: only $((free_kb / 1024)) MB free under $ROOT; a full build and test run needs about 5 GB (make clean frees target/)"
    else
        say "disk: $((free_kb / 1024 / 1024)) GB free under $ROOT: ok"
    fi
}

system_packages
python_env
rust_components
evcxr_kernel
disk_space
say "ready"
