"""Users through the API: administrators create, list, change and delete accounts; a user reads
and changes their own name and password; the installation never loses its last administrator;
disabling a user or changing a password ends sessions; every change is audited."""
import threading
import time
import uuid

import psycopg2
import pytest

from conftest import ADMIN_EMAIL, Client, err, ok

USER_FIELDS = {"id", "email", "name", "is_admin", "disabled", "created_at"}


def new_email():
    return f"u-{uuid.uuid4().hex[:10]}@example.com"


def create(admin, **kw):
    body = {"email": new_email(), "name": "Someone", "password": "long-enough-password"}
    body.update(kw)
    return ok(admin.post("/api/v1/users", body), 201)


def test_create_get_list(dash, admin):
    email = new_email()
    u = ok(admin.post("/api/v1/users", {"email": email.upper(), "name": "Ann Example",
                                        "password": "correct horse battery"}), 201)
    assert set(u) == USER_FIELDS
    assert u["email"] == email and u["name"] == "Ann Example"
    assert u["is_admin"] is False and u["disabled"] is False
    # stored lower-case and argon2id-hashed, never in clear
    row = dash.sql("SELECT email, password_hash FROM users WHERE id = %s", (u["id"],))[0]
    assert row[0] == email and row[1].startswith("$argon2id$")
    assert ok(admin.get(f"/api/v1/users/{u['id']}")) == u
    items = ok(admin.get("/api/v1/users"))["items"]
    emails = [x["email"] for x in items]
    assert emails == sorted(emails) and email in emails and ADMIN_EMAIL in emails
    assert all(set(x) == USER_FIELDS for x in items)
    # the new user can log in with the e-mail in any case
    Client(dash.url).login(email.upper(), "correct horse battery")
    # an admin created as such is one
    a = create(admin, is_admin=True)
    assert a["is_admin"] is True
    audit = dash.sql("SELECT actor, details->>'email' FROM audit_log WHERE action = 'user.create' "
                     "AND target_id = %s", (u["id"],))
    assert audit == [(f"user:{ADMIN_EMAIL}", email)]


def test_create_duplicate_email(admin):
    u = create(admin)
    e = err(admin.post("/api/v1/users", {"email": u["email"].upper(), "name": "x",
                                         "password": "long-enough-password"}), 409, "conflict")
    assert e["field"] == "email"


def test_create_bad_input(admin):
    good = {"email": new_email(), "name": "x", "password": "long-enough-password"}

    def bad(change, code, field=None, drop=None):
        body = dict(good, **change)
        if drop:
            del body[drop]
        e = err(admin.post("/api/v1/users", body), 400, code)
        if field:
            assert e["field"] == field, e

    bad({}, "missing_field", "email", drop="email")
    bad({}, "missing_field", "name", drop="name")
    bad({}, "missing_field", "password", drop="password")
    for email in ["no-at-sign.example.com", "two@@example.com", "a@b@example.com", "@example.com",
                  "sp ace@example.com", "user@localhost", "user@example..com", "user@.example.com",
                  "user@example.com.", "a\"b@example.com", "x" * 250 + "@example.com", "ab"]:
        bad({"email": email}, "invalid_field", "email")
    bad({"email": 7}, "invalid_field", "email")
    bad({"name": ""}, "invalid_field", "name")
    bad({"name": "n" * 201}, "invalid_field", "name")
    bad({"name": None}, "invalid_field", "name")
    bad({"password": "short"}, "invalid_field", "password")
    bad({"password": "é" * 600}, "invalid_field", "password")  # 600 chars but 1200 bytes
    bad({"password": 1234567890123}, "invalid_field", "password")
    bad({"is_admin": "yes"}, "invalid_field", "is_admin")
    bad({"role": "admin"}, "unknown_field", "role")
    err(admin.request("POST", "/api/v1/users", data="{\"email\": ",
                      headers={"Content-Type": "application/json"}), 400, "invalid_json")
    err(admin.request("POST", "/api/v1/users", data="[]",
                      headers={"Content-Type": "application/json"}), 400, "invalid_json")
    err(admin.request("POST", "/api/v1/users", data="email=x",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}), 415,
        "unsupported_media_type")
    err(admin.request("POST", "/api/v1/users", data="{" + " " * (2 << 20) + "}",
                      headers={"Content-Type": "application/json"}), 413, "body_too_large")
    err(admin.post("/api/v1/users", good, csrf=False), 403, "csrf_failed")
    assert admin.get("/api/v1/users").text.count(good["email"]) == 0


def test_access_matrix(admin, anon, make_user):
    alice, bob = make_user(), make_user()
    aid, bid = alice.user["id"], bob.user["id"]
    # not logged in
    err(anon.get("/api/v1/users"), 401, "unauthenticated")
    err(anon.post("/api/v1/users", {"email": new_email(), "name": "x",
                                    "password": "long-enough-password"}), 401)
    err(anon.get(f"/api/v1/users/{aid}"), 401)
    err(anon.patch(f"/api/v1/users/{aid}", {"name": "x"}), 401)
    err(anon.delete(f"/api/v1/users/{aid}"), 401)
    # a plain user: no list, no create, no delete; sees only themself
    err(alice.get("/api/v1/users"), 403, "forbidden")
    err(alice.post("/api/v1/users", {"email": new_email(), "name": "x",
                                     "password": "long-enough-password"}), 403, "forbidden")
    err(alice.delete(f"/api/v1/users/{bid}"), 403, "forbidden")
    me = ok(alice.get(f"/api/v1/users/{aid}"))
    assert me["email"] == alice.user["email"] and set(me) == USER_FIELDS
    assert ok(alice.get(f"/api/v1/users/{aid.upper()}"))["id"] == aid
    err(alice.get(f"/api/v1/users/{bid}"), 404, "not_found")
    err(alice.patch(f"/api/v1/users/{bid}", {"name": "hacked"}), 404, "not_found")
    assert ok(admin.get(f"/api/v1/users/{bid}"))["name"] != "hacked"
    # unknown and malformed ids
    err(admin.get(f"/api/v1/users/{uuid.uuid4()}"), 404, "not_found")
    err(admin.get("/api/v1/users/not-a-uuid"), 404, "not_found")
    err(admin.patch(f"/api/v1/users/{uuid.uuid4()}", {"name": "x"}), 404, "not_found")
    err(admin.delete(f"/api/v1/users/{uuid.uuid4()}"), 404, "not_found")
    err(admin.delete("/api/v1/users/12"), 404, "not_found")
    err(admin.request("PUT", f"/api/v1/users/{aid}"), 405, "method_not_allowed")


def test_self_update_name_and_password(dash, make_user):
    u = make_user()
    uid = u.user["id"]
    other = Client(dash.url).login(u.user["email"], u.password)  # a second session
    assert ok(u.patch(f"/api/v1/users/{uid}", {"name": "New Name"}))["name"] == "New Name"
    # a plain user cannot make themself admin or enable/disable anyone
    e = err(u.patch(f"/api/v1/users/{uid}", {"is_admin": True}), 403, "forbidden")
    assert e["field"] == "is_admin"
    err(u.patch(f"/api/v1/users/{uid}", {"disabled": False}), 403, "forbidden")
    assert ok(u.get(f"/api/v1/users/{uid}"))["is_admin"] is False
    # changing the password needs the current one
    e = err(u.patch(f"/api/v1/users/{uid}", {"password": "a-brand-new-password"}), 400,
            "missing_field")
    assert e["field"] == "current_password"
    e = err(u.patch(f"/api/v1/users/{uid}", {"password": "a-brand-new-password",
                                             "current_password": "wrong-password"}), 403,
            "wrong_password")
    assert e["field"] == "current_password"
    err(u.patch(f"/api/v1/users/{uid}", {"password": "short", "current_password": u.password}),
        400, "invalid_field")
    ok(other.get("/api/v1/session"))  # nothing has changed yet
    ok(u.patch(f"/api/v1/users/{uid}", {"password": "a-brand-new-password",
                                        "current_password": u.password}))
    # the caller's session survives, the other one ends; the old password no longer works
    ok(u.get("/api/v1/session"))
    err(other.get("/api/v1/session"), 401)
    err(Client(dash.url).post("/api/v1/session", {"email": u.user["email"],
                                                  "password": u.password}), 401)
    Client(dash.url).login(u.user["email"], "a-brand-new-password")
    actions = dash.sql("SELECT details FROM audit_log WHERE action = 'user.update' AND "
                       "target_id = %s ORDER BY id", (uid,))
    assert [a[0]["changed"] for a in actions] == [["name"], ["password"]]


def test_patch_bad_input(admin, make_user):
    u = make_user()
    uid = u.user["id"]
    err(u.patch(f"/api/v1/users/{uid}", {"email": "x@example.com"}), 400, "unknown_field")
    err(u.patch(f"/api/v1/users/{uid}", {"name": ""}), 400, "invalid_field")
    err(u.patch(f"/api/v1/users/{uid}", {"name": 5}), 400, "invalid_field")
    err(admin.patch(f"/api/v1/users/{uid}", {"disabled": "true"}), 400, "invalid_field")
    err(admin.patch(f"/api/v1/users/{uid}", {"is_admin": None}), 400, "invalid_field")
    err(admin.request("PATCH", f"/api/v1/users/{uid}", data="{",
                      headers={"Content-Type": "application/json"}), 400, "invalid_json")
    err(admin.request("PATCH", f"/api/v1/users/{uid}", data="x",
                      headers={"Content-Type": "text/plain"}), 415)
    err(u.patch(f"/api/v1/users/{uid}", {"name": "x"}, csrf=False), 403, "csrf_failed")
    # an empty change is accepted and changes nothing
    assert ok(admin.patch(f"/api/v1/users/{uid}", {}))["name"] == u.user["name"]


def test_admin_disables_and_resets(dash, admin, make_user):
    u = make_user()
    uid = u.user["id"]
    d = ok(admin.patch(f"/api/v1/users/{uid}", {"disabled": True}))
    assert d["disabled"] is True
    err(u.get("/api/v1/session"), 401)  # logged out at once
    err(Client(dash.url).post("/api/v1/session", {"email": u.user["email"],
                                                  "password": u.password}), 401)
    assert ok(admin.patch(f"/api/v1/users/{uid}", {"disabled": False}))["disabled"] is False
    again = Client(dash.url).login(u.user["email"], u.password)
    # an admin sets someone else's password without theirs; all their sessions end
    ok(admin.patch(f"/api/v1/users/{uid}", {"password": "set-by-the-admin"}))
    err(again.get("/api/v1/session"), 401)
    Client(dash.url).login(u.user["email"], "set-by-the-admin")
    # promotion takes effect on the user's next request
    promoted = Client(dash.url).login(u.user["email"], "set-by-the-admin")
    err(promoted.get("/api/v1/users"), 403)
    assert ok(admin.patch(f"/api/v1/users/{uid}", {"is_admin": True}))["is_admin"] is True
    ok(promoted.get("/api/v1/users"))
    ok(admin.patch(f"/api/v1/users/{uid}", {"is_admin": False}))
    err(promoted.get("/api/v1/users"), 403)


def test_admin_cannot_demote_disable_or_delete_self(dash, admin, make_user):
    a = make_user(is_admin=True)
    aid = a.user["id"]
    e = err(a.patch(f"/api/v1/users/{aid}", {"is_admin": False}), 409, "conflict")
    assert e["field"] == "is_admin"
    err(a.patch(f"/api/v1/users/{aid}", {"disabled": True}), 409, "conflict")
    err(a.delete(f"/api/v1/users/{aid}"), 409, "conflict")
    # harmless self-changes are fine; an admin changing their own password proves the old one
    ok(a.patch(f"/api/v1/users/{aid}", {"is_admin": True, "disabled": False, "name": "Me"}))
    err(a.patch(f"/api/v1/users/{aid}", {"password": "another-password"}), 400, "missing_field")
    row = dash.sql("SELECT is_admin, disabled FROM users WHERE id = %s", (aid,))[0]
    assert row == (True, False)
    # another admin may demote them
    assert ok(admin.patch(f"/api/v1/users/{aid}", {"is_admin": False}))["is_admin"] is False


@pytest.mark.parametrize("change", ["demote", "disable", "delete"])
def test_never_zero_enabled_admins(dash, make_user, change):
    """An admin's request passes the access check, then, before its transaction runs, every
    other enabled admin (the caller included) is disabled by someone else: the change to the
    last enabled admin must be refused (409 last_admin), not leave an installation nobody can
    administer. The test holds the advisory lock the dashboard takes for such changes
    (api_users.c: ADMINS_LOCK) to stop the request at the right moment."""
    a, b = make_user(is_admin=True), make_user(is_admin=True)
    bid = b.user["id"]
    con = psycopg2.connect(dash.pg)
    disabled = []
    try:
        cur = con.cursor()
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('rampart.users.admins'))")
        result = {}

        def call():
            if change == "delete":
                result["r"] = a.delete(f"/api/v1/users/{bid}")
            else:
                body = {"is_admin": False} if change == "demote" else {"disabled": True}
                result["r"] = a.patch(f"/api/v1/users/{bid}", body)

        t = threading.Thread(target=call)
        t.start()
        deadline = time.time() + 10
        while not dash.sql("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                           "AND database = (SELECT oid FROM pg_database "
                           "                WHERE datname = current_database())"):
            assert time.time() < deadline, "the request never waited for the admins lock"
            assert t.is_alive(), result["r"].text
            time.sleep(0.02)
        cur.execute("UPDATE users SET disabled = true WHERE is_admin AND NOT disabled "
                    "AND id <> %s RETURNING id::text", (bid,))
        disabled = [row[0] for row in cur.fetchall()]
        assert a.user["id"] in disabled
        con.commit()  # releases the lock: the request goes on
        t.join(30)
        err(result["r"], 409, "last_admin")
        row = dash.sql("SELECT is_admin, disabled FROM users WHERE id = %s", (bid,))
        assert row == [(True, False)]
    finally:
        con.rollback()
        if disabled:
            cur.execute("UPDATE users SET disabled = false WHERE id = ANY(%s::uuid[])",
                        (disabled,))
            con.commit()
        con.close()
    # with the others back, the same change goes through
    if change == "delete":
        ok(a.delete(f"/api/v1/users/{bid}"), 204)
    else:
        ok(a.patch(f"/api/v1/users/{bid}",
                   {"is_admin": False} if change == "demote" else {"disabled": True}))


def test_delete_user(dash, admin, make_user, make_project):
    u = make_user()
    uid = u.user["id"]
    ok(admin.delete(f"/api/v1/users/{uid}"), 204)
    err(u.get("/api/v1/session"), 401)
    err(admin.get(f"/api/v1/users/{uid}"), 404, "not_found")
    err(admin.delete(f"/api/v1/users/{uid}"), 404, "not_found")
    assert uid not in [x["id"] for x in ok(admin.get("/api/v1/users"))["items"]]
    audit = dash.sql("SELECT details->>'email' FROM audit_log WHERE action = 'user.delete' AND "
                     "target_id = %s", (uid,))
    assert audit == [(u.user["email"],)]
    # the only owner of a project cannot be deleted until someone else owns it
    owner = make_user()
    p = make_project(owner)
    e = err(admin.delete(f"/api/v1/users/{owner.user['id']}"), 409, "last_owner")
    assert p["slug"] in e["message"]
    ok(admin.post(f"/api/v1/projects/{p['id']}/members",
                  {"email": ADMIN_EMAIL, "role": "owner"}), 201)
    ok(admin.delete(f"/api/v1/users/{owner.user['id']}"), 204)
    members = ok(admin.get(f"/api/v1/projects/{p['id']}/members"))["items"]
    assert [m["email"] for m in members] == [ADMIN_EMAIL]
    # another admin can be deleted by an admin
    other_admin = make_user(is_admin=True)
    ok(admin.delete(f"/api/v1/users/{other_admin.user['id']}"), 204)
    err(other_admin.get("/api/v1/users"), 401)
