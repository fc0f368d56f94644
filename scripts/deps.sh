#!/usr/bin/env bash
# Installs what Rampart needs to build and test, idempotently: Debian packages (only when one is
# missing, so a second run takes a second) and FerretDB (built once from the Go module proxy and
# cached, see scripts/ferretdb.sh). Run as root on Debian 12.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PACKAGES=(
    build-essential cmake ninja-build pkg-config clang clang-format libclang-rt-14-dev curl
    postgresql postgresql-client libpq-dev
    rabbitmq-server librabbitmq-dev
    libmongoc-dev libbson-dev
    libmicrohttpd-dev libcurl4-openssl-dev libsodium-dev libpcre2-dev libzstd-dev libarchive-dev libcmocka-dev
    python3 python3-aiosmtpd python3-httpbin nginx-light wrk
    libglib2.0-dev python3-psycopg2 python3-pymongo
    python3-pytest python3-requests python3-venv haproxy chromium gdb
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed'; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    rp_say "installing Debian packages: ${missing[*]}"
    [ "$(id -u)" = 0 ] || rp_die "installing packages needs root (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The packages' own init scripts must not start system-wide servers: ours run privately.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    rp_say "Debian packages: all ${#PACKAGES[@]} present"
fi

# Node.js runs the browser tests (Playwright's client, npm `playwright-core`, driving Debian's
# chromium): Debian's packages when the machine has no node of its own.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    rp_say "installing Node.js (Debian packages nodejs, npm)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

"$RP_ROOT/scripts/ferretdb.sh" >/dev/null
