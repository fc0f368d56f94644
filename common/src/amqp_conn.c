/* AMQP connections with failover: URL list parsing, back-off with jitter, the mapping of
 * rabbitmq-c and broker errors onto RP_EAGAIN (retry) versus permanent codes, and the link
 * (one connection + channel 1) whose DOWN/UP state machine is described in rampart/amqp.h.
 * The publisher, consumer and admin session are built on a link. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "rampart/amqp.h"
#include "rampart/config.h"
#include "rampart/log.h"
#include "rampart/mem.h"

long long rp_amqp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rp_amqp_sleep_ms(long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void rp_amqp_backoff_init(struct rp_amqp_backoff *b, long initial_ms, long max_ms, unsigned seed)
{
    b->initial_ms = initial_ms > 0 ? initial_ms : 1;
    b->max_ms = max_ms >= b->initial_ms ? max_ms : b->initial_ms;
    b->attempt = 0;
    b->seed = seed;
}

long rp_amqp_backoff_next(struct rp_amqp_backoff *b)
{
    long d = b->initial_ms;
    for (unsigned i = 0; i < b->attempt && d < b->max_ms; i++)
        d *= 2;
    if (d > b->max_ms)
        d = b->max_ms;
    if (b->attempt < 64)
        b->attempt++;
    long half = d / 2;
    return d - half + (long)(rand_r(&b->seed) % (unsigned long)(half + 1));
}

void rp_amqp_backoff_reset(struct rp_amqp_backoff *b)
{
    b->attempt = 0;
}

void rp_amqp_urls_free(struct rp_amqp_url *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].host);
        free(v[i].user);
        free(v[i].password);
        free(v[i].vhost);
        free(v[i].redacted);
    }
    free(v);
}

int rp_amqp_urls_parse(const char *csv, struct rp_amqp_url **out, size_t *n_out,
                       struct rp_error *err)
{
    int rc = RP_EINVAL;
    size_t n = 0;
    char **list = rp_split_list(csv, &n);
    struct rp_amqp_url *v = rp_xcalloc(n ? n : 1, sizeof(*v));
    size_t done = 0;
    if (n == 0) {
        rp_error_set(err, RP_EINVAL, "no AMQP URL given (expected amqp://user:pass@host:port/)");
        goto out;
    }
    for (; done < n; done++) {
        struct amqp_connection_info info;
        char *copy = rp_xstrdup(list[done]);
        if (amqp_parse_url(copy, &info) != AMQP_STATUS_OK || info.ssl) {
            char *red = rp_redact_url(list[done]);
            rp_error_set(err, RP_EINVAL,
                         "AMQP URL %zu (\"%s\") is not amqp://user:pass@host:port/vhost", done + 1,
                         red);
            free(red);
            free(copy);
            goto out;
        }
        v[done].host = rp_xstrdup(info.host);
        v[done].user = rp_xstrdup(info.user);
        v[done].password = rp_xstrdup(info.password);
        v[done].vhost = rp_xstrdup(info.vhost && *info.vhost ? info.vhost : "/");
        v[done].port = info.port;
        v[done].redacted = rp_redact_url(list[done]);
        free(copy);
    }
    *out = v;
    *n_out = n;
    v = NULL;
    rc = RP_OK;
out:
    rp_amqp_urls_free(v, done);
    rp_strv_free(list);
    return rc;
}

int rp_amqp_map_status(int st)
{
    switch (st) {
    case AMQP_STATUS_OK:
        return RP_OK;
    case AMQP_STATUS_CONNECTION_CLOSED:
    case AMQP_STATUS_SOCKET_ERROR:
    case AMQP_STATUS_TIMEOUT:
    case AMQP_STATUS_HEARTBEAT_TIMEOUT:
    case AMQP_STATUS_SOCKET_CLOSED:
    case AMQP_STATUS_TCP_ERROR:
    case AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED:
    case AMQP_STATUS_SSL_ERROR:
    case AMQP_STATUS_SSL_CONNECTION_FAILED:
        return RP_EAGAIN;
    case AMQP_STATUS_BAD_URL:
    case AMQP_STATUS_INVALID_PARAMETER:
    case AMQP_STATUS_TABLE_TOO_BIG:
    case AMQP_STATUS_BROKER_UNSUPPORTED_SASL_METHOD:
    case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED:
    case AMQP_STATUS_SSL_PEER_VERIFY_FAILED:
        return RP_EINVAL;
    default:
        return RP_EIO;
    }
}

int rp_amqp_map_close(int is_channel, int code)
{
    switch (code) {
    case AMQP_REPLY_SUCCESS:
    case AMQP_CONNECTION_FORCED: /* 320: broker shutting down, or an operator closed us */
    case AMQP_RESOURCE_LOCKED:   /* 405: exclusive queue held by a dying connection */
    case AMQP_RESOURCE_ERROR:    /* 506: resource alarm, too many channels */
    case AMQP_INTERNAL_ERROR:    /* 541: e.g. a quorum queue without a leader yet */
        return RP_EAGAIN;
    case AMQP_ACCESS_REFUSED:      /* 403: credentials or permissions */
    case AMQP_NOT_ALLOWED:         /* 530: vhost */
    case AMQP_PRECONDITION_FAILED: /* 406: declare mismatch */
    case AMQP_CONTENT_TOO_LARGE:   /* 311 */
    case AMQP_NO_ROUTE:            /* 312 */
    case AMQP_NO_CONSUMERS:        /* 313 */
        return RP_EINVAL;
    case AMQP_NOT_FOUND: /* 404 */
        return is_channel ? RP_ENOENT : RP_EINVAL;
    default:
        return RP_EIO;
    }
}

int rp_amqp_parse_missing_exchange(const char *text, char *buf, size_t buflen)
{
    static const char pre[] = "no exchange '";
    const char *p = text ? strstr(text, pre) : NULL;
    if (!p || buflen == 0)
        return 0;
    p += sizeof(pre) - 1;
    const char *q = strstr(p, "' in vhost");
    if (!q || (size_t)(q - p) >= buflen)
        return 0;
    memcpy(buf, p, (size_t)(q - p));
    buf[q - p] = '\0';
    return 1;
}

int rp_amqp_link_init(struct rp_amqp_link *l, const char *urls, const struct rp_amqp_opts *opts,
                      struct rp_error *err)
{
    memset(l, 0, sizeof(*l));
    if (opts)
        l->opts = *opts;
    /* 5 s: the broker gives a cut-off worker's jobs to another one about 5 s after the cut
     * (tests/ha measured 13.9 s from the cut with 10 s, more than the 10 s recovery goal) */
    if (l->opts.heartbeat_s <= 0)
        l->opts.heartbeat_s = 5;
    if (l->opts.connect_timeout_ms <= 0)
        l->opts.connect_timeout_ms = 5000;
    if (l->opts.backoff_initial_ms <= 0)
        l->opts.backoff_initial_ms = 100;
    if (l->opts.backoff_max_ms <= 0)
        l->opts.backoff_max_ms = 5000;
    if (l->opts.window == 0)
        l->opts.window = 1024;
    if (l->opts.publish_timeout_ms <= 0)
        l->opts.publish_timeout_ms = 30000;
    if (!l->opts.name)
        l->opts.name = "amqp";
    unsigned seed = (unsigned)getpid() ^ (unsigned)rp_amqp_now_ms() ^ (unsigned)(size_t)l;
    rp_amqp_backoff_init(&l->backoff, l->opts.backoff_initial_ms, l->opts.backoff_max_ms, seed);
    return rp_amqp_urls_parse(urls, &l->urls, &l->n_urls, err);
}

void rp_amqp_link_cleanup(struct rp_amqp_link *l)
{
    if (!l)
        return;
    if (l->conn) {
        /* Best effort and bounded by the RPC timeout: the broker requeues what we held. */
        amqp_channel_close(l->conn, 1, AMQP_REPLY_SUCCESS);
        amqp_connection_close(l->conn, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(l->conn);
        l->conn = NULL;
    }
    rp_amqp_urls_free(l->urls, l->n_urls);
    l->urls = NULL;
    l->n_urls = 0;
}

void rp_amqp_link_drop(struct rp_amqp_link *l, const char *why)
{
    if (!l->conn)
        return;
    amqp_destroy_connection(l->conn);
    l->conn = NULL;
    l->next_try_ms = rp_amqp_now_ms(); /* first retry at once; back-off after a failed round */
    rp_log(l->quiet ? RP_LOG_DEBUG : RP_LOG_WARN, NULL, "%s: connection to %s lost (%s)",
           l->opts.name, l->urls[l->cur].redacted, why);
}

static void close_ok(amqp_connection_state_t conn, int is_channel, amqp_channel_t ch)
{
    if (is_channel) {
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    } else {
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    }
}

/* Map a reply on `conn` (which may not be installed in the link yet). Sets *gone when the
 * connection or the channel is unusable. */
static int map_reply(amqp_connection_state_t conn, amqp_rpc_reply_t r, const char *what,
                     const char *target, int *gone, struct rp_error *err)
{
    *gone = 0;
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return RP_OK;
    case AMQP_RESPONSE_NONE:
        *gone = 1;
        return rp_error_set(err, RP_EIO, "%s on %s: no reply from the broker", what, target);
    case AMQP_RESPONSE_LIBRARY_EXCEPTION: {
        int code = rp_amqp_map_status(r.library_error);
        *gone = 1;
        return rp_error_set(err, code, "%s on %s: %s", what, target,
                            amqp_error_string2(r.library_error));
    }
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        break;
    }
    *gone = 1;
    int is_channel = r.reply.id == AMQP_CHANNEL_CLOSE_METHOD;
    int code;
    amqp_bytes_t text;
    if (is_channel) {
        amqp_channel_close_t *c = r.reply.decoded;
        code = c->reply_code;
        text = c->reply_text;
    } else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_t *c = r.reply.decoded;
        code = c->reply_code;
        text = c->reply_text;
    } else {
        return rp_error_set(err, RP_EIO, "%s on %s: unexpected method 0x%08x", what, target,
                            (unsigned)r.reply.id);
    }
    close_ok(conn, is_channel, 1);
    return rp_error_set(err, rp_amqp_map_close(is_channel, code), "%s on %s: %s closed: %d %.*s",
                        what, target, is_channel ? "channel" : "connection", code, (int)text.len,
                        (const char *)text.bytes);
}

int rp_amqp_link_reply(struct rp_amqp_link *l, amqp_rpc_reply_t r, const char *what,
                       struct rp_error *err)
{
    int gone;
    struct rp_error tmp;
    if (!err)
        err = &tmp;
    int rc = map_reply(l->conn, r, what, l->urls[l->cur].redacted, &gone, err);
    if (gone)
        rp_amqp_link_drop(l, err->msg);
    return rc;
}

/* rabbitmq-c sends without a deadline (a publish, an ack, its own heartbeat): with the send
 * buffer full of data the peer never acknowledges (a network cut), the call waits in poll()
 * until the kernel gives up, about 15 minutes. Heartbeats bound only the waits for input. So
 * the kernel drops the connection once sent data stays unacknowledged for three heartbeats:
 * by then the broker has seen two missed heartbeats and closed it anyway. */
static void bound_sends(int fd, int heartbeat_s)
{
    unsigned int ms = (unsigned int)heartbeat_s * 3000u;
    if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)) != 0)
        rp_debug("amqp: TCP_USER_TIMEOUT not set: %s", strerror(errno));
}

/* ---- the send guard ------------------------------------------------------------------------
 * TCP_USER_TIMEOUT ends a send only while the peer acknowledges nothing. A peer whose window
 * opens now and then (a broker that reads a little, or whose connection process no longer
 * reads) holds a rabbitmq-c send for as long as it likes: measured, a worker's writer waited 50 s
 * in amqp_basic_publish -> poll(-1) after a network cut under load, until the stall check
 * exited the process. So calls are guarded: each guarded link is on a list with its socket and
 * deadline, and one thread per process shuts down the socket of a call past its deadline. The
 * call then fails at once, and the owner drops the link and reconnects. The socket is closed
 * only by its owner's thread, never while its call is guarded, so shutdown() never hits a
 * reused descriptor. */
#define GUARD_TICK_MS 100

static pthread_mutex_t guard_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rp_amqp_link *guarded; /* the links inside a guarded call */
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static int guard_running;

static void *guard_main(void *arg)
{
    (void)arg;
    for (;;) {
        rp_amqp_sleep_ms(GUARD_TICK_MS);
        long long now = rp_amqp_now_ms();
        pthread_mutex_lock(&guard_mu);
        for (struct rp_amqp_link *l = guarded; l; l = l->guard_next)
            if (!l->guard_fired && now >= l->guard_deadline_ms) {
                l->guard_fired = 1;
                shutdown(l->guard_fd, SHUT_RDWR);
            }
        pthread_mutex_unlock(&guard_mu);
    }
    return NULL;
}

static void guard_start(void)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals stay with the other threads */
    pthread_t t;
    if (pthread_create(&t, NULL, guard_main, NULL) == 0) {
        pthread_detach(t);
        guard_running = 1;
    } else {
        rp_warn("amqp: cannot start the send guard's thread; sends rely on TCP_USER_TIMEOUT");
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

long rp_amqp_link_send_bound_ms(const struct rp_amqp_link *l)
{
    return (long)l->opts.heartbeat_s * 3000L;
}

void rp_amqp_link_guard(struct rp_amqp_link *l, long ms)
{
    if (!l->conn)
        return;
    pthread_once(&guard_once, guard_start);
    int fd = amqp_socket_get_sockfd(amqp_get_socket(l->conn));
    if (!guard_running || fd < 0)
        return;
    pthread_mutex_lock(&guard_mu);
    l->guard_fd = fd;
    l->guard_deadline_ms = rp_amqp_now_ms() + ms;
    l->guard_fired = 0;
    l->guard_on = 1;
    l->guard_prev = NULL;
    l->guard_next = guarded;
    if (guarded)
        guarded->guard_prev = l;
    guarded = l;
    pthread_mutex_unlock(&guard_mu);
}

int rp_amqp_link_unguard(struct rp_amqp_link *l)
{
    if (!l->guard_on)
        return 0;
    pthread_mutex_lock(&guard_mu);
    if (l->guard_prev)
        l->guard_prev->guard_next = l->guard_next;
    else
        guarded = l->guard_next;
    if (l->guard_next)
        l->guard_next->guard_prev = l->guard_prev;
    l->guard_on = 0;
    int fired = l->guard_fired;
    pthread_mutex_unlock(&guard_mu);
    return fired;
}

static int try_url(struct rp_amqp_link *l, size_t i, struct rp_error *err)
{
    const struct rp_amqp_url *u = &l->urls[i];
    int rc = RP_EAGAIN, gone;
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    struct timeval tv = {l->opts.connect_timeout_ms / 1000,
                         (l->opts.connect_timeout_ms % 1000) * 1000};
    if (!sock) {
        rc = rp_error_set(err, RP_EIO, "%s: cannot create a socket", u->redacted);
        goto out;
    }
    amqp_set_handshake_timeout(conn, &tv);
    amqp_set_rpc_timeout(conn, &tv);
    int st = amqp_socket_open_noblock(sock, u->host, u->port, &tv);
    if (st != AMQP_STATUS_OK) {
        rc = rp_error_set(err, RP_EAGAIN, "connect to %s: %s", u->redacted, amqp_error_string2(st));
        goto out;
    }
    if (!l->opts.no_kernel_send_bound)
        bound_sends(amqp_socket_get_sockfd(sock), l->opts.heartbeat_s);
    amqp_rpc_reply_t r = amqp_login(conn, u->vhost, 0, 131072, l->opts.heartbeat_s,
                                    AMQP_SASL_METHOD_PLAIN, u->user, u->password);
    rc = map_reply(conn, r, "login", u->redacted, &gone, err);
    if (rc == RP_EAGAIN && r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        r.library_error == AMQP_STATUS_CONNECTION_CLOSED)
        /* RabbitMQ closes the socket without a reply on bad credentials. */
        rc = rp_error_set(err, RP_EINVAL, "login on %s: refused (check user, password, vhost)",
                          u->redacted);
    if (rc != RP_OK)
        goto out;
    amqp_channel_open(conn, 1);
    rc = map_reply(conn, amqp_get_rpc_reply(conn), "channel.open", u->redacted, &gone, err);
    if (rc != RP_OK)
        goto out;
    l->conn = conn;
    conn = NULL;
out:
    if (conn)
        amqp_destroy_connection(conn);
    return rc;
}

int rp_amqp_link_connect(struct rp_amqp_link *l, struct rp_error *err)
{
    int rc = RP_EAGAIN;
    if (l->conn)
        return RP_OK;
    for (size_t k = 0; k < l->n_urls; k++) {
        size_t i = (l->cur + k) % l->n_urls;
        rc = try_url(l, i, err);
        if (rc == RP_OK) {
            l->cur = i;
            l->generation++; /* the owner resets the back-off once its channel works */
            rp_info("%s: connected to %s (generation %llu)", l->opts.name, l->urls[i].redacted,
                    (unsigned long long)l->generation);
            l->down_logged = 0;
            return RP_OK;
        }
        /* A refusal of credentials is permanent, but another node may still take them. */
    }
    l->next_try_ms = rp_amqp_now_ms() + rp_amqp_backoff_next(&l->backoff);
    if (!l->down_logged && err) {
        rp_warn("%s: no broker reachable (%s); retrying with back-off", l->opts.name, err->msg);
        l->down_logged = 1;
    }
    return rc;
}

int rp_amqp_link_ensure(struct rp_amqp_link *l, long long deadline_ms, struct rp_error *err)
{
    struct rp_error tmp;
    if (!err)
        err = &tmp;
    if (l->conn)
        return RP_OK;
    for (;;) {
        long long now = rp_amqp_now_ms();
        if (l->next_try_ms > now) {
            if (l->next_try_ms > deadline_ms) {
                rp_amqp_sleep_ms((long)(deadline_ms - now));
                return rp_error_set(err, RP_EAGAIN, "%s: broker unreachable; retrying",
                                    l->opts.name);
            }
            rp_amqp_sleep_ms((long)(l->next_try_ms - now));
        }
        int rc = rp_amqp_link_connect(l, err);
        if (rc != RP_EAGAIN || rp_amqp_now_ms() >= deadline_ms)
            return rc;
    }
}
