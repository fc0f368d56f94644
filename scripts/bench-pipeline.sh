#!/usr/bin/env bash
# The run pipeline's benchmarks (issue #5 "Speed"), against a private set of servers
# (.run/bench-pipeline, own ports) and a private nginx as the HTTP target, all stopped on exit:
#   ceiling     the broker's msgs/s: 1 KiB persistent, quorum queue, confirms + manual acks
#               (bench/amqp_ceiling.c, median of 3 rounds)
#   lag         dispatch lag with 100,000 schedules of 1 minute (bench/pipeline_lag.sh)
#   throughput  checks/s end to end, 1 / 20 / 50 runs per job message, next to the ceiling
#               measured before and after (bench/pipeline_throughput.sh)
# Usage: scripts/bench-pipeline.sh [all | ceiling [ROUNDS MSGS] | lag ARGS... | throughput ARGS...]
# `all` (the default, ~15 min): the lag of 1 and 2 schedulers alone (a stand-in consumer acks
# the jobs), of 1 scheduler with 2 workers (20 runs per job message), then the throughput.
# Without a rampart-worker that consumes jobs, the ceiling alone replaces the last two.
# RAMPART_BENCH_FERRETDB=postgresql runs FerretDB on its PostgreSQL handler (a database of the
# same private PostgreSQL) instead of servers.sh's SQLite one: the result store compared.
# Figures: .run/bench-pipeline/out/*.txt; the processes' logs: .run/bench-pipeline/out/logs/
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$RP_ROOT"

export RAMPART_RUN_DIR=$RP_ROOT/.run/bench-pipeline
export RAMPART_PG_PORT=47432 RAMPART_AMQP_PORT=47672 RAMPART_AMQP_DIST_PORT=47673
export RAMPART_EPMD_PORT=45369 RAMPART_MONGO_PORT=49017
RP_RUN=$RAMPART_RUN_DIR
export BENCH_BUILD=$RP_ROOT/build-bench BENCH_RUN_DIR=$RP_RUN BENCH_OUT=$RP_RUN/out

scripts/deps.sh
rp_say "building (release, $BENCH_BUILD)"
cmake -S . -B "$BENCH_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$BENCH_BUILD" rampart-scheduler bench_amqp_ceiling >/dev/null
# The worker is built on its own: without it, the scheduler-side figures can still be measured.
WORKER_BUILT=1
ninja -C "$BENCH_BUILD" rampart-worker >"$BENCH_BUILD/worker-build.log" 2>&1 || WORKER_BUILT=0

NGINX_PID=
cleanup() {
    [ -n "$NGINX_PID" ] && { kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; }
    scripts/servers.sh stop || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Fresh servers every time: the figures must not depend on what an earlier run left.
scripts/servers.sh wipe
scripts/servers.sh start
eval "$(scripts/servers.sh env)"
FERRETDB=${RAMPART_BENCH_FERRETDB:-sqlite}
if [ "$FERRETDB" = postgresql ]; then
    # Same binary, port and pid file as servers.sh's (so `servers.sh stop` stops it too).
    scripts/servers.sh stop ferretdb
    psql "$RAMPART_PG_URL" -qc "CREATE DATABASE ferretdb"
    mkdir -p "$RP_RUN/ferretdb"
    nohup "$(scripts/ferretdb.sh)" --handler=postgresql \
        --postgresql-url="postgres://postgres@127.0.0.1:$RAMPART_PG_PORT/ferretdb?sslmode=disable" \
        --listen-addr="127.0.0.1:$RAMPART_MONGO_PORT" --telemetry=disable --debug-addr=- \
        --state-dir="$RP_RUN/ferretdb" --log-level=warn >"$RP_RUN/ferretdb/ferretdb.log" 2>&1 </dev/null &
    echo $! >"$RP_RUN/ferretdb/ferretdb.pid"
    rp_wait_port "$RAMPART_MONGO_PORT" 30 || rp_die "FerretDB (postgresql handler) did not start"
    rp_say "FerretDB on its PostgreSQL handler (database ferretdb)"
elif [ "$FERRETDB" != sqlite ]; then
    rp_die "RAMPART_BENCH_FERRETDB: sqlite or postgresql, not '$FERRETDB'"
fi
export BENCH_FERRETDB=$FERRETDB
mkdir -p "$BENCH_OUT"
rm -f "$BENCH_OUT"/*.txt "$BENCH_OUT"/*.cpu* "$BENCH_OUT"/*.top "$BENCH_OUT"/*.metrics*

# The HTTP target: nginx answering a small JSON document (bench/check/nginx.conf).
NGX=$BENCH_OUT/nginx
mkdir -p "$NGX/tmp"
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e "s|@PREFIX@|$NGX|g" -e "s|@PORT@|$PORT|g" bench/check/nginx.conf >"$NGX/nginx.conf"
nginx -c "$NGX/nginx.conf" -p "$NGX" &
NGINX_PID=$!
rp_wait_port "$PORT" 10 || rp_die "nginx did not start (see $NGX/error.log)"
export BENCH_TARGET=http://127.0.0.1:$PORT

# Does this rampart-worker consume jobs yet (its consumer mode has its own settings)?
if ((WORKER_BUILT)) &&
    "$BENCH_BUILD/worker/rampart-worker" --help 2>&1 | grep -q RAMPART_WORKER_LOCATION; then
    HAVE_WORKER=1
else
    HAVE_WORKER=0
    ((WORKER_BUILT)) || rp_say "rampart-worker does not build (see $BENCH_BUILD/worker-build.log)"
    rp_say "no rampart-worker that consumes jobs: lag with a stand-in consumer, no throughput"
fi

ceiling() {
    rp_say "broker ceiling: ${1:-3} rounds of ${2:-100000} messages"
    "$BENCH_BUILD/bench/bench_amqp_ceiling" "${1:-3}" "${2:-100000}" | tee "$BENCH_OUT/ceiling.txt"
}
lag() {
    local w=()
    ((HAVE_WORKER)) || w=(--workers 0)
    bench/pipeline_lag.sh "${w[@]}" "$@"
}
throughput() {
    if ((HAVE_WORKER == 0)); then
        rp_say "skipped: end-to-end throughput needs a consuming rampart-worker"
        ceiling
        return 0
    fi
    bench/pipeline_throughput.sh "$@"
}

what=${1:-all}
shift || true
case $what in
ceiling) ceiling "$@" ;;
lag) lag "$@" ;;
throughput) throughput "$@" ;;
all)
    lag --schedulers 1 --workers 0 # the scheduler alone (a stand-in acks the jobs)
    lag --schedulers 2 --workers 0
    # 20 runs per job message: with 1, two workers do fewer runs/s than the 1,667 due
    ((HAVE_WORKER == 0)) || lag --schedulers 1 --scheduler-env RAMPART_SCHEDULER_JOB_RUNS=20
    throughput ;;
*) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
echo
rp_say "figures: $BENCH_OUT/*.txt"
