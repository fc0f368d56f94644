"""The backup round trip of issue #8 on real servers, through the API and the pipeline:

  1. fill: users, a project with members, an API key, an environment with a secret, a channel,
     an alert rule and a maintenance window, tests (one flapping, so incidents open and close;
     one whose target never answers, so runs are always in flight)
     and 1 s schedules, all through the REST API; then rampart-scheduler and two
     rampart-workers run until MongoDB holds RESULTS result documents;
  2. back up while the pipeline keeps running: the test exports a PostgreSQL snapshot and
     `rampart-backup create --snapshot` dumps exactly that snapshot, so the test can hash every
     table as the backup saw it (runs keep finishing during the backup: counted);
  3. stop the services, wipe both databases (DROP DATABASE, drop the MongoDB database);
  4. `rampart-backup restore` into the empty databases;
  5. compare: every PostgreSQL table's count + md5 of all its rows equals the snapshot's; every
     MongoDB collection holds every document that existed before the backup started, only
     documents that existed after it, each byte for byte, and the same indexes; every finished
     run has its result;
  6. the services run on the restored data: logins (the users' argon2id hashes came back), the
     API key, runs caught in flight republished as docs/disaster-recovery.md says and finished,
     and new scheduled runs with their results.
Every step prints what it counted."""
import collections
import hashlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import psycopg2
import pymongo
import pytest
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from psycopg2 import sql

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from rp_helpers import free_port, wait_for  # noqa: E402  (tests/rp_helpers.py)

_spec = importlib.util.spec_from_file_location("api_conftest",
                                               os.path.join(ROOT, "tests", "api", "conftest.py"))
_api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_api)
ADMIN_EMAIL, ADMIN_PASSWORD, BUILD = _api.ADMIN_EMAIL, _api.ADMIN_PASSWORD, _api.BUILD
Client, Dashboard, Service, ok = _api.Client, _api.Dashboard, _api.Service, _api.ok

SERVERS = os.path.join(ROOT, "scripts", "servers.sh")
BACKUP = os.path.join(BUILD, "backup", "rampart-backup")
RESULTS = int(os.environ.get("RAMPART_ROUNDTRIP_RESULTS", "100000"))
TESTS, SCHEDULES_PER_TEST = 20, 50  # 1,000 schedules of 1 s: up to 1,000 runs/s for the fill
STEADY = 100  # schedules left running during the backup: 100 runs/s
SLOW = 3  # schedules of a test whose target never answers (3 s timeout): always runs in flight
FINAL = ("passed", "failed", "error")
P = "/api/v1/projects"

NGINX_CONF = """worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
    server {{
        listen 127.0.0.1:{port};
        default_type application/json;
        location /ok {{ return 200 '{{"ok":true,"items":[1,2,3]}}'; }}
        # fails in the first half of every 2 s: incidents open and resolve
        location /flap {{
            if ($msec ~ "^[0-9]*[02468]\\.") {{ return 500 '{{"ok":false}}'; }}
            return 200 '{{"ok":true}}';
        }}
    }}
}}
"""


class Blackhole:
    """A TCP server that accepts connections and never answers: a run against it stays in
    flight until its request timeout, so the backup always catches some runs in flight (the
    runbook's republish step then has work to do). Connections are closed after 10 s."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.sock.settimeout(0.5)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        held = collections.deque()
        while not self.done.is_set():
            try:
                held.append((time.time(), self.sock.accept()[0]))
            except OSError:
                pass
            while held and held[0][0] < time.time() - 10:
                held.popleft()[1].close()
        for _, c in held:
            c.close()

    def close(self):
        self.done.set()
        self.thread.join(timeout=5)
        self.sock.close()


class System:
    """The databases, vhost, target and services of the round trip, stopped at the end."""

    def __init__(self):
        self.tag = secrets.token_hex(4)
        self.vhost = f"backup-{self.tag}"
        self.location = f"bk-{self.tag}"
        self.tmp = tempfile.mkdtemp(prefix="rp-roundtrip-")
        self.procs = []
        self.nginx = None
        self.dash = None

    def start_target(self):
        os.makedirs(os.path.join(self.tmp, "nginx", "tmp"))
        port = free_port()
        conf = os.path.join(self.tmp, "nginx", "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(d=os.path.join(self.tmp, "nginx"), port=port))
        self.nginx = subprocess.Popen(["nginx", "-c", conf, "-p", os.path.join(self.tmp, "nginx")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.target = f"http://127.0.0.1:{port}"

        def up():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False
        wait_for("nginx", up, 10, 0.05)

    def start_services(self, round_):
        if not (self.dash.proc and self.dash.proc.poll() is None):
            self.dash.start()
        base = dict(os.environ)
        base.update({
            "RAMPART_PG_URL": self.dash.pg, "RAMPART_MONGO_URL": self.dash.mongo,
            "RAMPART_AMQP_URLS": self.amqp, "RAMPART_HTTP_LISTEN": "127.0.0.1:0",
            "RAMPART_LOG_LEVEL": "info", "RAMPART_READY_CHECK_INTERVAL": "500ms",
            # FerretDB on two busy cores can take seconds per write: room to drain
            "RAMPART_DRAIN_TIMEOUT": "60s", "RAMPART_SECRET_KEY": _api.SECRET_KEY,
            "RAMPART_SCHEDULER_SWEEP_INTERVAL": "500ms", "RAMPART_SCHEDULER_JOB_RUNS": "20",
            "RAMPART_WORKER_LOCATION": self.location,
        })
        self.procs = [Service(f"bk-{self.tag}-{round_}-scheduler", "scheduler/rampart-scheduler",
                              dict(base, RAMPART_INSTANCE="scheduler"))]
        for w in ("a", "b"):
            self.procs.append(Service(f"bk-{self.tag}-{round_}-worker-{w}",
                                      "worker/rampart-worker",
                                      dict(base, RAMPART_INSTANCE=f"worker-{w}")))
        for p in self.procs:
            p.wait_ready()

    def stop_services(self):
        codes = {p.name: p.stop() for p in self.procs}
        self.procs = []
        if self.dash.proc and self.dash.proc.poll() is None:
            codes["dashboard"] = self.dash.stop()
        assert all(c == 0 for c in codes.values()), \
            f"exit codes {codes}; logs in {BUILD}/test-logs"

    def mongo_db(self):
        client = pymongo.MongoClient(self.dash.mongo, serverSelectionTimeoutMS=5000)
        return client, client.get_default_database()


@pytest.fixture(scope="module")
def system():
    s = System()
    os.makedirs(os.path.join(BUILD, "test-logs"), exist_ok=True)
    subprocess.run([SERVERS, "vhost", "add", s.vhost], check=True)
    s.amqp = os.environ["RAMPART_TEST_AMQP"].rstrip("/") + "/" + s.vhost
    s.dash = Dashboard(f"backup_{s.tag}", {"RAMPART_AMQP_URLS": s.amqp})
    s.dash.create_databases()
    s.blackhole = Blackhole()
    try:
        s.start_target()
        yield s
    finally:
        for p in s.procs:
            p.stop()
        if s.dash.proc:
            s.dash.stop()
        if s.nginx:
            s.nginx.send_signal(signal.SIGQUIT)
            s.nginx.wait(timeout=10)
        s.blackhole.close()
        s.dash.drop_databases()
        subprocess.run([SERVERS, "vhost", "delete", s.vhost], check=False)
        shutil.rmtree(s.tmp, ignore_errors=True)


# ---- content digests ---------------------------------------------------------------------------

def pg_digest(cur):
    """{table: "count:md5 of every row's text, in order"} for every table of schema public."""
    cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    out = {}
    for (t,) in cur.fetchall():
        cur.execute(sql.SQL("SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' "
                            "ORDER BY x::text)), '') FROM public.{} x").format(sql.Identifier(t)))
        out[t] = cur.fetchone()[0]
    return out


def mongo_digest(db):
    """{collection: ({_id: sha256 of the stored BSON}, sorted index (name, key))}."""
    raw = CodecOptions(document_class=RawBSONDocument)
    out = {}
    for name in sorted(db.list_collection_names()):
        coll = db.get_collection(name, codec_options=raw)
        docs = {}
        for d in coll.find({}):
            docs[d["_id"]] = hashlib.sha256(d.raw).hexdigest()
        idx = sorted((i["name"], json.dumps(list(i["key"].items())))
                     for i in db[name].list_indexes())
        out[name] = (docs, idx)
    return out


def mongo_ids(db):
    """{collection: set of _id}: what exists now (results are written once, never changed)."""
    return {name: {d["_id"] for d in db[name].find({}, {"_id": 1})}
            for name in db.list_collection_names()}


def finished_runs(system):
    """Runs with a final status: each has its result stored (the worker stores the result before
    it writes the final status). FerretDB's estimatedDocumentCount lags far behind, so the
    count comes from PostgreSQL."""
    return system.dash.sql("SELECT count(*) FROM runs WHERE status = ANY(%s)", (list(FINAL),))[0][0]


# ---- the round trip ------------------------------------------------------------------------

def fill_through_api(system):
    """Everything a team configures, through the REST API; returns what the checks need."""
    admin = Client(system.dash.url).login(ADMIN_EMAIL, ADMIN_PASSWORD)
    users = []
    for i in range(3):
        email, password = f"user{i}-{system.tag}@example.com", "pw-" + secrets.token_hex(8)
        ok(admin.post("/api/v1/users", {"email": email, "name": f"User {i}",
                                        "password": password}), 201)
        users.append((email, password))
    proj = ok(admin.post(P, {"slug": "shop-" + system.tag, "name": "Shop"}), 201)
    pid = proj["id"]
    for (email, _), role in zip(users, ("owner", "editor", "viewer")):
        ok(admin.post(f"{P}/{pid}/members", {"email": email, "role": role}), 201)
    key = ok(admin.post(f"{P}/{pid}/api-keys", {"name": "ci", "role": "viewer"}), 201)
    env = ok(admin.post(f"{P}/{pid}/environments", {"name": "prod", "variables": {
        "base": system.target, "token": {"value": "s3cr3t-" + system.tag, "secret": True}}}), 201)
    ch = ok(admin.post(f"{P}/{pid}/channels", {"name": "team mail", "kind": "email",
                                               "config": {"to": ["team@example.com"]}}), 201)
    ok(admin.post(f"{P}/{pid}/alert-rules", {"name": "page the team",
                                             "channel_ids": [ch["id"]]}), 201)
    ok(admin.post(f"{P}/{pid}/maintenance-windows", {
        "name": "db upgrade", "kind": "once", "starts_at": "2030-01-01T00:00:00Z",
        "ends_at": "2030-01-02T00:00:00Z"}), 201)
    tests = []
    for i in range(TESTS):
        path = "/flap" if i == 0 else "/ok"
        definition = {"name": f"check-{i}", "tags": ["backup"],
                      "steps": [{"name": "get", "request": {
                          "url": "${base}" + path,
                          "headers": {"Authorization": "Bearer ${token}"}},
                          "expect": {"status": 200}}]}
        tests.append(ok(admin.post(f"{P}/{pid}/tests", {"definition": definition}), 201))
    schedules = []
    for t in tests:
        for _ in range(SCHEDULES_PER_TEST):
            schedules.append(ok(admin.post(f"{P}/{pid}/schedules", {
                "test_id": t["id"], "interval_s": 1, "environment_id": env["id"],
                "locations": [system.location]}), 201)["id"])
    # a test whose target never answers: its runs last 3 s, so some are always in flight
    hang = ok(admin.post(f"{P}/{pid}/tests", {"definition": {
        "name": "hangs", "steps": [{"name": "get", "request": {
            "url": system.blackhole.url + "/hang", "timeout": "3s"}}]}}), 201)
    for _ in range(SLOW):
        ok(admin.post(f"{P}/{pid}/schedules", {"test_id": hang["id"], "interval_s": 1,
                                               "locations": [system.location]}), 201)
    return {"pid": pid, "users": users, "key": key["token"], "schedules": schedules}


def slow_down(system, made, keep):
    """After the fill: disable all but `keep` schedules through the API (a steady load of
    `keep` runs/s goes on during the backup)."""
    admin = Client(system.dash.url).login(ADMIN_EMAIL, ADMIN_PASSWORD)
    for sid in made["schedules"][keep:]:
        ok(admin.patch(f"{P}/{made['pid']}/schedules/{sid}", {"enabled": False}))


def test_roundtrip_while_the_pipeline_runs(system):
    t_fill = time.time()
    system.dash.start()
    made = fill_through_api(system)
    system.start_services("before")
    print(f"\nfill: 3 users, 1 project, {TESTS} tests, {TESTS * SCHEDULES_PER_TEST} schedules of "
          f"1 s through the API ({time.time() - t_fill:.1f}s); pipeline running")
    t_pipe = time.time()
    last = [0.0]

    def enough():
        n = finished_runs(system)
        if time.time() - last[0] > 15:
            print(f"  {n} results after {time.time() - t_pipe:.0f}s")
            last[0] = time.time()
        return n >= RESULTS
    wait_for(f"{RESULTS} results", enough, 900, 1)
    print(f"fill: {finished_runs(system)} runs finished, with their results, in "
          f"{time.time() - t_pipe:.1f}s")
    slow_down(system, made, STEADY)
    print(f"steady load: {STEADY} schedules of 1 s left enabled during the backup")

    # ---- 2. back up while the pipeline keeps running ----------------------------------------
    client, mdb = system.mongo_db()
    before = mongo_ids(mdb)  # every document that exists before the backup starts
    client.close()
    holder = psycopg2.connect(system.dash.pg)
    hcur = holder.cursor()
    hcur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    hcur.execute("SELECT pg_export_snapshot(), now()")
    snapshot, snap_time = hcur.fetchone()
    out = os.path.join(system.tmp, "archives")
    os.makedirs(out)
    t0 = time.time()
    r = subprocess.run([BACKUP, "create", "--out", out, "--snapshot", snapshot],
                       env=dict(os.environ, RAMPART_PG_URL=system.dash.pg,
                                RAMPART_MONGO_URL=system.dash.mongo),
                       capture_output=True, text=True, timeout=900)
    took = time.time() - t0
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    archive = [os.path.join(out, f) for f in os.listdir(out) if f.endswith(".tar")]
    assert len(archive) == 1, os.listdir(out)
    archive = archive[0]
    during = system.dash.sql("SELECT count(*) FROM runs WHERE finished_at > %s",
                             (snap_time,))[0][0]
    print(f"backup: {took:.1f}s, {os.path.getsize(archive)} bytes, rows={summary.get('rows')} "
          f"documents={summary.get('documents')}; the pipeline finished {during} runs meanwhile")
    assert during > 0, "the pipeline did not keep running during the backup"
    snap = pg_digest(hcur)  # every table exactly as the backup saw it
    holder.rollback()
    holder.close()
    assert int(snap["runs"].split(":")[0]) >= RESULTS

    # ---- 3. stop, record, wipe ------------------------------------------------------------------
    system.stop_services()
    client, mdb = system.mongo_db()
    after = mongo_digest(mdb)  # every document that exists after the backup ended
    client.close()
    system.dash.drop_databases()
    system.dash.create_databases()
    assert system.dash.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
    client, mdb = system.mongo_db()
    assert mdb.list_collection_names() == []
    client.close()
    print(f"wipe: both databases dropped ({len(snap)} tables, "
          f"{sum(len(d) for d, _ in after.values())} documents gone)")

    # ---- 4. restore -------------------------------------------------------------------------------
    t0 = time.time()
    r = subprocess.run([BACKUP, "restore", archive, "--target-pg", system.dash.pg,
                        "--target-mongo", system.dash.mongo],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    print(f"restore: {time.time() - t0:.1f}s; {r.stdout.strip().splitlines()[-1]}")

    # ---- 5. compare -------------------------------------------------------------------------------
    con = psycopg2.connect(system.dash.pg)
    restored = pg_digest(con.cursor())
    differ = sorted(t for t in set(snap) | set(restored) if snap.get(t) != restored.get(t))
    print(f"compare postgres: {len(restored)} tables, "
          + ", ".join(f"{t}={restored[t].split(':')[0]}" for t in sorted(restored)
                      if restored[t].split(':')[0] != "0")
          + f"; differing: {differ}")
    assert not differ
    assert len(restored) == 21
    client, mdb = system.mongo_db()
    back = mongo_digest(mdb)
    client.close()
    assert sorted(back) == sorted(after) == sorted(before) == ["results"], sorted(back)
    for name in back:
        docs, idx = back[name]
        missing = [k for k in before[name] if k not in docs]
        alien = [k for k in docs if after[name][0].get(k) != docs[k]]
        print(f"compare mongo {name}: restored {len(docs)} (before the backup {len(before[name])}"
              f", after {len(after[name][0])}); missing {len(missing)}, not byte-identical "
              f"{len(alien)}; indexes {len(idx)} same={idx == after[name][1]}")
        assert not missing and not alien
        assert idx == after[name][1]
    unfinished_results = con.cursor()
    unfinished_results.execute("SELECT id::text FROM runs WHERE status = ANY(%s)", (list(FINAL),))
    finished = [x for (x,) in unfinished_results.fetchall()]
    no_result = [x for x in finished if x not in back["results"][0]]
    print(f"consistency: {len(finished)} finished runs, {len(no_result)} without their result")
    assert not no_result
    con.close()

    # ---- 6. the services run on the restored data ---------------------------------------------
    # the runbook (docs/disaster-recovery.md, section 2): the broker kept its queues, so the job
    # queue is emptied first (its messages belong to the lost timeline), then the runs caught
    # in flight are republished
    subprocess.run([SERVERS, "rabbitmqctl", "purge_queue", "-p", system.vhost,
                    f"rampart.jobs.{system.location}"], check=True, capture_output=True)
    inflight = system.dash.sql(
        "UPDATE runs SET status = 'pending', lease_until = now() "
        "WHERE status IN ('pending', 'queued', 'running') "
        "AND fire_time > now() - interval '1 day' "
        "RETURNING id")
    restart = system.dash.sql("SELECT now()")[0][0]
    system.start_services("after")
    admin = Client(system.dash.url).login(ADMIN_EMAIL, ADMIN_PASSWORD)
    for email, password in made["users"]:
        Client(system.dash.url).login(email, password)
    key = Client(system.dash.url, api_key=made["key"])
    page = ok(key.get(f"{P}/{made['pid']}/runs?limit=5&status=passed"))
    run = ok(admin.get(f"{P}/{made['pid']}/runs/{page['items'][0]['id']}"))
    assert run["result"] and run["result"]["_id"] == run["id"]
    # (slow on FerretDB: a republished run whose result the archive holds is read back by _id,
    # and FerretDB answers that with a scan of the collection while the workers write)
    t0 = time.time()
    wait_for("every restored run final",
             lambda: system.dash.sql("SELECT count(*) FROM runs WHERE status <> ALL(%s) AND "
                                     "fire_time < %s", (list(FINAL), restart))[0][0] == 0, 600, 0.5)
    fresh = wait_for("new scheduled runs with results", lambda: (lambda n: n if n >= 1000 else 0)(
        system.dash.sql("SELECT count(*) FROM runs WHERE fire_time > %s AND status = ANY(%s)",
                        (restart, list(FINAL)))[0][0]), 600, 0.5)
    new_ids = [x for (x,) in system.dash.sql(
        "SELECT id::text FROM runs WHERE fire_time > %s AND status = ANY(%s) LIMIT 500",
        (restart, list(FINAL)))]
    client, mdb = system.mongo_db()
    have = mdb.results.count_documents({"_id": {"$in": new_ids}})
    client.close()
    print(f"services on the restored data: logins ok (admin + 3 users), API key ok, "
          f"{len(inflight)} in-flight runs republished and finished in {time.time() - t0:.1f}s, "
          f"{fresh} new scheduled runs finished; {have} of {len(new_ids)} sampled have results")
    assert have == len(new_ids)
    # the step above must not pass vacuously: the schedules of "hangs" keep runs in flight
    assert len(inflight) > 0, "the backup caught no run in flight"
    system.stop_services()
