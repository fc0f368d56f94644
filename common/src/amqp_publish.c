/* The confirming publisher: messages are pipelined into a bounded window and stay there until
 * the broker acks them (basic.ack, `multiple` too), returns them (mandatory and unroutable,
 * then acked) or refuses them for good (channel closed because the exchange does not exist).
 * A nack, a closed channel or a lost connection sends them again, so delivery is at least once.
 * Waiting for each confirm alone gives ~400 msg/s; pipelining is what makes it fast. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>

#include "rampart/amqp.h"
#include "rampart/log.h"
#include "rampart/mem.h"

/* A message refused by channel closes this many times is failed, not resent forever. */
#define MAX_PERM_FAILS 3

struct rp_amqp_publisher {
    struct rp_amqp_link link;
    struct rp_amqp_pending pend;
    rp_amqp_confirm_fn on_confirm;
    void *opaque;
    uint64_t next_seq;
    uint64_t last_tag;    /* last delivery tag used on the current channel */
    uint64_t confirm_gen; /* link generation whose channel is in confirm mode */
    struct rp_amqp_pub_stats st;
};

static amqp_bytes_t bytes_of(const char *s)
{
    amqp_bytes_t b = {strlen(s), (void *)s};
    return b;
}

static void report(struct rp_amqp_publisher *pub, struct rp_amqp_msg *m,
                   enum rp_amqp_outcome outcome)
{
    if (outcome == RP_AMQP_CONFIRMED)
        pub->st.confirmed++;
    else if (outcome == RP_AMQP_RETURNED)
        pub->st.returned++;
    else
        pub->st.failed++;
    if (pub->on_confirm)
        pub->on_confirm(pub->opaque, m->seq, outcome,
                        outcome == RP_AMQP_CONFIRMED ? NULL : (m->why ? m->why : "refused"));
    rp_amqp_msg_free(m);
}

static void done_acked(void *ctx, struct rp_amqp_msg *m)
{
    report(ctx, m, m->returned ? RP_AMQP_RETURNED : RP_AMQP_CONFIRMED);
}

static void done_failed(void *ctx, struct rp_amqp_msg *m)
{
    report(ctx, m, RP_AMQP_FAILED);
}

/* Put a fresh channel in confirm mode and queue every held message for sending on it. */
static int start_channel(struct rp_amqp_publisher *pub, struct rp_error *err)
{
    amqp_confirm_select(pub->link.conn, 1);
    int rc =
        rp_amqp_link_reply(&pub->link, amqp_get_rpc_reply(pub->link.conn), "confirm.select", err);
    if (rc != RP_OK)
        return rc;
    if (pub->confirm_gen != 0)
        pub->st.reconnects++;
    pub->confirm_gen = pub->link.generation;
    pub->last_tag = 0;
    rp_amqp_backoff_reset(&pub->link.backoff);
    rp_amqp_pending_reset(&pub->pend);
    return RP_OK;
}

static int ensure(struct rp_amqp_publisher *pub, long long deadline, struct rp_error *err)
{
    int rc = rp_amqp_link_ensure(&pub->link, deadline, err);
    if (rc == RP_OK && pub->confirm_gen != pub->link.generation) {
        rc = start_channel(pub, err);
        if (rc != RP_OK)
            pub->link.next_try_ms = rp_amqp_now_ms() + rp_amqp_backoff_next(&pub->link.backoff);
    }
    return rc;
}

static void send_unsent(struct rp_amqp_publisher *pub)
{
    struct rp_amqp_msg *m;
    while (pub->link.conn && (m = rp_amqp_pending_next_unsent(&pub->pend))) {
        rp_amqp_link_guard(&pub->link, rp_amqp_link_send_bound_ms(&pub->link));
        int st =
            amqp_basic_publish(pub->link.conn, 1, bytes_of(m->exchange), bytes_of(m->routing_key),
                               m->mandatory, 0, &m->props, (amqp_bytes_t){m->len, m->body});
        if (rp_amqp_link_unguard(&pub->link)) {
            rp_amqp_link_drop(&pub->link, RP_AMQP_GUARD_FIRED);
            return;
        }
        if (st != AMQP_STATUS_OK) {
            rp_amqp_link_drop(&pub->link, amqp_error_string2(st));
            return;
        }
        if (m->sends++)
            pub->st.resent++;
        rp_amqp_pending_sent(&pub->pend, ++pub->last_tag);
    }
}

static int same_exchange(void *ctx, struct rp_amqp_msg *m)
{
    if (strcmp(m->exchange, ctx) != 0)
        return 0;
    free(m->why);
    m->why = rp_xasprintf("exchange '%s' does not exist", m->exchange);
    return 1;
}

static int too_many_fails(void *ctx, struct rp_amqp_msg *m)
{
    const char *text = ctx;
    if (m->sends == 0 || ++m->perm_fails < MAX_PERM_FAILS)
        return 0;
    free(m->why);
    m->why = rp_xstrdup(text);
    return 1;
}

/* The broker closed our channel. A permanent cause is pinned on the messages it concerns so
 * that they are failed instead of resent forever; then the connection starts again. */
static void on_channel_close(struct rp_amqp_publisher *pub, const amqp_channel_close_t *c)
{
    char text[256], exch[256];
    snprintf(text, sizeof(text), "%d %.*s", c->reply_code, (int)c->reply_text.len,
             (const char *)c->reply_text.bytes);
    amqp_channel_close_ok_t ok = {0};
    amqp_send_method(pub->link.conn, 1, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    if (rp_amqp_map_close(1, c->reply_code) != RP_EAGAIN) {
        size_t n;
        if (rp_amqp_parse_missing_exchange(text, exch, sizeof(exch)))
            n = rp_amqp_pending_remove_if(&pub->pend, same_exchange, exch, done_failed, pub);
        else
            n = rp_amqp_pending_remove_if(&pub->pend, too_many_fails, text, done_failed, pub);
        if (n)
            rp_warn("%s: %zu message(s) refused for good: %s", pub->link.opts.name, n, text);
    }
    int quiet = pub->link.quiet;
    pub->link.quiet = 1; /* logged above, or a transient close the reconnect will cure */
    rp_amqp_link_drop(&pub->link, text);
    pub->link.quiet = quiet;
}

static void on_return(struct rp_amqp_publisher *pub, amqp_channel_t ch,
                      const amqp_basic_return_t *r)
{
    char why[256];
    snprintf(why, sizeof(why), "returned: %d %.*s", r->reply_code, (int)r->reply_text.len,
             (const char *)r->reply_text.bytes);
    amqp_message_t msg;
    amqp_rpc_reply_t rr = amqp_read_message(pub->link.conn, ch, &msg, 0);
    if (rr.reply_type != AMQP_RESPONSE_NORMAL) {
        (void)rp_amqp_link_reply(&pub->link, rr, "reading a returned message", NULL);
        return;
    }
    struct rp_amqp_msg *m =
        rp_amqp_pending_find_seq(&pub->pend, rp_amqp_props_seq(&msg.properties));
    if (m) { /* its basic.ack follows; the outcome is reported then */
        m->returned = 1;
        free(m->why);
        m->why = rp_xstrdup(why);
    }
    amqp_destroy_message(&msg);
}

static void handle_frame(struct rp_amqp_publisher *pub, const amqp_frame_t *f)
{
    if (f->frame_type != AMQP_FRAME_METHOD)
        return;
    void *d = f->payload.method.decoded;
    switch (f->payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *a = d;
        rp_amqp_pending_ack(&pub->pend, a->delivery_tag, a->multiple, done_acked, pub);
        break;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *n = d;
        pub->st.nacked += rp_amqp_pending_nack(&pub->pend, n->delivery_tag, n->multiple);
        break;
    }
    case AMQP_BASIC_RETURN_METHOD:
        on_return(pub, f->channel, d);
        break;
    case AMQP_CHANNEL_CLOSE_METHOD:
        on_channel_close(pub, d);
        break;
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_connection_close_t *c = d;
        char text[256];
        snprintf(text, sizeof(text), "connection closed by the broker: %d %.*s", c->reply_code,
                 (int)c->reply_text.len, (const char *)c->reply_text.bytes);
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(pub->link.conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        rp_amqp_link_drop(&pub->link, text);
        break;
    }
    case AMQP_CONNECTION_BLOCKED_METHOD:
        rp_warn("%s: broker blocked publishing (resource alarm)", pub->link.opts.name);
        break;
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
        rp_info("%s: broker unblocked publishing", pub->link.opts.name);
        break;
    default:
        break;
    }
}

/* Read what the broker sent, waiting up to `wait_ms` for the first frame. */
static void read_frames(struct rp_amqp_publisher *pub, long wait_ms)
{
    struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};
    for (;;) {
        amqp_frame_t f;
        /* it may send a heartbeat: guarded like a publish, on top of the wait */
        rp_amqp_link_guard(&pub->link, wait_ms + rp_amqp_link_send_bound_ms(&pub->link));
        int st = amqp_simple_wait_frame_noblock(pub->link.conn, &f, &tv);
        if (rp_amqp_link_unguard(&pub->link)) {
            rp_amqp_link_drop(&pub->link, RP_AMQP_GUARD_FIRED);
            return;
        }
        if (st == AMQP_STATUS_TIMEOUT)
            break;
        if (st != AMQP_STATUS_OK) {
            rp_amqp_link_drop(&pub->link, amqp_error_string2(st));
            return;
        }
        handle_frame(pub, &f);
        if (!pub->link.conn)
            return;
        tv.tv_sec = tv.tv_usec = 0;
    }
    amqp_maybe_release_buffers(pub->link.conn);
}

/* One turn of the publisher's loop: reconnect if needed (sleeping no later than `deadline`),
 * send what is unsent, read confirms for up to 100 ms. */
static int service(struct rp_amqp_publisher *pub, long long deadline, struct rp_error *err)
{
    int rc = ensure(pub, deadline, err);
    if (rc != RP_OK)
        return rc;
    send_unsent(pub);
    if (!pub->link.conn)
        return rp_error_set(err, RP_EAGAIN, "%s: connection lost while sending",
                            pub->link.opts.name);
    long long left = deadline - rp_amqp_now_ms();
    read_frames(pub, left < 0 ? 0 : left > 100 ? 100 : (long)left);
    send_unsent(pub); /* nacked messages go again at once */
    return RP_OK;
}

int rp_amqp_publisher_new(const char *urls, const struct rp_amqp_opts *opts,
                          rp_amqp_confirm_fn on_confirm, void *opaque,
                          struct rp_amqp_publisher **out, struct rp_error *err)
{
    struct rp_amqp_publisher *pub = rp_xcalloc(1, sizeof(*pub));
    int rc = rp_amqp_link_init(&pub->link, urls, opts, err);
    if (rc != RP_OK)
        goto out;
    rp_amqp_pending_init(&pub->pend, pub->link.opts.window);
    pub->on_confirm = on_confirm;
    pub->opaque = opaque;
    pub->link.down_logged = 1; /* the caller reports a failure to start */
    rc = rp_amqp_link_connect(&pub->link, err);
    if (rc == RP_OK)
        rc = start_channel(pub, err);
    if (rc != RP_OK)
        goto out;
    *out = pub;
    pub = NULL;
out:
    rp_amqp_publisher_free(pub);
    return rc;
}

void rp_amqp_publisher_free(struct rp_amqp_publisher *pub)
{
    if (!pub)
        return;
    if (pub->pend.live)
        rp_warn("%s: closing with %zu unconfirmed message(s) dropped", pub->link.opts.name,
                pub->pend.live);
    rp_amqp_link_cleanup(&pub->link);
    rp_amqp_pending_cleanup(&pub->pend);
    free(pub);
}

int rp_amqp_publish(struct rp_amqp_publisher *pub, const char *exchange, const char *routing_key,
                    const void *body, size_t len, const struct rp_amqp_props *props, int mandatory,
                    uint64_t *seq, struct rp_error *err)
{
    if (!pub || !exchange || !routing_key || (!body && len))
        return rp_error_set(err, RP_EINVAL, "rp_amqp_publish: missing argument");
    long long deadline = rp_amqp_now_ms() + pub->link.opts.publish_timeout_ms;
    while (pub->pend.live >= pub->link.opts.window) {
        int rc = service(pub, deadline, err);
        if (rc != RP_OK && rc != RP_EAGAIN)
            return rc;
        if (pub->pend.live >= pub->link.opts.window && rp_amqp_now_ms() >= deadline)
            return rp_error_set(
                err, RP_ETIMEDOUT, "%s: %zu messages unconfirmed after %ld ms; message not taken",
                pub->link.opts.name, pub->pend.live, pub->link.opts.publish_timeout_ms);
    }
    struct rp_amqp_msg *m =
        rp_amqp_msg_new(++pub->next_seq, exchange, routing_key, body, len, props, mandatory);
    rp_amqp_pending_push(&pub->pend, m);
    pub->st.published++;
    if (seq)
        *seq = m->seq;
    /* Never sleeps here: reconnects only when a try is due; otherwise the message waits. */
    if (ensure(pub, 0, NULL) == RP_OK) {
        send_unsent(pub);
        if (pub->link.conn)
            read_frames(pub, 0);
    }
    return RP_OK;
}

int rp_amqp_publisher_flush(struct rp_amqp_publisher *pub, long timeout_ms, struct rp_error *err)
{
    long long deadline = rp_amqp_now_ms() + timeout_ms;
    while (pub->pend.live > 0) {
        int rc = service(pub, deadline, err);
        if (rc != RP_OK && rc != RP_EAGAIN)
            return rc;
        if (pub->pend.live > 0 && rp_amqp_now_ms() >= deadline)
            return rp_error_set(err, RP_ETIMEDOUT, "%s: %zu messages still unconfirmed",
                                pub->link.opts.name, pub->pend.live);
    }
    return RP_OK;
}

int rp_amqp_publisher_poll(struct rp_amqp_publisher *pub, long timeout_ms, struct rp_error *err)
{
    long long deadline = rp_amqp_now_ms() + timeout_ms;
    int rc;
    do {
        rc = service(pub, deadline, err);
        if (rc != RP_OK && rc != RP_EAGAIN)
            return rc;
    } while (rp_amqp_now_ms() < deadline);
    return pub->link.conn ? RP_OK : rc;
}

void rp_amqp_publisher_stats(const struct rp_amqp_publisher *pub, struct rp_amqp_pub_stats *out)
{
    *out = pub->st;
    out->pending = pub->pend.live;
}
