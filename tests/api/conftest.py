"""Fixtures of the API tests: a real rampart-dashboard started against the real servers of
scripts/servers.sh (RAMPART_TEST_PG / RAMPART_TEST_MONGO / RAMPART_TEST_AMQP), in a fresh
PostgreSQL database and MongoDB database of its own (dropped afterwards), so several test runs
can share the servers. Clients log in through the API like a browser (cookie + CSRF token) or
use an API key. Every response is checked: a 5xx fails the test that caused it."""
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
