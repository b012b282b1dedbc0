#!/usr/bin/env bash
# Runs every cargo-fuzz target in turn (by hand, never from CI): `scripts/fuzz-all.sh [MINUTES]`
# gives each target MINUTES (default 60); `FUZZ_TARGETS="a b"` picks targets, and
# `FUZZ_MINUTES_<target>=N` overrides one target's time. Needs the nightly toolchain and
# cargo-fuzz (`cargo install cargo-fuzz`). Corpora stay in fuzz/corpus/<target> between runs;
# crashes land in fuzz/artifacts/<target> and become regression tests. Prints one line per
# target: runs, coverage, peak RSS, and whether it crashed.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
minutes=${1:-60}
targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}
cargo +nightly fuzz build >/dev/null
for t in $targets; do
    var="FUZZ_MINUTES_$t"
    m=${!var:-$minutes}
    log=$(mktemp)
    start=$(date +%s)
    cargo +nightly fuzz run "$t" -- -max_total_time=$((m * 60)) -rss_limit_mb=4096 \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    runs=$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || echo "?")
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo "?")
    rss=$(grep -oE 'rss: [0-9]+Mb' "$log" | tail -1 || echo "?")
    if [ $rc -eq 0 ]; then verdict="no crash"; else verdict="CRASH (exit $rc, see $log)"; fi
    echo "$t: ${took}s, ${runs} runs, cov ${cov}, ${rss}, ${verdict}"
done
