#!/usr/bin/env bash
# Speed of API checks on one core, side by side in one run against a private nginx (pinned to
# the other core): raw `wrk` requests/s (the ceiling), `rampart-worker run` checks/s (GET + 3
# assertions: status, a JSON field, time) and Newman's on the equivalent collection, plus
# Rampart's peak RSS at 1,000 concurrent runs. Goals: Rampart >= 50% of wrk, >= 100x Newman,
# RSS < 30 MB. Usage: scripts/bench-check.sh [RUNS] [NEWMAN_RUNS] [WRK_SECONDS]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$RP_ROOT"

RUNS=${1:-200000}
NEWMAN_RUNS=${2:-2000}
SECS=${3:-10}
BUILD=${RAMPART_BENCH_BUILD:-build}
OUT=$RP_RUN/bench-check
CPU_LOAD=${RAMPART_BENCH_CPU:-0}  # the core for the load generators (wrk, rampart, newman)
CPU_SERVER=${RAMPART_BENCH_SERVER_CPU:-1}

for tool in nginx wrk taskset; do
    command -v "$tool" >/dev/null || rp_die "$tool is required (scripts/deps.sh installs it)"
done
if [ ! -x /usr/bin/time ]; then
    rp_say "installing GNU time (for peak RSS)"
    apt-get install -y time >/dev/null
fi
if [ ! -x bench/node_modules/.bin/newman ]; then
    rp_say "installing newman@6 into bench/node_modules"
    npm install --prefix bench newman@6 >/dev/null 2>&1
fi

rp_say "building rampart-worker ($BUILD, RelWithDebInfo)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$BUILD" rampart-worker >/dev/null
WORKER=$BUILD/worker/rampart-worker

rm -rf "$OUT"
mkdir -p "$OUT/tmp"
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e "s|@PREFIX@|$OUT|g" -e "s|@PORT@|$PORT|g" bench/check/nginx.conf >"$OUT/nginx.conf"
taskset -c "$CPU_SERVER" nginx -c "$OUT/nginx.conf" -p "$OUT" &
NGINX_PID=$!
trap 'kill $NGINX_PID 2>/dev/null || true; wait $NGINX_PID 2>/dev/null || true' EXIT
rp_wait_port "$PORT" 10 || rp_die "nginx did not start (see $OUT/error.log)"
BASE=http://127.0.0.1:$PORT
rp_say "nginx on $BASE (cpu $CPU_SERVER); load generators on cpu $CPU_LOAD"

# Every tool runs under GNU time on core $CPU_LOAD. Two rates per tool: per wall-clock second,
# and per CPU second (user + sys), which holds when the machine is shared and noisy.
timed() { # OUT_PREFIX CMD... ; writes OUT_PREFIX.time (user sys rss_kb) and OUT_PREFIX.txt
    local pre=$1
    shift
    taskset -c "$CPU_LOAD" /usr/bin/time -f '%U %S %M' -o "$pre.time" "$@" >"$pre.txt" 2>&1 ||
        { tail -20 "$pre.txt" >&2; rp_die "failed: $*"; }
}
cpu_s() { awk '{ printf "%.3f", $1 + $2 }' "$1.time"; }
rss_mb() { awk '{ printf "%.1f", $3 / 1024 }' "$1.time"; }

# 1. wrk: the most requests/s one core can push through this server (the ceiling).
timed "$OUT/wrk-warm" wrk -t1 -c50 -d2s "$BASE/item"
timed "$OUT/wrk" wrk -t1 -c50 -d"${SECS}s" "$BASE/item"
WRK_RATE=$(awk '/^Requests\/sec/ {print $2}' "$OUT/wrk.txt")
WRK_REQS=$(awk '/requests in/ {print $1}' "$OUT/wrk.txt")
WRK_CPU=$(awk -v n="$WRK_REQS" -v c="$(cpu_s "$OUT/wrk")" 'BEGIN { printf "%.0f", n / c }')

# 2. libcurl alone (multi interface, no checks): the floor of any libcurl-based engine.
cc -O2 -o "$OUT/curl_floor" bench/check/curl_floor.c $(pkg-config --cflags --libs libcurl)
timed "$OUT/curl" "$OUT/curl_floor" "$BASE/item" "$RUNS" 50
CURL_RATE=$(sed -E 's/.*: ([0-9.]+) requests\/s/\1/' "$OUT/curl.txt")
CURL_CPU=$(awk -v n="$RUNS" -v c="$(cpu_s "$OUT/curl")" 'BEGIN { printf "%.0f", n / c }')

# 3. Rampart: one run = one GET with 3 checks (status, a JSON field, time).
rampart() { # NAME CONCURRENCY RUNS
    timed "$OUT/$1" "$WORKER" run bench/check/test.json --var "base=$BASE" --repeat "$3" \
        --concurrency "$2" --quiet --no-color
    grep -q " 0 failed, 0 could not run" "$OUT/$1.txt" || { cat "$OUT/$1.txt" >&2; rp_die "checks failed"; }
}
runs_s() { sed -nE 's/.* ([0-9.]+) runs\/s.*/\1/p' "$1.txt" | tail -1; }
rampart r-warm 50 2000
rampart r50 50 "$RUNS"
rampart r1k 1000 "$RUNS"
R50_RATE=$(runs_s "$OUT/r50")
R50_CPU=$(awk -v n="$RUNS" -v c="$(cpu_s "$OUT/r50")" 'BEGIN { printf "%.0f", n / c }')
R1K_RATE=$(runs_s "$OUT/r1k")
R1K_CPU=$(awk -v n="$RUNS" -v c="$(cpu_s "$OUT/r1k")" 'BEGIN { printf "%.0f", n / c }')
R1_RSS=$(/usr/bin/time -f '%M' "$WORKER" run --help 2>&1 >/dev/null | tail -1)

# 4. Newman on the equivalent collection (it runs iterations one after another).
timed "$OUT/newman" bench/node_modules/.bin/newman run bench/check/collection.json \
    -n "$NEWMAN_RUNS" --env-var "base=$BASE" --reporters json \
    --reporter-json-export "$OUT/newman.json"
read -r NM_RATE NM_FAILED < <(node -e '
    const r = require(process.argv[1]).run;
    const secs = (r.timings.completed - r.timings.started) / 1000;
    console.log((r.stats.requests.total / secs).toFixed(0), r.stats.assertions.failed);' \
    "$OUT/newman.json")
NM_CPU=$(awk -v n="$NEWMAN_RUNS" -v c="$(cpu_s "$OUT/newman")" 'BEGIN { printf "%.0f", n / c }')
[ "$NM_FAILED" = 0 ] || rp_die "newman: $NM_FAILED checks failed"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
echo
echo "GET + 3 checks on one core (cpu $CPU_LOAD), nginx on cpu $CPU_SERVER, $(date -u +%F)."
echo "Rates are requests (= runs) per second; x3 for checks/s. Per CPU s = per second of user+sys."
printf '%-42s %11s %11s %9s\n' "" "per wall s" "per CPU s" "peak RSS"
printf '%-42s %11.0f %11.0f %9s\n' "wrk -t1 -c50 (raw HTTP, no checks)" "$WRK_RATE" "$WRK_CPU" "-"
printf '%-42s %11.0f %11.0f %9s\n' "libcurl multi alone, 50 handles, no checks" "$CURL_RATE" "$CURL_CPU" "-"
printf '%-42s %11.0f %11.0f %6s MB\n' "rampart-worker run --concurrency 50" "$R50_RATE" "$R50_CPU" "$(rss_mb "$OUT/r50")"
printf '%-42s %11.0f %11.0f %6s MB\n' "rampart-worker run --concurrency 1000" "$R1K_RATE" "$R1K_CPU" "$(rss_mb "$OUT/r1k")"
printf '%-42s %11.0f %11.0f %9s\n' "newman -n $NEWMAN_RUNS" "$NM_RATE" "$NM_CPU" "-"
echo
echo "Rampart / wrk (c=50):      $(ratio "$R50_RATE" "$WRK_RATE") wall, $(ratio "$R50_CPU" "$WRK_CPU") CPU   (goal >= 0.50)"
echo "libcurl alone / wrk:       $(ratio "$CURL_RATE" "$WRK_RATE") wall, $(ratio "$CURL_CPU" "$WRK_CPU") CPU   (the most a libcurl engine can reach)"
echo "Rampart / Newman (c=50):   $(ratio "$R50_RATE" "$NM_RATE")x wall, $(ratio "$R50_CPU" "$NM_CPU")x CPU   (goal >= 100x)"
echo "Rampart peak RSS at 1,000 concurrent runs: $(rss_mb "$OUT/r1k") MB, of which $(awk -v k="$R1_RSS" 'BEGIN { printf "%.1f", k / 1024 }') MB is the idle binary (--help)   (goal < 30 MB)"
