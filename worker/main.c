/* rampart-worker: consumes the jobs of its location, executes the tests with libcurl, stores
 * each result, publishes run.finished (N copies per location; docs/pipeline.md "Worker").
 * main.c holds the settings and the wiring: the service skeleton (common/src/service.c)
 * serves /healthz /readyz /metrics and drains on SIGTERM; the work happens on the consumer's
 * threads (consumer.c, exec.c, store.c). `rampart-worker run FILE...` runs test files locally
 * (cli.c) on the same engine. */
#include <string.h>

#include "consumer.h"
#include "rampart/log.h"
#include "rampart/secret.h"
#include "rampart/service.h"
#include "worker.h"

static char *amqp_urls;
static char *pg_url;
static char *migrations_dir;
static char *mongo_url;
static char *location;
static char *crash_marker;
static char *secret_key;
static struct wrk_config cfg;

static const struct rp_setting settings[] = {
    RP_SETTING_AMQP_URLS(&amqp_urls),
    RP_SETTING_PG_URL(&pg_url),
    RP_SETTING_MIGRATIONS_DIR(&migrations_dir),
    RP_SETTING_MONGO_URL(&mongo_url),
    {"RAMPART_WORKER_LOCATION", RP_SET_STRING, "default",
     "the location this worker serves: it consumes rampart.jobs.LOCATION "
     "([a-z0-9][a-z0-9_-]{0,31})",
     &location, 0, 0, NULL, 0},
    {"RAMPART_WORKER_PREFETCH", RP_SET_INT, "32",
     "job messages taken from the queue and not yet acknowledged, at most", &cfg.prefetch, 1, 10000,
     NULL, 0},
    {"RAMPART_WORKER_CONCURRENCY", RP_SET_INT, "256",
     "runs executing at once (HTTP transfers in flight)", &cfg.concurrency, 1, 10000, NULL, 0},
    {"RAMPART_JOB_DELIVERY_LIMIT", RP_SET_INT, "5",
     "deliveries of a job before it is dead-lettered (x-delivery-limit of the job queues)",
     &cfg.delivery_limit, 1, 100, NULL, 0},
    {"RAMPART_RESULTS_RETENTION_DAYS", RP_SET_INT, "30",
     "results whose fire time is older than this many days are deleted (hourly); 0 keeps all",
     &cfg.retention_days, 0, 36500, NULL, 0},
    {"RAMPART_WORKER_BATCH", RP_SET_INT, "200",
     "most results written to MongoDB and PostgreSQL in one batch", &cfg.batch, 1, 5000, NULL, 0},
    {"RAMPART_WORKER_STALL_TIMEOUT", RP_SET_DURATION, "2m",
     "a worker thread that does not come back from a call for this long is stuck: /healthz "
     "answers 503 so that a supervisor restarts the worker; still stuck as long again, the "
     "worker exits (code 1) and its jobs go back to the broker",
     &cfg.stall_ms, 1000, 3600000, NULL, 0},
    {"RAMPART_SECRET_KEY", RP_SET_STRING, "",
     "32-byte key (64 hex digits) opening the sealed secret variables the dashboard stores; the "
     "dashboard's key. Empty: runs that use a secret variable end as errors",
     &secret_key, 0, 0, NULL, 1},
    {"RAMPART_WORKER_TEST_CRASH_MARKER", RP_SET_STRING, "",
     "test-only, never in production: abort() on a job whose test name contains this text "
     "(empty: off)",
     &crash_marker, 0, 0, NULL, 0},
};

static const struct rp_service_def def = {
    .name = "worker",
    .summary = "rampart-worker consumes jobs, executes the API tests, stores each result and "
               "publishes a run.finished event. Scale horizontally, per location.\n"
               "`rampart-worker run FILE... [options]` runs test files locally instead "
               "(rampart-worker run --help).",
    .default_port = 9102,
    .settings = settings,
    .n_settings = sizeof(settings) / sizeof(settings[0]),
};

/* ^[a-z0-9][a-z0-9_-]{0,31}$, as the runs table's CHECK. */
static int location_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              (i > 0 && (c == '_' || c == '-'))))
            return 0;
    }
    return 1;
}

static int drain(void *ud, long timeout_ms)
{
    return wrk_consumer_drain(ud, timeout_ms);
}

int main(int argc, char **argv)
{
    struct rp_service *svc;
    int code;
    if (argc > 1 && strcmp(argv[1], "run") == 0)
        return wrk_cli_run(argc - 1, argv + 1);
    if (rp_service_open(&def, argc, argv, &svc, &code) != RP_OK)
        return code;
    if (!location_valid(location)) {
        rp_log(RP_LOG_FATAL, NULL,
               "RAMPART_WORKER_LOCATION=\"%.64s\": expected 1-32 characters of a-z 0-9 _ -, "
               "starting with a letter or digit",
               location);
        rp_service_close(svc);
        return 2;
    }
    struct rp_error e = {0};
    int krc = rp_secret_key_parse(secret_key, cfg.secret_key, &e);
    if (krc != RP_OK && krc != RP_ENOENT) {
        rp_log(RP_LOG_FATAL, NULL, "RAMPART_SECRET_KEY: %s", e.msg);
        rp_service_close(svc);
        return 2;
    }
    cfg.have_secret_key = krc == RP_OK;
    if (!cfg.have_secret_key)
        rp_info("RAMPART_SECRET_KEY is empty: runs that use a sealed secret variable end as "
                "errors until it is set (to the dashboard's key)");
    if (*crash_marker)
        rp_warn("RAMPART_WORKER_TEST_CRASH_MARKER is set (\"%s\"): this worker aborts on tests "
                "whose name contains it; a test-only setting, never use it in production",
                crash_marker);
    rp_service_use_rabbitmq(svc, &amqp_urls);
    rp_service_use_postgres(svc, &pg_url, &migrations_dir);
    rp_service_use_mongo(svc, &mongo_url);
    cfg.amqp_urls = amqp_urls;
    cfg.pg_url = pg_url;
    cfg.mongo_url = mongo_url;
    cfg.migrations_dir = migrations_dir;
    cfg.location = location;
    cfg.crash_marker = crash_marker;
    struct wrk_consumer *w = NULL;
    if (wrk_consumer_start(&cfg, rp_service_metrics(svc), &w, &e) != RP_OK) {
        rp_log(RP_LOG_FATAL, NULL, "%s", e.msg);
        rp_service_close(svc);
        return 1;
    }
    rp_info("worker for location %s: prefetch %ld, concurrency %ld, delivery limit %ld, "
            "retention %ld days, batch %ld",
            location, cfg.prefetch, cfg.concurrency, cfg.delivery_limit, cfg.retention_days,
            cfg.batch);
    rp_service_set_drain(svc, drain, w);
    rp_service_set_liveness(svc, wrk_consumer_live, w, cfg.stall_ms);
    code = rp_service_run(svc);
    wrk_consumer_free(w);
    rp_service_close(svc);
    return code;
}
