/* /api/v1/projects and their members: a project groups tests, schedules, environments,
 * channels and API keys; its members have one role each (owner > editor > viewer). The
 * creator becomes its owner; a project always keeps at least one owner. Every change writes
 * an audit-log row in the same transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"
#include "rampart/pg.h"

#define PROJECT_JSON                                                                               \
    "json_build_object('id', p.id, 'slug', p.slug, 'name', p.name, 'created_at', p.created_at, "   \
    "'updated_at', p.updated_at, "                                                                 \
    "'tests', (SELECT count(*) FROM tests t WHERE t.project_id = p.id), "                          \
    "'schedules', (SELECT count(*) FROM schedules s WHERE s.project_id = p.id))"

static const char *check_slug(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63)
        return "a slug has 1 to 63 characters";
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
        if (!ok)
            return "a slug holds a-z, 0-9 and - (not first)";
    }
    return NULL;
}

static void list_projects(struct dash_req *r)
{
    /* admins see every project; users their memberships; an API key its one project */
    static const char sql[] =
        "SELECT json_build_object('items', COALESCE(json_agg(x.j ORDER BY x.name), '[]')) FROM ("
        "  SELECT p.name, " PROJECT_JSON "::jsonb || jsonb_build_object('role', "
        "         CASE WHEN $3::bool THEN 'owner' WHEN $2::uuid IS NOT NULL THEN $4 "
        "              ELSE m.role END) AS j "
        "  FROM projects p LEFT JOIN memberships m ON m.project_id = p.id AND m.user_id = $1 "
        "  WHERE $3::bool OR (m.user_id IS NOT NULL) OR p.id = $2::uuid) x";
    const char *p[4] = {r->who.user_id[0] ? r->who.user_id : NULL,
                        r->who.kind == DASH_API_KEY ? r->who.key_project_id : NULL,
                        r->who.is_admin ? "true" : "false", dash_role_name(r->who.key_role)};
    dash_query_reply(r, 200, "projects", sql, 4, p);
}

struct project_in {
    const char *slug, *name;
    char id[37];
};

static int create_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct project_in *in = ud;
    PGresult *res = NULL;
    const char *p[2] = {in->slug, in->name};
    int rc =
        dash_tx_exec(r, pg, "project",
                     "INSERT INTO projects (slug, name) VALUES ($1, $2) RETURNING id", 2, p, &res);
    if (rc != RP_OK)
        return rc;
    snprintf(in->id, sizeof(in->id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    const char *m[2] = {in->id, r->who.user_id};
    rc = dash_tx_exec(r, pg, "membership",
                      "INSERT INTO memberships (project_id, user_id, role) "
                      "VALUES ($1, $2, 'owner')",
                      2, m, NULL);
    if (rc != RP_OK)
        return rc;
    return dash_audit(r, pg, in->id, "project.create", "project", in->id, NULL);
}

static void create_project(struct dash_req *r)
{
    bson_t body;
    if (dash_body(r, &body) != RP_OK)
        return;
    static const char *const allowed[] = {"slug", "name", NULL};
    struct project_in in = {0};
    if (dash_only(r, &body, allowed) != RP_OK ||
        dash_get_str(r, &body, "slug", DASH_REQUIRED, 1, 63, &in.slug, NULL) != RP_OK ||
        dash_get_str(r, &body, "name", DASH_REQUIRED, 1, 200, &in.name, NULL) != RP_OK)
        goto out;
    const char *why = check_slug(in.slug);
    if (why) {
        dash_error_field(r, 400, "invalid_field", "slug", "slug: %s", why);
        goto out;
    }
    if (dash_tx(r, create_tx, &in) != RP_OK)
        goto out;
    const char *p[1] = {in.id};
    dash_query_reply(r, 201, "project",
                     "SELECT " PROJECT_JSON "::jsonb || '{\"role\":\"owner\"}' FROM projects p "
                     "WHERE p.id = $1",
                     1, p);
out:
    bson_destroy(&body);
}

static void get_project(struct dash_req *r)
{
    const char *p[2] = {dash_param(r, "project"), dash_role_name(r->who.role)};
    dash_query_reply(r, 200, "project",
                     "SELECT " PROJECT_JSON "::jsonb || jsonb_build_object('role', $2::text) "
                     "FROM projects p WHERE p.id = $1",
                     2, p);
}

struct patch_in {
    const char *id, *slug, *name;
};

static int patch_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct patch_in *in = ud;
    const char *p[3] = {in->id, in->slug, in->name};
    PGresult *res = NULL;
    int rc = dash_tx_exec(r, pg, "project",
                          "UPDATE projects SET slug = COALESCE($2, slug), name = COALESCE($3, "
                          "name), updated_at = now() WHERE id = $1 RETURNING id",
                          3, p, &res);
    if (rc != RP_OK)
        return rc;
    int n = PQntuples(res);
    PQclear(res);
    if (n != 1) {
        dash_error(r, 404, "not_found", "project not found");
        return RP_ENOENT;
    }
    return dash_audit(r, pg, in->id, "project.update", "project", in->id, NULL);
}

static void patch_project(struct dash_req *r)
{
    bson_t body;
    if (dash_body(r, &body) != RP_OK)
        return;
    static const char *const allowed[] = {"slug", "name", NULL};
    struct patch_in in = {dash_param(r, "project"), NULL, NULL};
    if (dash_only(r, &body, allowed) != RP_OK ||
        dash_get_str(r, &body, "slug", 0, 1, 63, &in.slug, NULL) != RP_OK ||
        dash_get_str(r, &body, "name", 0, 1, 200, &in.name, NULL) != RP_OK)
        goto out;
    const char *why = in.slug ? check_slug(in.slug) : NULL;
    if (why) {
        dash_error_field(r, 400, "invalid_field", "slug", "slug: %s", why);
        goto out;
    }
    if (dash_tx(r, patch_tx, &in) != RP_OK)
        goto out;
    get_project(r);
out:
    bson_destroy(&body);
}

static int delete_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    const char *id = ud;
    const char *p[1] = {id};
    /* the audit row goes first: it cascades away with the project otherwise, so it is kept
     * project-less */
    int rc = dash_audit(r, pg, NULL, "project.delete", "project", id, NULL);
    if (rc != RP_OK)
        return rc;
    return dash_tx_exec(r, pg, "project", "DELETE FROM projects WHERE id = $1", 1, p, NULL);
}

static void delete_project(struct dash_req *r)
{
    if (dash_tx(r, delete_tx, (void *)dash_param(r, "project")) == RP_OK)
        dash_reply_empty(r, 204);
}

/* ---- members ------------------------------------------------------------------------------ */

static void list_members(struct dash_req *r)
{
    const char *p[1] = {dash_param(r, "project")};
    dash_query_reply(r, 200, "members",
                     "SELECT json_build_object('items', COALESCE(json_agg(json_build_object("
                     "'user_id', u.id, 'email', u.email, 'name', u.name, 'role', m.role, "
                     "'created_at', m.created_at) ORDER BY u.email), '[]')) "
                     "FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.project_id = $1",
                     1, p);
}

struct member_in {
    const char *project, *user, *email, *role;
    int remove;
    char uid[37]; /* out: the member changed */
};

/* Refuse a change that would leave the project without an owner. */
static int keeps_an_owner(struct dash_req *r, struct rp_pg *pg, const char *project)
{
    PGresult *res = NULL;
    const char *p[1] = {project};
    int rc = dash_tx_exec(r, pg, "members",
                          "SELECT count(*) FROM memberships WHERE project_id = $1 AND role = "
                          "'owner'",
                          1, p, &res);
    if (rc != RP_OK)
        return rc;
    long owners = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (owners < 1) {
        dash_error(r, 409, "last_owner",
                   "a project keeps at least one owner: make someone else "
                   "owner first");
        return RP_EINVAL;
    }
    return RP_OK;
}

static int member_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct member_in *in = ud;
    PGresult *res = NULL;
    int rc;
    if (in->remove) {
        const char *p[2] = {in->project, in->user};
        rc = dash_tx_exec(r, pg, "member",
                          "DELETE FROM memberships WHERE project_id = $1 AND user_id = $2 "
                          "RETURNING user_id",
                          2, p, &res);
    } else if (in->email) {
        const char *p[3] = {in->project, in->email, in->role};
        rc = dash_tx_exec(r, pg, "member",
                          "INSERT INTO memberships (project_id, user_id, role) "
                          "SELECT $1, u.id, $3 FROM users u WHERE u.email = lower($2) "
                          "ON CONFLICT (project_id, user_id) DO UPDATE SET role = EXCLUDED.role "
                          "RETURNING user_id",
                          3, p, &res);
    } else {
        const char *p[3] = {in->project, in->user, in->role};
        rc = dash_tx_exec(r, pg, "member",
                          "UPDATE memberships SET role = $3 WHERE project_id = $1 AND user_id = "
                          "$2 RETURNING user_id",
                          3, p, &res);
    }
    if (rc != RP_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        dash_error(r, 404, "not_found",
                   in->email ? "no user has this e-mail address (an administrator creates users)"
                             : "this user is not a member of the project");
        return RP_ENOENT;
    }
    snprintf(in->uid, sizeof(in->uid), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if ((rc = keeps_an_owner(r, pg, in->project)) != RP_OK)
        return rc;
    char *details = rp_xasprintf("{\"role\":\"%s\"}", in->remove ? "none" : in->role);
    rc = dash_audit(r, pg, in->project, in->remove ? "member.remove" : "member.set", "user",
                    in->uid, details);
    free(details);
    return rc;
}

static void reply_member(struct dash_req *r, unsigned status, struct member_in *in)
{
    const char *q[2] = {in->project, in->uid};
    dash_query_reply(r, status, "member",
                     "SELECT json_build_object('user_id', u.id, 'email', u.email, 'name', "
                     "u.name, 'role', m.role, 'created_at', m.created_at) FROM memberships "
                     "m JOIN users u ON u.id = m.user_id WHERE m.project_id = $1 AND "
                     "m.user_id = $2",
                     2, q);
}

static int read_role(struct dash_req *r, const bson_t *body, const char **role)
{
    if (dash_get_str(r, body, "role", DASH_REQUIRED, 1, 20, role, NULL) != RP_OK)
        return RP_EINVAL;
    if (dash_role_parse(*role) == DASH_ROLE_NONE) {
        dash_error_field(r, 400, "invalid_field", "role", "role must be owner, editor or viewer");
        return RP_EINVAL;
    }
    return RP_OK;
}

static void add_member(struct dash_req *r)
{
    bson_t body;
    if (dash_body(r, &body) != RP_OK)
        return;
    static const char *const allowed[] = {"email", "role", NULL};
    struct member_in in = {.project = dash_param(r, "project")};
    if (dash_only(r, &body, allowed) == RP_OK &&
        dash_get_str(r, &body, "email", DASH_REQUIRED, 3, 254, &in.email, NULL) == RP_OK &&
        read_role(r, &body, &in.role) == RP_OK && dash_tx(r, member_tx, &in) == RP_OK)
        reply_member(r, 201, &in);
    bson_destroy(&body);
}

static void set_member(struct dash_req *r)
{
    bson_t body;
    struct member_in in = {.project = dash_param(r, "project")};
    if (!(in.user = dash_param_uuid(r, "user", "member")) || dash_body(r, &body) != RP_OK)
        return;
    static const char *const allowed[] = {"role", NULL};
    if (dash_only(r, &body, allowed) == RP_OK && read_role(r, &body, &in.role) == RP_OK &&
        dash_tx(r, member_tx, &in) == RP_OK)
        reply_member(r, 200, &in);
    bson_destroy(&body);
}

static void remove_member(struct dash_req *r)
{
    struct member_in in = {.project = dash_param(r, "project"), .remove = 1};
    if (!(in.user = dash_param_uuid(r, "user", "member")))
        return;
    if (dash_tx(r, member_tx, &in) == RP_OK)
        dash_reply_empty(r, 204);
}

const struct dash_route dash_routes_projects[] = {
    {"GET", "/api/v1/projects", DASH_LOGGED_IN, list_projects},
    {"POST", "/api/v1/projects", DASH_USER_SESSION, create_project},
    {"GET", "/api/v1/projects/{project}", DASH_PROJECT_VIEWER, get_project},
    {"PATCH", "/api/v1/projects/{project}", DASH_PROJECT_OWNER, patch_project},
    {"DELETE", "/api/v1/projects/{project}", DASH_PROJECT_OWNER, delete_project},
    {"GET", "/api/v1/projects/{project}/members", DASH_PROJECT_VIEWER, list_members},
    {"POST", "/api/v1/projects/{project}/members", DASH_PROJECT_OWNER, add_member},
    {"PUT", "/api/v1/projects/{project}/members/{user}", DASH_PROJECT_OWNER, set_member},
    {"DELETE", "/api/v1/projects/{project}/members/{user}", DASH_PROJECT_OWNER, remove_member},
    {NULL, NULL, 0, NULL},
};
