/* The audit log (rows written by dash_audit with every change): a project's log for its
 * owners, and the whole installation's for administrators (with the project-less rows:
 * logins, users, deleted projects). Newest first, filtered by an action prefix ("member."),
 * paginated by id: the cursor is the last id of a page, base64url-encoded so clients treat it
 * as opaque (ids only grow, so a page never repeats or skips a row written meanwhile). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dash.h"
#include "rampart/job.h"
#include "rampart/pg.h"

#define DEFAULT_LIMIT 50
#define MAX_LIMIT     200

static char *cursor_encode(const char *id)
{
    size_t n = strlen(id);
    size_t cap = sodium_base64_encoded_len(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = rp_xmalloc(cap);
    sodium_bin2base64(out, cap, (const unsigned char *)id, n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

/* The id in a cursor as decimal text (a positive bigint), or RP_EINVAL. */
static int cursor_decode(const char *cursor, char id[24])
{
    size_t n = strlen(cursor), len = 0;
    unsigned char raw[32];
    if (n == 0 || n > 40 ||
        sodium_base642bin(raw, sizeof(raw) - 1, cursor, n, NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        len == 0 || len > 19)
        return RP_EINVAL;
    for (size_t i = 0; i < len; i++)
        if (raw[i] < '0' || raw[i] > '9')
            return RP_EINVAL;
    raw[len] = '\0';
    errno = 0;
    long long v = strtoll((const char *)raw, NULL, 10);
    if (errno || v < 1)
        return RP_EINVAL;
    snprintf(id, 24, "%lld", v);
    return RP_OK;
}

static int parse_limit(struct dash_req *r, char out[8])
{
    const char *s = dash_arg(r, "limit");
    long v = DEFAULT_LIMIT;
    if (s) {
        char *end = NULL;
        errno = 0;
        v = strtol(s, &end, 10);
        if (!*s || *end || errno || v < 1 || v > MAX_LIMIT) {
            dash_error_field(r, 400, "invalid_field", "limit",
                             "limit must be an integer from 1 to %d", MAX_LIMIT);
            return RP_EINVAL;
        }
    }
    snprintf(out, 8, "%ld", v);
    return RP_OK;
}

/* The page for `project` (NULL: every project and the project-less rows). Filters and
 * pagination come from the query string. */
static void reply_page(struct dash_req *r, const char *project)
{
    char limit[8], after[24];
    const char *action = dash_arg(r, "action"), *cursor = dash_arg(r, "cursor");
    if (parse_limit(r, limit) != RP_OK)
        return;
    if (action && !*action)
        action = NULL; /* an empty prefix matches everything */
    if (action && (strlen(action) > 100 || !bson_utf8_validate(action, strlen(action), false))) {
        dash_error_field(r, 400, "invalid_field", "action",
                         "action is a prefix of at most 100 characters, like \"member.\"");
        return;
    }
    if (cursor && cursor_decode(cursor, after) != RP_OK) {
        dash_error_field(r, 400, "invalid_field", "cursor",
                         "cursor is not one this API gave (use next_cursor of the previous page)");
        return;
    }
    /* one row more than asked tells whether there is a next page */
    static const char sql[] =
        "WITH page AS ("
        "  SELECT a.* FROM audit_log a "
        "  WHERE ($1::uuid IS NULL OR a.project_id = $1::uuid) "
        "    AND ($2::text IS NULL OR left(a.action, length($2)) = $2) "
        "    AND ($3::bigint IS NULL OR a.id < $3::bigint) "
        "  ORDER BY a.id DESC LIMIT $4::int + 1), "
        "shown AS (SELECT * FROM page ORDER BY id DESC LIMIT $4::int) "
        "SELECT COALESCE(json_agg(json_build_object('id', s.id, 'at', s.at, 'actor', s.actor, "
        "         'action', s.action, 'target_type', s.target_type, 'target_id', s.target_id, "
        "         'details', s.details, 'ip', s.ip, 'request_id', s.request_id, "
        "         'project_id', s.project_id) ORDER BY s.id DESC), '[]'), "
        "       CASE WHEN (SELECT count(*) FROM page) > $4::int "
        "            THEN (SELECT min(id) FROM shown)::text END "
        "FROM shown s";
    const char *p[4] = {project, action, cursor ? after : NULL, limit};
    PGresult *res = NULL;
    if (dash_exec(r, "audit log", sql, 4, p, &res) != RP_OK)
        return;
    struct rp_buf out;
    rp_buf_init(&out, 0);
    (void)rp_buf_append(&out, "{\"items\":", 9);
    (void)rp_buf_append(&out, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    if (PQgetisnull(res, 0, 1)) {
        (void)rp_buf_append(&out, ",\"next_cursor\":null}", 20);
    } else {
        char *next = cursor_encode(PQgetvalue(res, 0, 1));
        (void)rp_buf_printf(&out, ",\"next_cursor\":\"%s\"}", next);
        free(next);
    }
    PQclear(res);
    dash_reply_json(r, 200, out.data, out.len);
    rp_buf_cleanup(&out);
}

static void project_audit(struct dash_req *r)
{
    /* administrators pass the role check for any id: a project that does not exist is 404 */
    const char *p[1] = {dash_param(r, "project")};
    PGresult *res = NULL;
    if (dash_exec(r, "project", "SELECT 1 FROM projects WHERE id = $1", 1, p, &res) != RP_OK)
        return;
    int found = PQntuples(res) == 1;
    PQclear(res);
    if (!found) {
        dash_error(r, 404, "not_found", "project not found");
        return;
    }
    reply_page(r, p[0]);
}

static void all_audit(struct dash_req *r)
{
    const char *project = dash_arg(r, "project");
    if (project && !rp_uuid_valid(project)) {
        dash_error_field(r, 400, "invalid_field", "project", "project must be a project id (UUID)");
        return;
    }
    reply_page(r, project);
}

const struct dash_route dash_routes_audit[] = {
    {"GET", "/api/v1/projects/{project}/audit", DASH_PROJECT_OWNER, project_audit},
    {"GET", "/api/v1/audit", DASH_ADMIN, all_audit},
    {NULL, NULL, 0, NULL},
};
