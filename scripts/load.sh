#!/usr/bin/env bash
# Load figures of the whole pipeline (patient API → server → relay → backend simulator →
# confirmed), side by side: the server on SQLite, the server on a throw-away PostgreSQL
# cluster, and the simulator alone (backend/bench.sh). Release builds throughout.
# Usage: scripts/load.sh [N] [CONCURRENCY]   (defaults 300 and 16)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-300}
concurrency=${2:-16}
root=$PWD
work=$(mktemp -d)
# Stop the cluster however the run ends.
trap '"$root/scripts/pg-cluster.sh" stop "$work/cluster" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

echo "== build (release)"
cargo build -q --release -p uketsuke-server --example load
cargo build -q --release -p uketsuke-backend --features simulator --example bench

run_load() {
  cargo run -q --release -p uketsuke-server --example load -- \
    --n "$n" --concurrency "$concurrency" --database "$1"
}

echo "== the server on SQLite"
run_load sqlite | tee "$work/sqlite.txt"

echo "== the server on PostgreSQL"
pg_url=$(scripts/pg-cluster.sh start "$work/cluster")
run_load "$pg_url" | tee "$work/postgres.txt"
scripts/pg-cluster.sh stop "$work/cluster"

echo "== the simulator alone"
BENCH_PROFILE=release backend/bench.sh "$n" "$concurrency" | tee "$work/simulator.txt"

# One figure from one report: the number after the label.
figure() {
  awk -v label="$2" '$0 ~ "^  " label " " { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) { print $i; exit } }' "$work/$1.txt"
}

echo
echo "== $n registrations, concurrency $concurrency"
printf '%-34s %12s %12s %16s\n' "" "SQLite" "PostgreSQL" "simulator alone"
for row in "registrations/s|registrations/s" "p50 latency|p50 latency (ms)" "p99 latency|p99 latency (ms)" \
  "p50 submit|p50 submit call (ms)" "p99 submit|p99 submit call (ms)" "failed|failed"; do
  label=${row%%|*}
  title=${row#*|}
  printf '%-34s %12s %12s %16s\n' "$title" \
    "$(figure sqlite "$label")" "$(figure postgres "$label")" "$(figure simulator "$label")"
done
echo "(server latencies: submit → confirmed; simulator: one signed registration call)"
