/* rampart-scheduler's private header: the pure fire-time planning (plan.c), the claim
 * transaction (claim.c), dispatching runs as jobs (dispatch.c: publish, confirm, mark queued,
 * sweep) and the loop thread that drives them (loop.c). docs/pipeline.md is the contract.
 *
 * Design note — the life of a run on the scheduler's side:
 *   schedule due --claim tx (FOR UPDATE SKIP LOCKED; INSERT runs ON CONFLICT DO NOTHING;
 *   advance next_run_at; COMMIT)--> run `pending`, lease set
 *   --sched_dispatch_publish--> in the publisher's window --basic.ack--> confirmed
 *   --sched_dispatch_mark_queued--> run `queued`.
 * A scheduler that dies anywhere in between leaves the run `pending`; once its lease has
 * passed, any scheduler's sweep (sched_dispatch_sweep) publishes it again. */
#ifndef RAMPART_SCHEDULER_H
#define RAMPART_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "rampart/error.h"
#include "rampart/job.h"

struct rp_pg;

/* ---- plan.c: which fire to run and when the schedule is due next (pure) ------------------ */

struct rp_cron;

/* A schedule's timing: an interval (interval_ms > 0) or a parsed cron expression. */
struct sched_timing {
    int64_t interval_ms;
    const struct rp_cron *cron;
};

/* The catch-up policy of docs/pipeline.md. `due_ms` is the schedule's next_run_at, `now_ms`
 * the current time (>= due_ms). A fire late by at most `grace_ms` is run as is: *fire_ms =
 * due_ms. Later than that, the missed fires are coalesced into one run for the most recent
 * fire time <= now_ms. *next_ms is the fire after *fire_ms. A cron schedule whose due_ms is
 * not one of its fire times (new or edited) runs nothing now: *fire_ms = -1 and *next_ms is
 * its first fire after due_ms. RP_OK, or RP_ENOENT when a cron expression has no next fire
 * (the schedule must then be paused). Thread-safe. */
int sched_plan(const struct sched_timing *t, int64_t due_ms, int64_t now_ms, int64_t grace_ms,
               int64_t *fire_ms, int64_t *next_ms) RP_MUST_CHECK;

/* ---- settings ----------------------------------------------------------------------------- */

struct sched_config {
    const char *pg_url;
    const char *amqp_urls;
    const char *migrations_dir; /* NULL or "": the source tree's common/migrations */
    long tick_ms;               /* longest sleep between claims when nothing is due */
    long batch;                 /* schedules per claim transaction */
    long job_runs;              /* runs per job message */
    long lease_ms;              /* a pending run is swept after this */
    long sweep_ms;              /* how often the sweep runs */
    long grace_ms;              /* misfire grace of the catch-up policy */
    long retention_days;        /* finished runs older than this are deleted (0: keep) */
    long delivery_limit;        /* of the job queues it declares for new locations */
};

/* ---- claim.c ------------------------------------------------------------------------------ */

/* A run made by a claim or found by the sweep, ready to publish. Owns its strings. */
struct sched_run {
    struct rp_job_run job;
};

struct sched_runs {
    struct sched_run *v;
    size_t n, cap;
};
void sched_runs_clear(struct sched_runs *r); /* frees the runs' strings, keeps the array */
void sched_runs_cleanup(struct sched_runs *r);

/* One claim transaction: up to cfg->batch due schedules, one run per location each (appended
 * to `out`), next_run_at advanced, schedules whose cron cannot be used paused with last_error.
 * `*claimed` receives the number of schedules claimed (== batch means more may be due).
 * Returns RP_OK, RP_EAGAIN (database unavailable: try again later) or another error. */
int sched_claim(struct rp_pg *pg, const struct sched_config *cfg, struct sched_runs *out,
                size_t *claimed, struct rp_error *err) RP_MUST_CHECK;

/* Milliseconds until the earliest enabled schedule is due (0 if one is due now, -1 if there
 * is none). Also sets the backlog gauge. */
int sched_next_due_in(struct rp_pg *pg, int64_t *in_ms, struct rp_error *err) RP_MUST_CHECK;

/* ---- dispatch.c --------------------------------------------------------------------------- */

struct sched_dispatch;

int sched_dispatch_new(const struct sched_config *cfg, struct sched_dispatch **out,
                       struct rp_error *err) RP_MUST_CHECK;
void sched_dispatch_free(struct sched_dispatch *d);
/* Publish `runs` (grouped by location, cfg->job_runs per message). Never blocks for long: when
 * the broker is unreachable the runs stay pending in PostgreSQL and the sweep sends them
 * later. Takes the runs' contents (runs->n becomes 0). */
void sched_dispatch_publish(struct sched_dispatch *d, struct sched_runs *runs);
/* Service the broker connection for up to `wait_ms`, then record confirmed runs as queued in
 * PostgreSQL and declare the queues of locations the broker had none for. */
void sched_dispatch_poll(struct sched_dispatch *d, struct rp_pg *pg, long wait_ms);
/* Publish pending runs whose lease has passed (up to `limit`); returns how many. */
size_t sched_dispatch_sweep(struct sched_dispatch *d, struct rp_pg *pg, size_t limit);
/* Wait up to `timeout_ms` for every published run's confirm and mark them queued. */
int sched_dispatch_flush(struct sched_dispatch *d, struct rp_pg *pg, long timeout_ms);

/* ---- loop.c ------------------------------------------------------------------------------- */

struct sched_loop;
/* Start the loop thread (claim, publish, sweep, retention). The config must outlive it. */
int sched_loop_start(const struct sched_config *cfg, struct sched_loop **out,
                     struct rp_error *err) RP_MUST_CHECK;
/* Stop claiming, wait up to `timeout_ms` for outstanding confirms, join. RP_OK or
 * RP_ETIMEDOUT (unconfirmed runs stay pending: another scheduler's sweep sends them). */
int sched_loop_stop(struct sched_loop *l, long timeout_ms);

#endif
