/* The skeleton every long-running service shares: common settings merged with the service's
 * own table, flags, JSON logging, signals, the health endpoint and process metrics, readiness
 * checks, and the drain. Life of a service:
 *   rp_service_open  -> starting (not ready; checks run at once, then every interval)
 *   rp_service_run   -> ready / not ready as the checks say, until SIGTERM or SIGINT
 *                    -> draining: readiness false first, then the drain callback, bounded by
 *                       RAMPART_DRAIN_TIMEOUT -> "drained" logged, run returns the exit code
 *   rp_service_close -> endpoint stopped, everything freed. */
#ifndef RAMPART_SERVICE_H
#define RAMPART_SERVICE_H

#include <stddef.h>

#include "rampart/config.h"
#include "rampart/error.h"

struct rp_service;
struct rp_metrics;

/* The one place for the dependency settings' defaults and help (the servers started by
 * scripts/servers.sh). Passwords in PG and Mongo values are redacted in messages; the AMQP
 * setting is secret because its default carries one. Use as entries of a service's settings table:
 * RP_SETTING_PG_URL(&var) where `var` is a `char *`. */
#define RP_DEFAULT_PG_URL                                                                          \
    "host=127.0.0.1 port=55432 dbname=rampart user=postgres connect_timeout=5 "                    \
    "target_session_attrs=read-write"
#define RP_DEFAULT_AMQP_URLS "amqp://guest:guest@127.0.0.1:55672/"
#define RP_DEFAULT_MONGO_URL "mongodb://127.0.0.1:57017/rampart"
#define RP_SETTING_PG_URL(out)                                                                     \
    {                                                                                              \
        "RAMPART_PG_URL", RP_SET_PG_CONNINFO, RP_DEFAULT_PG_URL,                                   \
            "PostgreSQL conninfo or URL; list every host (host=a,b) for failover", (out), 0, 0,    \
            NULL, 0                                                                                \
    }
#define RP_SETTING_AMQP_URLS(out)                                                                  \
    {                                                                                              \
        "RAMPART_AMQP_URLS", RP_SET_AMQP_URLS, RP_DEFAULT_AMQP_URLS,                               \
            "RabbitMQ URLs, comma-separated, one per cluster node", (out), 0, 0, NULL, 1           \
    }
#define RP_SETTING_MIGRATIONS_DIR(out)                                                             \
    {                                                                                              \
        "RAMPART_MIGRATIONS_DIR", RP_SET_STRING, "",                                               \
            "folder of the PostgreSQL schema migrations (NNNN_name.sql), applied at start; "       \
            "empty: common/migrations of the source tree the binary was built from",               \
            (out), 0, 0, NULL, 0                                                                   \
    }
#define RP_SETTING_MONGO_URL(out)                                                                  \
    {                                                                                              \
        "RAMPART_MONGO_URL", RP_SET_MONGO_URI, RP_DEFAULT_MONGO_URL,                               \
            "MongoDB URI (replica set: list every host) with the database name", (out), 0, 0,      \
            NULL, 0                                                                                \
    }

/* What a service declares about itself; static data that outlives the service. */
struct rp_service_def {
    const char *name;                  /* "scheduler": logs say service=rampart-scheduler */
    const char *summary;               /* a paragraph for --help */
    unsigned default_port;             /* RAMPART_HTTP_LISTEN defaults to 127.0.0.1:<port> */
    const struct rp_setting *settings; /* the service's own settings (may be NULL) */
    size_t n_settings;
    /* > 0: the endpoint serves an application too (rp_service_set_http_app) with a thread
     * per connection, at most this many connections; 0: health endpoint only. */
    unsigned http_connection_limit;
};

/* A readiness check: RP_OK when the dependency answers; otherwise fill `err` with a short
 * reason (it is shown in /readyz and logged on change). Must return within a few seconds:
 * checks run one after the other on the main thread. */
typedef int (*rp_check_fn)(void *ud, struct rp_error *err);

/* Stop taking new work and finish or hand back what is in flight, within `timeout_ms`.
 * Return RP_OK when done, RP_ETIMEDOUT if work was abandoned. */
typedef int (*rp_drain_fn)(void *ud, long timeout_ms);

/* Parse flags and settings, start logging, signals, process metrics and the health endpoint.
 * Returns RP_OK with *out set: register checks and the drain callback, then rp_service_run.
 * Otherwise main must return *exit_code at once; everything was already reported:
 * 0 after --help, --version or --print-settings-markdown; 2 after an unknown argument or a bad
 * setting (one JSON line with level fatal, naming the setting); 1 when the endpoint or the
 * signal handlers cannot start. */
int rp_service_open(const struct rp_service_def *def, int argc, char **argv,
                    struct rp_service **out, int *exit_code) RP_MUST_CHECK;

/* Register a readiness check under `name` ("postgres"). Up to 8; call before rp_service_run.
 * `ud` must outlive the service. */
void rp_service_add_check(struct rp_service *svc, const char *name, rp_check_fn fn, void *ud);

/* Mark the registered check `name` as one whose failure leaves the service ready but
 * degraded: /readyz answers 200 {"status":"degraded","reason":...}, rampart_dependency_up is 0
 * and the change is logged. For a dependency that every copy shares and only part of the
 * service needs (the dashboard's MongoDB holds run results only): its outage must not take
 * every copy out of the load balancer at once. Unknown names abort (a programming error). */
void rp_service_check_degrades(struct rp_service *svc, const char *name);

/* Like rp_service_add_check, but the service owns `ud`: rp_service_close calls
 * `cleanup(ud)` (may be NULL). Used by the dependency checks below. */
void rp_service_add_check_owned(struct rp_service *svc, const char *name, rp_check_fn fn,
                                void (*cleanup)(void *ud), void *ud);

/* Real readiness checks on the service's dependencies (service_deps.c). Each takes a pointer
 * to the setting's value (registered before settings are loaded is fine), keeps one
 * connection of its own for the checks, and closes it in rp_service_close.
 *  - postgres: connects (multi-host conninfo), applies the schema migrations from
 *    `*migrations_dir` once (NULL: none; safe with many processes starting together), then
 *    `SELECT 1` on every round (its reply waited for 5 s at most); ready only once migrations
 *    are applied.
 *  - mongodb: a pool with a 2 s server-selection bound, `ping` every round.
 *  - rabbitmq: opens an AMQP connection (any URL of the list), declares the shared topology
 *    of DESIGN.md once (exchanges, event queues; job queues per location come with the
 *    worker), then redeclares the events exchange every round (a cheap, idempotent round
 *    trip); a lost connection is reopened on the next round. */
void rp_service_use_postgres(struct rp_service *svc, char **conninfo, char **migrations_dir);
void rp_service_use_mongo(struct rp_service *svc, char **uri);
void rp_service_use_rabbitmq(struct rp_service *svc, char **urls);

/* Mount `app` (see health.h) on the endpoint: from now on every path other than /healthz,
 * /readyz and /metrics goes to it. `ud` must outlive the service. */
struct rp_http_app;
void rp_service_set_http_app(struct rp_service *svc, const struct rp_http_app *app, void *ud);

/* A liveness check: RP_OK while the service makes progress; otherwise fill `err` with what is
 * stuck. It must not block (it reads state the service's threads keep). */
typedef int (*rp_live_fn)(void *ud, struct rp_error *err);

/* Set the liveness check (default: none, always live). It runs every second on a thread of
 * its own, never behind a readiness check that waits on a dependency; while it fails, /healthz
 * answers 503 {"status":"stalled","reason":...} so that a supervisor restarts the process,
 * rampart_live is 0, and each change is logged (an error when it starts failing). If it still
 * fails `exit_after_ms` later (> 0), the process exits with code 1 (logged as fatal): a stuck
 * thread cannot drain, and its connections closing return its unacknowledged work to the
 * broker even where nothing acts on /healthz (docker-compose restarts a container that
 * exits). `ud` must outlive the service. */
void rp_service_set_liveness(struct rp_service *svc, rp_live_fn fn, void *ud, long exit_after_ms);

/* Set the drain callback (default: none, the drain ends at once). */
void rp_service_set_drain(struct rp_service *svc, rp_drain_fn fn, void *ud);

/* Run the main loop on the calling thread: readiness checks every
 * RAMPART_READY_CHECK_INTERVAL until a termination signal, then the drain. Returns the exit
 * code for main: 0 when drained, 1 when the drain timed out. */
int rp_service_run(struct rp_service *svc) RP_MUST_CHECK;

/* Stop the endpoint, uninstall the signal handlers, free settings. Accepts NULL. */
void rp_service_close(struct rp_service *svc);

/* The registry served at /metrics (the process-wide default registry). */
struct rp_metrics *rp_service_metrics(struct rp_service *svc);
/* The bound health port, the drain timeout in ms, and whether the drain started. */
unsigned rp_service_port(const struct rp_service *svc);
long rp_service_drain_timeout_ms(const struct rp_service *svc);
int rp_service_draining(const struct rp_service *svc);
/* Whether /readyz answers 200 now. Thread-safe. */
int rp_service_ready(struct rp_service *svc);

#endif
