/* Cron expressions (see rampart/cron.h for the syntax and the DST rules): a parser that turns the
 * five fields into bit sets, and rp_cron_next(), which walks local wall-clock time field by field
 * (next matching month, then day, then hour, then minute) and maps each matching local minute
 * to a real instant with GLib's GTimeZone. Wall times are handled as "local seconds": the civil
 * date and time counted as if the zone were UTC, so day arithmetic needs no zone at all. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "rampart/cron.h"
#include "rampart/mem.h"

#define MAX_TZ_LEN 64
#define DAY_SECS   86400
/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z */
#define MIN_AFTER_MS (-62135596800000LL)
#define MAX_AFTER_MS 253402300799999LL

struct rp_cron {
    uint64_t minutes; /* bit m: minute m matches (0-59) */
    uint32_t hours;   /* bit h: hour h (0-23) */
    uint32_t doms;    /* bit d: day of month d (1-31) */
    uint32_t months;  /* bit m: month m (1-12) */
    uint32_t dows;    /* bit d: weekday d (0-6, 0 = Sunday; 7 is folded into 0) */
    bool day_or;      /* both day fields restricted: a day matches if either matches */
    GTimeZone *tz;
};

/* ---- parsing ------------------------------------------------------------------------------ */

enum { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, N_FIELDS };

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const dow_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static const struct field_def {
    const char *name;
    int min, max;
    const char *const *names; /* names[i] is the value min + i (months) or i (weekdays) */
    int n_names;
    const char *name_range; /* for messages */
} field_defs[N_FIELDS] = {
    {"minute", 0, 59, NULL, 0, NULL},
    {"hour", 0, 23, NULL, 0, NULL},
    {"day-of-month", 1, 31, NULL, 0, NULL},
    {"month", 1, 12, month_names, 12, "JAN-DEC"},
    {"day-of-week", 0, 7, dow_names, 7, "SUN-SAT"},
};

static const struct macro {
    const char *name;
    const char *expr;
} macros[] = {
    {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},   {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static char upper(char ch)
{
    return ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
}

/* Where a field's item is being parsed, for messages. */
struct item_ctx {
    int field;        /* F_* */
    const char *item; /* the list item, not NUL-terminated */
    int item_len;
    struct rp_error *err;
};

/* RP_EINVAL with "cron: field N (name): " and the formatted rest. */
static int field_error(const struct item_ctx *x, const char *fmt, ...) RP_PRINTF(2, 3);

static int field_error(const struct item_ctx *x, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return rp_error_set(x->err, RP_EINVAL, "cron: field %d (%s): %s", x->field + 1,
                        field_defs[x->field].name, what);
}

/* The character at p does not belong there (or the item ended: then say what was expected). */
static int unexpected(const struct item_ctx *x, const char *p, const char *expected)
{
    if (p >= x->item + x->item_len)
        return field_error(x, "%s in `%.*s`", expected, x->item_len, x->item);
    if (*p == '?')
        return field_error(x, "`?` is not supported; use `*` instead");
    return field_error(x, "unexpected `%c` in `%.*s`", *p, x->item_len, x->item);
}

/* Parse a number or a name at *p (within the item). *is_name tells which it was. */
static int parse_value(const struct item_ctx *x, const char **p, int *value, bool *is_name)
{
    const struct field_def *f = &field_defs[x->field];
    const char *end = x->item + x->item_len, *s = *p, *q = s;
    *is_name = false;
    if (q < end && is_digit(*q)) {
        long v = 0;
        while (q < end && is_digit(*q)) {
            if (v < 100000) /* long digit strings stay out of range without overflowing */
                v = v * 10 + (*q - '0');
            q++;
        }
        if (v < f->min || v > f->max)
            return field_error(x, "%.*s is out of range %d-%d", (int)(q - s), s, f->min, f->max);
        *value = (int)v;
        *p = q;
        return RP_OK;
    }
    if (q < end && is_alpha(*q)) {
        while (q < end && is_alpha(*q))
            q++;
        int len = (int)(q - s);
        if (!f->names)
            return field_error(x, "expected a number, got `%.*s`", len, s);
        for (int i = 0; len == 3 && i < f->n_names; i++) {
            const char *n = f->names[i];
            if (upper(s[0]) == n[0] && upper(s[1]) == n[1] && upper(s[2]) == n[2]) {
                *value = x->field == F_MONTH ? f->min + i : i;
                *is_name = true;
                *p = q;
                return RP_OK;
            }
        }
        return field_error(x, "unknown name `%.*s`; expected %s", len, s, f->name_range);
    }
    return unexpected(x, q, "expected a number");
}

/* One list item: `*`, `n` or `a-b`, optionally followed by `/step`. Adds its values to *bits. */
static int parse_item(const struct item_ctx *x, uint64_t *bits)
{
    const struct field_def *f = &field_defs[x->field];
    const char *p = x->item, *end = x->item + x->item_len;
    int lo, hi, step = 1, rc;
    bool single = false, name;

    if (*p == '*') {
        lo = f->min;
        hi = f->max;
        p++;
    } else {
        rc = parse_value(x, &p, &lo, &name);
        if (rc != RP_OK)
            return rc;
        hi = lo;
        single = true;
        if (p < end && *p == '-') {
            p++;
            rc = parse_value(x, &p, &hi, &name);
            if (rc != RP_OK)
                return rc;
            /* FRI-SUN, SAT-SUN: a range that ends on Sunday by name ends on 7 */
            if (x->field == F_DOW && name && hi == 0 && lo > 0)
                hi = 7;
            if (lo > hi)
                return field_error(x, "range `%.*s` starts after it ends", (int)(p - x->item),
                                   x->item);
            single = false;
        }
    }
    if (p < end && *p == '/') {
        const char *s = ++p;
        long v = 0;
        int span = x->field == F_DOW ? 7 : f->max - f->min + 1;
        while (p < end && is_digit(*p)) {
            if (v < 100000)
                v = v * 10 + (*p - '0');
            p++;
        }
        if (p == s)
            return unexpected(x, p, "expected a step after `/`");
        if (v == 0)
            return field_error(x, "step 0 is not allowed in `%.*s`", x->item_len, x->item);
        if (v > span)
            return field_error(x, "step %.*s is larger than %d in `%.*s`", (int)(p - s), s, span,
                               x->item_len, x->item);
        step = (int)v;
        if (single)
            hi = f->max; /* a/n = a-MAX/n */
    }
    if (p < end)
        return unexpected(x, p, "");
    for (int v = lo; v <= hi; v += step)
        *bits |= (uint64_t)1 << v;
    return RP_OK;
}

/* A whole field: a comma-separated list of items. */
static int parse_field(int field, const char *s, int len, uint64_t *bits, struct rp_error *err)
{
    const char *end = s + len;
    *bits = 0;
    for (const char *p = s;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        struct item_ctx x = {field, p, (int)(item_end - p), err};
        if (item_end == p)
            return field_error(&x, "empty item in list `%.*s`", len, s);
        int rc = parse_item(&x, bits);
        if (rc != RP_OK)
            return rc;
        if (!comma)
            break;
        p = comma + 1;
    }
    return RP_OK;
}

/* Split on white space and parse the five fields into `c`. */
static int parse_fields(struct rp_cron *c, const char *expr, struct rp_error *err)
{
    const char *tok[N_FIELDS];
    int tok_len[N_FIELDS], n = 0;
    uint64_t bits[N_FIELDS];

    for (const char *p = expr; *p;) {
        while (*p && is_space(*p))
            p++;
        if (!*p)
            break;
        const char *s = p;
        while (*p && !is_space(*p))
            p++;
        if (n < N_FIELDS) {
            tok[n] = s;
            tok_len[n] = (int)(p - s);
        }
        n++;
    }
    if (n == 0)
        return rp_error_set(err, RP_EINVAL,
                            "cron: empty expression; expected 5 fields (minute hour day-of-month "
                            "month day-of-week) or a macro such as @daily");
    if (n == 6)
        return rp_error_set(err, RP_EINVAL,
                            "cron: 6 fields given, expected 5 (minute hour day-of-month month "
                            "day-of-week); seconds are not supported");
    if (n != N_FIELDS)
        return rp_error_set(err, RP_EINVAL,
                            "cron: %d field%s given, expected 5 (minute hour day-of-month month "
                            "day-of-week)",
                            n, n == 1 ? "" : "s");
    for (int i = 0; i < N_FIELDS; i++) {
        int rc = parse_field(i, tok[i], tok_len[i], &bits[i], err);
        if (rc != RP_OK)
            return rc;
    }
    c->minutes = bits[F_MINUTE];
    c->hours = (uint32_t)bits[F_HOUR];
    c->doms = (uint32_t)bits[F_DOM];
    c->months = (uint32_t)bits[F_MONTH];
    c->dows = (uint32_t)((bits[F_DOW] & 0x7f) | ((bits[F_DOW] >> 7) & 1)); /* 7 is Sunday */
    /* Vixie cron: a day field starting with `*` counts as unrestricted for the OR rule */
    c->day_or = tok[F_DOM][0] != '*' && tok[F_DOW][0] != '*';
    return RP_OK;
}

/* Expand a macro (`s` starts with '@') into `c`. */
static int parse_macro(struct rp_cron *c, const char *s, struct rp_error *err)
{
    const char *p = s;
    while (*p && !is_space(*p))
        p++;
    int len = (int)(p - s);
    const char *rest = p;
    while (*rest && is_space(*rest))
        rest++;
    for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
        if ((int)strlen(macros[i].name) != len ||
            g_ascii_strncasecmp(s, macros[i].name, (gsize)len) != 0)
            continue;
        if (*rest)
            return rp_error_set(err, RP_EINVAL,
                                "cron: unexpected `%s` after %.*s; a macro stands alone", rest, len,
                                s);
        return parse_fields(c, macros[i].expr, err);
    }
    if (len == 7 && g_ascii_strncasecmp(s, "@reboot", 7) == 0)
        return rp_error_set(err, RP_EINVAL, "cron: @reboot is not supported (it has no fire time)");
    return rp_error_set(err, RP_EINVAL,
                        "cron: unknown macro `%.*s`; expected one of @hourly, @daily, @midnight, "
                        "@weekly, @monthly, @yearly, @annually",
                        len, s);
}

/* A name that can only be a zone of the tz database: components of [A-Za-z0-9_+-] separated by
 * '/', each starting with a letter. This refuses paths ("/etc/..", ".."), and GLib's offset
 * and POSIX rule forms with punctuation; the checks after it refuse the database's files that
 * are not zones (GLib would complain loudly about them) and host-dependent or leap-second ones. */
static bool tz_name_ok(const char *tz)
{
    static const char *const refused[] = {"leapseconds", "localtime", "posixrules", "right"};
    const char *comp = tz;
    for (const char *p = tz;; p++) {
        if (p == comp && !is_alpha(*p))
            return false; /* empty, a leading or doubled '/', or a trailing one */
        if (*p && *p != '/') {
            if (!is_alpha(*p) && !is_digit(*p) && *p != '_' && *p != '-' && *p != '+')
                return false;
            continue;
        }
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
            if (strlen(refused[i]) == (size_t)(p - comp) &&
                !memcmp(comp, refused[i], (size_t)(p - comp)))
                return false;
        if (!*p)
            return true;
        comp = p + 1;
    }
}

static int open_tz(const char *tz, GTimeZone **out, struct rp_error *err)
{
    size_t len = strnlen(tz, MAX_TZ_LEN + 1);
    if (len > MAX_TZ_LEN)
        return rp_error_set(err, RP_EINVAL, "cron: time zone name is longer than %d bytes",
                            MAX_TZ_LEN);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)tz[i] < 0x21 || (unsigned char)tz[i] > 0x7e)
            return rp_error_set(err, RP_EINVAL,
                                "cron: unknown time zone (byte 0x%02X in its name); expected an "
                                "IANA name such as \"Europe/Berlin\"",
                                (unsigned char)tz[i]);
    GTimeZone *z = tz_name_ok(tz) ? g_time_zone_new_identifier(tz) : NULL;
    if (!z)
        return rp_error_set(err, RP_EINVAL,
                            "cron: unknown time zone \"%s\"; expected an IANA name such as "
                            "\"Europe/Berlin\"",
                            tz);
    *out = z;
    return RP_OK;
}

int rp_cron_parse(const char *expr, const char *tz, struct rp_cron **out, struct rp_error *err)
{
    int rc = RP_EINVAL;
    struct rp_cron *c = rp_xcalloc(1, sizeof(*c));

    if (!expr) {
        rc = rp_error_set(err, RP_EINVAL, "cron: no expression given");
        goto out;
    }
    size_t len = strnlen(expr, RP_CRON_MAX_LEN + 1);
    if (len > RP_CRON_MAX_LEN) {
        rc = rp_error_set(err, RP_EINVAL, "cron: expression is longer than %d bytes",
                          RP_CRON_MAX_LEN);
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)expr[i];
        if (!is_space((char)b) && (b < 0x21 || b > 0x7e)) {
            rc = rp_error_set(err, RP_EINVAL, "cron: unexpected byte 0x%02X at position %zu", b,
                              i + 1);
            goto out;
        }
    }
    const char *s = expr;
    while (*s && is_space(*s))
        s++;
    rc = *s == '@' ? parse_macro(c, s, err) : parse_fields(c, expr, err);
    if (rc != RP_OK)
        goto out;
    rc = open_tz(tz && *tz ? tz : "UTC", &c->tz, err);
    if (rc != RP_OK)
        goto out;
    *out = c;
    c = NULL;
out:
    rp_cron_free(c);
    return rc;
}

void rp_cron_free(struct rp_cron *c)
{
    if (!c)
        return;
    if (c->tz)
        g_time_zone_unref(c->tz);
    free(c);
}

/* ---- next fire time ----------------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). `d` may run
 * past the end of the month; the result then lies in the next month. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
        return 29;
    return dim[m - 1];
}

/* Lowest set bit of `mask` at position >= from, or -1. */
static int next_bit(uint64_t mask, int from)
{
    if (from > 63)
        return -1;
    mask &= ~(uint64_t)0 << from;
    return mask ? __builtin_ctzll(mask) : -1;
}

/* The days of month m of year y that match (bit d = day d). */
static uint32_t day_mask(const struct rp_cron *c, int64_t y, int m)
{
    int dim = days_in_month(y, m);
    int64_t z = days_from_civil(y, m, 1) + 4;  /* 1970-01-01 was a Thursday (4) */
    int dow1 = (int)(z - floor_div(z, 7) * 7); /* weekday of the 1st, 0 = Sunday */
    uint64_t week = 0, dows = 0;
    for (int k = 0; k < 7; k++)
        if (c->dows & (1u << ((dow1 + k) % 7)))
            week |= (uint64_t)1 << k;
    for (int k = 1; k <= 31; k += 7)
        dows |= week << k;
    uint32_t by_dow = (uint32_t)dows;
    uint32_t valid = (uint32_t)(((uint64_t)1 << (dim + 1)) - 2); /* bits 1..dim */
    return (c->day_or ? (c->doms | by_dow) : (c->doms & by_dow)) & valid;
}

/* UTC offset in seconds of the zone at the Unix time `t` (seconds). */
static int64_t offset_at(GTimeZone *tz, int64_t t)
{
    return g_time_zone_get_offset(tz, g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, t));
}

/* The earliest instant showing local time `w` (local seconds), or, when `w` falls in a gap,
 * the instant the gap ends. Assumes, like every real zone, at most one offset change within a
 * day of `w`: the offsets a day before and a day after are then the only candidates. Monotonic
 * (non-decreasing) in `w`, which rp_cron_next() relies on. */
static int64_t wall_to_instant(GTimeZone *tz, int64_t w)
{
    int64_t o1 = offset_at(tz, w - DAY_SECS), o2 = offset_at(tz, w + DAY_SECS);
    int64_t best = INT64_MAX;
    if (offset_at(tz, w - o1) == o1)
        best = w - o1;
    if (o2 != o1 && offset_at(tz, w - o2) == o2 && w - o2 < best)
        best = w - o2;
    if (best != INT64_MAX)
        return best;
    /* in a gap: the transition lies in (w - max offset, w - min offset]; find it by bisection */
    int64_t lo = w - (o1 > o2 ? o1 : o2), hi = w - (o1 < o2 ? o1 : o2);
    int before = g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, lo);
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, mid) == before)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

int rp_cron_next(const struct rp_cron *c, int64_t after_ms, int64_t *next_ms)
{
    if (after_ms < MIN_AFTER_MS || after_ms > MAX_AFTER_MS)
        return RP_EINVAL;
    /* Start at the local minute after the one `after_ms` shows: every earlier local minute
     * maps to an instant <= after_ms, because wall_to_instant() is monotonic. */
    int64_t after_s = floor_div(after_ms, 1000);
    int64_t minute = floor_div(after_s + offset_at(c->tz, after_s), 60) + 1;
    int64_t day = floor_div(minute, 1440), y;
    int mo, d, h = (int)(minute - day * 1440) / 60, mi = (int)(minute - day * 1440) % 60;
    int64_t limit = day + RP_CRON_SEARCH_DAYS;
    civil_from_days(day, &y, &mo, &d);

    for (;;) {
        /* d may be 32 here (carried from the last day); days_from_civil copes */
        if (days_from_civil(y, mo, d) > limit)
            return RP_ENOENT;
        int next = next_bit(c->months, mo);
        if (next < 0) {
            y++;
            mo = 1;
            d = 1;
            h = mi = 0;
            continue;
        }
        if (next != mo) {
            mo = next;
            d = 1;
            h = mi = 0;
        }
        next = next_bit(day_mask(c, y, mo), d);
        if (next < 0) {
            if (++mo > 12) {
                mo = 1;
                y++;
            }
            d = 1;
            h = mi = 0;
            continue;
        }
        if (next != d) {
            d = next;
            h = mi = 0;
        }
        next = next_bit(c->hours, h);
        if (next < 0) {
            d++;
            h = mi = 0;
            continue;
        }
        if (next != h) {
            h = next;
            mi = 0;
        }
        next = next_bit(c->minutes, mi);
        if (next < 0) {
            h++;
            mi = 0;
            continue;
        }
        mi = next;
        int64_t wday = days_from_civil(y, mo, d);
        if (wday > limit) /* the month and day steps above may have crossed it */
            return RP_ENOENT;
        int64_t w = (wday * 1440 + h * 60 + mi) * 60;
        int64_t t = wall_to_instant(c->tz, w);
        if (t * 1000 > after_ms) {
            *next_ms = t * 1000;
            return RP_OK;
        }
        mi++; /* a minute of a repeated hour, already fired in the first pass */
    }
}
