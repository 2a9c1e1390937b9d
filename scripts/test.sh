#!/usr/bin/env bash
# Installs what is missing and runs every test: the Rust tests of all crates, then the browser
# suite (Playwright driving Debian's Chromium) against the release build. Storage tests run on
# SQLite and on a throw-away PostgreSQL cluster.
set -euo pipefail
# SHARED_FIELD_DIR (below) may be given relative to where this was started.
if [ -n "${SHARED_FIELD_DIR:-}" ] && [ -d "$SHARED_FIELD_DIR" ]; then
  SHARED_FIELD_DIR=$(cd "$SHARED_FIELD_DIR" && pwd)
fi
cd "$(dirname "$0")/.."

# Some tests read real data made by others (J-LIS CA certificates, frames recorded from real
# readers, published institution codes): `shared/field` beside this checkout, or SHARED_FIELD_DIR.
field=${SHARED_FIELD_DIR:-../shared/field}
for part in jpki readers codes; do
  if [ ! -d "$field/$part" ]; then
    echo "test: the field data is not at $field (no $part/): the tests read it from shared/field" \
      "beside this checkout; set SHARED_FIELD_DIR to where it is" >&2
    exit 2
  fi
done
if [ -n "${SHARED_FIELD_DIR:-}" ]; then export SHARED_FIELD_DIR; fi

scripts/setup.sh test

# A one-off run (CI) gains nothing from the incremental cache, which costs gigabytes of disk.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
avail_kib=$(df -Pk . | awk 'NR == 2 { print $4 }')
if [ "${avail_kib:-0}" -lt $((8 * 1024 * 1024)) ]; then
  echo "warning: only $((avail_kib / 1024)) MiB free here; the full test build needs about 7 GiB" >&2
fi

echo "== PostgreSQL: a throw-away cluster for the storage tests"
root=$PWD
pg_dir=$(mktemp -d)
# Stop the cluster however the run ends (absolute path: later steps change directory).
trap '"$root/scripts/pg-cluster.sh" stop "$pg_dir/cluster" || true; rm -rf "$pg_dir"' EXIT
# TLS on (a throw-away CA in the cluster's folder): the storage tests connect as before, and
# server/tests/postgres_tls.rs tries sslmode=require and verify-full with that CA.
UKETSUKE_TEST_POSTGRES_URL=$(scripts/pg-cluster.sh start "$pg_dir/cluster" --ssl)
export UKETSUKE_TEST_POSTGRES_URL UKETSUKE_TEST_POSTGRES_CA="$pg_dir/cluster/ca.crt"

echo "== cargo test (all crates; storage on SQLite and PostgreSQL)"
cargo test --workspace --all-targets

# The desktop card helper against a real pcsc-lite (its own pcscd with vsmartcard's vpcd and
# the virtual card), and its test-mode binaries for the browser suite (PIN from standard input;
# never in a release build).
echo "== card helper through pcsc-lite (pcscd + vpcd)"
cargo test -p uketsuke-card-helper --features test-mode --test pcsc
cargo build -p uketsuke-card-helper --features test-mode --bins
# The institution API's document against a live server (Schemathesis, a few minutes at most).
echo "== contract test: server/openapi.yaml against a running server (Schemathesis)"
scripts/contract-test.sh

# Card access compiled to WebAssembly and run in headless Chromium by wasm-bindgen-test-runner
# (the wasm32 runner in .cargo/config.toml; webdriver.json beside each crate's Cargo.toml):
# the JPKI flow through each framing, and the WebUSB transport against a fake USB device.
echo "== wasm tests in headless Chromium (card, WebUSB)"
export CHROMEDRIVER=/usr/bin/chromedriver
cargo test -p uketsuke-card --target wasm32-unknown-unknown --test browser
cargo test -p uketsuke-app --features hydrate --target wasm32-unknown-unknown --test webusb

echo "== release build for the browser suite"
scripts/build-site.sh

echo "== e2e (Chromium)"
cd e2e
node --test --test-concurrency=1 tests/
