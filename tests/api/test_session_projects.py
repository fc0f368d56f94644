"""Login, sessions, CSRF and projects/members through the API."""
from conftest import ADMIN_EMAIL, Client, err, ok


def test_login_wrong_password(anon):
    err(anon.post("/api/v1/session", {"email": ADMIN_EMAIL, "password": "nope"}), 401,
        "invalid_credentials")


def test_login_sets_httponly_cookie(dash, anon):
    from conftest import ADMIN_PASSWORD
    r = anon.post("/api/v1/session", {"email": ADMIN_EMAIL.upper(), "password": ADMIN_PASSWORD})
    assert r.status_code == 201, r.text
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert r.json()["user"]["is_admin"] is True


def test_whoami_needs_login(anon):
    err(anon.get("/api/v1/session"), 401, "unauthenticated")


def test_csrf_required_on_cookie_writes(admin):
    err(admin.post("/api/v1/projects", {"slug": "x-csrf", "name": "x"}, csrf=False), 403,
        "csrf_failed")
    bad = admin.request("POST", "/api/v1/projects", json_body={"slug": "x-csrf", "name": "x"},
                        headers={"X-CSRF-Token": "wrong"})
    err(bad, 403, "csrf_failed")


def test_logout_ends_session(dash, admin):
    ok(admin.delete("/api/v1/session"), 204)
    err(admin.get("/api/v1/session"), 401)


def test_project_crud(admin, make_project):
    p = make_project()
    assert p["role"] == "owner" and p["tests"] == 0
    got = ok(admin.get(f"/api/v1/projects/{p['id']}"))
    assert got["slug"] == p["slug"]
    upd = ok(admin.patch(f"/api/v1/projects/{p['id']}", {"name": "Renamed"}))
    assert upd["name"] == "Renamed"
    err(admin.post("/api/v1/projects", {"slug": p["slug"], "name": "dup"}), 409, "conflict")
    ok(admin.delete(f"/api/v1/projects/{p['id']}"), 204)
    err(admin.get(f"/api/v1/projects/{p['id']}"), 404, "not_found")


def test_project_bad_input(admin):
    err(admin.post("/api/v1/projects", {"slug": "Bad Slug!", "name": "x"}), 400, "invalid_field")
    err(admin.post("/api/v1/projects", {"slug": "ok-slug"}), 400, "missing_field")
    err(admin.post("/api/v1/projects", {"slug": "ok-slug", "name": 3}), 400, "invalid_field")
    err(admin.post("/api/v1/projects", {"slug": "ok", "name": "x", "extra": 1}), 400,
        "unknown_field")
    err(admin.request("POST", "/api/v1/projects", data="{not json",
                      headers={"Content-Type": "application/json"}), 400, "invalid_json")
    err(admin.request("POST", "/api/v1/projects", data="[1,2]",
                      headers={"Content-Type": "application/json"}), 400, "invalid_json")
    err(admin.request("POST", "/api/v1/projects", data="a=b",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
    err(admin.request("POST", "/api/v1/projects", data="{" + " " * (2 << 20) + "}",
                      headers={"Content-Type": "application/json"}), 413, "body_too_large")
    err(admin.get("/api/v1/projects/not-a-uuid"), 404, "not_found")
    err(admin.get("/api/v1/projects/00000000-0000-0000-0000-000000000000"), 404, "not_found")
    err(admin.request("PUT", "/api/v1/projects"), 405, "method_not_allowed")


def test_last_owner_cannot_leave(admin, make_project):
    p = make_project()
    me = admin.user["id"]
    err(admin.delete(f"/api/v1/projects/{p['id']}/members/{me}"), 409, "last_owner")
    err(admin.put(f"/api/v1/projects/{p['id']}/members/{me}", {"role": "viewer"}), 409,
        "last_owner")


def test_roles_matrix_projects(admin, make_project, member, make_user):
    p = make_project()
    viewer = member(p, "viewer")
    editor = member(p, "editor")
    outsider = make_user()
    pid = p["id"]
    # a viewer reads but cannot write
    ok(viewer.get(f"/api/v1/projects/{pid}"))
    err(viewer.patch(f"/api/v1/projects/{pid}", {"name": "x"}), 403, "forbidden")
    # an editor cannot manage the project itself (owner only)
    err(editor.patch(f"/api/v1/projects/{pid}", {"name": "x"}), 403, "forbidden")
    err(editor.post(f"/api/v1/projects/{pid}/members", {"email": outsider.user["email"],
                                                        "role": "owner"}), 403, "forbidden")
    # a user of another project does not even see it
    err(outsider.get(f"/api/v1/projects/{pid}"), 404, "not_found")
    assert pid not in [x["id"] for x in ok(outsider.get("/api/v1/projects"))["items"]]
    assert pid in [x["id"] for x in ok(viewer.get("/api/v1/projects"))["items"]]
    # members list shows roles
    roles = {m["email"]: m["role"] for m in ok(viewer.get(f"/api/v1/projects/{pid}/members"))["items"]}
    assert roles[viewer.user["email"]] == "viewer" and roles[editor.user["email"]] == "editor"
