#!/usr/bin/env bash
# The one command that runs every test (the README's second command; .ci/run calls it).
# Installs what is missing, checks formatting, builds with -Werror, runs the unit tests under
# ASan+UBSan (leaks are errors), starts private copies of the real servers on their own ports
# under .run/test, runs the integration tests against them, runs the fuzzers briefly, and stops
# every server it started, whatever happens. Logs of a failed run stay in .run/test/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$RP_ROOT"

FUZZ_SECONDS=${RAMPART_FUZZ_SECONDS:-20}
t_start=$(date +%s)
step() { rp_say "[$(($(date +%s) - t_start))s] $*"; }

step "dependencies"
scripts/deps.sh

rp_clean_mongoc_shm
step "format check"
scripts/format.sh --check

step "deployments validated offline: docker-compose.yml (docker-compose config + rules), deploy/k8s against Kubernetes and operator CRD schemas, kustomize build"
scripts/check-deploy.sh

step "release build (-Werror)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRP_WERROR=ON >/dev/null
ninja -C build >/dev/null
scripts/config-docs.sh --check build

step "sanitizer build (ASan + UBSan, -Werror)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRP_SANITIZE=ON -DRP_WERROR=ON >/dev/null
ninja -C build-asan >/dev/null

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$RP_ROOT/tests/lsan.supp:print_suppressions=0

step "unit tests (ASan + UBSan + LeakSanitizer)"
(cd build-asan && ctest -L unit --output-on-failure)

# Private servers for the tests: their own directory and ports, so a developer's running
# Rampart (scripts/run.sh) is left alone, and all of them stopped on exit. The ports are below
# the kernel's ephemeral range (32768-60999): a client reconnecting to a port in that range
# while its server restarts can be given that very port as its source and connect to itself,
# and the restarted server then fails with eaddrinuse (seen once with RabbitMQ on 56672).
export RAMPART_RUN_DIR=$RP_ROOT/.run/test
export RAMPART_PG_PORT=16432 RAMPART_AMQP_PORT=16672 RAMPART_AMQP_DIST_PORT=16673
export RAMPART_EPMD_PORT=14369 RAMPART_MONGO_PORT=18017
stop_servers() { scripts/servers.sh stop || true; }
trap stop_servers EXIT
step "starting test servers (PostgreSQL, RabbitMQ, FerretDB) under .run/test"
scripts/servers.sh wipe
scripts/servers.sh start
eval "$(scripts/servers.sh env)"

step "integration tests against the real servers (sanitizer build)"
# Verbose into a log (the tests print what they measured); the figures are shown on success,
# the whole log's tail on failure.
ilog=$RAMPART_RUN_DIR/integration.log
if ! (cd build-asan && ctest -L integration --output-on-failure -V >"$ilog" 2>&1); then
    tail -100 "$ilog"
    rp_die "integration tests failed (log: $ilog)"
fi
grep -E '^([0-9]+: (amqp|pg|mongo|pipeline)|[0-9]+/[0-9]+ Test #)' "$ilog" | sed 's/^[0-9]*: /    /' || true
grep -E 'tests passed' "$ilog"

rp_clean_mongoc_shm # what processes killed by the tests above left (see lib.sh)
step "service binaries: start, JSON logs, /healthz /readyz /metrics, drain, bad settings"
tests/integration/services.sh build

step "rampart-backup: create, verify (damaged archives refused, naming the part), list, prune (sanitizer build)"
tests/integration/backup_cli.sh build-asan

step "rampart-worker run: the documented example against httpbin, JUnit, exit codes (sanitizer build)"
tests/integration/worker_cli.sh build-asan

step "the run pipeline: 3 schedulers + 3 workers, steady and under kill -9 / broker and database restarts"
tests/integration/pipeline.sh build "${PIPELINE_SCENARIOS:-all}"

step "dashboard API: every route, roles, CSRF, bad input, failover behind HAProxy, drain (sanitizer build)"
tests/api/run.sh build-asan

step "alerts end to end: real SMTP server and HTTP receiver, retries, maintenance, kill -9 of mailer and connector (sanitizer build)"
tests/alerts/run.sh build-asan

step "backup round trip: 100,000 runs through the API and the pipeline, backed up while it runs, both databases wiped, restored, compared, services on the restored data (release build)"
tests/backup/run.sh build

step "high availability: the HA topology of scripts/ha.sh (PostgreSQL primary + synchronous standby, 3 RabbitMQ nodes, 2 FerretDB, HAProxy, 2 of every service) under steady load; kill -9 of each kind of process, standby promotion, a worker cut off the network, a rolling update, two dashboards on one database (release build)"
tests/ha/run.sh

step "dashboard API fuzzed from its OpenAPI document (schemathesis): no 5xx, answers as documented"
tests/api/schemathesis/run.sh build

step "web UI: browser journeys (Playwright + chromium), screenshots in build/test-artifacts/browser"
tests/browser/run.sh build

rp_clean_mongoc_shm
step "fuzzing the parsers (${FUZZ_SECONDS}s each)"
tests/fuzz/run.sh "$FUZZ_SECONDS"

step "all tests passed"
