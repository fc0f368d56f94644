/* RabbitMQ client on rabbitmq-c 0.11: a publisher with pipelined publisher confirms, a consumer
 * with manual acks and a per-consumer prefetch, and the idempotent declaration of the topology
 * of DESIGN.md. Every object fails over across a comma-separated list of amqp:// URLs (as
 * RP_SET_AMQP_URLS produces) with capped exponential back-off with jitter, heartbeats on.
 *
 * Threads: a rabbitmq-c connection is not thread-safe, so each publisher, consumer and admin
 * session owns its own connection and must be used by one thread at a time (no locks inside).
 * Publish and consume through separate objects. */
#ifndef RAMPART_AMQP_H
#define RAMPART_AMQP_H

#include <stddef.h>
#include <stdint.h>

#include <amqp.h>

#include "rampart/error.h"

/* Design note: the reconnect state machine (struct rp_amqp_link, one per object).
 *
 *   DOWN --rp_amqp_link_connect ok--> UP          (generation++, back-off reset)
 *   UP   --I/O error, heartbeat timeout, connection.close, channel.close,
 *          basic.cancel from the server--> DOWN   (rp_amqp_link_drop; next try after back-off)
 *   DOWN --rp_amqp_link_connect fails on every URL--> DOWN (back-off doubles, capped)
 *   any  --*_free / rp_amqp_admin_close--> gone  (rp_amqp_link_close)
 *
 * Who drives it: the publisher reconnects inside rp_amqp_publish (only when a try is due, never
 * sleeping), rp_amqp_publisher_poll and rp_amqp_publisher_flush, and after reconnecting resends
 * every unconfirmed message in order (so a message may arrive twice, never zero times). The
 * consumer reconnects inside rp_amqp_consumer_next and re-issues basic.qos + basic.consume;
 * each delivery carries the connection generation it came on, and rp_amqp_ack / rp_amqp_reject
 * refuse a delivery from an older generation (the broker redelivers it anyway). The admin
 * session connects once and reports failures to the caller. */

/* Connection settings; a zero field takes the default in brackets. NULL opts = all defaults. */
struct rp_amqp_opts {
    int heartbeat_s;          /* AMQP heartbeat [5]: a peer cut off the network is seen dead
                               * after about this long, and its unacked deliveries requeued */
    long connect_timeout_ms;  /* TCP connect, handshake and each synchronous RPC [5000] */
    long backoff_initial_ms;  /* first reconnect delay [100] */
    long backoff_max_ms;      /* cap of the reconnect delay [5000] */
    size_t window;            /* publisher: most unconfirmed messages held [1024] */
    long publish_timeout_ms;  /* publisher: how long rp_amqp_publish waits for room [30000] */
    const char *name;         /* for log lines, e.g. "scheduler jobs publisher" ["amqp"] */
    int no_kernel_send_bound; /* tests: no TCP_USER_TIMEOUT, only the send guard bounds sends */
};

/* ---- publisher ------------------------------------------------------------------------ */

/* What finally happened to a published message, reported once per message. */
enum rp_amqp_outcome {
    RP_AMQP_CONFIRMED = 0, /* the broker took responsibility for it (basic.ack) */
    RP_AMQP_RETURNED,      /* mandatory and unroutable: returned by the broker, not delivered */
    RP_AMQP_FAILED,        /* refused for good (e.g. the exchange does not exist) */
};

/* Called from inside rp_amqp_publish / _poll / _flush, on the publisher's thread, once per
 * message, with the `seq` rp_amqp_publish returned. `why` is NULL for RP_AMQP_CONFIRMED,
 * otherwise the broker's reply text. The callback must not call back into the publisher. */
typedef void (*rp_amqp_confirm_fn)(void *opaque, uint64_t seq, enum rp_amqp_outcome outcome,
                                   const char *why);

struct rp_amqp_header {
    const char *key;
    const char *value; /* string-valued headers only */
};

/* Message properties; every field is optional (NULL / 0). Copied by rp_amqp_publish. */
struct rp_amqp_props {
    const char *content_type;
    const char *message_id;
    const char *correlation_id;
    const char *expiration; /* per-message TTL in ms as text ("30000"): retry queues use it */
    int persistent;         /* delivery_mode 2: survives a broker restart */
    const struct rp_amqp_header *headers;
    size_t n_headers;
};

struct rp_amqp_publisher;

/* Open a publisher on `urls` (comma-separated amqp:// URLs) and put its channel in confirm
 * mode. Tries every URL once: RP_EAGAIN when none is reachable, RP_EINVAL for bad URLs or
 * refused credentials / vhost. `on_confirm` (may be NULL) gets every outcome with `opaque`.
 * The caller owns *out (rp_amqp_publisher_free). Not thread-safe: one thread per publisher. */
int rp_amqp_publisher_new(const char *urls, const struct rp_amqp_opts *opts,
                          rp_amqp_confirm_fn on_confirm, void *opaque,
                          struct rp_amqp_publisher **out, struct rp_error *err) RP_MUST_CHECK;

/* Unconfirmed messages still held are dropped (and logged); call rp_amqp_publisher_flush
 * first to avoid that. Accepts NULL. */
void rp_amqp_publisher_free(struct rp_amqp_publisher *pub);

/* Copy the message into the in-flight window and send it now if the connection is up; it is
 * resent after nacks and reconnects until confirmed, returned or failed. Returns at once
 * unless the window is full, then services confirms (and reconnects) for up to
 * publish_timeout_ms: RP_ETIMEDOUT means the message was NOT taken. `exchange` "" is the default
 * exchange. `*seq` (may be NULL) receives the number the callback will report. */
int rp_amqp_publish(struct rp_amqp_publisher *pub, const char *exchange, const char *routing_key,
                    const void *body, size_t len, const struct rp_amqp_props *props, int mandatory,
                    uint64_t *seq, struct rp_error *err) RP_MUST_CHECK;

/* Wait until every message published so far has an outcome, reconnecting and resending as
 * needed. RP_OK, RP_ETIMEDOUT (messages still unconfirmed, they stay queued), or a permanent
 * error from reconnecting (RP_EINVAL: credentials / vhost refused). */
int rp_amqp_publisher_flush(struct rp_amqp_publisher *pub, long timeout_ms,
                            struct rp_error *err) RP_MUST_CHECK;

/* Service the connection for up to `timeout_ms`: heartbeats, confirms, returns, reconnects.
 * rabbitmq-c answers heartbeats only inside its calls, so an idle publisher must call this at
 * least every heartbeat_s / 2. Returns RP_OK, or RP_EAGAIN while the broker is unreachable. */
int rp_amqp_publisher_poll(struct rp_amqp_publisher *pub, long timeout_ms, struct rp_error *err);

struct rp_amqp_pub_stats {
    uint64_t published, confirmed, returned, failed; /* outcomes, once per message */
    uint64_t nacked, resent, reconnects;             /* retries done on the way */
    size_t pending;                                  /* messages without an outcome yet */
};
void rp_amqp_publisher_stats(const struct rp_amqp_publisher *pub, struct rp_amqp_pub_stats *out);

/* ---- consumer ------------------------------------------------------------------------- */

/* One message handed to the caller, who owns it (rp_amqp_delivery_free). */
struct rp_amqp_delivery {
    uint64_t tag;        /* delivery tag on the connection it came on */
    uint64_t generation; /* that connection's generation (see the design note) */
    int redelivered;
    long delivery_count; /* x-delivery-count (quorum queues, on redelivery), -1 if absent */
    char *exchange, *routing_key;
    char *content_type, *message_id, *correlation_id; /* NULL when absent */
    void *body;                                       /* NUL-terminated for convenience */
    size_t len;
    struct rp_amqp_header *headers; /* scalar headers as text (numbers in decimal) */
    size_t n_headers;
};

struct rp_amqp_consumer;

/* Connect, set basic.qos(prefetch, global=0: quorum queues refuse global QoS) and start
 * consuming `queue` with manual acks. Errors as rp_amqp_publisher_new, plus RP_ENOENT when the
 * queue does not exist. Caller owns *out. Not thread-safe: one thread per consumer. */
int rp_amqp_consumer_new(const char *urls, const char *queue, unsigned prefetch,
                         const struct rp_amqp_opts *opts, struct rp_amqp_consumer **out,
                         struct rp_error *err) RP_MUST_CHECK;

/* Unacked deliveries go back to the queue when the connection closes. Accepts NULL. */
void rp_amqp_consumer_free(struct rp_amqp_consumer *c);

/* Stop the broker sending new deliveries (basic.cancel) for good: a later reconnect does not
 * consume again. Deliveries the broker sent before it confirmed the cancel are still handed
 * out by rp_amqp_consumer_next (call it until RP_ETIMEDOUT to collect them), and acks and
 * rejects keep working on the same connection. Used to drain: cancel, finish or reject what
 * is held, ack, close. RP_OK (also when the connection was already down: its deliveries go
 * back to the queue anyway) or RP_EAGAIN when the connection failed on the way. */
int rp_amqp_consumer_cancel(struct rp_amqp_consumer *c, struct rp_error *err) RP_MUST_CHECK;

/* Wait up to `timeout_ms` for one delivery, reconnecting (with back-off) and resuming the
 * consumer if the connection is lost. Heartbeats are answered only inside this call and the
 * acks: call it at least every heartbeat_s / 2. A long job therefore runs on another thread
 * while this one keeps calling next() (with every prefetched message unacked it just waits)
 * and does the acks handed back to it. RP_OK and *out, RP_ETIMEDOUT when nothing came,
 * RP_EAGAIN when the broker stayed unreachable, or a permanent error (RP_ENOENT: queue gone,
 * RP_EINVAL: access refused). */
int rp_amqp_consumer_next(struct rp_amqp_consumer *c, long timeout_ms,
                          struct rp_amqp_delivery **out, struct rp_error *err) RP_MUST_CHECK;

/* Acknowledge / reject one delivery. RP_EAGAIN when the delivery came on an earlier connection
 * (it will be redelivered: do not retry the ack) or the connection just failed. */
int rp_amqp_ack(struct rp_amqp_consumer *c, const struct rp_amqp_delivery *d,
                struct rp_error *err) RP_MUST_CHECK;
int rp_amqp_reject(struct rp_amqp_consumer *c, const struct rp_amqp_delivery *d, int requeue,
                   struct rp_error *err) RP_MUST_CHECK;

/* Header value as text, or NULL. */
const char *rp_amqp_delivery_header(const struct rp_amqp_delivery *d, const char *key);
void rp_amqp_delivery_free(struct rp_amqp_delivery *d);
uint64_t rp_amqp_consumer_generation(const struct rp_amqp_consumer *c);

/* ---- topology ------------------------------------------------------------------------- */

/* A short-lived session for declarations (services at start-up, tests). Connects to the first
 * reachable URL; no reconnect. Not thread-safe. */
struct rp_amqp_admin;
int rp_amqp_admin_open(const char *urls, const struct rp_amqp_opts *opts,
                       struct rp_amqp_admin **out, struct rp_error *err) RP_MUST_CHECK;
void rp_amqp_admin_close(struct rp_amqp_admin *a);

/* Arguments of a durable quorum queue; zero / NULL fields are left out. */
struct rp_amqp_queue_opts {
    long delivery_limit;                 /* x-delivery-limit */
    const char *dead_letter_exchange;    /* x-dead-letter-exchange ("" = default exchange) */
    const char *dead_letter_routing_key; /* x-dead-letter-routing-key */
    const char *dead_letter_strategy;    /* x-dead-letter-strategy ("at-least-once") */
    const char *overflow;                /* x-overflow ("reject-publish"; at-least-once needs it) */
    long message_ttl_ms;                 /* x-message-ttl: every message expires after this */
};

/* Declarations are idempotent: declaring the same thing again succeeds; declaring it with
 * other arguments is RP_EINVAL (PRECONDITION_FAILED). After a failure the session is usable. */
int rp_amqp_declare_exchange(struct rp_amqp_admin *a, const char *name, const char *type,
                             struct rp_error *err) RP_MUST_CHECK;
int rp_amqp_declare_queue(struct rp_amqp_admin *a, const char *queue,
                          const struct rp_amqp_queue_opts *qopts,
                          struct rp_error *err) RP_MUST_CHECK;
int rp_amqp_bind_queue(struct rp_amqp_admin *a, const char *queue, const char *exchange,
                       const char *routing_key, struct rp_error *err) RP_MUST_CHECK;
/* Exchange (durable, `exchange_type`) + quorum queue + binding in one call. */
int rp_amqp_declare_bound_queue(struct rp_amqp_admin *a, const char *exchange,
                                const char *exchange_type, const char *queue,
                                const char *routing_key, const struct rp_amqp_queue_opts *qopts,
                                struct rp_error *err) RP_MUST_CHECK;
/* Delete; a missing queue / exchange is RP_OK. */
int rp_amqp_delete_queue(struct rp_amqp_admin *a, const char *queue, struct rp_error *err);
int rp_amqp_delete_exchange(struct rp_amqp_admin *a, const char *name, struct rp_error *err);
/* Ready-message count of an existing queue (passive declare); RP_ENOENT if absent. */
int rp_amqp_queue_depth(struct rp_amqp_admin *a, const char *queue, uint32_t *messages,
                        struct rp_error *err) RP_MUST_CHECK;

#define RP_AMQP_JOBS_EXCHANGE   "rampart.jobs"
#define RP_AMQP_JOBS_DLX        "rampart.jobs.dlx"
#define RP_AMQP_JOBS_DEAD       "rampart.jobs.dead"
#define RP_AMQP_EVENTS_EXCHANGE "rampart.events"
#define RP_AMQP_MAILER_QUEUE    "rampart.mailer"
#define RP_AMQP_CONNECTOR_QUEUE "rampart.connector"

struct rp_amqp_topology_opts {
    long delivery_limit; /* x-delivery-limit of the job queues [5] */
};

/* Declare Rampart's topology: `rampart.jobs` (direct) -> `rampart.jobs.<location>` for each of
 * `locations` (bound by location, delivery limit, dead-lettered through `rampart.jobs.dlx`
 * (fanout) into `rampart.jobs.dead`, at-least-once: a dead letter leaves the job queue only
 * once `rampart.jobs.dead` has confirmed it, so a poison job cannot vanish); `rampart.events`
 * (topic) -> `rampart.mailer` and `rampart.connector` bound to `incident.*` (their retry queues,
 * one per back-off delay, are declared by the alert engine: common/src/alert/). All durable,
 * all quorum queues. Idempotent. */
int rp_amqp_declare_topology(struct rp_amqp_admin *a, const char *const *locations,
                             size_t n_locations, const struct rp_amqp_topology_opts *topts,
                             struct rp_error *err) RP_MUST_CHECK;

/* ---- internals shared by common/src/amqp_*.c and tests/unit/test_amqp.c --------------- */

/* Exponential back-off with "equal jitter": the n-th delay is uniform in [d/2, d] where
 * d = min(max, initial * 2^n). */
struct rp_amqp_backoff {
    long initial_ms, max_ms;
    unsigned attempt;
    unsigned seed;
};
void rp_amqp_backoff_init(struct rp_amqp_backoff *b, long initial_ms, long max_ms, unsigned seed);
long rp_amqp_backoff_next(struct rp_amqp_backoff *b);
void rp_amqp_backoff_reset(struct rp_amqp_backoff *b);

/* Split and check a URL list; an empty vhost ("amqp://h:p/") means "/". */
struct rp_amqp_url {
    char *host, *user, *password, *vhost;
    int port;
    char *redacted; /* for logs */
};
int rp_amqp_urls_parse(const char *csv, struct rp_amqp_url **out, size_t *n,
                       struct rp_error *err) RP_MUST_CHECK;
void rp_amqp_urls_free(struct rp_amqp_url *v, size_t n);

/* Error mapping: a rabbitmq-c status, or a server close (channel or connection) reply code. */
int rp_amqp_map_status(int amqp_status);
int rp_amqp_map_close(int is_channel, int reply_code);
/* Exchange name from "NOT_FOUND - no exchange 'X' in vhost '/'", copied into buf; 0 if none. */
int rp_amqp_parse_missing_exchange(const char *text, char *buf, size_t buflen);

struct rp_amqp_link {
    amqp_connection_state_t conn; /* NULL while DOWN */
    struct rp_amqp_url *urls;
    size_t n_urls, cur;
    struct rp_amqp_opts opts; /* defaults filled in */
    struct rp_amqp_backoff backoff;
    long long next_try_ms; /* DOWN: monotonic time of the next connect round */
    uint64_t generation;   /* count of successful connects */
    int down_logged;       /* the current outage was logged */
    int quiet;             /* the owner reports failures itself: drops log at debug level */
    /* the send guard (rp_amqp_link_guard), under the guard's lock */
    struct rp_amqp_link *guard_prev, *guard_next;
    int guard_fd, guard_on, guard_fired;
    long long guard_deadline_ms;
};
int rp_amqp_link_init(struct rp_amqp_link *l, const char *urls, const struct rp_amqp_opts *opts,
                      struct rp_error *err) RP_MUST_CHECK;
/* One round over every URL (from the last good one). Opens channel 1. */
int rp_amqp_link_connect(struct rp_amqp_link *l, struct rp_error *err) RP_MUST_CHECK;
/* Reconnect if DOWN, sleeping for the back-off but never past `deadline_ms` (monotonic). */
int rp_amqp_link_ensure(struct rp_amqp_link *l, long long deadline_ms,
                        struct rp_error *err) RP_MUST_CHECK;
void rp_amqp_link_drop(struct rp_amqp_link *l, const char *why);
/* Guard the rabbitmq-c call that follows on the link (UP) for `ms`: rabbitmq-c sends without a
 * deadline, and a broker that reads little or nothing holds a send for as long as it likes.
 * Past the deadline a process-wide thread shuts the socket down, so the call fails. Pair with
 * rp_amqp_link_unguard right after the call, which returns 1 when the guard fired (the caller
 * then drops the link, saying RP_AMQP_GUARD_FIRED). */
#define RP_AMQP_GUARD_FIRED "the broker took nothing for three heartbeats: socket shut down"
void rp_amqp_link_guard(struct rp_amqp_link *l, long ms);
int rp_amqp_link_unguard(struct rp_amqp_link *l);
/* Guard bound for one send on the link: three heartbeats. */
long rp_amqp_link_send_bound_ms(const struct rp_amqp_link *l);
void rp_amqp_link_cleanup(struct rp_amqp_link *l);
/* Map a failed RPC reply; answers a server close (close-ok) and drops the link if the
 * connection or channel is gone. */
int rp_amqp_link_reply(struct rp_amqp_link *l, amqp_rpc_reply_t r, const char *what,
                       struct rp_error *err);
long long rp_amqp_now_ms(void);
void rp_amqp_sleep_ms(long ms);

/* One message held by a publisher until it has an outcome. */
struct rp_amqp_msg {
    uint64_t seq;
    int mandatory, returned, perm_fails;
    unsigned sends; /* times handed to the broker */
    char *exchange, *routing_key, *why;
    void *body;
    size_t len;
    amqp_basic_properties_t props; /* strings and header table owned by the message */
};
struct rp_amqp_msg *rp_amqp_msg_new(uint64_t seq, const char *exchange, const char *routing_key,
                                    const void *body, size_t len, const struct rp_amqp_props *props,
                                    int mandatory);
void rp_amqp_msg_free(struct rp_amqp_msg *m);
/* The seq carried in the x-rampart-seq header (how a basic.return finds its message); 0 if
 * absent. */
uint64_t rp_amqp_props_seq(const amqp_basic_properties_t *p);

/* The in-flight window, in delivery-tag order: sent messages (tags increasing) then unsent
 * ones (tag 0). Tombstones (m == NULL) wait in the middle until they reach the front. */
struct rp_amqp_slot {
    uint64_t tag;
    struct rp_amqp_msg *m;
};
struct rp_amqp_pending {
    struct rp_amqp_slot *v;
    size_t cap, start, unsent, end; /* [start, unsent) sent, [unsent, end) unsent */
    size_t live;                    /* messages held (not tombstones) */
};
typedef void (*rp_amqp_done_fn)(void *ctx, struct rp_amqp_msg *m);
void rp_amqp_pending_init(struct rp_amqp_pending *p, size_t window);
/* Frees held messages without reporting them. */
void rp_amqp_pending_cleanup(struct rp_amqp_pending *p);
/* Append; the caller checks live < window first (the array holds 2 * window slots). */
void rp_amqp_pending_push(struct rp_amqp_pending *p, struct rp_amqp_msg *m);
/* Next unsent message, or NULL; rp_amqp_pending_sent records the tag it was sent with. */
struct rp_amqp_msg *rp_amqp_pending_next_unsent(struct rp_amqp_pending *p);
void rp_amqp_pending_sent(struct rp_amqp_pending *p, uint64_t tag);
/* basic.ack: hands each confirmed message to `done` (which takes ownership). Returns count. */
size_t rp_amqp_pending_ack(struct rp_amqp_pending *p, uint64_t tag, int multiple,
                           rp_amqp_done_fn done, void *ctx);
/* basic.nack: moves the messages back to the unsent tail. Returns count. */
size_t rp_amqp_pending_nack(struct rp_amqp_pending *p, uint64_t tag, int multiple);
/* New channel: every held message becomes unsent, in order. */
void rp_amqp_pending_reset(struct rp_amqp_pending *p);
struct rp_amqp_msg *rp_amqp_pending_find_seq(struct rp_amqp_pending *p, uint64_t seq);
/* Remove (and hand to `done`) every held message for which `pred` is true. */
size_t rp_amqp_pending_remove_if(struct rp_amqp_pending *p,
                                 int (*pred)(void *pred_ctx, struct rp_amqp_msg *m), void *pred_ctx,
                                 rp_amqp_done_fn done, void *done_ctx);

#endif
