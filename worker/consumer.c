/* The consumer mode's intake thread and life cycle: it declares the location's queue,
 * consumes `rampart.jobs.<location>` and `rampart.jobs.dead` with manual acks, hands messages
 * to the exec thread, and acks them once the writer reports every run stored and confirmed
 * (acks happen here because this thread owns the connections). Also the queues the threads
 * share, the metrics, the queue-depth gauge, and the drain: basic.cancel, then hand back
 * (reject + requeue) whatever was not started. See consumer.h for the whole flow. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consumer.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/metrics.h"

#define POLL_MS           20   /* longest wait for a delivery: acks are never later than this */
#define DEPTH_EVERY_MS    5000 /* queue depth refresh */
#define DEAD_PREFETCH     8
#define RETENTION_STOP_MS 1000 /* at exit: the longest wait for a retention delete */

struct wrk_consumer {
    struct wrk_shared s;
    pthread_t intake, exec, store;
    int started; /* threads running (bit 1 intake, 2 exec, 4 store) */
    struct wrk_retention *retention;
};

long long wrk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void wrk_beat(struct wrk_shared *s, enum wrk_thread t, const char *doing, long budget_ms)
{
    atomic_store(&s->beat[t].doing, doing);
    atomic_store(&s->beat[t].budget_ms, budget_ms);
    atomic_store(&s->beat[t].at, wrk_now_ms());
}

void wrk_beat_end(struct wrk_shared *s, enum wrk_thread t)
{
    atomic_store(&s->beat[t].at, 0);
}

int wrk_consumer_live(void *ud, struct rp_error *err)
{
    static const char *const names[WRK_THREADS] = {"intake", "exec", "writer"};
    struct wrk_consumer *w = ud;
    struct wrk_shared *s = &w->s;
    long long now = wrk_now_ms();
    for (int t = 0; t < WRK_THREADS; t++) {
        /* the budget before the time: wrk_beat stores them the other way round, so an old
         * time is never read with a newer, smaller budget */
        long budget = atomic_load(&s->beat[t].budget_ms);
        const char *doing = atomic_load(&s->beat[t].doing);
        long long at = atomic_load(&s->beat[t].at);
        if (at && now - at > s->cfg->stall_ms + budget)
            return rp_error_set(err, RP_EIO,
                                "the %s thread has not come back for %lld s from: %s (limit %ld s)",
                                names[t], (now - at) / 1000, doing ? doing : "?",
                                (s->cfg->stall_ms + budget) / 1000);
    }
    return RP_OK;
}

void wrk_nap(struct wrk_shared *s, long ms)
{
    long long until = wrk_now_ms() + ms;
    while (!atomic_load(&s->abort)) {
        long long left = until - wrk_now_ms();
        if (left <= 0)
            return;
        struct timespec ts = {0, (left > 50 ? 50 : left) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* ---- shared queues ---------------------------------------------------------------------- */

void wrk_msg_free(struct wrk_msg *m)
{
    if (!m)
        return;
    rp_amqp_delivery_free(m->d);
    rp_job_free(m->job);
    free(m->dead_error);
    free(m);
}

void wrk_item_free(struct wrk_item *it)
{
    if (!it)
        return;
    if (it->doc)
        bson_destroy(it->doc);
    free(it->error);
    free(it->failure);
    free(it);
}

static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void push_exec(struct wrk_shared *s, struct wrk_msg *m)
{
    m->next = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->exec_tail)
        s->exec_tail->next = m;
    else
        s->exec_head = m;
    s->exec_tail = m;
    s->queued++;
    s->last_delivery_ms = wrk_now_ms();
    pthread_cond_signal(&s->exec_cv);
    pthread_mutex_unlock(&s->mu);
}

struct wrk_msg *wrk_exec_take(struct wrk_shared *s, long wait_ms)
{
    struct wrk_msg *list = NULL;
    pthread_mutex_lock(&s->mu);
    if (!s->exec_head && wait_ms > 0 && !atomic_load(&s->draining)) {
        struct timespec ts;
        deadline_in(&ts, wait_ms);
        pthread_cond_timedwait(&s->exec_cv, &s->mu, &ts);
    }
    if (!atomic_load(&s->draining)) {
        list = s->exec_head;
        s->exec_head = s->exec_tail = NULL;
        s->queued = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return list;
}

size_t wrk_unsettled(struct wrk_shared *s, size_t *queued, long long *last_delivery_ms)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->unsettled;
    *queued = s->queued;
    *last_delivery_ms = s->last_delivery_ms;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void wrk_exec_finished(struct wrk_shared *s)
{
    pthread_mutex_lock(&s->mu);
    s->exec_done = 1;
    pthread_cond_broadcast(&s->store_cv);
    pthread_mutex_unlock(&s->mu);
}

void wrk_store_push(struct wrk_shared *s, struct wrk_item *head, size_t n)
{
    if (!head)
        return;
    struct wrk_item *tail = head;
    while (tail->next)
        tail = tail->next;
    pthread_mutex_lock(&s->mu);
    if (s->store_tail)
        s->store_tail->next = head;
    else
        s->store_head = head;
    s->store_tail = tail;
    s->store_n += n;
    pthread_cond_signal(&s->store_cv);
    pthread_mutex_unlock(&s->mu);
}

struct wrk_item *wrk_store_take(struct wrk_shared *s, size_t max, long wait_ms, int *finished)
{
    pthread_mutex_lock(&s->mu);
    if (!s->store_head && wait_ms > 0 && !s->exec_done) {
        struct timespec ts;
        deadline_in(&ts, wait_ms);
        pthread_cond_timedwait(&s->store_cv, &s->mu, &ts);
    }
    struct wrk_item *head = s->store_head, *it = head, *last = NULL;
    size_t n = 0;
    while (it && n < max) {
        last = it;
        it = it->next;
        n++;
    }
    if (last) {
        last->next = NULL;
        s->store_head = it;
        if (!it)
            s->store_tail = NULL;
        s->store_n -= n;
    } else {
        head = NULL;
    }
    *finished = s->exec_done && !s->store_head;
    pthread_mutex_unlock(&s->mu);
    return head;
}

void wrk_store_finished(struct wrk_shared *s)
{
    pthread_mutex_lock(&s->mu);
    s->store_done = 1;
    pthread_mutex_unlock(&s->mu);
}

static void push_ack_locked(struct wrk_shared *s, struct wrk_msg *m)
{
    m->next = NULL;
    if (s->ack_tail)
        s->ack_tail->next = m;
    else
        s->ack_head = m;
    s->ack_tail = m;
}

void wrk_complete(struct wrk_shared *s, struct wrk_msg *m, size_t n)
{
    pthread_mutex_lock(&s->mu);
    m->remaining = n >= m->remaining ? 0 : m->remaining - n;
    if (m->remaining == 0)
        push_ack_locked(s, m);
    pthread_mutex_unlock(&s->mu);
}

void wrk_hand_back(struct wrk_shared *s, struct wrk_msg *m)
{
    pthread_mutex_lock(&s->mu);
    m->requeue = 1;
    push_ack_locked(s, m);
    pthread_mutex_unlock(&s->mu);
}

/* ---- the intake thread ------------------------------------------------------------------- */

struct intake {
    struct wrk_shared *s;
    const struct wrk_config *cfg;
    char queue[64];
    struct rp_amqp_admin *admin;
    struct rp_amqp_consumer *jobs, *dead;
    size_t outstanding; /* messages received and not settled yet */
    int cancelled;
    int args_warned;
    long long next_depth, next_declare;
};

static int declare(struct intake *in, struct rp_error *err)
{
    int rc = RP_OK;
    if (!in->admin) {
        struct rp_amqp_opts o = {.name = "worker admin"};
        rc = rp_amqp_admin_open(in->cfg->amqp_urls, &o, &in->admin, err);
    }
    if (rc == RP_OK) {
        const char *loc = in->cfg->location;
        struct rp_amqp_topology_opts to = {.delivery_limit = in->cfg->delivery_limit};
        rc = rp_amqp_declare_topology(in->admin, &loc, 1, &to, err);
        uint32_t n;
        if (rc == RP_EINVAL && strstr(err->msg, "PRECONDITION_FAILED") &&
            rp_amqp_queue_depth(in->admin, in->queue, &n, NULL) == RP_OK) {
            /* declared earlier with other arguments (another delivery limit, an older
             * version): consume it as it is rather than not at all */
            if (!in->args_warned++)
                rp_warn("%s exists with other arguments than this worker's (%s); using it as "
                        "it is: delete the queue (or set a policy) to apply "
                        "RAMPART_JOB_DELIVERY_LIMIT",
                        in->queue, err->msg);
            rc = RP_OK;
        }
    }
    if (rc != RP_OK) {
        rp_amqp_admin_close(in->admin);
        in->admin = NULL;
    }
    return rc;
}

/* Declare the topology and start both consumers, retrying until it works or the worker
 * drains. Returns 0 when it gave up (draining). */
static int connect_all(struct intake *in)
{
    struct wrk_shared *s = in->s;
    long wait = 200;
    char last[512] = "";
    while (!atomic_load(&s->draining) && !atomic_load(&s->abort)) {
        wrk_beat(s, WRK_INTAKE, "connecting to RabbitMQ", 0);
        struct rp_error e = {0};
        struct rp_amqp_opts o = {.name = "worker jobs consumer"};
        struct rp_amqp_opts od = {.name = "worker dead-letter consumer"};
        int rc = declare(in, &e);
        if (rc == RP_OK && !in->jobs)
            rc = rp_amqp_consumer_new(in->cfg->amqp_urls, in->queue, (unsigned)in->cfg->prefetch,
                                      &o, &in->jobs, &e);
        if (rc == RP_OK && !in->dead)
            rc = rp_amqp_consumer_new(in->cfg->amqp_urls, RP_AMQP_JOBS_DEAD, DEAD_PREFETCH, &od,
                                      &in->dead, &e);
        if (rc == RP_OK) {
            rp_info("consuming %s (prefetch %ld) and %s", in->queue, in->cfg->prefetch,
                    RP_AMQP_JOBS_DEAD);
            return 1;
        }
        if (strcmp(last, e.msg) != 0)
            rp_warn("cannot start consuming %s (%s); retrying", in->queue, e.msg);
        snprintf(last, sizeof(last), "%s", e.msg);
        wrk_nap(s, wait);
        wait = wait * 2 > 5000 ? 5000 : wait * 2;
    }
    return 0;
}

static void refresh_depth(struct intake *in)
{
    long long now = wrk_now_ms();
    if (now < in->next_depth)
        return;
    in->next_depth = now + DEPTH_EVERY_MS;
    struct rp_error e = {0};
    uint32_t n = 0;
    int rc = RP_OK;
    if (!in->admin) {
        struct rp_amqp_opts o = {.name = "worker admin"};
        rc = rp_amqp_admin_open(in->cfg->amqp_urls, &o, &in->admin, &e);
    }
    if (rc == RP_OK && (rc = rp_amqp_queue_depth(in->admin, in->queue, &n, &e)) == RP_OK)
        rp_series_set(in->s->m.depth_jobs, n);
    if (rc == RP_OK && (rc = rp_amqp_queue_depth(in->admin, RP_AMQP_JOBS_DEAD, &n, &e)) == RP_OK)
        rp_series_set(in->s->m.depth_dead, n);
    if (rc != RP_OK) {
        rp_debug("queue depth: %s", e.msg);
        rp_amqp_admin_close(in->admin);
        in->admin = NULL;
    }
}

/* A job message (or dead letter) arrived. */
static void take_delivery(struct intake *in, struct rp_amqp_delivery *d, int dead)
{
    struct wrk_shared *s = in->s;
    struct rp_amqp_consumer *c = dead ? in->dead : in->jobs;
    struct rp_error e = {0};
    if (in->cancelled) { /* buffered before the cancel: never started, give it back */
        if (rp_amqp_reject(c, d, 1, &e) != RP_OK)
            rp_debug("reject: %s", e.msg);
        rp_amqp_delivery_free(d);
        return;
    }
    struct rp_job *job = NULL;
    if (rp_job_decode(d->body, d->len, &job, &e) != RP_OK) {
        /* Logged once here; rejected without requeue it dead-letters (a dead letter that does
         * not decode either is dropped: there is no run to report on). */
        rp_err("%s: undecodable %s (message id %s, %zu bytes) %s: %s",
               dead ? RP_AMQP_JOBS_DEAD : in->queue, dead ? "dead letter" : "job message",
               d->message_id ? d->message_id : "none", d->len, dead ? "dropped" : "dead-lettered",
               e.msg);
        struct rp_error e2 = {0};
        int rc = dead ? rp_amqp_ack(c, d, &e2) : rp_amqp_reject(c, d, 0, &e2);
        if (rc != RP_OK)
            rp_debug("settling an undecodable message: %s", e2.msg);
        rp_amqp_delivery_free(d);
        return;
    }
    struct wrk_msg *m = rp_xcalloc(1, sizeof(*m));
    m->d = d;
    m->job = job;
    m->dead = dead;
    m->remaining = job->n;
    if (dead)
        m->dead_error = wrk_dead_error(d, in->cfg->delivery_limit);
    in->outstanding++;
    pthread_mutex_lock(&s->mu); /* every live message is on the `all` list until settled */
    m->all_next = s->all;
    if (s->all)
        s->all->all_prev = m;
    s->all = m;
    s->unsettled++;
    pthread_mutex_unlock(&s->mu);
    push_exec(s, m);
}

static void settle_all(struct intake *in)
{
    struct wrk_shared *s = in->s;
    pthread_mutex_lock(&s->mu);
    struct wrk_msg *m = s->ack_head;
    s->ack_head = s->ack_tail = NULL;
    for (struct wrk_msg *x = m; x; x = x->next) {
        if (x->all_prev)
            x->all_prev->all_next = x->all_next;
        else
            s->all = x->all_next;
        if (x->all_next)
            x->all_next->all_prev = x->all_prev;
        s->unsettled--;
    }
    pthread_mutex_unlock(&s->mu);
    /* after a reconnect every message of the old connection fails alike: one line for all */
    size_t failed = 0;
    char first[600] = "";
    while (m) {
        struct wrk_msg *next = m->next;
        struct rp_amqp_consumer *c = m->dead ? in->dead : in->jobs;
        struct rp_error e = {0};
        int rc = m->requeue ? rp_amqp_reject(c, m->d, 1, &e) : rp_amqp_ack(c, m->d, &e);
        if (rc != RP_OK && !failed++) /* e.g. it came on an earlier connection: redelivered */
            snprintf(first, sizeof(first), "%s of a %s message failed: %s",
                     m->requeue ? "reject" : "ack", m->dead ? "dead-letter" : "job", e.msg);
        in->outstanding--;
        wrk_msg_free(m);
        m = next;
    }
    if (failed == 1)
        rp_warn("%s", first);
    else if (failed > 1)
        rp_warn("%s (and %zu more messages alike)", first, failed - 1);
}

/* Every delivery still queued for exec goes back to the broker. */
static void reclaim_exec_queue(struct intake *in)
{
    struct wrk_shared *s = in->s;
    pthread_mutex_lock(&s->mu);
    struct wrk_msg *m = s->exec_head;
    s->exec_head = s->exec_tail = NULL;
    s->queued = 0;
    while (m) {
        struct wrk_msg *next = m->next;
        m->requeue = 1;
        push_ack_locked(s, m);
        m = next;
    }
    pthread_mutex_unlock(&s->mu);
}

/* One delivery from `c` if any (waiting up to `ms`); returns 1 if one was taken. */
static int poll_one(struct intake *in, int dead, long ms)
{
    struct rp_amqp_consumer *c = dead ? in->dead : in->jobs;
    struct rp_amqp_delivery *d = NULL;
    struct rp_error e = {0};
    int rc = rp_amqp_consumer_next(c, ms, &d, &e);
    if (rc == RP_OK) {
        take_delivery(in, d, dead);
        return 1;
    }
    if (rc == RP_ENOENT && !in->cancelled && wrk_now_ms() >= in->next_declare) {
        /* the queue was deleted under us: declare it again (the consumer then resumes) */
        in->next_declare = wrk_now_ms() + 1000;
        rp_warn("%s: %s; declaring it again", dead ? RP_AMQP_JOBS_DEAD : in->queue, e.msg);
        struct rp_error e2 = {0};
        if (declare(in, &e2) != RP_OK)
            rp_warn("declaring the topology: %s", e2.msg);
    } else if (rc != RP_ETIMEDOUT && rc != RP_EAGAIN && rc != RP_ENOENT) {
        rp_err("consuming %s: %s", dead ? RP_AMQP_JOBS_DEAD : in->queue, e.msg);
        wrk_nap(in->s, 1000);
    }
    return 0;
}

static void *intake_main(void *arg)
{
    struct wrk_shared *s = arg;
    struct intake in = {.s = s, .cfg = s->cfg};
    snprintf(in.queue, sizeof(in.queue), "%s.%s", RP_AMQP_JOBS_EXCHANGE, s->cfg->location);
    connect_all(&in);
    while (!atomic_load(&s->abort)) {
        wrk_beat(s, WRK_INTAKE, "taking and acknowledging job messages", 0);
        settle_all(&in);
        if (atomic_load(&s->draining) && !in.cancelled) {
            struct rp_error e = {0};
            if (in.jobs && rp_amqp_consumer_cancel(in.jobs, &e) != RP_OK)
                rp_warn("cancelling the jobs consumer: %s", e.msg);
            if (in.dead && rp_amqp_consumer_cancel(in.dead, &e) != RP_OK)
                rp_warn("cancelling the dead-letter consumer: %s", e.msg);
            in.cancelled = 1;
            reclaim_exec_queue(&in);
            rp_info("draining: consumers cancelled, %zu messages outstanding", in.outstanding);
            continue;
        }
        if (in.cancelled) {
            /* collect what the broker sent before the cancel, then wait for the rest */
            int got = 0;
            while (in.jobs && poll_one(&in, 0, 0))
                got = 1;
            while (in.dead && poll_one(&in, 1, 0))
                got = 1;
            if (got)
                continue;
            pthread_mutex_lock(&s->mu);
            int done = s->store_done && !s->ack_head;
            pthread_mutex_unlock(&s->mu);
            if (done)
                break;
            wrk_nap(s, 5);
            continue;
        }
        if (!in.jobs || !in.dead) { /* draining started before we could connect */
            wrk_nap(s, 50);
            continue;
        }
        /* while exec is busy with every prefetched message this just waits: heartbeats are
         * answered inside next(), which runs at least every POLL_MS */
        if (!poll_one(&in, 0, POLL_MS))
            poll_one(&in, 1, 0);
        refresh_depth(&in);
    }
    if (!atomic_load(&s->abort) && in.outstanding)
        rp_warn("drained with %zu messages unsettled; the broker will deliver them again",
                in.outstanding);
    rp_amqp_consumer_free(in.jobs);
    rp_amqp_consumer_free(in.dead);
    rp_amqp_admin_close(in.admin);
    wrk_beat_end(s, WRK_INTAKE);
    pthread_mutex_lock(&s->mu);
    s->intake_done = 1;
    pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- life cycle --------------------------------------------------------------------------- */

static void register_metrics(struct wrk_metrics *m, struct rp_metrics *r, const char *location)
{
    static const double lag_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5,   1,      2.5,   5,    10,    30,   60};
    m->started = rp_metric_series(
        rp_metrics_counter(r, "rampart_runs_started_total", "Runs this worker started", NULL),
        NULL);
    struct rp_metric *fin = rp_metrics_counter(r, "rampart_runs_finished_total",
                                               "Runs stored and announced, by status", "status");
    m->finished_passed = rp_metric_labels(fin, "passed");
    m->finished_failed = rp_metric_labels(fin, "failed");
    m->finished_error = rp_metric_labels(fin, "error");
    m->start_lag = rp_metric_series(
        rp_metrics_histogram(r, "rampart_run_start_lag_seconds",
                             "From a run's fire time to its start on a worker", NULL, lag_buckets,
                             sizeof(lag_buckets) / sizeof(lag_buckets[0])),
        NULL);
    m->in_flight =
        rp_metric_series(rp_metrics_gauge(r, "rampart_runs_in_flight",
                                          "Runs started and not yet stored and announced", NULL),
                         NULL);
    struct rp_metric *depth = rp_metrics_gauge(
        r, "rampart_jobs_queue_depth",
        "Ready messages in a job queue (passive declare every few seconds)", "queue");
    char q[64];
    snprintf(q, sizeof(q), "%s.%s", RP_AMQP_JOBS_EXCHANGE, location);
    m->depth_jobs = rp_metric_labels(depth, q);
    m->depth_dead = rp_metric_labels(depth, RP_AMQP_JOBS_DEAD);
    m->dead_lettered =
        rp_metric_series(rp_metrics_counter(r, "rampart_runs_dead_lettered_total",
                                            "Runs of dead-lettered jobs marked as errors", NULL),
                         NULL);
    m->suspects = rp_metric_series(
        rp_metrics_gauge(r, "rampart_worker_suspect_jobs",
                         "Redelivered jobs whose runs were running (a worker died on them), "
                         "waiting to run alone",
                         NULL),
        NULL);
    m->skipped = rp_metric_series(
        rp_metrics_counter(r, "rampart_runs_skipped_total",
                           "Deliveries of runs that had already finished (not run again)", NULL),
        NULL);
}

int wrk_consumer_start(const struct wrk_config *cfg, struct rp_metrics *metrics,
                       struct wrk_consumer **out, struct rp_error *err)
{
    struct wrk_consumer *w = rp_xcalloc(1, sizeof(*w));
    struct wrk_shared *s = &w->s;
    s->cfg = cfg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->exec_cv, NULL);
    pthread_cond_init(&s->store_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    atomic_init(&s->draining, 0);
    atomic_init(&s->abort, 0);
    register_metrics(&s->m, metrics, cfg->location);
    if (pthread_create(&w->store, NULL, wrk_store_main, s) == 0)
        w->started |= 4;
    if ((w->started & 4) && pthread_create(&w->exec, NULL, wrk_exec_main, s) == 0)
        w->started |= 2;
    if ((w->started & 2) && pthread_create(&w->intake, NULL, intake_main, s) == 0)
        w->started |= 1;
    if (w->started != 7) {
        wrk_consumer_free(w);
        return rp_error_set(err, RP_EIO, "cannot start the worker's threads");
    }
    w->retention = wrk_retention_start(cfg);
    *out = w;
    return RP_OK;
}

int wrk_consumer_drain(struct wrk_consumer *w, long timeout_ms)
{
    struct wrk_shared *s = &w->s;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->draining, 1);
    pthread_cond_broadcast(&s->exec_cv);
    struct timespec ts;
    deadline_in(&ts, timeout_ms);
    int rc = 0;
    while (!s->intake_done && rc == 0)
        rc = pthread_cond_timedwait(&s->done_cv, &s->mu, &ts);
    int done = s->intake_done;
    pthread_mutex_unlock(&s->mu);
    if (done)
        return RP_OK;
    atomic_store(&s->abort, 1);
    return RP_ETIMEDOUT;
}

void wrk_consumer_free(struct wrk_consumer *w)
{
    if (!w)
        return;
    struct wrk_shared *s = &w->s;
    pthread_mutex_lock(&s->mu);
    int drained = s->intake_done;
    pthread_mutex_unlock(&s->mu);
    if (!drained) {
        atomic_store(&s->draining, 1);
        atomic_store(&s->abort, 1);
    }
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->exec_cv);
    pthread_cond_broadcast(&s->store_cv);
    pthread_mutex_unlock(&s->mu);
    wrk_retention_stop(w->retention, RETENTION_STOP_MS);
    if (w->started & 1)
        pthread_join(w->intake, NULL);
    if (w->started & 2)
        pthread_join(w->exec, NULL);
    if (w->started & 4)
        pthread_join(w->store, NULL);
    /* after an abort, messages may be left unsettled (in a queue or with runs half done):
     * free them; unacked, they went back to the broker with the connections */
    struct wrk_msg *m = s->all;
    while (m) {
        struct wrk_msg *next = m->all_next;
        wrk_msg_free(m);
        m = next;
    }
    struct wrk_item *it = s->store_head;
    while (it) {
        struct wrk_item *next = it->next;
        wrk_item_free(it);
        it = next;
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->exec_cv);
    pthread_cond_destroy(&s->store_cv);
    pthread_cond_destroy(&s->done_cv);
    free(w);
}
