/* Integration tests of the test engine (engine.c, http.c, result.c) against a real HTTP server:
 * Debian's python3-httpbin, started here on a free loopback port and killed at the end. Every
 * test runs definitions through rp_test_parse and the engine, then checks the result document
 * the way a user reads it: statuses, messages, captured values, redaction of secrets, body caps,
 * and that 50 runs in a row reuse connections. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#include <cmocka.h>

#include "rampart/mem.h"
#include "worker.h"

#define PYTHON "/usr/bin/python3" /* Debian's, which has httpbin (a pyenv python3 may not) */

static pid_t server_pid;
static int server_port;
static char base[64];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A loopback port nobody listens on (bound, then closed). */
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

static int start_server(void **state)
{
    if (access(PYTHON, X_OK) != 0 || system(PYTHON " -c 'import httpbin' >/dev/null 2>&1") != 0) {
        fprintf(stderr,
                "it_worker_engine: %s with httpbin is required "
                "(apt-get install python3-httpbin)\n",
                PYTHON);
        return -1;
    }
    server_port = free_port();
    char port[16], log[128];
    snprintf(port, sizeof(port), "%d", server_port);
    snprintf(log, sizeof(log), "/tmp/it_worker_engine.httpbin.%d.log", (int)getpid());
    server_pid = fork();
    if (server_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* no stray server if the test crashes */
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(PYTHON, "python3", "-m", "httpbin.core", "--port", port, "--host", "127.0.0.1",
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300 && !port_open(server_port); i++)
        usleep(50 * 1000);
    if (!port_open(server_port)) {
        fprintf(stderr, "it_worker_engine: httpbin did not start on port %d (log: %s)\n",
                server_port, log);
        return -1;
    }
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", server_port);
    fprintf(stderr, "httpbin on %s (pid %d, log %s)\n", base, (int)server_pid, log);
    return 0;
}

static int stop_server(void **state)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
    return 0;
}

/* ---- running definitions ------------------------------------------------------------------ */

struct collect {
    bson_t **docs;
    size_t n;
};

static void on_done(void *ud, const char *run_id, bson_t *result)
{
    struct collect *c = ud;
    c->docs[c->n++] = result;
}

static struct rp_test *parse(const char *json)
{
    struct rp_test *t = NULL;
    struct rp_error err = {0};
    if (rp_test_parse(json, strlen(json), &t, &err) != RP_OK)
        fail_msg("definition does not parse: %s\n%s", err.msg, json);
    return t;
}

static struct rp_vars *base_vars(void)
{
    struct rp_vars *v = rp_vars_new();
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_ENVIRONMENT, "base", base, 0), RP_OK);
    return v;
}

/* Run `json` once with `vars` (NULL: just ${base}) on an engine with `body_cap` (0: default). */
static bson_t *run_with(const char *json, struct rp_vars *vars, size_t body_cap)
{
    struct rp_test *t = parse(json);
    struct rp_vars *own = vars ? NULL : base_vars();
    struct wrk_engine *e = NULL;
    struct wrk_engine_opts o = {.body_cap = body_cap};
    struct rp_error err = {0};
    bson_t *doc = NULL;
    struct collect c = {&doc, 0};
    assert_int_equal(wrk_engine_new(&o, &e, &err), RP_OK);
    assert_int_equal(wrk_engine_submit(e, t, vars ? vars : own, "run-1", on_done, &c, &err), RP_OK);
    double t0 = now_s();
    while (wrk_engine_run(e, 1000) > 0 && now_s() - t0 < 30)
        ;
    assert_int_equal(wrk_engine_in_flight(e), 0);
    assert_int_equal(c.n, 1);
    wrk_engine_free(e);
    rp_vars_free(own);
    rp_test_free(t);
    return doc;
}

static bson_t *run(const char *json)
{
    return run_with(json, NULL, 0);
}

static char *to_json(const bson_t *doc)
{
    return bson_as_relaxed_extended_json(doc, NULL);
}

static void expect_status(const bson_t *doc, const char *status)
{
    const char *got = rp_doc_str(doc, "status");
    if (!got || strcmp(got, status) != 0) {
        char *j = to_json(doc);
        fail_msg("run status: expected %s, got %s\n%s", status, got ? got : "(none)", j);
    }
}

static const char *str_at(const bson_t *doc, const char *path)
{
    const char *s = rp_doc_str(doc, path);
    if (!s) {
        char *j = to_json(doc);
        fail_msg("%s: no string in the result\n%s", path, j);
    }
    return s;
}

static int has(const bson_t *doc, const char *path)
{
    bson_iter_t it, d;
    return bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &d);
}

static size_t n_steps(const bson_t *doc)
{
    bson_iter_t it, arr;
    size_t n = 0;
    if (bson_iter_init_find(&it, doc, "steps") && bson_iter_recurse(&it, &arr))
        while (bson_iter_next(&arr))
            n++;
    return n;
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_capture_then_use(void **state)
{
    bson_t *r = run("{\"name\": \"capture\", \"steps\": ["
                    " {\"name\": \"create\", \"request\": {\"method\": \"POST\","
                    "   \"url\": \"${base}/anything\", \"json\": {\"user\": \"alice\", \"n\": 3}},"
                    "  \"expect\": {\"status\": 200},"
                    "  \"capture\": {\"who\": \"$.json.user\", \"n\": \"$.json.n\"},"
                    "  \"assert\": [\"$.json.n == 3\", \"header.Content-Type contains 'json'\"]},"
                    " {\"name\": \"use\", \"request\": {\"url\": \"${base}/anything/${who}\","
                    "   \"headers\": {\"X-Who\": \"${who}-${n}\"}},"
                    "  \"assert\": [\"$.url contains '/anything/alice'\","
                    "              \"$.headers['X-Who'] == 'alice-3'\", \"time < 5000\"]}]}");
    expect_status(r, "passed");
    assert_int_equal(n_steps(r), 2);
    assert_string_equal(str_at(r, "_id"), "run-1");
    assert_string_equal(str_at(r, "test"), "capture");
    assert_string_equal(str_at(r, "steps.0.captures.0.name"), "who");
    assert_string_equal(str_at(r, "steps.0.captures.0.value"), "alice");
    assert_true(rp_doc_num(r, "steps.0.captures.1.value", 0) == 3);
    assert_string_equal(str_at(r, "steps.0.request.method"), "POST");
    assert_non_null(strstr(str_at(r, "steps.0.request.body"), "\"alice\""));
    assert_non_null(strstr(str_at(r, "steps.1.request.url"), "/anything/alice"));
    assert_string_equal(str_at(r, "steps.1.request.headers.0.value"), "alice-3");
    assert_true(rp_doc_num(r, "steps.1.response.status", 0) == 200);
    assert_true(rp_doc_num(r, "steps.1.timings.total", 0) > 0);
    assert_true(rp_doc_num(r, "steps.1.timings.first_byte", 0) > 0);
    assert_true(rp_doc_num(r, "counts.assertions", 0) == 6); /* 1 status + 2 + 3 */
    assert_true(rp_doc_num(r, "counts.failed", -1) == 0);
    assert_true(rp_doc_num(r, "duration_ms", 0) > 0);
    const char *started = str_at(r, "started_at");
    assert_int_equal(strlen(started), 24); /* 2026-01-02T03:04:05.678Z */
    assert_int_equal(started[23], 'Z');
    assert_true(rp_doc_bool(r, "steps.1.assertions.0.passed", 0));
    assert_string_equal(str_at(r, "steps.1.assertions.0.severity"), "error");
    assert_non_null(rp_doc_str(r, "steps.1.response.headers.0.name"));
    bson_destroy(r);
}

static void test_each_over_array(void **state)
{
    bson_t *r = run("{\"name\": \"each\", \"steps\": ["
                    " {\"name\": \"list\", \"request\": {\"method\": \"POST\","
                    "   \"url\": \"${base}/anything\","
                    "   \"json\": {\"items\": [{\"id\": 7}, {\"id\": 8}, {\"id\": 9}]}}},"
                    " {\"name\": \"get\", \"each\": \"$.json.items\", \"as\": \"it\","
                    "  \"request\": {\"url\": \"${base}/anything/${it.id}\"},"
                    "  \"assert\": [\"$.url contains '/anything/'\"]},"
                    " {\"name\": \"none\", \"each\": \"$.json.nothing_here\","
                    "  \"request\": {\"url\": \"${base}/get\"}}]}");
    /* each over a missing value is an error: the run says which step and why */
    expect_status(r, "error");
    assert_int_equal(n_steps(r), 5); /* list + 3 iterations + the failing each */
    for (int i = 0; i < 3; i++) {
        char path[64], want[32];
        snprintf(path, sizeof(path), "steps.%d.request.url", i + 1);
        snprintf(want, sizeof(want), "/anything/%d", 7 + i);
        assert_non_null(strstr(str_at(r, path), want));
        snprintf(path, sizeof(path), "steps.%d.iteration", i + 1);
        assert_true(rp_doc_num(r, path, -1) == i);
    }
    assert_non_null(strstr(str_at(r, "error"), "expected an array"));
    assert_non_null(strstr(str_at(r, "error"), "step 3"));
    bson_destroy(r);

    r = run("{\"name\": \"each empty\", \"steps\": ["
            " {\"request\": {\"method\": \"POST\", \"url\": \"${base}/anything\","
            "   \"json\": {\"items\": []}}},"
            " {\"name\": \"get\", \"each\": \"$.json.items\","
            "  \"request\": {\"url\": \"${base}/anything/${item}\"}}]}");
    expect_status(r, "passed");
    assert_true(rp_doc_bool(r, "steps.1.skipped", 0));
    bson_destroy(r);
}

static void test_if(void **state)
{
    bson_t *r = run("{\"name\": \"if\", \"steps\": ["
                    " {\"name\": \"first\", \"request\": {\"method\": \"POST\","
                    "   \"url\": \"${base}/anything\", \"json\": {\"show\": {\"title\": \"x\"}}}},"
                    " {\"name\": \"when ok\", \"if\": \"$.json.show.title exists\","
                    "  \"request\": {\"url\": \"${base}/status/404\"}},"
                    " {\"name\": \"when 200\", \"if\": \"status == 200\","
                    "  \"request\": {\"url\": \"${base}/get\"}},"
                    " {\"name\": \"when 404\", \"if\": \"status == 404\","
                    "  \"request\": {\"url\": \"${base}/get\"}}]}");
    expect_status(r, "passed");
    assert_int_equal(n_steps(r), 4);
    assert_false(rp_doc_bool(r, "steps.1.skipped", 0));
    assert_true(rp_doc_num(r, "steps.1.response.status", 0) == 404);
    /* the previous response (404) decides: "status == 200" is false, "== 404" true */
    assert_true(rp_doc_bool(r, "steps.2.skipped", 0));
    assert_false(has(r, "steps.2.request"));
    assert_false(rp_doc_bool(r, "steps.3.skipped", 0));
    assert_true(rp_doc_num(r, "steps.3.response.status", 0) == 200);
    bson_destroy(r);
}

static void test_expect_status_list(void **state)
{
    bson_t *r =
        run("{\"name\": \"ok\", \"steps\": [{\"request\": {\"url\": \"${base}/status/201\"},"
            " \"expect\": {\"status\": [200, 201]}}]}");
    expect_status(r, "passed");
    assert_true(rp_doc_bool(r, "steps.0.assertions.0.passed", 0));
    bson_destroy(r);
    r = run("{\"name\": \"bad\", \"steps\": [{\"request\": {\"url\": \"${base}/status/503\"},"
            " \"expect\": {\"status\": [200, \"3xx\"]}}]}");
    expect_status(r, "failed");
    assert_false(rp_doc_bool(r, "steps.0.assertions.0.passed", 1));
    assert_string_equal(str_at(r, "steps.0.assertions.0.message"),
                        "status: expected 200 or 3xx, got 503");
    assert_string_equal(str_at(r, "steps.0.assertions.0.actual"), "503");
    assert_true(rp_doc_num(r, "counts.failed", 0) == 1);
    bson_destroy(r);
}

static void test_severity(void **state)
{
    bson_t *r = run("{\"name\": \"warn\", \"steps\": [{\"request\": {\"url\": \"${base}/get\"},"
                    " \"assert\": [\"status == 200\","
                    "  {\"that\": \"time < 0\", \"severity\": \"warning\"}]}]}");
    expect_status(r, "passed"); /* a warning never fails the run */
    assert_true(rp_doc_num(r, "counts.warnings", 0) == 1);
    assert_true(rp_doc_num(r, "counts.failed", -1) == 0);
    assert_string_equal(str_at(r, "steps.0.assertions.1.severity"), "warning");
    assert_false(rp_doc_bool(r, "steps.0.assertions.1.passed", 1));
    bson_destroy(r);
    r = run("{\"name\": \"err\", \"steps\": [{\"request\": {\"url\": \"${base}/get\"},"
            " \"assert\": [\"status == 201\", {\"that\": \"status == 200\"}]}]}");
    expect_status(r, "failed");
    assert_true(rp_doc_num(r, "counts.failed", 0) == 1);
    assert_non_null(strstr(str_at(r, "steps.0.assertions.0.message"), "201"));
    bson_destroy(r);
}

static void test_stop(void **state)
{
    /* `stop` on an assertion: the later steps do not run and are listed as skipped */
    bson_t *r =
        run("{\"name\": \"stop\", \"steps\": ["
            " {\"name\": \"a\", \"request\": {\"url\": \"${base}/status/500\"},"
            "  \"assert\": [{\"that\": \"status == 200\", \"stop\": true}, \"time < 60000\"]},"
            " {\"name\": \"b\", \"request\": {\"url\": \"${base}/get\"}}]}");
    expect_status(r, "failed");
    assert_int_equal(n_steps(r), 2);
    assert_true(rp_doc_num(r, "counts.assertions", 0) == 2); /* the step finishes its checks */
    assert_true(rp_doc_bool(r, "steps.1.skipped", 0));
    bson_destroy(r);
    /* a warning with `stop` ends the test without failing it */
    r = run(
        "{\"name\": \"stop warn\", \"steps\": ["
        " {\"request\": {\"url\": \"${base}/get\"},"
        "  \"assert\": [{\"that\": \"status == 204\", \"severity\": \"warning\", \"stop\": true}]},"
        " {\"request\": {\"url\": \"${base}/get\"}}]}");
    expect_status(r, "passed");
    assert_true(rp_doc_bool(r, "steps.1.skipped", 0));
    bson_destroy(r);
    /* stop_on_failure: any error-severity failure of the step ends the test */
    r = run("{\"name\": \"sof\", \"steps\": ["
            " {\"stop_on_failure\": true, \"request\": {\"url\": \"${base}/get\"},"
            "  \"assert\": [\"status == 201\"]},"
            " {\"request\": {\"url\": \"${base}/get\"}}]}");
    expect_status(r, "failed");
    assert_true(rp_doc_bool(r, "steps.1.skipped", 0));
    bson_destroy(r);
    /* without either, a failure does not stop the next step */
    r = run("{\"name\": \"go on\", \"steps\": ["
            " {\"request\": {\"url\": \"${base}/get\"}, \"assert\": [\"status == 201\"]},"
            " {\"request\": {\"url\": \"${base}/get\"}}]}");
    expect_status(r, "failed");
    assert_true(rp_doc_num(r, "steps.1.response.status", 0) == 200);
    bson_destroy(r);
}

static void test_redirects(void **state)
{
    bson_t *r =
        run("{\"name\": \"follow\", \"steps\": ["
            " {\"request\": {\"url\": \"${base}/redirect/1\"}, \"expect\": {\"status\": 200},"
            "  \"assert\": [\"$.url contains '/get'\"]}]}");
    expect_status(r, "passed");
    bson_destroy(r);
    r = run(
        "{\"name\": \"no follow\", \"steps\": ["
        " {\"request\": {\"url\": \"${base}/redirect/1\", \"follow_redirects\": false},"
        "  \"expect\": {\"status\": 302}, \"assert\": [\"header.Location contains '/get'\"]}]}");
    expect_status(r, "passed");
    bson_destroy(r);
    r = run("{\"name\": \"too many\", \"steps\": ["
            " {\"request\": {\"url\": \"${base}/redirect/3\", \"follow_redirects\": 2}}]}");
    expect_status(r, "error");
    assert_string_equal(str_at(r, "steps.0.error"), "too many redirects (more than 2)");
    bson_destroy(r);
}

static void test_timeout(void **state)
{
    double t0 = now_s();
    bson_t *r =
        run("{\"name\": \"slow\", \"steps\": ["
            " {\"name\": \"slow\", \"request\": {\"url\": \"${base}/delay/3\", \"timeout\": 500}},"
            " {\"request\": {\"url\": \"${base}/get\"}}]}");
    double secs = now_s() - t0;
    expect_status(r, "error");
    assert_string_equal(str_at(r, "steps.0.error"), "timed out after 500 ms");
    assert_string_equal(str_at(r, "error"), "step 1 (\"slow\"): timed out after 500 ms");
    assert_false(has(r, "steps.0.response"));
    assert_true(has(r, "steps.0.timings.total"));
    assert_true(rp_doc_bool(r, "steps.1.skipped", 0));
    assert_true(secs < 2.5);
    fprintf(stderr, "timeout: the run ended after %.2f s\n", secs);
    bson_destroy(r);
}

static void test_connection_refused(void **state)
{
    int port = free_port();
    char def[512];
    snprintf(def, sizeof(def),
             "{\"name\": \"closed\", \"steps\": [{\"request\": {\"url\": "
             "\"http://127.0.0.1:%d/get\"}}]}",
             port);
    bson_t *r = run(def);
    expect_status(r, "error");
    char want[128];
    snprintf(want, sizeof(want), "connection refused (127.0.0.1:%d)", port);
    assert_string_equal(str_at(r, "steps.0.error"), want);
    bson_destroy(r);
}

static void test_dns_failure(void **state)
{
    bson_t *r = run("{\"name\": \"dns\", \"steps\": [{\"request\": {\"url\": "
                    "\"http://no-such-host.invalid/get\"}}]}");
    expect_status(r, "error");
    assert_string_equal(str_at(r, "steps.0.error"), "could not resolve host no-such-host.invalid");
    bson_destroy(r);
}

static void test_render_error(void **state)
{
    bson_t *r = run("{\"name\": \"unknown var\", \"steps\": ["
                    " {\"request\": {\"url\": \"${base}/anything/${nope}\"}},"
                    " {\"request\": {\"url\": \"${base}/get\"}}]}");
    expect_status(r, "error");
    assert_non_null(strstr(str_at(r, "steps.0.error"), "nope"));
    assert_false(has(r, "steps.0.response"));
    assert_int_equal(n_steps(r), 2);
    assert_true(rp_doc_bool(r, "steps.1.skipped", 0));
    bson_destroy(r);
    /* a stop in the middle of `each`: the iterations so far, then the next steps skipped */
    r = run("{\"name\": \"each stop\", \"steps\": ["
            " {\"request\": {\"method\": \"POST\", \"url\": \"${base}/anything\","
            "   \"json\": {\"items\": [200, 500, 200]}}},"
            " {\"each\": \"$.json.items\", \"request\": {\"url\": \"${base}/status/${item}\"},"
            "  \"assert\": [{\"that\": \"status == 200\", \"stop\": true}]},"
            " {\"request\": {\"url\": \"${base}/get\"}}]}");
    expect_status(r, "failed");
    assert_int_equal(n_steps(r), 4); /* first, iterations 0 and 1, last skipped */
    assert_true(rp_doc_num(r, "steps.2.iteration", -1) == 1);
    assert_true(rp_doc_bool(r, "steps.3.skipped", 0));
    bson_destroy(r);
}

static void test_body_cap(void **state)
{
    /* text: /range/N sends N bytes of a-z */
    bson_t *r = run_with("{\"name\": \"cap\", \"steps\": [{\"request\": {\"url\": "
                         "\"${base}/range/5000\"}, \"assert\": [\"size == 5000\"]}]}",
                         NULL, 1000);
    expect_status(r, "passed");
    assert_true(rp_doc_bool(r, "steps.0.response.body_truncated", 0));
    assert_true(rp_doc_num(r, "steps.0.response.body_size", 0) == 5000);
    assert_int_equal(strlen(str_at(r, "steps.0.response.body")), 1000);
    assert_false(has(r, "steps.0.response.body_encoding"));
    bson_destroy(r);
    /* random bytes, streamed in chunks: not UTF-8, so stored base64 */
    r = run_with("{\"name\": \"cap bin\", \"steps\": [{\"request\": {\"url\": "
                 "\"${base}/stream-bytes/100000?seed=1&chunk_size=4096\"}}]}",
                 NULL, 3000);
    expect_status(r, "passed");
    assert_true(rp_doc_bool(r, "steps.0.response.body_truncated", 0));
    assert_true(rp_doc_num(r, "steps.0.response.body_size", 0) == 100000);
    assert_string_equal(str_at(r, "steps.0.response.body_encoding"), "base64");
    assert_int_equal(strlen(str_at(r, "steps.0.response.body")), 4000); /* 3000 bytes */
    bson_destroy(r);
    /* a small body under the cap is whole */
    r = run_with("{\"name\": \"small\", \"steps\": [{\"request\": {\"url\": "
                 "\"${base}/range/100\"}}]}",
                 NULL, 1000);
    assert_false(rp_doc_bool(r, "steps.0.response.body_truncated", 1));
    assert_int_equal(strlen(str_at(r, "steps.0.response.body")), 100);
    bson_destroy(r);
}

static void test_secrets_redacted(void **state)
{
    const char *secret = "s3cr3t-T0KEN-value", *late = "L4te-secret-xyz";
    struct rp_vars *v = base_vars();
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_ENVIRONMENT, "token", secret, 1), RP_OK);
    bson_t *r = run_with(
        "{\"name\": \"secrets\", \"steps\": ["
        " {\"name\": \"send\", \"request\": {\"method\": \"POST\","
        "   \"url\": \"${base}/anything?k=${token}\","
        "   \"headers\": {\"Authorization\": \"Bearer ${token}\"},"
        "   \"json\": {\"t\": \"${token}\", \"late\": \"L4te-secret-xyz\"}},"
        "  \"capture\": {\"echo\": \"$.json.t\", \"auth\": {\"from\": \"$.headers.Authorization\","
        "   \"secret\": true}},"
        "  \"assert\": [\"$.json.t == ${token}\", \"$.args.k == 'nope'\"]},"
        " {\"name\": \"form\", \"request\": {\"method\": \"POST\", \"url\": \"${base}/post\","
        "   \"form\": {\"a\": \"${auth}\", \"b\": \"x y\"}},"
        "  \"assert\": [\"$.form.a == ${auth}\", \"$.form.b == 'x y'\"]},"
        " {\"name\": \"late\", \"request\": {\"method\": \"POST\", \"url\": \"${base}/anything\","
        "   \"json\": {\"again\": \"${echo}\"}},"
        "  \"capture\": {\"lately\": {\"from\": \"$.json.again\", \"secret\": false},"
        "   \"hidden\": {\"from\": \"$.data\", \"secret\": true}}},"
        " {\"name\": \"late2\", \"request\": {\"method\": \"POST\", \"url\": \"${base}/anything\","
        "   \"headers\": {\"Content-Type\": \"text/plain\"}, \"body\": \"L4te-secret-xyz\"},"
        "  \"capture\": {\"late\": {\"from\": \"$.data\", \"secret\": true}}}]}",
        v, 0);
    char *j = to_json(r);
    expect_status(r, "failed"); /* $.args.k == 'nope' fails: its actual value is the secret */
    if (strstr(j, secret) || strstr(j, late))
        fail_msg("a secret appears in the result:\n%s", j);
    assert_non_null(strstr(j, "***"));
    assert_true(rp_doc_bool(r, "steps.1.assertions.0.passed", 0)); /* the form used ${auth} */
    assert_true(rp_doc_bool(r, "steps.1.assertions.1.passed", 0));
    assert_string_equal(str_at(r, "steps.0.request.headers.0.value"), "Bearer ***");
    assert_string_equal(str_at(r, "steps.1.request.body"), "a=***&b=x%20y");
    fprintf(stderr, "secrets: %zu bytes of result JSON, no secret in it\n", strlen(j));
    bson_free(j);
    bson_destroy(r);
    rp_vars_free(v);
}

static void test_concurrent_runs(void **state)
{
    enum { N = 200 };
    struct rp_test *t = parse("{\"name\": \"many\", \"steps\": ["
                              " {\"request\": {\"url\": \"${base}/get?i=1\"},"
                              "  \"assert\": [\"status == 200\", \"$.args.i == '1'\"]},"
                              " {\"request\": {\"url\": \"${base}/anything\"},"
                              "  \"assert\": [\"status == 200\"]}]}");
    struct rp_vars *v = base_vars();
    struct wrk_engine *e = NULL;
    struct wrk_engine_opts o = {.max_concurrent = N};
    struct rp_error err = {0};
    bson_t **docs = rp_xcalloc(N, sizeof(*docs));
    struct collect c = {docs, 0};
    assert_int_equal(wrk_engine_new(&o, &e, &err), RP_OK);
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof(id), "run-%d", i);
        assert_int_equal(wrk_engine_submit(e, t, v, id, on_done, &c, &err), RP_OK);
    }
    assert_int_equal(wrk_engine_in_flight(e), N);
    double t0 = now_s();
    while (wrk_engine_run(e, 1000) > 0 && now_s() - t0 < 60)
        ;
    double secs = now_s() - t0;
    assert_int_equal(c.n, N);
    size_t passed = 0;
    for (size_t i = 0; i < c.n; i++) {
        const char *s = rp_doc_str(docs[i], "status");
        passed += s && strcmp(s, "passed") == 0;
        if (!s || strcmp(s, "passed") != 0) {
            char *j = to_json(docs[i]);
            fprintf(stderr, "not passed: %s\n", j);
            bson_free(j);
        }
        bson_destroy(docs[i]);
    }
    assert_int_equal(passed, N);
    fprintf(stderr, "%d concurrent runs (2 steps each) in %.2f s, %llu connections\n", N, secs,
            (unsigned long long)wrk_engine_connections(e));
    free(docs);
    wrk_engine_free(e);
    rp_vars_free(v);
    rp_test_free(t);
}

/* httpbin closes every connection (werkzeug's dev server sends Connection: close), so reuse is
 * measured against this tiny keep-alive server, which counts the connections it accepts. */
struct ka_server {
    int fd, port;
    atomic_int stop, accepted, requests;
    pthread_t thread;
};

static void *ka_main(void *arg)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               "Content-Length: 11\r\n\r\n{\"ok\":true}";
    struct ka_server *k = arg;
    struct pollfd p[64];
    char tail[64][4];
    size_t n = 1;
    p[0].fd = k->fd;
    p[0].events = POLLIN;
    while (!atomic_load(&k->stop)) {
        if (poll(p, n, 50) <= 0)
            continue;
        for (size_t i = n; i-- > 1;) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[4096];
            ssize_t got = read(p[i].fd, buf, sizeof(buf));
            if (got <= 0) {
                close(p[i].fd);
                p[i] = p[n - 1];
                memcpy(tail[i], tail[n - 1], 4);
                n--;
                continue;
            }
            for (ssize_t b = 0; b < got; b++) { /* a request ends with an empty line */
                memmove(tail[i], tail[i] + 1, 3);
                tail[i][3] = buf[b];
                if (memcmp(tail[i], "\r\n\r\n", 4) == 0) {
                    atomic_fetch_add(&k->requests, 1);
                    if (write(p[i].fd, resp, sizeof(resp) - 1) < 0)
                        break;
                }
            }
        }
        if ((p[0].revents & POLLIN) && n < 64) {
            int c = accept(k->fd, NULL, NULL);
            if (c >= 0) {
                atomic_fetch_add(&k->accepted, 1);
                p[n].fd = c;
                p[n].events = POLLIN;
                memset(tail[n], 0, 4);
                n++;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        close(p[i].fd);
    return NULL;
}

static void ka_start(struct ka_server *k)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    memset(k, 0, sizeof(*k));
    k->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(k->fd >= 0);
    assert_int_equal(bind(k->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(k->fd, 64), 0);
    assert_int_equal(getsockname(k->fd, (struct sockaddr *)&a, &len), 0);
    k->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&k->thread, NULL, ka_main, k), 0);
}

static void ka_stop(struct ka_server *k)
{
    atomic_store(&k->stop, 1);
    pthread_join(k->thread, NULL);
}

static void test_connection_reuse(void **state)
{
    enum { N = 50 };
    struct ka_server k;
    ka_start(&k);
    struct rp_test *t =
        parse("{\"name\": \"reuse\", \"steps\": ["
              " {\"request\": {\"url\": \"${base}/a\"}, \"assert\": [\"$.ok == true\"]},"
              " {\"request\": {\"url\": \"${base}/b\"}, \"expect\": {\"status\": 200}}]}");
    struct rp_vars *v = rp_vars_new();
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", k.port);
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_ENVIRONMENT, "base", url, 0), RP_OK);
    struct wrk_engine *e = NULL;
    struct rp_error err = {0};
    assert_int_equal(wrk_engine_new(NULL, &e, &err), RP_OK);
    for (int i = 0; i < N; i++) { /* one run after the other, each of two requests */
        bson_t *doc = NULL;
        struct collect c = {&doc, 0};
        assert_int_equal(wrk_engine_submit(e, t, v, "seq", on_done, &c, &err), RP_OK);
        while (wrk_engine_run(e, 1000) > 0)
            ;
        assert_int_equal(c.n, 1);
        expect_status(doc, "passed");
        bson_destroy(doc);
    }
    uint64_t conns = wrk_engine_connections(e);
    wrk_engine_free(e);
    ka_stop(&k);
    fprintf(stderr,
            "%d sequential runs, %d requests: the engine opened %llu connection(s), the "
            "server accepted %d\n",
            N, atomic_load(&k.requests), (unsigned long long)conns, atomic_load(&k.accepted));
    assert_int_equal(atomic_load(&k.requests), 2 * N);
    assert_int_equal(atomic_load(&k.accepted), 1);
    assert_int_equal(conns, 1);
    rp_vars_free(v);
    rp_test_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capture_then_use),
        cmocka_unit_test(test_each_over_array),
        cmocka_unit_test(test_if),
        cmocka_unit_test(test_expect_status_list),
        cmocka_unit_test(test_severity),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_redirects),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_dns_failure),
        cmocka_unit_test(test_render_error),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_secrets_redacted),
        cmocka_unit_test(test_concurrent_runs),
        cmocka_unit_test(test_connection_reuse),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
