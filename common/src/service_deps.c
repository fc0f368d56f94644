/* Readiness checks that talk to the real dependencies, not just their ports: PostgreSQL
 * (connect, apply migrations once, SELECT 1), MongoDB (ping through a pool with a short
 * server-selection bound) and RabbitMQ (an open AMQP connection). Each check keeps its own
 * connection across rounds and reconnects when it was lost; the service owns and frees it. */
#include <stdlib.h>

#include "rampart/amqp.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/mongo.h"
#include "rampart/pg.h"
#include "rampart/service.h"

#define CHECK_BOUND_MS 2000
#define CHECK_REPLY_MS 5000 /* a check's reply (ping, SELECT 1): the round must go on */

struct pg_dep {
    char **conninfo;
    char **migrations_dir;
    struct rp_pg *pg;
    int migrated;
};

static int check_pg(void *ud, struct rp_error *err)
{
    struct pg_dep *d = ud;
    int rc;
    if (!d->pg) {
        rc = rp_pg_open(*d->conninfo, &d->pg, err);
        if (rc != RP_OK)
            return rc;
        rp_pg_set_reconnect_budget(d->pg, CHECK_BOUND_MS);
    }
    if (d->migrations_dir && !d->migrated) {
        int applied = 0, version = 0;
        const char *dir = **d->migrations_dir ? *d->migrations_dir : NULL;
        rc = rp_pg_migrate(d->pg, dir, &applied, err);
        if (rc != RP_OK)
            return rc;
        if (rp_pg_schema_version(d->pg, &version, NULL) != RP_OK)
            version = -1;
        rp_info("schema migrations: %d applied now, schema version %d", applied, version);
        d->migrated = 1;
    }
    return rp_pg_ping(d->pg, CHECK_REPLY_MS, err);
}

static void free_pg(void *ud)
{
    struct pg_dep *d = ud;
    rp_pg_close(d->pg);
    free(d);
}

void rp_service_use_postgres(struct rp_service *svc, char **conninfo, char **migrations_dir)
{
    struct pg_dep *d = rp_xcalloc(1, sizeof(*d));
    d->conninfo = conninfo;
    d->migrations_dir = migrations_dir;
    rp_service_add_check_owned(svc, "postgres", check_pg, free_pg, d);
}

struct mongo_dep {
    char **uri;
    struct rp_mongo *mongo;
};

static int check_mongo(void *ud, struct rp_error *err)
{
    struct mongo_dep *d = ud;
    if (!d->mongo)
        return rp_mongo_open(*d->uri, CHECK_BOUND_MS, CHECK_REPLY_MS, &d->mongo,
                             err); /* pings on open */
    return rp_mongo_ping(d->mongo, err);
}

static void free_mongo(void *ud)
{
    struct mongo_dep *d = ud;
    rp_mongo_close(d->mongo);
    free(d);
}

void rp_service_use_mongo(struct rp_service *svc, char **uri)
{
    struct mongo_dep *d = rp_xcalloc(1, sizeof(*d));
    d->uri = uri;
    rp_service_add_check_owned(svc, "mongodb", check_mongo, free_mongo, d);
}

struct amqp_dep {
    char **urls;
    struct rp_amqp_admin *admin;
    int declared;
};

static int check_amqp(void *ud, struct rp_error *err)
{
    struct amqp_dep *d = ud;
    int rc;
    if (!d->admin) {
        struct rp_amqp_opts opts = {.connect_timeout_ms = CHECK_BOUND_MS, .name = "readiness"};
        rc = rp_amqp_admin_open(*d->urls, &opts, &d->admin, err);
        if (rc != RP_OK)
            return rc;
    }
    if (!d->declared) {
        rc = rp_amqp_declare_topology(d->admin, NULL, 0, NULL, err);
        d->declared = rc == RP_OK;
    } else {
        rc = rp_amqp_declare_exchange(d->admin, RP_AMQP_EVENTS_EXCHANGE, "topic", err);
    }
    if (rc != RP_OK) {
        rp_amqp_admin_close(d->admin);
        d->admin = NULL;
    }
    return rc;
}

static void free_amqp(void *ud)
{
    struct amqp_dep *d = ud;
    rp_amqp_admin_close(d->admin);
    free(d);
}

void rp_service_use_rabbitmq(struct rp_service *svc, char **urls)
{
    struct amqp_dep *d = rp_xcalloc(1, sizeof(*d));
    d->urls = urls;
    rp_service_add_check_owned(svc, "rabbitmq", check_amqp, free_amqp, d);
}
