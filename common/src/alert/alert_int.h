/* Internals of the alert engine (rampart/alert.h), shared by engine.c (threads, retry queues,
 * drain, metrics), deliver.c (one delivery: ledger, mute, send, retry) and sweep.c (outbox
 * and reminders). */
#ifndef RP_ALERT_INT_H
#define RP_ALERT_INT_H
#include <pthread.h>
#include <stdatomic.h>

#include "rampart/alert.h"
#include "rampart/amqp.h"
#include "rampart/metrics.h"
#include "rampart/pg.h"
#include "rampart/secret.h"

#define AL_MAX_DELAYS 64

struct rp_alert {
    struct rp_alert_def def;
    struct rp_alert_config cfg;
    char *pg_url, *amqp_urls;
    const char *service; /* "mailer" / "connector": from the queue name */
    unsigned char key[RP_SECRET_KEY_BYTES];
    int have_key;
    char key_problem[200]; /* why there is no key, for the ledger */
    long lease_ms;         /* how long a claimed notification stays claimed */
    /* the retry queues: one per distinct delay, named <queue>.retry.<ms>ms */
    long delays[AL_MAX_DELAYS];
    size_t n_delays;
    atomic_int stop;     /* drain or free: stop taking deliveries */
    atomic_int declared; /* the retry queues exist */
    pthread_t *threads;
    size_t n_threads;
    pthread_t sweeper;
    int sweeper_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t running; /* threads still running */
    /* metrics */
    struct rp_metric *m_notifications; /* {kind, outcome} */
    struct rp_metric *m_send_seconds;  /* {kind} */
    struct rp_series *m_events, *m_bad_messages, *m_outbox, *m_reminders, *m_in_flight;
};

/* One delivery thread's connections. */
struct al_conn {
    struct rp_alert *a;
    struct rp_pg *pg;
    struct rp_amqp_consumer *consumer;
    struct rp_amqp_publisher *pub;
    int pub_failed; /* a retry message was refused: requeue the delivery */
};

/* Handle one message of the service's queue. Returns RP_OK when it may be acked (done, or
 * dropped as undecodable, or handed to a retry queue), RP_EAGAIN when it must go back to the
 * queue (a database or broker outage). */
int al_deliver(struct al_conn *c, const struct rp_amqp_delivery *d);

/* Ensure the retry queues exist (an admin session). RP_OK or RP_EAGAIN. */
int al_declare_retry_queues(struct rp_alert *a, struct rp_error *err);
/* The retry queue whose delay is the smallest >= `ms` (the longest if none is). */
const char *al_retry_queue(struct rp_alert *a, long ms, char *buf, size_t cap);

/* The sweeper thread: outbox and reminders, every cfg.sweep_ms. */
void *al_sweep_main(void *arg);

long long al_now_ms(void);
#endif
