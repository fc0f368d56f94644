# Shared helpers for Rampart's scripts (sourced, not run): paths, logging, waiting.
# Everything a script creates lives under $RP_RUN (the repo's .run/, ignored by git) or under
# $RP_CACHE (~/.cache/rampart: slow-to-build tools such as FerretDB, kept across clones).

RP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RP_RUN=${RAMPART_RUN_DIR:-$RP_ROOT/.run}
RP_CACHE=${RAMPART_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rampart}

# Ports of the local servers (loopback only). Override with the environment if they collide.
RP_PG_PORT=${RAMPART_PG_PORT:-55432}
RP_AMQP_PORT=${RAMPART_AMQP_PORT:-55672}
RP_AMQP_DIST_PORT=${RAMPART_AMQP_DIST_PORT:-55673}
RP_EPMD_PORT=${RAMPART_EPMD_PORT:-54369}
RP_MONGO_PORT=${RAMPART_MONGO_PORT:-57017}

rp_say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
rp_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# rp_wait_port PORT SECONDS: wait until something accepts TCP connections on 127.0.0.1:PORT.
rp_wait_port() {
    local port=$1 secs=$2 i
    for ((i = 0; i < secs * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

rp_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# rp_pg_prepare_dir DIR TAG: create DIR for PostgreSQL's files, owned by `postgres` (PostgreSQL
# refuses to run as root). When the parent of DIR is not reachable by that user (a checkout under
# a private directory such as /root), the files live in /var/tmp/TAG-<hash of the parent> and
# DIR is a link to it. Nothing is done when DIR exists.
rp_pg_prepare_dir() {
    local d=$1 tag=$2 parent
    parent=${d%/*}
    [ -e "$d" ] && return 0
    mkdir -p "$parent"
    if runuser -u postgres -- test -x "$parent" 2>/dev/null; then
        mkdir -p "$d"
    else
        local alt
        alt=/var/tmp/$tag-$(echo "$parent" | md5sum | cut -c1-12)
        mkdir -p "$alt"
        ln -s "$alt" "$d"
    fi
    chown postgres:postgres "$d/"
}

# libmongoc keeps per-process counters in /dev/shm/mongoc-PID and removes the file at exit; a
# process killed with -9 (the fault tests do that) leaves it behind, and a later process that
# gets the same pid prints a warning to stderr at load time. Remove those of dead processes.
rp_clean_mongoc_shm() {
    local f pid
    for f in /dev/shm/mongoc-*; do
        [ -e "$f" ] || continue
        pid=${f##*/mongoc-}
        kill -0 "$pid" 2>/dev/null || rm -f "$f"
    done
}
