/* /api/v1/projects/{project}/environments: named sets of variables (the "environment" layer of
 * docs/tests.md) that schedules and runs use. Viewers read, editors write; every change writes
 * an audit-log row. Secret values are write-only: sealed with RAMPART_SECRET_KEY on save and
 * never returned (a GET shows {"secret": true} in their place).
 *
 * The stored shape of environments.variables (a jsonb object; the worker reads it):
 *   "NAME": {"secret": true, "sealed": "v1:..."}   a secret: rp_secret_seal() of the JSON text
 *           of its value (the string secret "abc" is sealed as the 5 bytes "abc", quotes
 *           included; an object as its JSON text). The API refuses plain values whose only
 *           members are "secret" and/or "sealed", so any such object is a sealed secret (the
 *           worker, worker/exec.c, reads it so; a GET hides exactly this two-member shape).
 *   "NAME": anything else                          a plain value as the user gave it, in the test
 *           language's form: any JSON value, or the wrapper {"value": v} / {"value": v,
 *           "secret": false}, which means v.
 * To load it: open each sealed member (rp_secret_open), parse the text, put {"value": <it>,
 * "secret": true} in its place, then rp_vars_load_object(..., RP_LAYER_ENVIRONMENT, ...).
 *
 * Input: each member of "variables" is a plain value, {"value": v, "secret": true} (sealed
 * here), or, in a PATCH, {"secret": true} alone: keep the secret stored under that name (so the
 * UI saves an environment without knowing its secrets). Names follow the test language:
 * [A-Za-z_][A-Za-z0-9_.-]*, at most 128 bytes. At most 500 variables, each value's JSON text at
 * most 64 KiB. Values are taken from PostgreSQL's reading of the body (jsonb), not libbson's,
 * so numbers keep their exact digits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"
#include "rampart/log.h"
#include "rampart/pg.h"

#define MAX_VARS       500
#define MAX_VALUE_JSON (64 * 1024)
#define MAX_NAME       128

/* The variables as a reader may see them: secrets become {"secret": true}. */
#define PUBLIC_VARS                                                                                \
    "(SELECT COALESCE(jsonb_object_agg(x.k, CASE WHEN jsonb_typeof(x.v) <> 'object' THEN x.v "     \
    "   WHEN x.v @> '{\"secret\": true}' AND jsonb_typeof(x.v -> 'sealed') = 'string' "            \
    "        AND (SELECT count(*) FROM jsonb_object_keys(x.v)) = 2 "                               \
    "   THEN '{\"secret\": true}'::jsonb ELSE x.v END), '{}'::jsonb) "                             \
    " FROM jsonb_each(e.variables) AS x(k, v))"

#define ENV_JSON                                                                                   \
    "json_build_object('id', e.id, 'name', e.name, 'variables', " PUBLIC_VARS ", "                 \
    "'created_at', e.created_at, 'updated_at', e.updated_at)"

enum var_kind { VAR_PLAIN, VAR_SECRET, VAR_KEEP };

struct var {
    const char *name; /* borrowed from the body */
    enum var_kind kind;
    char *text; /* PLAIN: its JSON text; SECRET: the sealed text; KEEP: NULL */
};

struct env_in {
    const char *project, *id, *name;
    int has_vars;
    struct var *vars;
    size_t n;
    char new_id[37];
};

static void env_in_cleanup(struct env_in *in)
{
    for (size_t i = 0; i < in->n; i++)
        free(in->vars[i].text);
    free(in->vars);
    in->vars = NULL;
    in->n = 0;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        int more = (c >= '0' && c <= '9') || c == '.' || c == '-';
        if (!alpha && (i == 0 || !more))
            return 0;
    }
    return 1;
}

/* "variables.NAME" for messages; a name longer than a valid one (refused, and it may hold
 * anything) is cut to MAX_NAME bytes on a character boundary. */
static void field_of(char out[160], const char *name)
{
    size_t n = 0, len = strlen(name);
    while (n < len && n < MAX_NAME) {
        size_t step = 1;
        unsigned char c = (unsigned char)name[n];
        if (c >= 0xf0)
            step = 4;
        else if (c >= 0xe0)
            step = 3;
        else if (c >= 0xc0)
            step = 2;
        if (n + step > MAX_NAME || n + step > len)
            break;
        n += step;
    }
    snprintf(out, 160, "variables.%.*s%s", (int)n, name, n < len ? "..." : "");
}

/* What one member of "variables" is. Answers 400 and returns -1 for a refused one. */
static int classify(struct dash_req *r, const bson_iter_t *it, const char *field, int allow_keep,
                    enum var_kind *kind)
{
    *kind = VAR_PLAIN;
    bson_iter_t child;
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &child))
        return 0;
    int has_value = 0, has_secret = 0, has_sealed = 0, others = 0, secret = 0;
    while (bson_iter_next(&child)) {
        const char *k = bson_iter_key(&child);
        if (strcmp(k, "value") == 0) {
            has_value = 1;
        } else if (strcmp(k, "secret") == 0) {
            has_secret = 1;
            if (BSON_ITER_HOLDS_BOOL(&child))
                secret = bson_iter_bool(&child);
            else
                secret = -1;
        } else if (strcmp(k, "sealed") == 0) {
            has_sealed = 1;
        } else {
            others = 1;
        }
    }
    if (has_value && !has_sealed && !others) { /* the wrapper {"value": v[, "secret": b]} */
        if (secret < 0) {
            dash_error_field(r, 400, "invalid_field", field, "%s.secret: must be true or false",
                             field);
            return -1;
        }
        *kind = secret ? VAR_SECRET : VAR_PLAIN;
        return 0;
    }
    if (others || has_value || (!has_secret && !has_sealed))
        return 0; /* an ordinary object */
    if (allow_keep && has_secret && !has_sealed && secret == 1) {
        *kind = VAR_KEEP;
        return 0;
    }
    if (has_secret && !has_sealed && secret == 1)
        dash_error_field(r, 400, "invalid_field", field,
                         "%s: a secret needs its value: {\"value\": ..., \"secret\": true} "
                         "({\"secret\": true} alone keeps a stored secret, when updating)",
                         field);
    else
        dash_error_field(r, 400, "invalid_field", field,
                         "%s: an object whose only members are \"secret\" and \"sealed\" is "
                         "reserved for stored secrets; to store it as a plain value, wrap it: "
                         "{\"value\": ...}",
                         field);
    return -1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct var *)a)->name, ((const struct var *)b)->name);
}

/* Take the JSON texts of the values from PostgreSQL's reading of the body, check their sizes and
 * seal the secrets. */
static int fill_texts(struct dash_req *r, struct env_in *in)
{
    static const char sql[] = "SELECT x.k, x.v::text, (x.v -> 'value')::text "
                              "FROM jsonb_each(($1::jsonb) -> 'variables') AS x(k, v)";
    const char *p[1] = {r->body.data};
    PGresult *res = NULL;
    if (dash_exec(r, "variables", sql, 1, p, &res) != RP_OK)
        return RP_EINVAL;
    int rc = RP_OK;
    for (int row = 0; row < PQntuples(res) && rc == RP_OK; row++) {
        struct var key = {.name = PQgetvalue(res, row, 0)};
        struct var *v = bsearch(&key, in->vars, in->n, sizeof(*v), by_name);
        if (!v || v->kind == VAR_KEEP)
            continue;
        int col = v->kind == VAR_SECRET ? 2 : 1;
        const char *text = PQgetvalue(res, row, col);
        char field[160];
        field_of(field, v->name);
        if (PQgetlength(res, row, col) > MAX_VALUE_JSON) {
            dash_error_field(r, 400, "invalid_field", field,
                             "%s: the value's JSON has %d bytes; at most %d are allowed", field,
                             PQgetlength(res, row, col), MAX_VALUE_JSON);
            rc = RP_EINVAL;
        } else if (v->kind == VAR_SECRET) {
            v->text = dash_seal(r->app, text);
        } else {
            v->text = rp_xstrdup(text);
        }
    }
    PQclear(res);
    for (size_t i = 0; i < in->n && rc == RP_OK; i++) {
        if (in->vars[i].kind != VAR_KEEP && !in->vars[i].text) {
            char field[160];
            field_of(field, in->vars[i].name);
            dash_error_field(r, 400, "invalid_value", field, "%s: the value could not be read",
                             field);
            rc = RP_EINVAL;
        }
    }
    return rc;
}

/* Read and check "variables" (absent: in->has_vars = 0). Answers 400 and returns RP_EINVAL. */
static int read_variables(struct dash_req *r, const bson_t *body, int allow_keep, struct env_in *in)
{
    bson_iter_t it, child;
    size_t seen = 0;
    if (bson_iter_init(&it, body))
        while (bson_iter_next(&it))
            seen += strcmp(bson_iter_key(&it), "variables") == 0;
    if (seen == 0)
        return RP_OK;
    if (seen > 1) {
        dash_error_field(r, 400, "invalid_field", "variables", "\"variables\" is given twice");
        return RP_EINVAL;
    }
    if (!bson_iter_init_find(&it, body, "variables") || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
        !bson_iter_recurse(&it, &child)) {
        dash_error_field(r, 400, "invalid_field", "variables",
                         "\"variables\" must be a JSON object {\"NAME\": value, ...}");
        return RP_EINVAL;
    }
    in->has_vars = 1;
    size_t cap = 16;
    in->vars = rp_xcalloc(cap, sizeof(*in->vars));
    while (bson_iter_next(&child)) {
        const char *name = bson_iter_key(&child);
        char field[160];
        field_of(field, name);
        if (in->n == MAX_VARS) {
            dash_error_field(r, 400, "invalid_field", "variables",
                             "\"variables\" holds at most %d variables", MAX_VARS);
            return RP_EINVAL;
        }
        if (!valid_name(name)) {
            dash_error_field(r, 400, "invalid_field", field,
                             "%s: invalid name (letters, digits, _ . -, starting with a letter "
                             "or _, at most %d bytes)",
                             field, MAX_NAME);
            return RP_EINVAL;
        }
        enum var_kind kind;
        if (classify(r, &child, field, allow_keep, &kind) != 0)
            return RP_EINVAL;
        if (kind == VAR_SECRET && !r->app->have_secret_key) {
            dash_error_field(r, 400, "secret_key_missing", field,
                             "%s: secret values cannot be saved: no secret key is configured; "
                             "set RAMPART_SECRET_KEY (64 hex digits, the same on every Rampart "
                             "service) and restart",
                             field);
            return RP_EINVAL;
        }
        if (in->n == cap) {
            cap *= 2;
            in->vars = rp_xrealloc(in->vars, cap * sizeof(*in->vars));
        }
        in->vars[in->n++] = (struct var){.name = name, .kind = kind, .text = NULL};
    }
    qsort(in->vars, in->n, sizeof(*in->vars), by_name);
    for (size_t i = 1; i < in->n; i++) {
        if (strcmp(in->vars[i - 1].name, in->vars[i].name) == 0) {
            char field[160];
            field_of(field, in->vars[i].name);
            dash_error_field(r, 400, "invalid_field", field, "%s is given twice", field);
            return RP_EINVAL;
        }
    }
    return in->n ? fill_texts(r, in) : RP_OK;
}

/* The stored jsonb text of the variables; KEEP members take the sealed text of the stored
 * secret of the same name (queried here, inside the transaction). */
static int build_stored(struct dash_req *r, struct rp_pg *pg, struct env_in *in, struct rp_buf *out)
{
    PGresult *stored = NULL;
    int need_stored = 0;
    for (size_t i = 0; i < in->n; i++)
        need_stored |= in->vars[i].kind == VAR_KEEP;
    if (need_stored) {
        static const char sql[] =
            "SELECT x.k, x.v ->> 'sealed' FROM environments e, jsonb_each(e.variables) AS x(k, v) "
            "WHERE e.id = $1 AND e.project_id = $2 AND jsonb_typeof(x.v) = 'object' "
            "  AND x.v @> '{\"secret\": true}' AND jsonb_typeof(x.v -> 'sealed') = 'string'";
        const char *p[2] = {in->id, in->project};
        int rc = dash_tx_exec(r, pg, "environment", sql, 2, p, &stored);
        if (rc != RP_OK)
            return rc;
    }
    (void)rp_buf_append(out, "{", 1);
    for (size_t i = 0; i < in->n; i++) {
        const struct var *v = &in->vars[i];
        /* names hold [A-Za-z0-9_.-] only: nothing to escape */
        (void)rp_buf_printf(out, "%s\"%s\":", i ? "," : "", v->name);
        const char *sealed = v->kind == VAR_SECRET ? v->text : NULL;
        if (v->kind == VAR_KEEP) {
            for (int row = 0; stored && row < PQntuples(stored) && !sealed; row++)
                if (strcmp(PQgetvalue(stored, row, 0), v->name) == 0)
                    sealed = PQgetvalue(stored, row, 1);
            if (!sealed) {
                char field[160];
                field_of(field, v->name);
                dash_error_field(r, 400, "invalid_field", field,
                                 "%s: there is no stored secret of this name to keep; give its "
                                 "value: {\"value\": ..., \"secret\": true}",
                                 field);
                PQclear(stored);
                return RP_EINVAL;
            }
        }
        if (sealed) {
            (void)rp_buf_append(out, "{\"secret\":true,\"sealed\":\"", 25);
            (void)rp_json_escape(out, sealed);
            (void)rp_buf_append(out, "\"}", 2);
        } else {
            (void)rp_buf_append(out, v->text, strlen(v->text));
        }
    }
    (void)rp_buf_append(out, "}", 1);
    PQclear(stored);
    return RP_OK;
}

/* The audit details: {"name": ..., "variables": ["NAME", ...]} (never a value). */
static char *audit_details(const struct env_in *in)
{
    struct rp_buf b;
    rp_buf_init(&b, 0);
    (void)rp_buf_append(&b, "{", 1);
    if (in->name) {
        (void)rp_buf_append(&b, "\"name\":\"", 8);
        (void)rp_json_escape(&b, in->name);
        (void)rp_buf_append(&b, "\"", 1);
    }
    if (in->has_vars) {
        (void)rp_buf_printf(&b, "%s\"variables\":[", in->name ? "," : "");
        for (size_t i = 0; i < in->n; i++)
            (void)rp_buf_printf(&b, "%s\"%s\"", i ? "," : "", in->vars[i].name);
        (void)rp_buf_append(&b, "]", 1);
    }
    (void)rp_buf_append(&b, "}", 1);
    return b.data;
}

static void reply_env(struct dash_req *r, unsigned status, const char *project, const char *id)
{
    const char *p[2] = {id, project};
    dash_query_reply(
        r, status, "environment",
        "SELECT " ENV_JSON " FROM environments e WHERE e.id = $1 AND e.project_id = $2", 2, p);
}

static void list_envs(struct dash_req *r)
{
    const char *p[1] = {dash_param(r, "project")};
    /* no row (404) for a project that does not exist (an admin passes the role check) */
    dash_query_reply(r, 200, "project",
                     "SELECT (SELECT json_build_object('items', COALESCE(json_agg(" ENV_JSON
                     " ORDER BY e.name), '[]')) FROM environments e WHERE e.project_id = pr.id) "
                     "FROM projects pr WHERE pr.id = $1",
                     1, p);
}

static void get_env(struct dash_req *r)
{
    const char *id = dash_param_uuid(r, "environment", "environment");
    if (id)
        reply_env(r, 200, dash_param(r, "project"), id);
}

static int create_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct env_in *in = ud;
    struct rp_buf vars;
    rp_buf_init(&vars, 0);
    PGresult *res = NULL;
    int rc = build_stored(r, pg, in, &vars);
    if (rc != RP_OK)
        goto out;
    const char *p[3] = {in->project, in->name, vars.data};
    rc = dash_tx_exec(r, pg, "environment",
                      "INSERT INTO environments (project_id, name, variables) "
                      "VALUES ($1, $2, $3::jsonb) RETURNING id",
                      3, p, &res);
    if (rc != RP_OK)
        goto out;
    snprintf(in->new_id, sizeof(in->new_id), "%s", PQgetvalue(res, 0, 0));
    char *details = audit_details(in);
    rc = dash_audit(r, pg, in->project, "environment.create", "environment", in->new_id, details);
    free(details);
out:
    PQclear(res);
    rp_buf_cleanup(&vars);
    return rc;
}

static void create_env(struct dash_req *r)
{
    bson_t body;
    if (dash_body(r, &body) != RP_OK)
        return;
    static const char *const allowed[] = {"name", "variables", NULL};
    struct env_in in = {.project = dash_param(r, "project")};
    if (dash_only(r, &body, allowed) == RP_OK &&
        dash_get_str(r, &body, "name", DASH_REQUIRED, 1, 100, &in.name, NULL) == RP_OK &&
        read_variables(r, &body, 0, &in) == RP_OK) {
        in.has_vars = 1; /* absent means {} */
        if (dash_tx(r, create_tx, &in) == RP_OK)
            reply_env(r, 201, in.project, in.new_id);
    }
    env_in_cleanup(&in);
    bson_destroy(&body);
}

static int patch_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct env_in *in = ud;
    struct rp_buf vars;
    rp_buf_init(&vars, 0);
    PGresult *res = NULL;
    const char *lp[2] = {in->id, in->project};
    int rc = dash_tx_exec(r, pg, "environment",
                          "SELECT 1 FROM environments WHERE id = $1 AND project_id = $2 "
                          "FOR UPDATE",
                          2, lp, &res);
    if (rc != RP_OK)
        goto out;
    if (PQntuples(res) != 1) {
        dash_error(r, 404, "not_found", "environment not found");
        rc = RP_ENOENT;
        goto out;
    }
    PQclear(res);
    res = NULL;
    if (in->has_vars && (rc = build_stored(r, pg, in, &vars)) != RP_OK)
        goto out;
    const char *p[4] = {in->id, in->project, in->name, in->has_vars ? vars.data : NULL};
    rc = dash_tx_exec(r, pg, "environment",
                      "UPDATE environments SET name = COALESCE($3, name), "
                      "variables = COALESCE($4::jsonb, variables), updated_at = now() "
                      "WHERE id = $1 AND project_id = $2",
                      4, p, NULL);
    if (rc != RP_OK)
        goto out;
    char *details = audit_details(in);
    rc = dash_audit(r, pg, in->project, "environment.update", "environment", in->id, details);
    free(details);
out:
    PQclear(res);
    rp_buf_cleanup(&vars);
    return rc;
}

static void patch_env(struct dash_req *r)
{
    bson_t body;
    struct env_in in = {.project = dash_param(r, "project")};
    if (!(in.id = dash_param_uuid(r, "environment", "environment")) || dash_body(r, &body) != RP_OK)
        return;
    static const char *const allowed[] = {"name", "variables", NULL};
    if (dash_only(r, &body, allowed) == RP_OK &&
        dash_get_str(r, &body, "name", 0, 1, 100, &in.name, NULL) == RP_OK &&
        read_variables(r, &body, 1, &in) == RP_OK && dash_tx(r, patch_tx, &in) == RP_OK)
        reply_env(r, 200, in.project, in.id);
    env_in_cleanup(&in);
    bson_destroy(&body);
}

static int delete_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct env_in *in = ud;
    const char *p[2] = {in->id, in->project};
    PGresult *res = NULL;
    int rc = dash_tx_exec(r, pg, "environment",
                          "DELETE FROM environments WHERE id = $1 AND project_id = $2 "
                          "RETURNING name",
                          2, p, &res);
    if (rc != RP_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        dash_error(r, 404, "not_found", "environment not found");
        return RP_ENOENT;
    }
    in->name = PQgetvalue(res, 0, 0);
    char *details = audit_details(in);
    in->name = NULL;
    PQclear(res);
    rc = dash_audit(r, pg, in->project, "environment.delete", "environment", in->id, details);
    free(details);
    return rc;
}

static void delete_env(struct dash_req *r)
{
    struct env_in in = {.project = dash_param(r, "project")};
    if (!(in.id = dash_param_uuid(r, "environment", "environment")))
        return;
    if (dash_tx(r, delete_tx, &in) == RP_OK)
        dash_reply_empty(r, 204);
}

const struct dash_route dash_routes_environments[] = {
    {"GET", "/api/v1/projects/{project}/environments", DASH_PROJECT_VIEWER, list_envs},
    {"POST", "/api/v1/projects/{project}/environments", DASH_PROJECT_EDITOR, create_env},
    {"GET", "/api/v1/projects/{project}/environments/{environment}", DASH_PROJECT_VIEWER, get_env},
    {"PATCH", "/api/v1/projects/{project}/environments/{environment}", DASH_PROJECT_EDITOR,
     patch_env},
    {"DELETE", "/api/v1/projects/{project}/environments/{environment}", DASH_PROJECT_EDITOR,
     delete_env},
    {NULL, NULL, 0, NULL},
};
