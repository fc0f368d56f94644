/* Cron expressions (common/src/cron.c): parsing the classic 5-field syntax into bit sets, and
 * computing the next fire time in a time zone. Pure functions of their arguments (no clock; GLib
 * reads the zone from the tz database once, at parse time), so the scheduler's claim loop, the
 * dashboard (which checks a schedule and sets its first fire on save) and the unit tests call the
 * same code. The notes below on syntax and on daylight saving time are the reference for the
 * user documentation. */
#ifndef RAMPART_CRON_H
#define RAMPART_CRON_H

#include <stdint.h>

#include "rampart/error.h"

/* Syntax: `minute hour day-of-month month day-of-week`, fields separated by spaces or tabs.
 * Each field is `*` or a comma-separated list of items: `n`, `a-b`, `*`/n, `a-b/n`, `a/n`
 * (= a-MAX/n). Months may be written JAN-DEC, weekdays SUN-SAT (case-insensitive); weekdays
 * are 0-7 with 0 and 7 both Sunday (`FRI-SUN` is allowed and means 5-7). Macros: @hourly,
 * @daily, @midnight, @weekly, @monthly, @yearly, @annually. Seconds (6 fields), `?`, `L`,
 * `W`, `#` and @reboot are not supported.
 *
 * Day rule (Vixie cron): if the day-of-month field and the day-of-week field are both
 * restricted, a day matches when EITHER matches ("0 0 13 * FRI" = every 13th and every
 * Friday); if one of them starts with `*` (including `*`/n), both must match.
 *
 * Time zones and daylight saving time. Fire times are computed in local wall-clock time of the
 * schedule's zone; each matching local minute is mapped to a real instant as follows:
 *  - a local time that does not exist (spring forward, e.g. 02:30 on a day when clocks jump
 *    from 02:00 to 03:00) fires at the instant the gap ends (03:00 local), once; it is never
 *    skipped. Several nonexistent minutes collapse into that one fire ("*"/15 fires once for
 *    02:00, 02:15, 02:30, 02:45 and 03:00, then at 03:15);
 *  - a local time that exists twice (fall back, e.g. 01:30 when clocks go from 02:00 back to
 *    01:00) fires once, at its first occurrence (the daylight-time instant). Minutes of the
 *    repeated hour do not fire again in the second pass: "0 * * * *" fires at 01:00 daylight
 *    time, then at 02:00 standard time, two real hours later; "*"/15 fires four times in the
 *    first pass and not in the second.
 * The rule in one line: the next fire is the earliest instant, strictly after the given one,
 * that is the first instant showing a matching local minute (or, inside a gap, the end of the
 * gap). The result is a whole minute in local time; the one exception is a gap that does not
 * end on a whole minute, which only happened when zones left local mean time (Berlin, 1893:
 * +00:53:28 -> +01:00 skipped 00:00:00-00:06:31, so "0 0 * * *" fired at 00:06:32 that day).
 * Zone data comes from GLib (GTimeZone over the system tz database), including its rules for
 * years after 2037. */

/* A parsed expression bound to a time zone. Immutable once parsed: one object may be shared
 * by any number of threads calling rp_cron_next() at the same time. */
struct rp_cron;

/* Longest expression accepted, in bytes (a cap on outside input). */
#define RP_CRON_MAX_LEN 200
/* How far ahead rp_cron_next() looks before giving up with RP_ENOENT, in days (5 years). */
#define RP_CRON_SEARCH_DAYS (5 * 365 + 2)

/* Parse a 5-field expression (or a macro) for the time zone `tz`: an IANA name such as
 * "Europe/Berlin" (NULL or "" mean "UTC"; names are case-sensitive as in the tz database;
 * GLib also accepts POSIX names such as "EST5EDT"; paths and the database's non-zone files are
 * refused). Returns RP_OK and a new object in *out (free it with rp_cron_free()), or
 * RP_EINVAL with a message in `err` that starts with "cron: " and names the field and the
 * problem, e.g. "cron: field 2 (hour): 24 is out of range 0-23" or
 * `cron: unknown time zone "Mars/Base"`. Input longer than RP_CRON_MAX_LEN bytes is
 * refused. Never crashes on any input. Thread-safe. */
int rp_cron_parse(const char *expr, const char *tz, struct rp_cron **out,
                  struct rp_error *err) RP_MUST_CHECK;

/* Free a parsed expression. Accepts NULL. */
void rp_cron_free(struct rp_cron *c);

/* The first fire time strictly after `after_ms` (Unix time in milliseconds), as Unix ms in
 * *next_ms, following the DST rules above. Returns RP_OK; RP_ENOENT when nothing matches
 * within RP_CRON_SEARCH_DAYS days of local time (e.g. "0 0 30 2 *", or "0 0 29 2 *" across
 * 2100, which is not a leap year); RP_EINVAL when `after_ms` is outside the years 0001-9999.
 * *next_ms is set only on RP_OK. Takes about a microsecond: it skips by fields (month, day,
 * hour, minute), never minute by minute. Thread-safe. */
int rp_cron_next(const struct rp_cron *c, int64_t after_ms, int64_t *next_ms) RP_MUST_CHECK;

#endif
