#!/usr/bin/env bash
# Installs what is missing and runs every test: the Rust tests of all crates, then the browser
# suite (Playwright driving Debian's Chromium) against the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test

echo "== cargo test (all crates)"
cargo test --workspace --all-targets

echo "== release build for the browser suite"
scripts/build-site.sh

echo "== e2e (Chromium)"
cd e2e
node --test --test-concurrency=1 tests/
