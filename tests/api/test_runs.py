"""Runs and results through the API: the list (filters, cursor pagination, bad input), one run's
detail with its MongoDB result document, the chart statistics, and the CI trigger's input
checks and role matrix. Runs are inserted straight into the dashboard's database (no scheduler
or worker runs here; test_ci_trigger.py is the end-to-end test), so statuses, times and
durations are exactly known."""
import datetime as dt
import json
import secrets
import signal
import threading
import time
import uuid
import xml.etree.ElementTree as ET

import pymongo
import pytest

from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Client, Dashboard, err, ok

UTC = dt.timezone.utc
BASE = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
DEFINITION = {"name": "t", "steps": [{"name": "s", "request": {"url": "http://127.0.0.1:1/"}}]}


def iso(t):
    return t.isoformat().replace("+00:00", "Z")


def add_test(dash, project, name=None, tags=(), version=1):
    name = name or "test-" + uuid.uuid4().hex[:8]
    tid = dash.sql("INSERT INTO tests (project_id, name, tags, current_version) "
                   "VALUES (%s, %s, %s, %s) RETURNING id",
                   (project["id"], name, list(tags), version))[0][0]
    for v in range(1, version + 1):
        dash.sql("INSERT INTO test_versions (test_id, version, definition) VALUES (%s, %s, %s)",
                 (tid, v, json.dumps(dict(DEFINITION, name=name))))
    return {"id": str(tid), "name": name}


def add_run(dash, project, test, fire, status="passed", trigger="schedule", location="default",
            schedule=None, duration=None, finished=None, error=None, run_id=None, overrides=None):
    rid = run_id or str(uuid.uuid4())
    if finished is None and status in ("passed", "failed", "error"):
        finished = fire + dt.timedelta(seconds=1)
    dash.sql("INSERT INTO runs (id, project_id, test_id, test_version, schedule_id, fire_time, "
             "trigger, location, status, error, finished_at, duration_ms, overrides) "
             "VALUES (%s, %s, %s, 1, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
             (rid, project["id"], test["id"], schedule, fire, trigger, location, status, error,
              finished, duration, json.dumps(overrides) if overrides is not None else None))
    return rid


def add_schedule(dash, project, test):
    return str(dash.sql("INSERT INTO schedules (project_id, test_id, interval_s, enabled) "
                        "VALUES (%s, %s, 3600, false) RETURNING id",
                        (project["id"], test["id"]))[0][0])


def runs_path(project, suffix=""):
    return f"/api/v1/projects/{project['id']}/runs{suffix}"


def all_pages(client, project, query, limit):
    """Every page of the list; returns (ids in order, number of pages)."""
    ids, cursor, pages = [], None, 0
    while True:
        q = f"{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = ok(client.get(runs_path(project, "?" + q.lstrip("&"))))
        pages += 1
        assert len(page["items"]) <= limit
        ids += [x["id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return ids, pages
        assert pages < 100


@pytest.fixture
def key_for(dash, admin):
    """key_for(project, role) -> a Client using a new API key of `role` in `project`."""
    def make(project, role):
        r = admin.post(f"/api/v1/projects/{project['id']}/api-keys", {"name": "k-" + role,
                                                                      "role": role})
        if r.status_code == 201:
            return Client(dash.url, api_key=r.json()["token"])
        # the API-key routes are not there yet: a row in the documented format
        import hashlib
        prefix = secrets.token_hex(6)
        token = f"rpk_{prefix}_{secrets.token_urlsafe(24)}"
        dash.sql("INSERT INTO api_keys (project_id, name, role, prefix, token_hash) "
                 "VALUES (%s, %s, %s, %s, %s)",
                 (project["id"], "k-" + role, role, prefix, hashlib.sha256(token.encode()).digest()))
        return Client(dash.url, api_key=token)
    return make


@pytest.fixture
def scene(dash, make_project):
    """A project with two tests and a known set of runs (newest first in `order`)."""
    p = make_project()
    a, b = add_test(dash, p, "alpha", ["smoke"]), add_test(dash, p, "beta", ["smoke", "nightly"])
    sched = add_schedule(dash, p, a)
    runs = {}
    runs["a1"] = add_run(dash, p, a, BASE, "passed", schedule=sched, duration=100)
    runs["a2"] = add_run(dash, p, a, BASE + dt.timedelta(minutes=1), "failed", schedule=sched,
                         duration=200, error=None)
    runs["a3"] = add_run(dash, p, a, BASE + dt.timedelta(minutes=2), "error", trigger="manual",
                         error="connection refused")
    runs["b1"] = add_run(dash, p, b, BASE + dt.timedelta(minutes=1), "passed", location="eu-1",
                         duration=50)
    runs["b2"] = add_run(dash, p, b, BASE + dt.timedelta(minutes=3), "running", trigger="api",
                         finished=None)
    runs["b3"] = add_run(dash, p, b, BASE + dt.timedelta(minutes=4), "pending", trigger="api",
                         finished=None)
    # the same fire time for several runs: the id breaks the tie
    same = BASE + dt.timedelta(minutes=5)
    for i in range(5):
        runs[f"s{i}"] = add_run(dash, p, a, same, "passed", duration=10 + i)
    rows = dash.sql("SELECT id FROM runs WHERE project_id = %s ORDER BY fire_time DESC, id DESC",
                    (p["id"],))
    return {"project": p, "a": a, "b": b, "schedule": sched, "runs": runs,
            "order": [str(x[0]) for x in rows]}


# ---- the list ---------------------------------------------------------------------------------

def test_list_newest_first_with_all_fields(admin, scene):
    page = ok(admin.get(runs_path(scene["project"])))
    assert [x["id"] for x in page["items"]] == scene["order"]
    assert page["next_cursor"] is None
    item = next(x for x in page["items"] if x["id"] == scene["runs"]["a3"])
    assert set(item) == {"id", "test_id", "test_name", "test_version", "schedule_id",
                         "environment_id", "trigger", "location", "status", "attempts", "error",
                         "fire_time", "queued_at", "started_at", "finished_at", "duration_ms"}
    assert item["test_name"] == "alpha" and item["status"] == "error"
    assert item["error"] == "connection refused" and item["trigger"] == "manual"
    assert item["schedule_id"] is None and item["test_version"] == 1
    b1 = next(x for x in page["items"] if x["id"] == scene["runs"]["b1"])
    assert b1["duration_ms"] == 50 and b1["location"] == "eu-1"
    assert dt.datetime.fromisoformat(b1["fire_time"]) == BASE + dt.timedelta(minutes=1)


@pytest.mark.parametrize("query,expect", [
    ("status=passed", ["a1", "b1", "s0", "s1", "s2", "s3", "s4"]),
    ("status=failed", ["a2"]),
    ("status=pending", ["b3"]),
    ("status=running", ["b2"]),
    ("trigger=api", ["b2", "b3"]),
    ("trigger=manual", ["a3"]),
    ("location=eu-1", ["b1"]),
    ("status=passed&location=default&trigger=schedule", ["a1", "s0", "s1", "s2", "s3", "s4"]),
])
def test_list_filters(admin, scene, query, expect):
    page = ok(admin.get(runs_path(scene["project"], "?" + query)))
    assert sorted(x["id"] for x in page["items"]) == sorted(scene["runs"][k] for k in expect)


def test_list_filter_by_test_schedule_and_time(admin, scene):
    p, runs = scene["project"], scene["runs"]
    got = ok(admin.get(runs_path(p, f"?test={scene['b']['id']}")))["items"]
    assert {x["id"] for x in got} == {runs["b1"], runs["b2"], runs["b3"]}
    got = ok(admin.get(runs_path(p, f"?schedule={scene['schedule']}")))["items"]
    assert {x["id"] for x in got} == {runs["a1"], runs["a2"]}
    # from inclusive, to exclusive, on fire_time
    q = f"?from={iso(BASE + dt.timedelta(minutes=1))}&to={iso(BASE + dt.timedelta(minutes=3))}"
    got = ok(admin.get(runs_path(p, q)))["items"]
    assert {x["id"] for x in got} == {runs["a2"], runs["b1"], runs["a3"]}
    # an offset: 13:01+01:00 is 12:01Z; '+' escaped, and unescaped (a query string turns it into
    # a space, which is accepted)
    for plus in ("%2B", "+"):
        q = f"?from=2025-03-01T13:01:00{plus}01:00&to=2025-03-01T12:01:00.5Z"
        got = ok(admin.get(runs_path(p, q)))["items"]
        assert {x["id"] for x in got} == {runs["a2"], runs["b1"]}
    # an unknown test id is simply no runs
    assert ok(admin.get(runs_path(p, f"?test={uuid.uuid4()}")))["items"] == []


def test_list_pagination_visits_every_run_once(admin, scene):
    for limit in (1, 2, 3, 5, 200):
        ids, pages = all_pages(admin, scene["project"], "", limit)
        assert ids == scene["order"], f"limit {limit}"
        assert pages == max(1, -(-len(ids) // limit))  # no empty last page
    # with a filter, pages keep the filter
    ids, _ = all_pages(admin, scene["project"], "status=passed", 2)
    assert ids == [x for x in scene["order"]
                   if x in {scene["runs"][k] for k in ("a1", "b1", "s0", "s1", "s2", "s3", "s4")}]


def test_list_default_limit_is_50(dash, admin, make_project):
    p = make_project()
    t = add_test(dash, p)
    for i in range(55):
        add_run(dash, p, t, BASE + dt.timedelta(seconds=i))
    page = ok(admin.get(runs_path(p)))
    assert len(page["items"]) == 50 and page["next_cursor"]
    rest = ok(admin.get(runs_path(p, f"?cursor={page['next_cursor']}")))
    assert len(rest["items"]) == 5 and rest["next_cursor"] is None


def test_list_bad_input(admin, scene):
    p = scene["project"]
    for q, field in [("limit=0", "limit"), ("limit=201", "limit"), ("limit=abc", "limit"),
                     ("limit=-1", "limit"), ("limit=1.5", "limit"),
                     ("status=done", "status"), ("trigger=cron", "trigger"),
                     ("test=not-a-uuid", "test"), ("schedule=123", "schedule"),
                     ("location=EU", "location"), ("from=yesterday", "from"),
                     ("from=2025-02-30T00:00:00Z", "from"), ("to=2025-03-01", "to"),
                     ("to=2025-03-01T25:00:00Z", "to"),
                     ("cursor=garbage!", "cursor"), ("cursor=", "cursor"),
                     ("cursor=eHx5", "cursor"),  # base64 of "x|y"
                     ("cursor=MTIzfG5vdC1hLXV1aWQ", "cursor"),  # "123|not-a-uuid"
                     ("cursor=" + "A" * 300, "cursor")]:
        e = err(admin.get(runs_path(p, "?" + q)), 400, "invalid_field")
        assert e["field"] == field, (q, e)
    # a cursor whose time part is not ours
    import base64
    bad = base64.urlsafe_b64encode(f"2025-01-01|{uuid.uuid4()}".encode()).decode().rstrip("=")
    err(admin.get(runs_path(p, f"?cursor={bad}")), 400, "invalid_field")


def test_list_unknown_project(admin):
    err(admin.get(f"/api/v1/projects/{uuid.uuid4()}/runs"), 404, "not_found")
    err(admin.get("/api/v1/projects/nope/runs"), 404, "not_found")


# ---- one run ----------------------------------------------------------------------------------

def test_run_detail_with_result(dash, admin, scene):
    p, rid = scene["project"], scene["runs"]["a2"]
    doc = {"_id": rid, "test": "alpha", "status": "failed", "duration_ms": 200.0,
           "steps": [{"name": "s", "response": {"status": 500}}],
           "project_id": p["id"], "fire_time": BASE}
    client = pymongo.MongoClient(dash.mongo, serverSelectionTimeoutMS=5000)
    try:
        client.get_default_database()["results"].insert_one(doc)
    finally:
        client.close()
    run = ok(admin.get(runs_path(p, f"/{rid}")))
    assert run["id"] == rid and run["status"] == "failed" and run["test_name"] == "alpha"
    assert run["result"]["status"] == "failed"
    assert run["result"]["steps"][0]["response"]["status"] == 500
    assert run["result"]["_id"] == rid
    assert run["overrides"] is None and run["retries"] == 0 and "created_at" in run


def test_run_detail_unfinished_and_missing_result(admin, scene):
    p = scene["project"]
    run = ok(admin.get(runs_path(p, f"/{scene['runs']['b3']}")))
    assert run["status"] == "pending" and run["result"] is None
    # finished, but no document (retention): result null, not an error
    run = ok(admin.get(runs_path(p, f"/{scene['runs']['a1']}")))
    assert run["status"] == "passed" and run["result"] is None


def test_run_detail_hides_secret_overrides(dash, admin, scene):
    p = scene["project"]
    rid = add_run(dash, p, scene["a"], BASE, "pending", trigger="api", finished=None,
                  overrides={"base": "http://x", "token": {"secret": True, "sealed": "v1:abcd"}})
    run = ok(admin.get(runs_path(p, f"/{rid}")))
    assert run["overrides"] == {"base": "http://x", "token": {"secret": True}}
    assert "v1:abcd" not in json.dumps(run)


def test_run_detail_not_found(admin, scene, make_project):
    p = scene["project"]
    err(admin.get(runs_path(p, f"/{uuid.uuid4()}")), 404, "not_found")
    err(admin.get(runs_path(p, "/not-a-uuid")), 404, "not_found")
    other = make_project()
    # a run of another project is not found through this one
    err(admin.get(runs_path(other, f"/{scene['runs']['a1']}")), 404, "not_found")


# ---- statistics -------------------------------------------------------------------------------

def percentile(values, q):
    """PostgreSQL's percentile_cont: linear interpolation."""
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo, hi = int(pos), min(int(pos) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def test_stats_buckets(dash, admin, make_project):
    p = make_project()
    a, b = add_test(dash, p, "a"), add_test(dash, p, "b")
    t0 = dt.datetime(2025, 4, 1, 0, 0, tzinfo=UTC)
    # bucket 0 (00:00-01:00): a: 3 passed, 1 failed, 1 error without a duration; b: 1 passed
    durs = [100, 200, 300, 1000]
    for i, d in enumerate(durs):
        add_run(dash, p, a, t0, "passed" if i < 3 else "failed", duration=d,
                finished=t0 + dt.timedelta(minutes=10 + i))
    add_run(dash, p, a, t0, "error", duration=None, finished=t0 + dt.timedelta(minutes=20))
    add_run(dash, p, b, t0, "passed", duration=5, finished=t0 + dt.timedelta(minutes=30))
    # bucket 2 (02:00-03:00): a: 1 passed
    add_run(dash, p, a, t0, "passed", duration=42, finished=t0 + dt.timedelta(hours=2, minutes=1))
    # unfinished and out-of-range runs do not count
    add_run(dash, p, a, t0, "running", finished=None)
    add_run(dash, p, a, t0, "passed", duration=9, finished=t0 + dt.timedelta(hours=5))
    q = f"?from={iso(t0)}&to={iso(t0 + dt.timedelta(hours=3))}&bucket=3600"
    s = ok(admin.get(f"/api/v1/projects/{p['id']}/tests/{a['id']}/stats{q}"))
    assert s["bucket_s"] == 3600 and len(s["points"]) == 3
    assert [dt.datetime.fromisoformat(x["t"]) for x in s["points"]] == \
        [t0 + dt.timedelta(hours=h) for h in range(3)]
    p0, p1, p2 = s["points"]
    assert (p0["runs"], p0["passed"], p0["failed"], p0["error"]) == (5, 3, 1, 1)
    assert p0["pass_rate"] == pytest.approx(3 / 5)
    assert p0["p50_ms"] == pytest.approx(percentile(durs, 0.5))
    assert p0["p95_ms"] == pytest.approx(percentile(durs, 0.95))
    assert p1 == {"t": p1["t"], "runs": 0, "passed": 0, "failed": 0, "error": 0,
                  "pass_rate": None, "p50_ms": None, "p95_ms": None}
    assert (p2["runs"], p2["passed"], p2["p50_ms"]) == (1, 1, 42)
    assert s["summary"]["runs"] == 6 and s["summary"]["passed"] == 4
    assert s["summary"]["pass_rate"] == pytest.approx(4 / 6)
    # the project: both tests
    s = ok(admin.get(f"/api/v1/projects/{p['id']}/stats{q}"))
    assert s["points"][0]["runs"] == 6 and s["points"][0]["passed"] == 4
    assert s["points"][0]["p50_ms"] == pytest.approx(percentile(durs + [5], 0.5))
    assert s["summary"]["runs"] == 7


def test_stats_defaults(dash, admin, make_project):
    p = make_project()
    a = add_test(dash, p)
    now = dt.datetime.now(UTC)
    add_run(dash, p, a, now, "passed", duration=7, finished=now - dt.timedelta(hours=1))
    add_run(dash, p, a, now, "failed", duration=9, finished=now - dt.timedelta(hours=30))
    s = ok(admin.get(f"/api/v1/projects/{p['id']}/tests/{a['id']}/stats"))
    # the last 24 h in at most 200 points of a round size
    assert s["bucket_s"] == 600 and 144 <= len(s["points"]) <= 145
    assert sum(x["runs"] for x in s["points"]) == 1 and s["summary"]["passed"] == 1
    span = dt.datetime.fromisoformat(s["to"]) - dt.datetime.fromisoformat(s["from"])
    assert dt.timedelta(hours=24) <= span <= dt.timedelta(hours=24, minutes=20)
    # a week: still at most 200 points
    q = f"?from={iso(now - dt.timedelta(days=7))}&to={iso(now)}"
    s = ok(admin.get(f"/api/v1/projects/{p['id']}/stats{q}"))
    assert len(s["points"]) <= 200 and s["summary"]["runs"] == 2


def test_stats_bad_input(dash, admin, make_project):
    p = make_project()
    a = add_test(dash, p)
    base = f"/api/v1/projects/{p['id']}/tests/{a['id']}/stats"
    for q, field in [("?bucket=0", "bucket"), ("?bucket=x", "bucket"),
                     ("?bucket=1", "bucket"),  # 86,400 points
                     ("?from=2025-05-01T00:00:00Z&to=2025-04-01T00:00:00Z", "from"),
                     ("?from=soon", "from"), ("?to=2025-13-01T00:00:00Z", "to")]:
        e = err(admin.get(base + q), 400, "invalid_field")
        assert e["field"] == field, (q, e)
    err(admin.get(f"/api/v1/projects/{p['id']}/tests/not-a-uuid/stats"), 404, "not_found")
    err(admin.get(f"/api/v1/projects/{p['id']}/tests/{uuid.uuid4()}/stats"), 404, "not_found")
    other = make_project()
    err(admin.get(f"/api/v1/projects/{other['id']}/tests/{a['id']}/stats"), 404, "not_found")
    err(admin.get(f"/api/v1/projects/{uuid.uuid4()}/stats"), 404, "not_found")


# ---- the trigger: input and roles -------------------------------------------------------------

def test_trigger_creates_pending_runs(dash, admin, make_project):
    p = make_project()
    tag = "smoke-" + secrets.token_hex(3)
    t1 = add_test(dash, p, "one", [tag])
    t2 = add_test(dash, p, "two", [tag, "x"])
    add_test(dash, p, "three", ["x"])
    add_test(dash, p, "unsaved", [tag], version=0)  # no version: cannot run
    loc = "ci-" + secrets.token_hex(4)
    r = admin.post(runs_path(p), {"tag": tag, "location": loc,
                                  "variables": {"base": "http://h", "n": 3,
                                                "tok": {"value": "hunter2-secret", "secret": True},
                                                "plain": {"value": 1, "secret": False}}})
    body = ok(r, 202)
    assert [x["test_name"] for x in body["runs"]] == ["one", "two"]
    assert {x["test_id"] for x in body["runs"]} == {t1["id"], t2["id"]}
    ids = [x["run_id"] for x in body["runs"]]
    assert all(uuid.UUID(i).version == 7 for i in ids)
    rows = dash.sql("SELECT status, trigger, location, schedule_id, test_version, "
                    "lease_until <= now(), overrides::text FROM runs WHERE id = ANY(%s::uuid[])",
                    (ids,))
    assert len(rows) == 2
    for status, trig, location, sched, version, leased, overrides in rows:
        assert (status, trig, location, sched, version, leased) == \
            ("pending", "manual", loc, None, 1, True)
        o = json.loads(overrides)
        assert o["base"] == "http://h" and o["n"] == 3
        assert o["plain"] == {"value": 1, "secret": False}
        assert o["tok"]["secret"] is True and o["tok"]["sealed"].startswith("v1:")
        assert "hunter2" not in overrides  # sealed at rest
    audit = dash.sql("SELECT action, details FROM audit_log WHERE project_id = %s AND action = "
                     "'run.trigger'", (p["id"],))
    assert audit and audit[0][1]["runs"] == 2 and audit[0][1]["tag"] == tag
    # the detail shows the overrides without the secret
    run = ok(admin.get(runs_path(p, f"/{ids[0]}")))
    assert run["overrides"]["tok"] == {"secret": True} and run["result"] is None
    # one test by id, the default location
    one = ok(admin.post(runs_path(p), {"test_id": t1["id"]}), 202)["runs"]
    assert len(one) == 1
    assert dash.sql("SELECT location, overrides FROM runs WHERE id = %s",
                    (one[0]["run_id"],))[0] == ("default", None)


def test_trigger_wait_times_out(dash, admin, make_project):
    """Nobody runs these (no scheduler here): the wait ends with complete: false."""
    p = make_project()
    t = add_test(dash, p, "lonely")
    loc = "nowhere-" + secrets.token_hex(3)
    body = ok(admin.post(runs_path(p, "?wait=1"), {"test_id": t["id"], "location": loc}))
    assert body["complete"] is False and body["passed"] is False
    assert len(body["runs"]) == 1 and body["runs"][0]["status"] == "pending"
    assert body["runs"][0]["test_name"] == "lonely"
    r = admin.post(runs_path(p, "?wait=1&format=junit"), {"test_id": t["id"], "location": loc})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/xml")
    assert r.headers["X-Rampart-Complete"] == "false"
    assert r.headers["X-Rampart-Passed"] == "false"
    root = ET.fromstring(r.content)
    assert root.tag == "testsuites" and root.get("errors") == "1"
    suite = root.find("testsuite")
    assert suite.get("name") == "lonely"
    assert "did not finish within the wait" in suite.find("testcase/error").get("message")
    # Accept: application/xml works like format=junit
    r = admin.post(runs_path(p, "?wait=1"), {"test_id": t["id"], "location": loc},
                   headers={"Accept": "application/xml"})
    assert ET.fromstring(r.content).tag == "testsuites"


def test_trigger_wait_answers_when_the_dashboard_drains():
    """SIGTERM during a long wait: the caller gets its answer (complete: false) at once, and the
    dashboard exits 0 instead of holding the drain until the wait is over."""
    d = Dashboard("rampart_api_drain_" + secrets.token_hex(4))
    d.create_databases()
    try:
        d.start()
        admin = Client(d.url).login(ADMIN_EMAIL, ADMIN_PASSWORD)
        p = ok(admin.post("/api/v1/projects", {"slug": "drain", "name": "drain"}), 201)
        t = add_test(d, p, "waits")
        out = {}

        def call():
            t0 = time.time()
            out["r"] = admin.post(runs_path(p, "?wait=60"), {"test_id": t["id"],
                                                             "location": "nowhere"}, timeout=90)
            out["s"] = time.time() - t0
        th = threading.Thread(target=call)
        th.start()
        deadline = time.time() + 10
        while not d.sql("SELECT 1 FROM runs WHERE project_id = %s", (p["id"],)):
            assert time.time() < deadline, "the trigger did not create its run"
            time.sleep(0.05)
        time.sleep(0.5)
        assert d.stop() == 0, f"exit code; log: {d.log_path}"
        th.join(30)
        body = ok(out["r"])
        assert body["complete"] is False and body["runs"][0]["status"] == "pending"
        assert out["s"] < 15
    finally:
        d.stop(signal.SIGKILL)
        d.drop_databases()


def test_trigger_bad_input(dash, admin, make_project):
    p = make_project()
    t = add_test(dash, p, "t", ["tag1"])
    other = make_project()
    env_other = dash.sql("INSERT INTO environments (project_id, name) VALUES (%s, 'e') "
                         "RETURNING id", (other["id"],))[0][0]
    path = runs_path(p)
    cases = [
        ({}, "missing_field", "test_id"),
        ({"test_id": t["id"], "tag": "tag1"}, "invalid_field", "tag"),
        ({"test_id": "not-a-uuid-but-36-characters-long-xx"}, "invalid_field", "test_id"),
        ({"test_id": 5}, "invalid_field", "test_id"),
        ({"test_id": str(uuid.uuid4())}, "no_tests", "test_id"),
        ({"tag": "no-such-tag"}, "no_tests", "tag"),
        ({"tag": "bad tag!"}, "invalid_field", "tag"),
        ({"tag": ""}, "invalid_field", "tag"),
        ({"tag": "tag1", "location": "EU"}, "invalid_field", "location"),
        ({"tag": "tag1", "location": 3}, "invalid_field", "location"),
        ({"tag": "tag1", "environment_id": str(env_other)}, "unknown_reference",
         "environment_id"),
        ({"tag": "tag1", "environment_id": "x"}, "invalid_field", "environment_id"),
        ({"tag": "tag1", "variables": [1]}, "invalid_field", "variables"),
        ({"tag": "tag1", "variables": "a=b"}, "invalid_field", "variables"),
        ({"tag": "tag1", "variables": {"bad name": 1}}, "invalid_field", "variables"),
        ({"tag": "tag1", "variables": {"x": {"value": 1, "secret": "yes"}}}, "invalid_field",
         "variables"),
        ({"tag": "tag1", "variables": {"x": {"secret": True, "sealed": "v1:AAAA"}}},
         "invalid_field", "variables"),
        ({"tag": "tag1", "extra": 1}, "unknown_field", "extra"),
    ]
    for body, code, field in cases:
        e = err(admin.post(path, body), 400, code)
        assert e.get("field") == field, (body, e)
    for q, field in [("?wait=0", "wait"), ("?wait=99999", "wait"), ("?wait=x", "wait"),
                     ("?format=xml&wait=1", "format"), ("?format=junit", "format")]:
        e = err(admin.post(path + q, {"tag": "tag1"}), 400, "invalid_field")
        assert e["field"] == field
    err(admin.request("POST", path, data="{nope", headers={"Content-Type": "application/json"}),
        400, "invalid_json")
    err(admin.request("POST", path, data="tag=x",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
    err(admin.post(f"/api/v1/projects/{uuid.uuid4()}/runs", {"tag": "tag1"}), 404, "not_found")
    # at most 500 runs per call
    dash.sql("INSERT INTO tests (project_id, name, tags, current_version) "
             "SELECT %s, 'many-' || g, '{many}', 1 FROM generate_series(1, 501) g", (p["id"],))
    e = err(admin.post(path, {"tag": "many"}), 400, "invalid_field")
    assert e["field"] == "tag" and "500" in e["message"]
    # nothing was created by any of these
    assert dash.sql("SELECT count(*) FROM runs WHERE project_id = %s", (p["id"],))[0][0] == 0


# ---- roles --------------------------------------------------------------------------------------

def test_roles_matrix_runs(dash, admin, make_project, member, make_user, key_for, scene):
    p = scene["project"]
    pid = p["id"]
    viewer, editor, outsider = member(p, "viewer"), member(p, "editor"), make_user()
    rid = scene["runs"]["a1"]
    reads = [runs_path(p), runs_path(p, f"/{rid}"), f"/api/v1/projects/{pid}/stats",
             f"/api/v1/projects/{pid}/tests/{scene['a']['id']}/stats"]
    vkey, ekey = key_for(p, "viewer"), key_for(p, "editor")
    for c in (viewer, editor, vkey, ekey):
        for path in reads:
            ok(c.get(path))
    for path in reads:
        err(outsider.get(path), 404, "not_found")
    err(Client(dash.url).get(reads[0]), 401, "unauthenticated")
    trigger = {"test_id": scene["a"]["id"], "location": "nowhere-" + secrets.token_hex(3)}
    err(viewer.post(runs_path(p), trigger), 403, "forbidden")
    err(vkey.post(runs_path(p), trigger), 403, "forbidden")
    err(outsider.post(runs_path(p), trigger), 404, "not_found")
    err(editor.post(runs_path(p), trigger, csrf=False), 403, "csrf_failed")
    by_session = ok(editor.post(runs_path(p), trigger), 202)["runs"][0]["run_id"]
    by_key = ok(ekey.post(runs_path(p), trigger), 202)["runs"][0]["run_id"]
    kinds = dict(dash.sql("SELECT id::text, trigger FROM runs WHERE id = ANY(%s::uuid[])",
                          ([by_session, by_key],)))
    assert kinds == {by_session: "manual", by_key: "api"}
    # an API key of another project sees nothing here
    other = make_project()
    okey = key_for(other, "editor")
    err(okey.get(reads[0]), 404, "not_found")
    err(okey.post(runs_path(p), trigger), 404, "not_found")
