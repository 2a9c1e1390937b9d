#!/usr/bin/env bash
# Load figures of the whole pipeline (patient API → server → relay → backend simulator →
# confirmed), side by side: the server on SQLite, the server on a throw-away PostgreSQL
# cluster, and the simulator alone (backend/bench.sh). Each server run has two phases: the
# maximum rate (CONCURRENCY patients as fast as they go), then N registrations arriving at half
# that rate (the latency figures); and the crypto ceiling measured in the same run. Then the
# server binary on its own with 1,000 open console event streams and 1,000 reception sessions:
# its memory, CPU and database statements per second. Release builds throughout.
# Usage: scripts/load.sh [N] [CONCURRENCY]   (defaults 300 and 16)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-300}
concurrency=${2:-16}
streams=${STREAMS:-1000}
root=$PWD
work=$(mktemp -d)
# Stop the clusters however the run ends.
trap '"$root/scripts/pg-cluster.sh" stop "$work/cluster" >/dev/null 2>&1 || true
      "$root/scripts/pg-cluster.sh" stop "$work/cluster-streams" >/dev/null 2>&1 || true
      rm -rf "$work"' EXIT

echo "== build (release)"
cargo build -q --release -p uketsuke-server --bin uketsuke-server --example load --example streams
cargo build -q --release -p uketsuke-backend --features simulator --example bench
server_bin=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/uketsuke-server

run_load() {
  cargo run -q --release -p uketsuke-server --example load -- \
    --n "$n" --concurrency "$concurrency" --database "$1"
}
run_streams() {
  cargo run -q --release -p uketsuke-server --example streams -- \
    --server "$server_bin" --streams "$streams" --sessions "$streams" --database "$1"
}

echo "== the server on SQLite"
run_load sqlite | tee "$work/sqlite.txt"
run_streams sqlite | tee "$work/sqlite-streams.txt"

echo "== the server on PostgreSQL"
pg_url=$(scripts/pg-cluster.sh start "$work/cluster")
run_load "$pg_url" | tee "$work/postgres.txt"
scripts/pg-cluster.sh stop "$work/cluster"
pg_url=$(scripts/pg-cluster.sh start "$work/cluster-streams")
run_streams "$pg_url" | tee "$work/postgres-streams.txt"
scripts/pg-cluster.sh stop "$work/cluster-streams"

echo "== the simulator alone"
BENCH_PROFILE=release backend/bench.sh "$n" "$concurrency" | tee "$work/simulator.txt"

# One figure from one report: the first number after the label.
figure() {
  [ -f "$work/$1.txt" ] || { echo "—"; return; }
  awk -v label="$2" 'index($0, "  " label " ") == 1 { sub("^  " label, ""); for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) { print $i; exit } }' "$work/$1.txt"
}

echo
echo "== $n registrations per phase, concurrency $concurrency"
printf '%-44s %12s %12s %16s\n' "" "SQLite" "PostgreSQL" "simulator alone"
row() { # title, label in the server reports, label in the simulator's report (or -)
  local sim="—"
  [ "$3" != - ] && sim=$(figure simulator "$3")
  printf '%-44s %12s %12s %16s\n' "$1" "$(figure sqlite "$2")" "$(figure postgres "$2")" "$sim"
}
row "max registrations/s" "max registrations/s" "registrations/s"
row "max: p50 submit → confirmed (ms)" "max p50 latency" "p50 latency"
row "max: p99 submit → confirmed (ms)" "max p99 latency" "p99 latency"
row "half rate offered (/s)" "half offered rate" -
row "half rate: p50 submit → confirmed (ms)" "half p50 latency" -
row "half rate: p99 submit → confirmed (ms)" "half p99 latency" -
row "half rate: p50 submit call (ms)" "half p50 submit" -
row "half rate: p99 submit call (ms)" "half p99 submit" -
row "crypto ceiling, card included (/s)" "ceiling with card" -
row "crypto ceiling, pipeline only (/s)" "ceiling pipeline" -
row "max ÷ ceiling with card (%)" "ratio with card" -
row "max ÷ pipeline ceiling (%)" "ratio pipeline" -
row "failed (max + half)" "max failed" "failed"
row "" "half failed" -
echo "(server latencies: submit → confirmed; simulator: one signed registration call)"
echo
echo "== the server binary with $streams open console event streams and $streams reception sessions"
printf '%-44s %12s %12s\n' "" "SQLite" "PostgreSQL"
srow() { printf '%-44s %12s %12s\n' "$1" "$(figure sqlite-streams "$2")" "$(figure postgres-streams "$2")"; }
srow "event streams open" "event streams open"
srow "RSS, idle (MiB)" "idle RSS"
srow "RSS with sessions and streams (MiB)" "RSS"
srow "CPU, idle (% of one core)" "idle CPU"
srow "CPU with the streams (% of one core)" "streams CPU"
srow "queries/s, idle" "idle queries/s"
srow "queries/s with the streams" "streams queries/s"
