#!/usr/bin/env bash
# Benchmark of rampart-backup (issue #8) next to pg_dump, in the same run on the same data:
# a private PostgreSQL database with Rampart's schema and N runs (one per result), and a private
# MongoDB database with N result documents shaped like the worker's. Then, ROUNDS times:
#   rampart-backup create     (PostgreSQL + MongoDB)    time, archive size
#   rampart-backup verify                               time
#   rampart-backup restore    into empty databases      time
#   pg_dump -Fc  / pg_dump | zstd -3   (PostgreSQL only) time, size
#   pg_restore   into an empty database                 time
# and prints the medians, with the CPU the MongoDB server (FerretDB of scripts/servers.sh: its
# pid file) spent during create and restore, which is where their time goes (it counts every
# client of that server, so run it on a quiet machine), and the load average before and after.
# Needs the servers of scripts/servers.sh (eval its env first) and a release build.
#   bench/backup.sh BUILD [N=1000000] [ROUNDS=3]
set -euo pipefail
BUILD=$(cd "${1:?usage: bench/backup.sh BUILD [N] [ROUNDS]}" && pwd)
N=${2:-1000000}
ROUNDS=${3:-3}
BIN=$BUILD/backup/rampart-backup
: "${RAMPART_TEST_PG:?eval \"\$(scripts/servers.sh env)\" first}" "${RAMPART_TEST_MONGO:?}"
TMP=$(mktemp -d /var/tmp/rp-bench-backup.XXXXXX)
DB=rp_bench_backup_$$
PG="$RAMPART_TEST_PG dbname=$DB"
MONGO="${RAMPART_TEST_MONGO%/}/$DB"
ADMIN="$RAMPART_TEST_PG dbname=postgres"
dropdb_all() {
    for d in "$DB" "${DB}_r" "${DB}_pr"; do
        psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
        /usr/bin/python3 -c "import pymongo,sys; pymongo.MongoClient(sys.argv[1]).drop_database(sys.argv[2])" \
            "$RAMPART_TEST_MONGO" "$d" >/dev/null 2>&1 || true
    done
    rm -rf "$TMP"
}
trap dropdb_all EXIT
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
FDB_PID=$(cat "$(dirname "$RAMPART_TEST_SERVERS")/../.run/ferretdb/ferretdb.pid" 2>/dev/null || true)
TCK=$(getconf CLK_TCK)
# CPU ms (user + system) of the MongoDB server so far; 0 when it is not a local FerretDB
fdb_cpu() { awk -v t="$TCK" '{print int(($14 + $15) * 1000 / t)}' "/proc/${FDB_PID:-0}/stat" 2>/dev/null || echo 0; }
echo "== load before: $(uptime)"

echo "== filling: $N runs in PostgreSQL, $N result documents in MongoDB"
psql -q "$ADMIN" -c "CREATE DATABASE $DB" >/dev/null
RAMPART_PG_URL=$PG RAMPART_HTTP_LISTEN=127.0.0.1:0 "$BUILD/scheduler/rampart-scheduler" 2>"$TMP/s.log" &
spid=$!
for _ in $(seq 200); do
    psql -qtA "$PG" -c "SELECT 1 FROM pg_tables WHERE tablename = 'notifications'" 2>/dev/null | grep -q 1 && break
    sleep 0.1
done
sleep 0.5
kill -TERM $spid && wait $spid
psql -q -v ON_ERROR_STOP=1 "$PG" -v n="$N" >/dev/null <<'SQL'
INSERT INTO projects (slug, name) VALUES ('bench', 'Bench');
INSERT INTO tests (project_id, name, current_version) SELECT id, 'checkout', 1 FROM projects;
INSERT INTO test_versions (test_id, version, definition)
SELECT id, 1, '{"name": "checkout", "steps": [{"name": "get", "request": {"url": "http://x/"}}]}' FROM tests;
INSERT INTO runs (id, project_id, test_id, test_version, fire_time, trigger, location, status,
                  attempts, finished_at, duration_ms)
SELECT gen_random_uuid(), p.id, t.id, 1, now() - g * interval '1 second', 'schedule', 'default',
       CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'passed' END, 1, now() - g * interval '1 second',
       50 + g % 200
FROM projects p, tests t, generate_series(1, :n) g;
SQL
t0=$(date +%s%N)
psql -qtA "$PG" -c "SELECT id, project_id, test_id, status, duration_ms FROM runs" |
    /usr/bin/python3 -c '
import sys, pymongo, datetime
c = pymongo.MongoClient(sys.argv[1])
coll = c[sys.argv[2]]["results"]
now = datetime.datetime.now(datetime.timezone.utc)
batch = []
for line in sys.stdin:
    rid, pid, tid, status, dur = line.rstrip("\n").split("|")
    batch.append({"_id": rid, "project_id": pid, "test_id": tid, "status": status,
                  "fire_time": now, "duration_ms": float(dur),
                  "steps": [{"name": "get", "request": {"method": "GET", "url": "http://target/checkout"},
                             "response": {"status": 500 if status == "failed" else 200,
                                          "headers": [{"name": "Content-Type", "value": "application/json"}],
                                          "body": "{\"ok\": true, \"items\": [1, 2, 3]}"},
                             "timings": {"dns": 0.1, "connect": 0.4, "first_byte": 12.0, "total": float(dur)},
                             "assertions": [{"expr": "status == 200", "passed": status != "failed",
                                             "actual": "200", "severity": "error"}]}]})
    if len(batch) == 5000:
        coll.insert_many(batch, ordered=False); batch = []
if batch:
    coll.insert_many(batch, ordered=False)
coll.create_index([("project_id", 1), ("fire_time", -1)], name="project_fire")
' "$RAMPART_TEST_MONGO" "$DB"
echo "   filled in $(( $(ms $t0) / 1000 )) s"

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
declare -a c_ms cp_ms v_ms r_ms d_ms dz_ms pr_ms cf_ms rf_ms
for round in $(seq "$ROUNDS"); do
    rm -f "$TMP"/*.tar "$TMP"/pg.dump "$TMP"/pg.sql.zst
    f=$(fdb_cpu); t=$(date +%s%N)
    RAMPART_PG_URL=$PG RAMPART_MONGO_URL=$MONGO "$BIN" create --out "$TMP" >/dev/null 2>"$TMP/c.err"
    c_ms+=("$(ms "$t")"); cf_ms+=($(( $(fdb_cpu) - f )))
    A=$(ls "$TMP"/rampart-backup-*.tar)
    mkdir -p "$TMP/pgonly" && rm -f "$TMP"/pgonly/*.tar
    t=$(date +%s%N); RAMPART_PG_URL=$PG "$BIN" create --only postgres --out "$TMP/pgonly" >/dev/null 2>&1; cp_ms+=("$(ms "$t")")
    t=$(date +%s%N); "$BIN" verify "$A" >/dev/null 2>&1; v_ms+=("$(ms "$t")")
    for d in "${DB}_r" "${DB}_pr"; do
        psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" -c "CREATE DATABASE $d" >/dev/null
    done
    /usr/bin/python3 -c "import pymongo,sys; pymongo.MongoClient(sys.argv[1]).drop_database(sys.argv[2])" "$RAMPART_TEST_MONGO" "${DB}_r"
    f=$(fdb_cpu); t=$(date +%s%N)
    "$BIN" restore "$A" --target-pg "$RAMPART_TEST_PG dbname=${DB}_r" --target-mongo "${RAMPART_TEST_MONGO%/}/${DB}_r" >/dev/null 2>"$TMP/r.err"
    r_ms+=("$(ms "$t")"); rf_ms+=($(( $(fdb_cpu) - f )))
    t=$(date +%s%N); pg_dump -Fc -f "$TMP/pg.dump" "$PG"; d_ms+=("$(ms "$t")")
    t=$(date +%s%N); pg_dump "$PG" | zstd -q -3 -o "$TMP/pg.sql.zst"; dz_ms+=("$(ms "$t")")
    t=$(date +%s%N); pg_restore -d "$RAMPART_TEST_PG dbname=${DB}_pr" "$TMP/pg.dump"; pr_ms+=("$(ms "$t")")
    echo "   round $round: create ${c_ms[-1]} ms (PostgreSQL only ${cp_ms[-1]} ms; FerretDB CPU ${cf_ms[-1]} ms), verify ${v_ms[-1]} ms, restore ${r_ms[-1]} ms (FerretDB CPU ${rf_ms[-1]} ms); pg_dump -Fc ${d_ms[-1]} ms, pg_dump|zstd ${dz_ms[-1]} ms, pg_restore ${pr_ms[-1]} ms"
done
A=$(ls "$TMP"/rampart-backup-*.tar)
pg_part=$(tar tvf "$A" | awk '$6 ~ /^postgres\// {s += $3} END {print s}')
mongo_part=$(tar tvf "$A" | awk '$6 ~ /^mongo\// {s += $3} END {print s}')
printf '\n%s\n' "rampart-backup, $N runs + $N result documents, medians of $ROUNDS rounds:"
printf '  create   %6d ms   archive %d bytes (PostgreSQL parts %d, MongoDB parts %d)\n' \
    "$(printf '%s\n' "${c_ms[@]}" | median)" "$(stat -c %s "$A")" "$pg_part" "$mongo_part"
printf '  FerretDB CPU during create %d ms, during restore %d ms\n' \
    "$(printf '%s\n' "${cf_ms[@]}" | median)" "$(printf '%s\n' "${rf_ms[@]}" | median)"
printf '  create --only postgres %6d ms   %d bytes\n' "$(printf '%s\n' "${cp_ms[@]}" | median)" "$(stat -c %s "$(ls "$TMP"/pgonly/*.tar)")"
printf '  verify   %6d ms\n' "$(printf '%s\n' "${v_ms[@]}" | median)"
printf '  restore  %6d ms   (PostgreSQL + MongoDB, into empty databases, counts checked)\n' \
    "$(printf '%s\n' "${r_ms[@]}" | median)"
printf '%s\n' "pg_dump of the same PostgreSQL database, same run:"
printf '  pg_dump -Fc      %6d ms   %d bytes\n' "$(printf '%s\n' "${d_ms[@]}" | median)" "$(stat -c %s "$TMP/pg.dump")"
printf '  pg_dump | zstd   %6d ms   %d bytes\n' "$(printf '%s\n' "${dz_ms[@]}" | median)" "$(stat -c %s "$TMP/pg.sql.zst")"
printf '  pg_restore       %6d ms\n' "$(printf '%s\n' "${pr_ms[@]}" | median)"
echo "== load after: $(uptime)"
