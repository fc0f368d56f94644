/* /api/v1/projects/{project}/schedules: when a test runs by itself (every interval_s seconds,
 * or on a cron expression in an IANA time zone), from which locations, with which environment.
 * rampart-scheduler (scheduler/claim.c) claims the rows whose next_run_at has come; this file
 * keeps its meaning: next_run_at is the next fire time to run. On create, and whenever the
 * timing (interval_s, cron, timezone) changes or a disabled schedule is enabled, it is set from
 * now: now() for an interval (a first run at once), the next cron fire after now for a cron
 * (so nothing missed while disabled is caught up), and last_error (why the scheduler paused
 * the schedule) is cleared. Cron expressions and zones are checked with rp_cron, the parser
 * the scheduler uses, and its message is the answer. Viewers read, editors write; every change
 * writes an audit-log row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"
#include "rampart/cron.h"
#include "rampart/job.h"
#include "rampart/pg.h"

#define MAX_INTERVAL_S 31622400 /* 366 days, as the schema's check */
#define MAX_LOCATIONS  32
#define MAX_RETRIES    5

#define SCHEDULE_JSON                                                                              \
    "json_build_object('id', s.id, 'test_id', s.test_id, 'test_name', t.name, "                    \
    "'environment_id', s.environment_id, 'environment_name', e.name, "                             \
    "'interval_s', s.interval_s, 'cron', s.cron, 'timezone', s.timezone, "                         \
    "'locations', to_json(s.locations), 'enabled', s.enabled, 'retries', s.retries, "              \
    "'next_run_at', s.next_run_at, 'last_error', s.last_error, 'created_at', s.created_at, "       \
    "'updated_at', s.updated_at)"

#define SCHEDULE_FROM                                                                              \
    " FROM schedules s JOIN tests t ON t.id = s.test_id "                                          \
    "LEFT JOIN environments e ON e.id = s.environment_id "

struct sched_in {
    const char *project, *id; /* id: the schedule (PATCH) */
    const char *test_id, *cron, *timezone;
    const char *env_id;
    int env_given; /* environment_id given (env_id NULL: null) */
    long interval_s, retries;
    int has_interval, has_retries;
    int enabled, has_enabled;
    struct rp_buf locations; /* PostgreSQL array literal, when given */
    int has_locations;
    int is_create;
    char new_id[37];
};

static void reply_schedule(struct dash_req *r, unsigned status, const char *project, const char *id)
{
    const char *p[2] = {id, project};
    dash_query_reply(r, status, "schedule",
                     "SELECT " SCHEDULE_JSON SCHEDULE_FROM "WHERE s.id = $1 AND s.project_id = $2",
                     2, p);
}

/* An id member: a UUID string (or null when `flags` has DASH_NULLABLE). */
static int get_id(struct dash_req *r, const bson_t *body, const char *name, int flags,
                  const char **out, int *present)
{
    const char *s = NULL;
    int rc = dash_get_str(r, body, name, flags, 1, 64, &s, present);
    if (rc != RP_OK)
        return rc;
    if (s && !rp_uuid_valid(s)) {
        dash_error_field(r, 400, "invalid_field", name, "\"%s\" must be an id (a UUID)", name);
        return RP_EINVAL;
    }
    *out = s;
    return RP_OK;
}

/* locations: 1 to 32 names, each once. */
static int get_locations(struct dash_req *r, const bson_t *body, struct sched_in *in)
{
    rp_buf_init(&in->locations, 0);
    if (dash_get_str_array(r, body, "locations", 0, MAX_LOCATIONS, dash_check_location,
                           &in->locations, &in->has_locations) != RP_OK)
        return RP_EINVAL;
    if (!in->has_locations)
        return RP_OK;
    bson_iter_t it, a, b;
    size_t n = 0;
    if (bson_iter_init_find(&it, body, "locations") && bson_iter_recurse(&it, &a)) {
        while (bson_iter_next(&a)) {
            n++;
            b = a;
            while (bson_iter_next(&b)) {
                if (strcmp(bson_iter_utf8(&a, NULL), bson_iter_utf8(&b, NULL)) == 0) {
                    dash_error_field(r, 400, "invalid_field", "locations",
                                     "\"locations\" lists \"%s\" twice", bson_iter_utf8(&a, NULL));
                    return RP_EINVAL;
                }
            }
        }
    }
    if (n == 0) {
        dash_error_field(r, 400, "invalid_field", "locations",
                         "\"locations\" needs at least one location (e.g. [\"default\"])");
        return RP_EINVAL;
    }
    return RP_OK;
}

/* Read and check the body (everything that needs no database). */
static int read_input(struct dash_req *r, const bson_t *body, struct sched_in *in)
{
    static const char *const allowed[] = {"test_id", "environment_id", "interval_s",
                                          "cron",    "timezone",       "locations",
                                          "enabled", "retries",        NULL};
    if (dash_only(r, body, allowed) != RP_OK ||
        get_id(r, body, "test_id", in->is_create ? DASH_REQUIRED : 0, &in->test_id, NULL) !=
            RP_OK ||
        get_id(r, body, "environment_id", DASH_NULLABLE, &in->env_id, &in->env_given) != RP_OK ||
        dash_get_int(r, body, "interval_s", 0, 1, MAX_INTERVAL_S, &in->interval_s,
                     &in->has_interval) != RP_OK ||
        dash_get_str(r, body, "cron", 0, 1, 1000, &in->cron, NULL) != RP_OK ||
        dash_get_str(r, body, "timezone", 0, 1, 200, &in->timezone, NULL) != RP_OK ||
        get_locations(r, body, in) != RP_OK ||
        dash_get_bool(r, body, "enabled", 0, &in->enabled, &in->has_enabled) != RP_OK ||
        dash_get_int(r, body, "retries", 0, 0, MAX_RETRIES, &in->retries, &in->has_retries) !=
            RP_OK)
        return RP_EINVAL;
    if (in->has_interval && in->cron) {
        dash_error_field(r, 400, "invalid_field", "cron",
                         "give either \"interval_s\" (seconds) or \"cron\" (an expression), not "
                         "both");
        return RP_EINVAL;
    }
    if (in->is_create && !in->has_interval && !in->cron) {
        dash_error_field(r, 400, "missing_field", "interval_s",
                         "a schedule needs \"interval_s\" (seconds between runs) or \"cron\" (an "
                         "expression such as \"*/5 * * * *\")");
        return RP_EINVAL;
    }
    struct rp_error e = {0};
    struct rp_cron *c = NULL;
    /* the zone first, alone, so that its message names the right member */
    if (in->timezone) {
        if (rp_cron_parse("* * * * *", in->timezone, &c, &e) != RP_OK) {
            dash_error_field(r, 400, "invalid_field", "timezone", "%s", e.msg);
            return RP_EINVAL;
        }
        rp_cron_free(c);
        c = NULL;
    }
    if (in->cron) {
        if (rp_cron_parse(in->cron, "UTC", &c, &e) != RP_OK) {
            dash_error_field(r, 400, "invalid_field", "cron", "%s", e.msg);
            return RP_EINVAL;
        }
        rp_cron_free(c);
    }
    return RP_OK;
}

/* Refuse an id that is not a row of `table` in this project, without saying whether it exists
 * elsewhere. */
static int check_ref(struct dash_req *r, struct rp_pg *pg, const char *table, const char *field,
                     const char *what, const char *id, const char *project)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE id = $1 AND project_id = $2", table);
    const char *p[2] = {id, project};
    PGresult *res = NULL;
    int rc = dash_tx_exec(r, pg, what, sql, 2, p, &res);
    if (rc != RP_OK)
        return rc;
    int n = PQntuples(res);
    PQclear(res);
    if (n != 1) {
        dash_error_field(r, 400, "unknown_reference", field,
                         "\"%s\": this project has no %s with this id", field, what);
        return RP_EINVAL;
    }
    return RP_OK;
}

/* The next fire of `cron` in `tz` after the transaction's now(), as Unix ms text. */
static int next_fire(struct dash_req *r, struct rp_pg *pg, const char *cron, const char *tz,
                     char out[24])
{
    struct rp_error e = {0};
    struct rp_cron *c = NULL;
    if (rp_cron_parse(cron, tz, &c, &e) != RP_OK) {
        dash_error_field(r, 400, "invalid_field", "cron", "%s", e.msg);
        return RP_EINVAL;
    }
    PGresult *res = NULL;
    int rc = dash_tx_exec(r, pg, "schedule",
                          "SELECT floor(extract(epoch FROM now()) * 1000)::bigint", 0, NULL, &res);
    if (rc != RP_OK) {
        rp_cron_free(c);
        return rc;
    }
    int64_t now_ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10), next = 0;
    PQclear(res);
    rc = rp_cron_next(c, now_ms, &next);
    rp_cron_free(c);
    if (rc != RP_OK) {
        dash_error_field(r, 400, "invalid_field", "cron",
                         "cron: the expression has no fire time in the next 5 years");
        return RP_EINVAL;
    }
    snprintf(out, 24, "%lld", (long long)next);
    return RP_OK;
}

static int save_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct sched_in *in = ud;
    PGresult *res = NULL;
    int rc;
    /* the timing before (none for a new schedule) */
    char *old_interval = NULL, *old_cron = NULL, *old_tz = NULL;
    int old_enabled = 1;
    if (!in->is_create) {
        const char *p[2] = {in->id, in->project};
        rc = dash_tx_exec(r, pg, "schedule",
                          "SELECT interval_s, cron, timezone, enabled FROM schedules "
                          "WHERE id = $1 AND project_id = $2 FOR UPDATE",
                          2, p, &res);
        if (rc != RP_OK)
            goto out;
        if (PQntuples(res) != 1) {
            dash_error(r, 404, "not_found", "schedule not found");
            rc = RP_ENOENT;
            goto out;
        }
        old_interval = PQgetisnull(res, 0, 0) ? NULL : rp_xstrdup(PQgetvalue(res, 0, 0));
        old_cron = PQgetisnull(res, 0, 1) ? NULL : rp_xstrdup(PQgetvalue(res, 0, 1));
        old_tz = rp_xstrdup(PQgetvalue(res, 0, 2));
        old_enabled = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
        PQclear(res);
        res = NULL;
    }
    if (in->test_id &&
        (rc = check_ref(r, pg, "tests", "test_id", "test", in->test_id, in->project)) != RP_OK)
        goto out;
    if (in->env_id && (rc = check_ref(r, pg, "environments", "environment_id", "environment",
                                      in->env_id, in->project)) != RP_OK)
        goto out;

    /* the timing after */
    char interval[24] = "";
    if (in->has_interval)
        snprintf(interval, sizeof(interval), "%ld", in->interval_s);
    const char *new_interval = in->has_interval ? interval : (in->cron ? NULL : old_interval);
    const char *new_cron = in->cron ? in->cron : (in->has_interval ? NULL : old_cron);
    const char *new_tz = in->timezone ? in->timezone : (old_tz ? old_tz : "UTC");
    int changed = in->is_create;
    changed |= (new_interval == NULL) != (old_interval == NULL) ||
               (new_interval && strcmp(new_interval, old_interval) != 0);
    changed |=
        (new_cron == NULL) != (old_cron == NULL) || (new_cron && strcmp(new_cron, old_cron) != 0);
    changed |= new_cron && old_tz && strcmp(new_tz, old_tz) != 0; /* zones matter to cron only */
    int enabling = !in->is_create && in->has_enabled && in->enabled && !old_enabled;
    int reset = changed || enabling;
    char next_ms[24] = "";
    if (reset && new_cron && (rc = next_fire(r, pg, new_cron, new_tz, next_ms)) != RP_OK)
        goto out;

    char retries[8];
    snprintf(retries, sizeof(retries), "%ld", in->retries);
    const char *lit = in->has_locations ? in->locations.data : NULL;
    const char *enabled = in->has_enabled ? (in->enabled ? "true" : "false") : NULL;
    const char *next = next_ms[0] ? next_ms : NULL;
    if (in->is_create) {
        const char *q[10] = {in->project,  in->test_id, in->env_id,
                             new_interval, new_cron,    new_tz,
                             lit,          enabled,     in->has_retries ? retries : NULL,
                             next};
        rc = dash_tx_exec(r, pg, "schedule",
                          "INSERT INTO schedules (project_id, test_id, environment_id, "
                          "  interval_s, cron, timezone, locations, enabled, retries, "
                          "  next_run_at) "
                          "VALUES ($1, $2, $3, $4::int, $5, $6, COALESCE($7::text[], '{default}'), "
                          "  COALESCE($8::bool, true), COALESCE($9::int, 0), "
                          "  COALESCE(timestamptz 'epoch' + $10::bigint * interval '1 "
                          "millisecond', now())) RETURNING id",
                          10, q, &res);
    } else {
        const char *p[13] = {in->id,
                             in->project,
                             in->test_id,
                             in->env_given ? "true" : "false",
                             in->env_id,
                             new_interval,
                             new_cron,
                             new_tz,
                             lit,
                             enabled,
                             in->has_retries ? retries : NULL,
                             reset ? "true" : "false",
                             next};
        rc = dash_tx_exec(
            r, pg, "schedule",
            "UPDATE schedules SET test_id = COALESCE($3::uuid, test_id), "
            "  environment_id = CASE WHEN $4::bool THEN $5::uuid ELSE environment_id END, "
            "  interval_s = $6::int, cron = $7, timezone = $8, "
            "  locations = COALESCE($9::text[], locations), enabled = COALESCE($10::bool, "
            "  enabled), retries = COALESCE($11::int, retries), "
            "  next_run_at = CASE WHEN $12::bool THEN COALESCE(timestamptz 'epoch' + "
            "    $13::bigint * interval '1 millisecond', now()) ELSE next_run_at END, "
            "  last_error = CASE WHEN $12::bool THEN NULL ELSE last_error END, updated_at = now() "
            "WHERE id = $1 AND project_id = $2 RETURNING id",
            13, p, &res);
    }
    if (rc != RP_OK)
        goto out;
    snprintf(in->new_id, sizeof(in->new_id), "%s", PQgetvalue(res, 0, 0));
    char details[160];
    snprintf(details, sizeof(details), "{\"timing_reset\":%s%s%s%s}", reset ? "true" : "false",
             in->test_id ? ",\"test_id\":\"" : "", in->test_id ? in->test_id : "",
             in->test_id ? "\"" : "");
    rc = dash_audit(r, pg, in->project, in->is_create ? "schedule.create" : "schedule.update",
                    "schedule", in->new_id, details);
out:
    PQclear(res);
    free(old_interval);
    free(old_cron);
    free(old_tz);
    return rc;
}

static void save_schedule(struct dash_req *r, struct sched_in *in)
{
    bson_t body;
    if (dash_body(r, &body) != RP_OK) {
        rp_buf_init(&in->locations, 0);
        goto out;
    }
    if (read_input(r, &body, in) == RP_OK && dash_tx(r, save_tx, in) == RP_OK)
        reply_schedule(r, in->is_create ? 201 : 200, in->project, in->new_id);
    bson_destroy(&body);
out:
    rp_buf_cleanup(&in->locations);
}

static void create_schedule(struct dash_req *r)
{
    struct sched_in in = {.project = dash_param(r, "project"), .is_create = 1};
    save_schedule(r, &in);
}

static void patch_schedule(struct dash_req *r)
{
    struct sched_in in = {.project = dash_param(r, "project")};
    if ((in.id = dash_param_uuid(r, "schedule", "schedule")))
        save_schedule(r, &in);
}

static void get_schedule(struct dash_req *r)
{
    const char *id = dash_param_uuid(r, "schedule", "schedule");
    if (id)
        reply_schedule(r, 200, dash_param(r, "project"), id);
}

static int delete_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    const char *const *p = ud;
    PGresult *res = NULL;
    int rc = dash_tx_exec(r, pg, "schedule",
                          "DELETE FROM schedules WHERE id = $1 AND project_id = $2 "
                          "RETURNING test_id",
                          2, p, &res);
    if (rc != RP_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        dash_error(r, 404, "not_found", "schedule not found");
        return RP_ENOENT;
    }
    char details[80];
    snprintf(details, sizeof(details), "{\"test_id\":\"%s\"}", PQgetvalue(res, 0, 0));
    PQclear(res);
    return dash_audit(r, pg, p[1], "schedule.delete", "schedule", p[0], details);
}

static void delete_schedule(struct dash_req *r)
{
    const char *p[2] = {dash_param_uuid(r, "schedule", "schedule"), dash_param(r, "project")};
    if (p[0] && dash_tx(r, delete_tx, (void *)p) == RP_OK)
        dash_reply_empty(r, 204);
}

/* Newest first. ?test=ID filters; ?limit=1..200 (50) and ?cursor page through
 * (created_at, id). */
static void list_schedules(struct dash_req *r)
{
    const char *test = dash_arg(r, "test"), *limit_s = dash_arg(r, "limit");
    const char *cursor = dash_arg(r, "cursor");
    if (test && !rp_uuid_valid(test)) {
        dash_error_field(r, 400, "invalid_field", "test", "\"test\" must be a test id (a UUID)");
        return;
    }
    long limit = 50;
    if (limit_s) {
        char *end = NULL;
        limit = strtol(limit_s, &end, 10);
        if (!*limit_s || *end || limit < 1 || limit > 200) {
            dash_error_field(r, 400, "invalid_field", "limit",
                             "\"limit\" must be an integer from 1 to 200");
            return;
        }
    }
    char *c_time = NULL, *c_id = NULL;
    if (cursor && dash_cursor_decode(cursor, &c_time, &c_id) != RP_OK) {
        dash_error_field(r, 400, "invalid_field", "cursor",
                         "\"cursor\" is not a next_cursor this list gave");
        return;
    }
    char lim[24];
    snprintf(lim, sizeof(lim), "%ld", limit + 1);
    const char *p[5] = {dash_param(r, "project"), test, c_time, c_id, lim};
    PGresult *res = NULL;
    if (dash_exec(r, "schedules",
                  "SELECT " SCHEDULE_JSON "::text, s.created_at::text, s.id" SCHEDULE_FROM
                  "WHERE s.project_id = $1 AND ($2::uuid IS NULL OR s.test_id = $2::uuid) "
                  "  AND ($3::timestamptz IS NULL OR (s.created_at, s.id) < ($3::timestamptz, "
                  "$4::uuid)) ORDER BY s.created_at DESC, s.id DESC LIMIT $5::int",
                  5, p, &res) != RP_OK)
        goto out;
    int rows = PQntuples(res), n = rows > limit ? (int)limit : rows;
    if (rows == 0) { /* an admin passes the role check for a project that does not exist */
        PQclear(res);
        res = NULL;
        if (dash_exec(r, "project", "SELECT 1 FROM projects WHERE id = $1", 1, p, &res) != RP_OK)
            goto out;
        if (PQntuples(res) == 0) {
            dash_error(r, 404, "not_found", "project not found");
            goto out;
        }
    }
    struct rp_buf b;
    rp_buf_init(&b, 0);
    (void)rp_buf_append(&b, "{\"items\":[", 10);
    for (int i = 0; i < n; i++) {
        if (i)
            (void)rp_buf_append(&b, ",", 1);
        (void)rp_buf_append(&b, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
    }
    (void)rp_buf_append(&b, "]", 1);
    if (rows > limit) {
        char *next = dash_cursor_encode(PQgetvalue(res, n - 1, 1), PQgetvalue(res, n - 1, 2));
        (void)rp_buf_printf(&b, ",\"next_cursor\":\"%s\"", next);
        free(next);
    }
    (void)rp_buf_append(&b, "}", 1);
    dash_reply_json(r, 200, b.data, b.len);
    rp_buf_cleanup(&b);
out:
    PQclear(res);
    free(c_time);
    free(c_id);
}

const struct dash_route dash_routes_schedules[] = {
    {"GET", "/api/v1/projects/{project}/schedules", DASH_PROJECT_VIEWER, list_schedules},
    {"POST", "/api/v1/projects/{project}/schedules", DASH_PROJECT_EDITOR, create_schedule},
    {"GET", "/api/v1/projects/{project}/schedules/{schedule}", DASH_PROJECT_VIEWER, get_schedule},
    {"PATCH", "/api/v1/projects/{project}/schedules/{schedule}", DASH_PROJECT_EDITOR,
     patch_schedule},
    {"DELETE", "/api/v1/projects/{project}/schedules/{schedule}", DASH_PROJECT_EDITOR,
     delete_schedule},
    {NULL, NULL, 0, NULL},
};
