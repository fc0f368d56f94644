/* /api/v1/users: the accounts of the dashboard. Administrators create, list, change and delete
 * users; a user reads and changes their own name and password (with the current password).
 * Rules kept here: e-mail addresses are stored lower-case and unique; an installation always
 * keeps at least one enabled administrator (changes that could break this take one advisory
 * lock, so two admins demoting each other at once cannot both succeed); disabling a user or
 * changing a password ends their sessions; deleting a user never leaves a project ownerless.
 * Every change writes a project-less audit-log row in the same transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dash.h"
#include "rampart/log.h"
#include "rampart/pg.h"

/* Serializes every change that could lower the number of enabled administrators. */
#define ADMINS_LOCK "SELECT pg_advisory_xact_lock(hashtext('rampart.users.admins'))"

/* A plain check of an address: local@domain.tld, no spaces, control or quoting characters
 * (deliverability is the mail server's business; this catches typos and pasted junk). */
static const char *check_email(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at || strchr(at + 1, '@'))
        return "an e-mail address has exactly one @";
    if (at == s || at - s > 64)
        return "an e-mail address has 1 to 64 characters before the @";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f || strchr("\"(),:;<>[\\]", *p))
            return "an e-mail address holds no spaces, control characters or \"(),:;<>[\\]";
    const char *d = at + 1;
    size_t labels = 0;
    for (;;) {
        const char *dot = strchr(d, '.');
        size_t n = dot ? (size_t)(dot - d) : strlen(d);
        if (n == 0 || n > 63)
            return "the domain of an e-mail address is like example.com (no empty part)";
        labels++;
        if (!dot)
            break;
        d = dot + 1;
    }
    if (labels < 2)
        return "the domain of an e-mail address has a dot, like example.com";
    return NULL;
}

static int is_self(struct dash_req *r, const char *id)
{
    return strcasecmp(id, r->who.user_id) == 0;
}

/* Fetch one user as JSON and answer `status`. */
static void reply_user(struct dash_req *r, unsigned status, const char *id)
{
    const char *p[1] = {id};
    dash_query_reply(r, status, "user", "SELECT " DASH_USER_JSON " FROM users u WHERE u.id = $1", 1,
                     p);
}

/* Refuse (409 last_admin) when no enabled administrator would remain. */
static int keeps_an_admin(struct dash_req *r, struct rp_pg *pg)
{
    PGresult *res = NULL;
    int rc =
        dash_tx_exec(r, pg, "users", "SELECT count(*) FROM users WHERE is_admin AND NOT disabled",
                     0, NULL, &res);
    if (rc != RP_OK)
        return rc;
    long admins = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (admins < 1) {
        dash_error(r, 409, "last_admin",
                   "the installation keeps at least one enabled administrator: make another "
                   "user administrator first");
        return RP_EINVAL;
    }
    return RP_OK;
}

static void list_users(struct dash_req *r)
{
    dash_query_reply(r, 200, "users",
                     "SELECT json_build_object('items', COALESCE(json_agg(" DASH_USER_JSON
                     " ORDER BY u.email), '[]')) FROM users u",
                     0, NULL);
}

/* ---- create ------------------------------------------------------------------------------ */

struct create_in {
    char *email; /* lower-cased copy */
    const char *name, *password;
    int is_admin;
    char hash[128];
    char id[37]; /* out */
};

static int create_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct create_in *in = ud;
    PGresult *res = NULL;
    const char *p[4] = {in->email, in->name, in->hash, in->is_admin ? "true" : "false"};
    int rc = dash_tx_exec(r, pg, "user",
                          "INSERT INTO users (email, name, password_hash, is_admin) "
                          "VALUES (lower($1), $2, $3, $4::bool) "
                          "ON CONFLICT (email) DO NOTHING RETURNING id",
                          4, p, &res);
    if (rc != RP_OK)
        return rc;
    int n = PQntuples(res);
    if (n == 1)
        snprintf(in->id, sizeof(in->id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (n != 1) {
        dash_error_field(r, 409, "conflict", "email", "a user with this e-mail address exists");
        return RP_EINVAL;
    }
    struct rp_buf d;
    rp_buf_init(&d, 0);
    (void)rp_buf_append(&d, "{\"email\":\"", 10);
    (void)rp_json_escape(&d, in->email);
    (void)rp_buf_printf(&d, "\",\"is_admin\":%s}", in->is_admin ? "true" : "false");
    rc = dash_audit(r, pg, NULL, "user.create", "user", in->id, d.data);
    rp_buf_cleanup(&d);
    return rc;
}

/* The password rules, answered as a 400 on `field`. */
static int check_password(struct dash_req *r, const char *field, const char *password)
{
    const char *why = dash_password_weak(password);
    if (why) {
        dash_error_field(r, 400, "invalid_field", field, "%s: %s", field, why);
        return RP_EINVAL;
    }
    return RP_OK;
}

static void create_user(struct dash_req *r)
{
    bson_t body;
    if (dash_body(r, &body) != RP_OK)
        return;
    static const char *const allowed[] = {"email", "name", "password", "is_admin", NULL};
    struct create_in in = {0};
    const char *email = NULL;
    if (dash_only(r, &body, allowed) != RP_OK ||
        dash_get_str(r, &body, "email", DASH_REQUIRED, 3, 254, &email, NULL) != RP_OK ||
        dash_get_str(r, &body, "name", DASH_REQUIRED, 1, 200, &in.name, NULL) != RP_OK ||
        dash_get_str(r, &body, "password", DASH_REQUIRED, 1, 1024, &in.password, NULL) != RP_OK ||
        dash_get_bool(r, &body, "is_admin", 0, &in.is_admin, NULL) != RP_OK)
        goto out;
    const char *why = check_email(email);
    if (why) {
        dash_error_field(r, 400, "invalid_field", "email", "email: %s", why);
        goto out;
    }
    if (check_password(r, "password", in.password) != RP_OK)
        goto out;
    in.email = rp_xstrdup(email);
    for (char *c = in.email; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    if (dash_password_hash(in.password, in.hash) != RP_OK) {
        dash_error(r, 503, "busy", "the password could not be hashed (out of memory); retry");
        goto out;
    }
    if (dash_tx(r, create_tx, &in) == RP_OK)
        reply_user(r, 201, in.id);
out:
    free(in.email);
    bson_destroy(&body);
}

/* ---- read -------------------------------------------------------------------------------- */

static void get_user(struct dash_req *r)
{
    const char *id = dash_param_uuid(r, "user", "user");
    if (!id)
        return;
    if (!r->who.is_admin && !is_self(r, id)) {
        dash_error(r, 404, "not_found", "user not found");
        return;
    }
    reply_user(r, 200, id);
}

/* ---- update ------------------------------------------------------------------------------ */

struct patch_in {
    const char *id;
    const char *name;
    int is_admin, has_is_admin, disabled, has_disabled;
    int has_password;
    char hash[128];
    char keep_session[67]; /* the caller's own session (kept on a password change), or "" */
};

static int patch_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct patch_in *in = ud;
    PGresult *res = NULL;
    int rc;
    int admin_change = (in->has_is_admin && !in->is_admin) || (in->has_disabled && in->disabled);
    if (admin_change && (rc = dash_tx_exec(r, pg, "users", ADMINS_LOCK, 0, NULL, NULL)) != RP_OK)
        return rc;
    const char *p[5] = {in->id, in->name,
                        in->has_is_admin ? (in->is_admin ? "true" : "false") : NULL,
                        in->has_disabled ? (in->disabled ? "true" : "false") : NULL,
                        in->has_password ? in->hash : NULL};
    rc = dash_tx_exec(r, pg, "user",
                      "UPDATE users SET name = COALESCE($2, name), "
                      "is_admin = COALESCE($3::bool, is_admin), "
                      "disabled = COALESCE($4::bool, disabled), "
                      "password_hash = COALESCE($5, password_hash), updated_at = now() "
                      "WHERE id = $1 RETURNING id",
                      5, p, &res);
    if (rc != RP_OK)
        return rc;
    int n = PQntuples(res);
    PQclear(res);
    if (n != 1) {
        dash_error(r, 404, "not_found", "user not found");
        return RP_ENOENT;
    }
    if (admin_change && (rc = keeps_an_admin(r, pg)) != RP_OK)
        return rc;
    if ((in->has_disabled && in->disabled) || in->has_password) {
        /* a disabled user is logged out everywhere; a new password ends the other sessions */
        const char *keep = in->has_disabled && in->disabled ? NULL
                           : in->keep_session[0]            ? in->keep_session
                                                            : NULL;
        const char *s[2] = {in->id, keep};
        rc = dash_tx_exec(r, pg, "sessions",
                          "DELETE FROM sessions WHERE user_id = $1 "
                          "AND ($2::bytea IS NULL OR token_hash <> $2::bytea)",
                          2, s, NULL);
        if (rc != RP_OK)
            return rc;
    }
    struct rp_buf d;
    rp_buf_init(&d, 0);
    (void)rp_buf_printf(&d, "{\"changed\":[%s%s%s%s]", in->name ? "\"name\"," : "",
                        in->has_is_admin ? "\"is_admin\"," : "",
                        in->has_disabled ? "\"disabled\"," : "",
                        in->has_password ? "\"password\"," : "");
    if (d.data[d.len - 2] == ',') { /* drop the last comma */
        d.data[d.len - 2] = ']';
        d.data[d.len - 1] = '\0';
        d.len--;
    }
    if (in->has_is_admin)
        (void)rp_buf_printf(&d, ",\"is_admin\":%s", in->is_admin ? "true" : "false");
    if (in->has_disabled)
        (void)rp_buf_printf(&d, ",\"disabled\":%s", in->disabled ? "true" : "false");
    (void)rp_buf_append(&d, "}", 1);
    rc = dash_audit(r, pg, NULL, "user.update", "user", in->id, d.data);
    rp_buf_cleanup(&d);
    return rc;
}

/* A user changing their own password proves they know the current one (a session left open
 * on a shared computer must not be enough to take the account over). */
static int check_current_password(struct dash_req *r, const bson_t *body)
{
    const char *current = NULL;
    if (dash_get_str(r, body, "current_password", 0, 1, 1024, &current, NULL) != RP_OK)
        return RP_EINVAL;
    if (!current) {
        dash_error_field(r, 400, "missing_field", "current_password",
                         "changing your own password needs \"current_password\"");
        return RP_EINVAL;
    }
    const char *p[1] = {r->who.user_id};
    PGresult *res = NULL;
    if (dash_exec(r, "user", "SELECT password_hash FROM users WHERE id = $1", 1, p, &res) != RP_OK)
        return RP_EIO;
    int ok = PQntuples(res) == 1 && dash_password_verify(PQgetvalue(res, 0, 0), current);
    PQclear(res);
    if (!ok) {
        dash_error_field(r, 403, "wrong_password", "current_password",
                         "\"current_password\" is not your current password");
        return RP_EINVAL;
    }
    return RP_OK;
}

static void patch_user(struct dash_req *r)
{
    struct patch_in in = {0};
    if (!(in.id = dash_param_uuid(r, "user", "user")))
        return;
    int self = is_self(r, in.id);
    if (!r->who.is_admin && !self) {
        dash_error(r, 404, "not_found", "user not found");
        return;
    }
    bson_t body;
    if (dash_body(r, &body) != RP_OK)
        return;
    static const char *const allowed[] = {"name",     "is_admin",         "disabled",
                                          "password", "current_password", NULL};
    const char *password = NULL, *current = NULL;
    if (dash_only(r, &body, allowed) != RP_OK ||
        /* checked whoever edits, so a wrong type is refused even when it is not used */
        dash_get_str(r, &body, "current_password", 0, 1, 1024, &current, NULL) != RP_OK ||
        dash_get_str(r, &body, "name", 0, 1, 200, &in.name, NULL) != RP_OK ||
        dash_get_bool(r, &body, "is_admin", 0, &in.is_admin, &in.has_is_admin) != RP_OK ||
        dash_get_bool(r, &body, "disabled", 0, &in.disabled, &in.has_disabled) != RP_OK ||
        dash_get_str(r, &body, "password", 0, 1, 1024, &password, &in.has_password) != RP_OK)
        goto out;
    if (!r->who.is_admin && (in.has_is_admin || in.has_disabled)) {
        dash_error_field(r, 403, "forbidden", in.has_is_admin ? "is_admin" : "disabled",
                         "only an administrator can change is_admin or disabled");
        goto out;
    }
    if (self && in.has_is_admin && !in.is_admin) {
        dash_error_field(r, 409, "conflict", "is_admin",
                         "you cannot remove your own administrator rights: another "
                         "administrator can");
        goto out;
    }
    if (self && in.has_disabled && in.disabled) {
        dash_error_field(r, 409, "conflict", "disabled",
                         "you cannot disable yourself: another administrator can");
        goto out;
    }
    if (password && check_password(r, "password", password) != RP_OK)
        goto out;
    if (password && self && check_current_password(r, &body) != RP_OK)
        goto out;
    if (password && dash_password_hash(password, in.hash) != RP_OK) {
        dash_error(r, 503, "busy", "the password could not be hashed (out of memory); retry");
        goto out;
    }
    const char *cookie = self ? dash_session_cookie(r) : NULL;
    if (cookie)
        dash_sha256_bytea(cookie, in.keep_session);
    if (dash_tx(r, patch_tx, &in) == RP_OK)
        reply_user(r, 200, in.id);
out:
    bson_destroy(&body);
}

/* ---- delete ------------------------------------------------------------------------------ */

static int delete_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    const char *id = ud;
    const char *p[1] = {id};
    PGresult *res = NULL;
    int rc = dash_tx_exec(r, pg, "users", ADMINS_LOCK, 0, NULL, NULL);
    if (rc != RP_OK)
        return rc;
    rc =
        dash_tx_exec(r, pg, "user", "SELECT email FROM users WHERE id = $1 FOR UPDATE", 1, p, &res);
    if (rc != RP_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        dash_error(r, 404, "not_found", "user not found");
        return RP_ENOENT;
    }
    struct rp_buf d;
    rp_buf_init(&d, 0);
    (void)rp_buf_append(&d, "{\"email\":\"", 10);
    (void)rp_json_escape(&d, PQgetvalue(res, 0, 0));
    (void)rp_buf_append(&d, "\"}", 2);
    PQclear(res);
    res = NULL;
    /* a project keeps an owner: deleting its only owner would orphan it */
    rc = dash_tx_exec(r, pg, "user",
                      "SELECT string_agg(slug, ', ' ORDER BY slug) FROM ("
                      "  SELECT p.slug FROM memberships m JOIN projects p ON p.id = m.project_id "
                      "  WHERE m.user_id = $1 AND m.role = 'owner' AND NOT EXISTS ("
                      "    SELECT 1 FROM memberships o WHERE o.project_id = m.project_id "
                      "    AND o.role = 'owner' AND o.user_id <> $1) "
                      "  ORDER BY p.slug LIMIT 10) x",
                      1, p, &res);
    if (rc != RP_OK)
        goto out;
    if (!PQgetisnull(res, 0, 0)) {
        dash_error(r, 409, "last_owner",
                   "this user is the only owner of the project(s) %.300s: make someone else "
                   "owner first (or disable the user instead)",
                   PQgetvalue(res, 0, 0));
        rc = RP_EINVAL;
        goto out;
    }
    if ((rc = dash_audit(r, pg, NULL, "user.delete", "user", id, d.data)) != RP_OK)
        goto out;
    if ((rc = dash_tx_exec(r, pg, "user", "DELETE FROM users WHERE id = $1", 1, p, NULL)) != RP_OK)
        goto out;
    rc = keeps_an_admin(r, pg);
out:
    PQclear(res);
    rp_buf_cleanup(&d);
    return rc;
}

static void delete_user(struct dash_req *r)
{
    const char *id = dash_param_uuid(r, "user", "user");
    if (!id)
        return;
    if (is_self(r, id)) {
        dash_error(r, 409, "conflict", "you cannot delete yourself: another administrator can");
        return;
    }
    if (dash_tx(r, delete_tx, (void *)id) == RP_OK)
        dash_reply_empty(r, 204);
}

const struct dash_route dash_routes_users[] = {
    {"GET", "/api/v1/users", DASH_ADMIN, list_users},
    {"POST", "/api/v1/users", DASH_ADMIN, create_user},
    {"GET", "/api/v1/users/{user}", DASH_USER_SESSION, get_user},
    {"PATCH", "/api/v1/users/{user}", DASH_USER_SESSION, patch_user},
    {"DELETE", "/api/v1/users/{user}", DASH_ADMIN, delete_user},
    {NULL, NULL, 0, NULL},
};
