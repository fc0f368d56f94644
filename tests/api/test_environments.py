"""Environments through the API: create, list, read, rename, replace variables, delete; secret
values sealed at rest with RAMPART_SECRET_KEY (opened here with libsodium to prove what is
stored) and never returned, kept across a PATCH that sends {"secret": true}; names and sizes
checked like the test language; the role matrix (viewer reads, editor writes, an outsider sees
nothing, an API key acts in its one project with its role); bad input; and a dashboard without a
secret key refusing secrets with secret_key_missing."""
import base64
import ctypes
import ctypes.util
import hashlib
import json
import secrets
import signal
import uuid

import pytest

from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, SECRET_KEY, Client, Dashboard, err, ok

ZERO = "00000000-0000-0000-0000-000000000000"


def envs(p):
    return f"/api/v1/projects/{p['id']}/environments"


def api_key(dash, project, role):
    """A Client with an API key of `role` in `project`, made directly in the database (the
    format auth.c checks: rpk_<12-char prefix>_<secret>, SHA-256 of the whole token stored)."""
    prefix = secrets.token_hex(6)
    token = f"rpk_{prefix}_{secrets.token_urlsafe(32)}"
    dash.sql("INSERT INTO api_keys (project_id, name, role, prefix, token_hash) "
             "VALUES (%s, %s, %s, %s, %s)",
             (project["id"], f"test-{role}", role, prefix,
              hashlib.sha256(token.encode()).digest()))
    return Client(dash.url, api_key=token)


def stored(dash, env_id):
    return dash.sql("SELECT variables FROM environments WHERE id = %s", (env_id,))[0][0]


def unseal(sealed, key_hex=SECRET_KEY):
    """Open a "v1:" + base64(nonce || secretbox) text as common/src/secret.c seals it."""
    assert sealed.startswith("v1:"), sealed
    raw = base64.b64decode(sealed[3:])
    nonce, box = raw[:24], raw[24:]
    lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
    assert lib.sodium_init() >= 0
    out = ctypes.create_string_buffer(len(box))
    key = bytes.fromhex(key_hex)
    rc = lib.crypto_secretbox_open_easy(out, box, ctypes.c_ulonglong(len(box)), nonce, key)
    assert rc == 0, "the sealed value does not open with RAMPART_SECRET_KEY"
    return out.raw[:len(box) - 16].decode()


def audit(dash, target_id):
    return dash.sql("SELECT action, details FROM audit_log WHERE target_id = %s ORDER BY id",
                    (str(target_id),))


def test_environment_crud(dash, admin, make_project):
    p = make_project()
    body = {"name": "staging", "variables": {
        "host": "api.example.com",
        "port": 8443,
        "ratio": 0.1,
        "big": 9007199254740993,
        "flags": [True, None, {"a": [1, 2]}],
        "wrapped": {"value": {"value": 1}},
        "plain_false": {"value": "x", "secret": False},
        "api.token-2": {"value": "s3cr3t-token-value", "secret": True},
        "creds": {"value": {"user": "bob", "password": "pw-hidden-123"}, "secret": True},
    }}
    e = ok(admin.post(envs(p), body), 201)
    assert set(e) == {"id", "name", "variables", "created_at", "updated_at"}
    assert e["name"] == "staging"
    v = e["variables"]
    # plain values as given (2**53 + 1 keeps its digits: no double on the way), secrets as
    # {"secret": true} only
    assert v["host"] == "api.example.com" and v["port"] == 8443 and v["ratio"] == 0.1
    assert v["big"] == 9007199254740993
    assert v["flags"] == [True, None, {"a": [1, 2]}]
    assert v["wrapped"] == {"value": {"value": 1}}
    assert v["plain_false"] == {"value": "x", "secret": False}
    assert v["api.token-2"] == {"secret": True} and v["creds"] == {"secret": True}
    # the stored form: secrets sealed (the value's JSON text), plain values as given
    s = stored(dash, e["id"])
    assert set(s["api.token-2"]) == {"secret", "sealed"} and s["api.token-2"]["secret"] is True
    assert json.loads(unseal(s["api.token-2"]["sealed"])) == "s3cr3t-token-value"
    assert unseal(s["api.token-2"]["sealed"]) == '"s3cr3t-token-value"'
    assert json.loads(unseal(s["creds"]["sealed"])) == {"user": "bob",
                                                         "password": "pw-hidden-123"}
    assert s["host"] == "api.example.com" and s["wrapped"] == {"value": {"value": 1}}
    # reads: one and the list, never a secret
    got = admin.get(f"{envs(p)}/{e['id']}")
    assert ok(got) == e
    lst = admin.get(envs(p))
    assert [x["id"] for x in ok(lst)["items"]] == [e["id"]]
    for r in (got, lst):
        assert "s3cr3t" not in r.text and "pw-hidden" not in r.text and "v1:" not in r.text
    # a second one sorts by name; the same name is a conflict
    e2 = ok(admin.post(envs(p), {"name": "prod"}), 201)
    assert e2["variables"] == {}
    assert [x["name"] for x in ok(admin.get(envs(p)))["items"]] == ["prod", "staging"]
    err(admin.post(envs(p), {"name": "prod"}), 409, "conflict")
    err(admin.patch(f"{envs(p)}/{e['id']}", {"name": "prod"}), 409, "conflict")
    # rename keeps the variables
    upd = ok(admin.patch(f"{envs(p)}/{e['id']}", {"name": "staging-eu"}))
    assert upd["name"] == "staging-eu" and upd["variables"] == v
    assert upd["updated_at"] >= e["updated_at"]
    assert stored(dash, e["id"]) == s
    # delete
    ok(admin.delete(f"{envs(p)}/{e['id']}"), 204)
    err(admin.get(f"{envs(p)}/{e['id']}"), 404, "not_found")
    err(admin.delete(f"{envs(p)}/{e['id']}"), 404, "not_found")
    err(admin.patch(f"{envs(p)}/{e['id']}", {"name": "x"}), 404, "not_found")
    # the audit log has each change, with names but never a value
    rows = audit(dash, e["id"])
    assert [a for a, _ in rows] == ["environment.create", "environment.update",
                                    "environment.delete"]
    assert sorted(rows[0][1]["variables"]) == sorted(body["variables"])
    assert "s3cr3t" not in json.dumps(rows) and "v1:" not in json.dumps(rows)


def test_patch_replaces_and_keeps_secrets(dash, admin, make_project):
    p = make_project()
    e = ok(admin.post(envs(p), {"name": "e", "variables": {
        "token": {"value": "tok-1", "secret": True}, "host": "a", "old": 1}}), 201)
    url = f"{envs(p)}/{e['id']}"
    sealed = stored(dash, e["id"])["token"]["sealed"]
    # what the UI sends back after a GET: the secret as {"secret": true} keeps it as is
    upd = ok(admin.patch(url, {"variables": {"token": {"secret": True}, "host": "b"}}))
    assert upd["variables"] == {"token": {"secret": True}, "host": "b"}  # "old" is gone
    assert stored(dash, e["id"])["token"] == {"secret": True, "sealed": sealed}
    # a name change alone leaves the variables untouched
    ok(admin.patch(url, {"name": "e2"}))
    assert stored(dash, e["id"])["token"]["sealed"] == sealed
    # a new value re-seals
    ok(admin.patch(url, {"variables": {"token": {"value": ["tok-2"], "secret": True}}}))
    s = stored(dash, e["id"])
    assert s["token"]["sealed"] != sealed and json.loads(unseal(s["token"]["sealed"])) == ["tok-2"]
    # keeping a secret that is not there, or a plain value, is refused; nothing changes
    before = stored(dash, e["id"])
    x = err(admin.patch(url, {"variables": {"token": {"secret": True}, "nope": {"secret": True}}}),
            400, "invalid_field")
    assert x["field"] == "variables.nope" and "no stored secret" in x["message"]
    ok(admin.patch(url, {"variables": {"token": {"secret": True}, "host": "h"}}))
    before = stored(dash, e["id"])
    x = err(admin.patch(url, {"variables": {"host": {"secret": True}}}), 400, "invalid_field")
    assert x["field"] == "variables.host"
    assert stored(dash, e["id"]) == before
    # turning a secret into a plain value and back
    ok(admin.patch(url, {"variables": {"token": "now-plain"}}))
    assert ok(admin.get(url))["variables"] == {"token": "now-plain"}
    # an empty object removes every variable
    assert ok(admin.patch(url, {"variables": {}}))["variables"] == {}
    assert [a for a, _ in audit(dash, e["id"])].count("environment.update") == 6


def test_variable_names_and_caps(admin, make_project):
    p = make_project()
    good = {"a": 1, "_x": 2, "A.b-c_9": 3, "n" * 128: 4}
    e = ok(admin.post(envs(p), {"name": "names", "variables": good}), 201)
    assert e["variables"] == good
    for bad in ["1abc", "a b", "-a", ".a", "a/b", "é", "a$", "n" * 129]:
        x = err(admin.post(envs(p), {"name": "bad", "variables": {bad: 1}}), 400,
                "invalid_field")
        assert x["field"].startswith("variables.") and "invalid name" in x["message"], x
    x = err(admin.post(envs(p), {"name": "bad", "variables": {"": 1}}), 400, "invalid_field")
    assert x["field"] == "variables."
    # the field names the member in full (a refused overlong name is cut, marked "...")
    x = err(admin.post(envs(p), {"name": "bad", "variables": {"n" * 128: {"value": 1,
                                                                          "secret": 0}}}), 400)
    assert x["field"] == "variables." + "n" * 128
    x = err(admin.post(envs(p), {"name": "bad", "variables": {"é" * 100: 1}}), 400)
    assert x["field"] == "variables." + "é" * 64 + "..."
    # at most 500 variables
    many = {f"v{i}": i for i in range(500)}
    assert len(ok(admin.post(envs(p), {"name": "500", "variables": many}), 201)["variables"]) == 500
    many["v500"] = 500
    x = err(admin.post(envs(p), {"name": "501", "variables": many}), 400, "invalid_field")
    assert x["field"] == "variables" and "500" in x["message"]
    # each value's JSON text at most 64 KiB (a string's JSON has its two quotes)
    ok(admin.post(envs(p), {"name": "big", "variables": {"s": "x" * 65534}}), 201)
    for value in ("x" * 65535, {"value": "y" * 70000, "secret": True}, ["z" * 65536]):
        x = err(admin.post(envs(p), {"name": "too-big", "variables": {"s": value}}), 400,
                "invalid_field")
        assert x["field"] == "variables.s" and "65536" in x["message"], x
    assert "too-big" not in [x["name"] for x in ok(admin.get(envs(p)))["items"]]


def test_variable_shapes(dash, admin, make_project):
    p = make_project()
    cases = [
        ({"x": {"value": 1, "secret": "yes"}}, "variables.x", "true or false"),
        ({"x": {"secret": True}}, "variables.x", "needs its value"),
        ({"x": {"secret": True, "sealed": "v1:AAAA"}}, "variables.x", "reserved"),
        ({"x": {"sealed": "v1:AAAA"}}, "variables.x", "reserved"),
        ({"x": {"secret": False}}, "variables.x", "reserved"),
    ]
    for variables, field, words in cases:
        x = err(admin.post(envs(p), {"name": "s", "variables": variables}), 400, "invalid_field")
        assert x["field"] == field and words in x["message"], x
    assert ok(admin.get(envs(p)))["items"] == []
    # wrapped, the reserved shape is a plain value and reads back as given; objects with other
    # members are ordinary plain values
    v = {"w": {"value": {"secret": True, "sealed": "v1:AAAA"}},
         "o": {"secret": True, "other": 1}, "n": {"value": None}, "e": {}}
    e = ok(admin.post(envs(p), {"name": "s", "variables": v}), 201)
    assert e["variables"] == v and stored(dash, e["id"]) == v


def test_bad_input(admin, make_project):
    p = make_project()
    e = ok(admin.post(envs(p), {"name": "e"}), 201)
    url = f"{envs(p)}/{e['id']}"
    err(admin.post(envs(p), {}), 400, "missing_field")
    err(admin.post(envs(p), {"variables": {}}), 400, "missing_field")
    for name in (3, None, "", "n" * 101, ["a"], {"a": 1}):
        assert err(admin.post(envs(p), {"name": name}), 400, "invalid_field")["field"] == "name"
    for variables in ([1], "a=b", 3, None, True):
        x = err(admin.post(envs(p), {"name": "v", "variables": variables}), 400,
                "invalid_field")
        assert x["field"] == "variables"
        assert err(admin.patch(url, {"variables": variables}), 400,
                   "invalid_field")["field"] == "variables"
    err(admin.post(envs(p), {"name": "v", "extra": 1}), 400, "unknown_field")
    err(admin.patch(url, {"secret": 1}), 400, "unknown_field")
    err(admin.patch(url, {"name": 5}), 400, "invalid_field")
    raw = {"Content-Type": "application/json"}
    err(admin.request("POST", envs(p), data='{"name": "x", "variables": {"a": 1, "a": 2}}',
                      headers=raw), 400, "invalid_field")
    err(admin.request("POST", envs(p), data='{"name": "x", "variables": {}, "variables": {}}',
                      headers=raw), 400, "invalid_field")
    err(admin.request("POST", envs(p), data='{"name": "x",', headers=raw), 400, "invalid_json")
    err(admin.request("PATCH", url, data='[]', headers=raw), 400, "invalid_json")
    err(admin.request("POST", envs(p), data="name=x",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
    # unknown and malformed ids; an environment is only reachable through its project
    q = make_project()
    for eid in (ZERO, "not-a-uuid", str(uuid.uuid4())):
        err(admin.get(f"{envs(p)}/{eid}"), 404, "not_found")
        err(admin.patch(f"{envs(p)}/{eid}", {"name": "x"}), 404, "not_found")
        err(admin.delete(f"{envs(p)}/{eid}"), 404, "not_found")
    err(admin.get(f"{envs(q)}/{e['id']}"), 404, "not_found")
    err(admin.patch(f"{envs(q)}/{e['id']}", {"name": "stolen"}), 404, "not_found")
    err(admin.delete(f"{envs(q)}/{e['id']}"), 404, "not_found")
    assert ok(admin.get(url))["name"] == "e"
    err(admin.get(f"/api/v1/projects/{ZERO}/environments"), 404, "not_found")
    err(admin.request("PUT", envs(p)), 405, "method_not_allowed")


def test_roles_matrix_environments(dash, admin, make_project, member, make_user):
    p = make_project()
    e = ok(admin.post(envs(p), {"name": "e", "variables": {
        "k": {"value": "role-secret", "secret": True}}}), 201)
    url = f"{envs(p)}/{e['id']}"
    viewer, editor, outsider = member(p, "viewer"), member(p, "editor"), make_user()
    # a viewer reads (secrets hidden) but cannot write
    r = viewer.get(url)
    assert ok(r)["variables"] == {"k": {"secret": True}} and "role-secret" not in r.text
    assert len(ok(viewer.get(envs(p)))["items"]) == 1
    err(viewer.post(envs(p), {"name": "v"}), 403, "forbidden")
    err(viewer.patch(url, {"name": "v"}), 403, "forbidden")
    err(viewer.delete(url), 403, "forbidden")
    # an editor writes
    e2 = ok(editor.post(envs(p), {"name": "by-editor"}), 201)
    ok(editor.patch(f"{envs(p)}/{e2['id']}", {"variables": {"a": 1}}))
    ok(editor.delete(f"{envs(p)}/{e2['id']}"), 204)
    # an outsider sees nothing at all
    err(outsider.get(envs(p)), 404, "not_found")
    err(outsider.get(url), 404, "not_found")
    err(outsider.post(envs(p), {"name": "o"}), 404, "not_found")
    err(outsider.patch(url, {"name": "o"}), 404, "not_found")
    err(outsider.delete(url), 404, "not_found")
    # API keys: bound to their project and role
    kv, ke = api_key(dash, p, "viewer"), api_key(dash, p, "editor")
    assert ok(kv.get(url))["id"] == e["id"]
    err(kv.post(envs(p), {"name": "kv"}), 403, "forbidden")
    err(kv.delete(url), 403, "forbidden")
    e3 = ok(ke.post(envs(p), {"name": "ke", "variables": {"t": {"value": 1, "secret": True}}}),
            201)
    ok(ke.patch(f"{envs(p)}/{e3['id']}", {"variables": {"t": {"secret": True}}}))
    ok(ke.delete(f"{envs(p)}/{e3['id']}"), 204)
    assert "api-key:" in dash.sql("SELECT actor FROM audit_log WHERE target_id = %s "
                                  "AND action = 'environment.create'", (e3["id"],))[0][0]
    other = make_project()
    kother = api_key(dash, other, "editor")
    err(kother.get(envs(p)), 404, "not_found")
    err(kother.get(url), 404, "not_found")
    err(kother.patch(url, {"name": "x"}), 404, "not_found")
    # anonymous
    anon = Client(dash.url)
    err(anon.get(envs(p)), 401, "unauthenticated")
    err(anon.post(envs(p), {"name": "a"}), 401)
    # CSRF on cookie writes
    err(editor.post(envs(p), {"name": "csrf"}, csrf=False), 403, "csrf_failed")


@pytest.fixture(scope="module")
def keyless():
    """A second dashboard started without RAMPART_SECRET_KEY (own databases)."""
    d = Dashboard("rampart_api_nokey_" + secrets.token_hex(4),
                  extra_env={"RAMPART_SECRET_KEY": ""})
    d.create_databases()
    try:
        d.start()
        yield d
        assert d.stop() == 0, f"dashboard exit code not 0; log: {d.log_path}"
    finally:
        d.stop(signal.SIGKILL)
        d.drop_databases()


def test_secret_key_missing(keyless):
    admin = Client(keyless.url).login(ADMIN_EMAIL, ADMIN_PASSWORD)
    p = ok(admin.post("/api/v1/projects", {"slug": "nokey", "name": "nokey"}), 201)
    x = err(admin.post(envs(p), {"name": "e", "variables": {
        "plain": 1, "tok": {"value": "t", "secret": True}}}), 400, "secret_key_missing")
    assert "RAMPART_SECRET_KEY" in x["message"] and x["field"] == "variables.tok"
    assert ok(admin.get(envs(p)))["items"] == []
    # plain values still work
    e = ok(admin.post(envs(p), {"name": "e", "variables": {"plain": 1}}), 201)
    err(admin.patch(f"{envs(p)}/{e['id']}", {"variables": {"tok": {"value": 2, "secret": True}}}),
        400, "secret_key_missing")
    assert ok(admin.get(f"{envs(p)}/{e['id']}"))["variables"] == {"plain": 1}
