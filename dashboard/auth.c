/* Who is calling and may they: sessions (a random token in an HttpOnly cookie; PostgreSQL
 * keeps only its SHA-256, so any dashboard copy serves any session and a stolen table opens
 * none), API keys for CI (Authorization: Bearer rpk_<prefix>_<secret>, bound to one project
 * and role), the access rule of each route (login, admin, project role; a project the caller
 * is not a member of answers 404, so its existence is not revealed), CSRF for
 * cookie-authenticated writes (a per-session token echoed in X-CSRF-Token), argon2id password
 * hashing (libsodium, interactive limits, a few at once), and sealing of secrets at rest. */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>
#include <sodium.h>

#include "dash.h"
#include "rampart/job.h"
#include "rampart/log.h"
#include "rampart/pg.h"
#include "rampart/secret.h"

#define COOKIE_NAME "rampart_session"
#define MAX_HASHING 4 /* argon2id at 64 MiB each: at most this many at once */

const char *dash_role_name(enum dash_role r)
{
    switch (r) {
    case DASH_ROLE_VIEWER:
        return "viewer";
    case DASH_ROLE_EDITOR:
        return "editor";
    case DASH_ROLE_OWNER:
        return "owner";
    default:
        return "none";
    }
}

enum dash_role dash_role_parse(const char *s)
{
    if (!s)
        return DASH_ROLE_NONE;
    if (strcmp(s, "viewer") == 0)
        return DASH_ROLE_VIEWER;
    if (strcmp(s, "editor") == 0)
        return DASH_ROLE_EDITOR;
    if (strcmp(s, "owner") == 0)
        return DASH_ROLE_OWNER;
    return DASH_ROLE_NONE;
}

/* ---- tokens, hashes, passwords --------------------------------------------------------- */

void dash_random_token(char out[64])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(out, 64, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

void dash_sha256_bytea(const char *s, char out[2 + 64 + 1])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)s, strlen(s));
    out[0] = '\\';
    out[1] = 'x';
    sodium_bin2hex(out + 2, 65, h, sizeof(h));
}

static sem_t hashing;
static pthread_once_t hashing_once = PTHREAD_ONCE_INIT;

static void hashing_init(void)
{
    sem_init(&hashing, 0, MAX_HASHING);
}

int dash_password_hash(const char *password, char out[128])
{
    pthread_once(&hashing_once, hashing_init);
    sem_wait(&hashing);
    int rc =
        crypto_pwhash_str_alg(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13);
    sem_post(&hashing);
    return rc == 0 ? RP_OK : RP_ENOMEM;
}

int dash_password_verify(const char *hash, const char *password)
{
    pthread_once(&hashing_once, hashing_init);
    sem_wait(&hashing);
    int ok = crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
    sem_post(&hashing);
    return ok;
}

const char *dash_password_weak(const char *password)
{
    size_t chars = 0;
    for (const char *p = password; *p; p = bson_utf8_next_char(p))
        chars++;
    if (chars < 10)
        return "a password needs at least 10 characters";
    if (strlen(password) > 1024)
        return "a password has at most 1024 bytes";
    return NULL;
}

char *dash_seal(struct dash_app *app, const char *plain)
{
    if (!app->have_secret_key)
        return NULL;
    return rp_secret_seal(app->secret_key, plain, strlen(plain));
}

/* ---- sessions --------------------------------------------------------------------------- */

const char *dash_session_cookie(struct dash_req *r)
{
    return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, COOKIE_NAME);
}

void dash_session_clear_cookie(struct dash_req *r)
{
    char c[160];
    snprintf(c, sizeof(c), COOKIE_NAME "=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0%s",
             r->secure ? "; Secure" : "");
    dash_add_header(r, "Set-Cookie", c);
}

int dash_session_start(struct dash_req *r, const char *user_id, char csrf[64])
{
    static const char sql[] =
        "INSERT INTO sessions (token_hash, user_id, csrf_token, idle_expires_at, expires_at, "
        "                      user_agent, ip) "
        "VALUES ($1::bytea, $2, $3, now() + $4::bigint * interval '1 millisecond', "
        "        now() + $5::bigint * interval '1 millisecond', left($6, 300), $7)";
    char token[64], hash[67], idle[24], max[24];
    dash_random_token(token);
    dash_random_token(csrf);
    dash_sha256_bytea(token, hash);
    snprintf(idle, sizeof(idle), "%ld", r->app->cfg->session_idle_ms);
    snprintf(max, sizeof(max), "%ld", r->app->cfg->session_max_ms);
    const char *ua = dash_header_in(r, "User-Agent");
    const char *p[7] = {hash, user_id, csrf, idle, max, ua ? ua : "", r->ip};
    if (dash_exec(r, "session", sql, 7, p, NULL) != RP_OK)
        return RP_EIO;
    char cookie[200];
    snprintf(cookie, sizeof(cookie),
             COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%ld%s", token,
             r->app->cfg->session_max_ms / 1000, r->secure ? "; Secure" : "");
    dash_add_header(r, "Set-Cookie", cookie);
    return RP_OK;
}

/* ---- resolving the caller ------------------------------------------------------------------ */

/* Verified API keys, for a few seconds: a CI job or a dashboard polls with the same key many
 * times a second, and the lookup was a quarter of the database's work per API request
 * (bench/README.md). Direct-mapped by the token's hash. A key revoked through this copy is
 * forgotten at once (dash_key_cache_forget); on other copies within KEY_CACHE_TTL_MS. */
#define KEY_CACHE_SLOTS  256
#define KEY_CACHE_TTL_MS 5000

struct key_entry {
    char hash[67];
    char id[37], project[37], name[101];
    enum dash_role role;
    int64_t until_ms; /* min(cached + TTL, the key's own expiry) */
};

static struct key_entry key_cache[KEY_CACHE_SLOTS];
static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t key_slot(const char *hash)
{
    return (size_t)strtoul((char[]){hash[2], hash[3], '\0'}, NULL, 16) % KEY_CACHE_SLOTS;
}

void dash_key_cache_forget(const char *key_id)
{
    pthread_mutex_lock(&key_lock);
    for (size_t i = 0; i < KEY_CACHE_SLOTS; i++)
        if (strcmp(key_cache[i].id, key_id) == 0)
            memset(&key_cache[i], 0, sizeof(key_cache[i]));
    pthread_mutex_unlock(&key_lock);
}

static void key_caller(struct dash_req *r, const struct key_entry *k)
{
    r->who.kind = DASH_API_KEY;
    snprintf(r->who.api_key_id, sizeof(r->who.api_key_id), "%s", k->id);
    snprintf(r->who.key_project_id, sizeof(r->who.key_project_id), "%s", k->project);
    r->who.key_role = k->role;
    snprintf(r->who.actor, sizeof(r->who.actor), "api-key:%s (%s)", k->name, k->id);
}

static int resolve_key(struct dash_req *r, const char *token)
{
    /* rpk_<12 prefix chars>_<secret> */
    size_t n = strlen(token);
    if (n < 4 + DASH_KEY_PREFIX_LEN + 2 || n > 200 || strncmp(token, "rpk_", 4) != 0 ||
        token[4 + DASH_KEY_PREFIX_LEN] != '_') {
        dash_error(r, 401, "invalid_api_key",
                   "the Authorization header must be \"Bearer rpk_...\" with an API key made "
                   "in the project's settings");
        return RP_EINVAL;
    }
    char prefix[DASH_KEY_PREFIX_LEN + 1], hash[67];
    memcpy(prefix, token + 4, DASH_KEY_PREFIX_LEN);
    prefix[DASH_KEY_PREFIX_LEN] = '\0';
    dash_sha256_bytea(token, hash);
    struct key_entry k;
    size_t slot = key_slot(hash);
    int64_t now = rp_now_unix_ms();
    pthread_mutex_lock(&key_lock);
    k = key_cache[slot];
    pthread_mutex_unlock(&key_lock);
    if (k.until_ms > now && strcmp(k.hash, hash) == 0) {
        key_caller(r, &k);
        return RP_OK;
    }
    static const char sql[] =
        "WITH k AS (SELECT id, project_id, role, name, expires_at FROM api_keys "
        "           WHERE prefix = $1 AND token_hash = $2::bytea AND revoked_at IS NULL "
        "             AND (expires_at IS NULL OR expires_at > now())), "
        "u AS (UPDATE api_keys a SET last_used_at = now() FROM k WHERE a.id = k.id "
        "        AND (a.last_used_at IS NULL OR a.last_used_at < now() - interval '1 minute')) "
        "SELECT id, project_id, role, name, (extract(epoch FROM expires_at) * 1000)::bigint "
        "FROM k";
    const char *p[2] = {prefix, hash};
    PGresult *res = NULL;
    if (dash_exec(r, "API key", sql, 2, p, &res) != RP_OK)
        return RP_EIO;
    if (PQntuples(res) != 1) {
        PQclear(res);
        dash_error(r, 401, "invalid_api_key", "this API key is unknown, revoked or expired");
        return RP_EINVAL;
    }
    memset(&k, 0, sizeof(k));
    snprintf(k.hash, sizeof(k.hash), "%s", hash);
    snprintf(k.id, sizeof(k.id), "%s", PQgetvalue(res, 0, 0));
    snprintf(k.project, sizeof(k.project), "%s", PQgetvalue(res, 0, 1));
    k.role = dash_role_parse(PQgetvalue(res, 0, 2));
    snprintf(k.name, sizeof(k.name), "%.100s", PQgetvalue(res, 0, 3));
    k.until_ms = now + KEY_CACHE_TTL_MS;
    if (!PQgetisnull(res, 0, 4) && strtoll(PQgetvalue(res, 0, 4), NULL, 10) < k.until_ms)
        k.until_ms = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    PQclear(res);
    pthread_mutex_lock(&key_lock);
    key_cache[slot] = k;
    pthread_mutex_unlock(&key_lock);
    key_caller(r, &k);
    return RP_OK;
}

static int resolve_session(struct dash_req *r, const char *token)
{
    if (strlen(token) != 43)
        return RP_OK; /* not one of ours: anonymous */
    char hash[67], idle[24];
    dash_sha256_bytea(token, hash);
    snprintf(idle, sizeof(idle), "%ld", r->app->cfg->session_idle_ms);
    /* keep the idle deadline moving while the session is used, at most once a minute */
    static const char sql[] =
        "WITH s AS (SELECT s.token_hash, s.user_id, s.csrf_token, s.last_seen_at, s.expires_at, "
        "                  u.email, u.is_admin "
        "           FROM sessions s JOIN users u ON u.id = s.user_id "
        "           WHERE s.token_hash = $1::bytea AND s.expires_at > now() "
        "             AND s.idle_expires_at > now() AND NOT u.disabled), "
        "t AS (UPDATE sessions x SET last_seen_at = now(), "
        "        idle_expires_at = least(s.expires_at, "
        "                                now() + $2::bigint * interval '1 millisecond') "
        "      FROM s WHERE x.token_hash = s.token_hash "
        "        AND s.last_seen_at < now() - interval '1 minute') "
        "SELECT user_id, csrf_token, email, is_admin FROM s";
    const char *p[2] = {hash, idle};
    PGresult *res = NULL;
    if (dash_exec(r, "session", sql, 2, p, &res) != RP_OK)
        return RP_EIO;
    if (PQntuples(res) == 1) {
        r->who.kind = DASH_SESSION;
        snprintf(r->who.user_id, sizeof(r->who.user_id), "%s", PQgetvalue(res, 0, 0));
        snprintf(r->who.csrf_token, sizeof(r->who.csrf_token), "%s", PQgetvalue(res, 0, 1));
        snprintf(r->who.actor, sizeof(r->who.actor), "user:%.300s", PQgetvalue(res, 0, 2));
        r->who.is_admin = PQgetvalue(res, 0, 3)[0] == 't';
    }
    PQclear(res);
    return RP_OK;
}

int dash_auth_resolve(struct dash_req *r)
{
    if (r->route->access == DASH_PUBLIC)
        return RP_OK; /* login, the OpenAPI document: nobody needs to be identified */
    const char *authz = dash_header_in(r, "Authorization");
    if (authz && *authz) {
        if (strncasecmp(authz, "Bearer ", 7) != 0) {
            dash_error(r, 401, "invalid_api_key",
                       "the Authorization header must be \"Bearer rpk_...\"");
            return RP_EINVAL;
        }
        return resolve_key(r, authz + 7);
    }
    const char *cookie = dash_session_cookie(r);
    return cookie ? resolve_session(r, cookie) : RP_OK;
}

static int csrf_ok(struct dash_req *r)
{
    if (r->who.kind != DASH_SESSION)
        return 1; /* API keys are not sent by browsers on their own */
    const char *m = r->method;
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0)
        return 1;
    const char *t = dash_header_in(r, "X-CSRF-Token");
    size_t n = strlen(r->who.csrf_token);
    return t && strlen(t) == n && sodium_memcmp(t, r->who.csrf_token, n) == 0;
}

static int project_role(struct dash_req *r, const char *project_id)
{
    if (r->who.kind == DASH_API_KEY) {
        r->who.role =
            strcmp(project_id, r->who.key_project_id) == 0 ? r->who.key_role : DASH_ROLE_NONE;
        return RP_OK;
    }
    if (r->who.is_admin) {
        /* owner of every project that exists (a made-up id is 404 like for anyone) */
        const char *p[1] = {project_id};
        PGresult *res = NULL;
        if (dash_exec(r, "project", "SELECT 1 FROM projects WHERE id = $1", 1, p, &res) != RP_OK)
            return RP_EIO;
        r->who.role = PQntuples(res) == 1 ? DASH_ROLE_OWNER : DASH_ROLE_NONE;
        PQclear(res);
        return RP_OK;
    }
    static const char sql[] = "SELECT role FROM memberships WHERE project_id = $1 AND user_id = $2";
    const char *p[2] = {project_id, r->who.user_id};
    PGresult *res = NULL;
    if (dash_exec(r, "membership", sql, 2, p, &res) != RP_OK)
        return RP_EIO;
    r->who.role = PQntuples(res) == 1 ? dash_role_parse(PQgetvalue(res, 0, 0)) : DASH_ROLE_NONE;
    PQclear(res);
    return RP_OK;
}

int dash_auth_check(struct dash_req *r)
{
    enum dash_access a = r->route->access;
    if (a == DASH_PUBLIC)
        return RP_OK;
    if (r->who.kind == DASH_ANONYMOUS) {
        dash_error(r, 401, "unauthenticated",
                   "log in first (POST /api/v1/session) or send an API key "
                   "(Authorization: Bearer rpk_...)");
        return RP_EINVAL;
    }
    if (!csrf_ok(r)) {
        dash_error(r, 403, "csrf_failed",
                   "a change made with a session cookie must carry the session's CSRF token in "
                   "the X-CSRF-Token header (GET /api/v1/session returns it)");
        return RP_EINVAL;
    }
    if (a == DASH_LOGGED_IN)
        return RP_OK;
    if (a == DASH_USER_SESSION || a == DASH_ADMIN) {
        if (r->who.kind != DASH_SESSION) {
            dash_error(r, 403, "forbidden", "an API key cannot do this; log in as a user");
            return RP_EINVAL;
        }
        if (a == DASH_ADMIN && !r->who.is_admin) {
            dash_error(r, 403, "forbidden", "only an administrator can do this");
            return RP_EINVAL;
        }
        return RP_OK;
    }
    const char *pid = dash_param_uuid(r, "project", "project");
    if (!pid)
        return RP_EINVAL;
    if (project_role(r, pid) != RP_OK)
        return RP_EIO;
    enum dash_role need = a == DASH_PROJECT_OWNER    ? DASH_ROLE_OWNER
                          : a == DASH_PROJECT_EDITOR ? DASH_ROLE_EDITOR
                                                     : DASH_ROLE_VIEWER;
    if (r->who.role == DASH_ROLE_NONE) {
        dash_error(r, 404, "not_found", "project not found");
        return RP_EINVAL;
    }
    if (r->who.role < need) {
        dash_error(r, 403, "forbidden", "this needs the %s role in the project; you are %s",
                   dash_role_name(need), dash_role_name(r->who.role));
        return RP_EINVAL;
    }
    return RP_OK;
}

/* ---- first run ------------------------------------------------------------------------------- */

int dash_bootstrap_admin(struct dash_app *app, struct rp_error *err)
{
    const char *email = app->cfg->admin_email, *password = app->cfg->admin_password;
    struct rp_pg *pg = NULL;
    PGresult *res = NULL;
    int rc = rp_pg_open(app->cfg->pg_url, &pg, err);
    if (rc != RP_OK)
        goto out;
    rc = rp_pg_exec_idempotent(pg, "SELECT EXISTS (SELECT 1 FROM users)", 0, NULL, &res, err);
    if (rc != RP_OK)
        goto out;
    if (PQgetvalue(res, 0, 0)[0] == 't') {
        rc = RP_OK;
        goto out;
    }
    if (!password || !*password) {
        rp_warn("there is no user yet: set RAMPART_ADMIN_PASSWORD (and RAMPART_ADMIN_EMAIL) to "
                "create the first administrator");
        rc = RP_OK;
        goto out;
    }
    const char *weak = dash_password_weak(password);
    if (weak) {
        rc = rp_error_set(err, RP_EINVAL, "RAMPART_ADMIN_PASSWORD: %s", weak);
        goto out;
    }
    char hash[128];
    if (dash_password_hash(password, hash) != RP_OK) {
        rc = rp_error_set(err, RP_ENOMEM, "argon2id hashing failed (out of memory?)");
        goto out;
    }
    char *lower = rp_xstrdup(email);
    for (char *c = lower; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    const char *p[2] = {lower, hash};
    PQclear(res);
    res = NULL;
    /* two copies starting together: the unique e-mail makes one of them a no-op */
    rc = rp_pg_exec_idempotent(pg,
                               "INSERT INTO users (email, name, password_hash, is_admin) "
                               "VALUES (lower($1), 'Administrator', $2, true) "
                               "ON CONFLICT (email) DO NOTHING",
                               2, p, NULL, err);
    if (rc == RP_OK)
        rp_info("created the first administrator %s (from RAMPART_ADMIN_EMAIL)", lower);
    free(lower);
out:
    PQclear(res);
    rp_pg_close(pg);
    return rc;
}
