/* /api/v1/projects/{project}/api-keys: the API keys CI jobs use (Authorization: Bearer
 * rpk_<prefix>_<secret>). A key belongs to one project and acts there as editor or viewer.
 * Only a project's owner, in a browser session, manages keys (a key cannot mint keys). The
 * token is shown once, at creation; the database keeps its 12-character random prefix (to
 * find the row: auth.c resolve_key) and the SHA-256 of the whole token. Revoking a key sets
 * revoked_at, which resolve_key checks on every request, so it stops working at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dash.h"
#include "rampart/pg.h"

#define KEY_JSON                                                                                   \
    "json_build_object('id', k.id, 'name', k.name, 'role', k.role, 'prefix', k.prefix, "           \
    "'created_at', k.created_at, 'created_by', k.created_by, 'last_used_at', k.last_used_at, "     \
    "'expires_at', k.expires_at, 'revoked_at', k.revoked_at)"

static void list_keys(struct dash_req *r)
{
    /* NULL (404) for a project that does not exist: administrators pass the role check for
     * any id */
    const char *p[1] = {dash_param(r, "project")};
    dash_query_reply(r, 200, "project",
                     "SELECT json_build_object('items', COALESCE(json_agg(" KEY_JSON
                     " ORDER BY k.created_at DESC, k.id) "
                     "FILTER (WHERE k.id IS NOT NULL), '[]')) "
                     "FROM projects p LEFT JOIN api_keys k ON k.project_id = p.id "
                     "WHERE p.id = $1 GROUP BY p.id",
                     1, p);
}

struct key_in {
    const char *project, *name, *role;
    long days;
    int has_days;
    char token[4 + DASH_KEY_PREFIX_LEN + 1 + 64];
    char id[37]; /* out */
};

/* A fresh random token: "rpk_" + 12 of [a-z0-9] + "_" + 43 URL-safe base64 characters. */
static void new_token(char *out, size_t cap)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    char prefix[DASH_KEY_PREFIX_LEN + 1], secret[64];
    for (size_t i = 0; i < DASH_KEY_PREFIX_LEN; i++)
        prefix[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
    prefix[DASH_KEY_PREFIX_LEN] = '\0';
    dash_random_token(secret);
    snprintf(out, cap, "rpk_%s_%s", prefix, secret);
}

static int create_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct key_in *in = ud;
    in->id[0] = '\0'; /* the transaction may be re-run */
    char days[24], hash[67], prefix[DASH_KEY_PREFIX_LEN + 1];
    snprintf(days, sizeof(days), "%ld", in->days);
    const char *pp[1] = {in->project};
    PGresult *res = NULL;
    int rc = dash_tx_exec(r, pg, "project", "SELECT 1 FROM projects WHERE id = $1 FOR SHARE", 1, pp,
                          &res);
    if (rc != RP_OK)
        return rc;
    int found = PQntuples(res) == 1;
    PQclear(res);
    if (!found) { /* an administrator naming a project that does not exist */
        dash_error(r, 404, "not_found", "project not found");
        return RP_ENOENT;
    }
    /* a prefix is 62 bits of randomness: a clash is next to impossible, but is retried
     * rather than answered as a conflict */
    for (int attempt = 0; attempt < 4; attempt++) {
        new_token(in->token, sizeof(in->token));
        memcpy(prefix, in->token + 4, DASH_KEY_PREFIX_LEN);
        prefix[DASH_KEY_PREFIX_LEN] = '\0';
        dash_sha256_bytea(in->token, hash);
        const char *p[7] = {in->project,
                            in->name,
                            in->role,
                            prefix,
                            hash,
                            r->who.user_id,
                            in->has_days ? days : NULL};
        rc = dash_tx_exec(r, pg, "API key",
                          "INSERT INTO api_keys (project_id, name, role, prefix, token_hash, "
                          "created_by, expires_at) "
                          "VALUES ($1, $2, $3, $4, $5::bytea, $6, "
                          "        now() + $7::int * interval '1 day') "
                          "ON CONFLICT (prefix) DO NOTHING RETURNING id",
                          7, p, &res);
        if (rc != RP_OK)
            return rc;
        int n = PQntuples(res);
        if (n == 1)
            snprintf(in->id, sizeof(in->id), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        if (n == 1)
            break;
    }
    if (!in->id[0]) {
        dash_error(r, 503, "busy", "no free API key prefix was found; retry");
        return RP_EIO;
    }
    char *details = rp_xasprintf("{\"role\":\"%s\",\"prefix\":\"%s\"}", in->role, prefix);
    rc = dash_audit(r, pg, in->project, "api_key.create", "api_key", in->id, details);
    free(details);
    return rc;
}

static void create_key(struct dash_req *r)
{
    if (r->who.kind != DASH_SESSION) {
        dash_error(r, 403, "forbidden", "an API key cannot create API keys; log in as a user");
        return;
    }
    bson_t body;
    if (dash_body(r, &body) != RP_OK)
        return;
    static const char *const allowed[] = {"name", "role", "expires_in_days", NULL};
    struct key_in in = {.project = dash_param(r, "project")};
    if (dash_only(r, &body, allowed) != RP_OK ||
        dash_get_str(r, &body, "name", DASH_REQUIRED, 1, 100, &in.name, NULL) != RP_OK ||
        dash_get_str(r, &body, "role", DASH_REQUIRED, 1, 20, &in.role, NULL) != RP_OK ||
        dash_get_int(r, &body, "expires_in_days", DASH_NULLABLE, 1, 3650, &in.days, &in.has_days) !=
            RP_OK)
        goto out;
    if (in.has_days && in.days == 0)
        in.has_days = 0; /* null: never expires */
    if (strcmp(in.role, "editor") != 0 && strcmp(in.role, "viewer") != 0) {
        dash_error_field(r, 400, "invalid_field", "role",
                         "role must be editor or viewer (an API key is never owner)");
        goto out;
    }
    if (dash_tx(r, create_tx, &in) != RP_OK)
        goto out;
    const char *p[2] = {in.id, in.token};
    dash_query_reply(r, 201, "API key",
                     "SELECT " KEY_JSON "::jsonb || jsonb_build_object('token', $2::text) "
                     "FROM api_keys k WHERE k.id = $1",
                     2, p);
out:
    sodium_memzero(in.token, sizeof(in.token)); /* the answer holds the only copy */
    bson_destroy(&body);
}

struct revoke_in {
    const char *project, *key;
};

static int revoke_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct revoke_in *in = ud;
    const char *p[2] = {in->key, in->project};
    PGresult *res = NULL;
    int rc = dash_tx_exec(r, pg, "API key",
                          "SELECT revoked_at IS NULL FROM api_keys WHERE id = $1 AND project_id = "
                          "$2 FOR UPDATE",
                          2, p, &res);
    if (rc != RP_OK)
        return rc;
    int n = PQntuples(res), live = n == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (n != 1) {
        dash_error(r, 404, "not_found", "API key not found");
        return RP_ENOENT;
    }
    if (!live)
        return RP_OK; /* revoked already: nothing changes */
    rc = dash_tx_exec(r, pg, "API key", "UPDATE api_keys SET revoked_at = now() WHERE id = $1", 1,
                      p, NULL);
    if (rc != RP_OK)
        return rc;
    return dash_audit(r, pg, in->project, "api_key.revoke", "api_key", in->key, NULL);
}

static void revoke_key(struct dash_req *r)
{
    struct revoke_in in = {.project = dash_param(r, "project")};
    if (!(in.key = dash_param_uuid(r, "key", "API key")))
        return;
    if (dash_tx(r, revoke_tx, &in) == RP_OK) {
        dash_key_cache_forget(in.key);
        dash_reply_empty(r, 204);
    }
}

const struct dash_route dash_routes_keys[] = {
    {"GET", "/api/v1/projects/{project}/api-keys", DASH_PROJECT_OWNER, list_keys},
    {"POST", "/api/v1/projects/{project}/api-keys", DASH_PROJECT_OWNER, create_key},
    {"DELETE", "/api/v1/projects/{project}/api-keys/{key}", DASH_PROJECT_OWNER, revoke_key},
    {NULL, NULL, 0, NULL},
};
