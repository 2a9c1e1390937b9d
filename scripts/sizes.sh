#!/usr/bin/env bash
# Prints what a patient's phone downloads, beside the Leptos floor, in one run:
#   - every file of the release bundle (raw, gzip, brotli): the main WASM and JS (the islands of
#     the reception's path: the card step loads them), the split-off chunks (the practice card:
#     fetched only when chosen), the CSS, the second module with every island (pkg/all/: the
#     screens off the reception's path), and the server-rendered landing page as sent;
#   - the floor: a hello-world Leptos 0.8 SSR + hydrate app (tools/leptos-floor) built here with
#     the same wasm-release profile and wasm-opt options (target dir target/leptos-floor);
#   - the patient's first visit (landing → done without the practice card) and its ratio to the
#     floor.
# Needs a release build (scripts/build-site.sh); starts its own server on a free loopback port
# with a throw-away database. The first run builds the floor's WASM (a few minutes); later runs
# rebuild it only when it changed. Figures, not assertions.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x target/release/uketsuke-server ] || { echo "build first: scripts/build-site.sh" >&2; exit 1; }
pkg=target/site/pkg
[ -f "$pkg/uketsuke.wasm" ] || { echo "build first: scripts/build-site.sh" >&2; exit 1; }

# The floor must be built exactly as the product's WASM is.
profile() { awk '/^\[profile.wasm-release\]/ { on = 1; next } /^\[/ { on = 0 } on && NF' "$1"; }
if [ "$(profile Cargo.toml)" != "$(profile tools/leptos-floor/Cargo.toml)" ]; then
  echo "tools/leptos-floor/Cargo.toml: [profile.wasm-release] differs from the workspace's" >&2
  exit 1
fi
floor_pkg=target/leptos-floor/site/pkg
echo "building the Leptos floor (tools/leptos-floor; no-op when unchanged)..." >&2
(
  export PATH="$PWD/tools/node_modules/.bin:$PATH"
  export CARGO_TARGET_DIR="$PWD/target/leptos-floor"
  mkdir -p "$CARGO_TARGET_DIR"
  cd tools/leptos-floor
  cargo leptos build --release --frontend-only > "$CARGO_TARGET_DIR/build.log" 2>&1 ||
    { cat "$CARGO_TARGET_DIR/build.log" >&2; exit 1; }
)

br() { brotli -q 11 -c "$1" | wc -c; }
row() { printf '%-44s %10s %10s %10s\n' "$@"; }
file_row() { row "$1" "$(stat -c %s "$2")" "$(gzip -9 -c "$2" | wc -c)" "$(br "$2")"; }

row "file" "raw" "gzip" "brotli"
file_row "uketsuke.wasm (card step: every patient)" "$pkg/uketsuke.wasm"
file_row "uketsuke.js" "$pkg/uketsuke.js"
split_js=$(find "$pkg" -maxdepth 1 -name '__wasm_split*.js' | head -n1)
[ -z "$split_js" ] || file_row "$(basename "$split_js" | cut -c1-20)….js (chunk loader)" "$split_js"
chunks=$(find "$pkg" -maxdepth 1 -name '*.wasm' ! -name uketsuke.wasm | sort)
for chunk in $chunks; do
  file_row "$(basename "$chunk") (on demand)" "$chunk"
done
file_row "uketsuke.css" "$pkg/uketsuke.css"
# The second module: every island, for the screens off the reception's path (同意照会,
# 健康保険証利用登録, the demo's practice app); a patient on the reception's path never loads it.
file_row "all/uketsuke.wasm (off-path screens)" "$pkg/all/uketsuke.wasm"
file_row "all/uketsuke.js" "$pkg/all/uketsuke.js"
for chunk in $(find "$pkg/all" -maxdepth 1 -name '*.wasm' ! -name uketsuke.wasm | sort); do
  file_row "all/$(basename "$chunk") (on demand)" "$chunk"
done

source scripts/lib/demo-server.sh
start_demo_server separate_route
url="$base/r/$link"
html_raw=$(curl -s "$url" | wc -c)
html_gz=$(curl -s -H 'Accept-Encoding: gzip' "$url" | wc -c)
html_br=$(curl -s -H 'Accept-Encoding: br' "$url" | wc -c)
row "landing page HTML (served)" "$html_raw" "$html_gz" "$html_br"
file_row "floor: floor.wasm" "$floor_pkg/floor.wasm"
file_row "floor: floor.js" "$floor_pkg/floor.js"

# A patient's first visit: the landing page, the JS and its chunk loader, the main WASM, the CSS
# (the landing page itself loads no WASM: the card step's island does). The practice card's
# chunk is not part of it (demo only, fetched when chosen).
wasm=$(br "$pkg/uketsuke.wasm")
visit=$((html_br + $(br "$pkg/uketsuke.js") + wasm + $(br "$pkg/uketsuke.css")))
[ -z "$split_js" ] || visit=$((visit + $(br "$split_js")))
on_demand=0
for chunk in $chunks; do on_demand=$((on_demand + $(br "$chunk"))); done
floor_wasm=$(br "$floor_pkg/floor.wasm")
floor_visit=$((floor_wasm + $(br "$floor_pkg/floor.js")))
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
printf '%-44s %10s B   %s × floor (%s B)\n' "patient WASM, brotli" "$wasm" \
  "$(ratio "$wasm" "$floor_wasm")" "$floor_wasm"
printf '%-44s %10s B   %s × floor WASM+JS (%s B)\n' "first visit HTML+JS+WASM+CSS, brotli" \
  "$visit" "$(ratio "$visit" "$floor_visit")" "$floor_visit"
printf '%-44s %10s B\n' "chunks on demand (practice card), brotli" "$on_demand"
