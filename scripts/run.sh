#!/usr/bin/env bash
# The one command that sets up and runs Rampart locally (the README's first command):
# installs what is missing, builds, starts PostgreSQL, RabbitMQ and FerretDB under .run/, then
# every service in the background, waits until each answers /healthz and prints where things are.
#
#   scripts/run.sh          set up and start everything (idempotent)
#   scripts/run.sh stop     drain and stop the services (SIGTERM), then the servers
#   scripts/run.sh status   what is running
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$RP_ROOT"

SERVICES=(dashboard scheduler worker mailer connector)
declare -A PORT=([dashboard]=8080 [scheduler]=9101 [worker]=9102 [mailer]=9103 [connector]=9104)
PIDS=$RP_RUN/pids
LOGS=$RP_RUN/logs

svc_pid() { cat "$PIDS/$1.pid" 2>/dev/null || true; }
svc_running() { local p; p=$(svc_pid "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# The demo's HTTP target: Debian's httpbin on 127.0.0.1:8090.
DEMO_PORT=8090
demo_pid() { cat "$PIDS/demo-target.pid" 2>/dev/null || true; }
stop_demo_target() {
    local p
    p=$(demo_pid)
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
    rm -f "$PIDS/demo-target.pid"
}
start_demo_target() {
    if [ -n "$(demo_pid)" ] && kill -0 "$(demo_pid)" 2>/dev/null; then return; fi
    nohup /usr/bin/python3 -m httpbin.core --host 127.0.0.1 --port "$DEMO_PORT" \
        >>"$LOGS/demo-target.log" 2>&1 </dev/null &
    echo $! >"$PIDS/demo-target.pid"
    rp_wait_port "$DEMO_PORT" 20 || rp_die "the demo target (httpbin) did not start: $LOGS/demo-target.log"
}

# The local mail catcher: a real SMTP server (aiosmtpd) on 127.0.0.1:2525, where the mailer
# sends by default; every mail it takes is one JSON line in .run/mail.jsonl.
MAIL_PORT=2525
mail_pid() { cat "$PIDS/mail-catcher.pid" 2>/dev/null || true; }
stop_mail_catcher() {
    local p
    p=$(mail_pid)
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
    rm -f "$PIDS/mail-catcher.pid"
}
start_mail_catcher() {
    if [ -n "$(mail_pid)" ] && kill -0 "$(mail_pid)" 2>/dev/null; then return; fi
    nohup /usr/bin/python3 -u tests/integration/alerts/smtp_sink.py --port "$MAIL_PORT" \
        --out "$RP_RUN/mail.jsonl" >>"$LOGS/mail-catcher.log" 2>&1 </dev/null &
    echo $! >"$PIDS/mail-catcher.pid"
    rp_wait_port "$MAIL_PORT" 20 || rp_die "the mail catcher did not start: $LOGS/mail-catcher.log"
}

stop_services() {
    for s in "${SERVICES[@]}"; do
        svc_running "$s" || continue
        kill -TERM "$(svc_pid "$s")"
    done
    for s in "${SERVICES[@]}"; do
        for _ in $(seq 150); do svc_running "$s" || break; sleep 0.1; done
        if svc_running "$s"; then kill -9 "$(svc_pid "$s")"; fi
        rm -f "$PIDS/$s.pid"
    done
}

case ${1:-start} in
stop)
    stop_services
    stop_demo_target
    stop_mail_catcher
    scripts/servers.sh stop
    rp_say "Rampart stopped"
    exit 0 ;;
status)
    scripts/servers.sh status || true
    for s in "${SERVICES[@]}"; do
        if svc_running "$s"; then echo "$s: running (pid $(svc_pid "$s"), http://127.0.0.1:${PORT[$s]}/healthz)"
        else echo "$s: stopped"; fi
    done
    exit 0 ;;
start) ;;
*) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

rp_say "installing what is missing"
scripts/deps.sh
rp_say "building (build/)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build >/dev/null
rp_say "starting servers"
scripts/servers.sh start
eval "$(scripts/servers.sh env)"

mkdir -p "$PIDS" "$LOGS"
# The first administrator's password and the key that seals secrets at rest: made once per
# checkout, kept in .run/secrets.env (mode 0600), the same for every service.
SECRETS=$RP_RUN/secrets.env
if [ ! -s "$SECRETS" ]; then
    umask 077
    {
        echo "RAMPART_ADMIN_EMAIL=admin@rampart.local"
        echo "RAMPART_ADMIN_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        echo "RAMPART_SECRET_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    } >"$SECRETS"
    umask 022
fi
set -a
. "$SECRETS"
set +a
export RAMPART_PUBLIC_URL=http://127.0.0.1:${PORT[dashboard]}
export RAMPART_SMTP_URL=smtp://127.0.0.1:$MAIL_PORT
start_demo_target
start_mail_catcher
for s in "${SERVICES[@]}"; do
    if svc_running "$s"; then
        # Replace a running copy so a rebuilt binary is what runs.
        kill -TERM "$(svc_pid "$s")"
        for _ in $(seq 150); do svc_running "$s" || break; sleep 0.1; done
    fi
    RAMPART_HTTP_LISTEN=127.0.0.1:${PORT[$s]} nohup "build/$s/rampart-$s" \
        >>"$LOGS/$s.log" 2>&1 </dev/null &
    echo $! >"$PIDS/$s.pid"
done
failed=0
for s in "${SERVICES[@]}"; do
    ok=0
    for _ in $(seq 100); do
        if curl -fsS "http://127.0.0.1:${PORT[$s]}/healthz" >/dev/null 2>&1; then ok=1; break; fi
        svc_running "$s" || break
        sleep 0.1
    done
    if ((ok)); then
        ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$s]}/readyz" || true)
        printf '  %-10s up    http://127.0.0.1:%s/healthz  (readyz: %s)\n' "$s" "${PORT[$s]}" "$ready"
    else
        printf '  %-10s FAILED  see %s\n' "$s" "$LOGS/$s.log"
        tail -5 "$LOGS/$s.log" >&2 || true
        failed=1
    fi
done
if ((failed == 0)); then
    psql -q -v ON_ERROR_STOP=1 "$RAMPART_PG_URL" -f scripts/demo.sql >/dev/null \
        || rp_die "could not seed the demo project (scripts/demo.sql)"
fi
cat <<MSG

Rampart is running.
  dashboard:          http://127.0.0.1:${PORT[dashboard]}/   (API: /api/v1, described at /api/v1/openapi.json)
  log in as:          $RAMPART_ADMIN_EMAIL / $RAMPART_ADMIN_PASSWORD   (kept in $SECRETS)
  demo project:       "demo" — two tests against httpbin at http://127.0.0.1:$DEMO_PORT, every 10 s
                      (one passes, one fails on purpose). Watch the runs:
                      psql "$RAMPART_PG_URL" -c "SELECT t.name, r.status, count(*) FROM runs r JOIN tests t ON t.id = r.test_id GROUP BY 1, 2"
  alerts:             the failing test opens an incident after 2 runs; its e-mail goes to the
                      local mail catcher (SMTP 127.0.0.1:$MAIL_PORT): $RP_RUN/mail.jsonl
                      incidents and deliveries: the project's Alerts page in the dashboard
  services' health, readiness and metrics: http://127.0.0.1:<port>/healthz, /readyz, /metrics
  logs (JSON lines):  $LOGS/
  servers:            PostgreSQL 127.0.0.1:$RP_PG_PORT, RabbitMQ 127.0.0.1:$RP_AMQP_PORT, FerretDB 127.0.0.1:$RP_MONGO_PORT
  stop everything:    scripts/run.sh stop
MSG
exit $failed
