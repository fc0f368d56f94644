/* The alert engine's frame (rampart/alert.h): the delivery threads (each with its own AMQP
 * consumer and publisher and its own PostgreSQL connection), the retry queues (one per back-off
 * delay, each a quorum queue whose messages expire after that delay and dead-letter back to the
 * service's queue), the sweeper thread, the drain and the metrics. What one delivery does is
 * in deliver.c; the outbox and reminders in sweep.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "alert_int.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/service.h"

#define PREFETCH 1 /* one notification in hand per thread: a drain hands back nothing */

long long al_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long rp_alert_backoff_ms(long base_ms, long max_ms, int attempt)
{
    long d = base_ms;
    for (int i = 1; i < attempt && d < max_ms; i++)
        d = d > max_ms / 2 ? max_ms : d * 2;
    return d < max_ms ? d : max_ms;
}

const char *rp_alert_secret(const struct rp_alert_channel *ch, const char *name)
{
    bson_iter_t it;
    if (!ch || !ch->secrets || !bson_iter_init_find(&it, ch->secrets, name) ||
        !BSON_ITER_HOLDS_UTF8(&it))
        return NULL;
    return bson_iter_utf8(&it, NULL);
}

/* ---- retry queues ------------------------------------------------------------------------ */

static void add_delay(struct rp_alert *a, long ms)
{
    for (size_t i = 0; i < a->n_delays; i++)
        if (a->delays[i] == ms)
            return;
    if (a->n_delays < AL_MAX_DELAYS)
        a->delays[a->n_delays++] = ms;
    /* keep sorted (insertion) */
    for (size_t i = a->n_delays - 1; i > 0 && a->delays[i] < a->delays[i - 1]; i--) {
        long t = a->delays[i];
        a->delays[i] = a->delays[i - 1];
        a->delays[i - 1] = t;
    }
}

const char *al_retry_queue(struct rp_alert *a, long ms, char *buf, size_t cap)
{
    long pick = a->delays[a->n_delays - 1];
    for (size_t i = 0; i < a->n_delays; i++)
        if (a->delays[i] >= ms) {
            pick = a->delays[i];
            break;
        }
    snprintf(buf, cap, "%s.retry.%ldms", a->def.queue, pick);
    return buf;
}

int al_declare_retry_queues(struct rp_alert *a, struct rp_error *err)
{
    if (atomic_load(&a->declared))
        return RP_OK;
    struct rp_amqp_admin *adm = NULL;
    int rc = rp_amqp_admin_open(a->amqp_urls, NULL, &adm, err);
    if (rc != RP_OK)
        return RP_EAGAIN;
    for (size_t i = 0; rc == RP_OK && i < a->n_delays; i++) {
        char name[300];
        snprintf(name, sizeof(name), "%s.retry.%ldms", a->def.queue, a->delays[i]);
        /* at-least-once dead-lettering: a retry leaves this queue only once the service's
         * queue has taken it (RabbitMQ >= 3.10; needs reject-publish overflow) */
        struct rp_amqp_queue_opts qo = {.dead_letter_exchange = "",
                                        .dead_letter_routing_key = a->def.queue,
                                        .dead_letter_strategy = "at-least-once",
                                        .overflow = "reject-publish",
                                        .message_ttl_ms = a->delays[i]};
        rc = rp_amqp_declare_queue(adm, name, &qo, err);
    }
    rp_amqp_admin_close(adm);
    if (rc == RP_OK)
        atomic_store(&a->declared, 1);
    return rc;
}

/* ---- delivery threads -------------------------------------------------------------------- */

static void conn_drop(struct al_conn *c)
{
    rp_amqp_consumer_free(c->consumer);
    c->consumer = NULL;
    if (c->pub) {
        struct rp_error e = {0};
        if (rp_amqp_publisher_flush(c->pub, 2000, &e) != RP_OK)
            rp_warn("retry publisher: %s", e.msg);
        rp_amqp_publisher_free(c->pub);
        c->pub = NULL;
    }
    rp_pg_close(c->pg);
    c->pg = NULL;
}

/* Open what is missing; RP_OK when everything is up. */
static int conn_ensure(struct al_conn *c, struct rp_error *err)
{
    struct rp_alert *a = c->a;
    struct rp_amqp_opts ao = {.name = "alert retry publisher"};
    if (!c->pg) {
        if (rp_pg_open(a->pg_url, &c->pg, err) != RP_OK)
            return RP_EAGAIN;
        rp_pg_set_reconnect_budget(c->pg, 5000);
        rp_pg_set_statement_cache(c->pg, 64);
    }
    if (al_declare_retry_queues(a, err) != RP_OK)
        return RP_EAGAIN;
    if (!c->pub && rp_amqp_publisher_new(a->amqp_urls, &ao, NULL, NULL, &c->pub, err) != RP_OK)
        return RP_EAGAIN;
    if (!c->consumer) {
        /* a try may take RAMPART_ALERT_SEND_TIMEOUT without a call into the library: a
         * heartbeat long enough that the broker does not drop the connection meanwhile */
        struct rp_amqp_opts co = {.name = "alert consumer", .heartbeat_s = 60};
        if (rp_amqp_consumer_new(a->amqp_urls, a->def.queue, PREFETCH, &co, &c->consumer, err) !=
            RP_OK)
            return RP_EAGAIN;
    }
    return RP_OK;
}

static void *delivery_main(void *arg)
{
    struct rp_alert *a = arg;
    struct al_conn c = {.a = a};
    long long next_try = 0, last_err_log = 0;
    while (!atomic_load(&a->stop)) {
        struct rp_error err = {0};
        if (al_now_ms() < next_try) {
            rp_amqp_sleep_ms(100);
            continue;
        }
        if (conn_ensure(&c, &err) != RP_OK) {
            if (al_now_ms() - last_err_log > 10000) {
                rp_warn("alert delivery: waiting for its servers: %s", err.msg);
                last_err_log = al_now_ms();
            }
            next_try = al_now_ms() + 1000;
            continue;
        }
        struct rp_amqp_delivery *d = NULL;
        int rc = rp_amqp_consumer_next(c.consumer, 250, &d, &err);
        if (rc == RP_ETIMEDOUT) {
            (void)rp_amqp_publisher_poll(c.pub, 0, &err);
            continue;
        }
        if (rc != RP_OK) {
            rp_warn("alert delivery: consuming %s: %s", a->def.queue, err.msg);
            if (rc != RP_EAGAIN) { /* the queue is gone or access refused: start over */
                rp_amqp_consumer_free(c.consumer);
                c.consumer = NULL;
                atomic_store(&a->declared, 0);
            }
            next_try = al_now_ms() + 1000;
            continue;
        }
        rp_series_add(a->m_in_flight, 1);
        c.pub_failed = 0;
        rc = al_deliver(&c, d);
        rp_series_add(a->m_in_flight, -1);
        if (rc == RP_OK) {
            if (rp_amqp_ack(c.consumer, d, &err) != RP_OK)
                rp_warn("alert delivery: ack: %s (the message comes back; the ledger makes that "
                        "harmless)",
                        err.msg);
        } else {
            if (rp_amqp_reject(c.consumer, d, 1, &err) != RP_OK)
                rp_warn("alert delivery: requeue: %s", err.msg);
            next_try = al_now_ms() + 500; /* an outage: do not spin on the same message */
        }
        rp_amqp_delivery_free(d);
    }
    /* draining: stop the broker sending more, hand back what came meanwhile */
    if (c.consumer) {
        struct rp_error err = {0};
        if (rp_amqp_consumer_cancel(c.consumer, &err) == RP_OK) {
            struct rp_amqp_delivery *d = NULL;
            while (rp_amqp_consumer_next(c.consumer, 200, &d, &err) == RP_OK) {
                if (rp_amqp_reject(c.consumer, d, 1, &err) != RP_OK)
                    rp_debug("alert delivery: hand back: %s", err.msg);
                rp_amqp_delivery_free(d);
            }
        }
    }
    conn_drop(&c);
    pthread_mutex_lock(&a->mu);
    a->running--;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- drain, start, free ------------------------------------------------------------------ */

static int stop_and_wait(struct rp_alert *a, long timeout_ms)
{
    atomic_store(&a->stop, 1);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = RP_OK;
    pthread_mutex_lock(&a->mu);
    while (a->running > 0)
        if (pthread_cond_timedwait(&a->cv, &a->mu, &until) != 0) {
            rc = RP_ETIMEDOUT;
            break;
        }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

static int drain(void *ud, long timeout_ms)
{
    struct rp_alert *a = ud;
    int rc = stop_and_wait(a, timeout_ms);
    if (rc == RP_OK)
        rp_info("alert delivery drained: every notification in hand finished, the rest handed "
                "back");
    return rc;
}

static const char *service_name(const char *queue)
{
    const char *dot = strrchr(queue, '.');
    return dot ? dot + 1 : queue;
}

int rp_alert_start(struct rp_service *svc, const struct rp_alert_def *def,
                   const struct rp_alert_config *cfg, const char *pg_url, const char *amqp_urls,
                   struct rp_alert **out, struct rp_error *err)
{
    struct rp_alert *a = rp_xcalloc(1, sizeof(*a));
    a->def = *def;
    a->cfg = *cfg;
    a->pg_url = rp_xstrdup(pg_url);
    a->amqp_urls = rp_xstrdup(amqp_urls);
    a->service = service_name(def->queue);
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    if (cfg->secret_key && *cfg->secret_key) {
        if (rp_secret_key_parse(cfg->secret_key, a->key, err) != RP_OK) {
            rp_alert_free(a);
            return RP_EINVAL;
        }
        a->have_key = 1;
    } else {
        snprintf(a->key_problem, sizeof(a->key_problem),
                 "RAMPART_SECRET_KEY is not set, so the channel's credentials cannot be opened: "
                 "give this service the dashboard's key");
    }
    /* a claimed notification whose copy died is taken over once the lease has passed */
    a->lease_ms = cfg->send_timeout_ms + 5000;
    for (int n = 1; n < cfg->max_attempts; n++)
        add_delay(a, rp_alert_backoff_ms(cfg->retry_base_ms, cfg->retry_max_ms, n));
    add_delay(a, a->lease_ms);

    struct rp_metrics *m = rp_service_metrics(svc);
    a->m_notifications = rp_metrics_counter(
        m, "rampart_alert_notifications_total",
        "notification tries by channel kind and outcome (sent, retry, failed, muted, skipped)",
        "kind,outcome");
    static const double secs[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    a->m_send_seconds = rp_metrics_histogram(m, "rampart_alert_send_duration_seconds",
                                             "time of one try to deliver a notification", "kind",
                                             secs, sizeof(secs) / sizeof(secs[0]));
    a->m_events = rp_metric_series(
        rp_metrics_counter(m, "rampart_alert_messages_total",
                           "incident events and retries taken from the queue", NULL),
        NULL);
    a->m_bad_messages = rp_metric_series(
        rp_metrics_counter(m, "rampart_alert_bad_messages_total",
                           "messages dropped because they could not be decoded", NULL),
        NULL);
    a->m_outbox = rp_metric_series(
        rp_metrics_counter(m, "rampart_alert_outbox_published_total",
                           "transitions published by the sweep (their publisher had died)", NULL),
        NULL);
    a->m_reminders =
        rp_metric_series(rp_metrics_counter(m, "rampart_alert_reminders_total",
                                            "reminders created for incidents still open", NULL),
                         NULL);
    a->m_in_flight = rp_metric_series(
        rp_metrics_gauge(m, "rampart_alert_in_flight", "notifications being delivered now", NULL),
        NULL);

    a->n_threads = (size_t)cfg->concurrency;
    a->threads = rp_xcalloc(a->n_threads, sizeof(*a->threads));
    for (size_t i = 0; i < a->n_threads; i++) {
        if (pthread_create(&a->threads[i], NULL, delivery_main, a) != 0) {
            a->n_threads = i;
            rp_alert_free(a);
            return rp_error_set(err, RP_EIO, "cannot start the delivery threads");
        }
        pthread_mutex_lock(&a->mu);
        a->running++;
        pthread_mutex_unlock(&a->mu);
    }
    if (pthread_create(&a->sweeper, NULL, al_sweep_main, a) != 0) {
        rp_alert_free(a);
        return rp_error_set(err, RP_EIO, "cannot start the sweeper thread");
    }
    a->sweeper_started = 1;
    rp_service_set_drain(svc, drain, a);
    rp_info("alert engine: %zu delivery threads on %s, kinds of %s, %zu retry queues (%ld ms .. "
            "%ld ms), up to %ld tries",
            a->n_threads, def->queue, a->service, a->n_delays, a->delays[0],
            a->delays[a->n_delays - 1], cfg->max_attempts);
    *out = a;
    return RP_OK;
}

void rp_alert_free(struct rp_alert *a)
{
    if (!a)
        return;
    atomic_store(&a->stop, 1);
    for (size_t i = 0; i < a->n_threads; i++)
        pthread_join(a->threads[i], NULL);
    if (a->sweeper_started)
        pthread_join(a->sweeper, NULL);
    free(a->threads);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    sodium_memzero(a->key, sizeof(a->key));
    free(a->pg_url);
    free(a->amqp_urls);
    free(a);
}
