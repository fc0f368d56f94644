/* rampart-worker: consumes jobs, executes tests with libcurl, stores results, publishes
 * run.finished (N copies per location); the service part is the operations skeleton so far
 * (common/src/service.c). `rampart-worker run FILE...` runs test files locally (cli.c) on the
 * same engine. */
#include <string.h>

#include "rampart/service.h"
#include "worker.h"

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
               "publishes a run.finished event. Scale horizontally, per location.\n"
               "`rampart-worker run FILE... [options]` runs test files locally instead "
               "(rampart-worker run --help).",
    .default_port = 9102,
    .settings = settings,
    .n_settings = sizeof(settings) / sizeof(settings[0]),
};

int main(int argc, char **argv)
{
    struct rp_service *svc;
    int code;
    if (argc > 1 && strcmp(argv[1], "run") == 0)
        return wrk_cli_run(argc - 1, argv + 1);
    if (rp_service_open(&def, argc, argv, &svc, &code) != RP_OK)
        return code;
    rp_service_use_rabbitmq(svc, &amqp_urls);
    rp_service_use_postgres(svc, &pg_url, &migrations_dir);
    rp_service_use_mongo(svc, &mongo_url);
    code = rp_service_run(svc);
    rp_service_close(svc);
    return code;
}
