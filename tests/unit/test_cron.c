/* Unit tests for cron expressions (common/src/cron.c): every syntax form, every parse error (the
 * message must name the field), next-fire times in UTC (month ends, leap years, weekdays, the
 * day-of-month / day-of-week OR rule), and DST in Europe/Berlin, America/New_York, Asia/Kolkata
 * (+05:30), Asia/Kathmandu (+05:45), Australia/Lord_Howe (30-minute DST) and Pacific/Apia (a
 * skipped day). Expected instants were computed independently with Python's zoneinfo by a
 * brute-force walk over every real minute. Ends with a timing check and a shared-object check
 * across threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <glib.h>

#include "rampart/cron.h"

/* "2026-03-29T01:00:00Z" -> Unix ms */
static int64_t ms(const char *iso)
{
    struct tm tm = {0};
    int n = sscanf(iso, "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                   &tm.tm_min, &tm.tm_sec);
    assert_int_equal(n, 6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000;
}

static struct rp_cron *parse_ok(const char *expr, const char *tz)
{
    struct rp_cron *c = NULL;
    struct rp_error err = {0};
    int rc = rp_cron_parse(expr, tz, &c, &err);
    if (rc != RP_OK)
        fail_msg("parse of \"%s\" failed: %s", expr, err.msg);
    assert_non_null(c);
    return c;
}

/* The parse must fail with RP_EINVAL, leave *out alone, and say `want` (a substring). */
static void parse_err_tz(const char *expr, const char *tz, const char *want)
{
    struct rp_cron *sentinel = (struct rp_cron *)&sentinel, *c = sentinel;
    struct rp_error err = {0};
    int rc = rp_cron_parse(expr, tz, &c, &err);
    if (rc != RP_EINVAL)
        fail_msg("parse of \"%s\" returned %d, expected RP_EINVAL", expr ? expr : "(null)", rc);
    assert_ptr_equal(c, sentinel);
    assert_int_equal(err.code, RP_EINVAL);
    if (strncmp(err.msg, "cron: ", 6) != 0 || !strstr(err.msg, want))
        fail_msg("parse of \"%s\": message \"%s\" lacks \"%s\"", expr ? expr : "(null)", err.msg,
                 want);
}

static void parse_err(const char *expr, const char *want)
{
    parse_err_tz(expr, NULL, want);
}

/* The fires of `expr` in `tz` after `from` must be exactly `want` (a NULL-terminated list),
 * each call starting from the previous result. */
static void expect_fires(const char *expr, const char *tz, const char *from, ...)
{
    struct rp_cron *c = parse_ok(expr, tz);
    int64_t t = ms(from), next;
    va_list ap;
    va_start(ap, from);
    for (const char *w; (w = va_arg(ap, const char *)) != NULL; t = next) {
        next = 0;
        assert_int_equal(rp_cron_next(c, t, &next), RP_OK);
        if (next != ms(w)) {
            time_t s = (time_t)(next / 1000);
            char got[32];
            strftime(got, sizeof(got), "%Y-%m-%dT%H:%M:%SZ", gmtime(&s));
            fail_msg("\"%s\" in %s after %" PRId64 ": got %s, expected %s", expr, tz ? tz : "UTC",
                     t, got, w);
        }
    }
    va_end(ap);
    rp_cron_free(c);
}

static void expect_none(const char *expr, const char *from)
{
    struct rp_cron *c = parse_ok(expr, NULL);
    int64_t next = 42;
    assert_int_equal(rp_cron_next(c, ms(from), &next), RP_ENOENT);
    assert_int_equal(next, 42);
    rp_cron_free(c);
}

/* ---- syntax --------------------------------------------------------------------------------- */

static void test_lists_ranges_steps(void **state)
{
    (void)state;
    expect_fires("5,10-20/5,*/30 * * * *", NULL, "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z",
                 "2026-01-01T00:10:00Z", "2026-01-01T00:15:00Z", "2026-01-01T00:20:00Z",
                 "2026-01-01T00:30:00Z", "2026-01-01T01:00:00Z", NULL);
    expect_fires("7/20 * * * *", NULL, "2026-01-01T00:00:00Z", "2026-01-01T00:07:00Z",
                 "2026-01-01T00:27:00Z", "2026-01-01T00:47:00Z", "2026-01-01T01:07:00Z", NULL);
    expect_fires("0 22-23,1 * * *", NULL, "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z",
                 "2026-01-01T22:00:00Z", "2026-01-01T23:00:00Z", "2026-01-02T01:00:00Z", NULL);
    expect_fires("59 23 31 12 *", NULL, "2026-06-01T00:00:00Z", "2026-12-31T23:59:00Z",
                 "2027-12-31T23:59:00Z", NULL);
    expect_fires("*/60 */24 * * *", NULL, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", NULL);
    expect_fires("0 0 1-31/10 * *", NULL, "2026-01-01T00:00:00Z", "2026-01-11T00:00:00Z",
                 "2026-01-21T00:00:00Z", "2026-01-31T00:00:00Z", "2026-02-01T00:00:00Z", NULL);
    expect_fires("0 0 05 * *", NULL, "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z", NULL);
    /* spaces, tabs, leading and trailing white space */
    expect_fires(" \t0\t0  1 * *\n", NULL, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", NULL);
}

static void test_names(void **state)
{
    (void)state;
    expect_fires("0 0 1 jan-MAR/2 *", NULL, "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z",
                 "2027-01-01T00:00:00Z", NULL);
    expect_fires("0 0 1 Jun,DEC *", NULL, "2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z",
                 "2026-12-01T00:00:00Z", NULL);
    /* 2026-07-01 is a Wednesday */
    expect_fires("0 9 * * mon-Fri", NULL, "2026-07-02T12:00:00Z", "2026-07-03T09:00:00Z",
                 "2026-07-06T09:00:00Z", NULL);
    expect_fires("0 9 * * FRI-SUN", NULL, "2026-07-01T00:00:00Z", "2026-07-03T09:00:00Z",
                 "2026-07-04T09:00:00Z", "2026-07-05T09:00:00Z", "2026-07-10T09:00:00Z", NULL);
    expect_fires("0 9 * * 5-7", NULL, "2026-07-01T00:00:00Z", "2026-07-03T09:00:00Z",
                 "2026-07-04T09:00:00Z", "2026-07-05T09:00:00Z", "2026-07-10T09:00:00Z", NULL);
    expect_fires("0 9 * * sat-sun", NULL, "2026-07-01T00:00:00Z", "2026-07-04T09:00:00Z",
                 "2026-07-05T09:00:00Z", "2026-07-11T09:00:00Z", NULL);
    expect_fires("0 9 * * 7", NULL, "2026-07-01T00:00:00Z", "2026-07-05T09:00:00Z", NULL);
    expect_fires("0 9 * * 0", NULL, "2026-07-01T00:00:00Z", "2026-07-05T09:00:00Z", NULL);
    expect_fires("0 9 * * */3", NULL, "2026-07-01T00:00:00Z", "2026-07-01T09:00:00Z",
                 "2026-07-04T09:00:00Z", "2026-07-05T09:00:00Z", "2026-07-08T09:00:00Z", NULL);
}

static void test_macros(void **state)
{
    (void)state;
    const char *from = "2026-07-01T10:20:00Z"; /* a Wednesday */
    expect_fires("@hourly", NULL, from, "2026-07-01T11:00:00Z", NULL);
    expect_fires("@daily", NULL, from, "2026-07-02T00:00:00Z", NULL);
    expect_fires("@midnight", NULL, from, "2026-07-02T00:00:00Z", NULL);
    expect_fires("@weekly", NULL, from, "2026-07-05T00:00:00Z", NULL);
    expect_fires("@monthly", NULL, from, "2026-08-01T00:00:00Z", NULL);
    expect_fires("@yearly", NULL, from, "2027-01-01T00:00:00Z", NULL);
    expect_fires("@annually", NULL, from, "2027-01-01T00:00:00Z", NULL);
    expect_fires("  @DAILY\t", NULL, from, "2026-07-02T00:00:00Z", NULL);
    expect_fires("@daily", "Europe/Berlin", from, "2026-07-01T22:00:00Z", NULL);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *expr, *want;
    } cases[] = {
        {"", "cron: empty expression"},
        {" \t ", "cron: empty expression"},
        {"* * * *", "cron: 4 fields given, expected 5"},
        {"*", "cron: 1 field given, expected 5"},
        {"0 * * * * *", "cron: 6 fields given, expected 5 (minute hour day-of-month month "
                        "day-of-week); seconds are not supported"},
        {"0 0 0 * * * 2026", "cron: 7 fields given"},
        {"60 * * * *", "cron: field 1 (minute): 60 is out of range 0-59"},
        {"* 24 * * *", "cron: field 2 (hour): 24 is out of range 0-23"},
        {"* * 0 * *", "cron: field 3 (day-of-month): 0 is out of range 1-31"},
        {"* * 32 * *", "cron: field 3 (day-of-month): 32 is out of range 1-31"},
        {"* * * 0 *", "cron: field 4 (month): 0 is out of range 1-12"},
        {"* * * 13 *", "cron: field 4 (month): 13 is out of range 1-12"},
        {"* * * * 8", "cron: field 5 (day-of-week): 8 is out of range 0-7"},
        {"99999999999999999999 * * * *",
         "cron: field 1 (minute): 99999999999999999999 is out of range 0-59"},
        {"1-60 * * * *", "cron: field 1 (minute): 60 is out of range 0-59"},
        {"30-10 * * * *", "cron: field 1 (minute): range `30-10` starts after it ends"},
        {"* * * DEC-JAN *", "cron: field 4 (month): range `DEC-JAN` starts after it ends"},
        {"* * * * 6-1", "cron: field 5 (day-of-week): range `6-1` starts after it ends"},
        {"*/0 * * * *", "cron: field 1 (minute): step 0 is not allowed in `*/0`"},
        {"* 1-5/0 * * *", "cron: field 2 (hour): step 0 is not allowed in `1-5/0`"},
        {"*/61 * * * *", "cron: field 1 (minute): step 61 is larger than 60 in `*/61`"},
        {"* * * * */8", "cron: field 5 (day-of-week): step 8 is larger than 7 in `*/8`"},
        {"5/ * * * *", "cron: field 1 (minute): expected a step after `/` in `5/`"},
        {"*/x * * * *", "cron: field 1 (minute): unexpected `x` in `*/x`"},
        {"1- * * * *", "cron: field 1 (minute): expected a number in `1-`"},
        {"-5 * * * *", "cron: field 1 (minute): unexpected `-` in `-5`"},
        {"1-2-3 * * * *", "cron: field 1 (minute): unexpected `-` in `1-2-3`"},
        {"*/2/3 * * * *", "cron: field 1 (minute): unexpected `/` in `*/2/3`"},
        {"*-5 * * * *", "cron: field 1 (minute): unexpected `-` in `*-5`"},
        {"1,,2 * * * *", "cron: field 1 (minute): empty item in list `1,,2`"},
        {"* 1, * * *", "cron: field 2 (hour): empty item in list `1,`"},
        {"* * ,1 * *", "cron: field 3 (day-of-month): empty item in list `,1`"},
        {"5x * * * *", "cron: field 1 (minute): unexpected `x` in `5x`"},
        {"* * * 1.5 *", "cron: field 4 (month): unexpected `.` in `1.5`"},
        {"MON * * * *", "cron: field 1 (minute): expected a number, got `MON`"},
        {"* * L * *", "cron: field 3 (day-of-month): expected a number, got `L`"},
        {"* * * FOO *", "cron: field 4 (month): unknown name `FOO`; expected JAN-DEC"},
        {"* * * * MONDAY", "cron: field 5 (day-of-week): unknown name `MONDAY`; expected SUN-SAT"},
        {"* * * * JAN", "cron: field 5 (day-of-week): unknown name `JAN`; expected SUN-SAT"},
        {"* * ? * MON", "cron: field 3 (day-of-month): `?` is not supported; use `*` instead"},
        {"* * * * 1#2", "cron: field 5 (day-of-week): unexpected `#` in `1#2`"},
        {"@every 5m", "cron: unknown macro `@every`; expected one of @hourly"},
        {"@", "cron: unknown macro `@`"},
        {"@reboot", "cron: @reboot is not supported"},
        {"@daily 5", "cron: unexpected `5` after @daily; a macro stands alone"},
        {"0 0 * * *\x01", "cron: unexpected byte 0x01 at position 10"},
        {"0 0 * * \xc3\xa9", "cron: unexpected byte 0xC3 at position 9"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        parse_err(cases[i].expr, cases[i].want);
    parse_err(NULL, "cron: no expression given");

    char long_expr[RP_CRON_MAX_LEN + 2];
    memset(long_expr, ' ', sizeof(long_expr));
    memcpy(long_expr, "0 0 * * *", 9);
    long_expr[RP_CRON_MAX_LEN + 1] = '\0'; /* 201 bytes */
    parse_err(long_expr, "cron: expression is longer than 200 bytes");
    long_expr[RP_CRON_MAX_LEN] = '\0'; /* exactly 200 bytes is fine */
    rp_cron_free(parse_ok(long_expr, NULL));
}

static void test_time_zones(void **state)
{
    (void)state;
    rp_cron_free(parse_ok("* * * * *", NULL));
    rp_cron_free(parse_ok("* * * * *", ""));
    rp_cron_free(parse_ok("* * * * *", "UTC"));
    rp_cron_free(parse_ok("* * * * *", "Etc/GMT+5"));
    rp_cron_free(parse_ok("* * * * *", "America/Argentina/Buenos_Aires"));
    rp_cron_free(parse_ok("* * * * *", "EST5EDT"));
    rp_cron_free(NULL);

    parse_err_tz("* * * * *", "Mars/Base", "cron: unknown time zone \"Mars/Base\"");
    parse_err_tz("* * * * *", "europe/berlin", "cron: unknown time zone \"europe/berlin\"");
    parse_err_tz("* * * * *", "Europe", "cron: unknown time zone \"Europe\"");
    parse_err_tz("* * * * *", "Europe/", "cron: unknown time zone \"Europe/\"");
    parse_err_tz("* * * * *", "/etc/localtime", "cron: unknown time zone \"/etc/localtime\"");
    parse_err_tz("* * * * *", "../../etc/passwd", "cron: unknown time zone");
    parse_err_tz("* * * * *", "Europe/../UTC", "cron: unknown time zone");
    parse_err_tz("* * * * *", "zone.tab", "cron: unknown time zone \"zone.tab\"");
    parse_err_tz("* * * * *", "leapseconds", "cron: unknown time zone \"leapseconds\"");
    parse_err_tz("* * * * *", "localtime", "cron: unknown time zone \"localtime\"");
    parse_err_tz("* * * * *", "right/UTC", "cron: unknown time zone \"right/UTC\"");
    parse_err_tz("* * * * *", "+05:30", "cron: unknown time zone \"+05:30\"");
    parse_err_tz("* * * * *", "Europe/Berlin\n", "cron: unknown time zone (byte 0x0A");
    parse_err_tz("* * * * *", "America/Argentina/Buenos_Aires/America/Argentina/Buenos_Aires/Extra",
                 "cron: time zone name is longer than 64 bytes");
    /* the expression is checked first */
    parse_err_tz("* 24 * * *", "Mars/Base", "cron: field 2 (hour)");
}

/* ---- next fire, UTC ------------------------------------------------------------------------- */

static void test_utc_calendar(void **state)
{
    (void)state;
    expect_fires("0 0 29 2 *", NULL, "2025-01-01T00:00:00Z", "2028-02-29T00:00:00Z",
                 "2032-02-29T00:00:00Z", NULL);
    expect_fires("0 12 31 * *", NULL, "2026-04-01T00:00:00Z", "2026-05-31T12:00:00Z",
                 "2026-07-31T12:00:00Z", "2026-08-31T12:00:00Z", NULL);
    expect_fires("0 0 30 * *", NULL, "2026-01-30T00:00:00Z", "2026-03-30T00:00:00Z", NULL);
    expect_fires("0 0 1 * *", NULL, "2026-12-31T23:59:30Z", "2027-01-01T00:00:00Z", NULL);
    expect_fires("* * * * *", NULL, "2026-12-31T23:59:00Z", "2027-01-01T00:00:00Z",
                 "2027-01-01T00:01:00Z", NULL);
    /* 2000 was a leap year (divisible by 400), 2100 will not be */
    expect_fires("0 0 29 2 *", NULL, "1999-01-01T00:00:00Z", "2000-02-29T00:00:00Z", NULL);
    expect_fires("0 0 1 3 *", NULL, "2100-02-28T00:00:00Z", "2100-03-01T00:00:00Z", NULL);
    /* before 1970 */
    expect_fires("0 0 1 1 *", NULL, "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", NULL);
    expect_fires("30 6 * * *", NULL, "1900-01-01T00:00:00Z", "1900-01-01T06:30:00Z", NULL);
}

static void test_strictly_after(void **state)
{
    (void)state;
    struct rp_cron *c = parse_ok("0 * * * *", NULL);
    int64_t next, hour = ms("2026-01-01T00:00:00Z");
    assert_int_equal(rp_cron_next(c, hour, &next), RP_OK);
    assert_int_equal(next, hour + 3600000);
    assert_int_equal(rp_cron_next(c, hour - 1, &next), RP_OK);
    assert_int_equal(next, hour);
    assert_int_equal(rp_cron_next(c, hour + 1, &next), RP_OK);
    assert_int_equal(next, hour + 3600000);
    assert_int_equal(rp_cron_next(c, -1, &next), RP_OK);
    assert_int_equal(next, 0);
    next = 42;
    assert_int_equal(rp_cron_next(c, INT64_MAX, &next), RP_EINVAL);
    assert_int_equal(rp_cron_next(c, INT64_MIN, &next), RP_EINVAL);
    assert_int_equal(rp_cron_next(c, ms("9999-12-31T23:59:59Z") + 1000, &next), RP_EINVAL);
    assert_int_equal(next, 42);
    assert_int_equal(rp_cron_next(c, ms("9999-12-31T23:59:59Z"), &next), RP_OK);
    assert_int_equal(next, ms("9999-12-31T23:59:59Z") + 1000); /* 10000-01-01T00:00Z */
    rp_cron_free(c);
}

static void test_day_rule(void **state)
{
    (void)state;
    /* both restricted: the 13th OR a Friday (April 2026: Fridays 3, 10, 17; the 13th a Monday) */
    expect_fires("0 0 13 * FRI", NULL, "2026-04-01T00:00:00Z", "2026-04-03T00:00:00Z",
                 "2026-04-10T00:00:00Z", "2026-04-13T00:00:00Z", "2026-04-17T00:00:00Z", NULL);
    expect_fires("0 0 1,15 * 1", NULL, "2026-04-01T00:00:00Z", "2026-04-06T00:00:00Z",
                 "2026-04-13T00:00:00Z", "2026-04-15T00:00:00Z", "2026-04-20T00:00:00Z", NULL);
    /* a field starting with `*` is unrestricted (Vixie): odd days AND Mondays (13, 27) */
    expect_fires("0 0 */2 * MON", NULL, "2026-04-01T00:00:00Z", "2026-04-13T00:00:00Z",
                 "2026-04-27T00:00:00Z", NULL);
    /* only one restricted: it alone decides */
    expect_fires("0 0 13 * *", NULL, "2026-04-01T00:00:00Z", "2026-04-13T00:00:00Z", NULL);
    expect_fires("0 0 * * FRI", NULL, "2026-04-01T00:00:00Z", "2026-04-03T00:00:00Z", NULL);
    /* a 1-31 range counts as restricted: every day of month, OR Fridays = every day */
    expect_fires("0 0 1-31 * FRI", NULL, "2026-04-01T00:00:00Z", "2026-04-02T00:00:00Z",
                 "2026-04-03T00:00:00Z", NULL);
    /* Friday the 13th, written the Vixie way, is not possible: the OR gives every Friday */
    expect_fires("0 0 13 2 FRI", NULL, "2026-01-01T00:00:00Z", "2026-02-06T00:00:00Z",
                 "2026-02-13T00:00:00Z", "2026-02-20T00:00:00Z", "2026-02-27T00:00:00Z",
                 "2027-02-05T00:00:00Z", NULL);
}

static void test_no_match(void **state)
{
    (void)state;
    expect_none("0 0 30 2 *", "2026-01-01T00:00:00Z");
    expect_none("0 0 31 4,6,9,11 *", "2026-01-01T00:00:00Z");
    /* 2096 is the last leap year before 2104: more than 5 years */
    expect_none("0 0 29 2 *", "2096-03-01T00:00:00Z");
    /* Feb 9 on a Sunday (`*`/7 makes it AND): 1975 is 1865 days after 1970-01-01, too far;
     * 1986 is 1825 days after 1981-02-10 */
    expect_none("0 0 9 2 */7", "1970-01-01T00:00:00Z");
    expect_fires("0 0 9 2 */7", NULL, "1981-02-10T00:00:00Z", "1986-02-09T00:00:00Z", NULL);
    /* but 2028 is within 5 years of 2024-03-01 */
    expect_fires("0 0 29 2 *", NULL, "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z", NULL);
}

/* ---- next fire, time zones and DST ------------------------------------------------------- */

/* Berlin 2026-03-29: 02:00 CET -> 03:00 CEST at 01:00Z. */
static void test_berlin_spring_forward(void **state)
{
    (void)state;
    const char *tz = "Europe/Berlin";
    /* 02:30 does not exist: once at 03:00 CEST, then 02:30 CEST the next day */
    expect_fires("30 2 * * *", tz, "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z",
                 "2026-03-30T00:30:00Z", NULL);
    /* 01:00 CET, then 02:00 (gap) and 03:00 share one fire at 03:00 CEST, then 04:00 CEST */
    expect_fires("0 * * * *", tz, "2026-03-28T23:30:00Z", "2026-03-29T00:00:00Z",
                 "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z", NULL);
    expect_fires("*/15 * * * *", tz, "2026-03-29T00:50:00Z", "2026-03-29T01:00:00Z",
                 "2026-03-29T01:15:00Z", NULL);
    /* a schedule inside the gap only: every minute of it collapses into one fire */
    expect_fires("* 2 * * *", tz, "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z",
                 "2026-03-30T00:00:00Z", NULL);
}

/* Berlin 2026-10-25: 03:00 CEST -> 02:00 CET at 01:00Z; 02:00-02:59 happens twice. */
static void test_berlin_fall_back(void **state)
{
    (void)state;
    const char *tz = "Europe/Berlin";
    expect_fires("30 2 * * *", tz, "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z",
                 "2026-10-26T01:30:00Z", NULL);
    expect_fires("30 1 * * *", tz, "2026-10-24T12:00:00Z", "2026-10-24T23:30:00Z",
                 "2026-10-26T00:30:00Z", NULL);
    /* 01:00 CEST, 02:00 CEST, (02:00 CET skipped), 03:00 CET, 04:00 CET */
    expect_fires("0 * * * *", tz, "2026-10-24T22:30:00Z", "2026-10-24T23:00:00Z",
                 "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z", NULL);
    expect_fires("*/15 * * * *", tz, "2026-10-25T00:20:00Z", "2026-10-25T00:30:00Z",
                 "2026-10-25T00:45:00Z", "2026-10-25T02:00:00Z", "2026-10-25T02:15:00Z", NULL);
    /* asked from inside the second pass (02:10 CET): nothing more until 03:00 CET */
    expect_fires("*/15 * * * *", tz, "2026-10-25T01:10:00Z", "2026-10-25T02:00:00Z", NULL);
}

/* New York 2026-03-08 02:00 EST -> 03:00 EDT at 07:00Z; 2026-11-01 02:00 EDT -> 01:00 EST at
 * 06:00Z. */
static void test_new_york(void **state)
{
    (void)state;
    const char *tz = "America/New_York";
    expect_fires("30 2 * * *", tz, "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z",
                 "2026-03-09T06:30:00Z", NULL);
    expect_fires("0 * * * *", tz, "2026-03-08T05:30:00Z", "2026-03-08T06:00:00Z",
                 "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z", NULL);
    /* 01:30 happens twice: fires at 01:30 EDT only */
    expect_fires("30 1 * * *", tz, "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z",
                 "2026-11-02T06:30:00Z", NULL);
    expect_fires("30 2 * * *", tz, "2026-10-31T12:00:00Z", "2026-11-01T07:30:00Z",
                 "2026-11-02T07:30:00Z", NULL);
    expect_fires("0 * * * *", tz, "2026-11-01T04:30:00Z", "2026-11-01T05:00:00Z",
                 "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z", NULL);
}

static void test_odd_offsets(void **state)
{
    (void)state;
    expect_fires("0 9 * * *", "Asia/Kolkata", "2026-01-01T00:00:00Z", "2026-01-01T03:30:00Z",
                 "2026-01-02T03:30:00Z", NULL);
    expect_fires("0 * * * *", "Asia/Kolkata", "2026-01-01T00:00:00Z", "2026-01-01T00:30:00Z",
                 "2026-01-01T01:30:00Z", NULL);
    expect_fires("0 0 * * *", "Asia/Kathmandu", "2026-01-01T00:00:00Z", "2026-01-01T18:15:00Z",
                 "2026-01-02T18:15:00Z", NULL);
    expect_fires("*/30 * * * *", "Asia/Kathmandu", "2026-01-01T00:00:00Z", "2026-01-01T00:15:00Z",
                 "2026-01-01T00:45:00Z", NULL);
    /* Lord Howe moves by 30 minutes: 02:00 -> 02:30 on 2026-10-04, 02:00 -> 01:30 on
     * 2026-04-05 */
    expect_fires("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00:00Z",
                 "2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z", NULL);
    expect_fires("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00:00Z",
                 "2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z", NULL);
    /* Samoa skipped 2011-12-30 entirely: its noon fires when the gap ends, at midnight */
    expect_fires("0 12 * * *", "Pacific/Apia", "2011-12-28T12:00:00Z", "2011-12-28T22:00:00Z",
                 "2011-12-29T22:00:00Z", "2011-12-30T10:00:00Z", "2011-12-30T22:00:00Z", NULL);
    /* local mean time before 1893: Berlin was +00:53:28, and the switch to +01:00 skipped
     * 00:00:00-00:06:31 local; midnight fires when the gap ends, at 00:06:32 */
    expect_fires("0 12 * * *", "Europe/Berlin", "1893-03-01T00:00:00Z", "1893-03-01T11:06:32Z",
                 NULL);
    expect_fires("0 0 * * *", "Europe/Berlin", "1893-03-31T12:00:00Z", "1893-03-31T23:06:32Z",
                 "1893-04-01T23:00:00Z", NULL);
    /* after 2037 the zone's rules still apply: Berlin summer time, 2040-07-01 */
    expect_fires("0 12 1 7 *", "Europe/Berlin", "2040-01-01T00:00:00Z", "2040-07-01T10:00:00Z",
                 NULL);
}

/* ---- speed and sharing ------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_timing(void **state)
{
    (void)state;
    struct rp_cron *sparse = parse_ok("0 0 29 2 *", "Europe/Berlin");
    struct rp_cron *dense = parse_ok("*/5 9-17 * * MON-FRI", "America/New_York");
    int64_t t0 = ms("2026-01-01T00:00:00Z"), next, sum = 0;
    const int n = 100000;

    double start = now_s();
    for (int i = 0; i < n; i++) {
        assert_int_equal(rp_cron_next(sparse, t0 + (int64_t)i * 7919000, &next), RP_OK);
        sum += next;
    }
    double sparse_s = now_s() - start;
    start = now_s();
    for (int i = 0; i < n; i++) {
        assert_int_equal(rp_cron_next(dense, t0 + (int64_t)i * 7919000, &next), RP_OK);
        sum += next;
    }
    double dense_s = now_s() - start;
    print_message("cron timing: %d calls of \"0 0 29 2 *\" (Berlin) in %.3f s (%.2f us/call), "
                  "of \"*/5 9-17 * * MON-FRI\" (New York) in %.3f s (%.2f us/call)\n",
                  n, sparse_s, sparse_s * 1e6 / n, dense_s, dense_s * 1e6 / n);
    assert_true(sum != 0);
    assert_true(sparse_s < 2.0);
    assert_true(dense_s < 2.0);
    rp_cron_free(sparse);
    rp_cron_free(dense);
}

static gpointer worker_thread(gpointer data)
{
    const struct rp_cron *c = data;
    int64_t t = ms("2026-01-01T00:00:00Z"), next;
    uint64_t check = 0;
    for (int i = 0; i < 5000; i++, t = next) {
        if (rp_cron_next(c, t, &next) != RP_OK)
            return NULL;
        check = check * 31 + (uint64_t)next;
    }
    return g_memdup2(&check, sizeof(check));
}

static void test_shared_across_threads(void **state)
{
    (void)state;
    struct rp_cron *c = parse_ok("*/15 * * * *", "Europe/Berlin");
    uint64_t *want = worker_thread(c);
    assert_non_null(want);
    GThread *threads[4];
    for (int i = 0; i < 4; i++)
        threads[i] = g_thread_new("cron", worker_thread, c);
    for (int i = 0; i < 4; i++) {
        uint64_t *got = g_thread_join(threads[i]);
        assert_non_null(got);
        assert_int_equal(*got, *want);
        g_free(got);
    }
    g_free(want);
    rp_cron_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists_ranges_steps),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_macros),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_time_zones),
        cmocka_unit_test(test_utc_calendar),
        cmocka_unit_test(test_strictly_after),
        cmocka_unit_test(test_day_rule),
        cmocka_unit_test(test_no_match),
        cmocka_unit_test(test_berlin_spring_forward),
        cmocka_unit_test(test_berlin_fall_back),
        cmocka_unit_test(test_new_york),
        cmocka_unit_test(test_odd_offsets),
        cmocka_unit_test(test_timing),
        cmocka_unit_test(test_shared_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
