#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 60) and prints executions and crashes per target.
# Usage: card/fuzz/run.sh [seconds]
# Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP lets the stable toolchain
# accept the sanitizer flags cargo-fuzz passes.
set -u
seconds="${1:-60}"
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
mkdir -p logs
printf '%-16s %14s %8s %s\n' target execs crashes status
for target in $(cargo fuzz list); do
    log="logs/${target}.log"
    cargo fuzz run "$target" -- -max_total_time="$seconds" >"$log" 2>&1
    status=$?
    # libFuzzer's final line "Done N runs in S second(s)"; a crash stops earlier with an artifact.
    execs=$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' | tail -1)
    if [ -z "$execs" ]; then
        execs=$(grep -oE '^#[0-9]+' "$log" | tr -d '#' | tail -1)
    fi
    crashes=$(ls "artifacts/${target}" 2>/dev/null | grep -cE '^(crash|leak|timeout|oom)-' || true)
    printf '%-16s %14s %8s %s\n' "$target" "${execs:-?}" "$crashes" "$([ "$status" -eq 0 ] && echo ok || echo "exit $status (see $log)")"
done
