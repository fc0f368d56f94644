"""The CI trigger end to end, as a CI job uses it (docs/ci.md): a real rampart-scheduler and
rampart-worker (the `pipeline` fixture, conftest.py) run against the test dashboard's own
databases and the shared RabbitMQ, on a location of their own ("ci-" + random, so no other
worker takes these jobs). Through the API (an editor API key): two tests with one tag — one
passes, one expects 418 from the dashboard's /healthz and fails — an environment with a secret
variable, and run-time variables (overrides). POST .../runs?wait=60&format=junit must answer
JUnit XML with two test suites and the failed assertion; the JSON variant says passed: false;
the passing run used the override (above the test's own variable) and the secret, which the
stored result shows as ***. A secret sealed with another key makes the run an `error` that says
so, and the value appears in no log. Both processes stop on SIGTERM with exit code 0."""
import ctypes
import ctypes.util
import base64
import hashlib
import json
import os
import secrets
import time
import xml.etree.ElementTree as ET

from conftest import SECRET_KEY, Client, ok


# ---- sealing as the dashboard does (rampart/secret.h), for the fallbacks ----------------------

def seal(key_hex, plain):
    """rp_secret_seal: "v1:" + base64(nonce || crypto_secretbox_easy(plain)), via libsodium."""
    lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
    assert lib.sodium_init() >= 0
    key = bytes.fromhex(key_hex)
    nonce = os.urandom(24)
    msg = plain.encode()
    box = ctypes.create_string_buffer(16 + len(msg))
    assert lib.crypto_secretbox_easy(box, msg, ctypes.c_ulonglong(len(msg)), nonce, key) == 0
    return "v1:" + base64.b64encode(nonce + box.raw).decode()


# ---- set-up through the API (with fallbacks while a route is missing) ------------------------

def create_test(dash, admin, pid, definition):
    r = admin.post(f"/api/v1/projects/{pid}/tests", {"definition": definition})
    if r.status_code != 404 or not r.json()["error"]["message"].startswith("no API route"):
        return ok(r, 201)["id"]
    tid = dash.sql("INSERT INTO tests (project_id, name, tags, current_version) "
                   "VALUES (%s, %s, %s, 1) RETURNING id",
                   (pid, definition["name"], definition.get("tags", [])))[0][0]
    dash.sql("INSERT INTO test_versions (test_id, version, definition) VALUES (%s, 1, %s)",
             (tid, json.dumps(definition)))
    return str(tid)


def create_key(dash, admin, pid, role):
    r = admin.post(f"/api/v1/projects/{pid}/api-keys", {"name": "ci", "role": role})
    if r.status_code == 201:
        return r.json()["token"]
    prefix = secrets.token_hex(6)
    token = f"rpk_{prefix}_{secrets.token_urlsafe(24)}"
    dash.sql("INSERT INTO api_keys (project_id, name, role, prefix, token_hash) "
             "VALUES (%s, 'ci', %s, %s, %s)",
             (pid, role, prefix, hashlib.sha256(token.encode()).digest()))
    return token


def create_env(dash, admin, pid, name, secret_value):
    r = admin.post(f"/api/v1/projects/{pid}/environments",
                   {"name": name, "variables": {"token": {"value": secret_value, "secret": True},
                                                "who": "ci"}})
    if r.status_code == 201:
        return r.json()["id"]
    sealed = seal(SECRET_KEY, json.dumps(secret_value))
    return str(dash.sql("INSERT INTO environments (project_id, name, variables) "
                        "VALUES (%s, %s, %s) RETURNING id",
                        (pid, name, json.dumps({"token": {"secret": True, "sealed": sealed},
                                                "who": "ci"})))[0][0])


def test_ci_gate_end_to_end(dash, admin, make_project, pipeline):
    loc = pipeline["location"]
    p = make_project()
    pid = p["id"]
    tag = "smoke-" + secrets.token_hex(3)
    secret_value = "tok-" + secrets.token_hex(12)
    passing = {
        "name": "health answers",
        "tags": [tag],
        "variables": {"marker": "from-the-test"},
        "steps": [{"name": "healthz",
                   "request": {"url": "${base}/healthz?probe=${marker}&who=${who}",
                               "headers": {"X-Token": "${token}"}},
                   "expect": {"status": 200},
                   "assert": ["$.status == \"ok\""]}],
    }
    failing = {
        "name": "health is a teapot",
        "tags": [tag],
        "steps": [{"name": "teapot", "request": {"url": "${base}/healthz"},
                   "expect": {"status": 418}}],
    }
    t_pass = create_test(dash, admin, pid, passing)
    t_fail = create_test(dash, admin, pid, failing)
    env = create_env(dash, admin, pid, "ci-env", secret_value)
    ci = Client(dash.url, api_key=create_key(dash, admin, pid, "editor"))
    body = {"tag": tag, "environment_id": env, "location": loc,
            "variables": {"base": dash.url, "marker": "from-ci"}}

    # JUnit, as a CI job asks for it
    started = time.time()
    r = ci.post(f"/api/v1/projects/{pid}/runs?wait=60&format=junit", body, timeout=90)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/xml")
    assert r.headers["X-Rampart-Complete"] == "true", r.text
    assert r.headers["X-Rampart-Passed"] == "false"
    assert time.time() - started < 55, "the runs took (almost) the whole wait"
    root = ET.fromstring(r.content)
    suites = root.findall("testsuite")
    assert root.tag == "testsuites" and len(suites) == 2
    assert root.get("failures") == "1" and root.get("errors") == "0"
    by_name = {s.get("name"): s for s in suites}
    assert set(by_name) == {"health answers", "health is a teapot"}
    assert by_name["health answers"].find("testcase/failure") is None
    failures = by_name["health is a teapot"].findall("testcase/failure")
    assert len(failures) == 1
    assert "status: expected 418, got 200" in failures[0].text, failures[0].text
    assert failures[0].get("message") == "1 check failed"
    assert secret_value not in r.text

    # the JSON variant: the gate
    res = ok(ci.post(f"/api/v1/projects/{pid}/runs?wait=60", body, timeout=90))
    assert res["complete"] is True and res["passed"] is False
    status = {x["test_id"]: x for x in res["runs"]}
    assert status[t_pass]["status"] == "passed" and status[t_fail]["status"] == "failed"
    assert status[t_pass]["duration_ms"] > 0 and status[t_pass]["error"] is None

    # what the passing run did, as stored: the override beat the test's own variable, the
    # environment's plain variable came through, the secret was sent and is shown as ***
    run = ok(ci.get(f"/api/v1/projects/{pid}/runs/{status[t_pass]['run_id']}"))
    assert run["trigger"] == "api" and run["location"] == loc and run["environment_id"] == env
    assert run["duration_ms"] > 0 and run["finished_at"]
    req = run["result"]["steps"][0]["request"]
    assert "probe=from-ci" in req["url"] and "who=ci" in req["url"], req
    headers = {h["name"].lower(): h["value"] for h in req["headers"]}
    assert headers["x-token"] == "***"
    assert run["overrides"] == {"base": dash.url, "marker": "from-ci"}
    assert secret_value not in json.dumps(run)
    # duration_ms is in the runs table (the charts use it)
    rows = dash.sql("SELECT status, duration_ms FROM runs WHERE project_id = %s", (pid,))
    assert len(rows) == 4 and all(d and d > 0 for _, d in rows)
    stats = ok(ci.get(f"/api/v1/projects/{pid}/tests/{t_pass}/stats"))
    assert stats["summary"]["runs"] == 2 and stats["summary"]["passed"] == 2
    assert stats["summary"]["p50_ms"] > 0

    # a secret the worker cannot open: an `error` saying why, never the value
    other_key = secrets.token_hex(32)
    bad_env = dash.sql("INSERT INTO environments (project_id, name, variables) "
                       "VALUES (%s, 'wrong-key', %s) RETURNING id",
                       (pid, json.dumps({"token": {"secret": True,
                                                   "sealed": seal(other_key, '"x-hidden-1"')}})))
    res = ok(ci.post(f"/api/v1/projects/{pid}/runs?wait=60",
                     {"test_id": t_pass, "environment_id": str(bad_env[0][0]), "location": loc,
                      "variables": {"base": dash.url}}, timeout=90))
    assert res["complete"] is True and res["passed"] is False
    bad = res["runs"][0]
    assert bad["status"] == "error", bad
    assert "token" in bad["error"] and "cannot be opened" in bad["error"], bad["error"]
    assert "RAMPART_SECRET_KEY" in bad["error"]

    for proc in pipeline["procs"]:
        log = proc.log()
        assert secret_value not in log and "x-hidden-1" not in log, proc.log_path
