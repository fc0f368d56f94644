/* The alert engine shared by rampart-mailer and rampart-connector (issue #7, docs/alerts.md):
 * it consumes the incident events of one queue (`rampart.mailer` / `rampart.connector`), works
 * out which channels of the service's kinds hear about each transition, keeps the notification
 * ledger in PostgreSQL (one row per transition + channel: a redelivered event sends nothing
 * twice), mutes what a maintenance window covers, retries failures with exponential back-off
 * through RabbitMQ retry queues (TTL + dead-letter back), and sweeps the outbox (transitions
 * whose publisher died) and the reminders of long incidents. A service brings only its
 * sender: one function that delivers one message to one channel.
 *
 * Threads: rp_alert_start starts RAMPART_ALERT_CONCURRENCY delivery threads (each with its own
 * AMQP consumer, publisher and PostgreSQL connection) and one sweeper thread. The sender is
 * called from several threads at once and must be thread-safe. */
#ifndef RAMPART_ALERT_H
#define RAMPART_ALERT_H
#include <stddef.h>

#include <bson/bson.h>

#include "rampart/config.h"
#include "rampart/error.h"

struct rp_service;

/* What one notification says, read from PostgreSQL for one transition. Strings are UTF-8 and
 * NUL-terminated; NULL when they do not apply (a test notification has no incident, test or
 * run). Times are ISO 8601 UTC ("2026-11-23T22:40:00Z"). */
struct rp_alert_msg {
    const char *kind;            /* "opened" | "resolved" | "reminder" | "test" */
    const char *transition_id;   /* uuid of the transition */
    const char *notification_id; /* uuid of the ledger row: unique per transition + channel,
                                  * the idempotency key a receiver can deduplicate on */
    const char *dedup_key;       /* stable for one incident across its transitions
                                  * ("rampart-<incident id>"; test: "rampart-test-<transition>"):
                                  * PagerDuty dedup_key, Opsgenie alias, status page key */
    const char *project_id, *project_slug, *project_name;
    const char *test_id, *test_name;
    const char *location;
    const char *rule_name;
    const char *incident_id;
    const char *failing_since; /* fire time of the first failure of the streak */
    const char *occurred_at;   /* when the transition happened (the run's fire time) */
    const char *failure;       /* what failed: the first failed check, or the run's error */
    const char *run_id;        /* the run that caused the transition */
    const char *run_url;       /* that run in the dashboard (RAMPART_PUBLIC_URL + path) */
    const char *test_url;      /* the test in the dashboard */
    long long failing_for_s;   /* resolved and reminder: seconds since failing_since */
    int reminder_no;           /* reminder: 1, 2, ... */
    const char *requested_by;  /* test: the e-mail of who asked for it */
};

/* One channel of the service's kinds, its config as stored and its secrets opened. */
struct rp_alert_channel {
    const char *id, *name, *kind;
    const bson_t *config;  /* channels.config (non-secret members, as validated by the API) */
    const bson_t *secrets; /* channels.secrets opened: {"member": "value"}; an object member
                            * (webhook headers) is its JSON text */
};

/* The opened secret `name` of a channel, or NULL. */
const char *rp_alert_secret(const struct rp_alert_channel *ch, const char *name);

/* What one try did. */
struct rp_alert_outcome {
    int ok;           /* delivered: the receiver accepted it */
    int skipped;      /* this kind sends nothing for this transition (a reminder to a status
                       * page): the ledger says muted, with detail as the reason */
    int permanent;    /* not delivered and trying again cannot help (bad config, HTTP 4xx
                       * other than 408/429, SMTP 5xx): no retry, the ledger says failed */
    char detail[512]; /* what the receiver answered ("HTTP 500 Internal Server Error: ...",
                       * "SMTP 250 OK") or why it failed; never a secret */
};

/* Deliver `m` to `ch` once; fill `out`. Called from several threads at once. */
typedef void (*rp_alert_send_fn)(void *ctx, const struct rp_alert_msg *m,
                                 const struct rp_alert_channel *ch, struct rp_alert_outcome *out);

/* The engine's settings, shared by both services (RP_ALERT_SETTINGS below). */
struct rp_alert_config {
    char *secret_key;     /* RAMPART_SECRET_KEY: opens channel secrets */
    char *public_url;     /* RAMPART_PUBLIC_URL: links to the dashboard */
    long concurrency;     /* RAMPART_ALERT_CONCURRENCY */
    long max_attempts;    /* RAMPART_ALERT_MAX_ATTEMPTS */
    long retry_base_ms;   /* RAMPART_ALERT_RETRY_BASE */
    long retry_max_ms;    /* RAMPART_ALERT_RETRY_MAX */
    long send_timeout_ms; /* RAMPART_ALERT_SEND_TIMEOUT */
    long sweep_ms;        /* RAMPART_ALERT_SWEEP_INTERVAL */
    long outbox_delay_ms; /* RAMPART_ALERT_OUTBOX_DELAY */
};

#define RP_ALERT_SETTINGS(c)                                                                       \
    {"RAMPART_SECRET_KEY",                                                                         \
     RP_SET_STRING,                                                                                \
     "",                                                                                           \
     "64 hex digits: the key that opens channel credentials (the dashboard's key); empty: "        \
     "channels with secrets fail with a clear reason",                                             \
     &(c).secret_key,                                                                              \
     0,                                                                                            \
     0,                                                                                            \
     NULL,                                                                                         \
     1},                                                                                           \
        {"RAMPART_PUBLIC_URL",                                                                     \
         RP_SET_STRING,                                                                            \
         "http://127.0.0.1:8080",                                                                  \
         "the dashboard's address as users reach it, for the links in alerts",                     \
         &(c).public_url,                                                                          \
         0,                                                                                        \
         0,                                                                                        \
         NULL,                                                                                     \
         0},                                                                                       \
        {"RAMPART_ALERT_CONCURRENCY",                                                              \
         RP_SET_INT,                                                                               \
         "4",                                                                                      \
         "notifications delivered at once (one consumer, connection and thread each)",             \
         &(c).concurrency,                                                                         \
         1,                                                                                        \
         64,                                                                                       \
         NULL,                                                                                     \
         0},                                                                                       \
        {"RAMPART_ALERT_MAX_ATTEMPTS",                                                             \
         RP_SET_INT,                                                                               \
         "8",                                                                                      \
         "tries of one notification before the ledger marks it failed",                            \
         &(c).max_attempts,                                                                        \
         1,                                                                                        \
         50,                                                                                       \
         NULL,                                                                                     \
         0},                                                                                       \
        {"RAMPART_ALERT_RETRY_BASE",                                                               \
         RP_SET_DURATION,                                                                          \
         "10s",                                                                                    \
         "back-off before the 2nd try; doubled for each next one",                                 \
         &(c).retry_base_ms,                                                                       \
         10,                                                                                       \
         3600000,                                                                                  \
         NULL,                                                                                     \
         0},                                                                                       \
        {"RAMPART_ALERT_RETRY_MAX",                                                                \
         RP_SET_DURATION,                                                                          \
         "1h",                                                                                     \
         "longest back-off between two tries",                                                     \
         &(c).retry_max_ms,                                                                        \
         10,                                                                                       \
         86400000,                                                                                 \
         NULL,                                                                                     \
         0},                                                                                       \
        {"RAMPART_ALERT_SEND_TIMEOUT",                                                             \
         RP_SET_DURATION,                                                                          \
         "15s",                                                                                    \
         "longest one try may take (connect + send + answer)",                                     \
         &(c).send_timeout_ms,                                                                     \
         100,                                                                                      \
         300000,                                                                                   \
         NULL,                                                                                     \
         0},                                                                                       \
        {"RAMPART_ALERT_SWEEP_INTERVAL",                                                           \
         RP_SET_DURATION,                                                                          \
         "1s",                                                                                     \
         "how often the outbox (unpublished transitions) and reminders are swept",                 \
         &(c).sweep_ms,                                                                            \
         50,                                                                                       \
         3600000,                                                                                  \
         NULL,                                                                                     \
         0},                                                                                       \
    {                                                                                              \
        "RAMPART_ALERT_OUTBOX_DELAY", RP_SET_DURATION, "2s",                                       \
            "a transition still unpublished this long after it was recorded is published by the "  \
            "sweep (its publisher died)",                                                          \
            &(c).outbox_delay_ms, 0, 3600000, NULL, 0                                              \
    }

/* What a service brings. */
struct rp_alert_def {
    const char *queue;        /* RP_AMQP_MAILER_QUEUE or RP_AMQP_CONNECTOR_QUEUE */
    const char *const *kinds; /* channel kinds it delivers, NULL-terminated */
    rp_alert_send_fn send;
    void *ctx;
};

struct rp_alert;
/* Start the engine for a service opened with rp_service_open (settings loaded): threads, the
 * retry queues, the drain callback (stop consuming, finish the notification in hand, hand back
 * the rest), a readiness check and metrics. `pg_url` and `amqp_urls` as the service's
 * settings. The caller then runs rp_service_run and frees with rp_alert_free. */
int rp_alert_start(struct rp_service *svc, const struct rp_alert_def *def,
                   const struct rp_alert_config *cfg, const char *pg_url, const char *amqp_urls,
                   struct rp_alert **out, struct rp_error *err) RP_MUST_CHECK;
/* Stop every thread (if the drain did not) and free. Accepts NULL. */
void rp_alert_free(struct rp_alert *a);

/* The retry delay before try number `attempt` + 1 (attempt >= 1): base * 2^(attempt-1),
 * capped at max. */
long rp_alert_backoff_ms(long base_ms, long max_ms, int attempt);

#endif
