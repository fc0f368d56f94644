#!/usr/bin/env bash
# Runs the API tests (pytest, tests/api/) against a dashboard built in BUILD (default: build)
# and the servers of scripts/servers.sh (started if needed by the caller: scripts/test.sh does).
# Extra arguments go to pytest: tests/api/run.sh build -k projects
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
shift || true
eval "$("$ROOT/scripts/servers.sh" env)"
export RP_BUILD_DIR="$BUILD"
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider "$ROOT/tests/api" "$@"
