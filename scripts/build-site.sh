#!/usr/bin/env bash
# Builds the release site (server binary, hydrated WASM split into the main module and the
# chunks loaded on demand, CSS) and stores brotli and gzip copies of the static files beside
# them, so the server sends them compressed at the best ratio without compressing on every
# request.
#
# `--split` cuts the WASM at the split points (`#[wasm_split]`, e.g. app/src/card/practice.rs)
# into target/site/pkg/uketsuke.wasm and split_*.wasm, with the loader __wasm_split.*.js.
#
# cargo-leptos 0.3.2 builds the WASM and then the server, one after the other. They share no
# files (target/front and target/release), so this runs them as two cargo-leptos processes at
# once: the server's crates compile while the WASM's single-threaded LTO link runs. Each
# cargo-leptos process empties target/site when it starts, so the WASM build starts only once
# the server build has started compiling.
set -euo pipefail
cd "$(dirname "$0")/.."
# cargo-leptos runs the first wasm-opt on PATH: binaryen from tools/ (see scripts/setup.sh).
export PATH="$PWD/tools/node_modules/.bin:$PATH"

cargo leptos build --release --split --server-only &
server=$!
# Until its `cargo build` runs (it has emptied the site folder by then), or it has ended.
until pgrep -P "$server" -f 'cargo build' >/dev/null || ! kill -0 "$server" 2>/dev/null; do
  sleep 0.2
done
front=0
cargo leptos build --release --split --frontend-only || front=$?
# The second WASM: every island (feature all-islands), for the screens off the reception's path
# (app/src/lib.rs ALL_ISLANDS_DIR), served from pkg/all/. It is built in a site folder of its
# own (its CSS and public files are the first build's and are not copied), then copied beside the
# first. cargo-leptos 0.3.2 writes "/pkg/<output-name>.js" into the chunk loader as the module
# that owns the memory and table, whatever the pkg folder; here that is "/pkg/all/uketsuke.js".
if [ "$front" -eq 0 ]; then
  rm -rf target/site-all
  LEPTOS_SITE_ROOT=target/site-all \
    cargo leptos build --release --split --frontend-only --lib-features hydrate,split,all-islands ||
    front=$?
fi
if [ "$front" -eq 0 ]; then
  rm -rf target/site/pkg/all
  mkdir -p target/site/pkg/all
  cp target/site-all/pkg/*.js target/site-all/pkg/*.wasm target/site/pkg/all/
  for loader in target/site/pkg/all/__wasm_split*.js; do
    [ -f "$loader" ] || continue
    grep -q '"/pkg/uketsuke.js"' "$loader" ||
      { echo "build-site: $loader does not import /pkg/uketsuke.js; cargo-leptos changed" >&2; exit 1; }
    sed -i 's|"/pkg/uketsuke.js"|"/pkg/all/uketsuke.js"|' "$loader"
  done
fi
server_status=0
wait "$server" || server_status=$?
[ "$front" -eq 0 ] || { echo "build-site: the WASM build failed" >&2; exit "$front"; }
[ "$server_status" -eq 0 ] || { echo "build-site: the server build failed" >&2; exit "$server_status"; }

for file in target/site/pkg/*.wasm target/site/pkg/*.js target/site/pkg/all/*.wasm target/site/pkg/all/*.js \
  target/site/pkg/*.css target/site/*.svg; do
  [ -f "$file" ] || continue
  brotli --force --best --keep "$file"
  gzip --force --best --keep "$file"
done
