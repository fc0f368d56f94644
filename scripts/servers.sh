#!/usr/bin/env bash
# Starts and stops the real servers Rampart runs against on one machine, on loopback, with all
# their state under .run/ (ignored by git): PostgreSQL 15, RabbitMQ 3.10 and FerretDB.
#
#   scripts/servers.sh start [postgres|rabbitmq|ferretdb ...]   start (idempotent), wait until ready
#   scripts/servers.sh stop [NAME ...]                           clean stop (all when no name)
#   scripts/servers.sh kill NAME                                 SIGKILL, like a crash
#   scripts/servers.sh restart NAME                              stop then start
#   scripts/servers.sh status                                    one line per server
#   scripts/servers.sh env                                       shell exports for clients and tests
#   scripts/servers.sh wipe                                      stop all and delete their data
#   scripts/servers.sh vhost add|delete NAME                    a private RabbitMQ vhost (tests)
#   scripts/servers.sh rabbitmqctl ARGS...                      rabbitmqctl on the local node
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ALL=(postgres rabbitmq ferretdb)
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

# ---- PostgreSQL -------------------------------------------------------------------------
# PostgreSQL refuses to run as root, so it runs as the `postgres` user. Its directory must be
# reachable by that user; when the checkout sits under a private directory (e.g. /root), the
# data lives in /var/tmp and .run/postgres is a link to it.
pg_dir() { echo "$RP_RUN/postgres"; }
pg_as() { runuser -u postgres -- "$@"; }
pg_ctl_() { pg_as "$PG_BIN/pg_ctl" -D "$(pg_dir)/data" "$@"; }

pg_prepare_dir() { rp_pg_prepare_dir "$(pg_dir)" rampart-pg; }

start_postgres() {
    [ -n "$PG_BIN" ] || rp_die "PostgreSQL is not installed (run scripts/deps.sh)"
    pg_prepare_dir
    local d
    d=$(pg_dir)
    if [ ! -f "$d/data/PG_VERSION" ]; then
        pg_as "$PG_BIN/initdb" -D "$d/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
        mkdir -p "$d/sock" && chown postgres:postgres "$d/sock"
        cat >>"$d/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $RP_PG_PORT
unix_socket_directories = '$d/sock'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = replica
max_wal_senders = 10
hot_standby = on
logging_collector = off
log_min_messages = warning
CONF
    fi
    if pg_ctl_ status >/dev/null 2>&1; then return 0; fi
    pg_ctl_ -l "$d/server.log" -w -t 60 start >/dev/null || {
        tail -20 "$d/server.log" >&2
        rp_die "PostgreSQL did not start (log: $d/server.log)"
    }
    "$PG_BIN/psql" -h 127.0.0.1 -p "$RP_PG_PORT" -U postgres -d postgres -qtAc \
        "SELECT 1 FROM pg_database WHERE datname='rampart'" | grep -q 1 ||
        "$PG_BIN/createdb" -h 127.0.0.1 -p "$RP_PG_PORT" -U postgres rampart
}

stop_postgres() {
    [ -f "$(pg_dir)/data/PG_VERSION" ] || return 0
    pg_ctl_ status >/dev/null 2>&1 || return 0
    pg_ctl_ -m fast -w -t 60 stop >/dev/null
}

kill_postgres() {
    local pid
    pid=$(head -1 "$(pg_dir)/data/postmaster.pid" 2>/dev/null) || return 0
    kill -9 "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    sleep 0.2
}

status_postgres() { pg_ctl_ status >/dev/null 2>&1; }

# ---- RabbitMQ ---------------------------------------------------------------------------
# As root without systemd: the /usr/lib script (the /usr/sbin wrapper switches user), with a
# private node name, ports, cookie (HOME), data and log directories.
rmq_env() {
    local d=$RP_RUN/rabbitmq
    export HOME=$d/home RABBITMQ_NODENAME=rampart@localhost
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$RP_AMQP_PORT
    export RABBITMQ_DIST_PORT=$RP_AMQP_DIST_PORT ERL_EPMD_PORT=$RP_EPMD_PORT
    export RABBITMQ_MNESIA_BASE=$d/mnesia RABBITMQ_LOG_BASE=$d/log
    export RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins
    export RABBITMQ_PID_FILE=$d/rabbit.pid RABBITMQ_CONF_ENV_FILE=$d/rabbitmq-env.conf
    export RABBITMQ_ADVANCED_CONFIG_FILE=$d/advanced.config
}
rmqctl() { (rmq_env && /usr/lib/rabbitmq/bin/rabbitmqctl -n rampart@localhost "$@"); }

start_rabbitmq() {
    [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || rp_die "RabbitMQ is not installed (run scripts/deps.sh)"
    local d=$RP_RUN/rabbitmq
    mkdir -p "$d/home" "$d/mnesia" "$d/log"
    if [ ! -f "$d/rabbitmq.conf" ]; then
        cat >"$d/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$RP_AMQP_PORT
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = warning
heartbeat = 10
CONF
        echo '[].' >"$d/enabled_plugins"
        : >"$d/rabbitmq-env.conf"
        echo '[].' >"$d/advanced.config"
    fi
    if rp_port_open "$RP_AMQP_PORT" && rmqctl status >/dev/null 2>&1; then return 0; fi
    (rmq_env && /usr/lib/rabbitmq/bin/rabbitmq-server -detached >/dev/null 2>&1)
    rp_wait_port "$RP_AMQP_PORT" 90 || {
        tail -20 "$d"/log/*.log >&2 2>/dev/null || true
        rp_die "RabbitMQ did not open port $RP_AMQP_PORT (logs: $d/log)"
    }
    rmqctl await_startup -t 60 >/dev/null 2>&1 || rp_die "RabbitMQ did not finish starting"
}

rabbit_pid() { cat "$RP_RUN/rabbitmq/rabbit.pid" 2>/dev/null || true; }

stop_rabbitmq() {
    local pid
    pid=$(rabbit_pid)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || { stop_epmd; return 0; }
    rmqctl stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    stop_epmd
}

kill_rabbitmq() {
    local pid
    pid=$(rabbit_pid)
    [ -n "$pid" ] || return 0
    kill -9 "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}

stop_epmd() {
    (rmq_env && epmd -port "$RP_EPMD_PORT" -kill >/dev/null 2>&1) || true
}

status_rabbitmq() { local pid; pid=$(rabbit_pid); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && rp_port_open "$RP_AMQP_PORT"; }

# ---- FerretDB ---------------------------------------------------------------------------
start_ferretdb() {
    local d=$RP_RUN/ferretdb bin
    bin=$("$RP_ROOT/scripts/ferretdb.sh")
    mkdir -p "$d/data"
    if status_ferretdb; then return 0; fi
    nohup "$bin" --handler=sqlite --sqlite-url="file:$d/data/" \
        --listen-addr="127.0.0.1:$RP_MONGO_PORT" --telemetry=disable --debug-addr=- \
        --state-dir="$d" --log-level=warn >"$d/ferretdb.log" 2>&1 </dev/null &
    echo $! >"$d/ferretdb.pid"
    rp_wait_port "$RP_MONGO_PORT" 30 || {
        tail -20 "$d/ferretdb.log" >&2
        rp_die "FerretDB did not open port $RP_MONGO_PORT (log: $d/ferretdb.log)"
    }
}

ferret_pid() { cat "$RP_RUN/ferretdb/ferretdb.pid" 2>/dev/null || true; }
status_ferretdb() { local pid; pid=$(ferret_pid); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

stop_ferretdb() {
    local pid
    pid=$(ferret_pid)
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$RP_RUN/ferretdb/ferretdb.pid"
}
kill_ferretdb() {
    local pid
    pid=$(ferret_pid)
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    rm -f "$RP_RUN/ferretdb/ferretdb.pid"
}

# ---- commands ---------------------------------------------------------------------------
print_env() {
    cat <<ENV
export RAMPART_TEST_PG='host=127.0.0.1 port=$RP_PG_PORT dbname=rampart user=postgres connect_timeout=5 target_session_attrs=read-write'
export RAMPART_TEST_AMQP='amqp://guest:guest@127.0.0.1:$RP_AMQP_PORT/'
export RAMPART_TEST_MONGO='mongodb://127.0.0.1:$RP_MONGO_PORT/'
export RAMPART_TEST_SERVERS='$RP_ROOT/scripts/servers.sh'
export RAMPART_PG_URL="\$RAMPART_TEST_PG"
export RAMPART_AMQP_URLS="\$RAMPART_TEST_AMQP"
export RAMPART_MONGO_URL='mongodb://127.0.0.1:$RP_MONGO_PORT/rampart'
ENV
}

names() {
    if (($# == 0)); then printf '%s\n' "${ALL[@]}"; return; fi
    for n in "$@"; do
        case $n in postgres | rabbitmq | ferretdb) echo "$n" ;;
        *) rp_die "unknown server '$n' (expected: ${ALL[*]})" ;; esac
    done
}

cmd=${1:-}
shift || true
case $cmd in
start)
    for n in $(names "$@"); do
        t0=$(date +%s%N)
        "start_$n"
        ms=$((($(date +%s%N) - t0) / 1000000))
        rp_say "$n up ($((ms / 1000)).$((ms % 1000 / 100))s)"
    done ;;
stop)
    for n in $(names "$@"); do "stop_$n"; done ;;
kill)
    (($# == 1)) || rp_die "usage: servers.sh kill NAME"
    "kill_$(names "$1")" ;;
restart)
    for n in $(names "$@"); do "stop_$n"; "start_$n"; done ;;
status)
    rc=0
    for n in "${ALL[@]}"; do
        if "status_$n"; then echo "$n: running"; else echo "$n: stopped"; rc=3; fi
    done
    exit $rc ;;
env) print_env ;;
vhost)
    # vhost add|delete NAME: a private RabbitMQ virtual host for one test run (its queues, such
    # as rampart.mailer, are then its own even on a broker other tests share)
    (($# == 2)) || rp_die "usage: servers.sh vhost add|delete NAME"
    case $1 in
    add) rmqctl -q add_vhost "$2" >/dev/null
         rmqctl -q set_permissions -p "$2" guest '.*' '.*' '.*' >/dev/null ;;
    delete) rmqctl -q delete_vhost "$2" >/dev/null 2>&1 || true ;;
    *) rp_die "usage: servers.sh vhost add|delete NAME" ;;
    esac ;;
rabbitmqctl)
    # e.g. rabbitmqctl purge_queue -p VHOST rampart.jobs.LOCATION (the restore runbook's step)
    rmqctl "$@" ;;
wipe)
    for n in "${ALL[@]}"; do "stop_$n"; done
    if [ -L "$RP_RUN/postgres" ]; then rm -rf "$(readlink "$RP_RUN/postgres")"; fi
    rm -rf "$RP_RUN/postgres" "$RP_RUN/rabbitmq" "$RP_RUN/ferretdb" ;;
*)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    [ -z "$cmd" ] && exit 2 || exit 2 ;;
esac
