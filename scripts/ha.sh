#!/usr/bin/env bash
# The HA topology of Rampart on one machine, all on loopback, all state under .run/ha/
# (issue #9 item 1): a PostgreSQL primary + streaming standby, a 3-node RabbitMQ cluster, two
# FerretDB instances on that PostgreSQL pair, HAProxy in front of two dashboards (and of the two
# FerretDB), and two copies of every service. Its own ports (26000-29999), never the dev
# servers' (55xxx/57017) nor the test command's (16xxx/18017).
#
#   scripts/ha.sh start          start everything (idempotent), wait until ready, print the table
#   scripts/ha.sh stop           clean stop of everything it started, then SIGKILL leftovers
#   scripts/ha.sh status         the table: name, pid, port, state
#   scripts/ha.sh env            shell exports for tests (RAMPART_HA_*)
#   scripts/ha.sh kill NAME      SIGKILL one process, like a crash (names: see status)
#   scripts/ha.sh restart NAME   stop (clean) then start one process
#   scripts/ha.sh promote        pg_ctl promote the standby (pg2; pg1 after a rejoin)
#   scripts/ha.sh rejoin pg1     make a stopped PostgreSQL node a standby of the other (base backup)
#   scripts/ha.sh wipe           stop, then delete .run/ha
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

HA=$RP_RUN/ha
PIDS=$HA/pids
LOGS=$HA/logs
PG_BIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | { grep -v '\*' || true; } | sort -V | tail -1)
FERRET_BIN=

# ---- ports (override with RAMPART_HA_BASE; everything is BASE + offset) ---------------------
BASE=${RAMPART_HA_BASE:-26000}
declare -A PORT=(
    [pg1]=$((BASE + 432)) [pg2]=$((BASE + 433))
    [rmq1]=$((BASE + 672)) [rmq2]=$((BASE + 682)) [rmq3]=$((BASE + 692))
    [ferret1]=$((BASE + 1017)) [ferret2]=$((BASE + 1018))
    [haproxy]=$((BASE + 2080)) [mongo_lb]=$((BASE + 1019))
    [dashboard1]=$((BASE + 2081)) [dashboard2]=$((BASE + 2082))
    [scheduler1]=$((BASE + 2101)) [scheduler2]=$((BASE + 2102))
    [worker1]=$((BASE + 2111)) [worker2]=$((BASE + 2112))
    [mailer1]=$((BASE + 2121)) [mailer2]=$((BASE + 2122))
    [connector1]=$((BASE + 2131)) [connector2]=$((BASE + 2132))
)
declare -A DIST=([rmq1]=$((BASE + 673)) [rmq2]=$((BASE + 683)) [rmq3]=$((BASE + 693)))
EPMD_PORT=$((BASE + 369))
SMTP_PORT=$((BASE + 2025)) # nothing listens there unless a test starts a mail catcher
SERVICES=(dashboard scheduler worker mailer connector)
INFRA=(pg1 pg2 rmq1 rmq2 rmq3 ferret1 ferret2)
ALL=("${INFRA[@]}")
for s in "${SERVICES[@]}"; do ALL+=("${s}1" "${s}2"); done
ALL+=(haproxy)

LB_URL=http://127.0.0.1:${PORT[haproxy]}
# libpq multi-host: every connection (and every reconnect) goes to whichever host accepts
# read-write sessions, so after `promote` the services follow without a restart.
PG_URL="host=127.0.0.1,127.0.0.1 port=${PORT[pg1]},${PORT[pg2]} dbname=rampart user=postgres connect_timeout=3 target_session_attrs=read-write"
AMQP_URLS="amqp://guest:guest@127.0.0.1:${PORT[rmq1]}/,amqp://guest:guest@127.0.0.1:${PORT[rmq2]}/,amqp://guest:guest@127.0.0.1:${PORT[rmq3]}/"
# MongoDB: the services reach the two FerretDB through HAProxy (TCP, ferret2 a `backup`
# server), one stable address. A two-host mongodb:// URI is accepted by libmongoc (measured: a
# worker with mongodb://F1,F2/rampart became ready), but it spreads load over both FerretDB, and
# FerretDB 1.24 caches the collection metadata per process (measured: a collection created
# through ferret1 after ferret2 had loaded its cache was invisible through ferret2, and an
# insert there failed with 'relation "_ferretdb_database_metadata" already exists'). Documents
# in known collections are shared at once; so one FerretDB is active, the other takes over when
# it is down (it loads the metadata at its first client connection, i.e. at takeover).
MONGO_URL="mongodb://127.0.0.1:${PORT[mongo_lb]}/rampart?serverSelectionTimeoutMS=5000"
# FerretDB's pgx driver understands the same multi-host + target_session_attrs URL.
FERRET_PG_URL="postgres://postgres@127.0.0.1:${PORT[pg1]},127.0.0.1:${PORT[pg2]}/ferretdb?target_session_attrs=read-write&connect_timeout=3"

say_ms() { # say_ms T0 TEXT
    local ms=$((($(date +%s%N) - $1) / 1000000))
    rp_say "$2 ($((ms / 1000)).$((ms % 1000 / 100))s)"
}
pid_of() { cat "$PIDS/$1.pid" 2>/dev/null || true; }
# alive PID: running (a killed process waiting for its parent to reap it counts as gone)
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
# owned PID: the process is one of ours (its command line or cwd mentions .run/ha or our binaries)
owned() {
    local pid=$1
    alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -e "$HA" -e "$RP_ROOT/build/" -e "$(pg_dir)" && return 0
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -q "^RAMPART_HA_OWNER=$HA$"
}
kill_wait() { # kill_wait PID SECONDS: TERM, wait, then KILL
    local pid=$1 secs=$2
    owned "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do alive "$pid" || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.05; done
}

# ---- PostgreSQL: pg1 primary, pg2 standby made with pg_basebackup -R ------------------------
# Runs as `postgres`; when .run is not reachable by that user the data lives in /var/tmp and
# .run/ha/pg is a link to it (as in servers.sh).
pg_dir() { echo "$HA/pg"; }
pg_as() { runuser -u postgres -- "$@"; }
pg_data() { echo "$(pg_dir)/$1/data"; }
pg_prepare_dir() {
    local d
    d=$(pg_dir)
    [ -e "$d" ] && return 0
    mkdir -p "$HA"
    if runuser -u postgres -- test -x "$HA" 2>/dev/null; then
        mkdir -p "$d"
    else
        local alt
        alt=/var/tmp/rampart-ha-pg-$(echo "$HA" | md5sum | cut -c1-12)
        mkdir -p "$alt"
        ln -s "$alt" "$d"
    fi
    chown postgres:postgres "$d/"
}
pg_conf() { # pg_conf NAME: the settings that differ per node
    local d
    d=$(pg_dir)/$1
    mkdir -p "$d/sock" && chown postgres:postgres "$d/sock"
    cat <<CONF
# rampart ha.sh ($1)
listen_addresses = '127.0.0.1'
port = ${PORT[$1]}
unix_socket_directories = '$d/sock'
CONF
}
pg_pid() { head -1 "$(pg_data "$1")/postmaster.pid" 2>/dev/null || true; }
pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "${PORT[$1]}" -t 1; }
pg_role() {
    local r
    r=$("$PG_BIN/psql" -h 127.0.0.1 -p "${PORT[$1]}" -U postgres -d postgres -qtAc \
        "SELECT pg_is_in_recovery()" 2>/dev/null) || { echo "-"; return; }
    [ "$r" = t ] && echo standby || echo primary
}
pg_start_node() {
    local n=$1 data
    data=$(pg_data "$n")
    if alive "$(pg_pid "$n")"; then return 0; fi
    pg_as "$PG_BIN/pg_ctl" -D "$data" -l "$(pg_dir)/$n/server.log" -w -t 60 start >/dev/null || {
        tail -20 "$(pg_dir)/$n/server.log" >&2
        rp_die "PostgreSQL $n did not start (log: $(pg_dir)/$n/server.log)"
    }
    pg_pid "$n" >"$PIDS/$n.pid"
}
start_pg1() {
    [ -n "$PG_BIN" ] || rp_die "PostgreSQL is not installed (run scripts/deps.sh)"
    pg_prepare_dir
    local data
    data=$(pg_data pg1)
    if [ ! -f "$data/PG_VERSION" ]; then
        mkdir -p "$(pg_dir)/pg1" && chown postgres:postgres "$(pg_dir)/pg1"
        pg_as "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
        {
            pg_conf pg1
            cat <<CONF
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = on
wal_level = replica
max_wal_senders = 10
wal_keep_size = 256MB
hot_standby = on
logging_collector = off
log_min_messages = warning
CONF
        } >>"$data/postgresql.conf"
    fi
    if [ ! -f "$data/standby.signal" ] && [ -f "$(pg_data pg2)/PG_VERSION" ] &&
        [ ! -f "$(pg_data pg2)/standby.signal" ] && ! alive "$(pg_pid pg1)"; then
        # pg2 was promoted: pg1 would come back as a second primary (split brain)
        rp_say "pg1 stays down: pg2 was promoted (make pg1 its standby: scripts/ha.sh rejoin pg1)"
        return 0
    fi
    pg_start_node pg1
    [ -f "$data/standby.signal" ] && return 0
    local db
    for db in rampart ferretdb; do
        "$PG_BIN/psql" -h 127.0.0.1 -p "${PORT[pg1]}" -U postgres -d postgres -qtAc \
            "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 ||
            "$PG_BIN/createdb" -h 127.0.0.1 -p "${PORT[pg1]}" -U postgres "$db"
    done
}
pg_make_standby() { # pg_make_standby NAME FROM: NAME's data becomes a base backup of FROM
    local n=$1 from=$2 data
    data=$(pg_data "$n")
    rm -rf "$data"
    mkdir -p "$(pg_dir)/$n" && chown postgres:postgres "$(pg_dir)/$n"
    # -R writes standby.signal and primary_conninfo; -X stream: WAL during the copy
    pg_as "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "${PORT[$from]}" -U postgres -D "$data" \
        -R -X stream -c fast >/dev/null
    pg_conf "$n" >>"$data/postgresql.conf"
}
start_pg2() {
    pg_prepare_dir
    [ -f "$(pg_data pg2)/PG_VERSION" ] || pg_make_standby pg2 pg1
    pg_start_node pg2
}
stop_pg() {
    local n=$1
    [ -f "$(pg_data "$n")/PG_VERSION" ] || return 0
    alive "$(pg_pid "$n")" || return 0
    pg_as "$PG_BIN/pg_ctl" -D "$(pg_data "$n")" -m fast -w -t 30 stop >/dev/null || true
    kill_wait "$(pg_pid "$n")" 5
}
stop_pg1() { stop_pg pg1; }
stop_pg2() { stop_pg pg2; }

# ---- RabbitMQ: three nodes, one epmd, one cookie --------------------------------------------
rmq_env() { # rmq_env NAME
    local n=$1 d=$HA/$1
    export HOME=$HA/rabbit-home RABBITMQ_NODENAME=ha-$n@localhost
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=${PORT[$n]}
    export RABBITMQ_DIST_PORT=${DIST[$n]} ERL_EPMD_PORT=$EPMD_PORT
    export RABBITMQ_MNESIA_BASE=$d/mnesia RABBITMQ_LOG_BASE=$d/log
    export RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins
    export RABBITMQ_PID_FILE=$d/rabbit.pid RABBITMQ_CONF_ENV_FILE=$d/rabbitmq-env.conf
    export RABBITMQ_ADVANCED_CONFIG_FILE=$d/advanced.config
    # a modest Erlang VM: two schedulers, no busy waiting (this machine runs other things)
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+S 2:2 +sbwt none +sbwtdcpu none +sbwtdio none"
    export RAMPART_HA_OWNER=$HA
}
rmqctl() { # rmqctl NAME ARGS...
    local n=$1
    shift
    (rmq_env "$n" && /usr/lib/rabbitmq/bin/rabbitmqctl -n "ha-$n@localhost" "$@")
}
rmq_pid() { cat "$HA/$1/rabbit.pid" 2>/dev/null || true; }
rmq_running_nodes() { # how many nodes the cluster reports as running (asked of any live node)
    local n out
    for n in rmq1 rmq2 rmq3; do
        alive "$(rmq_pid "$n")" || continue
        out=$(rmqctl "$n" cluster_status --formatter json 2>/dev/null) || continue
        echo "$out" | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("running_nodes", [])))' && return 0
    done
    echo 0
}
start_rmq_node() {
    local n=$1 d=$HA/$1
    [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || rp_die "RabbitMQ is not installed (run scripts/deps.sh)"
    mkdir -p "$d/mnesia" "$d/log" "$HA/rabbit-home"
    if [ ! -f "$HA/rabbit-home/.erlang.cookie" ]; then
        (umask 077 && head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$HA/rabbit-home/.erlang.cookie")
        chmod 400 "$HA/rabbit-home/.erlang.cookie"
    fi
    if [ ! -f "$d/rabbitmq.conf" ]; then
        cat >"$d/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:${PORT[$n]}
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = warning
heartbeat = 10
loopback_users = none
cluster_partition_handling = pause_minority
CONF
        echo '[].' >"$d/enabled_plugins"
        : >"$d/rabbitmq-env.conf"
        echo '[].' >"$d/advanced.config"
    fi
    if alive "$(rmq_pid "$n")"; then return 0; fi
    (rmq_env "$n" && /usr/lib/rabbitmq/bin/rabbitmq-server -detached >/dev/null 2>&1)
}
wait_rmq_node() {
    local n=$1
    rp_wait_port "${PORT[$n]}" 120 || {
        tail -20 "$HA/$n"/log/*.log >&2 2>/dev/null || true
        rp_die "RabbitMQ $n did not open port ${PORT[$n]} (logs: $HA/$n/log)"
    }
    rmqctl "$n" await_startup -t 60 >/dev/null 2>&1 || rp_die "RabbitMQ $n did not finish starting"
    rmq_pid "$n" >"$PIDS/$n.pid"
}
join_rmq() { # join_rmq NAME: make NAME a member of rmq1's cluster (once)
    local n=$1
    if rmqctl "$n" cluster_status --formatter json 2>/dev/null | grep -q "ha-rmq1@localhost"; then
        return 0
    fi
    rmqctl "$n" stop_app >/dev/null 2>&1
    rmqctl "$n" reset >/dev/null 2>&1
    rmqctl "$n" join_cluster ha-rmq1@localhost >/dev/null 2>&1
    rmqctl "$n" start_app >/dev/null 2>&1
}
start_rabbitmq() {
    local n
    for n in rmq1 rmq2 rmq3; do start_rmq_node "$n"; done
    for n in rmq1 rmq2 rmq3; do wait_rmq_node "$n"; done
    join_rmq rmq2
    join_rmq rmq3
    for _ in $(seq 300); do [ "$(rmq_running_nodes)" = 3 ] && return 0; sleep 0.2; done
    rp_die "RabbitMQ: the cluster does not show 3 running nodes"
}
start_rmq1() { start_rmq_node rmq1; wait_rmq_node rmq1; }
start_rmq2() { start_rmq_node rmq2; wait_rmq_node rmq2; join_rmq rmq2; }
start_rmq3() { start_rmq_node rmq3; wait_rmq_node rmq3; join_rmq rmq3; }
stop_rmq() {
    local n=$1 pid
    pid=$(rmq_pid "$n")
    alive "$pid" || return 0
    rmqctl "$n" stop >/dev/null 2>&1 || true
    kill_wait "$pid" 20
}
stop_rmq1() { stop_rmq rmq1; }
stop_rmq2() { stop_rmq rmq2; }
stop_rmq3() { stop_rmq rmq3; }
stop_epmd() { ERL_EPMD_PORT=$EPMD_PORT epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true; }

# ---- FerretDB: two instances on the PostgreSQL pair -----------------------------------------
# Both use the postgresql handler on the same database `ferretdb`, reached through the
# multi-host URL with target_session_attrs=read-write (pgx, FerretDB's driver, supports it):
# they share every document (unlike two SQLite directories, which would not share data) and
# follow a promotion like the services do. Active/backup behind HAProxy: see MONGO_URL above.
start_ferret() {
    local n=$1 d=$HA/$1
    [ -n "$FERRET_BIN" ] || FERRET_BIN=$("$RP_ROOT/scripts/ferretdb.sh")
    mkdir -p "$d"
    alive "$(pid_of "$n")" && return 0
    RAMPART_HA_OWNER=$HA nohup "$FERRET_BIN" --handler=postgresql --postgresql-url="$FERRET_PG_URL" \
        --listen-addr="127.0.0.1:${PORT[$n]}" --telemetry=disable --debug-addr=- \
        --state-dir="$d" --log-level=warn >>"$LOGS/$n.log" 2>&1 </dev/null &
    echo $! >"$PIDS/$n.pid"
    rp_wait_port "${PORT[$n]}" 30 || { tail -20 "$LOGS/$n.log" >&2; rp_die "FerretDB $n did not start"; }
}
start_ferret1() { start_ferret ferret1; }
start_ferret2() { start_ferret ferret2; }
stop_ferret() { kill_wait "$(pid_of "$1")" 10; rm -f "$PIDS/$1.pid"; }
stop_ferret1() { stop_ferret ferret1; }
stop_ferret2() { stop_ferret ferret2; }

# ---- HAProxy: dashboards (HTTP, /readyz) and FerretDB (TCP) ---------------------------------
start_haproxy() {
    local cfg=$HA/haproxy.cfg
    sed -e "s|@SOCK@|$HA/haproxy.sock|" -e "s|@LB@|${PORT[haproxy]}|" \
        -e "s|@D1@|${PORT[dashboard1]}|" -e "s|@D2@|${PORT[dashboard2]}|" \
        -e "s|@MONGO@|${PORT[mongo_lb]}|" -e "s|@F1@|${PORT[ferret1]}|" -e "s|@F2@|${PORT[ferret2]}|" \
        "$RP_ROOT/scripts/ha/haproxy.cfg.in" >"$cfg"
    alive "$(pid_of haproxy)" && return 0
    haproxy -c -q -f "$cfg" || rp_die "haproxy: bad config $cfg"
    haproxy -f "$cfg" -D -p "$PIDS/haproxy.pid" >>"$LOGS/haproxy.log" 2>&1
    rp_wait_port "${PORT[haproxy]}" 10 || rp_die "haproxy did not start (log: $LOGS/haproxy.log)"
}
stop_haproxy() { kill_wait "$(pid_of haproxy)" 5; rm -f "$PIDS/haproxy.pid"; }
haproxy_state() { # haproxy_state BACKEND/SERVER -> UP/DOWN/...
    echo "show stat" | socat - "UNIX-CONNECT:$HA/haproxy.sock" 2>/dev/null |
        awk -F, -v b="${1%/*}" -v s="${1#*/}" '$1==b && $2==s {print $18}'
}

# ---- Rampart services -----------------------------------------------------------------------
secrets() {
    local f=$HA/env
    if [ ! -s "$f" ]; then
        (
            umask 077
            {
                echo "RAMPART_ADMIN_EMAIL=admin@rampart.local"
                echo "RAMPART_ADMIN_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
                echo "RAMPART_SECRET_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
            } >"$f"
        )
    fi
    set -a
    # shellcheck source=/dev/null
    . "$f"
    set +a
}
start_svc() { # start_svc NAME (dashboard1, worker2, ...)
    local n=$1 s=${1%[12]}
    alive "$(pid_of "$n")" && return 0
    secrets
    RAMPART_HA_OWNER=$HA RAMPART_INSTANCE=ha-$n RAMPART_HTTP_LISTEN=127.0.0.1:${PORT[$n]} \
        RAMPART_PG_URL=$PG_URL RAMPART_AMQP_URLS=$AMQP_URLS RAMPART_MONGO_URL=$MONGO_URL \
        RAMPART_PUBLIC_URL=$LB_URL RAMPART_TRUST_PROXY=true RAMPART_READY_CHECK_INTERVAL=1s \
        RAMPART_SMTP_URL=smtp://127.0.0.1:$SMTP_PORT RAMPART_LOG_LEVEL=warn \
        nohup "$RP_ROOT/build/$s/rampart-$s" >>"$LOGS/$n.log" 2>&1 </dev/null &
    echo $! >"$PIDS/$n.pid"
}
svc_ready() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:${PORT[$1]}/readyz")" = 200 ]; }
wait_svc() {
    local n=$1
    for _ in $(seq 600); do
        svc_ready "$n" && return 0
        alive "$(pid_of "$n")" || { tail -5 "$LOGS/$n.log" >&2; rp_die "$n exited (log: $LOGS/$n.log)"; }
        sleep 0.1
    done
    rp_die "$n not ready within 60 s: $(curl -s -m 2 "http://127.0.0.1:${PORT[$n]}/readyz") (log: $LOGS/$n.log)"
}
stop_svc() { kill_wait "$(pid_of "$1")" 40; rm -f "$PIDS/$1.pid"; }

# ---- one name: start/stop/kill --------------------------------------------------------------
is_svc() { case ${1%[12]} in dashboard | scheduler | worker | mailer | connector) return 0 ;; esac; return 1; }
start_one() {
    if is_svc "$1"; then start_svc "$1"; wait_svc "$1"; else "start_$1"; fi
}
stop_one() {
    if is_svc "$1"; then stop_svc "$1"; else "stop_$1"; fi
}
pid_now() {
    case $1 in
    pg1 | pg2) pg_pid "$1" ;;
    rmq1 | rmq2 | rmq3) rmq_pid "$1" ;;
    *) pid_of "$1" ;;
    esac
}
state_of() {
    local n=$1 pid
    pid=$(pid_now "$n")
    alive "$pid" || { echo down; return; }
    case $n in
    pg1 | pg2) if pg_ready "$n"; then pg_role "$n"; else echo "not ready"; fi ;;
    rmq1 | rmq2 | rmq3) if rp_port_open "${PORT[$n]}"; then echo running; else echo starting; fi ;;
    ferret1 | ferret2) if rp_port_open "${PORT[$n]}"; then echo "running (lb $(haproxy_state "ferretdb/$n"))"; else echo starting; fi ;;
    haproxy) echo "running (dashboards: $(haproxy_state dashboards/dashboard1)/$(haproxy_state dashboards/dashboard2))" ;;
    dashboard1 | dashboard2) if svc_ready "$n"; then echo "ready (lb $(haproxy_state "dashboards/$n"))"; else echo "not ready"; fi ;;
    *) if svc_ready "$n"; then echo ready; else echo "not ready"; fi ;;
    esac
}
table() {
    local n pid
    printf '%-12s %-8s %-6s %s\n' NAME PID PORT STATE
    for n in "${ALL[@]}"; do
        pid=$(pid_now "$n")
        alive "$pid" || pid=-
        printf '%-12s %-8s %-6s %s\n' "$n" "$pid" "${PORT[$n]}" "$(state_of "$n")"
    done
    printf '%-12s %-8s %-6s %s\n' "(epmd)" - "$EPMD_PORT" "rabbitmq cluster: $(rmq_running_nodes) running nodes"
    printf '%-12s %-8s %-6s %s\n' "(mongo lb)" - "${PORT[mongo_lb]}" "haproxy tcp -> ferret1, ferret2"
    echo "dashboard through HAProxy: $LB_URL   (admin: see $HA/env)"
}

known() {
    local n
    for n in "${ALL[@]}"; do [ "$n" = "$1" ] && return 0; done
    rp_die "unknown name '$1' (expected one of: ${ALL[*]})"
}

cmd=${1:-}
shift || true
mkdir -p "$PIDS" "$LOGS"
case $cmd in
start)
    rp_clean_mongoc_shm
    t_all=$(date +%s%N)
    t0=$(date +%s%N); start_pg1; start_pg2
    for _ in $(seq 100); do pg_ready pg2 && break; sleep 0.1; done
    say_ms "$t0" "postgresql primary ${PORT[pg1]} + standby ${PORT[pg2]} up"
    t0=$(date +%s%N); start_rabbitmq; say_ms "$t0" "rabbitmq cluster of 3 running"
    t0=$(date +%s%N); start_ferret1; start_ferret2; say_ms "$t0" "ferretdb x2 up"
    t0=$(date +%s%N); start_haproxy; say_ms "$t0" "haproxy up"
    # one dashboard first (it applies the migrations), then every other copy at once
    t0=$(date +%s%N); start_svc dashboard1; wait_svc dashboard1
    for s in "${SERVICES[@]}"; do for i in 1 2; do start_svc "$s$i"; done; done
    for s in "${SERVICES[@]}"; do for i in 1 2; do wait_svc "$s$i"; done; done
    say_ms "$t0" "10 services ready"
    for _ in $(seq 50); do [ "$(haproxy_state dashboards/dashboard2)" = UP ] && [ "$(haproxy_state dashboards/dashboard1)" = UP ] && break; sleep 0.1; done
    say_ms "$t_all" "HA topology ready"
    table ;;
stop)
    t0=$(date +%s%N)
    for s in "${SERVICES[@]}"; do for i in 1 2; do stop_svc "$s$i" & done; done
    wait
    stop_haproxy; stop_ferret1; stop_ferret2
    stop_rmq3; stop_rmq2; stop_rmq1; stop_epmd
    stop_pg2; stop_pg1
    rp_clean_mongoc_shm
    say_ms "$t0" "HA topology stopped" ;;
status) table ;;
env)
    secrets
    cat <<ENV
export RAMPART_HA_URL='$LB_URL'
export RAMPART_HA_DASHBOARDS='http://127.0.0.1:${PORT[dashboard1]},http://127.0.0.1:${PORT[dashboard2]}'
export RAMPART_HA_PG='$PG_URL'
export RAMPART_HA_PG_PRIMARY_PORT='${PORT[pg1]}'
export RAMPART_HA_PG_STANDBY_PORT='${PORT[pg2]}'
export RAMPART_HA_AMQP='$AMQP_URLS'
export RAMPART_HA_MONGO='$MONGO_URL'
export RAMPART_HA_FERRETDB='mongodb://127.0.0.1:${PORT[ferret1]}/,mongodb://127.0.0.1:${PORT[ferret2]}/'
export RAMPART_HA_ADMIN_EMAIL='$RAMPART_ADMIN_EMAIL'
export RAMPART_HA_ADMIN_PASSWORD='$RAMPART_ADMIN_PASSWORD'
export RAMPART_HA_SECRET_KEY='$RAMPART_SECRET_KEY'
export RAMPART_HA_SCRIPT='$RP_ROOT/scripts/ha.sh'
ENV
    ;;
kill)
    (($# == 1)) || rp_die "usage: ha.sh kill NAME"
    known "$1"
    pid=$(pid_now "$1")
    owned "$pid" || rp_die "$1 is not running"
    kill -9 "$pid"
    while alive "$pid"; do sleep 0.05; done
    rp_say "$1 (pid $pid) killed with SIGKILL" ;;
restart)
    (($# == 1)) || rp_die "usage: ha.sh restart NAME"
    known "$1"
    t0=$(date +%s%N); stop_one "$1"; start_one "$1"; say_ms "$t0" "$1 restarted" ;;
promote)
    # the standby (pg2, or pg1 after a rejoin) becomes the primary
    t0=$(date +%s%N)
    sb=pg2
    [ -f "$(pg_data pg1)/standby.signal" ] && sb=pg1
    [ -f "$(pg_data "$sb")/standby.signal" ] || rp_die "no standby to promote"
    other=pg1
    [ "$sb" = pg1 ] && other=pg2
    [ "$(pg_role "$other")" = primary ] && rp_die "$other is a running primary: promoting $sb would make two"
    pg_as "$PG_BIN/pg_ctl" -D "$(pg_data "$sb")" -w -t 30 promote >/dev/null
    say_ms "$t0" "$sb promoted: $(pg_role "$sb")" ;;
rejoin)
    # rejoin NAME: a PostgreSQL node that is down comes back as a standby of the other one
    if (($# != 1)) || { [ "$1" != pg1 ] && [ "$1" != pg2 ]; }; then rp_die "usage: ha.sh rejoin pg1|pg2"; fi
    other=pg2
    [ "$1" = pg2 ] && other=pg1
    [ "$(pg_role "$other")" = primary ] || rp_die "$other is not a running primary"
    t0=$(date +%s%N)
    stop_pg "$1"
    pg_make_standby "$1" "$other"
    pg_start_node "$1"
    say_ms "$t0" "$1 is a standby of $other again: $(pg_role "$1")" ;;
wipe)
    "$0" stop
    if [ -L "$HA/pg" ]; then rm -rf "$(readlink "$HA/pg")"; fi
    rm -rf "$HA" ;;
*)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2 ;;
esac
