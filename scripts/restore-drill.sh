#!/usr/bin/env bash
# The restore drill (issue #8, docs/backup.md): proves that the newest backup in DIR can really
# be restored. It restores it into scratch databases made for the drill (on the servers of
# RAMPART_PG_URL and RAMPART_MONGO_URL, never into them), which checks every checksum and every
# table's and collection's count against the manifest, prints one JSON line with the outcome,
# then drops the scratch databases. Run it on a schedule next to the backups (a failing drill
# exits 1); the databases Rampart uses are only read to find the servers.
#
#   scripts/restore-drill.sh DIR [BUILD_DIR]     (BUILD_DIR: where rampart-backup is; default build)
set -euo pipefail
DIR=${1:?usage: scripts/restore-drill.sh DIR [BUILD_DIR]}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${2:-$ROOT/build}/backup/rampart-backup
[ -x "$BIN" ] || { echo "restore-drill: $BIN not found: build first (or pass BUILD_DIR)" >&2; exit 2; }
: "${RAMPART_PG_URL:?set RAMPART_PG_URL (the drill makes its scratch database on that server)}"
: "${RAMPART_MONGO_URL:?set RAMPART_MONGO_URL}"

latest=$("$BIN" list "$DIR" --json | /usr/bin/python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
ok = [r for r in rows if r["readable"]]
print(ok[0]["archive"] if ok else "")')
[ -n "$latest" ] || { echo "{\"drill\":\"failed\",\"why\":\"no readable archive in $DIR\"}"; exit 1; }

scratch=rampart_drill_$(date +%s)_$$
# the same servers, another database: libpq takes the last dbname given; the MongoDB URI's
# path is the database
pg="$RAMPART_PG_URL dbname=$scratch"
case $RAMPART_PG_URL in postgres://* | postgresql://*)
    pg=$(/usr/bin/python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$RAMPART_PG_URL" "$scratch") ;;
esac
mongo=$(/usr/bin/python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$RAMPART_MONGO_URL" "$scratch")
admin="$RAMPART_PG_URL dbname=postgres"
case $RAMPART_PG_URL in postgres://* | postgresql://*)
    admin=$(/usr/bin/python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/postgres")))' "$RAMPART_PG_URL") ;;
esac
drop() {
    psql -q "$admin" -c "DROP DATABASE IF EXISTS $scratch WITH (FORCE)" >/dev/null 2>&1 || true
    /usr/bin/python3 -c 'import sys, pymongo; pymongo.MongoClient(sys.argv[1]).drop_database(sys.argv[2])' \
        "$mongo" "$scratch" >/dev/null 2>&1 || true
}
trap drop EXIT
psql -q "$admin" -c "CREATE DATABASE $scratch" >/dev/null
t0=$(date +%s%N)
errs=$(mktemp)
trap 'drop; rm -f "$errs"' EXIT
if out=$("$BIN" restore "$latest" --target-pg "$pg" --target-mongo "$mongo" 2>"$errs") &&
    echo "$out" | grep -q '"restored":true'; then
    ms=$((($(date +%s%N) - t0) / 1000000))
    echo "{\"drill\":\"passed\",\"archive\":\"$latest\",\"restore_ms\":$ms}"
else
    echo "{\"drill\":\"failed\",\"archive\":\"$latest\",\"why\":$(tail -c 500 "$errs" | /usr/bin/python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}"
    exit 1
fi
