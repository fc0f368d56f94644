#!/usr/bin/env bash
# rampart-backup end to end on the real servers of scripts/servers.sh (issue #8: create,
# verify, restore, list, prune): a private PostgreSQL database with Rampart's schema (applied by
# starting rampart-scheduler once) and some rows, a private MongoDB database with results; then
#   create            -> one archive; `tar tf` lists manifest.json first, then the parts
#   verify            -> ok; then one byte flipped in a part, the archive truncated, a part
#                        removed: each refused, naming the bad part, nothing written
#   restore           -> into empty databases: every table and collection the same (content
#                        hashes), a service starts on it; a damaged archive or a non-empty
#                        target (without --force) refused
#   list / prune      -> three archives, --keep-daily 1 keeps the newest only
# Usage: tests/integration/backup_cli.sh BUILD_DIR (after `eval "$(scripts/servers.sh env)"`).
# One PASS/FAIL line per check; exits 1 if any failed. Drops what it created.
set -u
BUILD=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
BIN=$BUILD/backup/rampart-backup
: "${RAMPART_TEST_PG:?run after: eval \"\$(scripts/servers.sh env)\"}" "${RAMPART_TEST_MONGO:?}"
TMP=$(mktemp -d)
DB=rp_backup_$$_$RANDOM
PG="$RAMPART_TEST_PG dbname=$DB"
MONGO="${RAMPART_TEST_MONGO%/}/$DB"
failed=0
check() {
    local what=$1
    shift
    if "$@"; then echo "PASS $what"; else echo "FAIL $what"; failed=1; fi
}
cleanup() {
    psql -q "$RAMPART_TEST_PG dbname=postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
    /usr/bin/python3 -c "import pymongo,sys; pymongo.MongoClient(sys.argv[1]).drop_database(sys.argv[2])" \
        "$RAMPART_TEST_MONGO" "$DB" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT

# ---- a database with Rampart's schema and some data ----------------------------------------
psql -q "$RAMPART_TEST_PG dbname=postgres" -c "CREATE DATABASE $DB" >/dev/null || exit 1
RAMPART_PG_URL=$PG RAMPART_HTTP_LISTEN=127.0.0.1:0 RAMPART_READY_CHECK_INTERVAL=200ms \
    "$BUILD/scheduler/rampart-scheduler" 2>"$TMP/sched.log" &
spid=$!
for _ in $(seq 100); do
    psql -qtA "$PG" -c "SELECT 1 FROM pg_tables WHERE tablename = 'notifications'" 2>/dev/null | grep -q 1 && break
    sleep 0.1
done
sleep 0.5
kill -TERM $spid && wait $spid
psql -q -v ON_ERROR_STOP=1 "$PG" >/dev/null <<'SQL' || exit 1
INSERT INTO projects (slug, name) VALUES ('bk', 'Backup "test" project');
INSERT INTO tests (project_id, name, tags) SELECT id, 'tab' || E'\t' || 'newline' || E'\n' || 'é', '{a,b}' FROM projects;
INSERT INTO test_versions (test_id, version, definition) SELECT id, 1, '{"name": "x", "steps": []}' FROM tests;
INSERT INTO runs (id, project_id, test_id, test_version, fire_time, trigger, location, status)
SELECT gen_random_uuid(), p.id, t.id, 1, now() - g * interval '1 minute', 'schedule', 'default', 'passed'
FROM projects p, tests t, generate_series(1, 2000) g;
SQL
/usr/bin/python3 - "$MONGO" "$DB" <<'PY' || exit 1
import sys, uuid, pymongo
c = pymongo.MongoClient(sys.argv[1])
coll = c[sys.argv[2]]["results"]
coll.insert_many([{"_id": str(uuid.uuid4()), "n": i, "body": "x" * (i % 500)} for i in range(3000)])
coll.create_index([("n", 1)], name="n_1")
PY

export RAMPART_PG_URL=$PG RAMPART_MONGO_URL=$MONGO
mkdir -p "$TMP/out"

# ---- create, verify --------------------------------------------------------------------------
"$BIN" create --out "$TMP/out" >"$TMP/create.out" 2>"$TMP/create.err"
rc=$?
check "create exits 0 (got $rc)" [ "$rc" = 0 ]
ARCHIVE=$(ls "$TMP"/out/rampart-backup-*.tar 2>/dev/null | head -1)
check "create wrote one archive" [ -n "$ARCHIVE" ]
check "create's last line says what it wrote" bash -c \
    "tail -1 '$TMP/create.out' | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d[\"rows\"] >= 2003 and d[\"documents\"] == 3000 else 1)'"
check "progress lines are JSON (not a terminal)" bash -c \
    "grep -c '\"progress\"' '$TMP/create.out' | grep -qv '^0$'"
check "no temporary parts left" bash -c "! ls -d '$TMP'/out/*.parts 2>/dev/null"
check "archive mode 0600" [ "$(stat -c %a "$ARCHIVE")" = 600 ]
tar tf "$ARCHIVE" >"$TMP/toc" 2>/dev/null
check "tar lists manifest.json first" [ "$(head -1 "$TMP/toc")" = manifest.json ]
check "tar lists postgres/runs.copy.zst and mongo/results.bson.zst" bash -c \
    "grep -qx postgres/runs.copy.zst '$TMP/toc' && grep -qx mongo/results.bson.zst '$TMP/toc'"
tar xOf "$ARCHIVE" manifest.json >"$TMP/manifest.json"
check "manifest counts: runs 2000, results 3000, schema 6" /usr/bin/python3 -c "
import json, sys
m = json.load(open('$TMP/manifest.json'))
c = {p['name']: p['count'] for p in m['parts']}
sys.exit(0 if c['postgres/runs.copy.zst'] == 2000 and c['mongo/results.bson.zst'] == 3000
         and m['schema_version'] >= 6 else 1)"
"$BIN" verify "$ARCHIVE" >"$TMP/verify.out" 2>&1
check "verify: ok (got $?)" grep -q '"verified":true' "$TMP/verify.out"

# ---- damaged archives are refused, naming the part -------------------------------------------
python3 - "$ARCHIVE" "$TMP/flip.tar" <<'PY'
import sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
data = bytearray(open(src, "rb").read())
with tarfile.open(src) as t:
    m = t.getmember("postgres/runs.copy.zst")
    off = m.offset_data + m.size // 2
data[off] ^= 0x40
open(dst, "wb").write(data)
PY
"$BIN" verify "$TMP/flip.tar" >/dev/null 2>"$TMP/flip.err"
rc=$?
check "verify: a flipped byte is refused (exit $rc) naming postgres/runs.copy.zst" bash -c \
    "[ $rc = 1 ] && grep -q 'postgres/runs.copy.zst' '$TMP/flip.err'"
size=$(stat -c %s "$ARCHIVE")
head -c $((size * 2 / 3)) "$ARCHIVE" >"$TMP/trunc.tar"
"$BIN" verify "$TMP/trunc.tar" >/dev/null 2>"$TMP/trunc.err"
rc=$?
check "verify: a truncated archive is refused (exit $rc) and says so" bash -c \
    "[ $rc = 1 ] && grep -qi 'truncat\|ends inside\|missing' '$TMP/trunc.err'"
python3 - "$ARCHIVE" "$TMP/missing.tar" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1]) as src, tarfile.open(sys.argv[2], "w", format=tarfile.PAX_FORMAT) as dst:
    for m in src.getmembers():
        if m.name != "mongo/results.bson.zst":
            dst.addfile(m, src.extractfile(m))
PY
"$BIN" verify "$TMP/missing.tar" >/dev/null 2>"$TMP/missing.err"
rc=$?
check "verify: a missing part is refused (exit $rc) naming mongo/results.bson.zst" bash -c \
    "[ $rc = 1 ] && grep -q 'mongo/results.bson.zst' '$TMP/missing.err'"
cat "$TMP/flip.err" "$TMP/trunc.err" "$TMP/missing.err" | sed 's/^/    /'

# ---- restore: a round trip into empty databases, then the refusals ----------------------------
T2=${DB}_restored
psql -q "$RAMPART_TEST_PG dbname=postgres" -c "CREATE DATABASE $T2" >/dev/null
T2PG="$RAMPART_TEST_PG dbname=$T2"
T2MONGO="${RAMPART_TEST_MONGO%/}/$T2"
cleanup2() {
    psql -q "$RAMPART_TEST_PG dbname=postgres" -c "DROP DATABASE IF EXISTS $T2 WITH (FORCE)" >/dev/null 2>&1
    /usr/bin/python3 -c "import pymongo,sys; pymongo.MongoClient(sys.argv[1]).drop_database(sys.argv[2])" \
        "$RAMPART_TEST_MONGO" "$T2" >/dev/null 2>&1
    cleanup
}
trap cleanup2 EXIT
"$BIN" restore "$TMP/flip.tar" --target-pg "$T2PG" --target-mongo "$T2MONGO" >/dev/null 2>"$TMP/r0.err"
rc=$?
check "restore of a damaged archive is refused (exit $rc), naming the part, nothing written" bash -c \
    "[ $rc = 1 ] && grep -q 'postgres/runs.copy.zst' '$TMP/r0.err' &&
     [ \$(psql -qtA '$T2PG' -c \"SELECT count(*) FROM pg_tables WHERE schemaname = 'public'\") = 0 ]"
"$BIN" restore "$ARCHIVE" --target-pg "$T2PG" --target-mongo "$T2MONGO" >"$TMP/r1.out" 2>"$TMP/r1.err"
rc=$?
check "restore into empty databases exits 0 (got $rc)" [ "$rc" = 0 ]
tail -1 "$TMP/r1.out" | sed 's/^/    /'
same_pg() {
    local t bad=0
    for t in $(psql -qtA "$PG" -c "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"); do
        q="SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM public.\"$t\" x"
        [ "$(psql -qtA "$PG" -c "$q")" = "$(psql -qtA "$T2PG" -c "$q")" ] || { echo "    differs: $t"; bad=1; }
    done
    return $bad
}
check "every PostgreSQL table has the same content (count + md5 of all rows)" same_pg
check "every MongoDB collection has the same documents and indexes" /usr/bin/python3 - "$RAMPART_TEST_MONGO" "$DB" "$T2" <<'PY'
import hashlib, sys, pymongo, bson
c = pymongo.MongoClient(sys.argv[1])
def digest(db):
    out = {}
    for name in sorted(c[db].list_collection_names()):
        h = hashlib.sha256()
        n = 0
        for d in c[db][name].find({}, sort=[("_id", 1)]):
            h.update(bson.encode(d)); n += 1
        idx = sorted((i["name"], tuple(i["key"].items())) for i in c[db][name].list_indexes())
        out[name] = (n, h.hexdigest(), idx)
    return out
a, b = digest(sys.argv[2]), digest(sys.argv[3])
sys.exit(0 if a == b and a["results"][0] == 3000 else 1)
PY
"$BIN" restore "$ARCHIVE" --target-pg "$T2PG" --target-mongo "$T2MONGO" >/dev/null 2>"$TMP/r2.err"
rc=$?
check "restore into a non-empty database without --force is refused (exit $rc)" bash -c \
    "[ $rc = 1 ] && grep -qi 'not empty\|--force' '$TMP/r2.err'"
"$BIN" restore "$ARCHIVE" --target-pg "$T2PG" --target-mongo "$T2MONGO" --force >/dev/null 2>"$TMP/r3.err"
check "restore --force over it succeeds (got $?)" [ "$?" = 0 ]
check "and the content is still the same" same_pg
RAMPART_PG_URL=$T2PG RAMPART_MONGO_URL=$T2MONGO RAMPART_HTTP_LISTEN=127.0.0.1:0 \
    RAMPART_READY_CHECK_INTERVAL=200ms "$BUILD/scheduler/rampart-scheduler" 2>"$TMP/s2.log" &
spid=$!
ready=0
for _ in $(seq 100); do
    port=$(grep -o 'health endpoint on port [0-9]*' "$TMP/s2.log" | grep -o '[0-9]*$' | tail -1)
    if [ -n "$port" ] && curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.1
done
kill -TERM $spid; wait $spid
check "a service runs on the restored data (rampart-scheduler ready)" [ "$ready" = 1 ]
cat "$TMP/r0.err" "$TMP/r2.err" | sed 's/^/    /'

# ---- the restore drill: the newest archive into scratch databases, then dropped --------------
"$(dirname "$0")/../../scripts/restore-drill.sh" "$TMP/out" "$BUILD" >"$TMP/drill.out" 2>&1
rc=$?
check "restore drill passes on the newest archive (exit $rc)" grep -q '"drill":"passed"' "$TMP/drill.out"
sed 's/^/    /' "$TMP/drill.out"
check "the drill left no scratch database" bash -c \
    "[ -z \"\$(psql -qtA '$RAMPART_TEST_PG dbname=postgres' -c \"SELECT datname FROM pg_database WHERE datname LIKE 'rampart_drill_%'\")\" ]"
mkdir -p "$TMP/damaged"
cp "$TMP/flip.tar" "$TMP/damaged/rampart-backup-20000101T000000Z.tar"
"$(dirname "$0")/../../scripts/restore-drill.sh" "$TMP/damaged" "$BUILD" >"$TMP/drill2.out" 2>&1
rc=$?
check "restore drill fails (exit $rc) when the newest archive is damaged" bash -c \
    "[ $rc = 1 ] && grep -q '\"drill\":\"failed\"' '$TMP/drill2.out'"
sed 's/^/    /' "$TMP/drill2.out"

# ---- list and prune ------------------------------------------------------------------------
sleep 1.1
"$BIN" create --out "$TMP/out" --only postgres >/dev/null 2>&1
sleep 1.1
"$BIN" create --out "$TMP/out" --only mongo >/dev/null 2>&1
"$BIN" list "$TMP/out" >"$TMP/list.out" 2>&1
check "list shows three archives" [ "$(grep -c '^rampart-backup-' "$TMP/list.out")" = 3 ]
"$BIN" prune "$TMP/out" --keep-daily 1 --keep-weekly 0 --dry-run >"$TMP/dry.out" 2>&1
check "prune --dry-run deletes nothing" [ "$(ls "$TMP"/out/*.tar | wc -l)" = 3 ]
"$BIN" prune "$TMP/out" --keep-daily 1 --keep-weekly 0 >"$TMP/prune.out" 2>&1
check "prune keeps the newest of the day only" bash -c \
    "[ \$(ls '$TMP'/out/*.tar | wc -l) = 1 ] && ls '$TMP'/out/*.tar | grep -q -- '-mongo.tar'"
"$BIN" prune "$TMP/out" --keep-daily x >/dev/null 2>"$TMP/bad.err"
check "prune with a bad N exits 2" [ "$?" = 2 ]

exit $failed
