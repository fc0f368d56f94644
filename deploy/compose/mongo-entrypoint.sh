#!/bin/bash
# MongoDB member of docker-compose.yml: writes the replica set's shared key (MONGO_KEYFILE) to
# a file mongod accepts (mode 0400, owned by mongodb), then runs the image's own entrypoint
# (which creates the root user on first start).
set -euo pipefail
install -d -o mongodb -g mongodb -m 0700 /run/mongo
printf '%s' "$MONGO_KEYFILE" > /run/mongo/keyfile
chown mongodb:mongodb /run/mongo/keyfile
chmod 0400 /run/mongo/keyfile
unset MONGO_KEYFILE
exec docker-entrypoint.sh "$@"
