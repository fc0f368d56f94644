#!/usr/bin/env bash
# Acceptance tests of the run pipeline (issue #5): real rampart-scheduler and rampart-worker
# binaries against the real servers of scripts/servers.sh, every fire checked for exactly one
# run and one result (tests/integration/pipeline/pipeline_test.py says how).
#
#   tests/integration/pipeline.sh BUILD_DIR [steady|chaos|all] [--schedules 200 --duration 60 ...]
#   tests/integration/pipeline.sh --self-test
#
# Needs RAMPART_TEST_PG, RAMPART_TEST_AMQP, RAMPART_TEST_MONGO and (chaos) RAMPART_TEST_SERVERS
# with the same RAMPART_RUN_DIR / RAMPART_*_PORT as the servers under test:
#   eval "$(scripts/servers.sh env)". Missing ones fail the run; nothing is skipped.
# Runs on Debian's /usr/bin/python3 with python3-psycopg2 and python3-pymongo (scripts/deps.sh).
# Prints one summary line of figures per scenario; exits non-zero on any mismatch.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "pipeline: $PY is missing (scripts/deps.sh installs it)" >&2; exit 1; }
"$PY" -c 'import psycopg2, pymongo' 2>/dev/null || {
    echo "pipeline: $PY lacks psycopg2 or pymongo: install python3-psycopg2 python3-pymongo (scripts/deps.sh)" >&2
    exit 1
}
if [ "${1:-}" = --self-test ]; then
    exec "$PY" "$HERE/pipeline/pipeline_test.py" --self-test
fi
BUILD=${1:?usage: $0 BUILD_DIR [steady|chaos|all] [options] | $0 --self-test}
shift
SCENARIO=all
case ${1:-} in steady | chaos | all) SCENARIO=$1; shift ;; esac
exec "$PY" -u "$HERE/pipeline/pipeline_test.py" --build "$BUILD" --scenario "$SCENARIO" "$@"
