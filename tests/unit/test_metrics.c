/* Unit tests for the Prometheus registry: exposition text (HELP/TYPE, labels, escaping,
 * histogram buckets, _sum, _count), idempotent registration, series cap, process metrics, and
 * lock-free counters under concurrent updates. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rampart/mem.h"
#include "rampart/metrics.h"

static char *render(struct rp_metrics *r)
{
    struct rp_buf b;
    rp_buf_init(&b, 0);
    assert_int_equal(rp_metrics_render(r, &b), RP_OK);
    return b.data ? b.data : rp_xstrdup("");
}

static void assert_contains(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("exposition lacks \"%s\":\n%s", needle, text);
}

static void test_counter_gauge(void **state)
{
    struct rp_metrics *r = rp_metrics_new();
    struct rp_metric *c = rp_metrics_counter(r, "jobs_total", "Jobs done.", "queue,status");
    struct rp_metric *g = rp_metrics_gauge(r, "temp", "Line1\nback\\slash", NULL);
    rp_series_inc(rp_metric_labels(c, "a", "ok"));
    rp_series_add(rp_metric_labels(c, "a", "ok"), 2.5);
    rp_series_add(rp_metric_labels(c, "a", "ok"), -7); /* counters never go down */
    rp_series_inc(rp_metric_labels(c, "q\"x\\y\nz", "fail"));
    rp_series_set(rp_metric_series(g, NULL), -1.25);
    rp_series_add(rp_metric_series(g, NULL), 0.25);
    assert_true(rp_series_value(rp_metric_labels(c, "a", "ok")) == 3.5);
    /* same name, type and labels: the same family */
    assert_ptr_equal(rp_metrics_counter(r, "jobs_total", "other help", "queue,status"), c);

    char *t = render(r);
    assert_contains(t, "# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\n"
                       "jobs_total{queue=\"a\",status=\"ok\"} 3.5\n"
                       "jobs_total{queue=\"q\\\"x\\\\y\\nz\",status=\"fail\"} 1\n");
    assert_contains(t, "# HELP temp Line1\\nback\\\\slash\n# TYPE temp gauge\ntemp -1\n");
    free(t);
    rp_metrics_free(r);
}

static void test_unlabelled_renders_zero(void **state)
{
    struct rp_metrics *r = rp_metrics_new();
    (void)rp_metrics_counter(r, "starts_total", "Starts.", NULL);
    (void)rp_metrics_counter(r, "by_kind_total", "By kind.", "kind");
    char *t = render(r);
    assert_contains(t, "# TYPE starts_total counter\nstarts_total 0\n");
    /* a labelled family with no series yet: metadata only */
    assert_contains(t, "# TYPE by_kind_total counter\n");
    assert_null(strstr(t, "by_kind_total{"));
    free(t);
    rp_metrics_free(r);
}

static void test_histogram(void **state)
{
    struct rp_metrics *r = rp_metrics_new();
    const double bounds[] = {0.1, 0.5, 1};
    struct rp_metric *h = rp_metrics_histogram(r, "req_seconds", "Latency.", "path", bounds, 3);
    struct rp_series *s = rp_metric_labels(h, "/x");
    rp_series_observe(s, 0.05);
    rp_series_observe(s, 0.1); /* le is inclusive */
    rp_series_observe(s, 0.3);
    rp_series_observe(s, 2);
    assert_true(rp_series_value(s) == 4);
    char *t = render(r);
    assert_contains(t, "# HELP req_seconds Latency.\n# TYPE req_seconds histogram\n"
                       "req_seconds_bucket{path=\"/x\",le=\"0.1\"} 2\n"
                       "req_seconds_bucket{path=\"/x\",le=\"0.5\"} 3\n"
                       "req_seconds_bucket{path=\"/x\",le=\"1\"} 3\n"
                       "req_seconds_bucket{path=\"/x\",le=\"+Inf\"} 4\n"
                       "req_seconds_sum{path=\"/x\"} 2.45\n"
                       "req_seconds_count{path=\"/x\"} 4\n");
    free(t);

    /* default buckets, no labels */
    struct rp_metric *d = rp_metrics_histogram(r, "plain_seconds", "Plain.", NULL, NULL, 0);
    rp_series_observe(rp_metric_series(d, NULL), 7);
    t = render(r);
    assert_contains(t, "plain_seconds_bucket{le=\"0.005\"} 0\n");
    assert_contains(t, "plain_seconds_bucket{le=\"5\"} 0\nplain_seconds_bucket{le=\"10\"} 1\n"
                       "plain_seconds_bucket{le=\"+Inf\"} 1\nplain_seconds_sum 7\n"
                       "plain_seconds_count 1\n");
    free(t);
    rp_metrics_free(r);
}

static void test_series_cap(void **state)
{
    struct rp_metrics *r = rp_metrics_new();
    struct rp_metric *c = rp_metrics_counter(r, "paths_total", "Paths.", "path");
    char v[32];
    for (int i = 0; i < RP_METRICS_MAX_SERIES + 50; i++) {
        snprintf(v, sizeof(v), "/p%d", i);
        rp_series_inc(rp_metric_labels(c, v));
    }
    char *t = render(r);
    snprintf(v, sizeof(v), "/p%d\"", RP_METRICS_MAX_SERIES - 1);
    assert_contains(t, v);
    snprintf(v, sizeof(v), "/p%d\"", RP_METRICS_MAX_SERIES);
    assert_null(strstr(t, v));
    free(t);
    rp_metrics_free(r);
}

static void test_process(void **state)
{
    struct rp_metrics *r = rp_metrics_new();
    rp_metrics_add_process(r, "rampart-test", "9.9.9");
    char *t = render(r);
    assert_contains(t, "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 1");
    assert_contains(t, "rampart_build_info{service=\"rampart-test\",version=\"9.9.9\"} 1\n");
    assert_contains(t, "# TYPE process_cpu_seconds_total counter\n");
    assert_contains(t, "process_resident_memory_bytes ");
    assert_contains(t, "process_open_fds ");
    free(t);
    rp_metrics_free(r);
}

#define THREADS    4
#define PER_THREAD 20000

static void *hammer(void *arg)
{
    struct rp_metric *const *m = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        rp_series_inc(rp_metric_labels(m[0], i % 2 ? "odd" : "even"));
        rp_series_observe(rp_metric_series(m[1], NULL), 0.001);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    struct rp_metrics *r = rp_metrics_new();
    struct rp_metric *m[2] = {rp_metrics_counter(r, "hits_total", "Hits.", "parity"),
                              rp_metrics_histogram(r, "lat_seconds", "Lat.", NULL, NULL, 0)};
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, m), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_true(rp_series_value(rp_metric_labels(m[0], "odd")) == THREADS * PER_THREAD / 2);
    assert_true(rp_series_value(rp_metric_labels(m[0], "even")) == THREADS * PER_THREAD / 2);
    char *text = render(r);
    char want[80];
    snprintf(want, sizeof(want), "lat_seconds_bucket{le=\"0.005\"} %d\n", THREADS * PER_THREAD);
    assert_contains(text, want);
    snprintf(want, sizeof(want), "lat_seconds_count %d\n", THREADS * PER_THREAD);
    assert_contains(text, want);
    free(text);
    rp_metrics_free(r);
}

static void test_render_cap(void **state)
{
    struct rp_metrics *r = rp_metrics_new();
    (void)rp_metrics_counter(r, "a_total", "A long enough help text.", NULL);
    struct rp_buf b;
    rp_buf_init(&b, 16);
    assert_int_equal(rp_metrics_render(r, &b), RP_ENOMEM);
    rp_buf_cleanup(&b);
    rp_metrics_free(r);
    rp_metrics_free(NULL);
    assert_ptr_equal(rp_metrics_default(), rp_metrics_default());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_gauge), cmocka_unit_test(test_unlabelled_renders_zero),
        cmocka_unit_test(test_histogram),     cmocka_unit_test(test_series_cap),
        cmocka_unit_test(test_process),       cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_render_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
