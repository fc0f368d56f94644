/* rampart-scheduler: turns due schedules into runs, exactly once per (schedule, fire time,
 * location), and publishes them as jobs (N copies, active-active; docs/pipeline.md). main.c
 * holds the settings and the wiring: the service skeleton (common/src/service.c) serves
 * /healthz /readyz /metrics and drains on SIGTERM; the work happens on the loop thread
 * (loop.c). */
#include "rampart/log.h"
#include "rampart/service.h"
#include "scheduler.h"

static char *pg_url;
static char *migrations_dir;
static char *amqp_urls;
static struct sched_config cfg;

static const struct rp_setting settings[] = {
    RP_SETTING_PG_URL(&pg_url),
    RP_SETTING_MIGRATIONS_DIR(&migrations_dir),
    RP_SETTING_AMQP_URLS(&amqp_urls),
    {"RAMPART_SCHEDULER_TICK", RP_SET_DURATION, "250ms",
     "longest sleep between two claims when nothing is due (it wakes earlier for the next due "
     "schedule)",
     &cfg.tick_ms, 1, 60000, NULL, 0},
    {"RAMPART_SCHEDULER_BATCH", RP_SET_INT, "500", "schedules claimed per transaction", &cfg.batch,
     1, 10000, NULL, 0},
    {"RAMPART_SCHEDULER_JOB_RUNS", RP_SET_INT, "1",
     "runs carried by one job message (several amortize the broker's per-message cost)",
     &cfg.job_runs, 1, 1000, NULL, 0},
    {"RAMPART_SCHEDULER_LEASE", RP_SET_DURATION, "10s",
     "a run still unconfirmed by the broker this long after its creation is published again "
     "by the sweep",
     &cfg.lease_ms, 1000, 3600000, NULL, 0},
    {"RAMPART_SCHEDULER_SWEEP_INTERVAL", RP_SET_DURATION, "1s",
     "how often pending runs whose lease passed (and run-now requests) are looked for",
     &cfg.sweep_ms, 100, 600000, NULL, 0},
    {"RAMPART_SCHEDULER_MISFIRE_GRACE", RP_SET_DURATION, "60s",
     "a fire late by at most this runs late; older missed fires are coalesced into one run",
     &cfg.grace_ms, 0, 86400000, NULL, 0},
    {"RAMPART_RESULTS_RETENTION_DAYS", RP_SET_INT, "30",
     "finished runs (and their results) older than this many days are deleted; 0 keeps all",
     &cfg.retention_days, 0, 36500, NULL, 0},
    {"RAMPART_JOB_DELIVERY_LIMIT", RP_SET_INT, "5",
     "deliveries of a job before it is dead-lettered (x-delivery-limit of the job queues)",
     &cfg.delivery_limit, 1, 100, NULL, 0},
};

static const struct rp_service_def def = {
    .name = "scheduler",
    .summary = "rampart-scheduler turns due schedules into runs, exactly once per (schedule, fire "
               "time, location), and publishes them as jobs. Run several copies; they share the "
               "work (row locks, no leader).",
    .default_port = 9101,
    .settings = settings,
    .n_settings = sizeof(settings) / sizeof(settings[0]),
};

static int drain(void *ud, long timeout_ms)
{
    struct sched_loop **loop = ud;
    int rc = sched_loop_stop(*loop, timeout_ms);
    *loop = NULL;
    return rc;
}

int main(int argc, char **argv)
{
    struct rp_service *svc;
    int code;
    if (rp_service_open(&def, argc, argv, &svc, &code) != RP_OK)
        return code;
    cfg.pg_url = pg_url;
    cfg.amqp_urls = amqp_urls;
    cfg.migrations_dir = migrations_dir;
    rp_service_use_postgres(svc, &pg_url, &migrations_dir);
    rp_service_use_rabbitmq(svc, &amqp_urls);
    struct sched_loop *loop = NULL;
    struct rp_error e;
    if (sched_loop_start(&cfg, &loop, &e) != RP_OK) {
        rp_log(RP_LOG_FATAL, NULL, "%s", e.msg);
        rp_service_close(svc);
        return 1;
    }
    rp_service_set_drain(svc, drain, &loop);
    code = rp_service_run(svc);
    (void)sched_loop_stop(loop, 1000); /* no-op after a drain */
    rp_service_close(svc);
    return code;
}
