"""Two dashboard copies on one database behind HAProxy (Debian `haproxy`, a private config in a
temporary directory): a user logs in through the balancer, the copy that served the login is
killed with SIGKILL, and the user keeps working through the balancer without logging in again
(sessions live in PostgreSQL, so any copy serves any session). The killed copy is started again
and the balancer sends work to both. Also: a change made through one copy is read through the
other, and the balancer's X-Forwarded-For (not one the client made up) is the address the
dashboard records.

The balancer health-checks GET /readyz every 500 ms (down after 2 failures, up after 2
passes) and re-sends a request refused at connect to the other copy (retries + redispatch),
as docs/operations.md recommends."""
import csv
import io
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Client, Dashboard, err, ok

CHECK = "inter 500ms fall 2 rise 2"
PROXY_ENV = {"RAMPART_TRUST_PROXY": "true"}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Balancer:
    """HAProxy in the foreground (-db) with a stats socket, round robin over `servers`
    ({name: port})."""

    def __init__(self, servers):
        self.dir = tempfile.mkdtemp(prefix="rampart-haproxy-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sock = os.path.join(self.dir, "admin.sock")
        self.log_path = os.path.join(self.dir, "haproxy.log")
        lines = "\n".join(f"    server {n} 127.0.0.1:{p} check" for n, p in servers.items())
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(f"""global
    maxconn 512
    stats socket {self.sock} mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option forwardfor
    retries 2
    option redispatch 1

frontend api
    bind 127.0.0.1:{self.port}
    # the edge: what a client says in X-Forwarded-For is not believed
    http-request del-header X-Forwarded-For
    default_backend dashboards

backend dashboards
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    http-response set-header X-Served-By %[srv_name]
    default-server {CHECK}
{lines}
""")
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["haproxy", "-f", self.cfg, "-db"], stdout=log, stderr=log)
        log.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"haproxy exited with {self.proc.returncode}: {self.log()}")
            if os.path.exists(self.sock) and all(s == "UP" for s in self.states().values()):
                return self
            time.sleep(0.1)
        pytest.fail(f"haproxy: servers not UP within 10 s: {self.states()} {self.log()}")

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-2000:]

    def command(self, cmd):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.sock)
            s.sendall(cmd.encode() + b"\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out.decode()
                out += chunk

    def states(self):
        """{server name: "UP" / "DOWN" / ...} of the dashboards backend."""
        try:
            text = self.command("show stat").lstrip("# ")
        except OSError:
            return {}
        rows = csv.DictReader(io.StringIO(text))
        return {r["svname"]: r["status"].split()[0] for r in rows
                if r["pxname"] == "dashboards" and r["svname"] not in ("BACKEND", "FRONTEND")}

    def wait_state(self, name, state, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.states().get(name) == state:
                return time.time()
            time.sleep(0.05)
        pytest.fail(f"haproxy: {name} not {state} within {timeout} s: {self.states()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def pair():
    """Two copies ("a", "b") on ONE database (created and dropped once, by the first)."""
    name = "rampart_fo_" + secrets.token_hex(4)
    a = Dashboard(name, extra_env=PROXY_ENV)
    b = Dashboard(name + "_b", extra_env=PROXY_ENV)
    b.db, b.pg, b.mongo = a.db, a.pg, a.mongo  # the same PostgreSQL and MongoDB databases
    a.create_databases()
    copies = {"a": a, "b": b}
    try:
        for d in copies.values():
            d.port = free_port()
            d.start(port=d.port)
        yield copies
        for n, d in copies.items():
            assert d.stop() == 0, f"copy {n}: exit code not 0; log: {d.log_path}"
    finally:
        for d in copies.values():
            d.stop(signal.SIGKILL)
        a.drop_databases()


@pytest.fixture(scope="module")
def lb(pair):
    b = Balancer({n: d.port for n, d in pair.items()})
    try:
        yield b.start()
    finally:
        b.stop()


def served(pair, copy, route="/api/v1/projects", method="GET", code="200"):
    """rampart_dashboard_requests_total{route,method,code} of one copy."""
    text = requests.get(pair[copy].url + "/metrics", timeout=5).text
    m = re.search(r'^rampart_dashboard_requests_total\{route="%s",method="%s",code="%s"\} (\d+)'
                  % (re.escape(route), method, code), text, re.M)
    return int(m.group(1)) if m else 0


def test_kill_the_copy_that_served_the_login(pair, lb):
    user = Client(lb.url)
    r = user.post("/api/v1/session", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert r.status_code == 201, r.text
    user.csrf = r.json()["csrf_token"]
    victim = r.headers["X-Served-By"]
    survivor = "b" if victim == "a" else "a"
    first = ok(user.post("/api/v1/projects", {"slug": "fo-" + secrets.token_hex(5), "name": "before"}),
               201)
    print(f"\nlogged in through haproxy, served by copy {victim}; created project {first['id']}")

    pair[victim].proc.kill()  # SIGKILL: no drain, connections reset
    pair[victim].proc.wait()
    t_kill = time.time()
    print(f"kill -9 copy {victim} (pid {pair[victim].proc.pid})")

    # keep working through the balancer, without logging in again, for 4 s (the balancer's
    # checks take 2 x 500 ms to mark the copy down)
    ops = {"list": 0, "create": 0, "get": 0}
    failures, by, last_fail, t_down, created = [], {}, None, None, [first["id"]]
    i = 0
    while time.time() - t_kill < 4.0:
        kind = ("list", "create", "get")[i % 3]
        i += 1
        t = time.time()
        try:
            if kind == "list":
                r = user.s.get(lb.url + "/api/v1/projects", timeout=10)
                good = r.status_code == 200
            elif kind == "create":
                r = user.s.post(lb.url + "/api/v1/projects", timeout=10,
                                json={"slug": "fo-" + secrets.token_hex(5), "name": "during"},
                                headers={"X-CSRF-Token": user.csrf})
                good = r.status_code == 201
                if good:
                    created.append(r.json()["id"])
            else:
                r = user.s.get(lb.url + f"/api/v1/projects/{created[-1]}", timeout=10)
                good = r.status_code == 200
            what = f"{r.status_code} {r.text[:200]}"
            by[r.headers.get("X-Served-By")] = by.get(r.headers.get("X-Served-By"), 0) + 1
        except requests.RequestException as e:
            good, what = False, repr(e)
        ops[kind] += 1
        if not good:
            failures.append((round(t - t_kill, 3), kind, what))
            last_fail = time.time()
        if t_down is None and lb.states().get(victim) == "DOWN":
            t_down = time.time()
    full_service = (last_fail - t_kill) if last_fail else 0.0
    print(f"through haproxy after the kill: {sum(ops.values())} requests {ops}, "
          f"{len(failures)} failed, served by {by}; haproxy marked {victim} DOWN after "
          f"{(t_down - t_kill) if t_down else float('nan'):.2f} s; full service after "
          f"{full_service:.2f} s")
    for f in failures:
        print("  failed:", f)
    assert t_down is not None, f"haproxy never marked {victim} DOWN: {lb.states()}"
    assert not failures, f"requests failed after the kill: {failures}"
    assert set(by) == {survivor}, by
    assert ops["create"] >= 3 and ops["get"] >= 3, ops
    # the same session, on the surviving copy, sees everything made before and during
    items = {p["id"] for p in ok(user.get("/api/v1/projects"))["items"]}
    assert set(created) <= items

    # start the killed copy again (same port): the balancer sends work to both
    t_start = time.time()
    pair[victim].start(port=pair[victim].port)
    t_up = lb.wait_state(victim, "UP")
    print(f"copy {victim} restarted: ready after {t_up - t_start:.2f} s (haproxy UP)")
    before = {n: served(pair, n) for n in pair}
    by = {}
    for _ in range(20):
        r = user.get("/api/v1/projects")
        ok(r)
        by[r.headers["X-Served-By"]] = by.get(r.headers["X-Served-By"], 0) + 1
    after = {n: served(pair, n) for n in pair}
    print(f"20 requests through haproxy after the restart: served by {by}; "
          f"GET /api/v1/projects 200 counted by each copy's /metrics: "
          f"{ {n: after[n] - before[n] for n in pair} }")
    assert set(by) == {"a", "b"}, by
    assert all(after[n] - before[n] == by[n] for n in pair), (before, after, by)


def test_write_through_one_read_through_the_other(pair):
    a, b = Client(pair["a"].url), Client(pair["b"].url)
    a.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    # the same browser: the session cookie and its CSRF token, sent to the other copy
    b.s.cookies.update(a.s.cookies)
    b.csrf = a.csrf
    assert ok(b.get("/api/v1/session"))["user"]["email"] == ADMIN_EMAIL
    p = ok(a.post("/api/v1/projects", {"slug": "rw-" + secrets.token_hex(5), "name": "via a"}),
           201)
    assert ok(b.get(f"/api/v1/projects/{p['id']}"))["name"] == "via a"
    ok(b.patch(f"/api/v1/projects/{p['id']}", {"name": "via b"}))
    assert ok(a.get(f"/api/v1/projects/{p['id']}"))["name"] == "via b"
    ok(b.delete(f"/api/v1/projects/{p['id']}"), 204)
    err(a.get(f"/api/v1/projects/{p['id']}"), 404, "not_found")
    # a logout on one copy ends the session on the other
    ok(a.delete("/api/v1/session"), 204)
    err(b.get("/api/v1/session"), 401, "unauthenticated")
    print("\ncreate via a -> read via b, rename via b -> read via a, delete via b -> 404 via a, "
          "logout via a -> 401 via b")


def test_forwarded_for_is_the_balancers(pair, lb):
    """The session records the client's address as the balancer saw it, not what the client
    wrote in X-Forwarded-For (the balancer drops that header and adds its own)."""
    r = requests.post(lb.url + "/api/v1/session", timeout=10,
                      json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
                      headers={"X-Forwarded-For": "203.0.113.77", "User-Agent": "fo-xff-test"})
    assert r.status_code == 201, r.text
    rows = pair["a"].sql("SELECT ip FROM sessions WHERE user_agent = 'fo-xff-test'")
    assert rows == [("127.0.0.1",)], rows
