"""The audit log through the API: a project's log for its owners, the whole log for
administrators; newest first, action-prefix filter, cursor pagination, and who did what from
where (the request id of each change is the X-Request-Id its answer carried)."""
import base64
import uuid

from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Client, err, ok

ENTRY_FIELDS = {"id", "at", "actor", "action", "target_type", "target_id", "details", "ip",
                "request_id", "project_id"}


def b64(s):
    return base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")


def pages(client, url, **params):
    """Every item of a paginated list, following next_cursor; returns (items, page count)."""
    items, n, cursor = [], 0, None
    while True:
        q = dict(params)
        if cursor:
            q["cursor"] = cursor
        page = ok(client.get(url, params=q))
        assert set(page) == {"items", "next_cursor"}
        items += page["items"]
        n += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return items, n
        assert page["items"], "a page with a next cursor is never empty"


def test_project_log(dash, admin, make_project, make_user):
    p = make_project()
    pid = p["id"]
    u = make_user()
    r = admin.post(f"/api/v1/projects/{pid}/members", {"email": u.user["email"], "role": "viewer"})
    ok(r, 201)
    add_request = r.headers["X-Request-Id"]
    ok(admin.put(f"/api/v1/projects/{pid}/members/{u.user['id']}", {"role": "editor"}))
    key = ok(admin.post(f"/api/v1/projects/{pid}/api-keys", {"name": "ci", "role": "viewer"}), 201)
    ok(admin.delete(f"/api/v1/projects/{pid}/api-keys/{key['id']}"), 204)
    ok(admin.delete(f"/api/v1/projects/{pid}/members/{u.user['id']}"), 204)
    ok(admin.patch(f"/api/v1/projects/{pid}", {"name": "Renamed"}))

    page = ok(admin.get(f"/api/v1/projects/{pid}/audit"))
    items = page["items"]
    assert page["next_cursor"] is None
    assert [x["action"] for x in items] == ["project.update", "member.remove", "api_key.revoke",
                                            "api_key.create", "member.set", "member.set",
                                            "project.create"]
    ids = [x["id"] for x in items]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    assert all(set(x) == ENTRY_FIELDS for x in items)
    assert all(x["project_id"] == pid and x["actor"] == f"user:{ADMIN_EMAIL}" for x in items)
    assert all(x["ip"] == "127.0.0.1" for x in items)
    added = items[-2]
    assert added["target_type"] == "user" and added["target_id"] == u.user["id"]
    assert added["details"] == {"role": "viewer"} and items[-3]["details"] == {"role": "editor"}
    assert added["request_id"] == add_request
    assert items[3]["target_id"] == key["id"] and items[3]["details"]["prefix"] == key["prefix"]
    assert key["token"] not in str(items)
    # the prefix filter
    members = ok(admin.get(f"/api/v1/projects/{pid}/audit", params={"action": "member."}))
    assert [x["action"] for x in members["items"]] == ["member.remove", "member.set", "member.set"]
    assert ok(admin.get(f"/api/v1/projects/{pid}/audit",
                        params={"action": "api_key.revoke"}))["items"][0]["target_id"] == key["id"]
    assert ok(admin.get(f"/api/v1/projects/{pid}/audit", params={"action": "nothing."}))[
        "items"] == []
    assert ok(admin.get(f"/api/v1/projects/{pid}/audit", params={"action": "%"}))["items"] == []
    assert ok(admin.get(f"/api/v1/projects/{pid}/audit", params={"action": "member_"}))[
        "items"] == []  # no LIKE wildcards
    assert len(ok(admin.get(f"/api/v1/projects/{pid}/audit", params={"action": ""}))["items"]) == 7


def test_pagination(admin, make_project):
    p = make_project()
    pid = p["id"]
    for i in range(6):
        ok(admin.patch(f"/api/v1/projects/{pid}", {"name": f"name {i}"}))
    url = f"/api/v1/projects/{pid}/audit"
    everything = ok(admin.get(url))["items"]
    assert len(everything) == 7
    for limit in (1, 2, 3, 7):
        got, n = pages(admin, url, limit=limit)
        assert [x["id"] for x in got] == [x["id"] for x in everything]
        assert n == (7 + limit - 1) // limit
    first = ok(admin.get(url, params={"limit": 7}))
    assert first["next_cursor"] is None  # exactly the number of rows: no empty last page
    # the filter holds across pages
    got, _ = pages(admin, url, limit=2, action="project.update")
    assert [x["action"] for x in got] == ["project.update"] * 6
    # rows written after the first page do not shift the next pages
    page1 = ok(admin.get(url, params={"limit": 3}))
    ok(admin.patch(f"/api/v1/projects/{pid}", {"name": "later"}))
    page2 = ok(admin.get(url, params={"limit": 3, "cursor": page1["next_cursor"]}))
    assert [x["id"] for x in page2["items"]] == [x["id"] for x in everything[3:6]]


def test_bad_query(admin, make_project):
    p = make_project()
    url = f"/api/v1/projects/{p['id']}/audit"
    for limit in ("0", "201", "-1", "x", "", "1.5", "99999999999999999999999"):
        e = err(admin.get(url, params={"limit": limit}), 400, "invalid_field")
        assert e["field"] == "limit"
    ok(admin.get(url, params={"limit": "200"}))
    for cursor in ("!!!", "a", b64("abc"), b64("0"), b64("-5"), b64("12a"), b64("1" * 20),
                   b64("9999999999999999999"), "x" * 100, b64(str(uuid.uuid4())),
                   base64.b64encode(b"12").decode()):
        e = err(admin.get(url, params={"cursor": cursor}), 400, "invalid_field")
        assert e["field"] == "cursor", cursor
    assert ok(admin.get(url, params={"cursor": b64("1")}))["items"] == []  # valid, nothing older
    e = err(admin.get(url, params={"action": "a" * 101}), 400, "invalid_field")
    assert e["field"] == "action"
    err(admin.get("/api/v1/audit", params={"project": "not-a-uuid"}), 400, "invalid_field")
    err(admin.get("/api/v1/audit", params={"limit": "0"}), 400, "invalid_field")
    err(admin.get("/api/v1/audit", params={"cursor": "***"}), 400, "invalid_field")
    err(admin.get("/api/v1/projects/not-a-uuid/audit"), 404, "not_found")
    err(admin.get(f"/api/v1/projects/{uuid.uuid4()}/audit"), 404, "not_found")
    err(admin.post(url, {}), 405, "method_not_allowed")


def test_access(dash, admin, anon, make_project, member, make_user):
    p, q = make_project(), make_project()
    pid = p["id"]
    owner, editor, viewer = member(p, "owner"), member(p, "editor"), member(p, "viewer")
    outsider = make_user()
    key = ok(admin.post(f"/api/v1/projects/{pid}/api-keys", {"name": "ci", "role": "editor"}), 201)
    kc = Client(dash.url, api_key=key["token"])
    url = f"/api/v1/projects/{pid}/audit"
    # an owner reads the project's log, and only this project's rows
    items = ok(owner.get(url))["items"]
    assert items and all(x["project_id"] == pid for x in items)
    assert q["id"] not in str(items)
    for c in (editor, viewer, kc):
        err(c.get(url), 403, "forbidden")
    err(outsider.get(url), 404, "not_found")
    err(anon.get(url), 401, "unauthenticated")
    # the whole log is for administrators only
    for c in (owner, editor, viewer, outsider, kc):
        err(c.get("/api/v1/audit"), 403, "forbidden")
    err(anon.get("/api/v1/audit"), 401, "unauthenticated")
    # an admin's session sees everything through its owner-everywhere role
    assert [x["id"] for x in ok(admin.get(url))["items"]] == [x["id"] for x in items]


def test_admin_log(dash, admin, make_project, make_user):
    # a login, a user change and a project deletion are project-less rows
    Client(dash.url).login(ADMIN_EMAIL, ADMIN_PASSWORD)
    u = make_user()
    ok(admin.patch(f"/api/v1/users/{u.user['id']}", {"name": "Renamed User"}))
    ok(admin.delete(f"/api/v1/users/{u.user['id']}"), 204)
    p, q = make_project(), make_project()
    ok(admin.delete(f"/api/v1/projects/{q['id']}"), 204)

    newest = ok(admin.get("/api/v1/audit", params={"limit": 10}))["items"]
    assert all(set(x) == ENTRY_FIELDS for x in newest)
    # a deleted project's own rows go with it; its deletion stays, project-less
    assert [x["action"] for x in newest[:3]] == ["project.delete", "project.create", "user.delete"]
    assert newest[0]["project_id"] is None and newest[0]["target_id"] == q["id"]
    assert newest[1]["project_id"] == p["id"] and newest[1]["target_id"] == p["id"]
    users = ok(admin.get("/api/v1/audit", params={"action": "user."}))["items"]
    mine = [x for x in users if x["target_id"] == u.user["id"]]
    assert [x["action"] for x in mine] == ["user.delete", "user.update", "user.create"]
    assert all(x["project_id"] is None for x in mine)
    assert mine[1]["details"] == {"changed": ["name"]}
    assert mine[0]["details"] == {"email": u.user["email"]}
    logins = ok(admin.get("/api/v1/audit", params={"action": "session.login", "limit": 200}))
    assert any(x["target_id"] == admin.user["id"] for x in logins["items"])
    # ?project= narrows to one project, the same rows as the project's own log
    only = ok(admin.get("/api/v1/audit", params={"project": p["id"]}))["items"]
    assert only and only == ok(admin.get(f"/api/v1/projects/{p['id']}/audit"))["items"]
    assert ok(admin.get("/api/v1/audit", params={"project": str(uuid.uuid4())}))["items"] == []
    # the whole log pages like a project's
    everything = ok(admin.get("/api/v1/audit", params={"limit": 200}))["items"]
    got, _ = pages(admin, "/api/v1/audit", limit=7)
    assert [x["id"] for x in got][:len(everything)] == [x["id"] for x in everything]
    total = dash.sql("SELECT count(*) FROM audit_log")[0][0]
    assert len(got) == total
