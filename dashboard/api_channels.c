/* /api/v1/projects/{project}/channels: where alerts go (issue #7), read by the mailer and the
 * connector. Viewers read; editors (and owners) write; every change writes an audit row in its
 * transaction, naming what changed but never a secret value. Channel kinds are a table
 * (`kinds`: one entry per kind with its validators, below); secrets are sealed at rest and
 * write-only. Deleting a channel also takes it out of the alert rules (api_alert_rules.c).
 * "Send a test notification" (POST .../channels/{channel}/test) is routed here and served by
 * api_incidents.c, which reads the notification ledger it waits on.
 * The input readers shared with rules and windows are in alerts_input.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <sodium.h>

#include "alerts_int.h"
#include "rampart/pg.h"

#define MAX_MEMBERS 64 /* members of any object inside a config */
#define MAX_HEADERS 32 /* custom HTTP headers of one call */

/* ---- small checks (each returns NULL when fine, else the reason) ------------------------- */

static int bad_hostname(const char *h)
{
    size_t n = strlen(h), label = 0;
    if (n < 1 || n > 253)
        return 1;
    for (size_t i = 0; i <= n; i++) {
        char c = h[i];
        if (c == '.' || c == '\0') {
            if (label < 1 || label > 63 || h[i - 1] == '-')
                return 1;
            label = 0;
        } else if (dash_is_alnum(c) || (c == '-' && label > 0)) {
            label++;
        } else {
            return 1;
        }
    }
    return 0;
}

static const char *check_email(const char *s)
{
    static const char why[] = "must be an e-mail address such as ops@example.com";
    const char *at = strrchr(s, '@');
    if (!at || at == s || strlen(s) > 254 || at - s > 64 || s[0] == '.' || at[-1] == '.')
        return why;
    for (const char *p = s; p < at; p++) /* dot-atom of RFC 5322 atext */
        if (!(dash_is_alnum(*p) || strchr("!#$%&'*+-/=?^_`{|}~", *p) || (*p == '.' && p[1] != '.')))
            return why;
    return bad_hostname(at + 1) ? why : NULL;
}

/* An http(s) URL with a host (parsed by libcurl, which will use it); credentials in the URL
 * are refused where the URL is not secret. */
static const char *url_reason(const char *s, int allow_credentials)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return "a URL has no spaces or control characters";
    size_t scheme = strncasecmp(s, "http://", 7) == 0    ? 7
                    : strncasecmp(s, "https://", 8) == 0 ? 8
                                                         : 0;
    if (!scheme)
        return "must be an http:// or https:// URL";
    if (s[scheme] == '/')
        return "has no host"; /* libcurl would skip a third slash */
    CURLU *u = curl_url();
    if (!u)
        abort(); /* out of memory */
    const char *why = NULL;
    char *host = NULL, *user = NULL, *password = NULL;
    if (curl_url_set(u, CURLUPART_URL, s, 0) != CURLUE_OK)
        why = "is not a valid URL";
    else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host)
        why = "has no host";
    else if (!allow_credentials && (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
                                    curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK))
        why = "must not hold credentials (user:password@): put them in the secrets";
    curl_free(host);
    curl_free(user);
    curl_free(password);
    curl_url_cleanup(u);
    return why;
}

static const char *check_url(const char *s)
{
    return url_reason(s, 0);
}

static const char *check_secret_url(const char *s)
{
    return url_reason(s, 1);
}

static const char *check_header_name(const char *s)
{
    static const char *const reserved[] = {
        "host", "content-length", "transfer-encoding", "connection", "upgrade",
        "te",   "trailer",        "keep-alive",        "expect",     NULL};
    size_t n = strlen(s);
    if (n < 1 || n > 100)
        return "a header name has 1 to 100 characters";
    for (const char *p = s; *p; p++)
        if (!(dash_is_alnum(*p) || strchr("!#$%&'*+-.^_`|~", *p)))
            return "a header name holds letters, digits and !#$%&'*+-.^_`|~ only";
    for (size_t i = 0; reserved[i]; i++)
        if (strcasecmp(s, reserved[i]) == 0)
            return "this header is set by the sender itself";
    return NULL;
}

static const char *check_no_controls(const char *s)
{
    for (const char *p = s; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return "must not contain control characters (CR, LF...)";
    return NULL;
}

static const char *check_alnum(const char *s)
{
    for (const char *p = s; *p; p++)
        if (!dash_is_alnum(*p))
            return "holds letters and digits only";
    return NULL;
}

static const char *check_visible_ascii(const char *s)
{
    for (const char *p = s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return "holds visible ASCII characters only (no spaces)";
    return NULL;
}

DASH_ENUM_CHECK(check_post_put, "must be POST or PUT", "POST", "PUT")
DASH_ENUM_CHECK(check_call_method, "must be POST, PUT, PATCH or DELETE", "POST", "PUT", "PATCH",
                "DELETE")
DASH_ENUM_CHECK(check_severity, "must be critical, error, warning or info", "critical", "error",
                "warning", "info")
DASH_ENUM_CHECK(check_region, "must be us or eu", "us", "eu")
DASH_ENUM_CHECK(check_priority, "must be P1, P2, P3, P4 or P5", "P1", "P2", "P3", "P4", "P5")

/* ---- HTTP headers of a webhook or a status-page call ------------------------------------- */

/* {"Header-Name": "value", ...}: HTTP header names and values without CR/LF. */
static int headers_value(struct dash_req *r, const bson_iter_t *at, const char *field)
{
    bson_t doc;
    bson_iter_t it;
    char item[260];
    if (dash_iter_doc(r, at, field, &doc) != RP_OK ||
        dash_members_ok(r, &doc, field, NULL, 1, MAX_HEADERS) != RP_OK ||
        !bson_iter_init(&it, &doc))
        return RP_EINVAL;
    while (bson_iter_next(&it)) {
        const char *name = bson_iter_key(&it), *why = check_header_name(name);
        dash_field_path(item, sizeof(item), field, name);
        if (why)
            return dash_refuse(r, item, "%s", why);
        if (dash_str_value(r, &it, item, 0, 4096, check_no_controls, NULL) != RP_OK)
            return RP_EINVAL;
    }
    return RP_OK;
}

static int sub_headers(struct dash_req *r, const bson_t *doc, const char *prefix, const char *key)
{
    bson_iter_t it;
    char field[200];
    dash_field_path(field, sizeof(field), prefix, key);
    int f = dash_member(r, doc, prefix, key, 0, &it);
    return f < 0 ? RP_EINVAL : f == 0 ? RP_OK : headers_value(r, &it, field);
}

/* ---- channel kinds ----------------------------------------------------------------------------
 * A kind is one entry of `kinds`: a validator of its config (members not listed are refused)
 * and its secret members, each with a validator. Adding a kind is adding an entry (and the kind
 * to the channels.kind CHECK in a new migration). Secret values are sealed one member at a
 * time with dash_seal (a string as given; an object, such as webhook headers, as its JSON
 * text) into channels.secrets {"name": "v1:..."}; reads show {"name": {"set": true}} only.
 * PATCH replaces the config as a whole and the secrets member by member: a member given
 * replaces, an absent one is kept, null removes an optional one. */

static const char *const no_members[] = {NULL};

static int config_email(struct dash_req *r, const bson_t *c)
{
    static const char *const allowed[] = {"to", "cc", NULL};
    if (dash_members_ok(r, c, "config", allowed, 0, MAX_MEMBERS) != RP_OK ||
        dash_sub_str_list(r, c, "config", "to", 1, 1, 50, 254, check_email) != RP_OK ||
        dash_sub_str_list(r, c, "config", "cc", 0, 0, 50, 254, check_email) != RP_OK)
        return RP_EINVAL;
    return RP_OK;
}

static int config_webhook(struct dash_req *r, const bson_t *c)
{
    static const char *const allowed[] = {"url", "method", "headers", NULL};
    if (dash_members_ok(r, c, "config", allowed, 0, MAX_MEMBERS) != RP_OK ||
        dash_sub_str(r, c, "config", "url", 1, 8, 2048, check_url) != RP_OK ||
        dash_sub_str(r, c, "config", "method", 0, 3, 4, check_post_put) != RP_OK ||
        sub_headers(r, c, "config", "headers") != RP_OK)
        return RP_EINVAL;
    return RP_OK;
}

static int config_none(struct dash_req *r, const bson_t *c)
{
    return dash_members_ok(r, c, "config", no_members, 0, MAX_MEMBERS);
}

static int config_pagerduty(struct dash_req *r, const bson_t *c)
{
    static const char *const allowed[] = {"severity", NULL};
    if (dash_members_ok(r, c, "config", allowed, 0, MAX_MEMBERS) != RP_OK ||
        dash_sub_str(r, c, "config", "severity", 0, 1, 10, check_severity) != RP_OK)
        return RP_EINVAL;
    return RP_OK;
}

static int config_opsgenie(struct dash_req *r, const bson_t *c)
{
    static const char *const allowed[] = {"region", "priority", NULL};
    if (dash_members_ok(r, c, "config", allowed, 0, MAX_MEMBERS) != RP_OK ||
        dash_sub_str(r, c, "config", "region", 0, 2, 2, check_region) != RP_OK ||
        dash_sub_str(r, c, "config", "priority", 0, 2, 2, check_priority) != RP_OK)
        return RP_EINVAL;
    return RP_OK;
}

/* config.open / config.resolve of a statuspage channel: one HTTP call. */
static int statuspage_call(struct dash_req *r, const bson_t *c, const char *key)
{
    static const char *const allowed[] = {"method", "url", "body_template", NULL};
    bson_iter_t it;
    bson_t call;
    char field[200];
    dash_field_path(field, sizeof(field), "config", key);
    if (dash_member(r, c, "config", key, 1, &it) < 0 ||
        dash_iter_doc(r, &it, field, &call) != RP_OK ||
        dash_members_ok(r, &call, field, allowed, 0, MAX_MEMBERS) != RP_OK ||
        dash_sub_str(r, &call, field, "method", 1, 3, 6, check_call_method) != RP_OK ||
        dash_sub_str(r, &call, field, "url", 1, 8, 2048, check_url) != RP_OK ||
        dash_sub_str(r, &call, field, "body_template", 0, 0, 16384, NULL) != RP_OK)
        return RP_EINVAL;
    return RP_OK;
}

static int config_statuspage(struct dash_req *r, const bson_t *c)
{
    static const char *const allowed[] = {"open", "resolve", NULL};
    if (dash_members_ok(r, c, "config", allowed, 0, MAX_MEMBERS) != RP_OK ||
        statuspage_call(r, c, "open") != RP_OK || statuspage_call(r, c, "resolve") != RP_OK)
        return RP_EINVAL;
    return RP_OK;
}

static int secret_url(struct dash_req *r, const bson_iter_t *it, const char *field)
{
    return dash_str_value(r, it, field, 8, 2048, check_secret_url, NULL);
}

static int secret_hmac(struct dash_req *r, const bson_iter_t *it, const char *field)
{
    return dash_str_value(r, it, field, 16, 1024, check_no_controls, NULL);
}

static int secret_routing_key(struct dash_req *r, const bson_iter_t *it, const char *field)
{
    return dash_str_value(r, it, field, 32, 32, check_alnum, NULL);
}

static int secret_api_key(struct dash_req *r, const bson_iter_t *it, const char *field)
{
    return dash_str_value(r, it, field, 8, 128, check_visible_ascii, NULL);
}

struct secret_spec {
    const char *name;
    int required;
    int (*check)(struct dash_req *r, const bson_iter_t *it, const char *field);
};

struct channel_kind {
    const char *name;
    int (*check_config)(struct dash_req *r, const bson_t *config);
    const struct secret_spec *secrets; /* ends with {NULL} */
};

static const struct secret_spec no_secrets[] = {{NULL, 0, NULL}};
static const struct secret_spec webhook_secrets[] = {
    {"hmac_secret", 0, secret_hmac}, {"headers", 0, headers_value}, {NULL, 0, NULL}};
static const struct secret_spec chat_secrets[] = {{"webhook_url", 1, secret_url}, {NULL, 0, NULL}};
static const struct secret_spec pagerduty_secrets[] = {{"routing_key", 1, secret_routing_key},
                                                       {NULL, 0, NULL}};
static const struct secret_spec opsgenie_secrets[] = {{"api_key", 1, secret_api_key},
                                                      {NULL, 0, NULL}};
static const struct secret_spec statuspage_secrets[] = {{"headers", 0, headers_value},
                                                        {NULL, 0, NULL}};

static const struct channel_kind kinds[] = {
    {"email", config_email, no_secrets},
    {"webhook", config_webhook, webhook_secrets},
    {"slack", config_none, chat_secrets},
    {"mattermost", config_none, chat_secrets},
    {"teams", config_none, chat_secrets},
    {"discord", config_none, chat_secrets},
    {"pagerduty", config_pagerduty, pagerduty_secrets},
    {"opsgenie", config_opsgenie, opsgenie_secrets},
    {"statuspage", config_statuspage, statuspage_secrets},
    {NULL, NULL, NULL},
};

static const struct channel_kind *find_kind(struct dash_req *r, const char *name)
{
    char list[200] = "";
    for (const struct channel_kind *k = kinds; k->name; k++) {
        if (strcmp(k->name, name) == 0)
            return k;
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", k == kinds ? "" : ", ",
                 k->name);
    }
    dash_refuse(r, "kind", "must be one of %s", list);
    return NULL;
}

/* Inserts select the project, so none is made in a project that does not exist. */
static int no_project(struct dash_req *r, PGresult *res)
{
    if (PQntuples(res) == 1)
        return 0;
    PQclear(res);
    dash_error(r, 404, "not_found", "project not found");
    return 1;
}

/* ---- channels ----------------------------------------------------------------------------------
 */

#define CHANNEL_JSON                                                                               \
    "json_build_object('id', c.id, 'name', c.name, 'kind', c.kind, 'config', c.config, "           \
    "'secrets', COALESCE((SELECT jsonb_object_agg(k, jsonb_build_object('set', true)) "            \
    "FROM jsonb_object_keys(c.secrets) k), '{}'::jsonb), 'enabled', c.enabled, "                   \
    "'created_at', c.created_at, 'updated_at', c.updated_at)"

struct channel_in {
    const char *project, *id, *name, *kind, *enabled;
    char *config; /* validated config as JSON text; NULL: keep (PATCH) */
    char *sealed; /* {"name": "v1:..."} to set, JSON text; NULL: none */
    struct dash_names set, removed;
    struct rp_buf removed_lit; /* PostgreSQL text[] literal of `removed` */
    char *details;
    char new_id[37];
};

static void channel_in_cleanup(struct channel_in *in)
{
    free(in->config);
    free(in->sealed);
    free(in->details);
    rp_buf_cleanup(&in->removed_lit);
}

static void reply_channel(struct dash_req *r, unsigned status, const char *project, const char *id)
{
    const char *p[2] = {project, id};
    dash_query_reply(
        r, status, "channel",
        "SELECT " CHANNEL_JSON " FROM channels c WHERE c.project_id = $1 AND c.id = $2", 2, p);
}

/* The body's "config" checked against the kind, as JSON text. Absent: on create an empty object
 * is checked (so required members are named), on PATCH it is kept. */
static int read_config(struct dash_req *r, const bson_t *body, const struct channel_kind *k,
                       int creating, char **out)
{
    bson_iter_t it;
    bson_t cfg = BSON_INITIALIZER;
    int f = dash_member(r, body, "", "config", 0, &it);
    if (f < 0 || (f == 0 && !creating))
        return f < 0 ? RP_EINVAL : RP_OK;
    if (f == 1 && dash_iter_doc(r, &it, "config", &cfg) != RP_OK)
        return RP_EINVAL;
    if (k->check_config(r, &cfg) != RP_OK)
        return RP_EINVAL;
    *out = dash_json_text(&cfg);
    return RP_OK;
}

/* The body's "secrets": checked against the kind's secret members, each value sealed. On
 * create every required member must be there; on PATCH null removes an optional member. */
static int read_secrets(struct dash_req *r, const bson_t *body, const struct channel_kind *k,
                        int creating, struct channel_in *in)
{
    const char *allowed[8] = {NULL};
    size_t n = 0;
    for (const struct secret_spec *s = k->secrets; s->name && n < 7; s++)
        allowed[n++] = s->name;
    bson_iter_t it;
    bson_t sec = BSON_INITIALIZER;
    int f = dash_member(r, body, "", "secrets", 0, &it);
    if (f < 0 || (f == 1 && dash_iter_doc(r, &it, "secrets", &sec) != RP_OK) ||
        dash_members_ok(r, &sec, "secrets", allowed, 0, MAX_MEMBERS) != RP_OK)
        return RP_EINVAL;
    char field[200];
    for (const struct secret_spec *s = k->secrets; s->name; s++) {
        dash_field_path(field, sizeof(field), "secrets", s->name);
        if (!bson_iter_init_find(&it, &sec, s->name)) {
            if (creating && s->required) {
                dash_error_field(r, 400, "missing_field", field, "\"%s\" is required", field);
                return RP_EINVAL;
            }
        } else if (BSON_ITER_HOLDS_NULL(&it)) {
            if (creating || s->required)
                return dash_refuse(r, field, "%s",
                                   creating ? "must not be null (leave it out instead)"
                                            : "is required and cannot be removed: give a new value "
                                              "to replace it");
            dash_names_add(&in->removed, s->name);
        } else if (s->check(r, &it, field) != RP_OK) {
            return RP_EINVAL;
        } else {
            dash_names_add(&in->set, s->name);
        }
    }
    rp_buf_init(&in->removed_lit, 0);
    (void)rp_buf_append(&in->removed_lit, "{", 1);
    for (size_t i = 0; i < in->removed.n; i++)
        rp_pg_array_add(&in->removed_lit, in->removed.v[i]);
    (void)rp_buf_append(&in->removed_lit, "}", 1);
    if (in->set.n == 0)
        return RP_OK;
    if (!r->app->have_secret_key) {
        dash_error_field(r, 400, "secret_key_missing", "secrets",
                         "secrets cannot be saved: the dashboard has no RAMPART_SECRET_KEY (ask "
                         "the operator to set it on every copy)");
        return RP_EINVAL;
    }
    bson_t out = BSON_INITIALIZER;
    for (size_t i = 0; i < in->set.n; i++) {
        bson_t sub;
        char *plain = NULL, *sealed = NULL;
        if (!bson_iter_init_find(&it, &sec, in->set.v[i]))
            continue;
        if (BSON_ITER_HOLDS_DOCUMENT(&it) && dash_iter_doc(r, &it, "secrets", &sub) == RP_OK)
            plain = dash_json_text(&sub);
        else
            plain = rp_xstrdup(dash_iter_str(&it));
        sealed = dash_seal(r->app, plain);
        sodium_memzero(plain, strlen(plain));
        free(plain);
        bson_append_utf8(&out, in->set.v[i], -1, sealed, -1);
        free(sealed);
    }
    in->sealed = dash_json_text(&out);
    bson_destroy(&out);
    return RP_OK;
}

static void list_channels(struct dash_req *r)
{
    const char *p[1] = {dash_param(r, "project")};
    dash_query_reply(r, 200, "project",
                     DASH_LIST_SQL(CHANNEL_JSON, "channels c WHERE c.project_id = p.id", "c.name"),
                     1, p);
}

static void get_channel(struct dash_req *r)
{
    const char *id = dash_param_uuid(r, "channel", "channel");
    if (id)
        reply_channel(r, 200, dash_param(r, "project"), id);
}

static int create_channel_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct channel_in *in = ud;
    PGresult *res = NULL;
    const char *p[6] = {in->project, in->name, in->kind, in->config, in->sealed, in->enabled};
    int rc = dash_tx_exec(r, pg, "channel",
                          "INSERT INTO channels (project_id, name, kind, config, secrets, enabled) "
                          "SELECT id, $2, $3, $4::jsonb, COALESCE($5::jsonb, '{}'), "
                          "COALESCE($6::bool, true) FROM projects WHERE id = $1 RETURNING id",
                          6, p, &res);
    if (rc != RP_OK)
        return rc;
    if (no_project(r, res))
        return RP_ENOENT;
    snprintf(in->new_id, sizeof(in->new_id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return dash_audit(r, pg, in->project, "channel.create", "channel", in->new_id, in->details);
}

static void create_channel(struct dash_req *r)
{
    bson_t body;
    if (dash_body(r, &body) != RP_OK)
        return;
    static const char *const allowed[] = {"name", "kind", "config", "secrets", "enabled", NULL};
    struct channel_in in = {.project = dash_param(r, "project")};
    const struct channel_kind *k = NULL;
    int enabled = 1, has_enabled = 0;
    if (dash_only(r, &body, allowed) != RP_OK ||
        dash_get_str(r, &body, "name", DASH_REQUIRED, 1, 100, &in.name, NULL) != RP_OK ||
        dash_get_str(r, &body, "kind", DASH_REQUIRED, 1, 20, &in.kind, NULL) != RP_OK ||
        !(k = find_kind(r, in.kind)) ||
        dash_get_bool(r, &body, "enabled", 0, &enabled, &has_enabled) != RP_OK ||
        read_config(r, &body, k, 1, &in.config) != RP_OK ||
        read_secrets(r, &body, k, 1, &in) != RP_OK)
        goto out;
    in.enabled = dash_bool_param(has_enabled, enabled);
    bson_t d = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&d, "name", in.name);
    BSON_APPEND_UTF8(&d, "kind", in.kind);
    dash_append_names(&d, "secrets_set", &in.set);
    in.details = dash_json_text(&d);
    bson_destroy(&d);
    if (dash_tx(r, create_channel_tx, &in) == RP_OK)
        reply_channel(r, 201, in.project, in.new_id);
out:
    channel_in_cleanup(&in);
    bson_destroy(&body);
}

static int patch_channel_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct channel_in *in = ud;
    PGresult *res = NULL;
    const char *p[8] = {in->project, in->id,      in->name, in->config,
                        in->sealed,  in->enabled, in->kind, in->removed_lit.data};
    int rc = dash_tx_exec(r, pg, "channel",
                          "UPDATE channels SET name = COALESCE($3, name), "
                          "config = COALESCE($4::jsonb, config), "
                          "secrets = (secrets - COALESCE($8::text[], '{}')) || "
                          "COALESCE($5::jsonb, '{}'), enabled = COALESCE($6::bool, enabled), "
                          "updated_at = now() "
                          "WHERE project_id = $1 AND id = $2 AND kind = $7 RETURNING id",
                          8, p, &res);
    if (rc != RP_OK)
        return rc;
    int n = PQntuples(res);
    PQclear(res);
    if (n != 1) {
        dash_error(r, 404, "not_found", "channel not found");
        return RP_ENOENT;
    }
    return dash_audit(r, pg, in->project, "channel.update", "channel", in->id, in->details);
}

static void patch_channel(struct dash_req *r)
{
    bson_t body;
    struct channel_in in = {.project = dash_param(r, "project")};
    if (!(in.id = dash_param_uuid(r, "channel", "channel")) || dash_body(r, &body) != RP_OK)
        return;
    static const char *const allowed[] = {"name", "kind", "config", "secrets", "enabled", NULL};
    const struct channel_kind *k = NULL;
    int enabled = 1, has_enabled = 0;
    PGresult *res = NULL;
    if (dash_only(r, &body, allowed) != RP_OK)
        goto out;
    const char *kind = NULL, *p[2] = {in.project, in.id};
    if (dash_get_str(r, &body, "kind", 0, 1, 20, &kind, NULL) != RP_OK)
        goto out;
    if (dash_exec(r, "channel", "SELECT kind FROM channels WHERE project_id = $1 AND id = $2", 2, p,
                  &res) != RP_OK)
        goto out;
    if (PQntuples(res) != 1) {
        dash_error(r, 404, "not_found", "channel not found");
        goto out;
    }
    in.kind = PQgetvalue(res, 0, 0);
    if (kind && strcmp(kind, in.kind) != 0) {
        dash_refuse(r, "kind", "cannot be changed (this channel is %s): create a new channel",
                    in.kind);
        goto out;
    }
    if (!(k = find_kind(r, in.kind)) ||
        dash_get_str(r, &body, "name", 0, 1, 100, &in.name, NULL) != RP_OK ||
        dash_get_bool(r, &body, "enabled", 0, &enabled, &has_enabled) != RP_OK ||
        read_config(r, &body, k, 0, &in.config) != RP_OK ||
        read_secrets(r, &body, k, 0, &in) != RP_OK)
        goto out;
    in.enabled = dash_bool_param(has_enabled, enabled);
    in.details = dash_changed_details(&body, &in.set, &in.removed);
    if (dash_tx(r, patch_channel_tx, &in) == RP_OK)
        reply_channel(r, 200, in.project, in.id);
out:
    PQclear(res);
    channel_in_cleanup(&in);
    bson_destroy(&body);
}

static void delete_channel(struct dash_req *r)
{
    /* rules keep no dangling channel ids */
    struct dash_delete_in in = {
        .what = "channel",
        .sql = "DELETE FROM channels WHERE project_id = $1 AND id = $2 "
               "RETURNING json_build_object('name', name, 'kind', kind)",
        .action = "channel.delete",
        .target = "channel",
        .after = "UPDATE alert_rules SET channel_ids = array_remove(channel_ids, $2::uuid), "
                 "updated_at = now() WHERE project_id = $1 AND $2::uuid = ANY (channel_ids)",
    };
    dash_delete_thing(r, &in, "channel");
}

#define PROJ "/api/v1/projects/{project}"
const struct dash_route dash_routes_channels[] = {
    {"GET", PROJ "/channels", DASH_PROJECT_VIEWER, list_channels},
    {"POST", PROJ "/channels", DASH_PROJECT_EDITOR, create_channel},
    {"GET", PROJ "/channels/{channel}", DASH_PROJECT_VIEWER, get_channel},
    {"PATCH", PROJ "/channels/{channel}", DASH_PROJECT_EDITOR, patch_channel},
    {"DELETE", PROJ "/channels/{channel}", DASH_PROJECT_EDITOR, delete_channel},
    {"POST", PROJ "/channels/{channel}/test", DASH_PROJECT_EDITOR, dash_channel_test},
    {NULL, NULL, 0, NULL},
};
