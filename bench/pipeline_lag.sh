#!/usr/bin/env bash
# Benchmark: dispatch lag of the run pipeline (issue #5). SCHEDULES active schedules of a
# 1-minute interval whose fires are spread evenly over the minute (100,000: ~1,667 fires/s),
# run by rampart-scheduler copies and rampart-worker processes against the private servers
# of scripts/bench-pipeline.sh. After a warm-up, over a window, from the runs table:
# fire -> job confirmed by the broker (queued_at - fire_time; target p99 <= 100 ms) and
# fire -> run started by a worker (started_at - fire_time; target p99 <= 500 ms), runs/s, and
# the schedulers' CPU and RSS. With --workers 0 a stand-in consumer (bench_amqp_ceiling
# --drain-jobs) acks the jobs instead, which measures the scheduler alone.
#
#   bench/pipeline_lag.sh [--schedules 100000] [--interval 60] [--schedulers 1] [--workers 2]
#                         [--warmup 30] [--window 90] [--worker-env 'K=V ...']
#                         [--scheduler-env 'K=V ...']
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/pipeline_lib.sh"

SCHEDULES=100000 INTERVAL=60 SCHEDULERS=1 WORKERS=2 WARMUP=30 WINDOW=90 WORKER_ENV="" SCHED_ENV=""
while (($#)); do
    case $1 in
    --schedules) SCHEDULES=$2 ;;
    --interval) INTERVAL=$2 ;;
    --schedulers) SCHEDULERS=$2 ;;
    --workers) WORKERS=$2 ;;
    --warmup) WARMUP=$2 ;;
    --window) WINDOW=$2 ;;
    --worker-env) WORKER_ENV=$2 ;;
    --scheduler-env) SCHED_ENV=$2 ;;
    *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
    shift 2
done
START_IN=10 # seconds from seeding to the first fire (the insert itself takes a few)
SETTLE=5    # after the window, before reading the runs: the last confirms and starts land
TAG="lag-s$SCHEDULERS-w$WORKERS"
trap bench_stop_all EXIT

bench_reset
consumers=()
if ((WORKERS > 0)); then
    for i in $(seq "$WORKERS"); do
        # shellcheck disable=SC2086
        bench_worker "$TAG-worker$i" $WORKER_ENV
        bench_wait_ready "$TAG-worker$i" "$LAST_PID" "$LAST_PORT"
        consumers+=("$LAST_PID")
    done
    consumer_kind="$WORKERS rampart-worker"
else
    bench_drain "$TAG-drain"
    consumers+=("$LAST_PID")
    consumer_kind="stand-in consumer (acks only, no execution)"
fi
scheds=() sched_ports=()
for i in $(seq "$SCHEDULERS"); do
    # shellcheck disable=SC2086
    bench_scheduler "$TAG-scheduler$i" $SCHED_ENV
    bench_wait_ready "$TAG-scheduler$i" "$LAST_PID" "$LAST_PORT"
    scheds+=("$LAST_PID")
    sched_ports+=("$LAST_PORT")
done

bsay "seeding $SCHEDULES schedules every $INTERVAL s, fires spread evenly over the interval"
FIRST=$(bench_seed "$SCHEDULES" "$INTERVAL" "$START_IN")
W0=$(awk -v f="$FIRST" -v w="$WARMUP" 'BEGIN { printf "%.3f", f + w }')
W1=$(awk -v a="$W0" -v w="$WINDOW" 'BEGIN { printf "%.3f", a + w }')
bsay "first fire at $(date -d "@$FIRST" +%T); warm-up ${WARMUP} s, then a ${WINDOW} s window"

groups=("postgres:$(pids_postgres)" "rabbitmq:$(pids_rabbitmq)" "ferretdb:$(pids_ferretdb)"
    "nginx:$(pids_nginx)")
for i in "${!scheds[@]}"; do groups+=("scheduler$((i + 1)):${scheds[$i]}"); done
for i in "${!consumers[@]}"; do groups+=("consumer$((i + 1)):${consumers[$i]}"); done

sleep_until "$W0"
for p in "${scheds[@]}" "${consumers[@]}"; do bench_check_alive "$TAG" "$p"; done
cpu_groups_sample "${groups[@]}" >"$BENCH_OUT/$TAG.cpu0"
metrics_sample "$BENCH_OUT/$TAG.metrics0" "${sched_ports[@]}"
DL0=$(pg_deadlocks)
read -r M0B M0T < <(machine_ticks)
sleep_until "$(awk -v a="$W0" -v w="$WINDOW" 'BEGIN { printf "%.3f", a + w / 2 }')"
top -b -n1 -w 160 | head -22 >"$BENCH_OUT/$TAG.top"
sleep_until "$W1"
cpu_groups_sample "${groups[@]}" >"$BENCH_OUT/$TAG.cpu1"
metrics_sample "$BENCH_OUT/$TAG.metrics1" "${sched_ports[@]}"
DL1=$(pg_deadlocks)
read -r M1B M1T < <(machine_ticks)
rss=() hwm=()
for p in "${scheds[@]}"; do rss+=("$(rss_mb "$p")"); hwm+=("$(hwm_mb "$p")"); done
sleep "$SETTLE"

# created_at is the claim transaction's start (now()): it splits the confirm lag into
# fire -> claimed and claimed -> confirmed. A run not confirmed / started by the time of
# reading counts as infinitely late (so the percentiles cover every run of the window).
read -r N NQ NS Q50 Q99 QMAX S50 S99 SMAX C50 C99 CMAX < <(bpsql -F ' ' -v w0="$W0" -v w1="$W1" <<'SQL'
WITH r AS (
    SELECT coalesce(extract(epoch FROM queued_at - fire_time) * 1000, 'Infinity') AS q,
           coalesce(extract(epoch FROM started_at - fire_time) * 1000, 'Infinity') AS s,
           extract(epoch FROM created_at - fire_time) * 1000 AS c
    FROM runs WHERE fire_time >= to_timestamp(:w0) AND fire_time < to_timestamp(:w1))
SELECT count(*), count(*) FILTER (WHERE q < 'Infinity'), count(*) FILTER (WHERE s < 'Infinity'),
       coalesce(round(percentile_disc(0.5) WITHIN GROUP (ORDER BY q), 1), -1),
       coalesce(round(percentile_disc(0.99) WITHIN GROUP (ORDER BY q), 1), -1),
       coalesce(round(max(q), 1), -1),
       coalesce(round(percentile_disc(0.5) WITHIN GROUP (ORDER BY s), 1), -1),
       coalesce(round(percentile_disc(0.99) WITHIN GROUP (ORDER BY s), 1), -1),
       coalesce(round(max(s), 1), -1),
       coalesce(round(percentile_disc(0.5) WITHIN GROUP (ORDER BY c), 1), -1),
       coalesce(round(percentile_disc(0.99) WITHIN GROUP (ORDER BY c), 1), -1),
       coalesce(round(max(c), 1), -1)
FROM (SELECT q::numeric AS q, s::numeric AS s, c::numeric AS c FROM r) AS x
SQL
)
EXPECTED=$(awk -v n="$SCHEDULES" -v i="$INTERVAL" -v w="$WINDOW" \
    'BEGIN { printf "%.0f", n / i * w }')
BUSY=$(awk -v b0="$M0B" -v b1="$M1B" -v t0="$M0T" -v t1="$M1T" -v nc="$(nproc)" \
    'BEGIN { printf "%.0f", (b1 - b0) / (t1 - t0) * nc * 100 }')
ms() { case $1 in -1) echo "-" ;; Infinity) echo "never" ;; *) echo "$1 ms" ;; esac; }
verdict() {
    awk -v v="$1" -v t="$2" 'BEGIN { print (v != "Infinity" && v >= 0 && v <= t) ? "met" : "NOT met" }'
}
per_s() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
ticks_of() { awk -v g="$1" '$1 == g { print $2 }' "$2"; }

{
    echo
    echo "=== dispatch lag: $SCHEDULES schedules every $INTERVAL s ($(per_s "$SCHEDULES" "$INTERVAL")" \
        "fires/s), $SCHEDULERS scheduler(s), $consumer_kind;" \
        "FerretDB ${BENCH_FERRETDB:-sqlite} handler; $(date -u '+%F %H:%M UTC')"
    [ -z "$WORKER_ENV$SCHED_ENV" ] ||
        echo "settings: workers: ${WORKER_ENV:-defaults}; schedulers: ${SCHED_ENV:-defaults}"
    echo "window: fires from $(date -d "@$W0" +%T) for $WINDOW s, after a $WARMUP s warm-up;" \
        "read $SETTLE s after its end"
    echo "runs in the window: $N of $EXPECTED due ($(per_s "$N" "$WINDOW") runs/s);" \
        "confirmed $NQ, started $NS ('never' = not by the time of reading)"
    printf '%-44s %9s %9s %9s   %s\n' "" p50 p99 max target
    printf '%-44s %9s %9s %9s   %s\n' "fire -> job confirmed by the broker (queued)" \
        "$(ms "$Q50")" "$(ms "$Q99")" "$(ms "$QMAX")" "p99 <= 100 ms: $(verdict "$Q99" 100)"
    printf '%-44s %9s %9s %9s   %s\n' "  of which fire -> claimed (run row created)" \
        "$(ms "$C50")" "$(ms "$C99")" "$(ms "$CMAX")" ""
    if ((WORKERS > 0)); then
        printf '%-44s %9s %9s %9s   %s\n' "fire -> run started by a worker" \
            "$(ms "$S50")" "$(ms "$S99")" "$(ms "$SMAX")" "p99 <= 500 ms: $(verdict "$S99" 500)"
    fi
    m0=$BENCH_OUT/$TAG.metrics0 m1=$BENCH_OUT/$TAG.metrics1
    echo "the schedulers' own histograms over the window (bucket bounds: 'p99 <= 250 ms' means" \
        "between the bucket below and 250):"
    echo "  fire -> confirm received (rampart_dispatch_lag_seconds):" \
        "$(hist_report "$m0" "$m1" rampart_dispatch_lag_seconds)"
    echo "  one claim transaction (rampart_scheduler_claim_seconds):" \
        "$(hist_report "$m0" "$m1" rampart_scheduler_claim_seconds)"
    echo "PostgreSQL deadlocks in the window: $((DL1 - DL0)) (each stalls the statements involved" \
        "for 1 s; details in $BENCH_RUN_DIR/postgres/server.log)"
    for i in "${!scheds[@]}"; do
        g=scheduler$((i + 1))
        t=$(($(ticks_of "$g" "$BENCH_OUT/$TAG.cpu1") - $(ticks_of "$g" "$BENCH_OUT/$TAG.cpu0")))
        echo "$g: CPU $(pct "$t" "$WINDOW") % of one core, RSS ${rss[$i]} MB (peak ${hwm[$i]} MB)"
    done
    echo "CPU over the window, % of one core (whole machine busy: $BUSY %, other users included):"
    cpu_groups_report "$BENCH_OUT/$TAG.cpu0" "$BENCH_OUT/$TAG.cpu1" "$WINDOW"
    echo "top snapshot mid-window: $BENCH_OUT/$TAG.top"
} | tee "$BENCH_OUT/$TAG.txt"
