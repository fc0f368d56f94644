/* Unit tests for the health endpoint, queried over real HTTP with libcurl on 127.0.0.1:0:
 * /healthz, /readyz through starting -> ready -> draining, /metrics exposition (request
 * counters and a histogram), 404 and 405, keep-alive connection reuse, bad addresses, and /healthz
 * 503 while stalled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "rampart/health.h"
#include "rampart/mem.h"
#include "rampart/metrics.h"

struct fixture {
    struct rp_metrics *metrics;
    struct rp_health *health;
    CURL *curl;
    struct rp_buf body;
    char ctype[128];
    long code;
    long connects;
};

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct rp_buf *b = ud;
    return rp_buf_append(b, data, size * n) == RP_OK ? size * n : 0;
}

/* GET (or `method`) `path`; fills code, body, content type and the new-connection count. */
static void request(struct fixture *f, const char *method, const char *path)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", rp_health_port(f->health), path);
    rp_buf_reset(&f->body);
    curl_easy_setopt(f->curl, CURLOPT_URL, url);
    curl_easy_setopt(f->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(f->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(f->curl, CURLOPT_WRITEDATA, &f->body);
    curl_easy_setopt(f->curl, CURLOPT_TIMEOUT_MS, 5000L);
    CURLcode rc = curl_easy_perform(f->curl);
    if (rc != CURLE_OK)
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &f->code);
    curl_easy_getinfo(f->curl, CURLINFO_NUM_CONNECTS, &f->connects);
    char *ct = NULL;
    curl_easy_getinfo(f->curl, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(f->ctype, sizeof(f->ctype), "%s", ct ? ct : "");
    if (!f->body.data)
        (void)rp_buf_append(&f->body, "", 0);
}

static int setup(void **state)
{
    struct fixture *f = rp_xcalloc(1, sizeof(*f));
    struct rp_error e = {0};
    f->metrics = rp_metrics_new();
    if (rp_health_start("127.0.0.1:0", f->metrics, &f->health, &e) != RP_OK) {
        fprintf(stderr, "rp_health_start: %s\n", e.msg);
        return -1;
    }
    f->curl = curl_easy_init();
    rp_buf_init(&f->body, 1 << 20);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    curl_easy_cleanup(f->curl);
    rp_health_stop(f->health);
    rp_metrics_free(f->metrics);
    rp_buf_cleanup(&f->body);
    free(f);
    return 0;
}

static void test_healthz_and_keepalive(void **state)
{
    struct fixture *f = *state;
    assert_true(rp_health_port(f->health) > 0);
    request(f, "GET", "/healthz");
    assert_int_equal(f->code, 200);
    assert_string_equal(f->body.data, "{\"status\":\"ok\"}\n");
    assert_string_equal(f->ctype, "application/json");
    assert_int_equal(f->connects, 1);
    /* the second request must reuse the connection (no Connection: close) */
    request(f, "GET", "/healthz");
    assert_int_equal(f->code, 200);
    assert_int_equal(f->connects, 0);
    request(f, "GET", "/metrics");
    assert_int_equal(f->connects, 0);
}

static void test_readiness_lifecycle(void **state)
{
    struct fixture *f = *state;
    request(f, "GET", "/readyz");
    assert_int_equal(f->code, 503);
    assert_string_equal(f->body.data, "{\"status\":\"not ready\",\"reason\":\"starting\"}\n");
    assert_false(rp_health_is_ready(f->health));

    rp_health_set_ready(f->health, 0, "postgres: \"refused\"");
    request(f, "GET", "/readyz");
    assert_int_equal(f->code, 503);
    assert_string_equal(f->body.data,
                        "{\"status\":\"not ready\",\"reason\":\"postgres: \\\"refused\\\"\"}\n");

    rp_health_set_ready(f->health, 1, NULL);
    assert_true(rp_health_is_ready(f->health));
    request(f, "GET", "/readyz");
    assert_int_equal(f->code, 200);
    assert_string_equal(f->body.data, "{\"status\":\"ready\"}\n");

    /* ready with a reason: degraded, still 200 (the load balancer keeps sending traffic) */
    rp_health_set_ready(f->health, 1, "mongodb: \"no server\"");
    assert_true(rp_health_is_ready(f->health));
    request(f, "GET", "/readyz");
    assert_int_equal(f->code, 200);
    assert_string_equal(f->body.data,
                        "{\"status\":\"degraded\",\"reason\":\"mongodb: \\\"no server\\\"\"}\n");

    rp_health_set_draining(f->health);
    rp_health_set_ready(f->health, 1, NULL); /* draining wins over a late check */
    assert_false(rp_health_is_ready(f->health));
    request(f, "GET", "/readyz");
    assert_int_equal(f->code, 503);
    assert_non_null(strstr(f->body.data, "\"status\":\"draining\""));
    request(f, "GET", "/healthz"); /* still alive while draining */
    assert_int_equal(f->code, 200);
}

/* A process that runs but makes no progress: /healthz 503 with the reason, then 200 again;
 * readiness is a separate matter. */
static void test_liveness(void **state)
{
    struct fixture *f = *state;
    rp_health_set_ready(f->health, 1, NULL);
    rp_health_set_live(f->health, 0, "the writer thread has not come back for \"130\" s");
    request(f, "GET", "/healthz");
    assert_int_equal(f->code, 503);
    assert_string_equal(f->body.data, "{\"status\":\"stalled\",\"reason\":\"the writer thread "
                                      "has not come back for \\\"130\\\" s\"}\n");
    assert_string_equal(f->ctype, "application/json");
    request(f, "GET", "/readyz");
    assert_int_equal(f->code, 200);
    rp_health_set_live(f->health, 1, "ignored when live");
    request(f, "GET", "/healthz");
    assert_int_equal(f->code, 200);
    assert_string_equal(f->body.data, "{\"status\":\"ok\"}\n");
    rp_health_set_live(f->health, 0, NULL);
    request(f, "GET", "/healthz");
    assert_int_equal(f->code, 503);
    assert_non_null(strstr(f->body.data, "\"reason\":\"unknown\""));
}

static void test_metrics_exposition(void **state)
{
    struct fixture *f = *state;
    const double bounds[] = {0.1, 1};
    struct rp_metric *h = rp_metrics_histogram(f->metrics, "t_seconds", "T.", "op", bounds, 2);
    rp_series_observe(rp_metric_labels(h, "get"), 0.5);
    request(f, "GET", "/healthz");
    request(f, "GET", "/healthz");
    request(f, "GET", "/nope");
    request(f, "GET", "/metrics");
    assert_int_equal(f->code, 200);
    assert_string_equal(f->ctype, "text/plain; version=0.0.4; charset=utf-8");
    const char *want[] = {
        "# TYPE rampart_health_http_requests_total counter\n",
        "rampart_health_http_requests_total{path=\"/healthz\",code=\"200\"} 2\n",
        "rampart_health_http_requests_total{path=\"other\",code=\"404\"} 1\n",
        "# TYPE t_seconds histogram\n",
        "t_seconds_bucket{op=\"get\",le=\"0.1\"} 0\n",
        "t_seconds_bucket{op=\"get\",le=\"1\"} 1\n",
        "t_seconds_bucket{op=\"get\",le=\"+Inf\"} 1\n",
        "t_seconds_sum{op=\"get\"} 0.5\n",
        "t_seconds_count{op=\"get\"} 1\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(f->body.data, want[i]))
            fail_msg("/metrics lacks \"%s\":\n%s", want[i], f->body.data);
    /* the scrape itself is counted from the next one on */
    request(f, "GET", "/metrics");
    assert_non_null(strstr(f->body.data,
                           "rampart_health_http_requests_total{path=\"/metrics\",code=\"200\"} 1"));
}

static void test_404_405(void **state)
{
    struct fixture *f = *state;
    request(f, "GET", "/admin");
    assert_int_equal(f->code, 404);
    assert_string_equal(f->body.data, "{\"error\":\"not found\"}\n");
    request(f, "POST", "/healthz");
    assert_int_equal(f->code, 405);
    assert_string_equal(f->body.data, "{\"error\":\"method not allowed\"}\n");
    request(f, "DELETE", "/readyz");
    assert_int_equal(f->code, 405);
    /* a POST with a body is read and discarded, and the connection stays usable */
    curl_easy_setopt(f->curl, CURLOPT_POSTFIELDS, "x=1&y=2");
    request(f, "POST", "/metrics");
    curl_easy_setopt(f->curl, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(f->curl, CURLOPT_HTTPGET, 1L);
    assert_int_equal(f->code, 405);
    request(f, "GET", "/healthz");
    assert_int_equal(f->code, 200);
    assert_int_equal(f->connects, 0);
}

static void test_bad_listen(void **state)
{
    struct rp_error e = {0};
    struct rp_health *h = NULL;
    assert_int_equal(rp_health_start("nocolon", NULL, &h, &e), RP_EINVAL);
    assert_null(h);
    assert_int_equal(rp_health_start("no.such.host.invalid:80", NULL, &h, &e), RP_EINVAL);
    /* the port taken by the fixture: binding again fails */
    struct fixture *f = *state;
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", rp_health_port(f->health));
    assert_int_equal(rp_health_start(addr, f->metrics, &h, &e), RP_EIO);
    assert_non_null(strstr(e.msg, addr));
    rp_health_stop(NULL);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_healthz_and_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_liveness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readiness_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_exposition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_404_405, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_listen, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
