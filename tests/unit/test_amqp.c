/* Unit tests for the RabbitMQ client's server-free parts: URL lists, back-off, error mapping,
 * message copies and the publisher's in-flight window (ack / multiple ack / nack / new
 * channel / permanent failures). The broker-facing parts are in tests/integration/it_amqp.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rampart/amqp.h"
#include "rampart/log.h"

static void test_urls(void **state)
{
    struct rp_amqp_url *u;
    size_t n;
    struct rp_error err;
    assert_int_equal(
        rp_amqp_urls_parse(" amqp://guest:s3cret@10.0.0.1:5673/, amqp://h2/prod ,", &u, &n, &err),
        RP_OK);
    assert_int_equal(n, 2);
    assert_string_equal(u[0].host, "10.0.0.1");
    assert_int_equal(u[0].port, 5673);
    assert_string_equal(u[0].user, "guest");
    assert_string_equal(u[0].password, "s3cret");
    assert_string_equal(u[0].vhost, "/"); /* "amqp://h:p/" means the default vhost */
    assert_null(strstr(u[0].redacted, "s3cret"));
    assert_string_equal(u[1].host, "h2");
    assert_int_equal(u[1].port, 5672);
    assert_string_equal(u[1].vhost, "prod");
    rp_amqp_urls_free(u, n);

    assert_int_equal(rp_amqp_urls_parse("", &u, &n, &err), RP_EINVAL);
    assert_int_equal(rp_amqp_urls_parse("amqp://a/,http://u:pw@b/", &u, &n, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "URL 2"));
    assert_null(strstr(err.msg, "pw@")); /* never a password in a message */
}

static void test_backoff(void **state)
{
    struct rp_amqp_backoff b;
    rp_amqp_backoff_init(&b, 100, 1000, 42);
    long caps[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        long d = rp_amqp_backoff_next(&b);
        assert_true(d >= caps[i] / 2 && d <= caps[i]);
    }
    rp_amqp_backoff_reset(&b);
    long d = rp_amqp_backoff_next(&b);
    assert_true(d >= 50 && d <= 100);
    /* Jitter: two seeds do not march in lock-step for long. */
    struct rp_amqp_backoff x, y;
    rp_amqp_backoff_init(&x, 1000, 100000, 1);
    rp_amqp_backoff_init(&y, 1000, 100000, 2);
    int differ = 0;
    for (int i = 0; i < 8; i++)
        differ += rp_amqp_backoff_next(&x) != rp_amqp_backoff_next(&y);
    assert_true(differ > 0);
    /* Many attempts never overflow past the cap. */
    for (int i = 0; i < 200; i++)
        assert_true(rp_amqp_backoff_next(&x) <= 100000);
}

static void test_error_mapping(void **state)
{
    assert_int_equal(rp_amqp_map_status(AMQP_STATUS_SOCKET_ERROR), RP_EAGAIN);
    assert_int_equal(rp_amqp_map_status(AMQP_STATUS_CONNECTION_CLOSED), RP_EAGAIN);
    assert_int_equal(rp_amqp_map_status(AMQP_STATUS_HEARTBEAT_TIMEOUT), RP_EAGAIN);
    assert_int_equal(rp_amqp_map_status(AMQP_STATUS_BAD_AMQP_DATA), RP_EIO);
    assert_int_equal(rp_amqp_map_close(0, 320), RP_EAGAIN); /* broker shutting down */
    assert_int_equal(rp_amqp_map_close(1, 506), RP_EAGAIN); /* resource alarm */
    assert_int_equal(rp_amqp_map_close(0, 403), RP_EINVAL); /* access refused */
    assert_int_equal(rp_amqp_map_close(0, 530), RP_EINVAL); /* vhost */
    assert_int_equal(rp_amqp_map_close(1, 406), RP_EINVAL); /* declare mismatch */
    assert_int_equal(rp_amqp_map_close(1, 404), RP_ENOENT);
    assert_int_equal(rp_amqp_map_close(0, 501), RP_EIO);
    char ex[64];
    assert_true(rp_amqp_parse_missing_exchange("NOT_FOUND - no exchange 'a.b' in vhost '/'", ex,
                                               sizeof(ex)));
    assert_string_equal(ex, "a.b");
    assert_false(rp_amqp_parse_missing_exchange("NOT_FOUND - no queue 'q'", ex, sizeof(ex)));
    assert_false(rp_amqp_parse_missing_exchange(NULL, ex, sizeof(ex)));
}

static void test_msg_copy(void **state)
{
    struct rp_amqp_header h[] = {{"run-id", "r-1"}, {"empty", NULL}};
    struct rp_amqp_props p = {.content_type = "application/json",
                              .message_id = "m-7",
                              .expiration = "30000",
                              .persistent = 1,
                              .headers = h,
                              .n_headers = 2};
    char body[] = "{\"x\":1}";
    struct rp_amqp_msg *m = rp_amqp_msg_new(77, "ex", "rk", body, strlen(body), &p, 1);
    body[0] = 'X'; /* the message holds its own copy */
    assert_memory_equal(m->body, "{\"x\":1}", 7);
    assert_int_equal(m->props.delivery_mode, 2);
    assert_true(m->props._flags & AMQP_BASIC_EXPIRATION_FLAG);
    assert_false(m->props._flags & AMQP_BASIC_CORRELATION_ID_FLAG);
    assert_int_equal(m->props.headers.num_entries, 3);
    assert_int_equal(rp_amqp_props_seq(&m->props), 77);
    rp_amqp_msg_free(m);
    m = rp_amqp_msg_new(1, "", "q", NULL, 0, NULL, 0);
    assert_int_equal(rp_amqp_props_seq(&m->props), 1);
    rp_amqp_msg_free(m);
    amqp_basic_properties_t none = {0};
    assert_int_equal(rp_amqp_props_seq(&none), 0);
    rp_amqp_msg_free(NULL);
}

struct outcomes {
    uint64_t seqs[64];
    size_t n;
};

static void collect(void *ctx, struct rp_amqp_msg *m)
{
    struct outcomes *o = ctx;
    o->seqs[o->n++] = m->seq;
    rp_amqp_msg_free(m);
}

/* Send every unsent message, numbering tags from *tag + 1, as the publisher does. */
static void send_all(struct rp_amqp_pending *p, uint64_t *tag)
{
    while (rp_amqp_pending_next_unsent(p))
        rp_amqp_pending_sent(p, ++*tag);
}

static void push_n(struct rp_amqp_pending *p, uint64_t from, uint64_t to)
{
    for (uint64_t s = from; s <= to; s++)
        rp_amqp_pending_push(p, rp_amqp_msg_new(s, "", "q", "b", 1, NULL, 0));
}

static void test_pending_ack_nack(void **state)
{
    struct rp_amqp_pending p;
    struct outcomes o = {0};
    uint64_t tag = 0;
    rp_amqp_pending_init(&p, 8);
    push_n(&p, 1, 6);
    send_all(&p, &tag);
    assert_int_equal(p.live, 6);

    /* single ack in the middle leaves a tombstone; multiple ack sweeps up to its tag */
    assert_int_equal(rp_amqp_pending_ack(&p, 3, 0, collect, &o), 1);
    assert_int_equal(rp_amqp_pending_ack(&p, 3, 0, collect, &o), 0); /* duplicate ack: no-op */
    assert_int_equal(rp_amqp_pending_ack(&p, 4, 1, collect, &o), 3);
    assert_int_equal(o.n, 4);
    assert_int_equal(o.seqs[0], 3);
    assert_int_equal(o.seqs[1], 1);
    assert_int_equal(o.seqs[3], 4);
    assert_int_equal(p.live, 2);

    /* nack of tag 5 puts message 5 back at the tail; it gets tag 7 */
    assert_int_equal(rp_amqp_pending_nack(&p, 5, 0), 1);
    assert_int_equal(rp_amqp_pending_next_unsent(&p)->seq, 5);
    send_all(&p, &tag);
    assert_int_equal(tag, 7);
    assert_int_equal(rp_amqp_pending_ack(&p, 6, 0, collect, &o), 1);
    assert_int_equal(o.seqs[o.n - 1], 6);
    assert_int_equal(rp_amqp_pending_ack(&p, 7, 1, collect, &o), 1);
    assert_int_equal(o.seqs[o.n - 1], 5);
    assert_int_equal(p.live, 0);
    assert_null(rp_amqp_pending_next_unsent(&p));

    /* unknown tags change nothing */
    assert_int_equal(rp_amqp_pending_ack(&p, 99, 1, collect, &o), 0);
    assert_int_equal(rp_amqp_pending_nack(&p, 99, 1), 0);
    rp_amqp_pending_cleanup(&p);
}

static void test_pending_reconnect(void **state)
{
    struct rp_amqp_pending p;
    struct outcomes o = {0};
    uint64_t tag = 0;
    rp_amqp_pending_init(&p, 4);
    push_n(&p, 1, 4);
    send_all(&p, &tag);
    assert_int_equal(rp_amqp_pending_ack(&p, 2, 0, collect, &o), 1);
    /* connection lost: 1, 3, 4 go again, in order, with tags from 1 on the new channel */
    rp_amqp_pending_reset(&p);
    tag = 0;
    uint64_t order[3];
    for (int i = 0; i < 3; i++) {
        order[i] = rp_amqp_pending_next_unsent(&p)->seq;
        rp_amqp_pending_sent(&p, ++tag);
    }
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 3);
    assert_int_equal(order[2], 4);
    assert_non_null(rp_amqp_pending_find_seq(&p, 3));
    assert_null(rp_amqp_pending_find_seq(&p, 2));
    assert_int_equal(rp_amqp_pending_ack(&p, 3, 1, collect, &o), 3);
    assert_int_equal(p.live, 0);
    rp_amqp_pending_cleanup(&p);
}

static void test_pending_churn(void **state)
{
    /* Many rounds through a small window: tombstones, compaction and nacks never lose or
     * double a message. */
    struct rp_amqp_pending p;
    struct outcomes o;
    uint64_t tag = 0, seq = 0, confirmed = 0, sum = 0;
    rp_amqp_pending_init(&p, 4);
    for (int round = 0; round < 500; round++) {
        while (p.live < 4) {
            seq++;
            push_n(&p, seq, seq);
        }
        send_all(&p, &tag);
        o.n = 0;
        switch (round % 4) {
        case 0: /* ack the newest one alone */
            rp_amqp_pending_ack(&p, tag, 0, collect, &o);
            break;
        case 1: /* nack everything, then resend */
            rp_amqp_pending_nack(&p, tag, 1);
            break;
        case 2: /* channel lost */
            rp_amqp_pending_reset(&p);
            tag = 0;
            break;
        default:
            rp_amqp_pending_ack(&p, tag, 1, collect, &o);
        }
        confirmed += o.n;
        for (size_t i = 0; i < o.n; i++)
            sum += o.seqs[i];
    }
    send_all(&p, &tag);
    o.n = 0;
    rp_amqp_pending_ack(&p, tag, 1, collect, &o);
    confirmed += o.n;
    for (size_t i = 0; i < o.n; i++)
        sum += o.seqs[i];
    assert_int_equal(confirmed, seq);
    assert_int_equal(sum, seq * (seq + 1) / 2);
    assert_true(p.cap <= 8); /* bounded: never grew past 2 * window */
    rp_amqp_pending_cleanup(&p);
}

static int is_exchange_x(void *ctx, struct rp_amqp_msg *m)
{
    return strcmp(m->exchange, ctx) == 0;
}

static void test_pending_remove_if(void **state)
{
    struct rp_amqp_pending p;
    struct outcomes o = {0};
    uint64_t tag = 0;
    rp_amqp_pending_init(&p, 8);
    for (uint64_t s = 1; s <= 5; s++)
        rp_amqp_pending_push(&p, rp_amqp_msg_new(s, s % 2 ? "x" : "y", "", "", 0, NULL, 0));
    send_all(&p, &tag);
    rp_amqp_pending_push(&p, rp_amqp_msg_new(6, "x", "", "", 0, NULL, 0)); /* unsent */
    assert_int_equal(rp_amqp_pending_remove_if(&p, is_exchange_x, (void *)"x", collect, &o), 4);
    assert_int_equal(p.live, 2);
    assert_null(rp_amqp_pending_next_unsent(&p));
    assert_int_equal(o.n, 4);
    assert_int_equal(rp_amqp_pending_ack(&p, 4, 1, collect, &o), 2);
    assert_int_equal(o.n, 6);
    rp_amqp_pending_cleanup(&p);
    rp_amqp_pending_cleanup(NULL);
}

static void test_bad_args(void **state)
{
    struct rp_amqp_publisher *pub = NULL;
    struct rp_amqp_consumer *c = NULL;
    struct rp_error err;
    assert_int_equal(rp_amqp_publisher_new("not a url", NULL, NULL, NULL, &pub, &err), RP_EINVAL);
    assert_null(pub);
    assert_int_equal(rp_amqp_consumer_new("amqp://127.0.0.1:1/", "", 10, NULL, &c, &err),
                     RP_EINVAL);
    assert_null(c);
    /* Nothing listens on port 1: transient, and fast. */
    struct rp_amqp_opts o = {.connect_timeout_ms = 500};
    assert_int_equal(rp_amqp_publisher_new("amqp://u:pw@127.0.0.1:1/", &o, NULL, NULL, &pub, &err),
                     RP_EAGAIN);
    assert_null(strstr(err.msg, "pw"));
    rp_amqp_publisher_free(NULL);
    rp_amqp_consumer_free(NULL);
    rp_amqp_admin_close(NULL);
    rp_amqp_delivery_free(NULL);
}

int main(void)
{
    rp_log_init("test_amqp", "t", RP_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_error_mapping),
        cmocka_unit_test(test_msg_copy),
        cmocka_unit_test(test_pending_ack_nack),
        cmocka_unit_test(test_pending_reconnect),
        cmocka_unit_test(test_pending_churn),
        cmocka_unit_test(test_pending_remove_if),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
