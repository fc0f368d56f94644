/* rampart-worker: consumes jobs, executes tests with libcurl, stores results, publishes
 * run.finished (N copies per location). For now only the operations skeleton
 * (common/src/service.c): settings, JSON logs, /healthz /readyz /metrics with readiness from its
 * dependencies, and the drain on SIGTERM. */
#include "rampart/service.h"

static char *amqp_urls;
static char *pg_url;
static char *migrations_dir;
static char *mongo_url;

static const struct rp_setting settings[] = {
    RP_SETTING_AMQP_URLS(&amqp_urls),
    RP_SETTING_PG_URL(&pg_url),
    RP_SETTING_MIGRATIONS_DIR(&migrations_dir),
    RP_SETTING_MONGO_URL(&mongo_url),
};

static const struct rp_service_def def = {
    .name = "worker",
    .summary = "rampart-worker consumes jobs, executes the API tests, stores each result and "
               "publishes a run.finished event. Scale horizontally, per location.",
    .default_port = 9102,
    .settings = settings,
    .n_settings = sizeof(settings) / sizeof(settings[0]),
};

int main(int argc, char **argv)
{
    struct rp_service *svc;
    int code;
    if (rp_service_open(&def, argc, argv, &svc, &code) != RP_OK)
        return code;
    rp_service_use_rabbitmq(svc, &amqp_urls);
    rp_service_use_postgres(svc, &pg_url, &migrations_dir);
    rp_service_use_mongo(svc, &mongo_url);
    code = rp_service_run(svc);
    rp_service_close(svc);
    return code;
}
