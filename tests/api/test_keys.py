"""API keys through the API: an owner creates (token shown once), lists and revokes keys; a key
acts in its one project with its role (viewer cannot write, another project is invisible), a
revoked, expired or malformed key is refused at once, and a key cannot mint keys."""
import hashlib
import re
import time
import uuid

from conftest import Client, err, ok

KEY_FIELDS = {"id", "name", "role", "prefix", "created_at", "created_by", "last_used_at",
              "expires_at", "revoked_at"}
TOKEN_RE = re.compile(r"^rpk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")


def new_key(owner, project, role="viewer", **kw):
    body = {"name": kw.pop("name", f"ci-{role}"), "role": role}
    body.update(kw)
    return ok(owner.post(f"/api/v1/projects/{project['id']}/api-keys", body), 201)


def key_client(dash, key):
    return Client(dash.url, api_key=key["token"])


def test_create_list_revoke(dash, admin, make_project):
    p = make_project()
    pid = p["id"]
    k = new_key(admin, p, "editor", name="deploy pipeline")
    assert set(k) == KEY_FIELDS | {"token"}
    m = TOKEN_RE.match(k["token"])
    assert m, k["token"]
    assert m.group(1) == k["prefix"]
    assert k["name"] == "deploy pipeline" and k["role"] == "editor"
    assert k["created_by"] == admin.user["id"]
    assert k["expires_at"] is None and k["revoked_at"] is None and k["last_used_at"] is None
    # only the prefix and the SHA-256 of the token are kept
    row = dash.sql("SELECT prefix, encode(token_hash, 'hex') FROM api_keys WHERE id = %s",
                   (k["id"],))[0]
    assert row == (k["prefix"], hashlib.sha256(k["token"].encode()).hexdigest())
    # the list never shows the token or its hash
    r = admin.get(f"/api/v1/projects/{pid}/api-keys")
    listed = ok(r)["items"]
    assert [x["id"] for x in listed] == [k["id"]]
    assert set(listed[0]) == KEY_FIELDS
    assert m.group(2) not in r.text and row[1] not in r.text
    # the key works, and its use is recorded
    c = key_client(dash, k)
    who = ok(c.get("/api/v1/session"))["api_key"]
    assert who == {"id": k["id"], "name": "deploy pipeline", "project_id": pid, "role": "editor"}
    assert ok(c.get(f"/api/v1/projects/{pid}"))["role"] == "editor"
    assert ok(admin.get(f"/api/v1/projects/{pid}/api-keys"))["items"][0]["last_used_at"]
    # a second key is listed first (newest first)
    k2 = new_key(admin, p, "viewer", expires_in_days=30)
    assert k2["expires_at"] and k2["token"] != k["token"] and k2["prefix"] != k["prefix"]
    days = dash.sql("SELECT extract(epoch FROM expires_at - created_at) / 86400 FROM api_keys "
                    "WHERE id = %s", (k2["id"],))[0][0]
    assert abs(float(days) - 30) < 0.01
    assert [x["id"] for x in ok(admin.get(f"/api/v1/projects/{pid}/api-keys"))["items"]] == \
        [k2["id"], k["id"]]
    # revoking stops the key at once; revoking again is harmless; the row stays listed
    ok(admin.delete(f"/api/v1/projects/{pid}/api-keys/{k['id']}"), 204)
    err(c.get(f"/api/v1/projects/{pid}"), 401, "invalid_api_key")
    ok(admin.delete(f"/api/v1/projects/{pid}/api-keys/{k['id']}"), 204)
    items = {x["id"]: x for x in ok(admin.get(f"/api/v1/projects/{pid}/api-keys"))["items"]}
    assert items[k["id"]]["revoked_at"] and items[k2["id"]]["revoked_at"] is None
    ok(key_client(dash, k2).get(f"/api/v1/projects/{pid}"))  # the other key still works
    audit = dash.sql("SELECT action, target_id, actor FROM audit_log WHERE project_id = %s "
                     "AND action LIKE 'api_key.%%' ORDER BY id", (pid,))
    assert audit == [("api_key.create", k["id"], f"user:{admin.user['email']}"),
                     ("api_key.create", k2["id"], f"user:{admin.user['email']}"),
                     ("api_key.revoke", k["id"], f"user:{admin.user['email']}")]


def test_viewer_key_reads_but_cannot_write(dash, admin, make_project, make_user):
    p = make_project()
    pid = p["id"]
    outsider = make_user()
    viewer = key_client(dash, new_key(admin, p, "viewer"))
    assert ok(viewer.get(f"/api/v1/projects/{pid}"))["role"] == "viewer"
    ok(viewer.get(f"/api/v1/projects/{pid}/members"))
    err(viewer.post(f"/api/v1/projects/{pid}/members",
                    {"email": outsider.user["email"], "role": "viewer"}), 403, "forbidden")
    err(viewer.patch(f"/api/v1/projects/{pid}", {"name": "renamed"}), 403, "forbidden")
    err(viewer.delete(f"/api/v1/projects/{pid}"), 403, "forbidden")
    # an editor key is no owner either
    editor = key_client(dash, new_key(admin, p, "editor"))
    err(editor.post(f"/api/v1/projects/{pid}/members",
                    {"email": outsider.user["email"], "role": "viewer"}), 403, "forbidden")
    members = ok(admin.get(f"/api/v1/projects/{pid}/members"))["items"]
    assert outsider.user["email"] not in [x["email"] for x in members]
    assert ok(admin.get(f"/api/v1/projects/{pid}"))["name"] == p["name"]
    # user-level and admin-level routes refuse keys
    err(viewer.post("/api/v1/projects", {"slug": "from-a-key", "name": "x"}), 403, "forbidden")
    err(editor.get("/api/v1/users"), 403, "forbidden")
    err(editor.get(f"/api/v1/users/{admin.user['id']}"), 403, "forbidden")
    err(editor.get("/api/v1/audit"), 403, "forbidden")


def test_key_is_bound_to_its_project(dash, admin, make_project):
    a, b = make_project(), make_project()
    c = key_client(dash, new_key(admin, a, "editor"))
    err(c.get(f"/api/v1/projects/{b['id']}"), 404, "not_found")
    err(c.get(f"/api/v1/projects/{b['id']}/members"), 404, "not_found")
    err(c.get(f"/api/v1/projects/{b['id']}/api-keys"), 404, "not_found")
    assert [x["id"] for x in ok(c.get("/api/v1/projects"))["items"]] == [a["id"]]


def test_key_cannot_mint_keys(dash, admin, make_project):
    p = make_project()
    pid = p["id"]
    k = new_key(admin, p, "editor")
    c = key_client(dash, k)
    err(c.post(f"/api/v1/projects/{pid}/api-keys", {"name": "x", "role": "viewer"}), 403,
        "forbidden")
    err(c.get(f"/api/v1/projects/{pid}/api-keys"), 403, "forbidden")
    err(c.delete(f"/api/v1/projects/{pid}/api-keys/{k['id']}"), 403, "forbidden")
    # a key presented together with an owner's cookie still acts as the key
    mixed = admin.request("POST", f"/api/v1/projects/{pid}/api-keys",
                          json_body={"name": "x", "role": "viewer"},
                          headers={"Authorization": f"Bearer {k['token']}"})
    err(mixed, 403, "forbidden")
    assert len(ok(admin.get(f"/api/v1/projects/{pid}/api-keys"))["items"]) == 1


def test_bad_authorization_headers(dash, admin, make_project):
    p = make_project()
    pid = p["id"]
    k = new_key(admin, p)
    prefix, secret = TOKEN_RE.match(k["token"]).groups()
    bad = ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer rpk_", "Bearer rpk_short_x",
           f"Bearer {k['token'][:-1]}", f"Bearer {k['token']}x",
           f"Bearer rpk_{prefix}_{'A' * 43}", f"Bearer rpk_{'z' * 12}_{secret}",
           f"Bearer rpk_{prefix}-{secret}", f"Bearer xpk_{prefix}_{secret}",
           "Bearer " + "rpk_" + "a" * 300, "Token " + k["token"]]
    for h in bad:
        r = Client(dash.url).get(f"/api/v1/projects/{pid}", headers={"Authorization": h})
        err(r, 401, "invalid_api_key")
    # a bad key is refused even where no login is needed, and beats a valid cookie
    err(admin.get(f"/api/v1/projects/{pid}", headers={"Authorization": "Bearer nope"}), 401)
    ok(Client(dash.url).get(f"/api/v1/projects/{pid}",
                            headers={"Authorization": f"bearer {k['token']}"}))


def test_expired_key(dash, admin, make_project):
    p = make_project()
    k = new_key(admin, p, expires_in_days=1)
    c = key_client(dash, k)
    ok(c.get(f"/api/v1/projects/{p['id']}"))
    dash.sql("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = %s",
             (k["id"],))
    # a copy trusts a key it verified for at most 5 s (dashboard/auth.c, docs/api.md)
    deadline = time.time() + 6
    while c.get(f"/api/v1/projects/{p['id']}").status_code == 200:
        assert time.time() < deadline, "an expired key was still accepted after 6 s"
        time.sleep(0.2)
    err(c.get(f"/api/v1/projects/{p['id']}"), 401, "invalid_api_key")


def test_session_roles(dash, admin, anon, make_project, member, make_user):
    p = make_project()
    pid = p["id"]
    k = new_key(admin, p)
    owner, editor, viewer = member(p, "owner"), member(p, "editor"), member(p, "viewer")
    outsider = make_user()
    # another owner manages keys
    mine = ok(owner.post(f"/api/v1/projects/{pid}/api-keys", {"name": "x", "role": "viewer"}),
              201)
    assert mine["created_by"] == owner.user["id"]
    assert len(ok(owner.get(f"/api/v1/projects/{pid}/api-keys"))["items"]) == 2
    ok(owner.delete(f"/api/v1/projects/{pid}/api-keys/{mine['id']}"), 204)
    for c in (editor, viewer):
        err(c.get(f"/api/v1/projects/{pid}/api-keys"), 403, "forbidden")
        err(c.post(f"/api/v1/projects/{pid}/api-keys", {"name": "x", "role": "viewer"}), 403,
            "forbidden")
        err(c.delete(f"/api/v1/projects/{pid}/api-keys/{k['id']}"), 403, "forbidden")
    err(outsider.get(f"/api/v1/projects/{pid}/api-keys"), 404, "not_found")
    err(outsider.post(f"/api/v1/projects/{pid}/api-keys", {"name": "x", "role": "viewer"}), 404)
    err(outsider.delete(f"/api/v1/projects/{pid}/api-keys/{k['id']}"), 404)
    err(anon.get(f"/api/v1/projects/{pid}/api-keys"), 401, "unauthenticated")
    err(anon.post(f"/api/v1/projects/{pid}/api-keys", {"name": "x", "role": "viewer"}), 401)
    err(admin.post(f"/api/v1/projects/{pid}/api-keys", {"name": "x", "role": "viewer"},
                   csrf=False), 403, "csrf_failed")
    ok(key_client(dash, k).get(f"/api/v1/projects/{pid}"))  # nobody above revoked it


def test_bad_input(dash, admin, make_project):
    p, other = make_project(), make_project()
    pid = p["id"]
    url = f"/api/v1/projects/{pid}/api-keys"

    def bad(body, code, field=None):
        e = err(admin.post(url, body), 400, code)
        if field:
            assert e["field"] == field, e

    bad({"role": "viewer"}, "missing_field", "name")
    bad({"name": "x"}, "missing_field", "role")
    bad({"name": "", "role": "viewer"}, "invalid_field", "name")
    bad({"name": "n" * 101, "role": "viewer"}, "invalid_field", "name")
    bad({"name": 1, "role": "viewer"}, "invalid_field", "name")
    bad({"name": "x", "role": "owner"}, "invalid_field", "role")
    bad({"name": "x", "role": "admin"}, "invalid_field", "role")
    bad({"name": "x", "role": ["viewer"]}, "invalid_field", "role")
    for days in (0, -1, 3651, "30", 1.5, True):
        bad({"name": "x", "role": "viewer", "expires_in_days": days}, "invalid_field",
            "expires_in_days")
    bad({"name": "x", "role": "viewer", "token": "rpk_mine"}, "unknown_field", "token")
    # null and the bounds are fine
    assert new_key(admin, p, expires_in_days=None)["expires_at"] is None
    new_key(admin, p, expires_in_days=1)
    new_key(admin, p, expires_in_days=3650)
    err(admin.request("POST", url, data="{\"name\":", headers={"Content-Type": "application/json"}),
        400, "invalid_json")
    err(admin.request("POST", url, data="", headers={"Content-Type": "application/json"}), 400,
        "invalid_json")
    err(admin.request("POST", url, data="name=x", headers={"Content-Type": "text/plain"}), 415)
    err(admin.request("POST", url, data="{" + " " * (2 << 20) + "}",
                      headers={"Content-Type": "application/json"}), 413)
    # unknown, malformed, or another project's key ids
    k = new_key(admin, other)
    err(admin.delete(f"{url}/{uuid.uuid4()}"), 404, "not_found")
    err(admin.delete(f"{url}/not-a-key"), 404, "not_found")
    err(admin.delete(f"{url}/{k['id']}"), 404, "not_found")
    ok(key_client(dash, k).get(f"/api/v1/projects/{other['id']}"))  # untouched
    err(admin.get("/api/v1/projects/not-a-uuid/api-keys"), 404, "not_found")
    # an administrator is owner everywhere, but a project that does not exist is still 404
    nowhere = f"/api/v1/projects/{uuid.uuid4()}/api-keys"
    err(admin.get(nowhere), 404, "not_found")
    err(admin.post(nowhere, {"name": "x", "role": "viewer"}), 404, "not_found")
    err(admin.delete(f"{nowhere}/{k['id']}"), 404, "not_found")
    err(admin.request("PUT", url), 405, "method_not_allowed")
    assert len(ok(admin.get(url))["items"]) == 3


def test_keys_go_with_their_project(dash, admin, make_project):
    p = make_project()
    empty = ok(admin.get(f"/api/v1/projects/{make_project()['id']}/api-keys"))
    assert empty == {"items": []}
    k = new_key(admin, p)
    ok(admin.delete(f"/api/v1/projects/{p['id']}"), 204)
    err(key_client(dash, k).get("/api/v1/projects"), 401, "invalid_api_key")
    assert dash.sql("SELECT count(*) FROM api_keys WHERE id = %s", (k["id"],))[0][0] == 0
