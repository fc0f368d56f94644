/* The dashboard's HTTP layer, mounted on the service endpoint (health.h: a thread per
 * connection, since handlers block on PostgreSQL and MongoDB): builds a struct dash_req per
 * request, accumulates the body up to RAMPART_MAX_BODY (a larger one is answered 413 without
 * being read to the end), routes, authenticates, runs the handler, and sends the answer with
 * the security headers. Also the per-route metrics (count by route, method and code; latency
 * histogram by route) and the access log (debug; 5xx at warn). Answers on the second handler
 * call of a request, never the first (MHD would close the connection: health.c). */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <microhttpd.h>

#include "dash.h"
#include "rampart/health.h"
#include "rampart/job.h"
#include "rampart/log.h"
#include "rampart/metrics.h"
#include "rampart/mongo.h"
#include "rampart/pg.h"

#define OUT_CAP (64u << 20) /* the largest answer (a run's full result is capped far lower) */

struct dash_metrics {
    struct rp_metric *requests, *latency;
    struct rp_series *in_flight;
};

static atomic_long in_flight;

long dash_in_flight(void)
{
    return atomic_load(&in_flight);
}

void dash_metrics_init(struct dash_app *app)
{
    struct rp_metrics *reg = rp_metrics_default();
    static struct dash_metrics m;
    m.requests = rp_metrics_counter(reg, "rampart_dashboard_requests_total",
                                    "API and UI requests by route, method and status code.",
                                    "route,method,code");
    static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1,
                                    0.25,  0.5,    1,     2.5,  5,    10};
    m.latency = rp_metrics_histogram(reg, "rampart_dashboard_request_duration_seconds",
                                     "Time from a request's headers to its answer, by route.",
                                     "route,method", bounds, sizeof(bounds) / sizeof(bounds[0]));
    m.in_flight = rp_metric_series(rp_metrics_gauge(reg, "rampart_dashboard_requests_in_flight",
                                                    "Requests being handled now.", NULL),
                                   NULL);
    app->metrics = &m;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- input accessors ------------------------------------------------------------------ */

const char *dash_arg(struct dash_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *dash_header_in(struct dash_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *dash_param(struct dash_req *r, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < r->n_params; i++)
        if (strncmp(r->param_names[i], name, len) == 0 && r->param_names[i][len] == '}')
            return r->param_values[i];
    return NULL;
}

const char *dash_param_uuid(struct dash_req *r, const char *name, const char *what)
{
    const char *v = dash_param(r, name);
    if (!v || !rp_uuid_valid(v)) {
        dash_error(r, 404, "not_found", "%s not found (not an id: expected a UUID)", what);
        return NULL;
    }
    return v;
}

/* ---- answers -------------------------------------------------------------------------- */

static int claim_reply(struct dash_req *r, unsigned status)
{
    if (r->replied) {
        rp_debug("request %s: a second answer (%u) was ignored", r->request_id, status);
        return 0;
    }
    r->replied = 1;
    r->status = status;
    rp_buf_reset(&r->out);
    return 1;
}

void dash_reply_raw(struct dash_req *r, unsigned status, const char *content_type, const void *data,
                    size_t len)
{
    if (!claim_reply(r, status))
        return;
    r->content_type = content_type;
    if (len && rp_buf_append(&r->out, data, len) != RP_OK) {
        r->replied = 0;
        dash_error(r, 500, "too_large", "the answer exceeds %u bytes", OUT_CAP);
    }
}

void dash_reply_json(struct dash_req *r, unsigned status, const char *json, size_t len)
{
    dash_reply_raw(r, status, "application/json", json, len);
}

void dash_reply_bson(struct dash_req *r, unsigned status, const bson_t *doc)
{
    size_t len = 0;
    char *json = bson_as_relaxed_extended_json(doc, &len);
    if (!json) {
        dash_error(r, 500, "internal", "a document could not be rendered as JSON");
        return;
    }
    dash_reply_json(r, status, json, len);
    bson_free(json);
}

void dash_reply_empty(struct dash_req *r, unsigned status)
{
    if (claim_reply(r, status))
        r->content_type = NULL;
}

/* Messages quote what the client sent (a path, a bad byte of a body): replace every byte
 * that is not part of valid UTF-8 by '?', so the answer is always valid JSON. */
static void utf8_scrub(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80             ? 1
                   : (*p & 0xE0) == 0xC0 ? 2
                   : (*p & 0xF0) == 0xE0 ? 3
                   : (*p & 0xF8) == 0xF0 ? 4
                                         : 0;
        size_t i = 1;
        while (n && i < n && (p[i] & 0xC0) == 0x80)
            i++;
        if (n == 0 || i < n || !bson_utf8_validate((const char *)p, n, false)) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

static void verror(struct dash_req *r, unsigned status, const char *code, const char *field,
                   const char *fmt, va_list ap)
{
    if (!claim_reply(r, status))
        return;
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    utf8_scrub(msg);
    r->content_type = "application/json";
    struct rp_buf *b = &r->out;
    (void)rp_buf_printf(b, "{\"error\":{\"code\":\"%s\",\"message\":\"", code);
    (void)rp_json_escape(b, msg);
    if (field) {
        (void)rp_buf_append(b, "\",\"field\":\"", 11);
        (void)rp_json_escape(b, field);
    }
    (void)rp_buf_printf(b, "\",\"request_id\":\"%s\"}}\n", r->request_id);
}

void dash_error(struct dash_req *r, unsigned status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(r, status, code, NULL, fmt, ap);
    va_end(ap);
}

void dash_error_field(struct dash_req *r, unsigned status, const char *code, const char *field,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(r, status, code, field, fmt, ap);
    va_end(ap);
}

void dash_add_header(struct dash_req *r, const char *name, const char *value)
{
    if (r->n_headers >= sizeof(r->headers) / sizeof(r->headers[0]))
        return;
    r->headers[r->n_headers][0] = rp_xstrdup(name);
    r->headers[r->n_headers][1] = rp_xstrdup(value);
    r->n_headers++;
}

/* ---- one request ---------------------------------------------------------------------- */

static void fill_ip(struct dash_req *r)
{
    const char *fwd = r->app->cfg->trust_proxy ? dash_header_in(r, "X-Forwarded-For") : NULL;
    if (fwd && *fwd) {
        /* the last entry: the one our own balancer appended (earlier ones are whatever the
         * client claimed) */
        const char *last = strrchr(fwd, ',');
        last = last ? last + 1 : fwd;
        while (*last == ' ')
            last++;
        size_t n = strcspn(last, ", ");
        snprintf(r->ip, sizeof(r->ip), "%.*s", (int)(n < sizeof(r->ip) ? n : sizeof(r->ip) - 1),
                 last);
        return;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    r->ip[0] = '\0';
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->ip, sizeof(r->ip));
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->ip, sizeof(r->ip));
}

static void fill_secure(struct dash_req *r)
{
    const char *mode = r->app->cfg->cookie_secure;
    if (strcmp(mode, "always") == 0) {
        r->secure = 1;
        return;
    }
    if (strcmp(mode, "never") == 0)
        return;
    const char *proto = r->app->cfg->trust_proxy ? dash_header_in(r, "X-Forwarded-Proto") : NULL;
    r->secure = (proto && strcasecmp(proto, "https") == 0) ||
                strncmp(r->app->cfg->public_url, "https:", 6) == 0;
}

static void serve_static(struct dash_req *r)
{
    const char *p = r->path;
    if (strcmp(p, "/") == 0 || strncmp(p, "/app", 4) == 0)
        p = "/ui/index.html"; /* the single-page UI owns every /app/... address */
    const struct dash_asset *a = dash_asset_find(p);
    if (!a) {
        dash_error(r, 404, "not_found", "no such page or API route: %s", r->path);
        return;
    }
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        dash_add_header(r, "Allow", "GET, HEAD");
        dash_error(r, 405, "method_not_allowed", "%s %s: only GET and HEAD", r->method, r->path);
        return;
    }
    dash_reply_raw(r, 200, a->content_type, a->data, a->len);
    if (strncmp(p, "/ui/", 4) == 0 && strcmp(p, "/ui/index.html") != 0)
        dash_add_header(r, "Cache-Control", "public, max-age=300");
}

static void route_and_run(struct dash_req *r)
{
    int path_known = 0;
    r->route = dash_route_match(r->method, r->path, r->param_names, r->param_values, &r->n_params,
                                &path_known);
    if (!r->route) {
        if (path_known) {
            char allow[128];
            dash_route_allowed(r->path, allow, sizeof(allow));
            dash_add_header(r, "Allow", allow);
            dash_error(r, 405, "method_not_allowed", "%s is not allowed on %s (allowed: %s)",
                       r->method, r->path, allow);
            return;
        }
        if (strncmp(r->path, "/api/", 5) == 0) {
            dash_error(r, 404, "not_found", "no API route %s %s (see /api/v1/openapi.json)",
                       r->method, r->path);
            return;
        }
        serve_static(r);
        return;
    }
    if (r->body_too_large) {
        dash_error(r, 413, "body_too_large", "the request body exceeds %ld bytes",
                   r->app->cfg->max_body);
        return;
    }
    if (dash_auth_resolve(r) != RP_OK || dash_auth_check(r) != RP_OK)
        return;
    r->route->fn(r);
    if (!r->replied)
        dash_error(r, 500, "internal", "the handler gave no answer");
}

static void release_resources(struct dash_req *r);

static enum MHD_Result send_answer(struct dash_req *r)
{
    struct MHD_Response *resp;
    if (strcmp(r->method, "HEAD") == 0 || r->status == 204 || r->status == 304) {
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    } else {
        resp = MHD_create_response_from_buffer(r->out.len, r->out.data, MHD_RESPMEM_MUST_FREE);
        if (resp) {
            r->out.data = NULL; /* MHD owns it now */
            r->out.len = r->out.cap = 0;
        }
    }
    if (!resp)
        return MHD_NO;
    if (r->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    int cached = 0;
    for (size_t i = 0; i < r->n_headers; i++) {
        MHD_add_response_header(resp, r->headers[i][0], r->headers[i][1]);
        cached |= strcasecmp(r->headers[i][0], "Cache-Control") == 0;
    }
    if (!cached)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "same-origin");
    if (r->content_type && strncmp(r->content_type, "text/html", 9) == 0)
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; "
                                "style-src 'self'; script-src 'self'; frame-ancestors 'none'");
    enum MHD_Result ret = MHD_queue_response(r->conn, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void account(struct dash_req *r)
{
    struct dash_metrics *m = r->app->metrics;
    const char *route = r->route ? r->route->pattern : "unmatched";
    char code[8];
    snprintf(code, sizeof(code), "%u", r->status);
    double secs = (double)(mono_ns() - r->started_ns) / 1e9;
    rp_series_inc(rp_metric_labels(m->requests, route, r->method, code));
    rp_series_observe(rp_metric_labels(m->latency, route, r->method), secs);
    enum rp_log_level lvl = r->status >= 500 ? RP_LOG_WARN : RP_LOG_DEBUG;
    rp_log(lvl, NULL, "%s %s -> %u in %.1f ms (request %s, ip %s, %s)", r->method, r->path,
           r->status, secs * 1000, r->request_id, r->ip,
           r->who.actor[0] ? r->who.actor : "anonymous");
}

static enum MHD_Result finish(struct dash_req *r)
{
    route_and_run(r);
    release_resources(r);
    account(r);
    return send_answer(r);
}

static void req_free(struct dash_req *r)
{
    if (!r)
        return;
    release_resources(r);
    free(r->path);
    for (size_t i = 0; i < r->n_params; i++)
        free(r->param_values[i]);
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i][0]);
        free(r->headers[i][1]);
    }
    rp_buf_cleanup(&r->body);
    rp_buf_cleanup(&r->out);
    free(r);
}

static void release_resources(struct dash_req *r)
{
    dash_db_release(r);
}

static int on_request(void *ud, struct MHD_Connection *c, const char *url, const char *method,
                      const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct dash_app *app = ud;
    struct dash_req *r = *con_cls;
    if (!r) {
        r = rp_xcalloc(1, sizeof(*r));
        r->app = app;
        r->conn = c;
        r->method = method;
        r->started_ns = mono_ns();
        rp_uuid_v7(r->request_id);
        /* MHD gives the path without the query string, already percent-decoded: a "?" here
         * was %3F in a segment and stays part of it */
        r->path = rp_xstrdup(url);
        rp_buf_init(&r->body, (size_t)app->cfg->max_body);
        rp_buf_init(&r->out, OUT_CAP);
        fill_ip(r);
        fill_secure(r);
        *con_cls = r;
        atomic_fetch_add(&in_flight, 1);
        rp_series_add(app->metrics->in_flight, 1);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoll(cl, NULL, 10) > app->cfg->max_body) {
            /* refuse before the body is sent (also answers "Expect: 100-continue"); MHD
             * closes the connection after this answer */
            r->body_too_large = 1;
            dash_error(r, 413, "body_too_large", "the request body exceeds %ld bytes",
                       app->cfg->max_body);
            account(r);
            return send_answer(r) == MHD_YES;
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* MHD cannot answer mid-upload: a body over the cap (chunked, so not refused at the
         * headers) is read and dropped, then answered 413; a stream far over it is cut off */
        r->received += *upload_data_size;
        if (!r->body_too_large && rp_buf_append(&r->body, upload_data, *upload_data_size) != RP_OK)
            r->body_too_large = 1;
        *upload_data_size = 0;
        return r->received <= 16 * (size_t)app->cfg->max_body;
    }
    if (r->replied)
        return MHD_YES; /* already answered (413 mid-upload) */
    return finish(r) == MHD_YES;
}

static void on_completed(void *ud, struct MHD_Connection *c, void **con_cls)
{
    struct dash_app *app = ud;
    struct dash_req *r = *con_cls;
    if (!r)
        return;
    atomic_fetch_sub(&in_flight, 1);
    rp_series_add(app->metrics->in_flight, -1);
    req_free(r);
    *con_cls = NULL;
}

const struct rp_http_app dash_http_app = {on_request, on_completed};
