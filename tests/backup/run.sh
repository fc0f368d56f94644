#!/usr/bin/env bash
# Runs the backup round trip (pytest, tests/backup/) against the binaries in BUILD (default:
# build, a release build: the pipeline has to carry 100,000 runs) and the servers of
# scripts/servers.sh (started by the caller: scripts/test.sh does). The test gets a private
# database, MongoDB database, RabbitMQ vhost and nginx target; nothing is left running.
# Extra arguments go to pytest:  tests/backup/run.sh build -s
# RAMPART_ROUNDTRIP_RESULTS (default 100000) sets how many results the pipeline must store first.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
shift || true
eval "$("$ROOT/scripts/servers.sh" env)"
export RP_BUILD_DIR="$BUILD"
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider -s "$ROOT/tests/backup" "$@"
