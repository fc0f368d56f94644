/* The sweeper thread of the alert engine, every RAMPART_ALERT_SWEEP_INTERVAL:
 *  - reminders: an incident open longer than k times its rule's remind_every_s gets reminder
 *    number k, once (UNIQUE (incident_id, kind, seq): many copies sweeping insert it once; a
 *    service that was down for several intervals sends one reminder, not a burst);
 *  - the outbox: transitions not yet published (the worker that recorded them died before
 *    publishing; reminders and test notifications, which nobody else publishes) are locked
 *    with SKIP LOCKED, published as incident.<kind> with confirms, and marked published in the
 *    same transaction. A copy dying in between publishes nothing twice that matters: the
 *    ledger makes a second event harmless. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert_int.h"
#include "rampart/log.h"
#include "rampart/mem.h"

#define OUTBOX_BATCH 200

static const char reminders_sql[] =
    "INSERT INTO incident_transitions (project_id, incident_id, kind, seq, occurred_at) "
    "SELECT i.project_id, i.id, 'reminder', "
    "       floor(extract(epoch FROM now() - i.opened_at) / ar.remind_every_s)::int, now() "
    "FROM incidents i JOIN alert_rules ar ON ar.id = i.rule_id "
    "WHERE i.resolved_at IS NULL AND ar.enabled AND ar.remind_every_s IS NOT NULL "
    "  AND now() - i.opened_at >= ar.remind_every_s * interval '1 second' "
    "ON CONFLICT (incident_id, kind, seq) DO NOTHING RETURNING id";

static const char outbox_sql[] =
    "SELECT id, kind FROM incident_transitions "
    "WHERE published_at IS NULL "
    "  AND (kind IN ('test', 'reminder') "
    "       OR created_at < now() - $1::bigint * interval '1 millisecond') "
    "ORDER BY created_at LIMIT 200 FOR UPDATE SKIP LOCKED"; /* OUTBOX_BATCH */

static const char mark_sql[] =
    "UPDATE incident_transitions SET published_at = now() WHERE id = ANY ($1::uuid[])";

struct outbox {
    struct rp_alert *a;
    struct rp_amqp_publisher *pub;
    int published;
    int marking; /* past the broker: a failure now is the database's */
};

static int outbox_tx(struct rp_pg *pg, void *ctx, struct rp_error *err)
{
    struct outbox *o = ctx;
    char delay[32];
    snprintf(delay, sizeof(delay), "%ld", o->a->cfg.outbox_delay_ms);
    const char *p[] = {delay};
    PGresult *r = NULL;
    o->published = 0;
    o->marking = 0;
    int rc = rp_pg_exec(pg, outbox_sql, 1, p, &r, err);
    if (rc != RP_OK)
        return rc;
    int n = PQntuples(r);
    if (n == 0) {
        PQclear(r);
        return RP_OK;
    }
    struct rp_buf ids;
    rp_buf_init(&ids, 0);
    (void)rp_buf_append(&ids, "{", 1);
    struct rp_amqp_props props = {.content_type = "application/json", .persistent = 1};
    for (int i = 0; i < n && rc == RP_OK; i++) {
        char key[64], body[120];
        snprintf(key, sizeof(key), "incident.%s", PQgetvalue(r, i, 1));
        int len = snprintf(body, sizeof(body), "{\"transition_id\":\"%s\",\"kind\":\"%s\"}",
                           PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
        rc = rp_amqp_publish(o->pub, RP_AMQP_EVENTS_EXCHANGE, key, body, (size_t)len, &props, 0,
                             NULL, err);
        rp_pg_array_add(&ids, PQgetvalue(r, i, 0));
    }
    (void)rp_buf_append(&ids, "}\0", 2);
    PQclear(r);
    if (rc == RP_OK)
        rc = rp_amqp_publisher_flush(o->pub, 10000, err);
    if (rc == RP_OK) {
        const char *mp[] = {ids.data};
        o->marking = 1;
        rc = rp_pg_exec(pg, mark_sql, 1, mp, NULL, err);
    }
    rp_buf_cleanup(&ids);
    if (rc == RP_OK)
        o->published = n;
    else if (!o->marking) {
        /* the broker did not take them: roll back and try at the next sweep (a code rp_pg_tx
         * does not retry, so a broker outage does not hold the rows for its retries) */
        char why[sizeof(err->msg)];
        snprintf(why, sizeof(why), "%s", err->msg);
        rc = rp_error_set(err, RP_EIO, "publishing the outbox: %s", why);
    }
    return rc;
}

void *al_sweep_main(void *arg)
{
    struct rp_alert *a = arg;
    struct rp_pg *pg = NULL;
    struct rp_amqp_publisher *pub = NULL;
    long long next = 0, last_log = 0;
    while (!atomic_load(&a->stop)) {
        if (al_now_ms() < next) {
            rp_amqp_sleep_ms(50);
            continue;
        }
        next = al_now_ms() + a->cfg.sweep_ms;
        struct rp_error err = {0};
        if (!pg) {
            if (rp_pg_open(a->pg_url, &pg, &err) != RP_OK)
                goto failed;
            rp_pg_set_reconnect_budget(pg, 5000);
        }
        if (!pub) {
            struct rp_amqp_opts ao = {.name = "alert outbox publisher"};
            if (rp_amqp_publisher_new(a->amqp_urls, &ao, NULL, NULL, &pub, &err) != RP_OK)
                goto failed;
        }
        PGresult *r = NULL;
        if (rp_pg_exec_idempotent(pg, reminders_sql, 0, NULL, &r, &err) != RP_OK)
            goto failed;
        if (PQntuples(r) > 0) {
            rp_series_add(a->m_reminders, PQntuples(r));
            rp_info("alert sweep: %d reminder(s) of incidents still open", PQntuples(r));
        }
        PQclear(r);
        struct outbox o = {.a = a, .pub = pub};
        do {
            if (rp_pg_tx(pg, outbox_tx, &o, &err) != RP_OK)
                goto failed;
            if (o.published > 0) {
                rp_series_add(a->m_outbox, o.published);
                rp_debug("alert sweep: published %d transition(s) from the outbox", o.published);
            }
        } while (o.published == OUTBOX_BATCH && !atomic_load(&a->stop));
        (void)rp_amqp_publisher_poll(pub, 0, &err);
        continue;
    failed:
        if (al_now_ms() - last_log > 10000) {
            rp_warn("alert sweep: %s (next try in %ld ms)", err.msg, a->cfg.sweep_ms);
            last_log = al_now_ms();
        }
    }
    if (pub) {
        struct rp_error err = {0};
        if (rp_amqp_publisher_flush(pub, 2000, &err) != RP_OK)
            rp_warn("alert outbox publisher: %s", err.msg);
        rp_amqp_publisher_free(pub);
    }
    rp_pg_close(pg);
    return NULL;
}
