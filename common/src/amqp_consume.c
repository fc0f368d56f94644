/* The consumer: manual acks, basic.qos with a per-consumer prefetch (quorum queues refuse
 * global QoS), and reconnection that resumes consuming. Each delivery remembers the connection
 * generation it came on: a delivery tag means nothing on another connection, so acking an old
 * one on the new connection is refused rather than acking some other message (or closing the
 * channel with PRECONDITION_FAILED). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>

#include "rampart/amqp.h"
#include "rampart/log.h"
#include "rampart/mem.h"

struct rp_amqp_consumer {
    struct rp_amqp_link link;
    char *queue;
    unsigned prefetch;
    uint64_t consume_gen; /* link generation on which basic.consume is active */
    char *tag;            /* consumer tag the broker gave on that generation */
    int cancelled;        /* rp_amqp_consumer_cancel was called: never consume again */
};

static char *dup_bytes(amqp_bytes_t b)
{
    return rp_xstrndup(b.bytes ? b.bytes : "", b.len);
}

static int start_consuming(struct rp_amqp_consumer *c, struct rp_error *err)
{
    amqp_connection_state_t conn = c->link.conn;
    amqp_basic_qos(conn, 1, 0, (uint16_t)(c->prefetch > 65535 ? 65535 : c->prefetch), 0);
    int rc = rp_amqp_link_reply(&c->link, amqp_get_rpc_reply(conn), "basic.qos", err);
    if (rc != RP_OK)
        return rc;
    amqp_basic_consume_ok_t *ok = amqp_basic_consume(conn, 1, amqp_cstring_bytes(c->queue),
                                                     amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    rc = rp_amqp_link_reply(&c->link, amqp_get_rpc_reply(conn), "basic.consume", err);
    if (rc != RP_OK)
        return rc;
    free(c->tag);
    c->tag = ok ? dup_bytes(ok->consumer_tag) : NULL;
    c->consume_gen = c->link.generation;
    return RP_OK;
}

static int ensure(struct rp_amqp_consumer *c, long long deadline, struct rp_error *err)
{
    for (;;) {
        int rc = rp_amqp_link_ensure(&c->link, deadline, err);
        if (rc == RP_OK && !c->cancelled && c->consume_gen != c->link.generation) {
            rc = start_consuming(c, err);
            if (rc == RP_OK)
                rp_amqp_backoff_reset(&c->link.backoff);
            else
                c->link.next_try_ms = rp_amqp_now_ms() + rp_amqp_backoff_next(&c->link.backoff);
        }
        /* A quorum queue may refuse consumers for a moment after a restart: retry. */
        if (rc != RP_EAGAIN || c->link.conn || rp_amqp_now_ms() >= deadline)
            return rc;
    }
}

int rp_amqp_consumer_new(const char *urls, const char *queue, unsigned prefetch,
                         const struct rp_amqp_opts *opts, struct rp_amqp_consumer **out,
                         struct rp_error *err)
{
    struct rp_amqp_consumer *c = rp_xcalloc(1, sizeof(*c));
    int rc = rp_amqp_link_init(&c->link, urls, opts, err);
    if (rc != RP_OK)
        goto out;
    if (!queue || !*queue || prefetch == 0) {
        rc = rp_error_set(err, RP_EINVAL, "consumer: a queue name and a prefetch > 0 are needed");
        goto out;
    }
    c->queue = rp_xstrdup(queue);
    c->prefetch = prefetch;
    c->link.down_logged = 1; /* the caller reports a failure to start */
    rc = rp_amqp_link_connect(&c->link, err);
    if (rc == RP_OK)
        rc = start_consuming(c, err);
    if (rc != RP_OK)
        goto out;
    *out = c;
    c = NULL;
out:
    rp_amqp_consumer_free(c);
    return rc;
}

void rp_amqp_consumer_free(struct rp_amqp_consumer *c)
{
    if (!c)
        return;
    rp_amqp_link_cleanup(&c->link);
    free(c->queue);
    free(c->tag);
    free(c);
}

int rp_amqp_consumer_cancel(struct rp_amqp_consumer *c, struct rp_error *err)
{
    int was = c->cancelled;
    c->cancelled = 1;
    if (was || !c->link.conn || c->consume_gen != c->link.generation || !c->tag)
        return RP_OK;
    /* A synchronous RPC: deliveries that arrive before cancel-ok are kept by rabbitmq-c and
     * come out of the next amqp_consume_message calls. */
    amqp_basic_cancel(c->link.conn, 1, amqp_cstring_bytes(c->tag));
    return rp_amqp_link_reply(&c->link, amqp_get_rpc_reply(c->link.conn), "basic.cancel", err);
}

uint64_t rp_amqp_consumer_generation(const struct rp_amqp_consumer *c)
{
    return c->link.generation;
}

static char *field_text(const amqp_field_value_t *v)
{
    switch (v->kind) {
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
        return dup_bytes(v->value.bytes);
    case AMQP_FIELD_KIND_BOOLEAN:
        return rp_xstrdup(v->value.boolean ? "true" : "false");
    case AMQP_FIELD_KIND_I8:
        return rp_xasprintf("%d", v->value.i8);
    case AMQP_FIELD_KIND_U8:
        return rp_xasprintf("%u", v->value.u8);
    case AMQP_FIELD_KIND_I16:
        return rp_xasprintf("%d", v->value.i16);
    case AMQP_FIELD_KIND_U16:
        return rp_xasprintf("%u", v->value.u16);
    case AMQP_FIELD_KIND_I32:
        return rp_xasprintf("%" PRId32, v->value.i32);
    case AMQP_FIELD_KIND_U32:
        return rp_xasprintf("%" PRIu32, v->value.u32);
    case AMQP_FIELD_KIND_I64:
        return rp_xasprintf("%" PRId64, v->value.i64);
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP:
        return rp_xasprintf("%" PRIu64, v->value.u64);
    default:
        return NULL; /* tables and arrays (x-death) are left out */
    }
}

static struct rp_amqp_delivery *make_delivery(const struct rp_amqp_consumer *c,
                                              const amqp_envelope_t *env)
{
    struct rp_amqp_delivery *d = rp_xcalloc(1, sizeof(*d));
    const amqp_basic_properties_t *p = &env->message.properties;
    d->tag = env->delivery_tag;
    d->generation = c->link.generation;
    d->redelivered = env->redelivered;
    d->delivery_count = -1;
    d->exchange = dup_bytes(env->exchange);
    d->routing_key = dup_bytes(env->routing_key);
    if (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG)
        d->content_type = dup_bytes(p->content_type);
    if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        d->message_id = dup_bytes(p->message_id);
    if (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG)
        d->correlation_id = dup_bytes(p->correlation_id);
    d->len = env->message.body.len;
    d->body = rp_xmalloc(d->len + 1);
    if (d->len)
        memcpy(d->body, env->message.body.bytes, d->len);
    ((char *)d->body)[d->len] = '\0';
    if (p->_flags & AMQP_BASIC_HEADERS_FLAG && p->headers.num_entries > 0) {
        d->headers = rp_xcalloc((size_t)p->headers.num_entries, sizeof(*d->headers));
        for (int i = 0; i < p->headers.num_entries; i++) {
            const amqp_table_entry_t *e = &p->headers.entries[i];
            char *val = field_text(&e->value);
            if (!val)
                continue;
            char *key = dup_bytes(e->key);
            if (strcmp(key, "x-delivery-count") == 0)
                d->delivery_count = strtol(val, NULL, 10);
            d->headers[d->n_headers].key = key;
            d->headers[d->n_headers].value = val;
            d->n_headers++;
        }
    }
    return d;
}

void rp_amqp_delivery_free(struct rp_amqp_delivery *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_headers; i++) {
        free((char *)d->headers[i].key);
        free((char *)d->headers[i].value);
    }
    free(d->headers);
    free(d->exchange);
    free(d->routing_key);
    free(d->content_type);
    free(d->message_id);
    free(d->correlation_id);
    free(d->body);
    free(d);
}

const char *rp_amqp_delivery_header(const struct rp_amqp_delivery *d, const char *key)
{
    for (size_t i = 0; i < d->n_headers; i++)
        if (strcmp(d->headers[i].key, key) == 0)
            return d->headers[i].value;
    return NULL;
}

/* A frame other than a delivery arrived: the broker is closing something or cancelled us. */
static int other_frame(struct rp_amqp_consumer *c, struct rp_error *err)
{
    amqp_frame_t f;
    struct timeval tv = {0, 0};
    int st = amqp_simple_wait_frame_noblock(c->link.conn, &f, &tv);
    if (st == AMQP_STATUS_TIMEOUT)
        return RP_OK;
    if (st != AMQP_STATUS_OK) {
        rp_amqp_link_drop(&c->link, amqp_error_string2(st));
        return rp_error_set(err, RP_EAGAIN, "consumer: %s", amqp_error_string2(st));
    }
    if (f.frame_type != AMQP_FRAME_METHOD)
        return RP_OK;
    char text[300];
    int code = RP_EAGAIN;
    switch (f.payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const amqp_channel_close_t *cl = f.payload.method.decoded;
        snprintf(text, sizeof(text), "channel closed: %d %.*s", cl->reply_code,
                 (int)cl->reply_text.len, (const char *)cl->reply_text.bytes);
        code = rp_amqp_map_close(1, cl->reply_code);
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(c->link.conn, 1, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        break;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_connection_close_t *cl = f.payload.method.decoded;
        snprintf(text, sizeof(text), "connection closed: %d %.*s", cl->reply_code,
                 (int)cl->reply_text.len, (const char *)cl->reply_text.bytes);
        code = rp_amqp_map_close(0, cl->reply_code);
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(c->link.conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        break;
    }
    case AMQP_BASIC_CANCEL_METHOD:
        /* Queue deleted or the node hosting it went away: start over. */
        snprintf(text, sizeof(text), "consumer cancelled by the broker");
        break;
    default:
        return RP_OK;
    }
    rp_amqp_link_drop(&c->link, text);
    return rp_error_set(err, code, "consumer of %s: %s", c->queue, text);
}

int rp_amqp_consumer_next(struct rp_amqp_consumer *c, long timeout_ms,
                          struct rp_amqp_delivery **out, struct rp_error *err)
{
    long long deadline = rp_amqp_now_ms() + timeout_ms;
    for (;;) {
        int rc = ensure(c, deadline, err);
        if (rc != RP_OK)
            return rc;
        long long left = deadline - rp_amqp_now_ms();
        if (left < 0)
            left = 0;
        struct timeval tv = {(long)(left / 1000), (long)(left % 1000) * 1000};
        amqp_envelope_t env;
        amqp_maybe_release_buffers(c->link.conn);
        /* it may send a heartbeat: guarded like an ack, on top of the wait */
        rp_amqp_link_guard(&c->link, (long)left + rp_amqp_link_send_bound_ms(&c->link));
        amqp_rpc_reply_t r = amqp_consume_message(c->link.conn, &env, &tv, 0);
        if (rp_amqp_link_unguard(&c->link)) {
            if (r.reply_type == AMQP_RESPONSE_NORMAL) /* unacked: the broker delivers it again */
                amqp_destroy_envelope(&env);
            rp_amqp_link_drop(&c->link, RP_AMQP_GUARD_FIRED);
            return rp_error_set(err, RP_EAGAIN, "%s: %s", c->link.opts.name, RP_AMQP_GUARD_FIRED);
        }
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            *out = make_delivery(c, &env);
            amqp_destroy_envelope(&env);
            return RP_OK;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            return rp_error_set(err, RP_ETIMEDOUT, "no delivery within %ld ms", timeout_ms);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE)
            rc = other_frame(c, err);
        else
            rc = rp_amqp_link_reply(&c->link, r, "basic.consume", err);
        if (rc != RP_OK && rc != RP_EAGAIN)
            return rc;
        if (rp_amqp_now_ms() >= deadline)
            return rc == RP_OK ? rp_error_set(err, RP_ETIMEDOUT, "no delivery") : rc;
    }
}

static int settle(struct rp_amqp_consumer *c, const struct rp_amqp_delivery *d, int ack,
                  int requeue, struct rp_error *err)
{
    if (!c->link.conn || d->generation != c->link.generation)
        return rp_error_set(err, RP_EAGAIN,
                            "delivery %" PRIu64 " came on an earlier connection; the broker "
                            "will deliver it again",
                            d->tag);
    rp_amqp_link_guard(&c->link, rp_amqp_link_send_bound_ms(&c->link));
    int st = ack ? amqp_basic_ack(c->link.conn, 1, d->tag, 0)
                 : amqp_basic_reject(c->link.conn, 1, d->tag, requeue);
    int fired = rp_amqp_link_unguard(&c->link);
    if (fired || st != AMQP_STATUS_OK) {
        const char *why = fired ? RP_AMQP_GUARD_FIRED : amqp_error_string2(st);
        rp_amqp_link_drop(&c->link, why);
        return rp_error_set(err, RP_EAGAIN, "%s of delivery %" PRIu64 ": %s",
                            ack ? "ack" : "reject", d->tag, why);
    }
    return RP_OK;
}

int rp_amqp_ack(struct rp_amqp_consumer *c, const struct rp_amqp_delivery *d, struct rp_error *err)
{
    return settle(c, d, 1, 0, err);
}

int rp_amqp_reject(struct rp_amqp_consumer *c, const struct rp_amqp_delivery *d, int requeue,
                   struct rp_error *err)
{
    return settle(c, d, 0, requeue, err);
}
