/* The publisher's in-flight window: the messages sent but not yet confirmed, in delivery-tag
 * order, with the bookkeeping for basic.ack (single or `multiple`), basic.nack (back to the
 * unsent tail) and a new channel (every tag starts again at 1). Pure data, no I/O, so the unit
 * tests drive it directly. Also the owned copy of a message and its properties. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/amqp.h"
#include "rampart/mem.h"

#define SEQ_HEADER "x-rampart-seq"

static amqp_bytes_t dup_bytes(const char *s)
{
    amqp_bytes_t b;
    b.bytes = rp_xstrdup(s);
    b.len = strlen(s);
    return b;
}

struct rp_amqp_msg *rp_amqp_msg_new(uint64_t seq, const char *exchange, const char *routing_key,
                                    const void *body, size_t len, const struct rp_amqp_props *props,
                                    int mandatory)
{
    struct rp_amqp_msg *m = rp_xcalloc(1, sizeof(*m));
    m->seq = seq;
    m->mandatory = mandatory;
    m->exchange = rp_xstrdup(exchange ? exchange : "");
    m->routing_key = rp_xstrdup(routing_key ? routing_key : "");
    m->body = rp_xmalloc(len);
    if (len)
        memcpy(m->body, body, len);
    m->len = len;

    amqp_basic_properties_t *p = &m->props;
    struct rp_amqp_props none = {0};
    if (!props)
        props = &none;
    p->_flags = AMQP_BASIC_HEADERS_FLAG;
    if (props->content_type) {
        p->_flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        p->content_type = dup_bytes(props->content_type);
    }
    if (props->message_id) {
        p->_flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        p->message_id = dup_bytes(props->message_id);
    }
    if (props->correlation_id) {
        p->_flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        p->correlation_id = dup_bytes(props->correlation_id);
    }
    if (props->expiration) {
        p->_flags |= AMQP_BASIC_EXPIRATION_FLAG;
        p->expiration = dup_bytes(props->expiration);
    }
    if (props->persistent) {
        p->_flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
        p->delivery_mode = 2;
    }
    /* Our own sequence number rides in a header so that a basic.return, which carries the
     * message's properties but no delivery tag, can be matched to its message. */
    size_t n = props->n_headers + 1;
    amqp_table_entry_t *e = rp_xcalloc(n, sizeof(*e));
    e[0].key = dup_bytes(SEQ_HEADER);
    e[0].value.kind = AMQP_FIELD_KIND_I64; /* RabbitMQ knows 'l', not rabbitmq-c's 'L' */
    e[0].value.value.i64 = (int64_t)seq;
    for (size_t i = 0; i < props->n_headers; i++) {
        e[i + 1].key = dup_bytes(props->headers[i].key);
        e[i + 1].value.kind = AMQP_FIELD_KIND_UTF8;
        e[i + 1].value.value.bytes =
            dup_bytes(props->headers[i].value ? props->headers[i].value : "");
    }
    p->headers.num_entries = (int)n;
    p->headers.entries = e;
    return m;
}

void rp_amqp_msg_free(struct rp_amqp_msg *m)
{
    if (!m)
        return;
    amqp_basic_properties_t *p = &m->props;
    free(p->content_type.bytes);
    free(p->message_id.bytes);
    free(p->correlation_id.bytes);
    free(p->expiration.bytes);
    for (int i = 0; i < p->headers.num_entries; i++) {
        amqp_table_entry_t *e = &p->headers.entries[i];
        free(e->key.bytes);
        if (e->value.kind == AMQP_FIELD_KIND_UTF8)
            free(e->value.value.bytes.bytes);
    }
    free(p->headers.entries);
    free(m->exchange);
    free(m->routing_key);
    free(m->why);
    free(m->body);
    free(m);
}

uint64_t rp_amqp_props_seq(const amqp_basic_properties_t *p)
{
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return 0;
    for (int i = 0; i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];
        if (e->key.len != sizeof(SEQ_HEADER) - 1 ||
            memcmp(e->key.bytes, SEQ_HEADER, e->key.len) != 0)
            continue;
        switch (e->value.kind) {
        case AMQP_FIELD_KIND_U64:
        case AMQP_FIELD_KIND_TIMESTAMP:
            return e->value.value.u64;
        case AMQP_FIELD_KIND_I64:
            return (uint64_t)e->value.value.i64;
        default:
            return 0;
        }
    }
    return 0;
}

void rp_amqp_pending_init(struct rp_amqp_pending *p, size_t window)
{
    memset(p, 0, sizeof(*p));
    p->cap = 2 * (window ? window : 1);
    p->v = rp_xcalloc(p->cap, sizeof(*p->v));
}

void rp_amqp_pending_cleanup(struct rp_amqp_pending *p)
{
    if (!p || !p->v)
        return;
    for (size_t i = p->start; i < p->end; i++)
        rp_amqp_msg_free(p->v[i].m);
    free(p->v);
    memset(p, 0, sizeof(*p));
}

/* Drop tombstones at the front; slide everything to index 0 when the tail hits the end. */
static void trim(struct rp_amqp_pending *p)
{
    while (p->start < p->unsent && !p->v[p->start].m)
        p->start++;
    if (p->start == p->end)
        p->start = p->unsent = p->end = 0;
}

static void compact(struct rp_amqp_pending *p)
{
    size_t w = 0, unsent = 0;
    for (size_t i = p->start; i < p->end; i++) {
        if (i == p->unsent)
            unsent = w;
        if (p->v[i].m)
            p->v[w++] = p->v[i];
    }
    if (p->unsent == p->end)
        unsent = w;
    p->start = 0;
    p->unsent = unsent;
    p->end = w;
}

void rp_amqp_pending_push(struct rp_amqp_pending *p, struct rp_amqp_msg *m)
{
    if (p->end == p->cap)
        compact(p);
    if (p->end == p->cap) { /* live > window: the caller broke the contract; grow anyway */
        p->cap *= 2;
        p->v = rp_xrealloc(p->v, p->cap * sizeof(*p->v));
    }
    p->v[p->end].tag = 0;
    p->v[p->end].m = m;
    p->end++;
    p->live++;
}

struct rp_amqp_msg *rp_amqp_pending_next_unsent(struct rp_amqp_pending *p)
{
    while (p->unsent < p->end && !p->v[p->unsent].m)
        p->unsent++; /* cannot happen today: unsent slots are never tombstoned */
    return p->unsent < p->end ? p->v[p->unsent].m : NULL;
}

void rp_amqp_pending_sent(struct rp_amqp_pending *p, uint64_t tag)
{
    if (p->unsent < p->end)
        p->v[p->unsent++].tag = tag;
}

/* Index range [*lo, *hi) of sent slots that `tag` / `multiple` covers. */
static void covered(const struct rp_amqp_pending *p, uint64_t tag, int multiple, size_t *lo,
                    size_t *hi)
{
    size_t a = p->start, b = p->unsent; /* tags increase over [a, b) */
    while (a < b) {                     /* first slot with slot.tag > tag */
        size_t mid = a + (b - a) / 2;
        if (p->v[mid].tag <= tag)
            a = mid + 1;
        else
            b = mid;
    }
    *hi = a;
    if (multiple)
        *lo = p->start;
    else
        *lo = (a > p->start && p->v[a - 1].tag == tag) ? a - 1 : a;
}

size_t rp_amqp_pending_ack(struct rp_amqp_pending *p, uint64_t tag, int multiple,
                           rp_amqp_done_fn done, void *ctx)
{
    size_t lo, hi, n = 0;
    covered(p, tag, multiple, &lo, &hi);
    for (size_t i = lo; i < hi; i++) {
        struct rp_amqp_msg *m = p->v[i].m;
        if (!m)
            continue;
        p->v[i].m = NULL;
        p->live--;
        n++;
        done(ctx, m);
    }
    trim(p);
    return n;
}

size_t rp_amqp_pending_nack(struct rp_amqp_pending *p, uint64_t tag, int multiple)
{
    size_t lo, hi, n = 0;
    covered(p, tag, multiple, &lo, &hi);
    /* Collect first: pushing may compact the array under our indexes. */
    struct rp_amqp_msg **again = rp_xmalloc((hi - lo) * sizeof(*again));
    for (size_t i = lo; i < hi; i++) {
        struct rp_amqp_msg *m = p->v[i].m;
        if (!m)
            continue;
        p->v[i].m = NULL;
        p->live--;
        m->returned = 0; /* a return before a nack is moot: the message goes again */
        again[n++] = m;
    }
    trim(p);
    for (size_t i = 0; i < n; i++)
        rp_amqp_pending_push(p, again[i]);
    free(again);
    return n;
}

void rp_amqp_pending_reset(struct rp_amqp_pending *p)
{
    compact(p);
    for (size_t i = 0; i < p->end; i++)
        p->v[i].tag = 0;
    p->unsent = 0;
}

struct rp_amqp_msg *rp_amqp_pending_find_seq(struct rp_amqp_pending *p, uint64_t seq)
{
    for (size_t i = p->start; i < p->end; i++)
        if (p->v[i].m && p->v[i].m->seq == seq)
            return p->v[i].m;
    return NULL;
}

size_t rp_amqp_pending_remove_if(struct rp_amqp_pending *p,
                                 int (*pred)(void *pred_ctx, struct rp_amqp_msg *m), void *pred_ctx,
                                 rp_amqp_done_fn done, void *done_ctx)
{
    size_t n = 0;
    for (size_t i = p->start; i < p->end; i++) {
        struct rp_amqp_msg *m = p->v[i].m;
        if (!m || !pred(pred_ctx, m))
            continue;
        p->v[i].m = NULL;
        p->live--;
        n++;
        done(done_ctx, m);
    }
    /* Unsent tombstones would break next_unsent's contract: squeeze them out. */
    compact(p);
    return n;
}
