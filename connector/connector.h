/* rampart-connector's private header: the sender the alert engine calls (send.c), the interface
 * every channel kind implements (one file each in kinds/), and the shared pieces of payloads
 * and body templates (template.c). Adding a channel kind is adding kinds/<name>.c, which defines
 * one `struct cnct_kind`, and one line in the table of send.c. */
#ifndef RAMPART_CONNECTOR_H
#define RAMPART_CONNECTOR_H

#include <stddef.h>

#include <bson/bson.h>
#include <curl/curl.h>

#include "rampart/alert.h"
#include "rampart/error.h"
#include "rampart/mem.h"

/* What the senders need from the service's settings (connector/main.c); read-only once the
 * engine runs, so shared by every delivery thread. */
struct cnct_ctx {
    long timeout_ms;             /* RAMPART_ALERT_SEND_TIMEOUT: one try, connect to answer */
    const char *pagerduty_url;   /* RAMPART_PAGERDUTY_URL: the Events API v2 enqueue URL */
    const char *opsgenie_url_us; /* RAMPART_OPSGENIE_URL_US: API base, no trailing slash */
    const char *opsgenie_url_eu; /* RAMPART_OPSGENIE_URL_EU */
};

/* One HTTP call a kind asks for. Owned members are freed by cnct_request_cleanup. */
struct cnct_request {
    const char *method;         /* static: "POST", "PUT", "PATCH" or "DELETE" */
    char *url;                  /* owned; may itself be a secret (Slack's webhook URL) */
    struct curl_slist *headers; /* owned; "Name: value" lines (see cnct_header) */
    char *body;                 /* owned JSON text; NULL: no body */
    const char *target;         /* static: how outcomes name the receiver ("slack webhook"), never a
                                 * URL that may hold a secret */
    const char *nothing;        /* static; set by a kind when this transition sends nothing
                                 * (reminders to a status page): the outcome is skipped and says
                                 * why (the ledger: muted) */
};

void cnct_request_cleanup(struct cnct_request *req);

/* cnct_header modes */
enum {
    CNCT_HDR_ADD,     /* add, even if a header of that name is there (user headers) */
    CNCT_HDR_DEFAULT, /* add only if no header of that name is there (Content-Type) */
    CNCT_HDR_FORCE,   /* replace any header of that name (User-Agent, X-Rampart-*) */
};
/* Add "name: value" to req->headers. RP_EINVAL when the name is not an HTTP token or the value
 * holds CR, LF or NUL (never echoed: it may be secret). */
int cnct_header(struct cnct_request *req, const char *name, const char *value,
                int mode) RP_MUST_CHECK;

/* A channel kind. `build` turns one message into one request (or sets req->nothing). It returns
 * RP_OK, or RP_EINVAL with `why` (never a secret) when the channel's config or secrets cannot
 * work: the notification fails permanently. Pure and thread-safe: no I/O. */
struct cnct_kind {
    const char *name; /* channels.kind */
    int (*build)(const struct cnct_ctx *ctx, const struct rp_alert_msg *m,
                 const struct rp_alert_channel *ch, struct cnct_request *req, char *why,
                 size_t why_len);
};

extern const struct cnct_kind cnct_kind_webhook, cnct_kind_slack, cnct_kind_mattermost,
    cnct_kind_teams, cnct_kind_discord, cnct_kind_pagerduty, cnct_kind_opsgenie,
    cnct_kind_statuspage;

/* ---- send.c: dispatch and libcurl ---------------------------------------------------------- */

/* The kinds the connector delivers, NULL-terminated (for rp_alert_def.kinds). Static. */
const char *const *cnct_kind_names(void);
/* The kind named `name`, or NULL. */
const struct cnct_kind *cnct_find_kind(const char *name);

/* The full request for `m` to `ch`: the kind's build, then the headers every call carries
 * (User-Agent: Rampart/<version>, X-Rampart-Notification). RP_OK or RP_EINVAL with `why`
 * (unknown kind, config problem). Clean `req` up in both cases. Thread-safe. */
int cnct_build(const struct cnct_ctx *ctx, const struct rp_alert_msg *m,
               const struct rp_alert_channel *ch, struct cnct_request *req, char *why,
               size_t why_len) RP_MUST_CHECK;

/* The engine's sender (rp_alert_send_fn): build, perform with libcurl, classify. `ctx` is a
 * struct cnct_ctx. Thread-safe; curl_global_init must have run. */
void cnct_send(void *ctx, const struct rp_alert_msg *m, const struct rp_alert_channel *ch,
               struct rp_alert_outcome *out);

enum cnct_verdict { CNCT_OK, CNCT_RETRY, CNCT_PERMANENT };
/* 2xx ok; 408, 429 and 5xx retry; everything else (4xx, 3xx: redirects are not followed)
 * permanent. */
enum cnct_verdict cnct_classify_status(long status);
/* A libcurl failure: a bad URL or an unsupported scheme is permanent, the rest (connection
 * refused, DNS, TLS, timeout) retry. */
enum cnct_verdict cnct_classify_curl(CURLcode rc);
/* Fill `out` from an HTTP answer: "HTTP 500 Internal Server Error: <first 200 bytes of the body,
 * control characters removed>", every string of `secrets` (NULL-terminated, may be NULL)
 * replaced by "***". */
void cnct_outcome_http(struct rp_alert_outcome *out, long status, const char *body, size_t len,
                       const char *const *secrets);

/* The opened secret `name` of `ch` (a string), or NULL. */
const char *cnct_secret(const struct rp_alert_channel *ch, const char *name);
/* Member `name` of a config document (NULL: none) when it is a string, else NULL. */
const char *cnct_config_str(const bson_t *config, const char *name);
/* Member `name` of a config document as a document in `out` (a read-only view over `config`,
 * nothing to free): 1, or 0 when absent or not a document. */
int cnct_config_doc(const bson_t *config, const char *name, bson_t *out);
/* Add the headers of a JSON object given as text (secrets.headers) with `mode`. RP_EINVAL with
 * `why` when it is not an object of strings or a header is invalid; never echoes a value. */
int cnct_json_headers(struct cnct_request *req, const char *json, const char *field, int mode,
                      char *why, size_t why_len) RP_MUST_CHECK;
/* Add the members of a config document of strings (webhook config.headers) with `mode`. */
int cnct_doc_headers(struct cnct_request *req, const bson_t *doc, const char *field, int mode,
                     char *why, size_t why_len) RP_MUST_CHECK;

/* ---- template.c: texts, JSON pieces, body templates ---------------------------------------- */

/* Length of the valid UTF-8 sequence at `s` (strict, as PostgreSQL: no overlong forms,
 * surrogates or code points past U+10FFFF), or 0 (also at the NUL). */
size_t cnct_utf8_seq(const char *s);
/* `s` with every invalid UTF-8 sequence replaced by U+FFFD; NULL for NULL. Caller frees. */
char *cnct_utf8_clean(const char *s);
/* A copy of (clean) `s` of at most `max` UTF-16 code units (the unit Slack, Discord, Teams and
 * JavaScript count), cut on a character boundary and ending with "…" when cut. NULL for NULL.
 * Caller frees. */
char *cnct_cut(const char *s, size_t max);
/* Append `s` (NULL: null) as a UTF-8 string; invalid sequences replaced. */
void cnct_append_str(bson_t *doc, const char *key, const char *s);
/* Same, cut to `max` UTF-16 code units (cnct_cut). */
void cnct_append_cut(bson_t *doc, const char *key, const char *s, size_t max);
/* The JSON text of `doc` (libbson, relaxed: plain numbers). Caller frees. */
char *cnct_json(const bson_t *doc);
/* Append the JSON string escape of `s` (no quotes; invalid UTF-8 replaced) to `b`. RP_OK or
 * RP_ENOMEM at its cap. */
int cnct_json_escape(struct rp_buf *b, const char *s) RP_MUST_CHECK;
/* Percent-encode `s` for a URL path segment (RFC 3986 unreserved kept). Caller frees. */
char *cnct_url_escape(const char *s);

/* "incident.opened", "incident.resolved", ... (the webhook `event`). */
const char *cnct_event_name(const char *kind);
/* "2h 5m", "45s", "3d 4h" into buf. */
void cnct_duration(long long seconds, char *buf, size_t len);
/* One line saying what happened, for titles and summaries (no markup): "Failing: login at
 * eu-west (Shop)", "Recovered after 12m: ...", "Still failing for 2h (reminder 3): ...",
 * "Test notification from Rampart (...)". Caller frees. */
char *cnct_headline(const struct rp_alert_msg *m);
/* The emoji of the kind: 🔴 opened, ✅ resolved, ⏰ reminder, 🧪 test. */
const char *cnct_emoji(const char *kind);
/* The colour of the kind as 0xRRGGBB (red, green, amber, blue). */
unsigned cnct_color(const char *kind);

/* The webhook event object (docs/channels.md) into `doc` (initialized by the caller). */
void cnct_event_doc(const struct rp_alert_msg *m, bson_t *doc);

/* ${name} body templates (status pages). */
struct cnct_var {
    const char *name;
    const char *value; /* NULL renders as nothing */
};
#define CNCT_TEMPLATE_VARS 14
/* The variables of `m` (event, project, test, location, failure, run_url, test_url,
 * failing_since, occurred_at, dedup_key, incident_id, notification_id, rule, kind) into `v`. */
void cnct_template_vars(const struct rp_alert_msg *m, struct cnct_var v[CNCT_TEMPLATE_VARS]);
/* Render `tmpl`: each ${name} becomes the JSON string escape of its value without quotes (so a
 * template reads "name": "${test}"), $${ is a literal ${, any other $ is itself. RP_OK with
 * *out (caller frees); RP_EINVAL with `why` for an unknown name or an unterminated ${;
 * RP_ENOMEM when the result would pass `cap` bytes (cap > 0). Thread-safe. */
int cnct_template_render(const char *tmpl, const struct cnct_var *vars, size_t n_vars, size_t cap,
                         char **out, char *why, size_t why_len) RP_MUST_CHECK;

#endif
