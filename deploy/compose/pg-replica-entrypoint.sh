#!/bin/bash
# PostgreSQL streaming replica of docker-compose.yml: on first start (empty data folder) it
# clones the primary with `pg_basebackup -R` (writes standby.signal and primary_conninfo, uses
# the slot replica1), then hands over to the image's own entrypoint, which starts the standby.
set -euo pipefail
: "${PGDATA:=/var/lib/postgresql/data}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until pg_isready -q -h "$PG_PRIMARY_HOST" -p 5432; do
        echo "waiting for $PG_PRIMARY_HOST"; sleep 1
    done
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    gosu postgres env PGPASSWORD="$PG_REPLICATION_PASSWORD" \
        pg_basebackup -h "$PG_PRIMARY_HOST" -p 5432 -U replicator -D "$PGDATA" \
        -X stream -S replica1 -R --checkpoint=fast
fi
exec docker-entrypoint.sh "$@"
