#!/usr/bin/env bash
# Fuzzes the dashboard's API from its OpenAPI document with schemathesis (PyPI):
#   tests/api/schemathesis/run.sh BUILD
# Installs schemathesis (pinned) into a venv cached under ~/.cache/rampart/schemathesis-venv
# (once; a second run only checks the version), then fuzz.py starts a seeded dashboard from
# BUILD on the servers of scripts/servers.sh (its own databases, dropped afterwards), runs a
# pass as an editor API key and one as the admin (session cookie + CSRF), prints the cases run
# and every failure, and exits 1 on any. About 5 minutes on 2 cores.
# Tuning (environment): FUZZ_EXAMPLES (50, per operation, admin pass), FUZZ_KEY_EXAMPLES (25),
# FUZZ_WORKERS (2), FUZZ_SEED (random; printed), FUZZ_PASSES (api-key,session).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
VERSION=4.32.5
VENV=${RAMPART_CACHE:-$HOME/.cache/rampart}/schemathesis-venv
ST=$VENV/bin/schemathesis

[ -x "$BUILD/dashboard/rampart-dashboard" ] ||
    { echo "error: $BUILD/dashboard/rampart-dashboard is not built" >&2; exit 1; }
if [ "$("$ST" --version 2>/dev/null)" != "schemathesis, version $VERSION" ]; then
    echo "==> installing schemathesis $VERSION into $VENV" >&2
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    /usr/bin/python3 -m venv "$VENV" ||
        { echo "error: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
    "$VENV/bin/pip" install -q "schemathesis==$VERSION"
    "$ST" --version
fi

eval "$("$ROOT/scripts/servers.sh" env)"
export RP_BUILD_DIR="$BUILD"
cd "$ROOT/tests/api/schemathesis"
exec /usr/bin/python3 fuzz.py --schemathesis "$ST"
