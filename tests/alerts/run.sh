#!/usr/bin/env bash
# Runs the alert integration tests (pytest, tests/alerts/) against the binaries in BUILD
# (default: build) and the servers of scripts/servers.sh (started by the caller: scripts/test.sh
# does). Each module gets a private database, MongoDB database and RabbitMQ vhost, a real SMTP
# server and HTTP receiver, and its own copies of every service; nothing is left running.
# Extra arguments go to pytest: tests/alerts/run.sh build -k kill9 -s
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
shift || true
eval "$("$ROOT/scripts/servers.sh" env)"
export RP_BUILD_DIR="$BUILD"
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider -s "$ROOT/tests/alerts" "$@"
