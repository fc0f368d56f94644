/* Unit tests for the pipeline's messages (common/src/job.c): UUIDv7 ids, the job message round
 * trip and its validation (every refusal names the field), and the run.finished event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rampart/job.h"
#include "rampart/mem.h"

static void test_uuid_v7(void **state)
{
    char prev[RP_UUID_LEN + 1] = "", id[RP_UUID_LEN + 1];
    int64_t before = rp_now_unix_ms();
    for (int i = 0; i < 20000; i++) {
        rp_uuid_v7(id);
        assert_true(rp_uuid_valid(id));
        assert_int_equal(id[14], '7');           /* version */
        assert_non_null(strchr("89ab", id[19])); /* variant 10 */
        assert_true(strcmp(prev, id) < 0);       /* strictly increasing */
        memcpy(prev, id, sizeof(id));
    }
    /* the first 48 bits are the creation time in ms */
    char hex[13];
    memcpy(hex, id, 8);
    memcpy(hex + 8, id + 9, 4);
    hex[12] = '\0';
    int64_t ms = strtoll(hex, NULL, 16);
    assert_true(ms >= before && ms <= rp_now_unix_ms() + 50);
    assert_false(rp_uuid_valid("not-a-uuid"));
    assert_false(rp_uuid_valid("0190d6c3-1f2a-7b3c-8d4e-5f60718293a")); /* short */
    assert_false(rp_uuid_valid("0190d6c3x1f2a-7b3c-8d4e-5f60718293ab"));
    assert_true(rp_uuid_valid("0190D6C3-1F2A-7B3C-8D4E-5F60718293AB"));
}

static void fill(struct rp_job_run *r, int i)
{
    memset(r, 0, sizeof(*r));
    rp_uuid_v7(r->run_id);
    snprintf(r->project_id, sizeof(r->project_id), "11111111-1111-4111-8111-111111111111");
    snprintf(r->test_id, sizeof(r->test_id), "22222222-2222-4222-8222-222222222222");
    r->test_version = 3 + i;
    r->schedule_id = i % 2 ? NULL : "33333333-3333-4333-8333-333333333333";
    r->fire_time_ms = 1763900000000LL + i;
    snprintf(r->trigger, sizeof(r->trigger), "%s", i % 2 ? "manual" : "schedule");
    snprintf(r->location, sizeof(r->location), "eu-west_1");
    r->retries = i % 6;
    r->definition = "{\"name\": \"t \\\"q\\\" \\u00e9\", \"steps\": []}";
    r->variables = "{\"a\": 1}";
    r->overrides = i == 2 ? "{\"base\": \"https://x\", \"n\": 2}" : NULL;
}

static void test_job_round_trip(void **state)
{
    struct rp_job_run in[3];
    for (int i = 0; i < 3; i++)
        fill(&in[i], i);
    struct rp_buf b;
    rp_buf_init(&b, 0);
    assert_int_equal(rp_job_encode(in, 3, &b), RP_OK);
    struct rp_job *job = NULL;
    struct rp_error e;
    assert_int_equal(rp_job_decode(b.data, b.len, &job, &e), RP_OK);
    assert_int_equal(job->n, 3);
    for (int i = 0; i < 3; i++) {
        struct rp_job_run *r = &job->runs[i];
        assert_string_equal(r->run_id, in[i].run_id);
        assert_string_equal(r->project_id, in[i].project_id);
        assert_int_equal(r->test_version, 3 + i);
        if (i % 2)
            assert_null(r->schedule_id);
        else
            assert_string_equal(r->schedule_id, in[i].schedule_id);
        assert_null(r->environment_id);
        assert_true(r->fire_time_ms == 1763900000000LL + i);
        assert_string_equal(r->trigger, in[i].trigger);
        assert_string_equal(r->location, "eu-west_1");
        assert_int_equal(r->retries, i % 6);
        assert_string_equal(r->definition, in[i].definition);
        assert_string_equal(r->variables, "{\"a\": 1}");
        if (i == 2)
            assert_string_equal(r->overrides, in[i].overrides);
        else
            assert_null(r->overrides);
    }
    rp_job_free(job);
    assert_int_equal(rp_job_encode(in, 0, &b), RP_EINVAL);
    /* a run without overrides is encoded as before they existed: no member at all */
    rp_buf_reset(&b);
    assert_int_equal(rp_job_encode(in, 1, &b), RP_OK);
    assert_null(strstr(b.data, "overrides"));
    rp_buf_cleanup(&b);
}

/* "overrides": null is the same as absent; a string is kept as is. */
static void test_job_overrides_null(void **state)
{
    struct rp_job_run r;
    fill(&r, 0);
    struct rp_buf b;
    rp_buf_init(&b, 0);
    assert_int_equal(rp_job_encode(&r, 1, &b), RP_OK);
    char *p = strstr(b.data, "\"variables\"");
    assert_non_null(p);
    char *msg = rp_xasprintf("%.*s\"overrides\" : null, %s", (int)(p - b.data), b.data, p);
    struct rp_job *job = NULL;
    struct rp_error e;
    assert_int_equal(rp_job_decode(msg, strlen(msg), &job, &e), RP_OK);
    assert_null(job->runs[0].overrides);
    rp_job_free(job);
    free(msg);
    msg = rp_xasprintf("%.*s\"overrides\" : \"{}\", %s", (int)(p - b.data), b.data, p);
    assert_int_equal(rp_job_decode(msg, strlen(msg), &job, &e), RP_OK);
    assert_string_equal(job->runs[0].overrides, "{}");
    rp_job_free(job);
    free(msg);
    rp_buf_cleanup(&b);
}

/* Take a valid one-run message, replace `from` by `to`, expect a refusal naming `field`. */
static void expect_refused(const char *from, const char *to, const char *field)
{
    struct rp_job_run r;
    fill(&r, 0);
    struct rp_buf b;
    rp_buf_init(&b, 0);
    assert_int_equal(rp_job_encode(&r, 1, &b), RP_OK);
    char *p = strstr(b.data, from);
    assert_non_null(p);
    char *msg = rp_xasprintf("%.*s%s%s", (int)(p - b.data), b.data, to, p + strlen(from));
    struct rp_job *job = NULL;
    struct rp_error e;
    assert_int_equal(rp_job_decode(msg, strlen(msg), &job, &e), RP_EINVAL);
    assert_null(job);
    if (!strstr(e.msg, field))
        fail_msg("expected \"%s\" in: %s", field, e.msg);
    free(msg);
    rp_buf_cleanup(&b);
}

static void test_job_refusals(void **state)
{
    expect_refused("\"trigger\" : \"schedule\"", "\"trigger\" : \"cron\"", "runs[0].trigger");
    expect_refused("\"location\" : \"eu-west_1\"", "\"location\" : \"EU\"", "runs[0].location");
    expect_refused("\"test_version\" : 3", "\"test_version\" : 0", "runs[0].test_version");
    expect_refused("\"retries\" : 0", "\"retries\" : 9", "runs[0].retries");
    expect_refused("\"project_id\" : \"11111111", "\"project_id\" : \"zz111111", "project_id");
    expect_refused("\"definition\" : ", "\"definitio\" : ", "runs[0].definition: missing");
    expect_refused("\"fire_time_ms\" : 1763900000000", "\"fire_time_ms\" : \"x\"", "fire_time_ms");
    expect_refused("\"v\" : 1", "\"v\" : 2", "format version");
    expect_refused("\"schedule_id\" : \"33333333", "\"schedule_id\" : \"3333333", "schedule_id");
    expect_refused("\"variables\" : ", "\"overrides\" : 5, \"variables\" : ",
                   "runs[0].overrides: must be a string");
    expect_refused("\"variables\" : ", "\"overrides\" : {}, \"variables\" : ",
                   "runs[0].overrides: must be a string");

    struct rp_job *job = NULL;
    struct rp_error e;
    static const char *const bad[] = {"",
                                      "{",
                                      "[]",
                                      "{\"v\":1}",
                                      "{\"v\":1,\"runs\":[]}",
                                      "{\"v\":1,\"runs\":[1]}",
                                      "{\"v\":1,\"runs\":{}}",
                                      "null"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(rp_job_decode(bad[i], strlen(bad[i]), &job, &e), RP_EINVAL);
        assert_null(job);
        assert_non_null(strstr(e.msg, "job message"));
    }
}

static void test_run_finished(void **state)
{
    struct rp_job_run r;
    fill(&r, 1);
    struct rp_run_finished ev = {.run = &r,
                                 .status = "failed",
                                 .started_at_ms = 5,
                                 .finished_at_ms = 9,
                                 .duration_ms = 4.5,
                                 .attempt = 2,
                                 .failure = "status == 200: got 500 \"x\""};
    struct rp_buf b;
    rp_buf_init(&b, 0);
    assert_int_equal(rp_run_finished_encode(&ev, &b), RP_OK);
    assert_non_null(strstr(b.data, "\"status\" : \"failed\""));
    assert_non_null(strstr(b.data, "\"schedule_id\" : null"));
    assert_non_null(strstr(b.data, "\"error\" : null"));
    assert_non_null(strstr(b.data, "got 500 \\\"x\\\""));
    assert_non_null(strstr(b.data, r.run_id));
    rp_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_v7),
        cmocka_unit_test(test_job_round_trip),
        cmocka_unit_test(test_job_overrides_null),
        cmocka_unit_test(test_job_refusals),
        cmocka_unit_test(test_run_finished),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
