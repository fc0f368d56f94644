/* libFuzzer target for cron expressions (common/src/cron.c): the first line of the input is the
 * expression, the second (optional) the time zone, the third (optional) a start time in Unix ms.
 * A parse fails with RP_EINVAL and a "cron: " message, or the expression is chained through
 * rp_cron_next() from several start times (DST changes, a skipped day, local mean time, the
 * ends of the accepted range): each fire must be strictly after its start, within the search
 * horizon, on a whole local minute (or the end of a gap), and the same when asked from just before
 * it or from halfway. GLib criticals and warnings are fatal, so a zone name that upsets GLib is
 * found too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "rampart/cron.h"
#include "rampart/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int64_t starts[] = {
    0,                           /* 1970-01-01T00:00Z */
    1774744200000,               /* 2026-03-29T00:30Z, Berlin spring forward */
    1792888800000,               /* 2026-10-25T00:40Z, Berlin fall back */
    1793511000000,               /* 2026-11-01T05:30Z, New York fall back */
    1325152800000,               /* 2011-12-29T10:00Z, Samoa skips a day */
    -2422059000000,              /* 1893-03-31T21:50Z, Berlin leaves local mean time */
    -62135596800000,             /* 0001-01-01T00:00Z, the first accepted start */
    253402300799999 - 864000000, /* ten days before the last accepted start */
};

static int64_t local_s(GTimeZone *tz, int64_t s)
{
    return s + g_time_zone_get_offset(tz, g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, s));
}

static void chain(const struct rp_cron *c, GTimeZone *tz, int64_t t)
{
    const int64_t horizon = (int64_t)(RP_CRON_SEARCH_DAYS + 2) * 86400000;
    for (int i = 0; i < 6; i++) {
        int64_t next = 0, again = 0;
        int rc = rp_cron_next(c, t, &next);
        if (rc == RP_ENOENT || rc == RP_EINVAL)
            return;
        if (rc != RP_OK || next <= t || next - t > horizon || next % 1000 != 0)
            abort();
        if (local_s(tz, next / 1000) % 60 != 0 &&
            local_s(tz, next / 1000) - local_s(tz, next / 1000 - 1) == 1)
            abort(); /* every fire is a whole local minute, or the end of a gap */
        if (next > 253402300799999)
            return; /* past 9999: not accepted as a start, so the checks below cannot run */
        if (rp_cron_next(c, next - 1, &again) != RP_OK || again != next)
            abort();
        if (rp_cron_next(c, t + (next - t) / 2, &again) != RP_OK || again != next)
            abort();
        t = next;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
        init = 1;
    }
    if (size > 4096)
        return 0;
    char *text = rp_xstrndup((const char *)data, size); /* stops at a NUL byte */
    char *tz = strchr(text, '\n'), *start = NULL;
    if (tz) {
        *tz++ = '\0';
        start = strchr(tz, '\n');
        if (start)
            *start++ = '\0';
    }

    struct rp_cron *c = NULL;
    struct rp_error err = {0};
    int rc = rp_cron_parse(text, tz, &c, &err);
    if (rc != RP_OK) {
        if (rc != RP_EINVAL || c || strncmp(err.msg, "cron: ", 6) != 0)
            abort();
        goto out;
    }
    GTimeZone *zone = g_time_zone_new_identifier(tz && *tz ? tz : "UTC");
    if (!zone)
        abort(); /* the parser accepted it, so GLib knows it */
    for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++)
        chain(c, zone, starts[i]);
    if (start)
        chain(c, zone, strtoll(start, NULL, 10));
    g_time_zone_unref(zone);
    rp_cron_free(c);
out:
    free(text);
    return 0;
}
