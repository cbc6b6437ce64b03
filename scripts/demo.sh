#!/usr/bin/env bash
# The main job (`make demo`): machine resources, the normalized difference (green, red)
# of the sample Landsat scene, and a description of the written GeoTIFF.
# Expects `cargo build --release --features cli` to have run (the Makefile does it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ "$TARGET" = /* ]] || TARGET="$ROOT/$TARGET"
BIN="$TARGET/release/rasterlab"
SCENE="data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF"
OUT="out/ndi.tif"
VENV="${RASTERLAB_VENV:-$ROOT/.venv}"

[[ -x "$BIN" ]] || { echo "demo: $BIN not found; run 'make demo' (it builds first)" >&2; exit 1; }
mkdir -p out

step() { printf '\n== %s\n' "$*"; }

step "resources"
"$BIN" resources

step "normalized difference (green - red) / (green + red) of $SCENE"
"$BIN" ndi "$SCENE" --band-names blue,green,red --a green --b red \
    --nodata 0 --scale 0.0001 -o "$OUT"

step "output: $OUT"
"$BIN" info "$OUT"

# ---- quickstart notebook -------------------------------------------------------------
# Executed headlessly with the Rust (evcxr) kernel once notebooks/01-quickstart.ipynb
# exists; the rendered result goes to out/01-quickstart.html.
NOTEBOOK="notebooks/01-quickstart.ipynb"
if [[ -f "$NOTEBOOK" ]]; then
    step "notebook: $NOTEBOOK -> out/01-quickstart.html"
    "$VENV/bin/jupyter" nbconvert --execute --to html \
        --ExecutePreprocessor.timeout=1200 \
        --output-dir out "$NOTEBOOK"
    # a panic inside a cell does not fail nbconvert (DESIGN.md section 5): look for it
    if grep -q 'panicked at' out/01-quickstart.html; then
        echo "demo: a notebook cell panicked; see out/01-quickstart.html" >&2
        exit 1
    fi
fi

step "done: $OUT"
