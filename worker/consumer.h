/* rampart-worker's consumer mode (docs/pipeline.md "Worker"): the threads that take jobs from
 * RabbitMQ, run them on the engine, store the results and publish run.finished, and the
 * queues between them. Private to worker/; the engine (worker.h) knows none of this.
 *
 * Design note — the life of a job message inside one worker (one mutex guards every queue):
 *   broker --deliver--> intake thread (consumer.c): decode (undecodable: reject without
 *     requeue, so it dead-letters) --exec queue--> exec thread (exec.c): one UPDATE marks the
 *     runs of the taken messages `running` (runs already finished are skipped: complete at
 *     once), then the engine runs them, retrying failures --> items (result documents)
 *     --store queue--> writer thread (store.c): MongoDB bulk upsert -> PostgreSQL final status
 *     -> run.finished confirmed --> each item completes one run of its message; the message's
 *     last run puts it --ack queue--> intake: basic.ack.
 *   Dead letters (`rampart.jobs.dead`, consumed by the intake thread too) take the same path
 *   marked `dead`: exec finds which of their runs are unfinished and makes `error` items for
 *   them (deadletter.c) instead of running them.
 *   Drain (wrk_consumer_drain): intake cancels its consumers and hands back (reject + requeue)
 *   every message exec has not started and every delivery still buffered; exec finishes its
 *   runs and exits; the writer stores what is left and exits; intake acks the rest and exits.
 * Connections are per thread (rabbitmq-c and libpq are not thread-safe): intake owns the two
 * consumers and an admin session, exec a PostgreSQL connection and the engine, the writer a
 * PostgreSQL connection, a MongoDB client and the events publisher. */
#ifndef RAMPART_WORKER_CONSUMER_H
#define RAMPART_WORKER_CONSUMER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>

#include "rampart/amqp.h"
#include "rampart/error.h"
#include "rampart/job.h"

struct rp_metrics;
struct rp_series;
struct rp_test;

/* The settings of the consumer mode (main.c's table fills it; strings outlive the consumer). */
struct wrk_config {
    const char *amqp_urls, *pg_url, *mongo_url, *migrations_dir; /* "" dir: the default */
    const char *location;     /* serves rampart.jobs.<location> */
    const char *crash_marker; /* test-only: abort() on a test whose name contains it; "" off */
    long prefetch;            /* job messages unacked at once */
    long concurrency;         /* runs executing at once (the engine's transfer limit) */
    long delivery_limit;      /* x-delivery-limit of the job queue */
    long retention_days;      /* results older than this are deleted; 0 keeps them */
    long retention_first_ms;  /* tests: the first delete after this long (0: 1 to 60 min) */
    long batch;               /* most results written per batch */
    long stall_ms;            /* a thread gone longer than this (past its call's budget): stalled */
    /* RAMPART_SECRET_KEY: opens the sealed secret variables of environments and overrides
     * ({"secret": true, "sealed": "v1:..."}); without it, a run using one ends as `error` */
    unsigned char secret_key[32]; /* RP_SECRET_KEY_BYTES */
    int have_secret_key;
};

struct wrk_metrics {
    struct rp_series *started, *skipped, *dead_lettered, *in_flight, *start_lag;
    struct rp_series *finished_passed, *finished_failed, *finished_error;
    struct rp_series *depth_jobs, *depth_dead;
    struct rp_series *suspects; /* redelivered jobs waiting to run alone (exec.c) */
};

/* One delivery: a job message (or a dead letter) and what is left to do for it. */
struct wrk_msg {
    struct wrk_msg *next;                /* in the exec or ack queue */
    struct wrk_msg *all_prev, *all_next; /* wrk_shared.all */
    struct rp_amqp_delivery *d;
    struct rp_job *job;
    int dead;         /* from rampart.jobs.dead */
    char *dead_error; /* dead letters: the error their unfinished runs get */
    size_t remaining; /* runs not complete yet (under wrk_shared.mu) */
    int requeue;      /* settle by reject + requeue (never started) instead of ack */
    int suspect_checked, suspect_starts; /* exec.c's bookkeeping (see "suspects" there) */
};

/* One finished run on its way from exec to the writer. */
struct wrk_item {
    struct wrk_item *next;
    struct wrk_msg *msg;
    const struct rp_job_run *run; /* inside msg->job, which outlives the item */
    bson_t *doc;                  /* the result document, enriched (owned) */
    char status[8];               /* passed | failed | error */
    char *error;                  /* the document's error, NULL when none */
    char *failure;                /* first failed error-severity check's message, or NULL */
    int attempt, tries;
    int dead; /* a dead-lettered run (counted as such) */
    int64_t started_ms, finished_ms;
    double duration_ms;
    /* the writer's bookkeeping */
    uint64_t seq;
    int published, confirmed, refused;
};

/* Liveness: each thread notes when it last came round its loop and what it does next, with
 * that call's own bound on top of cfg->stall_ms if it has a longer one (none has today: the
 * retention delete, 15 min, runs on a thread of its own). A thread that does not come back
 * within both is stuck in a call that should have returned: wrk_consumer_live() says so,
 * and /healthz turns 503. */
enum wrk_thread { WRK_INTAKE, WRK_EXEC, WRK_WRITER, WRK_THREADS };
struct wrk_beat {
    _Atomic long long at;      /* wrk_now_ms() of the last beat; 0: not started or finished */
    _Atomic long budget_ms;    /* what the call after the beat may take, above stall_ms */
    const char *_Atomic doing; /* static text: what the thread does after the beat */
};

/* What the three threads share. Queues and counters under `mu`; flags are atomics. */
struct wrk_shared {
    const struct wrk_config *cfg;
    struct wrk_metrics m;
    pthread_mutex_t mu;
    pthread_cond_t exec_cv;  /* exec queue got a message, or draining */
    pthread_cond_t store_cv; /* store queue got items, or exec finished */
    pthread_cond_t done_cv;  /* the intake thread finished */
    struct wrk_msg *exec_head, *exec_tail;
    struct wrk_item *store_head, *store_tail;
    size_t store_n;
    struct wrk_msg *ack_head, *ack_tail;
    struct wrk_msg *all;        /* every message received and not settled (freed on abort) */
    size_t unsettled;           /* messages on the `all` list */
    size_t queued;              /* of which in the exec queue */
    long long last_delivery_ms; /* when intake last handed a message to exec (monotonic) */
    int exec_done, store_done, intake_done;
    atomic_int draining; /* stop taking new work, finish what was started */
    atomic_int abort;    /* the drain timed out: stop now, leave the rest unacked */
    struct wrk_beat beat[WRK_THREADS];
};

/* ---- consumer.c: the shared queues -------------------------------------------------------- */

void wrk_msg_free(struct wrk_msg *m);
void wrk_item_free(struct wrk_item *it);
/* Exec: take every queued message (FIFO list), waiting up to `wait_ms` for one; NULL when
 * none came or the worker is draining (intake then hands the queued ones back). */
struct wrk_msg *wrk_exec_take(struct wrk_shared *s, long wait_ms);
/* Exec: messages received and not settled yet (anywhere: exec queue, exec, writer, waiting
 * for the ack), how many of them wait in the exec queue, and when the last one came. */
size_t wrk_unsettled(struct wrk_shared *s, size_t *queued, long long *last_delivery_ms);
/* Exec: the thread is done (draining and nothing in flight). */
void wrk_exec_finished(struct wrk_shared *s);
/* Exec -> writer: a list of `n` items. */
void wrk_store_push(struct wrk_shared *s, struct wrk_item *head, size_t n);
/* Writer: take up to `max` items (FIFO list), waiting up to `wait_ms`; `*finished` is set when
 * exec has finished and nothing is left. */
struct wrk_item *wrk_store_take(struct wrk_shared *s, size_t max, long wait_ms, int *finished);
void wrk_store_finished(struct wrk_shared *s);
/* `n` runs of `m` are complete (stored and confirmed, or skipped); the last one sends the
 * message to intake for its ack. */
void wrk_complete(struct wrk_shared *s, struct wrk_msg *m, size_t n);
/* `m` was not started: intake rejects it with requeue, so another worker takes it. */
void wrk_hand_back(struct wrk_shared *s, struct wrk_msg *m);
long long wrk_now_ms(void); /* monotonic */
/* Thread `t` comes round its loop and will now do `doing` (static text), which may take up
 * to `budget_ms` more than cfg->stall_ms. Lock-free. */
void wrk_beat(struct wrk_shared *s, enum wrk_thread t, const char *doing, long budget_ms);
/* Thread `t` has finished: it no longer counts for liveness. */
void wrk_beat_end(struct wrk_shared *s, enum wrk_thread t);
/* Sleep up to `ms`, returning early once the worker aborts. */
void wrk_nap(struct wrk_shared *s, long ms);

/* ---- consumer.c: the consumer mode as a whole -------------------------------------------- */

struct wrk_consumer;

/* Register the metrics and start the threads; connections are made (and retried) by the
 * threads themselves, so a dependency that is down at start only delays work. RP_OK and
 * *out, or RP_EIO when a thread cannot start. */
int wrk_consumer_start(const struct wrk_config *cfg, struct rp_metrics *metrics,
                       struct wrk_consumer **out, struct rp_error *err) RP_MUST_CHECK;
/* The drain (rp_drain_fn): stop consuming, finish, store, publish and ack what was started,
 * hand back the rest, within `timeout_ms`. RP_OK, or RP_ETIMEDOUT (the threads are told to
 * stop; what is unacked goes back to the queue when the process exits). */
int wrk_consumer_drain(struct wrk_consumer *w, long timeout_ms);
/* Liveness (rp_live_fn): RP_OK while every running thread came round its loop within
 * cfg->stall_ms plus its call's budget; RP_EIO naming the stuck thread, for how long and in
 * what, otherwise. Lock-free; from any thread. */
int wrk_consumer_live(void *w, struct rp_error *err);
/* Stop (aborting if not drained) and join the threads, free everything. Accepts NULL. */
void wrk_consumer_free(struct wrk_consumer *w);

/* ---- exec.c, store.c: the thread bodies (arg: struct wrk_shared *) ----------------------- */

void *wrk_exec_main(void *shared);
void *wrk_store_main(void *shared);

/* ---- store.c: the retention delete ------------------------------------------------------- */

struct wrk_retention;
/* Start the delete of results past cfg->retention_days on a thread of its own: the first 1 to
 * 60 minutes from now (random; cfg->retention_first_ms if set), then hourly. NULL when retention is
 * off (0 days) or the thread cannot start (logged). */
struct wrk_retention *wrk_retention_start(const struct wrk_config *cfg);
/* Stop it, waiting up to `wait_ms` for a delete in progress; past that the thread is left to
 * finish on its own (it owns what it uses; the process may exit under it). Accepts NULL. */
void wrk_retention_stop(struct wrk_retention *r, long wait_ms);

/* ---- cache.c: parsed tests by (test_id, version), LRU ------------------------------------- */

struct wrk_cache;
struct wrk_cached {
    struct rp_test *test; /* NULL when the definition does not parse */
    char *error;          /* then: the parser's message */
};
struct wrk_cache *wrk_cache_new(size_t capacity);
void wrk_cache_free(struct wrk_cache *c);
/* The parsed definition of (test_id, version), parsing `definition` on a miss. The entry is
 * held until wrk_cache_release (held entries are never evicted). Never NULL. */
const struct wrk_cached *wrk_cache_get(struct wrk_cache *c, const char *test_id, int version,
                                       const char *definition);
void wrk_cache_release(struct wrk_cache *c, const struct wrk_cached *e);

/* ---- deadletter.c: dead letters and error results ----------------------------------------- */

/* The error a dead letter's runs get, from its x-first-death-reason header (delivery_limit:
 * "dead-lettered after N deliveries: ...", N = limit + 1). New string. */
char *wrk_dead_error(const struct rp_amqp_delivery *d, long delivery_limit);
/* A result document for a run that could not run at all (bad definition, dead letter): the
 * engine's shape with no steps. `test_name` may be NULL. Caller bson_destroy()s it. */
bson_t *wrk_error_result(const char *run_id, const char *test_name, const char *error,
                         int64_t at_ms);
/* Unix milliseconds as ISO 8601 UTC with milliseconds ("2026-11-23T12:00:00.000Z"). */
void wrk_iso_ms(int64_t ms, char buf[64]);
/* The "name" of a test definition (JSON text), or NULL. New string. */
char *wrk_definition_name(const char *definition);
/* Fill an item's status / error / failure / duration from its document. */
void wrk_item_read_doc(struct wrk_item *it);
/* Append the pipeline's fields (project_id, test_id, ..., worker) to the item's document. */
void wrk_item_enrich(struct wrk_item *it);
/* An `error` item for run `r` of message `m` with message `error` (dead letters, bad
 * definitions, bad variables). */
struct wrk_item *wrk_error_item(struct wrk_msg *m, const struct rp_job_run *r, int attempt,
                                const char *test_name, const char *error);

#endif
