/* The TCP relay of the integration tests (see tcp_relay.h): an accept thread, and a thread
 * per connection copying bytes both ways with poll(2), 50 ms at a time so that a stop is
 * noticed. A frozen connection is not read at all (not even to see it closed). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcp_relay.h"

struct tcp_relay {
    int lfd;
    unsigned short port;
    struct sockaddr_in server;
    atomic_int swallow;
    atomic_int freeze;
    atomic_int stop;
    atomic_int pipes; /* connections being relayed */
    pthread_t tid;
};

struct pipe_arg {
    struct tcp_relay *r;
    int c;
};

/* A fixed receive buffer (no autotuning): a frozen connection fills up after this much. */
static void small_buffer(int fd)
{
    int size = 256 * 1024;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

static void *relay_pipe(void *arg)
{
    struct pipe_arg *pa = arg;
    struct tcp_relay *r = pa->r;
    int c = pa->c;
    free(pa);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    char buf[65536];
    if (s >= 0)
        small_buffer(s);
    if (s >= 0 && connect(s, (struct sockaddr *)&r->server, sizeof(r->server)) == 0) {
        while (!atomic_load(&r->stop)) {
            if (atomic_load(&r->freeze)) { /* nothing read: the peers' windows fill up */
                usleep(50000);
                continue;
            }
            struct pollfd p[2] = {{.fd = c, .events = POLLIN}, {.fd = s, .events = POLLIN}};
            if (poll(p, 2, 50) <= 0)
                continue;
            if (p[0].revents) {
                ssize_t n = read(c, buf, sizeof(buf));
                if (n <= 0 || write(s, buf, (size_t)n) != n)
                    break;
            }
            if (p[1].revents) {
                ssize_t n = read(s, buf, sizeof(buf));
                if (n <= 0 || (!atomic_load(&r->swallow) && write(c, buf, (size_t)n) != n))
                    break;
            }
        }
    }
    if (s >= 0)
        close(s);
    close(c);
    atomic_fetch_sub(&r->pipes, 1);
    return NULL;
}

static void *relay_accept(void *arg)
{
    struct tcp_relay *r = arg;
    while (!atomic_load(&r->stop)) {
        struct pollfd p = {.fd = r->lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(r->lfd, NULL, NULL);
        if (c < 0)
            continue;
        struct pipe_arg *pa = calloc(1, sizeof(*pa));
        pthread_t t;
        if (!pa) {
            close(c);
            continue;
        }
        pa->r = r;
        pa->c = c;
        atomic_fetch_add(&r->pipes, 1);
        if (pthread_create(&t, NULL, relay_pipe, pa) == 0) {
            pthread_detach(t);
        } else {
            atomic_fetch_sub(&r->pipes, 1);
            close(c);
            free(pa);
        }
    }
    return NULL;
}

/* host:port of the first host of a URL. */
static int url_server(const char *url, struct sockaddr_in *out)
{
    const char *h = url ? strstr(url, "://") : NULL;
    if (!h)
        return -1;
    h += 3;
    const char *at = strchr(h, '@'), *slash = strchr(h, '/');
    if (at && (!slash || at < slash))
        h = at + 1;
    char host[64];
    int port = 0;
    if (sscanf(h, "%63[^:/?,]:%d", host, &port) != 2 || port <= 0 || port > 65535)
        return -1;
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((unsigned short)port);
    const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    return inet_pton(AF_INET, ip, &out->sin_addr) == 1 ? 0 : -1;
}

struct tcp_relay *tcp_relay_start(const char *url)
{
    struct tcp_relay *r = calloc(1, sizeof(*r));
    if (!r || url_server(url, &r->server) != 0)
        goto fail;
    r->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (r->lfd >= 0)
        small_buffer(r->lfd); /* accepted connections inherit it */
    if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(r->lfd, 16) != 0 || getsockname(r->lfd, (struct sockaddr *)&a, &len) != 0)
        goto fail;
    r->port = ntohs(a.sin_port);
    if (pthread_create(&r->tid, NULL, relay_accept, r) != 0)
        goto fail;
    return r;
fail:
    fprintf(stderr, "tcp_relay: cannot relay to %s\n", url ? url : "(null)");
    if (r && r->lfd > 0)
        close(r->lfd);
    free(r);
    return NULL;
}

unsigned short tcp_relay_port(const struct tcp_relay *r)
{
    return r->port;
}

void tcp_relay_swallow(struct tcp_relay *r, int on)
{
    atomic_store(&r->swallow, on);
}

void tcp_relay_freeze(struct tcp_relay *r, int on)
{
    atomic_store(&r->freeze, on);
}

void tcp_relay_stop(struct tcp_relay *r)
{
    if (!r)
        return;
    atomic_store(&r->stop, 1);
    pthread_join(r->tid, NULL);
    while (atomic_load(&r->pipes) > 0)
        usleep(10000);
    close(r->lfd);
    free(r);
}
