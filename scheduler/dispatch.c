/* Dispatching runs as jobs (docs/pipeline.md): publish them on `rampart.jobs` with pipelined
 * publisher confirms (one message per location and up to job_runs runs), mark the confirmed
 * ones `queued`, declare the queue of a location the broker had none for and send again, and
 * sweep: publish runs left `pending` past their lease (a scheduler died after its commit, or
 * the dashboard created a run-now or CI run, whose overrides travel with it). Nothing here
 * waits on the broker for long: while it is down runs simply stay pending in PostgreSQL, and
 * the sweep sends them once it is back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/amqp.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/metrics.h"
#include "rampart/pg.h"
#include "scheduler.h"

/* One published message, until the broker gives its outcome. */
struct flight {
    uint64_t seq;
    int done;
    char location[33];
    char (*ids)[RP_UUID_LEN + 1];
    int64_t *fire_ms;
    size_t n;
    char *body; /* kept to send again after declaring a missing queue */
    size_t len;
};

struct sched_dispatch {
    const struct sched_config *cfg;
    struct rp_amqp_publisher *pub;
    long long next_connect_ms;
    struct flight *fl; /* by increasing seq; finished ones are dropped from the front */
    size_t n_fl, cap_fl;
    struct rp_buf confirmed; /* "{id,id,...": runs to mark queued */
    size_t n_confirmed;
    struct flight *returned; /* messages to send again once their queue exists */
    size_t n_returned, cap_returned;
    struct rp_series *m_published, *m_swept, *m_lag, *m_returned;
};

/* queued_at records when the broker confirmed the job, also when a fast worker already moved
 * the run on (the status only ever moves forward). Rows are locked in id order, as the
 * worker's batch updates do, so the two never deadlock. */
static const char queued_sql[] =
    "WITH l AS MATERIALIZED (SELECT id FROM runs WHERE id = ANY($1::uuid[]) AND queued_at IS NULL "
    "                        ORDER BY id FOR UPDATE) "
    "UPDATE runs AS r SET queued_at = now(), "
    "       status = CASE WHEN r.status = 'pending' THEN 'queued' ELSE r.status END "
    "FROM l WHERE r.id = l.id";

static const char sweep_sql[] =
    "WITH d AS (SELECT id FROM runs WHERE status = 'pending' AND lease_until <= now() "
    "           ORDER BY lease_until LIMIT $1 FOR UPDATE SKIP LOCKED), "
    "u AS (UPDATE runs r SET lease_until = now() + $2::bigint * interval '1 millisecond' "
    "      FROM d WHERE r.id = d.id RETURNING r.*) "
    "SELECT u.id, u.project_id, u.test_id, u.test_version, u.schedule_id, u.environment_id, "
    "       floor(extract(epoch FROM u.fire_time) * 1000)::bigint, u.trigger, u.location, "
    "       u.retries, tv.definition, COALESCE(e.variables::text, '{}'), u.overrides::text "
    "FROM u LEFT JOIN test_versions tv ON tv.test_id = u.test_id AND tv.version = u.test_version "
    "LEFT JOIN environments e ON e.id = u.environment_id";

static void flight_cleanup(struct flight *f)
{
    free(f->ids);
    free(f->fire_ms);
    free(f->body);
    f->ids = NULL;
    f->fire_ms = NULL;
    f->body = NULL;
    f->n = f->len = 0; /* seq stays: the flight list is searched by it */
}

static struct flight *find_flight(struct sched_dispatch *d, uint64_t seq)
{
    size_t lo = 0, hi = d->n_fl;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (d->fl[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < d->n_fl && d->fl[lo].seq == seq ? &d->fl[lo] : NULL;
}

static void on_confirm(void *opaque, uint64_t seq, enum rp_amqp_outcome outcome, const char *why)
{
    struct sched_dispatch *d = opaque;
    struct flight *f = find_flight(d, seq);
    if (!f || f->done)
        return;
    if (outcome == RP_AMQP_CONFIRMED) {
        int64_t now = rp_now_unix_ms();
        for (size_t i = 0; i < f->n; i++) {
            rp_pg_array_add(&d->confirmed, f->ids[i]);
            rp_series_observe(d->m_lag, (double)(now - f->fire_ms[i]) / 1000.0);
        }
        d->n_confirmed += f->n;
        rp_series_add(d->m_published, (double)f->n);
        flight_cleanup(f);
        f->done = 1;
    } else if (outcome == RP_AMQP_RETURNED) {
        /* no queue is bound for this location yet: declare it, then send again */
        rp_series_add(d->m_returned, (double)f->n);
        if (d->n_returned == d->cap_returned) {
            d->cap_returned = d->cap_returned ? d->cap_returned * 2 : 8;
            d->returned = rp_xrealloc(d->returned, d->cap_returned * sizeof(*d->returned));
        }
        d->returned[d->n_returned++] = *f;
        f->ids = NULL;
        f->fire_ms = NULL;
        f->body = NULL;
        f->n = f->len = 0;
        f->done = 1;
    } else {
        rp_err("job for %zu runs refused by the broker (%s); they stay pending for the sweep", f->n,
               why ? why : "no reason");
        flight_cleanup(f);
        f->done = 1;
    }
}

int sched_dispatch_new(const struct sched_config *cfg, struct sched_dispatch **out,
                       struct rp_error *err)
{
    struct sched_dispatch *d = rp_xcalloc(1, sizeof(*d));
    d->cfg = cfg;
    rp_buf_init(&d->confirmed, 0);
    (void)rp_buf_append(&d->confirmed, "{", 1);
    struct rp_metrics *m = rp_metrics_default();
    d->m_published =
        rp_metric_series(rp_metrics_counter(m, "rampart_runs_published_total",
                                            "Runs whose job the broker confirmed", NULL),
                         NULL);
    d->m_swept = rp_metric_series(
        rp_metrics_counter(m, "rampart_runs_swept_total",
                           "Pending runs published again by the sweep (lease passed)", NULL),
        NULL);
    d->m_returned = rp_metric_series(
        rp_metrics_counter(m, "rampart_runs_unroutable_total",
                           "Runs returned by the broker because their location had no queue yet",
                           NULL),
        NULL);
    static const double lag_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                         1,     2.5,  5,     10,   30,  60,   300};
    d->m_lag = rp_metric_series(
        rp_metrics_histogram(m, "rampart_dispatch_lag_seconds",
                             "Fire time to job confirmed by the broker, per run", NULL, lag_buckets,
                             sizeof(lag_buckets) / sizeof(lag_buckets[0])),
        NULL);
    (void)err;
    *out = d;
    return RP_OK;
}

void sched_dispatch_free(struct sched_dispatch *d)
{
    if (!d)
        return;
    rp_amqp_publisher_free(d->pub);
    for (size_t i = 0; i < d->n_fl; i++)
        flight_cleanup(&d->fl[i]);
    for (size_t i = 0; i < d->n_returned; i++)
        flight_cleanup(&d->returned[i]);
    free(d->fl);
    free(d->returned);
    rp_buf_cleanup(&d->confirmed);
    free(d);
}

/* Make sure there is a publisher; a failed connect is retried at most once a second. */
static int ensure_publisher(struct sched_dispatch *d)
{
    if (d->pub)
        return 1;
    long long now = rp_amqp_now_ms();
    if (now < d->next_connect_ms)
        return 0;
    struct rp_amqp_opts o = {
        .window = 16384, .publish_timeout_ms = 50, .name = "scheduler jobs publisher"};
    struct rp_error e;
    if (rp_amqp_publisher_new(d->cfg->amqp_urls, &o, on_confirm, d, &d->pub, &e) != RP_OK) {
        rp_warn("cannot open the jobs publisher (%s); runs stay pending until it works", e.msg);
        d->next_connect_ms = now + 1000;
        return 0;
    }
    return 1;
}

static void drop_finished_flights(struct sched_dispatch *d)
{
    size_t k = 0;
    while (k < d->n_fl && d->fl[k].done)
        k++;
    if (k) {
        memmove(d->fl, d->fl + k, (d->n_fl - k) * sizeof(*d->fl));
        d->n_fl -= k;
    }
}

/* Hand one message to the publisher; `f` (body, ids) moves into the flight list. */
static void send_flight(struct sched_dispatch *d, struct flight *f)
{
    if (!ensure_publisher(d)) {
        flight_cleanup(f);
        return;
    }
    struct rp_amqp_props props = {.content_type = "application/json", .persistent = 1};
    char message_id[RP_UUID_LEN + 1];
    memcpy(message_id, f->ids[0], sizeof(message_id));
    props.message_id = message_id;
    struct rp_error e;
    /* The flight is registered before the call, under the seq the publisher will give it
     * (they count up from 1): its confirm may be read inside rp_amqp_publish already. */
    drop_finished_flights(d);
    if (d->n_fl == d->cap_fl) {
        d->cap_fl = d->cap_fl ? d->cap_fl * 2 : 256;
        d->fl = rp_xrealloc(d->fl, d->cap_fl * sizeof(*d->fl));
    }
    struct rp_amqp_pub_stats st;
    rp_amqp_publisher_stats(d->pub, &st);
    f->seq = st.published + 1;
    f->done = 0;
    struct flight *slot = &d->fl[d->n_fl++];
    *slot = *f;
    memset(f, 0, sizeof(*f));
    uint64_t seq = 0;
    int rc = rp_amqp_publish(d->pub, RP_AMQP_JOBS_EXCHANGE, slot->location, slot->body, slot->len,
                             &props, 1, &seq, &e);
    if (rc != RP_OK) {
        rp_warn("job for %zu runs not published (%s); they stay pending for the sweep", slot->n,
                e.msg);
        flight_cleanup(slot);
        d->n_fl--;
        return;
    }
    if (seq != slot->seq) /* a broken assumption would only cost a sweep, but say so */
        rp_err("publisher seq %llu, expected %llu", (unsigned long long)seq,
               (unsigned long long)slot->seq);
}

/* Build the message for runs[from..to) (same location) and send it. */
static void send_runs(struct sched_dispatch *d, struct sched_run *const *runs, size_t n)
{
    struct rp_job_run *jr = rp_xcalloc(n, sizeof(*jr));
    struct flight f = {0};
    f.ids = rp_xcalloc(n, sizeof(*f.ids));
    f.fire_ms = rp_xcalloc(n, sizeof(*f.fire_ms));
    f.n = n;
    snprintf(f.location, sizeof(f.location), "%s", runs[0]->job.location);
    for (size_t i = 0; i < n; i++) {
        jr[i] = runs[i]->job; /* shallow: encode only reads */
        memcpy(f.ids[i], runs[i]->job.run_id, sizeof(f.ids[i]));
        f.fire_ms[i] = runs[i]->job.fire_time_ms;
    }
    struct rp_buf body;
    rp_buf_init(&body, RP_JOB_MAX_BYTES);
    if (rp_job_encode(jr, n, &body) != RP_OK) {
        rp_err("a job of %zu runs is larger than %u bytes; sending its runs one by one", n,
               RP_JOB_MAX_BYTES);
        rp_buf_cleanup(&body);
        flight_cleanup(&f);
        free(jr);
        if (n > 1)
            for (size_t i = 0; i < n; i++)
                send_runs(d, &runs[i], 1);
        return;
    }
    free(jr);
    f.body = body.data; /* ownership moves into the flight */
    f.len = body.len;
    send_flight(d, &f);
}

static int by_location(const void *a, const void *b)
{
    const struct sched_run *x = *(struct sched_run *const *)a, *y = *(struct sched_run *const *)b;
    return strcmp(x->job.location, y->job.location);
}

void sched_dispatch_publish(struct sched_dispatch *d, struct sched_runs *runs)
{
    if (runs->n == 0)
        return;
    struct sched_run **order = rp_xmalloc(runs->n * sizeof(*order));
    for (size_t i = 0; i < runs->n; i++)
        order[i] = &runs->v[i];
    qsort(order, runs->n, sizeof(*order), by_location); /* stable enough: ids keep fire order */
    size_t per = d->cfg->job_runs > 0 ? (size_t)d->cfg->job_runs : 1;
    for (size_t i = 0; i < runs->n;) {
        size_t j = i + 1;
        while (j < runs->n && j - i < per &&
               strcmp(order[j]->job.location, order[i]->job.location) == 0)
            j++;
        send_runs(d, order + i, j - i);
        i = j;
    }
    free(order);
    sched_runs_clear(runs);
}

/* Declare the queues of returned messages' locations, then send those messages again. */
static void resend_returned(struct sched_dispatch *d)
{
    if (d->n_returned == 0)
        return;
    struct rp_amqp_admin *a = NULL;
    struct rp_error e;
    if (rp_amqp_admin_open(d->cfg->amqp_urls, NULL, &a, &e) != RP_OK) {
        rp_warn("cannot declare job queues (%s); the runs stay pending for the sweep", e.msg);
        goto drop;
    }
    struct rp_amqp_topology_opts to = {.delivery_limit = d->cfg->delivery_limit};
    for (size_t i = 0; i < d->n_returned; i++) {
        const char *loc = d->returned[i].location;
        if (rp_amqp_declare_topology(a, &loc, 1, &to, &e) != RP_OK) {
            rp_warn("cannot declare the job queue of location %s (%s)", loc, e.msg);
            goto drop;
        }
        rp_info("declared the job queue of location %s (no worker had yet)", loc);
    }
    rp_amqp_admin_close(a);
    a = NULL;
    /* taken out first: a return read while sending these appends to a fresh list */
    struct flight *list = d->returned;
    size_t n = d->n_returned;
    d->returned = NULL;
    d->n_returned = d->cap_returned = 0;
    for (size_t i = 0; i < n; i++)
        send_flight(d, &list[i]);
    free(list);
    return;
drop:
    rp_amqp_admin_close(a);
    for (size_t i = 0; i < d->n_returned; i++)
        flight_cleanup(&d->returned[i]);
    d->n_returned = 0;
}

static void mark_queued(struct sched_dispatch *d, struct rp_pg *pg)
{
    if (d->n_confirmed == 0 || !pg)
        return;
    (void)rp_buf_append(&d->confirmed, "}", 1);
    const char *p[] = {d->confirmed.data};
    struct rp_error e;
    if (rp_pg_exec_idempotent(pg, queued_sql, 1, p, NULL, &e) != RP_OK)
        rp_warn("cannot mark %zu runs queued (%s); they stay pending and may be sent again",
                d->n_confirmed, e.msg);
    rp_buf_reset(&d->confirmed);
    (void)rp_buf_append(&d->confirmed, "{", 1);
    d->n_confirmed = 0;
}

void sched_dispatch_poll(struct sched_dispatch *d, struct rp_pg *pg, long wait_ms)
{
    if (d->pub) {
        struct rp_error e;
        (void)rp_amqp_publisher_poll(d->pub, wait_ms, &e);
    } else if (wait_ms > 0) {
        rp_amqp_sleep_ms(wait_ms);
    }
    drop_finished_flights(d);
    resend_returned(d);
    mark_queued(d, pg);
}

int sched_dispatch_flush(struct sched_dispatch *d, struct rp_pg *pg, long timeout_ms)
{
    int rc = RP_OK;
    if (d->pub) {
        struct rp_error e;
        rc = rp_amqp_publisher_flush(d->pub, timeout_ms, &e);
        if (rc != RP_OK)
            rp_warn("%zu jobs unconfirmed at shutdown (%s); their runs stay pending for the sweep",
                    d->n_fl, e.msg);
    }
    drop_finished_flights(d);
    mark_queued(d, pg);
    return rc;
}

size_t sched_dispatch_sweep(struct sched_dispatch *d, struct rp_pg *pg, size_t limit)
{
    char lim[24], lease[24];
    snprintf(lim, sizeof(lim), "%zu", limit);
    snprintf(lease, sizeof(lease), "%ld", d->cfg->lease_ms);
    const char *p[] = {lim, lease};
    PGresult *res = NULL;
    struct rp_error e;
    if (rp_pg_exec(pg, sweep_sql, 2, p, &res, &e) != RP_OK) {
        rp_warn("sweep failed: %s", e.msg);
        return 0;
    }
    struct sched_runs runs = {0};
    int rows = PQntuples(res);
    for (int i = 0; i < rows; i++) {
        if (PQgetisnull(res, i, 10)) {
            rp_log(RP_LOG_ERROR, PQgetvalue(res, i, 0),
                   "pending run of a test version that does not exist; not published");
            continue;
        }
        if (runs.n == runs.cap) {
            runs.cap = runs.cap ? runs.cap * 2 : 64;
            runs.v = rp_xrealloc(runs.v, runs.cap * sizeof(*runs.v));
        }
        struct rp_job_run *j = &runs.v[runs.n++].job;
        memset(j, 0, sizeof(*j));
        snprintf(j->run_id, sizeof(j->run_id), "%s", PQgetvalue(res, i, 0));
        snprintf(j->project_id, sizeof(j->project_id), "%s", PQgetvalue(res, i, 1));
        snprintf(j->test_id, sizeof(j->test_id), "%s", PQgetvalue(res, i, 2));
        j->test_version = atoi(PQgetvalue(res, i, 3));
        j->schedule_id = PQgetisnull(res, i, 4) ? NULL : rp_xstrdup(PQgetvalue(res, i, 4));
        j->environment_id = PQgetisnull(res, i, 5) ? NULL : rp_xstrdup(PQgetvalue(res, i, 5));
        j->fire_time_ms = strtoll(PQgetvalue(res, i, 6), NULL, 10);
        snprintf(j->trigger, sizeof(j->trigger), "%s", PQgetvalue(res, i, 7));
        snprintf(j->location, sizeof(j->location), "%s", PQgetvalue(res, i, 8));
        j->retries = atoi(PQgetvalue(res, i, 9));
        j->definition = rp_xstrdup(PQgetvalue(res, i, 10));
        j->variables = rp_xstrdup(PQgetvalue(res, i, 11));
        j->overrides = PQgetisnull(res, i, 12) ? NULL : rp_xstrdup(PQgetvalue(res, i, 12));
    }
    PQclear(res);
    size_t n = runs.n;
    if (n) {
        rp_info("sweep: publishing %zu pending runs whose lease passed", n);
        rp_series_add(d->m_swept, (double)n);
        sched_dispatch_publish(d, &runs);
    }
    sched_runs_cleanup(&runs);
    return n;
}
