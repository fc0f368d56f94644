#!/usr/bin/env bash
# Validates the deployments offline (no Docker engine, no cluster): docker-compose.yml with
# Debian's docker-compose (`config`), the HAProxy config and compose scripts, and every manifest
# under deploy/k8s strictly against stored schemas (scripts/check-deploy.py): Kubernetes' from
# PyPI's kubernetes-validate, the operators' CRDs from their Go modules; then `kustomize build`.
# Installs what it needs once (cached under ~/.cache/rampart/deploy-check). One PASS/FAIL line a
# check; exit 1 on any.
# Usage: scripts/check-deploy.sh [DIR]   (DIR: a tree with docker-compose.yml and deploy/;
#                                         default the repository, another to test a broken copy)
set -uo pipefail
. "$(dirname "$0")/lib.sh"

SRC=$(cd "${1:-$RP_ROOT}" && pwd)
CACHE=$RP_CACHE/deploy-check
K8S_VERSION=${RAMPART_K8S_VERSION:-1.32.0}
KV_VERSION=1.37.0
# kustomize built from the Go module proxy: v5.0.3 is the newest whose go.mod needs only Go 1.19
# (Debian 12's golang-go); kubectl may be missing, so it is not used.
KUSTOMIZE_VERSION=v5.0.3
# The operators whose resources deploy/k8s uses, pinned: their CRDs are the schemas.
OPERATORS=(
    "github.com/cloudnative-pg/cloudnative-pg@v1.27.1 config/crd/bases/postgresql.cnpg.io_clusters.yaml"
    "github.com/rabbitmq/cluster-operator/v2@v2.16.0 config/crd/bases/rabbitmq.com_rabbitmqclusters.yaml"
    "github.com/mongodb/mongodb-kubernetes-operator@v0.9.0 config/crd/bases/mongodbcommunity.mongodb.com_mongodbcommunity.yaml"
    "github.com/kedacore/keda/v2@v2.17.2 config/crd/bases/keda.sh_scaledobjects.yaml config/crd/bases/keda.sh_triggerauthentications.yaml"
)
failures=0
pass() { printf 'PASS %s\n' "$1"; }
fail() { printf 'FAIL %s\n' "$1"; [ -z "${2:-}" ] || printf '%s\n' "$2" | head -n 20 | sed 's/^/       /'; failures=$((failures + 1)); }
t0=$(date +%s)

# --- (a) tools: Debian packages only when one is missing, the rest cached -------------------
PACKAGES=(docker-compose python3-venv haproxy)
command -v go >/dev/null || PACKAGES+=(golang-go)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    rp_say "installing Debian packages: ${missing[*]}"
    [ "$(id -u)" = 0 ] || rp_die "installing packages needs root (missing: ${missing[*]})"
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || rp_die "apt-get install ${missing[*]} failed"
fi
mkdir -p "$CACHE"
VENV=$CACHE/venv
if [ ! -f "$VENV/.kv-$KV_VERSION" ]; then
    rp_say "installing kubernetes-validate $KV_VERSION into $VENV"
    rm -rf "$VENV"
    /usr/bin/python3 -m venv "$VENV" && "$VENV/bin/pip" install -q --disable-pip-version-check \
        "kubernetes-validate==$KV_VERSION" jsonschema pyyaml >/dev/null \
        || rp_die "pip install kubernetes-validate failed"
    touch "$VENV/.kv-$KV_VERSION"
fi
SCHEMAS=$("$VENV/bin/python" -c 'import kubernetes_validate, os; print(os.path.dirname(kubernetes_validate.__file__))')/kubernetes-json-schema/v$K8S_VERSION-local-strict
[ -d "$SCHEMAS" ] || rp_die "kubernetes-validate has no schemas for $K8S_VERSION"
# Only the CRD files are kept (under $CACHE/crds); the module trees are removed after the copy.
export GOMODCACHE=$CACHE/gomod GOFLAGS=-modcacherw GO111MODULE=on GOTOOLCHAIN=local
crds=()
for entry in "${OPERATORS[@]}"; do
    read -r mod files <<<"$entry"
    keep=$CACHE/crds/$mod
    if [ ! -f "$keep/.complete" ]; then
        rp_say "downloading the Go module $mod (its CRDs)"
        dir=$(cd "$CACHE" && go mod download -json "$mod" | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin).get("Dir", ""))') \
            && [ -n "$dir" ] || rp_die "go mod download $mod failed"
        mkdir -p "$keep"
        for f in $files; do cp "$dir/$f" "$keep/" || rp_die "$mod has no $f"; done
        touch "$keep/.complete"
    fi
    for f in $files; do crds+=(--crd "$keep/${f##*/}"); done
done
KUSTOMIZE=$CACHE/bin/kustomize-$KUSTOMIZE_VERSION
if [ ! -x "$KUSTOMIZE" ]; then
    rp_say "building kustomize $KUSTOMIZE_VERSION from the Go module proxy (about a minute, once)"
    gocache=$(mktemp -d)
    (cd "$CACHE" && GOBIN=$CACHE/bin.tmp GOCACHE=$gocache \
        go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" 2>"$CACHE/kustomize-build.log") \
        || { tail -n 20 "$CACHE/kustomize-build.log" >&2; rp_die "go install kustomize $KUSTOMIZE_VERSION failed"; }
    mkdir -p "$CACHE/bin" && mv "$CACHE/bin.tmp/kustomize" "$KUSTOMIZE" && rm -rf "$CACHE/bin.tmp" "$gocache"
fi
[ ! -d "$GOMODCACHE" ] || go clean -modcache
t1=$(date +%s)

# --- (b) docker-compose.yml ------------------------------------------------------------------
# Dummies for the must-set secrets: `config` only interpolates them.
MUST_SET=(RAMPART_SECRET_KEY RAMPART_ADMIN_PASSWORD PG_PASSWORD PG_REPLICATION_PASSWORD
          MONGO_ROOT_PASSWORD MONGO_RAMPART_PASSWORD MONGO_KEYFILE RABBITMQ_PASSWORD
          RABBITMQ_ERLANG_COOKIE)
dummy_env=(RAMPART_IMAGE=rampart:check)
for v in "${MUST_SET[@]}"; do dummy_env+=("$v=dummy$v"); done
dummy_env[1]=RAMPART_SECRET_KEY=$(printf '0%.0s' {1..64})
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
compose() { (cd "$SRC" && env -u DOCKER_HOST "$@" docker-compose -f docker-compose.yml --profile backup config "${cfg_args[@]}"); }
cfg_args=(-q)
if out=$(compose "${dummy_env[@]}" 2>&1); then
    pass "compose: docker-compose -f docker-compose.yml config -q"
else
    fail "compose: docker-compose -f docker-compose.yml config -q" "$out"
fi
cfg_args=()
if compose "${dummy_env[@]}" >"$work/resolved.yml" 2>"$work/resolved.err"; then
    "$VENV/bin/python" "$RP_ROOT/scripts/check-deploy.py" compose "$work/resolved.yml" \
        --config-md "$RP_ROOT/docs/configuration.md" --rampart-image rampart:check --root "$SRC" \
        || failures=$((failures + 1))
else
    fail "compose: resolved configuration" "$(cat "$work/resolved.err")"
fi
# Each must-set secret: without it the file must refuse to load, naming it.
cfg_args=(-q)
unchecked=()
for v in "${MUST_SET[@]}"; do
    envs=()
    for e in "${dummy_env[@]}"; do [ "${e%%=*}" = "$v" ] || envs+=("$e"); done
    if out=$(compose -u "$v" "${envs[@]}" 2>&1) || ! grep -q "$v" <<<"$out"; then unchecked+=("$v"); fi
done
if ((${#unchecked[@]})); then
    fail "compose: loads without the must-set secrets: ${unchecked[*]}"
else
    pass "compose: refuses to load without any of the ${#MUST_SET[@]} must-set secrets (\${VAR:?})"
fi
if out=$(haproxy -c -q -f "$SRC/deploy/compose/haproxy.cfg" 2>&1); then
    pass "compose: haproxy -c deploy/compose/haproxy.cfg"
else
    fail "compose: haproxy -c deploy/compose/haproxy.cfg" "$out"
fi
bad=""
for f in "$SRC"/deploy/compose/*.sh; do
    [ -x "$f" ] || bad+="$f is not executable"$'\n'
    o=$(bash -n "$f" 2>&1) || bad+="$o"$'\n'
done
how="bash -n"
if command -v node >/dev/null; then
    how+=", node --check mongo-init.js"
    o=$(node --check "$SRC/deploy/compose/mongo-init.js" 2>&1) || bad+="$o"$'\n'
fi
if [ -z "$bad" ]; then pass "compose: deploy/compose scripts parse ($how)"
else fail "compose: deploy/compose scripts parse ($how)" "$bad"; fi
t2=$(date +%s)

# --- (c) deploy/k8s --------------------------------------------------------------------------
"$VENV/bin/python" "$RP_ROOT/scripts/check-deploy.py" k8s "$SRC/deploy/k8s" --schemas "$SCHEMAS" \
    "${crds[@]}" --config-md "$RP_ROOT/docs/configuration.md" || failures=$((failures + 1))
if "$KUSTOMIZE" build "$SRC/deploy/k8s" >"$work/built.yaml" 2>"$work/built.err"; then
    "$VENV/bin/python" "$RP_ROOT/scripts/check-deploy.py" built "$work/built.yaml" --schemas "$SCHEMAS" \
        "${crds[@]}" || failures=$((failures + 1))
else
    fail "k8s: kustomize build deploy/k8s" "$(cat "$work/built.err")"
fi
t3=$(date +%s)

echo "check-deploy: tools $((t1 - t0)) s, compose $((t2 - t1)) s, k8s $((t3 - t2)) s"
if ((failures)); then
    echo "check-deploy: FAILED"
    exit 1
fi
echo "check-deploy: all checks passed"
