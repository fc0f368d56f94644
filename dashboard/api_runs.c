/* Runs and results: the list of a project's runs (filters, cursor pagination over the
 * runs_project_page / runs_test_recent indexes, one statement), one run with its MongoDB
 * result document, and the charts' statistics (per time bucket: counts, pass rate, p50/p95 of
 * duration_ms, over runs_test_finished). The CI trigger, which creates runs on the same path
 * (POST .../runs), is in api_ci.c; it shares the query-string readers and the result lookup
 * below (declared in dash.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"
#include "rampart/job.h"
#include "rampart/log.h"

#define MAX_BUCKETS     1000 /* points of one statistics answer */
#define DEFAULT_BUCKETS 200

/* One run as the API shows it (alias n for runs, t for tests). */
#define RUN_JSON                                                                                   \
    "json_build_object('id', n.id, 'test_id', n.test_id, 'test_name', t.name, 'test_version', "    \
    "n.test_version, 'schedule_id', n.schedule_id, 'environment_id', n.environment_id, "           \
    "'trigger', n.trigger, 'location', n.location, 'status', n.status, 'attempts', n.attempts, "   \
    "'error', n.error, 'fire_time', n.fire_time, 'queued_at', n.queued_at, 'started_at', "         \
    "n.started_at, 'finished_at', n.finished_at, 'duration_ms', n.duration_ms)"

/* ---- query-string input ---------------------------------------------------------------------- */

static int days_before_month(int y, int m)
{
    static const int cum[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return cum[m - 1] + (leap && m > 2);
}

static int days_in_month(int y, int m)
{
    return m == 12 ? 31 : days_before_month(y, m + 1) - days_before_month(y, m);
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static long days_from_epoch(int y, int m, int d)
{
    long yy = y - 1;
    long days = yy * 365 + yy / 4 - yy / 100 + yy / 400 + days_before_month(y, m) + d - 1;
    return days - 719162; /* days from 0001-01-01 to 1970-01-01 */
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* An RFC 3339 date-time ("2025-11-23T12:00:00Z", "2025-11-23T13:00:00.25+01:00") as Unix
 * seconds. A space is accepted for the 'T', and for the '+' of an offset (a query string
 * decodes an unescaped '+' as a space). Returns 1 when valid. */
static int parse_time(const char *s, double *out)
{
    int y, mo, d, h, mi, sec, oh = 0, om = 0;
    size_t n = strlen(s);
    if (n < 20 || n > 40 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) || !strchr("Tt ", s[10]) || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 60)
        return 0;
    const char *p = s + 19;
    double frac = 0, scale = 0.1;
    if (*p == '.') {
        if (p[1] < '0' || p[1] > '9')
            return 0;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            frac += (*p - '0') * scale;
    }
    int sign = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == ' ' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return 0;
        p += 6;
    } else {
        return 0;
    }
    if (*p)
        return 0;
    double t = (double)days_from_epoch(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec + frac;
    *out = t - sign * (oh * 3600 + om * 60);
    return 1;
}

/* A query argument that must be an RFC 3339 time: RP_OK with *present, or 400 answered. */
static int arg_time(struct dash_req *r, const char *name, double *out, int *present)
{
    const char *v = dash_arg(r, name);
    *present = v != NULL;
    if (v && !parse_time(v, out)) {
        dash_error_field(r, 400, "invalid_field", name,
                         "%s must be an RFC 3339 time such as 2025-11-23T12:00:00Z (escape a '+' "
                         "in an offset as %%2B)",
                         name);
        return RP_EINVAL;
    }
    /* Rampart has nothing older; and a chart bucket aligned below year 1 would be written as
     * a BC date, which is not an RFC 3339 time */
    if (v && *out < 0) {
        dash_error_field(r, 400, "invalid_field", name, "%s must be 1970-01-01T00:00:00Z or later",
                         name);
        return RP_EINVAL;
    }
    return RP_OK;
}

/* A query argument that must be an integer lo..hi (absent: `def`). */
int dash_arg_long(struct dash_req *r, const char *name, long lo, long hi, long def, long *out)
{
    const char *v = dash_arg(r, name);
    *out = def;
    if (!v)
        return RP_OK;
    char *end = NULL;
    long x = (*v >= '0' && *v <= '9') ? strtol(v, &end, 10) : -1;
    if (!end || *end || strlen(v) > 12 || x < lo || x > hi) {
        dash_error_field(r, 400, "invalid_field", name, "%s must be an integer from %ld to %ld",
                         name, lo, hi);
        return RP_EINVAL;
    }
    *out = x;
    return RP_OK;
}

/* A query argument that must be one of `allowed` (NULL-terminated) or checked by `check`. */
int dash_arg_enum(struct dash_req *r, const char *name, const char *const *allowed,
                  const char **out)
{
    const char *v = dash_arg(r, name);
    *out = NULL;
    if (!v)
        return RP_OK;
    char list[256] = "";
    for (size_t i = 0; allowed[i]; i++) {
        if (strcmp(v, allowed[i]) == 0) {
            *out = allowed[i];
            return RP_OK;
        }
        strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
        strncat(list, allowed[i], sizeof(list) - strlen(list) - 1);
    }
    dash_error_field(r, 400, "invalid_field", name, "%s must be one of: %s", name, list);
    return RP_EINVAL;
}

static int arg_checked(struct dash_req *r, const char *name, const char *(*check)(const char *),
                       const char **out)
{
    const char *v = dash_arg(r, name);
    *out = v;
    const char *why = v ? check(v) : NULL;
    if (why) {
        dash_error_field(r, 400, "invalid_field", name, "%s: %s", name, why);
        return RP_EINVAL;
    }
    return RP_OK;
}

/* ---- GET /projects/{project}/runs --------------------------------------------------------- */

/* Newest first by (fire_time, id); one more row than the page says whether there is a next.
 * The redundant `fire_time <=` bound lets the index range start at the cursor. Rows come as
 * plain columns (times in Unix microseconds) and the page's JSON is written here: building it
 * with json_build_object cost the server 0.35 ms of a 0.58 ms page (pgbench, measured). */
static const char list_sql[] =
    "SELECT n.id, n.test_id, t.name, n.test_version, n.schedule_id, n.environment_id, "
    "       n.trigger, n.location, n.status, n.attempts, n.error, "
    "       (extract(epoch FROM n.fire_time) * 1000000)::bigint, "
    "       (extract(epoch FROM n.queued_at) * 1000000)::bigint, "
    "       (extract(epoch FROM n.started_at) * 1000000)::bigint, "
    "       (extract(epoch FROM n.finished_at) * 1000000)::bigint, n.duration_ms "
    "FROM (SELECT r.* FROM runs r WHERE r.project_id = $1 "
    "    AND ($2::uuid IS NULL OR r.test_id = $2::uuid) "
    "    AND ($3::text IS NULL OR r.status = $3) AND ($4::text IS NULL OR r.trigger = $4) "
    "    AND ($5::text IS NULL OR r.location = $5) "
    "    AND ($6::float8 IS NULL OR r.fire_time >= to_timestamp($6::float8)) "
    "    AND ($7::float8 IS NULL OR r.fire_time < to_timestamp($7::float8)) "
    "    AND ($8::uuid IS NULL OR r.schedule_id = $8::uuid) "
    "    AND ($9::bigint IS NULL OR "
    "         (r.fire_time <= timestamptz 'epoch' + $9::bigint * interval '1 microsecond' AND "
    "          (r.fire_time, r.id) < (timestamptz 'epoch' + $9::bigint * interval '1 microsecond', "
    "                                 $10::uuid))) "
    "  ORDER BY r.fire_time DESC, r.id DESC LIMIT $11::int + 1) n "
    "LEFT JOIN tests t ON t.id = n.test_id ORDER BY n.fire_time DESC, n.id DESC";

enum {
    L_ID,
    L_TEST,
    L_TEST_NAME,
    L_VERSION,
    L_SCHEDULE,
    L_ENV,
    L_TRIGGER,
    L_LOCATION,
    L_STATUS,
    L_ATTEMPTS,
    L_ERROR,
    L_FIRE,
    L_QUEUED,
    L_STARTED,
    L_FINISHED,
    L_DURATION
};

/* ,"name": value of column `col`: a JSON string, a number as PostgreSQL wrote it, a time from
 * Unix microseconds (RFC 3339, UTC), or null. Written without printf or strftime: formatting
 * was the dashboard's largest CPU cost on this page (perf, 51 rows x 16 members). */
static void put_name(struct rp_buf *b, const char *name)
{
    (void)rp_buf_append(b, ",\"", 2);
    (void)rp_buf_append(b, name, strlen(name));
    (void)rp_buf_append(b, "\":", 2);
}

static void put_str(struct rp_buf *b, const char *name, const PGresult *res, int row, int col)
{
    put_name(b, name);
    if (PQgetisnull(res, row, col)) {
        (void)rp_buf_append(b, "null", 4);
        return;
    }
    (void)rp_buf_append(b, "\"", 1);
    (void)rp_json_escape(b, PQgetvalue(res, row, col));
    (void)rp_buf_append(b, "\"", 1);
}

static void put_num(struct rp_buf *b, const char *name, const PGresult *res, int row, int col)
{
    const char *v = PQgetisnull(res, row, col) ? "null" : PQgetvalue(res, row, col);
    if (strcmp(v, "NaN") == 0 || strstr(v, "Infinity"))
        v = "null";
    put_name(b, name);
    (void)rp_buf_append(b, v, strlen(v));
}

static void put_digits(char *out, long long v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10)
        out[i] = (char)('0' + v % 10);
}

static void put_time(struct rp_buf *b, const char *name, const PGresult *res, int row, int col)
{
    put_name(b, name);
    if (PQgetisnull(res, row, col)) {
        (void)rp_buf_append(b, "null", 4);
        return;
    }
    long long us = strtoll(PQgetvalue(res, row, col), NULL, 10);
    long long secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    long long frac = us - secs * 1000000,
              days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    long long sod = secs - days * 86400;
    /* civil date from days since 1970-01-01 (Howard Hinnant's algorithm) */
    long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
    long long m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    if (y < 0 || y > 9999) {
        (void)rp_buf_append(b, "null", 4);
        return;
    }
    char t[] = "\"0000-00-00T00:00:00.000000Z\"";
    put_digits(t + 1, y, 4);
    put_digits(t + 6, m, 2);
    put_digits(t + 9, d, 2);
    put_digits(t + 12, sod / 3600, 2);
    put_digits(t + 15, sod / 60 % 60, 2);
    put_digits(t + 18, sod % 60, 2);
    put_digits(t + 21, frac, 6);
    (void)rp_buf_append(b, t, sizeof(t) - 1);
}

static void put_run(struct rp_buf *b, const PGresult *res, int i)
{
    (void)rp_buf_append(b, "{\"id\":\"", 7);
    (void)rp_buf_append(b, PQgetvalue(res, i, L_ID), (size_t)PQgetlength(res, i, L_ID));
    (void)rp_buf_append(b, "\"", 1);
    put_str(b, "test_id", res, i, L_TEST);
    put_str(b, "test_name", res, i, L_TEST_NAME);
    put_num(b, "test_version", res, i, L_VERSION);
    put_str(b, "schedule_id", res, i, L_SCHEDULE);
    put_str(b, "environment_id", res, i, L_ENV);
    put_str(b, "trigger", res, i, L_TRIGGER);
    put_str(b, "location", res, i, L_LOCATION);
    put_str(b, "status", res, i, L_STATUS);
    put_num(b, "attempts", res, i, L_ATTEMPTS);
    put_str(b, "error", res, i, L_ERROR);
    put_time(b, "fire_time", res, i, L_FIRE);
    put_time(b, "queued_at", res, i, L_QUEUED);
    put_time(b, "started_at", res, i, L_STARTED);
    put_time(b, "finished_at", res, i, L_FINISHED);
    put_num(b, "duration_ms", res, i, L_DURATION);
    (void)rp_buf_append(b, "}", 1);
}

static const char *const statuses[] = {"passed", "failed",  "error", "pending",
                                       "queued", "running", NULL};
static const char *const triggers[] = {"schedule", "manual", "api", NULL};

static const char *check_cursor_time(const char *s)
{
    const char *p = *s == '-' ? s + 1 : s;
    if (!*p || strlen(p) > 18)
        return "bad";
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            return "bad";
    return NULL;
}

static void list_runs(struct dash_req *r)
{
    const char *test, *schedule, *status, *trigger, *location, *cursor = dash_arg(r, "cursor");
    double from = 0, to = 0;
    int have_from, have_to;
    long limit;
    char *ctime = NULL, *cid = NULL;
    if (arg_checked(r, "test", dash_check_uuid, &test) != RP_OK ||
        arg_checked(r, "schedule", dash_check_uuid, &schedule) != RP_OK ||
        dash_arg_enum(r, "status", statuses, &status) != RP_OK ||
        dash_arg_enum(r, "trigger", triggers, &trigger) != RP_OK ||
        arg_checked(r, "location", dash_check_location, &location) != RP_OK ||
        arg_time(r, "from", &from, &have_from) != RP_OK ||
        arg_time(r, "to", &to, &have_to) != RP_OK ||
        dash_arg_long(r, "limit", 1, 200, 50, &limit) != RP_OK)
        return;
    if (cursor && (dash_cursor_decode(cursor, &ctime, &cid) != RP_OK || check_cursor_time(ctime))) {
        dash_error_field(r, 400, "invalid_field", "cursor",
                         "cursor: not a cursor from this list (use next_cursor as given)");
        goto out;
    }
    char f[32], t[32], lim[16];
    snprintf(f, sizeof(f), "%.6f", from);
    snprintf(t, sizeof(t), "%.6f", to);
    snprintf(lim, sizeof(lim), "%ld", limit);
    const char *p[11] = {
        dash_param(r, "project"), test,     status, trigger, location, have_from ? f : NULL,
        have_to ? t : NULL,       schedule, ctime,  cid,     lim};
    PGresult *res = NULL;
    if (dash_exec(r, "runs", list_sql, 11, p, &res) != RP_OK)
        goto out;
    int rows = PQntuples(res);
    if (rows == 0) { /* no runs, or no project (an admin passes the role check anywhere) */
        PQclear(res);
        if (dash_exec(r, "project", "SELECT 1 FROM projects WHERE id = $1", 1, p, &res) != RP_OK)
            goto out;
        if (PQntuples(res) == 0) {
            dash_error(r, 404, "not_found", "project not found");
            PQclear(res);
            goto out;
        }
    }
    struct rp_buf b;
    rp_buf_init(&b, 0);
    (void)rp_buf_append(&b, "{\"items\":[", 10);
    for (int i = 0; i < rows && i < limit; i++) {
        if (i)
            (void)rp_buf_append(&b, ",", 1);
        put_run(&b, res, i);
    }
    if (rows > limit) {
        char *next = dash_cursor_encode(PQgetvalue(res, (int)limit - 1, L_FIRE),
                                        PQgetvalue(res, (int)limit - 1, L_ID));
        (void)rp_buf_printf(&b, "],\"next_cursor\":\"%s\"}", next);
        free(next);
    } else {
        (void)rp_buf_append(&b, "],\"next_cursor\":null}", 21);
    }
    dash_reply_json(r, 200, b.data, b.len);
    rp_buf_cleanup(&b);
    PQclear(res);
out:
    free(ctime);
    free(cid);
}

/* ---- GET /projects/{project}/runs/{run} ---------------------------------------------------- */

/* The row, with the overrides shown without their secret values. */
static const char run_sql[] =
    "SELECT (" RUN_JSON "::jsonb || jsonb_build_object('retries', n.retries, 'created_at', "
    "n.created_at, 'overrides', CASE WHEN n.overrides IS NULL THEN NULL ELSE "
    "COALESCE((SELECT jsonb_object_agg(k, CASE WHEN jsonb_typeof(v) = 'object' AND v ? 'sealed' "
    "  THEN '{\"secret\": true}'::jsonb ELSE v END) FROM jsonb_each(n.overrides) AS e(k, v)), "
    "  '{}'::jsonb) END))::text, n.status IN " DASH_FINAL_STATUSES " "
    "FROM runs n LEFT JOIN tests t ON t.id = n.test_id WHERE n.id = $2 AND n.project_id = $1";

/* Find the result document of run `id`; RP_OK with *out (NULL when none is stored), or an
 * error after answering 503. Caller bson_destroy()s *out. */
int dash_find_result(struct dash_req *r, mongoc_collection_t *coll, const char *id, bson_t **out)
{
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "_id", id);
    BSON_APPEND_INT64(&opts, "limit", 1);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    const bson_t *doc;
    bson_error_t e;
    *out = NULL;
    if (mongoc_cursor_next(cur, &doc))
        *out = bson_copy(doc);
    int rc = RP_OK;
    if (mongoc_cursor_error(cur, &e)) {
        rp_warn("request %s: reading result %s: %s", r->request_id, id, e.message);
        dash_error(r, 503, "unavailable", "the results store did not answer; retry in a moment");
        bson_destroy(*out);
        *out = NULL;
        rc = RP_EAGAIN;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    bson_destroy(&opts);
    return rc;
}

static void get_run(struct dash_req *r)
{
    const char *id = dash_param_uuid(r, "run", "run");
    if (!id)
        return;
    const char *p[2] = {dash_param(r, "project"), id};
    PGresult *res = NULL;
    if (dash_exec(r, "run", run_sql, 2, p, &res) != RP_OK)
        return;
    bson_t *doc = NULL;
    mongoc_collection_t *coll = NULL;
    if (PQntuples(res) == 0) {
        dash_error(r, 404, "not_found", "run not found");
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
        if (!(coll = dash_results(r)) || dash_find_result(r, coll, id, &doc) != RP_OK)
            goto out;
    }
    struct rp_buf b;
    rp_buf_init(&b, 0);
    const char *row = PQgetvalue(res, 0, 0);
    size_t len = (size_t)PQgetlength(res, 0, 0);
    (void)rp_buf_append(&b, row, len - 1); /* without its closing brace */
    (void)rp_buf_append(&b, ", \"result\": ", 12);
    char *json = doc ? bson_as_relaxed_extended_json(doc, NULL) : NULL;
    (void)rp_buf_printf(&b, "%s}", json ? json : "null");
    bson_free(json);
    dash_reply_json(r, 200, b.data, b.len);
    rp_buf_cleanup(&b);
out:
    if (coll)
        mongoc_collection_destroy(coll);
    bson_destroy(doc);
    PQclear(res);
}

/* ---- GET /projects/{project}/stats, /projects/{project}/tests/{test}/stats --------------- */

/* Buckets start at multiples of bucket_s from the epoch; every bucket of [from, to) is a point,
 * empty ones with zero runs. The summary is the whole range (GROUPING SETS). The tests are an
 * array (not IN (subquery)) so that the planner probes runs_test_finished once per test
 * instead of scanning the whole table (measured: 49 ms instead of 275 ms for 10,000 runs of a
 * day among 400,000). */
static const char stats_sql[] =
    "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM projects WHERE id = $1) OR ($2::uuid IS NOT NULL "
    "  AND NOT EXISTS (SELECT 1 FROM tests WHERE id = $2::uuid AND project_id = $1)) THEN NULL "
    "ELSE (WITH a AS ("
    "  SELECT floor((extract(epoch FROM r.finished_at) - $3::bigint) / $5::bigint)::bigint AS k, "
    "         count(*) AS n, count(*) FILTER (WHERE r.status = 'passed') AS passed, "
    "         count(*) FILTER (WHERE r.status = 'failed') AS failed, "
    "         count(*) FILTER (WHERE r.status = 'error') AS errors, "
    "         percentile_cont(0.5) WITHIN GROUP (ORDER BY r.duration_ms) AS p50, "
    "         percentile_cont(0.95) WITHIN GROUP (ORDER BY r.duration_ms) AS p95 "
    "  FROM runs r "
    "  WHERE r.test_id = ANY (ARRAY(SELECT t.id FROM tests t WHERE t.project_id = $1 "
    "                              AND ($2::uuid IS NULL OR t.id = $2::uuid))) "
    "    AND r.finished_at IS NOT NULL AND r.finished_at >= to_timestamp($3::bigint) "
    "    AND r.finished_at < to_timestamp($4::bigint) "
    "  GROUP BY GROUPING SETS ((1), ())), "
    "g AS (SELECT s AS t, (s - $3::bigint) / $5::bigint AS k "
    "      FROM generate_series($3::bigint, $4::bigint - 1, $5::bigint) AS s) "
    "SELECT json_build_object('bucket_s', $5::bigint, 'from', to_timestamp($3::bigint), "
    "  'to', to_timestamp($4::bigint), "
    "  'summary', (SELECT json_build_object('runs', COALESCE(max(s.n), 0), "
    "     'passed', COALESCE(max(s.passed), 0), 'failed', COALESCE(max(s.failed), 0), "
    "     'error', COALESCE(max(s.errors), 0), "
    "     'pass_rate', max(s.passed)::float8 / NULLIF(max(s.n), 0), "
    "     'p50_ms', max(s.p50), 'p95_ms', max(s.p95)) FROM a s WHERE s.k IS NULL), "
    "  'points', (SELECT COALESCE(json_agg(json_build_object('t', to_timestamp(g.t), "
    "     'runs', COALESCE(a.n, 0), 'passed', COALESCE(a.passed, 0), "
    "     'failed', COALESCE(a.failed, 0), 'error', COALESCE(a.errors, 0), "
    "     'pass_rate', a.passed::float8 / NULLIF(a.n, 0), 'p50_ms', a.p50, 'p95_ms', a.p95) "
    "     ORDER BY g.t), '[]'::json) FROM g LEFT JOIN a ON a.k = g.k)) "
    ") END";

/* `t` rounded down to a multiple of `b` (also before 1970). */
static long long floor_to(long long t, long b)
{
    return t >= 0 ? t / b * b : -((-t + b - 1) / b) * b;
}

/* A bucket size people read easily, giving at most DEFAULT_BUCKETS points over [t0, t1). */
static long nice_bucket(long long t0, long long t1)
{
    static const long steps[] = {1,    5,    10,   15,    30,    60,    120,   300,    600,   900,
                                 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800};
    size_t i = 0;
    long b = steps[0];
    while ((t1 - floor_to(t0, b) + b - 1) / b > DEFAULT_BUCKETS)
        b = ++i < sizeof(steps) / sizeof(steps[0]) ? steps[i] : b + 604800; /* then weeks */
    return b;
}

static void stats(struct dash_req *r, const char *test)
{
    double from, to;
    int have_from, have_to;
    long bucket;
    if (arg_time(r, "from", &from, &have_from) != RP_OK ||
        arg_time(r, "to", &to, &have_to) != RP_OK ||
        dash_arg_long(r, "bucket", 1, 31L * 86400, 0, &bucket) != RP_OK)
        return;
    double now = (double)rp_now_unix_ms() / 1000.0;
    if (!have_to)
        to = now;
    if (!have_from)
        from = to - 86400;
    long long t0 = (long long)from - (from < (double)(long long)from),
              t1 = (long long)to + (to > (double)(long long)to);
    if (t1 <= t0) {
        dash_error_field(r, 400, "invalid_field", "from", "from must be before to");
        return;
    }
    if (!bucket)
        bucket = nice_bucket(t0, t1);
    long long start = floor_to(t0, bucket);
    long long n = (t1 - start + bucket - 1) / bucket;
    if (n > MAX_BUCKETS) {
        dash_error_field(r, 400, "invalid_field", "bucket",
                         "%lld buckets of %ld s: at most %d; choose a larger bucket or a shorter "
                         "range",
                         n, bucket, MAX_BUCKETS);
        return;
    }
    char s0[24], s1[24], sb[24];
    snprintf(s0, sizeof(s0), "%lld", start);
    snprintf(s1, sizeof(s1), "%lld", start + n * bucket);
    snprintf(sb, sizeof(sb), "%ld", bucket);
    const char *p[5] = {dash_param(r, "project"), test, s0, s1, sb};
    dash_query_reply(r, 200, test ? "test" : "project", stats_sql, 5, p);
}

static void project_stats(struct dash_req *r)
{
    stats(r, NULL);
}

static void test_stats(struct dash_req *r)
{
    const char *test = dash_param_uuid(r, "test", "test");
    if (test)
        stats(r, test);
}

const struct dash_route dash_routes_runs[] = {
    {"GET", "/api/v1/projects/{project}/runs", DASH_PROJECT_VIEWER, list_runs},
    {"GET", "/api/v1/projects/{project}/runs/{run}", DASH_PROJECT_VIEWER, get_run},
    {"GET", "/api/v1/projects/{project}/stats", DASH_PROJECT_VIEWER, project_stats},
    {"GET", "/api/v1/projects/{project}/tests/{test}/stats", DASH_PROJECT_VIEWER, test_stats},
    {NULL, NULL, 0, NULL},
};
