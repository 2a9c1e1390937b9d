#!/usr/bin/env bash
# Builds the release site (server binary, hydrated WASM, CSS) and stores brotli and gzip copies
# of the static files beside them, so the server sends them compressed at the best ratio without
# compressing on every request.
set -euo pipefail
cd "$(dirname "$0")/.."
# cargo-leptos runs the first wasm-opt on PATH: binaryen from tools/ (see scripts/setup.sh).
export PATH="$PWD/tools/node_modules/.bin:$PATH"
cargo leptos build --release
for file in target/site/pkg/*.wasm target/site/pkg/*.js target/site/pkg/*.css target/site/*.svg; do
  [ -f "$file" ] || continue
  brotli --force --best --keep "$file"
  gzip --force --best --keep "$file"
done
