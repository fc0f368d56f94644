/* The dashboard's private header: the request (struct dash_req) every handler receives, the
 * route table, and the helpers handlers use to read input, talk to PostgreSQL and MongoDB,
 * check roles and answer. How a request flows (http.c):
 *   accumulate the body (capped) -> match a route (router.c) -> resolve the caller (auth.c:
 *   session cookie or API key) -> check the route's access (login, admin, project role) and
 *   CSRF for cookie-authenticated writes -> the handler -> reply, metrics, access log.
 * Handlers never return errors: they answer (dash_error and friends set the response) and
 * return; the reply is JSON {"error":{"code","message","field"?,"request_id"}} for 4xx/5xx.
 * A request runs on its connection's thread; nothing in struct dash_req is shared. */
#ifndef DASH_H
#define DASH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>
#include <libpq-fe.h>
#include <mongoc/mongoc.h>

#include "rampart/error.h"
#include "rampart/mem.h"

struct rp_pg;
struct rp_mongo;
struct rp_metrics;
struct rp_service;
struct MHD_Connection;

/* ---- settings (main.c) -------------------------------------------------------------- */
struct dash_config {
    char *pg_url, *migrations_dir, *mongo_url;
    char *admin_email, *admin_password; /* first-run bootstrap; password secret */
    char *secret_key;                   /* 32 bytes, hex or base64: seals secrets at rest */
    char *public_url;                   /* links in mails, the UI's own address */
    char *cookie_secure;                /* auto | always | never */
    int trust_proxy;                    /* believe X-Forwarded-For / -Proto */
    long session_idle_ms, session_max_ms;
    long login_max_failures, login_window_ms;
    long pg_pool, max_body;
    long drain_delay_ms;
    long run_wait_max_ms; /* cap of ?wait on the CI trigger */
};

/* A user as the API shows it (SQL over `users u`): sessions and the users routes alike. */
#define DASH_USER_JSON                                                                             \
    "json_build_object('id', u.id, 'email', u.email, 'name', u.name, 'is_admin', u.is_admin, "     \
    "'disabled', u.disabled, 'created_at', u.created_at)"

/* The final statuses of a run, as an SQL list: `status IN` DASH_FINAL_STATUSES. */
#define DASH_FINAL_STATUSES "('passed', 'failed', 'error')"

/* API keys: "rpk_" + this many random [a-z0-9] + "_" + a random token (auth.c, api_keys.c). */
#define DASH_KEY_PREFIX_LEN 12

/* ---- roles and the caller ------------------------------------------------------------- */
enum dash_role { DASH_ROLE_NONE = 0, DASH_ROLE_VIEWER, DASH_ROLE_EDITOR, DASH_ROLE_OWNER };
const char *dash_role_name(enum dash_role r);
/* "viewer" -> DASH_ROLE_VIEWER ...; DASH_ROLE_NONE for anything else. */
enum dash_role dash_role_parse(const char *s);

enum dash_caller_kind { DASH_ANONYMOUS = 0, DASH_SESSION, DASH_API_KEY };

struct dash_caller {
    enum dash_caller_kind kind;
    char user_id[37];        /* session: the user; API key: "" */
    int is_admin;            /* session of an admin user */
    char api_key_id[37];     /* API key: its id */
    char key_project_id[37]; /* API key: the one project it may touch */
    enum dash_role key_role; /* API key: its role there */
    char csrf_token[65];     /* session: the token writes must echo in X-CSRF-Token */
    char actor[320];         /* "user:alice@example.com" / "api-key:ci (id)" for the audit log */
    enum dash_role role;     /* role in the route's {project}, resolved by the router */
};

/* ---- routes (router.c, routes in the api_*.c files) ------------------------------------ */
enum dash_access {
    DASH_PUBLIC = 0,     /* anyone (login, openapi.json, the UI's files) */
    DASH_LOGGED_IN,      /* a session or an API key */
    DASH_USER_SESSION,   /* a session only (not an API key): user-level settings */
    DASH_ADMIN,          /* a session of an admin user */
    DASH_PROJECT_VIEWER, /* at least viewer in the path's {project} (admins: owner everywhere) */
    DASH_PROJECT_EDITOR,
    DASH_PROJECT_OWNER,
};

struct dash_req;
typedef void (*dash_handler_fn)(struct dash_req *r);

/* One route. `pattern` is a path whose segments are literals or {name} placeholders;
 * {project} must be a project id (UUID), checked with the caller's role before the handler
 * runs. Other placeholders are given as text (check them: dash_param_uuid). */
struct dash_route {
    const char *method;
    const char *pattern;
    enum dash_access access;
    dash_handler_fn fn;
};

/* Every file's table ends with {NULL}. The router walks the list in routes.c. */
extern const struct dash_route dash_routes_session[];
extern const struct dash_route dash_routes_users[];
extern const struct dash_route dash_routes_projects[];
extern const struct dash_route dash_routes_keys[];
extern const struct dash_route dash_routes_environments[];
extern const struct dash_route dash_routes_tests[];
extern const struct dash_route dash_routes_schedules[];
extern const struct dash_route dash_routes_runs[];
extern const struct dash_route dash_routes_ci[];
extern const struct dash_route dash_routes_channels[];
extern const struct dash_route dash_routes_alert_rules[];
extern const struct dash_route dash_routes_maintenance[];
extern const struct dash_route dash_routes_incidents[];
extern const struct dash_route dash_routes_audit[];
extern const struct dash_route dash_routes_static[];
extern const struct dash_route *const dash_route_tables[];

/* POST /api/v1/projects/{project}/channels/{channel}/test[?wait=S] (editor): a route of
 * api_channels.c, served by api_incidents.c next to the ledger whose row it waits for. */
void dash_channel_test(struct dash_req *r);

#define DASH_MAX_PARAMS 4

/* Find the route for `method` and `path` (no query string). Returns the route and fills
 * names/values (values are copies, caller frees) or NULL; `*path_known` is set when some
 * route has this path with another method (405 rather than 404). */
const struct dash_route *dash_route_match(const char *method, const char *path, const char **names,
                                          char **values, size_t *n, int *path_known);

/* The methods served on `path`, as an Allow header value ("GET, HEAD, POST"). */
void dash_route_allowed(const char *path, char *out, size_t cap);

/* ---- the application (http.c) ---------------------------------------------------------- */
struct dash_app {
    struct dash_config *cfg;
    struct rp_service *svc;
    struct dash_pool *pool;
    struct rp_mongo *mongo; /* opened lazily by dash_mongo (thread-safe pool) */
    pthread_mutex_t mongo_lock;
    unsigned char secret_key[32]; /* RP_SECRET_KEY_BYTES */
    int have_secret_key;
    struct dash_metrics *metrics;
};

struct dash_req {
    struct dash_app *app;
    struct MHD_Connection *conn;
    const char *method;
    char *path; /* without the query string */
    const struct dash_route *route;
    const char *param_names[DASH_MAX_PARAMS]; /* point into the pattern: "name}..." */
    char *param_values[DASH_MAX_PARAMS];
    size_t n_params;
    struct rp_buf body;
    int body_too_large;
    size_t received; /* body bytes received, kept or not */
    char request_id[37];
    char ip[64];
    int secure; /* reached over TLS (X-Forwarded-Proto: https from a trusted proxy) */
    struct dash_caller who;
    struct rp_pg *pg;       /* taken from the pool on first use, given back at the end */
    mongoc_client_t *mongo; /* likewise */
    /* the response */
    unsigned status;
    struct rp_buf out;
    const char *content_type;
    char *headers[8][2];
    size_t n_headers;
    int replied;
    int64_t started_ns;
};

/* Query-string argument `name` (decoded by MHD) or NULL. */
const char *dash_arg(struct dash_req *r, const char *name);
/* Request header or NULL. */
const char *dash_header_in(struct dash_req *r, const char *name);
/* Path parameter `name` (e.g. "test") or NULL. */
const char *dash_param(struct dash_req *r, const char *name);
/* The path parameter as a UUID: returns it, or answers 404 "<what> not found" and returns
 * NULL when it is not a UUID (an id that cannot exist). */
const char *dash_param_uuid(struct dash_req *r, const char *name, const char *what);

/* ---- answering (http.c) ------------------------------------------------------------------ */
/* Answer with `len` bytes of JSON (copied). */
void dash_reply_json(struct dash_req *r, unsigned status, const char *json, size_t len);
/* Answer with a document rendered as relaxed extended JSON. */
void dash_reply_bson(struct dash_req *r, unsigned status, const bson_t *doc);
/* Answer with any content (copied). */
void dash_reply_raw(struct dash_req *r, unsigned status, const char *content_type, const void *data,
                    size_t len);
/* An empty answer (204, 202...). */
void dash_reply_empty(struct dash_req *r, unsigned status);
/* An error answer: {"error":{"code":code,"message":...,"field":field?,"request_id":...}}.
 * `field` (may be NULL) names the input member at fault, as a JSON pointer-like path. */
void dash_error(struct dash_req *r, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void dash_error_field(struct dash_req *r, unsigned status, const char *code, const char *field,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Add a response header (copied). At most 8. */
void dash_add_header(struct dash_req *r, const char *name, const char *value);

/* ---- PostgreSQL (db.c) ------------------------------------------------------------------- */
struct dash_pool;
int dash_pool_open(const char *conninfo, long size, struct dash_pool **out,
                   struct rp_error *err) RP_MUST_CHECK;
void dash_pool_close(struct dash_pool *p);
/* Give the request's connection and MongoDB client back (http.c, at the end). */
void dash_db_release(struct dash_req *r);
/* This request's connection (taken from the pool on first use; given back when the request
 * ends). NULL (and a 503 answered) when no server answers. */
struct rp_pg *dash_pg(struct dash_req *r);
/* Run one statement (reads and idempotent writes are re-sent after a reconnect when
 * `idempotent`). On failure answers (400 for data/constraint errors, 409 for a duplicate, 503
 * when the server is unreachable) and returns the RP_E* code; RP_OK and *out otherwise (`out`
 * may be NULL). `what` names the thing for messages ("project"). */
int dash_exec(struct dash_req *r, const char *what, const char *sql, int n,
              const char *const *params, PGresult **out) RP_MUST_CHECK;
/* The common shape of a read: a statement returning at most one row of one JSON column;
 * answers `status` with that JSON, or 404 "<what> not found" when there is no row. */
void dash_query_reply(struct dash_req *r, unsigned status, const char *what, const char *sql, int n,
                      const char *const *params);
/* A transaction: fn runs between BEGIN and COMMIT and is re-run on transient failures (so it
 * must be safe to re-run). fn returns RP_OK to commit; to refuse, it answers (dash_error)
 * and returns an error code, and the transaction rolls back. Returns fn's or the commit's
 * code; on a failure nobody answered, answers 503/500 itself. */
typedef int (*dash_tx_fn)(struct dash_req *r, struct rp_pg *pg, void *ctx);
int dash_tx(struct dash_req *r, dash_tx_fn fn, void *ctx) RP_MUST_CHECK;
/* Inside a dash_tx: run a statement; on failure sets the answer as dash_exec does and returns
 * the code (the transaction then rolls back). Transient errors are left unanswered so that
 * dash_tx retries. */
int dash_tx_exec(struct dash_req *r, struct rp_pg *pg, const char *what, const char *sql, int n,
                 const char *const *params, PGresult **out) RP_MUST_CHECK;
/* Write one audit-log row (inside the caller's transaction when `pg` is in one). `details`
 * is a JSON object text or NULL. */
int dash_audit(struct dash_req *r, struct rp_pg *pg, const char *project_id, const char *action,
               const char *target_type, const char *target_id, const char *details) RP_MUST_CHECK;

/* ---- MongoDB (db.c) ----------------------------------------------------------------------- */
/* The `results` collection for this request (client from the pool, given back at the end).
 * NULL (and 503 answered) when the server does not answer. Caller destroys the collection. */
mongoc_collection_t *dash_results(struct dash_req *r);

/* ---- input (json.c) ------------------------------------------------------------------------ */
/* Parse the body as one JSON object into `doc` (initialized here; bson_destroy it when RP_OK).
 * Answers 400 invalid_json (with the position), 413 or 415 and returns RP_EINVAL otherwise. */
int dash_body(struct dash_req *r, bson_t *doc) RP_MUST_CHECK;
/* Refuse members not in `allowed` (NULL-terminated): 400 unknown_field naming it. */
int dash_only(struct dash_req *r, const bson_t *doc, const char *const *allowed) RP_MUST_CHECK;

#define DASH_REQUIRED 1 /* absent -> 400 missing_field */
#define DASH_NULLABLE 2 /* JSON null accepted: *present = 1, value NULL / unset */

/* Field readers: RP_OK with the value and *present = 1, RP_OK with *present = 0 when absent
 * (and not required), or RP_EINVAL after answering 400 naming the field and what is
 * expected. Strings are borrowed from `doc` and checked as UTF-8 of min..max characters. */
int dash_get_str(struct dash_req *r, const bson_t *doc, const char *name, int flags, size_t min,
                 size_t max, const char **out, int *present) RP_MUST_CHECK;
int dash_get_bool(struct dash_req *r, const bson_t *doc, const char *name, int flags, int *out,
                  int *present) RP_MUST_CHECK;
int dash_get_int(struct dash_req *r, const bson_t *doc, const char *name, int flags, long min,
                 long max, long *out, int *present) RP_MUST_CHECK;
/* An array of strings into a PostgreSQL array literal in `lit` (initialize it: rp_buf_init),
 * each element checked by `check` (may be NULL; returns a reason or NULL when fine), at most
 * `max_items`. */
int dash_get_str_array(struct dash_req *r, const bson_t *doc, const char *name, int flags,
                       size_t max_items, const char *(*check)(const char *s), struct rp_buf *lit,
                       int *present) RP_MUST_CHECK;
/* Check helpers for dash_get_str_array. */
const char *dash_check_uuid(const char *s);
const char *dash_check_tag(const char *s);
const char *dash_check_location(const char *s);

/* The body's "variables" (run-time overrides of a run now or a CI trigger) as JSON text for
 * runs.overrides: checked as the worker loads them, each secret one ({"value": v, "secret":
 * true}) sealed as {"secret": true, "sealed": "v1:..."}. RP_OK with *out (NULL when absent or
 * null; bson_free it), or RP_EINVAL after answering 400 (invalid_field; secret_key_missing when
 * a secret is given and no secret key is configured). */
int dash_read_overrides(struct dash_req *r, const bson_t *body, char **out) RP_MUST_CHECK;

/* Cursor pagination over (time, id) keys: encode/decode an opaque cursor. */
char *dash_cursor_encode(const char *time, const char *id);
int dash_cursor_decode(const char *cursor, char **time, char **id) RP_MUST_CHECK;

/* ---- runs, shared with the CI trigger (api_runs.c, used by api_ci.c) ----------------------- */
/* Query-string argument `name` as an integer lo..hi: RP_OK with *out (`def` when absent), or
 * RP_EINVAL after answering 400 naming it. */
int dash_arg_long(struct dash_req *r, const char *name, long lo, long hi, long def,
                  long *out) RP_MUST_CHECK;
/* Query-string argument `name` as one of `allowed` (NULL-terminated): RP_OK with *out pointing
 * into `allowed` (NULL when absent), or RP_EINVAL after answering 400 listing them. */
int dash_arg_enum(struct dash_req *r, const char *name, const char *const *allowed,
                  const char **out) RP_MUST_CHECK;
/* The result document of run `id` in `coll` (MongoDB): RP_OK with *out (NULL when none is
 * stored; caller bson_destroy()s it), or an error after answering 503. */
int dash_find_result(struct dash_req *r, mongoc_collection_t *coll, const char *id,
                     bson_t **out) RP_MUST_CHECK;

/* ---- where a test definition's problem is (defn_locate.c, used by api_tests.c) ------------- */
/* Answer 400 invalid_definition for the parser's message `msg` about the definition `text`
 * (`len` bytes, as stored): the spot it names as "path" (steps[0].expect.status[1]) and
 * "pointer" (RFC 6901) and, when the definition was sent as a string (`as_text`), its "line"
 * and "column" (from 1, in characters). `at`: the spot's offset when already known, or
 * SIZE_MAX to find it from the words of the message. A spot that cannot be followed to the end
 * is given as the last one found: less precise, never wrong. */
void dash_defn_error(struct dash_req *r, const char *text, size_t len, int as_text, const char *msg,
                     size_t at);
/* In the request body `body` (a JSON object libbson accepted), the text of its "definition"
 * member as sent, when that is an object: 1 with its offset and length, else 0. The first
 * member of that name counts, as for bson_iter_init_find. */
int dash_defn_body_text(const char *body, size_t len, size_t *off, size_t *text_len);
/* The offset of the first word outside strings of `text` that is not JSON (NaN, Infinity:
 * libbson reads them, PostgreSQL's json does not) with its length in *word_len, or SIZE_MAX. */
size_t dash_defn_non_json_word(const char *text, size_t len, size_t *word_len);

/* ---- auth (auth.c) ---------------------------------------------------------------------- */
/* Identify the caller from the session cookie or the Authorization header. Answers 401 for a
 * bad API key and returns RP_EINVAL; an unknown or expired cookie leaves the caller anonymous.
 */
int dash_auth_resolve(struct dash_req *r) RP_MUST_CHECK;
/* Check the route's access rule for the resolved caller, the role in {project} and CSRF;
 * answers 401/403/404 and returns RP_EINVAL when refused. */
int dash_auth_check(struct dash_req *r) RP_MUST_CHECK;
/* Drop a revoked API key from this copy's cache of verified keys (auth.c: other copies keep
 * trusting it for at most 5 s). */
void dash_key_cache_forget(const char *key_id);
/* argon2id (libsodium crypto_pwhash_str, interactive limits; at most a few at once so a login
 * storm cannot exhaust memory). */
int dash_password_hash(const char *password, char out[128]) RP_MUST_CHECK;
int dash_password_verify(const char *hash, const char *password);
/* A password policy check: NULL when acceptable, else the reason. */
const char *dash_password_weak(const char *password);
/* Random token: 32 random bytes, URL-safe base64 without padding (43 chars + NUL). */
void dash_random_token(char out[64]);
/* SHA-256 of `s` as "\\x" + hex (a bytea parameter). */
void dash_sha256_bytea(const char *s, char out[2 + 64 + 1]);
/* Start a session for `user_id`: inserts the row, sets the cookie; fills csrf. */
int dash_session_start(struct dash_req *r, const char *user_id, char csrf[64]) RP_MUST_CHECK;
/* The cookie's token, or NULL. */
const char *dash_session_cookie(struct dash_req *r);
/* Clear the cookie in the response. */
void dash_session_clear_cookie(struct dash_req *r);
/* Seal a secret text with the secret key (XChaCha20-Poly1305 via crypto_secretbox_easy):
 * "v1:" + base64(nonce || box). Caller frees. NULL when no key is configured. */
char *dash_seal(struct dash_app *app, const char *plain);
/* Bootstrap the first admin from the settings when there is no user at all. */
int dash_bootstrap_admin(struct dash_app *app, struct rp_error *err) RP_MUST_CHECK;

/* ---- the OpenAPI document and embedded files (openapi.c, assets generated by CMake) ----- */
struct dash_asset {
    const char *path; /* "/ui/app.js", "/api/v1/openapi.json" */
    const char *content_type;
    const unsigned char *data;
    size_t len;
};
extern const struct dash_asset dash_assets[];
extern const size_t dash_n_assets;
const struct dash_asset *dash_asset_find(const char *path);

/* ---- metrics (http.c) --------------------------------------------------------------------- */
void dash_metrics_init(struct dash_app *app);
/* Requests in progress (the drain waits for 0). */
long dash_in_flight(void);

#endif
