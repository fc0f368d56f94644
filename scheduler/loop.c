/* The scheduler's loop thread: claim due schedules, publish their runs, sweep pending runs
 * whose lease passed, delete old finished runs, and sleep until the next schedule is due (at
 * most one tick). The health endpoint and the drain live on the main thread (service.c);
 * sched_loop_stop is the drain: stop claiming, wait for the outstanding confirms. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "rampart/amqp.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/metrics.h"
#include "rampart/pg.h"
#include "scheduler.h"

#define RETENTION_PERIOD_MS (3600L * 1000) /* how often old runs are deleted */
#define RETENTION_CHUNK     "5000"         /* rows per delete statement */
#define SWEEP_LIMIT         2000           /* runs per sweep */
#define MIN_WAIT_MS         5 /* due rows locked by another scheduler: let it finish first */

struct sched_loop {
    const struct sched_config *cfg;
    pthread_t thread;
    atomic_int stop;
    atomic_long drain_timeout_ms;
    int drain_rc;
};

static const char retention_sql[] =
    "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE fire_time < now() - "
    "$1::int * interval '1 day' AND status IN ('passed', 'failed', 'error') LIMIT " RETENTION_CHUNK
    ")";

static void delete_old_runs(struct rp_pg *pg, long days)
{
    char d[24];
    snprintf(d, sizeof(d), "%ld", days);
    const char *p[] = {d};
    long total = 0;
    for (;;) {
        PGresult *res = NULL;
        struct rp_error e;
        if (rp_pg_exec_idempotent(pg, retention_sql, 1, p, &res, &e) != RP_OK) {
            rp_warn("retention: cannot delete old runs: %s", e.msg);
            return;
        }
        long n = atol(PQcmdTuples(res));
        PQclear(res);
        total += n;
        if (n < atol(RETENTION_CHUNK))
            break;
    }
    if (total)
        rp_info("retention: deleted %ld finished runs older than %ld days", total, days);
}

/* Connect and make sure the schema is there (the migrations are safe to run from many
 * processes at once). */
static struct rp_pg *connect_pg(const struct sched_config *cfg)
{
    struct rp_pg *pg = NULL;
    struct rp_error e;
    if (rp_pg_open(cfg->pg_url, &pg, &e) != RP_OK) {
        rp_warn("cannot connect to PostgreSQL: %s", e.msg);
        return NULL;
    }
    const char *dir = cfg->migrations_dir && *cfg->migrations_dir ? cfg->migrations_dir : NULL;
    if (rp_pg_migrate(pg, dir, NULL, &e) != RP_OK) {
        rp_warn("cannot apply the schema migrations: %s", e.msg);
        rp_pg_close(pg);
        return NULL;
    }
    return pg;
}

static void *loop_main(void *ud)
{
    struct sched_loop *l = ud;
    const struct sched_config *cfg = l->cfg;
    struct rp_metrics *m = rp_metrics_default();
    struct rp_series *scheduled =
        rp_metric_series(rp_metrics_counter(m, "rampart_runs_scheduled_total",
                                            "Runs created from due schedules", NULL),
                         NULL);
    static const double claim_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                           0.1,   0.25,   0.5,   1,    2.5,   5};
    struct rp_series *claim_s = rp_metric_series(
        rp_metrics_histogram(m, "rampart_scheduler_claim_seconds",
                             "Duration of one claim transaction", NULL, claim_buckets,
                             sizeof(claim_buckets) / sizeof(claim_buckets[0])),
        NULL);
    struct sched_dispatch *d = NULL;
    struct rp_error e;
    if (sched_dispatch_new(cfg, &d, &e) != RP_OK) {
        rp_err("scheduler: %s", e.msg);
        return NULL;
    }
    struct rp_pg *pg = NULL;
    struct sched_runs runs = {0};
    long long next_sweep = 0, next_retention = rp_amqp_now_ms() + 60 * 1000;
    long long last_warn = 0;
    while (!atomic_load(&l->stop)) {
        if (!pg && !(pg = connect_pg(cfg))) {
            sched_dispatch_poll(d, NULL, 1000);
            continue;
        }
        long long t0 = rp_amqp_now_ms();
        size_t claimed = 0;
        int rc = sched_claim(pg, cfg, &runs, &claimed, &e);
        rp_series_observe(claim_s, (double)(rp_amqp_now_ms() - t0) / 1000.0);
        if (rc != RP_OK && t0 - last_warn > 5000) {
            rp_warn("claim failed (%s); retrying", e.msg);
            last_warn = t0;
        }
        rp_series_add(scheduled, (double)runs.n);
        sched_dispatch_publish(d, &runs);
        long long now = rp_amqp_now_ms();
        if (now >= next_sweep) {
            sched_dispatch_sweep(d, pg, SWEEP_LIMIT);
            next_sweep = now + cfg->sweep_ms;
        }
        if (cfg->retention_days > 0 && now >= next_retention) {
            delete_old_runs(pg, cfg->retention_days);
            next_retention = now + RETENTION_PERIOD_MS;
        }
        if (rc == RP_OK && claimed == (size_t)cfg->batch) {
            sched_dispatch_poll(d, pg, 0); /* more is due: claim again at once */
            continue;
        }
        long wait = cfg->tick_ms;
        int64_t in_ms = -1;
        if (rc != RP_OK)
            wait = 1000;
        else if (sched_next_due_in(pg, &in_ms, &e) == RP_OK && in_ms >= 0 && in_ms < wait)
            wait = in_ms < MIN_WAIT_MS ? MIN_WAIT_MS : (long)in_ms;
        long to_sweep = (long)(next_sweep - rp_amqp_now_ms());
        if (to_sweep < wait)
            wait = to_sweep < 0 ? 0 : to_sweep;
        sched_dispatch_poll(d, pg, wait);
    }
    l->drain_rc = sched_dispatch_flush(d, pg, atomic_load(&l->drain_timeout_ms));
    sched_runs_cleanup(&runs);
    sched_dispatch_free(d);
    rp_pg_close(pg);
    return NULL;
}

int sched_loop_start(const struct sched_config *cfg, struct sched_loop **out, struct rp_error *err)
{
    struct sched_loop *l = rp_xcalloc(1, sizeof(*l));
    l->cfg = cfg;
    atomic_init(&l->stop, 0);
    atomic_init(&l->drain_timeout_ms, 10000);
    if (pthread_create(&l->thread, NULL, loop_main, l) != 0) {
        free(l);
        return rp_error_set(err, RP_EIO, "cannot start the scheduler thread");
    }
    *out = l;
    return RP_OK;
}

int sched_loop_stop(struct sched_loop *l, long timeout_ms)
{
    if (!l)
        return RP_OK;
    atomic_store(&l->drain_timeout_ms, timeout_ms);
    atomic_store(&l->stop, 1);
    pthread_join(l->thread, NULL);
    int rc = l->drain_rc == RP_OK ? RP_OK : RP_ETIMEDOUT;
    free(l);
    return rc;
}
