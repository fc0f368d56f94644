/* rampart-connector's sender (the engine's rp_alert_send_fn): finds the channel's kind in the
 * table below, lets it build one HTTP request, adds the headers every call carries, performs it
 * with libcurl (the engine's send timeout, no redirects, http/https only) and classifies the
 * answer: 2xx delivered; 408, 429, 5xx and connection failures retried by the engine; any other
 * answer or a config problem failed for good. Outcomes never hold a secret: every secret value
 * of the channel is masked in what a receiver or libcurl says, and secret URLs (Slack's) are
 * named by their kind. Retries, back-off and the ledger are the engine's (common/src/alert). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connector.h"

#ifndef RP_VERSION
#define RP_VERSION "0"
#endif

#define BODY_KEEP    4096 /* bytes of an answer kept; the rest is not read */
#define DETAIL_BODY  200  /* bytes of an answer quoted in the outcome */
#define MIN_MASK_LEN 4    /* shorter secret values are not masked (they would mask digits) */

/* ---- the kinds: one line each --------------------------------------------------------------- */

static const struct cnct_kind *const kinds[] = {
    &cnct_kind_webhook, &cnct_kind_slack,     &cnct_kind_mattermost, &cnct_kind_teams,
    &cnct_kind_discord, &cnct_kind_pagerduty, &cnct_kind_opsgenie,   &cnct_kind_statuspage,
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static const char *kind_names[N_KINDS + 1];
static pthread_once_t kind_names_once = PTHREAD_ONCE_INIT;

static void fill_kind_names(void)
{
    for (size_t i = 0; i < N_KINDS; i++)
        kind_names[i] = kinds[i]->name;
    kind_names[N_KINDS] = NULL;
}

const char *const *cnct_kind_names(void)
{
    pthread_once(&kind_names_once, fill_kind_names);
    return kind_names;
}

const struct cnct_kind *cnct_find_kind(const char *name)
{
    for (size_t i = 0; name && i < N_KINDS; i++)
        if (strcmp(kinds[i]->name, name) == 0)
            return kinds[i];
    return NULL;
}

/* ---- channel config and secrets -------------------------------------------------------------- */

const char *cnct_secret(const struct rp_alert_channel *ch, const char *name)
{
    bson_iter_t it;
    if (!ch->secrets || !bson_iter_init_find(&it, ch->secrets, name) || !BSON_ITER_HOLDS_UTF8(&it))
        return NULL;
    return bson_iter_utf8(&it, NULL);
}

const char *cnct_config_str(const bson_t *config, const char *name)
{
    bson_iter_t it;
    if (!config || !bson_iter_init_find(&it, config, name) || !BSON_ITER_HOLDS_UTF8(&it))
        return NULL;
    return bson_iter_utf8(&it, NULL);
}

int cnct_config_doc(const bson_t *config, const char *name, bson_t *out)
{
    bson_iter_t it;
    const uint8_t *data;
    uint32_t len;
    if (!config || !bson_iter_init_find(&it, config, name) || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return 0;
    bson_iter_document(&it, &len, &data);
    return bson_init_static(out, data, len) ? 1 : 0;
}

/* ---- requests -------------------------------------------------------------------------------- */

void cnct_request_cleanup(struct cnct_request *req)
{
    free(req->url);
    curl_slist_free_all(req->headers);
    free(req->body);
    memset(req, 0, sizeof(*req));
}

static int token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Whether header line `line` is named `name`. */
static int is_named(const char *line, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(line, name, n) == 0 && line[n] == ':';
}

int cnct_header(struct cnct_request *req, const char *name, const char *value, int mode)
{
    if (!*name || strlen(name) > 100)
        return RP_EINVAL;
    for (const char *p = name; *p; p++)
        if (!token_char(*p))
            return RP_EINVAL;
    for (const char *p = value; *p; p++)
        if (*p == '\r' || *p == '\n')
            return RP_EINVAL;
    int present = 0;
    for (struct curl_slist *h = req->headers; h; h = h->next)
        present |= is_named(h->data, name);
    if (present && mode == CNCT_HDR_DEFAULT)
        return RP_OK;
    if (present && mode == CNCT_HDR_FORCE) {
        struct curl_slist *kept = NULL;
        for (struct curl_slist *h = req->headers; h; h = h->next)
            if (!is_named(h->data, name) && !(kept = curl_slist_append(kept, h->data)))
                abort();
        curl_slist_free_all(req->headers);
        req->headers = kept;
    }
    /* "Name;" is curl's way of sending a header with an empty value */
    char *line = *value ? rp_xasprintf("%s: %s", name, value) : rp_xasprintf("%s;", name);
    struct curl_slist *l = curl_slist_append(req->headers, line);
    free(line);
    if (!l)
        abort(); /* out of memory */
    req->headers = l;
    return RP_OK;
}

int cnct_doc_headers(struct cnct_request *req, const bson_t *doc, const char *field, int mode,
                     char *why, size_t why_len)
{
    bson_iter_t it;
    if (!bson_iter_init(&it, doc))
        goto bad;
    while (bson_iter_next(&it)) {
        if (!BSON_ITER_HOLDS_UTF8(&it))
            goto bad;
        if (cnct_header(req, bson_iter_key(&it), bson_iter_utf8(&it, NULL), mode) != RP_OK) {
            snprintf(why, why_len,
                     "%s: a header name is not an HTTP token or a value holds a line break", field);
            return RP_EINVAL;
        }
    }
    return RP_OK;
bad:
    snprintf(why, why_len, "%s must be an object of strings ({\"Header-Name\": \"value\"})", field);
    return RP_EINVAL;
}

int cnct_json_headers(struct cnct_request *req, const char *json, const char *field, int mode,
                      char *why, size_t why_len)
{
    bson_t doc;
    bson_error_t e;
    if (!bson_init_from_json(&doc, json, -1, &e)) {
        snprintf(why, why_len, "%s is not a JSON object: save the channel's headers again", field);
        return RP_EINVAL;
    }
    int rc = cnct_doc_headers(req, &doc, field, mode, why, why_len);
    bson_destroy(&doc);
    return rc;
}

int cnct_build(const struct cnct_ctx *ctx, const struct rp_alert_msg *m,
               const struct rp_alert_channel *ch, struct cnct_request *req, char *why,
               size_t why_len)
{
    memset(req, 0, sizeof(*req));
    const struct cnct_kind *k = cnct_find_kind(ch->kind);
    if (!k) {
        snprintf(why, why_len, "rampart-connector does not deliver channels of this kind");
        return RP_EINVAL;
    }
    req->method = "POST";
    req->target = k->name;
    if (k->build(ctx, m, ch, req, why, why_len) != RP_OK)
        return RP_EINVAL;
    if (req->nothing)
        return RP_OK;
    if (cnct_header(req, "User-Agent", "Rampart/" RP_VERSION, CNCT_HDR_FORCE) != RP_OK ||
        cnct_header(req, "X-Rampart-Notification", m->notification_id ? m->notification_id : "",
                    CNCT_HDR_FORCE) != RP_OK ||
        (req->body &&
         cnct_header(req, "Content-Type", "application/json", CNCT_HDR_DEFAULT) != RP_OK)) {
        snprintf(why, why_len, "the notification id is not a valid header value");
        return RP_EINVAL;
    }
    /* "Expect:" with no value stops libcurl's "Expect: 100-continue" (a wait of up to 1 s on
     * bodies over 1 KiB when the receiver does not answer 100) */
    struct curl_slist *l = curl_slist_append(req->headers, "Expect:");
    if (!l)
        abort(); /* out of memory */
    req->headers = l;
    return RP_OK;
}

/* ---- outcomes -------------------------------------------------------------------------------- */

enum cnct_verdict cnct_classify_status(long status)
{
    if (status >= 200 && status <= 299)
        return CNCT_OK;
    if (status == 408 || status == 429 || (status >= 500 && status <= 599))
        return CNCT_RETRY;
    return CNCT_PERMANENT;
}

enum cnct_verdict cnct_classify_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return CNCT_OK;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_LOGIN_DENIED:
        return CNCT_PERMANENT;
    default:
        return CNCT_RETRY;
    }
}

static const char *reason(long status)
{
    static const struct {
        long status;
        const char *text;
    } t[] = {
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {413, "Content Too Large"},
        {415, "Unsupported Media Type"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (t[i].status == status)
            return t[i].text;
    return NULL;
}

/* Append `s` (at most `max` bytes) to detail `d` as printable text: control characters become
 * spaces and runs of spaces one (an indented JSON answer reads well on one line), invalid UTF-8
 * "?", no character is cut in half. */
static void append_clean(char *d, size_t size, const char *s, size_t max)
{
    size_t o = strlen(d);
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < max && p[i] && o + 1 < size;) {
        unsigned char c = p[i];
        size_t n = c ? cnct_utf8_seq((const char *)p + i) : 0;
        if (i + n > max) /* a character cut by the limit is left out whole */
            break;
        if (c <= 0x20 || c == 0x7f) {
            if (o > 0 && d[o - 1] != ' ')
                d[o++] = ' ';
            i++;
        } else if (n == 0) {
            d[o++] = '?';
            i++;
        } else if (o + n < size) {
            memcpy(d + o, p + i, n);
            o += n;
            i += n;
        } else {
            break;
        }
    }
    while (o > 0 && d[o - 1] == ' ')
        o--;
    d[o] = '\0';
}

/* Replace every secret value in `d` by "***" (in place; the result is never longer, as masked
 * values are at least MIN_MASK_LEN bytes). */
static void mask(char *d, const char *const *secrets)
{
    for (size_t i = 0; secrets && secrets[i]; i++) {
        size_t n = strlen(secrets[i]);
        if (n < MIN_MASK_LEN)
            continue;
        for (char *p; (p = strstr(d, secrets[i]));) {
            memcpy(p, "***", 3);
            memmove(p + 3, p + n, strlen(p + n) + 1);
        }
    }
}

void cnct_outcome_http(struct rp_alert_outcome *out, long status, const char *body, size_t len,
                       const char *const *secrets)
{
    enum cnct_verdict v = cnct_classify_status(status);
    const char *r = reason(status);
    char text[DETAIL_BODY + 1] = "", *b = rp_xstrndup(body ? body : "", len);
    append_clean(text, sizeof(text), b, DETAIL_BODY);
    free(b);
    mask(text, secrets);
    out->ok = v == CNCT_OK;
    out->permanent = v == CNCT_PERMANENT;
    snprintf(out->detail, sizeof(out->detail), "HTTP %ld%s%s%s%s%s", status, r ? " " : "",
             r ? r : "", status >= 300 && status <= 399 ? " (redirects are not followed)" : "",
             *text ? ": " : "", text);
}

static void push(char ***v, size_t *n, size_t *cap, const char *s)
{
    if (*n == *cap) {
        *cap *= 2;
        *v = rp_xrealloc(*v, (*cap + 1) * sizeof(char *));
    }
    (*v)[(*n)++] = rp_xstrdup(s);
    (*v)[*n] = NULL;
}

/* Every secret value of `ch`, to mask in outcomes: its strings; the path and query of those that
 * are URLs (a receiver may quote the path of a Slack webhook); the members of those holding a
 * JSON object (header values). Longest first within each secret, so a whole URL is masked
 * before its path. NULL-terminated; free with free_strv. */
static char **secret_values(const struct rp_alert_channel *ch)
{
    size_t n = 0, cap = 8;
    char **v = rp_xcalloc(cap + 1, sizeof(char *));
    bson_iter_t it, in;
    if (!ch->secrets || !bson_iter_init(&it, ch->secrets))
        return v;
    while (bson_iter_next(&it)) {
        if (!BSON_ITER_HOLDS_UTF8(&it))
            continue;
        const char *s = bson_iter_utf8(&it, NULL), *slash;
        push(&v, &n, &cap, s);
        if ((strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0) &&
            (slash = strchr(strstr(s, "//") + 2, '/')) && strlen(slash) >= MIN_MASK_LEN)
            push(&v, &n, &cap, slash);
        bson_t doc;
        bson_error_t e;
        if (*s != '{' || !bson_init_from_json(&doc, s, -1, &e))
            continue;
        if (bson_iter_init(&in, &doc))
            while (bson_iter_next(&in))
                if (BSON_ITER_HOLDS_UTF8(&in))
                    push(&v, &n, &cap, bson_iter_utf8(&in, NULL));
        bson_destroy(&doc);
    }
    return v;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* ---- libcurl ------------------------------------------------------------------------------- */

struct sink {
    char buf[BODY_KEEP];
    size_t len;
    int full; /* more came than we keep: the transfer was stopped on purpose */
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct sink *s = ud;
    size_t n = size * nmemb, room = sizeof(s->buf) - s->len;
    if (n > room) {
        memcpy(s->buf + s->len, data, room);
        s->len += room;
        s->full = 1;
        return 0; /* stop reading: what matters is in hand */
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    return n;
}

static void perform(const struct cnct_ctx *ctx, struct cnct_request *req,
                    const char *const *secrets, struct rp_alert_outcome *out)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct sink *sink = rp_xcalloc(1, sizeof(*sink));
    CURL *c = curl_easy_init();
    if (!c)
        abort(); /* out of memory */
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ctx->timeout_ms > 0 ? ctx->timeout_ms : 15000L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, req->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    if (req->body || strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body ? strlen(req->body) : 0));
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    }
    if (strcmp(req->method, "POST") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && sink->full && status > 0)) {
        cnct_outcome_http(out, status, sink->buf, sink->len, secrets);
    } else {
        char said[CURL_ERROR_SIZE] = "";
        append_clean(said, sizeof(said), errbuf, sizeof(errbuf));
        mask(said, secrets);
        out->ok = 0;
        out->permanent = cnct_classify_curl(rc) == CNCT_PERMANENT;
        snprintf(out->detail, sizeof(out->detail), "%s: %s%s%s", req->target,
                 curl_easy_strerror(rc), *said ? ": " : "", said);
    }
    curl_easy_cleanup(c);
    free(sink);
}

void cnct_send(void *ctx, const struct rp_alert_msg *m, const struct rp_alert_channel *ch,
               struct rp_alert_outcome *out)
{
    struct cnct_request req;
    char why[400] = "";
    char **secrets = secret_values(ch);
    memset(out, 0, sizeof(*out));
    if (cnct_build(ctx, m, ch, &req, why, sizeof(why)) != RP_OK) {
        mask(why, (const char *const *)secrets); /* kinds never quote one; belt and braces */
        out->permanent = 1;
        snprintf(out->detail, sizeof(out->detail), "%s channel: %s", ch->kind, why);
    } else if (req.nothing) {
        out->skipped = 1;
        snprintf(out->detail, sizeof(out->detail), "%s", req.nothing);
    } else {
        perform(ctx, &req, (const char *const *)secrets, out);
    }
    /* the ledger stores it as text: valid UTF-8 on one line, whatever was quoted or cut */
    char clean[sizeof(out->detail)] = "";
    append_clean(clean, sizeof(clean), out->detail, sizeof(out->detail));
    memcpy(out->detail, clean, sizeof(clean));
    free_strv(secrets);
    cnct_request_cleanup(&req);
}
