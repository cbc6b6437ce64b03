#!/usr/bin/env bash
# Screenshots for docs/ (run by `make screenshots`):
#   docs/notebook-quickstart.png  01-quickstart executed by the evcxr kernel, exported to HTML
#   docs/notebook-quickstart-results.png  its sections 4-6: save, result map, histogram, profile
#   docs/dashboard.png            the live dashboard while examples/dashboard_demo saves
# Needs Jupyter with the `rust` kernel (make setup) and Chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/screenshots
DOCS=$ROOT/docs
mkdir -p "$OUT" "$DOCS"

VENV=${RASTERLAB_VENV:-$ROOT/.venv}
JUPYTER=$VENV/bin/jupyter
[ -x "$JUPYTER" ] || { echo "no Jupyter at $JUPYTER: run make setup" >&2; exit 1; }
CHROMIUM=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$CHROMIUM" ]; then
  echo "Chromium is missing: apt-get install chromium (Debian) and run again" >&2
  exit 1
fi

shoot() { # url png width height
  local profile
  profile=$(mktemp -d)
  timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" --screenshot="$2" \
    --window-size="$3,$4" "$1" >/dev/null 2>&1
  rm -rf "$profile"
  [ -s "$2" ] || { echo "no screenshot written to $2" >&2; return 1; }
}

# 1. The quick-start notebook, executed, as HTML (the test's warm evcxr build is reused):
#    its top (set-up, machine, raster, quick-look) and its results (save with progress,
#    the result map, histogram and profile: sections 4 to 6), each as a page of its own.
mkdir -p target/evcxr/01-quickstart
(
  cd notebooks
  EVCXR_TMPDIR=$ROOT/target/evcxr/01-quickstart "$JUPYTER" nbconvert --to notebook --execute \
    --ExecutePreprocessor.timeout=1800 --output-dir "$OUT" 01-quickstart.ipynb
)
"$VENV/bin/python" - "$OUT/01-quickstart.ipynb" "$OUT/01-quickstart-results.ipynb" <<'PY'
import json, sys
nb = json.load(open(sys.argv[1]))
src = lambda c: c["source"] if isinstance(c["source"], str) else "".join(c["source"])
heads = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"]
start = next(i for i in heads if src(nb["cells"][i]).startswith("## 4."))
end = next(i for i in heads if src(nb["cells"][i]).startswith("## 7."))
nb["cells"] = nb["cells"][start:end]
json.dump(nb, open(sys.argv[2], "w"))
PY
"$JUPYTER" nbconvert --to html --output-dir "$OUT" "$OUT/01-quickstart.ipynb" "$OUT/01-quickstart-results.ipynb"
shoot "file://$OUT/01-quickstart.html" "$DOCS/notebook-quickstart.png" 1280 2400
echo "wrote docs/notebook-quickstart.png"
shoot "file://$OUT/01-quickstart-results.html" "$DOCS/notebook-quickstart-results.png" 1280 3000
echo "wrote docs/notebook-quickstart-results.png"

# 2. The dashboard while a save runs: wait until a run is 10-60 % done, then shoot, and
#    check that the same run was still going when Chromium had the page.
cargo build --quiet --features dashboard --example dashboard_demo
URLFILE=$OUT/dashboard-url.txt
: >"$URLFILE"
target/debug/examples/dashboard_demo 90 5 >"$URLFILE" 2>"$OUT/dashboard-demo.log" &
DEMO=$!
trap 'kill "$DEMO" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -s "$URLFILE" ] && break; sleep 0.1; done
URL=$(head -n 1 "$URLFILE")
[ -n "$URL" ] || { echo "the demo printed no address" >&2; exit 1; }
JSON=${URL/\/\?token=/\/status.json?token=}
run_state() { # prints "runs done total finished"
  curl -fsS "$JSON" | python3 -c 'import json,sys
r = json.load(sys.stdin)["run"]
print(*( [r["runs"], r["done"], r["total"], int(r["finished"])] if r else [0, 0, 0, 1] ))'
}
ok=0
for attempt in 1 2 3 4 5; do
  for _ in $(seq 1 600); do
    read -r runs done total finished < <(run_state)
    if [ "$finished" = 0 ] && [ "$total" -gt 0 ] && [ $((done * 10)) -ge "$total" ] \
      && [ $((done * 10)) -le $((total * 6)) ]; then break; fi
    sleep 0.1
  done
  shoot "$URL" "$DOCS/dashboard.png" 1280 900
  read -r runs_after _ _ finished_after < <(run_state)
  if [ "$runs_after" = "$runs" ] && [ "$finished_after" = 0 ]; then ok=1; break; fi
  echo "attempt $attempt: the run ended before the page loaded; again" >&2
done
kill "$DEMO" 2>/dev/null || true
wait "$DEMO" 2>/dev/null || true
trap - EXIT
[ "$ok" = 1 ] || echo "warning: docs/dashboard.png may show a finished run" >&2
echo "wrote docs/dashboard.png"
