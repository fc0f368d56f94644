#!/usr/bin/env bash
# Runs the benchmarks in bench/ against private servers (.run/bench, own ports), stopping them
# afterwards. Figures are medians of several rounds, each next to its peer from the same run.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$RP_ROOT"
scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build >/dev/null
export RAMPART_RUN_DIR=$RP_ROOT/.run/bench
export RAMPART_PG_PORT=57432 RAMPART_AMQP_PORT=57672 RAMPART_AMQP_DIST_PORT=57673
export RAMPART_EPMD_PORT=56369 RAMPART_MONGO_PORT=59017
trap 'scripts/servers.sh stop || true' EXIT
scripts/servers.sh start rabbitmq
eval "$(scripts/servers.sh env)"
rp_say "AMQP publisher confirms: pipelined vs one confirm at a time (quorum queue)"
build/bench/bench_amqp_confirm "${1:-5}" "${2:-5000}"
