#!/usr/bin/env bash
# Benchmark of the backend simulator alone: registrations/s and p50/p99 latency over loopback,
# then the raw cost of the per-request crypto. Usage: backend/bench.sh [REQUESTS] [CONCURRENCY]
# Dependencies build with opt-level 3 (workspace profile), so the dev profile measures the
# crypto and SQLite at full speed; pass BENCH_PROFILE=release to optimise the backend crate too.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=()
if [[ "${BENCH_PROFILE:-dev}" == "release" ]]; then profile=(--release); fi
exec cargo run -q "${profile[@]}" -p uketsuke-backend --features simulator --example bench -- "${1:-400}" "${2:-8}"
