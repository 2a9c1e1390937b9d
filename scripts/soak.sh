#!/usr/bin/env bash
# Soak run of crashes and outages (not part of the test command): patients register without
# pause through the patient API while the server is killed with SIGKILL N times at random
# moments and restarted, and the backend simulator (a standalone backend-sim with a SQLite
# file) is killed for a stretch and brought back. Then the queue drains and the run prints
# registrations accepted, confirmed, lost, doubled at the backend, and the longest time a
# registration stayed queued. First on SQLite with one server, then on a throw-away PostgreSQL
# cluster with two servers sharing the database and the backend, killed one at a time.
# Exits non-zero if a registration was lost or doubled. Release builds throughout.
# Usage: scripts/soak.sh [N] [sqlite|postgres|both]   (defaults 10 and both)
# Environment: SOAK_OUTAGE_SECS (default 90), SOAK_CONCURRENCY (default 8), SOAK_DIR (keep
# the processes' logs there instead of a temporary folder).
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-10}
which=${2:-both}
outage=${SOAK_OUTAGE_SECS:-90}
concurrency=${SOAK_CONCURRENCY:-8}
case "$which" in sqlite | postgres | both) ;; *)
  echo "usage: scripts/soak.sh [N] [sqlite|postgres|both]" >&2
  exit 2
  ;;
esac
root=$PWD
work=${SOAK_DIR:-$(mktemp -d)}
mkdir -p "$work"
# Stop the cluster however the run ends.
cleanup() {
  "$root/scripts/pg-cluster.sh" stop "$work/cluster" >/dev/null 2>&1 || true
  [ -n "${SOAK_DIR:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

echo "== build (release)"
cargo build -q --release -p uketsuke-backend --features simulator --bin backend-sim
cargo build -q --release -p uketsuke-server --bin uketsuke-server --example soak
target=${CARGO_TARGET_DIR:-$root/target}

soak() {
  "$target/release/examples/soak" --server-bin "$target/release/uketsuke-server" \
    --sim-bin "$target/release/backend-sim" --kills "$kills" --outage-secs "$outage" \
    --concurrency "$concurrency" "$@"
}

status=0
if [ "$which" != postgres ]; then
  echo "== SQLite, one server"
  soak --database sqlite --dir "$work/sqlite" || status=1
fi
if [ "$which" != sqlite ]; then
  echo "== PostgreSQL, two servers sharing the database"
  pg_url=$(scripts/pg-cluster.sh start "$work/cluster")
  soak --database "$pg_url" --instances 2 --dir "$work/postgres" || status=1
  scripts/pg-cluster.sh stop "$work/cluster"
fi
exit "$status"
