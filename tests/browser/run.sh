#!/usr/bin/env bash
# Browser tests of the dashboard's web UI: starts a rampart-dashboard, a rampart-scheduler and a
# rampart-worker from BUILD against the servers of scripts/servers.sh (a fresh PostgreSQL
# database and MongoDB database of their own, dropped afterwards; a job location of their own,
# so other users of the shared RabbitMQ never take these jobs), plus a tiny HTTP target
# (target.py), then drives headless Debian chromium through the user journeys (journeys.mjs,
# Playwright core). Screenshots go to BUILD/test-artifacts/browser/, logs to
# BUILD/test-logs/browser-<id>/ (kept on failure).
#
#   tests/browser/run.sh BUILD            run every journey
#   RP_BROWSER_SERVE=1 tests/browser/run.sh BUILD
#                                         start the same stack and wait (manual testing): prints
#                                         the URL and the admin's login; Ctrl-C stops it all
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
CHROMIUM=${RP_CHROMIUM:-/usr/bin/chromium}

say() { printf '[browser] %s\n' "$*" >&2; }
die() {
    say "FAIL: $*"
    exit 1
}

for bin in dashboard/rampart-dashboard scheduler/rampart-scheduler worker/rampart-worker; do
    [ -x "$BUILD/$bin" ] || die "$BUILD/$bin is missing: build it (cmake --build $BUILD --target rampart-dashboard rampart-scheduler rampart-worker)"
done
[ -x "$CHROMIUM" ] || die "$CHROMIUM not found: apt-get install chromium (or set RP_CHROMIUM)"
command -v node >/dev/null || die "node is not installed (apt-get install nodejs npm)"
if [ ! -d "$HERE/node_modules/playwright-core" ]; then
    say "installing playwright-core (npm ci)"
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in $HERE"
fi

eval "$("$ROOT/scripts/servers.sh" env)"
: "${RAMPART_TEST_PG:?scripts/servers.sh env gave no RAMPART_TEST_PG}"

ID=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
DB="rampart_ui_$ID"
LOCATION="ui-$ID"
ART="$BUILD/test-artifacts/browser"
LOGS="$BUILD/test-logs/browser-$ID"
mkdir -p "$ART" "$LOGS"
rm -f "$ART"/*.png
ADMIN_EMAIL="admin@example.com"
ADMIN_PASSWORD="ui-admin-$ID"
MONGO_URL="${RAMPART_TEST_MONGO%/}/$DB"
PIDS=()

db() { # db create|drop: the private PostgreSQL and MongoDB databases
    /usr/bin/python3 - "$1" "$RAMPART_TEST_PG" "$DB" "$MONGO_URL" <<'PY'
import sys
import psycopg2
what, dsn, db, mongo = sys.argv[1:5]
con = psycopg2.connect(dsn)
con.autocommit = True
with con.cursor() as cur:
    if what == "create":
        cur.execute(f'CREATE DATABASE "{db}"')
    else:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,))
        cur.execute(f'DROP DATABASE IF EXISTS "{db}"')
con.close()
if what == "drop":
    import pymongo
    c = pymongo.MongoClient(mongo, serverSelectionTimeoutMS=3000)
    try:
        c.drop_database(db)
    finally:
        c.close()
PY
}

STATUS=1
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    db drop || say "could not drop the databases $DB"
    if [ "$STATUS" = 0 ]; then
        rm -rf "$LOGS"
    else
        say "logs kept in $LOGS"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port LOG: the port of the "health endpoint on port N" line of a service's log
wait_port() {
    local log=$1 name=$2 pid=$3 port=""
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || die "$name exited at start; log: $log"
        port=$(grep -o 'health endpoint on port [0-9]*' "$log" 2>/dev/null | tail -1 | grep -o '[0-9]*$' || true)
        if [ -n "$port" ] && curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; then
            echo "$port"
            return 0
        fi
        sleep 0.1
    done
    die "$name not ready within 30 s; log: $log"
}

db create
COMMON=(RAMPART_PG_URL="$RAMPART_TEST_PG dbname=$DB" RAMPART_MONGO_URL="$MONGO_URL"
    RAMPART_AMQP_URLS="$RAMPART_TEST_AMQP" RAMPART_HTTP_LISTEN=127.0.0.1:0 RAMPART_LOG_LEVEL=info
    RAMPART_READY_CHECK_INTERVAL=500ms RAMPART_DRAIN_TIMEOUT=5s)

/usr/bin/python3 "$HERE/target.py" 0 >"$LOGS/target.out" 2>"$LOGS/target.log" &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q '^port ' "$LOGS/target.out" && break; sleep 0.1; done
TARGET_PORT=$(sed -n 's/^port //p' "$LOGS/target.out")
[ -n "$TARGET_PORT" ] || die "the test target did not start; log: $LOGS/target.log"

env "${COMMON[@]}" RAMPART_ADMIN_EMAIL="$ADMIN_EMAIL" RAMPART_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
    RAMPART_SECRET_KEY="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" RAMPART_DASHBOARD_DRAIN_DELAY=0s \
    "$BUILD/dashboard/rampart-dashboard" >"$LOGS/dashboard.log" 2>&1 &
PIDS+=($!)
DASH_PORT=$(wait_port "$LOGS/dashboard.log" rampart-dashboard $!)
# the dashboard applied the migrations: the scheduler and worker find the schema ready
env "${COMMON[@]}" RAMPART_SCHEDULER_TICK=200ms "$BUILD/scheduler/rampart-scheduler" >"$LOGS/scheduler.log" 2>&1 &
PIDS+=($!)
wait_port "$LOGS/scheduler.log" rampart-scheduler $! >/dev/null
env "${COMMON[@]}" RAMPART_WORKER_LOCATION="$LOCATION" "$BUILD/worker/rampart-worker" >"$LOGS/worker.log" 2>&1 &
PIDS+=($!)
wait_port "$LOGS/worker.log" rampart-worker $! >/dev/null
URL="http://127.0.0.1:$DASH_PORT"
say "dashboard $URL · target http://127.0.0.1:$TARGET_PORT · location $LOCATION · logs $LOGS"

export RAMPART_URL="$URL" RAMPART_ADMIN_EMAIL="$ADMIN_EMAIL" RAMPART_ADMIN_PASSWORD="$ADMIN_PASSWORD"
export RAMPART_LOCATION="$LOCATION" TARGET_URL="http://127.0.0.1:$TARGET_PORT" ARTIFACTS="$ART"
export CHROMIUM

if [ -n "${RP_BROWSER_SERVE:-}" ]; then
    say "serving: open $URL and log in as $ADMIN_EMAIL / $ADMIN_PASSWORD (location $LOCATION); Ctrl-C stops"
    STATUS=0
    while :; do
        sleep 3600 &
        wait $! || true
    done
fi

set +e
node "$HERE/journeys.mjs"
STATUS=$?
set -e
say "screenshots in $ART"
exit "$STATUS"
