/* Integration test of rampart-worker's consumer mode against the real PostgreSQL, RabbitMQ and
 * MongoDB-compatible server of the test set-up (RAMPART_TEST_PG, RAMPART_TEST_AMQP,
 * RAMPART_TEST_MONGO) and Debian's httpbin as the target. The test plays the scheduler: it
 * inserts run rows and publishes job messages itself, starts real rampart-worker processes,
 * and counts run.finished events on a queue of its own. Proves:
 *  (a) 300 runs on two workers: exactly one result document, one final status and one event
 *      per run; retries ran; the enriched document; no secret in results or logs; metrics.
 *  (b) a poison job (the test-only crash marker) kills the worker at every delivery; restarted
 *      each time, as a supervisor would, the job is dead-lettered after the delivery limit and
 *      its run becomes a visible `error`, while the jobs published alongside all complete.
 *  (c) SIGTERM on a busy worker: exit 0, every started run finished, the rest handed back and
 *      finished by the next worker; no run started twice.
 *  (d) a redelivered batch with half its results stored: those are kept, only they read back.
 *  (e) a suspect (redelivered while `running`) that cannot run alone runs after 30 s anyway.
 *  (f) a writer stuck in a call (a relay swallows MongoDB's replies; a 2 s stall limit):
 *      /healthz says which thread is stuck in what, the worker then exits with code 1, and
 *      the next worker finishes the run.
 *  (h) the same with PostgreSQL's replies swallowed: the exec thread is stuck, and so is the
 *      readiness check's SELECT 1 on the main thread; the stall is seen all the same.
 *  (g) the retention delete, on its thread: deletes what is past the retention, keeps the
 *      rest, and does not hold up a stop while its reply is lost.
 * Everything it creates has unique names (it can run twice against the same servers). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <mongoc/mongoc.h>

#include "consumer.h"
#include "rampart/amqp.h"
#include "tcp_relay.h"
#include "rampart/job.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/mongo.h"
#include "rampart/pg.h"

#define PYTHON     "/usr/bin/python3" /* Debian's, which has httpbin */
#define WORKER_BIN RP_BUILD_DIR "/worker/rampart-worker"
#define MAX_PROCS  16

static const char *pg_url, *amqp_url, *mongo_url;
static struct rp_pg *pg;
static struct rp_mongo *mongo;
static struct rp_amqp_consumer *events;
static char tag[32], events_queue[96], secret[64];
static char project_id[RP_UUID_LEN + 1], env_id[RP_UUID_LEN + 1], env_vars[512];
static char t_ping[RP_UUID_LEN + 1], t_fail[RP_UUID_LEN + 1], t_slow[RP_UUID_LEN + 1],
    t_boom[RP_UUID_LEN + 1];
static char def_ping[512], def_fail[512], def_slow[512], def_boom[512];
static pid_t httpbin_pid;
static int httpbin_port;
static pid_t procs[MAX_PROCS]; /* every worker started, for the teardown */
static char logs[MAX_PROCS][160];
static int n_procs;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- servers and processes ---------------------------------------------------------------- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

static int port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int start_httpbin(void)
{
    if (access(PYTHON, X_OK) != 0 || system(PYTHON " -c 'import httpbin' >/dev/null 2>&1") != 0) {
        fprintf(stderr,
                "it_pipeline_worker: %s with httpbin is required (apt-get install "
                "python3-httpbin)\n",
                PYTHON);
        return -1;
    }
    httpbin_port = free_port();
    char port[16], log[128];
    snprintf(port, sizeof(port), "%d", httpbin_port);
    snprintf(log, sizeof(log), "/tmp/it_pipeline_worker.%s.httpbin.log", tag);
    httpbin_pid = fork();
    if (httpbin_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(PYTHON, "python3", "-m", "httpbin.core", "--port", port, "--host", "127.0.0.1",
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300 && !port_open(httpbin_port); i++)
        usleep(50 * 1000);
    if (!port_open(httpbin_port)) {
        fprintf(stderr, "it_pipeline_worker: httpbin did not start (log: %s)\n", log);
        return -1;
    }
    return 0;
}

struct wopts {
    const char *location;
    long delivery_limit; /* 0: the default */
    const char *crash_marker;
    const char *prefetch;
    const char *mongo_url; /* NULL: the test set-up's */
    const char *pg_url;    /* NULL: the test set-up's */
    const char *stall;     /* RAMPART_WORKER_STALL_TIMEOUT; NULL: the default */
};

static pid_t start_worker(const struct wopts *o)
{
    assert_true(n_procs < MAX_PROCS);
    int i = n_procs++;
    snprintf(logs[i], sizeof(logs[i]), "/tmp/it_pipeline_worker.%s.w%d.log", tag, i);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        struct rlimit no_core = {0, 0}; /* the crash marker aborts: no core files */
        setrlimit(RLIMIT_CORE, &no_core);
        FILE *f = freopen(logs[i], "w", stderr);
        (void)f;
        char inst[32], limit[16];
        snprintf(inst, sizeof(inst), "w%d", i);
        snprintf(limit, sizeof(limit), "%ld", o->delivery_limit ? o->delivery_limit : 5);
        setenv("RAMPART_PG_URL", o->pg_url ? o->pg_url : pg_url, 1);
        setenv("RAMPART_AMQP_URLS", amqp_url, 1);
        setenv("RAMPART_MONGO_URL", o->mongo_url ? o->mongo_url : mongo_url, 1);
        if (o->stall)
            setenv("RAMPART_WORKER_STALL_TIMEOUT", o->stall, 1);
        setenv("RAMPART_READY_CHECK_INTERVAL", "1s", 1);
        setenv("RAMPART_HTTP_LISTEN", "127.0.0.1:0", 1);
        setenv("RAMPART_INSTANCE", inst, 1);
        setenv("RAMPART_WORKER_LOCATION", o->location, 1);
        setenv("RAMPART_JOB_DELIVERY_LIMIT", limit, 1);
        setenv("RAMPART_WORKER_TEST_CRASH_MARKER", o->crash_marker ? o->crash_marker : "", 1);
        setenv("RAMPART_WORKER_PREFETCH", o->prefetch ? o->prefetch : "32", 1);
        setenv("RAMPART_DRAIN_TIMEOUT", "30s", 1);
        setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0", 0);
        execl(WORKER_BIN, "rampart-worker", (char *)NULL);
        _exit(127);
    }
    procs[i] = pid;
    return pid;
}

/* SIGTERM, wait, return the exit status (-signal when killed by one). */
static int stop_worker(pid_t pid)
{
    int st = 0;
    kill(pid, SIGTERM);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    for (int i = 0; i < n_procs; i++)
        if (procs[i] == pid)
            procs[i] = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

static void forget_proc(pid_t pid)
{
    for (int i = 0; i < n_procs; i++)
        if (procs[i] == pid)
            procs[i] = 0;
}

/* A log file's text (caller frees). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rp_xstrdup("");
    struct rp_buf b;
    rp_buf_init(&b, 64 << 20);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        (void)rp_buf_append(&b, chunk, n);
    fclose(f);
    return b.data ? b.data : rp_xstrdup("");
}

/* Whether the log of worker `i` has `text`. */
static int log_has(int i, const char *text)
{
    char *log = slurp(logs[i]);
    int has = strstr(log, text) != NULL;
    free(log);
    return has;
}

/* GET `path` from the health endpoint of the worker that logs to log index `i`: the HTTP
 * status (0: no answer) and the whole response in `b` (caller rp_buf_cleanup()s it). */
static int http_get(int i, const char *path, struct rp_buf *b)
{
    rp_buf_init(b, 8 << 20);
    char *log = slurp(logs[i]);
    const char *p = strstr(log, "health endpoint on port ");
    int port = p ? atoi(p + strlen("health endpoint on port ")) : 0;
    free(log);
    if (port <= 0)
        return 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    char req[256];
    int len = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    assert_true(write(fd, req, (size_t)len) == len);
    char chunk[16384];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        (void)rp_buf_append(b, chunk, (size_t)n);
    close(fd);
    int code = 0;
    return b->data && sscanf(b->data, "HTTP/1.%*d %d", &code) == 1 ? code : 0;
}

/* GET /metrics of the worker that logs to log index `i`; the value of `series` (or -1). */
static double metric(int i, const char *series)
{
    struct rp_buf b;
    if (http_get(i, "/metrics", &b) != 200) {
        rp_buf_cleanup(&b);
        return -1;
    }
    double v = -1;
    char needle[256];
    snprintf(needle, sizeof(needle), "\n%s ", series);
    const char *at = b.data ? strstr(b.data, needle) : NULL;
    if (at)
        v = strtod(at + strlen(needle), NULL);
    rp_buf_cleanup(&b);
    return v;
}

/* ---- data --------------------------------------------------------------------------------- */

static PGresult *q(const char *sql, int n, const char *const *params)
{
    PGresult *res = NULL;
    struct rp_error e;
    if (rp_pg_exec(pg, sql, n, params, &res, &e) != RP_OK)
        fail_msg("SQL failed: %s\n%s", e.msg, sql);
    return res;
}

static void q0(const char *sql, int n, const char *const *params)
{
    PQclear(q(sql, n, params));
}

static long qlong(const char *sql, int n, const char *const *params)
{
    PGresult *r = q(sql, n, params);
    long v = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static void add_test(const char *name, const char *def, char id[RP_UUID_LEN + 1])
{
    const char *p[] = {project_id, name};
    PGresult *r =
        q("INSERT INTO tests (project_id, name, current_version) VALUES ($1, $2, 1) RETURNING id",
          2, p);
    snprintf(id, RP_UUID_LEN + 1, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    const char *p2[] = {id, def};
    q0("INSERT INTO test_versions (test_id, version, definition) VALUES ($1, 1, $2)", 2, p2);
}

static void setup_data(void)
{
    const char *p[] = {tag};
    PGresult *r = q("INSERT INTO projects (slug, name) VALUES ($1, $1) RETURNING id", 1, p);
    snprintf(project_id, sizeof(project_id), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    snprintf(env_vars, sizeof(env_vars),
             "{\"base\": \"http://127.0.0.1:%d\", \"token\": {\"value\": \"%s\", \"secret\": "
             "true}}",
             httpbin_port, secret);
    const char *pe[] = {project_id, env_vars};
    r = q("INSERT INTO environments (project_id, name, variables) VALUES ($1, 'local', $2) "
          "RETURNING id, variables::text",
          2, pe);
    snprintf(env_id, sizeof(env_id), "%s", PQgetvalue(r, 0, 0));
    snprintf(env_vars, sizeof(env_vars), "%s", PQgetvalue(r, 0, 1)); /* as the scheduler sends */
    PQclear(r);
    /* httpbin echoes the request headers: the secret token must come back as *** */
    snprintf(def_ping, sizeof(def_ping),
             "{\"name\": \"ping\", \"steps\": [{\"name\": \"get\", \"request\": {\"url\": "
             "\"${base}/get\", \"headers\": {\"X-Token\": \"${token}\"}}, \"expect\": "
             "{\"status\": 200}, \"assert\": [\"$.headers.X-Token exists\"]}]}");
    snprintf(def_fail, sizeof(def_fail),
             "{\"name\": \"always 500\", \"steps\": [{\"request\": {\"url\": "
             "\"${base}/status/500\"}, \"expect\": {\"status\": 200}}]}");
    snprintf(def_slow, sizeof(def_slow),
             "{\"name\": \"slow\", \"steps\": [{\"request\": {\"url\": \"${base}/delay/2\"}, "
             "\"expect\": {\"status\": 200}}]}");
    snprintf(def_boom, sizeof(def_boom),
             "{\"name\": \"boom CRASHME boom\", \"steps\": [{\"request\": {\"url\": "
             "\"${base}/get\"}}]}");
    add_test("ping", def_ping, t_ping);
    add_test("always 500", def_fail, t_fail);
    add_test("slow", def_slow, t_slow);
    add_test("boom CRASHME boom", def_boom, t_boom);
}

struct run {
    char id[RP_UUID_LEN + 1];
    const char *test_id, *def;
    int retries;
};

/* Insert `n` runs of one test at `location`, status queued (as after the scheduler's confirm). */
static void make_runs(struct run *runs, size_t n, const char *location, const char *test_id,
                      const char *def, int retries)
{
    struct rp_buf ids;
    rp_buf_init(&ids, 0);
    (void)rp_buf_append(&ids, "{", 1);
    for (size_t i = 0; i < n; i++) {
        rp_uuid_v7(runs[i].id);
        runs[i].test_id = test_id;
        runs[i].def = def;
        runs[i].retries = retries;
        (void)rp_buf_printf(&ids, "%s%s", i ? "," : "", runs[i].id);
    }
    (void)rp_buf_append(&ids, "}", 1);
    char rs[8];
    snprintf(rs, sizeof(rs), "%d", retries);
    const char *p[] = {ids.data, project_id, test_id, env_id, location, rs};
    q0("INSERT INTO runs (id, project_id, test_id, test_version, environment_id, fire_time, "
       "trigger, location, status, retries, queued_at) SELECT unnest($1::uuid[]), $2, $3, 1, $4, "
       "now(), 'api', $5, 'queued', $6::int, now()",
       6, p);
    rp_buf_cleanup(&ids);
}

static int publish_failures;

static void on_confirm(void *opaque, uint64_t seq, enum rp_amqp_outcome outcome, const char *why)
{
    if (outcome != RP_AMQP_CONFIRMED) {
        publish_failures++;
        fprintf(stderr, "job message %llu not confirmed: %s\n", (unsigned long long)seq,
                why ? why : "returned");
    }
}

/* Publish `runs` as job messages of `per_msg` runs each, with confirms. */
static void publish(const struct run *runs, size_t n, size_t per_msg, const char *location)
{
    struct rp_amqp_publisher *pub = NULL;
    struct rp_error e;
    assert_int_equal(rp_amqp_publisher_new(amqp_url, NULL, on_confirm, NULL, &pub, &e), RP_OK);
    struct rp_job_run *jr = rp_xcalloc(per_msg, sizeof(*jr));
    int64_t fire = rp_now_unix_ms();
    for (size_t off = 0; off < n; off += per_msg) {
        size_t k = n - off < per_msg ? n - off : per_msg;
        for (size_t i = 0; i < k; i++) {
            const struct run *r = &runs[off + i];
            struct rp_job_run *j = &jr[i];
            memset(j, 0, sizeof(*j));
            snprintf(j->run_id, sizeof(j->run_id), "%s", r->id);
            snprintf(j->project_id, sizeof(j->project_id), "%s", project_id);
            snprintf(j->test_id, sizeof(j->test_id), "%s", r->test_id);
            j->test_version = 1;
            j->environment_id = env_id;
            j->fire_time_ms = fire;
            snprintf(j->trigger, sizeof(j->trigger), "api");
            snprintf(j->location, sizeof(j->location), "%s", location);
            j->retries = r->retries;
            j->definition = (char *)r->def;
            j->variables = env_vars;
        }
        struct rp_buf body;
        rp_buf_init(&body, 0);
        assert_int_equal(rp_job_encode(jr, k, &body), RP_OK);
        struct rp_amqp_props props = {.content_type = "application/json", .persistent = 1};
        assert_int_equal(rp_amqp_publish(pub, RP_AMQP_JOBS_EXCHANGE, location, body.data, body.len,
                                         &props, 1, NULL, &e),
                         RP_OK);
        rp_buf_cleanup(&body);
    }
    assert_int_equal(rp_amqp_publisher_flush(pub, 10000, &e), RP_OK);
    assert_int_equal(publish_failures, 0);
    free(jr);
    rp_amqp_publisher_free(pub);
}

/* A short-lived admin session: one kept open idles past its heartbeats during a test. */
static struct rp_amqp_admin *admin(void)
{
    struct rp_amqp_admin *a = NULL;
    struct rp_error e;
    if (rp_amqp_admin_open(amqp_url, NULL, &a, &e) != RP_OK)
        fail_msg("amqp admin: %s", e.msg);
    return a;
}

/* A message that is no job at all. */
static void publish_garbage(const char *location)
{
    struct rp_amqp_publisher *pub = NULL;
    struct rp_error e;
    assert_int_equal(rp_amqp_publisher_new(amqp_url, NULL, on_confirm, NULL, &pub, &e), RP_OK);
    static const char body[] = "{\"v\": 1, \"runs\": [{\"run_id\": \"not-a-uuid\"}]}";
    struct rp_amqp_props props = {.message_id = "garbage", .persistent = 1};
    assert_int_equal(rp_amqp_publish(pub, RP_AMQP_JOBS_EXCHANGE, location, body, sizeof(body) - 1,
                                     &props, 1, NULL, &e),
                     RP_OK);
    assert_int_equal(rp_amqp_publisher_flush(pub, 10000, &e), RP_OK);
    assert_int_equal(publish_failures, 0);
    rp_amqp_publisher_free(pub);
}

static void declare_location(const char *location, long limit)
{
    struct rp_error e;
    struct rp_amqp_topology_opts to = {.delivery_limit = limit};
    struct rp_amqp_admin *a = admin();
    if (rp_amqp_declare_topology(a, &location, 1, &to, &e) != RP_OK)
        fail_msg("declaring %s: %s", location, e.msg);
    rp_amqp_admin_close(a);
}

static void delete_queue(const char *qn)
{
    struct rp_error e;
    struct rp_amqp_admin *a = NULL;
    if (rp_amqp_admin_open(amqp_url, NULL, &a, &e) != RP_OK ||
        rp_amqp_delete_queue(a, qn, &e) != RP_OK)
        fprintf(stderr, "deleting %s: %s\n", qn, e.msg);
    rp_amqp_admin_close(a);
}

static void delete_location(const char *location)
{
    char qn[96];
    snprintf(qn, sizeof(qn), "rampart.jobs.%s", location);
    delete_queue(qn);
}

/* ---- events ------------------------------------------------------------------------------- */

struct ev {
    char id[RP_UUID_LEN + 1];
    char status[8];
    int count;
};
static struct ev *evs;
static size_t n_evs, cap_evs;
static size_t foreign_events; /* events of other projects (other tests on the same broker) */

static struct ev *ev_find(const char *id)
{
    for (size_t i = 0; i < n_evs; i++)
        if (strcmp(evs[i].id, id) == 0)
            return &evs[i];
    return NULL;
}

/* Read events for up to `ms`, recording those of this test's project. */
static void pump_events(long ms)
{
    double until = now_s() + ms / 1000.0;
    do {
        struct rp_amqp_delivery *d = NULL;
        int rc = rp_amqp_consumer_next(events, 20, &d, NULL);
        if (rc != RP_OK)
            continue;
        bson_t doc;
        bson_error_t be;
        if (bson_init_from_json(&doc, d->body, (ssize_t)d->len, &be)) {
            bson_iter_t it;
            const char *rid = NULL, *pid = NULL, *st = NULL;
            if (bson_iter_init_find(&it, &doc, "run_id") && BSON_ITER_HOLDS_UTF8(&it))
                rid = bson_iter_utf8(&it, NULL);
            if (bson_iter_init_find(&it, &doc, "project_id") && BSON_ITER_HOLDS_UTF8(&it))
                pid = bson_iter_utf8(&it, NULL);
            if (bson_iter_init_find(&it, &doc, "status") && BSON_ITER_HOLDS_UTF8(&it))
                st = bson_iter_utf8(&it, NULL);
            if (rid && pid && st && strcmp(pid, project_id) == 0) {
                struct ev *e = ev_find(rid);
                if (!e) {
                    if (n_evs == cap_evs) {
                        cap_evs = cap_evs ? cap_evs * 2 : 512;
                        evs = rp_xrealloc(evs, cap_evs * sizeof(*evs));
                    }
                    e = &evs[n_evs++];
                    memset(e, 0, sizeof(*e));
                    snprintf(e->id, sizeof(e->id), "%s", rid);
                }
                e->count++;
                snprintf(e->status, sizeof(e->status), "%s", st);
                /* the routing key says the status too */
                char key[32];
                snprintf(key, sizeof(key), "run.finished.%s", st);
                assert_string_equal(d->routing_key, key);
                assert_non_null(d->message_id);
                assert_string_equal(d->message_id, rid);
            } else {
                foreign_events++;
            }
            bson_destroy(&doc);
        }
        assert_int_equal(rp_amqp_ack(events, d, NULL), RP_OK);
        rp_amqp_delivery_free(d);
    } while (now_s() < until);
}

/* Events seen for `runs` (total, and runs with more than one). */
static void count_events(const struct run *runs, size_t n, size_t *total, size_t *doubled)
{
    *total = *doubled = 0;
    for (size_t i = 0; i < n; i++) {
        struct ev *e = ev_find(runs[i].id);
        if (e) {
            *total += (size_t)e->count;
            *doubled += e->count > 1;
        }
    }
}

/* ---- checks ------------------------------------------------------------------------------- */

static long finished_at(const char *location)
{
    const char *p[] = {project_id, location};
    return qlong("SELECT count(*) FROM runs WHERE project_id = $1 AND location = $2 AND status IN "
                 "('passed', 'failed', 'error')",
                 2, p);
}

static long results_where(const char *location, const char *status)
{
    mongoc_client_t *c = rp_mongo_acquire(mongo);
    mongoc_collection_t *coll = rp_mongo_collection(mongo, c, "results");
    bson_t f = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&f, "project_id", project_id);
    BSON_APPEND_UTF8(&f, "location", location);
    if (status)
        BSON_APPEND_UTF8(&f, "status", status);
    bson_error_t e;
    int64_t n = mongoc_collection_count_documents(coll, &f, NULL, NULL, NULL, &e);
    if (n < 0)
        fail_msg("counting results: %s", e.message);
    bson_destroy(&f);
    mongoc_collection_destroy(coll);
    rp_mongo_release(mongo, c);
    return (long)n;
}

/* The result document of run `id` (caller bson_destroy()s), or NULL. */
static bson_t *result_doc(const char *id)
{
    mongoc_client_t *c = rp_mongo_acquire(mongo);
    mongoc_collection_t *coll = rp_mongo_collection(mongo, c, "results");
    bson_t f = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&f, "_id", id);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &f, NULL, NULL);
    const bson_t *d;
    bson_t *out = NULL;
    if (mongoc_cursor_next(cur, &d))
        out = bson_copy(d);
    mongoc_cursor_destroy(cur);
    bson_destroy(&f);
    mongoc_collection_destroy(coll);
    rp_mongo_release(mongo, c);
    return out;
}

static const char *doc_str(const bson_t *d, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, d, key) && BSON_ITER_HOLDS_UTF8(&it))
        return bson_iter_utf8(&it, NULL);
    return NULL;
}

static int64_t doc_int(const bson_t *d, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, d, key) && BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_int64(&it);
    return -1;
}

/* ---- (a) many runs, two workers ------------------------------------------------------------ */

#define N_PASS  200
#define N_FAIL  100
#define N_CLEAN (N_PASS + N_FAIL)

static void test_clean(void **state)
{
    char loc[48];
    snprintf(loc, sizeof(loc), "%s-a", tag);
    declare_location(loc, 5);
    static struct run runs[N_CLEAN];
    make_runs(runs, N_PASS, loc, t_ping, def_ping, 0);
    make_runs(runs + N_PASS, N_FAIL, loc, t_fail, def_fail, 1);
    /* interleave so every message holds both kinds */
    for (size_t i = 0; i < N_FAIL; i++) {
        struct run t = runs[i * 3 % N_PASS];
        runs[i * 3 % N_PASS] = runs[N_PASS + i];
        runs[N_PASS + i] = t;
    }
    struct wopts o = {.location = loc};
    pid_t w1 = start_worker(&o);
    int i1 = n_procs - 1;
    pid_t w2 = start_worker(&o);
    int i2 = n_procs - 1;
    double t0 = now_s();
    publish(runs, N_CLEAN, 5, loc);
    while (now_s() - t0 < 90) {
        pump_events(200);
        size_t ev, dbl;
        count_events(runs, N_CLEAN, &ev, &dbl);
        if (ev >= N_CLEAN && finished_at(loc) == N_CLEAN)
            break;
    }
    double elapsed = now_s() - t0;
    pump_events(500); /* anything late or doubled */
    size_t ev, dbl;
    count_events(runs, N_CLEAN, &ev, &dbl);
    long results = results_where(loc, NULL), passed_docs = results_where(loc, "passed"),
         failed_docs = results_where(loc, "failed");
    const char *p[] = {project_id, loc};
    PGresult *r = q("SELECT count(*) FILTER (WHERE status = 'passed'), "
                    "count(*) FILTER (WHERE status = 'failed'), "
                    "count(*) FILTER (WHERE attempts <> 1), "
                    "count(*) FILTER (WHERE finished_at IS NULL OR started_at IS NULL) "
                    "FROM runs WHERE project_id = $1 AND location = $2",
                    2, p);
    long passed = atol(PQgetvalue(r, 0, 0)), failed = atol(PQgetvalue(r, 0, 1));
    long reattempted = atol(PQgetvalue(r, 0, 2)), no_times = atol(PQgetvalue(r, 0, 3));
    PQclear(r);
    /* the writer counts a run once its event is confirmed: that may trail the event a bit */
    double m_passed = 0, m_started = 0, p1 = 0, p2 = 0, s1 = 0, s2 = 0;
    for (double t = now_s(); now_s() - t < 5; usleep(100 * 1000)) {
        p1 = metric(i1, "rampart_runs_finished_total{status=\"passed\"}");
        p2 = metric(i2, "rampart_runs_finished_total{status=\"passed\"}");
        s1 = metric(i1, "rampart_runs_started_total");
        s2 = metric(i2, "rampart_runs_started_total");
        m_passed = p1 + p2;
        m_started = s1 + s2;
        if (m_passed == N_PASS && m_started == N_CLEAN)
            break;
    }
    char depth_series[128];
    snprintf(depth_series, sizeof(depth_series),
             "rampart_jobs_queue_depth{queue=\"rampart.jobs.%s\"}", loc);
    double depth = metric(i1, depth_series);
    fprintf(stderr,
            "pipeline worker: runs=%d results=%ld (passed %ld, failed %ld) rows passed=%ld "
            "failed=%ld events=%zu doubled=%zu workers=2 elapsed=%.1fs metrics: started=%.0f "
            "(%.0f+%.0f) finished{passed}=%.0f (%.0f+%.0f) queue_depth=%.0f\n",
            N_CLEAN, results, passed_docs, failed_docs, passed, failed, ev, dbl, elapsed, m_started,
            s1, s2, m_passed, p1, p2, depth);
    assert_int_equal(results, N_CLEAN);
    assert_int_equal(passed_docs, N_PASS);
    assert_int_equal(failed_docs, N_FAIL);
    assert_int_equal(passed, N_PASS);
    assert_int_equal(failed, N_FAIL);
    assert_int_equal(reattempted, 0);
    assert_int_equal(no_times, 0);
    assert_int_equal(ev, N_CLEAN);
    assert_int_equal(dbl, 0);
    assert_true(m_started == N_CLEAN);
    assert_true(m_passed == N_PASS);
    assert_true(depth >= 0); /* the gauge is there (a passive declare every 5 s) */

    /* the documents as the dashboard will read them */
    size_t a_ping = 0, a_fail = 0;
    while (runs[a_ping].test_id != t_ping)
        a_ping++;
    while (runs[a_fail].test_id != t_fail)
        a_fail++;
    bson_t *d = result_doc(runs[a_ping].id);
    assert_non_null(d);
    assert_string_equal(doc_str(d, "status"), "passed");
    assert_string_equal(doc_str(d, "project_id"), project_id);
    assert_string_equal(doc_str(d, "test_id"), t_ping);
    assert_string_equal(doc_str(d, "location"), loc);
    assert_string_equal(doc_str(d, "trigger"), "api");
    assert_int_equal(doc_int(d, "test_version"), 1);
    assert_int_equal(doc_int(d, "attempt"), 1);
    assert_int_equal(doc_int(d, "tries"), 1);
    assert_non_null(doc_str(d, "worker"));
    bson_iter_t it;
    assert_true(bson_iter_init_find(&it, d, "fire_time") && BSON_ITER_HOLDS_DATE_TIME(&it));
    assert_true(bson_iter_init_find(&it, d, "schedule_id") && BSON_ITER_HOLDS_NULL(&it));
    char *js = bson_as_relaxed_extended_json(d, NULL);
    assert_null(strstr(js, secret)); /* httpbin echoed it: redacted */
    assert_non_null(strstr(js, "***"));
    bson_free(js);
    bson_destroy(d);
    d = result_doc(runs[a_fail].id); /* an always-500 run, retried once */
    assert_non_null(d);
    assert_string_equal(doc_str(d, "status"), "failed");
    assert_int_equal(doc_int(d, "tries"), 2);
    bson_destroy(d);
    struct ev *e0 = ev_find(runs[a_fail].id);
    assert_non_null(e0);
    assert_string_equal(e0->status, "failed");

    assert_int_equal(stop_worker(w1), 0);
    assert_int_equal(stop_worker(w2), 0);
    for (int i = i1; i <= i2; i++) { /* variables never reach the logs */
        char *log = slurp(logs[i]);
        assert_null(strstr(log, secret));
        free(log);
    }
    delete_location(loc);
}

/* ---- (b) a poison job --------------------------------------------------------------------- */

#define N_GOOD       20
#define POISON_LIMIT 3

static void test_poison(void **state)
{
    char loc[48];
    snprintf(loc, sizeof(loc), "%s-b", tag);
    declare_location(loc, POISON_LIMIT);
    struct run boom, good[N_GOOD];
    make_runs(&boom, 1, loc, t_boom, def_boom, 0);
    make_runs(good, N_GOOD, loc, t_ping, def_ping, 0);
    publish(&boom, 1, 1, loc);     /* the poison first: it crashes the worker at once */
    publish(good, N_GOOD, 1, loc); /* then 20 jobs alongside, one run each */
    publish_garbage(loc);          /* and one that does not decode: dead-lettered, dropped */
    struct wopts o = {.location = loc, .delivery_limit = POISON_LIMIT, .crash_marker = "CRASHME"};
    double t0 = now_s();
    int first = n_procs;
    pid_t w = start_worker(&o);
    int crashes = 0, other_exits = 0;
    const char *pb[] = {boom.id};
    while (now_s() - t0 < 120) {
        pump_events(100);
        int st;
        if (waitpid(w, &st, WNOHANG) == w) { /* the supervisor: start it again */
            forget_proc(w);
            if (WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT)
                crashes++;
            else
                other_exits++;
            w = start_worker(&o);
        }
        size_t ev, dbl;
        count_events(good, N_GOOD, &ev, &dbl);
        struct ev *be = ev_find(boom.id);
        if (ev >= N_GOOD && be && finished_at(loc) == N_GOOD + 1)
            break;
    }
    double elapsed = now_s() - t0;
    pump_events(300);
    PGresult *r = q("SELECT status, coalesce(error, ''), attempts FROM runs WHERE id = $1", 1, pb);
    char status[16], error[512];
    snprintf(status, sizeof(status), "%s", PQgetvalue(r, 0, 0));
    snprintf(error, sizeof(error), "%s", PQgetvalue(r, 0, 1));
    long attempts = atol(PQgetvalue(r, 0, 2));
    PQclear(r);
    const char *p[] = {project_id, loc};
    long good_passed = qlong("SELECT count(*) FROM runs WHERE project_id = $1 AND location = $2 "
                             "AND status = 'passed'",
                             2, p);
    size_t ev, dbl;
    count_events(good, N_GOOD, &ev, &dbl);
    struct ev *be = ev_find(boom.id);
    bson_t *d = result_doc(boom.id);
    fprintf(stderr,
            "pipeline worker: poison: crashes=%d (delivery limit %d) other_exits=%d run=%s "
            "attempts=%ld error=\"%s\" result=%s event=%s; alongside: passed=%ld/%d events=%zu "
            "elapsed=%.1fs\n",
            crashes, POISON_LIMIT, other_exits, status, attempts, error,
            d ? doc_str(d, "status") : "none", be ? be->status : "none", good_passed, N_GOOD, ev,
            elapsed);
    assert_int_equal(crashes, POISON_LIMIT + 1);
    assert_int_equal(other_exits, 0);
    assert_string_equal(status, "error");
    assert_non_null(strstr(error, "dead-lettered after 4 deliveries"));
    assert_non_null(d);
    assert_string_equal(doc_str(d, "status"), "error");
    assert_string_equal(doc_str(d, "error"), error);
    assert_string_equal(doc_str(d, "test"), "boom CRASHME boom");
    bson_destroy(d);
    assert_non_null(be);
    assert_string_equal(be->status, "error");
    assert_int_equal(be->count, 1);
    assert_int_equal(good_passed, N_GOOD);
    assert_int_equal(ev, N_GOOD);
    assert_int_equal(results_where(loc, "passed"), N_GOOD);
    assert_int_equal(stop_worker(w), 0);
    int warned = 0, undecodable = 0, dropped = 0;
    for (int i = first; i < n_procs; i++) {
        char *log = slurp(logs[i]);
        warned += strstr(log, "RAMPART_WORKER_TEST_CRASH_MARKER is set") != NULL;
        undecodable += strstr(log, "undecodable job message (message id garbage") != NULL;
        dropped += strstr(log, "undecodable dead letter (message id garbage") != NULL;
        free(log);
    }
    fprintf(stderr,
            "pipeline worker: poison: undecodable message: rejected by %d worker(s), dead "
            "letter dropped by %d; crash-marker warnings %d of %d starts\n",
            undecodable, dropped, warned, n_procs - first);
    assert_int_equal(warned, n_procs - first);
    assert_true(undecodable >= 1);
    assert_true(dropped >= 1);
    delete_location(loc);
}

/* ---- (c) SIGTERM on a busy worker ----------------------------------------------------------- */

#define N_SLOW 80

static void test_drain(void **state)
{
    char loc[48];
    snprintf(loc, sizeof(loc), "%s-c", tag);
    declare_location(loc, 5);
    struct run slow[N_SLOW];
    make_runs(slow, N_SLOW, loc, t_slow, def_slow, 0);
    struct wopts o = {.location = loc, .prefetch = "8"};
    pid_t w = start_worker(&o);
    publish(slow, N_SLOW, 2, loc); /* 40 messages of two 2-second runs */
    const char *p[] = {project_id, loc};
    double t0 = now_s();
    while (qlong("SELECT count(*) FROM runs WHERE project_id = $1 AND location = $2 AND status = "
                 "'running'",
                 2, p) < 16 &&
           now_s() - t0 < 30)
        pump_events(50);
    pump_events(300); /* well inside the 2 s the runs take */
    long running = qlong("SELECT count(*) FROM runs WHERE project_id = $1 AND location = $2 AND "
                         "status = 'running'",
                         2, p);
    double t_term = now_s();
    int code = stop_worker(w);
    double drain_s = now_s() - t_term;
    PGresult *r = q("SELECT count(*) FILTER (WHERE attempts > 0), "
                    "count(*) FILTER (WHERE attempts > 0 AND status NOT IN ('passed', 'failed', "
                    "'error')), count(*) FILTER (WHERE attempts = 0 AND status = 'queued') "
                    "FROM runs WHERE project_id = $1 AND location = $2",
                    2, p);
    long started = atol(PQgetvalue(r, 0, 0)), unfinished = atol(PQgetvalue(r, 0, 1));
    long handed_back = atol(PQgetvalue(r, 0, 2));
    PQclear(r);
    /* the next worker takes what was handed back */
    pid_t w2 = start_worker(&o);
    while (finished_at(loc) < N_SLOW && now_s() - t0 < 120)
        pump_events(200);
    pump_events(500);
    size_t ev, dbl;
    count_events(slow, N_SLOW, &ev, &dbl);
    long twice = qlong("SELECT count(*) FROM runs WHERE project_id = $1 AND location = $2 AND "
                       "attempts <> 1",
                       2, p);
    long results = results_where(loc, "passed");
    fprintf(stderr,
            "pipeline worker: drain: running_at_sigterm=%ld exit=%d drain=%.1fs started=%ld "
            "unfinished_after=%ld handed_back=%ld; after a second worker: finished=%ld/%d "
            "results=%ld events=%zu started_twice=%ld\n",
            running, code, drain_s, started, unfinished, handed_back, finished_at(loc), N_SLOW,
            results, ev, twice);
    assert_true(running >= 16);
    assert_int_equal(code, 0);
    assert_int_equal(unfinished, 0);
    assert_true(handed_back > 0);
    assert_int_equal(started + handed_back, N_SLOW);
    assert_int_equal(finished_at(loc), N_SLOW);
    assert_int_equal(results, N_SLOW);
    assert_int_equal(ev, N_SLOW);
    assert_int_equal(dbl, 0);
    assert_int_equal(twice, 0);
    assert_int_equal(stop_worker(w2), 0);
    delete_location(loc);
}

/* ---- (d) a redelivered batch: half its results already stored -------------------------------- */

#define N_REDELIVERED 20

/* A batch whose runs are queued again (a restore's republish, a redelivery after a crash)
 * while half of their results are already stored: those keep the stored result (status
 * "failed" below, though the target passes), the rest are stored as run; every run ends with
 * one result and one event. Only the duplicates the bulk insert names are read back. */
static void test_redelivered_batch(void **state)
{
    (void)state;
    char loc[48];
    snprintf(loc, sizeof(loc), "%s-d", tag);
    declare_location(loc, 5);
    struct run runs[N_REDELIVERED];
    make_runs(runs, N_REDELIVERED, loc, t_ping, def_ping, 0);
    mongoc_client_t *c = rp_mongo_acquire(mongo);
    mongoc_collection_t *coll = rp_mongo_collection(mongo, c, "results");
    for (size_t i = 0; i < N_REDELIVERED; i += 2) {
        bson_t *d = BCON_NEW("_id", BCON_UTF8(runs[i].id), "project_id", BCON_UTF8(project_id),
                             "location", BCON_UTF8(loc), "status", BCON_UTF8("failed"), "stored_by",
                             BCON_UTF8("an earlier delivery"), "duration_ms", BCON_DOUBLE(7.0),
                             "steps", "[", "]");
        bson_error_t be;
        if (!mongoc_collection_insert_one(coll, d, NULL, NULL, &be))
            fail_msg("inserting a stored result: %s", be.message);
        bson_destroy(d);
    }
    mongoc_collection_destroy(coll);
    rp_mongo_release(mongo, c);

    struct wopts o = {.location = loc};
    pid_t w = start_worker(&o);
    int wi = n_procs - 1;
    double t0 = now_s();
    publish(runs, N_REDELIVERED, N_REDELIVERED, loc); /* one message: the whole batch */
    while (finished_at(loc) < N_REDELIVERED && now_s() - t0 < 60)
        pump_events(100);
    double took = now_s() - t0;
    pump_events(500);
    size_t ev, dbl;
    count_events(runs, N_REDELIVERED, &ev, &dbl);
    const char *p[] = {project_id, loc};
    long failed = qlong("SELECT count(*) FROM runs WHERE project_id = $1 AND location = $2 AND "
                        "status = 'failed'",
                        2, p);
    long kept = 0;
    for (size_t i = 0; i < N_REDELIVERED; i++) {
        bson_t *d = result_doc(runs[i].id);
        assert_non_null(d);
        const char *by = doc_str(d, "stored_by");
        if (i % 2 == 0) {
            assert_non_null(by); /* the first result, not replaced */
            kept++;
        } else {
            assert_null(by);
            assert_string_equal(doc_str(d, "status"), "passed");
        }
        bson_destroy(d);
    }
    char *log = slurp(logs[wi]);
    long adopted = 0;
    for (const char *x = log; x && (x = strstr(x, "already stored by an earlier")); x++)
        adopted++;
    free(log);
    fprintf(stderr,
            "pipeline worker: redelivered batch: finished=%ld/%d in %.1fs kept_stored=%ld "
            "failed_from_stored=%ld results=%ld events=%zu doubled=%zu adopted_per_log=%ld\n",
            finished_at(loc), N_REDELIVERED, took, kept, failed, results_where(loc, NULL), ev, dbl,
            adopted);
    assert_int_equal(adopted, N_REDELIVERED / 2); /* only the duplicates were read back */
    assert_int_equal(finished_at(loc), N_REDELIVERED);
    assert_int_equal(kept, N_REDELIVERED / 2);
    assert_int_equal(failed, N_REDELIVERED / 2); /* the status follows the stored result */
    assert_int_equal(results_where(loc, NULL), N_REDELIVERED);
    assert_int_equal(ev, N_REDELIVERED);
    assert_int_equal(dbl, 0);
    assert_int_equal(stop_worker(w), 0);
    delete_location(loc);
}

/* ---- (e) a suspect that cannot run alone ------------------------------------------------------
 */

/* A redelivered job whose run is `running` (a worker died on it) waits to run alone; if this
 * worker holds something that does not finish (here: a run of five 9-second requests), the
 * suspect runs beside it after 30 s instead of waiting without bound. */
static void test_suspect_overdue(void **state)
{
    (void)state;
    char loc[48], queue[96], def_hold[512], t_hold[RP_UUID_LEN + 1];
    snprintf(loc, sizeof(loc), "%s-e", tag);
    snprintf(queue, sizeof(queue), "%s.%s", RP_AMQP_JOBS_EXCHANGE, loc);
    declare_location(loc, 5);
    snprintf(def_hold, sizeof(def_hold),
             "{\"name\": \"hold\", \"steps\": [{\"request\": {\"url\": \"${base}/delay/9\"}}, "
             "{\"request\": {\"url\": \"${base}/delay/9\"}}, {\"request\": {\"url\": "
             "\"${base}/delay/9\"}}, {\"request\": {\"url\": \"${base}/delay/9\"}}, "
             "{\"request\": {\"url\": \"${base}/delay/9\"}}]}");
    add_test("hold", def_hold, t_hold);
    struct run hold, sus;
    make_runs(&hold, 1, loc, t_hold, def_hold, 0);
    make_runs(&sus, 1, loc, t_ping, def_ping, 0);
    publish(&hold, 1, 1, loc);
    publish(&sus, 1, 1, loc);
    /* both delivered once and returned (as when a worker dies), the suspect's run `running` */
    struct rp_amqp_consumer *c = NULL;
    struct rp_error e;
    assert_int_equal(rp_amqp_consumer_new(amqp_url, queue, 2, NULL, &c, &e), RP_OK);
    struct rp_amqp_delivery *d[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++)
        for (double t0 = now_s(); !d[i] && now_s() - t0 < 10;)
            if (rp_amqp_consumer_next(c, 200, &d[i], &e) != RP_OK)
                d[i] = NULL;
    assert_non_null(d[0]);
    assert_non_null(d[1]);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rp_amqp_reject(c, d[i], 1, &e), RP_OK);
        rp_amqp_delivery_free(d[i]);
    }
    rp_amqp_consumer_free(c);
    const char *ps[] = {sus.id};
    q0("UPDATE runs SET status = 'running', attempts = 1, started_at = now() WHERE id = $1", 1, ps);

    struct wopts o = {.location = loc};
    double t0 = now_s();
    pid_t w = start_worker(&o);
    int wi = n_procs - 1;
    const char *ph[] = {hold.id};
    while (qlong("SELECT count(*) FROM runs WHERE id = $1 AND status IN ('passed', 'failed', "
                 "'error')",
                 1, ps) == 0 &&
           now_s() - t0 < 60)
        pump_events(200);
    double sus_s = now_s() - t0;
    long hold_open = qlong("SELECT count(*) FROM runs WHERE id = $1 AND status = 'running'", 1, ph);
    long sus_attempts = qlong("SELECT attempts FROM runs WHERE id = $1", 1, ps);
    while (finished_at(loc) < 2 && now_s() - t0 < 90)
        pump_events(200);
    int waited = log_has(wi, "wait to run alone");
    int beside = log_has(wi, "could not run alone for 30 s");
    fprintf(stderr,
            "pipeline worker: suspect beside a held run: suspect finished after %.1fs "
            "(attempts %ld), the held run still running then=%ld; logged waiting=%d beside=%d; "
            "finished=%ld/2\n",
            sus_s, sus_attempts, hold_open, waited, beside, finished_at(loc));
    assert_true(sus_s >= 29.0 && sus_s < 45.0);
    assert_int_equal(hold_open, 1);
    assert_int_equal(sus_attempts, 2);
    assert_true(waited);
    assert_true(beside);
    assert_int_equal(finished_at(loc), 2);
    assert_int_equal(stop_worker(w), 0);
    delete_location(loc);
}

/* ---- (f) a writer stuck in a call ----------------------------------------------------------
 */

/* mongo_url with its (first) host:port replaced by 127.0.0.1:port. New string. */
static char *url_via(const char *url, unsigned short port)
{
    const char *h = strstr(url, "://");
    assert_non_null(h);
    h += 3;
    size_t hl = strcspn(h, "/?");
    return rp_xasprintf("%.*s127.0.0.1:%u%s", (int)(h - url), url, port, h + hl);
}

/* Where pg_url's port=N starts, and its length. */
static const char *pg_port(size_t *len)
{
    const char *p = strstr(pg_url, "port=");
    assert_non_null(p);
    p += 5;
    *len = strspn(p, "0123456789");
    return p;
}

/* pg_url's server as a URL, for the relay. New string. */
static char *pg_target(void)
{
    size_t n;
    const char *p = pg_port(&n);
    return rp_xasprintf("postgresql://127.0.0.1:%.*s/", (int)n, p);
}

/* pg_url (a conninfo) with its port replaced by `port`. New string. */
static char *pg_via(unsigned short port)
{
    size_t n;
    const char *p = pg_port(&n);
    return rp_xasprintf("%.*s%u%s", (int)(p - pg_url), pg_url, port, p + n);
}

/* A call of the worker does not come back: a relay between the worker and one server (MongoDB,
 * or PostgreSQL when `pg_side`) swallows the server's replies from the second run on, while
 * the connections stay up; the stall limit is 2 s. /healthz says which thread is stuck in
 * what; one stall limit later the worker exits with code 1, so that its job goes back to the
 * broker, and the next worker finishes the run. */
static void stuck_call(const char *suffix, int pg_side, const char *thread, const char *doing)
{
    char loc[48];
    snprintf(loc, sizeof(loc), "%s-%s", tag, suffix);
    declare_location(loc, 5);
    char *via = NULL;
    struct tcp_relay *relay = NULL;
    struct wopts o = {.location = loc, .stall = "2s"};
    if (pg_side) {
        char *target = pg_target();
        relay = tcp_relay_start(target);
        free(target);
        assert_non_null(relay);
        via = pg_via(tcp_relay_port(relay));
        o.pg_url = via;
    } else {
        relay = tcp_relay_start(mongo_url);
        assert_non_null(relay);
        via = url_via(mongo_url, tcp_relay_port(relay));
        o.mongo_url = via;
    }
    pid_t w = start_worker(&o);
    int wi = n_procs - 1;
    struct run first, lost;
    make_runs(&first, 1, loc, t_ping, def_ping, 0);
    make_runs(&lost, 1, loc, t_ping, def_ping, 0);
    double t0 = now_s();
    publish(&first, 1, 1, loc);
    while (finished_at(loc) < 1 && now_s() - t0 < 30)
        pump_events(100);
    assert_int_equal(finished_at(loc), 1);
    struct rp_buf b;
    assert_int_equal(http_get(wi, "/healthz", &b), 200);
    rp_buf_cleanup(&b);

    tcp_relay_swallow(relay, 1); /* from now on the server's replies are lost */
    t0 = now_s();
    publish(&lost, 1, 1, loc);
    double stalled_at = -1, live_gauge = -1;
    char reason[512] = "";
    while (now_s() - t0 < 20) {
        pump_events(200);
        if (http_get(wi, "/healthz", &b) == 503) {
            const char *body = strstr(b.data, "\r\n\r\n");
            snprintf(reason, sizeof(reason), "%s", body ? body + 4 : b.data);
            reason[strcspn(reason, "\r\n")] = '\0';
            rp_buf_cleanup(&b);
            stalled_at = now_s() - t0;
            live_gauge = metric(wi, "rampart_live");
            break;
        }
        rp_buf_cleanup(&b);
    }
    int st = 0;
    pid_t got = 0;
    while ((got = waitpid(w, &st, WNOHANG)) == 0 && now_s() - t0 < 40)
        pump_events(200);
    double exited_at = now_s() - t0;
    if (got == w)
        forget_proc(w);
    else
        kill(w, SIGKILL); /* the teardown reaps it */
    int code = got == w && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    char stalled_line[96];
    snprintf(stalled_line, sizeof(stalled_line), "stalled: the %s", thread);
    int logged = log_has(wi, stalled_line);
    int fatal = log_has(wi, "still stalled 2 s later");

    tcp_relay_swallow(relay, 0);
    struct wopts o2 = {.location = loc};
    pid_t w2 = start_worker(&o2);
    while (finished_at(loc) < 2 && now_s() - t0 < 100)
        pump_events(200);
    double stored_at = now_s() - t0;
    const char *pl[] = {lost.id};
    long attempts = qlong("SELECT attempts FROM runs WHERE id = $1", 1, pl);
    fprintf(stderr,
            "pipeline worker: %s replies lost: /healthz 503 after %.1fs (rampart_live %.0f): %s; "
            "exited with %d after %.1fs (logged stalled=%d fatal=%d); the run stored by the next "
            "worker after %.1fs, attempts %ld\n",
            pg_side ? "PostgreSQL" : "MongoDB", stalled_at, live_gauge, reason, code, exited_at,
            logged, fatal, stored_at, attempts);
    assert_true(stalled_at > 0 && stalled_at < 20);
    assert_non_null(strstr(reason, "\"status\":\"stalled\""));
    assert_non_null(strstr(reason, thread));
    assert_non_null(strstr(reason, doing));
    assert_true(live_gauge == 0);
    assert_int_equal(code, 1);
    assert_true(exited_at < 30); /* before the writer's own 30 s reply bound */
    assert_true(logged);
    assert_true(fatal);
    assert_int_equal(finished_at(loc), 2);
    assert_int_equal(attempts, 2);
    assert_int_equal(stop_worker(w2), 0);
    tcp_relay_stop(relay);
    free(via);
    delete_location(loc);
}

/* (f) MongoDB's replies lost: the writer's insert does not come back (the stall limit, 2 s,
 * is far below the writer's 30 s reply bound). */
static void test_lost_reply(void **state)
{
    (void)state;
    stuck_call("f", 0, "writer thread", "storing results in MongoDB");
}

/* (h) PostgreSQL's replies lost: the exec thread's UPDATE does not come back, and neither does
 * the readiness check's SELECT 1 on the main thread (libpq has no bound for a reply on a
 * connection that stays up). The liveness check has a thread of its own, so the stall is
 * seen and acted on all the same; behind the readiness check it never was. */
static void test_lost_pg_reply(void **state)
{
    (void)state;
    stuck_call("h", 1, "exec thread", "recording the start of runs in PostgreSQL");
}

/* ---- set-up --------------------------------------------------------------------------------- */

static int teardown(void **state)
{
    for (int i = 0; i < n_procs; i++)
        if (procs[i] > 0) {
            kill(procs[i], SIGKILL);
            waitpid(procs[i], NULL, 0);
            fprintf(stderr, "worker log kept: %s\n", logs[i]);
            procs[i] = 0;
        }
    return 0;
}

static int group_teardown(void **state)
{
    teardown(state);
    rp_amqp_consumer_free(events);
    if (events_queue[0])
        delete_queue(events_queue);
    if (project_id[0]) {
        const char *p[] = {project_id};
        q0("DELETE FROM projects WHERE id = $1", 1, p);
        mongoc_client_t *c = rp_mongo_acquire(mongo);
        mongoc_collection_t *coll = rp_mongo_collection(mongo, c, "results");
        bson_t f = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&f, "project_id", project_id);
        bson_error_t be;
        if (!mongoc_collection_delete_many(coll, &f, NULL, NULL, &be))
            fprintf(stderr, "deleting results: %s\n", be.message);
        bson_destroy(&f);
        mongoc_collection_destroy(coll);
        rp_mongo_release(mongo, c);
    }
    if (httpbin_pid > 0) {
        kill(httpbin_pid, SIGTERM);
        waitpid(httpbin_pid, NULL, 0);
    }
    rp_mongo_close(mongo);
    rp_pg_close(pg);
    free(evs);
    return 0;
}

static long long count_docs(mongoc_collection_t *c)
{
    bson_error_t e;
    bson_t q = BSON_INITIALIZER;
    int64_t n = mongoc_collection_count_documents(c, &q, NULL, NULL, NULL, &e);
    bson_destroy(&q);
    if (n < 0)
        fail_msg("count: %s", e.message);
    return n;
}

static void insert_result(mongoc_collection_t *c, const char *id, int64_t fire_ms)
{
    bson_error_t e;
    bson_t *d = BCON_NEW("_id", BCON_UTF8(id), "fire_time", BCON_DATE_TIME(fire_ms));
    if (!mongoc_collection_insert_one(c, d, NULL, NULL, &e))
        fail_msg("insert %s: %s", id, e.message);
    bson_destroy(d);
}

/* (g) The retention delete runs on a thread of its own (the writer never waits for it): it
 * deletes the results past the retention and keeps the rest; and while a relay swallows
 * MongoDB's replies to it, a stop does not wait past its own short wait. */
static void test_retention(void **state)
{
    (void)state;
    const char *h = strstr(mongo_url, "://");
    assert_non_null(h);
    size_t hl = strcspn(h + 3, "/?");
    char *url = rp_xasprintf("%.*s/rpret-%s", (int)(h + 3 + hl - mongo_url), mongo_url, tag);
    struct rp_mongo *m = NULL;
    struct rp_error e = {0};
    if (rp_mongo_open(url, 5000, 0, &m, &e) != RP_OK)
        fail_msg("%s", e.msg);
    mongoc_client_t *cl = rp_mongo_acquire(m);
    mongoc_collection_t *c = rp_mongo_collection(m, cl, "results");
    int64_t now = rp_now_unix_ms(), day = 86400000LL;
    insert_result(c, "old-1", now - 3 * day);
    insert_result(c, "old-2", now - 5 * day);
    insert_result(c, "new-1", now - day / 2);
    struct wrk_config cfg = {.mongo_url = url, .retention_days = 2, .retention_first_ms = 1};
    double t0 = now_s();
    struct wrk_retention *r = wrk_retention_start(&cfg);
    assert_non_null(r);
    while (count_docs(c) > 1 && now_s() - t0 < 20)
        usleep(100000);
    double deleted_at = now_s() - t0;
    long long left = count_docs(c);
    double s0 = now_s();
    wrk_retention_stop(r, 1000);
    double stopped_in = now_s() - s0;

    /* a delete whose reply never comes: the stop waits 300 ms, then leaves it */
    insert_result(c, "old-3", now - 3 * day);
    struct tcp_relay *relay = tcp_relay_start(mongo_url);
    assert_non_null(relay);
    char *via_host = url_via(mongo_url, tcp_relay_port(relay));
    size_t vl = strcspn(strstr(via_host, "://") + 3, "/?");
    char *via = rp_xasprintf("%.*s/rpret-%s", (int)(strstr(via_host, "://") + 3 + vl - via_host),
                             via_host, tag);
    tcp_relay_swallow(relay, 1);
    cfg.mongo_url = via;
    struct wrk_retention *r2 = wrk_retention_start(&cfg);
    assert_non_null(r2);
    usleep(1500 * 1000); /* its delete is sent, and waits */
    s0 = now_s();
    wrk_retention_stop(r2, 300);
    double left_in = now_s() - s0;
    tcp_relay_stop(relay); /* its delete fails now, and the thread ends on its own */
    usleep(500 * 1000);
    fprintf(stderr,
            "pipeline worker: retention (2 days): 2 old results deleted after %.1fs, %lld "
            "left; stopped in %.3fs; with MongoDB's replies lost, a stop came back after %.3fs\n",
            deleted_at, left, stopped_in, left_in);
    assert_int_equal(left, 1);
    bson_t q = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&q, "_id", "new-1");
    bson_error_t be;
    assert_int_equal(mongoc_collection_count_documents(c, &q, NULL, NULL, NULL, &be), 1);
    bson_destroy(&q);
    assert_true(stopped_in < 1.0);
    assert_true(left_in < 1.0);
    char *dbname = rp_xasprintf("rpret-%s", tag);
    mongoc_database_t *db = mongoc_client_get_database(cl, dbname);
    bson_error_t de;
    if (!mongoc_database_drop(db, &de))
        fprintf(stderr, "pipeline worker: dropping %s: %s\n", dbname, de.message);
    mongoc_database_destroy(db);
    free(dbname);
    mongoc_collection_destroy(c);
    rp_mongo_release(m, cl);
    rp_mongo_close(m);
    free(via);
    free(via_host);
    free(url);
}

int main(void)
{
    pg_url = getenv("RAMPART_TEST_PG");
    amqp_url = getenv("RAMPART_TEST_AMQP");
    mongo_url = getenv("RAMPART_TEST_MONGO");
    if (!pg_url || !amqp_url || !mongo_url) {
        fprintf(stderr, "it_pipeline_worker: RAMPART_TEST_PG, RAMPART_TEST_AMQP and "
                        "RAMPART_TEST_MONGO must be set (scripts/servers.sh env)\n");
        return 1;
    }
    if (access(WORKER_BIN, X_OK) != 0) {
        fprintf(stderr, "it_pipeline_worker: %s is not built\n", WORKER_BIN);
        return 1;
    }
    rp_log_init("it_pipeline_worker", "test", RP_LOG_WARN);
    char id[RP_UUID_LEN + 1];
    rp_uuid_v7(id);
    snprintf(tag, sizeof(tag), "itw-%.8s%.4s", id + 24, id + 9);
    snprintf(secret, sizeof(secret), "s3cr3t-%s-%.8s", tag, id + 24);
    struct rp_error e;
    if (rp_pg_open(pg_url, &pg, &e) != RP_OK || rp_pg_migrate(pg, NULL, NULL, &e) != RP_OK ||
        rp_mongo_open(mongo_url, 5000, 0, &mongo, &e) != RP_OK) {
        fprintf(stderr, "it_pipeline_worker: %s\n", e.msg);
        return 1;
    }
    if (start_httpbin() != 0)
        return 1;
    /* the test's own view of the events: a queue bound to every run.finished */
    snprintf(events_queue, sizeof(events_queue), "it-pipeline-worker.%s.events", tag);
    struct rp_amqp_admin *adm = NULL;
    if (rp_amqp_admin_open(amqp_url, NULL, &adm, &e) != RP_OK ||
        rp_amqp_declare_topology(adm, NULL, 0, NULL, &e) != RP_OK ||
        rp_amqp_declare_queue(adm, events_queue, NULL, &e) != RP_OK ||
        rp_amqp_bind_queue(adm, events_queue, RP_AMQP_EVENTS_EXCHANGE, "run.finished.#", &e) !=
            RP_OK ||
        rp_amqp_consumer_new(amqp_url, events_queue, 500, NULL, &events, &e) != RP_OK) {
        fprintf(stderr, "it_pipeline_worker: %s\n", e.msg);
        rp_amqp_admin_close(adm);
        return 1;
    }
    rp_amqp_admin_close(adm);
    setup_data();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_clean, teardown),
        cmocka_unit_test_teardown(test_poison, teardown),
        cmocka_unit_test_teardown(test_drain, teardown),
        cmocka_unit_test_teardown(test_redelivered_batch, teardown),
        cmocka_unit_test_teardown(test_suspect_overdue, teardown),
        cmocka_unit_test_teardown(test_lost_reply, teardown),
        cmocka_unit_test_teardown(test_lost_pg_reply, teardown),
        cmocka_unit_test(test_retention),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
