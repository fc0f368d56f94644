/* /api/v1/session: log in with e-mail and password (argon2id; failures throttled per e-mail
 * and per client address in PostgreSQL, so every dashboard copy counts the same attempts),
 * who am I (with the CSRF token the UI echoes on writes), log out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dash.h"
#include "rampart/log.h"
#include "rampart/pg.h"

/* A valid argon2id string of a random password: verified against when the e-mail is unknown,
 * so a wrong e-mail takes as long as a wrong password. */
static char dummy_hash[128];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void make_dummy(void)
{
    char pw[64];
    dash_random_token(pw);
    if (dash_password_hash(pw, dummy_hash) != RP_OK)
        dummy_hash[0] = '\0';
}

/* Seconds until the caller may try again, 0 when not throttled. */
static int throttled(struct dash_req *r, const char *email_key, const char *ip_key, long *wait_s)
{
    char max[24], window[24];
    snprintf(max, sizeof(max), "%ld", r->app->cfg->login_max_failures);
    snprintf(window, sizeof(window), "%ld", r->app->cfg->login_window_ms);
    static const char sql[] =
        "SELECT COALESCE(max(ceil(extract(epoch FROM window_start "
        "         + $4::bigint * interval '1 millisecond' - now()))), 0)::bigint "
        "FROM login_throttle WHERE key IN ($1, $2) AND failures >= $3::int "
        "  AND window_start > now() - $4::bigint * interval '1 millisecond'";
    const char *p[4] = {email_key, ip_key, max, window};
    PGresult *res = NULL;
    if (dash_exec(r, "login", sql, 4, p, &res) != RP_OK)
        return RP_EIO;
    *wait_s = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return RP_OK;
}

static void count_failure(struct dash_req *r, const char *email_key, const char *ip_key)
{
    char window[24];
    snprintf(window, sizeof(window), "%ld", r->app->cfg->login_window_ms);
    static const char sql[] =
        "INSERT INTO login_throttle AS t (key, failures, window_start) "
        "SELECT k, 1, now() FROM unnest(ARRAY[$1, $2]) AS k "
        "ON CONFLICT (key) DO UPDATE SET "
        "  failures = CASE WHEN t.window_start <= now() - $3::bigint * interval '1 millisecond' "
        "                  THEN 1 ELSE t.failures + 1 END, "
        "  window_start = CASE WHEN t.window_start <= now() - $3::bigint * interval '1 "
        "millisecond' "
        "                  THEN now() ELSE t.window_start END";
    const char *p[3] = {email_key, ip_key, window};
    struct rp_pg *pg = dash_pg(r);
    struct rp_error e = {0};
    if (pg && rp_pg_exec(pg, sql, 3, p, NULL, &e) != RP_OK)
        rp_warn("login throttle: %s", e.msg);
}

static void login(struct dash_req *r)
{
    bson_t body;
    if (dash_body(r, &body) != RP_OK)
        return;
    static const char *const allowed[] = {"email", "password", NULL};
    const char *email = NULL, *password = NULL;
    if (dash_only(r, &body, allowed) != RP_OK ||
        dash_get_str(r, &body, "email", DASH_REQUIRED, 3, 254, &email, NULL) != RP_OK ||
        dash_get_str(r, &body, "password", DASH_REQUIRED, 1, 1024, &password, NULL) != RP_OK)
        goto out;
    char *lower = rp_xstrdup(email);
    for (char *c = lower; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    char *email_key = rp_xasprintf("email:%s", lower);
    char *ip_key = rp_xasprintf("ip:%s", r->ip);
    long wait_s = 0;
    PGresult *res = NULL;
    if (throttled(r, email_key, ip_key, &wait_s) != RP_OK)
        goto done;
    if (wait_s > 0) {
        char s[24];
        snprintf(s, sizeof(s), "%ld", wait_s);
        dash_add_header(r, "Retry-After", s);
        dash_error(r, 429, "too_many_attempts",
                   "too many failed logins for this account or address; try again in %ld s",
                   wait_s);
        goto done;
    }
    const char *p[1] = {lower};
    if (dash_exec(r, "user",
                  "SELECT id, password_hash, disabled FROM users WHERE email = lower($1)", 1, p,
                  &res) != RP_OK)
        goto done;
    int found = PQntuples(res) == 1;
    pthread_once(&dummy_once, make_dummy);
    int ok = dash_password_verify(found ? PQgetvalue(res, 0, 1) : dummy_hash, password) && found &&
             PQgetvalue(res, 0, 2)[0] != 't';
    if (!ok) {
        count_failure(r, email_key, ip_key);
        dash_error(r, 401, "invalid_credentials", "wrong e-mail or password");
        goto done;
    }
    char user_id[37], csrf[64];
    snprintf(user_id, sizeof(user_id), "%s", PQgetvalue(res, 0, 0));
    if (crypto_pwhash_str_needs_rehash(PQgetvalue(res, 0, 1), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                       crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        char hash[128];
        const char *up[2] = {user_id, hash};
        if (dash_password_hash(password, hash) == RP_OK &&
            dash_exec(r, "user", "UPDATE users SET password_hash = $2 WHERE id = $1", 2, up,
                      NULL) != RP_OK)
            goto done;
    }
    const char *dp[1] = {email_key};
    if (dash_exec(r, "login", "DELETE FROM login_throttle WHERE key = $1", 1, dp, NULL) != RP_OK)
        goto done;
    if (dash_session_start(r, user_id, csrf) != RP_OK)
        goto done;
    struct rp_pg *pg = dash_pg(r);
    if (!pg || dash_audit(r, pg, NULL, "session.login", "user", user_id, NULL) != RP_OK) {
        if (!r->replied)
            dash_error(r, 503, "unavailable", "the database is unavailable; retry");
        goto done;
    }
    PQclear(res);
    res = NULL;
    static const char sql[] =
        "SELECT json_build_object('user', " DASH_USER_JSON ", 'csrf_token', $2::text) "
        "FROM users u WHERE u.id = $1";
    const char *sp[2] = {user_id, csrf};
    dash_query_reply(r, 201, "user", sql, 2, sp);
done:
    PQclear(res);
    free(lower);
    free(email_key);
    free(ip_key);
out:
    bson_destroy(&body);
}

static void whoami(struct dash_req *r)
{
    if (r->who.kind == DASH_API_KEY) {
        static const char sql[] =
            "SELECT json_build_object('api_key', json_build_object('id', k.id, 'name', k.name, "
            "'project_id', k.project_id, 'role', k.role)) FROM api_keys k WHERE k.id = $1";
        const char *p[1] = {r->who.api_key_id};
        dash_query_reply(r, 200, "API key", sql, 1, p);
        return;
    }
    static const char sql[] = "SELECT json_build_object('user', " DASH_USER_JSON
                              ", 'csrf_token', $2::text) FROM users u WHERE u.id = $1";
    const char *p[2] = {r->who.user_id, r->who.csrf_token};
    dash_query_reply(r, 200, "user", sql, 2, p);
}

static void logout(struct dash_req *r)
{
    const char *cookie = dash_session_cookie(r);
    if (r->who.kind == DASH_SESSION && cookie) {
        char hash[67];
        dash_sha256_bytea(cookie, hash);
        const char *p[1] = {hash};
        if (dash_exec(r, "session", "DELETE FROM sessions WHERE token_hash = $1::bytea", 1, p,
                      NULL) != RP_OK)
            return;
    }
    dash_session_clear_cookie(r);
    dash_reply_empty(r, 204);
}

const struct dash_route dash_routes_session[] = {
    {"POST", "/api/v1/session", DASH_PUBLIC, login},
    {"GET", "/api/v1/session", DASH_LOGGED_IN, whoami},
    {"DELETE", "/api/v1/session", DASH_USER_SESSION, logout},
    {NULL, NULL, 0, NULL},
};
