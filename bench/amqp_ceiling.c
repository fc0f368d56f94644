/* Benchmark: the broker's ceiling for the run pipeline (issue #5), the peer that the pipeline's
 * checks/s are compared with (bench/pipeline_throughput.sh). One quorum queue, 1 KiB persistent
 * messages, a publisher with pipelined confirms (rp_amqp_publisher) and a consumer with manual
 * acks (rp_amqp_consumer) on two threads at once; msgs/s from the first publish to the last
 * ack, median of the rounds. Two helper modes serve the pipeline scripts: --drain-jobs acks a
 * location's job queue (a stand-in worker) and --reset-jobs empties it. Broker URL:
 * RAMPART_TEST_AMQP (or RAMPART_AMQP_URLS). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rampart/amqp.h"
#include "rampart/log.h"

#define BODY_BYTES 1024
#define PREFETCH   200
#define WINDOW     4096

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

static void die(const char *what, const struct rp_error *err)
{
    fprintf(stderr, "%s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

/* ---- the ceiling: publisher and consumer threads on one queue ---------------------------- */

struct round {
    const char *urls, *queue;
    int n;
    pthread_barrier_t ready; /* both connected: the clock starts */
    double t0, pub_end, last_ack;
};

static void *publisher_main(void *ud)
{
    struct round *r = ud;
    struct rp_amqp_opts o = {.window = WINDOW, .name = "ceiling publisher"};
    struct rp_amqp_publisher *pub;
    struct rp_error err;
    if (rp_amqp_publisher_new(r->urls, &o, NULL, NULL, &pub, &err) != RP_OK)
        die("publisher", &err);
    struct rp_amqp_props p = {.persistent = 1, .content_type = "application/json"};
    char body[BODY_BYTES];
    memset(body, 'x', sizeof(body));
    pthread_barrier_wait(&r->ready);
    r->t0 = now_s();
    for (int i = 0; i < r->n; i++)
        if (rp_amqp_publish(pub, "", r->queue, body, sizeof(body), &p, 0, NULL, &err) != RP_OK)
            die("publish", &err);
    if (rp_amqp_publisher_flush(pub, 300000, &err) != RP_OK)
        die("flush", &err);
    r->pub_end = now_s();
    rp_amqp_publisher_free(pub);
    return NULL;
}

static void *consumer_main(void *ud)
{
    struct round *r = ud;
    struct rp_amqp_consumer *c;
    struct rp_error err;
    if (rp_amqp_consumer_new(r->urls, r->queue, PREFETCH, NULL, &c, &err) != RP_OK)
        die("consumer", &err);
    pthread_barrier_wait(&r->ready);
    for (int got = 0; got < r->n;) {
        struct rp_amqp_delivery *d = NULL;
        int rc = rp_amqp_consumer_next(c, 5000, &d, &err);
        if (rc == RP_ETIMEDOUT)
            continue;
        if (rc != RP_OK)
            die("consume", &err);
        if (d->len != BODY_BYTES)
            fprintf(stderr, "unexpected message of %zu bytes\n", d->len);
        if (rp_amqp_ack(c, d, &err) != RP_OK)
            die("ack", &err);
        rp_amqp_delivery_free(d);
        got++;
    }
    r->last_ack = now_s();
    rp_amqp_consumer_free(c);
    return NULL;
}

static int ceiling(const char *urls, int rounds, int n)
{
    char queue[64];
    snprintf(queue, sizeof(queue), "rampart.bench.ceiling.%ld", (long)getpid());
    struct rp_amqp_admin *a;
    struct rp_error err;
    if (rp_amqp_admin_open(urls, NULL, &a, &err) != RP_OK)
        die("broker", &err);
    double *rate = calloc((size_t)rounds, sizeof(double));
    for (int k = 0; k < rounds; k++) {
        if (rp_amqp_declare_queue(a, queue, NULL, &err) != RP_OK)
            die("declaring the queue", &err);
        struct round r = {.urls = urls, .queue = queue, .n = n};
        pthread_barrier_init(&r.ready, NULL, 2);
        pthread_t pt, ct;
        pthread_create(&ct, NULL, consumer_main, &r);
        pthread_create(&pt, NULL, publisher_main, &r);
        pthread_join(pt, NULL);
        pthread_join(ct, NULL);
        pthread_barrier_destroy(&r.ready);
        rate[k] = n / (r.last_ack - r.t0);
        printf("round %d: %d msgs in %.2f s: %.0f msgs/s first publish -> last ack "
               "(all confirmed after %.2f s)\n",
               k + 1, n, r.last_ack - r.t0, rate[k], r.pub_end - r.t0);
        fflush(stdout);
        if (rp_amqp_delete_queue(a, queue, &err) != RP_OK)
            die("deleting the queue", &err);
    }
    qsort(rate, (size_t)rounds, sizeof(double), cmp);
    printf("ceiling: median of %d rounds: %.0f msgs/s (1 KiB persistent, quorum queue, "
           "confirms window %d, consumer prefetch %d, %d msgs each)\n",
           rounds, rate[rounds / 2], WINDOW, PREFETCH, n);
    rp_amqp_admin_close(a);
    free(rate);
    return 0;
}

/* ---- helper modes for the pipeline scripts ----------------------------------------------- */

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* Ack every job of `location` until SIGTERM / SIGINT, then print how many. */
static int drain_jobs(const char *urls, const char *location)
{
    struct rp_amqp_admin *a;
    struct rp_error err;
    const char *locs[] = {location};
    if (rp_amqp_admin_open(urls, NULL, &a, &err) != RP_OK ||
        rp_amqp_declare_topology(a, locs, 1, NULL, &err) != RP_OK)
        die("declaring the job queue", &err);
    rp_amqp_admin_close(a);
    char queue[128];
    snprintf(queue, sizeof(queue), "rampart.jobs.%s", location);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct rp_amqp_consumer *c;
    if (rp_amqp_consumer_new(urls, queue, PREFETCH, NULL, &c, &err) != RP_OK)
        die("consumer", &err);
    long long msgs = 0;
    double t0 = now_s();
    while (!stop) {
        struct rp_amqp_delivery *d = NULL;
        int rc = rp_amqp_consumer_next(c, 200, &d, &err);
        if (rc == RP_ETIMEDOUT)
            continue;
        if (rc != RP_OK) {
            fprintf(stderr, "consume: %s\n", err.msg);
            continue;
        }
        if (rp_amqp_ack(c, d, &err) == RP_OK)
            msgs++;
        rp_amqp_delivery_free(d);
    }
    printf("drained %lld job messages from %s in %.1f s\n", msgs, queue, now_s() - t0);
    rp_amqp_consumer_free(c);
    return 0;
}

/* Delete the job queue of `location` and declare it again, empty. */
static int reset_jobs(const char *urls, const char *location)
{
    struct rp_amqp_admin *a;
    struct rp_error err;
    char queue[128];
    snprintf(queue, sizeof(queue), "rampart.jobs.%s", location);
    const char *locs[] = {location};
    if (rp_amqp_admin_open(urls, NULL, &a, &err) != RP_OK ||
        rp_amqp_delete_queue(a, queue, &err) != RP_OK ||
        rp_amqp_declare_topology(a, locs, 1, NULL, &err) != RP_OK)
        die("resetting the job queue", &err);
    rp_amqp_admin_close(a);
    return 0;
}

static int depth(const char *urls, const char *queue)
{
    struct rp_amqp_admin *a;
    struct rp_error err;
    uint32_t n = 0;
    if (rp_amqp_admin_open(urls, NULL, &a, &err) != RP_OK ||
        rp_amqp_queue_depth(a, queue, &n, &err) != RP_OK)
        die("queue depth", &err);
    rp_amqp_admin_close(a);
    printf("%u\n", n);
    return 0;
}

int main(int argc, char **argv)
{
    const char *urls = getenv("RAMPART_TEST_AMQP");
    if (!urls || !*urls)
        urls = getenv("RAMPART_AMQP_URLS");
    if (!urls || !*urls) {
        fprintf(stderr,
                "usage: RAMPART_TEST_AMQP=amqp://... %s [ROUNDS] [MESSAGES]\n"
                "       %s --drain-jobs LOCATION   ack the location's jobs until SIGTERM\n"
                "       %s --reset-jobs LOCATION   empty the location's job queue\n"
                "       %s --depth QUEUE           ready messages in QUEUE\n",
                argv[0], argv[0], argv[0], argv[0]);
        return 2;
    }
    rp_log_init("bench", "bench", RP_LOG_WARN);
    if (argc == 3 && strcmp(argv[1], "--drain-jobs") == 0)
        return drain_jobs(urls, argv[2]);
    if (argc == 3 && strcmp(argv[1], "--reset-jobs") == 0)
        return reset_jobs(urls, argv[2]);
    if (argc == 3 && strcmp(argv[1], "--depth") == 0)
        return depth(urls, argv[2]);
    int rounds = argc > 1 ? atoi(argv[1]) : 3;
    int n = argc > 2 ? atoi(argv[2]) : 100000;
    if (rounds < 1 || n < 1) {
        fprintf(stderr, "ROUNDS and MESSAGES must be positive\n");
        return 2;
    }
    return ceiling(urls, rounds, n);
}
