"""Tests through the API: create (a definition as an object or as text), read, save (every save a
new version), rename/retag, delete, the version history, validate (a refusal says where: path,
pointer, line, column), the test list with its run figures and filters, run-now (a pending run
row, and once end to end through a real scheduler and worker), the role matrix and bad input."""
import copy
import hashlib
import json
import random
import re
import secrets
import time
import uuid

import psycopg2
import pytest

from conftest import Client, err, ok


def definition(name="check", url="http://127.0.0.1:9/health", **extra):
    d = {"name": name, "steps": [{"name": "get", "request": {"url": url},
                                  "expect": {"status": 200}}]}
    d.update(extra)
    return d


def list_path(project):
    return f"/api/v1/projects/{project['id']}/tests"


def create(client, project, body=None, **kw):
    return ok(client.post(list_path(project), body or {"definition": definition(**kw)}), 201)


def api_key(dash, project, role):
    """An API key of `project` with `role`, made in the database (keys are not under test)."""
    prefix = secrets.token_hex(6)
    token = f"rpk_{prefix}_{secrets.token_urlsafe(32)}"
    dash.sql("INSERT INTO api_keys (project_id, name, role, prefix, token_hash) "
             "VALUES (%s, %s, %s, %s, %s)",
             (project["id"], f"ci-{prefix}", role, prefix,
              psycopg2.Binary(hashlib.sha256(token.encode()).digest())))
    return Client(dash.url, api_key=token)


def position(text, needle, after=None):
    """(line, column) of `needle` in `text` (from 1; columns in characters), searched after the
    first `after` when given."""
    start = text.index(after) if after else 0
    i = text.index(needle, start)
    return text.count("\n", 0, i) + 1, i - (text.rfind("\n", 0, i) + 1) + 1


def audit_actions(dash, target_id):
    return [r[0] for r in dash.sql("SELECT action FROM audit_log WHERE target_id = %s ORDER BY id",
                                   (str(target_id),))]


# ---- create, read ------------------------------------------------------------------------------

def test_create_from_object(dash, admin, make_project):
    p = make_project()
    d = definition("home page", tags=["smoke", "web"], variables={"ratio": 0.1, "big": 1e300})
    t = create(admin, p, {"definition": d})
    assert t["name"] == "home page" and t["tags"] == ["smoke", "web"]
    assert t["current_version"] == 1 and t["version"] == 1 and t["project_id"] == p["id"]
    # stored as sent (0.1 stays 0.1), parsed back equal
    assert t["definition_text"] == json.dumps(d) and t["definition"] == d
    got = ok(admin.get(f"{list_path(p)}/{t['id']}"))
    assert got == t
    assert dash.sql("SELECT version FROM test_versions WHERE test_id = %s", (t["id"],)) == [(1,)]
    assert audit_actions(dash, t["id"]) == ["test.create"]
    assert ok(admin.get(f"/api/v1/projects/{p['id']}"))["tests"] == 1


def test_create_from_text_keeps_the_authors_layout(admin, make_project):
    p = make_project()
    text = ('{\n\t"name": "as written",   "steps": [\n'
            '  {"request": {"url": "http://127.0.0.1:9/"}}  ]\n}\n')
    t = create(admin, p, {"definition": text, "name": "Other name", "tags": ["a:b", "c/d"]})
    assert t["definition_text"] == text
    assert t["definition"] == json.loads(text)
    assert t["name"] == "Other name" and t["tags"] == ["a:b", "c/d"]
    # a byte-order mark is dropped (PostgreSQL's json refuses it), the rest kept
    t2 = create(admin, p, {"definition": "\ufeff" + text.replace("as written", "bom")})
    assert t2["definition_text"] == text.replace("as written", "bom")


def test_create_conflicts_and_bad_tags(admin, make_project):
    p = make_project()
    create(admin, p, name="same")
    err(admin.post(list_path(p), {"definition": definition("same")}), 409, "conflict")
    e = err(admin.post(list_path(p), {"definition": definition("x"), "tags": ["bad tag"]}), 400,
            "invalid_field")
    assert e["field"] == "tags[0]"
    err(admin.post(list_path(p), {"definition": definition("x"), "tags": ["t"] * 21}), 400,
        "invalid_field")
    # the definition's own tags are taken when the request has none: they must fit too
    e = err(admin.post(list_path(p), {"definition": definition("y", tags=["has space"])}), 400,
            "invalid_field")
    assert e["field"] == "tags" and "has space" in e["message"]
    ok(admin.post(list_path(p), {"definition": definition("y", tags=["has space"]),
                                 "tags": ["fine"]}), 201)


def test_bad_input(admin, make_project):
    p = make_project()
    url = list_path(p)
    err(admin.post(url, {}), 400, "missing_field")
    for bad in (5, True, ["x"], None):
        e = err(admin.post(url, {"definition": bad}), 400, "invalid_field")
        assert e["field"] == "definition"
    err(admin.post(url, {"definition": definition(), "name": 3}), 400, "invalid_field")
    err(admin.post(url, {"definition": definition(), "name": ""}), 400, "invalid_field")
    err(admin.post(url, {"definition": definition(), "tags": "smoke"}), 400, "invalid_field")
    err(admin.post(url, {"definition": definition(), "extra": 1}), 400, "unknown_field")
    err(admin.request("POST", url, data="{not json", headers={"Content-Type": "application/json"}),
        400, "invalid_json")
    err(admin.request("POST", url, data="x=1",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
    err(admin.post(url, {"definition": definition()}, csrf=False), 403, "csrf_failed")
    err(admin.request("PUT", url), 405, "method_not_allowed")
    # an admin is owner everywhere, but a project that does not exist is still a 404
    ghost = {"id": str(uuid.uuid4())}
    err(admin.get(list_path(ghost)), 404, "not_found")
    err(admin.post(list_path(ghost), {"definition": definition()}), 404, "not_found")
    err(admin.post(list_path(ghost) + "/validate", {"definition": definition()}), 404, "not_found")


# ---- refused definitions: where the problem is -------------------------------------------------

STEP = '{"request": {"url": "http://127.0.0.1:9/"}}'

# (text, the start of the parser's message, path, pointer, where the spot is in the text:
#  (needle, after) for position(), or (line, column) given)
BAD = [
    pytest.param(
        '{\n  "name": "status",\n  "steps": [\n    {"request": {"url": "http://h/"},\n'
        '     "expect": {"status": [200, "9xx"]}}\n  ]\n}',
        "step 1, expect.status[2]:", "steps[0].expect.status[1]", "/steps/0/expect/status/1",
        ('"9xx"', None), id="expect-status-entry"),
    pytest.param(
        '{"name": "x",\n "vars": {},\n "steps": [' + STEP + ']}',
        "top level: unknown key `vars`; did you mean `variables`?", "vars", "/vars",
        ('"vars"', None), id="unknown-top-level-key"),
    pytest.param(
        '{"name": "x",\n "variables": {"password": {"value": "pw", "secret": "yes"}},\n'
        ' "steps": [' + STEP + ']}',
        "variables.password.secret: must be true or false, got a string",
        "variables.password.secret", "/variables/password/secret", ('"yes"', None),
        id="variable-secret"),
    pytest.param(
        '{"name": "x", "steps": [{"request": {"url": "http://h/"},\n'
        '  "assert": ["status == 200",\n'
        '             {"that": "status => 2", "severity": "warning"}]}]}',
        "step 1, assertion 2: column 8: unknown operator `=>`", "steps[0].assert[1].that",
        "/steps/0/assert/1/that", ("=>", None), id="expression-column"),
    pytest.param(
        '{"name": "x", "steps": [\n  {"name": "a\\"), b", "request": {"url": "http://h/a b"}}]}',
        'step 1 ("a\\"), b"), request.url: column 11: a space must be written %20',
        "steps[0].request.url", "/steps/0/request/url", (" b\"}", None), id="url-space"),
    pytest.param(
        '{"name": "x", "steps": [' + STEP + ',\n  {"name": "second",\n'
        '   "request": {"url": "ftp://h/"}}]}',
        'step 2 ("second"), request.url: must start with http://', "steps[1].request.url",
        "/steps/1/request/url", ('"ftp://h/"', None), id="second-step"),
    pytest.param(
        '{"name": "x", "steps": [{"request": {"url": "http://h/",\n'
        '  "json": {"a": [1, "${"]}}}]}',
        "step 1, request.json.a[1]: column 1: unclosed ${", "steps[0].request.json.a[1]",
        "/steps/0/request/json/a/1", ('${"', None), id="json-template-index-from-0"),
    pytest.param(
        '{"name": "x", "steps": [{"request": {"url": "http://h/",\n'
        '  "headers": {"X.Id": ["ok", 5, {"no": 1}]}}}]}',
        "step 1, request.headers.X.Id[3]: must be a string, number or boolean",
        'steps[0].request.headers["X.Id"][2]', "/steps/0/request/headers/X.Id/2",
        ('{"no"', None), id="dotted-header-name"),
    pytest.param(
        '{"name": "x", "steps": [{"request": {"url": "http://h/"},\n'
        '  "schema": {"properties": {"a/b": {"minimum": "x"}}}}]}',
        "step 1, schema: #/properties/a~1b/minimum: must be a number",
        'steps[0].schema.properties["a/b"].minimum', "/steps/0/schema/properties/a~1b/minimum",
        ('"x"', "minimum"), id="schema-keyword"),
    pytest.param(
        '{"name": "x",\n "steps": [{"url": "http://h/", "request": {"url": "http://h/"}}]}',
        "step 1: unknown key `url`; `url` belongs inside `request`", "steps[0].url",
        "/steps/0/url", ('"url"', None), id="key-in-the-wrong-place"),
    pytest.param(
        '{"name": "x", "tags": ["ok", "a\\tb"],\n "steps": [' + STEP + ']}',
        "tags[2]: must not contain control characters", "tags[1]", "/tags/1",
        ('"a\\tb"', None), id="tag-index-from-1"),
    pytest.param(
        '{"name": "x",\n "variables": {"n": NaN},\n "steps": [' + STEP + ']}',
        "`NaN` is not JSON", "variables.n", "/variables/n", ("NaN", None), id="nan"),
    pytest.param(
        '{"name": "x", "' + "k" * 50 + '": 1, "steps": [' + STEP + ']}',
        "top level: unknown key `" + "k" * 40 + "...`", "k" * 50, "/" + "k" * 50,
        ('"kkk', None), id="long-key-quoted-cut"),
    pytest.param(
        '{"steps": [' + STEP + ']}', "top level: `name` is required", "", "", (1, 1),
        id="missing-name"),
    pytest.param(
        '{\n  "name": "x",\n  "steps": [' + STEP + '],\n}', "invalid JSON at line 4, column 1",
        "", "", (4, 1), id="json-syntax"),
    pytest.param(
        '[1, 2]', "top level: a test definition is a JSON object", "", "", (1, 1),
        id="not-an-object"),
]


@pytest.mark.parametrize("text,message,path,pointer,where", BAD)
def test_invalid_definition_located(viewer_and_project, text, message, path, pointer, where):
    viewer, p = viewer_and_project
    e = err(viewer.post(list_path(p) + "/validate", {"definition": text}), 400,
            "invalid_definition")
    assert e["message"].startswith(message), e
    assert e["field"] == "definition"
    assert (e["path"], e["pointer"]) == (path, pointer), e
    line, col = where if isinstance(where[0], int) else position(text, *where)
    assert (e.get("line"), e.get("column")) == (line, col), (e, text)


@pytest.fixture
def viewer_and_project(admin, make_project, member):
    p = make_project()
    return member(p, "viewer"), p


def test_invalid_definition_refused_on_create_and_save(dash, admin, make_project):
    p = make_project()
    url = list_path(p)
    # as an object: the path, but no line/column (they would be of our rendering)
    e = err(admin.post(url, {"definition": {"name": "x", "steps": [
        {"request": {"url": "http://h/"}, "expect": {"status": 700}}]}}), 400,
        "invalid_definition")
    assert e["path"] == "steps[0].expect.status" and "line" not in e and "column" not in e
    assert e["request_id"]
    err(admin.post(url, {"definition": ""}), 400, "invalid_definition")
    err(admin.post(url, {"definition": "{}"}), 400, "invalid_definition")
    assert dash.sql("SELECT count(*) FROM tests WHERE project_id = %s", (p["id"],)) == [(0,)]
    t = create(admin, p)
    bad = '{"name": "x", "steps": []}'
    e = err(admin.put(f"{url}/{t['id']}", {"definition": bad}), 400, "invalid_definition")
    assert e["path"] == "steps" and (e["line"], e["column"]) == position(bad, "[]")
    assert ok(admin.get(f"{url}/{t['id']}"))["current_version"] == 1


def test_validate(admin, make_project, member, anon):
    p = make_project()
    viewer = member(p, "viewer")
    url = list_path(p) + "/validate"
    two = definition("two steps")
    two["steps"].append({"request": {"url": "${base}/x"}, "assert": ["$.ok == true"]})
    assert ok(viewer.post(url, {"definition": two})) == {"valid": True, "name": "two steps",
                                                        "steps": 2}
    assert ok(viewer.post(url, {"definition": json.dumps(two, indent=2)}))["steps"] == 2
    err(viewer.post(url, {}), 400, "missing_field")
    err(viewer.post(url, {"definition": two, "name": "x"}), 400, "unknown_field")
    err(anon.post(url, {"definition": two}), 401)
    # validating stores nothing
    assert ok(viewer.get(list_path(p)))["items"] == []


# ---- versions, save, patch, delete -------------------------------------------------------------

def test_three_saves_three_versions(dash, admin, make_project):
    p = make_project()
    url = list_path(p)
    texts = [json.dumps(definition("v", url=f"http://127.0.0.1:9/{i}"), indent=i)
             for i in (1, 2, 3)]
    t = create(admin, p, {"definition": texts[0]})
    for i, text in enumerate(texts[1:], start=2):
        saved = ok(admin.put(f"{url}/{t['id']}", {"definition": text}))
        assert saved["current_version"] == i and saved["definition_text"] == text
        assert saved["name"] == "v"
    vs = ok(admin.get(f"{url}/{t['id']}/versions"))
    assert vs["current_version"] == 3 and vs["next_cursor"] is None
    assert [v["version"] for v in vs["items"]] == [3, 2, 1]
    assert [v["size"] for v in vs["items"]] == [len(x.encode()) for x in reversed(texts)]
    for i, text in enumerate(texts, start=1):
        v = ok(admin.get(f"{url}/{t['id']}/versions/{i}"))
        assert v["version"] == i and v["definition_text"] == text and v["test_id"] == t["id"]
        assert v["definition"] == json.loads(text)
    page = ok(admin.get(f"{url}/{t['id']}/versions?limit=2"))
    assert [v["version"] for v in page["items"]] == [3, 2] and page["next_cursor"]
    rest = ok(admin.get(f"{url}/{t['id']}/versions?limit=2&cursor={page['next_cursor']}"))
    assert [v["version"] for v in rest["items"]] == [1] and rest["next_cursor"] is None
    for bad in ("4", "0", "abc", "-1", "99999999999"):
        err(admin.get(f"{url}/{t['id']}/versions/{bad}"), 404, "not_found")
    err(admin.get(f"{url}/{t['id']}/versions?cursor=x"), 400, "invalid_field")
    err(admin.get(f"{url}/{t['id']}/versions?limit=0"), 400, "invalid_field")
    assert audit_actions(dash, t["id"]) == ["test.create", "test.save", "test.save"]
    # a save can rename and retag; without tags it takes the definition's, when it has some
    saved = ok(admin.put(f"{url}/{t['id']}", {"definition": definition("v", tags=["nightly"]),
                                             "name": "renamed"}))
    assert (saved["name"], saved["tags"], saved["current_version"]) == ("renamed", ["nightly"], 4)
    saved = ok(admin.put(f"{url}/{t['id']}", {"definition": definition("v")}))
    assert (saved["name"], saved["tags"]) == ("renamed", ["nightly"])
    err(admin.put(f"{url}/{t['id']}", {"name": "x"}), 400, "missing_field")
    err(admin.put(f"{url}/{t['id']}", {"definition": definition(), "x": 1}), 400, "unknown_field")


def test_patch_rename_and_retag(dash, admin, make_project):
    p = make_project()
    url = list_path(p)
    t = create(admin, p, name="one")
    create(admin, p, name="two")
    got = ok(admin.patch(f"{url}/{t['id']}", {"name": "uno", "tags": ["x", "y"]}))
    assert (got["name"], got["tags"], got["current_version"]) == ("uno", ["x", "y"], 1)
    assert ok(admin.patch(f"{url}/{t['id']}", {}))["name"] == "uno"
    err(admin.patch(f"{url}/{t['id']}", {"name": "two"}), 409, "conflict")
    err(admin.patch(f"{url}/{t['id']}", {"definition": definition()}), 400, "unknown_field")
    err(admin.patch(f"{url}/{t['id']}", {"tags": [1]}), 400, "invalid_field")
    assert audit_actions(dash, t["id"]) == ["test.create", "test.update"]
    assert dash.sql("SELECT count(*) FROM test_versions WHERE test_id = %s", (t["id"],)) == [(1,)]


def test_delete(dash, admin, make_project):
    p = make_project()
    url = list_path(p)
    t = create(admin, p)
    ok(admin.post(f"{url}/{t['id']}/run"), 202)
    ok(admin.delete(f"{url}/{t['id']}"), 204)
    err(admin.get(f"{url}/{t['id']}"), 404, "not_found")
    err(admin.get(f"{url}/{t['id']}/versions"), 404, "not_found")
    err(admin.delete(f"{url}/{t['id']}"), 404, "not_found")
    assert dash.sql("SELECT count(*) FROM runs WHERE test_id = %s", (t["id"],)) == [(0,)]
    assert audit_actions(dash, t["id"]) == ["test.create", "test.delete"]


def test_delete_leaves_no_dangling_ids(admin, make_project):
    p = make_project()
    url = list_path(p)
    gone, kept = create(admin, p), create(admin, p, name="kept")
    base = f"/api/v1/projects/{p['id']}"
    rule = ok(admin.post(f"{base}/alert-rules", {"name": "r", "test_ids": [gone["id"], kept["id"]]}),
              201)
    win = ok(admin.post(f"{base}/maintenance-windows",
                        {"name": "w", "kind": "once", "starts_at": "2030-01-01T00:00:00Z",
                         "ends_at": "2030-01-01T01:00:00Z", "test_ids": [gone["id"]]}), 201)
    ok(admin.delete(f"{url}/{gone['id']}"), 204)
    assert ok(admin.get(f"{base}/alert-rules/{rule['id']}"))["test_ids"] == [kept["id"]]
    assert ok(admin.get(f"{base}/maintenance-windows/{win['id']}"))["test_ids"] == []


def test_unknown_and_foreign_ids(admin, make_project):
    a, b = make_project(), make_project()
    theirs = create(admin, b)
    for test_id in (theirs["id"], str(uuid.uuid4()), "not-a-uuid"):
        base = f"{list_path(a)}/{test_id}"
        err(admin.get(base), 404, "not_found")
        err(admin.put(base, {"definition": definition()}), 404, "not_found")
        err(admin.patch(base, {"name": "x"}), 404, "not_found")
        err(admin.delete(base), 404, "not_found")
        err(admin.get(base + "/versions"), 404, "not_found")
        err(admin.get(base + "/versions/1"), 404, "not_found")
        err(admin.post(base + "/run"), 404, "not_found")
    ok(admin.get(f"{list_path(b)}/{theirs['id']}"))  # still there, untouched
    assert ok(admin.get(f"{list_path(b)}/{theirs['id']}"))["current_version"] == 1


# ---- the role matrix -----------------------------------------------------------------------------

def test_roles_matrix(dash, admin, make_project, member, make_user, anon):
    p = make_project()
    url = list_path(p)
    t = create(admin, p)
    viewer, editor, outsider = member(p, "viewer"), member(p, "editor"), make_user()
    one = f"{url}/{t['id']}"
    # a viewer reads (and validates) but changes nothing
    assert [x["id"] for x in ok(viewer.get(url))["items"]] == [t["id"]]
    ok(viewer.get(one))
    ok(viewer.get(one + "/versions"))
    ok(viewer.get(one + "/versions/1"))
    ok(viewer.post(url + "/validate", {"definition": definition()}))
    err(viewer.post(url, {"definition": definition("v")}), 403, "forbidden")
    err(viewer.put(one, {"definition": definition()}), 403, "forbidden")
    err(viewer.patch(one, {"name": "v"}), 403, "forbidden")
    err(viewer.delete(one), 403, "forbidden")
    err(viewer.post(one + "/run"), 403, "forbidden")
    # an editor does everything
    t2 = create(editor, p, name="by editor")
    ok(editor.put(f"{url}/{t2['id']}", {"definition": definition("by editor")}))
    ok(editor.patch(f"{url}/{t2['id']}", {"tags": ["e"]}))
    assert ok(editor.post(f"{url}/{t2['id']}/run"), 202)["trigger"] == "manual"
    ok(editor.delete(f"{url}/{t2['id']}"), 204)
    # someone else sees nothing at all
    for r in (outsider.get(url), outsider.get(one), outsider.get(one + "/versions"),
              outsider.post(url + "/validate", {"definition": definition()}),
              outsider.post(url, {"definition": definition("o")}), outsider.delete(one),
              outsider.post(one + "/run")):
        err(r, 404, "not_found")
    err(anon.get(url), 401, "unauthenticated")
    err(anon.post(one + "/run"), 401, "unauthenticated")
    # API keys act with their role, in their project only
    vkey, ekey = api_key(dash, p, "viewer"), api_key(dash, p, "editor")
    ok(vkey.get(one))
    err(vkey.post(one + "/run"), 403, "forbidden")
    err(vkey.post(url, {"definition": definition("k")}), 403, "forbidden")
    run = ok(ekey.post(one + "/run", {}), 202)
    assert run["trigger"] == "api"
    ok(ekey.post(url, {"definition": definition("by key")}), 201)
    other = make_project()
    err(ekey.get(list_path(other)), 404, "not_found")
    err(ekey.post(list_path(other), {"definition": definition()}), 404, "not_found")


# ---- run now -------------------------------------------------------------------------------------

def test_run_now_inserts_a_pending_run(dash, admin, make_project):
    p = make_project()
    url = list_path(p)
    t = create(admin, p)
    ok(admin.put(f"{url}/{t['id']}", {"definition": definition("check")}))  # version 2
    r = admin.post(f"{url}/{t['id']}/run")
    run = ok(r, 202)
    assert run["status"] == "pending" and run["test_version"] == 2
    assert run["location"] == "default" and run["environment_id"] is None
    assert r.headers["Location"] == f"/api/v1/projects/{p['id']}/runs/{run['run_id']}"
    row = dash.sql("SELECT project_id::text, test_id::text, test_version, trigger, location, "
                   "status, schedule_id, overrides, lease_until <= now(), "
                   "fire_time > now() - interval '1 minute' FROM runs WHERE id = %s",
                   (run["run_id"],))
    assert row == [(p["id"], t["id"], 2, "manual", "default", "pending", None, None, True, True)]
    assert uuid.UUID(run["run_id"]).version == 7
    assert audit_actions(dash, run["run_id"]) == ["test.run"]


def test_run_now_end_to_end(dash, admin, make_project, pipeline):
    """A run-now is published by a real scheduler's sweep and run by a worker: it passes, with
    the overrides applied (a secret one hidden in the result), and the test list shows it."""
    p = make_project()
    secret = "tok-" + secrets.token_hex(8)
    d = {"name": "health", "variables": {"who": "the test"},
         "steps": [{"name": "healthz", "expect": {"status": 200},
                    "request": {"url": "${base}/healthz?who=${who}",
                                "headers": {"X-Token": "${token}"}}}]}
    t = create(admin, p, {"definition": json.dumps(d, indent=2)})
    run = ok(admin.post(f"{list_path(p)}/{t['id']}/run",
                        {"location": pipeline["location"],
                         "variables": {"base": dash.url, "who": "run-now",
                                       "token": {"value": secret, "secret": True}}}), 202)
    deadline, status = time.time() + 60, None
    while time.time() < deadline and status not in ("passed", "failed", "error"):
        time.sleep(0.2)
        (status,), = dash.sql("SELECT status FROM runs WHERE id = %s", (run["run_id"],))
    assert status == "passed", dash.sql("SELECT status, error FROM runs WHERE id = %s",
                                        (run["run_id"],))
    detail = ok(admin.get(f"/api/v1/projects/{p['id']}/runs/{run['run_id']}"))
    req = detail["result"]["steps"][0]["request"]
    assert "who=run-now" in req["url"], req
    assert {h["name"].lower(): h["value"] for h in req["headers"]}["x-token"] == "***"
    assert secret not in json.dumps(detail)
    item = ok(admin.get(list_path(p)))["items"][0]
    assert item["last_run"]["id"] == run["run_id"] and item["last_run"]["status"] == "passed"
    assert item["last_run"]["duration_ms"] > 0 and item["uptime_percent"] == 100
    assert [x["id"] for x in item["recent"]] == [run["run_id"]]
    assert ok(admin.get(list_path(p) + "?status=passing"))["items"][0]["id"] == t["id"]


def test_run_now_options(dash, admin, make_project):
    p, other = make_project(), make_project()
    url = list_path(p)
    t = create(admin, p)
    run_url = f"{url}/{t['id']}/run"
    env = dash.sql("INSERT INTO environments (project_id, name) VALUES (%s, 'staging') "
                   "RETURNING id::text", (p["id"],))[0][0]
    foreign = dash.sql("INSERT INTO environments (project_id, name) VALUES (%s, 'prod') "
                       "RETURNING id::text", (other["id"],))[0][0]
    run = ok(admin.post(run_url, {"environment_id": env, "location": "eu-west_1",
                                  "variables": {"user": "alice", "n": 3,
                                                "token": {"value": "s3cret!", "secret": True}}}),
             202)
    assert run["environment_id"] == env and run["location"] == "eu-west_1"
    (overrides,), = dash.sql("SELECT overrides FROM runs WHERE id = %s", (run["run_id"],))
    assert overrides["user"] == "alice" and overrides["n"] == 3
    assert overrides["token"]["secret"] is True and overrides["token"]["sealed"].startswith("v1:")
    assert "s3cret!" not in json.dumps(overrides)
    ok(admin.post(run_url, {"environment_id": None, "variables": None}), 202)
    e = err(admin.post(run_url, {"environment_id": foreign}), 400, "unknown_reference")
    assert e["field"] == "environment_id"
    for body, field in (({"environment_id": "nope"}, "environment_id"),
                        ({"location": "Bad Location"}, "location"),
                        ({"location": 5}, "location"),
                        ({"variables": [1]}, "variables"),
                        ({"variables": {"1bad": 1}}, "variables"),
                        ({"variables": {"x": {"value": 1, "secret": "yes"}}}, "variables")):
        assert err(admin.post(run_url, body), 400, "invalid_field")["field"] == field, body
    err(admin.post(run_url, {"when": "now"}), 400, "unknown_field")
    assert dash.sql("SELECT count(*) FROM runs WHERE test_id = %s", (t["id"],)) == [(2,)]


# ---- the test list -------------------------------------------------------------------------------

def add_run(dash, project, test, status, ago, finished=True, duration=120.5):
    """A run of `test` fired `ago` (an SQL interval) ago."""
    return dash.sql(
        "INSERT INTO runs (id, project_id, test_id, test_version, fire_time, trigger, location, "
        "status, finished_at, duration_ms) VALUES (gen_random_uuid(), %s, %s, 1, "
        "now() - %s::interval, 'schedule', 'default', %s, "
        "CASE WHEN %s THEN now() - %s::interval + interval '1 second' END, "
        "CASE WHEN %s THEN %s END) RETURNING id::text",
        (project["id"], test["id"], ago, status, finished, ago, finished, duration))[0][0]


def test_list_figures_and_filters(dash, admin, make_project):
    p = make_project()
    url = list_path(p)
    alpha = create(admin, p, {"definition": definition("Alpha API"), "tags": ["smoke"]})
    beta = create(admin, p, {"definition": definition("beta|pipe"), "tags": ["smoke", "eu"]})
    gamma = create(admin, p, {"definition": definition("gamma é")})
    for i in range(25):  # old failures: outside the 24 h window, partly in the last 20
        add_run(dash, p, alpha, "failed", f"{2 * 24 * 60 + i} minutes")
    last20 = [add_run(dash, p, alpha, s, f"{h} hours")
              for h, s in ((4, "passed"), (3, "failed"), (2, "passed"), (1, "passed"))]
    running = add_run(dash, p, alpha, "running", "1 minute", finished=False)
    add_run(dash, p, beta, "error", "30 minutes")
    dash.sql("INSERT INTO schedules (project_id, test_id, interval_s) VALUES (%s, %s, 60), "
             "(%s, %s, 300)", (p["id"], alpha["id"], p["id"], alpha["id"]))

    items = {x["name"]: x for x in ok(admin.get(url))["items"]}
    assert list(items) == ["Alpha API", "beta|pipe", "gamma é"]
    a = items["Alpha API"]
    assert a["last_run"]["id"] == running and a["last_run"]["status"] == "running"
    assert a["last_run"]["finished_at"] is None
    assert a["uptime_percent"] == 75 and a["schedules"] == 2 and a["tags"] == ["smoke"]
    assert len(a["recent"]) == 20
    assert [x["id"] for x in a["recent"][-4:]] == last20
    assert [x["status"] for x in a["recent"]] == ["failed"] * 16 + ["passed", "failed", "passed",
                                                                     "passed"]
    times = [x["fire_time"] for x in a["recent"]]
    assert times == sorted(times)
    b = items["beta|pipe"]
    assert b["uptime_percent"] == 0 and b["last_run"]["status"] == "error"
    assert b["last_run"]["duration_ms"] == 120.5 and [x["status"] for x in b["recent"]] == ["error"]
    g = items["gamma é"]
    assert g["last_run"] is None and g["uptime_percent"] is None and g["recent"] == []
    assert g["schedules"] == 0 and g["current_version"] == 1

    def names(query):
        return [x["name"] for x in ok(admin.get(url + query))["items"]]
    assert names("?status=passing") == ["Alpha API"]
    assert names("?status=failing") == ["beta|pipe"]
    assert names("?tag=smoke") == ["Alpha API", "beta|pipe"]
    assert names("?tag=eu") == ["beta|pipe"]
    assert names("?q=alpha") == ["Alpha API"] and names("?q=PIPE") == ["beta|pipe"]
    assert names("?q=%C3%89") == ["gamma é"]
    assert names("?q=") == ["Alpha API", "beta|pipe", "gamma é"]
    assert names("?tag=smoke&status=failing&q=beta") == ["beta|pipe"]
    assert names("?tag=none") == []
    # pages in name order; the cursor survives any name
    seen, cursor = [], None
    while True:
        page = ok(admin.get(url + "?limit=1" + (f"&cursor={cursor}" if cursor else "")))
        seen += [x["id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [alpha["id"], beta["id"], gamma["id"]]
    page = ok(admin.get(url + "?limit=2"))
    assert len(page["items"]) == 2 and page["next_cursor"]
    assert ok(admin.get(url + "?limit=3"))["next_cursor"] is None
    for bad in ("limit=0", "limit=201", "limit=x", "status=green", "tag=a%20b", "cursor=zz",
                "cursor=00", "q=" + "x" * 201):
        err(admin.get(url + "?" + bad), 400, "invalid_field")


# ---- the locator against many broken definitions -------------------------------------------------

RICH = {
    "name": "rich", "description": "d", "tags": ["a", "b"], "stop_on_failure": False,
    "variables": {"base": "http://127.0.0.1:9", "n": 3, "pw": {"value": "x", "secret": True}},
    "steps": [
        {"name": "login", "request": {"method": "POST", "url": "${base}/login",
                                      "headers": {"X-A": "1", "X-B": ["1", 2]},
                                      "json": {"user": "${user}", "list": [1, {"k": "v"}]},
                                      "timeout": "5s", "follow_redirects": 3, "verify_tls": True},
         "expect": {"status": [200, "2xx"]},
         "capture": {"token": "$.token", "sid": {"from": "header.Set-Cookie", "secret": True}},
         "assert": ["status == 200", {"that": "$.ok == true", "severity": "warning", "stop": True}],
         "schema": {"type": "object", "properties": {"a": {"minimum": 1}}}},
        {"request": {"url": "${base}/items", "form": {"q": "x"}}, "each": "$.items", "as": "it",
         "if": "status == 200", "stop_on_failure": True},
    ],
}
JUNK = [123, -1, 1.5, "str", "", "${", "status =>", [], [1, "x"], {}, {"zz": 1}, None, True]


def _nodes(value, pointer=""):
    yield pointer
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _nodes(v, pointer + "/" + k.replace("~", "~0").replace("/", "~1"))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nodes(v, f"{pointer}/{i}")


def _resolve(doc, pointer):
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def _set(doc, pointer, value):
    parts = pointer.split("/")[1:]
    parent = _resolve(doc, "/" + "/".join(parts[:-1])) if len(parts) > 1 else doc
    last = parts[-1].replace("~1", "/").replace("~0", "~")
    parent[int(last) if isinstance(parent, list) else last] = value


def _path_of(doc, pointer):
    """The dotted path the dashboard writes for `pointer`, and the value there."""
    out, node = "", doc
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            out, node = out + f"[{part}]", node[int(part)]
        else:
            plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$-]*", part)
            out += (("." if out else "") + part) if plain else f"[{json.dumps(part)}]"
            node = node[part]
    return out, node


def test_every_located_spot_exists(admin, make_project):
    """Break a rich definition in many ways: every refusal names a spot that exists in the
    document, its path and pointer agree, and line/column point at that spot in the text (at
    its value, at the key for a key's problem, inside the string for a column)."""
    rnd = random.Random(6)
    p = make_project()
    url = list_path(p) + "/validate"
    pointers = [x for x in _nodes(RICH) if x]
    refused, deep = 0, 0
    for i in range(300):
        doc = copy.deepcopy(RICH)
        target = rnd.choice(pointers)
        if rnd.random() < 0.15:  # an unknown key next to the target
            parent = _resolve(doc, target.rsplit("/", 1)[0])
            if isinstance(parent, dict):
                parent["unknown_" + str(i)] = 1
        else:
            _set(doc, target, copy.deepcopy(rnd.choice(JUNK)))
        text = json.dumps(doc, indent=rnd.choice([None, 1, 2, "\t"]),
                          ensure_ascii=rnd.random() < .5)
        r = admin.post(url, {"definition": text})
        if r.status_code == 200:
            continue
        e = err(r, 400, "invalid_definition")
        refused += 1
        path, spot = _path_of(doc, e["pointer"])  # fails when the pointer names nothing
        assert path == e["path"], (e, text)
        deep += path.count(".") + path.count("[") >= 2
        lines = text.split("\n")
        assert 1 <= e["line"] <= len(lines) and 1 <= e["column"] <= len(lines[e["line"] - 1]), e
        at = lines[e["line"] - 1][e["column"] - 1:]
        where, _, what = e["message"].partition(": ")
        if re.match(r"(.*: )?column \d+: ", what):
            assert isinstance(spot, str), e  # a column inside an expression, URL or template
        elif re.match(r"(unknown key|variable name) `", what):  # at the key itself
            key = e["pointer"].rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")
            assert at.startswith(json.dumps(key)), (e, at[:30])
        else:
            assert at[:1] == json.dumps(spot)[:1], (e, at[:30], spot, text)
    assert refused > 150 and deep > 100, (refused, deep)
