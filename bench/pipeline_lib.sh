# Helpers of the pipeline benchmarks (bench/pipeline_lag.sh, bench/pipeline_throughput.sh),
# sourced, not run: the benchmark's data in PostgreSQL (one project, one test that GETs the
# private nginx and expects 200, N schedules spread evenly over one interval), starting and
# stopping rampart-scheduler / rampart-worker / the stand-in consumer, and CPU accounting from
# /proc. scripts/bench-pipeline.sh sets the environment they rely on:
#   RAMPART_PG_URL, RAMPART_AMQP_URLS, RAMPART_MONGO_URL  the private servers
#   BENCH_BUILD    build directory (rampart-scheduler, rampart-worker, bench_amqp_ceiling)
#   BENCH_OUT      where logs and snapshots go
#   BENCH_TARGET   base URL of the private nginx
#   BENCH_RUN_DIR  the servers' state (.run/bench-pipeline): their pid files

BENCH_LOCATION=bench
BENCH_PIDS=()     # processes started by the functions below (stopped by bench_stop_all)
BENCH_PORT_NEXT=47100
HZ=$(getconf CLK_TCK)

for v in RAMPART_PG_URL RAMPART_AMQP_URLS RAMPART_MONGO_URL BENCH_BUILD BENCH_OUT BENCH_TARGET \
    BENCH_RUN_DIR; do
    [ -n "${!v:-}" ] || { echo "error: $v is not set (run scripts/bench-pipeline.sh)" >&2; exit 1; }
done
mkdir -p "$BENCH_OUT/logs"

bsay() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
bpsql() { PGOPTIONS='-c client_min_messages=warning' psql "$RAMPART_PG_URL" -X -q -v ON_ERROR_STOP=1 -tA "$@"; }
now_epoch() { date +%s.%N; }
sleep_until() { # EPOCH_SECONDS
    local d
    d=$(awk -v t="$1" -v n="$(now_epoch)" 'BEGIN { d = t - n; print (d > 0 ? d : 0) }')
    sleep "$d"
}

# ---- processes --------------------------------------------------------------------------

# bench_start NAME CMD...: start a process with its stderr in $BENCH_OUT/logs/NAME.log, its own
# health port, warn-level logs and a short drain; its pid is in BENCH_PIDS and in $LAST_PID.
bench_start() {
    local name=$1
    shift
    BENCH_PORT_NEXT=$((BENCH_PORT_NEXT + 1))
    RAMPART_LOG_LEVEL=warn RAMPART_INSTANCE=$name RAMPART_DRAIN_TIMEOUT=10s \
        RAMPART_HTTP_LISTEN=127.0.0.1:$BENCH_PORT_NEXT RAMPART_WORKER_LOCATION=$BENCH_LOCATION \
        "$@" >"$BENCH_OUT/logs/$name.out" 2>"$BENCH_OUT/logs/$name.log" </dev/null &
    LAST_PID=$!
    LAST_PORT=$BENCH_PORT_NEXT
    BENCH_PIDS+=("$LAST_PID")
}

# bench_wait_ready NAME PID PORT [SECONDS]: until /readyz answers 200 (dies with the log if the
# process exits or it takes too long).
bench_wait_ready() {
    local i
    for ((i = 0; i < ${4:-60} * 10; i++)); do
        bench_check_alive "$1" "$2"
        if curl -fs -o /dev/null "http://127.0.0.1:$3/readyz"; then
            sleep 0.2 # a port taken by someone else answers too: is it still ours?
            bench_check_alive "$1" "$2"
            return 0
        fi
        sleep 0.1
    done
    echo "error: $1 not ready after ${4:-60} s; its log ($BENCH_OUT/logs/$1.log):" >&2
    tail -20 "$BENCH_OUT/logs/$1.log" >&2
    exit 1
}

bench_scheduler() { # NAME [ENV=VALUE ...]
    local name=$1
    shift
    bench_start "$name" env "$@" "$BENCH_BUILD/scheduler/rampart-scheduler"
}
bench_worker() { # NAME [ENV=VALUE ...]
    local name=$1
    shift
    bench_start "$name" env "$@" "$BENCH_BUILD/worker/rampart-worker"
}
# The stand-in for workers while measuring the scheduler alone: acks every job of the location.
bench_drain() { bench_start "$1" "$BENCH_BUILD/bench/bench_amqp_ceiling" --drain-jobs "$BENCH_LOCATION"; }

# `env` execs the binary, so $LAST_PID is the binary's own pid (what /proc accounting needs).
# SIGTERM (the services drain), SIGKILL after 15 s.
bench_stop() { # PID...
    local p
    for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "$@"; do
        for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
}
bench_stop_all() {
    ((${#BENCH_PIDS[@]})) && bench_stop "${BENCH_PIDS[@]}"
    BENCH_PIDS=()
}

# Fail early with the log when a started process died (a bad setting, a missing server).
bench_check_alive() { # NAME PID
    kill -0 "$2" 2>/dev/null && return 0
    echo "error: $1 exited early; its log ($BENCH_OUT/logs/$1.log):" >&2
    tail -20 "$BENCH_OUT/logs/$1.log" >&2
    exit 1
}

# ---- data -------------------------------------------------------------------------------

# Make sure the schema exists (a scheduler applies the migrations), then empty the benchmark's
# tables, the location's job queue and the result documents. Call it with nothing running.
bench_reset() {
    if [ "$(bpsql -c "SELECT to_regclass('public.schedules') IS NOT NULL")" != t ]; then
        bench_scheduler schema-setup # ready once it has applied the migrations
        bench_wait_ready schema-setup "$LAST_PID" "$LAST_PORT"
        bench_stop_all
    fi
    bpsql -c "TRUNCATE projects CASCADE" >/dev/null
    bpsql -c "VACUUM ANALYZE" >/dev/null 2>&1 || true
    "$BENCH_BUILD/bench/bench_amqp_ceiling" --reset-jobs "$BENCH_LOCATION"
    /usr/bin/python3 -c 'import sys, pymongo
c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000)
c.get_default_database().results.drop()' "$RAMPART_MONGO_URL"
}

# bench_seed SCHEDULES INTERVAL_S START_IN_S: one project, environment (base = nginx), test
# (GET ${base}/item, expect 200) and SCHEDULES schedules of INTERVAL_S whose first fires are
# spread evenly over [now + START_IN_S, now + START_IN_S + INTERVAL_S): a steady
# SCHEDULES / INTERVAL_S fires per second. Prints the database's epoch of the first fire.
bench_seed() {
    bpsql -v n="$1" -v iv="$2" -v start="$3" -v base="$BENCH_TARGET" <<'SQL'
BEGIN;
INSERT INTO projects (slug, name) VALUES ('bench', 'Pipeline benchmark');
INSERT INTO environments (project_id, name, variables)
SELECT id, 'nginx', jsonb_build_object('base', :'base') FROM projects WHERE slug = 'bench';
INSERT INTO tests (project_id, name, current_version)
SELECT id, 'nginx answers 200', 1 FROM projects WHERE slug = 'bench';
INSERT INTO test_versions (test_id, version, definition)
SELECT id, 1, '{"name": "nginx answers 200", "steps": [{"name": "get",
  "request": {"url": "${base}/item"}, "expect": {"status": 200}}]}' FROM tests;
CREATE TEMP TABLE t0 AS SELECT now() + :start * interval '1 second' AS at;
INSERT INTO schedules (project_id, test_id, environment_id, interval_s, locations, next_run_at)
SELECT p.id, t.id, e.id, :iv, ARRAY['bench'],
       (SELECT at FROM t0) + (i::float8 / :n) * :iv * interval '1 second'
FROM projects p JOIN tests t ON t.project_id = p.id JOIN environments e ON e.project_id = p.id,
     generate_series(0, :n - 1) AS i;
SELECT extract(epoch FROM at) FROM t0;
COMMIT;
SQL
}

# "deadlock detected" errors PostgreSQL has logged so far (each one stalled the statements
# involved for deadlock_timeout, 1 s, before one of them was cancelled).
pg_deadlocks() {
    local f=$BENCH_RUN_DIR/postgres/server.log
    [ -r "$f" ] || { echo 0; return; }
    grep -c "deadlock detected" "$f" || true
}

# ---- CPU and memory ---------------------------------------------------------------------

# Every pid of a group, by name: the servers from their pid files, the rest from BENCH_PIDS.
pids_postgres() {
    local pm
    pm=$(head -1 "$BENCH_RUN_DIR/postgres/data/postmaster.pid" 2>/dev/null) || return 0
    echo "$pm" $(pgrep -P "$pm")
}
pids_rabbitmq() { cat "$BENCH_RUN_DIR/rabbitmq/rabbit.pid" 2>/dev/null || true; }
pids_ferretdb() { cat "$BENCH_RUN_DIR/ferretdb/ferretdb.pid" 2>/dev/null || true; }
pids_nginx() {
    local m
    m=$(cat "$BENCH_OUT/nginx/nginx.pid" 2>/dev/null) || return 0
    echo "$m" $(pgrep -P "$m")
}

# cpu_ticks PID...: utime + stime of the processes (clock ticks); missing pids count 0.
cpu_ticks() {
    local f=() p
    for p in "$@"; do [ -r "/proc/$p/stat" ] && f+=("/proc/$p/stat"); done
    ((${#f[@]})) || { echo 0; return; }
    awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { printf "%d\n", t }' "${f[@]}" 2>/dev/null || echo 0
}
# Busy and total ticks of the whole machine (all cores), for the noise of other users.
machine_ticks() { awk '/^cpu / { printf "%d %d\n", $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "-"; }
hwm_mb() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "-"; }
# pct TICKS SECONDS: % of one core
pct() { awk -v t="$1" -v s="$2" -v hz="$HZ" 'BEGIN { printf "%.1f", t / hz / s * 100 }'; }

# cpu_groups_sample NAME:"pids" ...: prints "name ticks" lines (for cpu_groups_report).
cpu_groups_sample() {
    local g
    for g in "$@"; do
        printf '%s %s\n' "${g%%:*}" "$(cpu_ticks ${g#*:})"
    done
}
# cpu_groups_report BEFORE_FILE AFTER_FILE SECONDS [ITEMS]: % of one core per group, busiest
# first; with ITEMS (e.g. runs finished in the window), also the CPU time each one cost.
cpu_groups_report() {
    join <(sort "$1") <(sort "$2") |
        awk -v s="$3" -v hz="$HZ" '{ printf "%s %.1f %.6f\n", $1, ($3 - $2) / hz / s * 100, ($3 - $2) / hz }' |
        sort -k2 -g -r |
        awk -v n="${4:-0}" -v nc="$(nproc)" '
            function per(cpu_s) { return n > 0 ? sprintf("   %7.0f us CPU per run", cpu_s / n * 1e6) : "" }
            { t += $2; ts += $3; printf "  %-24s %6.1f %%%s\n", $1, $2, per($3) }
            END { printf "  %-24s %6.1f %%%s  (the machine has %d %%: %d cores)\n", "sum", t, per(ts), nc * 100, nc }'
}

# ---- the services' own histograms (Prometheus text from /metrics) ------------------------

# metrics_sample FILE PORT...: the histogram buckets of every port, appended to FILE as
# "name le value" lines (all services' lines summed later).
metrics_sample() {
    local f=$1 p
    shift
    : >"$f"
    for p in "$@"; do
        curl -fs "http://127.0.0.1:$p/metrics" |
            sed -nE 's/^([a-z_]+)_bucket\{(.*,)?le="([^"]+)"\} ([0-9.e+]+)$/\1 \3 \4/p' >>"$f" || true
    done
}
# hist_report BEFORE AFTER NAME: the window's share of observations per bucket of histogram
# NAME (seconds), as "n=..., p50 <= X ms, p99 <= Y ms, <= 100 ms: Z %".
hist_report() {
    awk -v name="$3" '
        FNR == NR { if ($1 == name) b[$2] += $3; next }
        $1 == name { a[$2] += $3 }
        END {
            n = 0
            for (le in a) { les[++n] = le }
            # sort the bounds numerically (+Inf last)
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) {
                x = les[i] == "+Inf" ? 1e300 : les[i] + 0; y = les[j] == "+Inf" ? 1e300 : les[j] + 0
                if (y < x) { t = les[i]; les[i] = les[j]; les[j] = t }
            }
            tot = a["+Inf"] - b["+Inf"]
            if (tot <= 0) { print "no observations"; exit }
            p50 = p99 = ""; within = 0
            for (i = 1; i <= n; i++) {
                c = a[les[i]] - b[les[i]]
                ms = les[i] == "+Inf" ? "inf" : les[i] * 1000
                if (p50 == "" && c >= 0.5 * tot) p50 = ms
                if (p99 == "" && c >= 0.99 * tot) p99 = ms
                if (les[i] != "+Inf" && les[i] + 0 <= 0.1) within = c
            }
            printf "n=%d, p50 <= %s ms, p99 <= %s ms, within 100 ms: %.1f %%", tot, p50, p99, within / tot * 100
        }' "$1" "$2"
}

# ---- the result store's own speed ---------------------------------------------------------

# mongo_store_probe DOCS: what the MongoDB server takes, in a scratch collection with the 4
# indexes of `results`: DOCS documents of ~1 KiB in bulks of 200, as plain unordered inserts
# (what the worker does) and as replace-one upserts by _id (what it did first: FerretDB runs
# every filtered write as a scan, so upserts are far slower there).
mongo_store_probe() {
    /usr/bin/python3 - "$RAMPART_MONGO_URL" "$1" <<'PY'
import sys, time, uuid
import pymongo
c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000)
coll = c.get_default_database()["bench_store_probe"]
n = int(sys.argv[2])
def docs():
    now = time.time()
    return [{"_id": str(uuid.uuid4()), "project_id": "p", "test_id": "t", "status": "passed",
             "fire_time": now, "steps": [{"name": "get", "status": 200, "body": "x" * 700,
             "timings": {"dns": 0.1, "connect": 0.2, "first_byte": 0.5, "total": 0.9}}]}
            for _ in range(200)]
rates = {}
for kind in ("insert", "upsert"):
    coll.drop()
    for k in (["test_id", 1, "fire_time", -1], ["project_id", 1, "fire_time", -1],
              ["project_id", 1, "status", 1, "fire_time", -1], ["fire_time", 1]):
        coll.create_index(list(zip(k[::2], k[1::2])))
    t0, done = time.time(), 0
    while done < n:
        d = docs()
        if kind == "upsert":
            coll.bulk_write([pymongo.ReplaceOne({"_id": x["_id"]}, x, upsert=True) for x in d],
                            ordered=False)
        else:
            coll.insert_many(d, ordered=False)
        done += len(d)
    rates[kind] = done / (time.time() - t0)
coll.drop()
print("%.0f inserts/s, %.0f upserts/s" % (rates["insert"], rates["upsert"]))
PY
}
