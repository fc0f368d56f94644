"""A rampart-dashboard with data in it, for the fuzzer (run.sh / fuzz.py) and the HTTP benchmark
(bench/dashboard_http.sh): started like the API tests start one (tests/api/conftest.py: its own
PostgreSQL and MongoDB databases on the servers of scripts/servers.sh, dropped afterwards), with
an admin session, a project holding a test, an environment, a schedule, a channel, an alert
rule, a maintenance window, a member, an editor API key, N runs rows with one result document
each in MongoDB, and of each kind a few more ("victim_*") for the fuzzer to delete. Rows are
written with SQL (the schema of common/migrations) except projects and users (the API).

As a module: `with seeded(runs=100) as s:` (s.url, s.ids, s.cookie, s.csrf, s.api_key ...).
As a program: `seeded.py --runs 10000 --env-file F` writes the facts as shell assignments to F,
then holds the dashboard until SIGTERM/SIGINT (or until its parent dies), then stops it and
drops the databases."""
import argparse
import contextlib
import datetime
import hashlib
import json
import os
import secrets
import shlex
import signal
import sys
import time
import uuid

import psycopg2
import psycopg2.extras
import pymongo

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/api: conftest

VICTIMS = 5  # of each kind, for the fuzzer's DELETEs

TEST_DEFINITION = {
    "name": "fuzz seed: health",
    "tags": ["seed"],
    "steps": [{"name": "health", "request": {"url": "http://127.0.0.1:9/healthz"},
               "expect": {"status": 200}, "assert": ["time < 500"]}],
}


def make_api_key(pg_sql, project_id, name, role="editor"):
    """An API key as the keys API would make it: rpk_<12>_<secret>, prefix + SHA-256 kept."""
    prefix = secrets.token_hex(6)
    token = f"rpk_{prefix}_{secrets.token_urlsafe(32)}"
    rows = pg_sql("INSERT INTO api_keys (project_id, name, role, prefix, token_hash) "
                  "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                  (project_id, name, role, prefix, hashlib.sha256(token.encode()).digest()))
    return str(rows[0][0]), token


def _result_doc(run_id, project_id, test_id, fire_time, status, full=False):
    doc = {"_id": run_id, "test": TEST_DEFINITION["name"], "status": status,
           "project_id": project_id, "test_id": test_id, "test_version": 1,
           "schedule_id": None, "location": "local", "trigger": "schedule",
           "fire_time": fire_time, "attempt": 1, "tries": 1, "worker": "seed",
           "started_at": fire_time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
           "finished_at": fire_time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
           "duration_ms": 12.5,
           "counts": {"assertions": 2, "failed": 1 if status == "failed" else 0, "warnings": 0}}
    if full:
        body = json.dumps({"status": "ok", "items": [{"id": i, "name": f"item {i}"}
                                                     for i in range(40)]})
        doc["steps"] = [{
            "name": "health",
            "request": {"method": "GET", "url": "http://127.0.0.1:9/healthz",
                        "headers": [{"name": "Accept", "value": "application/json"}], "body": ""},
            "response": {"status": 200, "headers": [{"name": "Content-Type",
                                                     "value": "application/json"}],
                         "body": body, "body_size": len(body), "body_truncated": False},
            "timings": {"dns": 0.0, "connect": 0.2, "tls": 0.0, "first_byte": 9.1, "total": 12.5},
            "assertions": [
                {"expr": "expect status 200", "passed": True, "severity": "error",
                 "actual": "200", "message": ""},
                {"expr": "time < 500", "passed": status != "failed", "severity": "error",
                 "actual": "12.5", "message": "" if status != "failed" else "time was 612 ms"}],
            "captures": []}]
    return doc


class Seeded:
    def __init__(self, runs, name):
        from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Client, Dashboard
        self.Client = Client
        self.email, self.password = ADMIN_EMAIL, ADMIN_PASSWORD
        self.n_runs = runs
        # a generated ?wait=N on the CI trigger must not outlast the client's timeout
        self.d = Dashboard(f"{name}_{secrets.token_hex(4)}",
                           extra_env={"RAMPART_RUN_WAIT_MAX": "1s"})
        self.ids = {}

    def start(self):
        self.d.create_databases()
        self.d.start()
        self.url = self.d.url
        admin = self.Client(self.url).login(self.email, self.password)
        self.admin = admin
        self.cookie = admin.s.cookies.get("rampart_session")
        self.csrf = admin.csrf
        self._seed()
        return self

    def _seed(self):
        sql, ids = self.d.sql, self.ids
        ids["admin"] = self.admin.user["id"]

        def project(slug):
            r = self.admin.post("/api/v1/projects", {"slug": slug, "name": slug})
            assert r.status_code == 201, r.text
            return r.json()["id"]
        ids["project"] = project("seed-" + secrets.token_hex(4))
        ids["victim_project"] = [project("victim-" + secrets.token_hex(4)) for _ in range(VICTIMS)]
        pid = ids["project"]

        # users (through the API when the users route exists): "user" is a viewer of the
        # project; the victims are viewers too (to be removed or deleted); "outsider" is no
        # member (to be added)
        def user(member):
            email = f"user-{secrets.token_hex(5)}@example.com"
            r = self.admin.post("/api/v1/users", {"email": email, "name": email,
                                                  "password": "pw-" + secrets.token_hex(8),
                                                  "is_admin": False})
            if r.status_code == 201:
                uid = r.json()["id"]
            else:
                uid = str(sql("INSERT INTO users (email, name, password_hash) VALUES "
                              "(%s, %s, 'x') RETURNING id", (email, email))[0][0])
            if member:
                sql("INSERT INTO memberships (project_id, user_id, role) VALUES "
                    "(%s, %s, 'viewer') ON CONFLICT DO NOTHING", (pid, uid))
            return uid, email
        ids["user"], _ = user(True)
        victims = [user(True) for _ in range(VICTIMS)]
        ids["victim_user"] = [u for u, _ in victims]
        ids["outsider"], outsider_email = user(False)
        ids["email"] = [outsider_email] + [e for _, e in victims]

        def tests(n):
            out = []
            for _ in range(n):
                name = TEST_DEFINITION["name"] + ("" if "test" not in ids else
                                                  " " + secrets.token_hex(3))
                tid = str(sql("INSERT INTO tests (project_id, name, tags, current_version) "
                              "VALUES (%s, %s, '{seed}', 1) RETURNING id", (pid, name))[0][0])
                sql("INSERT INTO test_versions (test_id, version, definition) VALUES "
                    "(%s, 1, %s)", (tid, json.dumps(TEST_DEFINITION)))
                out.append(tid)
            return out

        def rows_of(n, table_sql, args):
            return [str(sql(table_sql, args(i))[0][0]) for i in range(n)]

        def envs(n):
            return rows_of(n, "INSERT INTO environments (project_id, name, variables) VALUES "
                              "(%s, %s, '{\"base\": \"http://127.0.0.1:9\"}') RETURNING id",
                           lambda i: (pid, f"env-{secrets.token_hex(4)}"))

        def schedules(n):
            return rows_of(n, "INSERT INTO schedules (project_id, test_id, environment_id, "
                              "interval_s, enabled, next_run_at) VALUES (%s, %s, %s, 300, false, "
                              "now() + interval '1 day') RETURNING id",
                           lambda i: (pid, ids["test"], ids["environment"]))

        def channels(n):
            return rows_of(n, "INSERT INTO channels (project_id, name, kind, config) VALUES "
                              "(%s, %s, 'email', '{\"to\": [\"ops@example.com\"]}') RETURNING id",
                           lambda i: (pid, f"mail-{secrets.token_hex(4)}"))

        def rules(n):
            return rows_of(n, "INSERT INTO alert_rules (project_id, name, channel_ids) VALUES "
                              "(%s, %s, ARRAY[%s]::uuid[]) RETURNING id",
                           lambda i: (pid, f"rule-{secrets.token_hex(4)}", ids["channel"]))

        def windows(n):
            return rows_of(n, "INSERT INTO maintenance_windows (project_id, name, kind, "
                              "starts_at, ends_at) VALUES (%s, %s, 'once', now() + interval "
                              "'1 day', now() + interval '2 days') RETURNING id",
                           lambda i: (pid, f"window-{secrets.token_hex(4)}"))

        kinds = [("test", tests), ("environment", envs), ("schedule", schedules),
                 ("channel", channels), ("rule", rules)]
        if sql("SELECT to_regclass('maintenance_windows') IS NOT NULL")[0][0]:
            kinds.append(("window", windows))
        for name, make in kinds:
            ids[name] = make(1)[0]
            ids["victim_" + name] = make(VICTIMS)
        ids["key"], self.api_key = make_api_key(sql, pid, "fuzz editor")
        ids["victim_key"] = [make_api_key(sql, pid, f"victim {i}")[0] for i in range(VICTIMS)]

        # N finished runs, newest first one minute apart, every tenth failed, each with its
        # result document; the newest has a full one (steps, request, response, assertions)
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        run_ids = [str(uuid.uuid4()) for _ in range(self.n_runs)]
        rows = []
        for i, rid in enumerate(run_ids):
            fire = now - datetime.timedelta(minutes=i + 1)
            status = "failed" if i % 10 == 9 else "passed"
            rows.append((rid, fire, status, 100.0 + i % 50))
        if rows:
            con = psycopg2.connect(self.d.pg)
            con.autocommit = True
            with con.cursor() as cur:
                psycopg2.extras.execute_values(
                    cur,
                    "INSERT INTO runs (id, project_id, test_id, test_version, fire_time, trigger, "
                    "location, status, attempts, created_at, queued_at, started_at, finished_at, "
                    "duration_ms, lease_until) SELECT v.id, v.p, v.t, 1, v.f, 'schedule', "
                    "'local', v.s, 1, v.f, v.f, v.f, v.f + v.d * interval '1 millisecond', v.d, "
                    "v.f FROM (VALUES %s) AS v(id, p, t, f, s, d)",
                    [(rid, pid, ids["test"], f, st, dur) for rid, f, st, dur in rows],
                    template="(%s::uuid, %s::uuid, %s::uuid, %s::timestamptz, %s, %s::float8)",
                    page_size=1000)
                # the statistics autovacuum would gather within a minute: plans as in steady state
                cur.execute("ANALYZE runs")
                cur.execute("ANALYZE tests")
            con.close()
            client = pymongo.MongoClient(self.d.mongo, serverSelectionTimeoutMS=5000, tz_aware=True)
            try:
                coll = client[self.d.db]["results"]
                docs = [_result_doc(rid, pid, ids["test"], f, s, full=(i == 0))
                        for i, (rid, f, s, _) in enumerate(rows)]
                for k in range(0, len(docs), 1000):
                    coll.insert_many(docs[k:k + 1000], ordered=False)
            finally:
                client.close()
            ids["run"] = run_ids[0]
            ids["failed_run"] = run_ids[9] if len(run_ids) > 9 else run_ids[0]
        else:
            ids["run"] = str(uuid.uuid4())
        # an incident of the seeded rule with its opening and a ledger row (the incident routes
        # then answer with data, not only 404)
        if sql("SELECT to_regclass('incidents') IS NOT NULL")[0][0]:
            ids["incident"] = str(sql(
                "INSERT INTO incidents (project_id, rule_id, test_id, location, failing_since, "
                "opened_at, opened_run_id, failure) VALUES (%s, %s, %s, 'local', now(), now(), "
                "%s, 'status: expected 200, got 500') RETURNING id",
                (pid, ids["rule"], ids["test"], ids["run"]))[0][0])
            tr = sql("INSERT INTO incident_transitions (project_id, incident_id, kind, run_id, "
                     "occurred_at, published_at) VALUES (%s, %s, 'opened', %s, now(), now()) "
                     "RETURNING id", (pid, ids["incident"], ids["run"]))[0][0]
            sql("INSERT INTO notifications (project_id, transition_id, channel_id, status, "
                "attempts, reason) VALUES (%s, %s, %s, 'failed', 3, 'gave up after 3 tries')",
                (pid, tr, ids["channel"]))

    def stop(self):
        """Stop the dashboard (SIGTERM: it must exit 0) and drop its databases."""
        try:
            code = self.d.stop()
        finally:
            self.d.stop(signal.SIGKILL)
            self.d.drop_databases()
        return code

    def env(self):
        v = {"DASH_URL": self.url, "DASH_LOG": self.d.log_path, "DASH_PID": str(self.d.proc.pid),
             "DASH_COOKIE": self.cookie, "DASH_CSRF": self.csrf, "DASH_API_KEY": self.api_key,
             "DASH_DB": self.d.db}
        for k, val in self.ids.items():
            v["ID_" + k.upper()] = val if isinstance(val, str) else " ".join(val)
        return v


@contextlib.contextmanager
def seeded(runs=100, name="rampart_seed"):
    s = Seeded(runs, name)
    try:
        yield s.start()
    finally:
        s.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--name", default="rampart_seed")
    ap.add_argument("--env-file", required=True)
    a = ap.parse_args()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    parent = os.getppid()
    t0 = time.time()
    s = Seeded(a.runs, a.name)
    code = None
    try:
        s.start()
        tmp = a.env_file + ".tmp"
        with open(tmp, "w") as f:
            for k, v in s.env().items():
                f.write(f"{k}={shlex.quote(v)}\n")
        os.rename(tmp, a.env_file)
        print(f"seeded.py: dashboard {s.url} ready with {a.runs} runs in {time.time() - t0:.1f} s",
              file=sys.stderr)
        while not stop and os.getppid() == parent:
            time.sleep(0.2)
    finally:
        code = s.stop()
        print(f"seeded.py: dashboard stopped (exit code {code}), databases dropped",
              file=sys.stderr)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
