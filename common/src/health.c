/* The /healthz, /readyz and /metrics endpoint on libmicrohttpd. One internal polling thread
 * (MHD_USE_AUTO_INTERNAL_THREAD: epoll on Linux) serves every connection: each answer is
 * computed in memory in microseconds, so one thread keeps up with any scraper, and unlike
 * thread-per-connection a burst of slow or idle clients cannot make it spawn threads without
 * bound (connections are also capped and time out). The handler answers on its second call for
 * a request: answering on the first makes MHD close every connection (5x slower, measured).
 * A service may mount an application on the same port (rp_health_set_app: the dashboard); it
 * then asks for a thread per connection, since its handlers block on databases. */
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "rampart/health.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/metrics.h"
#include "rampart/signals.h"

#define METRICS_CAP          (16u << 20) /* bytes of one /metrics answer */
#define MAX_CONNECTIONS      128
#define CONNECTION_TIMEOUT_S 30

struct rp_health {
    struct MHD_Daemon *daemon;
    unsigned port;
    struct rp_metrics *metrics;
    struct rp_metric *requests;
    pthread_mutex_t lock; /* guards the five fields below */
    int ready;
    int draining;
    char *reason;
    int stalled; /* rp_health_set_live(h, 0, ...): /healthz answers 503 */
    char *stall_reason;
    const struct rp_http_app *_Atomic app;
    void *app_ud;
};

/* Per-request state of a request served by the endpoint itself (not the application). */

static int first_call_marker;

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        msg[--len] = '\0';
    rp_log(RP_LOG_WARN, NULL, "health endpoint: %s", msg);
}

static enum MHD_Result reply(struct rp_health *h, struct MHD_Connection *c, const char *path,
                             unsigned code, const char *ctype, char *body, size_t len,
                             enum MHD_ResponseMemoryMode mode)
{
    char code_s[8];
    snprintf(code_s, sizeof(code_s), "%u", code);
    rp_series_inc(rp_metric_labels(h->requests, path, code_s));

    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_static(struct rp_health *h, struct MHD_Connection *c, const char *path,
                                    unsigned code, const char *json)
{
    return reply(h, c, path, code, "application/json", (char *)json, strlen(json),
                 MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result serve_readyz(struct rp_health *h, struct MHD_Connection *c)
{
    struct rp_buf b;
    rp_buf_init(&b, 0);
    pthread_mutex_lock(&h->lock);
    int draining = h->draining || rp_signals_draining();
    unsigned code = MHD_HTTP_SERVICE_UNAVAILABLE;
    if (draining) {
        (void)rp_buf_printf(&b, "{\"status\":\"draining\",\"reason\":\"shutting down\"}\n");
    } else if (h->ready && !h->reason) {
        code = MHD_HTTP_OK;
        (void)rp_buf_printf(&b, "{\"status\":\"ready\"}\n");
    } else if (h->ready) { /* ready, with a degraded dependency */
        code = MHD_HTTP_OK;
        (void)rp_buf_printf(&b, "{\"status\":\"degraded\",\"reason\":\"");
        (void)rp_json_escape(&b, h->reason);
        (void)rp_buf_printf(&b, "\"}\n");
    } else {
        (void)rp_buf_printf(&b, "{\"status\":\"not ready\",\"reason\":\"");
        (void)rp_json_escape(&b, h->reason ? h->reason : "unknown");
        (void)rp_buf_printf(&b, "\"}\n");
    }
    pthread_mutex_unlock(&h->lock);
    return reply(h, c, "/readyz", code, "application/json", b.data, b.len, MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result serve_healthz(struct rp_health *h, struct MHD_Connection *c)
{
    pthread_mutex_lock(&h->lock);
    int stalled = h->stalled;
    struct rp_buf b;
    rp_buf_init(&b, 0);
    if (stalled) {
        (void)rp_buf_printf(&b, "{\"status\":\"stalled\",\"reason\":\"");
        (void)rp_json_escape(&b, h->stall_reason ? h->stall_reason : "unknown");
        (void)rp_buf_printf(&b, "\"}\n");
    }
    pthread_mutex_unlock(&h->lock);
    if (!stalled)
        return reply_static(h, c, "/healthz", MHD_HTTP_OK, "{\"status\":\"ok\"}\n");
    return reply(h, c, "/healthz", MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", b.data, b.len,
                 MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result serve_metrics(struct rp_health *h, struct MHD_Connection *c)
{
    struct rp_buf b;
    rp_buf_init(&b, METRICS_CAP);
    if (rp_metrics_render(h->metrics, &b) != RP_OK) {
        rp_buf_cleanup(&b);
        rp_err("health endpoint: /metrics exceeds %u bytes", METRICS_CAP);
        return reply_static(h, c, "/metrics", MHD_HTTP_INTERNAL_SERVER_ERROR,
                            "{\"error\":\"metrics too large\"}\n");
    }
    if (!b.data)
        (void)rp_buf_append(&b, "", 0);
    return reply(h, c, "/metrics", MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.data,
                 b.len, MHD_RESPMEM_MUST_FREE);
}

static int own_path(const char *url)
{
    return strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0 ||
           strcmp(url, "/metrics") == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct rp_health *h = cls;
    const struct rp_http_app *app = atomic_load(&h->app);
    if (app && *con_cls != &first_call_marker && !own_path(url))
        return app->handler(h->app_ud, c, url, method, upload_data, upload_data_size, con_cls)
                   ? MHD_YES
                   : MHD_NO;
    if (*con_cls == NULL) {
        *con_cls = &first_call_marker; /* headers only: answer on the next call */
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* no endpoint takes a body: discard it */
        return MHD_YES;
    }
    const char *path = "other";
    if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0 || strcmp(url, "/metrics") == 0)
        path = url;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_static(h, c, path, MHD_HTTP_METHOD_NOT_ALLOWED,
                            "{\"error\":\"method not allowed\"}\n");
    if (strcmp(url, "/healthz") == 0)
        return serve_healthz(h, c);
    if (strcmp(url, "/readyz") == 0)
        return serve_readyz(h, c);
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(h, c);
    if (!app && (strncmp(url, "/api/", 5) == 0 || strcmp(url, "/") == 0))
        return reply_static(h, c, path, MHD_HTTP_SERVICE_UNAVAILABLE,
                            "{\"error\":{\"code\":\"starting\",\"message\":\"the service is "
                            "starting; retry in a moment\"}}\n");
    return reply_static(h, c, path, MHD_HTTP_NOT_FOUND, "{\"error\":\"not found\"}\n");
}

/* Split "host:port" / "[v6]:port" and resolve it for bind(). */
static int resolve(const char *listen, struct addrinfo **out, struct rp_error *err)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen)
        return rp_error_set(err, RP_EINVAL, "listen address \"%s\" is not host:port", listen);
    const char *hs = listen, *he = colon;
    if (*hs == '[' && he > hs + 1 && he[-1] == ']') {
        hs++;
        he--;
    }
    char *host = rp_xstrndup(hs, (size_t)(he - hs));
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host, colon + 1, &hints, out);
    free(host);
    if (gai != 0)
        return rp_error_set(err, RP_EINVAL, "listen address \"%s\": %s", listen, gai_strerror(gai));
    return RP_OK;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct rp_health *h = cls;
    const struct rp_http_app *app = atomic_load(&h->app);
    if (app && app->completed && *con_cls && *con_cls != &first_call_marker)
        app->completed(h->app_ud, c, con_cls);
}

void rp_health_set_app(struct rp_health *h, const struct rp_http_app *app, void *ud)
{
    h->app_ud = ud;
    atomic_store(&h->app, app);
}

int rp_health_start(const char *listen, struct rp_metrics *metrics, struct rp_health **out,
                    struct rp_error *err)
{
    return rp_health_start_opts(listen, metrics, NULL, out, err);
}

int rp_health_start_opts(const char *listen, struct rp_metrics *metrics,
                         const struct rp_health_opts *opts, struct rp_health **out,
                         struct rp_error *err)
{
    struct addrinfo *ai = NULL;
    struct rp_health *h = NULL;
    int rc = resolve(listen, &ai, err);
    if (rc != RP_OK)
        goto out;
    rc = RP_EIO;
    h = rp_xcalloc(1, sizeof(*h));
    pthread_mutex_init(&h->lock, NULL);
    h->reason = rp_xstrdup("starting");
    h->metrics = metrics ? metrics : rp_metrics_default();
    h->requests =
        rp_metrics_counter(h->metrics, "rampart_health_http_requests_total",
                           "Requests to the health endpoint by path and status code.", "path,code");
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    unsigned limit = MAX_CONNECTIONS;
    if (opts && opts->thread_per_connection_limit) {
        flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
        limit = opts->thread_per_connection_limit;
    }
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
                         h, /* must come first */
                         MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, limit,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
    if (!h->daemon) {
        rc =
            rp_error_set(err, RP_EIO, "cannot listen on %s (address in use or not local?)", listen);
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    *out = h;
    h = NULL;
    rc = RP_OK;
out:
    if (ai)
        freeaddrinfo(ai);
    rp_health_stop(h);
    return rc;
}

void rp_health_stop(struct rp_health *h)
{
    if (!h)
        return;
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    pthread_mutex_destroy(&h->lock);
    free(h->reason);
    free(h->stall_reason);
    free(h);
}

unsigned rp_health_port(const struct rp_health *h)
{
    return h->port;
}

void rp_health_set_ready(struct rp_health *h, int ready, const char *reason)
{
    pthread_mutex_lock(&h->lock);
    h->ready = ready;
    free(h->reason);
    h->reason = reason ? rp_xstrdup(reason) : NULL;
    pthread_mutex_unlock(&h->lock);
}

void rp_health_set_live(struct rp_health *h, int live, const char *reason)
{
    pthread_mutex_lock(&h->lock);
    h->stalled = !live;
    free(h->stall_reason);
    h->stall_reason = !live && reason ? rp_xstrdup(reason) : NULL;
    pthread_mutex_unlock(&h->lock);
}

void rp_health_set_draining(struct rp_health *h)
{
    pthread_mutex_lock(&h->lock);
    h->draining = 1;
    pthread_mutex_unlock(&h->lock);
}

int rp_health_is_ready(struct rp_health *h)
{
    pthread_mutex_lock(&h->lock);
    int ready = h->ready && !h->draining && !rp_signals_draining();
    pthread_mutex_unlock(&h->lock);
    return ready;
}
