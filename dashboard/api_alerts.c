/* /api/v1/projects/{project}/channels, /alert-rules and /maintenance-windows: the alerting
 * configuration the mailer and connector act upon (issue #7). Viewers read; editors (and
 * owners) write; every change writes an audit row in its transaction, naming what changed but
 * never a secret value. Rules and windows refer only to tests and channels of their own
 * project. Channel kinds are a table (`kinds`: one entry per kind with its validators), secrets
 * are sealed at rest and write-only, and maintenance_window_active() in
 * 0004_alerts_config.sql is the one definition of when a window mutes alerts. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <glib.h>
#include <sodium.h>

#include "dash.h"
#include "rampart/pg.h"

#define MAX_MEMBERS       64   /* members of any object inside a config */
#define MAX_HEADERS       32   /* custom HTTP headers of one call */
#define MAX_SCOPE_TESTS   1000 /* test_ids of a rule or window */
#define MAX_SCOPE_TAGS    50
#define MAX_RULE_CHANNELS 50

/* ---- small checks (each returns NULL when fine, else the reason) ------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int one_of(const char *s, const char *const *values)
{
    for (size_t i = 0; values[i]; i++)
        if (strcmp(s, values[i]) == 0)
            return 1;
    return 0;
}

static int bad_hostname(const char *h)
{
    size_t n = strlen(h), label = 0;
    if (n < 1 || n > 253)
        return 1;
    for (size_t i = 0; i <= n; i++) {
        char c = h[i];
        if (c == '.' || c == '\0') {
            if (label < 1 || label > 63 || h[i - 1] == '-')
                return 1;
            label = 0;
        } else if (is_alnum(c) || (c == '-' && label > 0)) {
            label++;
        } else {
            return 1;
        }
    }
    return 0;
}

static const char *check_email(const char *s)
{
    static const char why[] = "must be an e-mail address such as ops@example.com";
    const char *at = strrchr(s, '@');
    if (!at || at == s || strlen(s) > 254 || at - s > 64 || s[0] == '.' || at[-1] == '.')
        return why;
    for (const char *p = s; p < at; p++) /* dot-atom of RFC 5322 atext */
        if (!(is_alnum(*p) || strchr("!#$%&'*+-/=?^_`{|}~", *p) || (*p == '.' && p[1] != '.')))
            return why;
    return bad_hostname(at + 1) ? why : NULL;
}

/* An http(s) URL with a host (parsed by libcurl, which will use it); credentials in the URL
 * are refused where the URL is not secret. */
static const char *url_reason(const char *s, int allow_credentials)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return "a URL has no spaces or control characters";
    size_t scheme = strncasecmp(s, "http://", 7) == 0    ? 7
                    : strncasecmp(s, "https://", 8) == 0 ? 8
                                                         : 0;
    if (!scheme)
        return "must be an http:// or https:// URL";
    if (s[scheme] == '/')
        return "has no host"; /* libcurl would skip a third slash */
    CURLU *u = curl_url();
    if (!u)
        abort(); /* out of memory */
    const char *why = NULL;
    char *host = NULL, *user = NULL, *password = NULL;
    if (curl_url_set(u, CURLUPART_URL, s, 0) != CURLUE_OK)
        why = "is not a valid URL";
    else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host)
        why = "has no host";
    else if (!allow_credentials && (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
                                    curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK))
        why = "must not hold credentials (user:password@): put them in the secrets";
    curl_free(host);
    curl_free(user);
    curl_free(password);
    curl_url_cleanup(u);
    return why;
}

static const char *check_url(const char *s)
{
    return url_reason(s, 0);
}

static const char *check_secret_url(const char *s)
{
    return url_reason(s, 1);
}

static const char *check_header_name(const char *s)
{
    static const char *const reserved[] = {
        "host", "content-length", "transfer-encoding", "connection", "upgrade",
        "te",   "trailer",        "keep-alive",        "expect",     NULL};
    size_t n = strlen(s);
    if (n < 1 || n > 100)
        return "a header name has 1 to 100 characters";
    for (const char *p = s; *p; p++)
        if (!(is_alnum(*p) || strchr("!#$%&'*+-.^_`|~", *p)))
            return "a header name holds letters, digits and !#$%&'*+-.^_`|~ only";
    for (size_t i = 0; reserved[i]; i++)
        if (strcasecmp(s, reserved[i]) == 0)
            return "this header is set by the sender itself";
    return NULL;
}

static const char *check_no_controls(const char *s)
{
    for (const char *p = s; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return "must not contain control characters (CR, LF...)";
    return NULL;
}

static const char *check_alnum(const char *s)
{
    for (const char *p = s; *p; p++)
        if (!is_alnum(*p))
            return "holds letters and digits only";
    return NULL;
}

static const char *check_visible_ascii(const char *s)
{
    for (const char *p = s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return "holds visible ASCII characters only (no spaces)";
    return NULL;
}

#define ENUM_CHECK(fn, msg, ...)                                                                   \
    static const char *fn(const char *s)                                                           \
    {                                                                                              \
        static const char *const values[] = {__VA_ARGS__, NULL};                                   \
        return one_of(s, values) ? NULL : msg;                                                     \
    }
ENUM_CHECK(check_post_put, "must be POST or PUT", "POST", "PUT")
ENUM_CHECK(check_call_method, "must be POST, PUT, PATCH or DELETE", "POST", "PUT", "PATCH",
           "DELETE")
ENUM_CHECK(check_severity, "must be critical, error, warning or info", "critical", "error",
           "warning", "info")
ENUM_CHECK(check_region, "must be us or eu", "us", "eu")
ENUM_CHECK(check_priority, "must be P1, P2, P3, P4 or P5", "P1", "P2", "P3", "P4", "P5")
ENUM_CHECK(check_window_kind, "must be once or weekly", "once", "weekly")

static const char *check_hhmm(const char *s)
{
    if (strlen(s) == 5 && is_digit(s[0]) && is_digit(s[1]) && s[2] == ':' && is_digit(s[3]) &&
        is_digit(s[4]) && (s[0] - '0') * 10 + (s[1] - '0') < 24 && s[3] < '6')
        return NULL;
    return "must be a time of day HH:MM from 00:00 to 23:59";
}

/* An IANA zone name that GLib loads (as the mailer and connector will). GLib alone would also
 * take offsets ("+01:00") and POSIX TZ rules ("ABC5"), which are not zone names and which
 * PostgreSQL reads with the opposite sign, so the name must also be a TZif file of the zone
 * database ($TZDIR or /usr/share/zoneinfo, as GLib and the C library read). It may hold
 * letters, digits, _ - + and single slashes only: no '.', so it cannot leave that folder. */
static const char *check_timezone(const char *s)
{
    static const char why[] = "must be an IANA time zone name such as Europe/Paris or UTC";
    size_t n = strlen(s);
    if (n < 1 || n > 64 || s[0] == '/' || s[n - 1] == '/')
        return why;
    for (size_t i = 0; i < n; i++)
        if (!(is_alnum(s[i]) || strchr("_-+/", s[i])) || (s[i] == '/' && s[i + 1] == '/'))
            return why;
    if (strncmp(s, "right/", 6) == 0 || strncmp(s, "posix/", 6) == 0 ||
        strcmp(s, "posixrules") == 0)
        return "must be a plain IANA zone name (not right/, posix/ or posixrules)";
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", s);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return "is not a known time zone (IANA names such as Europe/Paris, UTC)";
    struct stat st;
    char magic[4];
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read(fd, magic, 4) == 4 &&
             memcmp(magic, "TZif", 4) == 0;
    close(fd);
    GTimeZone *tz = ok ? g_time_zone_new_identifier(s) : NULL;
    if (tz)
        g_time_zone_unref(tz);
    return tz ? NULL : "is not a known time zone (IANA names such as Europe/Paris, UTC)";
}

/* Howard Hinnant's days_from_civil: days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* An RFC 3339 date-time ("2030-01-31T22:00:00Z", "2030-01-31T22:00:00.5+02:00") as seconds
 * since the epoch plus nanoseconds; 0 when malformed or out of range. */
static int parse_rfc3339(const char *s, int64_t *sec, long *nsec)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0, k = 0;
    if (!(digits(s, 4, &y) && s[4] == '-' && digits(s + 5, 2, &mo) && s[7] == '-' &&
          digits(s + 8, 2, &d) && (s[10] == 'T' || s[10] == 't') && digits(s + 11, 2, &h) &&
          s[13] == ':' && digits(s + 14, 2, &mi) && s[16] == ':' && digits(s + 17, 2, &se)))
        return 0;
    const char *p = s + 19;
    long ns = 0;
    if (*p == '.')
        for (p++; is_digit(*p); p++, k++)
            if (k < 9)
                ns = ns * 10 + (*p - '0');
    if ((p > s + 19 && (k == 0 || k > 9)))
        return 0;
    for (int i = k; i < 9; i++)
        ns *= 10;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && digits(p + 1, 2, &oh) && p[3] == ':' &&
               digits(p + 4, 2, &om)) {
        sign = *p == '+' ? 1 : -1;
        p += 6;
    } else {
        return 0;
    }
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (*p || y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) ||
        h > 23 || mi > 59 || se > 59 || oh > 23 || om > 59)
        return 0;
    *sec =
        days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - sign * (oh * 3600 + om * 60);
    *nsec = ns;
    return 1;
}

/* ---- reading nested input: errors name the member as a path ("config.open.url") ---------- */

static int refuse(struct dash_req *r, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 400 invalid_field "field: why"; returns RP_EINVAL. */
static int refuse(struct dash_req *r, const char *field, const char *fmt, ...)
{
    char why[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    dash_error_field(r, 400, "invalid_field", field, "%s: %s", field, why);
    return RP_EINVAL;
}

/* "prefix.key", the key cut to 100 bytes on a character boundary (it goes into JSON). */
static void path(char *out, size_t cap, const char *prefix, const char *key)
{
    size_t n = strlen(key);
    if (n > 100)
        for (n = 100; n > 0 && ((unsigned char)key[n] & 0xC0) == 0x80; n--)
            ;
    snprintf(out, cap, "%s%s%.*s", prefix, *prefix ? "." : "", (int)n, key);
}

/* The string at `it` (valid UTF-8 without NUL) or NULL. */
static const char *iter_str(const bson_iter_t *it)
{
    uint32_t len = 0;
    const char *s = BSON_ITER_HOLDS_UTF8(it) ? bson_iter_utf8(it, &len) : NULL;
    return s && strlen(s) == len && bson_utf8_validate(s, len, false) ? s : NULL;
}

static int iter_doc(struct dash_req *r, const bson_iter_t *it, const char *field, bson_t *out)
{
    uint32_t len = 0;
    const uint8_t *data = NULL;
    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        return refuse(r, field, "must be a JSON object");
    bson_iter_document(it, &len, &data);
    if (!bson_init_static(out, data, len))
        return refuse(r, field, "is malformed");
    return RP_OK;
}

/* Refuse more than `max` members, a member repeated (case-insensitively with `nocase`: header
 * names) and, when `allowed` is given, members not in it. */
static int members_ok(struct dash_req *r, const bson_t *doc, const char *prefix,
                      const char *const *allowed, int nocase, size_t max)
{
    bson_iter_t it, prev;
    char field[200];
    size_t n = 0;
    if (!bson_iter_init(&it, doc))
        return refuse(r, prefix, "is malformed");
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        path(field, sizeof(field), prefix, k);
        if (++n > max)
            return refuse(r, prefix, "has more than %zu members", max);
        if (allowed && !one_of(k, allowed)) {
            char list[300] = "";
            for (size_t j = 0; allowed[j]; j++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", j ? ", " : "",
                         allowed[j]);
            dash_error_field(r, 400, "unknown_field", field, "unknown member \"%s\"; expected: %s",
                             field, *list ? list : "none");
            return RP_EINVAL;
        }
        if (!bson_iter_init(&prev, doc))
            return RP_EINVAL;
        while (bson_iter_next(&prev) && bson_iter_key(&prev) != k)
            if ((nocase ? strcasecmp : strcmp)(bson_iter_key(&prev), k) == 0)
                return refuse(r, field, "is given twice");
    }
    return RP_OK;
}

/* 1: `key` is there (and not null); 0: absent and optional; -1: answered. */
static int member(struct dash_req *r, const bson_t *doc, const char *prefix, const char *key,
                  int required, bson_iter_t *it)
{
    char field[200];
    path(field, sizeof(field), prefix, key);
    if (!bson_iter_init_find(it, doc, key)) {
        if (!required)
            return 0;
        dash_error_field(r, 400, "missing_field", field, "\"%s\" is required", field);
        return -1;
    }
    if (BSON_ITER_HOLDS_NULL(it)) {
        refuse(r, field, "must not be null");
        return -1;
    }
    return 1;
}

static int str_value(struct dash_req *r, const bson_iter_t *it, const char *field, size_t min,
                     size_t max, const char *(*check)(const char *), const char **out)
{
    const char *s = iter_str(it);
    if (!s)
        return refuse(r, field, "must be a string");
    size_t n = 0;
    for (const char *p = s; *p; p = bson_utf8_next_char(p))
        n++;
    if (n < min || n > max)
        return min == max ? refuse(r, field, "must have %zu characters", min)
                          : refuse(r, field, "must have %zu to %zu characters", min, max);
    const char *why = check ? check(s) : NULL;
    if (why)
        return refuse(r, field, "%s", why);
    if (out)
        *out = s;
    return RP_OK;
}

static int sub_str(struct dash_req *r, const bson_t *doc, const char *prefix, const char *key,
                   int required, size_t min, size_t max, const char *(*check)(const char *))
{
    bson_iter_t it;
    char field[200];
    path(field, sizeof(field), prefix, key);
    int f = member(r, doc, prefix, key, required, &it);
    if (f <= 0)
        return f < 0 ? RP_EINVAL : RP_OK;
    return str_value(r, &it, field, min, max, check, NULL);
}

static int sub_str_list(struct dash_req *r, const bson_t *doc, const char *prefix, const char *key,
                        int required, size_t min_items, size_t max_items, size_t max_chars,
                        const char *(*check)(const char *))
{
    bson_iter_t it, child;
    char field[200], item[220];
    path(field, sizeof(field), prefix, key);
    int f = member(r, doc, prefix, key, required, &it);
    if (f <= 0)
        return f < 0 ? RP_EINVAL : RP_OK;
    if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &child))
        return refuse(r, field, "must be an array of strings");
    size_t n = 0;
    while (bson_iter_next(&child)) {
        snprintf(item, sizeof(item), "%s[%zu]", field, n);
        if (++n > max_items)
            return refuse(r, field, "takes at most %zu items", max_items);
        if (str_value(r, &child, item, 1, max_chars, check, NULL) != RP_OK)
            return RP_EINVAL;
    }
    if (n < min_items)
        return refuse(r, field, "takes at least %zu item%s", min_items, min_items == 1 ? "" : "s");
    return RP_OK;
}

/* {"Header-Name": "value", ...}: HTTP header names and values without CR/LF. */
static int headers_value(struct dash_req *r, const bson_iter_t *at, const char *field)
{
    bson_t doc;
    bson_iter_t it;
    char item[260];
    if (iter_doc(r, at, field, &doc) != RP_OK ||
        members_ok(r, &doc, field, NULL, 1, MAX_HEADERS) != RP_OK || !bson_iter_init(&it, &doc))
        return RP_EINVAL;
    while (bson_iter_next(&it)) {
        const char *name = bson_iter_key(&it), *why = check_header_name(name);
        path(item, sizeof(item), field, name);
        if (why)
            return refuse(r, item, "%s", why);
        if (str_value(r, &it, item, 0, 4096, check_no_controls, NULL) != RP_OK)
            return RP_EINVAL;
    }
    return RP_OK;
}

static int sub_headers(struct dash_req *r, const bson_t *doc, const char *prefix, const char *key)
{
    bson_iter_t it;
    char field[200];
    path(field, sizeof(field), prefix, key);
    int f = member(r, doc, prefix, key, 0, &it);
    return f < 0 ? RP_EINVAL : f == 0 ? RP_OK : headers_value(r, &it, field);
}

/* ---- channel kinds ----------------------------------------------------------------------------
 * A kind is one entry of `kinds`: a validator of its config (members not listed are refused)
 * and its secret members, each with a validator. Adding a kind is adding an entry (and the kind
 * to the channels.kind CHECK in a new migration). Secret values are sealed one member at a
 * time with dash_seal (a string as given; an object, such as webhook headers, as its JSON
 * text) into channels.secrets {"name": "v1:..."}; reads show {"name": {"set": true}} only.
 * PATCH replaces the config as a whole and the secrets member by member: a member given
 * replaces, an absent one is kept, null removes an optional one. */

static const char *const no_members[] = {NULL};

static int config_email(struct dash_req *r, const bson_t *c)
{
    static const char *const allowed[] = {"to", "cc", NULL};
    if (members_ok(r, c, "config", allowed, 0, MAX_MEMBERS) != RP_OK ||
        sub_str_list(r, c, "config", "to", 1, 1, 50, 254, check_email) != RP_OK ||
        sub_str_list(r, c, "config", "cc", 0, 0, 50, 254, check_email) != RP_OK)
        return RP_EINVAL;
    return RP_OK;
}

static int config_webhook(struct dash_req *r, const bson_t *c)
{
    static const char *const allowed[] = {"url", "method", "headers", NULL};
    if (members_ok(r, c, "config", allowed, 0, MAX_MEMBERS) != RP_OK ||
        sub_str(r, c, "config", "url", 1, 8, 2048, check_url) != RP_OK ||
        sub_str(r, c, "config", "method", 0, 3, 4, check_post_put) != RP_OK ||
        sub_headers(r, c, "config", "headers") != RP_OK)
        return RP_EINVAL;
    return RP_OK;
}

static int config_none(struct dash_req *r, const bson_t *c)
{
    return members_ok(r, c, "config", no_members, 0, MAX_MEMBERS);
}

static int config_pagerduty(struct dash_req *r, const bson_t *c)
{
    static const char *const allowed[] = {"severity", NULL};
    if (members_ok(r, c, "config", allowed, 0, MAX_MEMBERS) != RP_OK ||
        sub_str(r, c, "config", "severity", 0, 1, 10, check_severity) != RP_OK)
        return RP_EINVAL;
    return RP_OK;
}

static int config_opsgenie(struct dash_req *r, const bson_t *c)
{
    static const char *const allowed[] = {"region", "priority", NULL};
    if (members_ok(r, c, "config", allowed, 0, MAX_MEMBERS) != RP_OK ||
        sub_str(r, c, "config", "region", 0, 2, 2, check_region) != RP_OK ||
        sub_str(r, c, "config", "priority", 0, 2, 2, check_priority) != RP_OK)
        return RP_EINVAL;
    return RP_OK;
}

/* config.open / config.resolve of a statuspage channel: one HTTP call. */
static int statuspage_call(struct dash_req *r, const bson_t *c, const char *key)
{
    static const char *const allowed[] = {"method", "url", "body_template", NULL};
    bson_iter_t it;
    bson_t call;
    char field[200];
    path(field, sizeof(field), "config", key);
    if (member(r, c, "config", key, 1, &it) < 0 || iter_doc(r, &it, field, &call) != RP_OK ||
        members_ok(r, &call, field, allowed, 0, MAX_MEMBERS) != RP_OK ||
        sub_str(r, &call, field, "method", 1, 3, 6, check_call_method) != RP_OK ||
        sub_str(r, &call, field, "url", 1, 8, 2048, check_url) != RP_OK ||
        sub_str(r, &call, field, "body_template", 0, 0, 16384, NULL) != RP_OK)
        return RP_EINVAL;
    return RP_OK;
}

static int config_statuspage(struct dash_req *r, const bson_t *c)
{
    static const char *const allowed[] = {"open", "resolve", NULL};
    if (members_ok(r, c, "config", allowed, 0, MAX_MEMBERS) != RP_OK ||
        statuspage_call(r, c, "open") != RP_OK || statuspage_call(r, c, "resolve") != RP_OK)
        return RP_EINVAL;
    return RP_OK;
}

static int secret_url(struct dash_req *r, const bson_iter_t *it, const char *field)
{
    return str_value(r, it, field, 8, 2048, check_secret_url, NULL);
}

static int secret_hmac(struct dash_req *r, const bson_iter_t *it, const char *field)
{
    return str_value(r, it, field, 16, 1024, check_no_controls, NULL);
}

static int secret_routing_key(struct dash_req *r, const bson_iter_t *it, const char *field)
{
    return str_value(r, it, field, 32, 32, check_alnum, NULL);
}

static int secret_api_key(struct dash_req *r, const bson_iter_t *it, const char *field)
{
    return str_value(r, it, field, 8, 128, check_visible_ascii, NULL);
}

struct secret_spec {
    const char *name;
    int required;
    int (*check)(struct dash_req *r, const bson_iter_t *it, const char *field);
};

struct channel_kind {
    const char *name;
    int (*check_config)(struct dash_req *r, const bson_t *config);
    const struct secret_spec *secrets; /* ends with {NULL} */
};

static const struct secret_spec no_secrets[] = {{NULL, 0, NULL}};
static const struct secret_spec webhook_secrets[] = {
    {"hmac_secret", 0, secret_hmac}, {"headers", 0, headers_value}, {NULL, 0, NULL}};
static const struct secret_spec chat_secrets[] = {{"webhook_url", 1, secret_url}, {NULL, 0, NULL}};
static const struct secret_spec pagerduty_secrets[] = {{"routing_key", 1, secret_routing_key},
                                                       {NULL, 0, NULL}};
static const struct secret_spec opsgenie_secrets[] = {{"api_key", 1, secret_api_key},
                                                      {NULL, 0, NULL}};
static const struct secret_spec statuspage_secrets[] = {{"headers", 0, headers_value},
                                                        {NULL, 0, NULL}};

static const struct channel_kind kinds[] = {
    {"email", config_email, no_secrets},
    {"webhook", config_webhook, webhook_secrets},
    {"slack", config_none, chat_secrets},
    {"mattermost", config_none, chat_secrets},
    {"teams", config_none, chat_secrets},
    {"discord", config_none, chat_secrets},
    {"pagerduty", config_pagerduty, pagerduty_secrets},
    {"opsgenie", config_opsgenie, opsgenie_secrets},
    {"statuspage", config_statuspage, statuspage_secrets},
    {NULL, NULL, NULL},
};

static const struct channel_kind *find_kind(struct dash_req *r, const char *name)
{
    char list[200] = "";
    for (const struct channel_kind *k = kinds; k->name; k++) {
        if (strcmp(k->name, name) == 0)
            return k;
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", k == kinds ? "" : ", ",
                 k->name);
    }
    refuse(r, "kind", "must be one of %s", list);
    return NULL;
}

/* ---- audit details --------------------------------------------------------------------------- */

struct names {
    const char *v[16];
    size_t n;
};

static void names_add(struct names *l, const char *s)
{
    if (l->n < sizeof(l->v) / sizeof(l->v[0]))
        l->v[l->n++] = s;
}

static void append_names(bson_t *d, const char *key, const struct names *l)
{
    bson_t arr;
    char buf[16];
    const char *idx;
    bson_append_array_begin(d, key, -1, &arr);
    for (size_t i = 0; i < l->n; i++) {
        bson_uint32_to_string((uint32_t)i, &idx, buf, sizeof(buf));
        bson_append_utf8(&arr, idx, -1, l->v[i], -1);
    }
    bson_append_array_end(d, &arr);
}

/* Relaxed extended JSON of `d` (plain JSON for strings, arrays and objects), caller frees. */
static char *json_text(const bson_t *d)
{
    char *j = bson_as_relaxed_extended_json(d, NULL);
    char *out = rp_xstrdup(j ? j : "{}");
    bson_free(j);
    return out;
}

/* {"changed": [the members of the body]} for an update's audit row. */
static char *changed_details(const bson_t *body, const struct names *extra_set,
                             const struct names *extra_removed)
{
    struct names changed = {0};
    bson_iter_t it;
    if (bson_iter_init(&it, body))
        while (bson_iter_next(&it))
            names_add(&changed, bson_iter_key(&it));
    bson_t d = BSON_INITIALIZER;
    append_names(&d, "changed", &changed);
    if (extra_set && extra_set->n)
        append_names(&d, "secrets_set", extra_set);
    if (extra_removed && extra_removed->n)
        append_names(&d, "secrets_removed", extra_removed);
    char *out = json_text(&d);
    bson_destroy(&d);
    return out;
}

/* A list of the project's things; no row (404) when the project does not exist. */
#define LIST_SQL(json, from, order)                                                                \
    "SELECT json_build_object('items', COALESCE((SELECT json_agg(" json " ORDER BY " order         \
    ") FROM " from "), '[]')) FROM projects p WHERE p.id = $1"

/* Inserts select the project, so none is made in a project that does not exist. */
static int no_project(struct dash_req *r, PGresult *res)
{
    if (PQntuples(res) == 1)
        return 0;
    PQclear(res);
    dash_error(r, 404, "not_found", "project not found");
    return 1;
}

/* ---- channels ----------------------------------------------------------------------------------
 */

#define CHANNEL_JSON                                                                               \
    "json_build_object('id', c.id, 'name', c.name, 'kind', c.kind, 'config', c.config, "           \
    "'secrets', COALESCE((SELECT jsonb_object_agg(k, jsonb_build_object('set', true)) "            \
    "FROM jsonb_object_keys(c.secrets) k), '{}'::jsonb), 'enabled', c.enabled, "                   \
    "'created_at', c.created_at, 'updated_at', c.updated_at)"

struct channel_in {
    const char *project, *id, *name, *kind, *enabled;
    char *config; /* validated config as JSON text; NULL: keep (PATCH) */
    char *sealed; /* {"name": "v1:..."} to set, JSON text; NULL: none */
    struct names set, removed;
    struct rp_buf removed_lit; /* PostgreSQL text[] literal of `removed` */
    char *details;
    char new_id[37];
};

static void channel_in_cleanup(struct channel_in *in)
{
    free(in->config);
    free(in->sealed);
    free(in->details);
    rp_buf_cleanup(&in->removed_lit);
}

static void reply_channel(struct dash_req *r, unsigned status, const char *project, const char *id)
{
    const char *p[2] = {project, id};
    dash_query_reply(
        r, status, "channel",
        "SELECT " CHANNEL_JSON " FROM channels c WHERE c.project_id = $1 AND c.id = $2", 2, p);
}

/* The body's "config" checked against the kind, as JSON text. Absent: on create an empty object
 * is checked (so required members are named), on PATCH it is kept. */
static int read_config(struct dash_req *r, const bson_t *body, const struct channel_kind *k,
                       int creating, char **out)
{
    bson_iter_t it;
    bson_t cfg = BSON_INITIALIZER;
    int f = member(r, body, "", "config", 0, &it);
    if (f < 0 || (f == 0 && !creating))
        return f < 0 ? RP_EINVAL : RP_OK;
    if (f == 1 && iter_doc(r, &it, "config", &cfg) != RP_OK)
        return RP_EINVAL;
    if (k->check_config(r, &cfg) != RP_OK)
        return RP_EINVAL;
    *out = json_text(&cfg);
    return RP_OK;
}

/* The body's "secrets": checked against the kind's secret members, each value sealed. On
 * create every required member must be there; on PATCH null removes an optional member. */
static int read_secrets(struct dash_req *r, const bson_t *body, const struct channel_kind *k,
                        int creating, struct channel_in *in)
{
    const char *allowed[8] = {NULL};
    size_t n = 0;
    for (const struct secret_spec *s = k->secrets; s->name && n < 7; s++)
        allowed[n++] = s->name;
    bson_iter_t it;
    bson_t sec = BSON_INITIALIZER;
    int f = member(r, body, "", "secrets", 0, &it);
    if (f < 0 || (f == 1 && iter_doc(r, &it, "secrets", &sec) != RP_OK) ||
        members_ok(r, &sec, "secrets", allowed, 0, MAX_MEMBERS) != RP_OK)
        return RP_EINVAL;
    char field[200];
    for (const struct secret_spec *s = k->secrets; s->name; s++) {
        path(field, sizeof(field), "secrets", s->name);
        if (!bson_iter_init_find(&it, &sec, s->name)) {
            if (creating && s->required) {
                dash_error_field(r, 400, "missing_field", field, "\"%s\" is required", field);
                return RP_EINVAL;
            }
        } else if (BSON_ITER_HOLDS_NULL(&it)) {
            if (creating || s->required)
                return refuse(r, field, "%s",
                              creating ? "must not be null (leave it out instead)"
                                       : "is required and cannot be removed: give a new value "
                                         "to replace it");
            names_add(&in->removed, s->name);
        } else if (s->check(r, &it, field) != RP_OK) {
            return RP_EINVAL;
        } else {
            names_add(&in->set, s->name);
        }
    }
    rp_buf_init(&in->removed_lit, 0);
    (void)rp_buf_append(&in->removed_lit, "{", 1);
    for (size_t i = 0; i < in->removed.n; i++)
        rp_pg_array_add(&in->removed_lit, in->removed.v[i]);
    (void)rp_buf_append(&in->removed_lit, "}", 1);
    if (in->set.n == 0)
        return RP_OK;
    if (!r->app->have_secret_key) {
        dash_error_field(r, 400, "secret_key_missing", "secrets",
                         "secrets cannot be saved: the dashboard has no RAMPART_SECRET_KEY (ask "
                         "the operator to set it on every copy)");
        return RP_EINVAL;
    }
    bson_t out = BSON_INITIALIZER;
    for (size_t i = 0; i < in->set.n; i++) {
        bson_t sub;
        char *plain = NULL, *sealed = NULL;
        if (!bson_iter_init_find(&it, &sec, in->set.v[i]))
            continue;
        if (BSON_ITER_HOLDS_DOCUMENT(&it) && iter_doc(r, &it, "secrets", &sub) == RP_OK)
            plain = json_text(&sub);
        else
            plain = rp_xstrdup(iter_str(&it));
        sealed = dash_seal(r->app, plain);
        sodium_memzero(plain, strlen(plain));
        free(plain);
        bson_append_utf8(&out, in->set.v[i], -1, sealed, -1);
        free(sealed);
    }
    in->sealed = json_text(&out);
    bson_destroy(&out);
    return RP_OK;
}

static void list_channels(struct dash_req *r)
{
    const char *p[1] = {dash_param(r, "project")};
    dash_query_reply(r, 200, "project",
                     LIST_SQL(CHANNEL_JSON, "channels c WHERE c.project_id = p.id", "c.name"), 1,
                     p);
}

static void get_channel(struct dash_req *r)
{
    const char *id = dash_param_uuid(r, "channel", "channel");
    if (id)
        reply_channel(r, 200, dash_param(r, "project"), id);
}

static int create_channel_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct channel_in *in = ud;
    PGresult *res = NULL;
    const char *p[6] = {in->project, in->name, in->kind, in->config, in->sealed, in->enabled};
    int rc = dash_tx_exec(r, pg, "channel",
                          "INSERT INTO channels (project_id, name, kind, config, secrets, enabled) "
                          "SELECT id, $2, $3, $4::jsonb, COALESCE($5::jsonb, '{}'), "
                          "COALESCE($6::bool, true) FROM projects WHERE id = $1 RETURNING id",
                          6, p, &res);
    if (rc != RP_OK)
        return rc;
    if (no_project(r, res))
        return RP_ENOENT;
    snprintf(in->new_id, sizeof(in->new_id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return dash_audit(r, pg, in->project, "channel.create", "channel", in->new_id, in->details);
}

static const char *bool_param(int present, int v)
{
    return present ? (v ? "true" : "false") : NULL;
}

static void create_channel(struct dash_req *r)
{
    bson_t body;
    if (dash_body(r, &body) != RP_OK)
        return;
    static const char *const allowed[] = {"name", "kind", "config", "secrets", "enabled", NULL};
    struct channel_in in = {.project = dash_param(r, "project")};
    const struct channel_kind *k = NULL;
    int enabled = 1, has_enabled = 0;
    if (dash_only(r, &body, allowed) != RP_OK ||
        dash_get_str(r, &body, "name", DASH_REQUIRED, 1, 100, &in.name, NULL) != RP_OK ||
        dash_get_str(r, &body, "kind", DASH_REQUIRED, 1, 20, &in.kind, NULL) != RP_OK ||
        !(k = find_kind(r, in.kind)) ||
        dash_get_bool(r, &body, "enabled", 0, &enabled, &has_enabled) != RP_OK ||
        read_config(r, &body, k, 1, &in.config) != RP_OK ||
        read_secrets(r, &body, k, 1, &in) != RP_OK)
        goto out;
    in.enabled = bool_param(has_enabled, enabled);
    bson_t d = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&d, "name", in.name);
    BSON_APPEND_UTF8(&d, "kind", in.kind);
    append_names(&d, "secrets_set", &in.set);
    in.details = json_text(&d);
    bson_destroy(&d);
    if (dash_tx(r, create_channel_tx, &in) == RP_OK)
        reply_channel(r, 201, in.project, in.new_id);
out:
    channel_in_cleanup(&in);
    bson_destroy(&body);
}

static int patch_channel_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct channel_in *in = ud;
    PGresult *res = NULL;
    const char *p[8] = {in->project, in->id,      in->name, in->config,
                        in->sealed,  in->enabled, in->kind, in->removed_lit.data};
    int rc = dash_tx_exec(r, pg, "channel",
                          "UPDATE channels SET name = COALESCE($3, name), "
                          "config = COALESCE($4::jsonb, config), "
                          "secrets = (secrets - COALESCE($8::text[], '{}')) || "
                          "COALESCE($5::jsonb, '{}'), enabled = COALESCE($6::bool, enabled), "
                          "updated_at = now() "
                          "WHERE project_id = $1 AND id = $2 AND kind = $7 RETURNING id",
                          8, p, &res);
    if (rc != RP_OK)
        return rc;
    int n = PQntuples(res);
    PQclear(res);
    if (n != 1) {
        dash_error(r, 404, "not_found", "channel not found");
        return RP_ENOENT;
    }
    return dash_audit(r, pg, in->project, "channel.update", "channel", in->id, in->details);
}

static void patch_channel(struct dash_req *r)
{
    bson_t body;
    struct channel_in in = {.project = dash_param(r, "project")};
    if (!(in.id = dash_param_uuid(r, "channel", "channel")) || dash_body(r, &body) != RP_OK)
        return;
    static const char *const allowed[] = {"name", "kind", "config", "secrets", "enabled", NULL};
    const struct channel_kind *k = NULL;
    int enabled = 1, has_enabled = 0;
    PGresult *res = NULL;
    if (dash_only(r, &body, allowed) != RP_OK)
        goto out;
    const char *kind = NULL, *p[2] = {in.project, in.id};
    if (dash_get_str(r, &body, "kind", 0, 1, 20, &kind, NULL) != RP_OK)
        goto out;
    if (dash_exec(r, "channel", "SELECT kind FROM channels WHERE project_id = $1 AND id = $2", 2, p,
                  &res) != RP_OK)
        goto out;
    if (PQntuples(res) != 1) {
        dash_error(r, 404, "not_found", "channel not found");
        goto out;
    }
    in.kind = PQgetvalue(res, 0, 0);
    if (kind && strcmp(kind, in.kind) != 0) {
        refuse(r, "kind", "cannot be changed (this channel is %s): create a new channel", in.kind);
        goto out;
    }
    if (!(k = find_kind(r, in.kind)) ||
        dash_get_str(r, &body, "name", 0, 1, 100, &in.name, NULL) != RP_OK ||
        dash_get_bool(r, &body, "enabled", 0, &enabled, &has_enabled) != RP_OK ||
        read_config(r, &body, k, 0, &in.config) != RP_OK ||
        read_secrets(r, &body, k, 0, &in) != RP_OK)
        goto out;
    in.enabled = bool_param(has_enabled, enabled);
    in.details = changed_details(&body, &in.set, &in.removed);
    if (dash_tx(r, patch_channel_tx, &in) == RP_OK)
        reply_channel(r, 200, in.project, in.id);
out:
    PQclear(res);
    channel_in_cleanup(&in);
    bson_destroy(&body);
}

/* ---- shared by the three resources ------------------------------------------------------------
 */

/* Every id in `lit` (a uuid[] literal, NULL: nothing to check) names a test (or a channel) of
 * the project, once; else 400 naming the item. The rows found are locked (FOR KEY SHARE) so
 * that a concurrent delete waits for this transaction and then cleans up after it. */
static int check_refs(struct dash_req *r, struct rp_pg *pg, const char *project, const char *lit,
                      int channels)
{
#define REFS_TAIL                                                                                  \
    "SELECT u.i, EXISTS (SELECT 1 FROM known k WHERE k.id = u.id) "                                \
    "FROM unnest($2::uuid[]) WITH ORDINALITY AS u (id, i) "                                        \
    "WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.id = u.id) "                                  \
    "   OR EXISTS (SELECT 1 FROM unnest($2::uuid[]) WITH ORDINALITY AS v (id, j) "                 \
    "              WHERE v.id = u.id AND v.j < u.i) "                                              \
    "ORDER BY u.i LIMIT 1"
    static const char tests_sql[] =
        "WITH known AS MATERIALIZED (SELECT id FROM tests WHERE project_id = $1 "
        "AND id = ANY ($2::uuid[]) FOR KEY SHARE) " REFS_TAIL;
    static const char channels_sql[] =
        "WITH known AS MATERIALIZED (SELECT id FROM channels WHERE project_id = $1 "
        "AND id = ANY ($2::uuid[]) FOR KEY SHARE) " REFS_TAIL;
    if (!lit)
        return RP_OK;
    const char *member_name = channels ? "channel_ids" : "test_ids";
    const char *p[2] = {project, lit};
    PGresult *res = NULL;
    int rc = dash_tx_exec(r, pg, member_name, channels ? channels_sql : tests_sql, 2, p, &res);
    if (rc != RP_OK || PQntuples(res) == 0) {
        PQclear(res);
        return rc;
    }
    char field[40];
    snprintf(field, sizeof(field), "%s[%ld]", member_name,
             strtol(PQgetvalue(res, 0, 0), NULL, 10) - 1);
    int known = PQgetvalue(res, 0, 1)[0] == 't';
    PQclear(res);
    if (known)
        return refuse(r, field, "repeats an id given before");
    dash_error_field(r, 400, "unknown_reference", field, "%s: no %s with this id in this project",
                     field, channels ? "channel" : "test");
    return RP_EINVAL;
}

/* A delete: `sql` ($1 project, $2 id) returns the audit details of the row removed. */
struct delete_in {
    const char *project, *id, *what, *sql, *action, *target, *after;
    char *details;
};

static int delete_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct delete_in *in = ud;
    PGresult *res = NULL;
    const char *p[2] = {in->project, in->id};
    int rc = dash_tx_exec(r, pg, in->what, in->sql, 2, p, &res);
    if (rc != RP_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        dash_error(r, 404, "not_found", "%s not found", in->what);
        return RP_ENOENT;
    }
    free(in->details);
    in->details = rp_xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (in->after && (rc = dash_tx_exec(r, pg, in->what, in->after, 2, p, NULL)) != RP_OK)
        return rc;
    return dash_audit(r, pg, in->project, in->action, in->target, in->id, in->details);
}

static void delete_thing(struct dash_req *r, struct delete_in *in, const char *param)
{
    in->project = dash_param(r, "project");
    if ((in->id = dash_param_uuid(r, param, in->what)) && dash_tx(r, delete_tx, in) == RP_OK)
        dash_reply_empty(r, 204);
    free(in->details);
}

static void delete_channel(struct dash_req *r)
{
    /* rules keep no dangling channel ids */
    struct delete_in in = {
        .what = "channel",
        .sql = "DELETE FROM channels WHERE project_id = $1 AND id = $2 "
               "RETURNING json_build_object('name', name, 'kind', kind)",
        .action = "channel.delete",
        .target = "channel",
        .after = "UPDATE alert_rules SET channel_ids = array_remove(channel_ids, $2::uuid), "
                 "updated_at = now() WHERE project_id = $1 AND $2::uuid = ANY (channel_ids)",
    };
    delete_thing(r, &in, "channel");
}

/* ---- alert rules --------------------------------------------------------------------------------
 */

#define RULE_JSON                                                                                  \
    "json_build_object('id', a.id, 'name', a.name, 'test_ids', a.test_ids, 'tags', a.tags, "       \
    "'on_opened', a.on_opened, 'on_resolved', a.on_resolved, "                                     \
    "'failures_to_open', a.failures_to_open, 'passes_to_resolve', a.passes_to_resolve, "           \
    "'remind_every_s', a.remind_every_s, 'channel_ids', a.channel_ids, 'enabled', a.enabled, "     \
    "'created_at', a.created_at, 'updated_at', a.updated_at)"

struct rule_in {
    const char *project, *id, *name;
    struct rp_buf test_ids, tags, channel_ids;
    const char *on_opened, *on_resolved, *enabled, *fto, *pto, *remind, *remind_set;
    char fto_s[24], pto_s[24], remind_s[24];
    char *details;
    char new_id[37];
};

static void rule_in_cleanup(struct rule_in *in)
{
    rp_buf_cleanup(&in->test_ids);
    rp_buf_cleanup(&in->tags);
    rp_buf_cleanup(&in->channel_ids);
    free(in->details);
}

static const char *int_param(int present, long v, char *buf, size_t cap)
{
    if (!present)
        return NULL;
    snprintf(buf, cap, "%ld", v);
    return buf;
}

static int read_rule(struct dash_req *r, const bson_t *body, int creating, struct rule_in *in)
{
    static const char *const allowed[] = {"name",
                                          "test_ids",
                                          "tags",
                                          "on_opened",
                                          "on_resolved",
                                          "failures_to_open",
                                          "passes_to_resolve",
                                          "remind_every_s",
                                          "channel_ids",
                                          "enabled",
                                          NULL};
    int opened = 1, resolved = 1, enabled = 1, has_o = 0, has_r = 0, has_e = 0, has_f = 0,
        has_p = 0, has_m = 0;
    long fto = 0, pto = 0, remind = -1;
    if (dash_only(r, body, allowed) != RP_OK ||
        dash_get_str(r, body, "name", creating ? DASH_REQUIRED : 0, 1, 100, &in->name, NULL) !=
            RP_OK ||
        dash_get_str_array(r, body, "test_ids", 0, MAX_SCOPE_TESTS, dash_check_uuid, &in->test_ids,
                           NULL) != RP_OK ||
        dash_get_str_array(r, body, "tags", 0, MAX_SCOPE_TAGS, dash_check_tag, &in->tags, NULL) !=
            RP_OK ||
        dash_get_str_array(r, body, "channel_ids", 0, MAX_RULE_CHANNELS, dash_check_uuid,
                           &in->channel_ids, NULL) != RP_OK ||
        dash_get_bool(r, body, "on_opened", 0, &opened, &has_o) != RP_OK ||
        dash_get_bool(r, body, "on_resolved", 0, &resolved, &has_r) != RP_OK ||
        dash_get_bool(r, body, "enabled", 0, &enabled, &has_e) != RP_OK ||
        dash_get_int(r, body, "failures_to_open", 0, 1, 100, &fto, &has_f) != RP_OK ||
        dash_get_int(r, body, "passes_to_resolve", 0, 1, 100, &pto, &has_p) != RP_OK ||
        dash_get_int(r, body, "remind_every_s", DASH_NULLABLE, 60, 2592000, &remind, &has_m) !=
            RP_OK)
        return RP_EINVAL;
    in->on_opened = bool_param(has_o, opened);
    in->on_resolved = bool_param(has_r, resolved);
    in->enabled = bool_param(has_e, enabled);
    in->fto = int_param(has_f, fto, in->fto_s, sizeof(in->fto_s));
    in->pto = int_param(has_p, pto, in->pto_s, sizeof(in->pto_s));
    in->remind = int_param(has_m && remind >= 0, remind, in->remind_s, sizeof(in->remind_s));
    in->remind_set = has_m ? "true" : "false";
    if (creating) {
        bson_t d = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&d, "name", in->name);
        in->details = json_text(&d);
        bson_destroy(&d);
    } else {
        in->details = changed_details(body, NULL, NULL);
    }
    return RP_OK;
}

static int rule_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct rule_in *in = ud;
    PGresult *res = NULL;
    int rc;
    if ((rc = check_refs(r, pg, in->project, in->test_ids.data, 0)) != RP_OK ||
        (rc = check_refs(r, pg, in->project, in->channel_ids.data, 1)) != RP_OK)
        return rc;
    if (!in->id) {
        const char *p[11] = {
            in->project,     in->name, in->test_ids.data, in->tags.data, in->on_opened,
            in->on_resolved, in->fto,  in->pto,           in->remind,    in->channel_ids.data,
            in->enabled};
        rc = dash_tx_exec(
            r, pg, "alert rule",
            "INSERT INTO alert_rules (project_id, name, test_ids, tags, on_opened, on_resolved, "
            "failures_to_open, passes_to_resolve, remind_every_s, channel_ids, enabled) "
            "SELECT id, $2, COALESCE($3::uuid[], '{}'), COALESCE($4::text[], '{}'), "
            "COALESCE($5::bool, true), COALESCE($6::bool, true), COALESCE($7::int, 2), "
            "COALESCE($8::int, 1), $9::int, COALESCE($10::uuid[], '{}'), "
            "COALESCE($11::bool, true) FROM projects WHERE id = $1 RETURNING id",
            11, p, &res);
    } else {
        const char *p[13] = {in->project,   in->id,        in->name,        in->test_ids.data,
                             in->tags.data, in->on_opened, in->on_resolved, in->fto,
                             in->pto,       in->remind,    in->remind_set,  in->channel_ids.data,
                             in->enabled};
        rc = dash_tx_exec(
            r, pg, "alert rule",
            "UPDATE alert_rules SET name = COALESCE($3, name), "
            "test_ids = COALESCE($4::uuid[], test_ids), tags = COALESCE($5::text[], tags), "
            "on_opened = COALESCE($6::bool, on_opened), "
            "on_resolved = COALESCE($7::bool, on_resolved), "
            "failures_to_open = COALESCE($8::int, failures_to_open), "
            "passes_to_resolve = COALESCE($9::int, passes_to_resolve), "
            "remind_every_s = CASE WHEN $11::bool THEN $10::int ELSE remind_every_s END, "
            "channel_ids = COALESCE($12::uuid[], channel_ids), "
            "enabled = COALESCE($13::bool, enabled), updated_at = now() "
            "WHERE project_id = $1 AND id = $2 RETURNING id",
            13, p, &res);
    }
    if (rc != RP_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        dash_error(r, 404, "not_found", in->id ? "alert rule not found" : "project not found");
        return RP_ENOENT;
    }
    snprintf(in->new_id, sizeof(in->new_id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return dash_audit(r, pg, in->project, in->id ? "alert_rule.update" : "alert_rule.create",
                      "alert_rule", in->new_id, in->details);
}

static void reply_rule(struct dash_req *r, unsigned status, const char *project, const char *id)
{
    const char *p[2] = {project, id};
    dash_query_reply(
        r, status, "alert rule",
        "SELECT " RULE_JSON " FROM alert_rules a WHERE a.project_id = $1 AND a.id = $2", 2, p);
}

static void list_rules(struct dash_req *r)
{
    const char *p[1] = {dash_param(r, "project")};
    dash_query_reply(r, 200, "project",
                     LIST_SQL(RULE_JSON, "alert_rules a WHERE a.project_id = p.id", "a.name"), 1,
                     p);
}

static void get_rule(struct dash_req *r)
{
    const char *id = dash_param_uuid(r, "rule", "alert rule");
    if (id)
        reply_rule(r, 200, dash_param(r, "project"), id);
}

static void write_rule(struct dash_req *r, int creating)
{
    bson_t body;
    struct rule_in in = {.project = dash_param(r, "project")};
    rp_buf_init(&in.test_ids, 0);
    rp_buf_init(&in.tags, 0);
    rp_buf_init(&in.channel_ids, 0);
    if ((!creating && !(in.id = dash_param_uuid(r, "rule", "alert rule"))) ||
        dash_body(r, &body) != RP_OK)
        return;
    if (read_rule(r, &body, creating, &in) == RP_OK && dash_tx(r, rule_tx, &in) == RP_OK)
        reply_rule(r, creating ? 201 : 200, in.project, in.new_id);
    rule_in_cleanup(&in);
    bson_destroy(&body);
}

static void create_rule(struct dash_req *r)
{
    write_rule(r, 1);
}

static void patch_rule(struct dash_req *r)
{
    write_rule(r, 0);
}

static void delete_rule(struct dash_req *r)
{
    struct delete_in in = {
        .what = "alert rule",
        .sql = "DELETE FROM alert_rules WHERE project_id = $1 AND id = $2 "
               "RETURNING json_build_object('name', name)",
        .action = "alert_rule.delete",
        .target = "alert_rule",
    };
    delete_thing(r, &in, "rule");
}

/* ---- maintenance windows ------------------------------------------------------------------------
 */

#define WINDOW_JSON                                                                                \
    "(jsonb_build_object('id', w.id, 'name', w.name, 'kind', w.kind, 'test_ids', w.test_ids, "     \
    "'tags', w.tags, 'active', maintenance_window_active(w, now()), "                              \
    "'created_at', w.created_at, 'updated_at', w.updated_at) || CASE w.kind "                      \
    "WHEN 'once' THEN jsonb_build_object('starts_at', w.starts_at, 'ends_at', w.ends_at) "         \
    "ELSE jsonb_build_object('days', w.days, 'start', to_char(w.start_time, 'HH24:MI'), "          \
    "'duration_minutes', w.duration_minutes, 'timezone', w.timezone) END)"

static const char *const day_names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun", NULL};

struct window_in {
    const char *project, *id, *name, *kind, *starts_at, *ends_at, *days, *start, *duration,
        *timezone;
    char starts_s[72], ends_s[72], days_s[40], duration_s[24];
    struct rp_buf test_ids, tags;
    char *details;
    char new_id[37];
};

static void window_in_cleanup(struct window_in *in)
{
    rp_buf_cleanup(&in->test_ids);
    rp_buf_cleanup(&in->tags);
    free(in->details);
}

static int read_time(struct dash_req *r, const bson_t *body, const char *name, int required,
                     char out[72], const char **param, int64_t *sec, long *nsec)
{
    const char *s = NULL;
    if (dash_get_str(r, body, name, required ? DASH_REQUIRED : 0, 1, 64, &s, NULL) != RP_OK)
        return RP_EINVAL;
    if (!s)
        return RP_OK;
    if (!parse_rfc3339(s, sec, nsec))
        return refuse(r, name, "must be an RFC 3339 date-time such as 2030-01-31T22:00:00Z");
    snprintf(out, 72, "%s", s);
    for (char *c = out; *c; c++)
        if (*c == 't' || *c == 'z')
            *c = (char)(*c - 'a' + 'A');
    *param = out;
    return RP_OK;
}

/* "days": ["mon", ...], each once, stored in week order. */
static int read_days(struct dash_req *r, const bson_t *body, int required, struct window_in *in)
{
    bson_iter_t it, child;
    char item[32];
    unsigned mask = 0;
    size_t n = 0;
    int f = member(r, body, "", "days", required, &it);
    if (f <= 0)
        return f < 0 ? RP_EINVAL : RP_OK;
    if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &child))
        return refuse(r, "days", "must be an array of days (mon, tue, wed, thu, fri, sat, sun)");
    while (bson_iter_next(&child)) {
        snprintf(item, sizeof(item), "days[%zu]", n++);
        const char *s = iter_str(&child);
        int d = 0;
        while (s && day_names[d] && strcmp(day_names[d], s) != 0)
            d++;
        if (!s || !day_names[d])
            return refuse(r, item, "must be one of mon, tue, wed, thu, fri, sat, sun");
        if (mask & (1u << d))
            return refuse(r, item, "repeats %s", s);
        mask |= 1u << d;
    }
    if (!mask)
        return refuse(r, "days", "takes at least one day");
    snprintf(in->days_s, sizeof(in->days_s), "{");
    for (int d = 0; d < 7; d++)
        if (mask & (1u << d))
            snprintf(in->days_s + strlen(in->days_s), sizeof(in->days_s) - strlen(in->days_s),
                     "%s%s", in->days_s[1] ? "," : "", day_names[d]);
    strcat(in->days_s, "}");
    in->days = in->days_s;
    return RP_OK;
}

/* The members of a window of `kind`; the other kind's members are refused. */
static int read_window(struct dash_req *r, const bson_t *body, int creating, struct window_in *in)
{
    static const char *const once_only[] = {"starts_at", "ends_at", NULL};
    static const char *const weekly_only[] = {"days", "start", "duration_minutes", "timezone",
                                              NULL};
    int once = strcmp(in->kind, "once") == 0;
    const char *const *other = once ? weekly_only : once_only;
    for (size_t i = 0; other[i]; i++)
        if (bson_has_field(body, other[i]))
            return refuse(r, other[i], "applies to %s windows only", once ? "weekly" : "once");
    if (once) {
        int64_t s = 0, e = 0;
        long sn = 0, en = 0;
        if (read_time(r, body, "starts_at", creating, in->starts_s, &in->starts_at, &s, &sn) !=
                RP_OK ||
            read_time(r, body, "ends_at", creating, in->ends_s, &in->ends_at, &e, &en) != RP_OK)
            return RP_EINVAL;
        if (in->starts_at && in->ends_at && (e < s || (e == s && en <= sn)))
            return refuse(r, "ends_at", "must be after starts_at");
    } else {
        long duration = 0;
        int has_duration = 0;
        const char *why = NULL;
        int req = creating ? DASH_REQUIRED : 0;
        if (read_days(r, body, creating, in) != RP_OK ||
            dash_get_str(r, body, "start", req, 1, 5, &in->start, NULL) != RP_OK ||
            (in->start && (why = check_hhmm(in->start)) && refuse(r, "start", "%s", why)) ||
            dash_get_int(r, body, "duration_minutes", req, 1, 10080, &duration, &has_duration) !=
                RP_OK ||
            dash_get_str(r, body, "timezone", req, 1, 64, &in->timezone, NULL) != RP_OK ||
            (in->timezone && (why = check_timezone(in->timezone)) &&
             refuse(r, "timezone", "%s", why)))
            return RP_EINVAL;
        in->duration = int_param(has_duration, duration, in->duration_s, sizeof(in->duration_s));
    }
    if (dash_get_str_array(r, body, "test_ids", 0, MAX_SCOPE_TESTS, dash_check_uuid, &in->test_ids,
                           NULL) != RP_OK ||
        dash_get_str_array(r, body, "tags", 0, MAX_SCOPE_TAGS, dash_check_tag, &in->tags, NULL) !=
            RP_OK)
        return RP_EINVAL;
    if (creating) {
        bson_t d = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&d, "name", in->name);
        BSON_APPEND_UTF8(&d, "kind", in->kind);
        in->details = json_text(&d);
        bson_destroy(&d);
    } else {
        in->details = changed_details(body, NULL, NULL);
    }
    return RP_OK;
}

/* On PATCH of a one-off window, the merged times must still be in order. */
static int window_times_ok(struct dash_req *r, struct rp_pg *pg, struct window_in *in)
{
    if (!in->id || (!in->starts_at && !in->ends_at))
        return RP_OK;
    const char *p[4] = {in->project, in->id, in->starts_at, in->ends_at};
    PGresult *res = NULL;
    int rc = dash_tx_exec(r, pg, "maintenance window",
                          "SELECT COALESCE($3::timestamptz, starts_at) < "
                          "COALESCE($4::timestamptz, ends_at) FROM maintenance_windows "
                          "WHERE project_id = $1 AND id = $2 FOR UPDATE",
                          4, p, &res);
    if (rc != RP_OK)
        return rc;
    int rows = PQntuples(res), ordered = rows == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (rows != 1) {
        dash_error(r, 404, "not_found", "maintenance window not found");
        return RP_ENOENT;
    }
    if (!ordered)
        return in->ends_at ? refuse(r, "ends_at", "must be after starts_at")
                           : refuse(r, "starts_at", "must be before ends_at");
    return RP_OK;
}

static int window_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct window_in *in = ud;
    PGresult *res = NULL;
    int rc;
    if ((rc = check_refs(r, pg, in->project, in->test_ids.data, 0)) != RP_OK ||
        (rc = window_times_ok(r, pg, in)) != RP_OK)
        return rc;
    /* the zone file was found; PostgreSQL, which evaluates windows, must know it too */
    if (in->timezone && (rc = dash_tx_exec(r, pg, "timezone", "SELECT now() AT TIME ZONE $1", 1,
                                           &in->timezone, NULL)) != RP_OK)
        return rc;
    if (!in->id) {
        const char *p[11] = {in->project,  in->name,          in->kind,     in->starts_at,
                             in->ends_at,  in->days,          in->start,    in->duration,
                             in->timezone, in->test_ids.data, in->tags.data};
        rc = dash_tx_exec(r, pg, "maintenance window",
                          "INSERT INTO maintenance_windows (project_id, name, kind, starts_at, "
                          "ends_at, days, start_time, duration_minutes, timezone, test_ids, tags) "
                          "SELECT id, $2, $3, $4::timestamptz, $5::timestamptz, $6::text[], "
                          "$7::time, $8::int, $9, COALESCE($10::uuid[], '{}'), "
                          "COALESCE($11::text[], '{}') FROM projects WHERE id = $1 RETURNING id",
                          11, p, &res);
    } else {
        const char *p[11] = {
            in->project, in->id,       in->name,     in->starts_at,     in->ends_at,  in->days,
            in->start,   in->duration, in->timezone, in->test_ids.data, in->tags.data};
        rc = dash_tx_exec(r, pg, "maintenance window",
                          "UPDATE maintenance_windows SET name = COALESCE($3, name), "
                          "starts_at = COALESCE($4::timestamptz, starts_at), "
                          "ends_at = COALESCE($5::timestamptz, ends_at), "
                          "days = COALESCE($6::text[], days), "
                          "start_time = COALESCE($7::time, start_time), "
                          "duration_minutes = COALESCE($8::int, duration_minutes), "
                          "timezone = COALESCE($9, timezone), "
                          "test_ids = COALESCE($10::uuid[], test_ids), "
                          "tags = COALESCE($11::text[], tags), updated_at = now() "
                          "WHERE project_id = $1 AND id = $2 RETURNING id",
                          11, p, &res);
    }
    if (rc != RP_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        dash_error(r, 404, "not_found",
                   in->id ? "maintenance window not found" : "project not found");
        return RP_ENOENT;
    }
    snprintf(in->new_id, sizeof(in->new_id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return dash_audit(r, pg, in->project,
                      in->id ? "maintenance_window.update" : "maintenance_window.create",
                      "maintenance_window", in->new_id, in->details);
}

static void reply_window(struct dash_req *r, unsigned status, const char *project, const char *id)
{
    const char *p[2] = {project, id};
    dash_query_reply(r, status, "maintenance window",
                     "SELECT " WINDOW_JSON " FROM maintenance_windows w "
                     "WHERE w.project_id = $1 AND w.id = $2",
                     2, p);
}

static void list_windows(struct dash_req *r)
{
    const char *p[1] = {dash_param(r, "project")};
    dash_query_reply(
        r, 200, "project",
        LIST_SQL(WINDOW_JSON, "maintenance_windows w WHERE w.project_id = p.id", "w.name"), 1, p);
}

static void get_window(struct dash_req *r)
{
    const char *id = dash_param_uuid(r, "window", "maintenance window");
    if (id)
        reply_window(r, 200, dash_param(r, "project"), id);
}

static const char *const window_members[] = {
    "name",     "kind",     "starts_at", "ends_at", "days", "start", "duration_minutes",
    "timezone", "test_ids", "tags",      NULL};

static void create_window(struct dash_req *r)
{
    bson_t body;
    struct window_in in = {.project = dash_param(r, "project")};
    rp_buf_init(&in.test_ids, 0);
    rp_buf_init(&in.tags, 0);
    if (dash_body(r, &body) != RP_OK)
        return;
    const char *why = NULL;
    if (dash_only(r, &body, window_members) == RP_OK &&
        dash_get_str(r, &body, "name", DASH_REQUIRED, 1, 100, &in.name, NULL) == RP_OK &&
        dash_get_str(r, &body, "kind", DASH_REQUIRED, 1, 10, &in.kind, NULL) == RP_OK &&
        !((why = check_window_kind(in.kind)) && refuse(r, "kind", "%s", why)) &&
        read_window(r, &body, 1, &in) == RP_OK && dash_tx(r, window_tx, &in) == RP_OK)
        reply_window(r, 201, in.project, in.new_id);
    window_in_cleanup(&in);
    bson_destroy(&body);
}

static void patch_window(struct dash_req *r)
{
    bson_t body;
    struct window_in in = {.project = dash_param(r, "project")};
    rp_buf_init(&in.test_ids, 0);
    rp_buf_init(&in.tags, 0);
    if (!(in.id = dash_param_uuid(r, "window", "maintenance window")) ||
        dash_body(r, &body) != RP_OK)
        return;
    PGresult *res = NULL;
    const char *kind = NULL;
    const char *p[2] = {in.project, in.id};
    if (dash_only(r, &body, window_members) != RP_OK ||
        dash_get_str(r, &body, "name", 0, 1, 100, &in.name, NULL) != RP_OK ||
        dash_get_str(r, &body, "kind", 0, 1, 10, &kind, NULL) != RP_OK ||
        dash_exec(r, "maintenance window",
                  "SELECT kind FROM maintenance_windows WHERE project_id = $1 AND id = $2", 2, p,
                  &res) != RP_OK)
        goto out;
    if (PQntuples(res) != 1) {
        dash_error(r, 404, "not_found", "maintenance window not found");
        goto out;
    }
    in.kind = PQgetvalue(res, 0, 0);
    if (kind && strcmp(kind, in.kind) != 0) {
        refuse(r, "kind", "cannot be changed (this window is %s): create a new window", in.kind);
        goto out;
    }
    if (read_window(r, &body, 0, &in) == RP_OK && dash_tx(r, window_tx, &in) == RP_OK)
        reply_window(r, 200, in.project, in.id);
out:
    PQclear(res);
    window_in_cleanup(&in);
    bson_destroy(&body);
}

static void delete_window(struct dash_req *r)
{
    struct delete_in in = {
        .what = "maintenance window",
        .sql = "DELETE FROM maintenance_windows WHERE project_id = $1 AND id = $2 "
               "RETURNING json_build_object('name', name, 'kind', kind)",
        .action = "maintenance_window.delete",
        .target = "maintenance_window",
    };
    delete_thing(r, &in, "window");
}

#define PROJ "/api/v1/projects/{project}"
const struct dash_route dash_routes_alerts[] = {
    {"GET", PROJ "/channels", DASH_PROJECT_VIEWER, list_channels},
    {"POST", PROJ "/channels", DASH_PROJECT_EDITOR, create_channel},
    {"GET", PROJ "/channels/{channel}", DASH_PROJECT_VIEWER, get_channel},
    {"PATCH", PROJ "/channels/{channel}", DASH_PROJECT_EDITOR, patch_channel},
    {"DELETE", PROJ "/channels/{channel}", DASH_PROJECT_EDITOR, delete_channel},
    {"GET", PROJ "/alert-rules", DASH_PROJECT_VIEWER, list_rules},
    {"POST", PROJ "/alert-rules", DASH_PROJECT_EDITOR, create_rule},
    {"GET", PROJ "/alert-rules/{rule}", DASH_PROJECT_VIEWER, get_rule},
    {"PATCH", PROJ "/alert-rules/{rule}", DASH_PROJECT_EDITOR, patch_rule},
    {"DELETE", PROJ "/alert-rules/{rule}", DASH_PROJECT_EDITOR, delete_rule},
    {"GET", PROJ "/maintenance-windows", DASH_PROJECT_VIEWER, list_windows},
    {"POST", PROJ "/maintenance-windows", DASH_PROJECT_EDITOR, create_window},
    {"GET", PROJ "/maintenance-windows/{window}", DASH_PROJECT_VIEWER, get_window},
    {"PATCH", PROJ "/maintenance-windows/{window}", DASH_PROJECT_EDITOR, patch_window},
    {"DELETE", PROJ "/maintenance-windows/{window}", DASH_PROJECT_EDITOR, delete_window},
    {NULL, NULL, 0, NULL},
};
