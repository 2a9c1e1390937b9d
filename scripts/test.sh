#!/usr/bin/env bash
# Installs what is missing and runs every test: the Rust tests of all crates, then the browser
# suite (Playwright driving Debian's Chromium) against the release build. Storage tests run on
# SQLite and on a throw-away PostgreSQL cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test

echo "== PostgreSQL: a throw-away cluster for the storage tests"
pg_dir=$(mktemp -d)
trap 'scripts/pg-cluster.sh stop "$pg_dir/cluster"; rm -rf "$pg_dir"' EXIT
UKETSUKE_TEST_POSTGRES_URL=$(scripts/pg-cluster.sh start "$pg_dir/cluster")
export UKETSUKE_TEST_POSTGRES_URL

echo "== cargo test (all crates; storage on SQLite and PostgreSQL)"
cargo test --workspace --all-targets

echo "== release build for the browser suite"
scripts/build-site.sh

echo "== e2e (Chromium)"
cd e2e
node --test --test-concurrency=1 tests/
