"""Fixtures of the alert integration tests (issue #7): the whole alert path on real servers.

`stack` starts, for one test module: a private PostgreSQL + MongoDB database (the API tests'
Dashboard class), a private RabbitMQ vhost (so `rampart.mailer` and `rampart.connector` are
this run's own on the shared broker), a real SMTP server (aiosmtpd, smtp_sink.py), an HTTP
receiver standing in for webhook / Slack / PagerDuty (receiver.py), an HTTP target whose
answers the test chooses, and rampart-dashboard, -scheduler, -worker, -mailer and -connector.
Everything is stopped afterwards (the vhost and databases dropped)."""
import http.server
import importlib.util
import json
import os
import secrets
import subprocess
import sys
import threading

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import rp_helpers  # noqa: E402  (tests/rp_helpers.py)

# the API tests' fixtures module (a conftest.py too: loaded under another name)
_spec = importlib.util.spec_from_file_location("api_conftest",
                                               os.path.join(ROOT, "tests", "api", "conftest.py"))
_api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_api)
ADMIN_EMAIL, ADMIN_PASSWORD, BUILD, SECRET_KEY = (_api.ADMIN_EMAIL, _api.ADMIN_PASSWORD,
                                                  _api.BUILD, _api.SECRET_KEY)
Client, Dashboard, Service, ok = _api.Client, _api.Dashboard, _api.Service, _api.ok

SERVERS = os.path.join(ROOT, "scripts", "servers.sh")
FIXTURES = os.path.join(ROOT, "tests", "integration", "alerts")


def _spawn_fixture(name, args):
    """Start a fixture script that prints 'listening on PORT'; return (proc, port)."""
    return rp_helpers.spawn_fixture(name, args, os.path.join(BUILD, "test-logs", f"{name}.log"))


_stop = rp_helpers.stop_proc
wait_for = rp_helpers.wait_for


class Target(http.server.ThreadingHTTPServer):
    """The monitored API: GET /t/<name> answers the next status of plan[name] (then 200)."""

    def __init__(self):
        self.plan = {}
        self.hits = {}
        self.lock = threading.Lock()
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.split("/")[-1]
                with target.lock:
                    target.hits[name] = target.hits.get(name, 0) + 1
                    queue = target.plan.get(name, [])
                    status = queue.pop(0) if queue else 200
                rp_helpers.answer_json(self, status, {"status": status})

            def log_message(self, *a):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class Records:
    """JSON lines appended by a fixture (SMTP sink or HTTP receiver)."""

    def __init__(self, path):
        self.path = path
        open(path, "w").close()

    def all(self):
        out = []
        with open(self.path) as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
        return out


class Stack:
    def __init__(self, tag):
        self.tag = tag
        self.vhost = f"alerts-{tag}"
        self.procs = {}
        self.dash = None

    def service(self, name, binary, **extra):
        env = dict(self.base_env)
        env.update({k: str(v) for k, v in extra.items()})
        env["RAMPART_INSTANCE"] = name
        svc = Service(f"{self.tag}-{name}", binary, env)
        svc.wait_ready()
        self.procs[name] = svc
        return svc

    def mailer(self, name="mailer-a", **extra):
        return self.service(name, "mailer/rampart-mailer", **extra)

    def connector(self, name="connector-a", **extra):
        return self.service(name, "connector/rampart-connector", **extra)

    def kill9(self, name):
        svc = self.procs.pop(name)
        svc.proc.kill()
        svc.proc.wait()
        return svc

    def sql(self, q, params=()):
        return self.dash.sql(q, params)


@pytest.fixture(scope="module")
def stack():
    tag = secrets.token_hex(4)
    st = Stack(tag)
    os.makedirs(os.path.join(BUILD, "test-logs"), exist_ok=True)
    subprocess.run([SERVERS, "vhost", "add", st.vhost], check=True)
    amqp = os.environ["RAMPART_TEST_AMQP"].rstrip("/") + "/" + st.vhost
    st.dash = Dashboard(f"alerts_{tag}", {"RAMPART_AMQP_URLS": amqp,
                                          "RAMPART_PUBLIC_URL": "https://rampart.example.com",
                                          "RAMPART_COOKIE_SECURE": "never"})
    st.dash.create_databases()
    fixtures = []
    try:
        st.dash.start()
        st.mail = Records(os.path.join(BUILD, "test-logs", f"alerts-{tag}-mail.jsonl"))
        st.hooks = Records(os.path.join(BUILD, "test-logs", f"alerts-{tag}-hooks.jsonl"))
        st.hmac_secret = "whsec-" + secrets.token_hex(12)
        smtp, st.smtp_port = _spawn_fixture("smtp-sink", [
            os.path.join(FIXTURES, "smtp_sink.py"), "--port", "0", "--out", st.mail.path])
        fixtures.append(smtp)
        recv, st.recv_port = _spawn_fixture("receiver", [
            os.path.join(FIXTURES, "receiver.py"), "--port", "0", "--out", st.hooks.path,
            "--fail", "/flaky=3", "--hmac-secret", st.hmac_secret])
        fixtures.append(recv)
        st.recv = f"http://127.0.0.1:{st.recv_port}"
        st.target = Target()
        st.location = "alerts"
        st.base_env = dict(os.environ)
        st.base_env.update({
            "RAMPART_PG_URL": st.dash.pg, "RAMPART_MONGO_URL": st.dash.mongo,
            "RAMPART_AMQP_URLS": amqp, "RAMPART_HTTP_LISTEN": "127.0.0.1:0",
            "RAMPART_LOG_LEVEL": "info", "RAMPART_READY_CHECK_INTERVAL": "500ms",
            "RAMPART_DRAIN_TIMEOUT": "20s", "RAMPART_SECRET_KEY": SECRET_KEY,
            "RAMPART_PUBLIC_URL": "https://rampart.example.com",
            "RAMPART_SMTP_URL": f"smtp://127.0.0.1:{st.smtp_port}",
            "RAMPART_SMTP_FROM": "Rampart <alerts@rampart.example.com>",
            "RAMPART_ALERT_RETRY_BASE": "200ms", "RAMPART_ALERT_MAX_ATTEMPTS": "5",
            "RAMPART_ALERT_SEND_TIMEOUT": "2s", "RAMPART_ALERT_SWEEP_INTERVAL": "200ms",
            "RAMPART_ALERT_OUTBOX_DELAY": "1s",
            "RAMPART_PAGERDUTY_URL": f"{st.recv}/v2/enqueue",
            "RAMPART_OPSGENIE_URL_US": st.recv, "RAMPART_OPSGENIE_URL_EU": st.recv,
            "RAMPART_SCHEDULER_SWEEP_INTERVAL": "200ms",
            "RAMPART_WORKER_LOCATION": st.location,
        })
        st.service("scheduler", "scheduler/rampart-scheduler")
        st.service("worker", "worker/rampart-worker")
        st.mailer()
        st.connector()
        st.admin = Client(st.dash.url)
        st.admin.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        yield st
    finally:
        codes = {}
        for name, svc in list(st.procs.items()):
            codes[name] = svc.stop()
        for p in fixtures:
            _stop(p)
        if st.dash.proc:
            st.dash.stop()
        st.dash.drop_databases()
        subprocess.run([SERVERS, "vhost", "delete", st.vhost], check=False)
    assert all(c == 0 for c in codes.values()), f"exit codes {codes}; logs in {BUILD}/test-logs"
