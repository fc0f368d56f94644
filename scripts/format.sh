#!/usr/bin/env bash
# Formats the C sources with the checked-in .clang-format; `--check` only reports (used by CI).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$RP_ROOT"
mapfile -t files < <(git ls-files -co --exclude-standard '*.c' '*.h' | while read -r f; do [ -f "$f" ] && echo "$f"; done)
((${#files[@]})) || exit 0
if [ "${1:-}" = --check ]; then
    if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/rp-format.$$; then
        grep -m 20 'error:' /tmp/rp-format.$$ >&2 || true
        rm -f /tmp/rp-format.$$
        rp_die "some files are not formatted: run scripts/format.sh"
    fi
    rm -f /tmp/rp-format.$$
    rp_say "format: ${#files[@]} files clean"
else
    clang-format -i "${files[@]}"
fi
