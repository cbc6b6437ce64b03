#!/usr/bin/env bash
# Creates .venv-bench with the Python peers of `make bench` (bench/requirements.txt), only
# when it is missing or when the requirements (or the interpreter) changed since it was
# built. A second run takes well under a second.
#   BENCH_VENV=DIR   where (default .venv-bench)     PYTHON=python3   the interpreter
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BENCH_VENV:-$ROOT/.venv-bench}"
REQS="$ROOT/bench/requirements.txt"
PYTHON="${PYTHON:-python3}"
say() { printf 'bench-setup: %s\n' "$*"; }

# the base interpreter, also when PATH starts with another venv (the Makefile puts .venv first)
BASE="$("$PYTHON" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')"
want="$({ cat "$REQS"; "$BASE" -VV; } | sha256sum | cut -d' ' -f1)"
marker="$VENV/.bench-reqs"
if [[ -x "$VENV/bin/python" && -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
    say "python peers in ${VENV#"$ROOT"/}: ok (present)"
    exit 0
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    "$BASE" -c 'import venv, ensurepip' 2>/dev/null || { echo "bench-setup: $BASE cannot create virtual environments (Debian: apt-get install python3-venv)" >&2; exit 1; }
    say "creating ${VENV#"$ROOT"/} with $("$BASE" -V 2>&1)"
    "$BASE" -m venv "$VENV"
fi
say "installing the peers from PyPI ($(grep -cv '^\s*\(#\|$\)' "$REQS") requirements; a few minutes the first time)"
"$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip </dev/null
"$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQS" </dev/null
echo "$want" >"$marker"
say "python peers in ${VENV#"$ROOT"/}: ready"
