/* Unit tests for the scheduler's catch-up policy (scheduler/plan.c): late within the grace
 * runs as scheduled; later, the missed fires coalesce into one run for the latest fire time;
 * cron schedules whose next_run_at is not a fire time run nothing until their first fire. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rampart/cron.h"
#include "scheduler.h"

#define S  1000LL
#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */

static void test_interval_on_time_and_late(void **state)
{
    struct sched_timing t = {.interval_ms = 10 * S};
    int64_t fire, next;
    /* on time */
    assert_int_equal(sched_plan(&t, T0, T0 + 3, 60 * S, &fire, &next), RP_OK);
    assert_true(fire == T0 && next == T0 + 10 * S);
    /* 59 s late: still within the grace, runs with its own fire time; the next one is due
     * right away too (the claim takes one fire per schedule per transaction) */
    assert_int_equal(sched_plan(&t, T0, T0 + 59 * S, 60 * S, &fire, &next), RP_OK);
    assert_true(fire == T0 && next == T0 + 10 * S);
    /* exactly at the grace: runs late */
    assert_int_equal(sched_plan(&t, T0, T0 + 60 * S, 60 * S, &fire, &next), RP_OK);
    assert_true(fire == T0);
}

static void test_interval_coalesces_after_grace(void **state)
{
    struct sched_timing t = {.interval_ms = 10 * S};
    int64_t fire, next;
    /* 1 hour down: one run for the latest missed fire (T0 + 3600 s), then the cadence */
    assert_int_equal(sched_plan(&t, T0, T0 + 3605 * S, 60 * S, &fire, &next), RP_OK);
    assert_true(fire == T0 + 3600 * S);
    assert_true(next == T0 + 3610 * S);
    /* no grace at all */
    assert_int_equal(sched_plan(&t, T0, T0 + 25 * S, 0, &fire, &next), RP_OK);
    assert_true(fire == T0 + 20 * S && next == T0 + 30 * S);
}

static void test_cron(void **state)
{
    struct rp_cron *c = NULL;
    assert_int_equal(rp_cron_parse("*/5 * * * *", "UTC", &c, NULL), RP_OK);
    struct sched_timing t = {.cron = c};
    int64_t fire, next;
    /* due at a fire time, on time */
    assert_int_equal(sched_plan(&t, T0 + 300 * S, T0 + 300 * S + 20, 60 * S, &fire, &next), RP_OK);
    assert_true(fire == T0 + 300 * S && next == T0 + 600 * S);
    /* next_run_at is not a fire time (schedule just created): no run, due at the first fire */
    assert_int_equal(sched_plan(&t, T0 + 7, T0 + 9, 60 * S, &fire, &next), RP_OK);
    assert_true(fire == -1 && next == T0 + 300 * S);
    /* a day down: one run for the latest fire before now */
    assert_int_equal(sched_plan(&t, T0 + 300 * S, T0 + 86400 * S + 61 * S, 60 * S, &fire, &next),
                     RP_OK);
    assert_true(fire == T0 + 86400 * S);
    assert_true(next == T0 + 86400 * S + 300 * S);
    rp_cron_free(c);
    /* no fire time ever: RP_ENOENT, the caller pauses the schedule */
    assert_int_equal(rp_cron_parse("0 0 30 2 *", "UTC", &c, NULL), RP_OK);
    t.cron = c;
    assert_int_equal(sched_plan(&t, T0, T0, 60 * S, &fire, &next), RP_ENOENT);
    rp_cron_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interval_on_time_and_late),
        cmocka_unit_test(test_interval_coalesces_after_grace),
        cmocka_unit_test(test_cron),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
