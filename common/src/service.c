/* The long-running service skeleton (see service.h for the life cycle): merged settings table,
 * flags, start-up of logging, signals, metrics and the health endpoint, the readiness loop, the
 * liveness watch (a thread of its own) and the bounded drain. The dependency checks themselves
 * (real connections) are in service_deps.c. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rampart/health.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/metrics.h"
#include "rampart/service.h"
#include "rampart/signals.h"

#define MAX_CHECKS     8
#define N_COMMON       5
#define DRAIN_GRACE_MS 2000 /* past the drain timeout, the watchdog exits the process */
#define LIVE_EVERY_MS  1000 /* the liveness check's period */
#define LIVE_NAP_MS    50   /* its thread notices the drain this fast */

struct check {
    const char *name;
    rp_check_fn fn;
    void (*cleanup)(void *ud);
    void *ud;
    struct rp_series *up;
    struct rp_series *seconds;
    int degrades; /* a failure leaves the service ready, degraded (rp_service_check_degrades) */
};

struct rp_service {
    const struct rp_service_def *def;
    char prog[64];
    char listen_default[40];
    struct rp_setting *table;
    size_t n;
    char *log_level, *instance, *listen;
    long drain_ms, check_ms;
    struct rp_health *health;
    struct rp_metrics *metrics;
    struct rp_series *ready_gauge;
    struct check checks[MAX_CHECKS];
    size_t nchecks;
    rp_drain_fn drain;
    void *drain_ud;
    int was_ready; /* -1 before the first round of checks */
    char last_reason[512];
    rp_live_fn live;
    void *live_ud;
    struct rp_series *live_gauge;
    int stalled;
    long live_exit_ms;    /* exit when still stalled this long after it was first seen */
    double stalled_since; /* now_s() when the check started failing */
    pthread_t live_thread;
    int live_started;
    atomic_int live_stop;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void build_table(struct rp_service *svc)
{
    const struct rp_service_def *def = svc->def;
    svc->n = N_COMMON + def->n_settings;
    svc->table = rp_xcalloc(svc->n, sizeof(*svc->table));
    snprintf(svc->listen_default, sizeof(svc->listen_default), "127.0.0.1:%u", def->default_port);
    const struct rp_setting common[N_COMMON] = {
        {"RAMPART_LOG_LEVEL", RP_SET_ENUM, "info", "lowest level logged", &svc->log_level, 0, 0,
         "debug|info|warn|error", 0},
        {"RAMPART_INSTANCE", RP_SET_STRING, "",
         "instance name in logs and metrics (empty: hostname-pid)", &svc->instance, 0, 0, NULL, 0},
        {"RAMPART_HTTP_LISTEN", RP_SET_LISTEN, svc->listen_default,
         "address of /healthz, /readyz and /metrics (port 0: any free port)", &svc->listen, 0, 0,
         NULL, 0},
        {"RAMPART_DRAIN_TIMEOUT", RP_SET_DURATION, "30s",
         "on SIGTERM, how long in-flight work may take before it is handed back", &svc->drain_ms, 0,
         3600000, NULL, 0},
        {"RAMPART_READY_CHECK_INTERVAL", RP_SET_DURATION, "5s",
         "how often dependencies are checked for /readyz", &svc->check_ms, 100, 3600000, NULL, 0},
    };
    memcpy(svc->table, common, sizeof(common));
    if (def->n_settings)
        memcpy(svc->table + N_COMMON, def->settings, def->n_settings * sizeof(*svc->table));
}

/* Returns -1 to go on, or the exit code. */
static int handle_argv(struct rp_service *svc, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            rp_config_print_help(stdout, svc->prog, svc->def->summary, svc->table, svc->n);
            printf("\nFlags:\n  --help, --version, --print-settings-markdown\n"
                   "\nEndpoints: GET /healthz, /readyz, /metrics. SIGTERM drains.\n");
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", svc->prog, RP_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--print-settings-markdown") == 0) {
            rp_config_print_markdown(stdout, svc->table, svc->n);
            return 0;
        }
        rp_log(RP_LOG_FATAL, NULL, "unknown argument \"%.100s\"; see %s --help", argv[i],
               svc->prog);
        return 2;
    }
    return -1;
}

int rp_service_open(const struct rp_service_def *def, int argc, char **argv,
                    struct rp_service **out, int *exit_code)
{
    static int process_metrics_added;
    struct rp_error e = {0};
    int rc = RP_EINVAL;
    struct rp_service *svc = rp_xcalloc(1, sizeof(*svc));
    svc->def = def;
    svc->was_ready = -1;
    snprintf(svc->prog, sizeof(svc->prog), "rampart-%s", def->name);
    rp_log_init(svc->prog, NULL, RP_LOG_INFO);
    build_table(svc);

    *exit_code = handle_argv(svc, argc, argv);
    if (*exit_code >= 0)
        goto out;
    *exit_code = 2;
    if (rp_config_load(svc->table, svc->n, &e) != RP_OK) {
        rp_log(RP_LOG_FATAL, NULL, "%s", e.msg);
        goto out;
    }
    enum rp_log_level level = RP_LOG_INFO;
    (void)rp_log_level_parse(svc->log_level, &level); /* the enum setting already checked it */
    rp_log_init(svc->prog, svc->instance, level);

    *exit_code = 1;
    if (rp_signals_install(&e) != RP_OK) {
        rp_log(RP_LOG_FATAL, NULL, "%s", e.msg);
        goto out;
    }
    svc->metrics = rp_metrics_default();
    if (!process_metrics_added++)
        rp_metrics_add_process(svc->metrics, svc->prog, RP_VERSION);
    svc->ready_gauge = rp_metric_series(
        rp_metrics_gauge(svc->metrics, "rampart_ready", "1 when /readyz answers 200.", NULL), NULL);
    struct rp_health_opts hopts = {.thread_per_connection_limit = def->http_connection_limit};
    if (rp_health_start_opts(svc->listen, svc->metrics, &hopts, &svc->health, &e) != RP_OK) {
        rp_log(RP_LOG_FATAL, NULL, "RAMPART_HTTP_LISTEN: %s", e.msg);
        goto out;
    }
    rp_info("%s %s starting; health endpoint on port %u", svc->prog, RP_VERSION,
            rp_health_port(svc->health));
    *exit_code = 0;
    *out = svc;
    svc = NULL;
    rc = RP_OK;
out:
    rp_service_close(svc);
    return rc;
}

void rp_service_add_check(struct rp_service *svc, const char *name, rp_check_fn fn, void *ud)
{
    rp_service_add_check_owned(svc, name, fn, NULL, ud);
}

void rp_service_add_check_owned(struct rp_service *svc, const char *name, rp_check_fn fn,
                                void (*cleanup)(void *ud), void *ud)
{
    if (svc->nchecks == MAX_CHECKS) {
        rp_log(RP_LOG_FATAL, NULL, "rp_service_add_check: more than %d checks", MAX_CHECKS);
        abort();
    }
    struct check *c = &svc->checks[svc->nchecks++];
    c->name = name;
    c->fn = fn;
    c->cleanup = cleanup;
    c->ud = ud;
    c->up = rp_metric_labels(rp_metrics_gauge(svc->metrics, "rampart_dependency_up",
                                              "1 when the dependency's readiness check passes.",
                                              "dependency"),
                             name);
    c->seconds = rp_metric_labels(
        rp_metrics_histogram(svc->metrics, "rampart_readiness_check_seconds",
                             "Duration of readiness checks.", "dependency", NULL, 0),
        name);
}

void rp_service_check_degrades(struct rp_service *svc, const char *name)
{
    for (size_t i = 0; i < svc->nchecks; i++) {
        if (strcmp(svc->checks[i].name, name) == 0) {
            svc->checks[i].degrades = 1;
            return;
        }
    }
    rp_log(RP_LOG_FATAL, NULL, "rp_service_check_degrades: no check named %s", name);
    abort();
}

void rp_service_set_liveness(struct rp_service *svc, rp_live_fn fn, void *ud, long exit_after_ms)
{
    svc->live = fn;
    svc->live_ud = ud;
    svc->live_exit_ms = exit_after_ms;
    svc->live_gauge = rp_metric_series(
        rp_metrics_gauge(svc->metrics, "rampart_live",
                         "1 while the service makes progress (/healthz answers 200)", NULL),
        NULL);
    rp_series_set(svc->live_gauge, 1);
}

static void check_live(struct rp_service *svc)
{
    if (!svc->live)
        return;
    struct rp_error e = {0};
    int rc = svc->live(svc->live_ud, &e);
    const char *why = e.msg[0] ? e.msg : rp_strerror(rc);
    rp_health_set_live(svc->health, rc == RP_OK, rc == RP_OK ? NULL : why);
    rp_series_set(svc->live_gauge, rc == RP_OK);
    if (rc != RP_OK && !svc->stalled) {
        rp_err("stalled: %s; /healthz answers 503 so that a supervisor restarts this process", why);
        svc->stalled_since = now_s();
    } else if (rc == RP_OK && svc->stalled) {
        rp_warn("making progress again: /healthz answers 200");
    }
    svc->stalled = rc != RP_OK;
    if (svc->stalled && svc->live_exit_ms > 0 &&
        (now_s() - svc->stalled_since) * 1000 >= (double)svc->live_exit_ms) {
        rp_log(RP_LOG_FATAL, NULL,
               "still stalled %ld s later (%s): exiting, so that the work this process holds "
               "goes back to the broker and a supervisor starts it again",
               svc->live_exit_ms / 1000, why);
        _exit(1);
    }
}

void rp_service_set_drain(struct rp_service *svc, rp_drain_fn fn, void *ud)
{
    svc->drain = fn;
    svc->drain_ud = ud;
}

static void run_checks(struct rp_service *svc)
{
    char reason[512] = "";
    size_t used = 0;
    int ready = 1, degraded = 0;
    for (size_t i = 0; i < svc->nchecks && !rp_signals_draining(); i++) {
        struct check *c = &svc->checks[i];
        struct rp_error e = {0};
        double t0 = now_s();
        int rc = c->fn(c->ud, &e);
        rp_series_observe(c->seconds, now_s() - t0);
        rp_series_set(c->up, rc == RP_OK);
        if (rc != RP_OK) {
            if (c->degrades)
                degraded = 1;
            else
                ready = 0;
            int n = snprintf(reason + used, sizeof(reason) - used, "%s%s: %s", used ? "; " : "",
                             c->name, e.msg[0] ? e.msg : rp_strerror(rc));
            if (n > 0)
                used = used + (size_t)n < sizeof(reason) ? used + (size_t)n : sizeof(reason) - 1;
        }
    }
    if (rp_signals_draining())
        return;
    /* ready with a reason: degraded (a failed check that rp_service_check_degrades marked) */
    rp_health_set_ready(svc->health, ready, ready && !degraded ? NULL : reason);
    rp_series_set(svc->ready_gauge, ready);
    if (ready && !degraded && (svc->was_ready != 1 || svc->last_reason[0]))
        rp_info("ready");
    else if (ready && degraded && (svc->was_ready != 1 || strcmp(reason, svc->last_reason) != 0))
        rp_warn("ready, degraded: %s", reason);
    else if (!ready && (svc->was_ready != 0 || strcmp(reason, svc->last_reason) != 0))
        rp_warn("not ready: %s", reason);
    svc->was_ready = ready;
    snprintf(svc->last_reason, sizeof(svc->last_reason), "%s", reason);
}

static void *watchdog(void *arg)
{
    long ms = *(long *)arg;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    rp_log(RP_LOG_FATAL, NULL,
           "drain callback still running %ldms after the drain timeout; "
           "exiting now",
           (long)DRAIN_GRACE_MS);
    _exit(1);
    return NULL;
}

/* The liveness check has a thread of its own: the readiness checks do I/O on the main thread,
 * and the dependency that holds a stuck thread can hold them too (a PostgreSQL that stops
 * answering holds the writer's statement and the check's SELECT 1 alike). A stall must be
 * seen, and acted on, even then. Ends when the drain starts. */
static void *live_main(void *arg)
{
    struct rp_service *svc = arg;
    while (!atomic_load(&svc->live_stop) && !rp_signals_draining()) {
        check_live(svc);
        for (int i = 0; i < LIVE_EVERY_MS / LIVE_NAP_MS; i++) {
            if (atomic_load(&svc->live_stop) || rp_signals_draining())
                break;
            struct timespec ts = {0, LIVE_NAP_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static void start_live(struct rp_service *svc)
{
    if (!svc->live)
        return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals stay with the other threads */
    svc->live_started = pthread_create(&svc->live_thread, NULL, live_main, svc) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!svc->live_started) /* cannot happen in practice; then the main loop checks */
        rp_warn("cannot start the liveness thread; liveness is checked between readiness checks");
}

static void stop_live(struct rp_service *svc)
{
    if (!svc->live_started)
        return;
    atomic_store(&svc->live_stop, 1);
    pthread_join(svc->live_thread, NULL);
    svc->live_started = 0;
}

int rp_service_run(struct rp_service *svc)
{
    start_live(svc);
    while (!rp_signals_draining()) {
        run_checks(svc);
        if (svc->live && !svc->live_started)
            check_live(svc);
        (void)rp_signals_wait(svc->check_ms);
    }
    stop_live(svc);
    rp_health_set_draining(svc->health);
    rp_series_set(svc->ready_gauge, 0);
    int sig = rp_signals_drain_signal();
    rp_info("draining (%s): not ready any more, in-flight work has %ldms",
            sig == SIGTERM  ? "SIGTERM"
            : sig == SIGINT ? "SIGINT"
                            : "requested",
            svc->drain_ms);

    static long watchdog_ms;
    watchdog_ms = svc->drain_ms + DRAIN_GRACE_MS;
    pthread_t tid;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals stay with the other threads */
    if (pthread_create(&tid, NULL, watchdog, &watchdog_ms) == 0)
        pthread_detach(tid);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    double t0 = now_s();
    int rc = svc->drain ? svc->drain(svc->drain_ud, svc->drain_ms) : RP_OK;
    long took = (long)((now_s() - t0) * 1000);
    if (rc != RP_OK) {
        rp_err("drain did not finish within %ldms (%s); in-flight work is handed back",
               svc->drain_ms, rp_strerror(rc));
        return 1;
    }
    rp_info("drained in %ldms", took);
    return 0;
}

void rp_service_close(struct rp_service *svc)
{
    if (!svc)
        return;
    stop_live(svc);
    rp_health_stop(svc->health);
    rp_signals_uninstall();
    for (size_t i = 0; i < svc->nchecks; i++)
        if (svc->checks[i].cleanup)
            svc->checks[i].cleanup(svc->checks[i].ud);
    if (svc->table)
        rp_config_cleanup(svc->table, svc->n);
    free(svc->table);
    free(svc);
}

struct rp_metrics *rp_service_metrics(struct rp_service *svc)
{
    return svc->metrics;
}

unsigned rp_service_port(const struct rp_service *svc)
{
    return rp_health_port(svc->health);
}

long rp_service_drain_timeout_ms(const struct rp_service *svc)
{
    return svc->drain_ms;
}

int rp_service_draining(const struct rp_service *svc)
{
    return rp_signals_draining();
}

int rp_service_ready(struct rp_service *svc)
{
    return rp_health_is_ready(svc->health);
}

void rp_service_set_http_app(struct rp_service *svc, const struct rp_http_app *app, void *ud)
{
    rp_health_set_app(svc->health, app, ud);
}
