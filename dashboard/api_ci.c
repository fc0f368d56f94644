/* The CI trigger, POST /api/v1/projects/{project}/runs (docs/ci.md): one pending run per test
 * (by id or tag) that the scheduler's sweep publishes, with optional run-time variables; with
 * ?wait=S it polls until they are final and answers their outcome as JSON or JUnit XML, so a
 * CI job can gate on it. Reading runs is api_runs.c.
 * Design note — a waiting trigger: insert (one transaction) -> [poll every POLL_MS: one SELECT
 * over the run ids, the PostgreSQL connection given back to the pool between polls] until every
 * run is final, the wait is over or the dashboard drains -> answer what is known (complete
 * false when a run is not final). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dash.h"
#include "rampart/job.h"
#include "rampart/pg.h"
#include "rampart/service.h"
#include "rampart/testlang.h"

#define POLL_MS     200
#define MAX_TRIGGER 500 /* runs one trigger may create */

struct trigger {
    const char *project, *test_id, *tag, *env, *location, *kind;
    char *overrides; /* runs.overrides: JSON object text, secrets sealed; or NULL */
    size_t n;
    char (*ids)[RP_UUID_LEN + 1];
    char (*tests)[RP_UUID_LEN + 1];
    char **names;
};

static void trigger_reset(struct trigger *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->names[i]);
    free(t->ids);
    free(t->tests);
    free(t->names);
    t->ids = NULL;
    t->tests = NULL;
    t->names = NULL;
    t->n = 0;
}

static int trigger_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct trigger *t = ud;
    PGresult *res = NULL;
    int rc;
    trigger_reset(t); /* a re-run transaction starts over */
    if (t->env) {
        const char *p[2] = {t->env, t->project};
        rc = dash_tx_exec(r, pg, "environment",
                          "SELECT 1 FROM environments WHERE id = $1 AND project_id = $2", 2, p,
                          &res);
        if (rc != RP_OK)
            return rc;
        int found = PQntuples(res);
        PQclear(res);
        if (!found) {
            dash_error_field(r, 400, "unknown_reference", "environment_id",
                             "environment_id: no such environment in this project");
            return RP_ENOENT;
        }
    }
    const char *q[3] = {t->project, t->test_id, t->tag};
    rc = dash_tx_exec(r, pg, "tests",
                      "SELECT id, name FROM tests WHERE project_id = $1 AND current_version >= 1 "
                      "AND (($2::uuid IS NOT NULL AND id = $2::uuid) OR "
                      "     ($3::text IS NOT NULL AND $3 = ANY (tags))) "
                      "ORDER BY name LIMIT 501",
                      3, q, &res);
    if (rc != RP_OK)
        return rc;
    int rows = PQntuples(res);
    if (rows == 0 || rows > MAX_TRIGGER) {
        PQclear(res);
        res = NULL;
        const char *pp[1] = {t->project};
        if (!rows && (rc = dash_tx_exec(r, pg, "project", "SELECT 1 FROM projects WHERE id = $1", 1,
                                        pp, &res)) != RP_OK)
            return rc;
        int project = rows || PQntuples(res) > 0;
        PQclear(res);
        if (!project)
            dash_error(r, 404, "not_found", "project not found");
        else if (rows)
            dash_error_field(r, 400, "invalid_field", "tag",
                             "more than %d tests have the tag \"%s\": use a narrower tag",
                             MAX_TRIGGER, t->tag);
        else if (t->tag)
            dash_error_field(r, 400, "no_tests", "tag",
                             "no test of this project with a saved version has the tag \"%s\"",
                             t->tag);
        else
            dash_error_field(r, 400, "no_tests", "test_id",
                             "test_id: no test of this project with a saved version has this id");
        return RP_ENOENT;
    }
    t->n = (size_t)rows;
    t->ids = rp_xcalloc(t->n, sizeof(*t->ids));
    t->tests = rp_xcalloc(t->n, sizeof(*t->tests));
    t->names = rp_xcalloc(t->n, sizeof(*t->names));
    struct rp_buf ids, tests;
    rp_buf_init(&ids, 0);
    rp_buf_init(&tests, 0);
    (void)rp_buf_append(&ids, "{", 1);
    (void)rp_buf_append(&tests, "{", 1);
    for (size_t i = 0; i < t->n; i++) {
        rp_uuid_v7(t->ids[i]);
        snprintf(t->tests[i], sizeof(t->tests[i]), "%s", PQgetvalue(res, (int)i, 0));
        t->names[i] = rp_xstrdup(PQgetvalue(res, (int)i, 1));
        rp_pg_array_add(&ids, t->ids[i]);
        rp_pg_array_add(&tests, t->tests[i]);
    }
    PQclear(res);
    (void)rp_buf_append(&ids, "}", 1);
    (void)rp_buf_append(&tests, "}", 1);
    /* lease_until = now(): the next sweep of any scheduler publishes them (docs/pipeline.md);
     * the version is read again here, so a save in between runs the newest */
    const char *ins[7] = {t->project, ids.data,    tests.data,  t->env,
                          t->kind,    t->location, t->overrides};
    rc = dash_tx_exec(r, pg, "runs",
                      "INSERT INTO runs (id, project_id, test_id, test_version, environment_id, "
                      "  fire_time, trigger, location, retries, overrides, lease_until) "
                      "SELECT v.id, $1, x.id, x.current_version, $4, now(), $5, $6, 0, "
                      "       $7::jsonb, now() "
                      "FROM unnest($2::uuid[], $3::uuid[]) AS v(id, test_id) "
                      "JOIN tests x ON x.id = v.test_id",
                      7, ins, NULL);
    rp_buf_cleanup(&ids);
    rp_buf_cleanup(&tests);
    if (rc != RP_OK)
        return rc;
    bson_t d = BSON_INITIALIZER;
    BSON_APPEND_INT32(&d, "runs", (int32_t)t->n);
    BSON_APPEND_UTF8(&d, t->tag ? "tag" : "test_id", t->tag ? t->tag : t->test_id);
    BSON_APPEND_UTF8(&d, "location", t->location);
    if (t->env)
        BSON_APPEND_UTF8(&d, "environment_id", t->env);
    BSON_APPEND_BOOL(&d, "overrides", t->overrides != NULL);
    char *details = bson_as_relaxed_extended_json(&d, NULL);
    bson_destroy(&d);
    rc = dash_audit(r, pg, t->project, "run.trigger", t->n == 1 ? "run" : "runs",
                    t->n == 1 ? t->ids[0] : NULL, details);
    bson_free(details);
    return rc;
}

static const char wait_poll_sql[] =
    "SELECT count(*) FILTER (WHERE status NOT IN " DASH_FINAL_STATUSES ") FROM runs "
    "WHERE id = ANY ($1::uuid[])";

static const char wait_json_sql[] =
    "SELECT json_build_object('runs', COALESCE(json_agg(json_build_object('run_id', n.id, "
    "  'test_id', n.test_id, 'test_name', t.name, 'location', n.location, 'status', n.status, "
    "  'duration_ms', n.duration_ms, 'error', n.error, 'finished_at', n.finished_at) "
    "  ORDER BY array_position($1::uuid[], n.id)), '[]'), "
    "  'passed', COALESCE(bool_and(n.status = 'passed'), false), "
    "  'complete', COALESCE(bool_and(n.status IN " DASH_FINAL_STATUSES "), false)) "
    "FROM runs n LEFT JOIN tests t ON t.id = n.test_id WHERE n.id = ANY ($1::uuid[])";

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Poll until every run is final, `wait_s` passed or the dashboard drains. The connection goes
 * back to the pool between polls, so a long wait holds no slot. A failed poll (failover) is
 * simply tried again at the next one. */
static void wait_runs(struct dash_req *r, const char *ids, long wait_s)
{
    int64_t deadline = mono_ms() + wait_s * 1000;
    const char *p[1] = {ids};
    for (;;) {
        struct rp_pg *pg = dash_pg(r);
        if (!pg)
            return;
        PGresult *res = NULL;
        struct rp_error e = {0};
        int left = 1;
        if (rp_pg_exec_idempotent(pg, wait_poll_sql, 1, p, &res, &e) == RP_OK) {
            left = atoi(PQgetvalue(res, 0, 0));
            PQclear(res);
        }
        dash_db_release(r);
        int64_t now = mono_ms();
        if (!left || now >= deadline || rp_service_draining(r->app->svc))
            return;
        int64_t nap = deadline - now < POLL_MS ? deadline - now : POLL_MS;
        struct timespec ts = {0, (long)nap * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* The JUnit answer: each run's result document in trigger order; a run not finished (or
 * whose document is missing) is listed as an error saying so. */
static void reply_junit(struct dash_req *r, const struct trigger *t, const char *ids)
{
    const char *p[1] = {ids};
    PGresult *res = NULL;
    if (dash_exec(r, "runs",
                  "SELECT n.id::text, n.status, n.status IN " DASH_FINAL_STATUSES ", "
                  "       n.status = 'passed' FROM runs n WHERE n.id = ANY ($1::uuid[])",
                  1, p, &res) != RP_OK)
        return;
    bson_t **docs = rp_xcalloc(t->n, sizeof(*docs));
    mongoc_collection_t *coll = NULL;
    char *xml = NULL;
    size_t xml_len = 0;
    int complete = 1, passed = 1;
    for (size_t i = 0; i < t->n; i++) {
        const char *status = "missing";
        int final = 0;
        for (int k = 0; k < PQntuples(res); k++)
            if (strcmp(PQgetvalue(res, k, 0), t->ids[i]) == 0) {
                status = PQgetvalue(res, k, 1);
                final = strcmp(PQgetvalue(res, k, 2), "t") == 0;
                passed &= strcmp(PQgetvalue(res, k, 3), "t") == 0;
            }
        complete &= final;
        if (final) {
            if (!coll && !(coll = dash_results(r)))
                goto out;
            if (dash_find_result(r, coll, t->ids[i], &docs[i]) != RP_OK)
                goto out;
        }
        if (!docs[i]) {
            char *why = final ? rp_xasprintf("run %s is %s but its result document is missing",
                                             t->ids[i], status)
                              : rp_xasprintf("run %s did not finish within the wait (status: %s)",
                                             t->ids[i], status);
            docs[i] =
                BCON_NEW("_id", BCON_UTF8(t->ids[i]), "test", BCON_UTF8(t->names[i]), "status",
                         BCON_UTF8("error"), "error", BCON_UTF8(why), "steps", "[", "]");
            passed = 0;
            free(why);
        }
    }
    FILE *f = open_memstream(&xml, &xml_len);
    struct rp_error e = {0};
    if (!f || rp_junit_write(f, docs, t->n, &e) != RP_OK || fclose(f) != 0) {
        dash_error(r, 500, "internal", "the JUnit report could not be written");
        goto out;
    }
    dash_reply_raw(r, 200, "application/xml", xml, xml_len);
    dash_add_header(r, "X-Rampart-Complete", complete ? "true" : "false");
    dash_add_header(r, "X-Rampart-Passed", passed && complete ? "true" : "false");
out:
    free(xml);
    for (size_t i = 0; i < t->n; i++)
        bson_destroy(docs[i]);
    free(docs);
    if (coll)
        mongoc_collection_destroy(coll);
    PQclear(res);
}

static void reply_created(struct dash_req *r, const struct trigger *t)
{
    bson_t doc = BSON_INITIALIZER, arr;
    bson_append_array_begin(&doc, "runs", -1, &arr);
    for (size_t i = 0; i < t->n; i++) {
        char key[16];
        const char *k;
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof(key));
        bson_t item;
        bson_append_document_begin(&arr, k, -1, &item);
        BSON_APPEND_UTF8(&item, "run_id", t->ids[i]);
        BSON_APPEND_UTF8(&item, "test_id", t->tests[i]);
        BSON_APPEND_UTF8(&item, "test_name", t->names[i]);
        bson_append_document_end(&arr, &item);
    }
    bson_append_array_end(&doc, &arr);
    dash_reply_bson(r, 202, &doc);
    bson_destroy(&doc);
}

static void trigger_runs(struct dash_req *r)
{
    static const char *const formats[] = {"json", "junit", NULL};
    const char *format;
    long wait_s;
    long max_s = r->app->cfg->run_wait_max_ms / 1000;
    if (dash_arg_long(r, "wait", 1, max_s, 0, &wait_s) != RP_OK ||
        dash_arg_enum(r, "format", formats, &format) != RP_OK)
        return;
    if (format && strcmp(format, "junit") == 0 && !wait_s) {
        dash_error_field(r, 400, "invalid_field", "format",
                         "format=junit needs ?wait=SECONDS (a report of finished runs)");
        return;
    }
    const char *accept = dash_header_in(r, "Accept");
    int junit =
        format ? strcmp(format, "junit") == 0 : accept && strstr(accept, "application/xml") != NULL;
    bson_t body;
    if (dash_body(r, &body) != RP_OK)
        return;
    static const char *const allowed[] = {"test_id",  "tag",       "environment_id",
                                          "location", "variables", NULL};
    struct trigger t = {.project = dash_param(r, "project"),
                        .kind = r->who.kind == DASH_API_KEY ? "api" : "manual"};
    int has_test = 0, has_tag = 0;
    if (dash_only(r, &body, allowed) != RP_OK ||
        dash_get_str(r, &body, "test_id", 0, 36, 36, &t.test_id, &has_test) != RP_OK ||
        dash_get_str(r, &body, "tag", 0, 1, 64, &t.tag, &has_tag) != RP_OK ||
        dash_get_str(r, &body, "environment_id", DASH_NULLABLE, 36, 36, &t.env, NULL) != RP_OK ||
        dash_get_str(r, &body, "location", 0, 1, 32, &t.location, NULL) != RP_OK)
        goto out;
    if (has_test == has_tag) {
        if (has_test)
            dash_error_field(r, 400, "invalid_field", "tag",
                             "give either \"test_id\" or \"tag\", not both");
        else
            dash_error_field(r, 400, "missing_field", "test_id",
                             "give \"test_id\" (one test) or \"tag\" (every test with it)");
        goto out;
    }
    const char *why = NULL, *field = NULL;
    if (t.test_id && (why = dash_check_uuid(t.test_id)))
        field = "test_id";
    else if (t.tag && (why = dash_check_tag(t.tag)))
        field = "tag";
    else if (t.env && (why = dash_check_uuid(t.env)))
        field = "environment_id";
    else if (t.location && (why = dash_check_location(t.location)))
        field = "location";
    if (why) {
        dash_error_field(r, 400, "invalid_field", field, "%s: %s", field, why);
        goto out;
    }
    if (!t.location)
        t.location = "default";
    if (dash_read_overrides(r, &body, &t.overrides) != RP_OK || dash_tx(r, trigger_tx, &t) != RP_OK)
        goto out;
    if (!wait_s) {
        reply_created(r, &t);
        goto out;
    }
    struct rp_buf ids;
    rp_buf_init(&ids, 0);
    (void)rp_buf_append(&ids, "{", 1);
    for (size_t i = 0; i < t.n; i++)
        rp_pg_array_add(&ids, t.ids[i]);
    (void)rp_buf_append(&ids, "}", 1);
    dash_db_release(r); /* committed: no slot is held while waiting */
    wait_runs(r, ids.data, wait_s);
    if (!r->replied) {
        const char *p[1] = {ids.data};
        if (junit)
            reply_junit(r, &t, ids.data);
        else
            dash_query_reply(r, 200, "runs", wait_json_sql, 1, p);
    }
    rp_buf_cleanup(&ids);
out:
    bson_free(t.overrides);
    trigger_reset(&t);
    bson_destroy(&body);
}

const struct dash_route dash_routes_ci[] = {
    {"POST", "/api/v1/projects/{project}/runs", DASH_PROJECT_EDITOR, trigger_runs},
    {NULL, NULL, 0, NULL},
};
