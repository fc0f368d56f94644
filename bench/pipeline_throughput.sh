#!/usr/bin/env bash
# Benchmark: end-to-end throughput of the run pipeline (issue #5): checks/s through the whole
# pipeline (scheduled -> queued -> executed against nginx -> result stored in MongoDB ->
# run.finished published -> job acked), next to the broker's ceiling measured in the same run
# (bench_amqp_ceiling, 3 rounds before and 3 after the pipeline runs: the ceiling is the median
# of the 6, so a machine that got busier or quieter meanwhile shows). SCHEDULES schedules of a
# 1 s interval ask for more runs than the pipeline does here (3,000/s against a capacity of a
# few hundred; many more only turn the scheduler's catch-up into the main CPU load); the figure
# is runs reaching a final status per second (finished_at) over a window after a warm-up, once
# per runs-per-job-message setting (RAMPART_SCHEDULER_JOB_RUNS). Also the CPU of every process
# over the window (where the time goes), the job queue's depth at both ends of the window
# (growing: the workers are behind), and the result store's own speed (mongo_store_probe).
#
#   bench/pipeline_throughput.sh [--job-runs '1 20 50'] [--schedules 3000] [--schedulers 1]
#       [--workers 2] [--warmup 20] [--window 40] [--worker-env 'K=V ...'] [--ceiling-msgs 100000]
#       [--scheduler-env 'K=V ...']
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/pipeline_lib.sh"

CEILING_MSGS=100000 JOB_RUNS="1 20 50" SCHEDULES=3000 SCHEDULERS=1 WORKERS=2 WARMUP=20 WINDOW=40
WORKER_ENV="" SCHED_ENV=""
while (($#)); do
    case $1 in
    --ceiling-msgs) CEILING_MSGS=$2 ;;
    --job-runs) JOB_RUNS=$2 ;;
    --schedules) SCHEDULES=$2 ;;
    --schedulers) SCHEDULERS=$2 ;;
    --workers) WORKERS=$2 ;;
    --warmup) WARMUP=$2 ;;
    --window) WINDOW=$2 ;;
    --worker-env) WORKER_ENV=$2 ;;
    --scheduler-env) SCHED_ENV=$2 ;;
    *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
    shift 2
done
START_IN=5
QUEUE=rampart.jobs.$BENCH_LOCATION
trap bench_stop_all EXIT
SUMMARY=$BENCH_OUT/throughput.txt
: >"$SUMMARY"

one() { # RUNS_PER_JOB
    local k=$1 tag="tput-j$1" i
    bench_reset
    local workers=() scheds=()
    for i in $(seq "$WORKERS"); do
        # shellcheck disable=SC2086
        bench_worker "$tag-worker$i" $WORKER_ENV
        bench_wait_ready "$tag-worker$i" "$LAST_PID" "$LAST_PORT"
        workers+=("$LAST_PID")
    done
    for i in $(seq "$SCHEDULERS"); do
        # shellcheck disable=SC2086
        bench_scheduler "$tag-scheduler$i" RAMPART_SCHEDULER_JOB_RUNS="$k" $SCHED_ENV
        bench_wait_ready "$tag-scheduler$i" "$LAST_PID" "$LAST_PORT"
        scheds+=("$LAST_PID")
    done
    bsay "job runs $k: seeding $SCHEDULES schedules every 1 s"
    local first w0 w1
    first=$(bench_seed "$SCHEDULES" 1 "$START_IN")
    w0=$(awk -v f="$first" -v w="$WARMUP" 'BEGIN { printf "%.3f", f + w }')
    w1=$(awk -v a="$w0" -v w="$WINDOW" 'BEGIN { printf "%.3f", a + w }')
    bsay "first fire at $(date -d "@$first" +%T); warm-up $WARMUP s, then a $WINDOW s window"

    local groups=("postgres:$(pids_postgres)" "rabbitmq:$(pids_rabbitmq)"
        "ferretdb:$(pids_ferretdb)" "nginx:$(pids_nginx)")
    for i in "${!scheds[@]}"; do groups+=("scheduler$((i + 1)):${scheds[$i]}"); done
    for i in "${!workers[@]}"; do groups+=("worker$((i + 1)):${workers[$i]}"); done

    sleep_until "$w0"
    for i in "${scheds[@]}" "${workers[@]}"; do bench_check_alive "$tag" "$i"; done
    cpu_groups_sample "${groups[@]}" >"$BENCH_OUT/$tag.cpu0"
    local m0b m0t m1b m1t d0 d1
    read -r m0b m0t < <(machine_ticks)
    d0=$("$BENCH_BUILD/bench/bench_amqp_ceiling" --depth "$QUEUE")
    local dl0 dl1
    dl0=$(pg_deadlocks)
    sleep_until "$(awk -v a="$w0" -v w="$WINDOW" 'BEGIN { printf "%.3f", a + w / 2 }')"
    top -b -n1 -w 160 | head -22 >"$BENCH_OUT/$tag.top"
    sleep_until "$w1"
    cpu_groups_sample "${groups[@]}" >"$BENCH_OUT/$tag.cpu1"
    read -r m1b m1t < <(machine_ticks)
    d1=$("$BENCH_BUILD/bench/bench_amqp_ceiling" --depth "$QUEUE")
    dl1=$(pg_deadlocks)
    local wrss=()
    for i in "${workers[@]}"; do wrss+=("$(rss_mb "$i")"); done

    local created queued started finished passed
    read -r created queued started finished passed < <(bpsql -F ' ' -v w0="$w0" -v w1="$w1" <<'SQL'
SELECT count(*) FILTER (WHERE created_at >= to_timestamp(:w0) AND created_at < to_timestamp(:w1)),
       count(*) FILTER (WHERE queued_at >= to_timestamp(:w0) AND queued_at < to_timestamp(:w1)),
       count(*) FILTER (WHERE started_at >= to_timestamp(:w0) AND started_at < to_timestamp(:w1)),
       count(*) FILTER (WHERE finished_at >= to_timestamp(:w0) AND finished_at < to_timestamp(:w1)),
       count(*) FILTER (WHERE finished_at >= to_timestamp(:w0) AND finished_at < to_timestamp(:w1)
                          AND status = 'passed')
FROM runs
SQL
)
    bench_stop_all
    # Every finished run has its result document (checked once the workers have drained).
    local fin_all docs
    fin_all=$(bpsql -c "SELECT count(*) FROM runs WHERE status IN ('passed', 'failed', 'error')")
    docs=$(/usr/bin/python3 -c 'import sys, pymongo
c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000)
print(c.get_default_database().results.count_documents({}))' "$RAMPART_MONGO_URL")

    local rate busy
    rate=$(awk -v n="$finished" -v w="$WINDOW" 'BEGIN { printf "%.0f", n / w }')
    busy=$(awk -v b0="$m0b" -v b1="$m1b" -v t0="$m0t" -v t1="$m1t" -v nc="$(nproc)" \
        'BEGIN { printf "%.0f", (b1 - b0) / (t1 - t0) * nc * 100 }')
    printf '%-10s %9s %8s %10s %10s %10s %14s %7s\n' "$k" "$rate" "RATIO" \
        "$(awk -v n="$created" -v w="$WINDOW" 'BEGIN { printf "%.0f", n / w }')" \
        "$(awk -v n="$queued" -v w="$WINDOW" 'BEGIN { printf "%.0f", n / w }')" \
        "$(awk -v n="$started" -v w="$WINDOW" 'BEGIN { printf "%.0f", n / w }')" \
        "$d0 -> $d1" "$busy %" >>"$SUMMARY.rows"
    {
        echo
        echo "--- $k run(s) per job message: $rate checks/s ($finished finished in $WINDOW s, $passed passed)"
        echo "scheduled $created, queued $queued, started $started in the window; job queue ready $d0 -> $d1 messages"
        echo "after the stop: $fin_all finished runs, $docs result documents; worker RSS ${wrss[*]} MB; PostgreSQL deadlocks in the window: $((dl1 - dl0))"
        echo "CPU over the window, % of one core (whole machine busy: $busy %, other users included):"
        cpu_groups_report "$BENCH_OUT/$tag.cpu0" "$BENCH_OUT/$tag.cpu1" "$WINDOW" "$finished"
        echo "top snapshot mid-window: $BENCH_OUT/$tag.top"
    } | tee -a "$SUMMARY.detail"
}

# The broker's ceiling, 3 rounds (their median is printed; each round's figure is kept too).
ceiling() { # FILE
    bsay "broker ceiling: 3 rounds of $CEILING_MSGS messages"
    "$BENCH_BUILD/bench/bench_amqp_ceiling" 3 "$CEILING_MSGS" | tee "$1" >&2
}

rm -f "$SUMMARY.rows" "$SUMMARY.detail"
bench_reset
ceiling "$BENCH_OUT/ceiling-before.txt"
# The ratio is computed once the ceiling after is known; rows hold the rate for now.
for k in $JOB_RUNS; do one "$k"; done
ceiling "$BENCH_OUT/ceiling-after.txt"
bsay "result store probe: 1,000 documents as inserts, then as upserts"
STORE=$(mongo_store_probe 1000)
CEILING=$(sed -nE 's/^round [0-9]+: .* ([0-9]+) msgs\/s first publish.*/\1/p' \
    "$BENCH_OUT/ceiling-before.txt" "$BENCH_OUT/ceiling-after.txt" | sort -n |
    awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)) }')
C_BEFORE=$(sed -nE 's/^ceiling: .*: ([0-9]+) msgs\/s.*/\1/p' "$BENCH_OUT/ceiling-before.txt")
C_AFTER=$(sed -nE 's/^ceiling: .*: ([0-9]+) msgs\/s.*/\1/p' "$BENCH_OUT/ceiling-after.txt")
{
    echo
    echo "=== end-to-end throughput: $SCHEDULES schedules every 1 s, $SCHEDULERS scheduler(s)," \
        "$WORKERS worker(s), one GET + status check per run against nginx;" \
        "FerretDB ${BENCH_FERRETDB:-sqlite} handler; $(date -u '+%F %H:%M UTC')"
    echo "broker ceiling (same run): $CEILING msgs/s, median of 6 rounds (3 before: median" \
        "$C_BEFORE, 3 after: median $C_AFTER)"
    echo "result store (FerretDB, same run, bulks of 200, 4 indexes): $STORE"
    [ -z "$WORKER_ENV$SCHED_ENV" ] ||
        echo "settings: workers: ${WORKER_ENV:-defaults}; schedulers: ${SCHED_ENV:-defaults}"
    echo "ratio = checks/s / ceiling msgs/s (goal >= 50 %); rates per second over a $WINDOW s" \
        "window after a $WARMUP s warm-up"
    printf '%-10s %9s %8s %10s %10s %10s %14s %7s\n' "runs/job" "checks/s" "ratio" "scheduled" \
        "queued" "started" "queue ready" "busy"
    awk -v c="$CEILING" '{ sub(/RATIO/, sprintf("%.1f%%", $2 / c * 100)); print }' "$SUMMARY.rows"
    cat "$SUMMARY.detail"
} | tee "$SUMMARY"
rm -f "$SUMMARY.rows" "$SUMMARY.detail"
