/* Declarations: a short-lived admin session, durable exchanges, durable quorum queues and
 * bindings, and Rampart's whole topology (DESIGN.md "RabbitMQ topology"). Declaring is
 * idempotent on the broker's side; a redeclaration with other arguments closes the channel
 * with PRECONDITION_FAILED, reported as RP_EINVAL, and the session reconnects for the next call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>

#include "rampart/amqp.h"
#include "rampart/log.h"
#include "rampart/mem.h"

struct rp_amqp_admin {
    struct rp_amqp_link link;
};

int rp_amqp_admin_open(const char *urls, const struct rp_amqp_opts *opts,
                       struct rp_amqp_admin **out, struct rp_error *err)
{
    struct rp_amqp_admin *a = rp_xcalloc(1, sizeof(*a));
    int rc = rp_amqp_link_init(&a->link, urls, opts, err);
    if (rc != RP_OK)
        goto out;
    a->link.down_logged = 1; /* the caller reports failures */
    a->link.quiet = 1;
    rc = rp_amqp_link_connect(&a->link, err);
    if (rc != RP_OK)
        goto out;
    *out = a;
    a = NULL;
out:
    rp_amqp_admin_close(a);
    return rc;
}

void rp_amqp_admin_close(struct rp_amqp_admin *a)
{
    if (!a)
        return;
    rp_amqp_link_cleanup(&a->link);
    free(a);
}

/* One try to get a connection back after an earlier failure closed it (no sleeping). */
static int ready(struct rp_amqp_admin *a, struct rp_error *err)
{
    if (a->link.conn)
        return RP_OK;
    a->link.next_try_ms = 0;
    return rp_amqp_link_connect(&a->link, err);
}

int rp_amqp_declare_exchange(struct rp_amqp_admin *a, const char *name, const char *type,
                             struct rp_error *err)
{
    int rc = ready(a, err);
    if (rc != RP_OK)
        return rc;
    amqp_exchange_declare(a->link.conn, 1, amqp_cstring_bytes(name), amqp_cstring_bytes(type), 0, 1,
                          0, 0, amqp_empty_table);
    char what[300];
    snprintf(what, sizeof(what), "declaring exchange %s", name);
    return rp_amqp_link_reply(&a->link, amqp_get_rpc_reply(a->link.conn), what, err);
}

static amqp_table_entry_t str_entry(const char *key, const char *val)
{
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = amqp_cstring_bytes(val);
    return e;
}

int rp_amqp_declare_queue(struct rp_amqp_admin *a, const char *queue,
                          const struct rp_amqp_queue_opts *qopts, struct rp_error *err)
{
    int rc = ready(a, err);
    if (rc != RP_OK)
        return rc;
    struct rp_amqp_queue_opts none = {0};
    if (!qopts)
        qopts = &none;
    amqp_table_entry_t e[7];
    int n = 0;
    e[n++] = str_entry("x-queue-type", "quorum");
    if (qopts->delivery_limit > 0) {
        e[n].key = amqp_cstring_bytes("x-delivery-limit");
        e[n].value.kind = AMQP_FIELD_KIND_I64;
        e[n].value.value.i64 = qopts->delivery_limit;
        n++;
    }
    if (qopts->dead_letter_exchange)
        e[n++] = str_entry("x-dead-letter-exchange", qopts->dead_letter_exchange);
    if (qopts->dead_letter_routing_key)
        e[n++] = str_entry("x-dead-letter-routing-key", qopts->dead_letter_routing_key);
    if (qopts->dead_letter_strategy)
        e[n++] = str_entry("x-dead-letter-strategy", qopts->dead_letter_strategy);
    if (qopts->overflow)
        e[n++] = str_entry("x-overflow", qopts->overflow);
    if (qopts->message_ttl_ms > 0) {
        e[n].key = amqp_cstring_bytes("x-message-ttl");
        e[n].value.kind = AMQP_FIELD_KIND_I64;
        e[n].value.value.i64 = qopts->message_ttl_ms;
        n++;
    }
    amqp_table_t args = {n, e};
    amqp_queue_declare(a->link.conn, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, args);
    char what[300];
    snprintf(what, sizeof(what), "declaring queue %s", queue);
    return rp_amqp_link_reply(&a->link, amqp_get_rpc_reply(a->link.conn), what, err);
}

int rp_amqp_bind_queue(struct rp_amqp_admin *a, const char *queue, const char *exchange,
                       const char *routing_key, struct rp_error *err)
{
    int rc = ready(a, err);
    if (rc != RP_OK)
        return rc;
    amqp_queue_bind(a->link.conn, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
                    amqp_cstring_bytes(routing_key), amqp_empty_table);
    char what[600];
    snprintf(what, sizeof(what), "binding queue %s to %s (%s)", queue, exchange, routing_key);
    return rp_amqp_link_reply(&a->link, amqp_get_rpc_reply(a->link.conn), what, err);
}

int rp_amqp_declare_bound_queue(struct rp_amqp_admin *a, const char *exchange,
                                const char *exchange_type, const char *queue,
                                const char *routing_key, const struct rp_amqp_queue_opts *qopts,
                                struct rp_error *err)
{
    int rc = rp_amqp_declare_exchange(a, exchange, exchange_type, err);
    if (rc == RP_OK)
        rc = rp_amqp_declare_queue(a, queue, qopts, err);
    if (rc == RP_OK)
        rc = rp_amqp_bind_queue(a, queue, exchange, routing_key, err);
    return rc;
}

int rp_amqp_delete_queue(struct rp_amqp_admin *a, const char *queue, struct rp_error *err)
{
    int rc = ready(a, err);
    if (rc != RP_OK)
        return rc;
    amqp_queue_delete(a->link.conn, 1, amqp_cstring_bytes(queue), 0, 0);
    rc = rp_amqp_link_reply(&a->link, amqp_get_rpc_reply(a->link.conn), "deleting a queue", err);
    return rc == RP_ENOENT ? RP_OK : rc;
}

int rp_amqp_delete_exchange(struct rp_amqp_admin *a, const char *name, struct rp_error *err)
{
    int rc = ready(a, err);
    if (rc != RP_OK)
        return rc;
    amqp_exchange_delete(a->link.conn, 1, amqp_cstring_bytes(name), 0);
    rc =
        rp_amqp_link_reply(&a->link, amqp_get_rpc_reply(a->link.conn), "deleting an exchange", err);
    return rc == RP_ENOENT ? RP_OK : rc;
}

int rp_amqp_queue_depth(struct rp_amqp_admin *a, const char *queue, uint32_t *messages,
                        struct rp_error *err)
{
    int rc = ready(a, err);
    if (rc != RP_OK)
        return rc;
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(a->link.conn, 1, amqp_cstring_bytes(queue), 1,
                                                     0, 0, 0, amqp_empty_table);
    rc = rp_amqp_link_reply(&a->link, amqp_get_rpc_reply(a->link.conn), "counting a queue", err);
    if (rc == RP_OK && ok)
        *messages = ok->message_count;
    return rc;
}

int rp_amqp_declare_topology(struct rp_amqp_admin *a, const char *const *locations,
                             size_t n_locations, const struct rp_amqp_topology_opts *topts,
                             struct rp_error *err)
{
    long limit = topts && topts->delivery_limit > 0 ? topts->delivery_limit : 5;
    int rc = rp_amqp_declare_exchange(a, RP_AMQP_JOBS_EXCHANGE, "direct", err);
    if (rc == RP_OK) /* fanout: dead letters keep their location routing key */
        rc = rp_amqp_declare_bound_queue(a, RP_AMQP_JOBS_DLX, "fanout", RP_AMQP_JOBS_DEAD, "", NULL,
                                         err);
    for (size_t i = 0; rc == RP_OK && i < n_locations; i++) {
        char *q = rp_xasprintf("%s.%s", RP_AMQP_JOBS_EXCHANGE, locations[i]);
        /* at-least-once dead-lettering (RabbitMQ >= 3.10) requires reject-publish overflow;
         * the job queues have no length limit, so it changes nothing else */
        struct rp_amqp_queue_opts qo = {.delivery_limit = limit,
                                        .dead_letter_exchange = RP_AMQP_JOBS_DLX,
                                        .dead_letter_strategy = "at-least-once",
                                        .overflow = "reject-publish"};
        rc = rp_amqp_declare_bound_queue(a, RP_AMQP_JOBS_EXCHANGE, "direct", q, locations[i], &qo,
                                         err);
        free(q);
    }
    static const char *const consumers[] = {RP_AMQP_MAILER_QUEUE, RP_AMQP_CONNECTOR_QUEUE};
    for (size_t i = 0; rc == RP_OK && i < 2; i++) {
        rc = rp_amqp_declare_bound_queue(a, RP_AMQP_EVENTS_EXCHANGE, "topic", consumers[i],
                                         "incident.*", NULL, err);
    }
    return rc;
}
