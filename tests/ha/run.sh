#!/usr/bin/env bash
# The fault tests of issue #9 (tests/ha/test_ha.py): starts the HA topology of scripts/ha.sh on
# its own ports (RAMPART_HA_BASE, default 21000) and state directory, runs pytest against it,
# and wipes it afterwards whatever happens. The Rampart binaries are the release build in build/
# (or RP_BUILD_DIR, e.g. build-asan). Needs root for the worker's network namespace.
#
#   tests/ha/run.sh                     the CI run: 20 schedules of 1 s, 20 s windows
#   RAMPART_HA_SCHEDULES=50 RAMPART_HA_WINDOW=40 tests/ha/run.sh      the long run
#   RP_BUILD_DIR=$PWD/build-asan tests/ha/run.sh -k cut   the services under ASan+UBSan
#   tests/ha/run.sh -k promote          extra arguments go to pytest
#
# Figures of every window: printed, and in build/test-artifacts/ha-report.json; on a failure the
# services' and servers' logs are kept in build/test-artifacts/ha-logs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export RAMPART_HA_BASE=${RAMPART_HA_BASE:-21000}
export RAMPART_RUN_DIR=${RAMPART_RUN_DIR:-$ROOT/.run/ha-test}
export RP_BUILD_DIR=${RP_BUILD_DIR:-$ROOT/build} # the binaries (build-asan: under ASan+UBSan)
HA=$ROOT/scripts/ha.sh
for b in dashboard scheduler worker mailer connector; do
    [ -x "$RP_BUILD_DIR/$b/rampart-$b" ] || {
        echo "tests/ha: $RP_BUILD_DIR/$b/rampart-$b is missing (cmake --build $RP_BUILD_DIR)" >&2
        exit 1
    }
done
trap '"$HA" wipe >/dev/null 2>&1 || "$HA" wipe' EXIT
"$HA" wipe >/dev/null 2>&1 || true
"$HA" start
eval "$("$HA" env)"
rc=0
/usr/bin/python3 -m pytest -q -p no:cacheprovider -s "$ROOT/tests/ha" "$@" || rc=$?
if [ "$rc" != 0 ]; then # the services' logs outlive the wipe, for whoever reads the failure
    rm -rf "$RP_BUILD_DIR/test-artifacts/ha-logs"
    mkdir -p "$RP_BUILD_DIR/test-artifacts"
    cp -r "$RAMPART_HA_LOGS" "$RP_BUILD_DIR/test-artifacts/ha-logs" &&
        echo "tests/ha: the services' logs are kept in $RP_BUILD_DIR/test-artifacts/ha-logs" >&2
    # and the servers' own: RabbitMQ's nodes and PostgreSQL's primary and standby
    top=$(dirname "$RAMPART_HA_LOGS")
    for d in "$top"/rmq*/log "$top"/pg/*/server.log; do
        [ -e "$d" ] || continue
        n=$(basename "$(dirname "$d")")
        cp -r "$d" "$RP_BUILD_DIR/test-artifacts/ha-logs/$n-$(basename "$d")" || true
    done
fi
exit "$rc"
