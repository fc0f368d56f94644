#!/usr/bin/env bash
# Builds FerretDB (the MongoDB-wire-compatible server used in tests) from the Go module proxy
# and caches the binary under $RP_CACHE; prints the binary's path. A plain `go install` binary
# panics at start (missing build/version/version.txt, upstream issue #2982), so the module is
# copied, the version file written, then built. v1.24.1 is preferred; the proxy here has refused
# it on some machines, so v1.24.0 (same wire behaviour) is the fallback.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

for v in v1.24.1 v1.24.0; do
    if [ -x "$RP_CACHE/ferretdb-$v" ]; then
        echo "$RP_CACHE/ferretdb-$v"
        exit 0
    fi
done

command -v go >/dev/null || rp_die "Go is needed to build FerretDB (go1.21 or newer on PATH)"
mkdir -p "$RP_CACHE"
export GOFLAGS=-modcacherw
for v in v1.24.1 v1.24.0; do
    rp_say "downloading FerretDB $v from the Go module proxy"
    if ! json=$(go mod download -json "github.com/FerretDB/FerretDB@$v" 2>&1); then
        rp_say "FerretDB $v not available: $(echo "$json" | grep -o '"Error": "[^"]*' | head -1)"
        continue
    fi
    dir=$(echo "$json" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    [ -d "$dir" ] || { rp_say "no module dir for $v"; continue; }
    src=$(mktemp -d)
    trap 'rm -rf "$src"' EXIT
    cp -r "$dir/." "$src/"
    chmod -R u+w "$src"
    echo "$v" > "$src/build/version/version.txt"
    rp_say "building FerretDB $v (about a minute the first time)"
    (cd "$src" && go build -o "$RP_CACHE/ferretdb-$v.tmp" ./cmd/ferretdb)
    mv "$RP_CACHE/ferretdb-$v.tmp" "$RP_CACHE/ferretdb-$v"
    echo "$RP_CACHE/ferretdb-$v"
    exit 0
done
rp_die "could not download FerretDB v1.24.1 or v1.24.0 from the Go module proxy ($(go env GOPROXY))"
