#!/usr/bin/python3
# Acceptance tests of the run pipeline (issue #5, docs/pipeline.md): real rampart-scheduler and
# rampart-worker binaries against real PostgreSQL, RabbitMQ and FerretDB, checked the way a
# user would check them: every fire of every schedule gives exactly one run row and exactly one
# result document, none missing, none doubled, none extra, all passed, dispatched on time.
#
#   pipeline_test.py --build BUILD_DIR [--scenario steady|chaos|all] [--schedules 200]
#                    [--duration 60] [--schedulers 3] [--workers 3] [--settle 120]
#                    [--server-fault restart|kill] [--seed N] [--keep]
# (defaults = the acceptance size; RAMPART_SCHEDULER_* / RAMPART_WORKER_* settings in the
# environment are passed on to the binaries, the server addresses never are)
#   pipeline_test.py --self-test          (pure checks of the harness's own arithmetic)
#
# steady: N schedulers + M workers of one location (unique per run), S schedules of interval 1
#   or 2 s created in PostgreSQL, run for DURATION s, stopped atomically with
#   `UPDATE schedules SET enabled=false ... RETURNING next_run_at` (the first fire NOT
#   created), then compared fire by fire: expected fires = F + k * interval while < that stop
#   point, F = the initial next_run_at cut to its millisecond (fire times are whole
#   milliseconds, docs/pipeline.md). Finally every process gets SIGTERM and must exit 0
#   within the drain timeout.
# chaos: the same while a thread kill -9s a random scheduler and a random worker every 3-5 s
#   and restarts them at once, RabbitMQ is restarted once (~1/3 in) and FerretDB once
#   (~2/3 in) through $RAMPART_TEST_SERVERS. Late runs are fine, lost or doubled ones are not.
#
# Servers come from RAMPART_TEST_PG, RAMPART_TEST_AMQP, RAMPART_TEST_MONGO and (chaos)
# RAMPART_TEST_SERVERS, as printed by `scripts/servers.sh env`; a missing one fails the run.
# Each process's stderr (JSON lines) goes to a file in a temporary directory; on failure the
# paths and the last lines are printed and the directory is kept. Everything started is
# stopped at the end, also on failure or Ctrl-C; the test's data (project -> cascade, result
# documents) is deleted only on success. Needs Debian's python3-psycopg2 and python3-pymongo
# (scripts/deps.sh); run it with /usr/bin/python3 (tests/integration/pipeline.sh does).
import argparse
import atexit
import collections
import datetime
import http.server
import json
import math
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
FINAL = ("passed", "failed", "error")
DRAIN_S = 10  # RAMPART_DRAIN_TIMEOUT given to every process
MONGO_DB = "rampart"
# At the stop, a schedule's next_run_at may trail the database's clock by at most this much
# (a claim in progress; in chaos, the catch-up after an outage that ended well before the stop)
BEHIND_TOLERANCE_S = {"steady": 5, "chaos": 10}



def forget_shm(pid):
    """libmongoc keeps its counters in /dev/shm/mongoc-PID and removes the file at exit; a
    process killed with -9 leaves it, and a later process given the same pid then warns on
    stderr. A killer cleans up after its kill."""
    try:
        os.unlink("/dev/shm/mongoc-%d" % pid)
    except OSError:
        pass

def say(msg):
    print(msg, flush=True)


def die(msg):
    print("pipeline: error: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


# ---- pure helpers (checked by --self-test) -----------------------------------------------

def to_us(dt):
    """A timezone-aware datetime as integer microseconds since the Unix epoch (exact)."""
    return (dt - EPOCH) // datetime.timedelta(microseconds=1)


def fmt_us(us):
    return (EPOCH + datetime.timedelta(microseconds=us)).strftime("%H:%M:%S.%f")


def first_fire(next_run_at_us):
    """The fire time a schedule's next_run_at gives: docs/pipeline.md, "Fire times are whole
    milliseconds" (the scheduler takes the millisecond that next_run_at falls in)."""
    return next_run_at_us - next_run_at_us % 1000


def expected_fires(first_us, interval_s, stop_us):
    """Fire times of an interval schedule that started at first_us and was stopped when its
    next_run_at was stop_us: first + k * interval for k = 0, 1, ... while < stop."""
    step = interval_s * 1_000_000
    if step <= 0:
        raise ValueError("interval must be positive")
    out = []
    t = first_us
    while t < stop_us:
        out.append(t)
        t += step
    return out


def on_grid(first_us, interval_s, stop_us):
    """True when the stop point is first + k * interval (k >= 0): the scheduler advanced
    next_run_at by whole intervals, without drift or skipped cadence."""
    d = stop_us - first_us
    return d >= 0 and d % (interval_s * 1_000_000) == 0


def percentile(sorted_vals, p):
    """Nearest-rank percentile of an ascending list (p in 0..100); None when empty."""
    if not sorted_vals:
        return None
    k = max(1, math.ceil(p / 100.0 * len(sorted_vals)))
    return sorted_vals[min(k, len(sorted_vals)) - 1]


def compare(expected, runs, docs):
    """Compare the expected fires with what the pipeline produced.
    expected: {schedule_id: [fire_us, ...]}
    runs: list of dicts with id, schedule_id, fire_us, status
    docs: {doc_id (str): count}  (result documents found, by _id)
    Returns a dict of figures and example lists."""
    exp = set()
    for sid, fires in expected.items():
        for f in fires:
            exp.add((sid, f))
    per_fire = collections.Counter((r["schedule_id"], r["fire_us"]) for r in runs)
    got = set(per_fire)
    run_ids = set(r["id"] for r in runs)
    missing = sorted(exp - got)
    extra = sorted(got - exp)
    doubled = sorted(k for k, n in per_fire.items() if n > 1)
    no_result = sorted(r["id"] for r in runs if docs.get(r["id"], 0) == 0)
    multi_result = sorted(r["id"] for r in runs if docs.get(r["id"], 0) > 1)
    orphan_docs = sorted(d for d in docs if d not in run_ids)
    not_final = [r for r in runs if r["status"] not in FINAL]
    not_passed = [r for r in runs if r["status"] != "passed"]
    return {
        "expected": len(exp),
        "runs": len(runs),
        "results": sum(n for d, n in docs.items() if d in run_ids),
        "missing": missing,
        "extra": extra,
        "doubled": doubled,
        "no_result": no_result,
        "multi_result": multi_result,
        "orphan_docs": orphan_docs,
        "not_final": not_final,
        "not_passed": not_passed,
    }


def self_test():
    s = 1_000_000
    t0 = 1_700_000_000_123_456
    assert expected_fires(t0, 1, t0) == []
    assert expected_fires(t0, 1, t0 - 5 * s) == []
    assert expected_fires(t0, 1, t0 + 1) == [t0]
    assert expected_fires(t0, 1, t0 + s) == [t0]
    assert expected_fires(t0, 1, t0 + s + 1) == [t0, t0 + s]
    assert expected_fires(t0, 2, t0 + 6 * s) == [t0, t0 + 2 * s, t0 + 4 * s]
    assert len(expected_fires(t0, 1, t0 + 60 * s)) == 60
    assert len(expected_fires(t0, 2, t0 + 60 * s)) == 30
    assert len(expected_fires(t0, 2, t0 + 61 * s)) == 31
    assert first_fire(t0) == 1_700_000_000_123_000 and first_fire(t0 - 456) == t0 - 456
    assert first_fire(999) == 0
    try:
        expected_fires(t0, 0, t0 + s)
        raise AssertionError("interval 0 accepted")
    except ValueError:
        pass
    # The acceptance figure: 100 schedules of 1 s and 100 of 2 s stopped 60 s in = 9000.
    assert sum(len(expected_fires(t0, 1 + i % 2, t0 + 60 * s)) for i in range(200)) == 9000
    assert on_grid(t0, 2, t0 + 60 * s) and on_grid(t0, 1, t0)
    assert not on_grid(t0, 2, t0 + 61 * s) and not on_grid(t0, 1, t0 + 1000)
    assert not on_grid(t0, 1, t0 - s)
    # microsecond exactness through datetimes, as psycopg2 returns them
    dt = datetime.datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=datetime.timezone.utc)
    assert to_us(dt + datetime.timedelta(seconds=1)) - to_us(dt) == s
    assert to_us(EPOCH) == 0
    tz2 = datetime.timezone(datetime.timedelta(hours=2))
    assert to_us(dt.astimezone(tz2)) == to_us(dt)
    # percentiles (nearest rank)
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0
    v = list(range(1, 101))
    assert percentile(v, 50) == 50 and percentile(v, 99) == 99 and percentile(v, 100) == 100
    assert percentile([1, 2, 3], 50) == 2
    # comparison: exact, missing, extra, doubled, results
    exp = {"a": expected_fires(t0, 1, t0 + 3 * s), "b": expected_fires(t0, 2, t0 + 3 * s)}
    runs = [{"id": "r%d" % i, "schedule_id": sid, "fire_us": f, "status": "passed"}
            for i, (sid, f) in enumerate((sid, f) for sid in exp for f in exp[sid])]
    docs = {r["id"]: 1 for r in runs}
    c = compare(exp, runs, docs)
    assert c["expected"] == 5 and c["runs"] == 5 and c["results"] == 5
    assert not (c["missing"] or c["extra"] or c["doubled"] or c["no_result"] or
                c["multi_result"] or c["orphan_docs"] or c["not_final"] or c["not_passed"])
    bad = [dict(r) for r in runs[1:]]  # the first fire of "a" lost
    bad.append({"id": "rx", "schedule_id": "a", "fire_us": t0 + 3 * s, "status": "passed"})
    bad.append({"id": "ry", "schedule_id": "b", "fire_us": t0, "status": "error"})  # doubled
    bad[0]["status"] = "running"
    docs2 = {r["id"]: 1 for r in bad if r["id"] != "r2"}
    docs2["rx"] = 2
    docs2["ghost"] = 1
    c = compare(exp, bad, docs2)
    assert c["missing"] == [("a", t0)], c["missing"]
    assert c["extra"] == [("a", t0 + 3 * s)], c["extra"]
    assert c["doubled"] == [("b", t0)], c["doubled"]
    assert c["no_result"] == ["r2"] and c["multi_result"] == ["rx"]
    assert c["orphan_docs"] == ["ghost"]
    assert [r["id"] for r in c["not_final"]] == ["r1"]
    assert sorted(r["id"] for r in c["not_passed"]) == ["r1", "ry"]
    assert c["runs"] == 6 and c["results"] == 6
    say("pipeline self-test: all checks passed")


# ---- environment -----------------------------------------------------------------------

def need_env(name):
    v = os.environ.get(name, "")
    if not v:
        die("%s is not set: start the servers (scripts/servers.sh start) and "
            "eval \"$(scripts/servers.sh env)\" first; this test does not skip" % name)
    return v


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- the HTTP target -------------------------------------------------------------------

class Target:
    """A real HTTP server on loopback answering 200 with a small JSON body."""

    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else 40 ms per keep-alive answer (delayed ACK)

            def _answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                body = b'{"ok":true,"service":"pipeline-target"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                with target.lock:
                    target.count += 1

            do_GET = do_POST = do_HEAD = do_PUT = _answer

            def log_message(self, *a):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

            def handle_error(self, request, client_address):
                pass  # a worker killed -9 resets its connections: not the target's problem

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/ok" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---- processes -------------------------------------------------------------------------

class Proc:
    """One rampart-scheduler or rampart-worker process (its own process group), restartable
    as a supervisor would: every incarnation gets a fresh port and its own log file."""

    def __init__(self, h, kind, idx):
        self.h = h
        self.kind = kind  # "scheduler" | "worker"
        self.idx = idx
        self.name = "%s-%d" % (kind, idx)
        self.incarnation = 0
        self.popen = None
        self.port = None
        self.log = None
        self.history = []  # (name.incarnation, log path, exit code or None, how it ended)

    def start(self):
        self.incarnation += 1
        self.port = free_port()
        self.log = os.path.join(self.h.tmp, "%s.%d.log" % (self.name, self.incarnation))
        env = dict(self.h.base_env)
        env.update({
            "RAMPART_HTTP_LISTEN": "127.0.0.1:%d" % self.port,
            "RAMPART_INSTANCE": "%s-%s" % (self.h.tag, self.name),
        })
        binary = self.h.binaries[self.kind]
        errf = open(self.log, "wb")
        outf = open(self.log[:-4] + ".out", "wb")
        try:
            self.popen = subprocess.Popen([binary], env=env, stdin=subprocess.DEVNULL,
                                          stdout=outf, stderr=errf, start_new_session=True)
        finally:
            errf.close()
            outf.close()
        self.history.append(["%s.%d" % (self.name, self.incarnation), self.log, None, "running"])
        return self

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def ready(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.port,
                                        timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _ended(self, code, how):
        self.history[-1][2] = code
        self.history[-1][3] = how

    def kill9(self):
        if self.popen is None:
            return None
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        code = self.popen.wait()
        self._ended(code, "kill -9")
        forget_shm(self.popen.pid)
        return code

    def terminate(self):
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)

    def wait(self, timeout):
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return code

    def force_stop(self):
        """Cleanup: SIGKILL the whole process group of the current incarnation."""
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass


# ---- one scenario ------------------------------------------------------------------------

class Scenario:
    def __init__(self, args, name):
        import psycopg2
        import pymongo
        self.psycopg2 = psycopg2
        self.pymongo = pymongo
        self.args = args
        self.name = name
        self.chaos = name == "chaos"
        self.rand = secrets.token_hex(4)
        self.tag = "it-%s" % self.rand
        self.location = "it-%s" % self.rand
        self.slug = "it-pipeline-%s-%s" % (name, self.rand)
        self.failures = []
        self.events = []  # chaos log: (t, text)
        self.events_lock = threading.Lock()
        self.procs = []
        self.procs_lock = threading.Lock()
        self.target = None
        self.project_id = None
        self.stop_flag = threading.Event()
        self.t_start = time.monotonic()
        self.t0_mono = None  # monotonic time of the first fire
        self.rng = random.Random(args.seed if args.seed is not None else secrets.randbits(32))
        self.seed = args.seed
        self.pg_dsn = need_env("RAMPART_TEST_PG")
        self.amqp = need_env("RAMPART_TEST_AMQP")
        mongo = need_env("RAMPART_TEST_MONGO")
        if not mongo.startswith("mongodb://"):
            die("RAMPART_TEST_MONGO must be a mongodb:// URI, got %r" % mongo)
        self.mongo_base = mongo if mongo.endswith("/") else mongo + "/"
        self.servers = need_env("RAMPART_TEST_SERVERS") if self.chaos else None
        self.binaries = {
            "scheduler": os.path.join(args.build, "scheduler", "rampart-scheduler"),
            "worker": os.path.join(args.build, "worker", "rampart-worker"),
        }
        for k, b in self.binaries.items():
            if not os.access(b, os.X_OK):
                die("%s binary missing: %s (build it: ninja -C %s rampart-%s)" %
                    (k, b, args.build, k))
        self.tmp = tempfile.mkdtemp(prefix="rampart-pipeline-%s-" % name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
        # keep the test's own tuning knobs (RAMPART_SCHEDULER_*, RAMPART_WORKER_*, ...) but not
        # the addresses, which come from RAMPART_TEST_* only
        for k, v in os.environ.items():
            if k.startswith("RAMPART_") and not k.startswith("RAMPART_TEST_") and k not in (
                    "RAMPART_PG_URL", "RAMPART_AMQP_URLS", "RAMPART_MONGO_URL",
                    "RAMPART_HTTP_LISTEN", "RAMPART_INSTANCE", "RAMPART_WORKER_LOCATION",
                    "RAMPART_DRAIN_TIMEOUT", "RAMPART_RUN_DIR", "RAMPART_PG_PORT",
                    "RAMPART_AMQP_PORT", "RAMPART_AMQP_DIST_PORT", "RAMPART_EPMD_PORT",
                    "RAMPART_MONGO_PORT", "RAMPART_CACHE_DIR"):
                env[k] = v
        env.update({
            "RAMPART_PG_URL": self.pg_dsn,
            "RAMPART_AMQP_URLS": self.amqp,
            "RAMPART_MONGO_URL": self.mongo_base + MONGO_DB,
            "RAMPART_WORKER_LOCATION": self.location,
            "RAMPART_DRAIN_TIMEOUT": "%ds" % DRAIN_S,
            "RAMPART_READY_CHECK_INTERVAL": "500ms",
        })
        self.base_env = env

    # -- helpers

    def t(self):
        return time.monotonic() - self.t_start

    def event(self, text):
        with self.events_lock:
            self.events.append((self.t(), text))
        say("  [t+%6.1fs] %s" % (self.t(), text))

    def fail(self, text):
        self.failures.append(text)
        say("  FAIL: " + text)

    def pg(self):
        c = self.psycopg2.connect(self.pg_dsn)
        c.autocommit = True
        return c

    def mongo(self):
        return self.pymongo.MongoClient(self.mongo_base, serverSelectionTimeoutMS=5000,
                                        directConnection=True)[MONGO_DB]

    def check_servers_match(self):
        """Chaos restarts servers through $RAMPART_TEST_SERVERS: they must be the very servers
        the test talks to (same ports), or the faults would hit someone else's servers."""
        out = subprocess.run([self.servers, "env"], capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            die("%s env failed: %s" % (self.servers, out.stderr.strip()))
        got = {}
        for line in out.stdout.splitlines():
            if line.startswith("export ") and "=" in line:
                k, v = line[7:].split("=", 1)
                got[k] = v.strip("'\"")
        for k, mine in (("RAMPART_TEST_AMQP", self.amqp), ("RAMPART_TEST_MONGO", self.mongo_base)):
            if got.get(k, "").rstrip("/") != mine.rstrip("/"):
                die("%s env gives %s=%r but the test uses %r: set RAMPART_RUN_DIR and the "
                    "RAMPART_*_PORT variables of the servers under test" %
                    (self.servers, k, got.get(k), mine))

    # -- processes

    def start_procs(self):
        with self.procs_lock:
            for i in range(1, self.args.schedulers + 1):
                self.procs.append(Proc(self, "scheduler", i).start())
            for i in range(1, self.args.workers + 1):
                self.procs.append(Proc(self, "worker", i).start())
        deadline = time.monotonic() + 60
        pending = list(self.procs)
        while pending and time.monotonic() < deadline:
            for p in list(pending):
                if not p.alive():
                    self.fail("%s exited at start with code %s" % (p.name, p.popen.returncode))
                    pending.remove(p)
                elif p.ready():
                    pending.remove(p)
            time.sleep(0.2)
        for p in pending:
            self.fail("%s not ready (/readyz) within 60 s" % p.name)
        if self.failures:
            raise RuntimeError("processes did not start")
        say("  %d schedulers and %d workers ready (location %s, logs in %s)" %
            (self.args.schedulers, self.args.workers, self.location, self.tmp))

    def kind(self, kind):
        with self.procs_lock:
            return [p for p in self.procs if p.kind == kind]

    def watch_procs(self):
        """A process that exits by itself (not killed by the test) is a crash: record it (and in
        chaos, restart it, as the supervisor would)."""
        while not self.stop_flag.wait(0.5):
            with self.procs_lock:
                for p in self.procs:
                    if p.popen is not None and p.history[-1][3] == "running" \
                            and p.popen.poll() is not None:
                        code = p.popen.returncode
                        p._ended(code, "exited by itself")
                        self.fail("%s.%d exited by itself with code %s (log %s)" %
                                  (p.name, p.incarnation, code, p.log))
                        if self.chaos:
                            p.start()
                            self.event("restarted %s after its crash" % p.name)

    # -- data

    def create_data(self, target_url):
        definition = {
            "name": "pipeline acceptance %s" % self.rand,
            "steps": [{
                "name": "target answers",
                "request": {"url": target_url, "timeout": "10s"},
                "expect": {"status": 200},
                "assert": ["$.ok == true"],
            }],
        }
        n = self.args.schedules
        # now() has microseconds, as the dashboard's inserts will: the first fire time is the
        # millisecond it falls in (first_fire)
        start = "now() + interval '3 seconds' "
        with self.pg() as c, c.cursor() as cur:
            cur.execute("INSERT INTO projects (slug, name) VALUES (%s, %s) RETURNING id::text",
                        (self.slug, "pipeline acceptance " + self.name))
            self.project_id = cur.fetchone()[0]
            cur.execute("INSERT INTO tests (project_id, name, current_version) "
                        "VALUES (%s, %s, 1) RETURNING id::text",
                        (self.project_id, definition["name"]))
            self.test_id = cur.fetchone()[0]
            cur.execute("INSERT INTO test_versions (test_id, version, definition) "
                        "VALUES (%s, 1, %s)", (self.test_id, json.dumps(definition)))
            cur.execute(
                "INSERT INTO schedules (project_id, test_id, interval_s, locations, next_run_at) "
                "SELECT %s, %s, 1 + g %% 2, ARRAY[%s], " + start +
                "FROM generate_series(0, %s - 1) g "
                "RETURNING id::text, interval_s, next_run_at",
                (self.project_id, self.test_id, self.location, n))
            rows = cur.fetchall()
            cur.execute("SELECT now()")
            db_now = cur.fetchone()[0]
        self.first = {sid: (iv, first_fire(to_us(nra))) for sid, iv, nra in rows}
        t0 = min(us for _, us in self.first.values())
        self.t0_us = t0
        self.t0_mono = time.monotonic() + (t0 - to_us(db_now)) / 1e6
        say("  project %s (%s): %d schedules (%d of 1 s, %d of 2 s), first fire %s UTC "
            "(t+%.1fs)" % (self.slug, self.project_id, n,
                           sum(1 for v in self.first.values() if v[0] == 1),
                           sum(1 for v in self.first.values() if v[0] == 2), fmt_us(t0),
                           self.t0_mono - self.t_start))

    def stop_schedules(self):
        t = time.monotonic()
        with self.pg() as c, c.cursor() as cur:
            cur.execute("UPDATE schedules SET enabled=false WHERE project_id=%s "
                        "RETURNING id::text, interval_s, next_run_at, now()", (self.project_id,))
            rows = cur.fetchall()
        self.stop_wait = time.monotonic() - t
        self.stops = {sid: to_us(nra) for sid, iv, nra, _ in rows}
        # A scheduler that does nothing leaves next_run_at where it was and "expects" no fire:
        # every schedule must have been claimed up to (nearly) the moment of the stop.
        now_us = to_us(rows[0][3]) if rows else 0
        tol = BEHIND_TOLERANCE_S[self.name] * 1_000_000
        behind = sorted((now_us - us, sid) for sid, us in self.stops.items() if us < now_us - tol)
        self.behind = len(behind)
        if behind:
            self.fail("%d of %d schedules were more than %d s behind when stopped (the "
                      "schedulers did not claim them), e.g. %s next_run_at %s, %.1f s before "
                      "the stop" % (len(behind), len(rows), BEHIND_TOLERANCE_S[self.name],
                                    behind[-1][1], fmt_us(self.stops[behind[-1][1]]),
                                    behind[-1][0] / 1e6))
        self.expected = {}
        off_grid = []
        for sid, (iv, first) in self.first.items():
            stop = self.stops.get(sid)
            if stop is None:
                self.fail("schedule %s vanished" % sid)
                continue
            if not on_grid(first, iv, stop):
                off_grid.append((sid, iv, first, stop))
            self.expected[sid] = expected_fires(first, iv, stop)
        self.off_grid = off_grid
        if off_grid:
            sid, iv, first, stop = off_grid[0]
            self.fail("%d schedules stopped off their cadence, e.g. %s interval %d s first %s "
                      "stopped at next_run_at %s (not first + k*interval)" %
                      (len(off_grid), sid, iv, fmt_us(first), fmt_us(stop)))
        say("  schedules stopped (the UPDATE waited %.3f s): %d fires expected" %
            (self.stop_wait, sum(len(v) for v in self.expected.values())))

    def run_status(self, cur):
        cur.execute("SELECT status, count(*) FROM runs WHERE project_id=%s GROUP BY status",
                    (self.project_id,))
        return dict(cur.fetchall())

    def fetch_runs(self):
        with self.pg() as c, c.cursor() as cur:
            cur.execute(
                "SELECT id::text, schedule_id::text, fire_time, status, attempts, location, "
                "trigger, test_version, error, "
                "extract(epoch FROM started_at - fire_time)::float8, "
                "extract(epoch FROM queued_at - fire_time)::float8, "
                "extract(epoch FROM finished_at - fire_time)::float8 "
                "FROM runs WHERE project_id=%s", (self.project_id,))
            out = []
            for (rid, sid, ft, st, att, loc, trig, ver, err, lag, qlag, flag) in cur.fetchall():
                out.append({"id": rid, "schedule_id": sid, "fire_us": to_us(ft), "status": st,
                            "attempts": att, "location": loc, "trigger": trig,
                            "test_version": ver, "error": err, "lag": lag, "qlag": qlag,
                            "flag": flag})
            return out

    def fetch_docs(self, run_ids):
        """Result documents of this test, by project_id in one query (on FerretDB every
        filtered query scans the collection, so one pass, not one per batch of ids); then the
        runs still without one are looked up by _id, to tell a missing document from one with
        a wrong project_id. Returns {id: count} and {id: doc}."""
        db = self.mongo()
        counts = collections.Counter()
        docs = {}
        fields = {"_id": 1, "status": 1, "project_id": 1, "schedule_id": 1, "location": 1}
        for d in db.results.find({"project_id": self.project_id}, fields):
            counts[str(d["_id"])] += 1
            docs[str(d["_id"])] = d
        lost = sorted(set(run_ids) - set(counts))
        if 0 < len(lost) <= 2000:
            for i in range(0, len(lost), 1000):
                for d in db.results.find({"_id": {"$in": lost[i:i + 1000]}}, fields):
                    counts[str(d["_id"])] += 1
                    docs[str(d["_id"])] = d
        return counts, docs

    def mongo_count(self):
        try:
            return self.mongo().results.count_documents({"project_id": self.project_id})
        except Exception as e:  # FerretDB may be restarting
            return "? (%s)" % type(e).__name__

    def settle(self):
        """Wait (bounded) until every run is final and has its result document. MongoDB is
        asked only once PostgreSQL says every run is final: on FerretDB a filtered count scans
        the collection (seconds at 10,000 results) and would slow the workers' writes."""
        deadline = time.monotonic() + self.args.settle
        last = 0
        docs = "-"
        with self.pg() as c, c.cursor() as cur:
            while True:
                st = self.run_status(cur)
                n = sum(st.values())
                open_ = sum(v for k, v in st.items() if k not in FINAL)
                if open_ == 0 or time.monotonic() > deadline:
                    docs = self.mongo_count()
                done = open_ == 0 and docs == n
                if done or time.monotonic() > deadline or time.monotonic() - last > 5:
                    say("  [t+%6.1fs] settling: runs=%d %s results=%s" %
                        (self.t(), n, json.dumps(st, sort_keys=True), docs))
                    last = time.monotonic()
                if done:
                    return True
                if time.monotonic() > deadline:
                    self.fail("runs not all final with a result %d s after the stop" %
                              self.args.settle)
                    return False
                time.sleep(0.5 if open_ else 2)

    def progress(self):
        with self.pg() as c, c.cursor() as cur:
            while not self.stop_flag.wait(10):
                try:
                    st = self.run_status(cur)
                    alive = sum(1 for p in self.procs if p.alive())
                    say("  [t+%6.1fs] runs=%s processes_alive=%d target_requests=%d" %
                        (self.t(), json.dumps(st, sort_keys=True), alive, self.target.count))
                except Exception as e:
                    say("  progress: %s" % e)

    # -- chaos

    def chaos_kills(self, until_mono):
        self.kills = collections.Counter()
        while True:
            wait = self.rng.uniform(3, 5)
            if time.monotonic() + wait >= until_mono or self.stop_flag.wait(wait):
                return
            with self.procs_lock:
                for kind in ("scheduler", "worker"):
                    p = self.rng.choice([q for q in self.procs if q.kind == kind])
                    inc = p.incarnation
                    code = p.kill9()
                    p.start()
                    self.kills[kind] += 1
                    self.event("kill -9 %s.%d (exit %s), restarted as %s.%d" %
                               (p.name, inc, code, p.name, p.incarnation))
                    if code != -signal.SIGKILL:
                        self.fail("%s.%d killed with -9 ended with %s, not -9" %
                                  (p.name, inc, code))

    def server_fault(self, server, at_mono):
        delay = at_mono - time.monotonic()
        if delay > 0 and self.stop_flag.wait(delay):
            return
        t = time.monotonic()
        if self.args.server_fault == "kill":
            cmds = [[self.servers, "kill", server], [self.servers, "start", server]]
        else:
            cmds = [[self.servers, "restart", server]]
        self.event("%s %s: begin" % (" then ".join(c[1] for c in cmds), server))
        for cmd in cmds:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
            if out.returncode != 0:
                self.fail("%s failed (%d): %s" % (" ".join(cmd), out.returncode,
                                                  (out.stdout + out.stderr).strip()[-500:]))
                return
        self.event("%s %s: done, server down/restarting for %.1f s" %
                   (self.args.server_fault, server, time.monotonic() - t))
        self.server_outages.append((server, time.monotonic() - t))

    # -- the scenario

    def run(self):
        a = self.args
        say("pipeline %s: %d schedules, %d s, %d schedulers, %d workers, seed %s, tag %s" %
            (self.name, a.schedules, a.duration, a.schedulers, a.workers, self.seed, self.tag))
        if self.chaos:
            self.check_servers_match()
        self.target = Target()
        say("  HTTP target %s" % self.target.url)
        self.start_procs()
        self.create_data(self.target.url)
        threads = [threading.Thread(target=self.watch_procs, daemon=True),
                   threading.Thread(target=self.progress, daemon=True)]
        # stop half a second before the fire at first + duration, so that (with prompt
        # claims) exactly `duration` seconds of fires are expected
        stop_at = self.t0_mono + a.duration - 0.5
        self.server_outages = []
        self.kills = collections.Counter()
        chaos_threads = []
        if self.chaos:
            chaos_threads = [
                threading.Thread(target=self.chaos_kills, args=(stop_at,), daemon=True),
                threading.Thread(target=self.server_fault,
                                 args=("rabbitmq", self.t0_mono + a.duration / 3.0), daemon=True),
                threading.Thread(target=self.server_fault,
                                 args=("ferretdb", self.t0_mono + 2 * a.duration / 3.0),
                                 daemon=True),
            ]
        for th in threads + chaos_threads:
            th.start()
        while time.monotonic() < stop_at:
            time.sleep(min(0.2, max(0, stop_at - time.monotonic())))
        # the kill thread ends at stop_at; server restarts must be over before the stop
        for th in chaos_threads:
            th.join(300)
        self.stop_schedules()
        self.settle()
        self.stop_flag.set()
        for th in threads:
            th.join(15)
        ok = self.check()
        self.drain()
        return ok and not self.failures

    def check(self):
        runs = self.fetch_runs()
        counts, docs = self.fetch_docs([r["id"] for r in runs])
        c = compare(self.expected, runs, counts)
        for key, label in (("missing", "expected fires without a run"),
                           ("extra", "runs for fires not expected"),
                           ("doubled", "fires with more than one run")):
            if c[key]:
                ex = ", ".join("%s@%s" % (s, fmt_us(f)) for s, f in c[key][:5])
                self.fail("%d %s, e.g. %s" % (len(c[key]), label, ex))
        if c["missing"]:
            # where the lost fires are in time (an outage? the start? the end?)
            when = collections.Counter(int((f - self.t0_us) / 1e6) // 5 * 5
                                       for _, f in c["missing"])
            say("  missing fires by 5 s bucket after the first fire: %s" %
                ", ".join("%ds:%d" % kv for kv in sorted(when.items())))
            got_ms = set((r["schedule_id"], r["fire_us"] // 1000) for r in runs)
            ms_match = sum(1 for s, f in c["missing"] if (s, f // 1000) in got_ms)
            if ms_match:
                say("  %d missing fires have a run in the same millisecond: fire times "
                    "rounded differently?" % ms_match)
        if c["no_result"]:
            self.fail("%d runs without a result document, e.g. %s" %
                      (len(c["no_result"]), ", ".join(c["no_result"][:5])))
        if c["multi_result"]:
            self.fail("%d runs with several result documents, e.g. %s" %
                      (len(c["multi_result"]), ", ".join(c["multi_result"][:5])))
        if c["orphan_docs"]:
            self.fail("%d result documents of this project without a run, e.g. %s" %
                      (len(c["orphan_docs"]), ", ".join(c["orphan_docs"][:5])))
        if c["not_passed"]:
            by = collections.Counter((r["status"], (r["error"] or "")[:160])
                                     for r in c["not_passed"])
            self.fail("%d runs not passed (the target always answers 200): %s" %
                      (len(c["not_passed"]),
                       "; ".join("%dx %s %s" % (n, s, e) for (s, e), n in by.most_common(5))))
        wrong = [r for r in runs if r["location"] != self.location or r["trigger"] != "schedule"
                 or r["test_version"] != 1]
        if wrong:
            self.fail("%d runs with a wrong location/trigger/test_version, e.g. %s" %
                      (len(wrong), wrong[0]))
        mism = []
        for r in runs:
            d = docs.get(r["id"])
            if d is None:
                continue
            if (r["status"] in FINAL and d.get("status") != r["status"]) \
                    or str(d.get("project_id")) != self.project_id \
                    or str(d.get("schedule_id")) != r["schedule_id"]:
                mism.append((r["id"], r["status"], d.get("status"), d.get("project_id"),
                             d.get("schedule_id")))
        if mism:
            self.fail("%d result documents disagree with their run row (status, project_id or "
                      "schedule_id), e.g. %s" % (len(mism), mism[:3]))
        lags = sorted(r["lag"] for r in runs if r["lag"] is not None)
        late = sum(1 for x in lags if x > 5)
        redelivered = sum(1 for r in runs if (r["attempts"] or 0) > 1)
        self.figures = c
        p50, p99 = percentile(lags, 50), percentile(lags, 99)
        mx = lags[-1] if lags else None
        f = lambda v: "-" if v is None else "%.2fs" % v
        line = ("pipeline %s: schedules=%d expected=%d runs=%d results=%d missing=%d doubled=%d "
                "extra=%d not_passed=%d p50_lag=%s p99_lag=%s max_lag=%s late_5s=%d "
                "redelivered=%d target_requests=%d" %
                (self.name, self.args.schedules, c["expected"], c["runs"], c["results"],
                 len(c["missing"]), len(c["doubled"]), len(c["extra"]), len(c["not_passed"]),
                 f(p50), f(p99), f(mx), late, redelivered, self.target.count))
        if self.chaos:
            line += " kills=%d+%d outages=%s" % (
                self.kills["scheduler"], self.kills["worker"],
                ",".join("%s:%.1fs" % o for o in self.server_outages) or "none")
        self.summary = line
        return not self.failures

    def drain(self):
        """SIGTERM every live process at once; each must exit 0 within the drain timeout."""
        with self.procs_lock:
            live = [p for p in self.procs if p.alive()]
            for p in live:
                p.terminate()
            t = time.monotonic()
            for p in live:
                code = p.wait(max(0.1, DRAIN_S + 2 - (time.monotonic() - t)))
                if code is None:
                    self.fail("%s.%d did not exit within %d s of SIGTERM (drain timeout %d s)" %
                              (p.name, p.incarnation, DRAIN_S + 2, DRAIN_S))
                    p.force_stop()
                    p._ended(None, "SIGTERM: timeout, killed")
                else:
                    p._ended(code, "SIGTERM")
                    if code != 0:
                        self.fail("%s.%d exited %s after SIGTERM, not 0 (log %s)" %
                                  (p.name, p.incarnation, code, p.log))
            say("  SIGTERM: %d processes ended in %.1f s" % (len(live), time.monotonic() - t))

    def report_logs(self):
        """Every log's path; its error lines; and its last lines when it ended abnormally (or
        always, when there are few logs)."""
        say("  logs of pipeline %s in %s:" % (self.name, self.tmp))
        hist = [h for p in self.procs for h in p.history]
        for name, log, code, how in hist:
            say("  --- %s (%s, exit %s): %s" % (name, how, code, log))
            try:
                with open(log, "rb") as fh:
                    lines = fh.read().decode("utf-8", "replace").splitlines()
            except OSError:
                lines = []
            bad = [l for l in lines if '"level":"error"' in l or '"level":"fatal"' in l
                   or not l.startswith("{")]
            for l in bad[:5]:
                say("      ! " + l[:400])
            if len(bad) > 5:
                say("      ! ... %d more error lines" % (len(bad) - 5))
            normal = how == "kill -9" or (how == "SIGTERM" and code == 0)
            if len(hist) <= 8 or not normal:
                for l in lines[-6:]:
                    say("      " + l[:400])

    def cleanup(self, success):
        self.stop_flag.set()
        for p in list(self.procs):
            p.force_stop()
        if self.target is not None:
            self.target.close()
            self.target = None
        if success and not self.args.keep and self.project_id:
            try:
                with self.pg() as c, c.cursor() as cur:
                    cur.execute("DELETE FROM projects WHERE id=%s", (self.project_id,))
                # every document of this test has this project_id (checked above): one pass
                self.mongo().results.delete_many({"project_id": self.project_id})
            except Exception as e:
                say("  cleanup of the test data failed: %s" % e)
            shutil.rmtree(self.tmp, ignore_errors=True)


ACTIVE = []


def stop_everything():
    for s in ACTIVE:
        try:
            s.cleanup(False)
        except Exception:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", help="build directory with scheduler/ and worker/ binaries")
    ap.add_argument("--scenario", choices=("steady", "chaos", "all"), default="all")
    ap.add_argument("--schedules", type=int, default=200)
    ap.add_argument("--duration", type=int, default=60, help="seconds of fires")
    ap.add_argument("--schedulers", type=int, default=3)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--settle", type=int, default=120,
                    help="seconds to wait after the stop for every run to be final")
    ap.add_argument("--server-fault", choices=("restart", "kill"), default="restart",
                    help="chaos: servers.sh restart NAME, or kill NAME then start NAME")
    ap.add_argument("--seed", type=int, help="seed of the chaos thread's choices")
    ap.add_argument("--keep", action="store_true", help="keep logs and data even on success")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return 0
    if not args.build:
        die("--build BUILD_DIR is required")
    if args.schedules < 1 or args.duration < 5 or args.schedulers < 1 or args.workers < 1:
        die("need --schedules >= 1, --duration >= 5, --schedulers >= 1, --workers >= 1")
    if args.seed is None:
        args.seed = secrets.randbits(31)
    try:
        import psycopg2  # noqa: F401
        import pymongo  # noqa: F401
    except ImportError as e:
        die("%s: install python3-psycopg2 and python3-pymongo (scripts/deps.sh) and run this "
            "with /usr/bin/python3" % e)

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    atexit.register(stop_everything)

    names = ["steady", "chaos"] if args.scenario == "all" else [args.scenario]
    summaries, rc = [], 0
    for name in names:
        s = Scenario(args, name)
        ACTIVE.append(s)
        t = time.monotonic()
        ok = False
        try:
            ok = s.run()
        except KeyboardInterrupt:
            s.fail("interrupted")
            raise
        except Exception as e:
            s.fail("harness error: %s" % e)
            traceback.print_exc()
        finally:
            elapsed = time.monotonic() - t
            summary = getattr(s, "summary", "pipeline %s: no figures (did not get that far)" %
                              s.name) + " elapsed=%ds" % elapsed
            if not ok:
                s.report_logs()
                for text in s.failures:
                    say("  FAILED: " + text)
                summary += " FAILED"
                rc = 1
            if s.chaos and s.events:
                say("  chaos log (t since the harness started this scenario):")
                for tt, text in s.events:
                    say("    t+%6.1fs %s" % (tt, text))
            s.cleanup(ok)
            ACTIVE.remove(s)
            say(summary)
            summaries.append(summary)
    if len(summaries) > 1:
        for line in summaries:
            say(line)
    return rc


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        say("pipeline: interrupted; everything it started is stopped")
        sys.exit(130)
