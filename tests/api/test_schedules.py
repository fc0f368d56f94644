"""Schedules through the API: create, list (filter by test, cursor pages), read, change, delete;
next_run_at as rampart-scheduler reads it (now for an interval, the next cron fire after now in
the schedule's zone, reset when the timing changes or a disabled schedule is enabled, kept
otherwise); cron expressions and zones checked with the scheduler's own parser and its message;
references to tests and environments only within the project (no leak of other projects'); the
role matrix; bad input; an audit row for each change."""
import hashlib
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from conftest import Client, err, ok

ZERO = "00000000-0000-0000-0000-000000000000"


def scheds(p):
    return f"/api/v1/projects/{p['id']}/schedules"


def make_test(dash, project, name=None):
    """A test with one saved version, made directly in the database (the tests API is another
    resource)."""
    name = name or "t-" + uuid.uuid4().hex[:8]
    tid = dash.sql("INSERT INTO tests (project_id, name, current_version) VALUES (%s, %s, 1) "
                   "RETURNING id", (project["id"], name))[0][0]
    dash.sql("INSERT INTO test_versions (test_id, version, definition) VALUES (%s, 1, %s)",
             (tid, '{"name": "%s", "steps": []}' % name))
    return {"id": str(tid), "name": name}


def api_key(dash, project, role):
    """A Client with an API key of `role` in `project`, made directly in the database."""
    prefix = secrets.token_hex(6)
    token = f"rpk_{prefix}_{secrets.token_urlsafe(32)}"
    dash.sql("INSERT INTO api_keys (project_id, name, role, prefix, token_hash) "
             "VALUES (%s, %s, %s, %s, %s)",
             (project["id"], f"test-{role}", role, prefix,
              hashlib.sha256(token.encode()).digest()))
    return Client(dash.url, api_key=token)


def ts(s):
    return datetime.fromisoformat(s)


def db_now(dash):
    return dash.sql("SELECT now()")[0][0]


def row(dash, sid):
    return dash.sql("SELECT next_run_at, last_error, enabled FROM schedules WHERE id = %s",
                    (sid,))[0]


def set_row(dash, sid, next_run_at, last_error=None):
    dash.sql("UPDATE schedules SET next_run_at = %s, last_error = %s WHERE id = %s",
             (next_run_at, last_error, sid))


def next_fire(after, matches, tz):
    """Brute force: the first whole local minute strictly after `after` that `matches`."""
    t = after.astimezone(tz).replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(60 * 24 * 400):
        if matches(t):
            return t
        t += timedelta(minutes=1)
    raise AssertionError("no fire")


def audit_actions(dash, sid):
    return [a for (a,) in dash.sql("SELECT action FROM audit_log WHERE target_id = %s "
                                   "ORDER BY id", (sid,))]


FIELDS = {"id", "test_id", "test_name", "environment_id", "environment_name", "interval_s",
          "cron", "timezone", "locations", "enabled", "retries", "next_run_at", "last_error",
          "created_at", "updated_at"}


def test_interval_schedule_crud(dash, admin, make_project):
    p = make_project()
    t = make_test(dash, p, "homepage")
    before = db_now(dash)
    s = ok(admin.post(scheds(p), {"test_id": t["id"], "interval_s": 60}), 201)
    assert set(s) == FIELDS
    assert s["test_id"] == t["id"] and s["test_name"] == "homepage"
    assert s["interval_s"] == 60 and s["cron"] is None and s["timezone"] == "UTC"
    assert s["locations"] == ["default"] and s["enabled"] is True and s["retries"] == 0
    assert s["environment_id"] is None and s["environment_name"] is None
    assert s["last_error"] is None
    # an interval schedule is due at once: next_run_at = the creating transaction's now()
    assert ts(s["next_run_at"]) == ts(s["created_at"]) and ts(s["next_run_at"]) >= before
    url = f"{scheds(p)}/{s['id']}"
    assert ok(admin.get(url)) == s
    assert [x["id"] for x in ok(admin.get(scheds(p)))["items"]] == [s["id"]]
    # changes that are not timing keep next_run_at (the scheduler's bookkeeping)
    past = db_now(dash) - timedelta(hours=3)
    set_row(dash, s["id"], past)
    u = ok(admin.patch(url, {"retries": 3, "locations": ["eu-1", "us_2"], "interval_s": 60,
                             "timezone": "Europe/Berlin"}))
    assert u["retries"] == 3 and u["locations"] == ["eu-1", "us_2"]
    assert u["timezone"] == "Europe/Berlin"  # stored, but meaningless for an interval
    assert ts(u["next_run_at"]) == past and ts(u["updated_at"]) > ts(s["updated_at"])
    # a new interval: due from now again, last_error cleared
    set_row(dash, s["id"], past, "paused by the scheduler")
    u = ok(admin.patch(url, {"interval_s": 300}))
    assert u["interval_s"] == 300 and u["last_error"] is None
    assert ts(u["next_run_at"]) == ts(u["updated_at"])
    # delete
    ok(admin.delete(url), 204)
    err(admin.get(url), 404, "not_found")
    err(admin.delete(url), 404, "not_found")
    err(admin.patch(url, {"retries": 1}), 404, "not_found")
    assert audit_actions(dash, s["id"]) == ["schedule.create", "schedule.update",
                                            "schedule.update", "schedule.delete"]


def test_cron_schedule_next_run(dash, admin, make_project):
    p = make_project()
    t = make_test(dash, p)
    s = ok(admin.post(scheds(p), {"test_id": t["id"], "cron": "*/5 * * * *",
                                  "timezone": "Europe/Berlin", "locations": ["eu"]}), 201)
    assert s["cron"] == "*/5 * * * *" and s["interval_s"] is None
    assert s["timezone"] == "Europe/Berlin"
    created = ts(s["created_at"])
    want = next_fire(created, lambda m: m.minute % 5 == 0, ZoneInfo("Europe/Berlin"))
    assert ts(s["next_run_at"]) == want and want > created
    url = f"{scheds(p)}/{s['id']}"
    # a zone with a half-hour offset: 09:30 local
    u = ok(admin.patch(url, {"cron": "30 9 * * *", "timezone": "Asia/Kolkata"}))
    kol = ZoneInfo("Asia/Kolkata")
    want = next_fire(ts(u["updated_at"]), lambda m: (m.hour, m.minute) == (9, 30), kol)
    assert ts(u["next_run_at"]) == want
    assert ts(u["next_run_at"]).astimezone(kol).strftime("%H:%M") == "09:30"
    # the zone alone changes the fire time
    u = ok(admin.patch(url, {"timezone": "America/New_York"}))
    ny = ZoneInfo("America/New_York")
    want = next_fire(ts(u["updated_at"]), lambda m: (m.hour, m.minute) == (9, 30), ny)
    assert ts(u["next_run_at"]) == want and u["cron"] == "30 9 * * *"
    # the same expression again is no change: next_run_at kept
    past = db_now(dash) - timedelta(days=1)
    set_row(dash, s["id"], past)
    u = ok(admin.patch(url, {"cron": "30 9 * * *", "timezone": "America/New_York"}))
    assert ts(u["next_run_at"]) == past
    # macros; Feb 29 exists within 5 years
    u = ok(admin.patch(url, {"cron": "@monthly", "timezone": "UTC"}))
    nxt = ts(u["next_run_at"]).astimezone(timezone.utc)
    assert (nxt.day, nxt.hour, nxt.minute) == (1, 0, 0) and nxt > ts(u["updated_at"])
    u = ok(admin.patch(url, {"cron": "0 0 29 2 *"}))
    nxt = ts(u["next_run_at"]).astimezone(timezone.utc)
    assert (nxt.month, nxt.day) == (2, 29)
    # switching kinds: cron -> interval -> cron
    u = ok(admin.patch(url, {"interval_s": 3600}))
    assert u["interval_s"] == 3600 and u["cron"] is None
    assert ts(u["next_run_at"]) == ts(u["updated_at"])
    u = ok(admin.patch(url, {"cron": "0 * * * *"}))
    assert u["cron"] == "0 * * * *" and u["interval_s"] is None
    nxt = ts(u["next_run_at"])
    assert nxt > ts(u["updated_at"]) and nxt.minute == 0 and nxt.second == 0
    assert nxt - ts(u["updated_at"]) <= timedelta(hours=1)


def test_enable_restarts_from_now(dash, admin, make_project):
    p = make_project()
    t = make_test(dash, p)
    s = ok(admin.post(scheds(p), {"test_id": t["id"], "interval_s": 600, "enabled": False}),
           201)
    assert s["enabled"] is False
    url = f"{scheds(p)}/{s['id']}"
    old = db_now(dash) - timedelta(days=2)
    set_row(dash, s["id"], old, "the test has no saved version to run")
    # disabled stays disabled across other edits, next_run_at untouched
    u = ok(admin.patch(url, {"retries": 1, "enabled": False}))
    assert u["enabled"] is False and ts(u["next_run_at"]) == old
    # enabling: due from now, not two days of catch-up; the pause reason is cleared
    u = ok(admin.patch(url, {"enabled": True}))
    assert u["enabled"] is True and u["last_error"] is None
    assert ts(u["next_run_at"]) == ts(u["updated_at"]) > old
    # enabling an enabled schedule changes nothing
    set_row(dash, s["id"], old)
    assert ts(ok(admin.patch(url, {"enabled": True}))["next_run_at"]) == old
    # disabling keeps next_run_at
    assert ts(ok(admin.patch(url, {"enabled": False}))["next_run_at"]) == old
    # a cron schedule re-enabled fires at its next fire time after now
    c = ok(admin.post(scheds(p), {"test_id": t["id"], "cron": "0 3 * * *", "enabled": False}),
           201)
    set_row(dash, c["id"], old, "x")
    u = ok(admin.patch(f"{scheds(p)}/{c['id']}", {"enabled": True}))
    want = next_fire(ts(u["updated_at"]), lambda m: (m.hour, m.minute) == (3, 0), timezone.utc)
    assert ts(u["next_run_at"]) == want and u["last_error"] is None


def test_timing_validation(dash, admin, make_project):
    p = make_project()
    t = make_test(dash, p)
    base = {"test_id": t["id"]}
    x = err(admin.post(scheds(p), dict(base, interval_s=60, cron="* * * * *")), 400,
            "invalid_field")
    assert "not both" in x["message"]
    x = err(admin.post(scheds(p), base), 400, "missing_field")
    assert "interval_s" in x["message"] and "cron" in x["message"]
    # the parser's own messages, naming the member
    cases = [
        ("60 * * * *", "UTC", "cron", "cron: field 1 (minute): 60 is out of range 0-59"),
        ("* 24 * * *", "UTC", "cron", "cron: field 2 (hour): 24 is out of range 0-23"),
        ("* * * *", "UTC", "cron", "cron: "),
        ("@reboot", "UTC", "cron", "cron: "),
        ("* " * 100 + "*", "UTC", "cron", "cron: expression is longer than 200 bytes"),
        ("* * * * *", "Mars/Base", "timezone", 'cron: unknown time zone "Mars/Base"'),
        ("* * * * *", "../../etc/passwd", "timezone", "cron: unknown time zone"),
        ("* * * * *", "europe/berlin", "timezone", "cron: unknown time zone"),
    ]
    for cron, tz, field, msg in cases:
        x = err(admin.post(scheds(p), dict(base, cron=cron, timezone=tz)), 400, "invalid_field")
        assert x["field"] == field and x["message"].startswith(msg), (cron, tz, x)
    x = err(admin.post(scheds(p), dict(base, interval_s=60, timezone="Nowhere/City")), 400,
            "invalid_field")
    assert x["field"] == "timezone"
    x = err(admin.post(scheds(p), dict(base, cron="0 0 30 2 *")), 400, "invalid_field")
    assert x["field"] == "cron" and "no fire time" in x["message"]
    for interval in (0, -5, 31622401, "60", 1.5, True, None):
        x = err(admin.post(scheds(p), dict(base, interval_s=interval)), 400, "invalid_field")
        assert x["field"] == "interval_s"
    ok(admin.post(scheds(p), dict(base, interval_s=31622400)), 201)
    ok(admin.post(scheds(p), dict(base, interval_s=1)), 201)
    for cron in (5, [], {}, None, ""):
        x = err(admin.post(scheds(p), dict(base, cron=cron)), 400, "invalid_field")
        assert x["field"] == "cron"
    assert len(ok(admin.get(scheds(p)))["items"]) == 2
    # PATCH: the same rules, and a refused change changes nothing
    s = ok(admin.post(scheds(p), dict(base, cron="0 * * * *", timezone="Europe/Paris")), 201)
    url = f"{scheds(p)}/{s['id']}"
    err(admin.patch(url, {"interval_s": 5, "cron": "* * * * *"}), 400, "invalid_field")
    x = err(admin.patch(url, {"cron": "0 0 31 4 *"}), 400, "invalid_field")  # April 31st
    assert "no fire time" in x["message"]
    x = err(admin.patch(url, {"timezone": "Paris"}), 400, "invalid_field")
    assert x["field"] == "timezone" and 'unknown time zone "Paris"' in x["message"]
    assert ok(admin.get(url)) == s


def test_references_and_fields(dash, admin, make_project):
    p, q = make_project(), make_project()
    t, tq = make_test(dash, p), make_test(dash, q, "other-project-secret-name")
    env = ok(admin.post(f"/api/v1/projects/{p['id']}/environments", {"name": "prod"}), 201)
    envq = ok(admin.post(f"/api/v1/projects/{q['id']}/environments", {"name": "q"}), 201)
    # a test of another project is refused exactly like one that does not exist
    a = err(admin.post(scheds(p), {"test_id": tq["id"], "interval_s": 60}), 400,
            "unknown_reference")
    b = err(admin.post(scheds(p), {"test_id": str(uuid.uuid4()), "interval_s": 60}), 400,
            "unknown_reference")
    assert a["field"] == b["field"] == "test_id" and a["message"] == b["message"]
    assert tq["name"] not in a["message"]
    x = err(admin.post(scheds(p), {"test_id": t["id"], "interval_s": 60,
                                   "environment_id": envq["id"]}), 400, "unknown_reference")
    assert x["field"] == "environment_id"
    for bad in ("nope", 5, "", ZERO[:-1]):
        x = err(admin.post(scheds(p), {"test_id": bad, "interval_s": 60}), 400, "invalid_field")
        assert x["field"] == "test_id"
    err(admin.post(scheds(p), {"test_id": None, "interval_s": 60}), 400, "invalid_field")
    x = err(admin.post(scheds(p), {"test_id": t["id"], "interval_s": 60,
                                   "environment_id": "x"}), 400, "invalid_field")
    assert x["field"] == "environment_id"
    # with an environment, shown by name; null clears it; deleting it leaves the schedule
    s = ok(admin.post(scheds(p), {"test_id": t["id"], "interval_s": 60,
                                  "environment_id": env["id"], "retries": 5}), 201)
    assert s["environment_id"] == env["id"] and s["environment_name"] == "prod"
    url = f"{scheds(p)}/{s['id']}"
    u = ok(admin.patch(url, {"environment_id": None}))
    assert u["environment_id"] is None and u["retries"] == 5
    u = ok(admin.patch(url, {"environment_id": env["id"]}))
    assert u["environment_id"] == env["id"]
    ok(admin.delete(f"/api/v1/projects/{p['id']}/environments/{env['id']}"), 204)
    assert ok(admin.get(url))["environment_id"] is None
    # moving to another test of the project; not to one of another project
    t2 = make_test(dash, p, "second")
    assert ok(admin.patch(url, {"test_id": t2["id"]}))["test_name"] == "second"
    err(admin.patch(url, {"test_id": tq["id"]}), 400, "unknown_reference")
    assert ok(admin.get(url))["test_id"] == t2["id"]
    # the other fields
    for field, value in [("retries", 6), ("retries", -1), ("retries", "1"), ("enabled", "yes"),
                         ("enabled", 1), ("locations", []), ("locations", ["Bad"]),
                         ("locations", ["a", "a"]), ("locations", "default"),
                         ("locations", [f"l{i}" for i in range(33)]), ("locations", [1]),
                         ("locations", ["x" * 33])]:
        x = err(admin.patch(url, {field: value}), 400, "invalid_field")
        assert x["field"].startswith(field), (field, value, x)
    ok(admin.patch(url, {"locations": [f"l{i}" for i in range(32)]}))
    err(admin.post(scheds(p), {"test_id": t["id"], "interval_s": 60, "extra": 1}), 400,
        "unknown_field")
    err(admin.patch(url, {"next_run_at": "2020-01-01T00:00:00Z"}), 400, "unknown_field")
    raw = {"Content-Type": "application/json"}
    err(admin.request("POST", scheds(p), data='{"test_id": ', headers=raw), 400, "invalid_json")
    err(admin.request("PATCH", url, data='"x"', headers=raw), 400, "invalid_json")
    err(admin.request("POST", scheds(p), data="a", headers={"Content-Type": "text/plain"}), 415)
    # unknown, malformed and other projects' ids
    for sid in (ZERO, "not-a-uuid", str(uuid.uuid4())):
        err(admin.get(f"{scheds(p)}/{sid}"), 404, "not_found")
        err(admin.patch(f"{scheds(p)}/{sid}", {"retries": 1}), 404, "not_found")
        err(admin.delete(f"{scheds(p)}/{sid}"), 404, "not_found")
    err(admin.get(f"{scheds(q)}/{s['id']}"), 404, "not_found")
    err(admin.patch(f"{scheds(q)}/{s['id']}", {"retries": 0}), 404, "not_found")
    err(admin.delete(f"{scheds(q)}/{s['id']}"), 404, "not_found")
    err(admin.get(f"/api/v1/projects/{ZERO}/schedules"), 404, "not_found")
    err(admin.request("PUT", url, json_body={}), 405, "method_not_allowed")


def test_list_filter_and_pages(dash, admin, make_project):
    p = make_project()
    ta, tb = make_test(dash, p, "a"), make_test(dash, p, "b")
    ids_a = [ok(admin.post(scheds(p), {"test_id": ta["id"], "interval_s": 60 + i}), 201)["id"]
             for i in range(3)]
    ids_b = [ok(admin.post(scheds(p), {"test_id": tb["id"], "cron": "@daily"}), 201)["id"]
             for _ in range(2)]
    got = ok(admin.get(scheds(p), params={"test": ta["id"]}))
    assert sorted(x["id"] for x in got["items"]) == sorted(ids_a) and "next_cursor" not in got
    assert {x["test_name"] for x in got["items"]} == {"a"}
    assert ok(admin.get(scheds(p), params={"test": str(uuid.uuid4())}))["items"] == []
    # pages of 2, newest first, each schedule once
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = ok(admin.get(scheds(p), params=params))
        pages += 1
        assert len(page["items"]) <= 2
        seen += [x["id"] for x in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert pages == 3 and seen == (ids_a + ids_b)[::-1]
    created = [ts(x["created_at"]) for x in ok(admin.get(scheds(p)))["items"]]
    assert created == sorted(created, reverse=True)
    for params in ({"test": "nope"}, {"limit": 0}, {"limit": 201}, {"limit": "x"},
                   {"limit": ""}, {"cursor": "garbage!"}, {"cursor": "YWJj"}):
        x = err(admin.get(scheds(p), params=params), 400, "invalid_field")
        assert x["field"] == next(iter(params))


def test_roles_matrix_schedules(dash, admin, make_project, member, make_user):
    p = make_project()
    t = make_test(dash, p)
    s = ok(admin.post(scheds(p), {"test_id": t["id"], "interval_s": 60}), 201)
    url = f"{scheds(p)}/{s['id']}"
    viewer, editor, outsider = member(p, "viewer"), member(p, "editor"), make_user()
    assert ok(viewer.get(url))["id"] == s["id"]
    assert len(ok(viewer.get(scheds(p)))["items"]) == 1
    err(viewer.post(scheds(p), {"test_id": t["id"], "interval_s": 60}), 403, "forbidden")
    err(viewer.patch(url, {"enabled": False}), 403, "forbidden")
    err(viewer.delete(url), 403, "forbidden")
    s2 = ok(editor.post(scheds(p), {"test_id": t["id"], "cron": "0 * * * *"}), 201)
    ok(editor.patch(f"{scheds(p)}/{s2['id']}", {"enabled": False}))
    ok(editor.delete(f"{scheds(p)}/{s2['id']}"), 204)
    err(editor.post(scheds(p), {"test_id": t["id"], "interval_s": 9}, csrf=False), 403,
        "csrf_failed")
    for c in (outsider, api_key(dash, make_project(), "editor")):
        err(c.get(scheds(p)), 404, "not_found")
        err(c.get(url), 404, "not_found")
        err(c.post(scheds(p), {"test_id": t["id"], "interval_s": 60}), 404, "not_found")
        err(c.patch(url, {"enabled": False}), 404, "not_found")
        err(c.delete(url), 404, "not_found")
    kv, ke = api_key(dash, p, "viewer"), api_key(dash, p, "editor")
    assert ok(kv.get(url))["enabled"] is True
    err(kv.patch(url, {"enabled": False}), 403, "forbidden")
    assert ok(ke.patch(url, {"enabled": False}))["enabled"] is False
    s3 = ok(ke.post(scheds(p), {"test_id": t["id"], "interval_s": 30}), 201)
    ok(ke.delete(f"{scheds(p)}/{s3['id']}"), 204)
    anon = Client(dash.url)
    err(anon.get(scheds(p)), 401, "unauthenticated")
    err(anon.get(url), 401, "unauthenticated")
    assert audit_actions(dash, s3["id"]) == ["schedule.create", "schedule.delete"]
    assert audit_actions(dash, s["id"]) == ["schedule.create", "schedule.update"]
