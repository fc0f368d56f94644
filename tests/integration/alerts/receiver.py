#!/usr/bin/python3
"""A stand-in for the outside systems rampart-connector calls (webhook, Slack, PagerDuty,
Opsgenie...), for the alert integration tests. Standard library only.

    receiver.py --port 0 --out FILE [--fail PATH=N ...] [--hmac-secret S]

Prints "listening on PORT" (flushed) once it accepts connections, then appends one JSON line per
request to FILE: {"path", "query", "method", "headers", "body", "json", "status",
"signature_ok", "at", "at_unix"}. "signature_ok" checks X-Rampart-Signature
(t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">) against --hmac-secret; null without one.
Answers 500 to the first N requests on PATH (--fail /hook=3: 500, 500, 500, then 200), else
200 {"ok": true}; PagerDuty's /v2/enqueue answers 202 {"status": "success", ...} and Opsgenie's
/v2/alerts... 202 as they do. Exits 0 on SIGTERM or SIGINT.
"""
import argparse
import datetime
import hashlib
import hmac
import json
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MAX_BODY = 10 * 1024 * 1024


def parse_fail(items):
    fail = {}
    for item in items or []:
        path, sep, count = item.rpartition("=")
        if not sep or not path.startswith("/") or not count.isdigit():
            raise SystemExit(f"--fail wants PATH=N (like /hook=3), got {item!r}")
        fail[path] = int(count)
    return fail


def signature_ok(secret, headers, body):
    """True/False for a request signed (or not) with `secret`; None without a secret."""
    if secret is None:
        return None
    sig = headers.get("X-Rampart-Signature")
    if not sig:
        return False
    parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
    t, v1 = parts.get("t", ""), parts.get("v1", "")
    if not t.isdigit() or headers.get("X-Rampart-Timestamp", t) != t:
        return False
    want = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, v1)


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, out, fail, secret):
        super().__init__(addr, Handler)
        self.out = out
        self.fail = fail
        self.secret = secret
        self.lock = threading.Lock()  # the failure counters and the output file

    def record(self, entry):
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self.lock:
            with open(self.out, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rampart-test-receiver"

    def log_message(self, fmt, *args):  # quiet: FILE is the log
        pass

    def handle_any(self):
        srv = self.server
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length) if length else b""
        headers = {}
        for name, value in self.headers.items():
            headers[name] = headers[name] + ", " + value if name in headers else value
        text = body.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        with srv.lock:
            left = srv.fail.get(url.path, 0)
            if left > 0:
                srv.fail[url.path] = left - 1
        if left > 0:
            status, answer = 500, {"ok": False, "error": "failing on purpose"}
        elif url.path == "/v2/enqueue":
            status = 202
            key = parsed.get("dedup_key") if isinstance(parsed, dict) else None
            answer = {"status": "success", "message": "Event processed", "dedup_key": key}
        elif url.path.startswith("/v2/alerts"):
            status = 202
            answer = {"result": "Request will be processed", "took": 0.01,
                      "requestId": str(uuid.uuid4())}
        else:
            status, answer = 200, {"ok": True}
        now = time.time()
        srv.record({
            "path": url.path,
            "query": url.query,
            "method": self.command,
            "headers": headers,
            "body": text,
            "json": parsed,
            "status": status,
            "signature_ok": signature_ok(srv.secret, headers, body),
            "at": datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
                          .isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "at_unix": now,
        })
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET = handle_any


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--out", required=True, help="append one JSON line per request here")
    ap.add_argument("--fail", action="append", metavar="PATH=N",
                    help="answer 500 to the first N requests on PATH")
    ap.add_argument("--hmac-secret", help="check X-Rampart-Signature with this secret")
    args = ap.parse_args()

    srv = Receiver((args.host, args.port), args.out, parse_fail(args.fail), args.hmac_secret)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    worker.start()
    print(f"listening on {srv.server_address[1]}", flush=True)
    while not stop.wait(0.5):
        pass
    srv.shutdown()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
