/* rampart-scheduler: turns due schedules into runs, exactly once per fire time, and publishes them
 * as jobs (N copies, active-active). For now only the operations skeleton (common/src/service.c):
 * settings, JSON logs, /healthz /readyz /metrics with readiness from its dependencies, and the
 * drain on SIGTERM. */
#include "rampart/service.h"

static char *pg_url;
static char *migrations_dir;
static char *amqp_urls;

static const struct rp_setting settings[] = {
    RP_SETTING_PG_URL(&pg_url),
    RP_SETTING_MIGRATIONS_DIR(&migrations_dir),
    RP_SETTING_AMQP_URLS(&amqp_urls),
};

static const struct rp_service_def def = {
    .name = "scheduler",
    .summary = "rampart-scheduler turns due schedules into runs, exactly once per (schedule, fire "
               "time), and publishes them as jobs. Run several copies; they share the work.",
    .default_port = 9101,
    .settings = settings,
    .n_settings = sizeof(settings) / sizeof(settings[0]),
};

int main(int argc, char **argv)
{
    struct rp_service *svc;
    int code;
    if (rp_service_open(&def, argc, argv, &svc, &code) != RP_OK)
        return code;
    rp_service_use_postgres(svc, &pg_url, &migrations_dir);
    rp_service_use_rabbitmq(svc, &amqp_urls);
    code = rp_service_run(svc);
    rp_service_close(svc);
    return code;
}
