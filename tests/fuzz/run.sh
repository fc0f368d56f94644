#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/ and runs each for the given
# number of seconds (default 20) from its seed corpus in tests/fuzz/corpus/NAME. Any crash,
# leak or sanitizer report fails; the reproducer is left in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-20}
CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRP_FUZZ=ON >/dev/null
ninja -C build-fuzz >/dev/null
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    corpus=build-fuzz/corpus/$name
    mkdir -p "$corpus"
    [ -d "tests/fuzz/corpus/$name" ] && cp -n "tests/fuzz/corpus/$name"/* "$corpus/" 2>/dev/null || true
    out=$(cd build-fuzz && "tests/$name" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
        "corpus/$name" 2>&1) || { echo "$out" | tail -40; echo "fuzz $name: FAILED" >&2; exit 1; }
    runs=$(echo "$out" | sed -n 's/^stat::number_of_executed_units: *//p')
    cov=$(echo "$out" | grep -o 'cov: [0-9]*' | tail -1)
    echo "fuzz $name: ${runs:-?} inputs in ${secs}s, $cov, no crash"
done
