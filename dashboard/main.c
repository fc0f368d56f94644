/* rampart-dashboard: the REST API (/api/v1, described by /api/v1/openapi.json) and the web UI,
 * on the same port as /healthz, /readyz and /metrics. Stateless: sessions live in PostgreSQL,
 * so any number of copies serve any request behind a load balancer. On SIGTERM readiness goes
 * false first (the balancer stops sending), then in-flight requests finish, then it exits. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "dash.h"
#include "rampart/health.h"
#include "rampart/log.h"
#include "rampart/mongo.h"
#include "rampart/secret.h"
#include "rampart/service.h"

extern const struct rp_http_app dash_http_app;

static struct dash_config cfg;

static const struct rp_setting settings[] = {
    RP_SETTING_PG_URL(&cfg.pg_url),
    RP_SETTING_MIGRATIONS_DIR(&cfg.migrations_dir),
    RP_SETTING_MONGO_URL(&cfg.mongo_url),
    {"RAMPART_ADMIN_EMAIL", RP_SET_STRING, "admin@rampart.local",
     "e-mail of the first administrator, created at start when there is no user at all",
     &cfg.admin_email, 0, 0, NULL, 0},
    {"RAMPART_ADMIN_PASSWORD", RP_SET_STRING, "",
     "password of that first administrator (at least 10 characters); empty: no bootstrap",
     &cfg.admin_password, 0, 0, NULL, 1},
    {"RAMPART_SECRET_KEY", RP_SET_STRING, "",
     "32-byte key (64 hex digits) sealing secrets at rest (secret variables, channel "
     "credentials); the same on every copy. Empty: secrets cannot be saved",
     &cfg.secret_key, 0, 0, NULL, 1},
    {"RAMPART_PUBLIC_URL", RP_SET_STRING, "http://127.0.0.1:8080",
     "the dashboard's address as users reach it (links in alerts; https: makes cookies Secure)",
     &cfg.public_url, 0, 0, NULL, 0},
    {"RAMPART_COOKIE_SECURE", RP_SET_ENUM, "auto",
     "Secure flag of the session cookie: auto (when reached over https), always, never",
     &cfg.cookie_secure, 0, 0, "auto|always|never", 0},
    {"RAMPART_TRUST_PROXY", RP_SET_BOOL, "false",
     "believe X-Forwarded-For and X-Forwarded-Proto (only behind your own load balancer)",
     &cfg.trust_proxy, 0, 0, NULL, 0},
    {"RAMPART_SESSION_IDLE_TIMEOUT", RP_SET_DURATION, "12h", "a session unused this long ends",
     &cfg.session_idle_ms, 60000, 31536000000L, NULL, 0},
    {"RAMPART_SESSION_MAX_AGE", RP_SET_DURATION, "168h",
     "a session ends this long after login, used or not", &cfg.session_max_ms, 60000, 31536000000L,
     NULL, 0},
    {"RAMPART_LOGIN_MAX_FAILURES", RP_SET_INT, "10",
     "failed logins per e-mail or address within the window before logins are refused",
     &cfg.login_max_failures, 1, 1000000, NULL, 0},
    {"RAMPART_LOGIN_WINDOW", RP_SET_DURATION, "15m", "the window of RAMPART_LOGIN_MAX_FAILURES",
     &cfg.login_window_ms, 1000, 86400000, NULL, 0},
    {"RAMPART_DASHBOARD_PG_POOL", RP_SET_INT, "16",
     "PostgreSQL connections of this copy (requests wait for a free one)", &cfg.pg_pool, 1, 1000,
     NULL, 0},
    {"RAMPART_MAX_BODY", RP_SET_INT, "1048576", "largest request body in bytes (larger: 413)",
     &cfg.max_body, 1024, 67108864, NULL, 0},
    {"RAMPART_DASHBOARD_DRAIN_DELAY", RP_SET_DURATION, "2s",
     "on SIGTERM, keep serving this long with /readyz false so the load balancer notices, "
     "then wait for in-flight requests",
     &cfg.drain_delay_ms, 0, 600000, NULL, 0},
    {"RAMPART_RUN_WAIT_MAX", RP_SET_DURATION, "10m",
     "the longest a CI trigger (?wait=...) or a test notification (.../test?wait=...) may wait",
     &cfg.run_wait_max_ms, 1000, 3600000, NULL, 0},
};

static const struct rp_service_def def = {
    .name = "dashboard",
    .summary = "rampart-dashboard serves the REST API (/api/v1, OpenAPI at "
               "/api/v1/openapi.json) and the web UI: projects, tests, schedules, channels, "
               "results and charts, run-now and CI triggers. Stateless; run several copies "
               "behind a load balancer.",
    .default_port = 8080,
    .settings = settings,
    .n_settings = sizeof(settings) / sizeof(settings[0]),
    .http_connection_limit = 2048,
};

static int load_secret_key(struct dash_app *app)
{
    struct rp_error e = {0};
    int rc = rp_secret_key_parse(cfg.secret_key, app->secret_key, &e);
    if (rc == RP_ENOENT) {
        rp_warn("RAMPART_SECRET_KEY is empty: secret variables and channel credentials cannot "
                "be saved until it is set");
        return RP_OK;
    }
    if (rc != RP_OK) {
        rp_log(RP_LOG_FATAL, NULL, "RAMPART_SECRET_KEY: %s", e.msg);
        return rc;
    }
    app->have_secret_key = 1;
    return RP_OK;
}

/* A readiness check after the PostgreSQL one (which applies the migrations): creates the
 * first administrator once, then always passes. */
static int bootstrap_check(void *ud, struct rp_error *err)
{
    static atomic_int done;
    if (atomic_load(&done))
        return RP_OK;
    int rc = dash_bootstrap_admin(ud, err);
    if (rc == RP_OK)
        atomic_store(&done, 1);
    return rc;
}

/* The drain: readiness is already false; give the balancer time to notice, then wait for
 * the requests in flight. */
static int drain(void *ud, long timeout_ms)
{
    (void)ud;
    struct timespec ts = {cfg.drain_delay_ms / 1000, (cfg.drain_delay_ms % 1000) * 1000000};
    if (cfg.drain_delay_ms > timeout_ms)
        ts = (struct timespec){timeout_ms / 1000, (timeout_ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
    long waited = cfg.drain_delay_ms;
    while (dash_in_flight() > 0 && waited < timeout_ms) {
        struct timespec step = {0, 20 * 1000000};
        nanosleep(&step, NULL);
        waited += 20;
    }
    return dash_in_flight() > 0 ? RP_ETIMEDOUT : RP_OK;
}

int main(int argc, char **argv)
{
    struct rp_service *svc;
    int code;
    if (sodium_init() < 0) {
        fprintf(stderr, "libsodium cannot start\n");
        return 1;
    }
    if (rp_service_open(&def, argc, argv, &svc, &code) != RP_OK)
        return code;
    rp_service_use_postgres(svc, &cfg.pg_url, &cfg.migrations_dir);
    rp_service_use_mongo(svc, &cfg.mongo_url);
    /* MongoDB holds run results only: without it every other route still works, so its
     * outage leaves the dashboard ready (degraded) instead of taking every copy out of the
     * load balancer at once (measured in tests/ha: 18 failed requests when it did) */
    rp_service_check_degrades(svc, "mongodb");

    static struct dash_app app;
    app.cfg = &cfg;
    app.svc = svc;
    pthread_mutex_init(&app.mongo_lock, NULL);
    struct rp_error e = {0};
    code = 1;
    if (load_secret_key(&app) != RP_OK)
        goto out;
    if (dash_pool_open(cfg.pg_url, cfg.pg_pool, &app.pool, &e) != RP_OK) {
        rp_log(RP_LOG_FATAL, NULL, "%s", e.msg);
        goto out;
    }
    dash_metrics_init(&app);
    rp_service_add_check(svc, "bootstrap", bootstrap_check, &app);
    rp_service_set_drain(svc, drain, &app);
    rp_service_set_http_app(svc, &dash_http_app, &app);
    code = rp_service_run(svc);
out:
    rp_service_close(svc); /* stops the endpoint: no request runs after this */
    dash_pool_close(app.pool);
    rp_mongo_close(app.mongo);
    pthread_mutex_destroy(&app.mongo_lock);
    return code;
}
