"""Fixtures of the API tests: a real rampart-dashboard started against the real servers of
scripts/servers.sh (RAMPART_TEST_PG / RAMPART_TEST_MONGO / RAMPART_TEST_AMQP), in a fresh
PostgreSQL database and MongoDB database of its own (dropped afterwards), so several test runs
can share the servers. Clients log in through the API like a browser (cookie + CSRF token) or
use an API key. Every response is checked: a 5xx fails the test that caused it. The `pipeline`
fixture adds a real rampart-scheduler and rampart-worker on a location of their own, for tests
whose runs must actually be executed (test_ci_trigger.py, test_tests.py)."""
import json
import os
import re
import secrets
import signal
import subprocess
import time
import uuid

import psycopg2
import pymongo
import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("RP_BUILD_DIR", os.path.join(ROOT, "build"))
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-" + secrets.token_hex(4)
SECRET_KEY = secrets.token_hex(32)


def _env(name):
    v = os.environ.get(name)
    if not v:
        pytest.fail(f"{name} is not set: run the API tests through tests/api/run.sh "
                    "(it reads scripts/servers.sh env)")
    return v


class Dashboard:
    """One running rampart-dashboard process and the databases it owns."""

    def __init__(self, name, extra_env=None):
        self.name = name
        self.pg_admin = _env("RAMPART_TEST_PG")
        self.db = name
        self.pg = self.pg_admin + f" dbname={self.db}"
        mongo_base = _env("RAMPART_TEST_MONGO").rstrip("/")
        self.mongo = f"{mongo_base}/{self.db}"
        self.amqp = _env("RAMPART_TEST_AMQP")
        self.extra_env = extra_env or {}
        self.log_path = os.path.join(BUILD, "test-logs", f"{name}.log")
        self.proc = None
        self.url = None

    def create_databases(self):
        con = psycopg2.connect(self.pg_admin)
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{self.db}"')
        con.close()

    def drop_databases(self):
        con = psycopg2.connect(self.pg_admin)
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                        (self.db,))
            cur.execute(f'DROP DATABASE IF EXISTS "{self.db}"')
        con.close()
        client = pymongo.MongoClient(self.mongo, serverSelectionTimeoutMS=3000)
        try:
            client.drop_database(self.db)
        finally:
            client.close()

    def start(self, port=0):
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        env = dict(os.environ)
        env.update({
            "RAMPART_PG_URL": self.pg,
            "RAMPART_MONGO_URL": self.mongo,
            "RAMPART_AMQP_URLS": self.amqp,
            "RAMPART_HTTP_LISTEN": f"127.0.0.1:{port}",
            "RAMPART_ADMIN_EMAIL": ADMIN_EMAIL,
            "RAMPART_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "RAMPART_SECRET_KEY": SECRET_KEY,
            "RAMPART_LOG_LEVEL": "info",
            "RAMPART_READY_CHECK_INTERVAL": "500ms",
            "RAMPART_DASHBOARD_DRAIN_DELAY": "0s",
        })
        env.update(self.extra_env)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([os.path.join(BUILD, "dashboard", "rampart-dashboard")],
                                     env=env, stdout=log, stderr=log)
        log.close()
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"rampart-dashboard exited with {self.proc.returncode}; log: "
                            f"{self.log_path}")
            with open(self.log_path, "rb") as f:
                m = re.findall(rb"health endpoint on port (\d+)", f.read())
            if m:
                self.url = f"http://127.0.0.1:{int(m[-1])}"
                try:
                    if requests.get(self.url + "/readyz", timeout=2).status_code == 200:
                        return self
                except requests.RequestException:
                    pass
            time.sleep(0.1)
        pytest.fail(f"rampart-dashboard not ready within 30 s; log: {self.log_path}")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def sql(self, query, params=()):
        """Run SQL on the dashboard's database (for setup and checks); returns rows."""
        con = psycopg2.connect(self.pg)
        con.autocommit = True
        try:
            with con.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall() if cur.description else []
        finally:
            con.close()


class Client:
    """An HTTP client like a browser (cookie jar + CSRF header on writes) or a CI job (API key).
    Every answer is checked: no 5xx, and errors have the documented JSON shape."""

    def __init__(self, base, api_key=None):
        self.base = base
        self.s = requests.Session()
        self.csrf = None
        self.api_key = api_key
        self.user = None

    def request(self, method, path, *, json_body=None, data=None, headers=None, csrf=True,
                timeout=30, **kw):
        h = dict(headers or {})
        if self.api_key:
            h.setdefault("Authorization", f"Bearer {self.api_key}")
        if csrf and self.csrf and method not in ("GET", "HEAD", "OPTIONS"):
            h.setdefault("X-CSRF-Token", self.csrf)
        if json_body is not None:
            data = json.dumps(json_body)
            h.setdefault("Content-Type", "application/json")
        r = self.s.request(method, self.base + path, data=data, headers=h, timeout=timeout, **kw)
        assert r.status_code < 500, f"{method} {path} -> {r.status_code}: {r.text[:500]}"
        if r.status_code >= 400 and r.headers.get("Content-Type", "").startswith("application/json"):
            err = r.json().get("error")
            assert err and err.get("code") and err.get("message") and err.get("request_id"), r.text
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, json_body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, json_body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, json_body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def login(self, email, password):
        r = self.post("/api/v1/session", {"email": email, "password": password})
        assert r.status_code == 201, r.text
        self.csrf = r.json()["csrf_token"]
        self.user = r.json()["user"]
        return self


def ok(r, status=200):
    """Assert the status and return the JSON body (None for an empty one)."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:800]}"
    return r.json() if r.content else None


def err(r, status, code=None):
    """Assert an error answer with `status` (and the error code) and return the error object."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:800]}"
    e = r.json()["error"]
    if code:
        assert e["code"] == code, e
    return e


@pytest.fixture(scope="session")
def dash():
    d = Dashboard("rampart_api_" + secrets.token_hex(4))
    d.create_databases()
    try:
        d.start()
        yield d
        assert d.stop() == 0, f"dashboard exit code not 0; log: {d.log_path}"
    finally:
        d.stop(signal.SIGKILL)
        d.drop_databases()


@pytest.fixture
def anon(dash):
    return Client(dash.url)


@pytest.fixture
def admin(dash):
    return Client(dash.url).login(ADMIN_EMAIL, ADMIN_PASSWORD)


@pytest.fixture
def make_user(dash, admin):
    """make_user(is_admin=False) -> a logged-in Client for a new user (created by the admin)."""
    def make(is_admin=False, name=None):
        email = f"user-{uuid.uuid4().hex[:10]}@example.com"
        password = "pw-" + secrets.token_hex(8)
        ok(admin.post("/api/v1/users", {"email": email, "name": name or email,
                                        "password": password, "is_admin": is_admin}), 201)
        c = Client(dash.url).login(email, password)
        c.password = password
        return c
    return make


@pytest.fixture
def make_project(admin):
    """make_project(owner_client=admin) -> the project JSON (the client becomes its owner)."""
    def make(owner=None, name=None):
        slug = "p-" + uuid.uuid4().hex[:12]
        return ok((owner or admin).post("/api/v1/projects", {"slug": slug, "name": name or slug}),
                  201)
    return make


@pytest.fixture
def member(admin, make_user):
    """member(project, role) -> a logged-in Client of a new user with `role` in `project`."""
    def make(project, role):
        c = make_user()
        ok(admin.post(f"/api/v1/projects/{project['id']}/members",
                      {"email": c.user["email"], "role": role}), 201)
        return c
    return make


# ---- a scheduler and a worker for the test dashboard (the pipeline fixture) ------------------

class Service:
    """A rampart-scheduler or rampart-worker process with its log."""

    def __init__(self, name, binary, env):
        self.name = name
        self.log_path = os.path.join(BUILD, "test-logs", f"{name}.log")
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([os.path.join(BUILD, binary)], env=env, stdout=log,
                                     stderr=log)
        log.close()

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, \
                f"{self.name} exited with {self.proc.returncode}: {self.log()[-2000:]}"
            m = re.findall(r"health endpoint on port (\d+)", self.log())
            if m:
                try:
                    if requests.get(f"http://127.0.0.1:{m[-1]}/readyz", timeout=2).ok:
                        return
                except requests.RequestException:
                    pass
            time.sleep(0.1)
        pytest.fail(f"{self.name} not ready within {timeout} s; log: {self.log_path}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return "killed after 40 s"
        return self.proc.returncode


@pytest.fixture
def pipeline(dash):
    """A scheduler and a worker on a private location; yields the location."""
    location = "ci-" + secrets.token_hex(6)
    # The scheduler publishes every pending run and due schedule of this database to the shared
    # broker: park what earlier tests left behind, so only this test's runs go out.
    parked = [r[0] for r in dash.sql("UPDATE schedules SET enabled = false WHERE enabled "
                                     "RETURNING id")]
    dash.sql("UPDATE runs SET lease_until = 'infinity' WHERE status = 'pending'")
    base = dict(os.environ)
    base.update({"RAMPART_PG_URL": dash.pg, "RAMPART_MONGO_URL": dash.mongo,
                 "RAMPART_AMQP_URLS": dash.amqp, "RAMPART_HTTP_LISTEN": "127.0.0.1:0",
                 "RAMPART_LOG_LEVEL": "info", "RAMPART_READY_CHECK_INTERVAL": "500ms",
                 "RAMPART_DRAIN_TIMEOUT": "20s"})
    sched_env = dict(base, RAMPART_INSTANCE=f"sched-{location}",
                     RAMPART_SCHEDULER_SWEEP_INTERVAL="200ms")
    worker_env = dict(base, RAMPART_INSTANCE=f"worker-{location}",
                      RAMPART_WORKER_LOCATION=location, RAMPART_SECRET_KEY=SECRET_KEY)
    procs = [Service(f"ci-scheduler-{location}", "scheduler/rampart-scheduler", sched_env),
             Service(f"ci-worker-{location}", "worker/rampart-worker", worker_env)]
    try:
        for p in procs:
            p.wait_ready()
        yield {"location": location, "procs": procs}
    finally:
        codes = {p.name: p.stop() for p in procs}
        if parked:
            dash.sql("UPDATE schedules SET enabled = true WHERE id = ANY(%s::uuid[])",
                     ([str(x) for x in parked],))
    assert all(c == 0 for c in codes.values()), f"exit codes {codes}; logs in {BUILD}/test-logs"
