/* /api/v1/projects/{project}/tests: a project's tests (a name, tags and a history of
 * definitions: every save is a new row of test_versions, tests.current_version points at the
 * latest), the test list with each test's recent results, validating a definition, and "run
 * now". A definition is checked with the worker's own parser (rp_test_parse) before anything is
 * stored; a refusal says where the problem is in a form the editor can use: the parser's
 * message, the dotted path and JSON pointer of the spot and, for a definition sent as text, its
 * line and column (found by re-reading the text: defn_locate.c). A run-now inserts a `pending` run
 * with lease_until = now(): the scheduler's sweep publishes it within a second (dispatch.c). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dash.h"
#include "rampart/job.h"
#include "rampart/log.h"
#include "rampart/pg.h"
#include "rampart/testlang.h"

#define MAX_TAGS      20
#define DEFAULT_LIMIT 50
#define MAX_LIMIT     200

/* ==== reading a definition =============================================================== */

struct defn {
    char *text; /* as stored: the user's text, or the object rendered as JSON */
    size_t len;
    int as_text; /* sent as a string: lines and columns mean something to its author */
    struct rp_test *t;
};

static void defn_cleanup(struct defn *d)
{
    free(d->text);
    rp_test_free(d->t);
    memset(d, 0, sizeof(*d));
}

/* Member "definition": an object (stored as its JSON text, as sent) or a string holding the JSON
 * text (stored as given, less a leading BOM), so the editor gets the author's layout back.
 * Checked with the worker's parser. RP_OK with `d` filled (defn_cleanup it), or RP_EINVAL
 * answered. */
static int read_definition(struct dash_req *r, const bson_t *body, struct defn *d)
{
    bson_iter_t it;
    uint32_t n = 0;
    memset(d, 0, sizeof(*d));
    if (!bson_iter_init_find(&it, body, "definition")) {
        dash_error_field(r, 400, "missing_field", "definition", "\"definition\" is required");
        return RP_EINVAL;
    }
    if (BSON_ITER_HOLDS_UTF8(&it)) {
        const char *s = bson_iter_utf8(&it, &n);
        if (memchr(s, '\0', n)) {
            dash_error_field(r, 400, "invalid_field", "definition",
                             "\"definition\" must not contain a NUL character");
            return RP_EINVAL;
        }
        if (n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
            s += 3;
            n -= 3;
        }
        d->text = rp_xstrndup(s, n);
        d->len = n;
        d->as_text = 1;
    } else if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
        /* its text as sent (found in the body, which libbson accepted), not libbson's
         * rendering of it, which writes 0.1 as 0.10000000000000000555 */
        size_t off, len;
        if (dash_defn_body_text(r->body.data, r->body.len, &off, &len)) {
            d->len = len;
            d->text = rp_xstrndup(r->body.data + off, len);
        }
        if (!d->text) {
            dash_error_field(r, 400, "invalid_field", "definition", "\"definition\" is malformed");
            return RP_EINVAL;
        }
    } else {
        dash_error_field(r, 400, "invalid_field", "definition",
                         "\"definition\" must be a test definition: a JSON object, or a string "
                         "holding its JSON text (docs/tests.md)");
        return RP_EINVAL;
    }
    struct rp_error e = {0};
    if (rp_test_parse(d->text, d->len, &d->t, &e) != RP_OK) {
        dash_defn_error(r, d->text, d->len, d->as_text,
                        e.msg[0] ? e.msg : "invalid test definition", SIZE_MAX);
        defn_cleanup(d);
        return RP_EINVAL;
    }
    size_t wlen = 0, at = dash_defn_non_json_word(d->text, d->len, &wlen);
    if (at != SIZE_MAX) {
        char *msg = rp_xasprintf("`%.*s` is not JSON (definitions are stored as standard JSON): "
                                 "write a number, or a string such as \"%.*s\"",
                                 (int)(wlen > 40 ? 40 : wlen), d->text + at,
                                 (int)(wlen > 40 ? 40 : wlen), d->text + at);
        dash_defn_error(r, d->text, d->len, d->as_text, msg, at);
        free(msg);
        defn_cleanup(d);
        return RP_EINVAL;
    }
    return RP_OK;
}

/* "tags": the request's; else the definition's when it has some (`t` may be NULL). `*have` is
 * 0 when neither gives tags (keep the current ones). */
static int read_tags(struct dash_req *r, const bson_t *body, const struct rp_test *t,
                     struct rp_buf *lit, int *have)
{
    if (dash_get_str_array(r, body, "tags", 0, MAX_TAGS, dash_check_tag, lit, have) != RP_OK)
        return RP_EINVAL;
    if (*have || !t || t->n_tags == 0)
        return RP_OK;
    (void)rp_buf_append(lit, "{", 1);
    for (size_t i = 0; i < t->n_tags; i++) {
        const char *why = dash_check_tag(t->tags[i]);
        if (why) {
            dash_error_field(r, 400, "invalid_field", "tags",
                             "the definition's tag \"%.64s\": %s (or give \"tags\" in the request)",
                             t->tags[i], why);
            return RP_EINVAL;
        }
        rp_pg_array_add(lit, t->tags[i]);
    }
    (void)rp_buf_append(lit, "}", 1);
    *have = 1;
    return RP_OK;
}

static int read_limit(struct dash_req *r, long *out)
{
    const char *s = dash_arg(r, "limit");
    char *end = NULL;
    long v = s && isdigit((unsigned char)s[0]) ? strtol(s, &end, 10) : -1;
    *out = DEFAULT_LIMIT;
    if (!s)
        return RP_OK;
    if (v < 1 || v > MAX_LIMIT || *end) {
        dash_error_field(r, 400, "invalid_field", "limit", "limit must be an integer from 1 to %d",
                         MAX_LIMIT);
        return RP_EINVAL;
    }
    *out = v;
    return RP_OK;
}

/* ==== reads ================================================================================ */

#define FINISHED "('passed', 'failed', 'error')"

/* One test with its current definition (as text, and as JSON). */
static void reply_test(struct dash_req *r, unsigned status, const char *project, const char *test)
{
    const char *p[2] = {test, project};
    dash_query_reply(r, status, "test",
                     "SELECT json_build_object('id', t.id, 'project_id', t.project_id, 'name', "
                     "t.name, 'tags', t.tags, 'current_version', t.current_version, 'version', "
                     "v.version, 'version_created_at', v.created_at, 'created_at', t.created_at, "
                     "'updated_at', t.updated_at, 'definition_text', v.definition, 'definition', "
                     "v.definition::json) "
                     "FROM tests t JOIN test_versions v ON v.test_id = t.id AND v.version = "
                     "t.current_version WHERE t.id = $1 AND t.project_id = $2",
                     2, p);
}

/* The test list: one statement, driven by the (project_id, name) index in name order (the
 * cursor is the last name, hex: names are unique in a project), each test's runs read through
 * runs_test_recent (test_id, fire_time DESC) INCLUDE (status), migration 0005, in LATERAL
 * subqueries: the latest run, the last 20 finished ones (whose newest gives ?status), and the last
 * 24 hours for the uptime. */
static const char list_sql[] =
    "WITH page AS ("
    " SELECT t.name, json_build_object('id', t.id, 'name', t.name, 'tags', t.tags, "
    "  'current_version', t.current_version, 'created_at', t.created_at, 'updated_at', "
    "  t.updated_at, 'last_run', CASE WHEN lr.id IS NOT NULL THEN json_build_object('id', lr.id, "
    "  'status', lr.status, 'fire_time', lr.fire_time, 'finished_at', lr.finished_at, "
    "  'duration_ms', lr.duration_ms) END, 'uptime_percent', up.pct, "
    "  'recent', COALESCE(rc.items, '[]'::json), "
    "  'schedules', (SELECT count(*) FROM schedules s WHERE s.test_id = t.id)) AS j "
    " FROM tests t "
    " LEFT JOIN LATERAL (SELECT r.status FROM runs r WHERE r.test_id = t.id "
    "   AND r.status IN " FINISHED " ORDER BY r.fire_time DESC LIMIT 1) ls ON true "
    " LEFT JOIN LATERAL (SELECT r.id, r.status, r.fire_time, r.finished_at, r.duration_ms "
    "   FROM runs r WHERE r.test_id = t.id ORDER BY r.fire_time DESC LIMIT 1) lr ON true "
    " CROSS JOIN LATERAL (SELECT json_agg(json_build_object('id', f.id, 'status', f.status, "
    "   'fire_time', f.fire_time) ORDER BY f.fire_time, f.id) AS items "
    "   FROM (SELECT r.id, r.status, r.fire_time FROM runs r WHERE r.test_id = t.id "
    "     AND r.status IN " FINISHED " ORDER BY r.fire_time DESC LIMIT 20) f) rc "
    " CROSS JOIN LATERAL (SELECT round(100.0 * count(*) FILTER (WHERE r.status = 'passed') "
    "   / NULLIF(count(*), 0), 2) AS pct FROM runs r WHERE r.test_id = t.id "
    "   AND r.fire_time > now() - interval '24 hours' AND r.status IN " FINISHED ") up "
    " WHERE t.project_id = $1 AND ($2::text IS NULL OR $2 = ANY (t.tags)) "
    "  AND ($3::text IS NULL OR strpos(lower(t.name), lower($3)) > 0) "
    "  AND ($4::text IS NULL OR ($4 = 'passing' AND ls.status = 'passed') "
    "       OR ($4 = 'failing' AND ls.status IN ('failed', 'error'))) "
    "  AND ($5::text IS NULL OR t.name > $5) "
    " ORDER BY t.name LIMIT $6::int + 1) "
    "SELECT json_build_object('items', COALESCE((SELECT json_agg(x.j ORDER BY x.name) FROM "
    "  (SELECT * FROM page ORDER BY name LIMIT $6::int) x), '[]'::json), 'next_cursor', "
    "  CASE WHEN (SELECT count(*) FROM page) > $6::int THEN (SELECT encode(convert_to(y.name, "
    "  'UTF8'), 'hex') FROM (SELECT name FROM page ORDER BY name LIMIT 1 OFFSET $6::int - 1) y) "
    "  END) FROM projects WHERE id = $1";

/* The list cursor: a test name, hex-encoded. NULL when malformed. */
static char *decode_name_cursor(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n % 2 || n > 1600)
        return NULL;
    char *out = rp_xmalloc(n / 2 + 1);
    size_t len = 0;
    if (sodium_hex2bin((unsigned char *)out, n / 2, s, n, NULL, &len, NULL) != 0 || len != n / 2 ||
        memchr(out, '\0', len)) {
        free(out);
        return NULL;
    }
    out[n / 2] = '\0';
    if (!bson_utf8_validate(out, n / 2, false)) {
        free(out);
        return NULL;
    }
    return out;
}

/* UTF-8 of at most `max` characters. */
static int text_ok(const char *s, size_t max)
{
    size_t chars = 0;
    if (!bson_utf8_validate(s, strlen(s), false))
        return 0;
    for (const char *p = s; *p && chars <= max; p = bson_utf8_next_char(p))
        chars++;
    return chars <= max;
}

static void list_tests(struct dash_req *r)
{
    const char *tag = dash_arg(r, "tag"), *q = dash_arg(r, "q"), *status = dash_arg(r, "status");
    const char *cursor = dash_arg(r, "cursor");
    char *after = NULL, limit_s[16];
    long limit;
    if (read_limit(r, &limit) != RP_OK)
        return;
    if (tag && dash_check_tag(tag)) {
        dash_error_field(r, 400, "invalid_field", "tag", "tag: %s", dash_check_tag(tag));
        return;
    }
    if (q && !text_ok(q, 200)) {
        dash_error_field(r, 400, "invalid_field", "q", "q must be text of at most 200 characters");
        return;
    }
    if (status && strcmp(status, "passing") != 0 && strcmp(status, "failing") != 0) {
        dash_error_field(r, 400, "invalid_field", "status", "status must be passing or failing");
        return;
    }
    if (cursor && !(after = decode_name_cursor(cursor))) {
        dash_error_field(r, 400, "invalid_field", "cursor",
                         "cursor must be the next_cursor of a previous page");
        return;
    }
    snprintf(limit_s, sizeof(limit_s), "%ld", limit);
    const char *p[6] = {dash_param(r, "project"), tag, q && *q ? q : NULL, status, after, limit_s};
    dash_query_reply(r, 200, "project", list_sql, 6, p);
    free(after);
}

static void get_test(struct dash_req *r)
{
    const char *test = dash_param_uuid(r, "test", "test");
    if (test)
        reply_test(r, 200, dash_param(r, "project"), test);
}

static void list_versions(struct dash_req *r)
{
    const char *test = dash_param_uuid(r, "test", "test"), *cursor = dash_arg(r, "cursor");
    char limit_s[16];
    long limit;
    if (!test || read_limit(r, &limit) != RP_OK)
        return;
    if (cursor &&
        (strspn(cursor, "0123456789") != strlen(cursor) || !*cursor || strlen(cursor) > 9)) {
        dash_error_field(r, 400, "invalid_field", "cursor",
                         "cursor must be the next_cursor of a previous page");
        return;
    }
    snprintf(limit_s, sizeof(limit_s), "%ld", limit);
    const char *p[4] = {test, dash_param(r, "project"), cursor, limit_s};
    dash_query_reply(
        r, 200, "test",
        "WITH t AS (SELECT id, current_version FROM tests WHERE id = $1 AND project_id = $2), "
        "page AS (SELECT v.version, v.created_at, octet_length(v.definition) AS size "
        "  FROM test_versions v JOIN t ON v.test_id = t.id "
        "  WHERE $3::int IS NULL OR v.version < $3::int ORDER BY v.version DESC LIMIT $4::int + 1) "
        "SELECT json_build_object('current_version', t.current_version, 'items', "
        "  COALESCE((SELECT json_agg(json_build_object('version', x.version, 'created_at', "
        "  x.created_at, 'size', x.size) ORDER BY x.version DESC) FROM (SELECT * FROM page "
        "  ORDER BY version DESC LIMIT $4::int) x), '[]'::json), 'next_cursor', "
        "  CASE WHEN (SELECT count(*) FROM page) > $4::int THEN (SELECT min(y.version)::text "
        "  FROM (SELECT version FROM page ORDER BY version DESC LIMIT $4::int) y) END) FROM t",
        4, p);
}

static void get_version(struct dash_req *r)
{
    const char *test = dash_param_uuid(r, "test", "test"), *v = dash_param(r, "version");
    if (!test)
        return;
    if (!v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 9 || atol(v) < 1) {
        dash_error(r, 404, "not_found", "version not found (versions are numbered from 1)");
        return;
    }
    const char *p[3] = {test, dash_param(r, "project"), v};
    dash_query_reply(r, 200, "version",
                     "SELECT json_build_object('test_id', v.test_id, 'version', v.version, "
                     "'created_at', v.created_at, 'size', octet_length(v.definition), "
                     "'definition_text', v.definition, 'definition', v.definition::json) "
                     "FROM test_versions v JOIN tests t ON t.id = v.test_id "
                     "WHERE v.test_id = $1 AND t.project_id = $2 AND v.version = $3::int",
                     3, p);
}

static void validate_test(struct dash_req *r)
{
    bson_t body;
    struct defn d;
    static const char *const allowed[] = {"definition", NULL};
    if (r->who.is_admin) { /* owner of any id: say so when the project does not exist */
        const char *p[1] = {dash_param(r, "project")};
        PGresult *res = NULL;
        if (dash_exec(r, "project", "SELECT 1 FROM projects WHERE id = $1", 1, p, &res) != RP_OK)
            return;
        int n = PQntuples(res);
        PQclear(res);
        if (n != 1) {
            dash_error(r, 404, "not_found", "project not found");
            return;
        }
    }
    if (dash_body(r, &body) != RP_OK)
        return;
    if (dash_only(r, &body, allowed) == RP_OK && read_definition(r, &body, &d) == RP_OK) {
        struct rp_buf b;
        rp_buf_init(&b, 0);
        (void)rp_buf_printf(&b, "{\"valid\":true,\"name\":\"");
        (void)rp_json_escape(&b, d.t->name);
        (void)rp_buf_printf(&b, "\",\"steps\":%zu}\n", d.t->n_steps);
        dash_reply_json(r, 200, b.data, b.len);
        rp_buf_cleanup(&b);
        defn_cleanup(&d);
    }
    bson_destroy(&body);
}

/* ==== writes =============================================================================== */

struct test_in {
    const char *project, *test;
    const char *name;     /* NULL: keep */
    const char *tags;     /* PostgreSQL array literal; NULL: keep */
    const struct defn *d; /* NULL: no new version (PATCH) */
    char id[37];
};

static int create_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct test_in *in = ud;
    PGresult *res = NULL;
    const char *p[4] = {in->project, in->name, in->tags, in->d->text};
    int rc = dash_tx_exec(r, pg, "test",
                          "WITH t AS (INSERT INTO tests (project_id, name, tags, current_version) "
                          "  SELECT p.id, $2, COALESCE($3::text[], '{}'), 1 FROM projects p "
                          "  WHERE p.id = $1 RETURNING id), "
                          "v AS (INSERT INTO test_versions (test_id, version, definition) "
                          "  SELECT id, 1, $4 FROM t) "
                          "SELECT id FROM t",
                          4, p, &res);
    if (rc != RP_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        dash_error(r, 404, "not_found", "project not found");
        return RP_ENOENT;
    }
    snprintf(in->id, sizeof(in->id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return dash_audit(r, pg, in->project, "test.create", "test", in->id, "{\"version\":1}");
}

static void create_test(struct dash_req *r)
{
    bson_t body;
    struct defn d = {0};
    struct rp_buf tags;
    int have_tags = 0;
    static const char *const allowed[] = {"name", "tags", "definition", NULL};
    struct test_in in = {.project = dash_param(r, "project"), .d = &d};
    if (dash_body(r, &body) != RP_OK)
        return;
    rp_buf_init(&tags, 0);
    if (dash_only(r, &body, allowed) != RP_OK ||
        dash_get_str(r, &body, "name", 0, 1, 200, &in.name, NULL) != RP_OK ||
        read_definition(r, &body, &d) != RP_OK ||
        read_tags(r, &body, d.t, &tags, &have_tags) != RP_OK)
        goto out;
    in.name = in.name ? in.name : d.t->name;
    in.tags = have_tags ? tags.data : NULL;
    if (dash_tx(r, create_tx, &in) == RP_OK)
        reply_test(r, 201, in.project, in.id);
out:
    defn_cleanup(&d);
    rp_buf_cleanup(&tags);
    bson_destroy(&body);
}

/* A save (PUT: a new version) or a change of name/tags (PATCH), the tests row locked. */
static int update_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct test_in *in = ud;
    PGresult *res = NULL;
    const char *p[2] = {in->test, in->project};
    int rc = dash_tx_exec(r, pg, "test",
                          "SELECT current_version + 1 FROM tests WHERE id = $1 AND project_id = $2 "
                          "FOR UPDATE",
                          2, p, &res);
    if (rc != RP_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        dash_error(r, 404, "not_found", "test not found");
        return RP_ENOENT;
    }
    char version[16], details[48];
    snprintf(version, sizeof(version), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (in->d) {
        const char *v[3] = {in->test, version, in->d->text};
        rc = dash_tx_exec(r, pg, "test version",
                          "INSERT INTO test_versions (test_id, version, definition) "
                          "VALUES ($1, $2::int, $3)",
                          3, v, NULL);
        if (rc != RP_OK)
            return rc;
    }
    const char *u[4] = {in->test, in->d ? version : NULL, in->name, in->tags};
    rc = dash_tx_exec(r, pg, "test",
                      "UPDATE tests SET current_version = COALESCE($2::int, current_version), "
                      "name = COALESCE($3, name), tags = COALESCE($4::text[], tags), "
                      "updated_at = now() WHERE id = $1",
                      4, u, NULL);
    if (rc != RP_OK)
        return rc;
    snprintf(details, sizeof(details), "{\"version\":%s}", version);
    return dash_audit(r, pg, in->project, in->d ? "test.save" : "test.update", "test", in->test,
                      in->d ? details : NULL);
}

static void save_test(struct dash_req *r)
{
    bson_t body;
    struct defn d = {0};
    struct rp_buf tags;
    int have_tags = 0;
    static const char *const allowed[] = {"definition", "name", "tags", NULL};
    struct test_in in = {.project = dash_param(r, "project"), .d = &d};
    if (!(in.test = dash_param_uuid(r, "test", "test")) || dash_body(r, &body) != RP_OK)
        return;
    rp_buf_init(&tags, 0);
    if (dash_only(r, &body, allowed) != RP_OK ||
        dash_get_str(r, &body, "name", 0, 1, 200, &in.name, NULL) != RP_OK ||
        read_definition(r, &body, &d) != RP_OK ||
        read_tags(r, &body, d.t, &tags, &have_tags) != RP_OK)
        goto out;
    in.tags = have_tags ? tags.data : NULL;
    if (dash_tx(r, update_tx, &in) == RP_OK)
        reply_test(r, 200, in.project, in.test);
out:
    defn_cleanup(&d);
    rp_buf_cleanup(&tags);
    bson_destroy(&body);
}

static void patch_test(struct dash_req *r)
{
    bson_t body;
    struct rp_buf tags;
    int have_tags = 0;
    static const char *const allowed[] = {"name", "tags", NULL};
    struct test_in in = {.project = dash_param(r, "project")};
    if (!(in.test = dash_param_uuid(r, "test", "test")) || dash_body(r, &body) != RP_OK)
        return;
    rp_buf_init(&tags, 0);
    if (dash_only(r, &body, allowed) != RP_OK ||
        dash_get_str(r, &body, "name", 0, 1, 200, &in.name, NULL) != RP_OK ||
        read_tags(r, &body, NULL, &tags, &have_tags) != RP_OK)
        goto out;
    in.tags = have_tags ? tags.data : NULL;
    if ((!in.name && !in.tags) || dash_tx(r, update_tx, &in) == RP_OK)
        reply_test(r, 200, in.project, in.test); /* nothing to change: the test as it is */
out:
    rp_buf_cleanup(&tags);
    bson_destroy(&body);
}

static int delete_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct test_in *in = ud;
    PGresult *res = NULL;
    const char *p[2] = {in->test, in->project};
    int rc = dash_audit(r, pg, in->project, "test.delete", "test", in->test, NULL);
    if (rc != RP_OK)
        return rc;
    rc = dash_tx_exec(r, pg, "test",
                      "DELETE FROM tests WHERE id = $1 AND project_id = $2 RETURNING id", 2, p,
                      &res);
    if (rc != RP_OK)
        return rc;
    int n = PQntuples(res);
    PQclear(res);
    if (n != 1) {
        dash_error(r, 404, "not_found", "test not found");
        return RP_ENOENT; /* the audit row rolls back with it */
    }
    /* rules and maintenance windows that named it stop naming it (no dangling ids) */
    rc = dash_tx_exec(r, pg, "alert rules",
                      "UPDATE alert_rules SET test_ids = array_remove(test_ids, $1::uuid), "
                      "updated_at = now() WHERE project_id = $2 AND $1::uuid = ANY(test_ids)",
                      2, p, NULL);
    if (rc != RP_OK)
        return rc;
    return dash_tx_exec(r, pg, "maintenance windows",
                        "UPDATE maintenance_windows SET test_ids = array_remove(test_ids, "
                        "$1::uuid), updated_at = now() WHERE project_id = $2 AND $1::uuid = "
                        "ANY(test_ids)",
                        2, p, NULL);
}

static void delete_test(struct dash_req *r)
{
    struct test_in in = {.project = dash_param(r, "project")};
    if ((in.test = dash_param_uuid(r, "test", "test")) && dash_tx(r, delete_tx, &in) == RP_OK)
        dash_reply_empty(r, 204);
}

/* ==== run now ============================================================================== */

struct run_in {
    const char *project, *test, *env, *location;
    char *overrides; /* JSON object text or NULL */
    char run_id[RP_UUID_LEN + 1];
    char *reply; /* the answer, made by the INSERT (the run may be queued a moment later) */
};

static int run_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct run_in *in = ud;
    PGresult *res = NULL;
    const char *p[2] = {in->test, in->project};
    free(in->reply);
    in->reply = NULL;
    int rc = dash_tx_exec(r, pg, "test",
                          "SELECT current_version FROM tests WHERE id = $1 AND project_id = $2 "
                          "FOR KEY SHARE",
                          2, p, &res);
    if (rc != RP_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        dash_error(r, 404, "not_found", "test not found");
        return RP_ENOENT;
    }
    char version[16];
    snprintf(version, sizeof(version), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (in->env) {
        const char *e[2] = {in->env, in->project};
        rc = dash_tx_exec(r, pg, "environment",
                          "SELECT 1 FROM environments WHERE id = $1 AND project_id = $2", 2, e,
                          &res);
        if (rc != RP_OK)
            return rc;
        int n = PQntuples(res);
        PQclear(res);
        if (n != 1) {
            dash_error_field(r, 400, "unknown_reference", "environment_id",
                             "environment_id: the project has no such environment");
            return RP_EINVAL;
        }
    }
    const char *ip[8] = {in->run_id,   in->project,  in->test,
                         version,      in->env,      r->who.kind == DASH_API_KEY ? "api" : "manual",
                         in->location, in->overrides};
    rc = dash_tx_exec(r, pg, "run",
                      "INSERT INTO runs (id, project_id, test_id, test_version, environment_id, "
                      "fire_time, trigger, location, status, lease_until, overrides) "
                      "VALUES ($1, $2, $3, $4::int, $5, now(), $6, $7, 'pending', now(), "
                      "$8::jsonb) RETURNING json_build_object('run_id', id, 'status', status, "
                      "'project_id', project_id, 'test_id', test_id, 'test_version', "
                      "test_version, 'environment_id', environment_id, 'location', location, "
                      "'trigger', trigger, 'fire_time', fire_time)",
                      8, ip, &res);
    if (rc != RP_OK)
        return rc;
    in->reply = rp_xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    char *details = rp_xasprintf("{\"test_id\":\"%s\",\"test_version\":%s}", in->test, version);
    rc = dash_audit(r, pg, in->project, "test.run", "run", in->run_id, details);
    free(details);
    return rc;
}

static void run_test(struct dash_req *r)
{
    bson_t body = BSON_INITIALIZER;
    static const char *const allowed[] = {"environment_id", "location", "variables", NULL};
    struct run_in in = {.project = dash_param(r, "project"), .location = "default"};
    const char *location = NULL;
    if (!(in.test = dash_param_uuid(r, "test", "test")))
        return;
    if (r->body.len > 0) { /* every member is optional: no body at all is fine */
        bson_destroy(&body);
        if (dash_body(r, &body) != RP_OK)
            return;
    }
    if (dash_only(r, &body, allowed) != RP_OK ||
        dash_get_str(r, &body, "environment_id", DASH_NULLABLE, 36, 36, &in.env, NULL) != RP_OK ||
        dash_get_str(r, &body, "location", 0, 1, 32, &location, NULL) != RP_OK ||
        dash_read_overrides(r, &body, &in.overrides) != RP_OK)
        goto out;
    if (in.env && !rp_uuid_valid(in.env)) {
        dash_error_field(r, 400, "invalid_field", "environment_id",
                         "environment_id must be an environment's id (a UUID)");
        goto out;
    }
    if (location && dash_check_location(location)) {
        dash_error_field(r, 400, "invalid_field", "location", "location: %s",
                         dash_check_location(location));
        goto out;
    }
    in.location = location ? location : in.location;
    rp_uuid_v7(in.run_id);
    if (dash_tx(r, run_tx, &in) == RP_OK) {
        char *where = rp_xasprintf("/api/v1/projects/%s/runs/%s", in.project, in.run_id);
        dash_reply_json(r, 202, in.reply, strlen(in.reply));
        dash_add_header(r, "Location", where);
        free(where);
    }
out:
    free(in.reply);
    bson_free(in.overrides);
    bson_destroy(&body);
}

const struct dash_route dash_routes_tests[] = {
    {"GET", "/api/v1/projects/{project}/tests", DASH_PROJECT_VIEWER, list_tests},
    {"POST", "/api/v1/projects/{project}/tests", DASH_PROJECT_EDITOR, create_test},
    {"POST", "/api/v1/projects/{project}/tests/validate", DASH_PROJECT_VIEWER, validate_test},
    {"GET", "/api/v1/projects/{project}/tests/{test}", DASH_PROJECT_VIEWER, get_test},
    {"PUT", "/api/v1/projects/{project}/tests/{test}", DASH_PROJECT_EDITOR, save_test},
    {"PATCH", "/api/v1/projects/{project}/tests/{test}", DASH_PROJECT_EDITOR, patch_test},
    {"DELETE", "/api/v1/projects/{project}/tests/{test}", DASH_PROJECT_EDITOR, delete_test},
    {"GET", "/api/v1/projects/{project}/tests/{test}/versions", DASH_PROJECT_VIEWER, list_versions},
    {"GET", "/api/v1/projects/{project}/tests/{test}/versions/{version}", DASH_PROJECT_VIEWER,
     get_version},
    {"POST", "/api/v1/projects/{project}/tests/{test}/run", DASH_PROJECT_EDITOR, run_test},
    {NULL, NULL, 0, NULL},
};
