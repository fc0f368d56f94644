/* Benchmark: confirmed publishing into a quorum queue, pipelined (a window of unconfirmed
 * messages, as rp_amqp_publish does) versus its peer, waiting for each confirm before the next
 * publish (window 1). Both run in the same process against the same broker, alternating, and
 * the medians of the rounds and their ratio are printed. Broker URL: RAMPART_TEST_AMQP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rampart/amqp.h"
#include "rampart/log.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Publish `n` persistent messages with a window of `window`; returns messages per second. */
static double run(const char *urls, const char *queue, size_t window, int n)
{
    struct rp_amqp_opts o = {.window = window, .name = "bench"};
    struct rp_amqp_publisher *pub;
    struct rp_error err;
    if (rp_amqp_publisher_new(urls, &o, NULL, NULL, &pub, &err) != RP_OK) {
        fprintf(stderr, "publisher: %s\n", err.msg);
        exit(1);
    }
    struct rp_amqp_props p = {.persistent = 1};
    char body[256];
    memset(body, 'x', sizeof(body));
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        if (rp_amqp_publish(pub, "", queue, body, sizeof(body), &p, 0, NULL, &err) != RP_OK) {
            fprintf(stderr, "publish: %s\n", err.msg);
            exit(1);
        }
    }
    if (rp_amqp_publisher_flush(pub, 120000, &err) != RP_OK) {
        fprintf(stderr, "flush: %s\n", err.msg);
        exit(1);
    }
    double rate = n / (now_s() - t0);
    rp_amqp_publisher_free(pub);
    return rate;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    int n = argc > 2 ? atoi(argv[2]) : 5000;
    const char *urls = getenv("RAMPART_TEST_AMQP");
    if (!urls || rounds < 1 || n < 1) {
        fprintf(stderr, "usage: RAMPART_TEST_AMQP=amqp://... %s [ROUNDS] [MESSAGES]\n", argv[0]);
        return 2;
    }
    rp_log_init("bench", "bench", RP_LOG_WARN);
    char queue[64];
    snprintf(queue, sizeof(queue), "rampart.bench.%ld", (long)getpid());
    struct rp_amqp_admin *a;
    struct rp_error err;
    if (rp_amqp_admin_open(urls, NULL, &a, &err) != RP_OK ||
        rp_amqp_declare_queue(a, queue, NULL, &err) != RP_OK) {
        fprintf(stderr, "broker: %s\n", err.msg);
        return 1;
    }
    double *pipe = calloc((size_t)rounds, sizeof(double));
    double *each = calloc((size_t)rounds, sizeof(double));
    for (int r = 0; r < rounds; r++) {
        pipe[r] = run(urls, queue, 1024, n);
        each[r] = run(urls, queue, 1, n / 10 > 0 ? n / 10 : 1);
        printf("round %d: pipelined %.0f msg/s, confirm-each %.0f msg/s\n", r + 1, pipe[r],
               each[r]);
        if (rp_amqp_delete_queue(a, queue, &err) != RP_OK ||
            rp_amqp_declare_queue(a, queue, NULL, &err) != RP_OK) {
            fprintf(stderr, "emptying the queue: %s\n", err.msg);
            return 1;
        }
    }
    qsort(pipe, (size_t)rounds, sizeof(double), cmp);
    qsort(each, (size_t)rounds, sizeof(double), cmp);
    double mp = pipe[rounds / 2], me = each[rounds / 2];
    printf("median of %d rounds: pipelined %.0f msg/s (%d msgs each), confirm-each %.0f msg/s "
           "(%d msgs each); ratio %.1fx\n",
           rounds, mp, n, me, n / 10, mp / me);
    if (rp_amqp_delete_queue(a, queue, &err) != RP_OK)
        fprintf(stderr, "deleting %s: %s\n", queue, err.msg);
    rp_amqp_admin_close(a);
    free(pipe);
    free(each);
    return 0;
}
