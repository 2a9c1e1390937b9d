#!/usr/bin/env bash
# Prints the largest items of the patient's WASM by name (twiggy), for the main module and each
# chunk loaded on demand. The release build strips names, so this builds a copy that keeps them:
# the same cargo-leptos build (`--split`, wasm-release profile, wasm-opt -Oz) with the name
# section kept (strip off, wasm-opt -g), in target/wasm-profile/ (the real site is untouched).
# The first run takes as long as a release WASM build; installs twiggy from crates.io when
# missing. Sizes are raw bytes (twiggy's "shallow" size) and include nothing of the names.
# Usage: scripts/wasm-top.sh [N]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
top=${1:-10}
TWIGGY_VERSION=0.8.0

if [ "$(twiggy --version 2>/dev/null | awk '{ print $2 }')" != "$TWIGGY_VERSION" ]; then
  echo "installing twiggy $TWIGGY_VERSION" >&2
  cargo install twiggy --locked --version "$TWIGGY_VERSION"
fi

out=$PWD/target/wasm-profile
mkdir -p "$out"
features=$(awk '/^wasm-opt-features = \[/ { on = 1; next } on && /^\]/ { exit } on' Cargo.toml |
  tr -d ' ",' | paste -sd, -)
echo "building the WASM with names (target/wasm-profile; no-op when unchanged)..." >&2
PATH="$PWD/tools/node_modules/.bin:$PATH" \
  CARGO_TARGET_DIR="$out" \
  CARGO_PROFILE_WASM_RELEASE_STRIP=false \
  LEPTOS_SITE_ROOT="$out/site" \
  LEPTOS_WASM_OPT_FEATURES="$features,-g" \
  cargo leptos build --release --split --frontend-only > "$out/build.log" 2>&1 ||
  { cat "$out/build.log" >&2; exit 1; }

for wasm in "$out"/site/pkg/*.wasm; do
  echo
  echo "== $(basename "$wasm"): $(stat -c %s "$wasm") B with names; top $top items"
  # Leave out the names themselves (absent from the real build).
  twiggy top -n $((top + 3)) "$wasm" | grep -v -e "custom section 'name'" -e 'names" subsection' |
    head -n $((top + 2))
done
