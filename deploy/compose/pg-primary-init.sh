#!/bin/bash
# PostgreSQL primary of docker-compose.yml, run once by the postgres image at initdb: the role
# and the physical slot the streaming replica (pg-replica-entrypoint.sh) uses, and the
# pg_hba line that lets it connect for replication with a password.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v pw="$PG_REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'pw';
SELECT pg_create_physical_replication_slot('replica1');
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
