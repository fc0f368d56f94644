"""Graceful drain of a dashboard copy on SIGTERM (dashboard/main.c, common/src/service.c):
/readyz turns 503 {"status":"draining"} at once, the copy keeps serving for
RAMPART_DASHBOARD_DRAIN_DELAY (the balancer's time to notice), then waits for the requests in
flight and exits 0 — within RAMPART_DRAIN_TIMEOUT, or exits 1 when they take longer.

The slow requests are real ones made slow by their client: a POST whose body arrives in two
halves, the second one only after the drain delay has passed (the request is in flight from
its headers on). Keep-alive clients hammer the API meanwhile, and stop sending half-way through
the delay as a balancer that saw /readyz fail would."""
import json
import re
import secrets
import signal
import socket
import threading
import time

import pytest
import requests

from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Client, Dashboard, ok


@pytest.fixture
def copy_with(request):
    """copy_with(**env) -> a started dashboard with its own databases (dropped afterwards)."""
    made = []

    def make(**env):
        d = Dashboard("rampart_drain_" + secrets.token_hex(4), extra_env=env)
        d.create_databases()
        made.append(d)
        return d.start()

    yield make
    for d in made:
        d.stop(signal.SIGKILL)
        d.drop_databases()


class SlowPost:
    """POST /api/v1/projects over a raw socket: headers and half the body now, the rest when
    `release` is set; the answer's status (or the error) in .status / .error."""

    def __init__(self, url, cookie, csrf, release):
        host, port = url.rsplit("/", 1)[1].split(":")
        self.addr = (host, int(port))
        self.body = json.dumps({"slug": "drain-" + secrets.token_hex(5), "name": "slow"}).encode()
        self.head = (f"POST /api/v1/projects HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     f"Cookie: rampart_session={cookie}\r\nX-CSRF-Token: {csrf}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(self.body)}\r\n"
                     "\r\n").encode()
        self.release = release
        self.status = self.error = self.done_at = None
        self.answer = b""
        self.t = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.t.start()
        return self

    def run(self):
        try:
            with socket.create_connection(self.addr, timeout=30) as s:
                half = len(self.body) // 2
                s.sendall(self.head + self.body[:half])
                self.release.wait(30)
                s.sendall(self.body[half:])
                while b"\r\n\r\n" not in self.answer:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    self.answer += chunk
                m = re.match(rb"HTTP/1\.1 (\d+)", self.answer)
                self.status = int(m.group(1)) if m else None
                head, _, body = self.answer.partition(b"\r\n\r\n")
                n = re.search(rb"(?i)content-length: (\d+)", head)
                while n and len(body) < int(n.group(1)):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                self.answer = head + b"\r\n\r\n" + body
        except OSError as e:
            self.error = repr(e)
        self.done_at = time.time()


def in_flight(d):
    text = requests.get(d.url + "/metrics", timeout=5).text
    m = re.search(r"^rampart_dashboard_requests_in_flight (\d+)", text, re.M)
    return int(m.group(1)) if m else -1


def test_sigterm_drains_in_flight_requests(copy_with):
    d = copy_with(RAMPART_DASHBOARD_DRAIN_DELAY="1s", RAMPART_DRAIN_TIMEOUT="10s")
    admin = Client(d.url).login(ADMIN_EMAIL, ADMIN_PASSWORD)
    cookie = admin.s.cookies.get("rampart_session")
    assert requests.get(d.url + "/readyz", timeout=5).status_code == 200

    release = threading.Event()
    slow = [SlowPost(d.url, cookie, admin.csrf, release).start() for _ in range(3)]

    # keep-alive clients making requests in a loop until the "balancer" stops sending
    stop_sending = threading.Event()
    results, lock = [], threading.Lock()

    def loop():
        s = requests.Session()
        s.cookies.update(admin.s.cookies)
        i = 0
        while not stop_sending.is_set():
            t = time.time()
            try:
                if i % 2:
                    r = s.get(d.url + "/api/v1/projects", timeout=10)
                else:
                    r = s.post(d.url + "/api/v1/projects", timeout=10,
                               json={"slug": "loop-" + secrets.token_hex(5), "name": "loop"},
                               headers={"X-CSRF-Token": admin.csrf})
                res = (t, r.status_code)
            except requests.RequestException as e:
                res = (t, repr(e))
            with lock:
                results.append(res)
            i += 1

    loops = [threading.Thread(target=loop, daemon=True) for _ in range(4)]
    for t in loops:
        t.start()
    time.sleep(0.5)
    held = in_flight(d)
    assert held >= 3, f"the slow requests are not in flight ({held})"

    t_term = time.time()
    d.proc.send_signal(signal.SIGTERM)
    # readiness goes false at once
    while True:
        r = requests.get(d.url + "/readyz", timeout=5)
        if r.status_code == 503:
            break
        assert time.time() - t_term < 0.5, f"/readyz still {r.status_code} 0.5 s after SIGTERM"
    t_unready = time.time()
    assert r.json()["status"] == "draining", r.text
    # ... while the API still serves (a fresh connection, during the drain delay)
    fresh = requests.get(d.url + "/api/v1/projects", cookies=admin.s.cookies, timeout=5)
    assert fresh.status_code == 200, fresh.text
    time.sleep(max(0.0, t_term + 0.5 - time.time()))
    stop_sending.set()
    for t in loops:
        t.join(15)

    # past the drain delay the copy is still up, waiting for the slow requests
    time.sleep(max(0.0, t_term + 2.0 - time.time()))
    assert d.proc.poll() is None, "exited with requests still in flight"
    assert in_flight(d) >= 3
    release.set()
    code = d.proc.wait(timeout=15)
    t_exit = time.time()
    for s in slow:
        s.t.join(5)

    bad = [r for r in results if r[1] not in (200, 201)]
    after = [r for r in results if r[0] >= t_term]
    print(f"\nSIGTERM with 3 slow requests and 4 keep-alive clients in flight: /readyz 503 after "
          f"{(t_unready - t_term) * 1000:.0f} ms; {len(results)} loop requests "
          f"({len(after)} sent after SIGTERM), {len(bad)} not 2xx; slow requests released at "
          f"+2.0 s answered {[s.status for s in slow]}; exit code {code} at "
          f"+{t_exit - t_term:.2f} s")
    assert not bad, bad[:5]
    assert after, "no request was sent during the drain delay"
    assert [s.status for s in slow] == [201, 201, 201], [(s.status, s.error) for s in slow]
    assert code == 0, f"exit code {code}; log: {d.log_path}"
    assert t_exit - t_term < 10, "took longer than RAMPART_DRAIN_TIMEOUT"
    assert all(s.done_at <= t_exit + 0.1 for s in slow)
    slugs = [json.loads(s.body)["slug"] for s in slow]
    assert d.sql("SELECT count(*) FROM projects WHERE slug = ANY(%s)", (slugs,)) == [(3,)]
    with open(d.log_path, errors="replace") as f:
        assert "drained in" in f.read()


def test_drain_timeout_exits_1(copy_with):
    d = copy_with(RAMPART_DASHBOARD_DRAIN_DELAY="0s", RAMPART_DRAIN_TIMEOUT="1s")
    admin = Client(d.url).login(ADMIN_EMAIL, ADMIN_PASSWORD)
    release = threading.Event()
    slow = SlowPost(d.url, admin.s.cookies.get("rampart_session"), admin.csrf, release).start()
    time.sleep(0.3)
    assert in_flight(d) >= 1
    t_term = time.time()
    d.proc.send_signal(signal.SIGTERM)
    try:
        code = d.proc.wait(timeout=10)
    finally:
        release.set()
    took = time.time() - t_term
    slow.t.join(5)
    print(f"\na request held past RAMPART_DRAIN_TIMEOUT=1s: exit code {code} after {took:.2f} s; "
          f"the held request: {slow.status or slow.error}")
    assert code == 1, f"exit code {code}; log: {d.log_path}"
    assert 0.9 < took < 3.5, took
    with open(d.log_path, errors="replace") as f:
        assert "drain did not finish" in f.read()


def test_waiting_ci_trigger_answers_at_drain(copy_with):
    """A CI trigger waiting for its runs (POST .../runs?wait=) is the slowest request there is:
    on SIGTERM it answers at once with what it has (complete: false; no scheduler runs here,
    so the run stays pending) instead of holding the drain for its whole wait."""
    d = copy_with(RAMPART_DASHBOARD_DRAIN_DELAY="1s", RAMPART_DRAIN_TIMEOUT="10s")
    admin = Client(d.url).login(ADMIN_EMAIL, ADMIN_PASSWORD)
    p = ok(admin.post("/api/v1/projects", {"slug": "drain-" + secrets.token_hex(4), "name": "d"}),
           201)
    definition = {"name": "drain wait", "steps": [{"name": "s", "request": {
        "url": "http://127.0.0.1:9/"}}]}
    tid = d.sql("INSERT INTO tests (project_id, name, current_version) VALUES (%s, 'drain wait', "
                "1) RETURNING id", (p["id"],))[0][0]
    d.sql("INSERT INTO test_versions (test_id, version, definition) VALUES (%s, 1, %s)",
          (tid, json.dumps(definition)))
    answer = {}

    def trigger():
        t = time.time()
        try:
            answer["r"] = admin.s.post(d.url + f"/api/v1/projects/{p['id']}/runs?wait=60",
                                       json={"test_id": str(tid)}, timeout=30,
                                       headers={"X-CSRF-Token": admin.csrf})
        except requests.RequestException as e:
            answer["error"] = repr(e)
        answer["took"] = time.time() - t
        answer["at"] = time.time()

    th = threading.Thread(target=trigger, daemon=True)
    th.start()
    time.sleep(1.0)
    assert in_flight(d) >= 1 and "r" not in answer, answer
    t_term = time.time()
    d.proc.send_signal(signal.SIGTERM)
    th.join(15)
    code = d.proc.wait(timeout=15)
    t_exit = time.time()
    r = answer.get("r")
    print(f"\na CI trigger waiting up to 60 s, SIGTERM after 1 s: answered "
          f"{r.status_code if r is not None else answer.get('error')} "
          f"{(answer['at'] - t_term) * 1000:.0f} ms after SIGTERM; exit code {code} at "
          f"+{t_exit - t_term:.2f} s")
    assert r is not None and r.status_code == 200, answer
    body = r.json()
    assert body["complete"] is False, body
    assert answer["at"] - t_term < 1.0, "the waiting trigger held on past the drain's start"
    assert code == 0 and t_exit - t_term < 10


def test_readyz_shape_before_drain(copy_with):
    d = copy_with()
    r = requests.get(d.url + "/readyz", timeout=5)
    assert r.status_code == 200 and r.json() == {"status": "ready"}, r.text
    ok(Client(d.url).login(ADMIN_EMAIL, ADMIN_PASSWORD).get("/api/v1/projects"))
    assert d.stop() == 0
