/* The operations endpoint every long-running service serves: GET /healthz (the process is
 * alive and not stalled), GET /readyz (ready to take work: 200, or 503 with a JSON reason while not
 * ready or draining) and GET /metrics (Prometheus text format). Runs on libmicrohttpd's own polling
 * thread; readiness is a flag the service sets, forced false once draining starts (by
 * rp_health_set_draining or a termination signal, see signals.h). */
#ifndef RAMPART_HEALTH_H
#define RAMPART_HEALTH_H

#include "rampart/error.h"

struct rp_health;
struct rp_metrics;
struct MHD_Connection;

/* An application served on the same port as the health endpoint (the dashboard's API and UI):
 * every request whose path is not /healthz, /readyz or /metrics goes to `handler`, with
 * libmicrohttpd's access-handler arguments (`*con_cls` is the application's per-request state,
 * NULL on the first call), and `completed` (may be NULL) is called once per request it saw,
 * when MHD is done with it, to free that state. Both run on the connection's thread. */
struct rp_http_app {
    int (*handler)(void *ud, struct MHD_Connection *c, const char *url, const char *method,
                   const char *upload_data, size_t *upload_data_size, void **con_cls);
    void (*completed)(void *ud, struct MHD_Connection *c, void **con_cls);
};

/* Options of rp_health_start. Zero for the default: one polling thread, 128 connections. */
struct rp_health_opts {
    /* > 0: a thread per connection, at most this many connections (for an application whose
     * handlers block on databases); 0: one polling thread, 128 connections. */
    unsigned thread_per_connection_limit;
};

/* Start serving on `listen` ("host:port", "[v6addr]:port"; port 0 picks a free port, see
 * rp_health_port). `metrics` is the registry rendered at /metrics and where request counts
 * go (rampart_health_http_requests_total{path,code}); NULL means rp_metrics_default(). The
 * endpoint starts not ready, reason "starting". On success *out owns a server thread; stop it
 * with rp_health_stop. Returns RP_EINVAL for an unresolvable address, RP_EIO when the socket
 * cannot be bound (port in use), with `err` filled. */
int rp_health_start(const char *listen, struct rp_metrics *metrics, struct rp_health **out,
                    struct rp_error *err) RP_MUST_CHECK;
/* The same with options (NULL: defaults). */
int rp_health_start_opts(const char *listen, struct rp_metrics *metrics,
                         const struct rp_health_opts *opts, struct rp_health **out,
                         struct rp_error *err) RP_MUST_CHECK;

/* Serve `app` (static data) with `ud` on the endpoint from now on; before this call, other
 * paths answer 503 {"error":"starting"}. Set once; thread-safe. */
void rp_health_set_app(struct rp_health *h, const struct rp_http_app *app, void *ud);

/* Stop the server thread and free everything. Accepts NULL. */
void rp_health_stop(struct rp_health *h);

/* The TCP port actually bound (the chosen one when `listen` asked for port 0). */
unsigned rp_health_port(const struct rp_health *h);

/* Set readiness. `reason` (copied; NULL for none) is returned in the 503 body when not ready,
 * e.g. "postgres: connection refused"; with ready = 1 a reason means degraded: 200
 * {"status":"degraded","reason":...}. Ignored after draining started. Thread-safe. */
void rp_health_set_ready(struct rp_health *h, int ready, const char *reason);

/* Set liveness. Not live: /healthz answers 503 {"status":"stalled","reason":...} (`reason`
 * copied), so that a supervisor (a Kubernetes liveness probe) restarts the process; live (the
 * default): 200 {"status":"ok"}. For a process that runs but no longer makes progress.
 * Thread-safe. */
void rp_health_set_live(struct rp_health *h, int live, const char *reason);

/* Enter draining: /readyz answers 503 {"status":"draining"} from now on. /healthz and
 * /metrics keep answering. Thread-safe, irreversible. */
void rp_health_set_draining(struct rp_health *h);

/* Whether /readyz would answer 200 now. Thread-safe. */
int rp_health_is_ready(struct rp_health *h);

#endif
