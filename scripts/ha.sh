#!/usr/bin/env bash
# The HA topology of Rampart on one machine, all on loopback, all state under .run/ha/
# (issue #9 item 1): a PostgreSQL primary + synchronous streaming standby, a 3-node RabbitMQ
# cluster, two FerretDB instances on that PostgreSQL pair, HAProxy in front of two dashboards
# (and of the two FerretDB), and two copies of every service. Its own ports (26000-29999),
# never the dev servers' (55xxx/57017) nor the test command's (16xxx/18017).
#
#   scripts/ha.sh start          start everything (idempotent), wait until ready, print the table
#   scripts/ha.sh stop           clean stop of everything it started, then SIGKILL leftovers
#   scripts/ha.sh status         the table: name, pid, port, state
#   scripts/ha.sh env            shell exports for tests (RAMPART_HA_*)
#   scripts/ha.sh kill NAME      SIGKILL one process, like a crash (names: see status)
#   scripts/ha.sh restart NAME   stop (clean) then start one process
#   scripts/ha.sh promote        pg_ctl promote the standby (pg2; pg1 after a rejoin)
#   scripts/ha.sh rejoin pg1     make a stopped PostgreSQL node a standby of the other (base backup)
#   scripts/ha.sh cut NAME       cut a process in the network namespace off the network (worker2)
#   scripts/ha.sh heal NAME      reconnect it
#   scripts/ha.sh wipe           stop, then delete .run/ha
#
# RP_BUILD_DIR (default build/): where the Rampart binaries are, e.g. build-asan.
# RAMPART_HA_LOG_LEVEL: every service's log level (default: info for workers, warn for the rest).
#
# RAMPART_HA_NETNS=auto|on|off (default auto: on when root and `ip netns add` works): worker2
# runs in its own network namespace rpha<BASE>, joined to the host by a veth pair (host side
# 10.231.X.1, namespace side 10.231.X.2, X = BASE/1000 % 250); every server also listens on
# 10.231.X.1, so `cut worker2` takes that worker off the network while the rest keeps running.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

HA=$RP_RUN/ha
PIDS=$HA/pids
LOGS=$HA/logs
PG_BIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | { grep -v '\*' || true; } | sort -V | tail -1)
FERRET_BIN=
BIN=${RP_BUILD_DIR:-$RP_ROOT/build} # the Rampart binaries (RP_BUILD_DIR: e.g. a sanitizer build)

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

# ---- network namespace (RAMPART_HA_NETNS) -----------------------------------------------------
# Decided at `start` and remembered in $HA/netns (the namespace's name) until `stop`, so every
# other command sees the topology as it was started.
NETNS_MODE=${RAMPART_HA_NETNS:-auto}
NS=rpha$BASE
NS_X=$((BASE / 1000 % 250))
NS_HOST_IP=10.231.$NS_X.1 # the host side: every server listens here too
NS_IP=10.231.$NS_X.2      # the namespace side: the address of its processes
NS_NET=10.231.$NS_X.0/30
VETH_H=${NS}h
VETH_N=${NS}n
NS_PROCS=(worker2) # the processes that run in the namespace (what `cut` and `heal` accept)
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
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -e "$HA" -e "$BIN/" -e "$(pg_dir)" && return 0
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

# ---- network namespace ------------------------------------------------------------------------
ns_on() { [ -s "$HA/netns" ]; }
ns_exists() { [ -e "/run/netns/$NS" ]; }
in_ns() { # in_ns NAME: NAME runs in the namespace
    local p
    ns_on || return 1
    for p in "${NS_PROCS[@]}"; do [ "$p" = "$1" ] && return 0; done
    return 1
}
host_of() { if in_ns "$1"; then echo "$NS_IP"; else echo 127.0.0.1; fi; }
ns_cut() { # the namespace side of the veth is down
    ns_exists && ! ip -n "$NS" -o link show "$VETH_N" 2>/dev/null | grep -q '[<,]UP[,>]'
}
ns_decide() { # at start: on or off, from RAMPART_HA_NETNS (dies when `on` cannot be had)
    local want=on had=off created='' n
    ns_on && had=on
    case $NETNS_MODE in
    off) want=off ;;
    on | auto)
        if ! ns_exists; then
            if [ "$(id -u)" != 0 ]; then
                want=off
            elif ip netns add "$NS" 2>/dev/null; then
                created=1
            else
                want=off
            fi
            [ "$want:$NETNS_MODE" = off:on ] && rp_die "RAMPART_HA_NETNS=on: cannot create the network namespace $NS ('ip netns add' needs root and netns support)"
        fi ;;
    *) rp_die "RAMPART_HA_NETNS must be auto, on or off (not '$NETNS_MODE')" ;;
    esac
    if [ "$want" != "$had" ]; then
        for n in "${ALL[@]}"; do
            owned "$(pid_now "$n")" || continue
            [ -z "$created" ] || ip netns del "$NS" 2>/dev/null || true
            rp_die "the topology runs with its network namespace $had: stop it first (scripts/ha.sh stop)"
        done
    fi
    if [ "$want" = on ]; then echo "$NS" >"$HA/netns"; else ns_down; fi
}
ns_up() { # create (or reuse) the namespace and the veth pair, both sides up
    ns_on || return 0
    ns_exists || ip netns add "$NS"
    if ! ip link show "$VETH_H" >/dev/null 2>&1; then
        ip link add "$VETH_H" type veth peer name "$VETH_N" netns "$NS"
    fi
    ip addr replace "$NS_HOST_IP/30" dev "$VETH_H"
    ip link set "$VETH_H" up
    ip -n "$NS" link set lo up
    ip -n "$NS" addr replace "$NS_IP/30" dev "$VETH_N"
    ip -n "$NS" link set "$VETH_N" up
}
ns_down() { # remove the namespace (which removes the veth pair) and the state file
    if ns_exists; then ip netns del "$NS" 2>/dev/null || true; fi
    if ip link show "$VETH_H" >/dev/null 2>&1; then ip link del "$VETH_H" 2>/dev/null || true; fi
    rm -f "$HA/netns"
}

# ---- PostgreSQL: pg1 primary, pg2 standby made with pg_basebackup -R ------------------------
# Runs as `postgres`; when .run is not reachable by that user the data lives in /var/tmp and
# .run/ha/pg is a link to it (as in servers.sh).
pg_dir() { echo "$HA/pg"; }
pg_as() { runuser -u postgres -- "$@"; }
pg_data() { echo "$(pg_dir)/$1/data"; }
pg_prepare_dir() { rp_pg_prepare_dir "$(pg_dir)" rampart-ha-pg; }
pg_conf() { # pg_conf NAME: the settings that differ per node
    local d
    d=$(pg_dir)/$1
    mkdir -p "$d/sock" && chown postgres:postgres "$d/sock"
    cat <<CONF
# rampart ha.sh ($1)
include_if_exists 'ha-net.conf'
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
# Synchronous replication while a standby streams: a commit returns once the standby has the WAL,
# so promoting it loses no committed transaction (as CloudNativePG's synchronous standby in
# deploy/k8s). With no standby (before it is made, after a promotion) the primary runs
# asynchronous until one (re)joins, as Patroni's non-strict synchronous mode does: otherwise
# every commit would wait for a standby that is not there. ALTER SYSTEM writes no WAL, so it
# works on a primary whose commits are waiting.
pg_sync() { # pg_sync NAME on|off: set NAME's synchronous_standby_names ('*' or empty)
    local v=''
    [ "$2" = on ] && v='*'
    "$PG_BIN/psql" -h 127.0.0.1 -p "${PORT[$1]}" -U postgres -d postgres -qtAc \
        "ALTER SYSTEM SET synchronous_standby_names = '$v'" -c "SELECT pg_reload_conf()" >/dev/null
}
pg_streaming() { # pg_streaming PRIMARY: a standby streams from it
    [ "$("$PG_BIN/psql" -h 127.0.0.1 -p "${PORT[$1]}" -U postgres -d postgres -qtAc \
        "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'" 2>/dev/null)" -ge 1 ] 2>/dev/null
}
pg_sync_when_streaming() { # pg_sync_when_streaming PRIMARY: synchronous once a standby streams
    for _ in $(seq 300); do
        if pg_streaming "$1"; then pg_sync "$1" on; return 0; fi
        sleep 0.1
    done
    rp_die "no standby streams from $1 after 30 s: left asynchronous"
}
pg_net_conf() { # pg_net_conf NAME: listen_addresses (+ the host side of the veth) and pg_hba
    local data hba line
    data=$(pg_data "$1")
    line="include_if_exists 'ha-net.conf'"
    # the include must be the last word on listen_addresses (a node made by pg_basebackup has
    # the conf of the other one, then its own block; older data directories had the setting)
    if [ "$(grep -E "^(listen_addresses|include_if_exists 'ha-net.conf')" "$data/postgresql.conf" | tail -1)" != "$line" ]; then
        echo "$line" >>"$data/postgresql.conf"
    fi
    if ns_on; then
        echo "listen_addresses = '127.0.0.1,$NS_HOST_IP'" >"$data/ha-net.conf"
        hba="host all all $NS_NET trust"
        grep -qxF "$hba" "$data/pg_hba.conf" || echo "$hba" >>"$data/pg_hba.conf"
    else
        echo "listen_addresses = '127.0.0.1'" >"$data/ha-net.conf"
    fi
    chown postgres:postgres "$data/ha-net.conf"
}
pg_wait_reaped() { # pg_wait_reaped NAME: wait until a killed postmaster of NAME is reaped
    # A postmaster killed with -9 is a zombie until init reaps it (measured: 1.4 s here), and
    # PostgreSQL takes the pid in its lock files (postmaster.pid, the socket's .lock) for a
    # running server until then: a `restart` or `rejoin` right after `kill` would fail.
    local f pid
    for f in "$(pg_data "$1")/postmaster.pid" "$(pg_dir)/$1"/sock/.s.PGSQL.*.lock; do
        pid=$(head -1 "$f" 2>/dev/null) || continue
        [ -n "$pid" ] || continue
        for _ in $(seq 100); do
            if [ -e "/proc/$pid" ] && ! alive "$pid"; then sleep 0.1; else break; fi
        done
    done
}
pg_start_node() {
    local n=$1 data
    data=$(pg_data "$n")
    if alive "$(pg_pid "$n")"; then return 0; fi
    pg_wait_reaped "$n"
    pg_net_conf "$n"
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
synchronous_commit = on
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
    pg_sync pg1 off # until pg2 streams (pg_sync_when_streaming)
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
    # written at every start: the second listener follows the network namespace setting
    {
        echo "listeners.tcp.default = 127.0.0.1:${PORT[$n]}"
        if ns_on; then echo "listeners.tcp.2 = $NS_HOST_IP:${PORT[$n]}"; fi
        cat <<CONF
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = warning
heartbeat = 5
loopback_users = none
cluster_partition_handling = pause_minority
CONF
    } >"$d/rabbitmq.conf"
    if [ ! -f "$d/enabled_plugins" ]; then
        echo '[].' >"$d/enabled_plugins"
        : >"$d/rabbitmq-env.conf"
    fi
    # TCP_USER_TIMEOUT (Linux: IPPROTO_TCP 6, option 18) of 5 s on client connections: data
    # the broker sent (deliveries, heartbeats) unacknowledged for 5 s closes the connection,
    # so the unacked jobs of a worker cut off the network are requeued about 5 s after the
    # cut. The AMQP heartbeat alone took 11-16 s (measured, heartbeat 5 s).
    cat >"$d/advanced.config" <<'ERL'
[{rabbit, [{tcp_listen_options, [{backlog, 128}, {nodelay, true}, {linger, {true, 0}},
                                 {exit_on_close, false},
                                 {raw, 6, 18, <<5000:32/native>>}]}]}].
ERL
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
    local cfg=$HA/haproxy.cfg ns_bind=(-e '/^ *@NS_BIND_API@$/d' -e '/^ *@NS_BIND_MONGO@$/d')
    if ns_on; then
        ns_bind=(-e "s|@NS_BIND_API@|bind $NS_HOST_IP:${PORT[haproxy]}|"
            -e "s|@NS_BIND_MONGO@|bind $NS_HOST_IP:${PORT[mongo_lb]}|")
    fi
    sed "${ns_bind[@]}" -e "s|@SOCK@|$HA/haproxy.sock|" -e "s|@LB@|${PORT[haproxy]}|" \
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
    local n=$1 s=${1%[12]} host=127.0.0.1 pg=$PG_URL amqp=$AMQP_URLS mongo=$MONGO_URL lb=$LB_URL
    local smtp=smtp://127.0.0.1:$SMTP_PORT exec=() level=${RAMPART_HA_LOG_LEVEL:-warn}
    alive "$(pid_of "$n")" && return 0
    # workers log at info: their few info lines (reconnects, "working again") are what a
    # failing fault window's report needs to tell where a worker stopped
    [ -n "${RAMPART_HA_LOG_LEVEL:-}" ] || [ "$s" != worker ] || level=info
    secrets
    if in_ns "$n"; then
        # in the namespace: the servers are on the host side of the veth; `ip netns exec`
        # execs the command, so $! is the service's own pid
        host=$NS_IP exec=(ip netns exec "$NS")
        pg=${pg//127.0.0.1/$NS_HOST_IP} amqp=${amqp//127.0.0.1/$NS_HOST_IP}
        mongo=${mongo//127.0.0.1/$NS_HOST_IP} lb=${lb//127.0.0.1/$NS_HOST_IP}
        smtp=${smtp//127.0.0.1/$NS_HOST_IP}
    fi
    # a worker thread stuck for 25 s turns /healthz 503, naming the call, and the worker exits
    # 25 s later so that its jobs go to the other one, within the fault tests' settle time (the
    # default, 2 min, is for production). A call within its own bound comes back before the
    # exit: a result write waits at most 30 s for MongoDB, so /healthz may say 503 for 5 s.
    RAMPART_HA_OWNER=$HA RAMPART_INSTANCE=ha-$n RAMPART_HTTP_LISTEN=$host:${PORT[$n]} \
        RAMPART_PG_URL=$pg RAMPART_AMQP_URLS=$amqp RAMPART_MONGO_URL=$mongo \
        RAMPART_PUBLIC_URL=$lb RAMPART_TRUST_PROXY=true RAMPART_READY_CHECK_INTERVAL=1s \
        RAMPART_SMTP_URL=$smtp RAMPART_LOG_LEVEL=$level RAMPART_WORKER_STALL_TIMEOUT=25s \
        nohup "${exec[@]}" "$BIN/$s/rampart-$s" >>"$LOGS/$n.log" 2>&1 </dev/null &
    echo $! >"$PIDS/$n.pid"
}
svc_url() { echo "http://$(host_of "$1"):${PORT[$1]}/readyz"; }
svc_ready() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$(svc_url "$1")")" = 200 ]; }
wait_svc() {
    local n=$1
    for _ in $(seq 600); do
        svc_ready "$n" && return 0
        alive "$(pid_of "$n")" || { tail -5 "$LOGS/$n.log" >&2; rp_die "$n exited (log: $LOGS/$n.log)"; }
        sleep 0.1
    done
    rp_die "$n not ready within 60 s: $(curl -s -m 2 "$(svc_url "$n")") (log: $LOGS/$n.log)"
}
stop_svc() { kill_wait "$(pid_of "$1")" 40; rm -f "$PIDS/$1.pid"; }

# ---- one name: start/stop/kill --------------------------------------------------------------
is_svc() { case ${1%[12]} in dashboard | scheduler | worker | mailer | connector) return 0 ;; esac; return 1; }
start_one() {
    if is_svc "$1"; then start_svc "$1"; wait_svc "$1"; else "start_$1"; fi
    case $1 in dashboard1 | dashboard2) wait_lb_up "$1" ;; esac
}
# A restarted dashboard counts as back once HAProxy sends it requests again (2 passed checks,
# 500 ms apart), not when its own /readyz turns 200: a rolling update that stops the other copy
# in between leaves HAProxy with no server (measured: 6 requests answered 503).
wait_lb_up() {
    alive "$(pid_of haproxy)" || return 0
    for _ in $(seq 100); do
        [ "$(haproxy_state "dashboards/$1")" = UP ] && return 0
        sleep 0.1
    done
    rp_die "HAProxy does not see $1 UP 10 s after it became ready"
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
    if in_ns "$n" && ns_cut; then echo "cut (network down)"; return; fi
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
    ns_decide
    if ns_on; then
        t0=$(date +%s%N); ns_up
        say_ms "$t0" "network namespace $NS up: host $NS_HOST_IP <-> $NS_IP (${NS_PROCS[*]})"
    fi
    t0=$(date +%s%N); start_pg1; start_pg2
    for _ in $(seq 100); do pg_ready pg2 && break; sleep 0.1; done
    if [ "$(pg_role pg1)" = primary ]; then pg_sync_when_streaming pg1; fi
    say_ms "$t0" "postgresql primary ${PORT[pg1]} + synchronous standby ${PORT[pg2]} up"
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
    ns_down
    rp_clean_mongoc_shm
    say_ms "$t0" "HA topology stopped" ;;
status) table ;;
env)
    secrets
    ns='' target=127.0.0.1 cuttable=''
    if ns_on; then ns=$NS target=$NS_HOST_IP cuttable=${NS_PROCS[*]}; fi
    workers=''
    for w in worker1 worker2; do
        h=127.0.0.1
        if ns_on && in_ns "$w"; then h=$NS_IP; fi
        workers+="${workers:+,}$w=http://$h:${PORT[$w]}"
    done
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
export RAMPART_HA_SMTP_PORT='$SMTP_PORT'
export RAMPART_HA_NETNS='$ns'
export RAMPART_HA_TARGET_IP='$target'
export RAMPART_HA_CUTTABLE='$cuttable'
export RAMPART_HA_WORKERS='$workers'
export RAMPART_HA_LOGS='$LOGS'
ENV
    ;;
cut | heal)
    (($# == 1)) || rp_die "usage: ha.sh $cmd NAME"
    known "$1"
    ns_on || rp_die "no network namespace (RAMPART_HA_NETNS=off, or not root): nothing can be cut"
    in_ns "$1" || rp_die "$1 does not run in the network namespace $NS (only: ${NS_PROCS[*]})"
    ns_exists || rp_die "the network namespace $NS does not exist (is the topology started?)"
    if [ "$cmd" = cut ]; then
        ip -n "$NS" link set "$VETH_N" down
        rp_say "$1 cut off the network: $VETH_N ($NS_IP) down in $NS"
    else
        ip -n "$NS" link set "$VETH_N" up
        rp_say "$1 back on the network: $VETH_N ($NS_IP) up in $NS"
    fi ;;
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
    # its configuration came from the old primary (pg_basebackup): no standby yet, asynchronous
    pg_sync "$sb" off
    say_ms "$t0" "$sb promoted: $(pg_role "$sb") (asynchronous until a standby rejoins)" ;;
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
    pg_sync_when_streaming "$other"
    say_ms "$t0" "$1 is a synchronous standby of $other again: $(pg_role "$1")" ;;
wipe)
    "$0" stop
    if [ -L "$HA/pg" ]; then rm -rf "$(readlink "$HA/pg")"; fi
    rm -rf "$HA" ;;
-h | --help | help)
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' ;;
*)
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
    exit 2 ;;
esac
