#!/usr/bin/env bash
# Jupyter kernel launcher for evcxr (registered as the `rust` kernel by scripts/setup.sh).
#
# evcxr compiles every cell in a build folder. By default that folder is a fresh temporary
# directory per kernel, so each new kernel (a restart, a second notebook) recompiles
# rasterlab and all its dependencies; a killed kernel also leaves its ~440 MB folder in
# /tmp. One fixed EVCXR_TMPDIR for everybody is fast but breaks as soon as two kernels
# share it (evcxr renames its libraries in place). This launcher leases a persistent
# build folder from a small pool instead: the first free `slot-N` (an exclusive flock on
# `slot-N.lock`, held by the kernel and its children for their whole life and released by
# the kernel's death, however it dies). A restarted kernel gets its warm folder back, two
# live kernels never share one, and nothing is left in /tmp.
#
# When all slots are leased, the kernel builds cold in an `overflow-XXXXXX` folder of the
# pool, locked the same way; each launch removes the overflow folders whose kernel is gone
# (killed or not: evcxr keeps a folder it was given), so they never pile up.
# Before a class, `make prewarm SLOTS=N` (scripts/prewarm_pool.py) fills N slots.
#
#   EVCXR_TMPDIR set             used as is (no lease): tests/notebooks.rs does this
#   RASTERLAB_EVCXR_POOL=DIR     the pool (default ${XDG_CACHE_HOME:-~/.cache}/rasterlab/evcxr-pool)
#   RASTERLAB_EVCXR_SLOTS=N      at most N folders (default 8; 230-320 MiB each); when all are
#                                leased, the kernel builds in an overflow folder (see above)
#   RASTERLAB_EVCXR=PATH         the evcxr_jupyter binary (set in kernel.json by the set-up)
set -euo pipefail

evcxr="${RASTERLAB_EVCXR:-$(command -v evcxr_jupyter || echo "${CARGO_HOME:-$HOME/.cargo}/bin/evcxr_jupyter")}"
[[ -x "$evcxr" ]] || { echo "rasterlab kernel: evcxr_jupyter not found ($evcxr): run make setup" >&2; exit 1; }

# evcxr builds each cell as a library linked to the toolchain's libstd through a relative
# RUNPATH that rustc computes for the deps/ folder, one level below where evcxr loads the
# copy from: with one `..` too many, it points at the wrong folder whenever the build
# folder and the toolchain share a parent (the pool in ~/.cache and rustup in ~/.rustup),
# and every kernel dies with "dlopen failed". The loader searches LD_LIBRARY_PATH first.
if libdir="$(rustc --print target-libdir 2>/dev/null)" && [[ -d "$libdir" ]]; then
    export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

if [[ -n "${EVCXR_TMPDIR:-}" ]]; then
    exec "$evcxr" "$@"
fi

pool="${RASTERLAB_EVCXR_POOL:-${XDG_CACHE_HOME:-$HOME/.cache}/rasterlab/evcxr-pool}"
slots="${RASTERLAB_EVCXR_SLOTS:-8}"
if mkdir -p "$pool" 2>/dev/null && command -v flock >/dev/null 2>&1; then
    for ((i = 0; i < slots; i++)); do
        # The descriptor stays open across exec: evcxr_jupyter and everything it starts hold
        # the lock; it is released only when the last of them has exited.
        exec {lock}>>"$pool/slot-$i.lock" || continue
        if flock -n "$lock"; then
            mkdir -p "$pool/slot-$i"
            export EVCXR_TMPDIR="$pool/slot-$i"
            exec "$evcxr" "$@"
        fi
        exec {lock}>&-
    done
    # Overflow folders of kernels that are gone: their lock is free. Only folders older than
    # a minute, so one just made by another launcher (about to lock it) is never taken.
    for old in "$pool"/overflow-*; do
        [[ -d "$old" ]] || continue
        [[ -n "$(find "$old" -maxdepth 0 -mmin +1 2>/dev/null)" ]] || continue
        exec {dead}<"$old" || continue
        if flock -n "$dead"; then
            rm -rf -- "$old"
        fi
        exec {dead}<&-
    done
    if dir="$(mktemp -d "$pool/overflow-XXXXXX" 2>/dev/null)"; then
        exec {lock}<"$dir"
        if flock -n "$lock"; then
            echo "rasterlab kernel: all $slots build folders in $pool are in use; building in $dir (cold)" >&2
            export EVCXR_TMPDIR="$dir"
            exec "$evcxr" "$@"
        fi
        exec {lock}<&-
    fi
    echo "rasterlab kernel: all $slots build folders in $pool are in use; building in a temporary folder" >&2
else
    echo "rasterlab kernel: cannot use $pool (or no flock); building in a temporary folder" >&2
fi
exec "$evcxr" "$@"
