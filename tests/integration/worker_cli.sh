#!/usr/bin/env bash
# End-to-end test of `rampart-worker run` against a real HTTP server (Debian's python3-httpbin,
# started here on a free port and stopped on exit): the documented example (examples/) fails
# exactly where it is meant to, the output and the JUnit file say what failed and why, secrets
# appear nowhere, and the exit codes are 0 / 1 / 2 as documented. Usage: worker_cli.sh BUILD_DIR
set -uo pipefail
build=${1:?usage: worker_cli.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
worker=$build/worker/rampart-worker
tmp=$(mktemp -d)
fails=0
httpbin_pid=
cleanup() { [ -n "$httpbin_pid" ] && kill "$httpbin_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then echo "PASS $what"; else echo "FAIL $what"; fails=$((fails + 1)); fi
}

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/python3 -m httpbin.core --host 127.0.0.1 --port "$port" >"$tmp/httpbin.log" 2>&1 &
httpbin_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/get" >/dev/null && break; sleep 0.1; done
base=http://127.0.0.1:$port

# 1. The documented example: two deliberate findings (one error, one warning) -> exit 1.
"$worker" run "$root/examples/httpbin.json" --env "$root/examples/httpbin.env.json" \
    --var "base=$base" --junit "$tmp/out.xml" --json "$tmp/out.json" --no-color >"$tmp/out.txt" 2>&1
rc=$?
cat "$tmp/out.txt"
check "example exits 1 (a test failed), got $rc" test "$rc" = 1
check "output names the failed assertion" grep -qF 'FAIL  $.json.slideshow.author == "Somebody Else"' "$tmp/out.txt"
check "output says why: expected vs actual" grep -qF '$.json.slideshow.author: expected "Somebody Else", got "Yours Truly"' "$tmp/out.txt"
check "output lists the warning apart" grep -qF 'WARN  size < 100' "$tmp/out.txt"
check "output shows each iteration" grep -q 'echo each slide" \[1\]' "$tmp/out.txt"
check "output shows the skipped step" grep -q 'only in production": skipped' "$tmp/out.txt"
check "JUnit XML is well-formed with 1 failure and the message" /usr/bin/python3 - "$tmp/out.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
assert r.tag == "testsuites" and r.get("failures") == "1", r.attrib
f = r.findall(".//failure")
assert len(f) == 1 and 'expected "Somebody Else", got "Yours Truly"' in f[0].text, f
assert len(r.findall(".//skipped")) == 1
assert "size < 100" in r.find(".//system-out").text
PY
check "JSON results parse, status failed, 8 step entries" /usr/bin/python3 -c "
import json,sys; d=json.load(open('$tmp/out.json')); assert len(d)==1 and d[0]['status']=='failed' and len(d[0]['steps'])==8, d[0]['status']"
for secret in 'correct horse battery staple' 'tok-3f9a1c7e2b'; do
    check "secret \"${secret:0:7}...\" appears nowhere (output, JUnit, JSON)" \
        bash -c "! grep -qF '$secret' '$tmp/out.txt' '$tmp/out.xml' '$tmp/out.json'"
done

# 2. A passing test -> exit 0; with --repeat and --concurrency.
cat >"$tmp/pass.json" <<JSON
{"name": "ping", "steps": [{"name": "get", "request": {"url": "\${base}/get?x=1"},
  "assert": ["status == 200", "\$.args.x == \"1\"", "time < 5000"]}]}
JSON
"$worker" run "$tmp/pass.json" --var "base=$base" --repeat 20 --concurrency 5 >"$tmp/pass.txt" 2>&1
rc=$?
check "passing test x20 exits 0, got $rc" test "$rc" = 0
check "summary counts 20 passed runs and 60 checks" grep -q '20 runs: 20 passed, 0 failed, 0 could not run; 60 checks' "$tmp/pass.txt"

# 2b. JSON bodies: templates inside strings stay strings; a string that is exactly one
# placeholder takes the variable's JSON value and type.
cat >"$tmp/typed.json" <<'JSON'
{"name": "typed", "variables": {"n": 3, "obj": {"a": [1, 2]}, "s": "x\"y", "k": "key1"},
 "steps": [{"request": {"method": "POST", "url": "${base}/anything",
   "json": {"n": "${n}", "o": "${obj}", "s": "${s}", "t": "n=${n}", "${k}": "${n}"}},
   "assert": ["$.json.n == 3", "$.json.o.a[1] == 2", "$.json.s == \"x\\\"y\"",
              "$.json.t == \"n=3\"", "$.json.key1 is integer"]}]}
JSON
"$worker" run "$tmp/typed.json" --var "base=$base" --detail >"$tmp/typed.txt" 2>&1
rc=$?
check "typed JSON body placeholders pass all 5 checks, got $rc" test "$rc" = 0

# 3. A bad definition -> exit 2 and a located message; nothing runs.
cat >"$tmp/bad.json" <<'JSON'
{"name": "bad", "steps": [
  {"name": "a", "request": {"url": "http://127.0.0.1:1/"}, "assert": ["status == 200"]},
  {"name": "b", "request": {"url": "http://127.0.0.1:1/"}, "assert": ["status == 200"]},
  {"name": "get user", "request": {"url": "http://127.0.0.1:1/"}, "assert": ["status == 200", "$.age => 18"]}]}
JSON
"$worker" run "$tmp/bad.json" >"$tmp/bad.txt" 2>&1
rc=$?
cat "$tmp/bad.txt"
check "bad definition exits 2, got $rc" test "$rc" = 2
check "message names step 3 and the assertion" grep -q 'step 3.*get user.*ass' "$tmp/bad.txt"
check "message names the operator" grep -qF '=>' "$tmp/bad.txt"

# 4. A server that is not there -> the run could not run -> exit 2, with the reason.
cat >"$tmp/down.json" <<'JSON'
{"name": "down", "steps": [{"name": "get", "request": {"url": "http://127.0.0.1:1/", "timeout": 2000}, "assert": ["status == 200"]}]}
JSON
"$worker" run "$tmp/down.json" >"$tmp/down.txt" 2>&1
rc=$?
cat "$tmp/down.txt"
check "connection refused exits 2, got $rc" test "$rc" = 2
check "reason is shown" grep -qi 'refused\|connect' "$tmp/down.txt"

# 5. Usage errors -> exit 2.
"$worker" run >/dev/null 2>&1; rc=$?
check "no file exits 2, got $rc" test "$rc" = 2
"$worker" run --concurrency 0 "$tmp/pass.json" >/dev/null 2>&1; rc=$?
check "bad --concurrency exits 2, got $rc" test "$rc" = 2
check "--help exits 0" "$worker" run --help

if ((fails)); then echo "worker_cli: $fails check(s) FAILED"; exit 1; fi
echo "worker_cli: ALL PASSED"
