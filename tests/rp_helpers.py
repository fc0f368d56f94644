"""Helpers shared by the Python test suites (tests/alerts, tests/backup, tests/ha): polling
with a deadline, and starting / stopping the fixture servers of tests/integration/alerts (an
SMTP server, an HTTP receiver) that print "listening on PORT" once they accept connections.
A suite imports it after putting tests/ on sys.path (see the top of tests/ha/test_ha.py)."""
import json
import re
import signal
import socket
import subprocess
import time

import pytest


def wait_for(what, fn, timeout=30, every=0.1):
    """Poll fn() until it returns a truthy value (returned); fail the test naming `what` and the
    last value after `timeout` seconds."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


def spawn_fixture(name, args, log_path):
    """Start a fixture script (Debian's python3) that prints 'listening on PORT' on stdout;
    its stderr goes to log_path. Returns (proc, port)."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["/usr/bin/python3", "-u"] + args, stdout=subprocess.PIPE,
                                stderr=log)
    line = proc.stdout.readline().decode()
    m = re.search(r"listening on (\d+)", line)
    assert m, f"{name} did not start: {line!r} (log: {log_path})"
    return proc, int(m.group(1))


def stop_proc(proc, timeout=10):
    """SIGTERM, wait up to `timeout` s, then SIGKILL. Accepts None or an exited process."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answer_json(handler, status, obj):
    """Answer a http.server request with `status` and `obj` as JSON (with Content-Length, so
    keep-alive works)."""
    body = json.dumps(obj).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
