#!/usr/bin/env bash
# Operations checks of every binary, as an operator or orchestrator would do them: each
# long-running service starts, logs JSON lines, answers /healthz, /readyz (ready when the
# servers of scripts/servers.sh are up; pass RAMPART_PG_URL etc. to point elsewhere) and
# /metrics, drains on SIGTERM and exits 0 with a "drained" line; a bad setting exits non-zero
# with one line naming it; --help lists the settings. rampart-backup: --help and its bad input
# commands. Usage: tests/integration/services.sh BUILD_DIR. One PASS/FAIL line per check;
# exits 1 if any failed, keeping the services' stderr in the printed temporary directory.
set -u
BUILD=${1:?usage: $0 BUILD_DIR}
SERVICES=(dashboard scheduler worker mailer connector)
DRAIN_S=5
TMP=$(mktemp -d /tmp/rampart-services.XXXXXX)
fails=0
pids=()

cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    if [ "$fails" -eq 0 ]; then rm -rf "$TMP"; else echo "logs kept in $TMP"; fi
}
trap cleanup EXIT

pass() { echo "PASS $*"; }
fail() {
    echo "FAIL $*"
    fails=$((fails + 1))
}
check() { # check NAME COMMAND...: PASS when the command succeeds
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Every non-empty line of FILE is a JSON object with time, level, service and msg.
all_json() {
    python3 - "$1" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
for l in lines:
    o = json.loads(l)
    assert isinstance(o, dict) and {"time", "level", "service", "msg"} <= o.keys(), l
assert lines, "no log line at all"
PY
}

# The log FILE has a line whose msg starts with PREFIX.
has_msg() {
    python3 - "$1" "$2" <<'PY'
import json, sys
sys.exit(0 if any(json.loads(l).get("msg", "").startswith(sys.argv[2])
                  for l in open(sys.argv[1]) if l.strip()) else 1)
PY
}

http_code() { curl -s -o "$TMP/body" -w '%{http_code}' --max-time 5 "$1"; }

# Wait until URL answers CODE (up to SECONDS); prints the last code.
wait_code() {
    local url=$1 want=$2 secs=$3 code=000 i
    for ((i = 0; i < secs * 10; i++)); do
        code=$(http_code "$url")
        [ "$code" = "$want" ] && break
        sleep 0.1
    done
    echo "$code"
}

# Wait for PID to exit within SECONDS; sets EXIT_RC to its exit status, or "timeout".
# (Not in $(...): a subshell cannot wait for its parent's children.)
wait_exit() {
    local pid=$1 secs=$2 i
    EXIT_RC=timeout
    for ((i = 0; i < secs * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid"
            EXIT_RC=$?
            return
        fi
        sleep 0.1
    done
}

run_service() {
    local svc=$1 bin=$BUILD/$1/rampart-$1 port pid code rc log=$TMP/$1.err
    if [ ! -x "$bin" ]; then
        fail "$svc: binary $bin missing"
        return
    fi
    port=$(free_port)
    RAMPART_HTTP_LISTEN=127.0.0.1:$port RAMPART_DRAIN_TIMEOUT=${DRAIN_S}s \
        RAMPART_READY_CHECK_INTERVAL=500ms "$bin" 2>"$log" &
    pid=$!
    pids+=("$pid")
    local base=http://127.0.0.1:$port

    code=$(wait_code "$base/healthz" 200 10)
    check "$svc: GET /healthz is 200 (got $code)" [ "$code" = 200 ]
    code=$(wait_code "$base/readyz" 200 10)
    check "$svc: GET /readyz is 200 with its dependencies up (got $code: $(head -c 300 "$TMP/body"))" \
        [ "$code" = 200 ]
    code=$(http_code "$base/metrics")
    check "$svc: GET /metrics is 200 with # TYPE lines" \
        [ "$code" = 200 ] && grep -q '^# TYPE ' "$TMP/body"
    check "$svc: /metrics has rampart_build_info" grep -q "^rampart_build_info{service=\"rampart-$svc\"" "$TMP/body"
    code=$(http_code "$base/nope")
    check "$svc: unknown path is 404 (got $code)" [ "$code" = 404 ]

    kill -TERM "$pid"
    wait_exit "$pid" $((DRAIN_S + 2))
    rc=$EXIT_RC
    check "$svc: SIGTERM -> exit 0 within the drain timeout (got $rc)" [ "$rc" = 0 ]
    check "$svc: stderr is JSON lines" all_json "$log"
    check "$svc: logged \"drained\"" has_msg "$log" drained
}

bad_setting() {
    local svc=$1 bin=$BUILD/$1/rampart-$1 log=$TMP/$1.bad rc lines
    # the dashboard has no broker to talk to: its bad setting is the MongoDB URI
    local var=RAMPART_AMQP_URLS val='amqp://guest:guest@host:notaport/'
    if [ "$svc" = dashboard ]; then var=RAMPART_MONGO_URL val='mongodb://host:notaport/'; fi
    env "$var=$val" RAMPART_HTTP_LISTEN=127.0.0.1:0 timeout 10 "$bin" 2>"$log" >/dev/null
    rc=$?
    lines=$(wc -l <"$log")
    check "$svc: bad $var exits non-zero (got $rc)" [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]
    check "$svc: ... with exactly one line on stderr (got $lines)" [ "$lines" -eq 1 ]
    check "$svc: ... naming $var, as JSON" \
        python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); assert o["level"]=="fatal" and sys.argv[2] in o["msg"], o' "$log" "$var"
    "$bin" --bogus-flag >/dev/null 2>&1
    rc=$?
    check "$svc: unknown flag exits 2 (got $rc)" [ "$rc" = 2 ]
}

help_lists_settings() {
    local svc=$1 bin=$BUILD/$1/rampart-$1 out=$TMP/$1.help rc
    "$bin" --help >"$out" 2>&1
    rc=$?
    check "$svc: --help exits 0 (got $rc)" [ "$rc" = 0 ]
    check "$svc: --help lists its settings" grep -q RAMPART_HTTP_LISTEN "$out" &&
        grep -q RAMPART_PG_URL "$out" && grep -q RAMPART_DRAIN_TIMEOUT "$out"
    check "$svc: --help does not print the AMQP password" bash -c "! grep -q guest:guest '$out'"
    check "$svc: --version" bash -c "'$bin' --version | grep -q '^rampart-$svc '"
}

# The dashboard with its MongoDB unreachable: ready but degraded (200, the reason names
# mongodb), not out of the load balancer; every other service is not ready without MongoDB.
dashboard_degraded() {
    local bin=$BUILD/dashboard/rampart-dashboard port pid code log=$TMP/dashboard-degraded.err
    port=$(free_port)
    RAMPART_HTTP_LISTEN=127.0.0.1:$port RAMPART_READY_CHECK_INTERVAL=500ms \
        RAMPART_MONGO_URL="mongodb://127.0.0.1:$(free_port)/rampart?serverSelectionTimeoutMS=500" \
        "$bin" 2>"$log" &
    pid=$!
    pids+=("$pid")
    code=$(wait_code "http://127.0.0.1:$port/readyz" 200 15)
    check "dashboard: MongoDB unreachable -> /readyz 200 degraded naming mongodb (got $code: $(head -c 300 "$TMP/body"))" \
        [ "$code" = 200 ] && grep -q '"status":"degraded"' "$TMP/body" && grep -q mongodb "$TMP/body"
    check "dashboard: ... and logs \"ready, degraded\"" has_msg "$log" "ready, degraded"
    kill -TERM "$pid"
    wait_exit "$pid" $((DRAIN_S + 5))
    check "dashboard: ... exits 0 on SIGTERM (got $EXIT_RC)" [ "$EXIT_RC" = 0 ]
}

backup_cli() {
    local bin=$BUILD/backup/rampart-backup out=$TMP/backup.out rc
    "$bin" --help >"$out" 2>&1
    rc=$?
    check "backup: --help exits 0 (got $rc)" [ "$rc" = 0 ]
    check "backup: --help lists commands and settings" bash -c \
        "for w in create verify restore list prune RAMPART_PG_URL RAMPART_MONGO_URL; do grep -qw \$w '$out' || exit 1; done"
    "$bin" restore >/dev/null 2>"$TMP/backup.err"
    rc=$?
    check "backup: restore without an archive exits 2 with its usage (got $rc)" [ "$rc" = 2 ] &&
        has_msg "$TMP/backup.err" "restore: usage"
    "$bin" create --only nothing >/dev/null 2>"$TMP/backup.err"
    rc=$?
    check "backup: a bad --only exits 2 naming it (got $rc)" [ "$rc" = 2 ] &&
        has_msg "$TMP/backup.err" "create: --only must be postgres or mongo"
    "$bin" verify "$TMP/no-such-archive.tar" >/dev/null 2>"$TMP/backup.err"
    rc=$?
    check "backup: verify of a missing file exits 1 naming it (got $rc)" [ "$rc" = 1 ] &&
        grep -q "no-such-archive.tar" "$TMP/backup.err" && all_json "$TMP/backup.err"
    RAMPART_MONGO_URL='mongo://x' "$bin" list >/dev/null 2>"$TMP/backup.bad"
    rc=$?
    check "backup: bad RAMPART_MONGO_URL exits 2 with one JSON line naming it (got $rc)" \
        [ "$rc" = 2 ] && [ "$(wc -l <"$TMP/backup.bad")" -eq 1 ] && grep -q RAMPART_MONGO_URL "$TMP/backup.bad" &&
        all_json "$TMP/backup.bad"
}

for svc in "${SERVICES[@]}"; do
    run_service "$svc"
    bad_setting "$svc"
    help_lists_settings "$svc"
done
dashboard_degraded
backup_cli

if [ "$fails" -eq 0 ]; then
    echo "ALL PASSED"
    exit 0
fi
echo "$fails check(s) FAILED"
exit 1
