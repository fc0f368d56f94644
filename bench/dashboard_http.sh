#!/usr/bin/env bash
# The dashboard's HTTP speed next to nginx's, in the same run (issue #6):
#   bench/dashboard_http.sh BUILD [ROUNDS=3] [DURATION=10s] [CONNECTIONS=64] [RUNS=10000]
# Builds nothing. Starts a rampart-dashboard from BUILD on the servers of scripts/servers.sh
# (they must be running; its own databases, dropped afterwards) seeded with a project, a test
# and RUNS finished runs with their result documents (tests/api/schemathesis/seeded.py), and a
# private nginx (Debian nginx-light, config in a temporary directory, not a system service)
# serving, for each dashboard answer measured, a static file with the very bytes the dashboard
# answered. Then, ROUNDS times, dashboard and nginx alternating, `wrk -t2 -cCONNECTIONS
# -dDURATION --latency` on:
#   healthz  GET /healthz
#   list     GET /api/v1/projects/{p}/runs?limit=50   (API key: wrk -H)
#   detail   GET /api/v1/projects/{p}/runs/{run}      (the newest run, full result document)
# and prints requests/s and p99 side by side with the ratios, medians over the rounds.
# Goals: the dashboard's /healthz >= 50% of nginx's rate; results list p99 <= 20 ms.
# A route the dashboard does not answer with 200 is reported and skipped.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
BUILD=$(cd "$1" && pwd)
ROUNDS=${2:-3}
DURATION=${3:-10s}
CONNS=${4:-64}
NRUNS=${5:-10000}
[[ $DURATION =~ ^[0-9]+s$ ]] || { echo "error: DURATION is seconds, such as 10s" >&2; exit 2; }
for t in wrk nginx curl; do
    command -v "$t" >/dev/null || { echo "error: $t is not installed (scripts/deps.sh)" >&2; exit 1; }
done
[ -x "$BUILD/dashboard/rampart-dashboard" ] ||
    { echo "error: $BUILD/dashboard/rampart-dashboard is not built" >&2; exit 1; }

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
TMP=$(mktemp -d /tmp/rampart-bench-dash.XXXXXX)
SEED_PID= NGINX_PID=
cleanup() {
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
    # seeded.py stops the dashboard (SIGTERM) and drops its databases
    [ -n "$SEED_PID" ] && kill "$SEED_PID" 2>/dev/null && wait "$SEED_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

eval "$("$ROOT/scripts/servers.sh" env)"
export RP_BUILD_DIR="$BUILD"

# ---- the dashboard, seeded ---------------------------------------------------------------
say "starting the dashboard with $NRUNS runs"
/usr/bin/python3 "$ROOT/tests/api/schemathesis/seeded.py" --name rampart_bench --runs "$NRUNS" \
    --env-file "$TMP/dash.env" 2>"$TMP/seeded.log" &
SEED_PID=$!
for _ in $(seq 1 600); do
    [ -f "$TMP/dash.env" ] && break
    kill -0 "$SEED_PID" 2>/dev/null || { cat "$TMP/seeded.log" >&2; exit 1; }
    sleep 0.1
done
[ -f "$TMP/dash.env" ] || { echo "error: the dashboard did not start" >&2; exit 1; }
. "$TMP/dash.env"
AUTH="Authorization: Bearer $DASH_API_KEY"

# ---- what is measured: path, and the bytes the dashboard answers ----------------------------
TARGETS=(healthz list detail)
declare -A PATHS=(
    [healthz]=/healthz
    [list]="/api/v1/projects/$ID_PROJECT/runs?limit=50"
    [detail]="/api/v1/projects/$ID_PROJECT/runs/$ID_RUN"
)
mkdir -p "$TMP/www" "$TMP/nginx"
LIVE=()
for t in "${TARGETS[@]}"; do
    code=$(curl -s -o "$TMP/www/$t.json" -w '%{http_code}' -H "$AUTH" "$DASH_URL${PATHS[$t]}")
    if [ "$code" != 200 ]; then
        say "$t: GET ${PATHS[$t]} answers $code ($(head -c 200 "$TMP/www/$t.json")): not measured"
        continue
    fi
    LIVE+=("$t")
    say "$t: GET ${PATHS[$t]} -> $(stat -c %s "$TMP/www/$t.json") bytes"
done
((${#LIVE[@]})) || { echo "error: nothing to measure" >&2; exit 1; }
if [[ " ${LIVE[*]} " == *" list "* ]]; then
    n=$(/usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["items"]))' \
        "$TMP/www/list.json")
    say "list: $n items in the page"
fi

# ---- nginx serving the same bytes ---------------------------------------------------------
NGINX_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
chmod 755 "$TMP" "$TMP/www"
chmod 644 "$TMP/www"/*.json
cat >"$TMP/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 1000000;
    default_type application/json;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $TMP/www;
        location / { try_files \$uri =404; }
    }
}
CONF
nginx -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' 2>"$TMP/nginx/stderr.log" &
NGINX_PID=$!
for _ in $(seq 1 50); do
    curl -fs -o /dev/null "http://127.0.0.1:$NGINX_PORT/${LIVE[0]}.json" && break
    sleep 0.1
done
for t in "${LIVE[@]}"; do
    cmp -s <(curl -s "http://127.0.0.1:$NGINX_PORT/$t.json") "$TMP/www/$t.json" ||
        { echo "error: nginx does not serve $t.json" >&2; cat "$TMP/nginx/stderr.log" >&2; exit 1; }
done

# ---- wrk ------------------------------------------------------------------------------------
# run_wrk URL -> "requests/s p99_ms errors" (errors: socket errors + non-2xx answers)
run_wrk() {
    wrk -t2 -c"$CONNS" -d"$DURATION" --latency -H "$AUTH" "$1" 2>&1 | awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                         if (v ~ /s$/) return v * 1000; return v }
        /Requests\/sec:/ { rps = $2 }
        /^ *99%/ { p99 = ms($2) }
        /Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { err += $5 }
        END { printf "%.0f %.2f %d\n", rps, p99, err }'
}
# CPU time (utime + stime, clock ticks) of the processes serving each side: the dashboard, the
# PostgreSQL backends of its database, the MongoDB-compatible server (FerretDB), nginx
HZ=$(getconf CLK_TCK)
DASH_PID_=$(sed -n 's/^DASH_PID=//p' "$TMP/dash.env")
ticks() { # PID... -> summed ticks
    local p t=0
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo $t
}
cpu_now() { # -> "dashboard postgres mongo nginx" ticks
    echo "$(ticks "$DASH_PID_") $(ticks $(pgrep -f "postgres: [^ ]+ $DASH_DB " || true))" \
        "$(ticks $(pgrep -f ferretdb || true) $(pgrep -x mongod || true))" \
        "$(ticks "$NGINX_PID" $(pgrep -P "$NGINX_PID" || true))"
}
declare -A RPS P99 CPU
say "wrk -t2 -c$CONNS -d$DURATION --latency, $ROUNDS rounds, dashboard and nginx alternating"
for ((r = 1; r <= ROUNDS; r++)); do
    for t in "${LIVE[@]}"; do
        for side in dash nginx; do
            if [ $side = dash ]; then url="$DASH_URL${PATHS[$t]}"; else
                url="http://127.0.0.1:$NGINX_PORT/$t.json"; fi
            read -r c0 <<<"$(cpu_now)"
            read -r rps p99 errs < <(run_wrk "$url")
            read -r c1 <<<"$(cpu_now)"
            # CPU microseconds per request, by process group
            CPU[$t.$side]+="$(awk -v a="$c0" -v b="$c1" -v n="$rps" -v d="${DURATION%s}" -v hz="$HZ" '
                BEGIN { split(a, x, " "); split(b, y, " "); req = n * d; out = ""
                        for (i = 1; i <= 4; i++) out = out sprintf("%.0f,", (y[i] - x[i]) / hz * 1e6 / req)
                        print out }') "
            [ "$errs" = 0 ] ||
                { echo "error: $side $t: $errs errors or non-2xx answers" >&2; exit 1; }
            RPS[$t.$side]+="$rps "
            P99[$t.$side]+="$p99 "
            printf '   round %d  %-7s %-6s %9s req/s  p99 %8s ms\n' "$r" "$t" "$side" "$rps" \
                "$p99" >&2
        done
    done
done
kill -0 "$(sed -n 's/^DASH_PID=//p' "$TMP/dash.env")" 2>/dev/null ||
    { echo "error: the dashboard died during the benchmark" >&2; exit 1; }

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
    print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
commit() { # the checked-out commit, read from .git without running git
    local g=$ROOT/.git head
    [ -f "$g/HEAD" ] || { echo unknown; return; }
    head=$(cat "$g/HEAD")
    if [[ $head == ref:* ]]; then
        head=${head#ref: }
        if [ -f "$g/$head" ]; then cat "$g/$head"; else
            awk -v r="$head" '$2 == r { print $1 }' "$g/packed-refs" 2>/dev/null; fi
    else echo "$head"; fi | cut -c1-12
}
echo
echo "rampart-dashboard vs nginx $(nginx -v 2>&1 | sed 's/.*nginx\///')," \
    "wrk -t2 -c$CONNS -d$DURATION," \
    "median of $ROUNDS rounds; $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores" \
    "($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), commit $(commit)," \
    "$NRUNS runs rows; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
label() { # the request's path with the seeded ids named
    local p=${PATHS[$1]//$ID_PROJECT/\{p\}}
    echo "GET ${p//$ID_RUN/\{run\}}"
}
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "| request | bytes | dashboard req/s | nginx req/s | ratio | dashboard p99 | nginx p99 |"
echo "|---|---|---|---|---|---|---|"
for t in "${LIVE[@]}"; do
    d=$(median <<<"${RPS[$t.dash]}") n=$(median <<<"${RPS[$t.nginx]}")
    dp=$(median <<<"${P99[$t.dash]}") np=$(median <<<"${P99[$t.nginx]}")
    echo "| $(label "$t") | $(stat -c %s "$TMP/www/$t.json") | $d | $n | $(div "$d" "$n")" \
        "| $dp ms | $np ms |"
done
echo
echo "CPU per request (µs, median of the rounds), dashboard side: dashboard + PostgreSQL backends +"
echo "the MongoDB-compatible server (shared with other users of the machine); nginx side: its"
echo "workers. wrk itself is not counted."
echo
echo "| request | dashboard | PostgreSQL | MongoDB | total | nginx |"
echo "|---|---|---|---|---|---|"
col() { tr ' ' '\n' | grep . | cut -d, -f"$1" | tr '\n' ' ' | median; }
for t in "${LIVE[@]}"; do
    d=$(col 1 <<<"${CPU[$t.dash]}") pg=$(col 2 <<<"${CPU[$t.dash]}")
    mg=$(col 3 <<<"${CPU[$t.dash]}") ng=$(col 4 <<<"${CPU[$t.nginx]}")
    sum=$(awk -v a="$d" -v b="$pg" -v c="$mg" 'BEGIN { print a + b + c }')
    echo "| $(label "$t") | $d | $pg | $mg | $sum | $ng |"
done
echo
if [[ " ${LIVE[*]} " == *" healthz "* ]]; then
    ratio=$(div "$(median <<<"${RPS[healthz.dash]}")" "$(median <<<"${RPS[healthz.nginx]}")")
    met=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.5) ? "met" : "NOT met" }')
    echo "goal /healthz >= 0.50 of nginx's rate: $ratio, $met"
fi
if [[ " ${LIVE[*]} " == *" list "* ]]; then
    p=$(median <<<"${P99[list.dash]}")
    met=$(awk -v p="$p" 'BEGIN { print (p <= 20) ? "met" : "NOT met" }')
    echo "goal results list p99 <= 20 ms at $CONNS connections: $p ms, $met"
else
    echo "goal results list p99 <= 20 ms: not measured (the route does not answer 200)"
fi
