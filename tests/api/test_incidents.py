"""Incidents, the notification ledger and a channel's test notification through the API. Data is
made as in production: the project, test, channel and alert rule through the API, scheduled runs
finished with SQL finish_runs() (what the worker calls), ledger rows as the mailer and connector
write them. Checks the list and detail shapes and values, filters and pagination, that a late
older run changes nothing, the role matrix, the test action's transition and audit rows, its
?wait (with and without a sender answering meanwhile), bad input, and every answer against the
OpenAPI document."""
import base64
import datetime
import re
import secrets
import threading
import time
import uuid

import pytest

from conftest import Client, err, ok

P = "/api/v1/projects"
NO_ID = "00000000-0000-4000-8000-000000000000"
FAILURE = "status: expected 200, got 500"

# ---- every answer of this file is recorded and checked against the OpenAPI document ---------

ROUTES = [
    (re.compile(r"^/api/v1/projects/[^/]+/incidents$"), "/api/v1/projects/{project}/incidents"),
    (re.compile(r"^/api/v1/projects/[^/]+/incidents/[^/]+$"),
     "/api/v1/projects/{project}/incidents/{incident}"),
    (re.compile(r"^/api/v1/projects/[^/]+/notifications$"),
     "/api/v1/projects/{project}/notifications"),
    (re.compile(r"^/api/v1/projects/[^/]+/channels/[^/]+/test$"),
     "/api/v1/projects/{project}/channels/{channel}/test"),
]
SEEN = []


@pytest.fixture(scope="module", autouse=True)
def record_answers():
    original = Client.request

    def request(self, method, path, **kw):
        r = original(self, method, path, **kw)
        for rx, template in ROUTES:
            if rx.match(path.split("?")[0]):
                body = r.json() if r.content and r.headers.get(
                    "Content-Type", "").startswith("application/json") else None
                SEEN.append((method.lower(), template, r.status_code, body))
        return r

    Client.request = request
    yield
    Client.request = original


# ---- helpers -----------------------------------------------------------------------------------

def at(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def api_key(dash, project, role):
    prefix = secrets.token_hex(6)
    token = f"rpk_{prefix}_{secrets.token_urlsafe(24)}"
    dash.sql("INSERT INTO api_keys (project_id, name, role, prefix, token_hash) "
             "VALUES (%s, %s, %s, %s, sha256(convert_to(%s, 'UTF8')))",
             (project["id"], "ci-" + prefix, role, prefix, token))
    return Client(dash.url, api_key=token)


class World:
    """A project with a test, an e-mail channel and an alert rule (defaults: 2 failures open,
    1 pass resolves), all made through the API; runs are finished as the worker does."""

    def __init__(self, dash, client, project, **rule):
        self.dash, self.client, self.p = dash, client, project
        self.base = f"{P}/{project['id']}"
        self.test = self.add_test("checkout " + uuid.uuid4().hex[:6])
        self.channel = ok(client.post(f"{self.base}/channels", {
            "name": "ops mail " + uuid.uuid4().hex[:6], "kind": "email",
            "config": {"to": ["ops@example.com"]}}), 201)
        self.rule = ok(client.post(f"{self.base}/alert-rules", dict(
            {"name": "checkout down", "channel_ids": [self.channel["id"]]}, **rule)), 201)
        self.clock = datetime.datetime.now(datetime.timezone.utc).replace(
            microsecond=123456) - datetime.timedelta(hours=2)

    def add_test(self, name):
        return ok(self.client.post(f"{self.base}/tests", {"definition": {
            "name": name, "steps": [{"name": "get", "request": {"url": "http://127.0.0.1:9/"},
                                     "expect": {"status": 200}}]}}), 201)

    def tick(self):
        self.clock += datetime.timedelta(minutes=1)
        return self.clock

    def run(self, status, fire=None, test=None, location="default"):
        """A scheduled run, running, then finished by finish_runs(): (run id, fire time, the
        transitions it created as [(kind)])."""
        rid = str(uuid.uuid4())
        fire = fire or self.tick()
        self.dash.sql("INSERT INTO runs (id, project_id, test_id, test_version, fire_time, "
                      "trigger, location, status) VALUES (%s, %s, %s, 1, %s, 'schedule', %s, "
                      "'running')", (rid, self.p["id"], (test or self.test)["id"], fire, location))
        rows = self.dash.sql(
            "SELECT * FROM finish_runs(ARRAY[%s]::uuid[], ARRAY[%s]::text[], "
            "ARRAY[now()]::timestamptz[], ARRAY[NULL]::text[], ARRAY[12.5]::float8[], "
            "ARRAY[%s]::text[])", (rid, status, FAILURE if status == "failed" else None))
        return rid, fire, [r[1] for r in rows]

    def incidents(self, query=""):
        return ok(self.client.get(f"{self.base}/incidents{query}"))

    def incident(self, iid):
        return ok(self.client.get(f"{self.base}/incidents/{iid}"))

    def ledger_row(self, transition_id, status, channel=None, **cols):
        """A ledger row as the mailer writes it."""
        cols = dict({"attempts": 1, "reason": None, "response": None}, **cols)
        return str(self.dash.sql(
            "INSERT INTO notifications (project_id, transition_id, channel_id, status, attempts, "
            "reason, response, sent_at) VALUES (%s, %s, %s, %s, %s, %s, %s, "
            "CASE WHEN %s = 'sent' THEN now() END) RETURNING id",
            (self.p["id"], transition_id, (channel or self.channel)["id"], status,
             cols["attempts"], cols["reason"], cols["response"], status))[0][0])

    def transitions(self, incident_id):
        return self.dash.sql("SELECT id::text, kind FROM incident_transitions "
                             "WHERE incident_id = %s ORDER BY created_at", (incident_id,))


@pytest.fixture
def world(dash, admin, make_project):
    return World(dash, admin, make_project())


# ---- incidents -----------------------------------------------------------------------------------

def test_two_failures_open_one_pass_resolves(world):
    w = world
    r1, f1, t1 = w.run("failed")
    assert t1 == [] and w.incidents() == {"items": [], "next_cursor": None}
    r2, f2, t2 = w.run("failed")
    assert t2 == ["opened"]
    page = w.incidents()
    assert page["next_cursor"] is None and len(page["items"]) == 1
    i = page["items"][0]
    assert i["state"] == "open"
    assert i["rule"] == {"id": w.rule["id"], "name": "checkout down"}
    assert i["test"] == {"id": w.test["id"], "name": w.test["name"]}
    assert i["location"] == "default" and i["failure"] == FAILURE
    assert at(i["failing_since"]) == f1 and at(i["opened_at"]) == f2
    assert i["opened_run_id"] == r2 and i["resolved_run_id"] is None and i["resolved_at"] is None
    assert i["notifications"] == {"sent": 0, "failed": 0, "muted": 0, "pending": 0}
    d = w.incident(i["id"])
    assert {k: v for k, v in d.items() if k != "transitions"} == i
    assert len(d["transitions"]) == 1
    opened = d["transitions"][0]
    assert opened["kind"] == "opened" and opened["seq"] == 0 and opened["run_id"] == r2
    assert at(opened["occurred_at"]) == f2 and opened["published_at"] is None
    assert opened["notifications"] == []

    # a third failure changes nothing; one pass resolves
    assert w.run("failed")[2] == []
    r4, f4, t4 = w.run("passed")
    assert t4 == ["resolved"]
    d = w.incident(i["id"])
    assert d["state"] == "resolved" and at(d["resolved_at"]) == f4 and d["resolved_run_id"] == r4
    assert [t["kind"] for t in d["transitions"]] == ["opened", "resolved"]
    assert d["transitions"][1]["run_id"] == r4
    assert [x["id"] for x in w.incidents("?state=resolved")["items"]] == [i["id"]]
    assert w.incidents("?state=open")["items"] == []


def test_a_late_older_run_changes_nothing(world):
    w = world
    early = w.tick()
    w.run("failed")
    _, _, opened = w.run("failed")
    assert opened == ["opened"]
    iid = w.incidents()["items"][0]["id"]
    before = w.incident(iid)
    # a pass fired before the failures, finished late: older than the last applied run
    _, _, t = w.run("passed", fire=early)
    assert t == []
    assert w.incident(iid) == before
    assert w.incidents("?state=open")["items"][0]["id"] == iid
    assert len(w.transitions(iid)) == 1


def test_newest_first_filters_and_pages(dash, world):
    w = world
    other = w.add_test("other " + uuid.uuid4().hex[:6])
    ids = []
    for _ in range(3):  # three incidents of the test, each opened then resolved
        w.run("failed")
        assert w.run("failed")[2] == ["opened"]
        ids.append(w.incidents("?state=open")["items"][0]["id"])
        assert w.run("passed")[2] == ["resolved"]
    w.run("failed", test=other)
    w.run("failed", test=other)  # a fourth, still open, of the other test
    open_one = w.incidents("?state=open")["items"]
    assert [x["test"]["id"] for x in open_one] == [other["id"]]
    everything = w.incidents()["items"]
    assert [x["id"] for x in everything] == [open_one[0]["id"]] + ids[::-1]
    assert [x["state"] for x in everything] == ["open", "resolved", "resolved", "resolved"]
    assert [x["id"] for x in w.incidents(f"?test_id={w.test['id']}")["items"]] == ids[::-1]
    assert w.incidents(f"?test_id={NO_ID}")["items"] == []
    assert [x["id"] for x in w.incidents(f"?test_id={other['id']}&state=resolved")["items"]] == []
    # one at a time: every incident once, in order, then no cursor
    seen, cursor = [], None
    for _ in range(10):
        page = w.incidents("?limit=1" + (f"&cursor={cursor}" if cursor else ""))
        seen += [x["id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [x["id"] for x in everything]
    page = w.incidents(f"?limit=2&state=resolved&test_id={w.test['id']}")
    assert [x["id"] for x in page["items"]] == ids[:0:-1] and page["next_cursor"]
    last = w.incidents(f"?limit=2&state=resolved&test_id={w.test['id']}"
                       f"&cursor={page['next_cursor']}")
    assert [x["id"] for x in last["items"]] == [ids[0]] and last["next_cursor"] is None


def test_each_rule_its_own_incident(world):
    w = world
    pager = ok(w.client.post(f"{w.base}/alert-rules", {
        "name": "pager", "failures_to_open": 3, "channel_ids": [w.channel["id"]]}), 201)
    assert w.run("failed")[2] == []
    assert w.run("failed")[2] == ["opened"]
    assert w.run("failed")[2] == ["opened"]
    items = w.incidents()["items"]
    assert sorted(x["rule"]["name"] for x in items) == ["checkout down", "pager"]
    assert {x["rule"]["id"] for x in items} == {w.rule["id"], pager["id"]}
    assert w.run("passed", location="eu-west")[2] == []  # another location: its own health
    assert len(w.incidents("?state=open")["items"]) == 2


# ---- the ledger --------------------------------------------------------------------------------

def test_ledger_rows_show_up_with_their_channel(dash, world):
    w = world
    hook = ok(w.client.post(f"{w.base}/channels", {
        "name": "hook", "kind": "webhook", "config": {"url": "https://hooks.example.com/x"}}), 201)
    w.run("failed")
    w.run("failed")
    iid = w.incidents()["items"][0]["id"]
    [(tid, kind)] = w.transitions(iid)
    assert kind == "opened"
    mail = w.ledger_row(tid, "sent", response="250 2.0.0 OK queued")
    failed = w.ledger_row(tid, "failed", channel=hook, attempts=5,
                          reason="gave up after 5 tries: HTTP 500 from hooks.example.com",
                          response="HTTP/1.1 500 Internal Server Error")
    items = ok(w.client.get(f"{w.base}/notifications"))["items"]
    assert [x["id"] for x in items] == [failed, mail]  # newest first
    f = items[0]
    assert f["status"] == "failed" and f["attempts"] == 5
    assert f["reason"] == "gave up after 5 tries: HTTP 500 from hooks.example.com"
    assert f["response"] == "HTTP/1.1 500 Internal Server Error" and f["sent_at"] is None
    assert f["channel"] == {"id": hook["id"], "name": "hook", "kind": "webhook"}
    assert f["transition"]["id"] == tid and f["transition"]["kind"] == "opened"
    assert f["transition"]["seq"] == 0 and f["transition"]["incident_id"] == iid
    assert f["transition"]["test"] == {"id": w.test["id"], "name": w.test["name"]}
    assert f["transition"]["location"] == "default"
    assert at(f["created_at"]) <= at(f["updated_at"])
    m = items[1]
    assert m["status"] == "sent" and m["sent_at"] and m["reason"] is None
    assert m["channel"] == {"id": w.channel["id"], "name": w.channel["name"], "kind": "email"}
    # filters
    by = ok(w.client.get(f"{w.base}/notifications?status=failed"))["items"]
    assert [x["id"] for x in by] == [failed]
    by = ok(w.client.get(f"{w.base}/notifications?channel_id={w.channel['id']}"))["items"]
    assert [x["id"] for x in by] == [mail]
    assert ok(w.client.get(f"{w.base}/notifications?status=muted"))["items"] == []
    assert ok(w.client.get(f"{w.base}/notifications?channel_id={NO_ID}"))["items"] == []
    page = ok(w.client.get(f"{w.base}/notifications?limit=1"))
    assert [x["id"] for x in page["items"]] == [failed] and page["next_cursor"]
    page = ok(w.client.get(f"{w.base}/notifications?limit=1&cursor={page['next_cursor']}"))
    assert [x["id"] for x in page["items"]] == [mail] and page["next_cursor"] is None
    # the incident counts them and lists them under its transition
    i = w.incidents()["items"][0]
    assert i["notifications"] == {"sent": 1, "failed": 1, "muted": 0, "pending": 0}
    d = w.incident(iid)
    assert [x["id"] for x in d["transitions"][0]["notifications"]] == [mail, failed]
    assert d["transitions"][0]["notifications"][1] == f
    # retrying and sending count as pending
    w.run("passed")
    [(rid, _)] = [t for t in w.transitions(iid) if t[1] == "resolved"]
    w.ledger_row(rid, "retrying", reason="HTTP 503, next try in 30 s")
    w.ledger_row(rid, "sending", channel=hook)
    assert w.incident(iid)["notifications"] == {"sent": 1, "failed": 1, "muted": 0, "pending": 2}
    # another project's ledger is not this one's
    other = World(dash, w.client, ok(w.client.post(P, {"slug": "o-" + uuid.uuid4().hex[:10],
                                                        "name": "other"}), 201))
    assert ok(other.client.get(f"{other.base}/notifications"))["items"] == []


# ---- the test notification ---------------------------------------------------------------------

def channel_tests(dash, channel_id):
    return dash.sql("SELECT id::text, project_id::text, incident_id, kind, seq, run_id, "
                    "requested_by::text, published_at, occurred_at <= now() "
                    "FROM incident_transitions WHERE channel_id = %s ORDER BY created_at",
                    (channel_id,))


def test_send_test_records_one_transition_and_audit_row(dash, admin, world):
    w = world
    path = f"{w.base}/channels/{w.channel['id']}/test"
    t0 = time.monotonic()
    a = ok(admin.post(path, None), 202)  # no body at all
    assert time.monotonic() - t0 < 1.0
    assert a["notification"] is None and uuid.UUID(a["transition_id"])
    rows = channel_tests(dash, w.channel["id"])
    assert rows == [(a["transition_id"], w.p["id"], None, "test", 0, None, admin.user["id"],
                     None, True)]
    audit = dash.sql("SELECT action, target_type, target_id, details->>'transition_id', actor "
                     "FROM audit_log WHERE action = 'channel.test' AND target_id = %s",
                     (w.channel["id"],))
    assert audit == [("channel.test", "channel", w.channel["id"], a["transition_id"],
                      f"user:{admin.user['email']}")]
    # {} is a body too; an API key (editor) has no user to record
    b = ok(admin.post(path, {}), 202)
    key = api_key(dash, w.p, "editor")
    c = ok(key.post(path), 202)
    rows = channel_tests(dash, w.channel["id"])
    assert [r[0] for r in rows] == [a["transition_id"], b["transition_id"], c["transition_id"]]
    assert rows[2][6] is None
    # it is in no incident: the incident lists do not change
    assert w.incidents()["items"] == []


def test_send_test_wait_without_a_sender(dash, world):
    w = world
    path = f"{w.base}/channels/{w.channel['id']}/test"
    t0 = time.monotonic()
    a = ok(w.client.post(f"{path}?wait=1"), 202)
    took = time.monotonic() - t0
    assert a["notification"] is None and 0.9 <= took < 5, took
    assert len(channel_tests(dash, w.channel["id"])) == 1
    b = ok(w.client.post(f"{path}?wait=0"), 202)
    assert b["notification"] is None


def _answer_like_a_sender(dash, w, status, delay, **cols):
    """In a thread: wait for a new test transition of the channel and write its ledger row."""
    known = {r[0] for r in channel_tests(dash, w.channel["id"])}

    def work():
        end = time.time() + 10
        while time.time() < end:
            new = [r[0] for r in channel_tests(dash, w.channel["id"]) if r[0] not in known]
            if new:
                time.sleep(delay)
                w.ledger_row(new[0], status, **cols)
                return
            time.sleep(0.05)

    th = threading.Thread(target=work)
    th.start()
    return th


def test_send_test_wait_returns_the_outcome(dash, world):
    w = world
    path = f"{w.base}/channels/{w.channel['id']}/test"
    th = _answer_like_a_sender(dash, w, "failed", 0.3, reason="SMTP 550 5.1.1 mailbox unknown",
                               response="550 5.1.1 <ops@example.com>: Recipient address rejected")
    t0 = time.monotonic()
    a = ok(w.client.post(f"{path}?wait=10"), 200)
    took = time.monotonic() - t0
    th.join()
    assert took < 5, took
    n = a["notification"]
    assert n["status"] == "failed" and n["reason"] == "SMTP 550 5.1.1 mailbox unknown"
    assert n["channel"] == {"id": w.channel["id"], "name": w.channel["name"], "kind": "email"}
    assert n["transition"] == {"id": a["transition_id"], "kind": "test", "seq": 0,
                               "occurred_at": n["transition"]["occurred_at"], "incident_id": None,
                               "test": None, "location": None}
    # the same row in the ledger
    items = ok(w.client.get(f"{w.base}/notifications?channel_id={w.channel['id']}"))["items"]
    assert items == [n]
    # sent
    th = _answer_like_a_sender(dash, w, "sent", 0.0, response="250 OK")
    b = ok(w.client.post(f"{path}?wait=10", {}), 200)
    th.join()
    assert b["notification"]["status"] == "sent" and b["notification"]["sent_at"]
    # taken but not finished within the wait: 202 with the row as it is
    th = _answer_like_a_sender(dash, w, "sending", 0.0)
    c = ok(w.client.post(f"{path}?wait=2"), 202)
    th.join()
    assert c["notification"]["status"] == "sending"
    assert c["notification"]["transition"]["id"] == c["transition_id"]


def test_send_test_refusals(dash, admin, world, make_project):
    w = world
    path = f"{w.base}/channels/{w.channel['id']}/test"
    for q in ("wait=31", "wait=-1", "wait=abc", "wait=", "wait=1.5"):
        e = err(admin.post(f"{path}?{q}"), 400, "invalid_field")
        assert e["field"] == "wait"
    err(admin.post(path, {"x": 1}), 400, "unknown_field")
    err(admin.request("POST", path, data="[]", headers={"Content-Type": "application/json"}),
        400, "invalid_json")
    err(admin.request("POST", path, data="{", headers={"Content-Type": "application/json"}),
        400, "invalid_json")
    err(admin.request("POST", path, data="x=1",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
    for cid in ("not-a-uuid", NO_ID):
        err(admin.post(f"{w.base}/channels/{cid}/test"), 404, "not_found")
    elsewhere = make_project()
    err(admin.post(f"{P}/{elsewhere['id']}/channels/{w.channel['id']}/test"), 404, "not_found")
    err(admin.post(f"{P}/{NO_ID}/channels/{w.channel['id']}/test"), 404, "not_found")
    err(admin.request("GET", path), 405, "method_not_allowed")
    # a disabled channel sends nothing
    ok(admin.patch(f"{w.base}/channels/{w.channel['id']}", {"enabled": False}))
    e = err(admin.post(path), 409, "conflict")
    assert "disabled" in e["message"]
    err(admin.post(f"{path}?wait=5"), 409, "conflict")
    assert channel_tests(dash, w.channel["id"]) == []
    assert dash.sql("SELECT count(*) FROM audit_log WHERE action = 'channel.test' AND "
                    "target_id = %s", (w.channel["id"],)) == [(0,)]


# ---- roles -------------------------------------------------------------------------------------

def test_role_matrix(dash, anon, world, member, make_user):
    w = world
    w.run("failed")
    w.run("failed")
    iid = w.incidents()["items"][0]["id"]
    test_path = f"{w.base}/channels/{w.channel['id']}/test"
    reads = [f"{w.base}/incidents", f"{w.base}/incidents/{iid}", f"{w.base}/notifications"]
    viewer, editor = member(w.p, "viewer"), member(w.p, "editor")
    for c in (viewer, editor, api_key(dash, w.p, "viewer")):
        for path in reads:
            ok(c.get(path))
    err(viewer.post(test_path), 403, "forbidden")
    err(api_key(dash, w.p, "viewer").post(test_path), 403, "forbidden")
    err(editor.post(test_path, csrf=False), 403, "csrf_failed")
    a = ok(editor.post(test_path), 202)
    assert channel_tests(dash, w.channel["id"])[0][6] == editor.user["id"]
    assert [r[0] for r in channel_tests(dash, w.channel["id"])] == [a["transition_id"]]
    outsider = make_user()
    for path in reads:
        err(outsider.get(path), 404, "not_found")
        err(anon.get(path), 401)
    err(outsider.post(test_path), 404, "not_found")
    err(anon.post(test_path), 401)
    # a key of another project sees nothing here
    other_key = api_key(dash, ok(w.client.post(P, {"slug": "k-" + uuid.uuid4().hex[:10],
                                                    "name": "k"}), 201), "editor")
    for path in reads:
        err(other_key.get(path), 404, "not_found")
    err(other_key.post(test_path), 404, "not_found")


# ---- bad input ---------------------------------------------------------------------------------

def cursor_of(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("query,field", [
    ("cursor=" + cursor_of("999999999999999999|" + NO_ID), "cursor"),
    ("cursor=" + cursor_of("-999999999999999999|" + NO_ID), "cursor"),
    ("cursor=" + cursor_of("12x|" + NO_ID), "cursor"),
    ("cursor=" + cursor_of("1700000000000000|nope"), "cursor"),
    ("state=closed", "state"), ("state=", "state"), ("test_id=nope", "test_id"),
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=ten", "limit"),
    ("cursor=garbage", "cursor"), ("cursor=", "cursor"),
])
def test_incident_list_refuses_bad_queries(world, query, field):
    e = err(world.client.get(f"{world.base}/incidents?{query}"), 400, "invalid_field")
    assert e["field"] == field and e["message"]


@pytest.mark.parametrize("query,field", [
    ("status=pending", "status"), ("status=SENT", "status"), ("channel_id=1", "channel_id"),
    ("limit=-1", "limit"), ("cursor=bm90LWEtY3Vyc29y", "cursor"),
])
def test_ledger_refuses_bad_queries(world, query, field):
    e = err(world.client.get(f"{world.base}/notifications?{query}"), 400, "invalid_field")
    assert e["field"] == field and e["message"]


def test_extreme_cursors_are_pages(world):
    """A cursor at the edges of what this API accepts is a page, not an error."""
    for text in ("-99999999999999999|" + NO_ID, "99999999999999999|" + NO_ID, "0|" + NO_ID):
        for path in ("incidents", "notifications"):
            page = ok(world.client.get(f"{world.base}/{path}?cursor={cursor_of(text)}"))
            assert page["next_cursor"] is None


def test_unknown_things_are_404(admin, world, make_project):
    w = world
    w.run("failed")
    w.run("failed")
    iid = w.incidents()["items"][0]["id"]
    for bad in ("not-a-uuid", NO_ID):
        err(admin.get(f"{w.base}/incidents/{bad}"), 404, "not_found")
    elsewhere = make_project()
    err(admin.get(f"{P}/{elsewhere['id']}/incidents/{iid}"), 404, "not_found")
    assert ok(admin.get(f"{P}/{elsewhere['id']}/incidents"))["items"] == []
    for path in ("incidents", "notifications", f"incidents/{iid}"):
        err(admin.get(f"{P}/{NO_ID}/{path}"), 404, "not_found")
    err(admin.post(f"{w.base}/incidents", {}), 405, "method_not_allowed")


# ---- the OpenAPI document ----------------------------------------------------------------------

def _validate(doc, schema, value, where="$"):
    """A small JSON Schema (OpenAPI 3.0 subset) check: $ref, allOf, type, nullable, enum,
    required, properties, additionalProperties, items, format uuid/date-time."""
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].split("/")[-1]]
    if value is None:
        assert schema.get("nullable") or not (schema.get("type") or schema.get("allOf")), \
            f"{where}: null"
        return
    for sub in schema.get("allOf", []):
        _validate(doc, sub, value, where)
    t = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool}
    if t == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r}"
    elif t:
        assert isinstance(value, types[t]), f"{where}: {value!r} is not {t}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if schema.get("format") == "uuid":
        uuid.UUID(value)
    if schema.get("format") == "date-time":
        at(value)
    if isinstance(value, dict):
        for k in schema.get("required", []):
            assert k in value, f"{where}: {k} missing"
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                _validate(doc, props[k], v, f"{where}.{k}")
            elif extra is False:
                raise AssertionError(f"{where}: undocumented member {k}")
            elif isinstance(extra, dict):
                _validate(doc, extra, v, f"{where}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            _validate(doc, schema["items"], v, f"{where}[{i}]")


def test_zz_openapi_documents_every_answer(anon):
    """Every answer this file received has its status documented and matches the documented
    schema (run last: it checks what the tests above recorded)."""
    doc = ok(anon.get("/api/v1/openapi.json"))
    op = doc["paths"]["/api/v1/projects/{project}/channels/{channel}/test"]["post"]
    assert {"$ref": "#/components/parameters/csrf"} in op["parameters"]
    assert op["requestBody"]["content"]["application/json"]["schema"][
        "additionalProperties"] is False
    checked = set()
    for method, template, status, body in SEEN:
        if method not in doc["paths"][template]:
            assert status == 405, (method, template, status)
            continue
        responses = doc["paths"][template][method]["responses"]
        assert str(status) in responses, f"{method.upper()} {template}: {status} undocumented"
        resp = responses[str(status)]
        while "$ref" in resp:
            resp = doc["components"]["responses"][resp["$ref"].split("/")[-1]]
        schema = resp.get("content", {}).get("application/json", {}).get("schema")
        if body is not None:
            assert schema, f"{method.upper()} {template} {status}: body not documented"
            _validate(doc, schema, body)
        checked.add((method, template, status))
    for want in [("get", ROUTES[0][1], 200), ("get", ROUTES[0][1], 400), ("get", ROUTES[1][1], 200),
                 ("get", ROUTES[2][1], 200), ("post", ROUTES[3][1], 200),
                 ("post", ROUTES[3][1], 202), ("post", ROUTES[3][1], 409)]:
        assert want in checked or len(SEEN) < 20, want
